//! A rule file as written (the TOML schema) and its validation: every error is collected with its
//! file, line and rule id (cargo-deny), so one run shows everything that is wrong.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::knowledge::{
    ActionFacts, OperationCase, OperationForm, PhaseWeights, ResourceCheck, ResourceScope, ResourceSource, Roles,
};
use super::literals;
use super::model::{Category, Examples, Origin, PolicyLayer, Rule, RuleCulprit, RulePhase, When};
use super::placeholders::{placeholders, Placeholder};
use super::{compile_pattern, is_action, Catalogue, LazyRegex, RuleFileError};
use crate::evidence::Field;

/// One rule as written in a file (before validation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    id: toml::Spanned<String>,
    title: String,
    look_in: Vec<Field>,
    pattern: toml::Spanned<String>,
    culprit: RuleCulprit,
    category: Category,
    #[serde(default)]
    phase: RulePhase,
    #[serde(default)]
    priority: Option<u8>,
    #[serde(default)]
    generic: bool,
    #[serde(default)]
    when: When,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    policy: Option<PolicyLayer>,
    fix: String,
    explain: String,
    #[serde(default)]
    docs: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    examples: Examples,
}

/// A `[[resource_scope]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    #[serde(rename = "match")]
    pattern: toml::Spanned<String>,
    scope: String,
    note: String,
}

/// A `[[resource_check]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    applies: toml::Spanned<String>,
    expect: toml::Spanned<String>,
    note: String,
}

/// A `[[operation_form]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperationForm {
    pattern: toml::Spanned<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    service_from: Option<toml::Spanned<String>>,
    #[serde(default)]
    case: OperationCase,
    #[serde(default)]
    verbs: BTreeMap<String, String>,
}

/// A `[[service_form]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceForm {
    pattern: toml::Spanned<String>,
}

/// A rule file: rules, built-ins to disable, and the knowledge tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default)]
    services: BTreeMap<String, String>,
    #[serde(default)]
    operations: BTreeMap<String, String>,
    #[serde(default)]
    roles: Option<Roles>,
    #[serde(default)]
    resource_sources: BTreeMap<String, ResourceSource>,
    #[serde(default)]
    action_facts: BTreeMap<String, ActionFacts>,
    #[serde(default)]
    resource_policy_layers: BTreeMap<String, PolicyLayer>,
    #[serde(default)]
    resource_scope: Vec<RawScope>,
    #[serde(default)]
    resource_check: Vec<RawCheck>,
    #[serde(default)]
    phase: Option<PhaseWeights>,
    #[serde(default)]
    operation_form: Vec<RawOperationForm>,
    #[serde(default)]
    service_form: Vec<RawServiceForm>,
}

/// Line numbers of byte offsets in one file: its line starts, found once (a rule file is
/// hundreds of kilobytes, and every rule asks for two lines).
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        LineIndex(text.match_indices('\n').map(|(i, _)| i).collect())
    }

    /// The 1-based line of a byte offset (as [`super::line_of`] counts it).
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

impl Catalogue {
    /// Adds a built-in file: from the tree build.rs made of it when there is one (no TOML to
    /// parse), else from its text.
    pub(super) fn add_builtin(&mut self, path: &str, text: &str, errors: &mut Vec<RuleFileError>) {
        match super::builtin::file::<RawFile>(path) {
            Some(raw) => self.add_raw(path, text, raw, true, errors),
            None => self.add_text(path, text, true, errors),
        }
    }

