//! Rule files: built-in rules compiled into the binary plus user files, loaded into one
//! [`Catalogue`]. The schema and its validation live in [`validate`] (every error with file, line
//! and rule id), the rule model in [`model`], `{placeholders}` in [`placeholders`], the AWS
//! knowledge tables rule files carry in [`knowledge`], the facts every denial message states in
//! [`extract`], the compiled matcher in [`engine`], and the example runner shared by `rules test`
//! and the test suite in [`selftest`].

mod builtin;
pub mod engine;
pub mod extract;
pub mod knowledge;
pub mod literals;
pub mod model;
pub mod placeholders;
pub mod prefilter;
pub mod selftest;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use knowledge::Knowledge;
pub use model::{
    AccountRelation, Category, Culprit, Examples, LaunchType, Origin, PolicyLayer, Presence, Rule, RuleCulprit,
    RulePhase, TaskFacts, When,
};
pub use placeholders::{expand_placeholders, placeholders, Placeholder};

use crate::input::{read_text, Expect, Input};

/// The built-in rule files, compiled into the binary. One file per failure family, plus the
/// knowledge tables (`operations.toml`, `ecs.toml`).
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("rules/image-pull.toml", include_str!("../../rules/image-pull.toml")),
    ("rules/secrets.toml", include_str!("../../rules/secrets.toml")),
    ("rules/logging.toml", include_str!("../../rules/logging.toml")),
    ("rules/networking.toml", include_str!("../../rules/networking.toml")),
    ("rules/platform.toml", include_str!("../../rules/platform.toml")),
    ("rules/resources.toml", include_str!("../../rules/resources.toml")),
    ("rules/integrations.toml", include_str!("../../rules/integrations.toml")),
    ("rules/app-sdk.toml", include_str!("../../rules/app-sdk.toml")),
    ("rules/app.toml", include_str!("../../rules/app.toml")),
    (
        "rules/instance-role.toml",
        include_str!("../../rules/instance-role.toml"),
    ),
    ("rules/placement.toml", include_str!("../../rules/placement.toml")),
    (
        "rules/container-exit.toml",
        include_str!("../../rules/container-exit.toml"),
    ),
    (
        "rules/unnamed-denials.toml",
        include_str!("../../rules/unnamed-denials.toml"),
    ),
    ("rules/floor.toml", include_str!("../../rules/floor.toml")),
    ("rules/operations.toml", include_str!("../../rules/operations.toml")),
    ("rules/ecs.toml", include_str!("../../rules/ecs.toml")),
];

/// What went wrong in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    /// The file.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The rule id, when the error is inside a rule.
    pub rule_id: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(id) = &self.rule_id {
            write!(f, ": rule `{id}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All errors found while loading rules (validation does not stop at the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleFileError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "\n  ")?;
            }
            write!(f, "{e}")?;
        }
        if n > 1 {
            write!(f, "\n  ({n} errors in rule files)")?;
        }
        Ok(())
    }
}

/// The largest rule file read (a rule file is code-sized, never megabytes).
pub const MAX_RULE_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A set of loaded, validated rules (not yet compiled).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub rules: Vec<Rule>,
    pub knowledge: Knowledge,
    /// Ids disabled by user files, with the file that disabled each.
    pub disabled: BTreeMap<String, String>,
}

