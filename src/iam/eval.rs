//! The request and the layered evaluation of all policy types into an [`Evaluation`].
//!
//! Logic, from "Policy evaluation logic" (reference_policies_evaluation-logic.html), "How AWS enforcement code
//! logic evaluates requests" (reference_policies_evaluation-logic_policy-eval-denyallow.html), "Cross-account
//! policy evaluation logic" (reference_policies_evaluation-logic-cross-account.html), permissions boundaries
//! (access_policies_boundaries.html), session policies (access_policies.html#policies_session), SCP/RCP
//! evaluation (orgs_manage_policies_scps_evaluation.html, orgs_manage_policies_rcps_evaluation.html) and KMS
//! key policies (kms/latest/developerguide/key-policies.html, key-policy-default.html):
//! 1. an applicable `Deny` in any policy (identity, boundary, session, resource, key policy, SCP, RCP) wins;
//! 2. when SCPs / RCPs are given, one of them must allow (AWS requires an allow at every level of the
//!    organization path; the caller passes the effective set and any allow in it passes);
//! 3. same account: identity allow (within boundary and session policies when set) OR resource-policy allow;
//!    a resource policy naming the role ARN is still capped by the boundary and session policies, one naming
//!    the session ARN (or `"*"`) is not, one naming only the account delegates to IAM policies;
//! 4. cross-account (`resource_account` differs): the identity side AND the resource policy must allow;
//! 5. KMS: the key policy must allow, directly or by delegating to the account, in which case IAM policies
//!    must also allow; a key policy that does neither makes IAM policies irrelevant.
//!
//! Not modelled (the caller must not rely on them): KMS grants, S3 ACLs and access points, VPC endpoint
//! policies, role trust policies, IAM users' group policies (pass them as identity policies), and exemptions
//! such as service-linked roles or the management account for SCPs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::condition::evaluate_condition;
use super::matching::{
    action_matches, expand, match_tokens, not_principal_applies, principal_grants, ContextView, Trace, Tri, Unresolved,
    Who, WhoKind,
};
use super::policy::{sanitize, Effect, Policy, Statement};
use super::report::{suggestion, Decision, Evaluation, Layer, LayerDecision, LayerResult, StatementRef};

/// The request to evaluate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Role ARN or assumed-role session ARN (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`).
    pub principal: String,
    /// The principal's account id.
    pub principal_account: String,
    /// `service:Action`, e.g. `ecr:BatchGetImage`.
    pub action: String,
    /// Target resource ARN, or `"*"` for actions without resource-level permissions.
    pub resource: String,
    /// Account owning the resource; `None` means the principal's account.
    #[serde(default)]
    pub resource_account: Option<String>,
    /// Request context keys (case-insensitive) and their values. Only what is supplied is known: keys such as
    /// `aws:PrincipalArn` are not derived from `principal`. Binary values are given base64-encoded.
    #[serde(default)]
    pub context: BTreeMap<String, Vec<String>>,
}

/// Every policy that applies to the request, by type. Empty / `None` means "none exists".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicySet {
    /// Identity-based policies: inline policies and the default versions of attached managed policies.
    pub identity: Vec<Policy>,
    /// The role's permissions boundary.
    pub permissions_boundary: Option<Policy>,
    /// Session policies (inline and managed) of the role session. The docs describe the session's permissions as
    /// the intersection of the identity-based policies and "the session policies", so they are evaluated as one
    /// set: an `Allow` in any of them passes.
    pub session: Vec<Policy>,
    /// The target resource's resource-based policy (not a KMS key policy).
    pub resource: Option<Policy>,
    /// The target KMS key's key policy.
    pub kms_key: Option<Policy>,
    /// The SCPs that apply to the principal's account, evaluated as one set: an `Allow` in any of them passes.
    /// AWS requires an allow at every level from the organization root through each OU to the account
    /// (orgs_manage_policies_scps_evaluation.html); the caller must pass a set that is allowed only when every
    /// level allows (for example just the account-level SCPs when the levels above use `FullAWSAccess`).
    pub scps: Vec<Policy>,
    /// The RCPs that apply to the resource's account, evaluated as one set like `scps` (same every-level rule,
    /// orgs_manage_policies_rcps_evaluation.html).
    pub rcps: Vec<Policy>,
}