    /// Parses, validates and adds one file's rules and tables.
    pub(super) fn add_text(&mut self, path: &str, text: &str, builtin: bool, errors: &mut Vec<RuleFileError>) {
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map(|s| LineIndex::new(text).line(s.start));
                errors.push(RuleFileError {
                    path: path.into(),
                    line,
                    rule_id: None,
                    message: format!("not a valid rule file: {}", e.message()),
                });
                return;
            }
        };
        self.add_raw(path, text, raw, builtin, errors);
    }

    /// Validates and adds one parsed file (`text` is its source, for line numbers).
    fn add_raw(&mut self, path: &str, text: &str, raw: RawFile, builtin: bool, errors: &mut Vec<RuleFileError>) {
        let lines = LineIndex::new(text);
        let file_err = |line: Option<usize>, message: String| RuleFileError {
            path: path.into(),
            line,
            rule_id: None,
            message,
        };
        self.disabled
            .extend(raw.disable.into_iter().map(|id| (id, path.to_string())));
        let k = &mut self.knowledge;
        for (name, prefix) in raw.services {
            k.services.insert(name.to_ascii_lowercase(), prefix);
        }
        for (op, action) in raw.operations {
            if !is_action(&action) {
                errors.push(file_err(
                    None,
                    format!("operation `{op}` maps to `{action}`, expected an IAM action like `s3:GetObject`"),
                ));
            }
            k.operations.insert(op, action);
        }
        if let Some(roles) = raw.roles {
            k.roles.execution_role_only.extend(roles.execution_role_only);
            if roles.task_trust_principal.is_some() {
                k.roles.task_trust_principal = roles.task_trust_principal;
            }
            if roles.trust_action.is_some() {
                k.roles.trust_action = roles.trust_action;
            }
            for (list, actions, like) in [
                ("caller_actions", &roles.caller_actions, "ecs:RunTask"),
                (
                    "agent_startup_actions",
                    &roles.agent_startup_actions,
                    "ecr:BatchGetImage",
                ),
            ] {
                for a in actions.iter().filter(|a| !is_action(a)) {
                    errors.push(file_err(
                        None,
                        format!("`roles.{list}` entry `{a}` is not an IAM action like `{like}`"),
                    ));
                }
            }
            k.roles.caller_actions.extend(roles.caller_actions);
            k.roles.agent_startup_actions.extend(roles.agent_startup_actions);
        }
        k.resource_sources.extend(raw.resource_sources);
        for (action, facts) in raw.action_facts {
            if !is_action(&action) {
                errors.push(file_err(
                    None,
                    format!("`action_facts` key `{action}` is not an IAM action like `s3:GetObject`"),
                ));
            }
            k.actions.insert(action.to_ascii_lowercase(), facts);
        }
        k.resource_policy_layers.extend(raw.resource_policy_layers);
        // A user file's patterns are compiled now (a pattern past the size limits is refused at
        // load); built-in ones are parsed (the same syntax errors) and compiled on first use.
        let regex = |p: &toml::Spanned<String>,
                     what: &str,
                     errors: &mut Vec<RuleFileError>|
         -> Option<(LazyRegex, Vec<String>)> {
            let checked = if builtin {
                pattern_groups(p.get_ref()).map(|groups| (LazyRegex::new(p.get_ref().as_str()), groups))
            } else {
                compile_pattern(p.get_ref())
                    .map(|re| {
                        let names = re.capture_names().flatten().map(String::from).collect();
                        (LazyRegex::from(re), names)
                    })
                    .map_err(|e| e.to_string())
            };
            match checked {
                Ok(ok) => Some(ok),
                Err(e) => {
                    errors.push(file_err(
                        Some(lines.line(p.span().start)),
                        format!("`{what}` is not a valid regex: {}", last_line(&e)),
                    ));
                    None
                }
            }
        };
        let mut forms = Vec::new();
        let mut scopes = Vec::new();
        for s in raw.resource_scope {
            if let Some((pattern, groups)) = regex(&s.pattern, "resource_scope.match", errors) {
                scopes.push((s.pattern.span().start, pattern, groups, s.scope, s.note));
            }
        }
        let mut checks = Vec::new();
        for c in raw.resource_check {
            if let (Some((applies, _)), Some((expect, _))) = (
                regex(&c.applies, "resource_check.applies", errors),
                regex(&c.expect, "resource_check.expect", errors),
            ) {
                checks.push(ResourceCheck {
                    applies,
                    expect,
                    note: c.note,
                });
            }
        }
        for f in raw.operation_form {
            let service_from = match &f.service_from {
                Some(p) => match regex(p, "operation_form.service_from", errors) {
                    Some((re, _)) => Some(re),
                    None => continue,
                },
                None => None,
            };
            let Some((pattern, groups)) = regex(&f.pattern, "operation_form.pattern", errors) else {
                continue;
            };
            if !groups.iter().any(|n| n == "operation" || n == "verb") {
                errors.push(file_err(
                    Some(lines.line(f.pattern.span().start)),
                    "`operation_form.pattern` needs a named group `operation` (or `verb` with `verbs`)".into(),
                ));
                continue;
            }
            forms.push(OperationForm {
                pattern,
                service: f.service,
                service_from,
                case: f.case,
                verbs: f.verbs.into_iter().map(|(k, v)| (k.to_ascii_uppercase(), v)).collect(),
            });
        }
        let mut service_forms = Vec::new();
        for f in &raw.service_form {
            let p = &f.pattern;
            if let Some((re, groups)) = regex(p, "service_form.pattern", errors) {
                if groups.iter().any(|n| n == "service") {
                    service_forms.push(re);
                } else {
                    errors.push(file_err(
                        Some(lines.line(p.span().start)),
                        "`service_form` needs a named group `service`".into(),
                    ));
                }
            }
        }
        self.knowledge.operation_forms.extend(forms);
        self.knowledge.service_forms.extend(service_forms);
        for (start, pattern, groups, scope, note) in scopes {
            let groups: BTreeSet<&str> = groups.iter().map(String::as_str).collect();
            let unknown: Vec<String> = placeholders(&scope)
                .into_iter()
                .filter(|p| !groups.contains(p.as_str()))
                .collect();
            if !unknown.is_empty() {
                errors.push(file_err(
                    Some(lines.line(start)),
                    format!(
                        "`resource_scope.scope` uses {{{}}}, which is not a named group of its `match`",
                        unknown.join("}, {")
                    ),
                ));
                continue;
            }
            self.knowledge.scopes.push(ResourceScope { pattern, scope, note });
        }
        self.knowledge.checks.extend(checks);
        if let Some(p) = raw.phase {
            let w = &mut self.knowledge.phase;
            w.stop_codes.extend(p.stop_codes);
            w.startup_words.extend(p.startup_words);
            // A file that sets a weight overrides it; 0 (unset) keeps the earlier value.
            for (dst, src) in [
                (&mut w.startup_rule, p.startup_rule),
                (&mut w.runtime_rule, p.runtime_rule),
                (&mut w.pull_unfinished, p.pull_unfinished),
                (&mut w.started, p.started),
                (&mut w.never_started, p.never_started),
                (&mut w.container_exited, p.container_exited),
            ] {
                if src > 0 {
                    *dst = src;
                }
            }
        }
        for r in raw.rules {
            let line = lines.line(r.id.span().start);
            let pattern_line = lines.line(r.pattern.span().start);
            let origin = Origin {
                path: path.into(),
                line,
                builtin,
            };
            if let Some(rule) = validate(r, origin, pattern_line, builtin, errors) {
                if let Some(prev) = self.rules.iter().find(|x| x.id == rule.id) {
                    errors.push(RuleFileError {
                        path: path.into(),
                        line: Some(line),
                        rule_id: Some(rule.id.clone()),
                        message: format!(
                            "duplicate rule id (first defined at {}:{}); to replace a built-in rule, `disable` it and use a new id",
                            prev.origin.path, prev.origin.line
                        ),
                    });
                    continue;
                }
                self.rules.push(rule);
            }
        }
    }
}

