//! What the engine knows about AWS services, as data: SDK service and operation names mapped to
//! IAM actions, which services only an execution role ever calls at startup, where a service's
//! resource comes from in the task definition, which policy layer a service's "resource-based
//! policy" is, how a task-specific resource is widened so the fix outlives the task, shapes a
//! resource must have, and the weights of the phase signals. Rule files carry these tables
//! (`rules/operations.toml`, `rules/ecs.toml`) next to the rules, so users can extend them and the
//! verdict code names no AWS service. `docs/rule-format.md` documents every table.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use strum::{EnumString, IntoStaticStr};

use super::model::{PolicyLayer, RulePhase};
use super::LazyRegex;

/// Where a service's resource can be read off the task definition when a message names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, IntoStaticStr, EnumString)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ResourceFrom {
    /// `secrets[].valueFrom` and `logConfiguration.secretOptions[].valueFrom` that are ARNs of
    /// this service (and, with `arn`, values that are a bare name rather than an ARN).
    Secrets,
    /// `repositoryCredentials.credentialsParameter`.
    RepositoryCredentials,
    /// Container images hosted in ECR (`arn` makes the repository's ARN; `{region}` and
    /// `{account}` are the registry's).
    EcrImages,
    /// awslogs log groups (`arn` makes the group's ARN; `{region}` is `awslogs-region`).
    AwslogsGroups,
    /// `environmentFiles[].value`.
    EnvironmentFiles,
}

/// Where one service's resource comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSource {
    /// The task-definition places, in order.
    #[serde(default)]
    pub from: Vec<ResourceFrom>,
    /// The ARN of a value given as a name (a bare parameter name, an image's repository, a log
    /// group): `{partition}`, `{region}`, `{account}` and `{name}` are filled in.
    #[serde(default)]
    pub arn: Option<String>,
    /// Keep only this many `:`-separated parts of a value (a secret's `valueFrom` may carry a
    /// JSON key and version after the ARN).
    #[serde(default)]
    pub arn_segments: Option<usize>,
    /// What the fix says when the resource is unknown (instead of `<svc resource ARN>`).
    #[serde(default)]
    pub unknown: Option<String>,
}

impl ResourceSource {
    /// `value` cut to [`ResourceSource::arn_segments`] parts, when the table says so.
    pub fn trim(&self, value: &str) -> String {
        match self.arn_segments {
            Some(n) => value.split(':').take(n).collect::<Vec<_>>().join(":"),
            None => value.to_string(),
        }
    }
}

/// Facts about one IAM action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFacts {
    /// The only resource the action takes (`ecr:GetAuthorizationToken` takes `*`).
    #[serde(default)]
    pub resource: Option<String>,
    /// The policy layer a denial of this action means when the message names none.
    #[serde(default)]
    pub policy: Option<PolicyLayer>,
}

/// A resource pattern widened for the fix: a task-specific resource (one task's log stream, one
/// object key) would fix nothing for the next task.
#[derive(Debug, Clone)]
pub struct ResourceScope {
    /// The exact resource, with named groups.
    pub pattern: LazyRegex,
    /// The widened resource, with `{group}` placeholders.
    pub scope: String,
    /// One sentence on what the scope covers and how to narrow it.
    pub note: String,
}

/// A shape a resource must have; when it does not, the finding says why that matters.
#[derive(Debug, Clone)]
pub struct ResourceCheck {
    /// Resources the check applies to.
    pub applies: LazyRegex,
    /// What they must match.
    pub expect: LazyRegex,
    /// What to say when they do not.
    pub note: String,
}

/// How an operation name is written in a form: as the API names it, or in a language's case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationCase {
    /// `PutObject` as printed.
    #[default]
    Api,
    /// `putObject` or `put_object`: made `PutObject`.
    Pascal,
}

