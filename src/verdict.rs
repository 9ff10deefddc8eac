//! From evidence to a verdict: run the rules over every text, decide the task's phase (startup or
//! runtime) from its signals, resolve who is denied (the principal named in the message first, the
//! phase second), rank the findings deterministically, and build the fix. The result is the output
//! model that every renderer prints and `--format json` serializes as is.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::evidence::{role_name, Evidence, Field, Text};
use crate::extract::{self, Facts, Principal};
use crate::rules::engine::Matcher;
use crate::rules::{Category, Culprit, PolicyLayer, Rule, RuleCulprit, RulePhase};
use crate::sanitize::{self, RedactOptions};

/// The JSON contract's version.
pub const SCHEMA_VERSION: u32 = 1;

/// How much of one evidence text is kept for display (bytes).
pub const EVIDENCE_MAX_BYTES: usize = 600;

/// Which part of its life the task failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Startup,
    Runtime,
    Unknown,
}

impl Phase {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Startup => "startup",
            Phase::Runtime => "runtime",
            Phase::Unknown => "unknown",
        }
    }
}

/// The answer: who must act, on what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub culprit: Culprit,
    pub category: Category,
    pub role_arn: Option<String>,
    pub permissions: Vec<String>,
    pub resource: Option<String>,
    pub policy: Option<PolicyLayer>,
    pub summary: String,
    pub fix: String,
    /// The rule that decided the verdict.
    pub rule_id: Option<String>,
    /// That rule's title.
    pub title: Option<String>,
    /// Who must act, from the policy layer.
    pub who_must_act: Option<String>,
    /// A least-privilege statement to add (identity policy, or the resource/key policy).
    pub iam_policy: Option<serde_json::Value>,
    /// The same as a Terraform snippet.
    pub terraform: Option<String>,
    /// Other findings that point elsewhere, with why they ranked lower.
    pub also: Vec<String>,
}

/// One rule that matched one piece of evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub title: String,
    /// Where: `stopped-reason`, `container-reason:app`, `logs:app:42`, `exit-code:app`, `stop-code`.
    pub source: String,
    /// The text, sanitized, redacted and truncated.
    pub evidence: String,
    pub culprit: Culprit,
    pub category: Category,
    pub permissions: Vec<String>,
    /// The action the message says was denied, when it names one.
    pub denied_action: Option<String>,
    pub resource: Option<String>,
    pub policy: Option<PolicyLayer>,
    /// The denied principal named in the message.
    pub principal: Option<String>,
    /// The role ARN the finding points at.
    pub role_arn: Option<String>,
    /// How the culprit was decided.
    pub reason: String,
    /// How many texts this rule matched in this source (log lines repeat).
    pub count: usize,
    /// Log event time (ms since epoch), for log findings.
    pub timestamp: Option<i64>,
    #[serde(skip)]
    priority: u8,
    #[serde(skip)]
    rule_index: usize,
    #[serde(skip)]
    field: Field,
    #[serde(skip)]
    order: usize,
    #[serde(skip)]
    phase_agrees: bool,
    #[serde(skip)]
    fix: String,
}

/// The roles of the task definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Roles {
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
}

/// A container's end state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerState {
    pub name: String,
    pub last_status: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

/// The whole output model. `--format json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub version: u32,
    pub task_arn: Option<String>,
    pub launch_type: Option<String>,
    pub last_status: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub phase: Phase,
    /// The signals that decided the phase.
    pub phase_signals: Vec<String>,
    pub roles: Roles,
    pub containers: Vec<ContainerState>,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// What could not be read, caps applied, and other remarks.
    pub notes: Vec<String>,
}

impl Diagnosis {
    /// True when a verdict was reached (exit code 0), false when inconclusive (exit code 1).
    pub fn conclusive(&self) -> bool {
        self.verdict.culprit != Culprit::Unknown || self.verdict.category != Category::Unknown
    }
}

/// How output text is cleaned.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub redact: RedactOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            redact: RedactOptions {
                secrets: true,
                accounts: false,
            },
        }
    }
}

/// Untrusted text to display: control sequences stripped, secrets redacted, length capped.
pub fn clean(s: &str, opts: &Options) -> String {
    // Sanitize and redact before cutting, so a cut never leaves half a secret that no longer
    // matches its pattern. Input lines are already capped at ingestion (`Limits`).
    let safe = sanitize::terminal_safe(s);
    let redacted = sanitize::redact(&safe, opts.redact);
    let (t, truncated) = sanitize::truncate(&redacted, EVIDENCE_MAX_BYTES);
    let mut out = t.into_owned();
    if truncated {
        out.push_str(" [truncated]");
    }
    out
}

/// Text ecsdoctor composed from rule prose and names: escapes out, and account ids with
/// --redact-accounts, but no secret patterns (they would misread prose as `key: value`).
fn clean_composed(s: &str, opts: &Options) -> String {
    clean_lines(
        s,
        RedactOptions {
            secrets: false,
            accounts: opts.redact.accounts,
        },
    )
}

