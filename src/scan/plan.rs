//! What a scan decides without I/O: which tasks share a failure signature (so the logs of a few
//! stand for all), which verdicts need the logs at all, the normalised pattern that makes one
//! cause of many tasks one group, `--since` and `--service` filtering, and taking the verdict of
//! representatives for the rest of their signature.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{GroupKey, TaskResult};
use crate::evidence::{Evidence, Task, TaskDefinition};
use crate::rules::engine::Matcher;
use crate::rules::RulePhase;
use crate::verdict::{diagnose, Diagnosis, Options, Phase};

/// Would this task's logs change its verdict? Yes when nothing matched, or when the verdict only
/// restates how a container ended (a `generic` rule that is not a startup signature). A task that
/// never started has no useful logs.
pub fn needs_logs(d: &Diagnosis, matcher: &Matcher) -> bool {
    if d.phase == Phase::Startup {
        return false;
    }
    if !d.conclusive() {
        return true;
    }
    let Some(id) = d.verdict.rule_id.as_deref() else {
        return true;
    };
    matcher
        .rules()
        .iter()
        .find(|r| r.id == id)
        .is_some_and(|r| r.generic && r.phase != RulePhase::Startup)
}

/// A failure signature: tasks with the same one failed the same way as far as ECS can tell, so
/// the logs of a few of them stand for all. Task definition revision, stop code, normalised stop
/// reason, and each container's name, normalised reason and exit code.
pub fn signature(task: &Task) -> String {
    let mut s = String::new();
    s.push_str(task.task_definition_arn.as_deref().unwrap_or("-"));
    s.push('\u{1f}');
    s.push_str(task.stop_code.as_deref().unwrap_or("-"));
    s.push('\u{1f}');
    s.push_str(&normalize_reason(task.stopped_reason.as_deref().unwrap_or("")));
    let mut containers: Vec<String> = task
        .containers
        .iter()
        .map(|c| {
            format!(
                "{}={}:{}",
                c.name,
                c.exit_code.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
                normalize_reason(c.reason.as_deref().unwrap_or(""))
            )
        })
        .collect();
    containers.sort();
    for c in containers {
        s.push('\u{1f}');
        s.push_str(&c);
    }
    s
}

/// A stop reason with what varies from task to task masked: hex ids of 8+ characters (task ids,
/// session names, container ids), UUIDs, IPv4 addresses and other numbers.
pub fn normalize_reason(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphanumeric() {
            // A token of letters, digits, '-' and '.'.
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '-' || chars[i] == '.') {
                i += 1;
            }
            let token: String = chars[start..i].iter().collect();
            out.push_str(&mask_token(&token));
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn mask_token(token: &str) -> String {
    let trimmed = token.trim_end_matches('.');
    let tail = &token[trimmed.len()..];
    // EC2 ids: ENIs, instances, volumes, security groups, subnets (`eni-0a1b2c3d`), and ECS
    // Anywhere managed instances (`mi-...`).
    if let Some((kind, id)) = trimmed.split_once('-') {
        let ec2 = matches!(
            kind,
            "eni" | "i" | "mi" | "vol" | "sg" | "subnet" | "vpc" | "snap" | "ami" | "attachment"
        );
        if ec2 && id.len() >= 8 && id.chars().all(|c| c.is_ascii_hexdigit()) {
            return format!("<{kind}-id>{tail}");
        }
    }
    let is_ipv4 = {
        let parts: Vec<&str> = trimmed.split('.').collect();
        parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
    };
    if is_ipv4 {
        return format!("<ip>{tail}");
    }
    let hexish = trimmed.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let hex_digits = trimmed.chars().filter(|c| c.is_ascii_hexdigit()).count();
    let has_digit = trimmed.chars().any(|c| c.is_ascii_digit());
    if hexish && hex_digits >= 8 && has_digit {
        return format!("<id>{tail}");
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) && !trimmed.is_empty() {
        return format!("<n>{tail}");
    }
    token.to_string()
}

/// Parses `--since`: a whole number and a unit, `s`, `m`, `h`, `d` or `w` (`30m`, `1h`, `2d`).
pub fn parse_since(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("--since `{s}` is not a duration: use a number and a unit (s, m, h, d, w), e.g. 30m, 1h or 2d");
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs_per = match unit.trim() {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hr" | "hrs" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("--since `{s}` must be longer than zero"));
    }
    n.checked_mul(secs_per)
        // Beyond ~300 years there is nothing to filter; keep the arithmetic on i64 ms safe.
        .filter(|secs| *secs < 10_000_000_000)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("--since `{s}` is too long"))
}

