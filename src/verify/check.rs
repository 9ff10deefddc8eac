//! From what was read to a [`Verification`]: each action of the plan becomes one request to the
//! evaluator, with the role's identity policies, its boundary, the resource's policy (when the
//! action is on that resource) and the key policy (when the action is the key's), and the context
//! keys ecsdoctor knows (the role's ARN, account and tags, the region, TLS, the service a key is
//! used through). Keys it cannot know stay absent and, when a decision depends on them, make it
//! indeterminate. The denied action decides the status; the others are shown.

use std::collections::BTreeMap;

use serde_json::Value;

use super::calls::{Call, ReadError};
use super::collect::{key_policy_read, region_of, Collected, KeyState, Managed};
use super::resources;
use super::{decision_name, ActionCheck, On, Plan, Status, Unreadable, Verification};
use crate::arn::Arn;
use crate::iam::{
    evaluate, parse_policy, Decision, Evaluation, LayerDecision, Policy, PolicySet, Request, StatementRef,
};
use crate::rules::knowledge::service_of;

/// The policies read, parsed; what could not be read or parsed.
struct Parsed {
    identity: Vec<Policy>,
    boundary: Option<Policy>,
    resource: Option<Policy>,
    /// The resource is a key: its policy is the key policy.
    resource_is_key: bool,
    key: Option<Policy>,
    checked: Vec<String>,
    /// Identity-side reads that failed (the role's own policies are incomplete).
    identity_gaps: Vec<Unreadable>,
    resource_gap: Option<Unreadable>,
    key_gap: Option<Unreadable>,
    key_note: Option<String>,
}

/// A failed read. When ecsdoctor itself was denied, what to grant: the action for ecsdoctor's
/// identity, or — for a resource in another account — the resource's owner's permission.
fn unreadable(call: &Call, e: &ReadError, role_account: &str) -> Unreadable {
    let grant = matches!(e, ReadError::Denied(_)).then(|| match call.account() {
        Some(acct) if acct != role_account => format!(
            "{} on the resource in account {acct}: its owner must allow ecsdoctor's identity (or run ecsdoctor there)",
            call.action()
        ),
        _ => format!("{} for ecsdoctor's identity", call.action()),
    });
    Unreadable {
        call: call.action().to_string(),
        subject: call.subject(),
        error: e.to_string(),
        grant,
    }
}

/// The policy in `call`'s answer, or why it cannot be evaluated: the read's own error, or
/// `cannot: <parse error>`.
fn policy_of(
    answer: Result<&Value, &ReadError>,
    call: &Call,
    label: &str,
    cannot: &str,
    role_account: &str,
) -> Result<Policy, Unreadable> {
    let v = answer.map_err(|e| unreadable(call, e, role_account))?;
    parse_policy(&v.to_string(), label)
        .map_err(|e| unreadable(call, &ReadError::Failed(format!("{cannot}: {e}")), role_account))
}

