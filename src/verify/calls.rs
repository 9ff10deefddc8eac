//! The reads verification makes, one [`Call`] each: what to ask, the IAM action ecsdoctor needs
//! for it (named when ecsdoctor's own read is denied), and the file a captured bundle keeps its
//! answer in. Answers are JSON in the shape the AWS CLI prints for the same command, whether they
//! come from AWS, from a bundle or from a test.

use std::path::PathBuf;

use serde_json::Value;

/// One read-only call of verification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    /// `iam get-role`: the role's ARN, path, permissions boundary and tags.
    GetRole { role: String },
    /// `iam list-role-policies`: the names of the inline policies.
    ListRolePolicies { role: String },
    /// `iam get-role-policy`: one inline policy.
    GetRolePolicy { role: String, policy: String },
    /// `iam list-attached-role-policies`: the managed policies attached.
    ListAttachedRolePolicies { role: String },
    /// `iam get-policy`: a managed policy's default version id.
    GetPolicy { arn: String },
    /// `iam get-policy-version`: one version's document.
    GetPolicyVersion { arn: String, version: String },
    /// `ecr get-repository-policy`.
    GetRepositoryPolicy {
        region: String,
        registry: String,
        repository: String,
    },
    /// `secretsmanager get-resource-policy`.
    GetResourcePolicy { region: String, secret: String },
    /// `secretsmanager describe-secret`: the key that encrypts the secret.
    DescribeSecret { region: String, secret: String },
    /// `ssm describe-parameters` filtered to one name: a SecureString's key.
    DescribeParameters { region: String, name: String },
    /// `kms get-key-policy` (the `default` policy).
    GetKeyPolicy { region: String, key: String },
    /// `s3api get-bucket-policy`.
    GetBucketPolicy { bucket: String },
    /// `iam simulate-principal-policy` (`--simulate` only).
    SimulatePrincipalPolicy {
        role_arn: String,
        actions: Vec<String>,
        resource: String,
    },
}

