//! One rule hit becomes one [`Finding`]: the facts of the message (completed from neighbouring log
//! lines, where SDKs print the operation), who is denied, the permissions and resource of the fix,
//! the policy layer, and the rule's fix filled in. Strings stay raw here; [`super::output`] cleans
//! them where the finding is added to the model.

use super::confidence::{looks_truncated, Basis};
use super::{culprit, fix, phase, resource, Finding, Options, Phase, RankKey};
use crate::evidence::{Evidence, Field, Text};
use crate::rules::engine::{Hit, Matcher};
use crate::rules::extract::{self, Facts};
use crate::rules::knowledge::service_of;
use crate::rules::{is_action, Category, Culprit, Knowledge, Rule, RuleCulprit, RulePhase};
use crate::sanitize;

/// Where a text came from, as the output names it: `logs:app:42`, `container-reason:app`, ...
pub(super) fn source_of(t: &Text<'_>, pasted: bool) -> String {
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

/// How many log lines either side of a match complete its facts.
pub(super) const NEIGHBOURS: usize = 3;

/// Facts from the matched text, completed from its neighbours (an SDK often prints the operation
/// on the line before the denial) and from the rule's own named groups.
fn gather_facts(texts: &[Text<'_>], ti: usize, h: &Hit, matcher: &Matcher) -> Facts {
    let t = &texts[ti];
    let k = matcher.knowledge();
    // Read facts from what a person will see: a name split by an escape sequence must not
    // come out as another name.
    let mut f = extract::facts(&sanitize::terminal_safe(&t.text), k);
    let cap = |name: &str| h.captures.get(name).filter(|v| !v.is_empty()).cloned();
    if let Some(a) = cap("action").filter(|a| is_action(a)) {
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
    // A denial line that names no action (Ruby's `Aws::S3::Errors::AccessDenied in Job`) is often
    // followed or preceded by AWS's own sentence naming it: the action, the principal and the
    // resource come from that neighbour, when the rule is a denial that names no permission.
    let rule = &matcher.rules()[h.rule];
    if t.field == Field::Logs && f.action.is_none() && rule.permissions.is_empty() && rule.category == Category::Iam {
        borrow_action(texts, ti, &mut f, k);
    }
    if t.field == Field::Logs && (f.operation.is_none() || f.service.is_none() || f.principal.is_none()) {
        // Up to NEIGHBOURS lines either side in the same container (`texts` may hold only the
        // lines around matches: the line numbers say which are neighbours).
        let lo = ti.saturating_sub(NEIGHBOURS);
        let hi = (ti + NEIGHBOURS + 1).min(texts.len());
        for (j, n) in texts.iter().enumerate().take(hi).skip(lo) {
            if j == ti || !neighbour(t, n) {
                continue;
            }
            let (s, o) = extract::service_operation(&n.text, k);
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
            f.action = k.action_for(f.service.as_deref(), op);
            f.action_inferred = f.action.is_some();
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
        f.policy = extract::policy_layer(&t.text, f.action.as_deref(), k);
    }
    f
}

/// `n` is a log line of the same container within [`NEIGHBOURS`] lines of `t` (`texts` may hold
/// only the lines around matches: the line numbers say which are neighbours).
fn neighbour(t: &Text<'_>, n: &Text<'_>) -> bool {
    let near = n.line.zip(t.line).is_some_and(|(a, b)| a.abs_diff(b) <= NEIGHBOURS);
    n.field == Field::Logs && n.container == t.container && near
}

/// Completes a denial that names no action from the nearest neighbour naming one explicitly
/// (AWS's own sentence), if it is about the same principal and the same service as the line
/// itself says (`Aws::S3::Errors::AccessDenied` borrows no `sqs:` action).
fn borrow_action(texts: &[Text<'_>], ti: usize, f: &mut Facts, k: &Knowledge) {
    let t = &texts[ti];
    // The line's own service, as its facts already read it.
    let own_service = f.service.as_deref().and_then(|s| k.service_prefix(s));
    let nearest_first = (1..=NEIGHBOURS).flat_map(|d| [ti.checked_sub(d), ti.checked_add(d)]);
    for j in nearest_first.flatten().filter(|&j| j < texts.len()) {
        let n = &texts[j];
        if !neighbour(t, n) {
            continue;
        }
        let nf = extract::facts(&sanitize::terminal_safe(&n.text), k);
        let Some(action) = nf.action.as_deref().filter(|_| !nf.action_inferred) else {
            continue;
        };
        let same_principal = match (&f.principal, &nf.principal) {
            (Some(a), Some(b)) => a.arn == b.arn,
            _ => true,
        };
        let action_service = service_of(action);
        let same_service = own_service
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(action_service));
        if same_principal && same_service {
            f.action = nf.action;
            f.resource = f.resource.take().or(nf.resource);
            f.principal = f.principal.take().or(nf.principal);
            f.policy = f.policy.take().or(nf.policy);
            return;
        }
    }
}

/// Builds the finding of one hit.
#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    ev: &Evidence,
    matcher: &Matcher,
    texts: &[Text<'_>],
    ti: usize,
    h: &Hit,
    phase: Phase,
    source: String,
    order: usize,
    opts: &Options,
) -> Finding {
    let t = &texts[ti];
    let rule = &matcher.rules()[h.rule];
    let k = matcher.knowledge();
    let facts = gather_facts(texts, ti, h, matcher);
    let finding_phase = match phase::of_rule(rule.phase) {
        Some(p) => p,
        // A pasted line with nothing saying when: the ECS agent's own startup calls are startup
        // failures, anything else the application's.
        None if t.field == Field::Logs && phase == Phase::Unknown => {
            match facts.action.as_deref().filter(|a| k.is_agent_startup_action(a)) {
                Some(_) if !facts.action_inferred => Phase::Startup,
                _ => Phase::Runtime,
            }
        }
        None => phase,
    };
    let phase_agrees = rule.phase == RulePhase::Any || phase == Phase::Unknown || finding_phase == phase;
    let (mut culprit, mut role_arn, mut reason) = culprit::resolve(ev, rule, &facts, finding_phase, k);
    let mut category = rule.category;
    if category == Category::Iam {
        if let Some(who) = culprit::outside_the_task(ev, &facts, k) {
            (culprit, role_arn, reason) = (Culprit::NotIam, who.role_arn, who.reason);
            category = who.category;
        }
    }
    let iam = category == Category::Iam;
    // A caller named in the message is as named as a task role.
    let basis = if culprit == Culprit::NotIam && iam {
        Basis::Named
    } else {
        basis(ev, rule, &facts, iam)
    };
    let mut permissions: Vec<String> = Vec::new();
    if iam {
        if let Some(a) = &facts.action {
            permissions.push(a.clone());
        }
    }
    for p in &rule.permissions {
        if !permissions.iter().any(|x| x.eq_ignore_ascii_case(p)) {
            permissions.push(p.clone());
        }
    }
    let resource = if iam {
        facts
            .resource
            .clone()
            .or_else(|| resource::infer(ev, permissions.first().map(String::as_str), k))
    } else {
        None
    };
    let policy = if iam { facts.policy.or(rule.policy) } else { rule.policy };
    let scope = resource.as_deref().and_then(|r| resource::scope(r, k));
    let granted = scope.as_ref().map(|s| s.0.as_str()).or(resource.as_deref());
    // A resource of the wrong shape (a partial secret ARN) is worth a sentence of its own.
    if let Some(note) = facts
        .resource
        .as_deref()
        .filter(|_| iam)
        .and_then(|r| k.check_resource(r))
    {
        reason = format!("{reason}; {note}");
    }
    let fix = fix::fill(
        &rule.fix,
        &fix::Values {
            ev,
            hit: h,
            facts: &facts,
            role_arn: role_arn.as_deref(),
            resource: granted,
            permissions: &permissions,
            culprit,
            container: t.container,
        },
        opts,
    );
    Finding {
        rule_id: rule.id.clone(),
        title: rule.title.clone(),
        source,
        evidence: t.text.to_string(),
        culprit,
        category,
        permissions,
        denied_action: facts.action.clone().filter(|_| iam),
        resource,
        policy,
        principal: facts.principal.as_ref().map(|p| p.arn.clone()),
        role_arn,
        reason,
        count: 1,
        timestamp: t.timestamp,
        rank: RankKey {
            phase_agrees,
            priority: rule.priority,
            generic: rule.generic,
            field: Some(t.field),
            rule_index: h.rule,
            order,
        },
        fix,
        operation: facts.operation.clone(),
        scope,
        basis,
        action_inferred: facts.action_inferred,
        truncated: looks_truncated(&t.text),
    }
}

/// How the finding's principal was decided: named in the message (a role of the task, or an
/// instance session), by the rule, or by the phase.
fn basis(ev: &Evidence, rule: &Rule, facts: &Facts, iam: bool) -> Basis {
    if !iam {
        return Basis::Rule;
    }
    let (exec, task) = ev.role_names();
    let named = facts.principal.as_ref().is_some_and(|p| {
        p.is_instance_session() || p.name.as_deref().is_some_and(|n| Some(n) == exec || Some(n) == task)
    });
    if named {
        Basis::Named
    } else if rule.culprit != RuleCulprit::ByPhase {
        Basis::Rule
    } else {
        Basis::Phase
    }
}
