//! Verification's reads from AWS: each [`Call`] as a signed request ([`super::signed`]), its answer
//! turned into the JSON the AWS CLI prints for the same command (IAM answers in XML; the JSON
//! services' answers already are), and kept: a call asked while the same call is in flight (the
//! prefetch beside the logs, two scan groups of one role) waits for that request instead of
//! sending another, a call asked again is answered from memory, and `capture` writes every answer
//! to the bundle. Every read ends by the run's deadline (`--timeout`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::guard::Tracer;
use super::signed::{xml_records, xml_values, Service, Signed, SignedError};
use crate::verify::{Call, ReadError, Reader};

/// One call's answer: empty while in flight, set once.
type Slot = Arc<OnceCell<Result<Value, ReadError>>>;

/// The answers of one task's verification, shared by the clones of a reader.
pub type Answers = Arc<Mutex<BTreeMap<Call, Slot>>>;

/// Most pages of a listing read (1,000 names each): a role has at most 20 attached policies by
/// default and its inline policies share a 10,240-character quota, so this never binds in practice.
const MAX_PAGES: usize = 10;

/// Reads from AWS through signed requests, keeping every answer.
#[derive(Debug, Clone)]
pub struct LiveReader {
    signed: Option<Signed>,
    tracer: Arc<Tracer>,
    answers: Answers,
    deadline: Instant,
}

impl LiveReader {
    /// A reader on these signed-request settings (`None`: no credentials provider, every read
    /// fails) and tracer, keeping answers in `answers`; no read outlives `deadline`.
    pub fn new(signed: Option<Signed>, tracer: Arc<Tracer>, answers: Answers, deadline: Instant) -> LiveReader {
        LiveReader {
            signed,
            tracer,
            answers,
            deadline,
        }
    }

    /// Every answer so far (for `capture`); reads still in flight are left out.
    pub fn answers(&self) -> BTreeMap<Call, Result<Value, ReadError>> {
        answers_of(&self.answers)
    }

    fn slot(&self, call: &Call) -> Slot {
        let mut map = match self.answers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry(call.clone()).or_default().clone()
    }

    /// A listing, every page (`Marker` while `IsTruncated`): the names under `member`, or the
    /// records of `fields` when given.
    async fn list_all(
        &self,
        signed: &Signed,
        operation: &str,
        role: &str,
        fields: Option<&[&str]>,
    ) -> Result<Vec<Value>, ReadError> {
        let mut out: Vec<Value> = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params: Vec<(&str, &str)> = vec![("RoleName", role), ("MaxItems", "1000")];
            if let Some(m) = &marker {
                params.push(("Marker", m));
            }
            let xml = iam(signed, operation, &params).await?;
            match fields {
                Some(f) => out.extend(
                    xml_records(&xml, "member", f)
                        .into_iter()
                        .map(|r| Value::Object(r.into_iter().map(|(k, v)| (k, Value::String(v))).collect())),
                ),
                None => out.extend(xml_values(&xml, "member").into_iter().map(Value::String)),
            }
            let truncated = xml_values(&xml, "IsTruncated").first().map(String::as_str) == Some("true");
            marker = xml_values(&xml, "Marker").into_iter().next();
            if !truncated {
                return Ok(out);
            }
            if marker.is_none() {
                return Err(ReadError::Failed(format!(
                    "{operation}: truncated answer without a Marker"
                )));
            }
        }
        Err(ReadError::Failed(format!("{operation}: more than {MAX_PAGES} pages")))
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
                let names = self.list_all(signed, "ListRolePolicies", role, None).await?;
                Ok(json!({ "PolicyNames": names }))
            }
            Call::GetRolePolicy { role, policy } => {
                let xml = iam(signed, "GetRolePolicy", &[("RoleName", role), ("PolicyName", policy)]).await?;
                let doc = xml_values(&xml, "PolicyDocument").into_iter().next();
                Ok(json!({"RoleName": role, "PolicyName": policy, "PolicyDocument": doc}))
            }
            Call::ListAttachedRolePolicies { role } => {
                let list = self
                    .list_all(
                        signed,
                        "ListAttachedRolePolicies",
                        role,
                        Some(&["PolicyName", "PolicyArn"]),
                    )
                    .await?;
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

/// The answers that are in, by call.
pub fn answers_of(answers: &Answers) -> BTreeMap<Call, Result<Value, ReadError>> {
    let map = match answers.lock() {
        Ok(m) => m,
        Err(p) => p.into_inner(),
    };
    map.iter()
        .filter_map(|(c, slot)| slot.get().map(|a| (c.clone(), a.clone())))
        .collect()
}

impl Reader for LiveReader {
    async fn read(&self, call: &Call) -> Result<Value, ReadError> {
        let slot = self.slot(call);
        let left = self.deadline.saturating_duration_since(Instant::now());
        let work = slot.get_or_init(|| async {
            match tokio::time::timeout(left, self.send(call)).await {
                Ok(answer) => answer,
                Err(_) => Err(ReadError::Failed("AWS did not answer in time (--timeout)".into())),
            }
        });
        work.await.clone()
    }

    /// Asked before: answered, or in flight (waiting for it sends nothing).
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
