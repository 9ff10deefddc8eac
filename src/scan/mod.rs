//! `ecsdoctor scan`'s model: many tasks' diagnoses grouped by cause. The decisions the scan makes
//! on the way live in [`plan`]; the API rounds in `source::aws::scan`; the renderers in
//! `render`. Nothing here does I/O.
//!
//! The JSON is the contract: `{"version": 1, "cluster", "tasks", "logs_read", "groups": [...],
//! "api_calls": {...}}`, groups sorted by count (descending), then by key; no "now" timestamp.

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::evidence::Timestamp;
use crate::rules::{Category, Culprit, PolicyLayer};
use crate::verdict::Diagnosis;

pub use plan::{needs_logs, normalize_reason, parse_since, resource_pattern, signature};

/// The scan JSON contract's version.
pub const SCAN_SCHEMA_VERSION: u32 = 1;

/// One task's result in a scan.
#[derive(Debug, Clone)]
pub struct TaskResult {
    /// The task ARN (or `(no taskArn)` for a pasted task without one).
    pub task_arn: String,
    /// When it stopped, if ECS said.
    pub stopped_at: Option<Timestamp>,
    /// Its diagnosis — for an inferred task, the representative's.
    pub diagnosis: Arc<Diagnosis>,
    /// Its own logs were read.
    pub logs_read: bool,
    /// Its verdict was taken from representatives with the same failure signature, whose logs
    /// were read, and differs from what its stop reason alone said.
    pub inferred: bool,
}

/// What makes two verdicts the same cause: who must act, on what. The resource is its pattern
/// (task ids, ENI ids, request ids, dates masked), so one cause of many tasks is one group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub culprit: Culprit,
    pub category: Category,
    pub rule_id: Option<String>,
    pub permissions: Vec<String>,
    pub resource: Option<String>,
}

impl GroupKey {
    /// The key of a diagnosis.
    pub fn of(d: &Diagnosis) -> GroupKey {
        let v = &d.verdict;
        GroupKey {
            culprit: v.culprit,
            category: v.category,
            rule_id: v.rule_id.clone(),
            permissions: v.permissions.clone(),
            resource: v.resource.as_deref().map(resource_pattern),
        }
    }
}

/// Tasks stopped for the same cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub culprit: Culprit,
    pub category: Category,
    pub rule_id: Option<String>,
    pub title: Option<String>,
    pub permissions: Vec<String>,
    pub resource: Option<String>,
    pub policy: Option<PolicyLayer>,
    pub count: usize,
    /// Earliest stoppedAt in the group (null when ECS gave none).
    pub first_seen: Option<Timestamp>,
    /// Latest stoppedAt in the group.
    pub last_seen: Option<Timestamp>,
    /// Every task, newest first.
    pub task_arns: Vec<String>,
    /// The fix of the group's representative.
    pub fix: String,
    /// The representative's one-line summary.
    pub summary: String,
    /// The role to fix, when the verdict names one.
    pub role_arn: Option<String>,
    /// Tasks of this group whose logs were read.
    pub logs_read: usize,
    /// Tasks of this group whose verdict was inferred from representatives (see [`TaskResult`]).
    pub inferred: usize,
    /// The representative's verdict checked against the account's policies (once per group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<crate::verdict::verification::Verification>,
}

impl Group {
    /// True when the group's verdict is not "inconclusive".
    pub fn conclusive(&self) -> bool {
        self.culprit != Culprit::Unknown || self.category != Category::Unknown
    }
}

/// AWS calls made, by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApiCalls {
    #[serde(rename = "ListTasks")]
    pub list_tasks: usize,
    #[serde(rename = "DescribeTasks")]
    pub describe_tasks: usize,
    #[serde(rename = "DescribeTaskDefinition")]
    pub describe_task_definition: usize,
    #[serde(rename = "GetLogEvents")]
    pub get_log_events: usize,
    #[serde(rename = "FilterLogEvents")]
    pub filter_log_events: usize,
    #[serde(rename = "DescribeServices", skip_serializing_if = "is_zero")]
    pub describe_services: usize,
}

