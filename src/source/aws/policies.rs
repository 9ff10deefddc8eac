//! Verification's reads from AWS: each [`Call`] as a signed request ([`super::signed`]), its answer
//! turned into the JSON the AWS CLI prints for the same command (IAM answers in XML; the JSON
//! services' answers already are), and kept, so a call asked twice (prefetched beside the logs,
//! then asked by verification) is sent once and `capture` can write every answer to the bundle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::guard::Tracer;
use super::signed::{xml_records, xml_values, Service, Signed, SignedError};
use crate::verify::{Call, ReadError, Reader};

/// The answers of one task's verification, shared by the clones of a reader.
pub type Answers = Arc<Mutex<BTreeMap<Call, Result<Value, ReadError>>>>;

/// Reads from AWS through signed requests, keeping every answer.
#[derive(Debug, Clone)]
pub struct LiveReader {
    signed: Option<Signed>,
    tracer: Arc<Tracer>,
    answers: Answers,
}

impl LiveReader {
    /// A reader on these signed-request settings (`None`: no credentials provider, every read
    /// fails) and tracer, keeping answers in `answers`.
    pub fn new(signed: Option<Signed>, tracer: Arc<Tracer>, answers: Answers) -> LiveReader {
        LiveReader {
            signed,
            tracer,
            answers,
        }
    }

    /// Every answer so far (for `capture`).
    pub fn answers(&self) -> BTreeMap<Call, Result<Value, ReadError>> {
        self.answers.lock().map(|a| a.clone()).unwrap_or_default()
    }

