//! Least-privilege policy snippets for the fix, as IAM JSON and as Terraform. An identity-policy
//! denial gets a statement for the role; a resource or key policy denial a statement for the
//! resource naming the role; a trust denial a trust statement. Resources come from the finding's
//! scope (so the fix outlives the task). Every value put into HCL is escaped: `"` and `\`, and
//! Terraform's `${` and `%{`, which would otherwise turn text from a log line into live
//! interpolation or template directives.

use serde_json::{json, Value};

use super::Finding;
use crate::arn::Arn;
use crate::evidence::role_name;
use crate::rules::knowledge::service_of;
use crate::rules::{Knowledge, PolicyLayer};

/// The IAM JSON statement (or policy) and the Terraform snippet for `layer`.
pub(super) fn snippets(top: &Finding, layer: PolicyLayer, k: &Knowledge) -> (Option<Value>, Option<String>) {
    let granted = top.scope.as_ref().map(|s| s.0.as_str()).or(top.resource.as_deref());
    let resources: Vec<String> = granted
        .map(|r| r.split(", ").map(|s| s.trim_matches('"').to_string()).collect())
        .unwrap_or_default();
    let actions = &top.permissions;
    // Each action goes with the resources of its own service; an action whose resource the
    // evidence does not name (kms:Decrypt for a secret's key) gets a placeholder to fill in.
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for a in actions {
        let svc = service_of(a);
        let mut res: Vec<String> = resources
            .iter()
            .filter(|r| r.as_str() == "*" || Arn::parse(r).is_some_and(|arn| arn.service == svc))
            .cloned()
            .collect();
        if res.is_empty() {
            let only = k.action(a).and_then(|f| f.resource.clone());
            let unknown = k.resource_sources.get(svc).and_then(|s| s.unknown.clone());
            res.push(only.or(unknown).unwrap_or_else(|| format!("<{svc} resource ARN>")));
        }
        match groups.iter_mut().find(|g| g.1 == res) {
            Some(g) => g.0.push(a.clone()),
            None => groups.push((vec![a.clone()], res)),
        }
    }
    let one_or_many = |v: &[String]| if v.len() == 1 { json!(v[0]) } else { json!(v) };
    match layer {
        PolicyLayer::Identity | PolicyLayer::PermissionsBoundary => {
            let statements: Vec<Value> = groups
                .iter()
                .map(|(acts, res)| json!({ "Effect": "Allow", "Action": acts, "Resource": one_or_many(res) }))
                .collect();
            let stmt = json!({ "Version": "2012-10-17", "Statement": statements });
            let role = top.role_arn.as_deref().map(role_name).unwrap_or("<role-name>");
            // A boundary is a managed policy of its own: the statements go into its document, not
            // into a new inline policy of the role (which the boundary would still cap).
            let tf = (layer == PolicyLayer::Identity).then(|| terraform(&groups, role, &actions[0]));
            (Some(stmt), tf)
        }
        PolicyLayer::Resource | PolicyLayer::KmsKey => {
            let principal = top.role_arn.clone().unwrap_or_else(|| "<role-arn>".into());
            // A key policy's statement is about the key it is attached to.
            let resource = if layer == PolicyLayer::KmsKey {
                json!("*")
            } else {
                one_or_many(&groups.first().map(|g| g.1.clone()).unwrap_or_default())
            };
            let stmt = json!({
                "Sid": "AllowEcsTaskRole",
                "Effect": "Allow",
                "Principal": { "AWS": principal },
                "Action": actions,
                "Resource": resource,
            });
            (Some(stmt), None)
        }
        PolicyLayer::Trust => {
            // A role assuming another role needs that role's trust policy to name it; ECS itself
            // assuming a task or execution role needs the ECS tasks service principal.
            let assumes = actions
                .iter()
                .any(|a| k.action(a).and_then(|f| f.policy) == Some(PolicyLayer::Trust));
            let principal = match (&top.role_arn, assumes) {
                (Some(caller), true) => json!({ "AWS": caller }),
                _ => json!({ "Service": k.roles.task_trust_principal.as_deref().unwrap_or("<service principal>") }),
            };
            let action = k.roles.trust_action.as_deref().unwrap_or("<assume-role action>");
            let stmt = json!({ "Effect": "Allow", "Principal": principal, "Action": action });
            (Some(stmt), None)
        }
        _ => (None, None),
    }
}

/// An `aws_iam_role_policy` for the role, one statement per group of actions and resources.
fn terraform(groups: &[(Vec<String>, Vec<String>)], role: &str, first_action: &str) -> String {
    let name = format!(
        "ecsdoctor-{}",
        first_action
            .replace(':', "-")
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
    );
    let list = |v: &[String]| -> String {
        let quoted: Vec<String> = v.iter().map(|r| hcl_string(r)).collect();
        if quoted.len() == 1 {
            quoted[0].clone()
        } else {
            format!("[{}]", quoted.join(", "))
        }
    };
    let statements = groups
        .iter()
        .map(|(acts, res)| {
            format!(
                "{{\n      Effect   = \"Allow\"\n      Action   = [{}]\n      Resource = {}\n    }}",
                acts.iter().map(|a| hcl_string(a)).collect::<Vec<_>>().join(", "),
                list(res)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "resource \"aws_iam_role_policy\" \"{}\" {{\n  name = {}\n  role = {}\n  policy = jsonencode({{\n    Version = \"2012-10-17\"\n    Statement = [{statements}]\n  }})\n}}",
        name.replace('-', "_"),
        hcl_string(&name),
        hcl_string(role)
    )
}

/// A quoted HCL string literal whose content is exactly `s`: backslashes and quotes escaped, and
/// `${` / `%{` doubled so Terraform reads them as text, not interpolation or a directive. IAM
/// policy variables (`${aws:username}`) need the same escape to reach the policy intact.
pub(super) fn hcl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::hcl_string;

    #[test]
    fn terraform_strings_cannot_interpolate_or_break_out() {
        assert_eq!(
            hcl_string(r#"arn:aws:s3:::b/${file("~/.aws/credentials")}"#),
            r#""arn:aws:s3:::b/$${file(\"~/.aws/credentials\")}""#
        );
        assert_eq!(
            hcl_string("a/%{ if true }x%{ endif }"),
            r#""a/%%{ if true }x%%{ endif }""#
        );
        assert_eq!(
            hcl_string("arn:aws:s3:::home/${aws:username}/*"),
            r#""arn:aws:s3:::home/$${aws:username}/*""#
        );
        assert_eq!(hcl_string(r"a\b"), r#""a\\b""#);
        // A lone `$` or `%` is text already.
        assert_eq!(hcl_string("100% $5"), r#""100% $5""#);
    }
}