/// A pattern's named groups and required literals: as build.rs worked them out for the built-in
/// files, else from parsing it (whose errors are the regex crate's, word for word).
fn pattern_facts(pattern: &str) -> Result<(Vec<String>, Option<Vec<String>>), String> {
    if let Some(p) = super::builtin::pattern(pattern) {
        let groups = p.groups.iter().map(|g| g.to_string()).collect();
        let required = p.literals.map(|l| l.iter().map(|s| s.to_string()).collect());
        return Ok((groups, required));
    }
    let hir = literals::parse(pattern).map_err(|e| e.to_string())?;
    Ok((literals::capture_names(&hir), literals::required_literals(&hir)))
}

/// A pattern's named groups (see [`pattern_facts`]).
fn pattern_groups(pattern: &str) -> Result<Vec<String>, String> {
    pattern_facts(pattern).map(|(groups, _)| groups)
}

/// The last non-empty line of a regex error (the part that says what is wrong).
fn last_line(msg: &str) -> String {
    msg.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("invalid")
        .trim()
        .to_string()
}

/// A title with elisions or `<Placeholder>`s describes a message's shape, not the failure.
fn title_reads_like_a_pattern(title: &str) -> bool {
    let placeholder = title.split('<').skip(1).any(|rest| {
        rest.split_once('>')
            .is_some_and(|(inside, _)| !inside.is_empty() && inside.chars().all(|c| c.is_ascii_alphanumeric()))
    });
    title.contains("...") || title.contains('\u{2026}') || placeholder
}

fn is_valid_id(id: &str) -> bool {
    let ok_chars = id
        .split('-')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    ok_chars && id.starts_with(|c: char| c.is_ascii_lowercase())
}

const FORBIDDEN_ID_PREFIXES: &[&str] = &["use-", "add-", "fix-", "avoid-", "prefer-"];