impl Call {
    /// The IAM action ecsdoctor needs to make this call.
    pub fn action(&self) -> &'static str {
        match self {
            Call::GetRole { .. } => "iam:GetRole",
            Call::ListRolePolicies { .. } => "iam:ListRolePolicies",
            Call::GetRolePolicy { .. } => "iam:GetRolePolicy",
            Call::ListAttachedRolePolicies { .. } => "iam:ListAttachedRolePolicies",
            Call::GetPolicy { .. } => "iam:GetPolicy",
            Call::GetPolicyVersion { .. } => "iam:GetPolicyVersion",
            Call::GetRepositoryPolicy { .. } => "ecr:GetRepositoryPolicy",
            Call::GetResourcePolicy { .. } => "secretsmanager:GetResourcePolicy",
            Call::DescribeSecret { .. } => "secretsmanager:DescribeSecret",
            Call::DescribeParameters { .. } => "ssm:DescribeParameters",
            Call::GetKeyPolicy { .. } => "kms:GetKeyPolicy",
            Call::GetBucketPolicy { .. } => "s3:GetBucketPolicy",
            Call::SimulatePrincipalPolicy { .. } => "iam:SimulatePrincipalPolicy",
        }
    }

    /// The account owning what the call reads, when its name says (`None`: IAM reads of the role's
    /// own account, a bucket).
    pub fn account(&self) -> Option<String> {
        let of_arn = |a: &str| {
            crate::arn::Arn::parse(a)
                .map(|a| a.account.to_string())
                .filter(|a| !a.is_empty())
        };
        match self {
            Call::GetRepositoryPolicy { registry, .. } => Some(registry.clone()),
            Call::GetResourcePolicy { secret, .. } | Call::DescribeSecret { secret, .. } => of_arn(secret),
            Call::GetKeyPolicy { key, .. } => of_arn(key),
            _ => None,
        }
    }

    /// What the call is about, for messages: a role, a policy ARN, a resource.
    pub fn subject(&self) -> String {
        match self {
            Call::GetRole { role } | Call::ListRolePolicies { role } | Call::ListAttachedRolePolicies { role } => {
                format!("role {role}")
            }
            Call::GetRolePolicy { role, policy } => format!("inline policy {policy} of role {role}"),
            Call::GetPolicy { arn } => format!("policy {arn}"),
            Call::GetPolicyVersion { arn, version } => format!("policy {arn} version {version}"),
            Call::GetRepositoryPolicy { repository, .. } => format!("repository {repository}"),
            Call::GetResourcePolicy { secret, .. } | Call::DescribeSecret { secret, .. } => {
                format!("secret {secret}")
            }
            Call::DescribeParameters { name, .. } => format!("parameter {name}"),
            Call::GetKeyPolicy { key, .. } => format!("key {key}"),
            Call::GetBucketPolicy { bucket } => format!("bucket {bucket}"),
            Call::SimulatePrincipalPolicy { role_arn, .. } => format!("role {role_arn}"),
        }
    }

    /// Where a bundle keeps the answer, relative to the bundle directory: `iam/` for the role's
    /// policies, `resource-policies/` for the rest. Names are percent-encoded, so an ARN or a
    /// hostile name is one safe path component.
    pub fn bundle_path(&self) -> PathBuf {
        let e = |s: &str| encode(s);
        let p = match self {
            Call::GetRole { role } => format!("iam/get-role/{}.json", e(role)),
            Call::ListRolePolicies { role } => format!("iam/list-role-policies/{}.json", e(role)),
            Call::GetRolePolicy { role, policy } => format!("iam/get-role-policy/{}/{}.json", e(role), e(policy)),
            Call::ListAttachedRolePolicies { role } => format!("iam/list-attached-role-policies/{}.json", e(role)),
            Call::GetPolicy { arn } => format!("iam/get-policy/{}.json", e(arn)),
            Call::GetPolicyVersion { arn, version } => {
                format!("iam/get-policy-version/{}/{}.json", e(arn), e(version))
            }
            Call::GetRepositoryPolicy {
                region,
                registry,
                repository,
            } => format!(
                "resource-policies/ecr/{}/{}/{}.json",
                e(region),
                e(registry),
                e(repository)
            ),
            Call::GetResourcePolicy { region, secret } => {
                format!(
                    "resource-policies/secretsmanager/{}/get-resource-policy/{}.json",
                    e(region),
                    e(secret)
                )
            }
            Call::DescribeSecret { region, secret } => {
                format!(
                    "resource-policies/secretsmanager/{}/describe-secret/{}.json",
                    e(region),
                    e(secret)
                )
            }
            Call::DescribeParameters { region, name } => {
                format!(
                    "resource-policies/ssm/{}/describe-parameters/{}.json",
                    e(region),
                    e(name)
                )
            }
            Call::GetKeyPolicy { region, key } => format!("resource-policies/kms/{}/{}.json", e(region), e(key)),
            Call::GetBucketPolicy { bucket } => format!("resource-policies/s3/{}.json", e(bucket)),
            Call::SimulatePrincipalPolicy { role_arn, .. } => {
                format!("iam/simulate-principal-policy/{}.json", e(role_arn))
            }
        };
        PathBuf::from(p)
    }
}

/// Longest path component written (file systems allow 255 bytes; `.json` follows).
const MAX_COMPONENT: usize = 200;