fn parse_all(plan: &Plan, c: &Collected) -> Parsed {
    let mut p = Parsed {
        identity: Vec::new(),
        boundary: None,
        resource: None,
        resource_is_key: false,
        key: None,
        checked: Vec::new(),
        identity_gaps: Vec::new(),
        resource_gap: None,
        key_gap: None,
        key_note: None,
    };
    let role = &plan.role_name;
    // Listing failures leave the identity side incomplete.
    for (call, e) in &c.failures {
        if matches!(
            call,
            Call::GetRole { .. } | Call::ListRolePolicies { .. } | Call::ListAttachedRolePolicies { .. }
        ) {
            p.identity_gaps.push(unreadable(call, e, &plan.account));
        }
    }
    for (name, a) in &c.inline {
        let call = Call::GetRolePolicy {
            role: role.clone(),
            policy: name.clone(),
        };
        let label = format!("inline policy {name}");
        match policy_of(a.as_ref(), &call, &label, "cannot parse", &plan.account) {
            Ok(pol) => {
                p.checked.push(format!("{label} of role {role}"));
                p.identity.push(pol);
            }
            Err(u) => p.identity_gaps.push(u),
        }
    }
    let managed_one = |m: &Managed, what: &str| -> Result<Policy, Unreadable> {
        let call = Call::GetPolicyVersion {
            arn: m.arn.clone(),
            version: m.version.clone().unwrap_or_default(),
        };
        let cannot = format!("cannot parse the {what}'s document");
        policy_of(m.document.as_ref(), &call, &m.arn, &cannot, &plan.account)
    };
    for m in &c.managed {
        match managed_one(m, "managed policy") {
            Ok(pol) => {
                p.checked.push(format!(
                    "managed policy {} ({}, the default version)",
                    m.arn,
                    m.version.as_deref().unwrap_or("?")
                ));
                p.identity.push(pol);
            }
            Err(u) => p.identity_gaps.push(u),
        }
    }
    if let Some(b) = &c.boundary {
        match managed_one(b, "permissions boundary") {
            Ok(pol) => {
                p.checked.push(format!(
                    "permissions boundary {} ({})",
                    b.arn,
                    b.version.as_deref().unwrap_or("?")
                ));
                p.boundary = Some(pol);
            }
            Err(u) => p.identity_gaps.push(u),
        }
    }
    if let Some((call, a)) = &c.resource_policy {
        p.resource_is_key = matches!(call, Call::GetKeyPolicy { .. });
        // `Ok(None)`: the resource has no policy.
        match a.as_ref().map(Option::as_ref).transpose() {
            None => p.checked.push(format!("{} has no resource policy", call.subject())),
            Some(answer) => {
                let label = format!("the policy of {}", call.subject());
                match policy_of(answer, call, &label, "cannot parse", &plan.account) {
                    Ok(pol) => {
                        p.checked.push(format!("resource policy of {}", call.subject()));
                        p.resource = Some(pol);
                    }
                    Err(u) => p.resource_gap = Some(u),
                }
            }
        }
    }
    match &c.key {
        Some(KeyState::Customer { arn, policy }) => {
            let call = key_policy_read(arn, plan);
            let label = format!("key policy of {arn}");
            match policy_of(policy.as_ref(), &call, &label, "cannot parse", &plan.account) {
                Ok(pol) => {
                    p.checked.push(label);
                    p.key = Some(pol);
                }
                Err(u) => p.key_gap = Some(u),
            }
        }
        Some(KeyState::AwsManaged(alias)) => {
            p.key_note = Some(format!(
                "the resource is encrypted with the AWS managed key {alias}, whose policy lets the account's principals use it through the service"
            ));
        }
        Some(KeyState::Alias(alias)) => {
            p.key_note = Some(format!(
                "the key is named by its alias {alias}; reading its policy needs the key id (kms:DescribeKey is not among ecsdoctor's reads)"
            ));
        }
        Some(KeyState::None) => p.key_note = Some("the resource is not encrypted with KMS".into()),
        Some(KeyState::Unknown(e)) => {
            if let Some((call, _)) = c
                .failures
                .iter()
                .find(|(c, _)| matches!(c, Call::DescribeSecret { .. } | Call::DescribeParameters { .. }))
            {
                p.key_gap = Some(unreadable(call, e, &plan.account));
            }
        }
        None => {}
    }
    p
}

