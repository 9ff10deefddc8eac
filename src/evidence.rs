//! The evidence model: plain serde structs shaped like the AWS CLI's JSON output, so that a pasted
//! `aws ecs describe-tasks` answer deserializes into them directly and `ecsdoctor capture` writes the
//! same shape back. Nothing here knows about the AWS SDK; `source::aws` maps SDK types into these.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rules::{AccountRelation, LaunchType, TaskFacts};

/// Everything known about one stopped task: the task, its definition and its containers' logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// The task as `DescribeTasks` returned it.
    pub task: Task,
    /// The task definition revision the task ran, when it could be read.
    pub task_definition: Option<TaskDefinition>,
    /// Recent log lines per container, in time order.
    pub logs: Vec<ContainerLogs>,
    /// Things the source could not fetch and why ("logs of `app` not available: FireLens").
    pub notes: Vec<String>,
}

/// A timestamp in milliseconds since the Unix epoch. The AWS CLI v1 prints epoch seconds as a
/// number, v2 an ISO 8601 string; both deserialize here, and it serializes as ISO 8601 (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses an RFC 3339 / ISO 8601 date-time: `2025-11-23T12:13:20.123456+00:00`, `...Z`, or one
    /// without an offset (read as UTC), with `T` or a space between date and time. Anything else,
    /// or a date-time out of range, is `None`.
    pub fn parse_iso(s: &str) -> Option<Timestamp> {
        use time::format_description::well_known::Rfc3339;
        use time::macros::format_description;
        // RFC 3339 requires the `T`, an upper-case `Z` and an offset with a colon; the CLI and
        // people also write a space, lower case, `+0100`, or no offset at all (UTC).
        let s = s.trim().replacen(' ', "T", 1).to_ascii_uppercase();
        let with_offset = format_description!(
            version = 2,
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]][offset_hour sign:mandatory][offset_minute]"
        );
        let without_offset = format_description!(
            version = 2,
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        let t = time::OffsetDateTime::parse(&s, &Rfc3339)
            .or_else(|_| time::OffsetDateTime::parse(&s, &with_offset))
            .or_else(|_| time::PrimitiveDateTime::parse(&s, &without_offset).map(|t| t.assume_utc()))
            .ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok().map(Timestamp)
    }

    /// Formats as the AWS CLI v2 does: `2025-11-23T12:13:20.123000+00:00`.
    pub fn to_iso(self) -> String {
        use time::macros::format_description;
        let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]000+00:00");
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&fmt).ok())
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) if n.is_finite() && n.abs() < 1e13 => Ok(Timestamp((n * 1000.0).round() as i64)),
            Raw::Num(n) => Err(serde::de::Error::custom(format!("timestamp {n} is out of range"))),
            Raw::Str(s) => Timestamp::parse_iso(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("expected an ISO 8601 timestamp, found {s:?}"))),
        }
    }
}

/// One task from `aws ecs describe-tasks` (the fields ecsdoctor reads; others are ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    #[serde(default)]
    pub containers: Vec<Container>,
}

/// One container of a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
}

/// A task definition revision from `aws ecs describe-task-definition` (its `taskDefinition` member).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_compatibilities: Vec<String>,
    #[serde(default)]
    pub container_definitions: Vec<ContainerDefinition>,
}

/// One container definition: where it logs, which secrets and files the agent fetches for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<RepositoryCredentials>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_files: Vec<EnvironmentFile>,
}

/// `logConfiguration` of a container definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    #[serde(default)]
    pub log_driver: String,
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_options: Vec<Secret>,
}

/// A secret reference (`secrets[]` or `secretOptions[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value_from: String,
}

/// Private registry credentials (a Secrets Manager secret the execution role reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCredentials {
    #[serde(default)]
    pub credentials_parameter: String,
}

/// An `environmentFiles[]` entry (an S3 object the execution role downloads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFile {
    #[serde(default)]
    pub value: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// The log lines of one container, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerLogs {
    /// Container name (as in the task definition).
    pub container: String,
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
}

/// One log event from `aws logs get-log-events` (its `events[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Milliseconds since the epoch (CloudWatch Logs prints integers in both CLI versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub message: String,
}

