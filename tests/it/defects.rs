//! Regression tests for the defects a review of the code found (issue 9), each named after what it
//! protects. Every one fails on the code before the fix. The hostile inputs are also in
//! `tests/corpus/`, which the fuzz suite replays through every parser and format.
//!
//! See: issue 9 ("A codebase the next engineer can change"), defects 1-10.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::bin::{ecsdoctor, event_sample, fixture, Out};
use crate::support::checks::first_forbidden;

/// A bundle directory in `dir` from JSON values (`logs` maps container names to messages).
fn bundle(dir: &Path, tasks: &Value, td: Option<&Value>, logs: &[(&str, &[&str])]) -> PathBuf {
    std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
    std::fs::write(dir.join("describe-tasks.json"), tasks.to_string()).expect("write");
    if let Some(td) = td {
        std::fs::write(dir.join("describe-task-definition.json"), td.to_string()).expect("write");
    }
    for (container, lines) in logs {
        let events: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, m)| json!({ "timestamp": 1_763_900_100_000i64 + i as i64, "message": m }))
            .collect();
        std::fs::write(
            dir.join("logs").join(format!("{container}.json")),
            json!({ "events": events }).to_string(),
        )
        .expect("write");
    }
    dir.to_path_buf()
}

/// A task that ran and exited 1 (runtime), with a task role.
fn runtime_task() -> (Value, Value) {
    let arn = "arn:aws:ecs:eu-west-1:123456789012:task/prod/0f3c1e2d4b5a69788796a5b4c3d2e1f0";
    let tasks = json!({ "tasks": [{
        "taskArn": arn,
        "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/orders:3",
        "lastStatus": "STOPPED", "launchType": "FARGATE",
        "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
        "createdAt": 1763900000.0, "startedAt": 1763900020.0, "stoppedAt": 1763902400.0,
        "containers": [{ "name": "app", "exitCode": 1, "lastStatus": "STOPPED" }]
    }], "failures": [] });
    let td = json!({ "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/orders:3",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "taskRoleArn": "arn:aws:iam::123456789012:role/orders-api-task-role",
        "containerDefinitions": [{ "name": "app" }]
    }});
    (tasks, td)
}

fn why_json(dir: &Path) -> (Out, Value) {
    let out = ecsdoctor().run(&["why", "--from", dir.to_str().expect("utf-8"), "--format", "json"]);
    let v = out.json();
    (out, v)
}

// Defect 1 ----------------------------------------------------------------------------------------

/// A `stoppedAt` whose offset holds a multi-byte character used to panic (exit 101).
#[test]
fn a_multibyte_timestamp_offset_is_bad_input_not_a_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/describe-tasks-multibyte-offset.json");
    let out = ecsdoctor().run(&["why", "--from", corpus.to_str().expect("utf-8")]);
    out.expect_code(2);
    let err = out.one_line_error();
    assert!(err.contains("describe-tasks-multibyte-offset.json"), "{err}");
    assert!(err.contains("ISO 8601"), "{err}");
}

// Defect 2 ----------------------------------------------------------------------------------------

/// An event whose `detail-type` carries an OSC title sequence must not put it on the terminal.
#[test]
fn an_event_with_escapes_in_its_detail_type_gets_a_terminal_safe_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("event.json");
    let event = json!({ "detail-type": "ECS \u{1b}]0;pwned\u{7} Task \u{1b}[31mRED", "detail": {} });
    std::fs::write(&p, event.to_string()).expect("write");
    let out = ecsdoctor().run(&["why", "--event", p.to_str().expect("utf-8"), "--offline"]);
    out.expect_code(2);
    let err = out.one_line_error();
    assert_eq!(first_forbidden(err), None, "escape in {err:?}");
    // The OSC sequence goes whole, its payload included; the visible words stay.
    assert!(
        !err.contains("pwned") && err.contains("Task") && err.contains("RED"),
        "{err}"
    );
    assert!(err.contains("expected an EventBridge"), "{err}");
}

/// A file name inside a bundle's `logs/` folder is quoted in the error without its escapes.
#[test]
fn a_log_file_name_with_escapes_gets_a_terminal_safe_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tasks, td) = runtime_task();
    let b = bundle(dir.path(), &tasks, Some(&td), &[]);
    std::fs::write(b.join("logs").join("app\u{1b}]0;pwned\u{7}.json"), "not json").expect("write");
    let out = ecsdoctor().run(&["why", "--from", b.to_str().expect("utf-8")]);
    out.expect_code(2);
    let err = out.one_line_error();
    assert_eq!(first_forbidden(err), None, "escape in {err:?}");
    assert!(err.contains("logs/app") && err.contains("is not valid JSON"), "{err}");
}

