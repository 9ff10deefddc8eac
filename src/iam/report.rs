//! The evaluation result: decision, per-layer verdicts with the deciding statements, missing context,
//! reasons for indeterminate results, the suggested fix, and its stable JSON form (`"version": 1`).

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Value};

use super::policy::sanitize_to;

/// The final answer for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Every required layer allows and nothing denies.
    Allowed,
    /// A `Deny` statement applies.
    ExplicitDeny,
    /// No explicit deny, but some required layer has no applicable `Allow`.
    ImplicitDeny,
    /// The supplied policies and context do not determine the answer (see `indeterminate`).
    Indeterminate,
}

/// A policy type taking part in evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// The role's identity-based policies (inline and managed default versions).
    Identity,
    /// The role's permissions boundary.
    PermissionsBoundary,
    /// The resource-based policy of the target resource (ECR repository, S3 bucket, secret, ...).
    Resource,
    /// The KMS key policy of the target key.
    KmsKey,
    /// Service control policies of the principal's account.
    Scp,
    /// Resource control policies of the resource's account.
    Rcp,
    /// Session policies passed when the role session was created.
    Session,
}

impl Layer {
    /// All layers, in the order results list them.
    pub const ALL: [Layer; 7] = [
        Layer::Identity,
        Layer::PermissionsBoundary,
        Layer::Resource,
        Layer::KmsKey,
        Layer::Scp,
        Layer::Rcp,
        Layer::Session,
    ];

    /// The layer's name as serialised (`"permissions-boundary"`, `"kms-key"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Layer::Identity => "identity",
            Layer::PermissionsBoundary => "permissions-boundary",
            Layer::Resource => "resource",
            Layer::KmsKey => "kms-key",
            Layer::Scp => "scp",
            Layer::Rcp => "rcp",
            Layer::Session => "session",
        }
    }
}

/// What one layer contributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerDecision {
    /// An `Allow` statement applies (for resource-based layers: names the principal at some strength).
    Allow,
    /// A `Deny` statement applies.
    ExplicitDeny,
    /// The layer was evaluated and nothing applies.
    ImplicitDeny,
    /// No policy of this type was supplied and none is required.
    NotApplicable,
    /// Some statement's applicability cannot be determined.
    Indeterminate,
}

/// Points at one statement: policy label, `Sid` and 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRef {
    /// The policy's label (name or ARN).
    pub policy: String,
    /// The statement's `Sid`, if any.
    pub sid: Option<String>,
    /// 0-based index of the statement in its policy.
    pub index: usize,
}

impl std::fmt::Display for StatementRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} statement #{}", sanitize_to(&self.policy, 200), self.index)?;
        match &self.sid {
            Some(sid) => write!(f, " (Sid {})", sanitize_to(sid, 100)),
            None => Ok(()),
        }
    }
}

/// One layer's verdict and the statements behind it: the matching `Deny` statements for an explicit deny, the
/// matching `Allow` statements for an allow, the undecidable statements for an indeterminate layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerResult {
    /// Which layer.
    pub layer: Layer,
    /// Its verdict.
    pub decision: LayerDecision,
    /// The statements that produced the verdict.
    pub statements: Vec<StatementRef>,
}

/// The full result of [`evaluate`](super::eval::evaluate).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The final decision.
    pub decision: Decision,
    /// One entry per layer, in [`Layer::ALL`] order.
    pub layers: Vec<LayerResult>,
    /// Context keys the evaluation looked at that the request did not supply.
    pub missing_context: Vec<String>,
    /// Why the decision is indeterminate (empty otherwise).
    pub indeterminate: Vec<String>,
    /// For an implicit deny: `{"layer": ..., "policy": {...}}`, the minimal statement that would allow it.
    pub suggestion: Option<Value>,
}

impl Evaluation {
    /// The result for one layer.
    pub fn layer(&self, layer: Layer) -> Option<&LayerResult> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// The statements that decided the outcome: every matching `Deny` for an explicit deny, the granting
    /// `Allow` statements of all layers for an allow, nothing otherwise.
    pub fn deciding_statements(&self) -> Vec<&StatementRef> {
        let wanted = match self.decision {
            Decision::ExplicitDeny => LayerDecision::ExplicitDeny,
            Decision::Allowed => LayerDecision::Allow,
            Decision::ImplicitDeny | Decision::Indeterminate => return Vec::new(),
        };
        self.layers
            .iter()
            .filter(|l| l.decision == wanted)
            .flat_map(|l| &l.statements)
            .collect()
    }