impl Catalogue {
    /// Loads the built-in rules and, in order, every user path (file or folder of `*.toml`).
    pub fn load(include_builtin: bool, user_paths: &[PathBuf]) -> Result<Catalogue, RuleErrors> {
        let mut errors = Vec::new();
        let mut cat = Catalogue::default();
        if include_builtin {
            for (path, text) in BUILTIN_FILES {
                cat.add_builtin(path, text, &mut errors);
            }
        }
        for p in user_paths {
            for file in expand_path(p, &mut errors) {
                match read_rule_file(&file) {
                    Ok(text) => cat.add_text(&file.display().to_string(), &text, false, &mut errors),
                    Err(e) => errors.push(e),
                }
            }
        }
        // Disabling applies to every file, whatever the order they were given in.
        let disabled = cat.disabled.clone();
        for (id, path) in &disabled {
            if !cat.rules.iter().any(|r| &r.id == id) {
                errors.push(RuleFileError {
                    path: path.clone(),
                    line: None,
                    rule_id: Some(id.clone()),
                    message: "`disable` names a rule id that does not exist".into(),
                });
            }
        }
        cat.rules.retain(|r| !disabled.contains_key(&r.id));
        if errors.is_empty() {
            Ok(cat)
        } else {
            Err(RuleErrors(errors))
        }
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Compiles every pattern now, rules' and tables', and names each that does not compile.
    /// Built-in patterns are only parsed at load and compiled on first use; the test suite calls
    /// this so that none can fail to compile then.
    pub fn uncompilable(&self) -> Vec<String> {
        let mut out: Vec<String> = (self.rules.iter())
            .filter(|r| r.regex().is_none())
            .map(|r| format!("rule `{}` ({}:{})", r.id, r.origin.path, r.origin.line))
            .collect();
        out.extend(
            self.table_patterns()
                .filter(|re| re.get().is_none())
                .map(|re| format!("table pattern `{}`", re.as_str())),
        );
        out
    }

    /// The knowledge tables' patterns (scopes, checks, operation and service forms).
    pub fn table_patterns(&self) -> impl Iterator<Item = &LazyRegex> {
        let k = &self.knowledge;
        (k.scopes.iter().map(|s| &s.pattern))
            .chain(k.checks.iter().flat_map(|c| [&c.applies, &c.expect]))
            .chain(k.operation_forms.iter().map(|f| &f.pattern))
            .chain(k.operation_forms.iter().filter_map(|f| f.service_from.as_ref()))
            .chain(&k.service_forms)
    }
}

fn read_rule_file(path: &Path) -> Result<String, RuleFileError> {
    let expect = Expect {
        what: "a rule file (TOML)",
        max_bytes: MAX_RULE_FILE_BYTES,
        lossy: false,
        non_empty: false,
    };
    read_text(Input::File(path), expect).map_err(|e| RuleFileError {
        path: e.name,
        line: None,
        rule_id: None,
        message: e.reason,
    })
}

fn expand_path(p: &Path, errors: &mut Vec<RuleFileError>) -> Vec<PathBuf> {
    if p.is_dir() {
        match std::fs::read_dir(p) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.extension().is_some_and(|x| x == "toml") && f.is_file())
                    .collect();
                files.sort();
                files
            }
            Err(e) => {
                errors.push(RuleFileError {
                    path: p.display().to_string(),
                    line: None,
                    rule_id: None,
                    message: format!("cannot read rule folder: {e}"),
                });
                Vec::new()
            }
        }
    } else {
        vec![p.to_path_buf()]
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `svc:Action` (wildcards allowed).
pub fn is_action(s: &str) -> bool {
    let mut parts = s.splitn(2, ':');
    let (svc, act) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    !svc.is_empty()
        && svc
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !act.is_empty()
        && act.chars().all(|c| c.is_ascii_alphanumeric() || c == '*')
}

/// Regex limits for rule patterns: a pathological user rule is rejected, not allowed to hang.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The lazy DFA's cache budget per regex.
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

/// Compiles one rule pattern the way the engine does (case-insensitive, size-limited).
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    build_regex(pattern, true)
}

/// Compiles a pattern within the size limits every pattern of the program obeys.
fn build_regex(pattern: &str, case_insensitive: bool) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
}

/// A pattern compiled on first use, and only run on texts holding one of the literals every
/// match needs ([`literals`]): the rule files' table patterns (`operation_form`,
/// `resource_scope` ...) and the extractors' own. A text none of them can match never compiles
/// them. Validation compiles a user file's patterns at once, so errors still come at load;
/// built-in ones are compiled by the test suite.
#[derive(Debug, Clone)]
pub struct LazyRegex {
    pattern: std::borrow::Cow<'static, str>,
    case_insensitive: bool,
    compiled: std::sync::OnceLock<Option<regex::Regex>>,
    required: std::sync::OnceLock<Option<Vec<String>>>,
}

impl LazyRegex {
    /// A rule-file pattern (case-insensitive, size-limited as [`compile_pattern`] compiles).
    pub fn new(pattern: impl Into<String>) -> LazyRegex {
        LazyRegex {
            pattern: std::borrow::Cow::Owned(pattern.into()),
            case_insensitive: true,
            compiled: std::sync::OnceLock::new(),
            required: std::sync::OnceLock::new(),
        }
    }

    /// A pattern of the program's own, for a `static`.
    pub const fn constant(pattern: &'static str, case_insensitive: bool) -> LazyRegex {
        LazyRegex {
            pattern: std::borrow::Cow::Borrowed(pattern),
            case_insensitive,
            compiled: std::sync::OnceLock::new(),
            required: std::sync::OnceLock::new(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The compiled regex; `None` only for a pattern past the size limits, which validation
    /// (user files) and the test suite (built-ins) rule out.
    pub fn get(&self) -> Option<&regex::Regex> {
        self.compiled
            .get_or_init(|| build_regex(&self.pattern, self.case_insensitive).ok())
            .as_ref()
    }

    /// The compiled regex, when `text` may match it (holds one of its literals); run it on
    /// `text` only.
    pub fn for_text(&self, text: &str) -> Option<&regex::Regex> {
        let required = self.required.get_or_init(|| match builtin::pattern(&self.pattern) {
            Some(p) => p.literals.map(|l| l.iter().map(|s| s.to_string()).collect()),
            None => literals::parse(&self.pattern)
                .ok()
                .and_then(|hir| literals::required_literals(&hir)),
        });
        match required {
            Some(lits) if !literals::holds_any(text, lits) => None,
            _ => self.get(),
        }
    }

    /// The first match's groups in `text`.
    pub fn captures<'t>(&self, text: &'t str) -> Option<regex::Captures<'t>> {
        self.for_text(text)?.captures(text)
    }

    /// Whether `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.for_text(text).is_some_and(|re| re.is_match(text))
    }
}

