//! Unit tests of the verdict: phase signals, who is denied, traps, ranking.
use super::*;
use crate::evidence::{Container, ContainerLogs, LogLine, Task, TaskDefinition, Timestamp};
use crate::rules::engine::Matcher;
use crate::rules::{Category, Culprit, PolicyLayer};

fn matcher() -> Matcher {
    Matcher::load(true, &[]).expect("built-in rules")
}

fn runtime_task(task_role: Option<&str>, exec_role: Option<&str>, launch: &str, lines: &[&str]) -> Evidence {
    Evidence {
        task: Task {
            task_arn: Some("arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef".into()),
            last_status: Some("STOPPED".into()),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            launch_type: Some(launch.into()),
            created_at: Some(Timestamp(1_000)),
            started_at: Some(Timestamp(20_000)),
            stopped_at: Some(Timestamp(80_000)),
            containers: vec![Container {
                name: "app".into(),
                exit_code: Some(1),
                ..Container::default()
            }],
            ..Task::default()
        },
        task_definition: Some(TaskDefinition {
            task_role_arn: task_role.map(|r| format!("arn:aws:iam::123456789012:role/{r}")),
            execution_role_arn: exec_role.map(|r| format!("arn:aws:iam::123456789012:role/{r}")),
            ..TaskDefinition::default()
        }),
        logs: vec![ContainerLogs {
            container: "app".into(),
            lines: lines
                .iter()
                .map(|l| LogLine {
                    timestamp: None,
                    message: l.to_string(),
                })
                .collect(),
        }],
        notes: vec![],
    }
}

#[test]
fn phase_signals_runtime_when_the_task_started_and_exited() {
    let ev = runtime_task(Some("app"), Some("exec"), "FARGATE", &[]);
    let (phase, signals) = decide_phase(&ev, &[], &matcher().knowledge().phase);
    assert_eq!(phase, Phase::Runtime);
    assert!(signals.iter().any(|s| s.contains("ran 1m0s")), "{signals:?}");
    assert!(signals.iter().any(|s| s.contains("app exitCode=1")), "{signals:?}");
}

#[test]
fn phase_signals_startup_when_the_pull_never_finished() {
    let mut ev = runtime_task(None, Some("exec"), "FARGATE", &[]);
    ev.task.started_at = None;
    ev.task.stop_code = Some("TaskFailedToStart".into());
    ev.task.pull_started_at = Some(Timestamp(2_000));
    ev.task.containers[0].exit_code = None;
    let (phase, signals) = decide_phase(&ev, &[], &matcher().knowledge().phase);
    assert_eq!(phase, Phase::Startup);
    assert!(signals.iter().any(|s| s.contains("pull never finished")), "{signals:?}");
}

