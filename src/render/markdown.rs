//! Markdown for incident chat and docs: a bold headline, the phase with its signals, the fix, and
//! the evidence in a fenced block. No ANSI, no HTML. Every untrusted string goes through
//! `sanitize::markdown_inline` or `markdown_code`, so it cannot ping a channel, render a link, or
//! break out of its code block.

use std::io::{self, Write};

use super::{api_line, fix_line, logs_line, plural, scope, seen, tag_markdown, RenderOptions, EXAMPLES_SHOWN};
use crate::sanitize::{markdown_code, markdown_inline};
use crate::scan::ScanReport;
use crate::verdict::Diagnosis;

/// Writes a diagnosis as markdown.
pub fn diagnosis(d: &Diagnosis, o: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    let v = &d.verdict;
    let tag = tag_markdown(v.culprit, v.category);
    writeln!(w, "**ecsdoctor — {}:** {}", tag, markdown_inline(&v.summary))?;
    writeln!(w)?;
    if let Some(t) = &d.task_arn {
        writeln!(w, "- **Task:** `{}`", markdown_code(t))?;
    }
    let signals = if d.phase_signals.is_empty() {
        String::new()
    } else {
        format!(
            " — {}",
            d.phase_signals
                .iter()
                .map(|s| markdown_inline(s))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    writeln!(w, "- **Phase:** {}{signals}", d.phase.name())?;
    writeln!(
        w,
        "- **Confidence:** {} — {}",
        v.confidence.name(),
        markdown_inline(&v.confidence_reason)
    )?;
    if let Some(ver) = &v.verification {
        let (head, details) = super::verification_lines(ver);
        writeln!(w, "- **Checked against the account:** {}", markdown_inline(&head))?;
        for (label, text) in details {
            writeln!(w, "  - {label}: {}", markdown_inline(&text))?;
        }
    }
    if let Some(r) = &v.role_arn {
        writeln!(w, "- **Principal:** `{}`", markdown_code(r))?;
    }
    if !v.permissions.is_empty() {
        let acts: Vec<String> = v
            .permissions
            .iter()
            .map(|p| format!("`{}`", markdown_code(p)))
            .collect();
        writeln!(w, "- **Actions:** {}", acts.join(", "))?;
    }
    if let Some(r) = &v.resource {
        writeln!(w, "- **Resource:** `{}`", markdown_code(r))?;
    }
    if let Some(scope) = &v.resource_scope {
        let note = v
            .scope_note
            .as_deref()
            .map(|n| format!(" ({})", markdown_inline(n)))
            .unwrap_or_default();
        writeln!(w, "- **Grant on:** `{}`{note}", markdown_code(scope))?;
    }
    if let Some(p) = v.policy {
        writeln!(w, "- **Policy layer:** {}", p.name())?;
    }
    if let Some(who) = &v.who_must_act {
        writeln!(w, "- **Who acts:** {}", markdown_inline(who))?;
    }
    writeln!(w)?;
    writeln!(w, "**Fix:** {}", fix_line(&v.fix))?;
    if let Some(p) = &v.iam_policy {
        let text = serde_json::to_string_pretty(p).map_err(io::Error::other)?;
        writeln!(w)?;
        writeln!(w, "```json")?;
        for line in text.lines() {
            writeln!(w, "{}", markdown_code(line))?;
        }
        writeln!(w, "```")?;
    }
    if !d.findings.is_empty() {
        writeln!(w)?;
        writeln!(w, "**Evidence:**")?;
        writeln!(w, "```")?;
        let mut shown = std::collections::BTreeSet::new();
        for f in d.findings.iter().take(o.max_evidence.max(1)) {
            // Two rules matching one line quote it once.
            if shown.insert((&f.source, &f.evidence)) {
                writeln!(w, "[{}] {}", markdown_code(&f.source), markdown_code(&f.evidence))?;
            }
        }
        writeln!(w, "```")?;
    }
    if !v.also.is_empty() {
        writeln!(w)?;
        for a in &v.also {
            writeln!(w, "- _Also:_ {}", markdown_inline(a))?;
        }
    }
    for n in &d.notes {
        writeln!(w, "- _Note:_ {}", markdown_inline(n))?;
    }
    Ok(())
}

/// Markdown for incident chat: a bold headline, then one block per cause. Every string that came
/// from outside (stop reasons, ARNs, log-derived resources) goes through `markdown_inline` or
/// `markdown_code`.
pub fn scan(r: &ScanReport, w: &mut dyn Write) -> io::Result<()> {
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
        let who = tag_markdown(g.culprit, g.category);
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
        if let Some(ver) = &g.verification {
            let (head, _) = super::verification_lines(ver);
            writeln!(w, "- **Checked against the account:** {}", markdown_inline(&head))?;
        }
        writeln!(w, "- **Fix:** {}", fix_line(&g.fix))?;
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
        writeln!(w, "{}", super::NO_TASKS)?;
    }
    if !r.notes.is_empty() {
        writeln!(w)?;
        for n in &r.notes {
            writeln!(w, "- _Note:_ {}", markdown_inline(n))?;
        }
    }
    Ok(())
}
