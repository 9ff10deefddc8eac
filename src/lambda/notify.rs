//! What is worth a message. Only a STOPPED task is; among those the diagnosis decides, not string
//! matching here: the verdict's category (`user` is a stop someone or something asked for: a
//! StopTask call, a deployment or scale-in replacing a healthy task) and the stop code
//! (`UserInitiated` is a StopTask call, whatever the logs said before it). A failed ELB or
//! container health check is also stopped by the service scheduler, but its verdict is `app`, so
//! it is posted.

use crate::evidence::Task;
use crate::verdict::Diagnosis;

use super::config::NotifyOn;
use crate::rules::Category;

/// ECS stop codes (the API's `TaskStopCode` values) of stops that are part of normal operation:
/// someone asked for it (`UserInitiated`, a StopTask call), Spot capacity was reclaimed
/// (`SpotInterruption`) or the instance is being terminated (`TerminationNotice`); the service
/// scheduler replaces such tasks. Not `ServiceSchedulerInitiated`: the scheduler also stops tasks
/// that failed their health checks.
pub const DELIBERATE_STOP_CODES: &[&str] = &["UserInitiated", "SpotInterruption", "TerminationNotice"];

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a stop (`lastStatus` is not STOPPED): nothing is read from AWS.
    NotStopped(String),
    /// Diagnosed, and not worth a message under the configured policy; the reason says why.
    Quiet(String),
    /// Worth a message.
    Post,
}

/// Whether a task is STOPPED (the only state worth a diagnosis).
pub fn is_stopped(task: &Task) -> Result<(), Decision> {
    match task.last_status.as_deref() {
        Some(s) if s.eq_ignore_ascii_case("STOPPED") => Ok(()),
        other => Err(Decision::NotStopped(format!(
            "lastStatus is {}",
            other.unwrap_or("missing")
        ))),
    }
}

/// Decides from a STOPPED task's diagnosis.
pub fn decide(d: &Diagnosis, on: &NotifyOn) -> Decision {
    let category = d.verdict.category;
    match on {
        NotifyOn::All => Decision::Post,
        NotifyOn::Categories(set) if set.contains(&category) => Decision::Post,
        NotifyOn::Categories(_) => Decision::Quiet(format!("category {} is not in the list", category.name())),
        NotifyOn::Failures => {
            if let Some(code) = d.stop_code.as_deref().filter(|c| DELIBERATE_STOP_CODES.contains(c)) {
                Decision::Quiet(format!("stop code {code}: a stop of normal operation"))
            } else if category == Category::User {
                Decision::Quiet("a deliberate stop (category user)".to_string())
            } else {
                Decision::Post
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Evidence;
    use crate::rules::engine::Matcher;
    use crate::verdict::{diagnose, Options};
    use std::collections::BTreeSet;

    fn diagnosis(task: Task) -> Diagnosis {
        let matcher = Matcher::load(true, &[]).expect("built-in rules load");
        let ev = Evidence {
            task,
            ..Evidence::default()
        };
        diagnose(&ev, &matcher, &Options::default())
    }

    fn stopped(stop_code: &str, reason: &str) -> Task {
        Task {
            task_arn: Some("arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef".into()),
            last_status: Some("STOPPED".into()),
            stop_code: Some(stop_code.into()),
            stopped_reason: Some(reason.into()),
            group: Some("service:web".into()),
            ..Task::default()
        }
    }

    #[test]
    fn a_user_stop_a_scale_in_and_a_deployment_are_quiet() {
        for (code, reason) in [
            ("UserInitiated", "Task stopped by user"),
            ("UserInitiated", "rolling back release 42"),
            (
                "ServiceSchedulerInitiated",
                "Scaling activity initiated by (deployment ecs-svc/8709920613704280865)",
            ),
            ("ServiceSchedulerInitiated", "Service web: some other scheduler reason"),
        ] {
            let d = diagnosis(stopped(code, reason));
            assert!(
                matches!(decide(&d, &NotifyOn::Failures), Decision::Quiet(_)),
                "{code} / {reason}: {:?}",
                d.verdict
            );
            assert_eq!(decide(&d, &NotifyOn::All), Decision::Post);
        }
    }

    #[test]
    fn a_spot_interruption_is_quiet_unless_capacity_is_asked_for() {
        let d = diagnosis(stopped("SpotInterruption", "Your Spot Task was interrupted."));
        assert!(
            matches!(decide(&d, &NotifyOn::Failures), Decision::Quiet(_)),
            "{:?}",
            d.verdict
        );
        let capacity = NotifyOn::Categories(BTreeSet::from([d.verdict.category]));
        assert_eq!(decide(&d, &capacity), Decision::Post);
    }

    #[test]
    fn a_failed_health_check_is_posted() {
        for reason in [
            "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/6d0ecf831eec9f09)",
            "Task failed container health checks",
        ] {
            let d = diagnosis(stopped("ServiceSchedulerInitiated", reason));
            assert_eq!(decide(&d, &NotifyOn::Failures), Decision::Post, "{reason}: {:?}", d.verdict);
        }
    }

    #[test]
    fn an_iam_failure_is_posted_and_categories_filter() {
        let d = diagnosis(stopped(
            "TaskFailedToStart",
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/0123456789abcdef0123456789abcdef is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/db because no identity-based policy allows the ssm:GetParameters action",
        ));
        assert_eq!(d.verdict.category, Category::Iam);
        assert_eq!(decide(&d, &NotifyOn::Failures), Decision::Post);
        let only_network = NotifyOn::Categories(BTreeSet::from([Category::Network]));
        assert!(matches!(decide(&d, &only_network), Decision::Quiet(_)));
    }

    #[test]
    fn only_stopped_tasks_are_diagnosed() {
        let mut t = stopped("SpotInterruption", "Your Spot Task was interrupted.");
        assert!(is_stopped(&t).is_ok());
        t.last_status = Some("RUNNING".into());
        assert!(matches!(is_stopped(&t), Err(Decision::NotStopped(_))));
        t.last_status = None;
        assert!(is_stopped(&t).is_err());
    }
}