/// One way an SDK, a stack frame or an HTTP log names the operation (and maybe the service) of
/// a failed call: "operation error S3: PutObject", `de_PutObjectCommandError`, `GetObjectRequest`,
/// `s3.put_object(`, `PUT https://bucket.s3...`.
#[derive(Debug, Clone)]
pub struct OperationForm {
    /// With a group `operation` (or `verb`) and maybe `service`.
    pub pattern: LazyRegex,
    /// The service when the form implies one.
    pub service: Option<String>,
    /// Where else in the same text the service is named (a group `service`).
    pub service_from: Option<LazyRegex>,
    /// How the operation is written.
    pub case: OperationCase,
    /// `verb` group value -> operation (`PUT` -> `PutObject`).
    pub verbs: BTreeMap<String, String>,
}

/// How much each signal weighs when the phase (startup or runtime) is decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseWeights {
    /// `stopCode` value -> the phase it proves and its weight.
    #[serde(default)]
    pub stop_codes: BTreeMap<String, PhaseVote>,
    /// A startup rule matched the stop or container reason.
    #[serde(default)]
    pub startup_rule: u32,
    /// A runtime rule matched the stop or container reason.
    #[serde(default)]
    pub runtime_rule: u32,
    /// The image pull started but never finished.
    #[serde(default)]
    pub pull_unfinished: u32,
    /// The task has `startedAt`.
    #[serde(default)]
    pub started: u32,
    /// The task was created but never started.
    #[serde(default)]
    pub never_started: u32,
    /// A container has an exit code.
    #[serde(default)]
    pub container_exited: u32,
    /// Words only startup errors carry (`ResourceInitializationError`, `CannotPullContainer`):
    /// a stop reason or a pasted line holding one is evidence the task never started, even where
    /// no startup rule matched (the message was cut, or its tail is new). Matched
    /// case-insensitively.
    #[serde(default)]
    pub startup_words: Vec<String>,
}

impl PhaseWeights {
    /// The first startup word in a text, if any.
    pub fn startup_word<'a>(&'a self, text: &str) -> Option<&'a str> {
        let lower = text.to_ascii_lowercase();
        self.startup_words
            .iter()
            .find(|w| lower.contains(&w.to_ascii_lowercase()))
            .map(String::as_str)
    }
}

/// One stop code's vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseVote {
    pub phase: RulePhase,
    pub weight: u32,
}

/// `[roles]`: how ECS uses the task's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// IAM service prefixes only an execution role ever calls at startup (secrets, their keys,
    /// environment files). On EC2 without an execution role everything else the agent does at
    /// startup (image pulls, awslogs) uses the container instance role.
    #[serde(default)]
    pub execution_role_only: BTreeSet<String>,
    /// The service principal a task or execution role's trust policy must name.
    #[serde(default)]
    pub task_trust_principal: Option<String>,
    /// The action a trust policy statement allows.
    #[serde(default)]
    pub trust_action: Option<String>,
    /// Actions of whoever starts or deploys tasks (RunTask, iam:PassRole ...): denied to a
    /// principal that is not one of the task's roles, the caller needs the fix.
    #[serde(default)]
    pub caller_actions: BTreeSet<String>,
    /// Actions the ECS agent itself calls to start a task (image pull, awslogs, secrets): a
    /// pasted denial of one, with nothing else saying when it happened, is read as a startup
    /// failure rather than the application's.
    #[serde(default)]
    pub agent_startup_actions: BTreeSet<String>,
}