    /// A one-line human summary naming the deciding statement or the layer that lacks an allow.
    pub fn summary(&self) -> String {
        let first = self.deciding_statements().first().map(|s| s.to_string());
        match (self.decision, first) {
            (Decision::ExplicitDeny, Some(s)) => format!("explicit deny by {s}; that Deny statement must change"),
            (Decision::Allowed, Some(s)) => format!("allowed (granted by {s})"),
            (Decision::ImplicitDeny, _) => match self
                .suggestion
                .as_ref()
                .and_then(|s| s.get("layer"))
                .and_then(Value::as_str)
            {
                Some(layer) => format!("implicit deny: no applicable Allow in the {layer} layer"),
                None => "implicit deny".to_string(),
            },
            (Decision::Indeterminate, _) => format!("indeterminate: {}", self.indeterminate.join("; ")),
            (decision, None) => format!("{decision:?}"),
        }
    }
}

impl Serialize for Evaluation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Evaluation", 6)?;
        s.serialize_field("version", &1)?;
        s.serialize_field("decision", &self.decision)?;
        s.serialize_field("layers", &self.layers)?;
        s.serialize_field("missing_context", &self.missing_context)?;
        s.serialize_field("indeterminate", &self.indeterminate)?;
        s.serialize_field("suggestion", &self.suggestion)?;
        s.end()
    }
}

/// The minimal statement that would supply the missing allow in `layer`. Resource-based layers name the role
/// ARN as principal; an RCP can only allow through `RCPFullAWSAccess` ("The effect of Allow is only supported
/// for the RCPFullAWSAccess policy", orgs_manage_policies_rcps_syntax.html), so that policy is suggested.
pub(crate) fn suggestion(layer: Layer, action: &str, resource: &str, role_arn: &str) -> Value {
    let statement = match layer {
        Layer::Resource | Layer::KmsKey => {
            json!({"Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": action, "Resource": resource})
        }
        Layer::Rcp => {
            return json!({"layer": layer.name(),
                "policy": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "RCPFullAWSAccess", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]},
                "note": "RCPs can only allow through RCPFullAWSAccess; attach it at every level from the root to the account"});
        }
        _ => json!({"Effect": "Allow", "Action": action, "Resource": resource}),
    };
    json!({"layer": layer.name(), "policy": {"Version": "2012-10-17", "Statement": [statement]}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_the_documented_shape() {
        let eval = Evaluation {
            decision: Decision::ImplicitDeny,
            layers: vec![LayerResult {
                layer: Layer::PermissionsBoundary,
                decision: LayerDecision::NotApplicable,
                statements: vec![StatementRef {
                    policy: "p".into(),
                    sid: None,
                    index: 2,
                }],
            }],
            missing_context: vec!["aws:SourceIp".into()],
            indeterminate: vec![],
            suggestion: Some(suggestion(Layer::KmsKey, "kms:Decrypt", "arn:k", "arn:r")),
        };
        let v = serde_json::to_value(&eval).expect("serialises");
        let want = json!({"version": 1, "decision": "implicit-deny",
            "layers": [{"layer": "permissions-boundary", "decision": "not-applicable",
                        "statements": [{"policy": "p", "sid": null, "index": 2}]}],
            "missing_context": ["aws:SourceIp"], "indeterminate": [],
            "suggestion": {"layer": "kms-key", "policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:r"}, "Action": "kms:Decrypt", "Resource": "arn:k"}]}}});
        assert_eq!(v, want);
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            [
                "version",
                "decision",
                "layers",
                "missing_context",
                "indeterminate",
                "suggestion"
            ]
        );
        for layer in Layer::ALL {
            assert_eq!(serde_json::to_value(layer).expect("layer"), json!(layer.name()));
        }
        assert_eq!(
            eval.summary(),
            "implicit deny: no applicable Allow in the kms-key layer"
        );
    }
}
