//! The output model of verification (`verdict.verification` in JSON, additive to contract
//! version 1): the status, the deciding layer and statement, what was read and what could not be,
//! the context keys a decision hung on, the smallest change that would allow, and each action as
//! evaluated. [`crate::verify`] fills it; the renderers print it.

use serde::Serialize;
use serde_json::Value;

use crate::iam::StatementRef;

/// The answer of verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The role's policies deny it: the layer and statement are named.
    Confirmed,
    /// The role's readable policies allow it: a layer ecsdoctor cannot read denies.
    Contradicted,
    /// The answer depends on something ecsdoctor cannot know (a condition key's value).
    Indeterminate,
    /// ecsdoctor could not read what it needs (its own read denied, or not in the bundle).
    Unavailable,
}

impl Status {
    /// Kebab-case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Status::Confirmed => "confirmed",
            Status::Contradicted => "contradicted",
            Status::Indeterminate => "indeterminate",
            Status::Unavailable => "unavailable",
        }
    }
}

/// What verification found: `verdict.verification` in JSON (additive to contract version 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub status: Status,
    /// The layer that decides (`identity`, `permissions-boundary`, `resource`, `kms-key` ...).
    pub layer: Option<&'static str>,
    /// The deciding statement: the Deny that applies, or the Allow that contradicts the text.
    pub statement: Option<StatementRef>,
    /// One line for people: the status and why.
    pub summary: String,
    /// The policies read and evaluated (inline names, managed policy ARNs with their version, the
    /// boundary, the resource's and the key's policy).
    pub checked: Vec<String>,
    /// What could not be read, and what ecsdoctor needs to read it.
    pub unreadable: Vec<Unreadable>,
    /// Condition keys the policies test whose values ecsdoctor cannot know.
    pub missing_context: Vec<String>,
    /// The smallest change that would allow the action: `{"layer", "policy"}`.
    pub diff: Option<Value>,
    /// Each action of the verdict, as evaluated.
    pub actions: Vec<ActionCheck>,
    /// For a contradicted verdict: the layers that could still deny.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub could_still_deny: Vec<String>,
    /// Managed policies (or the boundary) changed after the task stopped: what was evaluated is
    /// their version now, not the one in force at the stop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_after_stop: Vec<String>,
    /// When the evaluation names another layer than the text did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagreement: Option<String>,
    /// `--simulate`: what IAM's policy simulator said, beside the local evaluation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulation: Option<Simulation>,
}

/// A read that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// The IAM action of the call (`iam:GetRolePolicy`).
    pub call: String,
    /// What it was about (`inline policy db of role app`).
    pub subject: String,
    /// Why it failed.
    pub error: String,
    /// For ecsdoctor's own denied read: the permission to add to ecsdoctor's identity.
    pub grant: Option<String>,
}

/// One action as evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionCheck {
    pub action: String,
    pub resource: String,
    /// `allowed`, `explicit-deny`, `implicit-deny`, `indeterminate`, or `not-checked`.
    pub decision: &'static str,
    /// The layer deciding a denial.
    pub layer: Option<&'static str>,
    /// The deciding statement, if one.
    pub statement: Option<StatementRef>,
    /// Why it was not checked, or what it depends on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// IAM's policy simulator's answers (`iam:SimulatePrincipalPolicy`), per action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    pub results: Vec<SimulatedAction>,
    /// The call failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One simulated action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatedAction {
    pub action: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`, as IAM says it.
    pub decision: String,
    /// Whether it matches the local evaluation.
    pub agrees: bool,
    /// Why an implicit deny is no proof (missing context, not allowed by Organizations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}
