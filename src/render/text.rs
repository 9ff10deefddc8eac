//! Text output for a person at a terminal: a one-line verdict first, then why (phase signals and
//! the quoted evidence with its source), then the fix with the role, actions and policy snippets.

use std::io::{self, Write};

use owo_colors::OwoColorize;

use super::{api_line, label, logs_line, plural, scope, seen, tag_text, RenderOptions, EXAMPLES_SHOWN};
use crate::rules::{Category, Culprit};
use crate::scan::ScanReport;
use crate::verdict::Diagnosis;

/// Writes a diagnosis as text.
pub fn diagnosis(d: &Diagnosis, o: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    let s = &o.styles;
    let v = &d.verdict;
    let tag_style = match (v.culprit, v.category) {
        (Culprit::NotIam, _) => s.not_iam,
        (Culprit::Unknown, Category::Unknown) => s.unknown,
        _ => s.iam,
    };
    let tag = tag_text(v.culprit, v.category);
    writeln!(w, "{} {}", tag.style(tag_style), v.summary.style(s.headline))?;
    if let Some(t) = &d.task_arn {
        writeln!(w, "{} {t}", "task:".style(s.label))?;
    }
    let mut facts = Vec::new();
    if let Some(l) = &d.launch_type {
        facts.push(format!("launch type {l}"));
    }
    if let Some(st) = &d.last_status {
        facts.push(format!("status {st}"));
    }
    if let Some(c) = &d.stop_code {
        facts.push(format!("stopCode {c}"));
    }
    if !facts.is_empty() {
        writeln!(w, "{} {}", "state:".style(s.label), facts.join(", "))?;
    }
    writeln!(
        w,
        "{} {}{}",
        "phase:".style(s.label),
        d.phase.name(),
        if d.phase_signals.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.phase_signals.join("; "))
        }
    )?;
    writeln!(
        w,
        "{} {} — {}",
        "confidence:".style(s.label),
        v.confidence.name(),
        v.confidence_reason
    )?;
    if let Some(ver) = &v.verification {
        let (head, details) = super::verification_lines(ver);
        writeln!(w, "{} {head}", "checked against the account:".style(s.label))?;
        for (label, text) in details {
            writeln!(w, "  {} {text}", format!("{label}:").style(s.dim))?;
        }
    }
    if d.roles.execution_role_arn.is_some() || d.roles.task_role_arn.is_some() {
        writeln!(
            w,
            "{} execution role {}, task role {}",
            "roles:".style(s.label),
            d.roles.execution_role_arn.as_deref().unwrap_or("(none)"),
            d.roles.task_role_arn.as_deref().unwrap_or("(none)")
        )?;
    }

    if !d.findings.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", "Why we think so".style(s.headline))?;
        for f in d.findings.iter().take(o.max_evidence.max(1)) {
            let times = if f.count > 1 {
                format!(" (x{})", f.count)
            } else {
                String::new()
            };
            writeln!(
                w,
                "  {} {}{times}  {}",
                "•".style(s.dim),
                f.rule_id.style(s.code),
                f.source.style(s.dim)
            )?;
            writeln!(w, "    {}", f.evidence)?;
            writeln!(
                w,
                "    {} {} — {}",
                "→".style(s.dim),
                f.culprit.describe_in(f.category),
                f.reason
            )?;
        }
        if d.findings.len() > o.max_evidence.max(1) {
            writeln!(
                w,
                "  {} more finding(s); --format json lists all",
                d.findings.len() - o.max_evidence.max(1)
            )?;
        }
    }

    writeln!(w)?;
    writeln!(w, "{}", "Fix".style(s.headline))?;
    if let Some(r) = &v.role_arn {
        writeln!(w, "  {} {r}", "principal:".style(s.label))?;
    }
    if !v.permissions.is_empty() {
        writeln!(w, "  {} {}", "actions:".style(s.label), v.permissions.join(", "))?;
    }
    if let Some(r) = &v.resource {
        writeln!(w, "  {} {r}", "resource:".style(s.label))?;
    }
    if let Some(scope) = &v.resource_scope {
        let note = v.scope_note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        writeln!(w, "  {} {scope}{note}", "grant on:".style(s.label))?;
    }
    if let Some(p) = v.policy {
        writeln!(w, "  {} {}", "policy layer:".style(s.label), p.name())?;
    }
    if let Some(who) = &v.who_must_act {
        writeln!(w, "  {} {who}", "who acts:".style(s.label))?;
    }
    for line in v.fix.lines() {
        writeln!(w, "  {line}")?;
    }
    if let Some(p) = &v.iam_policy {
        writeln!(w)?;
        writeln!(w, "  {}", "Policy statement:".style(s.label))?;
        let text = serde_json::to_string_pretty(p).map_err(io::Error::other)?;
        for line in text.lines() {
            writeln!(w, "    {line}")?;
        }
    }
    if let Some(tf) = &v.terraform {
        writeln!(w)?;
        writeln!(w, "  {}", "Terraform:".style(s.label))?;
        for line in tf.lines() {
            writeln!(w, "    {line}")?;
        }
    }
    if !v.also.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", "Also seen".style(s.headline))?;
        for a in &v.also {
            writeln!(w, "  - {a}")?;
        }
    }
    if !d.notes.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", "Notes".style(s.headline))?;
        for n in &d.notes {
            writeln!(w, "  - {}", n.style(s.dim))?;
        }
    }
    Ok(())
}

/// A scan report as text: one block per cause, most tasks first.
pub fn scan(r: &ScanReport, o: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
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
            tag_text(g.culprit, g.category).style(tag_style),
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
        if let Some(ver) = &g.verification {
            let (head, _) = super::verification_lines(ver);
            writeln!(w, "   {} {head}", label("checked:").style(s.label))?;
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
        writeln!(w, "{}", super::NO_TASKS)?;
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