fn validate(
    r: RawRule,
    origin: Origin,
    pattern_line: usize,
    builtin: bool,
    errors: &mut Vec<RuleFileError>,
) -> Option<Rule> {
    let id = r.id.get_ref().clone();
    let start = errors.len();
    let mut err = |line: usize, message: String| {
        errors.push(RuleFileError {
            path: origin.path.clone(),
            line: Some(line),
            rule_id: Some(id.clone()),
            message,
        })
    };
    if !is_valid_id(&id) {
        err(
            origin.line,
            "id must be kebab-case (`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)".into(),
        );
    }
    if let Some(p) = FORBIDDEN_ID_PREFIXES.iter().find(|p| id.starts_with(**p)) {
        err(
            origin.line,
            format!("id must name the failure, not the fix (it starts with `{p}`)"),
        );
    }
    if r.title.trim().is_empty() {
        err(origin.line, "`title` is empty".into());
    }
    if title_reads_like_a_pattern(&r.title) {
        err(
            origin.line,
            "`title` reads like a pattern (`...`, `<Service>`): it is printed in the verdict's headline, so describe the failure in words".into(),
        );
    }
    if r.look_in.is_empty() {
        err(origin.line, "`look_in` is empty: name at least one field".into());
    }
    // A user's pattern is compiled now, so that one too large is refused at load; a built-in one
    // is only parsed (the same syntax errors), compiled on first use: the test suite compiles
    // every built-in pattern, and start-up does not pay for the hundreds a text never needs.
    let compiled = if builtin {
        Ok(None)
    } else {
        compile_pattern(r.pattern.get_ref())
            .map(Some)
            .map_err(|e| e.to_string())
    };
    let parsed = compiled.and_then(|re| pattern_facts(r.pattern.get_ref()).map(|facts| (re, facts)));
    let parsed = match parsed {
        Ok(p) => Some(p),
        Err(e) => {
            err(
                pattern_line,
                format!("`pattern` is not a valid regex: {}", last_line(&e)),
            );
            None
        }
    };
    // A non-IAM failure never blames a role, and an IAM one always names who or defers to the phase.
    match (r.category, r.culprit) {
        (Category::Iam, RuleCulprit::NotIam) => err(
            origin.line,
            "an `iam` rule must name the role (`execution-role`, `task-role`, `instance-role`) or use `by-phase`, not `not-iam`".into(),
        ),
        (c, RuleCulprit::ExecutionRole | RuleCulprit::TaskRole | RuleCulprit::InstanceRole) if c != Category::Iam => err(
            origin.line,
            format!(
                "a `{}` rule cannot blame a role: use `culprit = \"not-iam\"` (or `by-phase`), or `category = \"iam\"`",
                c.name()
            ),
        ),
        _ => {}
    }
    for p in &r.permissions {
        if !is_action(p) {
            err(
                origin.line,
                format!("permission `{p}` is not an IAM action like `s3:GetObject`"),
            );
        }
    }
    if r.priority.is_some_and(|p| p > 100) {
        err(origin.line, "`priority` must be 0-100".into());
    }
    if r.fix.trim().is_empty() {
        err(origin.line, "`fix` is empty".into());
    }
    if let Some((_, (groups, _))) = &parsed {
        let names: BTreeSet<&str> = groups.iter().map(String::as_str).collect();
        for ph in placeholders(&r.fix) {
            if !names.contains(ph.as_str()) && Placeholder::parse(&ph).is_none() {
                err(
                    origin.line,
                    format!(
                        "`fix` uses {{{ph}}}, which is neither a named group of the pattern nor a standard placeholder"
                    ),
                );
            }
        }
    }
    if r.examples.matches.is_empty() {
        err(origin.line, "needs at least one `examples.match`".into());
    }
    if r.examples.no_match.is_empty() {
        err(
            origin.line,
            "needs at least one `examples.no_match` (a look-alike it must not match)".into(),
        );
    }
    if r.docs.is_empty() {
        err(origin.line, "needs at least one `docs` link".into());
    }
    if builtin {
        if r.explain.trim().is_empty() {
            err(origin.line, "`explain` is empty".into());
        }
        if r.sources.is_empty() {
            err(
                origin.line,
                "built-in rules need `sources`: where the examples were quoted from".into(),
            );
        }
    }
    for url in r.docs.iter().chain(&r.sources) {
        if !url.starts_with("https://") {
            err(origin.line, format!("`{url}` is not an https:// URL"));
        }
    }
    if errors.len() > start {
        return None;
    }
    let (regex, (_, required)) = parsed?;
    let compiled = std::sync::OnceLock::new();
    if let Some(re) = regex {
        let _ = compiled.set(Some(re));
    }
    Some(Rule {
        id,
        title: r.title,
        look_in: r.look_in,
        pattern: r.pattern.into_inner(),
        culprit: r.culprit,
        category: r.category,
        phase: r.phase,
        priority: r.priority.unwrap_or(50),
        generic: r.generic,
        when: r.when,
        permissions: r.permissions,
        policy: r.policy,
        fix: r.fix,
        explain: r.explain,
        docs: r.docs,
        sources: r.sources,
        examples: r.examples,
        origin,
        required,
        compiled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_index_counts_lines_as_line_of_does() {
        let text = "a\nbb\n\nccc\n";
        let idx = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(idx.line(offset), super::super::line_of(text, offset), "offset {offset}");
        }
    }
}