    async fn send(&self, call: &Call) -> Result<Value, ReadError> {
        let signed = self
            .signed
            .as_ref()
            .ok_or_else(|| ReadError::Failed("no AWS credentials provider".into()))?;
        match call {
            Call::GetRole { role } => {
                let xml = iam(signed, "GetRole", &[("RoleName", role)]).await?;
                let first = |n: &str| xml_values(&xml, n).into_iter().next();
                let tags: Vec<Value> = xml_records(&xml, "member", &["Key", "Value"])
                    .into_iter()
                    .filter(|r| r.contains_key("Key"))
                    .map(|r| json!({"Key": r.get("Key"), "Value": r.get("Value")}))
                    .collect();
                let mut role = json!({
                    "RoleName": first("RoleName"),
                    "Arn": first("Arn"),
                    "Path": first("Path"),
                    "Tags": tags,
                });
                if let Some(b) = first("PermissionsBoundaryArn") {
                    role["PermissionsBoundary"] = json!({
                        "PermissionsBoundaryType": first("PermissionsBoundaryType").unwrap_or_else(|| "Policy".into()),
                        "PermissionsBoundaryArn": b,
                    });
                }
                Ok(json!({ "Role": role }))
            }
            Call::ListRolePolicies { role } => {
                let xml = iam(signed, "ListRolePolicies", &[("RoleName", role), ("MaxItems", "1000")]).await?;
                Ok(json!({ "PolicyNames": xml_values(&xml, "member") }))
            }
            Call::GetRolePolicy { role, policy } => {
                let xml = iam(signed, "GetRolePolicy", &[("RoleName", role), ("PolicyName", policy)]).await?;
                let doc = xml_values(&xml, "PolicyDocument").into_iter().next();
                Ok(json!({"RoleName": role, "PolicyName": policy, "PolicyDocument": doc}))
            }
            Call::ListAttachedRolePolicies { role } => {
                let xml = iam(
                    signed,
                    "ListAttachedRolePolicies",
                    &[("RoleName", role), ("MaxItems", "1000")],
                )
                .await?;
                let list: Vec<Value> = xml_records(&xml, "member", &["PolicyName", "PolicyArn"])
                    .into_iter()
                    .map(|r| json!({"PolicyName": r.get("PolicyName"), "PolicyArn": r.get("PolicyArn")}))
                    .collect();
                Ok(json!({ "AttachedPolicies": list }))
            }
            Call::GetPolicy { arn } => {
                let xml = iam(signed, "GetPolicy", &[("PolicyArn", arn)]).await?;
                let first = |n: &str| xml_values(&xml, n).into_iter().next();
                Ok(json!({"Policy": {
                    "PolicyName": first("PolicyName"),
                    "Arn": first("Arn"),
                    "DefaultVersionId": first("DefaultVersionId"),
                    "UpdateDate": first("UpdateDate"),
                }}))
            }
            Call::GetPolicyVersion { arn, version } => {
                let xml = iam(
                    signed,
                    "GetPolicyVersion",
                    &[("PolicyArn", arn), ("VersionId", version)],
                )
                .await?;
                let first = |n: &str| xml_values(&xml, n).into_iter().next();
                Ok(json!({"PolicyVersion": {
                    "Document": first("Document"),
                    "VersionId": first("VersionId"),
                    "IsDefaultVersion": first("IsDefaultVersion").map(|d| d == "true"),
                    "CreateDate": first("CreateDate"),
                }}))
            }
            Call::SimulatePrincipalPolicy {
                role_arn,
                actions,
                resource,
            } => {
                let keys: Vec<String> = (1..=actions.len()).map(|i| format!("ActionNames.member.{i}")).collect();
                let mut params: Vec<(&str, &str)> = vec![("PolicySourceArn", role_arn)];
                params.extend(keys.iter().map(String::as_str).zip(actions.iter().map(String::as_str)));
                if resource != "*" {
                    params.push(("ResourceArns.member.1", resource));
                }
                let xml = iam(signed, "SimulatePrincipalPolicy", &params).await?;
                Ok(simulation_json(&xml))
            }
            Call::GetRepositoryPolicy {
                region,
                registry,
                repository,
            } => {
                json_call(
                    signed,
                    region,
                    Service::Ecr,
                    "GetRepositoryPolicy",
                    json!({"registryId": registry, "repositoryName": repository}),
                )
                .await
            }
            Call::GetResourcePolicy { region, secret } => {
                json_call(
                    signed,
                    region,
                    Service::SecretsManager,
                    "GetResourcePolicy",
                    json!({ "SecretId": secret }),
                )
                .await
            }
            Call::DescribeSecret { region, secret } => {
                json_call(
                    signed,
                    region,
                    Service::SecretsManager,
                    "DescribeSecret",
                    json!({ "SecretId": secret }),
                )
                .await
            }
            Call::DescribeParameters { region, name } => {
                json_call(
                    signed,
                    region,
                    Service::Ssm,
                    "DescribeParameters",
                    json!({"ParameterFilters": [{"Key": "Name", "Option": "Equals", "Values": [name]}]}),
                )
                .await
            }
            Call::GetKeyPolicy { region, key } => {
                json_call(
                    signed,
                    region,
                    Service::Kms,
                    "GetKeyPolicy",
                    json!({"KeyId": key, "PolicyName": "default"}),
                )
                .await
            }
            Call::GetBucketPolicy { bucket } => {
                let text = signed.bucket_policy(bucket).await.map_err(read_error)?;
                Ok(json!({ "Policy": text }))
            }
        }
    }
}

impl Reader for LiveReader {
    async fn read(&self, call: &Call) -> Result<Value, ReadError> {
        if let Some(a) = self.answers.lock().ok().and_then(|m| m.get(call).cloned()) {
            return a;
        }
        let answer = self.send(call).await;
        if let Ok(mut m) = self.answers.lock() {
            m.insert(call.clone(), answer.clone());
        }
        answer
    }

    fn has(&self, call: &Call) -> bool {
        self.answers.lock().is_ok_and(|m| m.contains_key(call))
    }

    fn next_round(&self) {
        self.tracer.next_round();
    }
}

async fn iam(signed: &Signed, operation: &str, params: &[(&str, &str)]) -> Result<String, ReadError> {
    signed.query(Service::Iam, operation, params).await.map_err(read_error)
}

async fn json_call(
    signed: &Signed,
    region: &str,
    service: Service,
    operation: &str,
    body: Value,
) -> Result<Value, ReadError> {
    signed
        .in_region(region)
        .json(service, operation, body)
        .await
        .map_err(read_error)
}