/// All the tables, merged over every rule file loaded.
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    /// Lower-cased SDK service name or endpoint prefix -> IAM service prefix.
    pub services: BTreeMap<String, String>,
    /// Operation name -> IAM action.
    pub operations: BTreeMap<String, String>,
    /// How ECS uses the task's roles.
    pub roles: Roles,
    /// IAM service prefix -> where its resource comes from.
    pub resource_sources: BTreeMap<String, ResourceSource>,
    /// Lower-cased IAM action -> facts about it.
    pub actions: BTreeMap<String, ActionFacts>,
    /// IAM service prefix -> the layer a denial by its "resource-based policy" is.
    pub resource_policy_layers: BTreeMap<String, PolicyLayer>,
    /// Task-specific resources widened for the fix, tried in order.
    pub scopes: Vec<ResourceScope>,
    /// Shapes resources must have.
    pub checks: Vec<ResourceCheck>,
    /// Forms naming a failed call's operation, tried in order (the first that matches decides).
    pub operation_forms: Vec<OperationForm>,
    /// Forms naming only the service (`(Service: Amazon S3; ...)`), used when an operation form
    /// names none.
    pub service_forms: Vec<LazyRegex>,
    /// Phase signal weights.
    pub phase: PhaseWeights,
}

impl Knowledge {
    /// The IAM action for an operation, using the service when known.
    pub fn action_for(&self, service: Option<&str>, operation: &str) -> Option<String> {
        let prefix = service.and_then(|s| self.service_prefix(s));
        let known = self.operations.get(operation);
        match (prefix, known) {
            (Some(p), Some(a)) if a.split(':').next() == Some(p.as_str()) => Some(a.clone()),
            (Some(p), _) => Some(format!("{p}:{operation}")),
            (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        }
    }

    /// The IAM prefix of an SDK service name ("Secrets Manager" -> "secretsmanager").
    pub fn service_prefix(&self, service: &str) -> Option<String> {
        let key = service.trim().to_ascii_lowercase();
        if let Some(p) = self.services.get(&key) {
            return Some(p.clone());
        }
        let squashed: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let stripped = squashed
            .strip_prefix("amazon")
            .or_else(|| squashed.strip_prefix("aws"))
            .unwrap_or(&squashed);
        self.services
            .get(stripped)
            .or_else(|| self.services.get(&squashed))
            .cloned()
            // Most SDK service names squash to their IAM prefix ("S3", "DynamoDB", "Secrets Manager").
            .or_else(|| (!stripped.is_empty()).then(|| stripped.to_string()))
    }

    /// Facts about an action (case-insensitive).
    pub fn action(&self, action: &str) -> Option<&ActionFacts> {
        self.actions.get(&action.to_ascii_lowercase())
    }

    /// Whether this is the action of a caller that starts or deploys tasks.
    pub fn is_caller_action(&self, action: &str) -> bool {
        self.roles.caller_actions.iter().any(|a| a.eq_ignore_ascii_case(action))
    }

    /// Whether the ECS agent calls this action to start a task.
    pub fn is_agent_startup_action(&self, action: &str) -> bool {
        self.roles
            .agent_startup_actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case(action))
    }

    /// Whether only an execution role ever calls this action's service.
    pub fn execution_role_only(&self, action: &str) -> bool {
        self.roles.execution_role_only.contains(service_of(action))
    }

    /// The policy layer a denial "because no resource-based policy allows" this action is.
    pub fn resource_policy_layer(&self, action: &str) -> PolicyLayer {
        self.resource_policy_layers
            .get(service_of(action))
            .copied()
            .unwrap_or(PolicyLayer::Resource)
    }

    /// The widened scope of an exact resource, with its note, if a scope pattern applies.
    pub fn scope_of(&self, resource: &str) -> Option<(String, String)> {
        self.scopes.iter().find_map(|s| {
            let caps = s.pattern.captures(resource)?;
            let scoped = super::placeholders::expand_placeholders(&s.scope, |name| {
                caps.name(name).map(|m| m.as_str().to_string()).unwrap_or_default()
            });
            (scoped != resource).then(|| (scoped, s.note.clone()))
        })
    }

    /// What to say about a resource whose shape is wrong, if anything.
    pub fn check_resource(&self, resource: &str) -> Option<&str> {
        self.checks
            .iter()
            .find(|c| c.applies.is_match(resource) && c.expect.get().is_some_and(|e| !e.is_match(resource)))
            .map(|c| c.note.as_str())
    }
}