#[test]
fn no_credentials_with_a_task_role_is_configuration_not_iam() {
    let line = "botocore.exceptions.NoCredentialsError: Unable to locate credentials";
    let with = diagnose(
        &runtime_task(Some("app"), Some("exec"), "FARGATE", &[line]),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(
        (with.verdict.culprit, with.verdict.category),
        (Culprit::NotIam, Category::Config)
    );
    let without = diagnose(
        &runtime_task(None, Some("exec"), "FARGATE", &[line]),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(
        (without.verdict.culprit, without.verdict.category),
        (Culprit::TaskRole, Category::Iam)
    );
}

#[test]
fn a_named_role_that_is_not_the_tasks_is_reported_as_such() {
    let line = "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the GetObject operation: User: arn:aws:sts::123456789012:assumed-role/tenant-reader/0123456789abcdef0123456789abcdef is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::b/k";
    let d = diagnose(
        &runtime_task(Some("app"), Some("exec"), "FARGATE", &[line]),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(
        d.verdict.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/tenant-reader")
    );
    assert!(
        d.findings[0].reason.contains("not a role of this task definition"),
        "{}",
        d.findings[0].reason
    );
}

#[test]
fn an_instance_session_on_ec2_without_task_role_is_the_instance_role() {
    let line = "User: arn:aws:sts::123456789012:assumed-role/ecsInstanceRole/i-0d1204078bf4e29eb is not authorized to perform: sqs:SendMessage on resource: arn:aws:sqs:us-east-1:123456789012:q";
    let d = diagnose(
        &runtime_task(None, None, "EC2", &[line]),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(d.verdict.culprit, Culprit::InstanceRole);
    assert_eq!(
        d.verdict.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/ecsInstanceRole")
    );
    assert!(
        d.findings[0].reason.contains("no taskRoleArn"),
        "{}",
        d.findings[0].reason
    );
}

#[test]
fn kms_behind_a_secrets_call_names_kms_decrypt_first() {
    let line = "botocore.exceptions.ClientError: An error occurred (AccessDeniedException) when calling the GetSecretValue operation: Access to KMS is not allowed";
    let d = diagnose(
        &runtime_task(Some("app"), Some("exec"), "FARGATE", &[line]),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(
        d.verdict.permissions.first().map(String::as_str),
        Some("kms:Decrypt"),
        "{:?}",
        d.verdict
    );
}

/// The verdict does not depend on the order of the evidence: every permutation of the log lines
/// and of the containers gives the same verdict and the same findings.
#[test]
fn the_verdict_does_not_depend_on_the_order_of_the_evidence() {
    let lines = [
        "AccessDenied: Access Denied",
        "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied",
        "Unable to locate credentials",
    ];
    let m = matcher();
    let permutations = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let mut seen = Vec::new();
    for p in permutations {
        for swap in [false, true] {
            let ordered: Vec<&str> = p.iter().map(|&i| lines[i]).collect();
            let mut ev = runtime_task(Some("app"), Some("exec"), "FARGATE", &ordered);
            ev.task.containers.push(Container {
                name: "sidecar".into(),
                exit_code: Some(0),
                ..Container::default()
            });
            if swap {
                ev.task.containers.reverse();
            }
            let d = diagnose(&ev, &m, &Options::default());
            let v = &d.verdict;
            let mut rules: Vec<String> = d.findings.iter().map(|f| f.rule_id.clone()).collect();
            rules.sort();
            seen.push((v.culprit, v.category, v.rule_id.clone(), v.permissions.clone(), rules));
        }
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:#?}");
    // Each line is found (one rule or more each), and the stop reason too.
    assert!(seen[0].4.len() >= 4, "{seen:#?}");
}

fn startup_task(reason: &str, image: &str) -> Evidence {
    let mut ev = runtime_task(Some("app"), Some("exec"), "FARGATE", &[]);
    ev.task.stop_code = Some("TaskFailedToStart".into());
    ev.task.stopped_reason = Some(reason.into());
    ev.task.started_at = None;
    ev.task.containers[0].exit_code = None;
    ev.task.containers[0].image = Some(image.into());
    ev
}

#[test]
fn a_cross_account_ecr_403_points_at_the_repository_policy() {
    let reason = "CannotPullContainerError: inspect image has been retried 5 time(s): httpReaderSeeker: failed open: unexpected status code https://999999999999.dkr.ecr.us-east-1.amazonaws.com/v2/vendor/agent/manifests/sha256:4c1b: 403 Forbidden";
    let cross = diagnose(
        &startup_task(reason, "999999999999.dkr.ecr.us-east-1.amazonaws.com/vendor/agent:1"),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(cross.verdict.policy, Some(PolicyLayer::Resource), "{:?}", cross.verdict);
    let own = diagnose(
        &startup_task(reason, "123456789012.dkr.ecr.us-east-1.amazonaws.com/vendor/agent:1"),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(own.verdict.policy, Some(PolicyLayer::Identity));
    assert_eq!(own.verdict.culprit, Culprit::ExecutionRole);
}

#[test]
fn a_partial_secret_arn_is_flagged() {
    let reason = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db from secrets manager: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/exec/2c3d is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db because no identity-based policy allows the secretsmanager:GetSecretValue action";
    let d = diagnose(&startup_task(reason, "nginx"), &matcher(), &Options::default());
    assert_eq!(d.verdict.culprit, Culprit::ExecutionRole);
    assert!(d.findings[0].reason.contains("partial ARN"), "{}", d.findings[0].reason);
}

/// Ruby prints its own bare denial, then AWS's sentence on the next line: the verdict names the
/// action, resource and role from the sentence, wherever the log lines sit in a long log.
#[test]
fn a_bare_sdk_denial_takes_the_action_from_the_sentence_beside_it() {
    let filler: Vec<String> = (0..40).map(|i| format!("GET /health 200 {i}ms")).collect();
    let mut lines: Vec<&str> = filler.iter().map(String::as_str).collect();
    lines.insert(20, "Aws::S3::Errors::AccessDenied in ActiveStorage::PurgeJob@default");
    lines.insert(21, "User: arn:aws:sts::123456789012:assumed-role/sidekiq-ecs/466439b90c4e4cbb9048b1485491fece is not authorized to perform: s3:DeleteObject on resource: \"arn:aws:s3:::attachments/raqwg7iryspy8bdw2s9am95cbqj3\" because no identity-based policy allows the s3:DeleteObject action");
    let d = diagnose(
        &runtime_task(Some("sidekiq-ecs"), Some("exec"), "FARGATE", &lines),
        &matcher(),
        &Options::default(),
    );
    assert_eq!(d.verdict.culprit, Culprit::TaskRole);
    assert_eq!(d.verdict.permissions, vec!["s3:DeleteObject".to_string()]);
    assert_eq!(
        d.verdict.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/sidekiq-ecs")
    );
}

/// AWS's sentence in another container's log lends nothing, even at the same position.
#[test]
fn a_neighbour_in_another_container_lends_no_action() {
    let mut ev = runtime_task(
        Some("app-task"),
        Some("exec"),
        "FARGATE",
        &["Aws::S3::Errors::AccessDenied in ActiveStorage::PurgeJob@default"],
    );
    ev.logs.push(ContainerLogs {
        container: "sidecar".into(),
        lines: vec![LogLine {
            timestamp: None,
            message: "User: arn:aws:sts::123456789012:assumed-role/other/abc is not authorized to perform: sqs:SendMessage on resource: arn:aws:sqs:us-east-1:123456789012:q".into(),
        }],
    });
    let d = diagnose(&ev, &matcher(), &Options::default());
    assert_ruby_denial_names_no_action(&d);
}

/// A paste cut down to IAM's tail, with nothing saying when it happened: a call the ECS agent
/// makes to start a task is the execution role's, any other the application's.
#[test]
fn a_pasted_denial_tail_is_startup_only_for_the_agents_own_calls() {
    let m = matcher();
    for (action, want) in [
        ("ssm:GetParameters", Culprit::ExecutionRole),
        ("s3:PutObject", Culprit::TaskRole),
    ] {
        let paste = format!("...no identity-based policy allows the {action} action");
        let d = explain(&paste, &m, &Options::default());
        assert_eq!(d.verdict.culprit, want, "{:?}", d.verdict);
        assert_eq!(d.verdict.permissions, vec![action.to_string()]);
    }
}

/// A bare S3 denial beside a denial of another service's action borrows nothing from it.
#[test]
fn a_bare_denial_borrows_only_its_own_services_action() {
    let lines = [
        "Aws::S3::Errors::AccessDenied in Job",
        "WARN retrying: User: arn:aws:sts::123456789012:assumed-role/app/abc is not authorized to perform: sqs:ReceiveMessage on resource: arn:aws:sqs:us-east-1:123456789012:q",
    ];
    let d = diagnose(
        &runtime_task(Some("app"), Some("exec"), "FARGATE", &lines),
        &matcher(),
        &Options::default(),
    );
    assert_ruby_denial_names_no_action(&d);
}

/// The Ruby SDK's bare denial is a finding that names no action.
fn assert_ruby_denial_names_no_action(d: &Diagnosis) {
    let ruby = d
        .findings
        .iter()
        .find(|f| f.rule_id == "ruby-sdk-access-denied")
        .expect("the Ruby denial is a finding");
    assert!(ruby.permissions.is_empty(), "{:?}", ruby.permissions);
}