// Defect 3 ----------------------------------------------------------------------------------------

/// A resource from a log line must not become live Terraform interpolation or a template
/// directive, and IAM policy variables survive as text.
#[test]
fn terraform_never_interpolates_a_resource_from_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tasks, td) = runtime_task();
    let line = r#"botocore.exceptions.ClientError: An error occurred (AccessDeniedException) when calling the PutItem operation: User: arn:aws:sts::123456789012:assumed-role/orders-api-task-role/0f3c1e2d4b5a69788796a5b4c3d2e1f0 is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:eu-west-1:123456789012:table/orders-${path.root}-%{endif} because no identity-based policy allows the dynamodb:PutItem action"#;
    let b = bundle(dir.path(), &tasks, Some(&td), &[("app", &[line])]);
    let (out, v) = why_json(&b);
    out.expect_code(0);
    let tf = v["verdict"]["terraform"].as_str().expect("terraform");
    assert!(tf.contains("table/orders-$${path.root}-%%{endif}"), "{tf}");
    assert!(!tf.contains("-${path") && !tf.contains("-%{endif"), "{tf}");
    // The IAM JSON is not HCL: it keeps the resource exactly.
    let json = v["verdict"]["iam_policy"].to_string();
    assert!(json.contains("table/orders-${path.root}-%{endif}"), "{json}");
}

// Defect 4 ----------------------------------------------------------------------------------------

/// Every placeholder validation accepts is filled: `{secret}` and `{container}` in a user rule.
#[test]
fn a_fix_placeholder_that_validates_is_filled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("mine.toml");
    std::fs::write(
        &rules,
        r#"
[[rule]]
id = "team-secret-reminder"
title = "Our secrets live in Parameter Store"
look_in = ["stopped-reason"]
pattern = 'unable to retrieve secrets from ssm'
culprit = "by-phase"
category = "iam"
priority = 95
fix = "Check {secret} for {container}."
explain = "x"
docs = ["https://example.com/runbook"]
[rule.examples]
match = ["unable to retrieve secrets from ssm"]
no_match = ["unable to retrieve secret from asm"]
"#,
    )
    .expect("write");
    let f = fixture("exec-ssm-denied");
    let out = ecsdoctor().run(&[
        "why",
        "--from",
        f.to_str().expect("utf-8"),
        "--format",
        "json",
        "--rules",
        rules.to_str().expect("utf-8"),
    ]);
    out.expect_code(0);
    let fix = out.json()["verdict"]["fix"].as_str().unwrap_or_default().to_string();
    assert!(fix.contains("arn:aws:ssm:eu-west-1:123456789012:parameter/"), "{fix}");
    assert!(!fix.contains("<secret>") && !fix.contains("<container>"), "{fix}");
}

// Defect 5 ----------------------------------------------------------------------------------------

/// `scan --format markdown` prints a rule's own markdown as it is, like `why` does.
#[test]
fn scan_markdown_keeps_the_rules_own_markdown() {
    let f = fixture("exec-ssm-denied").join("describe-tasks.json");
    let out = ecsdoctor().run(&["scan", "--from", f.to_str().expect("utf-8"), "--format", "markdown"]);
    out.expect_code(0);
    let fix = out
        .stdout
        .lines()
        .find(|l| l.starts_with("- **Fix:**"))
        .expect("a fix line")
        .to_string();
    assert!(fix.contains('`'), "{fix}");
    assert!(!fix.contains('\u{FF40}') && !fix.contains("\\*"), "{fix}");
}

// Defect 6 ----------------------------------------------------------------------------------------

/// `rules show` names things as the JSON contract does, never as Rust's Debug would.
#[test]
fn rules_show_prints_the_names_of_the_json_contract() {
    let out = ecsdoctor().run(&["rules", "show", "secret-ssm-access-denied"]);
    out.expect_code(0);
    assert!(out.stdout.contains("phase: startup"), "{}", out.stdout);
    assert!(out.stdout.contains("culprit: execution-role"), "{}", out.stdout);
    for debug in ["Startup", "ExecutionRole", "Iam"] {
        assert!(!out.stdout.contains(&format!(": {debug}")), "{}", out.stdout);
    }
}

// Defects 7 and 8 ---------------------------------------------------------------------------------

/// `n` copies of the log-stream fixture's task, each with its own task id (so its own stream).
fn log_stream_fleet(dir: &Path, n: usize) -> PathBuf {
    let base = fixture("issue-9-log-stream-per-task");
    let text = std::fs::read_to_string(base.join("describe-tasks.json")).expect("read");
    let id = "3caf853ecb00491db67740079d4a02a7";
    let tasks: Vec<Value> = (0..n)
        .map(|k| {
            let mine = format!("{:032x}", 0x5eed_0000 + k);
            serde_json::from_str::<Value>(&text.replace(id, &mine)).expect("json")["tasks"][0].clone()
        })
        .collect();
    let p = dir.join("fleet.json");
    std::fs::write(&p, json!({ "tasks": tasks, "failures": [] }).to_string()).expect("write");
    p
}