/// What statement evaluation needs besides the statement.
struct Env<'a> {
    request: &'a Request,
    who: Who,
    ctx: ContextView<'a>,
    has_boundary: bool,
}

/// One layer after evaluating all its statements.
struct LayerEval {
    layer: Layer,
    present: bool,
    deny: Tri,
    /// `allow[s]`: some `Allow` applies and names the principal with strength `s` or stronger.
    allow: [Tri; 3],
    denies: Vec<StatementRef>,
    allows: Vec<StatementRef>,
    unsure: Vec<StatementRef>,
}

impl LayerEval {
    /// Whether this layer, when present, lets the request through (used for gates: boundary, session, SCP, RCP).
    fn gate(&self) -> Tri {
        if self.present {
            self.allow[0]
        } else {
            Tri::True
        }
    }

    fn result(self) -> LayerResult {
        let (decision, statements) = match (self.present, self.deny, self.allow[0]) {
            (false, ..) => (LayerDecision::NotApplicable, Vec::new()),
            (true, Tri::True, _) => (LayerDecision::ExplicitDeny, self.denies),
            (true, Tri::Unknown, _) | (true, Tri::False, Tri::Unknown) => (LayerDecision::Indeterminate, self.unsure),
            (true, Tri::False, Tri::True) => (LayerDecision::Allow, self.allows),
            (true, Tri::False, Tri::False) => (LayerDecision::ImplicitDeny, Vec::new()),
        };
        LayerResult {
            layer: self.layer,
            decision,
            statements,
        }
    }
}

/// Layers whose statements carry `Principal` / `NotPrincipal`.
fn takes_principal(layer: Layer) -> bool {
    matches!(layer, Layer::Resource | Layer::KmsKey | Layer::Rcp)
}

/// Evaluates `request` against `policies`.
pub fn evaluate(request: &Request, policies: &PolicySet) -> Evaluation {
    let (ctx, clashes) = ContextView::new(&request.context);
    let (who, blockers) = preflight(request, policies, &clashes);
    let cross = request
        .resource_account
        .as_deref()
        .is_some_and(|a| a != request.principal_account);
    let env = Env {
        request,
        who,
        ctx,
        has_boundary: policies.permissions_boundary.is_some(),
    };
    let mut trace = Trace::default();
    let mut layer = |layer: Layer, list: &[Policy], required: bool| eval_layer(layer, list, required, &env, &mut trace);
    let layers = Layers {
        identity: layer(Layer::Identity, &policies.identity, true),
        boundary: layer(
            Layer::PermissionsBoundary,
            policies.permissions_boundary.as_slice(),
            false,
        ),
        // Cross-account, the resource side must allow, so a missing resource policy is an implicit deny there.
        resource: layer(
            Layer::Resource,
            policies.resource.as_slice(),
            cross && policies.kms_key.is_none(),
        ),
        kms: layer(Layer::KmsKey, policies.kms_key.as_slice(), false),
        scp: layer(Layer::Scp, &policies.scps, false),
        rcp: layer(Layer::Rcp, &policies.rcps, false),
        session: layer(Layer::Session, &policies.session, false),
        cross,
    };

    let mut reasons = blockers.clone();
    let decision = match (layers.explicit_deny(), layers.allowed()) {
        (Tri::True, _) => Decision::ExplicitDeny,
        _ if !blockers.is_empty() => Decision::Indeterminate,
        (Tri::False, Tri::True) => Decision::Allowed,
        (Tri::False, Tri::False) => Decision::ImplicitDeny,
        (Tri::Unknown, Tri::False) => {
            reasons.push("the request is denied either way, but whether by an explicit Deny is undetermined".into());
            Decision::Indeterminate
        }
        _ => Decision::Indeterminate,
    };
    reasons.extend(trace.reasons.iter().cloned());
    let suggestion = match (decision, layers.lacking()) {
        (Decision::ImplicitDeny, Some(layer)) => {
            let role_arn = match env.ctx.get("aws:PrincipalArn") {
                Some([arn]) => arn.clone(),
                _ => env.who.role_arn(),
            };
            Some(suggestion(layer, &request.action, &request.resource, &role_arn))
        }
        _ => None,
    };
    Evaluation {
        decision,
        layers: layers.into_results(),
        missing_context: trace.missing_keys(),
        indeterminate: if decision == Decision::Indeterminate {
            reasons
        } else {
            Vec::new()
        },
        suggestion,
    }
}

