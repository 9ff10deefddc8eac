//! The reads of verification, in as few sequential rounds as their dependencies allow:
//!
//! 1. the role (GetRole: boundary, tags), its inline policy names and attached policies — usually
//!    already read beside the logs ([`prefetch`]), so no round of its own; and, when that round is
//!    paid anyway, the resource's policy and the read naming its key;
//! 2. each inline policy, each managed policy's default version id (and the boundary's), the
//!    resource's policy and key read when not done in 1, the key policy when 1 named the key;
//! 3. each managed policy's default version document, and the key policy when 2 named the key.
//!
//! So with the role prefetched beside the logs, verification costs two rounds after the verdict.

use futures_util::future::join_all;
use serde_json::Value;

use super::calls::{Call, ReadError, Reader};
use super::resources::{self, KeyRead, PolicyRead};
use super::{Plan, SimulatedAction, Simulation, Verification};
use crate::arn::Arn;
use crate::evidence::{role_name, Evidence};
use crate::rules::knowledge::service_of;

/// A managed policy (attached, or the permissions boundary) and its default version.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    pub arn: String,
    /// The default version id, once GetPolicy answered.
    pub version: Option<String>,
    /// GetPolicy's `UpdateDate`: when the policy last changed (a new default version). An ISO
    /// 8601 string as IAM and the CLI give it, or epoch seconds as other tools dump it.
    pub updated: Option<crate::evidence::Timestamp>,
    /// GetPolicyVersion's answer (or the error of GetPolicy / GetPolicyVersion).
    pub document: Result<Value, ReadError>,
}

/// The key that encrypts the resource.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyState {
    /// A customer managed key: its ARN and its key policy (or why it was not read).
    Customer {
        arn: String,
        policy: Result<Value, ReadError>,
    },
    /// The AWS managed key of the service (`alias/aws/...`, or no key named).
    AwsManaged(String),
    /// Named by an alias ecsdoctor cannot resolve to a key without `kms:DescribeKey`.
    Alias(String),
    /// The resource is not encrypted with KMS (a plain String parameter).
    None,
    /// The read naming the key failed.
    Unknown(ReadError),
}

/// Everything read for one plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    /// GetRole's answer.
    pub role: Result<Value, ReadError>,
    /// Inline policies by name, with GetRolePolicy's answer.
    pub inline: Vec<(String, Result<Value, ReadError>)>,
    /// Attached managed policies.
    pub managed: Vec<Managed>,
    /// The permissions boundary, if the role has one.
    pub boundary: Option<Managed>,
    /// The resource's own policy: `Ok(None)` when it has none.
    pub resource_policy: Option<(Call, Result<Option<Value>, ReadError>)>,
    /// The key behind the resource, when the verdict's actions use one.
    pub key: Option<KeyState>,
    /// The failed calls whose answers are kept nowhere else: the role's listings (GetRole,
    /// ListRolePolicies, ListAttachedRolePolicies) and the read naming the resource's key. Every
    /// other failure stays beside its policy (`inline`, `managed`, `resource_policy`, `key`).
    pub failures: Vec<(Call, ReadError)>,
}

/// The role names worth reading beside the logs: the task definition's two roles and any role
/// a stop reason names (`assumed-role/NAME/...`, as the instance role is named).
pub fn roles_to_prefetch(ev: &Evidence) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !n.is_empty() && !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    if let Some(td) = &ev.task_definition {
        for arn in [&td.execution_role_arn, &td.task_role_arn].into_iter().flatten() {
            add(role_name(arn));
        }
    }
    let reasons = ev
        .task
        .stopped_reason
        .iter()
        .chain(ev.task.containers.iter().filter_map(|c| c.reason.as_ref()));
    for r in reasons {
        for piece in r.split(":assumed-role/").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))
                .collect();
            add(&name);
        }
    }
    names
}

/// The calls that read a role's name-level facts (stage 1).
fn role_basics(role: &str) -> [Call; 3] {
    [
        Call::GetRole { role: role.to_string() },
        Call::ListRolePolicies { role: role.to_string() },
        Call::ListAttachedRolePolicies { role: role.to_string() },
    ]
}

/// Reads the roles' name-level facts in the caller's round (beside the logs), so the reader has
/// them when the verdict asks.
pub async fn prefetch(roles: &[String], reader: &impl Reader) {
    let calls: Vec<Call> = roles.iter().flat_map(|r| role_basics(r)).collect();
    join_all(calls.iter().map(|c| reader.read(c))).await;
}