impl From<regex::Regex> for LazyRegex {
    fn from(re: regex::Regex) -> LazyRegex {
        LazyRegex {
            pattern: std::borrow::Cow::Owned(re.as_str().to_string()),
            case_insensitive: true,
            compiled: std::sync::OnceLock::from(Some(re)),
            required: std::sync::OnceLock::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_user(text: &str) -> Result<Catalogue, RuleErrors> {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("mine.toml");
        std::fs::write(&p, text).expect("write");
        Catalogue::load(false, &[p])
    }

    const GOOD: &str = r#"
[[rule]]
id = "my-denial"
title = "t"
look_in = ["logs"]
pattern = 'denied (?P<thing>\w+)'
culprit = "task-role"
category = "iam"
fix = "grant {thing} on {resource}"
explain = "x"
docs = ["https://example.com"]
[rule.examples]
match = ["denied foo"]
no_match = ["allowed"]
"#;

    #[test]
    fn a_good_user_rule_loads() {
        let cat = load_user(GOOD).expect("loads");
        assert_eq!(cat.rules[0].id, "my-denial");
        assert_eq!(cat.rules[0].priority, 50);
    }

    #[test]
    fn a_bad_regex_names_file_line_and_rule() {
        let text = GOOD.replace(r"denied (?P<thing>\w+)", "denied (");
        let err = load_user(&text).expect_err("bad regex");
        let s = err.to_string();
        assert!(s.contains("mine.toml:6: rule `my-denial`"), "{s}");
        assert!(s.contains("not a valid regex"), "{s}");
    }

    #[test]
    fn an_unknown_field_is_an_error_with_a_line() {
        let text = GOOD.replace("title = \"t\"", "title = \"t\"\nseverity = \"high\"");
        let s = load_user(&text).expect_err("unknown field").to_string();
        assert!(
            s.contains("mine.toml:5") && s.contains("unknown field `severity`"),
            "{s}"
        );
    }

    #[test]
    fn an_unknown_placeholder_is_an_error() {
        let s = load_user(&GOOD.replace("{thing}", "{nope}"))
            .expect_err("placeholder")
            .to_string();
        assert!(s.contains("{nope}"), "{s}");
    }

    #[test]
    fn a_title_that_describes_a_pattern_is_rejected() {
        for title in [
            "call denied (when calling the X operation ...)",
            "Amazon.<Service>Exception",
            "cut…",
        ] {
            let s = load_user(&GOOD.replace("title = \"t\"", &format!("title = \"{title}\"")))
                .expect_err("pattern title")
                .to_string();
            assert!(
                s.contains("mine.toml:3: rule `my-denial`: `title` reads like a pattern"),
                "{s}"
            );
        }
    }

    #[test]
    fn a_culprit_that_contradicts_the_category_is_rejected() {
        let s = load_user(&GOOD.replace("category = \"iam\"", "category = \"network\""))
            .expect_err("network rule blaming the task role")
            .to_string();
        assert!(s.contains("a `network` rule cannot blame a role"), "{s}");
        let s = load_user(&GOOD.replace("culprit = \"task-role\"", "culprit = \"not-iam\""))
            .expect_err("iam rule blaming nobody")
            .to_string();
        assert!(s.contains("an `iam` rule must name the role"), "{s}");
    }

    #[test]
    fn ids_named_after_the_fix_are_rejected() {
        let s = load_user(&GOOD.replace("my-denial", "add-permission"))
            .expect_err("id")
            .to_string();
        assert!(s.contains("not the fix"), "{s}");
    }

    #[test]
    fn missing_examples_are_rejected() {
        let s = load_user(&GOOD.replace("no_match = [\"allowed\"]", ""))
            .expect_err("no_match")
            .to_string();
        assert!(s.contains("no_match"), "{s}");
    }

    #[test]
    fn a_pathological_regex_is_rejected_by_size_limit() {
        let s = load_user(&GOOD.replace(r"denied (?P<thing>\w+)", r"(?P<thing>\w{1000}){1000}"))
            .expect_err("too big")
            .to_string();
        assert!(s.contains("not a valid regex"), "{s}");
    }

    #[test]
    fn disabling_a_builtin_removes_it_and_unknown_ids_are_errors() {
        let all = Catalogue::load(true, &[]).expect("builtins load");
        if let Some(first) = all.rules.first() {
            let cat = load_user_with_builtins(&format!("disable = [\"{}\"]\n", first.id));
            assert!(cat.get(&first.id).is_none());
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("d.toml");
        std::fs::write(&p, "disable = [\"no-such-rule\"]\n").expect("write");
        let s = Catalogue::load(true, &[p]).expect_err("unknown id").to_string();
        assert!(s.contains("no-such-rule"), "{s}");
    }

    fn load_user_with_builtins(text: &str) -> Catalogue {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("d.toml");
        std::fs::write(&p, text).expect("write");
        Catalogue::load(true, &[p]).expect("loads")
    }
}