/// Checks the request itself; any problem found makes the decision indeterminate (unless an explicit deny).
fn preflight(request: &Request, policies: &PolicySet, clashes: &[String]) -> (Who, Vec<String>) {
    let mut blockers: Vec<String> = clashes
        .iter()
        .map(|k| format!("context key {} is given twice (names differ only in case)", sanitize(k)))
        .collect();
    let who = Who::parse(&request.principal).unwrap_or_else(|| {
        blockers.push(format!("principal \"{}\" is not an ARN", sanitize(&request.principal)));
        let (arn, account) = (request.principal.clone(), request.principal_account.clone());
        Who {
            arn,
            partition: "aws".into(),
            account,
            kind: WhoKind::Other,
        }
    });
    if who.account != request.principal_account {
        blockers.push("principal ARN and principal_account name different accounts".into());
    }
    if !request.action.contains(':') {
        blockers.push("action must be written service:Action".into());
    }
    if policies.resource.is_some() && policies.kms_key.is_some() {
        blockers.push("both a resource policy and a KMS key policy were given; a request targets one resource".into());
    }
    let key_request = request.action.to_ascii_lowercase().starts_with("kms:") && request.resource.contains(":key/");
    if key_request && policies.kms_key.is_none() {
        // "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS key."
        blockers.push("KMS key policy not supplied: IAM policies alone cannot allow access to a KMS key".into());
    }
    (who, blockers)
}

/// All layers of one evaluation and how they combine.
struct Layers {
    identity: LayerEval,
    boundary: LayerEval,
    resource: LayerEval,
    kms: LayerEval,
    scp: LayerEval,
    rcp: LayerEval,
    session: LayerEval,
    cross: bool,
}

impl Layers {
    /// An applicable `Deny` in any layer.
    fn explicit_deny(&self) -> Tri {
        [
            &self.identity,
            &self.boundary,
            &self.resource,
            &self.kms,
            &self.scp,
            &self.rcp,
            &self.session,
        ]
        .iter()
        .fold(Tri::False, |acc, l| acc.or(l.deny))
    }

    /// The resource-side policy that can grant: the key policy for KMS requests, else the resource policy.
    fn target(&self) -> &LayerEval {
        if self.kms.present {
            &self.kms
        } else {
            &self.resource
        }
    }

    /// Whether some combination of allows lets the request through (ignoring denies).
    fn allowed(&self) -> Tri {
        let (id, b, s) = (self.identity.allow[0], self.boundary.gate(), self.session.gate());
        let (id_side, capped) = (id.and(b).and(s), b.and(s));
        let [by_account, by_role, direct] = self.target().allow;
        let grant = match (self.cross, self.kms.present) {
            (true, _) => id_side.and(by_account),
            // Key policy: direct grant, or role grant within boundary/session, or delegation plus IAM allow.
            (false, true) => direct.or(by_role.and(capped)).or(by_account.and(id_side)),
            (false, false) => id_side.or(direct).or(by_role.and(capped)),
        };
        self.scp.gate().and(self.rcp.gate()).and(grant)
    }

