//! Verification: after the verdict names a role, the actions and a resource, read that role's
//! policies (and the resource's and the key's), evaluate them with the local evaluator
//! ([`crate::iam`]) and say whether the account's policies **confirm** the denial (and which layer
//! and statement decide it), **contradict** it (the readable policies allow it, so a layer
//! ecsdoctor cannot read denies), leave it **indeterminate** (a condition key whose value cannot be
//! known), or could not be read (**unavailable**: ecsdoctor's own read was denied, and what to
//! grant it).
//!
//! The steps, one file each: [`calls`] (what is read, and from where in a bundle), [`collect`]
//! (the reads in sequential rounds, from AWS, a bundle or a test, through a [`Reader`]),
//! [`check`] (building the request and policy set per action, and the status), [`bundle`] (a
//! captured bundle's answers, and writing them), and [`apply`] here (how the verdict follows the
//! evaluation). Which service keeps which policy is data (`resources.toml`).

pub mod bundle;
pub mod calls;
mod check;
mod collect;
mod resources;

use serde_json::Value;

use crate::arn::Arn;
use crate::evidence::Evidence;
use crate::iam::{Decision, StatementRef};
use crate::rules::knowledge::service_of;
use crate::rules::{Culprit, Knowledge, PolicyLayer};
pub use crate::verdict::verification::{ActionCheck, SimulatedAction, Simulation, Status, Unreadable, Verification};
use crate::verdict::{Confidence, Diagnosis, Options};

pub use bundle::{write_answers, BundleReader};
pub use calls::{Call, ReadError, Reader};
pub use collect::{collect, prefetch, roles_to_prefetch, Collected};

/// The role, actions and resource a verdict names: what verification checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The role's name (GetRole takes the name, whatever its path).
    pub role_name: String,
    /// The role's account.
    pub account: String,
    /// The ARN's partition.
    pub partition: String,
    /// The actions the verdict names, the denied one first, each with what it is evaluated on.
    pub actions: Vec<Target>,
    /// The action the message says was denied, if it names one.
    pub denied: Option<String>,
    /// The resource ARN the evidence names, if any.
    pub resource: Option<String>,
    /// The resource whose KMS key the key actions need: the resource itself, or the secret or
    /// parameter the message or the task definition names when the denial is the key's.
    pub encrypted: Option<String>,
    /// The region calls go to when the resource does not say (the task's).
    pub region: String,
    /// The role's ARN as the evidence names it (with its path when from the task definition).
    pub role_arn: String,
    /// Whether that ARN is exact: a role session ARN (`assumed-role/NAME/...`) has no path, so the
    /// role's real ARN is known only once GetRole answers.
    pub role_arn_exact: bool,
    /// The layer the message itself names in its tail, if it does ("because no resource-based
    /// policy allows", "with an explicit deny in ..."); `None` when the layer was assumed.
    pub named_layer: Option<PolicyLayer>,
    /// The message says an explicit Deny decided.
    pub named_explicit: bool,
    /// When the task stopped (ms since the epoch): a managed policy changed after it is said so.
    pub stopped_at: Option<i64>,
}

/// One action and the resource it is evaluated on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub action: String,
    pub on: On,
}

/// What an action is evaluated on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    /// The resource the evidence names.
    Resource(String),
    /// `*`: the action takes no resource-level permissions.
    Any,
    /// The KMS key encrypting the resource, once read.
    Key,
    /// Unknown: the evidence names no resource of the action's service.
    Unknown,
}

/// Why a verdict is not verified: nothing to check (not a role's denial) is silent; a role's
/// denial that cannot be checked says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The verdict is not a denial of one of the task's roles.
    NotARoleDenial,
    /// It is, but something needed is unknown.
    Unknown(String),
}

