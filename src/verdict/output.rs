//! The edge where the output model is built: every string that reaches a terminal, a chat or JSON
//! is cleaned here, and nowhere in the verdict logic. Evidence (log lines, stop reasons, names,
//! ARNs from messages) is made terminal-safe, redacted and capped; text ecsdoctor composes (rule
//! prose, summaries, reasons) loses escapes and, with `--redact-accounts`, account ids, but is not
//! read as `key: value` secrets; values filled into a rule's fix template are also kept from
//! breaking the template's markdown.

use super::{Diagnosis, Finding, Options};
use crate::sanitize;

/// Untrusted text to display: control sequences stripped, secrets redacted, length capped.
pub fn clean(s: &str, opts: &Options) -> String {
    sanitize::clean(s, opts.redact)
}

fn composed(s: &str, opts: &Options) -> String {
    sanitize::clean_composed(s, opts.redact)
}

/// A value filled into a fix template: cleaned, and unable to break the template's markdown.
pub fn fix_value(raw: &str, opts: &Options) -> String {
    sanitize::markdown_code(&clean(raw, opts))
        .replace('[', "［")
        .replace(']', "］")
}

/// Cleans a finding as it joins the model (before the verdict quotes its values).
pub(super) fn clean_finding(f: &mut Finding, opts: &Options) {
    let u = |x: &mut String| *x = clean(x, opts);
    u(&mut f.source);
    u(&mut f.evidence);
    f.resource.iter_mut().for_each(u);
    f.principal.iter_mut().for_each(u);
    f.role_arn.iter_mut().for_each(u);
    f.reason = composed(&f.reason, opts);
    if let Some((scope, note)) = &mut f.scope {
        u(scope);
        *note = composed(note, opts);
    }
    f.operation.iter_mut().for_each(u);
}

/// The last line of defence: every string in the output model, whatever its origin (task
/// metadata, container names, file names), is made terminal-safe and redacted. Both steps are
/// idempotent, so strings cleaned earlier are unchanged.
pub(super) fn scrub(d: &mut Diagnosis, opts: &Options) {
    let u = |x: &mut String| *x = clean(x, opts);
    let full = |x: &mut String| *x = sanitize::clean_lines(x, opts.redact);
    let template = |x: &mut String| *x = composed(x, opts);
    fn walk(v: &mut serde_json::Value, f: &dyn Fn(&mut String)) {
        match v {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| walk(x, f)),
            _ => {}
        }
    }
    d.task_arn.iter_mut().for_each(full);
    d.launch_type.iter_mut().for_each(full);
    d.last_status.iter_mut().for_each(full);
    d.stop_code.iter_mut().for_each(full);
    d.stopped_reason.iter_mut().for_each(u);
    d.phase_signals.iter_mut().for_each(template);
    d.roles.execution_role_arn.iter_mut().for_each(full);
    d.roles.task_role_arn.iter_mut().for_each(full);
    for c in &mut d.containers {
        u(&mut c.name);
        c.last_status.iter_mut().for_each(full);
        c.reason.iter_mut().for_each(u);
    }
    let v = &mut d.verdict;
    v.role_arn.iter_mut().for_each(full);
    v.permissions.iter_mut().for_each(full);
    v.resource.iter_mut().for_each(full);
    v.resource_scope.iter_mut().for_each(full);
    v.scope_note.iter_mut().for_each(template);
    template(&mut v.summary);
    template(&mut v.confidence_reason);
    template(&mut v.fix);
    v.rule_id.iter_mut().for_each(full);
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
        f.denied_action.iter_mut().for_each(full);
        f.resource.iter_mut().for_each(full);
        f.principal.iter_mut().for_each(full);
        f.role_arn.iter_mut().for_each(full);
        template(&mut f.reason);
        template(&mut f.fix);
    }
    d.notes.iter_mut().for_each(u);
}