impl Knowledge {
    /// The SDK's service and operation names in a text, from the first form that names an
    /// operation; the service falls back to a service-only form.
    pub fn service_operation(&self, text: &str) -> (Option<String>, Option<String>) {
        let hint = self.service_forms.iter().find_map(|re| {
            re.captures(text)
                .and_then(|c| c.name("service"))
                .map(|m| m.as_str().trim().to_string())
        });
        for form in &self.operation_forms {
            let Some(c) = form.pattern.captures(text) else {
                continue;
            };
            let operation = match (c.name("operation"), c.name("verb")) {
                (Some(op), _) => Some(op.as_str().to_string()),
                (None, Some(verb)) => form.verbs.get(&verb.as_str().to_ascii_uppercase()).cloned(),
                (None, None) => None,
            };
            let Some(operation) = operation.map(|op| match form.case {
                OperationCase::Api => op,
                OperationCase::Pascal => pascal(&op),
            }) else {
                continue;
            };
            let service = c
                .name("service")
                .map(|m| m.as_str().trim().to_string())
                .or_else(|| form.service.clone())
                .or_else(|| {
                    form.service_from
                        .as_ref()
                        .and_then(|re| re.captures(text))
                        .and_then(|s| s.name("service"))
                        .map(|m| m.as_str().replace('-', ""))
                })
                .or_else(|| hint.clone());
            return (service, Some(operation));
        }
        (hint, None)
    }
}

/// `putObject` / `put_object` -> `PutObject`.
fn pascal(op: &str) -> String {
    op.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The IAM service prefix of an action (`kms:Decrypt` -> `kms`).
pub fn service_of(action: &str) -> &str {
    action.split(':').next().unwrap_or(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_service_and_operation_to_an_action() {
        let mut k = Knowledge::default();
        k.services.insert("s3".into(), "s3".into());
        k.services.insert("secretsmanager".into(), "secretsmanager".into());
        k.operations.insert("ListObjectsV2".into(), "s3:ListBucket".into());
        assert_eq!(
            k.action_for(Some("S3"), "ListObjectsV2").as_deref(),
            Some("s3:ListBucket")
        );
        assert_eq!(k.action_for(Some("S3"), "PutObject").as_deref(), Some("s3:PutObject"));
        assert_eq!(
            k.action_for(Some("Secrets Manager"), "GetSecretValue").as_deref(),
            Some("secretsmanager:GetSecretValue")
        );
        assert_eq!(k.action_for(None, "ListObjectsV2").as_deref(), Some("s3:ListBucket"));
        assert_eq!(k.action_for(None, "Frobnicate"), None);
        assert_eq!(
            k.action_for(Some("DynamoDB"), "UpdateItem").as_deref(),
            Some("dynamodb:UpdateItem")
        );
    }

    #[test]
    fn names_in_a_languages_case_become_api_names() {
        assert_eq!(pascal("putObject"), "PutObject");
        assert_eq!(pascal("put_object"), "PutObject");
        assert_eq!(pascal("upload_file"), "UploadFile");
        assert_eq!(pascal("GetObject"), "GetObject");
    }

    #[test]
    fn a_scope_widens_only_what_its_pattern_matches() {
        let k = Knowledge {
            scopes: vec![ResourceScope {
                pattern: LazyRegex::new(r"^(?P<group>arn:[^:]+:logs:[^:]*:[^:]*:log-group:[^:]+):log-stream:.+$"),
                scope: "{group}:log-stream:*".into(),
                note: "n".into(),
            }],
            ..Knowledge::default()
        };
        assert_eq!(
            k.scope_of("arn:aws:logs:us-east-1:123456789012:log-group:/ecs/svc1:log-stream:ecs/app/0f3c")
                .map(|s| s.0)
                .as_deref(),
            Some("arn:aws:logs:us-east-1:123456789012:log-group:/ecs/svc1:log-stream:*")
        );
        assert_eq!(k.scope_of("arn:aws:s3:::bucket/key"), None);
    }
}