/// A resource with what varies from task to task (task ids, ENI and instance ids, request ids,
/// numbers and dates in paths) replaced by `*`, so one cause of many tasks is one group showing the
/// common pattern: `...:log-stream:ecs/app/*`. The ARN's partition, service, region and account
/// stay as they are.
pub fn resource_pattern(resource: &str) -> String {
    let (head, rest) = match crate::arn::Arn::parse(resource) {
        Some(a) => resource.split_at(resource.len() - a.resource.len()),
        None => ("", resource),
    };
    let mut out = String::from(head);
    let mut segment = String::new();
    let flush = |segment: &mut String, out: &mut String| {
        if is_variable(segment) {
            // `2026/11/23` is one varying part.
            if !out.ends_with("*/") && !out.ends_with('*') {
                out.push('*');
            } else if out.ends_with("*/") {
                out.pop();
            }
        } else {
            out.push_str(segment);
        }
        segment.clear();
    };
    for c in rest.chars() {
        if c == '/' || c == ':' {
            flush(&mut segment, &mut out);
            out.push(c);
        } else {
            segment.push(c);
        }
    }
    flush(&mut segment, &mut out);
    out
}

/// A path or ARN segment that differs from task to task: a number, an id, a date or a time.
fn is_variable(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    let digits = segment.chars().filter(char::is_ascii_digit).count();
    let all_digits = digits == segment.len();
    let id_like = mask_token(segment) != segment;
    let date_like = segment.len() >= 8
        && segment.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && segment.as_bytes()[4] == b'-'
        && digits >= 6;
    all_digits || id_like || date_like
}

/// The cluster name all tasks share, if they do.
pub fn common_cluster(tasks: &[Task]) -> Option<String> {
    let names: Vec<&str> = tasks
        .iter()
        .filter_map(|t| t.cluster_arn.as_deref())
        .map(|a| crate::arn::Arn::parse(a).map_or(a, |arn| arn.resource_name()))
        .collect();
    let first = *names.first()?;
    names.iter().all(|n| *n == first).then(|| first.to_string())
}

/// What `--service` and `--since` keep.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub service: Option<String>,
    /// The raw `--since` text (for notes) and its duration.
    pub since: Option<(String, Duration)>,
}

impl Filter {
    /// `--since` as a cutoff in ms since the epoch: what stopped (or happened) before it is left out.
    fn cutoff_ms(&self) -> Option<i64> {
        let (_, d) = self.since.as_ref()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Some(now - d.as_millis() as i64)
    }
}

/// Applies `--service` (by the task's group, since not every ListTasks honours serviceName) and
/// `--since` (by stoppedAt; tasks without one are kept and counted in a note).
pub fn filter_tasks(mut tasks: Vec<Task>, f: &Filter, notes: &mut Vec<String>) -> Vec<Task> {
    if let Some(svc) = &f.service {
        let want = format!("service:{svc}");
        let before = tasks.len();
        tasks.retain(|t| t.group.as_deref().is_none_or(|g| g == want));
        if tasks.len() < before {
            notes.push(format!(
                "{} listed task(s) did not belong to service {svc} (their group is not `{want}`) and were left out",
                before - tasks.len()
            ));
        }
    }
    if let (Some((raw, _)), Some(cutoff)) = (&f.since, f.cutoff_ms()) {
        let before = tasks.len();
        let unknown = tasks.iter().filter(|t| t.stopped_at.is_none()).count();
        tasks.retain(|t| t.stopped_at.is_none_or(|s| s.0 >= cutoff));
        if tasks.len() < before {
            notes.push(format!(
                "{} task(s) stopped more than {raw} ago were left out (--since)",
                before - tasks.len()
            ));
        }
        if unknown > 0 {
            notes.push(format!(
                "{unknown} task(s) have no stoppedAt and were kept: --since could not judge them"
            ));
        }
    }
    tasks
}

