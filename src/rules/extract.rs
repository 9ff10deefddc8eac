//! Facts every AWS denial message carries in the same words, whatever rule matched it: the denied
//! principal (`User: arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`), the action, the resource,
//! the policy layer named in the modern tail ("with an explicit deny in a service control policy"),
//! and the SDK's service and operation names when the action itself is missing.

use super::knowledge::Knowledge;
use super::model::PolicyLayer;
use super::LazyRegex;

static PRINCIPAL: LazyRegex = LazyRegex::constant(
    r#"(arn:aws[a-z-]*:(?:sts|iam)::(\d{12}):(assumed-role|role|user|root|federated-user)(?:/([^\s"',;)]+))?)"#,
    true,
);
static ACTION: LazyRegex = LazyRegex::constant(
    r"not authorized to perform:?\s*`?([a-z0-9-]+:[A-Za-z0-9*]+)|(?:no|explicit deny in an?)\b[^.]{0,60}?\ballows? the ([a-z0-9-]+:[A-Za-z0-9*]+) action|allows the ([a-z0-9-]+:[A-Za-z0-9*]+) action",
    true,
);
/// A bare `service:Action` in a denial whose sentence was cut or redacted
/// ("AccessDeniedException: xxxxx ecs:DescribeClusters x").
static BARE_ACTION: LazyRegex =
    LazyRegex::constant(r"(?:^|[\s(\[\x22'])([a-z][a-z0-9-]*):([A-Z][A-Za-z0-9]+)\b", false);
static DENIAL_WORD: LazyRegex = LazyRegex::constant(
    r"AccessDenied|Access Denied|not authorized|Forbidden|UnauthorizedOperation|AuthorizationError",
    true,
);
/// `on resource: "arn"`, or SES's ``on resource `arn'`` (a quote after a colon, a backtick after a
/// space: never a bare word, "on resource because ...").
static RESOURCE: LazyRegex = LazyRegex::constant(r#"\bon resource(?::\s*["'`]?|\s+`)([^\s"'`:][^\s"'`]*)"#, true);
/// Compiles the extractors now (a live run does it while it waits for the logs).
pub fn precompile() {
    for re in [&PRINCIPAL, &ACTION, &BARE_ACTION, &DENIAL_WORD, &RESOURCE] {
        let _ = re.get();
    }
}

/// A principal named in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The ARN as printed.
    pub arn: String,
    /// Its account.
    pub account: String,
    /// `assumed-role`, `role`, `user`, ...
    pub kind: String,
    /// Role or user name (for `assumed-role/NAME/SESSION`, NAME).
    pub name: Option<String>,
    /// Session name (assumed roles only).
    pub session: Option<String>,
}

impl Principal {
    /// The session is an EC2 instance id: instance-profile credentials from IMDS.
    /// An ECS Anywhere managed instance (`mi-...`, the SSM hybrid activation role) counts too: it is
    /// that host's instance role.
    pub fn is_instance_session(&self) -> bool {
        self.session.as_deref().is_some_and(|s| {
            let id = s.strip_prefix("i-").or_else(|| s.strip_prefix("mi-"));
            id.is_some_and(|id| id.len() >= 8 && id.chars().all(|c| c.is_ascii_hexdigit()))
        })
    }

    /// The session looks like an ECS task id (32 hex characters, or a UUID for old tasks).
    pub fn is_task_session(&self) -> bool {
        self.session.as_deref().is_some_and(|s| {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        })
    }

    /// The IAM role ARN behind an assumed-role principal.
    pub fn role_arn(&self) -> Option<String> {
        let partition = self.arn.split(':').nth(1).unwrap_or("aws");
        match (self.kind.as_str(), &self.name) {
            ("assumed-role" | "role", Some(n)) => Some(format!("arn:{partition}:iam::{}:role/{n}", self.account)),
            _ => None,
        }
    }
}

/// Everything the extractors found in one text (and its neighbours).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub principal: Option<Principal>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub policy: Option<PolicyLayer>,
    pub service: Option<String>,
    pub operation: Option<String>,
    /// The action was inferred from the operation, not named in the message.
    pub action_inferred: bool,
}

