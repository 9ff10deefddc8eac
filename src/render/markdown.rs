//! Markdown for incident chat and docs: a bold headline, the phase with its signals, the fix, and
//! the evidence in a fenced block. No ANSI, no HTML. Every untrusted string goes through
//! `sanitize::markdown_inline` or `markdown_code`, so it cannot ping a channel, render a link, or
//! break out of its code block.

use std::io::{self, Write};

use super::RenderOptions;
use crate::rules::{Category, Culprit};
use crate::sanitize::{markdown_code, markdown_inline};
use crate::verdict::Diagnosis;

/// Writes a diagnosis as markdown.
pub fn diagnosis(d: &Diagnosis, o: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    let v = &d.verdict;
    let tag = match v.culprit {
        Culprit::NotIam => format!("Not IAM ({})", v.category.name()),
        Culprit::Unknown if v.category == Category::Unknown => "Inconclusive".to_string(),
        c => format!("IAM: {}", c.describe()),
    };
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
    if let Some(p) = v.policy {
        writeln!(w, "- **Policy layer:** {}", p.name())?;
    }
    if let Some(who) = &v.who_must_act {
        writeln!(w, "- **Who acts:** {}", markdown_inline(who))?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "**Fix:** {}",
        // The fix is the rule's own markdown; the values filled into it were made markdown-safe.
        v.fix.lines().map(str::trim_end).collect::<Vec<_>>().join(" ")
    )?;
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
