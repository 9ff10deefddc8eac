//! `ecsdoctor scan`'s model: many tasks' diagnoses grouped by cause, and the pure decisions the
//! scan makes on the way (which verdicts need the logs, which tasks share a failure signature so
//! that a few representatives speak for all, how `--since` is read), plus the text, markdown and
//! JSON renderers of the report. Fetching lives in `cmd::scan`; nothing here does I/O but write.
//!
//! The JSON is the contract: `{"version": 1, "cluster", "tasks", "logs_read", "groups": [...],
//! "api_calls": {...}}`, groups sorted by count (descending), then by key; no "now" timestamp.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use owo_colors::OwoColorize;
use serde::Serialize;

use crate::cli::Format;
use crate::evidence::{Task, Timestamp};
use crate::render::RenderOptions;
use crate::rules::engine::Matcher;
use crate::rules::{Category, Culprit, PolicyLayer, RulePhase};
use crate::sanitize::{markdown_code, markdown_inline};
use crate::verdict::{Diagnosis, Phase};

/// The scan JSON contract's version.
pub const SCAN_SCHEMA_VERSION: u32 = 1;

/// Example task ARNs shown per group in text and markdown (JSON lists them all).
pub const EXAMPLES_SHOWN: usize = 5;

/// One task's result in a scan.
#[derive(Debug, Clone)]
pub struct TaskResult {
    /// The task ARN (or `(no taskArn)` for a pasted task without one).
    pub task_arn: String,
    /// When it stopped, if ECS said.
    pub stopped_at: Option<Timestamp>,
    /// Its diagnosis — for an inferred task, the representative's.
    pub diagnosis: Arc<Diagnosis>,
    /// Its own logs were read.
    pub logs_read: bool,
    /// Its verdict was taken from representatives with the same failure signature, whose logs
    /// were read, and differs from what its stop reason alone said.
    pub inferred: bool,
}

/// What makes two verdicts the same cause: who must act, on what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub culprit: Culprit,
    pub category: Category,
    pub rule_id: Option<String>,
    pub permissions: Vec<String>,
    pub resource: Option<String>,
}

impl GroupKey {
    /// The key of a diagnosis.
    pub fn of(d: &Diagnosis) -> GroupKey {
        let v = &d.verdict;
        GroupKey {
            culprit: v.culprit,
            category: v.category,
            rule_id: v.rule_id.clone(),
            permissions: v.permissions.clone(),
            resource: v.resource.clone(),
        }
    }
}

/// Tasks stopped for the same cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub culprit: Culprit,
    pub category: Category,
    pub rule_id: Option<String>,
    pub title: Option<String>,
    pub permissions: Vec<String>,
    pub resource: Option<String>,
    pub policy: Option<PolicyLayer>,
    pub count: usize,
    /// Earliest stoppedAt in the group (null when ECS gave none).
    pub first_seen: Option<Timestamp>,
    /// Latest stoppedAt in the group.
    pub last_seen: Option<Timestamp>,
    /// Every task, newest first.
    pub task_arns: Vec<String>,
    /// The fix of the group's representative.
    pub fix: String,
    /// The representative's one-line summary.
    pub summary: String,
    /// The role to fix, when the verdict names one.
    pub role_arn: Option<String>,
    /// Tasks of this group whose logs were read.
    pub logs_read: usize,
    /// Tasks of this group whose verdict was inferred from representatives (see [`TaskResult`]).
    pub inferred: usize,
}

impl Group {
    /// True when the group's verdict is not "inconclusive".
    pub fn conclusive(&self) -> bool {
        self.culprit != Culprit::Unknown || self.category != Category::Unknown
    }
}

/// AWS calls made, by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApiCalls {
    #[serde(rename = "ListTasks")]
    pub list_tasks: usize,
    #[serde(rename = "DescribeTasks")]
    pub describe_tasks: usize,
    #[serde(rename = "DescribeTaskDefinition")]
    pub describe_task_definition: usize,
    #[serde(rename = "GetLogEvents")]
    pub get_log_events: usize,
    #[serde(rename = "FilterLogEvents")]
    pub filter_log_events: usize,
}