/// Parses the denied principal.
pub fn principal(text: &str) -> Option<Principal> {
    let c = PRINCIPAL.captures(text)?;
    let arn = c.get(1)?.as_str().trim_end_matches(['.', ':']).to_string();
    let kind = c.get(3)?.as_str().to_ascii_lowercase();
    let rest = c.get(4).map(|m| m.as_str().trim_end_matches(['.', ':']));
    let (name, session) = match (kind.as_str(), rest) {
        ("assumed-role", Some(r)) => {
            let mut it = r.splitn(2, '/');
            (
                it.next().map(str::to_string),
                it.next().filter(|s| !s.is_empty()).map(str::to_string),
            )
        }
        (_, Some(r)) => (r.rsplit('/').next().map(str::to_string), None),
        _ => (None, None),
    };
    Some(Principal {
        arn,
        account: c.get(2)?.as_str().to_string(),
        kind,
        name,
        session,
    })
}

/// Reads the facts of one text.
pub fn facts(text: &str, knowledge: &Knowledge) -> Facts {
    let action = ACTION
        .captures(text)
        .and_then(|c| c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)))
        .map(|m| normalize_action(m.as_str()));
    let resource = RESOURCE
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim_end_matches([',', '.', ';', ')']).to_string())
        .filter(|r| !r.is_empty());
    let (service, operation) = service_operation(text, knowledge);
    // A denial cut or redacted before "not authorized to perform:" may still show the action.
    let (action, action_inferred) = match action {
        Some(a) => (Some(a), false),
        None => (bare_action(text), true),
    };
    let action_inferred = action_inferred && action.is_some();
    let policy = policy_layer(text, action.as_deref(), knowledge);
    Facts {
        principal: principal(text),
        action,
        resource,
        policy,
        service,
        operation,
        action_inferred,
    }
}

/// The one `service:Action` token of a denial line, if there is exactly one.
fn bare_action(text: &str) -> Option<String> {
    if !DENIAL_WORD.is_match(text) {
        return None;
    }
    let mut found = BARE_ACTION
        .for_text(text)?
        .captures_iter(text)
        .filter(|c| !matches!(&c[1], "aws" | "arn" | "http" | "https" | "s3a"))
        .map(|c| format!("{}:{}", &c[1], &c[2]));
    let first = found.next()?;
    found.all(|a| a == first).then_some(first)
}

/// `S3:putobject` -> `s3:PutObject` (service lower-case, action as printed but first letter upper).
fn normalize_action(a: &str) -> String {
    let (svc, act) = a.split_once(':').unwrap_or((a, ""));
    let mut chars = act.chars();
    let act = match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    };
    format!("{}:{act}", svc.to_ascii_lowercase())
}

/// The SDK's service and operation names, from the forms the knowledge tables list
/// (`[[operation_form]]`, `[[service_form]]` in `rules/operations.toml`).
pub fn service_operation(text: &str, knowledge: &Knowledge) -> (Option<String>, Option<String>) {
    knowledge.service_operation(text)
}

/// The policy layer a modern AccessDenied message names in its tail ("with an explicit deny in a
/// service control policy", "because no resource-based policy allows ..."). A resource-based
/// policy is the layer the action's service calls its resource policy (a KMS key policy for
/// `kms:`), and a message with no tail takes the layer the action itself implies (`iam:PassRole`,
/// `sts:AssumeRole`), both from the knowledge tables.
pub fn policy_layer(text: &str, action: Option<&str>, knowledge: &Knowledge) -> Option<PolicyLayer> {
    let t = text.to_ascii_lowercase();
    let layer = if t.contains("service control polic") {
        PolicyLayer::Scp
    } else if t.contains("resource control polic") {
        PolicyLayer::Rcp
    } else if t.contains("permissions boundary") {
        PolicyLayer::PermissionsBoundary
    } else if t.contains("session policy") {
        PolicyLayer::Session
    } else if t.contains("vpc endpoint policy") {
        PolicyLayer::VpcEndpoint
    } else if t.contains("resource-based policy") {
        action.map_or(PolicyLayer::Resource, |a| knowledge.resource_policy_layer(a))
    } else if t.contains("identity-based policy") {
        PolicyLayer::Identity
    } else {
        return action.and_then(|a| knowledge.action(a)).and_then(|f| f.policy);
    };
    Some(layer)
}

