//! Rule files: the TOML schema, loading (built-in rules compiled into the binary plus user files),
//! and validation that collects every error with its file, line and rule id before giving up.
//! The compiled matcher lives in [`engine`], the example runner shared by `rules test` and the test
//! suite in [`selftest`].

pub mod engine;
pub mod selftest;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::evidence::Field;

/// The built-in rule files, compiled into the binary. One file per failure family.
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
    ("rules/operations.toml", include_str!("../../rules/operations.toml")),
];

/// Who a rule says must act. `ByPhase` leaves it to the engine (named principal, then phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleCulprit {
    ExecutionRole,
    TaskRole,
    InstanceRole,
    NotIam,
    ByPhase,
}

/// The principal that needs the fix, in the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Culprit {
    ExecutionRole,
    TaskRole,
    InstanceRole,
    NotIam,
    Unknown,
}

impl Culprit {
    /// Kebab-case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Culprit::ExecutionRole => "execution-role",
            Culprit::TaskRole => "task-role",
            Culprit::InstanceRole => "instance-role",
            Culprit::NotIam => "not-iam",
            Culprit::Unknown => "unknown",
        }
    }

    /// A phrase for people ("the task execution role").
    pub fn describe(self) -> &'static str {
        match self {
            Culprit::ExecutionRole => "the task execution role",
            Culprit::TaskRole => "the task role",
            Culprit::InstanceRole => "the EC2 container instance role",
            Culprit::NotIam => "nobody in IAM",
            Culprit::Unknown => "an unknown principal",
        }
    }
}

impl RuleCulprit {
    /// Kebab-case name, as in rule files.
    pub fn name(self) -> &'static str {
        match self {
            RuleCulprit::ExecutionRole => "execution-role",
            RuleCulprit::TaskRole => "task-role",
            RuleCulprit::InstanceRole => "instance-role",
            RuleCulprit::NotIam => "not-iam",
            RuleCulprit::ByPhase => "by-phase",
        }
    }
}

/// The failure family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Iam,
    Network,
    Image,
    Config,
    App,
    Capacity,
    Platform,
    User,
    Unknown,
}

impl Category {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Category::Iam => "iam",
            Category::Network => "network",
            Category::Image => "image",
            Category::Config => "config",
            Category::App => "app",
            Category::Capacity => "capacity",
            Category::Platform => "platform",
            Category::User => "user",
            Category::Unknown => "unknown",
        }
    }
}

/// The lifecycle phase a rule's signature proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RulePhase {
    Startup,
    Runtime,
    #[default]
    Any,
}

/// The policy layer that denied a request, and so who must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyLayer {
    Identity,
    Resource,
    KmsKey,
    Scp,
    Rcp,
    PermissionsBoundary,
    Session,
    VpcEndpoint,
    Trust,
    PassRole,
}

impl PolicyLayer {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PolicyLayer::Identity => "identity",
            PolicyLayer::Resource => "resource",
            PolicyLayer::KmsKey => "kms-key",
            PolicyLayer::Scp => "scp",
            PolicyLayer::Rcp => "rcp",
            PolicyLayer::PermissionsBoundary => "permissions-boundary",
            PolicyLayer::Session => "session",
            PolicyLayer::VpcEndpoint => "vpc-endpoint",
            PolicyLayer::Trust => "trust",
            PolicyLayer::PassRole => "pass-role",
        }
    }

    /// Who must act when this layer denied.
    pub fn who_must_act(self) -> &'static str {
        match self {
            PolicyLayer::Identity => "the role's owner: add an Allow to the role's identity policy",
            PolicyLayer::Resource => {
                "the owner of the resource: its resource-based policy (bucket, repository, secret or queue policy) must allow the role; an Allow on the role alone will not help"
            }
            PolicyLayer::KmsKey => {
                "the KMS key's administrators: the key policy must allow the role (and the role needs kms:Decrypt)"
            }
            PolicyLayer::Scp => {
                "your AWS Organizations administrators: a service control policy denies it; adding an Allow to the role will not help"
            }
            PolicyLayer::Rcp => {
                "your AWS Organizations administrators: a resource control policy denies it; adding an Allow to the role will not help"
            }
            PolicyLayer::PermissionsBoundary => {
                "whoever owns the role's permissions boundary (often a platform team): the boundary must allow the action as well"
            }
            PolicyLayer::Session => {
                "the code that assumes the role with a session policy: the session policy must allow the action"
            }
            PolicyLayer::VpcEndpoint => {
                "the owner of the VPC endpoint: its endpoint policy must allow the request"
            }
            PolicyLayer::Trust => {
                "the role's owner: its trust policy must allow the principal to assume it (ecs-tasks.amazonaws.com for task and execution roles)"
            }
            PolicyLayer::PassRole => {
                "the deployer: the identity that calls RunTask / CreateService / UpdateService needs iam:PassRole on the role"
            }
        }
    }
}

