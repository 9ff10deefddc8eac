//! ARNs: [`Arn`], the one type every ARN is split with (`arn:PARTITION:SERVICE:REGION:ACCOUNT:
//! RESOURCE`), and the task argument ([`parse_task`]): a task ARN in the new form
//! (`task/CLUSTER/ID`) or the old one (`task/ID`), or a bare task id. Parsing the task argument is
//! strict and its errors say what was expected.

use std::fmt;

/// An ARN, split into its six parts (borrowed from the text). The resource keeps any `:` and `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits `text` if it is an ARN (`arn:` and five more `:`-separated parts).
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let mut parts = text.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let (partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        (!partition.is_empty() && !service.is_empty()).then_some(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// The last `/`-separated segment of the resource (`task/CLUSTER/ID` -> `ID`,
    /// `role/path/Name` -> `Name`, `cluster/prod` -> `prod`).
    pub fn resource_name(&self) -> &'a str {
        self.resource.rsplit('/').next().unwrap_or(self.resource)
    }
}

/// A task the user named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The full ARN, when one was given.
    pub arn: Option<String>,
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: Option<String>,
    /// Region from the ARN.
    pub region: Option<String>,
    /// Account from the ARN.
    pub account: Option<String>,
    /// Cluster from the ARN (new form) — `None` for the old form and bare ids.
    pub cluster: Option<String>,
    /// The task id.
    pub id: String,
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arn {
            Some(a) => f.write_str(a),
            None => f.write_str(&self.id),
        }
    }
}

/// The partitions ECS runs in.
pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

fn is_task_id(s: &str) -> bool {
    // Task ids are 32 hex digits today, UUIDs for old tasks.
    (8..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn is_cluster_name(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses a task ARN or id.
pub fn parse_task(s: &str) -> Result<TaskRef, String> {
    let s = s.trim();
    let expected = "expected a task ARN such as arn:aws:ecs:eu-west-1:123456789012:task/CLUSTER/0f3c1e2d4b5a69788796a5b4c3d2e1f0, or a task id with --cluster";
    if !s.starts_with("arn:") {
        if is_task_id(s) {
            return Ok(TaskRef {
                arn: None,
                partition: None,
                region: None,
                account: None,
                cluster: None,
                id: s.to_string(),
            });
        }
        return Err(format!("`{}` is not a task ARN or task id: {expected}", shorten(s)));
    }
    let Some(arn) = Arn::parse(s) else {
        return Err(format!("`{}` is not a task ARN: {expected}", shorten(s)));
    };
    let (partition, service, region, account, resource) =
        (arn.partition, arn.service, arn.region, arn.account, arn.resource);
    if !PARTITIONS.contains(&partition) {
        return Err(format!(
            "`{}`: unknown partition `{}` (expected one of {})",
            shorten(s),
            shorten(partition),
            PARTITIONS.join(", ")
        ));
    }
    if service != "ecs" {
        return Err(format!(
            "`{}` is an ARN of `{}`, not of an ECS task: {expected}",
            shorten(s),
            shorten(service)
        ));
    }
    if !is_region(region) {
        return Err(format!(
            "`{}`: `{}` is not a region name like eu-west-1",
            shorten(s),
            shorten(region)
        ));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{}`: the account `{}` is not 12 digits",
            shorten(s),
            shorten(account)
        ));
    }
    let segs: Vec<&str> = resource.split('/').collect();
    let (cluster, id) = match segs.as_slice() {
        ["task", id] => (None, *id),
        ["task", cluster, id] => (Some(*cluster), *id),
        [kind, ..] if *kind != "task" => {
            return Err(format!(
                "`{}` is the ARN of a {}, not of a task: {expected}",
                shorten(s),
                shorten(kind)
            ));
        }
        _ => return Err(format!("`{}` is not a task ARN: {expected}", shorten(s))),
    };
    if !is_task_id(id) {
        return Err(format!(
            "`{}`: `{}` is not a task id (32 hex digits)",
            shorten(s),
            shorten(id)
        ));
    }
    if let Some(c) = cluster {
        if !is_cluster_name(c) {
            return Err(format!("`{}`: `{}` is not a cluster name", shorten(s), shorten(c)));
        }
    }
    Ok(TaskRef {
        arn: Some(s.to_string()),
        partition: Some(partition.to_string()),
        region: Some(region.to_string()),
        account: Some(account.to_string()),
        cluster: cluster.map(str::to_string),
        id: id.to_string(),
    })
}

/// Keeps an echoed argument short and printable in an error line.
fn shorten(s: &str) -> String {
    crate::sanitize::error_quote(s, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_split_into_six_parts_and_the_resource_keeps_its_separators() {
        let a = Arn::parse("arn:aws:logs:us-east-1:123456789012:log-group:/ecs/x:log-stream:a/b").expect("arn");
        assert_eq!(
            (a.partition, a.service, a.region, a.account),
            ("aws", "logs", "us-east-1", "123456789012")
        );
        assert_eq!(a.resource, "log-group:/ecs/x:log-stream:a/b");
        assert_eq!(
            Arn::parse("arn:aws:iam::1:role/path/Name").map(|a| a.resource_name()),
            Some("Name")
        );
        assert_eq!(Arn::parse("arn:aws:s3:::bucket").map(|a| a.resource), Some("bucket"));
        assert!(Arn::parse("arn:aws:s3").is_none());
        assert!(Arn::parse("not:an:arn:at:all:x").is_none());
    }

    #[test]
    fn new_form_old_form_and_bare_ids() {
        let t =
            parse_task("arn:aws:ecs:eu-west-1:123456789012:task/prod/0f3c1e2d4b5a69788796a5b4c3d2e1f0").expect("new");
        assert_eq!(
            (t.cluster.as_deref(), t.region.as_deref(), t.id.as_str()),
            (Some("prod"), Some("eu-west-1"), "0f3c1e2d4b5a69788796a5b4c3d2e1f0")
        );
        let t =
            parse_task("arn:aws:ecs:us-east-1:123456789012:task/3b1c0e7e-9d3f-4d55-8a2b-2f6a2a0e9c11").expect("old");
        assert_eq!(t.cluster, None);
        let t = parse_task("0f3c1e2d4b5a69788796a5b4c3d2e1f0").expect("bare");
        assert_eq!(t.arn, None);
        for p in ["aws-cn", "aws-us-gov"] {
            let t = parse_task(&format!(
                "arn:{p}:ecs:cn-north-1:123456789012:task/c/0f3c1e2d4b5a69788796a5b4c3d2e1f0"
            ))
            .expect(p);
            assert_eq!(t.partition.as_deref(), Some(p));
        }
    }

    #[test]
    fn wrong_arns_say_what_was_expected() {
        for (bad, says) in [
            (
                "arn:aws:ecs:us-east-1:123456789012:service/prod/web",
                "ARN of a service",
            ),
            ("arn:aws:s3:::bucket", "not of an ECS task"),
            (
                "arn:aws:ecs:useast1:123456789012:task/p/0f3c1e2d4b5a69788796a5b4c3d2e1f0",
                "not a region",
            ),
            (
                "arn:aws:ecs:us-east-1:12345:task/p/0f3c1e2d4b5a69788796a5b4c3d2e1f0",
                "not 12 digits",
            ),
            ("arn:azure:ecs:us-east-1:123456789012:task/p/0f3c", "unknown partition"),
            ("hello world", "not a task ARN or task id"),
            ("arn:aws:ecs:us-east-1:123456789012:task/p/zz", "not a task id"),
        ] {
            let e = parse_task(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