/// What to verify for this diagnosis. `d` must be built without `--redact-accounts` (the role and
/// resource ARNs are read from it).
pub fn plan(d: &Diagnosis, ev: &Evidence, knowledge: &Knowledge) -> Result<Plan, Skip> {
    let v = &d.verdict;
    if !matches!(
        v.culprit,
        Culprit::ExecutionRole | Culprit::TaskRole | Culprit::InstanceRole
    ) || v.permissions.is_empty()
    {
        return Err(Skip::NotARoleDenial);
    }
    // A trust policy or PassRole denial is not the role's permission; a layer ecsdoctor cannot
    // read (an SCP or RCP, a session or VPC endpoint policy) named by the message is not something
    // the role's own policies settle, and evaluating them would only move the verdict off it.
    let top = d.findings.first();
    let named_layer = top.and_then(|f| f.policy);
    match v.policy {
        Some(PolicyLayer::Trust | PolicyLayer::PassRole) => return Err(Skip::NotARoleDenial),
        Some(l @ (PolicyLayer::Scp | PolicyLayer::Rcp | PolicyLayer::Session | PolicyLayer::VpcEndpoint)) => {
            return Err(Skip::Unknown(format!(
                "the message names the {} layer, which ecsdoctor cannot read from the role's account",
                l.name()
            )))
        }
        _ => {}
    }
    let named_explicit = top.is_some_and(|f| crate::rules::extract::names_explicit_deny(&f.evidence));
    let role_arn = v
        .role_arn
        .as_deref()
        .ok_or_else(|| Skip::Unknown(format!("the {} is not known by ARN", v.culprit.describe())))?;
    let (role_name, account, partition) =
        role_of(role_arn).ok_or_else(|| Skip::Unknown(format!("`{role_arn}` is not a role ARN")))?;
    let region = ev
        .task
        .task_arn
        .as_deref()
        .and_then(Arn::parse)
        .map(|a| a.region.to_string())
        .filter(|r| !r.is_empty())
        .or_else(|| {
            v.resource
                .as_deref()
                .and_then(Arn::parse)
                .map(|a| a.region.to_string())
                .filter(|r| !r.is_empty())
        })
        .unwrap_or_default();
    let denied = top.and_then(|f| f.denied_action.clone());
    let resource = v.resource.as_deref().and_then(|r| {
        r.split(", ")
            .map(|s| s.trim_matches('"'))
            .find(|s| Arn::parse(s).is_some())
            .map(str::to_string)
    });
    let res_service = resource.as_deref().and_then(Arn::parse).map(|a| a.service.to_string());
    let encrypted = resource
        .clone()
        .filter(|r| Arn::parse(r).is_some_and(|a| resources::of(a.service).key.is_some()))
        .or_else(|| encrypted_resource(d, ev, knowledge));
    let mut actions: Vec<Target> = Vec::new();
    for a in denied.iter().chain(&v.permissions) {
        if actions.iter().any(|x| x.action.eq_ignore_ascii_case(a)) {
            continue;
        }
        let svc = service_of(a);
        let on = if knowledge.action(a).and_then(|f| f.resource.as_deref()) == Some("*") {
            On::Any
        } else if res_service.as_deref() == Some(svc) {
            On::Resource(resource.clone().unwrap_or_default())
        } else if resources::is_key_service(svc) && encrypted.is_some() {
            On::Key
        } else {
            On::Unknown
        };
        actions.push(Target { action: a.clone(), on });
    }
    Ok(Plan {
        role_name: role_name.to_string(),
        account: account.to_string(),
        partition: partition.to_string(),
        actions,
        denied,
        resource,
        encrypted,
        region,
        role_arn: if role_arn_is_iam(role_arn) {
            role_arn.to_string()
        } else {
            format!("arn:{partition}:iam::{account}:role/{role_name}")
        },
        role_arn_exact: role_arn_is_iam(role_arn),
        named_layer,
        named_explicit,
        stopped_at: ev.task.stopped_at.map(|t| t.0),
    })
}

fn role_arn_is_iam(arn: &str) -> bool {
    Arn::parse(arn).is_some_and(|a| a.service == "iam")
}

/// The secret or parameter a key denial is about, when the verdict names no resource: the first
/// ARN in the deciding message of a service whose resources are encrypted with a key, else the
/// task definition's only such secret.
fn encrypted_resource(d: &Diagnosis, ev: &Evidence, knowledge: &Knowledge) -> Option<String> {
    let keyed = |arn: &str| Arn::parse(arn).is_some_and(|a| resources::of(a.service).key.is_some());
    // A secret's `valueFrom` may carry `:json-key:version-stage:version-id` after its ARN.
    let trimmed = |arn: &str| -> String {
        let service = Arn::parse(arn).map(|a| a.service).unwrap_or_default();
        match knowledge.resource_sources.get(service) {
            Some(source) => source.trim(arn),
            None => arn.to_string(),
        }
    };
    let in_message = d.findings.first().and_then(|f| {
        f.evidence
            .split(|c: char| c.is_whitespace() || "\"'(),;".contains(c))
            .map(|w| w.trim_end_matches(['.', ':']))
            .find(|w| keyed(w))
            .map(str::to_string)
    });
    in_message.or_else(|| {
        let secrets: std::collections::BTreeSet<String> = ev
            .task_definition
            .iter()
            .flat_map(|t| &t.container_definitions)
            .flat_map(|c| &c.secrets)
            .map(|s| s.value_from.as_str())
            .filter(|v| keyed(v))
            .map(trimmed)
            .collect();
        (secrets.len() == 1).then(|| secrets.into_iter().next()).flatten()
    })
}

