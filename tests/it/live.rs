//! End-to-end tests of the live AWS path: the real `ecsdoctor` binary, the real AWS SDK and HTTP
//! stack, against a private moto server on 127.0.0.1 (one per test, see `support/moto.rs`).
//!
//! Needs the moto venv: run the suite through `scripts/test.sh`. Without it these tests FAIL.
//!
//! Every ecsdoctor run gets the safety environment (dummy credentials, fixed region, no config
//! files, no EC2 metadata, `AWS_ENDPOINT_URL` on loopback), its own HOME / XDG dirs and a
//! `--cache-dir` in a tempdir, so runs are independent and nothing can reach real AWS.
//!
//! moto cannot produce every field real AWS does (no stopCode, no timestamps, no container reason,
//! exitCode always 0, a missing task gives an empty `failures[]`); the scenarios are chosen so the
//! verdict follows from what moto does return: the stop reason and the container's log stream.

use crate::support::moto;

use crate::support::bin::{self, Out};
use moto::Moto;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A task id that the seeded moto does not have (new-format, 32 hex).
const MISSING_TASK_ID: &str = "0123456789abcdef0123456789abcdef";

/// One test's scratch space: HOME, XDG dirs, cache dirs, traces, captures.
struct Scratch {
    dir: tempfile::TempDir,
    n: AtomicUsize,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("ecsdoctor-live-")
            .tempdir()
            .expect("tempdir");
        for d in ["home", "xdg-cache", "xdg-config"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("create scratch dir");
        }
        Scratch {
            dir,
            n: AtomicUsize::new(0),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fresh, not yet existing path (for a trace file or a capture directory).
    fn fresh(&self, stem: &str) -> PathBuf {
        let i = self.n.fetch_add(1, Ordering::SeqCst);
        self.dir.path().join(format!("{stem}-{i}"))
    }

    /// A fresh, existing cache directory.
    fn cache_dir(&self) -> PathBuf {
        let p = self.fresh("cache");
        std::fs::create_dir_all(&p).expect("create cache dir");
        p
    }
}

/// What one ecsdoctor run produced.
type Run = Out;

/// Runs the ecsdoctor binary with the safety environment. `endpoint` is where
/// `AWS_ENDPOINT_URL` points (always loopback); `trace` records the API calls.
fn ecsdoctor(scratch: &Scratch, endpoint: &str, args: &[&str], trace: bool) -> Run {
    let mut r = bin::ecsdoctor()
        .endpoint(endpoint)
        .home(&scratch.path("home"))
        .env("NO_COLOR", Some("1"));
    if trace {
        r = r.traced(&scratch.path("home"));
    }
    r.run(args)
}

/// `ecsdoctor why TARGET --endpoint-url URL --format json --cache-dir DIR [extra...]`, traced.
fn why_live(moto: &Moto, scratch: &Scratch, target: &str, cache: &Path, extra: &[&str]) -> Run {
    let cache = cache.to_str().expect("utf-8 temp path");
    let mut args = vec![
        "why",
        target,
        "--endpoint-url",
        &moto.endpoint,
        "--format",
        "json",
        "--cache-dir",
        cache,
    ];
    args.extend_from_slice(extra);
    ecsdoctor(scratch, &moto.endpoint, &args, true)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("seed output has no string {key:?}: {v}"))
}

