//! From evidence to a verdict, and the output model every renderer prints (`--format json`
//! serializes it as is). The steps, one file each: the rules run over every text and each hit
//! becomes a [`Finding`] ([`finding`]: facts from the message and its neighbours, who is denied
//! from [`culprit`], the resource from [`resource`]); the task's phase is decided from its signals
//! ([`phase`]); findings are ranked ([`rank`]); the top one becomes the [`Verdict`] with its fix
//! ([`fix`]) and least-privilege policy snippets ([`policy`]); and [`output`] scrubs every string
//! at the edge. Nothing here names an AWS service: what the engine must know about services comes
//! from the rule files' knowledge tables.

mod confidence;
mod culprit;
mod finding;
mod fix;
mod output;
mod phase;
mod policy;
mod rank;
mod resource;
pub mod verification;

use std::collections::BTreeMap;

use serde::Serialize;
use strum::IntoStaticStr;

use crate::evidence::{ContainerLogs, Evidence, Field, LogLine, Text};
use crate::rules::engine::{Hit, Matcher};
use crate::rules::{Category, Culprit, PolicyLayer};
use crate::sanitize::RedactOptions;

pub use confidence::Confidence;
pub use output::{clean, fix_value};
pub use phase::decide_phase;

/// The JSON contract's version.
pub const SCHEMA_VERSION: u32 = 1;

/// Which part of its life the task failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Phase {
    Startup,
    Runtime,
    Unknown,
}

impl Phase {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The answer: who must act, on what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub culprit: Culprit,
    pub category: Category,
    pub role_arn: Option<String>,
    pub permissions: Vec<String>,
    /// The resource exactly as the evidence names it.
    pub resource: Option<String>,
    /// What the fix grants: the resource widened so the fix outlives this one task (every
    /// stream of a log group, the objects under a key's prefix, a secret with any suffix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_scope: Option<String>,
    /// Why the scope is wider than the resource, and how to narrow it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_note: Option<String>,
    pub policy: Option<PolicyLayer>,
    pub summary: String,
    /// How sure the verdict is: `high`, `medium` or `low`.
    pub confidence: Confidence,
    /// Why, in one line, and for less than `high` what evidence would settle it.
    pub confidence_reason: String,
    /// The action was inferred from the operation the message names, not named itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub action_inferred: bool,
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
    /// The verdict checked against the account's policies (live `why` and `scan`, and `why --from`
    /// a bundle captured with them); absent when not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<verification::Verification>,
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
    pub(crate) rank: RankKey,
    #[serde(skip)]
    pub(crate) fix: String,
    #[serde(skip)]
    pub(crate) operation: Option<String>,
    /// The resource widened for the fix, and why (see [`Verdict::resource_scope`]).
    #[serde(skip)]
    pub(crate) scope: Option<(String, String)>,
    /// How the principal was decided.
    #[serde(skip)]
    pub(crate) basis: confidence::Basis,
    /// The action was inferred from the operation.
    #[serde(skip)]
    pub(crate) action_inferred: bool,
    /// The text looks cut short.
    #[serde(skip)]
    pub(crate) truncated: bool,
}

/// What ranks a finding (not serialized): see [`rank`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RankKey {
    pub(crate) phase_agrees: bool,
    pub(crate) priority: u8,
    pub(crate) generic: bool,
    pub(crate) field: Option<Field>,
    pub(crate) rule_index: usize,
    pub(crate) order: usize,
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

/// Diagnoses a task.
pub fn diagnose(ev: &Evidence, matcher: &Matcher, opts: &Options) -> Diagnosis {
    // The task's own texts, then each log line as it is scanned: a log line becomes a text only
    // when it, or a line within NEIGHBOURS of it, matched (the facts of a match are completed
    // from its neighbours). A 200,000-line log costs no text per line.
    let mut texts = ev.task_texts();
    let mut hits: Vec<(usize, Hit)> = Vec::new();
    for (ti, t) in texts.iter().enumerate() {
        for h in matcher.scan(t.field, &t.text) {
            hits.push((ti, h));
        }
    }
    for logs in &ev.logs {
        let mut matched: Vec<(usize, Vec<Hit>)> = Vec::new();
        for (i, l) in logs.lines.iter().enumerate() {
            let found = matcher.scan(Field::Logs, &l.message);
            if !found.is_empty() {
                matched.push((i, found));
            }
        }
        let mut next = 0; // the first line not yet made a text
        for (i, found) in matched {
            let lo = i.saturating_sub(finding::NEIGHBOURS).max(next);
            let hi = (i + finding::NEIGHBOURS + 1).min(logs.lines.len());
            for j in lo..hi {
                texts.push(Evidence::log_text(&logs.container, j, &logs.lines[j]));
            }
            next = next.max(hi);
            let ti = texts.len() - (hi - i);
            hits.extend(found.into_iter().map(|h| (ti, h)));
        }
    }
    diagnose_hits(ev, matcher, &texts, hits, opts, None)
}

/// What `explain` may be told about the task a paste came from, for what text cannot settle.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// `EC2`, `FARGATE` or `EXTERNAL`.
    pub launch_type: Option<String>,
    /// The task ran (`Some(true)`) or never started (`Some(false)`).
    pub started: Option<bool>,
    /// The task definition (`--task-def`): its roles, secrets, log groups and images.
    pub task_definition: Option<crate::evidence::TaskDefinition>,
}

/// Diagnoses a pasted message with no task around it (`ecsdoctor explain`): every line is tried
/// against every rule, whatever field the rule looks in.
pub fn explain(text: &str, matcher: &Matcher, opts: &Options) -> Diagnosis {
    explain_with(text, &Hints::default(), matcher, opts)
}