impl ApiCalls {
    /// Counts calls by operation name (other names are ignored).
    pub fn count<'a>(ops: impl IntoIterator<Item = &'a str>) -> ApiCalls {
        let mut c = ApiCalls::default();
        for op in ops {
            match op {
                "ListTasks" => c.list_tasks += 1,
                "DescribeTasks" => c.describe_tasks += 1,
                "DescribeTaskDefinition" => c.describe_task_definition += 1,
                "GetLogEvents" => c.get_log_events += 1,
                "FilterLogEvents" => c.filter_log_events += 1,
                _ => {}
            }
        }
        c
    }

    /// All calls.
    pub fn total(&self) -> usize {
        self.list_tasks
            + self.describe_tasks
            + self.describe_task_definition
            + self.get_log_events
            + self.filter_log_events
    }
}

/// The whole scan report. `--format json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanReport {
    pub version: u32,
    pub cluster: Option<String>,
    pub service: Option<String>,
    pub family: Option<String>,
    pub since: Option<String>,
    /// Stopped tasks diagnosed.
    pub tasks: usize,
    /// Tasks whose logs were read.
    pub logs_read: usize,
    /// Tasks whose verdict was inferred from representatives' logs.
    pub inferred: usize,
    /// Distinct task definition revisions among the tasks.
    pub task_definitions: usize,
    pub groups: Vec<Group>,
    pub api_calls: ApiCalls,
    /// What was skipped or could not be read, and other remarks.
    pub notes: Vec<String>,
}

impl ScanReport {
    /// True when at least one task got a verdict (exit code 0).
    pub fn conclusive(&self) -> bool {
        self.groups.iter().any(Group::conclusive)
    }
}

/// Groups task results by [`GroupKey`]: count descending, then key. Tasks within a group are
/// newest first; the representative (whose fix and summary the group shows) is the newest task
/// whose logs were read, else the newest task.
pub fn group(results: &[TaskResult]) -> Vec<Group> {
    let mut by_key: BTreeMap<GroupKey, Vec<&TaskResult>> = BTreeMap::new();
    for r in results {
        by_key.entry(GroupKey::of(&r.diagnosis)).or_default().push(r);
    }
    let mut groups: Vec<(GroupKey, Group)> = by_key
        .into_iter()
        .map(|(key, mut members)| {
            members.sort_by(|a, b| newest_first(a, b));
            let rep = members.iter().find(|m| m.logs_read).unwrap_or(&members[0]);
            let v = &rep.diagnosis.verdict;
            let seen: Vec<Timestamp> = members.iter().filter_map(|m| m.stopped_at).collect();
            let g = Group {
                culprit: key.culprit,
                category: key.category,
                rule_id: key.rule_id.clone(),
                title: v.title.clone(),
                permissions: key.permissions.clone(),
                resource: key.resource.clone(),
                policy: v.policy,
                count: members.len(),
                first_seen: seen.iter().min().copied(),
                last_seen: seen.iter().max().copied(),
                task_arns: members.iter().map(|m| m.task_arn.clone()).collect(),
                fix: v.fix.clone(),
                summary: v.summary.clone(),
                role_arn: v.role_arn.clone(),
                logs_read: members.iter().filter(|m| m.logs_read).count(),
                inferred: members.iter().filter(|m| m.inferred).count(),
            };
            (key, g)
        })
        .collect();
    groups.sort_by(|(ka, a), (kb, b)| b.count.cmp(&a.count).then_with(|| ka.cmp(kb)));
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Newest stoppedAt first, tasks without one last, then by ARN.
pub fn newest_first(a: &TaskResult, b: &TaskResult) -> std::cmp::Ordering {
    match (a.stopped_at, b.stopped_at) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
    .then_with(|| a.task_arn.cmp(&b.task_arn))
}

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

/// Writes the report in the chosen format.
pub fn render(r: &ScanReport, format: Format, opts: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => render_text(r, opts, w),
        Format::Markdown => render_markdown(r, w),
        Format::Json => crate::render::json(r, w),
    }
}

fn tag(g: &Group) -> String {
    match g.culprit {
        Culprit::NotIam => format!("NOT IAM ({})", g.category.name()),
        Culprit::Unknown if g.category == Category::Unknown => "INCONCLUSIVE".to_string(),
        c => c.name().to_ascii_uppercase(),
    }
}