/// One round: every call at once; a new round only when one of them needs a request.
async fn stage(reader: &impl Reader, calls: &[Call]) -> Vec<Result<Value, ReadError>> {
    if calls.is_empty() {
        return Vec::new();
    }
    if calls.iter().any(|c| !reader.has(c)) {
        reader.next_round();
    }
    join_all(calls.iter().map(|c| reader.read(c))).await
}

/// The resource's reads, from `resources.toml`.
struct ResourceReads {
    policy: Option<Call>,
    key: Option<Call>,
}

fn resource_reads(plan: &Plan) -> ResourceReads {
    ResourceReads {
        policy: plan.resource.as_deref().and_then(|r| policy_read(plan, r)),
        key: plan
            .encrypted
            .as_deref()
            .filter(|_| plan.actions.iter().any(|t| t.on == super::On::Key))
            .and_then(|r| key_read(plan, r)),
    }
}

fn region_in(plan: &Plan, arn: &Arn<'_>) -> String {
    if arn.region.is_empty() {
        plan.region.clone()
    } else {
        arn.region.to_string()
    }
}

/// The read of the resource's own policy, from `resources.toml`.
fn policy_read(plan: &Plan, res: &str) -> Option<Call> {
    let arn = Arn::parse(res)?;
    let region = region_in(plan, &arn);
    resources::of(arn.service).policy.and_then(|p| match p {
        PolicyRead::Repository => arn
            .resource
            .strip_prefix("repository/")
            .map(|r| Call::GetRepositoryPolicy {
                region: region.clone(),
                registry: arn.account.to_string(),
                repository: r.to_string(),
            }),
        PolicyRead::Secret => Some(Call::GetResourcePolicy {
            region: region.clone(),
            secret: res.to_string(),
        }),
        PolicyRead::Bucket => {
            let bucket = arn.resource.split('/').next().unwrap_or_default();
            (!bucket.is_empty()).then(|| Call::GetBucketPolicy {
                bucket: bucket.to_string(),
            })
        }
        PolicyRead::Key => Some(Call::GetKeyPolicy {
            region: region.clone(),
            key: res.to_string(),
        }),
    })
}

/// The read naming the key that encrypts the resource, from `resources.toml`.
fn key_read(plan: &Plan, res: &str) -> Option<Call> {
    let arn = Arn::parse(res)?;
    let region = region_in(plan, &arn);
    resources::of(arn.service).key.and_then(|k| match k {
        KeyRead::DescribeSecret => Some(Call::DescribeSecret {
            region: region.clone(),
            secret: res.to_string(),
        }),
        KeyRead::DescribeParameters => arn
            .resource
            .strip_prefix("parameter")
            .map(|n| Call::DescribeParameters {
                region: region.clone(),
                name: parameter_name(n),
            }),
    })
}

/// A parameter's name from the ARN's resource after `parameter`: hierarchical names keep their
/// leading `/` (`parameter/prod/db` is `/prod/db`), flat ones have none (`parameter/db` is `db`).
fn parameter_name(after: &str) -> String {
    let rest = after.trim_start_matches('/');
    if rest.contains('/') {
        format!("/{rest}")
    } else {
        rest.to_string()
    }
}