/// Each line made terminal-safe and redacted, line breaks kept (fixes and Terraform are multi-line).
fn clean_lines(s: &str, redact: RedactOptions) -> String {
    s.split('\n')
        .map(|l| sanitize::redact(&sanitize::terminal_safe(l), redact).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Decides the phase from the task's own fields and the startup/runtime rules that matched its
/// reasons. Returns the phase and the signals, each phrased for a person.
pub fn decide_phase(ev: &Evidence, reason_hits: &[(RulePhase, String)]) -> (Phase, Vec<String>) {
    let t = &ev.task;
    let (mut startup, mut runtime) = (0u32, 0u32);
    let mut signals = Vec::new();
    match t.stop_code.as_deref() {
        Some("TaskFailedToStart") => {
            startup += 3;
            signals.push("stopCode=TaskFailedToStart".to_string());
        }
        Some("EssentialContainerExited") => {
            runtime += 2;
            signals.push("stopCode=EssentialContainerExited".to_string());
        }
        _ => {}
    }
    for (phase, what) in reason_hits {
        match phase {
            RulePhase::Startup => {
                startup += 3;
                signals.push(format!("{what} is a startup error"));
            }
            RulePhase::Runtime => {
                runtime += 2;
                signals.push(format!("{what} happens at runtime"));
            }
            RulePhase::Any => {}
        }
    }
    if t.pull_started_at.is_some() && t.pull_stopped_at.is_none() && t.started_at.is_none() {
        startup += 2;
        signals.push("the image pull never finished (pullStartedAt without pullStoppedAt)".to_string());
    }
    match (t.started_at, t.stopped_at) {
        (Some(s), Some(e)) => {
            runtime += 3;
            signals.push(format!(
                "task started and ran {} before it stopped",
                human_duration(e.0 - s.0)
            ));
        }
        (Some(_), None) => {
            runtime += 3;
            signals.push("task has startedAt".to_string());
        }
        (None, _) if t.created_at.is_some() => {
            startup += 1;
            signals.push("task never started (no startedAt)".to_string());
        }
        _ => {}
    }
    let exited: Vec<String> = t
        .containers
        .iter()
        .filter_map(|c| c.exit_code.map(|code| format!("{} exitCode={code}", c.name)))
        .collect();
    if !exited.is_empty() {
        runtime += 2;
        signals.push(format!("a container ran and exited ({})", exited.join(", ")));
    }
    let phase = if startup > runtime {
        Phase::Startup
    } else if runtime > startup {
        Phase::Runtime
    } else {
        Phase::Unknown
    };
    (phase, signals)
}

fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Diagnoses a task.
pub fn diagnose(ev: &Evidence, matcher: &Matcher, opts: &Options) -> Diagnosis {
    let texts = ev.texts();
    let mut hits: Vec<(usize, crate::rules::engine::Hit)> = Vec::new();
    for (ti, t) in texts.iter().enumerate() {
        for h in matcher.scan(t.field, &t.text) {
            hits.push((ti, h));
        }
    }
    diagnose_hits(ev, matcher, &texts, hits, opts, false)
}

/// Diagnoses a pasted message with no task around it (`ecsdoctor explain`): every line is tried
/// against every rule, whatever field the rule looks in.
pub fn explain(text: &str, matcher: &Matcher, opts: &Options) -> Diagnosis {
    let ev = Evidence {
        logs: vec![crate::evidence::ContainerLogs {
            container: "pasted".into(),
            lines: text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| crate::evidence::LogLine {
                    timestamp: None,
                    message: l.to_string(),
                })
                .collect(),
        }],
        ..Evidence::default()
    };
    let mut texts: Vec<Text<'_>> = ev.texts();
    // The whole paste as one text too, for messages broken over lines.
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if texts.len() > 1 {
        texts.push(Text {
            field: Field::Logs,
            container: Some("pasted"),
            line: None,
            timestamp: None,
            text: joined.into(),
        });
    }
    let mut hits = Vec::new();
    for (ti, t) in texts.iter().enumerate() {
        for (ri, _) in matcher.rules().iter().enumerate() {
            if let Some(h) = matcher.captures_of(ri, &t.text) {
                hits.push((ti, h));
            }
        }
    }
    diagnose_hits(&ev, matcher, &texts, hits, opts, true)
}

fn diagnose_hits(
    ev: &Evidence,
    matcher: &Matcher,
    texts: &[Text<'_>],
    hits: Vec<(usize, crate::rules::engine::Hit)>,
    opts: &Options,
    pasted: bool,
) -> Diagnosis {
    let rules = matcher.rules();
    // Phase: task fields plus the phase of rules that matched the task's own reasons (or, for a
    // paste, any rule), strongest first.
    let mut reason_hits = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (ti, h) in &hits {
        let t = &texts[*ti];
        let r = &rules[h.rule];
        let counts = pasted || matches!(t.field, Field::StoppedReason | Field::ContainerReason);
        if counts && r.phase != RulePhase::Any && seen.insert((r.phase as u8, t.field)) {
            let what = if pasted {
                r.id.to_string()
            } else {
                format!("{} {}", t.field.name(), r.id)
            };
            reason_hits.push((r.phase, what));
        }
    }
    let (phase, phase_signals) = if pasted {
        // A paste has no task fields: the most specific rule that proves a phase decides it.
        let best = hits
            .iter()
            .map(|(_, h)| &rules[h.rule])
            .filter(|r| r.phase != RulePhase::Any)
            .max_by_key(|r| r.priority);
        match best {
            Some(r) => (
                if r.phase == RulePhase::Startup {
                    Phase::Startup
                } else {
                    Phase::Runtime
                },
                vec![format!("{} is a {} signature", r.id, phase_word(r.phase))],
            ),
            None => (Phase::Unknown, Vec::new()),
        }
    } else {
        decide_phase(ev, &reason_hits)
    };

    // One finding per (rule, source): log lines repeat, the first occurrence is quoted.
    let mut findings: Vec<Finding> = Vec::new();
    let mut index: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for (order, (ti, h)) in hits.iter().enumerate() {
        let t = &texts[*ti];
        let rule = &rules[h.rule];
        let source = source_of(t, pasted);
        let key_source = match t.field {
            Field::Logs => format!("logs:{}", t.container.unwrap_or("")),
            _ => source.clone(),
        };
        if let Some(&i) = index.get(&(h.rule, key_source.clone())) {
            findings[i].count += 1;
            continue;
        }
        let facts = gather_facts(texts, *ti, h, matcher);
        let f = build_finding(ev, rule, h, t, &facts, phase, source, order, opts);
        index.insert((h.rule, key_source), findings.len());
        findings.push(f);
    }
    // A paste's joined text duplicates its lines: keep the joined finding only where no line matched.
    if pasted {
        let mut by_rule: BTreeMap<usize, usize> = BTreeMap::new();
        findings.retain(|f| {
            let n = by_rule.entry(f.rule_index).or_insert(0);
            *n += 1;
            *n == 1
        });
    }
    findings.sort_by(|a, b| {
        b.phase_agrees
            .cmp(&a.phase_agrees)
            .then(b.priority.cmp(&a.priority))
            .then(a.field.cmp(&b.field))
            .then((b.category == Category::Iam).cmp(&(a.category == Category::Iam)))
            .then(a.rule_index.cmp(&b.rule_index))
            .then(a.order.cmp(&b.order))
    });

    let verdict = match findings.first() {
        Some(top) => verdict_from(ev, top, &findings, &rules[top.rule_index], phase),
        None => Verdict {
            culprit: Culprit::Unknown,
            category: Category::Unknown,
            role_arn: None,
            permissions: vec![],
            resource: None,
            policy: None,
            summary: "No known signature matched this task's stop reason, container reasons or logs.".into(),
            fix: "Read the evidence below; if it shows a failure ecsdoctor should know, add a rule (`ecsdoctor rules show` for the format) or report it.".into(),
            rule_id: None,
            title: None,
            who_must_act: None,
            iam_policy: None,
            terraform: None,
            also: vec![],
        },
    };

    let mut notes = ev.notes.clone();
    if let Some(s) = ev.task.last_status.as_deref() {
        if !s.eq_ignore_ascii_case("STOPPED") && !pasted {
            notes.insert(
                0,
                format!("the task is {s}, not STOPPED: this reads what it has reported so far"),
            );
        }
    }
    let td = ev.task_definition.as_ref();
    let mut d = Diagnosis {
        version: SCHEMA_VERSION,
        task_arn: ev.task.task_arn.clone(),
        launch_type: ev.launch_type(),
        last_status: ev.task.last_status.clone(),
        stop_code: ev.task.stop_code.clone(),
        stopped_reason: ev.task.stopped_reason.as_deref().map(|s| clean(s, opts)),
        phase,
        phase_signals: phase_signals.iter().map(|s| clean_composed(s, opts)).collect(),
        roles: Roles {
            execution_role_arn: td.and_then(|t| t.execution_role_arn.clone()),
            task_role_arn: td.and_then(|t| t.task_role_arn.clone()),
        },
        containers: ev
            .task
            .containers
            .iter()
            .map(|c| ContainerState {
                name: clean(&c.name, opts),
                last_status: c.last_status.clone(),
                exit_code: c.exit_code,
                reason: c.reason.as_deref().map(|r| clean(r, opts)),
            })
            .collect(),
        verdict,
        findings,
        notes: notes.iter().map(|n| clean(n, opts)).collect(),
    };
    scrub(&mut d, opts);
    d
}

fn phase_word(p: RulePhase) -> &'static str {
    match p {
        RulePhase::Startup => "startup",
        RulePhase::Runtime => "runtime",
        RulePhase::Any => "any-phase",
    }
}

/// The last line of defence: every string in the output model, whatever its origin (task
/// metadata, container names, file names), is made terminal-safe and redacted. Both steps are
/// idempotent, so strings cleaned earlier are unchanged. Text ecsdoctor composes (summary, fix,
/// reasons, signals) from rule prose and values that were cleaned when they were put in only
/// loses escapes and, with --redact-accounts, account ids: secret patterns would misread prose
/// such as "no credentials: boto3 ..." as a `credentials: value` pair.
fn scrub(d: &mut Diagnosis, opts: &Options) {
    let full = |x: &mut String| *x = clean_lines(x, opts.redact);
    let template = |x: &mut String| *x = clean_composed(x, opts);
    let opt = |x: &mut Option<String>| {
        if let Some(v) = x {
            full(v);
        }
    };
    fn walk(v: &mut serde_json::Value, f: &dyn Fn(&mut String)) {
        match v {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| walk(x, f)),
            _ => {}
        }
    }
    opt(&mut d.task_arn);
    opt(&mut d.launch_type);
    opt(&mut d.last_status);
    opt(&mut d.stop_code);
    opt(&mut d.stopped_reason);
    d.phase_signals.iter_mut().for_each(template);
    opt(&mut d.roles.execution_role_arn);
    opt(&mut d.roles.task_role_arn);
    for c in &mut d.containers {
        full(&mut c.name);
        opt(&mut c.last_status);
        opt(&mut c.reason);
    }
    let v = &mut d.verdict;
    opt(&mut v.role_arn);
    v.permissions.iter_mut().for_each(full);
    opt(&mut v.resource);
    template(&mut v.summary);
    template(&mut v.fix);
    opt(&mut v.rule_id);
    v.title.iter_mut().for_each(template);
    v.who_must_act.iter_mut().for_each(template);
    if let Some(p) = &mut v.iam_policy {
        walk(p, &template);
    }
    v.terraform.iter_mut().for_each(template);
    v.also.iter_mut().for_each(template);
    for f in &mut d.findings {
        full(&mut f.rule_id);
        template(&mut f.title);
        full(&mut f.source);
        full(&mut f.evidence);
        f.permissions.iter_mut().for_each(full);
        opt(&mut f.denied_action);
        opt(&mut f.resource);
        opt(&mut f.principal);
        opt(&mut f.role_arn);
        template(&mut f.reason);
        template(&mut f.fix);
    }
    d.notes.iter_mut().for_each(full);
}

