//! `ecsdoctor why --event`: EventBridge "ECS Task State Change" events, with the shapes the Amazon
//! ECS Developer Guide documents (tests/fixtures-events/README.md says where each came from).
//! Offline tests check the verdict of each sample and the errors for events that are not task
//! events or not JSON; one live test completes an event against a private moto on 127.0.0.1.
//!
//! Every process runs with the safety environment (dummy credentials, no config files, no EC2
//! metadata probing, loopback endpoints only).

use crate::support::bin::{dead_endpoint, ecsdoctor, event_sample, Out};
use crate::support::moto;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn sample(name: &str) -> PathBuf {
    event_sample(name)
}

/// Runs the binary with the safety environment; `AWS_ENDPOINT_URL` points at `endpoint` (always
/// loopback: a dead port for offline runs, so any AWS call would fail), stdin is `input`.
fn run_with(endpoint: &str, args: &[&str], input: Option<&[u8]>, trace: Option<&Path>) -> Out {
    let mut r = ecsdoctor().endpoint(endpoint).env("NO_COLOR", Some("1"));
    if let Some(dir) = trace {
        r = r.traced(dir);
    }
    match input {
        Some(bytes) => r.stdin(bytes).run(args),
        None => r.run(args),
    }
}

/// An offline run: nothing listens on the endpoint.
fn offline(args: &[&str]) -> Out {
    run_with(&dead_endpoint(), args, None, None)
}

/// `why --event SAMPLE --offline --format json`.
fn event_json(name: &str) -> Out {
    let p = sample(name);
    let p = p.to_str().expect("utf-8 path");
    offline(&["why", "--event", p, "--offline", "--format", "json"])
}

fn verdict(out: &Out) -> (String, String, Option<String>) {
    let v = &out.json()["verdict"];
    (
        v["culprit"].as_str().unwrap_or_default().to_string(),
        v["category"].as_str().unwrap_or_default().to_string(),
        v["rule_id"].as_str().map(str::to_string),
    )
}

#[test]
fn event_spot_interruption_both_documented_stop_codes() {
    for name in ["spot-interruption.json", "spot-interruption-termination-notice.json"] {
        let out = event_json(name);
        assert_eq!(out.code, 0, "{}", out.context());
        assert_eq!(
            verdict(&out),
            ("not-iam".into(), "capacity".into(), Some("spot-interruption".into())),
            "{}",
            out.context()
        );
        let json = out.json();
        assert_eq!(
            json["task_arn"].as_str(),
            Some("arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6fEXAMPLE"),
            "the task comes from the event's detail\n{}",
            out.context()
        );
        assert!(json["verdict"]["permissions"].as_array().is_some_and(|p| p.is_empty()));
        // The documented snippet is the termination notice, sent while the task still runs.
        assert!(
            out.stdout.contains("not STOPPED"),
            "a RUNNING task should be noted\n{}",
            out.context()
        );
    }
}

#[test]
fn event_essential_container_exited_is_an_app_exit() {
    let out = event_json("essential-container-exited.json");
    assert_eq!(out.code, 0, "{}", out.context());
    // The verdict names what the exit code means, not only that a container exited.
    assert_eq!(
        verdict(&out),
        (
            "not-iam".into(),
            "app".into(),
            Some("exit-code-application-error".into())
        ),
        "{}",
        out.context()
    );
    let json = out.json();
    assert_eq!(json["phase"].as_str(), Some("runtime"), "{}", out.context());
    assert_eq!(json["stop_code"].as_str(), Some("EssentialContainerExited"));
    assert_eq!(json["containers"][0]["exit_code"].as_i64(), Some(1));
    assert!(
        out.stdout.contains("--offline"),
        "the output should say the task definition and logs were not fetched\n{}",
        out.context()
    );
}

#[test]
fn event_essential_container_oom_killed() {
    let out = event_json("essential-container-oom.json");
    assert_eq!(out.code, 0, "{}", out.context());
    assert_eq!(
        verdict(&out),
        ("not-iam".into(), "app".into(), Some("container-oom-killed".into())),
        "{}",
        out.context()
    );
}