/// A path component: letters, digits, `-`, `_` and `~` stay, every other byte (`/`, `:`, `.`,
/// controls) is percent-encoded; a name that would be longer than [`MAX_COMPONENT`] keeps its
/// start and ends in `~` and a hash of the whole name (FNV-1a), so it stays unique.
fn encode(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');
    let out = utf8_percent_encode(s, SET).to_string();
    if out.is_empty() {
        return "%00".into();
    }
    if out.len() <= MAX_COMPONENT {
        return out;
    }
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // Cut on a whole escape: the encoded text is ASCII, and `%XX` must not be split.
    let mut cut = MAX_COMPONENT - 20;
    while out.as_bytes()[..cut].iter().rev().take(2).any(|&b| b == b'%') {
        cut -= 1;
    }
    format!("{}~{hash:016x}", &out[..cut])
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// ecsdoctor's own credentials may not make the call.
    Denied(String),
    /// The thing does not exist (no policy on the resource, a deleted role).
    NotFound(String),
    /// A captured bundle has no answer for it.
    NotInBundle,
    /// Anything else: throttled, unreachable, out of time, an answer that could not be read.
    Failed(String),
}

impl ReadError {
    /// The error in the JSON shape a bundle keeps it in (`{"Error": {"Code", "Message"}}`), so a
    /// replay reaches the same status as the live run.
    pub fn to_bundle(&self) -> Value {
        let (code, message) = match self {
            ReadError::Denied(m) => ("AccessDenied", m.as_str()),
            ReadError::NotFound(m) => ("NotFound", m.as_str()),
            ReadError::NotInBundle => ("NotInBundle", ""),
            ReadError::Failed(m) => ("Failed", m.as_str()),
        };
        serde_json::json!({"Error": {"Code": code, "Message": message}})
    }

    /// Reads an error a bundle kept, if the answer is one.
    pub fn from_bundle(v: &Value) -> Option<ReadError> {
        let e = v.get("Error")?;
        let message = e.get("Message").and_then(Value::as_str).unwrap_or_default().to_string();
        Some(match e.get("Code").and_then(Value::as_str).unwrap_or_default() {
            "AccessDenied" => ReadError::Denied(message),
            "NotFound" => ReadError::NotFound(message),
            "NotInBundle" => ReadError::NotInBundle,
            _ => ReadError::Failed(message),
        })
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Denied(m) => write!(f, "access denied: {m}"),
            ReadError::NotFound(m) => write!(f, "not found: {m}"),
            ReadError::NotInBundle => write!(f, "not in the bundle"),
            ReadError::Failed(m) => write!(f, "{m}"),
        }
    }
}

/// Answers calls: AWS itself (`source::aws::policies`), a captured bundle ([`super::bundle`]), or
/// a test. Implementations keep what they answered, so asking twice costs nothing.
#[allow(async_fn_in_trait)]
pub trait Reader {
    /// The answer to one call, in the AWS CLI's JSON shape.
    async fn read(&self, call: &Call) -> Result<Value, ReadError>;
    /// Whether the answer is already at hand (no request would be sent).
    fn has(&self, _call: &Call) -> bool {
        true
    }
    /// A new sequential round of requests starts (for the API trace's round count).
    fn next_round(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_paths_are_safe_components() {
        let c = Call::GetPolicyVersion {
            arn: "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy".into(),
            version: "v6".into(),
        };
        assert_eq!(
            c.bundle_path(),
            PathBuf::from(
                "iam/get-policy-version/arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2Fservice-role%2FAmazonECSTaskExecutionRolePolicy/v6.json"
            )
        );
        let hostile = Call::GetRole {
            role: "../../etc".into(),
        };
        let p = hostile.bundle_path();
        assert!(p.components().all(|c| c.as_os_str() != ".."), "{p:?}");
        assert_eq!(
            Call::GetRole { role: String::new() }.bundle_path(),
            PathBuf::from("iam/get-role/%00.json")
        );
    }

    #[test]
    fn errors_survive_a_bundle() {
        for e in [
            ReadError::Denied("User: x is not authorized".into()),
            ReadError::NotFound("no policy".into()),
            ReadError::Failed("throttled".into()),
        ] {
            assert_eq!(ReadError::from_bundle(&e.to_bundle()), Some(e));
        }
        assert_eq!(ReadError::from_bundle(&serde_json::json!({"Policy": "{}"})), None);
    }
}