/// The context keys ecsdoctor knows for a call of this role.
fn context(
    plan: &Plan,
    c: &Collected,
    action: &str,
    target: &On,
    region: &str,
) -> (String, BTreeMap<String, Vec<String>>) {
    let role = c.role.as_ref().ok().and_then(|r| r.get("Role"));
    let read_arn = role
        .and_then(|r| r.get("Arn"))
        .and_then(Value::as_str)
        .map(str::to_string);
    // The role's ARN for aws:PrincipalArn: GetRole's, else the evidence's when it is exact (a
    // session ARN has no path): a guessed path must not decide a condition.
    let known_arn = read_arn
        .clone()
        .or_else(|| plan.role_arn_exact.then(|| plan.role_arn.clone()));
    let role_arn = known_arn.clone().unwrap_or_else(|| plan.role_arn.clone());
    let mut ctx: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        ctx.insert(k.to_string(), vec![v.to_string()]);
    };
    if let Some(arn) = &known_arn {
        put("aws:PrincipalArn", arn);
    }
    put("aws:PrincipalAccount", &plan.account);
    put("aws:PrincipalType", "AssumedRole");
    put("aws:PrincipalIsAWSService", "false");
    put("aws:SecureTransport", "true");
    if !region.is_empty() {
        put("aws:RequestedRegion", region);
    }
    // Through a service (a secret's or parameter's key, used by Secrets Manager or SSM on the
    // role's behalf: a forward access session) aws:ViaAWSService is true. A call on a key named
    // as the resource may or may not have come through a service: that stays unknown. Any other
    // call is the role's own.
    let via = *target == On::Key;
    let key_call = resources::is_key_service(service_of(action));
    if via {
        put("aws:ViaAWSService", "true");
    } else if !key_call {
        put("aws:ViaAWSService", "false");
    }
    if via {
        put("kms:CallerAccount", &plan.account);
        let service = plan
            .encrypted
            .as_deref()
            .and_then(Arn::parse)
            .map(|a| a.service.to_string())
            .unwrap_or_default();
        if resources::of(&service).via_service {
            put("kms:ViaService", &format!("{service}.{region}.amazonaws.com"));
        }
    }
    for t in role
        .and_then(|r| r.get("Tags"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(k), Some(v)) = (
            t.get("Key").and_then(Value::as_str),
            t.get("Value").and_then(Value::as_str),
        ) {
            put(&format!("aws:PrincipalTag/{k}"), v);
        }
    }
    (role_arn, ctx)
}

/// The first statement of a layer with this decision.
fn deciding(e: &Evaluation, want: LayerDecision) -> Option<(&'static str, StatementRef)> {
    e.layers
        .iter()
        .find(|l| l.decision == want)
        .and_then(|l| l.statements.first().map(|s| (l.layer.name(), s.clone())))
}

/// The layer lacking an Allow in an implicit deny.
fn lacking(e: &Evaluation) -> Option<&'static str> {
    let name = e.suggestion.as_ref()?.get("layer")?.as_str()?;
    crate::iam::Layer::ALL.iter().map(|l| l.name()).find(|n| *n == name)
}

/// One evaluated action, with its status and the evaluation.
struct Checked {
    check: ActionCheck,
    status: Option<Status>,
    evaluation: Option<Evaluation>,
    gaps: Vec<Unreadable>,
    /// Not checked for a reason that leaves nothing to check (an AWS managed key, no KMS).
    nothing_to_check: bool,
}