#[test]
fn event_ssm_denied_blames_the_execution_role() {
    let out = event_json("ssm-secrets-denied.json");
    assert_eq!(out.code, 0, "{}", out.context());
    let json = out.json();
    let v = &json["verdict"];
    assert_eq!(v["culprit"].as_str(), Some("execution-role"), "{}", out.context());
    assert_eq!(v["category"].as_str(), Some("iam"));
    assert_eq!(v["rule_id"].as_str(), Some("secret-ssm-access-denied"));
    assert_eq!(
        v["role_arn"].as_str(),
        Some("arn:aws:iam::111122223333:role/ecsTaskExecutionRole"),
        "the role comes from the denied principal in the message\n{}",
        out.context()
    );
    assert!(v["permissions"]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x == "ssm:GetParameters")));
    assert_eq!(json["phase"].as_str(), Some("startup"), "{}", out.context());
}

#[test]
fn event_running_task_is_inconclusive_not_an_error() {
    let out = event_json("task-state-change-running.json");
    assert_eq!(out.code, 1, "{}", out.context());
    let json = out.json();
    assert_eq!(json["last_status"].as_str(), Some("RUNNING"));
    assert_eq!(
        json["task_arn"].as_str(),
        Some("arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad")
    );
}

#[test]
fn event_from_stdin_in_markdown() {
    let bytes = std::fs::read(sample("ssm-secrets-denied.json")).expect("read sample");
    let out = run_with(
        &dead_endpoint(),
        &["why", "--event", "-", "--offline", "--format", "markdown"],
        Some(&bytes),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.context());
    assert!(out.stdout.starts_with("**ecsdoctor"), "{}", out.context());
    assert!(out.stdout.contains("ssm:GetParameters"), "{}", out.context());
    assert!(!out.stdout.contains('\u{1b}'), "no ANSI in markdown\n{}", out.context());
}

#[test]
fn event_not_a_task_event_exits_2_naming_the_file() {
    let p = sample("container-instance-state-change.json");
    let ps = p.to_str().expect("utf-8 path");
    let out = offline(&["why", "--event", ps, "--offline", "--format", "json"]);
    assert_eq!(out.code, 2, "{}", out.context());
    let err = out.one_line_error();
    assert!(err.contains(ps), "the error should name the file\n{}", out.context());
    assert!(err.contains("ECS Container Instance State Change"), "{}", out.context());
    assert!(out.stdout.is_empty(), "{}", out.context());
}

#[test]
fn event_bad_json_or_missing_file_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(PathBuf, &[u8])> = vec![
        (
            dir.path().join("truncated.json"),
            br#"{"detail-type": "ECS Task State Change", "detail": {"#,
        ),
        (dir.path().join("array.json"), b"[1, 2, 3]"),
        (
            dir.path().join("no-detail.json"),
            br#"{"detail-type": "ECS Task State Change"}"#,
        ),
        (dir.path().join("binary.json"), &[0xff, 0xfe, 0x00, 0x01]),
    ];
    for (path, bytes) in &cases {
        std::fs::write(path, bytes).expect("write case");
        let ps = path.to_str().expect("utf-8 path");
        for extra in [&["--offline"][..], &[][..]] {
            let mut args = vec!["why", "--event", ps, "--format", "json"];
            args.extend_from_slice(extra);
            let out = offline(&args);
            assert_eq!(out.code, 2, "{}", out.context());
            let err = out.one_line_error();
            assert!(err.contains(ps), "the error should name the file\n{}", out.context());
        }
    }
    let missing = dir.path().join("missing.json");
    let ms = missing.to_str().expect("utf-8 path");
    let out = offline(&["why", "--event", ms, "--offline"]);
    assert_eq!(out.code, 2, "{}", out.context());
    assert!(out.one_line_error().contains(ms), "{}", out.context());
}

