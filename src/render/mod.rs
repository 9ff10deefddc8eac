//! Renderers: pure functions from the output model to a writer. Only `text` is ever colored, and
//! only through the [`Styles`] decided once in `main`; untrusted strings in the model were
//! sanitized when the model was built, and markdown escapes them again for chat.

pub mod markdown;
pub mod text;

use std::io::{self, Write};

use owo_colors::Style;

use crate::cli::Format;
use crate::rules::{Category, Culprit};
use crate::scan::{ApiCalls, Group, ScanReport};
use crate::verdict::Diagnosis;

/// The styles text output uses. `Styles::default()` is plain; `colored()` adds ANSI colors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Styles {
    pub headline: Style,
    pub iam: Style,
    pub not_iam: Style,
    pub unknown: Style,
    pub label: Style,
    pub dim: Style,
    pub code: Style,
}

impl Styles {
    /// Colored styles.
    pub fn colored() -> Styles {
        Styles {
            headline: Style::new().bold(),
            iam: Style::new().red().bold(),
            not_iam: Style::new().green().bold(),
            unknown: Style::new().yellow().bold(),
            label: Style::new().cyan(),
            dim: Style::new().dimmed(),
            code: Style::new().yellow(),
        }
    }
}

/// Render settings.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub styles: Styles,
    /// Most findings quoted.
    pub max_evidence: usize,
}

/// Writes a diagnosis in the chosen format.
pub fn diagnosis(d: &Diagnosis, format: Format, opts: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::diagnosis(d, opts, w),
        Format::Markdown => markdown::diagnosis(d, opts, w),
        Format::Json => json(d, w),
    }
}

/// Writes a scan report in the chosen format.
pub fn scan(r: &ScanReport, format: Format, opts: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::scan(r, opts, w),
        Format::Markdown => markdown::scan(r, w),
        Format::Json => json(r, w),
    }
}

/// The verdict's tag in text: `NOT IAM (network)`, `INCONCLUSIVE`, `EXECUTION-ROLE`.
pub(super) fn tag_text(culprit: Culprit, category: Category) -> String {
    match culprit {
        Culprit::NotIam if category == Category::Iam => "CALLER (iam)".to_string(),
        Culprit::NotIam => format!("NOT IAM ({})", category.name()),
        Culprit::Unknown if category == Category::Unknown => "INCONCLUSIVE".to_string(),
        c => c.name().to_ascii_uppercase(),
    }
}

/// The verdict's tag in markdown: `Not IAM (network)`, `Inconclusive`, `IAM: the task role`
/// (also the Lambda runner's summaries).
pub fn tag_markdown(culprit: Culprit, category: Category) -> String {
    match culprit {
        Culprit::NotIam if category == Category::Iam => "IAM: the caller, not the task's roles".to_string(),
        Culprit::NotIam => format!("Not IAM ({})", category.name()),
        Culprit::Unknown if category == Category::Unknown => "Inconclusive".to_string(),
        c => format!("IAM: {}", c.describe()),
    }
}

/// A rule's fix on one line for chat: the template is the rule author's markdown and the values
/// filled into it were made markdown-safe, so it is printed as it is.
pub(super) fn fix_line(fix: &str) -> String {
    fix.lines().map(str::trim_end).collect::<Vec<_>>().join(" ")
}

/// What a scan says when it found nothing to diagnose.
pub(super) const NO_TASKS: &str = "No stopped tasks to diagnose (ECS keeps stopped tasks for about an hour).";

/// Example task ARNs shown per group in text and markdown (JSON lists them all).
pub const EXAMPLES_SHOWN: usize = 5;

pub(super) fn scope(r: &ScanReport) -> String {
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

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) fn seen(g: &Group) -> Option<String> {
    match (g.first_seen, g.last_seen) {
        (Some(a), Some(b)) if a == b => Some(a.to_iso()),
        (Some(a), Some(b)) => Some(format!("{} .. {}", a.to_iso(), b.to_iso())),
        _ => None,
    }
}

/// A text label padded to one width, so the values line up.
pub(super) fn label(l: &str) -> String {
    format!("{l:<10}")
}

pub(super) fn api_line(c: &ApiCalls) -> String {
    let services = if c.describe_services > 0 {
        format!(", DescribeServices {}", c.describe_services)
    } else {
        String::new()
    };
    format!(
        "ListTasks {}, DescribeTasks {}, DescribeTaskDefinition {}, GetLogEvents {}, FilterLogEvents {}{services} ({} in all)",
        c.list_tasks,
        c.describe_tasks,
        c.describe_task_definition,
        c.get_log_events,
        c.filter_log_events,
        c.total()
    )
}

pub(super) fn logs_line(r: &ScanReport) -> String {
    let mut s = format!("logs read for {} of {}", plural(r.logs_read, "task", "tasks"), r.tasks);
    if r.service_events > 0 {
        s.push_str(&format!(
            "; {} of the service that no task tells of",
            plural(r.service_events, "failure event", "failure events")
        ));
    }
    if r.inferred > 0 {
        s.push_str(&format!(
            "; {} took the verdict of representatives with the same failure signature",
            plural(r.inferred, "task", "tasks")
        ));
    }
    s
}

/// Pretty JSON of any serializable model, with a final newline.
/// The verification of a verdict, for text and markdown: the headline ("confirmed — ...") and
/// the details (deciding statement, disagreement, what could not be read, the simulator), each a
/// label and its text. Strings are already scrubbed by `verify`.
pub(crate) fn verification_lines(
    v: &crate::verdict::verification::Verification,
) -> (String, Vec<(&'static str, String)>) {
    let head = format!("{} — {}", v.status.name(), v.summary);
    let mut details: Vec<(&'static str, String)> = Vec::new();
    if let Some(s) = &v.statement {
        details.push(("deciding statement", s.to_string()));
    }
    if let Some(d) = &v.disagreement {
        details.push(("note", d.clone()));
    }
    for c in &v.changed_after_stop {
        details.push(("changed since the stop", c.clone()));
    }
    for u in &v.unreadable {
        let grant = u.grant.as_deref().map(|g| format!("; grant {g}")).unwrap_or_default();
        details.push(("not read", format!("{} ({}): {}{grant}", u.subject, u.call, u.error)));
    }
    if !v.checked.is_empty() {
        details.push(("read", v.checked.join("; ")));
    }
    if let Some(sim) = &v.simulation {
        if let Some(e) = &sim.error {
            details.push(("simulator", format!("not asked: {e}")));
        }
        for r in &sim.results {
            let verdict = if r.agrees { "agrees" } else { "DISAGREES" };
            let caveat = r.caveat.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
            details.push(("simulator", format!("{}: {} — {verdict}{caveat}", r.action, r.decision)));
        }
    }
    (head, details)
}

pub fn json<T: serde::Serialize>(value: &T, w: &mut dyn Write) -> io::Result<()> {
    // `From` keeps an io error's kind, so a closed pipe is still recognised as one.
    serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::from)?;
    writeln!(w)
}