fn scope(r: &ScanReport) -> String {
    let mut s = match &r.cluster {
        Some(c) => format!("cluster {c}"),
        None => "the input".to_string(),
    };
    if let Some(svc) = &r.service {
        s.push_str(&format!(", service {svc}"));
    }
    if let Some(f) = &r.family {
        s.push_str(&format!(", family {f}"));
    }
    if let Some(since) = &r.since {
        s.push_str(&format!(", stopped in the last {since}"));
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn seen(g: &Group) -> Option<String> {
    match (g.first_seen, g.last_seen) {
        (Some(a), Some(b)) if a == b => Some(a.to_iso()),
        (Some(a), Some(b)) => Some(format!("{} .. {}", a.to_iso(), b.to_iso())),
        _ => None,
    }
}

/// A text label padded to one width, so the values line up.
fn label(l: &str) -> String {
    format!("{l:<10}")
}

fn api_line(c: &ApiCalls) -> String {
    format!(
        "ListTasks {}, DescribeTasks {}, DescribeTaskDefinition {}, GetLogEvents {}, FilterLogEvents {} ({} in all)",
        c.list_tasks,
        c.describe_tasks,
        c.describe_task_definition,
        c.get_log_events,
        c.filter_log_events,
        c.total()
    )
}

fn logs_line(r: &ScanReport) -> String {
    let mut s = format!("logs read for {} of {}", plural(r.logs_read, "task", "tasks"), r.tasks);
    if r.inferred > 0 {
        s.push_str(&format!(
            "; {} took the verdict of representatives with the same failure signature",
            plural(r.inferred, "task", "tasks")
        ));
    }
    s
}

/// Text for a person at a terminal.
pub fn render_text(r: &ScanReport, o: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    let s = &o.styles;
    writeln!(
        w,
        "{} {} in {}, {}",
        "ecsdoctor scan:".style(s.headline),
        plural(r.tasks, "stopped task", "stopped tasks"),
        scope(r),
        plural(r.groups.len(), "cause", "causes")
    )?;
    writeln!(
        w,
        "  {} {}; {}",
        "read:".style(s.label),
        logs_line(r),
        plural(
            r.task_definitions,
            "task definition revision",
            "task definition revisions"
        )
    )?;
    writeln!(w, "  {} {}", "API calls:".style(s.label), api_line(&r.api_calls))?;
    for (i, g) in r.groups.iter().enumerate() {
        let tag_style = match (g.culprit, g.category) {
            (Culprit::NotIam, _) => s.not_iam,
            (Culprit::Unknown, Category::Unknown) => s.unknown,
            _ => s.iam,
        };
        writeln!(w)?;
        writeln!(
            w,
            "{}. {}  {} {}",
            i + 1,
            plural(g.count, "task", "tasks").style(s.headline),
            tag(g).style(tag_style),
            g.summary.style(s.headline)
        )?;
        if let Some(id) = &g.rule_id {
            writeln!(w, "   {} {}", label("rule:").style(s.label), id.style(s.code))?;
        }
        if let Some(role) = &g.role_arn {
            writeln!(w, "   {} {role}", label("principal:").style(s.label))?;
        }
        if !g.permissions.is_empty() {
            writeln!(
                w,
                "   {} {}",
                label("actions:").style(s.label),
                g.permissions.join(", ")
            )?;
        }
        if let Some(res) = &g.resource {
            writeln!(w, "   {} {res}", label("resource:").style(s.label))?;
        }
        if let Some(seen) = seen(g) {
            writeln!(w, "   {} {seen}", label("stopped:").style(s.label))?;
        }
        if g.logs_read > 0 || g.inferred > 0 {
            writeln!(
                w,
                "   {} read for {}{}",
                label("logs:").style(s.label),
                plural(g.logs_read, "task", "tasks"),
                if g.inferred > 0 {
                    format!("; verdict inferred for {} more from them", g.inferred)
                } else {
                    String::new()
                }
            )?;
        }
        let mut fix = g.fix.lines();
        if let Some(first) = fix.next() {
            writeln!(w, "   {} {first}", label("fix:").style(s.label))?;
            for line in fix {
                writeln!(w, "   {} {line}", label(""))?;
            }
        }
        for (j, arn) in g.task_arns.iter().take(EXAMPLES_SHOWN).enumerate() {
            let l = label(if j == 0 { "tasks:" } else { "" });
            writeln!(w, "   {} {arn}", l.style(s.label))?;
        }
        if g.task_arns.len() > EXAMPLES_SHOWN {
            writeln!(
                w,
                "   {} {}",
                label(""),
                format!(
                    "... and {} more (--format json lists all)",
                    g.task_arns.len() - EXAMPLES_SHOWN
                )
                .style(s.dim)
            )?;
        }
    }
    if r.tasks == 0 {
        writeln!(w)?;
        writeln!(
            w,
            "No stopped tasks to diagnose (ECS keeps stopped tasks for about an hour)."
        )?;
    }
    if !r.notes.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", "Notes".style(s.headline))?;
        for n in &r.notes {
            writeln!(w, "  - {}", n.style(s.dim))?;
        }
    }
    Ok(())
}

/// Markdown for incident chat: a bold headline, then one block per cause. Every string that came
/// from outside (stop reasons, ARNs, log-derived resources) goes through `markdown_inline` or
/// `markdown_code`.
pub fn render_markdown(r: &ScanReport, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "**ecsdoctor scan — {} in {}:** {}",
        plural(r.tasks, "stopped task", "stopped tasks"),
        markdown_inline(&scope(r)),
        plural(r.groups.len(), "cause", "causes")
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "_{}; API calls: {}._",
        markdown_inline(&logs_line(r)),
        api_line(&r.api_calls)
    )?;
    for (i, g) in r.groups.iter().enumerate() {
        let who = match g.culprit {
            Culprit::NotIam => format!("Not IAM ({})", g.category.name()),
            Culprit::Unknown if g.category == Category::Unknown => "Inconclusive".to_string(),
            c => format!("IAM: {}", c.describe()),
        };
        writeln!(w)?;
        writeln!(
            w,
            "**{}. {} — {}:** {}",
            i + 1,
            plural(g.count, "task", "tasks"),
            who,
            markdown_inline(&g.summary)
        )?;
        if let Some(id) = &g.rule_id {
            writeln!(w, "- **Rule:** `{}`", markdown_code(id))?;
        }
        if let Some(role) = &g.role_arn {
            writeln!(w, "- **Principal:** `{}`", markdown_code(role))?;
        }
        if !g.permissions.is_empty() {
            let acts: Vec<String> = g
                .permissions
                .iter()
                .map(|p| format!("`{}`", markdown_code(p)))
                .collect();
            writeln!(w, "- **Actions:** {}", acts.join(", "))?;
        }
        if let Some(res) = &g.resource {
            writeln!(w, "- **Resource:** `{}`", markdown_code(res))?;
        }
        if let Some(seen) = seen(g) {
            writeln!(w, "- **Stopped:** {seen}")?;
        }
        writeln!(
            w,
            "- **Fix:** {}",
            g.fix.lines().map(markdown_inline).collect::<Vec<_>>().join(" ")
        )?;
        let examples: Vec<String> = g
            .task_arns
            .iter()
            .take(EXAMPLES_SHOWN)
            .map(|a| format!("`{}`", markdown_code(a)))
            .collect();
        let more = g.task_arns.len().saturating_sub(EXAMPLES_SHOWN);
        writeln!(
            w,
            "- **Tasks:** {}{}",
            examples.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )?;
    }
    if r.tasks == 0 {
        writeln!(w)?;
        writeln!(
            w,
            "No stopped tasks to diagnose (ECS keeps stopped tasks for about an hour)."
        )?;
    }
    if !r.notes.is_empty() {
        writeln!(w)?;
        for n in &r.notes {
            writeln!(w, "- _Note:_ {}", markdown_inline(n))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{Container, Evidence};
    use crate::verdict::{diagnose, Options};

    fn matcher() -> Matcher {
        Matcher::load(true, &[]).expect("built-in rules load")
    }

    fn task(arn: &str, reason: &str, stopped_at: Option<i64>) -> Task {
        Task {
            task_arn: Some(arn.into()),
            task_definition_arn: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3".into()),
            last_status: Some("STOPPED".into()),
            stopped_reason: Some(reason.into()),
            stopped_at: stopped_at.map(Timestamp),
            containers: vec![Container {
                name: "app".into(),
                exit_code: Some(1),
                ..Container::default()
            }],
            ..Task::default()
        }
    }

    fn result(t: &Task, m: &Matcher) -> TaskResult {
        let ev = Evidence {
            task: t.clone(),
            ..Evidence::default()
        };
        TaskResult {
            task_arn: t.task_arn.clone().unwrap_or_default(),
            stopped_at: t.stopped_at,
            diagnosis: Arc::new(diagnose(&ev, m, &Options::default())),
            logs_read: false,
            inferred: false,
        }
    }

    const SSM: &str = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/{ID} is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/prod/db because no identity-based policy allows the ssm:GetParameters action";

    #[test]
    fn normalize_masks_ids_ips_and_numbers() {
        let a = normalize_reason(&SSM.replace("{ID}", "0f3c1e2d4b5a69788796a5b4c3d2e1f0"));
        let b = normalize_reason(&SSM.replace("{ID}", "9a8b7c6d5e4f30211203f4e5d6c7b8a9"));
        assert_eq!(a, b);
        assert!(a.contains("ecsTaskExecutionRole/<id> is not authorized"), "{a}");
        assert_eq!(
            normalize_reason("dial tcp 10.0.1.23:443: i/o timeout"),
            "dial tcp <ip>:<n>: i/o timeout"
        );
        // Words and action names stay.
        assert_eq!(normalize_reason("ssm:GetParameters"), "ssm:GetParameters");
        assert_eq!(
            normalize_reason("Essential container in task exited"),
            "Essential container in task exited"
        );
    }

    #[test]
    fn signature_separates_exit_codes_and_revisions() {
        let a = task("arn:t/1", "Essential container in task exited", None);
        let mut b = task("arn:t/2", "Essential container in task exited", None);
        assert_eq!(signature(&a), signature(&b));
        b.containers[0].exit_code = Some(137);
        assert_ne!(signature(&a), signature(&b));
        let mut c = a.clone();
        c.task_definition_arn = Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:4".into());
        assert_ne!(signature(&a), signature(&c));
    }

    #[test]
    fn needs_logs_for_generic_runtime_exits_only() {
        let m = matcher();
        let exited = result(&task("arn:t/1", "Essential container in task exited", None), &m);
        assert!(needs_logs(&exited.diagnosis, &m), "{:?}", exited.diagnosis.verdict);
        let ssm = result(&task("arn:t/2", &SSM.replace("{ID}", "0f3c1e2d4b5a6978"), None), &m);
        assert!(!needs_logs(&ssm.diagnosis, &m), "{:?}", ssm.diagnosis.verdict);
        let nothing = result(&task("arn:t/3", "Something nobody has seen before", None), &m);
        assert!(!nothing.diagnosis.conclusive());
        assert!(needs_logs(&nothing.diagnosis, &m));
    }

    #[test]
    fn groups_sorted_by_count_with_first_and_last_seen() {
        let m = matcher();
        let mut results = Vec::new();
        for i in 0..3 {
            let t = task(
                &format!("arn:ssm/{i}"),
                &SSM.replace("{ID}", &format!("{i:032x}")),
                Some(1_000 + i),
            );
            results.push(result(&t, &m));
        }
        results.push(result(
            &task("arn:exit/0", "Essential container in task exited", Some(5_000)),
            &m,
        ));
        let groups = group(&results);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].culprit, Culprit::ExecutionRole);
        assert_eq!(groups[0].rule_id.as_deref(), Some("secret-ssm-access-denied"));
        assert_eq!(groups[0].first_seen, Some(Timestamp(1_000)));
        assert_eq!(groups[0].last_seen, Some(Timestamp(1_002)));
        // Newest first.
        assert_eq!(groups[0].task_arns, vec!["arn:ssm/2", "arn:ssm/1", "arn:ssm/0"]);
        assert_eq!(groups[1].count, 1);
    }

    #[test]
    fn since_accepts_units_and_rejects_the_rest() {
        assert_eq!(parse_since("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_since("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_since("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_since("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "h", "1", "1y", "-1h", "1.5h", "0m", "99999999999999999999d"] {
            let e = parse_since(bad).expect_err(bad);
            assert!(e.starts_with("--since"), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn api_calls_count_known_operations() {
        let c = ApiCalls::count(["ListTasks", "DescribeTasks", "DescribeTasks", "GetLogEvents", "Other"]);
        assert_eq!(c.list_tasks, 1);
        assert_eq!(c.describe_tasks, 2);
        assert_eq!(c.get_log_events, 1);
        assert_eq!(c.total(), 4);
    }

    #[test]
    fn markdown_escapes_untrusted_strings() {
        let m = matcher();
        let t = task("arn:x/```@here", "Essential container in task exited", None);
        let report = ScanReport {
            version: SCAN_SCHEMA_VERSION,
            cluster: Some("c".into()),
            service: None,
            family: None,
            since: None,
            tasks: 1,
            logs_read: 0,
            inferred: 0,
            task_definitions: 1,
            groups: group(&[result(&t, &m)]),
            api_calls: ApiCalls::default(),
            notes: vec![],
        };
        let mut out = Vec::new();
        render_markdown(&report, &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(!text.contains("x/```"), "{text}");
    }
}