/// Reads everything the plan needs.
pub async fn collect(plan: &Plan, reader: &impl Reader) -> Collected {
    let role = plan.role_name.as_str();
    let basics = role_basics(role);
    let res = resource_reads(plan);
    let res_calls: Vec<Call> = res.policy.iter().chain(&res.key).cloned().collect();
    let mut failures: Vec<(Call, ReadError)> = Vec::new();

    // Stage 1: the role's facts; the resource's reads join it when this round is paid anyway.
    let early = basics.iter().any(|c| !reader.has(c));
    let mut s1: Vec<Call> = basics.to_vec();
    if early {
        s1.extend(res_calls.iter().cloned());
    }
    let mut answers = stage(reader, &s1).await;
    let res_answers1: Vec<Result<Value, ReadError>> = answers.split_off(3);
    let [get_role, list_inline, list_attached]: [Result<Value, ReadError>; 3] = answers
        .try_into()
        .unwrap_or_else(|_| unreachable!("stage 1 asked three role calls"));
    for (c, a) in basics.iter().zip([&get_role, &list_inline, &list_attached]) {
        if let Err(e) = a {
            failures.push((c.clone(), e.clone()));
        }
    }
    let inline_names = strings_at(list_inline.as_ref().ok(), &["PolicyNames"], None);
    let attached = strings_at(list_attached.as_ref().ok(), &["AttachedPolicies"], Some("PolicyArn"));
    let boundary_arn = get_role
        .as_ref()
        .ok()
        .and_then(|r| r.pointer("/Role/PermissionsBoundary/PermissionsBoundaryArn"))
        .and_then(Value::as_str)
        .map(str::to_string);

    // Stage 2: inline documents, default version ids, and the resource's reads if not done.
    let inline_calls: Vec<Call> = inline_names
        .iter()
        .map(|p| Call::GetRolePolicy {
            role: role.to_string(),
            policy: p.clone(),
        })
        .collect();
    let managed_arns: Vec<String> = attached.iter().chain(&boundary_arn).cloned().collect();
    let get_policy: Vec<Call> = managed_arns
        .iter()
        .map(|a| Call::GetPolicy { arn: a.clone() })
        .collect();
    let mut s2: Vec<Call> = inline_calls.iter().chain(&get_policy).cloned().collect();
    if !early {
        s2.extend(res_calls.iter().cloned());
    }
    // A key named by stage 1 has its policy read now.
    let key_from_1 = if early {
        key_state(plan, &res, res_answers1.get(res.policy.iter().count()))
    } else {
        None
    };
    if let Some(c) = key_policy_call(&key_from_1, plan) {
        s2.push(c);
    }
    let mut a2 = stage(reader, &s2).await;
    let key_answer_2 = key_policy_call(&key_from_1, plan).and_then(|_| a2.pop());
    let res_answers = if early {
        res_answers1
    } else {
        let n = res_calls.len();
        a2.split_off(a2.len() - n)
    };
    let gp_answers = a2.split_off(inline_calls.len());
    let inline: Vec<(String, Result<Value, ReadError>)> = inline_names.into_iter().zip(a2).collect();
    let versions: Vec<Option<String>> = gp_answers
        .iter()
        .map(|a| {
            a.as_ref()
                .ok()
                .and_then(|v| v.pointer("/Policy/DefaultVersionId"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let resource_policy = res.policy.clone().map(|c| {
        let a = res_answers.first().cloned().unwrap_or(Err(ReadError::NotInBundle));
        (c, policy_or_none(a))
    });
    let key_from_2 = if early {
        None
    } else {
        key_state(plan, &res, res_answers.get(res.policy.iter().count()))
    };

    // Stage 3: managed documents, and the key policy named in stage 2.
    let version_calls: Vec<(usize, Call)> = managed_arns
        .iter()
        .zip(&versions)
        .enumerate()
        .filter_map(|(i, (arn, v))| {
            v.as_ref().map(|v| {
                (
                    i,
                    Call::GetPolicyVersion {
                        arn: arn.clone(),
                        version: v.clone(),
                    },
                )
            })
        })
        .collect();
    let mut s3: Vec<Call> = version_calls.iter().map(|(_, c)| c.clone()).collect();
    if let Some(c) = key_policy_call(&key_from_2, plan) {
        s3.push(c);
    }
    let mut a3 = stage(reader, &s3).await;
    let key_answer_3 = key_policy_call(&key_from_2, plan).and_then(|_| a3.pop());
    let mut docs: Vec<Option<Result<Value, ReadError>>> = vec![None; managed_arns.len()];
    for ((i, _), a) in version_calls.iter().zip(a3) {
        docs[*i] = Some(a);
    }
    let mut managed: Vec<Managed> = managed_arns
        .iter()
        .zip(versions)
        .zip(docs)
        .enumerate()
        .map(|(i, ((arn, version), doc))| Managed {
            arn: arn.clone(),
            version,
            updated: gp_answers
                .get(i)
                .and_then(|a| a.as_ref().ok())
                .and_then(|v| v.pointer("/Policy/UpdateDate"))
                .and_then(|d| serde_json::from_value::<crate::evidence::Timestamp>(d.clone()).ok()),
            document: doc.unwrap_or_else(|| {
                Err(gp_answers
                    .get(i)
                    .and_then(|a| a.as_ref().err().cloned())
                    .unwrap_or_else(|| ReadError::Failed("GetPolicy named no default version".into())))
            }),
        })
        .collect();
    let boundary = boundary_arn.as_ref().and_then(|_| managed.pop());
    let key = match (key_from_1.or(key_from_2), key_answer_2.or(key_answer_3)) {
        (Some(KeyState::Customer { arn, .. }), Some(answer)) => Some(KeyState::Customer { arn, policy: answer }),
        (other, _) => other,
    };
    if let Some(KeyState::Unknown(e)) = &key {
        if let Some(c) = &res.key {
            failures.push((c.clone(), e.clone()));
        }
    }
    // A key given as the resource itself: its policy is the resource policy read above.
    Collected {
        role: get_role,
        inline,
        managed,
        boundary,
        resource_policy,
        key,
        failures,
    }
}

/// The region calls about `arn` go to: its own, else the task's.
pub(super) fn region_of(arn: &str, plan: &Plan) -> String {
    Arn::parse(arn).map_or_else(|| plan.region.clone(), |a| region_in(plan, &a))
}

/// The key policy read for a customer managed key.
fn key_policy_call(k: &Option<KeyState>, plan: &Plan) -> Option<Call> {
    match k {
        Some(KeyState::Customer {
            arn,
            policy: Err(ReadError::NotInBundle),
        }) => Some(key_policy_read(arn, plan)),
        _ => None,
    }
}

/// GetKeyPolicy of a customer managed key: the call read, and the one a gap is reported on.
pub(super) fn key_policy_read(arn: &str, plan: &Plan) -> Call {
    Call::GetKeyPolicy {
        region: region_of(arn, plan),
        key: arn.to_string(),
    }
}

/// What the key read said about the resource's key. A customer managed key's policy is still to
/// be read (`NotInBundle` marks it), unless the key is another account's: GetKeyPolicy cannot
/// read those (KMS API reference, GetKeyPolicy: "Cross-account use: No").
fn key_state(plan: &Plan, res: &ResourceReads, answer: Option<&Result<Value, ReadError>>) -> Option<KeyState> {
    let state = key_state_of(plan, res, answer)?;
    Some(match state {
        KeyState::Customer { arn, .. }
            if Arn::parse(&arn).is_some_and(|a| !a.account.is_empty() && a.account != plan.account) =>
        {
            KeyState::Customer {
                policy: Err(ReadError::Failed(
                    "the key belongs to another account, whose key policy kms:GetKeyPolicy cannot read".into(),
                )),
                arn,
            }
        }
        other => other,
    })
}

fn key_state_of(plan: &Plan, res: &ResourceReads, answer: Option<&Result<Value, ReadError>>) -> Option<KeyState> {
    let call = res.key.as_ref()?;
    let answer = match answer? {
        Ok(v) => v,
        Err(e) => return Some(KeyState::Unknown(e.clone())),
    };
    let (key_id, managed_name) = match call {
        Call::DescribeSecret { .. } => (answer.get("KmsKeyId").and_then(Value::as_str), "aws/secretsmanager"),
        Call::DescribeParameters { name, .. } => {
            let Some(p) = answer.get("Parameters").and_then(Value::as_array).and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("Name").and_then(Value::as_str) == Some(name.as_str()))
            }) else {
                return Some(KeyState::Unknown(ReadError::NotFound(format!(
                    "no parameter named {name}"
                ))));
            };
            if p.get("Type").and_then(Value::as_str) != Some("SecureString") {
                return Some(KeyState::None);
            }
            (p.get("KeyId").and_then(Value::as_str), "aws/ssm")
        }
        _ => return None,
    };
    let res_arn = plan.encrypted.as_deref().and_then(Arn::parse);
    Some(match key_id {
        None => KeyState::AwsManaged(format!("alias/{managed_name}")),
        Some(k) if k.starts_with("alias/aws/") || k.contains(":alias/aws/") => KeyState::AwsManaged(k.to_string()),
        Some(k) if k.starts_with("alias/") || k.contains(":alias/") => KeyState::Alias(k.to_string()),
        Some(k) if Arn::parse(k).is_some() => KeyState::Customer {
            arn: k.to_string(),
            policy: Err(ReadError::NotInBundle),
        },
        Some(k) => {
            let (partition, region, account) = res_arn
                .map(|a| (a.partition.to_string(), a.region.to_string(), a.account.to_string()))
                .unwrap_or_else(|| (plan.partition.clone(), plan.region.clone(), plan.account.clone()));
            KeyState::Customer {
                arn: format!("arn:{partition}:kms:{region}:{account}:key/{k}"),
                policy: Err(ReadError::NotInBundle),
            }
        }
    })
}

/// A resource policy read: "no policy" answers (not found, or an answer without one) are `None`.
fn policy_or_none(a: Result<Value, ReadError>) -> Result<Option<Value>, ReadError> {
    match a {
        Ok(v) => {
            let has = ["policyText", "ResourcePolicy", "Policy"]
                .iter()
                .any(|k| v.get(*k).is_some_and(|p| !p.is_null() && p.as_str() != Some("")));
            Ok(has.then_some(v))
        }
        Err(ReadError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Strings under `path` of an answer: a list of strings, or of objects' `field`.
fn strings_at(v: Option<&Value>, path: &[&str], field: Option<&str>) -> Vec<String> {
    let mut cur = v;
    for p in path {
        cur = cur.and_then(|c| c.get(*p));
    }
    cur.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| match field {
                    Some(f) => x.get(f).and_then(Value::as_str),
                    None => x.as_str(),
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `--simulate`: asks IAM's policy simulator about the checked actions (one call per resource,
/// all in one round) and compares. Its implicit deny is no proof when it lacked context values or
/// Organizations did not allow the action, and it does not read resource or key policies for a
/// role: those answers carry a caveat.
pub async fn simulate(plan: &Plan, collected: &Collected, v: &Verification, reader: &impl Reader) -> Simulation {
    let role_arn = collected
        .role
        .as_ref()
        .ok()
        .and_then(|r| r.pointer("/Role/Arn"))
        .and_then(Value::as_str)
        .map_or_else(|| plan.role_arn.clone(), str::to_string);
    let checked: Vec<&super::ActionCheck> = v.actions.iter().filter(|a| a.decision != "not-checked").collect();
    if checked.is_empty() {
        return Simulation {
            results: Vec::new(),
            error: Some("no action was checked locally".into()),
        };
    }
    let mut by_resource: Vec<(String, Vec<String>)> = Vec::new();
    for a in &checked {
        match by_resource.iter_mut().find(|(r, _)| *r == a.resource) {
            Some((_, acts)) => acts.push(a.action.clone()),
            None => by_resource.push((a.resource.clone(), vec![a.action.clone()])),
        }
    }
    let calls: Vec<Call> = by_resource
        .into_iter()
        .map(|(resource, actions)| Call::SimulatePrincipalPolicy {
            role_arn: role_arn.clone(),
            actions,
            resource,
        })
        .collect();
    let mut results = Vec::new();
    for (call, answer) in calls.iter().zip(stage(reader, &calls).await) {
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                return Simulation {
                    results,
                    error: Some(format!("{}: {e}", call.action())),
                }
            }
        };
        for r in answer
            .get("EvaluationResults")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let action = r
                .get("EvalActionName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let decision = r
                .get("EvalDecision")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let local = checked
                .iter()
                .find(|a| a.action.eq_ignore_ascii_case(&action))
                .map(|a| a.decision)
                .unwrap_or("not-checked");
            let agrees = matches!(
                (decision.as_str(), local),
                ("allowed", "allowed") | ("explicitDeny", "explicit-deny") | ("implicitDeny", "implicit-deny")
            );
            let missing: Vec<&str> = r
                .get("MissingContextValues")
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let org_denied = r
                .pointer("/OrganizationsDecisionDetail/AllowedByOrganizations")
                .and_then(Value::as_bool)
                == Some(false);
            let key_action = resources::is_key_service(service_of(&action));
            let caveat = if decision == "implicitDeny" && !missing.is_empty() {
                Some(format!(
                    "no proof: the simulator lacked context values {}",
                    missing.join(", ")
                ))
            } else if org_denied {
                Some("no proof of the role's policies: Organizations (an SCP) did not allow it".to_string())
            } else if key_action || collected.resource_policy.is_some() {
                Some("the simulator does not read the resource's or the key's policy for a role".to_string())
            } else {
                None
            };
            results.push(SimulatedAction {
                action,
                decision,
                agrees,
                caveat,
            });
        }
    }
    Simulation { results, error: None }
}
