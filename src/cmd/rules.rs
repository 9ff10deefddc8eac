//! `ecsdoctor rules list|show|test|docs`.

use std::io::Write;

use super::{load_rules, with_stdout, Failure, Outcome};
use crate::cli::{Format, RulesCommand};
use crate::error::{EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_OK};
use crate::rules::engine::Matcher;
use crate::rules::selftest;
use crate::sanitize::RedactOptions;

/// Runs a `rules` subcommand.
pub fn run(cmd: &RulesCommand) -> Outcome {
    match cmd {
        RulesCommand::List { format, rules } => {
            let m = load_rules(rules)?;
            with_stdout(|w| list(&m, *format, w))?;
            Ok(EXIT_OK)
        }
        RulesCommand::Show { id, rules } => {
            let m = load_rules(rules)?;
            let Some(rule) = m.catalogue().get(id) else {
                return Err(Failure::new(
                    EXIT_BAD_INPUT,
                    format!("no rule `{id}`; `ecsdoctor rules list` shows the ids"),
                ));
            };
            let mut text = Vec::new();
            show(rule, &mut text).map_err(Failure::from)?;
            // A user's rule file is text from elsewhere too: no escapes reach the terminal.
            let safe = crate::sanitize::clean_lines(&String::from_utf8_lossy(&text), RedactOptions::default());
            with_stdout(|w| w.write_all(safe.as_bytes()))?;
            Ok(EXIT_OK)
        }
        RulesCommand::Test { rules, only_user } => {
            let m = load_rules(rules)?;
            let rep = selftest::run(&m, |r| !*only_user || !r.origin.builtin);
            with_stdout(|w| {
                for f in &rep.failures {
                    writeln!(
                        w,
                        "FAIL {} ({}): {} example did not behave: {}",
                        f.rule_id, f.location, f.kind, f.example
                    )?;
                }
                for f in &rep.todo_fixed {
                    writeln!(
                        w,
                        "todo fixed {} ({}): move to `match`: {}",
                        f.rule_id, f.location, f.example
                    )?;
                }
                writeln!(
                    w,
                    "{} rules, {} examples passed, {} failed, {} known gaps (todo_match)",
                    rep.rules,
                    rep.passed,
                    rep.failures.len(),
                    rep.todo_open.len()
                )
            })?;
            Ok(if rep.ok() { EXIT_OK } else { EXIT_INCONCLUSIVE })
        }
        RulesCommand::Docs => {
            let m = Matcher::load(true, &[])?;
            with_stdout(|w| w.write_all(catalogue_markdown(&m).as_bytes()))?;
            Ok(EXIT_OK)
        }
    }
}

fn list(m: &Matcher, format: Format, w: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = m
                .rules()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "culprit": r.culprit.name(), "category": r.category.name(),
                        "title": r.title, "look_in": r.look_in, "priority": r.priority,
                        "builtin": r.origin.builtin, "file": r.origin.path,
                    })
                })
                .collect();
            crate::render::json(&serde_json::json!({ "version": 1, "rules": rows }), w)
        }
        _ => {
            let width = m.rules().iter().map(|r| r.id.len()).max().unwrap_or(2);
            for r in m.rules() {
                writeln!(
                    w,
                    "{:width$}  {:14}  {:9}  {}",
                    r.id,
                    r.culprit.name(),
                    r.category.name(),
                    r.title
                )?;
            }
            Ok(())
        }
    }
}

fn show(r: &crate::rules::Rule, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "{} — {}", r.id, r.title)?;
    writeln!(
        w,
        "culprit: {}   category: {}   phase: {}   priority: {}{}",
        r.culprit.name(),
        r.category.name(),
        r.phase.name(),
        r.priority,
        if r.generic { "   generic" } else { "" }
    )?;
    if let Some(p) = r.policy {
        writeln!(w, "policy layer: {}", p.name())?;
    }
    let when = &r.when;
    let conditions: Vec<String> = [
        when.task_role.map(|p| format!("task-role = {}", p.name())),
        when.execution_role.map(|p| format!("execution-role = {}", p.name())),
        when.launch_type.map(|l| format!("launch-type = {}", l.name())),
        when.image_account.map(|a| format!("image-account = {}", a.name())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !conditions.is_empty() {
        writeln!(w, "only when: {}", conditions.join(", "))?;
    }
    writeln!(
        w,
        "looks in: {}",
        r.look_in.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    )?;
    writeln!(w, "defined in: {}:{}", r.origin.path, r.origin.line)?;
    if !r.permissions.is_empty() {
        writeln!(w, "permissions: {}", r.permissions.join(", "))?;
    }
    writeln!(w, "\n{}\n", r.explain.trim())?;
    writeln!(w, "Fix:\n{}\n", r.fix.trim())?;
    writeln!(w, "Pattern (case-insensitive):\n  {}\n", r.pattern)?;
    writeln!(w, "Matches, for example:")?;
    for e in &r.examples.matches {
        writeln!(w, "  + {e}")?;
    }
    writeln!(w, "Does not match:")?;
    for e in &r.examples.no_match {
        writeln!(w, "  - {e}")?;
    }
    writeln!(w, "Docs:")?;
    for d in &r.docs {
        writeln!(w, "  {d}")?;
    }
    if !r.sources.is_empty() {
        writeln!(w, "Sources of the examples:")?;
        for s in &r.sources {
            writeln!(w, "  {s}")?;
        }
    }
    Ok(())
}

/// The rule catalogue as markdown (docs/rules.md).
pub fn catalogue_markdown(m: &Matcher) -> String {
    let mut out = String::from("# ecsdoctor rule catalogue\n\nGenerated by `ecsdoctor rules docs` from `rules/*.toml`; do not edit by hand.\n\n");
    out.push_str(&format!(
        "{} rules.\n\n| id | culprit | category | title |\n|---|---|---|---|\n",
        m.rules().len()
    ));
    for r in m.rules() {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | {} | {} |\n",
            r.id,
            r.id,
            r.culprit.name(),
            r.category.name(),
            r.title.replace('|', "\\|")
        ));
    }
    for r in m.rules() {
        out.push_str(&format!(
            "\n## {}\n\n**{}** — culprit `{}`, category `{}`, looks in {}.\n\n",
            r.id,
            r.title,
            r.culprit.name(),
            r.category.name(),
            r.look_in
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if !r.permissions.is_empty() {
            out.push_str(&format!(
                "Permissions: {}\n\n",
                r.permissions
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push_str(r.explain.trim());
        out.push_str("\n\n**Fix.** ");
        out.push_str(r.fix.trim());
        out.push_str("\n\nExample:\n\n```\n");
        if let Some(e) = r.examples.matches.first() {
            out.push_str(&e.replace("```", "'''"));
        }
        out.push_str("\n```\n\n");
        for d in &r.docs {
            out.push_str(&format!("- Docs: <{d}>\n"));
        }
        for s in &r.sources {
            out.push_str(&format!("- Source: <{s}>\n"));
        }
    }
    out
}
