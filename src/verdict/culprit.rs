//! Who is denied. The principal the message names settles it when it matches a role of the task
//! (an `i-...` session means the container instance's role); otherwise the rule's culprit, and
//! failing that the phase: at startup the ECS agent works with the execution role (or, on EC2
//! without one, the instance role for what the knowledge tables do not reserve to an execution
//! role), at runtime the application works with the task role.

use super::Phase;
use crate::evidence::Evidence;
use crate::rules::extract::{Facts, Principal};
use crate::rules::{Category, Culprit, Knowledge, Rule, RuleCulprit};

fn is_ec2(ev: &Evidence) -> bool {
    ev.launch_type().as_deref() == Some("EC2")
}

/// Who is denied. The principal the message names settles it when it matches a role of the task;
/// otherwise the rule's culprit, otherwise the phase.
pub(super) fn resolve(
    ev: &Evidence,
    rule: &Rule,
    f: &Facts,
    phase: Phase,
    k: &Knowledge,
) -> (Culprit, Option<String>, String) {
    let td = ev.task_definition.as_ref();
    let exec_arn = td.and_then(|t| t.execution_role_arn.clone());
    let task_arn = td.and_then(|t| t.task_role_arn.clone());
    let (exec_name, task_name) = ev.role_names();
    if rule.culprit == RuleCulprit::NotIam || rule.category != Category::Iam && rule.culprit != RuleCulprit::ByPhase {
        let c = match rule.culprit {
            RuleCulprit::ExecutionRole => Culprit::ExecutionRole,
            RuleCulprit::TaskRole => Culprit::TaskRole,
            RuleCulprit::InstanceRole => Culprit::InstanceRole,
            _ => Culprit::NotIam,
        };
        let arn = match c {
            Culprit::ExecutionRole => exec_arn,
            Culprit::TaskRole => task_arn,
            _ => None,
        };
        return (c, arn, format!("rule {} ({} failure)", rule.id, rule.category.name()));
    }
    if let Some(p) = &f.principal {
        if let Some(name) = p
            .name
            .as_deref()
            .filter(|_| p.kind == "assumed-role" || p.kind == "role")
        {
            let is_exec = exec_name.is_some_and(|n| n == name);
            let is_task = task_name.is_some_and(|n| n == name);
            match (is_exec, is_task) {
                (true, false) => {
                    return (
                        Culprit::ExecutionRole,
                        exec_arn,
                        format!("the denied principal is the task definition's execution role {name}"),
                    );
                }
                (false, true) => {
                    return (
                        Culprit::TaskRole,
                        task_arn,
                        format!("the denied principal is the task definition's task role {name}"),
                    );
                }
                (true, true) => {
                    let c = by_phase(ev, phase, f, k);
                    return (
                        c.0,
                        c.1,
                        format!("{name} is both the execution and the task role; {}", c.2),
                    );
                }
                (false, false) => {}
            }
            if p.is_instance_session() {
                let why = if is_ec2(ev) || ev.launch_type().is_none() {
                    format!(
                        "the session {} is an EC2 instance id: the request used the container instance's role {name}",
                        p.session.as_deref().unwrap_or("")
                    )
                } else {
                    format!(
                        "the session `{}` is an EC2 instance id: instance-profile credentials, role `{name}`",
                        p.session.as_deref().unwrap_or("")
                    )
                };
                let why = if task_arn.is_none() && phase != Phase::Startup {
                    format!("{why}; the task definition has no taskRoleArn, so the app fell back to the instance role (better fix: give the task its own task role)")
                } else if task_arn.is_some() && phase != Phase::Startup {
                    format!("{why}; the task has a task role, but this SDK or tool did not use it (it read EC2 instance metadata)")
                } else {
                    why
                };
                return (Culprit::InstanceRole, p.role_arn(), why);
            }
            if td.is_some() {
                // A role that is neither of the task's: an assumed role further down a chain, or
                // (on EC2) the instance role. The fix belongs to the role the message names.
                let (c, _, why) = by_phase(ev, phase, f, k);
                // A rule that names whose work this is (the agent's own calls are the instance
                // role's) outranks the phase.
                let c = match rule.culprit {
                    RuleCulprit::ExecutionRole => Culprit::ExecutionRole,
                    RuleCulprit::TaskRole => Culprit::TaskRole,
                    RuleCulprit::InstanceRole => Culprit::InstanceRole,
                    _ if c == Culprit::TaskRole && p.is_task_session() => Culprit::TaskRole,
                    _ => c,
                };
                return (
                    c,
                    p.role_arn(),
                    format!("the denied role {name} is not a role of this task definition (execution role: {}, task role: {}); {why}; fix the role the message names",
                        exec_name.unwrap_or("none"), task_name.unwrap_or("none")),
                );
            }
            // No task definition: judge by the name and the rule.
            let lower = name.to_ascii_lowercase();
            if ["instancerole", "instance-role", "instance_role", "instanceprofile"]
                .iter()
                .any(|n| lower.contains(n))
                && rule.culprit == RuleCulprit::ByPhase
            {
                return (
                    Culprit::InstanceRole,
                    p.role_arn(),
                    format!(
                        "no task definition to compare with; the denied role `{name}` is named like a container instance role"
                    ),
                );
            }
            if lower.contains("execution") {
                return (
                    Culprit::ExecutionRole,
                    p.role_arn(),
                    format!(
                        "no task definition to compare with; the denied role `{name}` is named like an execution role"
                    ),
                );
            }
            let (c, _, why) = match rule.culprit {
                RuleCulprit::ExecutionRole => (
                    Culprit::ExecutionRole,
                    None,
                    "the rule's signature is the execution role's".into(),
                ),
                RuleCulprit::TaskRole => (
                    Culprit::TaskRole,
                    None,
                    "the rule's signature is the task role's".into(),
                ),
                RuleCulprit::InstanceRole => (
                    Culprit::InstanceRole,
                    None,
                    "the rule's signature is the instance role's".into(),
                ),
                _ => by_phase(ev, phase, f, k),
            };
            return (
                c,
                p.role_arn(),
                format!("no task definition to compare with; denied role {name}; {why}"),
            );
        }
        if p.kind == "user" || p.kind == "root" {
            return (
                Culprit::Unknown,
                None,
                format!("the denied principal {} is an IAM {}, not a role of the task: the app uses static credentials (environment or file), so the fix is on that identity, or better, remove the keys and use the task role", p.arn, p.kind),
            );
        }
    }
    match rule.culprit {
        RuleCulprit::ExecutionRole => (
            Culprit::ExecutionRole,
            exec_arn,
            format!("rule {}: this is done with the execution role", rule.id),
        ),
        RuleCulprit::TaskRole => {
            let why = if task_arn.is_none() && td.is_some() {
                "the task definition has no taskRoleArn: the application has no AWS credentials of its own; add a task role".to_string()
            } else {
                format!("rule {}: the application's own calls use the task role", rule.id)
            };
            (Culprit::TaskRole, task_arn, why)
        }
        RuleCulprit::InstanceRole => (
            Culprit::InstanceRole,
            None,
            format!("rule {}: this is done with the container instance role", rule.id),
        ),
        _ => by_phase(ev, phase, f, k),
    }
}