fn permissions(verdict: &Value) -> Vec<String> {
    verdict["permissions"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Starts moto, seeds `scenario`, runs a cold `why` on the task ARN; checks the API trace.
fn live_scenario(scenario: &str) -> (Moto, Scratch, Value, Run) {
    let moto = Moto::start();
    let seed = moto.seed(scenario);
    let scratch = Scratch::new();
    let cache = scratch.cache_dir();
    let run = why_live(&moto, &scratch, s(&seed, "task_arn"), &cache, &[]);
    run.assert_trace(bin::VERIFY_SERVICES, 5);
    (moto, scratch, seed, run)
}

/// Asserts the verdict of a run that must name an IAM role and a permission.
fn assert_iam_verdict(run: &Run, seed: &Value, culprit: &str, role_key: &str, permission: &str) {
    run.expect_code(0);
    let out = run.json();
    let v = &out["verdict"];
    let ctx = run.context();
    assert_eq!(out["version"], 1, "{ctx}");
    assert_eq!(out["task_arn"].as_str(), Some(s(seed, "task_arn")), "{ctx}");
    assert_eq!(v["culprit"].as_str(), Some(culprit), "culprit\n{ctx}");
    assert_eq!(v["category"].as_str(), Some("iam"), "category\n{ctx}");
    assert!(
        permissions(v).iter().any(|p| p == permission),
        "verdict.permissions should contain {permission}\n{ctx}"
    );
    assert_eq!(
        v["role_arn"].as_str(),
        Some(s(seed, role_key)),
        "verdict.role_arn should be the task definition's {role_key}\n{ctx}"
    );
    let findings = out["findings"].as_array().cloned().unwrap_or_default();
    assert!(
        findings
            .iter()
            .any(|f| f["evidence"].to_string().contains(permission) && f["culprit"].as_str() == Some(culprit)),
        "no finding blames {culprit} with evidence naming {permission}\n{ctx}"
    );
}

/// All JSON strings in `v`, recursively.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------

/// The harness itself: moto starts, `/moto-api/reset` works, every scenario seeds and reports
/// a consistent task. Independent of the diagnosis engine.
#[test]
fn live_harness_seeds_every_scenario() {
    let moto = Moto::start();
    for scenario in [
        "startup-ssm-denied",
        "runtime-s3-denied",
        "network-ecr-timeout",
        "missing-log-group",
    ] {
        let (status, _) = moto.http("POST", "/moto-api/reset", None).expect("reset");
        assert_eq!(status, 200, "POST /moto-api/reset");
        let seed = moto.seed(scenario);
        let arn = s(&seed, "task_arn");
        let id = s(&seed, "task_id");
        assert!(
            arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/ecsdoctor-live/"),
            "{seed}"
        );
        assert!(arn.ends_with(&format!("/{id}")), "{seed}");
        assert_eq!(s(&seed, "log_stream"), format!("ecs/app/{id}"), "{seed}");
        assert_eq!(s(&seed, "log_group"), "/ecs/app", "{seed}");
        assert_eq!(
            s(&seed, "execution_role_arn"),
            "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
        );
        assert_eq!(
            s(&seed, "task_role_arn"),
            "arn:aws:iam::123456789012:role/app-task-role"
        );
        let reason = s(&seed, "stopped_reason");
        match scenario {
            "startup-ssm-denied" => assert!(
                reason.contains(&format!("assumed-role/ecsTaskExecutionRole/{id} ")),
                "{reason}"
            ),
            "network-ecr-timeout" => assert!(reason.ends_with("i/o timeout"), "{reason}"),
            _ => assert_eq!(reason, "Essential container in task exited"),
        }
        assert_eq!(
            seed["log_group_created"].as_bool(),
            Some(scenario != "missing-log-group"),
            "{seed}"
        );
        if scenario == "runtime-s3-denied" {
            assert!(seed["log_event_count"].as_u64().unwrap_or(0) >= 70, "{seed}");
        }
    }
}

/// Fargate, secrets injection denied: the execution role lacks ssm:GetParameters.
#[test]
fn live_startup_ssm_denied() {
    let (_moto, _scratch, seed, run) = live_scenario("startup-ssm-denied");
    assert_iam_verdict(&run, &seed, "execution-role", "execution_role_arn", "ssm:GetParameters");
    assert_eq!(run.json()["phase"].as_str(), Some("startup"), "{}", run.context());
    assert!(
        run.ops().iter().any(|o| o == "DescribeTasks"),
        "no DescribeTasks in the API trace: is ECSDOCTOR_API_TRACE written?\n{}",
        run.context()
    );
}

/// The app's own S3 call is denied: the task role lacks s3:PutObject. The denial is in the
/// container log, ~27 lines before the end (a chained traceback follows it).
#[test]
fn live_runtime_s3_denied() {
    let (_moto, _scratch, seed, run) = live_scenario("runtime-s3-denied");
    assert_iam_verdict(&run, &seed, "task-role", "task_role_arn", "s3:PutObject");
    let out = run.json();
    assert_eq!(out["phase"].as_str(), Some("runtime"), "{}", run.context());
    assert!(
        out["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["source"].as_str().is_some_and(|s| s.contains("log"))
                && f["evidence"].to_string().contains("s3:PutObject")),
        "the s3:PutObject finding should come from the container logs\n{}",
        run.context()
    );
    let ops = run.ops();
    assert!(
        ops.iter().any(|o| o == "GetLogEvents" || o == "FilterLogEvents"),
        "the logs were never read\n{}",
        run.context()
    );
}

/// Image pull timed out: a network path problem, not IAM; no permission to add, no role to fix.
#[test]
fn live_network_ecr_timeout() {
    let (_moto, _scratch, _seed, run) = live_scenario("network-ecr-timeout");
    run.expect_code(0);
    let out = run.json();
    let v = &out["verdict"];
    let ctx = run.context();
    assert_eq!(v["culprit"].as_str(), Some("not-iam"), "culprit\n{ctx}");
    assert_eq!(v["category"].as_str(), Some("network"), "category\n{ctx}");
    assert!(
        permissions(v).is_empty(),
        "a network failure must not ask for IAM permissions\n{ctx}"
    );
    assert!(
        v["role_arn"].is_null(),
        "a network failure must not name a role to fix\n{ctx}"
    );
    assert_eq!(out["phase"].as_str(), Some("startup"), "{ctx}");
}

/// The task definition names a log group that does not exist: ecsdoctor still answers
/// (verdict or inconclusive, never "AWS access failed") and says the logs were not available.
#[test]
fn live_missing_log_group() {
    let (_moto, _scratch, _seed, run) = live_scenario("missing-log-group");
    assert_eq!(
        run.code,
        0,
        "a missing log group is evidence (a verdict), not an AWS access failure\n{}",
        run.context()
    );
    let out = run.json();
    let mut texts = Vec::new();
    strings(&out, &mut texts);
    texts.extend(run.stderr.lines().map(str::to_string));
    let says_unavailable = texts.iter().any(|t| {
        let t = t.to_lowercase();
        t.contains("log")
            && [
                "not available",
                "unavailable",
                "does not exist",
                "not found",
                "missing",
                "could not read",
                "couldn't read",
                "no logs",
                "no log",
            ]
            .iter()
            .any(|p| t.contains(p))
    });
    assert!(
        says_unavailable,
        "the output should say the container logs were not available\n{}",
        run.context()
    );
    assert!(
        run.ops().iter().any(|o| o == "GetLogEvents" || o == "FilterLogEvents"),
        "ecsdoctor should have tried to read the logs\n{}",
        run.context()
    );
}

/// `capture` writes the AWS-CLI-shaped bundle; `why --from` on it gives the same verdict as the
/// live run, without calling AWS.
#[test]
fn live_capture_replay_round_trip() {
    let (moto, scratch, seed, live) = live_scenario("runtime-s3-denied");
    live.expect_code(0);
    let live_out = live.json();

    let dir = scratch.fresh("capture");
    let dir_s = dir.to_str().expect("utf-8 temp path").to_string();
    let cap = ecsdoctor(
        &scratch,
        &moto.endpoint,
        &[
            "capture",
            s(&seed, "task_arn"),
            "--endpoint-url",
            &moto.endpoint,
            "--out",
            &dir_s,
        ],
        true,
    );
    cap.expect_code(0);
    cap.assert_trace(bin::VERIFY_SERVICES, 5);
    for f in ["describe-tasks.json", "describe-task-definition.json", "logs/app.json"] {
        assert!(dir.join(f).is_file(), "capture did not write {f}\n{}", cap.context());
    }
    let tasks: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("describe-tasks.json")).expect("read describe-tasks.json"),
    )
    .expect("describe-tasks.json is JSON");
    assert_eq!(
        tasks["tasks"][0]["stoppedReason"].as_str(),
        Some(s(&seed, "stopped_reason")),
        "describe-tasks.json should hold the task as AWS returned it"
    );
    let logs = std::fs::read_to_string(dir.join("logs/app.json")).expect("read logs/app.json");
    assert!(
        logs.contains("s3:PutObject"),
        "logs/app.json should hold the container log events, including the denial"
    );

    // Replay offline: AWS_ENDPOINT_URL points at a port where nothing listens, so any AWS call
    // would fail; the trace must stay empty.
    let dead = format!("http://127.0.0.1:{}", moto::free_port());
    let replay = ecsdoctor(&scratch, &dead, &["why", "--from", &dir_s, "--format", "json"], true);
    replay.expect_code(0);
    assert!(
        replay.trace.is_empty(),
        "why --from must not call AWS\n{}",
        replay.context()
    );
    let replay_out = replay.json();
    assert_eq!(
        replay_out["verdict"],
        live_out["verdict"],
        "replayed verdict differs from the live one\nLIVE:\n{}\nREPLAY:\n{}",
        live.context(),
        replay.context()
    );
    assert_eq!(replay_out["task_arn"], live_out["task_arn"]);
    assert_eq!(replay_out["phase"], live_out["phase"]);
}