/// Examples a rule carries: the self-test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
    #[serde(default)]
    pub no_match: Vec<String>,
    #[serde(default)]
    pub todo_match: Vec<String>,
}

/// One rule as written in a file (before validation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
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

/// A rule file: rules, built-ins to disable, and operation data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default)]
    services: BTreeMap<String, String>,
    #[serde(default)]
    operations: BTreeMap<String, String>,
}

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The file (for built-ins, its path in this repository).
    pub path: String,
    /// 1-based line of the rule's `id`.
    pub line: usize,
    /// Compiled into the binary.
    pub builtin: bool,
}

/// A validated rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub look_in: Vec<Field>,
    pub pattern: String,
    pub culprit: RuleCulprit,
    pub category: Category,
    pub phase: RulePhase,
    pub priority: u8,
    pub permissions: Vec<String>,
    pub policy: Option<PolicyLayer>,
    pub fix: String,
    pub explain: String,
    pub docs: Vec<String>,
    pub sources: Vec<String>,
    pub examples: Examples,
    #[serde(skip)]
    pub origin: Origin,
    /// The pattern as compiled during validation (case-insensitive, size-limited); the matcher
    /// reuses it instead of compiling every pattern a second time at start-up.
    #[serde(skip)]
    pub regex: regex::Regex,
}

/// SDK service names and operation names mapped to IAM actions (`rules/operations.toml`).
#[derive(Debug, Clone, Default)]
pub struct Operations {
    /// Lower-cased SDK service name or endpoint prefix -> IAM service prefix.
    pub services: BTreeMap<String, String>,
    /// Operation name -> IAM action.
    pub operations: BTreeMap<String, String>,
}

impl Operations {
    /// The IAM action for an operation, using the service when known.
    pub fn action_for(&self, service: Option<&str>, operation: &str) -> Option<String> {
        let prefix = service.and_then(|s| self.service_prefix(s));
        let known = self.operations.get(operation);
        match (prefix, known) {
            (Some(p), Some(a)) if a.split(':').next() == Some(p.as_str()) => Some(a.clone()),
            (Some(p), _) => Some(format!("{p}:{operation}")),
            (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        }
    }

    /// The IAM prefix of an SDK service name ("Secrets Manager" -> "secretsmanager").
    pub fn service_prefix(&self, service: &str) -> Option<String> {
        let key = service.trim().to_ascii_lowercase();
        if let Some(p) = self.services.get(&key) {
            return Some(p.clone());
        }
        let squashed: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let stripped = squashed
            .strip_prefix("amazon")
            .or_else(|| squashed.strip_prefix("aws"))
            .unwrap_or(&squashed);
        self.services
            .get(stripped)
            .or_else(|| self.services.get(&squashed))
            .cloned()
            // Most SDK service names squash to their IAM prefix ("S3", "DynamoDB", "Secrets Manager").
            .or_else(|| (!stripped.is_empty()).then(|| stripped.to_string()))
    }
}

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
    pub operations: Operations,
    /// Ids disabled by user files, with the file that disabled each.
    pub disabled: BTreeMap<String, String>,
}

/// The placeholders `fix` may use besides the pattern's own named groups.
pub const STANDARD_PLACEHOLDERS: &[&str] = &[
    "role_arn",
    "role_name",
    "resource",
    "action",
    "principal",
    "region",
    "account",
    "task_arn",
    "cluster",
    "log_group",
    "image",
    "operation",
    "service",
    "permissions",
    "secret",
];