/// 100 tasks denied `logs:CreateLogStream`, each on its own stream, are one cause, shown once
/// with the common pattern of their resources.
#[test]
fn scan_groups_one_cause_across_task_specific_resources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = log_stream_fleet(dir.path(), 100);
    let out = ecsdoctor().run(&["scan", "--from", fleet.to_str().expect("utf-8"), "--format", "json"]);
    out.expect_code(0);
    let r = out.json();
    let groups = r["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{}", out.stdout);
    assert_eq!(groups[0]["count"], 100);
    assert_eq!(
        groups[0]["resource"].as_str(),
        Some("arn:aws:logs:eu-west-1:123456789012:log-group:cruddur:log-stream:backend-flask/backend-flask/*")
    );
}

/// The fix of a denial on one task's log stream grants the group's streams (the next task writes
/// another stream), while the evidence keeps the exact stream.
#[test]
fn the_fix_is_scoped_to_outlive_the_task() {
    let (out, v) = why_json(&fixture("issue-9-log-stream-per-task"));
    out.expect_code(0);
    let verdict = &v["verdict"];
    let exact = "arn:aws:logs:eu-west-1:123456789012:log-group:cruddur:log-stream:backend-flask/backend-flask/3caf853ecb00491db67740079d4a02a7";
    assert_eq!(verdict["resource"].as_str(), Some(exact));
    assert_eq!(
        verdict["resource_scope"].as_str(),
        Some("arn:aws:logs:eu-west-1:123456789012:log-group:cruddur:log-stream:*")
    );
    assert!(verdict["scope_note"]
        .as_str()
        .is_some_and(|n| n.contains("each task writes its own stream")));
    assert_eq!(
        verdict["iam_policy"]["Statement"][0]["Resource"].as_str(),
        Some("arn:aws:logs:eu-west-1:123456789012:log-group:cruddur:log-stream:*")
    );
    assert!(v["findings"][0]["resource"].as_str() == Some(exact));
}

/// On every fixture: no policy the fix proposes names the task's own id, and where a scope was
/// chosen the policy grants exactly the scope.
#[test]
fn no_fixtures_fix_is_scoped_to_its_own_task() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if !path.join("describe-tasks.json").is_file() {
            continue;
        }
        let (_, v) = why_json(&path);
        let task_id = v["task_arn"]
            .as_str()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or("")
            .to_string();
        let policy = v["verdict"]["iam_policy"].to_string();
        if v["verdict"]["iam_policy"].is_null() {
            continue;
        }
        checked += 1;
        assert!(
            task_id.is_empty() || !policy.contains(&task_id),
            "{}: the fix names the task's own id: {policy}",
            path.display()
        );
        if let Some(scope) = v["verdict"]["resource_scope"].as_str() {
            assert!(
                policy.contains(scope),
                "{}: {policy} does not grant {scope}",
                path.display()
            );
        }
    }
    assert!(checked >= 10, "only {checked} fixtures have a policy");
}

// Defect 9 ----------------------------------------------------------------------------------------

/// The headline names the operation the message names, never a pattern description.
#[test]
fn headlines_name_the_operation_found() {
    let (out, v) = why_json(&fixture("runtime-task-role-s3"));
    out.expect_code(0);
    let summary = v["verdict"]["summary"].as_str().expect("summary");
    assert!(summary.contains("(PutObject)"), "{summary}");
    assert!(
        !summary.contains("X operation") && !summary.contains("..."),
        "{summary}"
    );
}

// Defect 10 is a mocked-SDK test beside the code (`source::aws::tests`): moto cannot throttle.

/// An EventBridge sample still diagnoses with its own verdict when AWS cannot be reached: the
/// task definition and logs are notes, not exit 3.
#[test]
fn an_event_whose_task_definition_cannot_be_read_degrades_to_a_note() {
    let p = event_sample("ssm-secrets-denied.json");
    let out = ecsdoctor().endpoint(&crate::support::bin::dead_endpoint()).run(&[
        "why",
        "--event",
        p.to_str().expect("utf-8"),
        "--format",
        "json",
        "--timeout",
        "5",
    ]);
    out.expect_code(0);
    let v = out.json();
    assert_eq!(v["verdict"]["culprit"], "execution-role", "{}", out.context());
    let notes = v["notes"].to_string();
    assert!(notes.contains("could not read task definition"), "{notes}");
}
