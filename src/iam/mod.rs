//! Local AWS IAM policy evaluator: parses identity, permissions-boundary, session, resource-based, KMS key,
//! SCP and RCP documents and decides whether a role (or role session) may perform an action on a resource,
//! naming the deciding statements, the context keys it lacked, and why a result is indeterminate.

pub mod condition;
pub mod eval;
pub mod matching;
pub mod policy;
pub mod report;
pub mod source;

pub use eval::{evaluate, PolicySet, Request};
pub use policy::{
    ConditionClause, Effect, Element, Policy, PolicyError, Principal, PrincipalEntry, PrincipalKind, Statement,
};
pub use report::{Decision, Evaluation, Layer, LayerDecision, LayerResult, StatementRef};
pub use source::{load_policy_file, parse_policy};