fn check_one(plan: &Plan, c: &Collected, p: &Parsed, action: &str, on: &On) -> Checked {
    let not_checked = |note: String| Checked {
        check: ActionCheck {
            action: action.to_string(),
            resource: String::new(),
            decision: "not-checked",
            layer: None,
            statement: None,
            note: Some(note),
        },
        status: None,
        evaluation: None,
        gaps: Vec::new(),
        nothing_to_check: false,
    };
    let (resource, region, on_key) = match on {
        On::Resource(r) => (r.clone(), region_of(r, plan), false),
        On::Any => ("*".to_string(), plan.region.clone(), false),
        On::Key => match &c.key {
            Some(KeyState::Customer { arn, .. }) => (arn.clone(), region_of(arn, plan), true),
            state => {
                let mut skipped = not_checked(
                    p.key_note
                        .clone()
                        .unwrap_or_else(|| "the key encrypting the resource is not known".into()),
                );
                skipped.nothing_to_check = matches!(state, Some(KeyState::AwsManaged(_) | KeyState::None));
                skipped.gaps.extend(p.key_gap.clone());
                return skipped;
            }
        },
        On::Unknown => return not_checked(format!("the evidence names no {} resource", service_of(action))),
    };
    let (role_arn, ctx) = context(plan, c, action, on, &region);
    let resource_account = Arn::parse(&resource)
        .map(|a| a.account.to_string())
        .filter(|a| !a.is_empty());
    let on_resource = matches!(on, On::Resource(_));
    let mut gaps = p.identity_gaps.clone();
    let mut set = PolicySet {
        identity: p.identity.clone(),
        permissions_boundary: p.boundary.clone(),
        ..PolicySet::default()
    };
    if on_resource && p.resource_is_key {
        set.kms_key = p.resource.clone();
    } else if on_resource {
        set.resource = p.resource.clone();
    }
    if on_resource {
        gaps.extend(p.resource_gap.clone());
    }
    if on_key {
        set.kms_key = p.key.clone();
        gaps.extend(p.key_gap.clone());
    }
    let request = Request {
        principal: role_arn,
        principal_account: plan.account.clone(),
        action: action.to_string(),
        resource: resource.clone(),
        resource_account,
        context: ctx,
    };
    let mut e = evaluate(&request, &set);
    // Only the keys whose value could change the decision make it undecided.
    e.missing_context = deciding_keys(&request, &set, &e);
    let mut check = ActionCheck {
        action: action.to_string(),
        resource,
        decision: decision_name(e.decision),
        layer: None,
        statement: None,
        note: None,
    };
    let status = match e.decision {
        Decision::ExplicitDeny => {
            if let Some((layer, st)) = deciding(&e, LayerDecision::ExplicitDeny) {
                check.layer = Some(layer);
                check.statement = Some(st);
            }
            // A Deny read stands whatever else could not be read; one that hangs on an unknown
            // key's value does not.
            if e.missing_context.is_empty() {
                Status::Confirmed
            } else {
                Status::Indeterminate
            }
        }
        _ if !gaps.is_empty() => Status::Unavailable,
        Decision::ImplicitDeny => {
            check.layer = lacking(&e);
            if e.missing_context.is_empty() {
                Status::Confirmed
            } else {
                Status::Indeterminate
            }
        }
        Decision::Allowed => {
            check.statement = deciding(&e, LayerDecision::Allow).map(|(_, s)| s);
            if e.missing_context.is_empty() {
                Status::Contradicted
            } else {
                Status::Indeterminate
            }
        }
        Decision::Indeterminate => Status::Indeterminate,
    };
    if status == Status::Indeterminate {
        let mut why: Vec<String> = Vec::new();
        if !e.missing_context.is_empty() {
            why.push(format!(
                "depends on {} ({} without them)",
                e.missing_context.join(", "),
                decision_name(e.decision)
            ));
        }
        why.extend(e.indeterminate.iter().cloned());
        check.note = Some(why.join("; "));
    }
    Checked {
        check,
        status: Some(status),
        evaluation: Some(e),
        gaps,
        nothing_to_check: false,
    }
}

/// The missing context keys the decision hangs on: each key is tried, one at a time, with every
/// value the policies compare it to (and one they do not), and kept when any of them changes the
/// decision. A key only an unrelated statement tests does not make the answer undecided.
fn deciding_keys(request: &Request, set: &PolicySet, e: &Evaluation) -> Vec<String> {
    let policies = set
        .identity
        .iter()
        .chain(&set.permissions_boundary)
        .chain(&set.session)
        .chain(&set.resource)
        .chain(&set.kms_key)
        .chain(&set.scps)
        .chain(&set.rcps);
    let statements: Vec<&crate::iam::Statement> = policies.flat_map(|p| &p.statements).collect();
    e.missing_context
        .iter()
        .filter(|key| {
            let mut values: Vec<String> = statements
                .iter()
                .flat_map(|st| &st.condition)
                .filter(|c| c.key.eq_ignore_ascii_case(key))
                .flat_map(|c| c.values.iter().cloned())
                .collect();
            values.push("ecsdoctor-unknown-value".into());
            values.iter().any(|v| {
                let mut r = request.clone();
                r.context.insert((*key).clone(), vec![v.clone()]);
                evaluate(&r, set).decision != e.decision
            })
        })
        .cloned()
        .collect()
}