fn source_of(t: &Text<'_>, pasted: bool) -> String {
    if pasted {
        return match t.line {
            Some(l) => format!("pasted:{}", l + 1),
            None => "pasted".into(),
        };
    }
    match (t.field, t.container, t.line) {
        (Field::Logs, Some(c), Some(l)) => format!("logs:{c}:{}", l + 1),
        (f, Some(c), _) => format!("{}:{c}", f.name()),
        (f, None, _) => f.name().to_string(),
    }
}

/// Facts from the matched text, completed from its neighbours (an SDK often prints the operation
/// on the line before the denial) and from the rule's own named groups.
fn gather_facts(texts: &[Text<'_>], ti: usize, h: &crate::rules::engine::Hit, matcher: &Matcher) -> Facts {
    let t = &texts[ti];
    // Read facts from what a person will see: a name split by an escape sequence must not
    // come out as another name.
    let mut f = extract::facts(&sanitize::terminal_safe(&t.text));
    let cap = |k: &str| h.captures.get(k).filter(|v| !v.is_empty()).cloned();
    if let Some(a) = cap("action").filter(|a| crate::rules::is_action(a)) {
        f.action = Some(a);
    }
    if let Some(r) = cap("resource") {
        f.resource = Some(r);
    }
    if let Some(p) = cap("principal").and_then(|p| extract::principal(&p)) {
        f.principal = Some(p);
    }
    if let Some(s) = cap("service") {
        f.service = Some(s);
    }
    if let Some(o) = cap("operation") {
        f.operation = Some(o);
    }
    if t.field == Field::Logs && (f.operation.is_none() || f.service.is_none() || f.principal.is_none()) {
        // Up to three lines either side in the same container.
        let lo = ti.saturating_sub(3);
        let hi = (ti + 4).min(texts.len());
        for (j, n) in texts.iter().enumerate().take(hi).skip(lo) {
            if j == ti || n.field != Field::Logs || n.container != t.container || n.line.is_none() {
                continue;
            }
            let (s, o) = extract::service_operation(&n.text);
            if f.operation.is_none() {
                f.operation = o;
            }
            if f.service.is_none() {
                f.service = s;
            }
        }
    }
    // An action inferred from the operation is only a guess at what was denied: the operation
    // `GetSecretValue` can fail on `kms:Decrypt`. It is used when the rule names no permission.
    if f.action.is_none() && matcher.rules()[h.rule].permissions.is_empty() {
        if let Some(op) = &f.operation {
            f.action = matcher.operations().action_for(f.service.as_deref(), op);
        }
    }
    // `sqs:receivemessage` printed in lower case: take the casing of the operation name.
    if let (Some(a), Some(op)) = (&f.action, &f.operation) {
        if let Some((svc, name)) = a.split_once(':') {
            if name.eq_ignore_ascii_case(op) && name != op {
                f.action = Some(format!("{svc}:{op}"));
            }
        }
    }
    if f.policy.is_none() {
        f.policy = extract::policy_layer(&t.text, f.action.as_deref());
    }
    f
}

#[allow(clippy::too_many_arguments)]
fn build_finding(
    ev: &Evidence,
    rule: &Rule,
    h: &crate::rules::engine::Hit,
    t: &Text<'_>,
    facts: &Facts,
    phase: Phase,
    source: String,
    order: usize,
    opts: &Options,
) -> Finding {
    let finding_phase = match rule.phase {
        RulePhase::Startup => Phase::Startup,
        RulePhase::Runtime => Phase::Runtime,
        RulePhase::Any if t.field == Field::Logs && phase == Phase::Unknown => Phase::Runtime,
        RulePhase::Any => phase,
    };
    let phase_agrees = match rule.phase {
        RulePhase::Any => true,
        _ => phase == Phase::Unknown || finding_phase == phase,
    };
    let (mut culprit, role_arn, mut reason) = resolve_culprit(ev, rule, facts, finding_phase);
    let mut category = rule.category;
    // "No credentials" in an app whose task HAS a task role is not a missing permission: the
    // container does not see the role (an overriding AWS_PROFILE or credentials file, a process
    // that clears its environment, an SDK too old for the ECS container provider).
    let has_task_role = ev.task_definition.as_ref().is_some_and(|t| t.task_role_arn.is_some());
    if rule.category == Category::Iam
        && rule.culprit == RuleCulprit::TaskRole
        && rule.permissions.is_empty()
        && facts.action.is_none()
        && facts.principal.is_none()
        && has_task_role
        && t.field == Field::Logs
    {
        culprit = Culprit::NotIam;
        category = Category::Config;
        reason = "the task has a task role, yet the app found no credentials: its environment or SDK does not reach the ECS container credentials (AWS_PROFILE or a credentials file overriding them, a cleared environment, an SDK too old for AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)".into();
    }
    let mut permissions: Vec<String> = Vec::new();
    if category == Category::Iam {
        if let Some(a) = &facts.action {
            permissions.push(a.clone());
        }
    }
    for p in &rule.permissions {
        if !permissions.iter().any(|x| x.eq_ignore_ascii_case(p)) {
            permissions.push(p.clone());
        }
    }
    let resource = if category == Category::Iam {
        facts
            .resource
            .clone()
            .or_else(|| infer_resource(ev, permissions.first().map(String::as_str)))
    } else {
        None
    };
    let mut policy = if category == Category::Iam {
        facts.policy.or(rule.policy)
    } else {
        rule.policy
    };
    // An ECR 403 that names no principal and no policy: when the image lives in another account,
    // the repository policy is the likelier culprit (a vendor or shared-services repository).
    if category == Category::Iam
        && facts.policy.is_none()
        && facts.principal.is_none()
        && permissions.iter().any(|p| p == "ecr:BatchGetImage")
    {
        if let (Some(registry), Some((_, account))) = (image_account(ev), region_account(ev)) {
            if registry != account {
                policy = Some(PolicyLayer::Resource);
                reason = format!(
                    "{reason}; the image is in account {registry}, not the task's {account}: the repository policy there must allow this account (the execution role also needs the ECR pull actions)"
                );
            }
        }
    }
    // A secret named by a partial ARN (no `-XXXXXX` suffix) is denied even when a policy allows
    // the full ARN, and granting more only turns the error into "not found".
    if let Some(r) = facts.resource.as_deref().filter(|_| category == Category::Iam) {
        if r.contains(":secretsmanager:") && r.contains(":secret:") && !has_secret_suffix(r) {
            reason = format!(
                "{reason}; the secret ARN has no 6-character suffix (a partial ARN): make sure the secret exists under that name, and let policies match `name-??????`"
            );
        }
    }
    let fix = fill_fix(
        &rule.fix,
        ev,
        h,
        facts,
        &role_arn,
        &resource,
        &permissions,
        culprit,
        opts,
    );
    Finding {
        rule_id: rule.id.clone(),
        title: rule.title.clone(),
        source: clean(&source, opts),
        evidence: clean(&t.text, opts),
        culprit,
        category,
        permissions,
        denied_action: facts.action.clone().filter(|_| category == Category::Iam),
        resource: resource.map(|r| clean(&r, opts)),
        policy,
        principal: facts.principal.as_ref().map(|p| clean(&p.arn, opts)),
        role_arn: role_arn.map(|r| clean(&r, opts)),
        reason: clean_composed(&reason, opts),
        count: 1,
        timestamp: t.timestamp,
        priority: rule.priority,
        rule_index: h.rule,
        field: t.field,
        order,
        phase_agrees,
        fix,
    }
}

fn is_ec2(ev: &Evidence) -> bool {
    ev.launch_type().as_deref() == Some("EC2")
}

/// Who is denied. The principal the message names settles it when it matches a role of the task;
/// otherwise the rule's culprit, otherwise the phase.
fn resolve_culprit(ev: &Evidence, rule: &Rule, f: &Facts, phase: Phase) -> (Culprit, Option<String>, String) {
    let td = ev.task_definition.as_ref();
    let exec_arn = td.and_then(|t| t.execution_role_arn.clone());
    let task_arn = td.and_then(|t| t.task_role_arn.clone());
    let (exec_name, task_name) = ev.role_names();
    if rule.culprit == RuleCulprit::NotIam || rule.category != Category::Iam && rule.culprit != RuleCulprit::ByPhase {
        let c = match rule.culprit {
            RuleCulprit::ExecutionRole => Culprit::ExecutionRole,
            RuleCulprit::TaskRole => Culprit::TaskRole,
            RuleCulprit::InstanceRole => Culprit::InstanceRole,
            _ => Culprit::NotIam,
        };
        let arn = match c {
            Culprit::ExecutionRole => exec_arn,
            Culprit::TaskRole => task_arn,
            _ => None,
        };
        return (c, arn, format!("rule {} ({} failure)", rule.id, rule.category.name()));
    }
    if let Some(p) = &f.principal {
        if let Some(name) = p
            .name
            .as_deref()
            .filter(|_| p.kind == "assumed-role" || p.kind == "role")
        {
            let is_exec = exec_name.is_some_and(|n| n == name);
            let is_task = task_name.is_some_and(|n| n == name);
            match (is_exec, is_task) {
                (true, false) => {
                    return (
                        Culprit::ExecutionRole,
                        exec_arn,
                        format!("the denied principal is the task definition's execution role {name}"),
                    );
                }
                (false, true) => {
                    return (
                        Culprit::TaskRole,
                        task_arn,
                        format!("the denied principal is the task definition's task role {name}"),
                    );
                }
                (true, true) => {
                    let c = by_phase(ev, phase, f);
                    return (
                        c.0,
                        c.1,
                        format!("{name} is both the execution and the task role; {}", c.2),
                    );
                }
                (false, false) => {}
            }
            if p.is_instance_session() {
                let why = if is_ec2(ev) || ev.launch_type().is_none() {
                    format!(
                        "the session {} is an EC2 instance id: the request used the container instance's role {name}",
                        p.session.as_deref().unwrap_or("")
                    )
                } else {
                    format!(
                        "the session `{}` is an EC2 instance id: instance-profile credentials, role `{name}`",
                        p.session.as_deref().unwrap_or("")
                    )
                };
                let why = if task_arn.is_none() && phase != Phase::Startup {
                    format!("{why}; the task definition has no taskRoleArn, so the app fell back to the instance role (better fix: give the task its own task role)")
                } else if task_arn.is_some() && phase != Phase::Startup {
                    format!("{why}; the task has a task role, but this SDK or tool did not use it (it read EC2 instance metadata)")
                } else {
                    why
                };
                return (Culprit::InstanceRole, p.role_arn(), why);
            }
            if td.is_some() {
                // A role that is neither of the task's: an assumed role further down a chain, or
                // (on EC2) the instance role. The fix belongs to the role the message names.
                let (c, _, why) = by_phase(ev, phase, f);
                let c = if c == Culprit::TaskRole && p.is_task_session() {
                    Culprit::TaskRole
                } else {
                    c
                };
                return (
                    c,
                    p.role_arn(),
                    format!("the denied role {name} is not a role of this task definition (execution role: {}, task role: {}); {why}; fix the role the message names",
                        exec_name.unwrap_or("none"), task_name.unwrap_or("none")),
                );
            }
            // No task definition: judge by the name and the rule.
            if name.to_ascii_lowercase().contains("execution") {
                return (
                    Culprit::ExecutionRole,
                    p.role_arn(),
                    format!(
                        "no task definition to compare with; the denied role `{name}` is named like an execution role"
                    ),
                );
            }
            let (c, _, why) = match rule.culprit {
                RuleCulprit::ExecutionRole => (
                    Culprit::ExecutionRole,
                    None,
                    "the rule's signature is the execution role's".into(),
                ),
                RuleCulprit::TaskRole => (
                    Culprit::TaskRole,
                    None,
                    "the rule's signature is the task role's".into(),
                ),
                RuleCulprit::InstanceRole => (
                    Culprit::InstanceRole,
                    None,
                    "the rule's signature is the instance role's".into(),
                ),
                _ => by_phase(ev, phase, f),
            };
            return (
                c,
                p.role_arn(),
                format!("no task definition to compare with; denied role {name}; {why}"),
            );
        }
        if p.kind == "user" || p.kind == "root" {
            return (
                Culprit::Unknown,
                None,
                format!("the denied principal {} is an IAM {}, not a role of the task: the app uses static credentials (environment or file), so the fix is on that identity, or better, remove the keys and use the task role", p.arn, p.kind),
            );
        }
    }
    match rule.culprit {
        RuleCulprit::ExecutionRole => (
            Culprit::ExecutionRole,
            exec_arn,
            format!("rule {}: this is done with the execution role", rule.id),
        ),
        RuleCulprit::TaskRole => {
            let why = if task_arn.is_none() && td.is_some() {
                "the task definition has no taskRoleArn: the application has no AWS credentials of its own; add a task role".to_string()
            } else {
                format!("rule {}: the application's own calls use the task role", rule.id)
            };
            (Culprit::TaskRole, task_arn, why)
        }
        RuleCulprit::InstanceRole => (
            Culprit::InstanceRole,
            None,
            format!("rule {}: this is done with the container instance role", rule.id),
        ),
        _ => by_phase(ev, phase, f),
    }
}

fn by_phase(ev: &Evidence, phase: Phase, f: &Facts) -> (Culprit, Option<String>, String) {
    let td = ev.task_definition.as_ref();
    let exec_arn = td.and_then(|t| t.execution_role_arn.clone());
    let task_arn = td.and_then(|t| t.task_role_arn.clone());
    match phase {
        Phase::Startup => {
            let secrets = f.action.as_deref().is_some_and(|a| {
                a.starts_with("ssm:")
                    || a.starts_with("secretsmanager:")
                    || a.starts_with("kms:")
                    || a.starts_with("s3:")
            });
            if is_ec2(ev) && td.is_some() && exec_arn.is_none() && !secrets {
                let role = f.principal.as_ref().and_then(Principal::role_arn);
                return (Culprit::InstanceRole, role, "startup failure on EC2 with no executionRoleArn: the agent pulls images and creates log streams with the container instance role".into());
            }
            let why = if td.is_some() && exec_arn.is_none() {
                "startup failure: the ECS agent does this with the task execution role, and the task definition has none (add executionRoleArn)"
            } else {
                "startup failure: the ECS agent does this with the task execution role before any container runs"
            };
            (Culprit::ExecutionRole, exec_arn, why.into())
        }
        Phase::Runtime => {
            if task_arn.is_none() && td.is_some() {
                if is_ec2(ev) {
                    let role = f.principal.as_ref().and_then(Principal::role_arn);
                    return (Culprit::InstanceRole, role, "a denial in the app's logs at runtime, and the task definition has no taskRoleArn: on EC2 the SDK falls back to the container instance role (better fix: add a task role)".into());
                }
                return (Culprit::TaskRole, None, "a denial in the app's logs at runtime, and the task definition has no taskRoleArn: the app has no role of its own; add a task role with the permission".into());
            }
            (
                Culprit::TaskRole,
                task_arn,
                "a denial at runtime, from the application: its AWS calls use the task role".into(),
            )
        }
        Phase::Unknown => (
            Culprit::Unknown,
            None,
            "the phase could not be decided and the message names no principal".into(),
        ),
    }
}

/// The resource to scope the fix to when the message does not name one: read it off the task
/// definition (secrets, log groups, images, environment files).
fn infer_resource(ev: &Evidence, action: Option<&str>) -> Option<String> {
    let action = action?;
    let td = ev.task_definition.as_ref()?;
    let (region, account) = region_account(ev)?;
    let partition = ev
        .task
        .task_arn
        .as_deref()
        .and_then(|a| a.split(':').nth(1))
        .unwrap_or("aws")
        .to_string();
    let mut out: Vec<String> = Vec::new();
    let lower = action.to_ascii_lowercase();
    for c in &td.container_definitions {
        let secrets = c
            .secrets
            .iter()
            .chain(c.log_configuration.iter().flat_map(|l| l.secret_options.iter()));
        if lower.starts_with("ssm:") {
            for s in secrets {
                let v = &s.value_from;
                if v.contains(":ssm:") {
                    out.push(v.clone());
                } else if !v.starts_with("arn:") {
                    let name = v.trim_start_matches('/');
                    out.push(format!("arn:{partition}:ssm:{region}:{account}:parameter/{name}"));
                }
            }
        } else if lower.starts_with("secretsmanager:") {
            for s in secrets.filter(|s| s.value_from.contains(":secretsmanager:")) {
                // valueFrom may carry `:json-key:version-stage:version-id`; the secret ARN has 7 parts.
                let arn: Vec<&str> = s.value_from.splitn(8, ':').collect();
                out.push(arn[..arn.len().min(7)].join(":"));
            }
            if let Some(rc) = &c.repository_credentials {
                out.push(rc.credentials_parameter.clone());
            }
        } else if lower == "ecr:getauthorizationtoken" {
            return Some("*".into());
        } else if lower.starts_with("ecr:") {
            if let Some(img) = &c.image {
                if let Some((host, rest)) = img.split_once('/') {
                    let mut h = host.split('.');
                    if let (Some(acct), Some("dkr"), Some("ecr"), Some(reg)) = (h.next(), h.next(), h.next(), h.next())
                    {
                        let repo = rest.split(['@', ':']).next().unwrap_or(rest);
                        out.push(format!("arn:{partition}:ecr:{reg}:{acct}:repository/{repo}"));
                    }
                }
            }
        } else if lower.starts_with("logs:") {
            if let Some(l) = &c.log_configuration {
                if l.log_driver == "awslogs" {
                    if let Some(g) = l.options.get("awslogs-group") {
                        let reg = l
                            .options
                            .get("awslogs-region")
                            .cloned()
                            .unwrap_or_else(|| region.clone());
                        out.push(format!("arn:{partition}:logs:{reg}:{account}:log-group:{g}:*"));
                    }
                }
            }
        } else if lower.starts_with("s3:") {
            for f in &c.environment_files {
                out.push(f.value.clone());
            }
        }
    }
    out.dedup();
    if out.is_empty() {
        None
    } else {
        Some(out.join(", "))
    }
}

/// The account of the first ECR image of the task (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/...`).
fn image_account(ev: &Evidence) -> Option<String> {
    let images = ev.task.containers.iter().filter_map(|c| c.image.as_deref()).chain(
        ev.task_definition
            .iter()
            .flat_map(|t| t.container_definitions.iter().filter_map(|c| c.image.as_deref())),
    );
    images
        .filter_map(|i| i.split_once(".dkr.ecr.").map(|(a, _)| a))
        .find(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// `arn:...:secret:name-AbCdEf` (Secrets Manager appends six random characters to every ARN).
fn has_secret_suffix(arn: &str) -> bool {
    let name = arn.split(":secret:").nth(1).unwrap_or("");
    let name = name.split(':').next().unwrap_or(name);
    match name.rsplit_once('-') {
        Some((_, suffix)) => suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_alphanumeric()),
        None => false,
    }
}

fn region_account(ev: &Evidence) -> Option<(String, String)> {
    let arn = ev.task.task_arn.as_deref().or(ev.task.cluster_arn.as_deref())?;
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 5 {
        return None;
    }
    Some((parts[3].to_string(), parts[4].to_string()))
}

#[allow(clippy::too_many_arguments)]
fn fill_fix(
    template: &str,
    ev: &Evidence,
    h: &crate::rules::engine::Hit,
    f: &Facts,
    role_arn: &Option<String>,
    resource: &Option<String>,
    permissions: &[String],
    culprit: Culprit,
    opts: &Options,
) -> String {
    let (region, account) = region_account(ev).unzip();
    let td = ev.task_definition.as_ref();
    let log_group = td.and_then(|t| {
        t.container_definitions
            .iter()
            .find_map(|c| c.log_configuration.as_ref()?.options.get("awslogs-group").cloned())
    });
    let image = ev
        .task
        .containers
        .iter()
        .find_map(|c| c.image.clone())
        .or_else(|| td.and_then(|t| t.container_definitions.iter().find_map(|c| c.image.clone())));
    let lookup = |name: &str| -> String {
        if let Some(v) = h.captures.get(name) {
            return v.clone();
        }
        let v = match name {
            "role_arn" => role_arn.clone(),
            "role_name" => role_arn.as_deref().map(|a| role_name(a).to_string()),
            "resource" => resource.clone(),
            "action" => permissions.first().cloned().or_else(|| f.action.clone()),
            "permissions" => Some(permissions.join(", ")).filter(|s| !s.is_empty()),
            "principal" => f.principal.as_ref().map(|p| p.arn.clone()),
            "region" => region.clone(),
            "account" => account.clone(),
            "task_arn" => ev.task.task_arn.clone(),
            "cluster" => ev
                .task
                .cluster_arn
                .as_deref()
                .map(|c| c.rsplit('/').next().unwrap_or(c).to_string()),
            "log_group" => log_group.clone(),
            "image" => image.clone(),
            "operation" => f.operation.clone(),
            "service" => f.service.clone(),
            _ => None,
        };
        v.unwrap_or_else(|| match name {
            "role_arn" | "role_name" => culprit.describe().to_string(),
            "resource" => "the resource named in the error".into(),
            "action" | "permissions" => "the action named in the error".into(),
            other => format!("<{other}>"),
        })
    };
    crate::rules::expand_placeholders(template, |name| {
        // The template is the rule author's; only the values come from messages: they are
        // sanitized, redacted, and kept from breaking the template's markdown.
        let value = clean(&lookup(name), opts);
        sanitize::markdown_code(&value).replace('[', "［").replace(']', "］")
    })
}

fn verdict_from(ev: &Evidence, top: &Finding, all: &[Finding], rule: &Rule, phase: Phase) -> Verdict {
    let mut also = Vec::new();
    for f in all.iter().skip(1) {
        // Worth a line: a denial pointing at another principal, or a strong non-IAM signal
        // next to an IAM verdict. Generic fallbacks ("essential container exited") are not.
        let iam_elsewhere = f.category == Category::Iam && f.culprit != top.culprit;
        let strong_non_iam = top.category == Category::Iam && f.category != Category::Iam && f.priority >= 50;
        if iam_elsewhere || strong_non_iam {
            let why = if !f.phase_agrees && top.phase_agrees {
                format!("its signature is not a {} one", phase.name())
            } else if f.priority < top.priority {
                format!("its rule is less specific (priority {} < {})", f.priority, top.priority)
            } else {
                "the stop reason outranks container reasons and logs".to_string()
            };
            also.push(format!(
                "{} ({}, from {}) points at {}, ranked lower because {why}",
                f.rule_id,
                f.category.name(),
                f.source,
                f.culprit.describe()
            ));
        }
        if also.len() >= 5 {
            break;
        }
    }
    let iam = top.category == Category::Iam;
    let title = rule.title.trim_end_matches('.');
    let role_label = top
        .role_arn
        .as_deref()
        .map(|a| format!(" {}", role_name(a)))
        .unwrap_or_default();
    // A credential-chain failure ("Unable to locate credentials") on a task whose definition has
    // no role of that kind: the fix is to add the role, not a permission.
    let missing_role = iam
        && ev.task_definition.is_some()
        && top.role_arn.is_none()
        && top.denied_action.is_none()
        && matches!(top.culprit, Culprit::TaskRole | Culprit::ExecutionRole);
    let denial = top.denied_action.is_some() || !top.permissions.is_empty();
    let policy = if iam && denial && !missing_role {
        Some(top.policy.unwrap_or(PolicyLayer::Identity))
    } else {
        None
    };
    let summary = if missing_role {
        let which = if top.culprit == Culprit::TaskRole {
            "task role (taskRoleArn)"
        } else {
            "execution role (executionRoleArn)"
        };
        format!("The task definition has no {which}, so there were no credentials: {title}.")
    } else if iam {
        let actions = match (&top.denied_action, top.permissions.is_empty()) {
            (Some(a), _) => a.clone(),
            (None, false) => top.permissions.join(", "),
            (None, true) => "a permission".to_string(),
        };
        let on = top.resource.as_deref().map(|r| format!(" on {r}")).unwrap_or_default();
        let layer = policy
            .filter(|p| *p != PolicyLayer::Identity)
            .map(|p| format!(" (denied by the {} policy layer)", p.name()))
            .unwrap_or_default();
        let who = match top.culprit {
            Culprit::Unknown => "An IAM principal outside the task's roles".to_string(),
            c => {
                let d = c.describe();
                d[..1].to_uppercase() + &d[1..]
            }
        };
        format!("{who}{role_label} is denied {actions}{on}{layer}: {title}.")
    } else {
        format!("Not an IAM problem ({}): {title}.", top.category.name())
    };
    let who_must_act = if missing_role {
        Some(format!(
            "the owner of the task definition: add a {} with the permissions the code needs",
            if top.culprit == Culprit::TaskRole {
                "taskRoleArn"
            } else {
                "executionRoleArn"
            }
        ))
    } else if iam {
        Some(policy.unwrap_or(PolicyLayer::Identity).who_must_act().to_string())
    } else {
        None
    };
    let (iam_policy, terraform) = if iam && top.culprit != Culprit::NotIam && !top.permissions.is_empty() {
        policy_snippets(top)
    } else {
        (None, None)
    };
    Verdict {
        culprit: top.culprit,
        category: top.category,
        role_arn: top.role_arn.clone(),
        permissions: top.permissions.clone(),
        resource: top.resource.clone(),
        policy,
        summary,
        fix: top.fix.clone(),
        rule_id: Some(top.rule_id.clone()),
        title: Some(top.title.clone()),
        who_must_act,
        iam_policy,
        terraform,
        also,
    }
}

/// A least-privilege statement for the fix, as IAM JSON and as Terraform. For an identity-policy
/// denial it goes on the role; for a resource or key policy it goes on the resource, naming the role.
fn policy_snippets(top: &Finding) -> (Option<serde_json::Value>, Option<String>) {
    let layer = top.policy.unwrap_or(PolicyLayer::Identity);
    let resources: Vec<String> = top
        .resource
        .as_deref()
        .map(|r| r.split(", ").map(|s| s.trim_matches('"').to_string()).collect())
        .unwrap_or_default();
    let actions = &top.permissions;
    // Each action goes with the resources of its own service; an action whose resource the
    // evidence does not name (kms:Decrypt for a secret's key) gets a placeholder to fill in.
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for a in actions {
        let svc = a.split(':').next().unwrap_or("");
        let mut res: Vec<String> = resources
            .iter()
            .filter(|r| r.as_str() == "*" || r.split(':').nth(2) == Some(svc))
            .cloned()
            .collect();
        if res.is_empty() {
            res.push(match svc {
                _ if a == "ecr:GetAuthorizationToken" => "*".into(),
                "kms" => "<KMS key ARN, only if a customer managed key encrypts it>".into(),
                _ => format!("<{svc} resource ARN>"),
            });
        }
        match groups.iter_mut().find(|g| g.1 == res) {
            Some(g) => g.0.push(a.clone()),
            None => groups.push((vec![a.clone()], res)),
        }
    }
    let one_or_many = |v: &[String]| {
        if v.len() == 1 {
            serde_json::json!(v[0])
        } else {
            serde_json::json!(v)
        }
    };
    let resource_json = one_or_many(&groups.first().map(|g| g.1.clone()).unwrap_or_default());
    match layer {
        PolicyLayer::Identity | PolicyLayer::PermissionsBoundary => {
            let statements: Vec<serde_json::Value> = groups
                .iter()
                .map(|(acts, res)| serde_json::json!({ "Effect": "Allow", "Action": acts, "Resource": one_or_many(res) }))
                .collect();
            let stmt = serde_json::json!({ "Version": "2012-10-17", "Statement": statements });
            let role = top.role_arn.as_deref().map(role_name).unwrap_or("<role-name>");
            let name = format!(
                "ecsdoctor-{}",
                actions[0]
                    .replace(':', "-")
                    .to_ascii_lowercase()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>()
            );
            let quote = |v: &[String]| -> String {
                if v.len() == 1 {
                    format!("\"{}\"", v[0])
                } else {
                    format!(
                        "[{}]",
                        v.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ")
                    )
                }
            };
            let tf_statements = groups
                .iter()
                .map(|(acts, res)| {
                    format!(
                        "{{\n      Effect   = \"Allow\"\n      Action   = [{}]\n      Resource = {}\n    }}",
                        acts.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", "),
                        quote(res)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let tf = format!(
                "resource \"aws_iam_role_policy\" \"{}\" {{\n  name = \"{name}\"\n  role = \"{role}\"\n  policy = jsonencode({{\n    Version = \"2012-10-17\"\n    Statement = [{tf_statements}]\n  }})\n}}",
                name.replace('-', "_")
            );
            (Some(stmt), Some(tf))
        }
        PolicyLayer::Resource | PolicyLayer::KmsKey => {
            let principal = top.role_arn.clone().unwrap_or_else(|| "<role-arn>".into());
            let stmt = serde_json::json!({
                "Sid": "AllowEcsTaskRole",
                "Effect": "Allow",
                "Principal": { "AWS": principal },
                "Action": actions,
                "Resource": if layer == PolicyLayer::KmsKey { serde_json::json!("*") } else { resource_json },
            });
            (Some(stmt), None)
        }
        PolicyLayer::Trust => {
            // A role assuming another (or itself) needs that role's trust policy to name it; ECS
            // itself assuming a task or execution role needs the ecs-tasks service principal.
            let principal = match (
                &top.role_arn,
                actions.iter().any(|a| a.eq_ignore_ascii_case("sts:AssumeRole")),
            ) {
                (Some(caller), true) => serde_json::json!({ "AWS": caller }),
                _ => serde_json::json!({ "Service": "ecs-tasks.amazonaws.com" }),
            };
            let stmt = serde_json::json!({
                "Effect": "Allow",
                "Principal": principal,
                "Action": "sts:AssumeRole"
            });
            (Some(stmt), None)
        }
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{Container, ContainerLogs, LogLine, Task, TaskDefinition, Timestamp};

    fn matcher() -> Matcher {
        Matcher::load(true, &[]).expect("built-in rules")
    }

    fn runtime_task(task_role: Option<&str>, exec_role: Option<&str>, launch: &str, lines: &[&str]) -> Evidence {
        Evidence {
            task: Task {
                task_arn: Some("arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef".into()),
                last_status: Some("STOPPED".into()),
                stop_code: Some("EssentialContainerExited".into()),
                stopped_reason: Some("Essential container in task exited".into()),
                launch_type: Some(launch.into()),
                created_at: Some(Timestamp(1_000)),
                started_at: Some(Timestamp(20_000)),
                stopped_at: Some(Timestamp(80_000)),
                containers: vec![Container {
                    name: "app".into(),
                    exit_code: Some(1),
                    ..Container::default()
                }],
                ..Task::default()
            },
            task_definition: Some(TaskDefinition {
                task_role_arn: task_role.map(|r| format!("arn:aws:iam::123456789012:role/{r}")),
                execution_role_arn: exec_role.map(|r| format!("arn:aws:iam::123456789012:role/{r}")),
                ..TaskDefinition::default()
            }),
            logs: vec![ContainerLogs {
                container: "app".into(),
                lines: lines
                    .iter()
                    .map(|l| LogLine {
                        timestamp: None,
                        message: l.to_string(),
                    })
                    .collect(),
            }],
            notes: vec![],
        }
    }

    #[test]
    fn phase_signals_runtime_when_the_task_started_and_exited() {
        let ev = runtime_task(Some("app"), Some("exec"), "FARGATE", &[]);
        let (phase, signals) = decide_phase(&ev, &[]);
        assert_eq!(phase, Phase::Runtime);
        assert!(signals.iter().any(|s| s.contains("ran 1m0s")), "{signals:?}");
        assert!(signals.iter().any(|s| s.contains("app exitCode=1")), "{signals:?}");
    }

    #[test]
    fn phase_signals_startup_when_the_pull_never_finished() {
        let mut ev = runtime_task(None, Some("exec"), "FARGATE", &[]);
        ev.task.started_at = None;
        ev.task.stop_code = Some("TaskFailedToStart".into());
        ev.task.pull_started_at = Some(Timestamp(2_000));
        ev.task.containers[0].exit_code = None;
        let (phase, signals) = decide_phase(&ev, &[]);
        assert_eq!(phase, Phase::Startup);
        assert!(signals.iter().any(|s| s.contains("pull never finished")), "{signals:?}");
    }

    #[test]
    fn no_credentials_with_a_task_role_is_configuration_not_iam() {
        let line = "botocore.exceptions.NoCredentialsError: Unable to locate credentials";
        let with = diagnose(
            &runtime_task(Some("app"), Some("exec"), "FARGATE", &[line]),
            &matcher(),
            &Options::default(),
        );
        assert_eq!(
            (with.verdict.culprit, with.verdict.category),
            (Culprit::NotIam, Category::Config)
        );
        let without = diagnose(
            &runtime_task(None, Some("exec"), "FARGATE", &[line]),
            &matcher(),
            &Options::default(),
        );
        assert_eq!(
            (without.verdict.culprit, without.verdict.category),
            (Culprit::TaskRole, Category::Iam)
        );
    }

    #[test]
    fn a_named_role_that_is_not_the_tasks_is_reported_as_such() {
        let line = "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the GetObject operation: User: arn:aws:sts::123456789012:assumed-role/tenant-reader/0123456789abcdef0123456789abcdef is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::b/k";
        let d = diagnose(
            &runtime_task(Some("app"), Some("exec"), "FARGATE", &[line]),
            &matcher(),
            &Options::default(),
        );
        assert_eq!(
            d.verdict.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/tenant-reader")
        );
        assert!(
            d.findings[0].reason.contains("not a role of this task definition"),
            "{}",
            d.findings[0].reason
        );
    }

    #[test]
    fn an_instance_session_on_ec2_without_task_role_is_the_instance_role() {
        let line = "User: arn:aws:sts::123456789012:assumed-role/ecsInstanceRole/i-0d1204078bf4e29eb is not authorized to perform: sqs:SendMessage on resource: arn:aws:sqs:us-east-1:123456789012:q";
        let d = diagnose(
            &runtime_task(None, None, "EC2", &[line]),
            &matcher(),
            &Options::default(),
        );
        assert_eq!(d.verdict.culprit, Culprit::InstanceRole);
        assert_eq!(
            d.verdict.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/ecsInstanceRole")
        );
        assert!(
            d.findings[0].reason.contains("no taskRoleArn"),
            "{}",
            d.findings[0].reason
        );
    }

    #[test]
    fn kms_behind_a_secrets_call_names_kms_decrypt_first() {
        let line = "botocore.exceptions.ClientError: An error occurred (AccessDeniedException) when calling the GetSecretValue operation: Access to KMS is not allowed";
        let d = diagnose(
            &runtime_task(Some("app"), Some("exec"), "FARGATE", &[line]),
            &matcher(),
            &Options::default(),
        );
        assert_eq!(
            d.verdict.permissions.first().map(String::as_str),
            Some("kms:Decrypt"),
            "{:?}",
            d.verdict
        );
    }

    #[test]
    fn findings_order_is_deterministic() {
        let lines = [
            "AccessDenied: Access Denied",
            "Unable to locate credentials",
            "AccessDenied: Access Denied",
        ];
        let ev = runtime_task(Some("app"), Some("exec"), "FARGATE", &lines);
        let a = diagnose(&ev, &matcher(), &Options::default());
        let b = diagnose(&ev, &matcher(), &Options::default());
        assert_eq!(a, b);
    }

    fn startup_task(reason: &str, image: &str) -> Evidence {
        let mut ev = runtime_task(Some("app"), Some("exec"), "FARGATE", &[]);
        ev.task.stop_code = Some("TaskFailedToStart".into());
        ev.task.stopped_reason = Some(reason.into());
        ev.task.started_at = None;
        ev.task.containers[0].exit_code = None;
        ev.task.containers[0].image = Some(image.into());
        ev
    }

    #[test]
    fn a_cross_account_ecr_403_points_at_the_repository_policy() {
        let reason = "CannotPullContainerError: inspect image has been retried 5 time(s): httpReaderSeeker: failed open: unexpected status code https://999999999999.dkr.ecr.us-east-1.amazonaws.com/v2/vendor/agent/manifests/sha256:4c1b: 403 Forbidden";
        let cross = diagnose(
            &startup_task(reason, "999999999999.dkr.ecr.us-east-1.amazonaws.com/vendor/agent:1"),
            &matcher(),
            &Options::default(),
        );
        assert_eq!(cross.verdict.policy, Some(PolicyLayer::Resource), "{:?}", cross.verdict);
        let own = diagnose(
            &startup_task(reason, "123456789012.dkr.ecr.us-east-1.amazonaws.com/vendor/agent:1"),
            &matcher(),
            &Options::default(),
        );
        assert_eq!(own.verdict.policy, Some(PolicyLayer::Identity));
        assert_eq!(own.verdict.culprit, Culprit::ExecutionRole);
    }

    #[test]
    fn a_partial_secret_arn_is_flagged() {
        let reason = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db from secrets manager: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/exec/2c3d is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db because no identity-based policy allows the secretsmanager:GetSecretValue action";
        let d = diagnose(&startup_task(reason, "nginx"), &matcher(), &Options::default());
        assert_eq!(d.verdict.culprit, Culprit::ExecutionRole);
        assert!(d.findings[0].reason.contains("partial ARN"), "{}", d.findings[0].reason);
        assert!(has_secret_suffix(
            "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbC12x"
        ));
        assert!(!has_secret_suffix("arn:aws:secretsmanager:us-east-1:1:secret:prod/db"));
    }
}