/// The role name, account and partition of a role ARN or a role session ARN.
fn role_of(arn: &str) -> Option<(&str, &str, &str)> {
    let a = Arn::parse(arn)?;
    let name = match a.service {
        "iam" => a
            .resource
            .strip_prefix("role/")
            .map(|r| r.rsplit('/').next().unwrap_or(r)),
        "sts" => a
            .resource
            .strip_prefix("assumed-role/")
            .and_then(|r| r.split('/').next()),
        _ => None,
    }?;
    let account_ok = a.account.len() == 12 && a.account.bytes().all(|b| b.is_ascii_digit());
    (!name.is_empty() && account_ok).then_some((name, a.account, a.partition))
}

/// Verifies a plan against what a reader answers.
pub async fn verify(plan: &Plan, reader: &impl Reader, simulate: bool) -> Verification {
    let collected = collect(plan, reader).await;
    let mut v = check::evaluate_plan(plan, &collected);
    if simulate {
        v.simulation = Some(collect::simulate(plan, &collected, &v, reader).await);
    }
    v
}

/// Verifies the diagnosis `d` (planned from `plain`, the same diagnosis without account masking)
/// and makes the verdict follow the evaluation: `d` gains `verdict.verification`; a confirmed
/// layer other than the text's moves the verdict's `policy`, `who_must_act`, fix and snippets to
/// it; a contradicted verdict loses confidence. Notes say why a role's denial was not verified.
pub async fn verify_diagnosis(
    d: &mut Diagnosis,
    plain: &Diagnosis,
    ev: &Evidence,
    reader: &impl Reader,
    simulate: bool,
    knowledge: &Knowledge,
    opts: &Options,
) {
    match plan(plain, ev, knowledge) {
        Ok(p) => {
            let v = verify(&p, reader, simulate).await;
            apply(d, &p, v, knowledge, opts);
        }
        Err(Skip::NotARoleDenial) => {}
        Err(Skip::Unknown(why)) => d.notes.push(crate::verdict::clean(
            &format!("not checked against the account's policies: {why}"),
            opts,
        )),
    }
}

/// The diagnosis verification plans from: `d` itself, or `d` again without account masking
/// (`--redact-accounts`), since the reads need whole ARNs.
pub fn unmasked(d: &Diagnosis, ev: &Evidence, matcher: &crate::rules::engine::Matcher, opts: &Options) -> Diagnosis {
    if opts.redact.accounts {
        let mut o = *opts;
        o.redact.accounts = false;
        crate::verdict::diagnose(ev, matcher, &o)
    } else {
        d.clone()
    }
}

/// Makes the verdict follow the verification, and attaches it (scrubbed: policy names, Sids and
/// errors come from AWS). The verdict moves to the evaluated layer when the evaluation read an
/// explicit Deny, or when the message named no layer beyond the role's own policies; a layer the
/// message names is never overridden by an evaluation that could not see it, only annotated.
pub fn apply(d: &mut Diagnosis, plan: &Plan, mut v: Verification, knowledge: &Knowledge, opts: &Options) {
    let message_claims = plan.named_explicit || plan.named_layer.is_some_and(|l| l != PolicyLayer::Identity);
    let evaluated = match v.status {
        Status::Confirmed => v.layer.and_then(policy_layer),
        _ => None,
    };
    if let Some(layer) = evaluated {
        let definitive = v.statement.is_some();
        let differs = d.verdict.policy != Some(layer);
        if differs && (definitive || !message_claims) {
            let was = d.verdict.policy.map_or("no particular", |p| p.name());
            v.disagreement = Some(format!(
                "the message pointed at the {was} layer; the account's policies show the {} layer decides",
                layer.name()
            ));
            crate::verdict::retarget(d, layer, knowledge, opts);
            if let Some(fix) = layer_fix(&v, opts) {
                d.verdict.fix = fix;
            }
        } else if differs {
            let named = plan.named_layer.map_or("explicit-deny", |l| l.name());
            v.disagreement = Some(format!(
                "the message names the {named} layer, which stays the verdict; of the policies ecsdoctor read, the {} layer also lacks an Allow, and every layer must allow",
                layer.name()
            ));
        }
        if definitive {
            // An explicit deny: adding an Allow does nothing, the Deny must change.
            if let Some(fix) = layer_fix(&v, opts) {
                d.verdict.fix = fix;
            }
            d.verdict.iam_policy = None;
            d.verdict.terraform = None;
        }
        d.verdict.confidence = Confidence::High;
        d.verdict.confidence_reason = "confirmed against the account's policies (below)".into();
    }
    if v.status == Status::Contradicted {
        if message_claims {
            // The message said a layer beyond the role's policies denies: readable policies that
            // allow are what it said.
            let named = plan.named_layer.map_or("explicit-deny", |l| l.name());
            v.summary = format!(
                "consistent with the message, which names the {named} layer: {}",
                v.summary
            );
        } else {
            d.verdict.confidence = match d.verdict.confidence {
                Confidence::High => Confidence::Medium,
                _ => Confidence::Low,
            };
            d.verdict.confidence_reason =
                "the role's readable policies allow it, so the denial comes from a layer ecsdoctor cannot read (below)"
                    .into();
        }
    }
    scrub(&mut v, opts);
    d.verdict.confidence_reason = crate::verdict::clean(&d.verdict.confidence_reason, opts);
    d.verdict.verification = Some(v);
}