/// Only read-only calls, at most 5 sequential rounds cold with verification (3 without); with a
/// warm cache at most 4 (2 without), and the same verdict.
#[test]
fn live_api_trace_read_only_and_cached() {
    let moto = Moto::start();
    let seed = moto.seed("runtime-s3-denied");
    let scratch = Scratch::new();
    let cache = scratch.cache_dir();
    let arn = s(&seed, "task_arn");

    let cold = why_live(&moto, &scratch, arn, &cache, &[]);
    cold.expect_code(0);
    cold.assert_trace(bin::VERIFY_SERVICES, 5);
    let ops = cold.ops();
    for needed in ["DescribeTasks", "DescribeTaskDefinition"] {
        assert!(
            ops.iter().any(|o| o == needed),
            "cold run should call {needed}\n{}",
            cold.context()
        );
    }

    let warm = why_live(&moto, &scratch, arn, &cache, &[]);
    warm.expect_code(0);
    warm.assert_trace(bin::VERIFY_SERVICES, 4);
    assert_eq!(
        warm.json()["verdict"],
        cold.json()["verdict"],
        "a warm cache changed the verdict\nCOLD:\n{}\nWARM:\n{}",
        cold.context(),
        warm.context()
    );
}

/// Without verification (`--no-verify`) only ECS and CloudWatch Logs are read: at most 3 rounds
/// cold and 2 warm, and no verification in the output.
#[test]
fn live_no_verify_keeps_three_rounds() {
    let moto = Moto::start();
    let seed = moto.seed("runtime-s3-denied");
    let scratch = Scratch::new();
    let cache = scratch.cache_dir();
    let arn = s(&seed, "task_arn");
    let cold = why_live(&moto, &scratch, arn, &cache, &["--no-verify"]);
    cold.expect_code(0);
    cold.assert_trace(&["ecs", "logs"], 3);
    assert!(
        cold.json()["verdict"].get("verification").is_none(),
        "{}",
        cold.context()
    );
    let warm = why_live(&moto, &scratch, arn, &cache, &["--no-verify"]);
    warm.expect_code(0);
    warm.assert_trace(&["ecs", "logs"], 2);
}

