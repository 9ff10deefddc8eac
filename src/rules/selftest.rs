//! The example runner: every rule's `examples.match` must match its pattern and every
//! `examples.no_match` must not. Shared by `ecsdoctor rules test` and the test suite, so a team's
//! own rules are checked exactly as the built-ins are.

use super::engine::Matcher;

/// One example that did not behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFailure {
    /// The rule id.
    pub rule_id: String,
    /// Where the rule is defined (`path:line`).
    pub location: String,
    /// `match`, `no_match`, `todo_match`, or `prefilter` (the pattern matches the example but
    /// the literal prefilter would not have tried it).
    pub kind: &'static str,
    /// The example text.
    pub example: String,
}

/// The outcome of running the examples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfTestReport {
    /// Rules whose examples were run.
    pub rules: usize,
    /// Examples that behaved.
    pub passed: usize,
    /// Examples that did not.
    pub failures: Vec<ExampleFailure>,
    /// `todo_match` examples that still do not match (known gaps), and those that now do.
    pub todo_open: Vec<ExampleFailure>,
    /// `todo_match` examples that now match: move them to `match`.
    pub todo_fixed: Vec<ExampleFailure>,
}

impl SelfTestReport {
    /// True when no example failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the examples of the rules `select` accepts.
pub fn run(matcher: &Matcher, select: impl Fn(&super::Rule) -> bool) -> SelfTestReport {
    let mut rep = SelfTestReport::default();
    for (i, rule) in matcher.rules().iter().enumerate() {
        if !select(rule) {
            continue;
        }
        rep.rules += 1;
        let fail = |kind: &'static str, example: &str| ExampleFailure {
            rule_id: rule.id.clone(),
            location: format!("{}:{}", rule.origin.path, rule.origin.line),
            kind,
            example: example.to_string(),
        };
        for ex in &rule.examples.matches {
            if matcher.captures_of(i, ex).is_none() {
                rep.failures.push(fail("match", ex));
            } else if !matcher.is_candidate(i, ex) {
                // The prefilter must keep every text the pattern matches (a bug in the literal
                // analysis, not in the rule): `why` would miss what `rules test` shows matching.
                rep.failures.push(fail("prefilter", ex));
            } else {
                rep.passed += 1;
            }
        }
        for ex in &rule.examples.no_match {
            if matcher.captures_of(i, ex).is_none() {
                rep.passed += 1;
            } else {
                rep.failures.push(fail("no_match", ex));
            }
        }
        for ex in &rule.examples.todo_match {
            if matcher.captures_of(i, ex).is_some() {
                rep.todo_fixed.push(fail("todo_match", ex));
            } else {
                rep.todo_open.push(fail("todo_match", ex));
            }
        }
    }
    rep
}
