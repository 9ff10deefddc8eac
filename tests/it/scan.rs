//! `ecsdoctor scan`: many stopped tasks grouped by cause.
//!
//! Live: one private moto on 127.0.0.1 seeded with the `many-tasks` fleet (500 stopped tasks, 5
//! task definition revisions, 5 causes; tests/moto/seed.py), scanned several ways. The API trace
//! (ECSDOCTOR_API_TRACE) proves the cost follows the causes, not the tasks: DescribeTasks in
//! batches of 100, each revision described once, logs read for a few representatives only.
//! Offline: `scan --from` on describe-tasks answers built from the fixtures, and bad input.
//!
//! Every process runs with the safety environment (dummy credentials, no config files, no EC2
//! metadata probing, loopback endpoints only). Needs the moto venv (scripts/test.sh).

use crate::support::bin::{dead_endpoint, ecsdoctor, fixture, unique, Out, READ_ONLY_OPS};
use crate::support::moto;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Runs the binary with the safety environment, `AWS_ENDPOINT_URL` at `endpoint` (loopback
/// only), its own HOME and cache, and an API trace.
fn run(endpoint: &str, scratch: &Path, args: &[&str]) -> Out {
    ecsdoctor()
        .endpoint(endpoint)
        .home(scratch)
        .traced(scratch)
        .env("NO_COLOR", Some("1"))
        .run(args)
}

/// An offline run: nothing listens on the endpoint, so any AWS call would fail (and be traced).
fn offline(scratch: &Path, args: &[&str]) -> Out {
    let out = run(&dead_endpoint(), scratch, args);
    assert!(out.trace.is_empty(), "an offline scan called AWS\n{}", out.context());
    out
}

fn groups(out: &Out) -> Vec<Value> {
    out.json()["groups"].as_array().cloned().unwrap_or_default()
}

/// (count, culprit, category, rule_id) of each group, in output order.
fn summary(out: &Out) -> Vec<(u64, String, String, String)> {
    groups(out)
        .iter()
        .map(|g| {
            (
                g["count"].as_u64().unwrap_or(0),
                g["culprit"].as_str().unwrap_or("").to_string(),
                g["category"].as_str().unwrap_or("").to_string(),
                g["rule_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn group_by_rule<'a>(gs: &'a [Value], rule: &str) -> &'a Value {
    gs.iter()
        .find(|g| g["rule_id"].as_str() == Some(rule))
        .unwrap_or_else(|| panic!("no group for rule {rule} in {gs:#?}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// --- live ----------------------------------------------------------------------------------------

/// The fleet, scanned whole and by service, family and limit, with a cold and a warm cache.
#[test]
fn scan_many_tasks_live() {
    let moto = moto::Moto::start();
    let seed = moto.seed("many-tasks");
    assert_eq!(seed["tasks"].as_u64(), Some(500), "{seed}");
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path();
    let cache = dir.join("cache");
    let cache_s = cache.to_str().expect("utf-8 path");
    let ep = moto.endpoint.clone();
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "--cluster",
            "ecsdoctor-fleet",
            "--endpoint-url",
            &ep,
            "--cache-dir",
            cache_s,
        ];
        args.extend_from_slice(extra);
        run(&ep, dir, &args)
    };

    // 1. Everything, cold cache.
    let all = scan(&["--format", "json"]);
    all.expect_code(0);
    let ctx = all.context();
    for op in &all.ops() {
        assert!(READ_ONLY_OPS.contains(&op.as_str()), "called {op}\n{ctx}");
    }
    let report = all.json();
    assert_eq!(report["version"], 1, "{ctx}");
    assert_eq!(report["cluster"].as_str(), Some("ecsdoctor-fleet"));
    assert_eq!(report["tasks"].as_u64(), Some(500), "{ctx}");
    assert_eq!(report["task_definitions"].as_u64(), Some(5), "{ctx}");
    assert_eq!(
        summary(&all),
        vec![
            (
                120,
                "execution-role".into(),
                "iam".into(),
                "secret-ssm-access-denied".into()
            ),
            (
                120,
                "task-role".into(),
                "iam".into(),
                "botocore-client-error-access-denied".into()
            ),
            (
                100,
                "not-iam".into(),
                "network".into(),
                "image-pull-network-unreachable".into()
            ),
            (
                80,
                "not-iam".into(),
                "network".into(),
                "database-connection-refused".into()
            ),
            (80, "not-iam".into(), "app".into(), "elb-health-check-failed".into()),
        ],
        "{ctx}"
    );
    let gs = groups(&all);
    let causes = &seed["causes"];
    let ssm = group_by_rule(&gs, "secret-ssm-access-denied");
    assert_eq!(ssm["role_arn"].as_str(), seed["execution_role_arn"].as_str(), "{ctx}");
    assert!(strings(&ssm["permissions"]).contains(&"ssm:GetParameters".to_string()));
    assert_eq!(
        ssm["resource"].as_str(),
        Some("arn:aws:ssm:us-east-1:123456789012:parameter/prod/db-password")
    );
    let s3 = group_by_rule(&gs, "botocore-client-error-access-denied");
    assert_eq!(s3["role_arn"].as_str(), seed["task_role_arn"].as_str(), "{ctx}");
    assert_eq!(strings(&s3["permissions"]), vec!["s3:PutObject".to_string()]);
    assert_eq!(s3["logs_read"].as_u64(), Some(3), "{ctx}");
    assert_eq!(s3["inferred"].as_u64(), Some(117), "{ctx}");
    assert!(s3["fix"].as_str().is_some_and(|f| f.contains("s3:PutObject")), "{ctx}");
    // Verification runs once per failure signature, not per task: each role is read once, and
    // only the role groups carry it (moto's fleet has no IAM roles, so the check says so).
    for g in [&ssm, &s3] {
        let status = g["verification"]["status"].as_str();
        assert!(status.is_some(), "a role's group is checked\n{ctx}");
    }
    assert!(
        ssm["verification"]["unreadable"].to_string().contains("iam:GetRole"),
        "{ctx}"
    );
    assert!(
        group_by_rule(&gs, "elb-health-check-failed")
            .get("verification")
            .is_none(),
        "{ctx}"
    );
    assert!(all.calls("GetRole") <= 2, "GetRole once per role, not per task\n{ctx}");
    // Every task lands in the group of its cause, and JSON lists every ARN.
    for (cause, rule) in [
        ("ssm-denied", "secret-ssm-access-denied"),
        ("elb-health-check", "elb-health-check-failed"),
        ("s3-denied", "botocore-client-error-access-denied"),
        ("ecr-timeout", "image-pull-network-unreachable"),
        ("db-refused", "database-connection-refused"),
    ] {
        let mut want = strings(&causes[cause]["task_arns"]);
        let mut got = strings(&group_by_rule(&gs, rule)["task_arns"]);
        want.sort();
        got.sort();
        assert_eq!(got, want, "tasks of cause {cause} vs group {rule}\n{ctx}");
    }
    // The cost: ListTasks pages, ceil(500/100) DescribeTasks, one DescribeTaskDefinition per
    // revision, and the logs of 3 representatives of each of the 2 signatures that needed them.
    assert!((1..=5).contains(&all.calls("ListTasks")), "{ctx}");
    assert_eq!(all.calls("DescribeTasks"), 5, "{ctx}");
    assert_eq!(all.calls("DescribeTaskDefinition"), 5, "{ctx}");
    assert_eq!(all.calls("GetLogEvents"), 6, "{ctx}");
    assert_eq!(all.calls("FilterLogEvents"), 6, "{ctx}");
    assert_eq!(report["logs_read"].as_u64(), Some(6), "{ctx}");
    assert_eq!(report["inferred"].as_u64(), Some(194), "{ctx}");
    let api = &report["api_calls"];
    for (op, n) in [
        ("ListTasks", all.calls("ListTasks")),
        ("DescribeTasks", 5),
        ("DescribeTaskDefinition", 5),
        ("GetLogEvents", 6),
        ("FilterLogEvents", 6),
    ] {
        assert_eq!(
            api[op].as_u64(),
            Some(n as u64),
            "api_calls.{op} should match the trace\n{ctx}"
        );
    }

    // 2. Warm cache: no DescribeTaskDefinition, same groups.
    let warm = scan(&["--format", "json"]);
    warm.expect_code(0);
    assert_eq!(warm.calls("DescribeTaskDefinition"), 0, "{}", warm.context());
    assert_eq!(summary(&warm), summary(&all), "{}", warm.context());

    // 3. One family: its tasks only (ListTasks filters by family).
    let worker = scan(&["--family", "worker", "--format", "json"]);
    worker.expect_code(0);
    assert_eq!(
        summary(&worker),
        vec![(
            120,
            "task-role".into(),
            "iam".into(),
            "botocore-client-error-access-denied".into()
        )],
        "{}",
        worker.context()
    );
    assert_eq!(worker.calls("DescribeTasks"), 2, "{}", worker.context());
    assert_eq!(worker.calls("GetLogEvents"), 3, "{}", worker.context());

    // 4. One service: moto's ListTasks ignores serviceName, so the task group decides.
    let web = scan(&["--service", "web", "--format", "json"]);
    web.expect_code(0);
    assert_eq!(
        summary(&web),
        vec![
            (
                120,
                "execution-role".into(),
                "iam".into(),
                "secret-ssm-access-denied".into()
            ),
            (80, "not-iam".into(), "app".into(), "elb-health-check-failed".into()),
        ],
        "{}",
        web.context()
    );
    assert_eq!(web.calls("DescribeTaskDefinition"), 0, "cached\n{}", web.context());
    assert_eq!(web.calls("GetLogEvents"), 0, "{}", web.context());
    // The service's own events were read too (moto keeps none, so they add no group).
    assert_eq!(web.calls("DescribeServices"), 1, "{}", web.context());

    // 5. --limit, --log-samples.
    let limited = scan(&["--limit", "150", "--log-samples", "1", "--no-cache", "--format", "json"]);
    limited.expect_code(0);
    assert_eq!(limited.json()["tasks"].as_u64(), Some(150), "{}", limited.context());
    assert_eq!(limited.calls("DescribeTasks"), 2, "{}", limited.context());
    let one = scan(&["--log-samples", "1", "--format", "json"]);
    one.expect_code(0);
    assert_eq!(one.calls("GetLogEvents"), 2, "{}", one.context());
    assert_eq!(summary(&one), summary(&all), "{}", one.context());

    // 6. Text and markdown.
    let text = scan(&[]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("500 stopped tasks in cluster ecsdoctor-fleet, 5 causes"),
        "{}",
        text.context()
    );
    assert!(text.stdout.contains("logs read for 6 tasks"), "{}", text.context());
    assert!(text.stdout.contains("and 115 more"), "{}", text.context());
    assert!(!text.stdout.contains('\u{1b}'), "{}", text.context());
    let md = scan(&["--format", "markdown"]);
    md.expect_code(0);
    assert!(md.stdout.starts_with("**ecsdoctor scan"), "{}", md.context());
    assert!(md.stdout.contains("IAM: the task execution role"), "{}", md.context());
    assert!(md.stdout.contains("DescribeTasks 5"), "{}", md.context());

    // 7. Nothing stopped (a family with no tasks): exit 1; a missing cluster: exit 3.
    let none = scan(&["--family", "nosuch", "--format", "json"]);
    none.expect_code(1);
    assert_eq!(none.json()["tasks"].as_u64(), Some(0), "{}", none.context());
    assert_eq!(none.calls("DescribeTasks"), 0, "{}", none.context());
    let missing = run(
        &ep,
        dir,
        &["scan", "--cluster", "nosuch", "--endpoint-url", &ep, "--format", "json"],
    );
    missing.expect_code(3);
    assert!(missing.one_line_error().contains("nosuch"), "{}", missing.context());
}

// --- offline -------------------------------------------------------------------------------------

/// A describe-tasks answer of `n` copies of each fixture's task, with fresh ARNs and stoppedAt
/// one minute apart (2025-11-23T12:00:00Z onwards).
fn fleet_file(dir: &Path, spec: &[(&str, usize)]) -> PathBuf {
    let mut tasks = Vec::new();
    let mut k = 0usize;
    for (name, n) in spec {
        let text = std::fs::read_to_string(fixture(name).join("describe-tasks.json")).expect("read fixture");
        let v: Value = serde_json::from_str(&text).expect("fixture is JSON");
        let task = v["tasks"][0].clone();
        for _ in 0..*n {
            let mut t = task.clone();
            let arn = format!("arn:aws:ecs:eu-west-1:123456789012:task/prod/{k:032x}");
            t["taskArn"] = json!(arn);
            t["stoppedAt"] = json!(1_763_899_200 + 60 * k as i64);
            if let Some(cs) = t["containers"].as_array_mut() {
                for c in cs {
                    c["taskArn"] = json!(arn);
                }
            }
            tasks.push(t);
            k += 1;
        }
    }
    let p = dir.join(format!("fleet-{}.json", unique()));
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&json!({"tasks": tasks, "failures": []})).expect("json"),
    )
    .expect("write fleet");
    p
}

const FLEET: &[(&str, usize)] = &[
    ("exec-ssm-denied", 7),
    ("ecr-pull-timeout", 5),
    ("oom-killed", 3),
    ("runtime-crash", 2),
    ("no-match", 1),
];

#[test]
fn scan_from_file_groups_offline() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = fleet_file(scratch.path(), FLEET);
    let fs = file.to_str().expect("utf-8 path");
    let out = offline(scratch.path(), &["scan", "--from", fs, "--format", "json"]);
    out.expect_code(0);
    let ctx = out.context();
    let r = out.json();
    assert_eq!(r["tasks"].as_u64(), Some(18), "{ctx}");
    assert_eq!(r["logs_read"].as_u64(), Some(0));
    assert_eq!(r["cluster"].as_str(), Some("prod"), "the tasks' common cluster\n{ctx}");
    assert_eq!(
        summary(&out),
        vec![
            (
                7,
                "execution-role".into(),
                "iam".into(),
                "secret-ssm-access-denied".into()
            ),
            (
                5,
                "not-iam".into(),
                "network".into(),
                "image-pull-network-unreachable".into()
            ),
            (3, "not-iam".into(), "app".into(), "container-oom-killed".into()),
            (2, "not-iam".into(), "app".into(), "exit-code-application-error".into()),
            (1, "unknown".into(), "unknown".into(), "".into()),
        ],
        "{ctx}"
    );
    let gs = groups(&out);
    let ssm = &gs[0];
    // Without the task definition the role comes from the denied principal in the message.
    assert_eq!(
        ssm["role_arn"].as_str(),
        Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole"),
        "{ctx}"
    );
    assert_eq!(
        ssm["first_seen"].as_str(),
        Some("2025-11-23T12:00:00.000000+00:00"),
        "{ctx}"
    );
    assert_eq!(
        ssm["last_seen"].as_str(),
        Some("2025-11-23T12:06:00.000000+00:00"),
        "{ctx}"
    );
    // Newest first, every ARN in JSON.
    let arns = strings(&ssm["task_arns"]);
    assert_eq!(arns.len(), 7);
    assert_eq!(
        arns[0],
        format!("arn:aws:ecs:eu-west-1:123456789012:task/prod/{:032x}", 6)
    );
    for key in [
        "culprit",
        "category",
        "rule_id",
        "title",
        "permissions",
        "resource",
        "policy",
        "count",
        "first_seen",
        "last_seen",
        "task_arns",
        "fix",
        "summary",
    ] {
        assert!(ssm.get(key).is_some(), "group has no `{key}`\n{ctx}");
    }
    for key in [
        "ListTasks",
        "DescribeTasks",
        "DescribeTaskDefinition",
        "GetLogEvents",
        "FilterLogEvents",
    ] {
        assert_eq!(r["api_calls"][key].as_u64(), Some(0), "{ctx}");
    }
    let notes = strings(&r["notes"]).join("\n");
    assert!(notes.contains("offline"), "{ctx}");
    assert!(
        notes.contains("logs would explain"),
        "the generic exits are pointed out\n{ctx}"
    );

    // Text: at most 5 examples per group; markdown: a chat headline.
    let text = offline(scratch.path(), &["scan", "--from", fs]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("18 stopped tasks in cluster prod, 5 causes"),
        "{}",
        text.context()
    );
    assert!(text.stdout.contains("... and 2 more"), "{}", text.context());
    let md = offline(scratch.path(), &["scan", "--from", fs, "--format", "markdown"]);
    md.expect_code(0);
    assert!(
        md.stdout.starts_with("**ecsdoctor scan — 18 stopped tasks"),
        "{}",
        md.context()
    );

    // --limit and --since.
    let limited = offline(
        scratch.path(),
        &["scan", "--from", fs, "--limit", "3", "--format", "json"],
    );
    limited.expect_code(0);
    assert_eq!(limited.json()["tasks"].as_u64(), Some(3));
    let all = offline(
        scratch.path(),
        &["scan", "--from", fs, "--since", "100000d", "--format", "json"],
    );
    assert_eq!(all.json()["tasks"].as_u64(), Some(18), "{}", all.context());
    let recent = offline(
        scratch.path(),
        &["scan", "--from", fs, "--since", "30m", "--format", "json"],
    );
    recent.expect_code(1);
    assert_eq!(recent.json()["tasks"].as_u64(), Some(0), "{}", recent.context());
    assert!(
        strings(&recent.json()["notes"]).join(" ").contains("--since"),
        "{}",
        recent.context()
    );
}

#[test]
fn scan_from_bundle_dir_uses_its_task_definition() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = fixture("runtime-no-task-role");
    let out = offline(
        scratch.path(),
        &["scan", "--from", dir.to_str().expect("utf-8"), "--format", "json"],
    );
    let r = out.json();
    assert_eq!(r["tasks"].as_u64(), Some(1), "{}", out.context());
    assert_eq!(r["task_definitions"].as_u64(), Some(1));
    let ssm_dir = fixture("exec-ssm-denied");
    let out = offline(
        scratch.path(),
        &["scan", "--from", ssm_dir.to_str().expect("utf-8"), "--format", "json"],
    );
    out.expect_code(0);
    let g = &groups(&out)[0];
    let td: Value =
        serde_json::from_str(&std::fs::read_to_string(ssm_dir.join("describe-task-definition.json")).expect("read td"))
            .expect("td is JSON");
    assert_eq!(
        g["role_arn"].as_str(),
        td["taskDefinition"]["executionRoleArn"].as_str(),
        "{}",
        out.context()
    );
}

#[test]
fn scan_bad_input_exits_2_with_one_line() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path();
    let file = fleet_file(dir, &[("no-match", 1)]);
    let fs = file.to_str().expect("utf-8 path");
    for since in ["abc", "1y", "0m", "-5m", "1.5h"] {
        let flag = format!("--since={since}");
        let out = offline(dir, &["scan", "--from", fs, &flag]);
        out.expect_code(2);
        let err = out.one_line_error();
        assert!(err.contains("--since") && err.contains(since), "{}", out.context());
        assert!(out.stdout.is_empty(), "{}", out.context());
    }
    // Bad --since is refused before any AWS call.
    let out = offline(dir, &["scan", "--cluster", "c", "--since", "soon"]);
    out.expect_code(2);
    out.one_line_error();
    let out = offline(dir, &["scan", "--from", fs, "--limit", "0"]);
    out.expect_code(2);
    out.one_line_error();

    let cases: &[(&str, &str)] = &[
        ("truncated.json", r#"{"tasks": ["#),
        ("no-tasks.json", r#"{"taskDefinition": {}}"#),
        ("array.json", "[1, 2]"),
        ("wrong-shape.json", r#"{"tasks": [{"taskArn": 7}]}"#),
    ];
    for (name, text) in cases {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write case");
        let ps = p.to_str().expect("utf-8 path");
        let out = offline(dir, &["scan", "--from", ps]);
        out.expect_code(2);
        assert!(
            out.one_line_error().contains(ps),
            "the error should name the file\n{}",
            out.context()
        );
    }
    let missing = dir.join("missing.json");
    let out = offline(dir, &["scan", "--from", missing.to_str().expect("utf-8")]);
    out.expect_code(2);
    out.one_line_error();

    // No tasks at all is not an error: exit 1, "nothing to diagnose".
    let empty = dir.join("empty.json");
    std::fs::write(&empty, r#"{"tasks": [], "failures": []}"#).expect("write");
    let out = offline(dir, &["scan", "--from", empty.to_str().expect("utf-8")]);
    out.expect_code(1);
    assert!(out.stdout.contains("No stopped tasks"), "{}", out.context());
}

/// The offline fleet's report in the three formats: a reviewed snapshot.
#[test]
fn scan_report_in_every_format_is_reviewed() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = fleet_file(scratch.path(), FLEET);
    let fs = file.to_str().expect("utf-8 path");
    for format in ["text", "markdown", "json"] {
        let out = offline(scratch.path(), &["scan", "--from", fs, "--format", format]);
        out.expect_code(0);
        // The note names the temporary file: keep the snapshot independent of where it lives.
        let stdout = out.stdout.replace(fs, "FLEET.json");
        insta::assert_snapshot!(format!("scan-fleet-{format}"), stdout);
    }
}