/// Where a piece of evidence was found; rule files name these in `look_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Field {
    /// The task's `stoppedReason`.
    StoppedReason,
    /// A container's `reason`.
    ContainerReason,
    /// The task's `stopCode`.
    StopCode,
    /// A container's exit code, as decimal text.
    ExitCode,
    /// One CloudWatch log line.
    Logs,
}

impl Field {
    /// Every field, in priority order (stopped reason first).
    pub const ALL: [Field; 5] = [
        Field::StoppedReason,
        Field::ContainerReason,
        Field::StopCode,
        Field::ExitCode,
        Field::Logs,
    ];

    /// The kebab-case name used in rule files and output.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One text to match, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Text<'a> {
    /// Which field.
    pub field: Field,
    /// The container it belongs to, if any.
    pub container: Option<&'a str>,
    /// Position of a log line in its container's log (0-based), for ordering and display.
    pub line: Option<usize>,
    /// Event timestamp (log lines only).
    pub timestamp: Option<i64>,
    /// The text itself.
    pub text: std::borrow::Cow<'a, str>,
}

impl Evidence {
    /// The task's own texts (stop reason, container reasons, exit codes, stop code), in
    /// field-priority order: every text but the log lines.
    pub fn task_texts(&self) -> Vec<Text<'_>> {
        let mut out = Vec::new();
        if let Some(r) = self.task.stopped_reason.as_deref().filter(|r| !r.is_empty()) {
            out.push(Text {
                field: Field::StoppedReason,
                container: None,
                line: None,
                timestamp: None,
                text: r.into(),
            });
        }
        for c in &self.task.containers {
            if let Some(r) = c.reason.as_deref().filter(|r| !r.is_empty()) {
                out.push(Text {
                    field: Field::ContainerReason,
                    container: Some(&c.name),
                    line: None,
                    timestamp: None,
                    text: r.into(),
                });
            }
            if let Some(code) = c.exit_code {
                out.push(Text {
                    field: Field::ExitCode,
                    container: Some(&c.name),
                    line: None,
                    timestamp: None,
                    text: code.to_string().into(),
                });
            }
        }
        if let Some(code) = self.task.stop_code.as_deref().filter(|r| !r.is_empty()) {
            out.push(Text {
                field: Field::StopCode,
                container: None,
                line: None,
                timestamp: None,
                text: code.into(),
            });
        }
        out
    }

    /// Every text the rules look at, in field-priority order: the task's own, then every log line.
    pub fn texts(&self) -> Vec<Text<'_>> {
        let mut out = self.task_texts();
        for logs in &self.logs {
            for (i, l) in logs.lines.iter().enumerate() {
                out.push(Evidence::log_text(&logs.container, i, l));
            }
        }
        out
    }

    /// The text of line `i` of a container's log.
    pub fn log_text<'a>(container: &'a str, i: usize, line: &'a LogLine) -> Text<'a> {
        Text {
            field: Field::Logs,
            container: Some(container),
            line: Some(i),
            timestamp: line.timestamp,
            text: line.message.as_str().into(),
        }
    }

    /// The role names of the task definition, if known: (execution role, task role).
    pub fn role_names(&self) -> (Option<&str>, Option<&str>) {
        let td = self.task_definition.as_ref();
        (
            td.and_then(|t| t.execution_role_arn.as_deref()).map(role_name),
            td.and_then(|t| t.task_role_arn.as_deref()).map(role_name),
        )
    }

    /// The launch type, normalised (`FARGATE`, `EC2`, `EXTERNAL`), from the task or, failing that,
    /// its capacity provider or the definition's compatibilities.
    pub fn launch_type(&self) -> Option<String> {
        if let Some(l) = self.task.launch_type.as_deref().filter(|l| !l.is_empty()) {
            return Some(l.to_ascii_uppercase());
        }
        if let Some(cp) = self.task.capacity_provider_name.as_deref() {
            if cp.to_ascii_uppercase().starts_with("FARGATE") {
                return Some("FARGATE".into());
            }
        }
        if self.task.container_instance_arn.is_some() {
            return Some("EC2".into());
        }
        None
    }

    /// The task id: the last segment of the task ARN.
    pub fn task_id(&self) -> Option<&str> {
        self.task.task_arn.as_deref().and_then(|a| a.rsplit('/').next())
    }

    /// Every container image: the task's containers first, then the task definition's.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.task.containers.iter().filter_map(|c| c.image.as_deref()).chain(
            self.task_definition
                .iter()
                .flat_map(|t| t.container_definitions.iter().filter_map(|c| c.image.as_deref())),
        )
    }

    /// What rule conditions (`when`) can see of this task; unknown where the evidence is silent.
    pub fn task_facts(&self) -> TaskFacts {
        let td = self.task_definition.as_ref();
        let task_account = self
            .task
            .task_arn
            .as_deref()
            .or(self.task.cluster_arn.as_deref())
            .and_then(crate::arn::Arn::parse)
            .map(|a| a.account.to_string());
        let image_account = self.images().find_map(ecr_image).map(|i| i.account);
        TaskFacts {
            has_task_role: td.map(|t| t.task_role_arn.is_some()),
            has_execution_role: td.map(|t| t.execution_role_arn.is_some()),
            launch_type: match self.launch_type().as_deref() {
                Some("EC2") => Some(LaunchType::Ec2),
                Some("FARGATE") => Some(LaunchType::Fargate),
                Some("EXTERNAL") => Some(LaunchType::External),
                _ => None,
            },
            image_account: match (image_account, task_account) {
                (Some(i), Some(t)) if i == t => Some(AccountRelation::Same),
                (Some(_), Some(_)) => Some(AccountRelation::Other),
                _ => None,
            },
        }
    }
}

