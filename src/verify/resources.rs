//! The table of `resources.toml`: for a resource's service, which read gives its own policy, which
//! read names the key that encrypts it, and whether the key is used through the service. Parsed
//! once, on the first verification (not at start-up).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// The read of a resource-based policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyRead {
    /// `ecr get-repository-policy`.
    #[serde(rename = "get-repository-policy")]
    Repository,
    /// `secretsmanager get-resource-policy`.
    #[serde(rename = "get-resource-policy")]
    Secret,
    /// `s3api get-bucket-policy`.
    #[serde(rename = "get-bucket-policy")]
    Bucket,
    /// `kms get-key-policy`: the resource is the key.
    #[serde(rename = "get-key-policy")]
    Key,
}

/// The read that names a resource's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRead {
    DescribeSecret,
    DescribeParameters,
}

/// One service's row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceReads {
    pub policy: Option<PolicyRead>,
    pub key: Option<KeyRead>,
    #[serde(default)]
    pub via_service: bool,
}

static TABLE: LazyLock<BTreeMap<String, ServiceReads>> = LazyLock::new(|| {
    toml::from_str(include_str!("resources.toml")).expect("src/verify/resources.toml is valid (checked by a unit test)")
});

/// The reads for a service prefix (`secretsmanager`), if verification knows any.
pub fn of(service: &str) -> ServiceReads {
    TABLE.get(service).copied().unwrap_or_default()
}

/// The service whose resources are keys (its policy read is the key policy).
pub fn is_key_service(service: &str) -> bool {
    of(service).policy == Some(PolicyRead::Key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_names_one_key_service() {
        assert!(!TABLE.is_empty());
        let keys: Vec<&String> = TABLE.keys().filter(|s| is_key_service(s)).collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(of("no-such-service") == ServiceReads::default());
    }
}