/// Live: the event carries the task, so `why --event` does not ask ECS for it (it may be gone
/// already); it reads the task definition (roles) and the logs, and finds the task role's denial.
#[test]
fn event_live_completes_with_task_definition_roles() {
    let moto = moto::Moto::start();
    let seed = moto.seed("runtime-s3-denied");
    let str_of = |k: &str| {
        seed[k]
            .as_str()
            .unwrap_or_else(|| panic!("seed has no {k}: {seed}"))
            .to_string()
    };
    let (task_arn, cluster) = (str_of("task_arn"), str_of("cluster"));

    // The event, built from moto's DescribeTasks answer the way EventBridge wraps the task.
    let script = r#"
import boto3, json, sys
ep, cluster, arn = sys.argv[1:4]
ecs = boto3.client("ecs", endpoint_url=ep, region_name="us-east-1")
task = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
event = {"version": "0", "id": "3317b2af-7005-947d-b652-f55e762e571a", "detail-type": "ECS Task State Change",
         "source": "aws.ecs", "account": "123456789012", "time": "2026-11-23T09:16:45Z", "region": "us-east-1",
         "resources": [arn], "detail": task}
json.dump(event, sys.stdout, default=str)
"#;
    let mut py = Command::new(moto::moto_python());
    py.args(["-c", script, &moto.endpoint, &cluster, &task_arn]);
    moto.apply_env(&mut py);
    let o = py.output().expect("run the moto venv's python");
    assert!(
        o.status.success(),
        "building the event failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, &o.stdout).expect("write event");
    let event: Value = serde_json::from_slice(&o.stdout).expect("event is JSON");
    assert_eq!(event["detail"]["taskArn"].as_str(), Some(task_arn.as_str()));

    let cache = dir.path().join("cache");
    let out = run_with(
        &moto.endpoint,
        &[
            "why",
            "--event",
            event_path.to_str().expect("utf-8 path"),
            "--endpoint-url",
            &moto.endpoint,
            "--cache-dir",
            cache.to_str().expect("utf-8 path"),
            "--timeout",
            "30",
            "--format",
            "json",
        ],
        None,
        Some(dir.path()),
    );
    assert_eq!(out.code, 0, "{}\n--- moto log ---\n{}", out.context(), moto.log());
    let json = out.json();
    assert_eq!(json["task_arn"].as_str(), Some(task_arn.as_str()));
    assert_eq!(
        json["roles"]["execution_role_arn"].as_str(),
        Some(str_of("execution_role_arn").as_str()),
        "{}",
        out.context()
    );
    assert_eq!(
        json["roles"]["task_role_arn"].as_str(),
        Some(str_of("task_role_arn").as_str()),
        "{}",
        out.context()
    );
    let v = &json["verdict"];
    assert_eq!(v["culprit"].as_str(), Some("task-role"), "{}", out.context());
    assert_eq!(v["role_arn"].as_str(), Some(str_of("task_role_arn").as_str()));
    assert!(v["permissions"]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x == "s3:PutObject")));

    let ops = out.ops();
    assert!(
        !ops.iter().any(|o| o == "DescribeTasks"),
        "the event holds the task: no DescribeTasks\n{ops:?}"
    );
    for needed in ["DescribeTaskDefinition", "GetLogEvents"] {
        assert!(ops.iter().any(|o| o == needed), "no {needed} in {ops:?}");
    }
    drop(moto);
}

/// Every EventBridge sample's verdict, offline, in the three formats: a reviewed snapshot.
#[test]
fn event_verdicts_in_every_format_are_reviewed() {
    for name in [
        "essential-container-exited.json",
        "essential-container-oom.json",
        "spot-interruption.json",
        "ssm-secrets-denied.json",
        "task-state-change-running.json",
    ] {
        let p = sample(name);
        let p = p.to_str().expect("utf-8 path");
        for format in ["text", "markdown", "json"] {
            let out = offline(&["why", "--event", p, "--offline", "--format", format]);
            assert!(out.stderr.is_empty(), "{}", out.context());
            insta::assert_snapshot!(format!("event-{name}-{format}"), out.stdout);
        }
    }
}