/// Evaluates every action of the plan and decides the status.
pub fn evaluate_plan(plan: &Plan, c: &Collected) -> Verification {
    let p = parse_all(plan, c);
    let results: Vec<Checked> = plan
        .actions
        .iter()
        .map(|t| check_one(plan, c, &p, &t.action, &t.on))
        .collect();
    let mut unreadable: Vec<Unreadable> = p.identity_gaps.clone();
    unreadable.extend(p.resource_gap.clone());
    unreadable.extend(p.key_gap.clone());
    let checked_results: Vec<&Checked> = results.iter().filter(|r| r.status.is_some()).collect();
    // The action the message names decides; without one, a denial of any action confirms.
    let primary = plan
        .denied
        .as_deref()
        .and_then(|d| checked_results.iter().find(|r| r.check.action.eq_ignore_ascii_case(d)))
        .copied();
    let pick = |s: Status| checked_results.iter().find(|r| r.status == Some(s)).copied();
    let decider: Option<&Checked> = primary.or_else(|| {
        pick(Status::Confirmed)
            .or_else(|| pick(Status::Unavailable))
            .or_else(|| pick(Status::Indeterminate))
            .or_else(|| pick(Status::Contradicted))
    });
    let identity_count = p.identity.len();
    let role = &plan.role_name;
    let mut v = Verification {
        status: Status::Indeterminate,
        layer: None,
        statement: None,
        summary: String::new(),
        checked: p.checked.clone(),
        unreadable,
        missing_context: Vec::new(),
        diff: None,
        actions: results.iter().map(|r| r.check.clone()).collect(),
        could_still_deny: Vec::new(),
        changed_after_stop: changed_after_stop(plan, c),
        disagreement: None,
        simulation: None,
    };
    let Some(d) = decider else {
        let gap = results.iter().find_map(|r| r.gaps.first());
        v.summary = match (gap, results.first().and_then(|r| r.check.note.clone())) {
            (Some(u), _) => {
                v.status = Status::Unavailable;
                unavailable_summary(u)
            }
            (None, Some(n)) => format!("nothing could be checked: {n}"),
            (None, None) => "nothing could be checked".into(),
        };
        return v;
    };
    let mut status = d.status.unwrap_or(Status::Indeterminate);
    // "The readable policies allow it" holds only when every action the verdict names was checked
    // (or had nothing to check): an action left unread keeps the answer open.
    let open = results.iter().find(|r| r.status.is_none() && !r.nothing_to_check);
    if let (Status::Contradicted, Some(o)) = (status, open) {
        status = if o.gaps.is_empty() {
            Status::Indeterminate
        } else {
            Status::Unavailable
        };
        v.status = status;
        v.layer = None;
        v.summary = match o.gaps.first() {
            Some(u) => unavailable_summary(u),
            None => format!(
                "{} is allowed, but {} was not checked: {}",
                d.check.action,
                o.check.action,
                o.check.note.clone().unwrap_or_default()
            ),
        };
        return v;
    }
    let e = d.evaluation.as_ref();
    v.status = status;
    v.layer = d.check.layer;
    v.missing_context = e.map(|e| e.missing_context.clone()).unwrap_or_default();
    let what = format!("{} on {}", d.check.action, d.check.resource);
    v.summary = match status {
        Status::Confirmed => match (&d.check.statement, d.check.layer) {
            (Some(st), _) => format!("{what} is denied by the explicit Deny in {st}"),
            (None, Some("identity")) => format!(
                "no statement in {role}'s {identity_count} polic{} allows {what}",
                if identity_count == 1 { "y" } else { "ies" }
            ),
            (None, Some("permissions-boundary")) => {
                format!("{role}'s own policies allow {what}, but its permissions boundary does not")
            }
            (None, Some("kms-key")) => format!(
                "the key policy neither allows {role} nor delegates to the account's IAM policies, so no IAM policy can allow {what}"
            ),
            (None, Some("resource")) => format!("the resource's policy does not allow {role} {what}"),
            (None, layer) => format!("{what} is denied (no Allow in the {} layer)", layer.unwrap_or("?")),
        },
        Status::Contradicted => {
            v.statement = d.check.statement.clone();
            v.could_still_deny = could_still_deny(plan, &p, d);
            let by = d
                .check
                .statement
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            format!(
                "{role}'s readable policies allow {what}{by}; what could still deny it: {}",
                v.could_still_deny.join(", ")
            )
        }
        Status::Indeterminate => format!(
            "{what}: {}",
            d.check.note.clone().unwrap_or_else(|| "undetermined".into())
        ),
        Status::Unavailable => match d.gaps.first() {
            Some(u) => unavailable_summary(u),
            None => "ecsdoctor could not read the role's policies".into(),
        },
    };
    if status == Status::Confirmed {
        if d.check.statement.is_some() {
            v.statement = d.check.statement.clone();
        } else {
            v.diff = e.and_then(|e| e.suggestion.clone());
        }
    }
    v
}