impl Catalogue {
    /// Loads the built-in rules and, in order, every user path (file or folder of `*.toml`).
    pub fn load(include_builtin: bool, user_paths: &[PathBuf]) -> Result<Catalogue, RuleErrors> {
        let mut errors = Vec::new();
        let mut cat = Catalogue::default();
        if include_builtin {
            for (path, text) in BUILTIN_FILES {
                cat.add_text(path, text, true, &mut errors);
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

    fn add_text(&mut self, path: &str, text: &str, builtin: bool, errors: &mut Vec<RuleFileError>) {
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                errors.push(RuleFileError {
                    path: path.into(),
                    line,
                    rule_id: None,
                    message: format!("not a valid rule file: {}", e.message()),
                });
                return;
            }
        };
        self.disabled
            .extend(raw.disable.into_iter().map(|id| (id, path.to_string())));
        for (k, v) in raw.services {
            self.operations.services.insert(k.to_ascii_lowercase(), v);
        }
        for (k, v) in raw.operations {
            if !is_action(&v) {
                errors.push(RuleFileError {
                    path: path.into(),
                    line: None,
                    rule_id: None,
                    message: format!("operation `{k}` maps to `{v}`, expected an IAM action like `s3:GetObject`"),
                });
            }
            self.operations.operations.insert(k, v);
        }
        for r in raw.rules {
            let line = line_of(text, r.id.span().start);
            let pattern_line = line_of(text, r.pattern.span().start);
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

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

fn read_rule_file(path: &Path) -> Result<String, RuleFileError> {
    let err = |message: String| RuleFileError {
        path: path.display().to_string(),
        line: None,
        rule_id: None,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read rule file: {e}")))?;
    if meta.len() > MAX_RULE_FILE_BYTES {
        return Err(err(format!(
            "rule file is {} bytes, more than the {MAX_RULE_FILE_BYTES} allowed",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read rule file: {e}")))?;
    String::from_utf8(bytes).map_err(|_| err("rule file is not UTF-8 text".into()))
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

fn is_valid_id(id: &str) -> bool {
    let ok_chars = id
        .split('-')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    ok_chars && id.starts_with(|c: char| c.is_ascii_lowercase())
}

const FORBIDDEN_ID_PREFIXES: &[&str] = &["use-", "add-", "fix-", "avoid-", "prefer-"];

/// Regex limits for rule patterns: a pathological user rule is rejected, not allowed to hang.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The lazy DFA's cache budget per regex.
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

/// Compiles one rule pattern the way the engine does (case-insensitive, size-limited).
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
}

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
    if r.look_in.is_empty() {
        err(origin.line, "`look_in` is empty: name at least one field".into());
    }
    let compiled = match compile_pattern(r.pattern.get_ref()) {
        Ok(re) => Some(re),
        Err(e) => {
            let msg = e.to_string();
            let first = msg
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("invalid")
                .trim()
                .to_string();
            err(pattern_line, format!("`pattern` is not a valid regex: {first}"));
            None
        }
    };
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
    if let Some(re) = &compiled {
        let names: BTreeSet<&str> = re.capture_names().flatten().collect();
        for ph in placeholders(&r.fix) {
            if !names.contains(ph.as_str()) && !STANDARD_PLACEHOLDERS.contains(&ph.as_str()) {
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
    let regex = compiled?;
    Some(Rule {
        id,
        title: r.title,
        look_in: r.look_in,
        pattern: r.pattern.into_inner(),
        culprit: r.culprit,
        category: r.category,
        phase: r.phase,
        priority: r.priority.unwrap_or(50),
        permissions: r.permissions,
        policy: r.policy,
        fix: r.fix,
        explain: r.explain,
        docs: r.docs,
        sources: r.sources,
        examples: r.examples,
        origin,
        regex,
    })
}

/// The `{name}` placeholders of a fix text, in order (validation checks each one).
pub fn placeholders(fix: &str) -> Vec<String> {
    let mut names = Vec::new();
    expand_placeholders(fix, |name| {
        names.push(name.to_string());
        String::new()
    });
    names
}

/// Replaces every `{name}` (ASCII letters, digits, `_`) with `value(name)`. `{{` and `}}` are
/// literal braces, and any other brace is kept as written. The one scanner both validation and
/// the engine use, so what is checked is exactly what gets filled in.
pub fn expand_placeholders(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let (brace, after) = (&rest[i..i + 1], &rest[i + 1..]);
        if let Some(stripped) = after.strip_prefix(brace) {
            out.push_str(brace);
            rest = stripped;
            continue;
        }
        if brace == "{" {
            if let Some(j) = after.find('}') {
                let name = &after[..j];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push_str(&value(name));
                    rest = &after[j + 1..];
                    continue;
                }
            }
        }
        out.push_str(brace);
        rest = after;
    }
    out.push_str(rest);
    out
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

    #[test]
    fn placeholders_are_found_and_filled_by_one_scanner() {
        let t = "Allow {action} on `{resource}`; JSON {{\"a\": 1}}; not {a b}, but {{x}} and {x}";
        assert_eq!(placeholders(t), ["action", "resource", "x"]);
        let filled = expand_placeholders(t, |n| n.to_uppercase());
        assert_eq!(
            filled,
            "Allow ACTION on `RESOURCE`; JSON {\"a\": 1}; not {a b}, but {x} and X"
        );
    }

    #[test]
    fn operations_map_service_and_operation_to_an_action() {
        let mut ops = Operations::default();
        ops.services.insert("s3".into(), "s3".into());
        ops.services.insert("secretsmanager".into(), "secretsmanager".into());
        ops.operations.insert("ListObjectsV2".into(), "s3:ListBucket".into());
        assert_eq!(
            ops.action_for(Some("S3"), "ListObjectsV2").as_deref(),
            Some("s3:ListBucket")
        );
        assert_eq!(ops.action_for(Some("S3"), "PutObject").as_deref(), Some("s3:PutObject"));
        assert_eq!(
            ops.action_for(Some("Secrets Manager"), "GetSecretValue").as_deref(),
            Some("secretsmanager:GetSecretValue")
        );
        assert_eq!(ops.action_for(None, "ListObjectsV2").as_deref(), Some("s3:ListBucket"));
        assert_eq!(ops.action_for(None, "Frobnicate"), None);
        assert_eq!(
            ops.action_for(Some("DynamoDB"), "UpdateItem").as_deref(),
            Some("dynamodb:UpdateItem")
        );
    }
}