/// [`explain`] with what the user knows about the task: the paste is one piece of evidence, read
/// as `why` would read the task.
pub fn explain_with(text: &str, hints: &Hints, matcher: &Matcher, opts: &Options) -> Diagnosis {
    let task = crate::evidence::Task {
        launch_type: hints.launch_type.clone(),
        task_definition_arn: hints
            .task_definition
            .as_ref()
            .and_then(|t| t.task_definition_arn.clone()),
        ..crate::evidence::Task::default()
    };
    let ev = Evidence {
        task,
        task_definition: hints.task_definition.clone(),
        logs: vec![ContainerLogs {
            container: "pasted".into(),
            lines: text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| LogLine {
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
        for h in matcher.scan_all(&t.text) {
            hits.push((ti, h));
        }
    }
    diagnose_hits(&ev, matcher, &texts, hits, opts, Some(hints.started))
}

fn diagnose_hits(
    ev: &Evidence,
    matcher: &Matcher,
    texts: &[Text<'_>],
    hits: Vec<(usize, Hit)>,
    opts: &Options,
    paste: Option<Option<bool>>,
) -> Diagnosis {
    // A paste (`explain`) carries what the user said about the task: did it start?
    let pasted = paste.is_some();
    let rules = matcher.rules();
    // A rule whose outcome depends on the task (`when`) counts only where the condition holds.
    let task = ev.task_facts();
    let hits: Vec<(usize, Hit)> = hits
        .into_iter()
        .filter(|(_, h)| rules[h.rule].when.holds(&task))
        .collect();
    let (phase, phase_signals) = if let Some(started) = paste {
        match started {
            Some(true) => (Phase::Runtime, vec!["the task ran (--started)".to_string()]),
            Some(false) => (
                Phase::Startup,
                vec!["the task never started (--never-started)".to_string()],
            ),
            None => phase::of_paste(texts, &hits, rules, &matcher.knowledge().phase),
        }
    } else {
        phase::of_task(ev, texts, &hits, rules, &matcher.knowledge().phase)
    };

    // One finding per (rule, source): log lines repeat, the first occurrence is quoted.
    let mut findings: Vec<Finding> = Vec::new();
    let mut index: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for (order, (ti, h)) in hits.iter().enumerate() {
        let t = &texts[*ti];
        let source = finding::source_of(t, pasted);
        let key_source = match t.field {
            Field::Logs => format!("logs:{}", t.container.unwrap_or("")),
            _ => source.clone(),
        };
        if let Some(&i) = index.get(&(h.rule, key_source.clone())) {
            findings[i].count += 1;
            continue;
        }
        let mut f = finding::build(ev, matcher, texts, *ti, h, phase, source, order, opts);
        output::clean_finding(&mut f, opts);
        index.insert((h.rule, key_source), findings.len());
        findings.push(f);
    }
    // A paste's joined text duplicates its lines: keep the joined finding only where no line matched.
    if pasted {
        let mut by_rule: BTreeMap<usize, usize> = BTreeMap::new();
        findings.retain(|f| {
            let n = by_rule.entry(f.rank.rule_index).or_insert(0);
            *n += 1;
            *n == 1
        });
    }
    rank::sort(&mut findings);
    let mut verdict = match findings.first() {
        Some(top) => fix::verdict_from(ev, top, &findings, phase, matcher.knowledge()),
        None => fix::inconclusive(),
    };
    let truncated = findings.first().is_some_and(|f| f.truncated);
    let cx = confidence::Context {
        phase,
        truncated,
        logs_read: ev.logs.iter().any(|l| !l.lines.is_empty()),
        task_definition: ev.task_definition.is_some(),
    };
    (verdict.confidence, verdict.confidence_reason) = confidence::of(findings.first(), &cx);

    let mut notes = ev.notes.clone();
    if truncated {
        notes.push(
            "the message the verdict rests on looks cut short (consoles and deploy tools cut at about 255 characters): it was read from its prefix and the phase; `aws ecs describe-tasks` shows the full text".into(),
        );
    }
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
        stopped_reason: ev.task.stopped_reason.clone(),
        phase,
        phase_signals,
        roles: Roles {
            execution_role_arn: td.and_then(|t| t.execution_role_arn.clone()),
            task_role_arn: td.and_then(|t| t.task_role_arn.clone()),
        },
        containers: ev
            .task
            .containers
            .iter()
            .map(|c| ContainerState {
                name: c.name.clone(),
                last_status: c.last_status.clone(),
                exit_code: c.exit_code,
                reason: c.reason.clone(),
            })
            .collect(),
        verdict,
        findings,
        notes,
    };
    output::scrub(&mut d, opts);
    d
}

/// Moves the verdict to the policy layer verification found deciding: its `policy`, who must act,
/// and the policy snippets (from the top finding, for that layer).
pub fn retarget(d: &mut Diagnosis, layer: PolicyLayer, knowledge: &crate::rules::Knowledge, opts: &Options) {
    d.verdict.policy = Some(layer);
    d.verdict.who_must_act = Some(layer.who_must_act().to_string());
    if let Some(top) = d.findings.first() {
        if !top.permissions.is_empty() {
            let (iam_policy, terraform) = policy::snippets(top, layer, knowledge);
            d.verdict.iam_policy = iam_policy;
            d.verdict.terraform = terraform;
        }
    }
    output::scrub(d, opts);
}

#[cfg(test)]
mod tests;