impl ApiCalls {
    /// Counts calls by operation name (other names are ignored).
    pub fn count<'a>(ops: impl IntoIterator<Item = &'a str>) -> ApiCalls {
        let mut c = ApiCalls::default();
        for op in ops {
            match op {
                "ListTasks" => c.list_tasks += 1,
                "DescribeTasks" => c.describe_tasks += 1,
                "DescribeTaskDefinition" => c.describe_task_definition += 1,
                "GetLogEvents" => c.get_log_events += 1,
                "FilterLogEvents" => c.filter_log_events += 1,
                "DescribeServices" => c.describe_services += 1,
                _ => {}
            }
        }
        c
    }

    /// All calls.
    pub fn total(&self) -> usize {
        self.list_tasks
            + self.describe_tasks
            + self.describe_task_definition
            + self.get_log_events
            + self.filter_log_events
            + self.describe_services
    }
}

/// The whole scan report. `--format json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanReport {
    pub version: u32,
    pub cluster: Option<String>,
    pub service: Option<String>,
    pub family: Option<String>,
    pub since: Option<String>,
    /// Stopped tasks diagnosed.
    pub tasks: usize,
    /// Tasks whose logs were read.
    pub logs_read: usize,
    /// Tasks whose verdict was inferred from representatives' logs.
    pub inferred: usize,
    /// Distinct task definition revisions among the tasks.
    pub task_definitions: usize,
    /// Failure events of the service (`--service`) that no task tells of: placement failures,
    /// circuit-breaker rollbacks, launch errors. They are in `groups` too, as `service-event ...`.
    #[serde(skip_serializing_if = "is_zero")]
    pub service_events: usize,
    pub groups: Vec<Group>,
    pub api_calls: ApiCalls,
    /// What was skipped or could not be read, and other remarks.
    pub notes: Vec<String>,
}