fn by_phase(ev: &Evidence, phase: Phase, f: &Facts, k: &Knowledge) -> (Culprit, Option<String>, String) {
    let td = ev.task_definition.as_ref();
    let exec_arn = td.and_then(|t| t.execution_role_arn.clone());
    let task_arn = td.and_then(|t| t.task_role_arn.clone());
    match phase {
        Phase::Startup => {
            let secrets = f.action.as_deref().is_some_and(|a| k.execution_role_only(a));
            if is_ec2(ev) && td.is_some() && exec_arn.is_none() && !secrets {
                let role = f.principal.as_ref().and_then(Principal::role_arn);
                return (Culprit::InstanceRole, role, "startup failure on EC2 with no executionRoleArn: the agent pulls images and creates log streams with the container instance role".into());
            }
            let why = if td.is_some() && exec_arn.is_none() {
                "startup failure: the ECS agent does this with the task execution role, and the task definition has none (add executionRoleArn)"
            } else {
                "startup failure: the ECS agent does this with the task execution role before any container runs"
            };
            (Culprit::ExecutionRole, exec_arn, why.into())
        }
        Phase::Runtime => {
            if task_arn.is_none() && td.is_some() {
                if is_ec2(ev) {
                    let role = f.principal.as_ref().and_then(Principal::role_arn);
                    return (Culprit::InstanceRole, role, "a denial in the app's logs at runtime, and the task definition has no taskRoleArn: on EC2 the SDK falls back to the container instance role (better fix: add a task role)".into());
                }
                return (Culprit::TaskRole, None, "a denial in the app's logs at runtime, and the task definition has no taskRoleArn: the app has no role of its own; add a task role with the permission".into());
            }
            (
                Culprit::TaskRole,
                task_arn,
                "a denial at runtime, from the application: its AWS calls use the task role".into(),
            )
        }
        Phase::Unknown => (
            Culprit::Unknown,
            None,
            "the phase could not be decided and the message names no principal".into(),
        ),
    }
}

/// A denial of a principal that is not one of the task's (nor an instance session).
pub(super) struct Outside {
    pub(super) role_arn: Option<String>,
    pub(super) reason: String,
    pub(super) category: Category,
}

/// A denial no role of the task can fix: the caller that starts or deploys tasks was denied
/// (RunTask, iam:PassRole ...), or an IAM user's static keys were used instead of the task role.
pub(super) fn outside_the_task(ev: &Evidence, f: &Facts, k: &Knowledge) -> Option<Outside> {
    let p = f.principal.as_ref()?;
    let (exec, task) = ev.role_names();
    let task_role = p.name.as_deref().is_some_and(|n| Some(n) == exec || Some(n) == task);
    if task_role || p.is_instance_session() || p.is_task_session() {
        return None;
    }
    let action = f.action.as_deref().unwrap_or_default();
    if k.is_caller_action(action) {
        return Some(Outside {
            role_arn: p.role_arn(),
            reason: format!(
                "the denied principal {} is the caller that starts or deploys tasks, not one of the task's roles: the caller needs {action}",
                p.arn
            ),
            category: Category::Iam,
        });
    }
    (p.kind == "user" || p.kind == "root").then(|| Outside {
        role_arn: None,
        reason: format!(
            "the denied principal {} is an IAM {}, not a role of the task: the app signs with static credentials (environment or file) that take precedence over the task role; remove them and let the SDK use the task role",
            p.arn, p.kind
        ),
        category: Category::Config,
    })
}