/// The fix when the evaluation decides: what to change, in which policy. Names from AWS and from
/// the evidence are quoted as fix values (they cannot break the markdown the fix is shown in).
fn layer_fix(v: &Verification, opts: &Options) -> Option<String> {
    let q = |s: &str| format!("`{}`", crate::verdict::fix_value(s, opts));
    let denied = v.actions.iter().find(|a| a.decision.ends_with("deny"))?;
    let what = format!("{} on {}", q(&denied.action), q(&denied.resource));
    if let Some(s) = &v.statement {
        return Some(format!(
            "Remove or narrow the Deny statement {}: it denies {what}; no Allow can override it.",
            q(&s.to_string())
        ));
    }
    Some(match v.layer? {
        "identity" => format!("Add an Allow for {what} to the role's identity policy (the statement below)."),
        "permissions-boundary" => format!(
            "The role's own policies allow {what}, but its permissions boundary does not: the boundary's owner must allow it there too (the statement below)."
        ),
        "kms-key" => format!(
            "The key policy must allow the role {what}: add the statement below to the key policy, or let it delegate to the account's IAM policies (a statement allowing the account's root principal `kms:*`)."
        ),
        "resource" => format!("The resource's policy must allow the role {what} (the statement below)."),
        _ => return None,
    })
}

/// The verdict's layer for the evaluator's layer name.
fn policy_layer(name: &str) -> Option<PolicyLayer> {
    Some(match name {
        "identity" => PolicyLayer::Identity,
        "permissions-boundary" => PolicyLayer::PermissionsBoundary,
        "resource" => PolicyLayer::Resource,
        "kms-key" => PolicyLayer::KmsKey,
        "scp" => PolicyLayer::Scp,
        "rcp" => PolicyLayer::Rcp,
        "session" => PolicyLayer::Session,
        _ => return None,
    })
}

/// Every string of a verification, cleaned for the terminal, chat and JSON.
fn scrub(v: &mut Verification, opts: &Options) {
    let c = |s: &mut String| *s = crate::verdict::clean(s, opts);
    c(&mut v.summary);
    v.checked.iter_mut().for_each(c);
    v.missing_context.iter_mut().for_each(c);
    v.could_still_deny.iter_mut().for_each(c);
    v.changed_after_stop.iter_mut().for_each(c);
    v.disagreement.iter_mut().for_each(c);
    let st = |s: &mut StatementRef| {
        s.policy = crate::verdict::clean(&s.policy, opts);
        s.sid.iter_mut().for_each(|x| *x = crate::verdict::clean(x, opts));
    };
    v.statement.iter_mut().for_each(st);
    for u in &mut v.unreadable {
        c(&mut u.call);
        c(&mut u.subject);
        c(&mut u.error);
        u.grant.iter_mut().for_each(c);
    }
    for a in &mut v.actions {
        c(&mut a.action);
        c(&mut a.resource);
        a.statement.iter_mut().for_each(st);
        a.note.iter_mut().for_each(c);
    }
    if let Some(d) = &mut v.diff {
        clean_json(d, opts);
    }
    if let Some(s) = &mut v.simulation {
        for r in &mut s.results {
            c(&mut r.action);
            c(&mut r.decision);
            r.caveat.iter_mut().for_each(c);
        }
        s.error.iter_mut().for_each(c);
    }
}

fn clean_json(v: &mut Value, opts: &Options) {
    match v {
        Value::String(s) => *s = crate::verdict::clean(s, opts),
        Value::Array(a) => a.iter_mut().for_each(|x| clean_json(x, opts)),
        Value::Object(o) => o.values_mut().for_each(|x| clean_json(x, opts)),
        _ => {}
    }
}

/// The decision's name, as in the evaluator's JSON.
fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "allowed",
        Decision::ExplicitDeny => "explicit-deny",
        Decision::ImplicitDeny => "implicit-deny",
        Decision::Indeterminate => "indeterminate",
    }
}

#[cfg(test)]
mod tests;