/// `--cluster NAME` with a bare task id finds the same task and gives the same verdict.
#[test]
fn live_cluster_and_bare_task_id() {
    let (moto, scratch, seed, by_arn) = live_scenario("runtime-s3-denied");
    by_arn.expect_code(0);
    let cache = scratch.cache_dir();
    let by_id = why_live(
        &moto,
        &scratch,
        s(&seed, "task_id"),
        &cache,
        &["--cluster", s(&seed, "cluster")],
    );
    by_id.expect_code(0);
    by_id.assert_trace(bin::VERIFY_SERVICES, 5);
    let out = by_id.json();
    assert_eq!(
        out["task_arn"].as_str(),
        Some(s(&seed, "task_arn")),
        "{}",
        by_id.context()
    );
    assert_eq!(
        out["verdict"],
        by_arn.json()["verdict"],
        "bare id + --cluster gave another verdict\nARN:\n{}\nID:\n{}",
        by_arn.context(),
        by_id.context()
    );
}

/// A task that does not exist (ECS forgets stopped tasks after about an hour): exit 3, and
/// stderr says so. (moto answers `tasks: [], failures: []`; real AWS adds `reason: MISSING`.)
#[test]
fn live_task_not_found() {
    let moto = Moto::start();
    let seed = moto.seed("runtime-s3-denied");
    let scratch = Scratch::new();
    let cache = scratch.cache_dir();
    let arn = format!(
        "arn:aws:ecs:us-east-1:123456789012:task/{}/{MISSING_TASK_ID}",
        s(&seed, "cluster")
    );
    let run = why_live(&moto, &scratch, &arn, &cache, &[]);
    run.expect_code(3);
    run.assert_trace(bin::VERIFY_SERVICES, 5);
    let err = run.stderr.to_lowercase();
    assert!(
        err.contains("not found")
            || err.contains("does not exist")
            || err.contains("no such task")
            || err.contains("hour"),
        "stderr should say the task was not found (stopped tasks are kept about 1 hour)\n{}",
        run.context()
    );
    assert!(!err.contains("panicked"), "{}", run.context());
}

/// Nothing listens on the endpoint: exit 3 with a one-line error, not a panic or a hang.
#[test]
fn live_endpoint_unreachable() {
    let scratch = Scratch::new();
    let cache = scratch.cache_dir();
    let cache_s = cache.to_str().expect("utf-8 temp path");
    let endpoint = format!("http://127.0.0.1:{}", moto::free_port());
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/ecsdoctor-live/{MISSING_TASK_ID}");
    let run = ecsdoctor(
        &scratch,
        &endpoint,
        &[
            "why",
            &arn,
            "--endpoint-url",
            &endpoint,
            "--format",
            "json",
            "--cache-dir",
            cache_s,
        ],
        true,
    );
    run.expect_code(3);
    let err = run.stderr.trim();
    assert!(!err.is_empty(), "no error message\n{}", run.context());
    assert_eq!(err.lines().count(), 1, "expected a one-line error\n{}", run.context());
    assert!(!err.contains("panicked"), "{}", run.context());
    // A message for a person, not a Debug dump of the SDK's error types.
    assert!(
        !err.contains(" { ") && !err.contains("DispatchFailure("),
        "raw debug dump\n{}",
        run.context()
    );
    let lower = err.to_lowercase();
    let port = endpoint.rsplit(':').next().unwrap_or_default();
    assert!(
        lower.contains("connect") || lower.contains("reach") || err.contains(port),
        "the error should say the endpoint could not be reached\n{}",
        run.context()
    );
    run.assert_trace(bin::VERIFY_SERVICES, 5);
}