impl ScanReport {
    /// True when at least one task got a verdict (exit code 0).
    pub fn conclusive(&self) -> bool {
        self.groups.iter().any(Group::conclusive)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The results of each [`GroupKey`], as indices into `results`, newest first, with the group's
/// representative (whose fix and summary the group shows, and whose verdict is verified): the
/// newest task whose logs were read, else the newest task.
pub fn members_by_key(results: &[TaskResult]) -> BTreeMap<GroupKey, (usize, Vec<usize>)> {
    let mut by_key: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        by_key.entry(GroupKey::of(&r.diagnosis)).or_default().push(i);
    }
    by_key
        .into_iter()
        .map(|(key, mut members)| {
            members.sort_by(|&a, &b| newest_first(&results[a], &results[b]));
            let rep = members
                .iter()
                .copied()
                .find(|&i| results[i].logs_read)
                .unwrap_or(members[0]);
            (key, (rep, members))
        })
        .collect()
}

/// Groups task results by [`GroupKey`] ([`members_by_key`]): count descending, then key.
pub fn group(results: &[TaskResult]) -> Vec<Group> {
    let mut groups: Vec<(GroupKey, Group)> = members_by_key(results)
        .into_iter()
        .map(|(key, (rep, members))| {
            let rep = &results[rep];
            let members: Vec<&TaskResult> = members.iter().map(|&i| &results[i]).collect();
            let v = &rep.diagnosis.verdict;
            let seen: Vec<Timestamp> = members.iter().filter_map(|m| m.stopped_at).collect();
            let g = Group {
                culprit: key.culprit,
                category: key.category,
                rule_id: key.rule_id.clone(),
                title: v.title.clone(),
                permissions: key.permissions.clone(),
                resource: key.resource.clone(),
                policy: v.policy,
                count: members.len(),
                first_seen: seen.iter().min().copied(),
                last_seen: seen.iter().max().copied(),
                task_arns: members.iter().map(|m| m.task_arn.clone()).collect(),
                fix: v.fix.clone(),
                summary: v.summary.clone(),
                role_arn: v.role_arn.clone(),
                logs_read: members.iter().filter(|m| m.logs_read).count(),
                inferred: members.iter().filter(|m| m.inferred).count(),
                verification: v.verification.clone(),
            };
            (key, g)
        })
        .collect();
    groups.sort_by(|(ka, a), (kb, b)| b.count.cmp(&a.count).then_with(|| ka.cmp(kb)));
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Newest stoppedAt first, tasks without one last, then by ARN.
pub fn newest_first(a: &TaskResult, b: &TaskResult) -> std::cmp::Ordering {
    match (a.stopped_at, b.stopped_at) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
    .then_with(|| a.task_arn.cmp(&b.task_arn))
}

#[cfg(test)]
mod tests {
    use super::plan::*;
    use super::*;
    use crate::evidence::{Container, Evidence, Task};
    use crate::rules::engine::Matcher;
    use crate::verdict::{diagnose, Options};
    use std::time::Duration;

    fn matcher() -> Matcher {
        Matcher::load(true, &[]).expect("built-in rules load")
    }

    fn task(arn: &str, reason: &str, stopped_at: Option<i64>) -> Task {
        Task {
            task_arn: Some(arn.into()),
            task_definition_arn: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3".into()),
            last_status: Some("STOPPED".into()),
            stopped_reason: Some(reason.into()),
            stopped_at: stopped_at.map(Timestamp),
            containers: vec![Container {
                name: "app".into(),
                exit_code: Some(1),
                ..Container::default()
            }],
            ..Task::default()
        }
    }

    fn result(t: &Task, m: &Matcher) -> TaskResult {
        let ev = Evidence {
            task: t.clone(),
            ..Evidence::default()
        };
        TaskResult {
            task_arn: t.task_arn.clone().unwrap_or_default(),
            stopped_at: t.stopped_at,
            diagnosis: Arc::new(diagnose(&ev, m, &Options::default())),
            logs_read: false,
            inferred: false,
        }
    }

    const SSM: &str = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/{ID} is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/prod/db because no identity-based policy allows the ssm:GetParameters action";

    #[test]
    fn normalize_masks_ids_ips_and_numbers() {
        let a = normalize_reason(&SSM.replace("{ID}", "0f3c1e2d4b5a69788796a5b4c3d2e1f0"));
        let b = normalize_reason(&SSM.replace("{ID}", "9a8b7c6d5e4f30211203f4e5d6c7b8a9"));
        assert_eq!(a, b);
        assert!(a.contains("ecsTaskExecutionRole/<id> is not authorized"), "{a}");
        assert_eq!(
            normalize_reason("dial tcp 10.0.1.23:443: i/o timeout"),
            "dial tcp <ip>:<n>: i/o timeout"
        );
        // Words and action names stay.
        assert_eq!(normalize_reason("ssm:GetParameters"), "ssm:GetParameters");
        assert_eq!(
            normalize_reason("Essential container in task exited"),
            "Essential container in task exited"
        );
    }

    #[test]
    fn signature_separates_exit_codes_and_revisions() {
        let a = task("arn:t/1", "Essential container in task exited", None);
        let mut b = task("arn:t/2", "Essential container in task exited", None);
        assert_eq!(signature(&a), signature(&b));
        b.containers[0].exit_code = Some(137);
        assert_ne!(signature(&a), signature(&b));
        let mut c = a.clone();
        c.task_definition_arn = Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:4".into());
        assert_ne!(signature(&a), signature(&c));
    }

    #[test]
    fn needs_logs_for_generic_runtime_exits_only() {
        let m = matcher();
        let exited = result(&task("arn:t/1", "Essential container in task exited", None), &m);
        assert!(needs_logs(&exited.diagnosis, &m), "{:?}", exited.diagnosis.verdict);
        let ssm = result(&task("arn:t/2", &SSM.replace("{ID}", "0f3c1e2d4b5a6978"), None), &m);
        assert!(!needs_logs(&ssm.diagnosis, &m), "{:?}", ssm.diagnosis.verdict);
        let mut unseen = task("arn:t/3", "Something nobody has seen before", None);
        unseen.containers[0].exit_code = None;
        let nothing = result(&unseen, &m);
        assert!(!nothing.diagnosis.conclusive());
        assert!(needs_logs(&nothing.diagnosis, &m));
    }

    #[test]
    fn groups_sorted_by_count_with_first_and_last_seen() {
        let m = matcher();
        let mut results = Vec::new();
        for i in 0..3 {
            let t = task(
                &format!("arn:ssm/{i}"),
                &SSM.replace("{ID}", &format!("{i:032x}")),
                Some(1_000 + i),
            );
            results.push(result(&t, &m));
        }
        results.push(result(
            &task("arn:exit/0", "Essential container in task exited", Some(5_000)),
            &m,
        ));
        let groups = group(&results);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].culprit, Culprit::ExecutionRole);
        assert_eq!(groups[0].rule_id.as_deref(), Some("secret-ssm-access-denied"));
        assert_eq!(groups[0].first_seen, Some(Timestamp(1_000)));
        assert_eq!(groups[0].last_seen, Some(Timestamp(1_002)));
        // Newest first.
        assert_eq!(groups[0].task_arns, vec!["arn:ssm/2", "arn:ssm/1", "arn:ssm/0"]);
        assert_eq!(groups[1].count, 1);
    }