/// An image hosted in Amazon ECR: `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG|@DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
}

/// The ECR registry and repository of an image reference, if it is hosted in ECR.
pub fn ecr_image(image: &str) -> Option<EcrImage> {
    let (host, rest) = image.split_once('/')?;
    let mut h = host.split('.');
    let (account, dkr, ecr, region) = (h.next()?, h.next()?, h.next()?, h.next()?);
    if dkr != "dkr" || ecr != "ecr" || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let repository = rest.split(['@', ':']).next().unwrap_or(rest);
    Some(EcrImage {
        account: account.to_string(),
        region: region.to_string(),
        repository: repository.to_string(),
    })
}

/// The role name of an IAM role ARN (`arn:aws:iam::1:role/path/Name` -> `Name`).
pub fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_both_cli_forms_to_the_same_instant() {
        let v2: Timestamp = serde_json::from_str(r#""2025-11-23T12:13:20.500000+00:00""#).expect("iso");
        let v1: Timestamp = serde_json::from_str("1763900000.5").expect("epoch");
        assert_eq!(v1, v2);
        let offset: Timestamp = serde_json::from_str(r#""2025-11-23T13:13:20.5+01:00""#).expect("offset");
        assert_eq!(offset, v2);
        for other in [
            "2025-11-23 12:13:20.5",
            "2025-11-23t12:13:20.5z",
            "2025-11-23T13:13:20.500+0100",
        ] {
            assert_eq!(Timestamp::parse_iso(other), Some(v2), "{other}");
        }
        assert_eq!(v2.to_iso(), "2025-11-23T12:13:20.500000+00:00");
        assert_eq!(Timestamp::parse_iso(&v2.to_iso()), Some(v2));
    }

    #[test]
    fn bad_timestamps_are_errors_not_panics() {
        for bad in [
            // A multi-byte character where the offset should be (it used to panic: issue 9).
            r#""2025-01-01T00:00:00+1é1""#,
            r#""2025-01-01T00:00:00é""#,
            r#""yesterday""#,
            r#""2025-13-01T00:00:00Z""#,
            r#""2025-11-23T12:13:20+0""#,
            "1e300",
            "true",
        ] {
            assert!(serde_json::from_str::<Timestamp>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn role_name_takes_the_last_path_segment() {
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/service/ecsTaskExecutionRole"),
            "ecsTaskExecutionRole"
        );
    }
}