/// Newest first, then by ARN: the order tasks are diagnosed and representatives picked in.
pub fn sort_tasks(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| {
        b.stopped_at
            .cmp(&a.stopped_at)
            .then_with(|| a.task_arn.cmp(&b.task_arn))
    });
}

/// One task's result.
pub fn result_of(t: &Task, d: Diagnosis, logs_read: bool, inferred: bool) -> TaskResult {
    TaskResult {
        task_arn: t.task_arn.clone().unwrap_or_else(|| "(no taskArn)".into()),
        stopped_at: t.stopped_at,
        diagnosis: Arc::new(d),
        logs_read,
        inferred,
    }
}

/// The evidence of a task without logs: the task and, when known, its task definition.
pub fn evidence_of(t: &Task, defs: &BTreeMap<String, TaskDefinition>) -> Evidence {
    Evidence {
        task: t.clone(),
        task_definition: t.task_definition_arn.as_ref().and_then(|a| defs.get(a)).cloned(),
        ..Evidence::default()
    }
}

/// Every task diagnosed from what ECS said, without logs.
pub fn diagnose_all(
    tasks: &[Task],
    defs: &BTreeMap<String, TaskDefinition>,
    matcher: &Matcher,
    opts: &Options,
) -> Vec<TaskResult> {
    tasks
        .iter()
        .map(|t| result_of(t, diagnose(&evidence_of(t, defs), matcher, opts), false, false))
        .collect()
}

/// The tasks whose verdict needs logs, grouped by failure signature (task indexes, newest first),
/// and the representatives whose logs are read: at most `samples` per signature.
pub fn representatives(
    results: &[TaskResult],
    tasks: &[Task],
    matcher: &Matcher,
    samples: usize,
) -> (BTreeMap<String, Vec<usize>>, Vec<usize>) {
    let mut signatures: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        if needs_logs(&r.diagnosis, matcher) {
            signatures.entry(signature(&tasks[i])).or_default().push(i);
        }
    }
    let reps = signatures
        .values()
        .flat_map(|ix| ix.iter().take(samples).copied())
        .collect();
    (signatures, reps)
}

/// The rest of each signature takes its representatives' verdict when they agree (and says so);
/// when they disagree, the rest keeps the verdict of its own stop reason and a note says why.
pub fn infer_from_representatives(
    results: &mut [TaskResult],
    signatures: &BTreeMap<String, Vec<usize>>,
    notes: &mut Vec<String>,
) {
    for members in signatures.values() {
        let (read, rest): (Vec<usize>, Vec<usize>) = members.iter().partition(|&&i| results[i].logs_read);
        let Some(&first) = read.first() else { continue };
        let key = GroupKey::of(&results[first].diagnosis);
        if read.iter().any(|&i| GroupKey::of(&results[i].diagnosis) != key) {
            notes.push(format!(
                "{} task(s) with the same failure as {} kept the verdict of their stop reason: the logs of their representatives disagreed (run `ecsdoctor why` on them)",
                rest.len(),
                results[first].task_arn
            ));
            continue;
        }
        let shared = results[first].diagnosis.clone();
        for i in rest {
            if GroupKey::of(&results[i].diagnosis) != key {
                results[i].diagnosis = shared.clone();
                results[i].inferred = true;
            }
        }
    }
}

/// A service's failure events as results of their own: each message diagnosed as a paste from a
/// task that never started. Events no rule explains (a steady state, tasks started or stopped)
/// are not failures and are left out; so are events older than `--since`.
pub fn event_results(
    events: &[crate::source::aws::task::ServiceEvent],
    f: &Filter,
    matcher: &Matcher,
    opts: &Options,
) -> Vec<TaskResult> {
    let cutoff = f.cutoff_ms();
    let hints = crate::verdict::Hints {
        started: Some(false),
        ..crate::verdict::Hints::default()
    };
    events
        .iter()
        .filter(|e| match (cutoff, e.created_at) {
            (Some(c), Some(t)) => t.0 >= c,
            _ => true,
        })
        .filter_map(|e| {
            let d = crate::verdict::explain_with(&e.message, &hints, matcher, opts);
            d.conclusive().then(|| TaskResult {
                task_arn: format!("service-event {}", e.id),
                stopped_at: e.created_at,
                diagnosis: Arc::new(d),
                logs_read: false,
                inferred: false,
            })
        })
        .collect()
}