    /// For an implicit deny: the layer where one more `Allow` statement would let the request through.
    fn lacking(&self) -> Option<Layer> {
        let (id, b, s) = (self.identity.allow[0], self.boundary.gate(), self.session.gate());
        let [by_account, by_role, _] = self.target().allow;
        let pick = |candidates: &[(Layer, Tri)]| candidates.iter().find(|(_, t)| *t == Tri::False).map(|(l, _)| *l);
        if self.scp.gate() == Tri::False {
            Some(Layer::Scp)
        } else if self.rcp.gate() == Tri::False {
            Some(Layer::Rcp)
        } else if self.cross {
            let target = (self.target().layer, by_account);
            pick(&[
                (Layer::Identity, id),
                (Layer::PermissionsBoundary, b),
                (Layer::Session, s),
                target,
            ])
        } else if self.kms.present && by_account == Tri::False {
            Some(Layer::KmsKey)
        } else if by_role == Tri::True {
            pick(&[(Layer::PermissionsBoundary, b), (Layer::Session, s)])
        } else {
            pick(&[
                (Layer::Identity, id),
                (Layer::PermissionsBoundary, b),
                (Layer::Session, s),
            ])
        }
    }

    /// Per-layer results in [`Layer::ALL`] order.
    fn into_results(self) -> Vec<LayerResult> {
        [
            self.identity,
            self.boundary,
            self.resource,
            self.kms,
            self.scp,
            self.rcp,
            self.session,
        ]
        .into_iter()
        .map(LayerEval::result)
        .collect()
    }
}

fn eval_layer(layer: Layer, policies: &[Policy], required: bool, env: &Env<'_>, trace: &mut Trace) -> LayerEval {
    let mut out = LayerEval {
        layer,
        present: required || !policies.is_empty(),
        deny: Tri::False,
        allow: [Tri::False; 3],
        denies: Vec::new(),
        allows: Vec::new(),
        unsure: Vec::new(),
    };
    for policy in policies {
        for stmt in &policy.statements {
            let before = trace.reasons.len();
            let applies = eval_statement(stmt, policy.variables_enabled(), layer, env, trace);
            let at = StatementRef {
                policy: policy.label.clone(),
                sid: stmt.sid.clone(),
                index: stmt.index,
            };
            for reason in &mut trace.reasons[before..] {
                *reason = format!("{at}: {reason}");
            }
            match stmt.effect {
                Effect::Deny => out.deny = out.deny.or(applies[0]),
                Effect::Allow => {
                    for (slot, t) in out.allow.iter_mut().zip(applies) {
                        *slot = slot.or(t);
                    }
                }
            }
            match (stmt.effect, applies[0]) {
                (Effect::Deny, Tri::True) => out.denies.push(at),
                (Effect::Allow, Tri::True) => out.allows.push(at),
                (_, Tri::Unknown) => out.unsure.push(at),
                (_, Tri::False) => {}
            }
        }
    }
    out
}

/// Whether the statement applies to the request, per principal strength (see `matching::Strength`); for layers
/// without principals all three entries are equal.
fn eval_statement(stmt: &Statement, variables: bool, layer: Layer, env: &Env<'_>, trace: &mut Trace) -> [Tri; 3] {
    let request = env.request;
    let listed = stmt.action.value.iter().any(|p| action_matches(p, &request.action));
    if listed == stmt.action.negated {
        return [Tri::False; 3];
    }
    let resource = match &stmt.resource {
        // Resource-based policies often omit Resource: the policy is attached to the resource itself.
        None if matches!(layer, Layer::Resource | Layer::KmsKey) => Tri::True,
        None => trace.unknown("statement has no Resource or NotResource element"),
        Some(element) => {
            let any = element
                .value
                .iter()
                .fold(Tri::False, |acc, p| acc.or(resource_matches(p, variables, env, trace)));
            if element.negated {
                !any
            } else {
                any
            }
        }
    };
    if resource == Tri::False {
        return [Tri::False; 3];
    }
    let principal = match (&stmt.principal, takes_principal(layer)) {
        (None, false) => [Tri::True; 3],
        (Some(_), false) => [trace.unknown("Principal/NotPrincipal in a policy type that does not take one"); 3],
        (None, true) => [trace.unknown("resource-based statement without Principal/NotPrincipal"); 3],
        (Some(element), true) if !element.negated => principal_grants(&element.value, &env.who, trace),
        (Some(element), true) => {
            // "The NotPrincipal element with a Deny effect will always deny any IAM principal that has a
            // permissions boundary policy attached, regardless of the values" (access_policies_boundaries.html).
            if stmt.effect == Effect::Deny && env.has_boundary {
                [Tri::True; 3]
            } else {
                [not_principal_applies(&element.value, &env.who, trace); 3]
            }
        }
    };
    if principal[0] == Tri::False {
        return [Tri::False; 3];
    }
    let base = resource.and(evaluate_condition(&stmt.condition, &env.ctx, variables, trace));
    principal.map(|p| p.and(base))
}

