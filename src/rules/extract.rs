//! Facts every AWS denial message carries in the same words, whatever rule matched it: the denied
//! principal (`User: arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`), the action, the resource,
//! the policy layer named in the modern tail ("with an explicit deny in a service control policy"),
//! and the SDK's service and operation names when the action itself is missing.

use std::sync::LazyLock;

use regex::Regex;

use super::knowledge::Knowledge;
use super::model::PolicyLayer;

fn re(p: &str) -> Regex {
    regex::RegexBuilder::new(p)
        .case_insensitive(true)
        .build()
        .expect("built-in extractor regexes are valid")
}

static PRINCIPAL: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"(arn:aws[a-z-]*:(?:sts|iam)::(\d{12}):(assumed-role|role|user|root|federated-user)(?:/([^\s"',;)]+))?)"#)
});
static ACTION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"not authorized to perform:?\s*([a-z0-9-]+:[A-Za-z0-9*]+)|(?:no|explicit deny in an?)\b[^.]{0,60}?\ballows? the ([a-z0-9-]+:[A-Za-z0-9*]+) action|allows the ([a-z0-9-]+:[A-Za-z0-9*]+) action",
    )
});
static RESOURCE: LazyLock<Regex> = LazyLock::new(|| re(r#"\bon resource:\s*"?([^\s"]+)"?"#));
static GO2_OPERATION: LazyLock<Regex> = LazyLock::new(|| re(r"operation error ([A-Za-z0-9 .-]+?): ([A-Za-z0-9]+)"));
static PY_OPERATION: LazyLock<Regex> = LazyLock::new(|| re(r"when calling the ([A-Za-z0-9]+) operation"));
static PHP_OPERATION: LazyLock<Regex> =
    LazyLock::new(|| re(r#"Error executing "([A-Za-z0-9]+)" on "https?://([a-z0-9-]+)[.]"#));
static JAVA_SERVICE: LazyLock<Regex> = LazyLock::new(|| re(r"\(Service: ([A-Za-z0-9 ]+?)[;,]"));
static JS3_OPERATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"deserializeAws_(?:json1_[01]|restJson1|restXml|query|ec2)([A-Za-z0-9]+)CommandError"));
static JS3_SERVICE: LazyLock<Regex> = LazyLock::new(|| re(r"@aws-sdk[/+]client-([a-z0-9-]+)"));
static JAVA_OPERATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:Amazon|Aws)?([A-Za-z0-9]+)Client\.(?:[a-z]\w*\.)*?([a-z][A-Za-z0-9]+)\("));

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
    pub fn is_instance_session(&self) -> bool {
        self.session
            .as_deref()
            .is_some_and(|s| s.len() >= 10 && s.starts_with("i-") && s[2..].chars().all(|c| c.is_ascii_hexdigit()))
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
    let (service, operation) = service_operation(text);
    let policy = policy_layer(text, action.as_deref(), knowledge);
    Facts {
        principal: principal(text),
        action,
        resource,
        policy,
        service,
        operation,
    }
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

/// The SDK's service and operation names, from the forms the SDKs print.
pub fn service_operation(text: &str) -> (Option<String>, Option<String>) {
    if let Some(c) = GO2_OPERATION.captures(text) {
        return (Some(c[1].trim().to_string()), Some(c[2].to_string()));
    }
    if let Some(c) = PHP_OPERATION.captures(text) {
        return (Some(c[2].to_string()), Some(c[1].to_string()));
    }
    if let Some(c) = JS3_OPERATION.captures(text) {
        let service = JS3_SERVICE.captures(text).map(|s| s[1].replace('-', ""));
        return (service, Some(c[1].to_string()));
    }
    let service = JAVA_SERVICE.captures(text).map(|c| c[1].trim().to_string());
    if let Some(c) = PY_OPERATION.captures(text) {
        return (service, Some(c[1].to_string()));
    }
    if let Some(c) = JAVA_OPERATION.captures(text) {
        let op = c[2].to_string();
        let mut chars = op.chars();
        let op = chars
            .next()
            .map(|f| f.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default();
        return (service.or_else(|| Some(c[1].to_string())), Some(op));
    }
    (service, None)
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

    fn policy_layer(text: &str, action: Option<&str>) -> Option<PolicyLayer> {
        super::policy_layer(text, action, &KNOWLEDGE)
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
    fn a_truncated_action_is_not_invented() {
        assert_eq!(facts("is not authorized to perform: dynamo").action, None);
    }
}