/// A failed request as verification sees it: denied, absent, or failed.
fn read_error(e: SignedError) -> ReadError {
    if e.is_access_denied() {
        return ReadError::Denied(e.to_string());
    }
    match e.code() {
        Some(
            "NoSuchEntity"
            | "NoSuchBucketPolicy"
            | "RepositoryPolicyNotFoundException"
            | "ResourceNotFoundException"
            | "NotFoundException"
            | "ParameterNotFound",
        ) => ReadError::NotFound(e.to_string()),
        _ => ReadError::Failed(e.to_string()),
    }
}

/// `SimulatePrincipalPolicy`'s XML as the CLI prints it: `EvaluationResults[]` with the action,
/// resource, decision, missing context values and the Organizations detail.
fn simulation_json(xml: &str) -> Value {
    // Each result member opens with its EvalActionName (the shape's first member).
    let results: Vec<Value> = xml
        .split("<EvalActionName>")
        .skip(1)
        .map(|piece| {
            let piece = format!("<r><EvalActionName>{piece}</r>");
            let first = |n: &str| xml_values(&piece, n).into_iter().next();
            // With a resource ARN the simulator lists missing keys under ResourceSpecificResults
            // (API_EvaluationResult): every list counts.
            let mut missing: Vec<String> = Vec::new();
            for m in piece.split("<MissingContextValues>").skip(1) {
                let inner = m.split("</MissingContextValues>").next().unwrap_or_default();
                for k in xml_values(&format!("<m>{inner}</m>"), "member") {
                    if !missing.contains(&k) {
                        missing.push(k);
                    }
                }
            }
            let mut r = json!({
                "EvalActionName": first("EvalActionName"),
                "EvalResourceName": first("EvalResourceName"),
                "EvalDecision": first("EvalDecision"),
                "MissingContextValues": missing,
            });
            if let Some(a) = first("AllowedByOrganizations") {
                r["OrganizationsDecisionDetail"] = json!({"AllowedByOrganizations": a == "true"});
            }
            r
        })
        .collect();
    json!({ "EvaluationResults": results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_results_keep_missing_context_and_organizations() {
        // Composed from the IAM API reference's EvaluationResult type (API_EvaluationResult.html):
        // its members in shape order, missing keys under ResourceSpecificResults when a resource
        // ARN is given.
        let xml = r#"<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>false</IsTruncated>
    <EvaluationResults>
      <member>
        <EvalActionName>ssm:GetParameters</EvalActionName>
        <EvalResourceName>arn:aws:ssm:us-east-1:123456789012:parameter/prod/db</EvalResourceName>
        <EvalDecision>implicitDeny</EvalDecision>
        <MatchedStatements/>
        <MissingContextValues/>
        <OrganizationsDecisionDetail><AllowedByOrganizations>true</AllowedByOrganizations></OrganizationsDecisionDetail>
        <ResourceSpecificResults><member>
          <EvalResourceName>arn:aws:ssm:us-east-1:123456789012:parameter/prod/db</EvalResourceName>
          <EvalResourceDecision>implicitDeny</EvalResourceDecision>
          <MissingContextValues><member>aws:SourceVpce</member></MissingContextValues>
        </member></ResourceSpecificResults>
      </member>
      <member>
        <EvalActionName>kms:Decrypt</EvalActionName>
        <EvalResourceName>*</EvalResourceName>
        <EvalDecision>allowed</EvalDecision>
        <MatchedStatements><member><SourcePolicyId>kms</SourcePolicyId></member></MatchedStatements>
        <MissingContextValues/>
      </member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
</SimulatePrincipalPolicyResponse>"#;
        let v = simulation_json(xml);
        let r = &v["EvaluationResults"];
        assert_eq!(r.as_array().map(Vec::len), Some(2));
        assert_eq!(r[0]["EvalDecision"], "implicitDeny");
        assert_eq!(r[0]["MissingContextValues"][0], "aws:SourceVpce");
        assert_eq!(r[0]["OrganizationsDecisionDetail"]["AllowedByOrganizations"], true);
        assert_eq!(r[1]["EvalActionName"], "kms:Decrypt");
        assert_eq!(r[1]["MissingContextValues"].as_array().map(Vec::len), Some(0));
    }
}