/// Resource matching: a whole-string wildcard match, case-sensitive; `*` spans `/` and `:` (the resource part
/// of an ARN may itself contain colons). A variable with no value "will not match any resource".
fn resource_matches(pattern: &str, variables: bool, env: &Env<'_>, trace: &mut Trace) -> Tri {
    let fifth_colon = pattern
        .chars()
        .enumerate()
        .filter(|(_, c)| *c == ':')
        .nth(4)
        .map_or(usize::MAX, |(i, _)| i + 1);
    match expand(pattern, &env.ctx, variables, fifth_colon, trace) {
        Ok(tokens) => Tri::from_bool(match_tokens(
            &tokens,
            &env.request.resource.chars().collect::<Vec<_>>(),
            |a, b| a == b,
        )),
        Err(Unresolved::Missing) => Tri::False,
        Err(Unresolved::Unknown) => Tri::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::parse_policy;
    use super::*;

    fn request() -> Request {
        Request {
            principal: "arn:aws:sts::111122223333:assumed-role/app/task".into(),
            principal_account: "111122223333".into(),
            action: "ecr:BatchGetImage".into(),
            resource: "arn:aws:ecr:us-east-1:111122223333:repository/web".into(),
            ..Request::default()
        }
    }

    fn policy(label: &str, text: &str) -> Policy {
        parse_policy(text, label).expect("test policy parses")
    }

    #[test]
    fn identity_allow_and_request_sanity_checks() {
        let allow = policy(
            "id",
            r#"{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","Action":"ecr:*","Resource":"*"}}"#,
        );
        let set = PolicySet {
            identity: vec![allow],
            ..PolicySet::default()
        };
        let eval = evaluate(&request(), &set);
        assert_eq!(eval.decision, Decision::Allowed);
        assert_eq!(eval.summary(), "allowed (granted by id statement #0 (Sid A))");
        let bad = Request {
            principal: "task".into(),
            ..request()
        };
        let eval = evaluate(&bad, &set);
        assert_eq!(eval.decision, Decision::Indeterminate);
        assert!(eval.indeterminate[0].contains("not an ARN"));
        let other_account = Request {
            principal_account: "999999999999".into(),
            ..request()
        };
        assert_eq!(evaluate(&other_account, &set).decision, Decision::Indeterminate);
    }

    #[test]
    fn no_policies_is_an_implicit_deny_in_identity() {
        let eval = evaluate(&request(), &PolicySet::default());
        assert_eq!(eval.decision, Decision::ImplicitDeny);
        assert_eq!(
            eval.layer(Layer::Identity).map(|l| l.decision),
            Some(LayerDecision::ImplicitDeny)
        );
        assert_eq!(
            eval.layer(Layer::Scp).map(|l| l.decision),
            Some(LayerDecision::NotApplicable)
        );
        let layer = eval
            .suggestion
            .as_ref()
            .and_then(|s| s.get("layer"))
            .and_then(|l| l.as_str());
        assert_eq!(layer, Some("identity"));
    }
}