/// The managed policies (and the boundary) whose `UpdateDate` is after the task's stop: their
/// default version now may not be the one that decided then.
fn changed_after_stop(plan: &Plan, c: &Collected) -> Vec<String> {
    let Some(stopped) = plan.stopped_at else {
        return Vec::new();
    };
    c.managed
        .iter()
        .chain(&c.boundary)
        .filter_map(|m| {
            let t = m.updated?;
            (t.0 > stopped).then(|| {
                format!(
                    "{} changed at {} (its default is now {}), after the task stopped at {}: the version in force \
                     then may differ (`aws iam list-policy-versions --policy-arn {}`)",
                    m.arn,
                    t.to_iso(),
                    m.version.as_deref().unwrap_or("unknown"),
                    crate::evidence::Timestamp(stopped).to_iso(),
                    m.arn
                )
            })
        })
        .collect()
}

fn unavailable_summary(u: &Unreadable) -> String {
    match &u.grant {
        Some(g) => format!("ecsdoctor could not read {} ({}): grant {g}", u.subject, u.error),
        None => format!("ecsdoctor could not read {}: {}", u.subject, u.error),
    }
}

/// The layers a contradicted verdict's denial can still come from.
fn could_still_deny(plan: &Plan, p: &Parsed, d: &Checked) -> Vec<String> {
    let mut out = vec![
        "a service control policy (SCP) of the role's account".to_string(),
        "a resource control policy (RCP) of the resource's account".to_string(),
        "a VPC endpoint policy, if the call went through an interface endpoint".to_string(),
    ];
    let arn = Arn::parse(&d.check.resource);
    let res_account = arn.map(|a| a.account.to_string()).filter(|a| !a.is_empty());
    match res_account {
        Some(acct) if acct != plan.account => out.push(format!(
            "the resource's policy in account {acct}, which must allow the role too"
        )),
        // Some ARNs name no account (S3's): the resource may be another account's.
        None if arn.is_some() => {
            out.push("the resource's policy, if the resource is another account's (its ARN does not say)".into())
        }
        _ => {}
    }
    // A resource whose own policy ecsdoctor does not read (a queue, a topic, a table, a file system).
    if let Some(a) = arn.filter(|a| resources::of(a.service).policy.is_none() && !p.resource_is_key) {
        out.push(format!(
            "the resource's own policy, if {} resources have one (ecsdoctor does not read it)",
            a.service
        ));
    }
    out.push("a policy changed after the task stopped (IAM changes take a few seconds to apply)".into());
    out
}