    #[test]
    fn one_cause_with_task_specific_resources_is_one_pattern() {
        let stream =
            |id: &str| format!("arn:aws:logs:us-east-1:123456789012:log-group:/ecs/svc1:log-stream:ecs/app/{id}");
        let a = resource_pattern(&stream("0f3c1e2d4b5a69788796a5b4c3d2e1f0"));
        assert_eq!(a, resource_pattern(&stream("9a8b7c6d5e4f30211203f4e5d6c7b8a9")));
        assert_eq!(
            a,
            "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/svc1:log-stream:ecs/app/*"
        );
        assert_eq!(
            resource_pattern("arn:aws:s3:::acme-orders-exports/2026/11/23/orders.csv"),
            "arn:aws:s3:::acme-orders-exports/*/orders.csv"
        );
        assert_eq!(
            resource_pattern("arn:aws:ec2:us-east-1:123456789012:network-interface/eni-0a1b2c3d4e5f60718"),
            "arn:aws:ec2:us-east-1:123456789012:network-interface/*"
        );
        // Stable names and the account stay.
        let ssm = "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db-password";
        assert_eq!(resource_pattern(ssm), ssm);
    }

    #[test]
    fn a_services_failure_events_are_results_and_its_routine_events_are_not() {
        use crate::source::aws::task::ServiceEvent;
        let event = |id: &str, message: &str| ServiceEvent {
            id: id.into(),
            created_at: Some(Timestamp(1_000)),
            message: message.into(),
        };
        let events = [
            event("e1", "service goodbaby-test-service was unable to place a task because no container instance met all of its requirements. The closest matching container-instance bcf744e7-7ad5-xxxx-xxxx-ab277caa9c0d is already using a port required by your task. For more information, see the Troubleshooting section."),
            event("e2", "(service goodbaby-test-service) has reached a steady state."),
        ];
        let results = event_results(&events, &Filter::default(), &matcher(), &Options::default());
        assert_eq!(results.len(), 1, "only the failure is a result");
        assert_eq!(results[0].task_arn, "service-event e1");
        assert_eq!(results[0].diagnosis.verdict.culprit, Culprit::NotIam);
        assert_eq!(results[0].diagnosis.verdict.category, Category::Capacity);
    }

    #[test]
    fn since_accepts_units_and_rejects_the_rest() {
        assert_eq!(parse_since("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_since("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_since("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_since("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "h", "1", "1y", "-1h", "1.5h", "0m", "99999999999999999999d"] {
            let e = parse_since(bad).expect_err(bad);
            assert!(e.starts_with("--since"), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn api_calls_count_known_operations() {
        let c = ApiCalls::count(["ListTasks", "DescribeTasks", "DescribeTasks", "GetLogEvents", "Other"]);
        assert_eq!(c.list_tasks, 1);
        assert_eq!(c.describe_tasks, 2);
        assert_eq!(c.get_log_events, 1);
        assert_eq!(c.total(), 4);
    }
}