/// Whether a modern AccessDenied message says an explicit Deny decided ("... with an explicit deny
/// in a service control policy"), as opposed to a missing Allow ("because no ... policy allows").
pub fn names_explicit_deny(text: &str) -> bool {
    text.to_ascii_lowercase().contains("with an explicit deny")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static KNOWLEDGE: LazyLock<Knowledge> = LazyLock::new(|| {
        crate::rules::Catalogue::load(true, &[])
            .expect("built-in rules")
            .knowledge
    });

    fn facts(text: &str) -> Facts {
        super::facts(text, &KNOWLEDGE)
    }

    #[test]
    fn every_extractor_compiles() {
        for re in [&PRINCIPAL, &ACTION, &BARE_ACTION, &DENIAL_WORD, &RESOURCE] {
            assert!(re.get().is_some(), "{}", re.as_str());
        }
    }

    fn policy_layer(text: &str, action: Option<&str>) -> Option<PolicyLayer> {
        super::policy_layer(text, action, &KNOWLEDGE)
    }

    fn service_operation(text: &str) -> (Option<String>, Option<String>) {
        super::service_operation(text, &KNOWLEDGE)
    }

    #[test]
    fn reads_the_quoted_denial_of_query_protocol_services() {
        let f = facts("AccessDenied: User `arn:aws:sts::123456789012:assumed-role/gost-staging-api-ECSTask/969ff5cbe4c14e75a8427065217e836e' is not authorized to perform `ses:SendEmail' on resource `arn:aws:ses:us-west-2:123456789012:configuration-set/gost-staging-default'");
        assert_eq!(f.action.as_deref(), Some("ses:SendEmail"));
        assert_eq!(
            f.resource.as_deref(),
            Some("arn:aws:ses:us-west-2:123456789012:configuration-set/gost-staging-default")
        );
        assert_eq!(
            f.principal.expect("principal").name.as_deref(),
            Some("gost-staging-api-ECSTask")
        );
    }

    #[test]
    fn a_resource_follows_a_colon_or_a_backtick_never_a_bare_word() {
        let quoted = facts("User: arn:aws:sts::123456789012:assumed-role/app/abc is not authorized to perform: s3:PutObject on resource: 'arn:aws:s3:::b/k'");
        assert_eq!(quoted.resource.as_deref(), Some("arn:aws:s3:::b/k"));
        let prose = facts("failed to acquire lock on resource because User: arn:aws:sts::123456789012:assumed-role/app/abc is not authorized to perform: dynamodb:PutItem");
        assert_eq!(prose.resource, None);
        assert_eq!(facts("AccessDenied on resources matching prod-*").resource, None);
    }

    #[test]
    fn reads_an_assumed_role_principal_with_a_task_session() {
        let f = facts("AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/7cb7b3bcc4b642298dc313b41fdc8d9d is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/x because no identity-based policy allows the ssm:GetParameters action");
        let p = f.principal.expect("principal");
        assert_eq!(p.name.as_deref(), Some("ecsTaskExecutionRole"));
        assert!(p.is_task_session() && !p.is_instance_session());
        assert_eq!(
            p.role_arn().as_deref(),
            Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
        );
        assert_eq!(f.action.as_deref(), Some("ssm:GetParameters"));
        assert_eq!(
            f.resource.as_deref(),
            Some("arn:aws:ssm:us-east-1:123456789012:parameter/x")
        );
        assert_eq!(f.policy, Some(PolicyLayer::Identity));
    }

    #[test]
    fn an_instance_session_is_recognised() {
        let p = principal(
            "User: arn:aws:sts::123456789012:assumed-role/aws-elasticbeanstalk-ec2-role/i-0d1204078bf4e29eb is not",
        )
        .expect("p");
        assert!(p.is_instance_session());
    }

    #[test]
    fn an_ecs_anywhere_managed_instance_session_is_an_instance_session() {
        let p = principal("User: arn:aws:sts::123456789012:assumed-role/ECSAnywhereRole/mi-0123456789abcdef0 is not")
            .expect("p");
        assert!(p.is_instance_session());
        assert!(
            !principal("User: arn:aws:sts::123456789012:assumed-role/r/mike-session is not")
                .expect("p")
                .is_instance_session()
        );
    }

    #[test]
    fn policy_tails_map_to_layers() {
        let cases = [
            (
                "with an explicit deny in a service control policy",
                None,
                PolicyLayer::Scp,
            ),
            (
                "because no service control policy allows the s3:GetObject action",
                None,
                PolicyLayer::Scp,
            ),
            (
                "with an explicit deny in a permissions boundary",
                None,
                PolicyLayer::PermissionsBoundary,
            ),
            ("with an explicit deny in a session policy", None, PolicyLayer::Session),
            ("because no VPC endpoint policy allows", None, PolicyLayer::VpcEndpoint),
            (
                "because no resource-based policy allows the kms:Decrypt action",
                Some("kms:Decrypt"),
                PolicyLayer::KmsKey,
            ),
            (
                "because no resource-based policy allows the ecr:BatchGetImage action",
                Some("ecr:BatchGetImage"),
                PolicyLayer::Resource,
            ),
            (
                "with an explicit deny in a resource control policy",
                None,
                PolicyLayer::Rcp,
            ),
            (
                "is not authorized to perform: iam:PassRole",
                Some("iam:PassRole"),
                PolicyLayer::PassRole,
            ),
        ];
        for (text, action, want) in cases {
            assert_eq!(policy_layer(text, action), Some(want), "{text}");
        }
        assert_eq!(policy_layer("Access Denied", None), None);
    }

    #[test]
    fn the_action_is_read_from_the_tail_when_the_resource_part_is_missing() {
        let f = facts("User: arn:aws:sts::123456789012:assumed-role/exports-task-role/9d8c is not authorized to perform: s3:GetObject because no service control policy allows the s3:GetObject action");
        assert_eq!(f.action.as_deref(), Some("s3:GetObject"));
        assert_eq!(f.policy, Some(PolicyLayer::Scp));
    }

    #[test]
    fn sdk_operation_forms() {
        assert_eq!(
            service_operation("operation error S3: PutObject, https response error StatusCode: 403"),
            (Some("S3".into()), Some("PutObject".into()))
        );
        assert_eq!(
            service_operation("operation error Secrets Manager: GetSecretValue, https response error"),
            (Some("Secrets Manager".into()), Some("GetSecretValue".into()))
        );
        assert_eq!(
            service_operation("An error occurred (AccessDenied) when calling the PutObject operation: Access Denied"),
            (None, Some("PutObject".into()))
        );
        assert_eq!(
            service_operation(
                r#"Error executing "UpdateItem" on "https://dynamodb.eu-central-1.amazonaws.com"; AWS HTTP error"#
            ),
            (Some("dynamodb".into()), Some("UpdateItem".into()))
        );
        assert_eq!(
            service_operation("Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)")
                .0
                .as_deref(),
            Some("Amazon S3")
        );
    }

    #[test]
    fn the_resource_needs_the_on_resource_colon_form() {
        assert_eq!(
            facts("execution resource retrieval failed: unable to retrieve ecr registry auth").resource,
            None
        );
    }

    #[test]
    fn javascript_v3_prints_the_operation_in_its_stack() {
        assert_eq!(
            service_operation("at deserializeAws_restXmlGetObjectCommandError (/app/node_modules/@aws-sdk/client-s3/dist-cjs/protocols/Aws_restXml.js:4356:41)"),
            (Some("s3".into()), Some("GetObject".into()))
        );
    }

    #[test]
    fn operations_are_read_from_stack_frames_request_classes_and_http_logs() {
        let cases = [
            (
                "at de_GetObjectCommandError (/app/node_modules/@aws-sdk/client-s3/dist-cjs/index.js:4938:21)",
                Some("s3"),
                "GetObject",
            ),
            (
                "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied at GetObjectRequest",
                None,
                "GetObject",
            ),
            ("  File \"/app/export.py\", line 40, in run\n    s3.put_object(Bucket=b, Key=k)", Some("s3"), "PutObject"),
            ("at Object.upload (s3.upload(params).promise())", Some("s3"), "Upload"),
            (
                "Client error: `PUT https://acme.s3.us-west-2.amazonaws.com/a.jpg` resulted in a `403 Forbidden` response",
                Some("s3"),
                "PutObject",
            ),
        ];
        for (text, service, op) in cases {
            let (s, o) = service_operation(text);
            assert_eq!(o.as_deref(), Some(op), "{text}");
            if let Some(want) = service {
                assert_eq!(s.as_deref(), Some(want), "{text}");
            }
        }
        assert_eq!(service_operation("a plain line with Request in it").1, None);
    }

    #[test]
    fn a_redacted_denial_still_shows_its_action() {
        let f = facts("AccessDeniedException: xxxxx ecs:DescribeClusters x");
        assert_eq!(f.action.as_deref(), Some("ecs:DescribeClusters"));
        assert!(f.action_inferred);
        // Not a denial, or two different actions: nothing is taken.
        assert_eq!(facts("calling ecs:DescribeClusters").action, None);
        assert_eq!(facts("AccessDenied for s3:GetObject or s3:PutObject").action, None);
        // Condition keys and ARNs are not actions.
        assert_eq!(facts("AccessDenied: aws:SourceVpc mismatch").action, None);
    }

    #[test]
    fn a_truncated_action_is_not_invented() {
        assert_eq!(facts("is not authorized to perform: dynamo").action, None);
    }
}
