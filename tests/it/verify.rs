//! Verification end to end: the real binary reads the denied role's policies (and the resource's
//! and the key's) from a private moto server through the real HTTP stack, evaluates them, and the
//! verdict follows: a managed policy whose old version allowed it, a boundary cap, an explicit
//! Deny with a Sid, a role whose policies allow it (contradicted), a customer managed key whose
//! policy does not delegate to IAM, a bucket policy's Deny. Then capture and offline replay, and
//! what moto cannot do through an IAM stand-in: ecsdoctor's own read denied (`unavailable`) and
//! IAM's policy simulator (`--simulate`). Each case's expectation comes from
//! `tests/moto/seed_iam.py`, which states what the seeded policies decide.
//!
//! Needs the moto venv: run the suite through `scripts/test.sh`.

use std::path::Path;

use serde_json::Value;

use crate::support::bin::{self, ecsdoctor, Out};
use crate::support::iam_stub::{error_xml, ok_xml, IamStub};
use crate::support::moto::Moto;

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ecsdoctor-verify-")
        .tempdir()
        .expect("tempdir")
}

/// `why TASK --endpoint-url MOTO --format json` with its own HOME, cache and API trace.
fn why(moto: &Moto, dir: &Path, task: &str, extra: &[&str]) -> Out {
    why_as(moto, dir, task, "json", extra)
}

/// [`why`] in another format.
fn why_as(moto: &Moto, dir: &Path, task: &str, format: &str, extra: &[&str]) -> Out {
    let cache = dir.join(format!("cache-{}", bin::unique()));
    std::fs::create_dir_all(&cache).expect("cache dir");
    let cache = cache.to_str().expect("utf-8 temp path").to_string();
    let mut args = vec![
        "why",
        task,
        "--endpoint-url",
        &moto.endpoint,
        "--format",
        format,
        "--cache-dir",
        &cache,
    ];
    args.extend_from_slice(extra);
    ecsdoctor().endpoint(&moto.endpoint).home(dir).traced(dir).run(&args)
}

/// `why TASK --format json` against moto, with IAM answered by the `stub` stand-in instead.
fn why_with_iam_stub(moto: &Moto, stub: &IamStub, dir: &Path, task: &str, extra: &[&str]) -> Out {
    let cache = dir.join(format!("cache-{}", bin::unique()));
    std::fs::create_dir_all(&cache).expect("cache dir");
    let cache = cache.to_str().expect("utf-8 temp path").to_string();
    let mut args = vec!["why", task, "--format", "json", "--cache-dir", &cache];
    args.extend_from_slice(extra);
    ecsdoctor()
        .endpoint(&moto.endpoint)
        .iam_endpoint(&stub.endpoint)
        .home(dir)
        .run(&args)
}

/// Seeds `scenario` and the verification `case`; returns moto, the seed and the case.
fn seeded(scenario: &str, case: &str) -> (Moto, Value, Value) {
    let moto = Moto::start();
    let seed = moto.seed(scenario);
    let case = moto.seed_iam(case);
    (moto, seed, case)
}

fn task(seed: &Value) -> &str {
    seed["task_arn"].as_str().expect("seed.py prints task_arn")
}

/// The verification of a run, checked against the case's expectation.
fn check_expected(run: &Out, case: &Value) -> Value {
    run.expect_code(0);
    let out = run.json();
    let ver = out["verdict"]["verification"].clone();
    let ctx = run.context();
    let expect = &case["expect"];
    assert_eq!(ver["status"], expect["status"], "status\n{ctx}");
    if expect["status"] == "confirmed" {
        assert_eq!(ver["layer"], expect["layer"], "layer\n{ctx}");
    }
    if let Some(sid) = expect["sid"].as_str() {
        assert_eq!(ver["statement"]["sid"], sid, "deciding statement\n{ctx}");
    }
    // Read-only, within the round budget: 5 cold with verification.
    run.assert_trace(bin::VERIFY_SERVICES, 5);
    ver
}

#[test]
fn verify_old_managed_version_is_not_read_the_default_is() {
    let (moto, seed, case) = seeded("startup-ssm-denied", "old-version");
    let dir = scratch();
    let run = why(&moto, dir.path(), task(&seed), &[]);
    let ver = check_expected(&run, &case);
    let ctx = run.context();
    let checked = ver["checked"].to_string();
    assert!(
        checked.contains("policy/app-secrets (v2, the default version)"),
        "{ctx}"
    );
    // The smallest change: an Allow for the denied action on the parameter.
    let diff = ver["diff"].to_string();
    assert!(
        diff.contains("ssm:GetParameters") && diff.contains("parameter/prod/db-password"),
        "{ctx}"
    );
    assert_eq!(run.json()["verdict"]["confidence"], "high", "{ctx}");
    assert!(run.ops().iter().any(|o| o == "GetPolicyVersion"), "{ctx}");
}

#[test]
fn verify_boundary_cap_moves_the_verdict_to_the_boundary() {
    let (moto, seed, case) = seeded("startup-ssm-denied", "boundary-cap");
    let dir = scratch();
    let run = why(&moto, dir.path(), task(&seed), &[]);
    let ver = check_expected(&run, &case);
    let v = &run.json()["verdict"];
    let ctx = run.context();
    // The message said identity; the account shows the boundary: the verdict follows.
    assert_eq!(v["policy"], "permissions-boundary", "{ctx}");
    assert!(
        v["who_must_act"].as_str().unwrap_or_default().contains("boundary"),
        "{ctx}"
    );
    assert!(
        ver["disagreement"].as_str().unwrap_or_default().contains("identity"),
        "{ctx}"
    );
    // No inline-policy Terraform for a boundary: the statement goes into the boundary.
    assert!(v["terraform"].is_null(), "{ctx}");

    // Text and markdown show the check and the disagreement.
    let text = why_as(&moto, dir.path(), task(&seed), "text", &[]);
    assert!(
        text.stdout.contains("checked against the account: confirmed —"),
        "{}",
        text.context()
    );
    let md = why_as(&moto, dir.path(), task(&seed), "markdown", &[]);
    assert!(
        md.stdout.contains("**Checked against the account:** confirmed"),
        "{}",
        md.context()
    );
}

#[test]
fn verify_explicit_deny_names_the_statement_and_drops_the_allow_snippet() {
    let (moto, seed, case) = seeded("startup-ssm-denied", "explicit-deny");
    let dir = scratch();
    let run = why(&moto, dir.path(), task(&seed), &[]);
    let ver = check_expected(&run, &case);
    let v = &run.json()["verdict"];
    let ctx = run.context();
    assert_eq!(
        ver["statement"]["policy"], "inline policy deny-prod-parameters",
        "{ctx}"
    );
    assert!(v["iam_policy"].is_null(), "an Allow cannot override a Deny\n{ctx}");
    assert!(
        v["fix"].as_str().unwrap_or_default().contains("Deny statement"),
        "{ctx}"
    );
}

#[test]
fn verify_allowing_policies_contradict_the_text_and_lower_confidence() {
    let (moto, seed, case) = seeded("startup-ssm-denied", "allowed");
    let dir = scratch();
    let off = why(&moto, dir.path(), task(&seed), &["--no-verify"]);
    let run = why(&moto, dir.path(), task(&seed), &[]);
    let ver = check_expected(&run, &case);
    let ctx = run.context();
    let rank = |c: &Value| match c.as_str() {
        Some("high") => 3,
        Some("medium") => 2,
        _ => 1,
    };
    assert!(
        rank(&run.json()["verdict"]["confidence"]) < rank(&off.json()["verdict"]["confidence"]),
        "a contradicted verdict must lose confidence\n{ctx}\n{}",
        off.context()
    );
    let could = ver["could_still_deny"].to_string();
    assert!(could.contains("SCP") && could.contains("VPC endpoint"), "{ctx}");
}

#[test]
fn verify_customer_key_without_iam_delegation_is_the_key_policy() {
    let (moto, seed, case) = seeded("startup-secret-kms-denied", "cmk-no-delegation");
    let dir = scratch();
    let run = why(&moto, dir.path(), task(&seed), &[]);
    let ver = check_expected(&run, &case);
    let v = &run.json()["verdict"];
    let ctx = run.context();
    assert_eq!(v["policy"], "kms-key", "{ctx}");
    assert!(
        ver["checked"].to_string().contains("key policy of arn:aws:kms:"),
        "{ctx}"
    );
    let ops = run.ops();
    for op in ["DescribeSecret", "GetKeyPolicy"] {
        assert!(ops.iter().any(|o| o == op), "should call {op}\n{ctx}");
    }
}

#[test]
fn verify_task_role_against_the_bucket_policy() {
    let (moto, seed, case) = seeded("runtime-s3-denied", "bucket-deny");
    let dir = scratch();
    let run = why(&moto, dir.path(), task(&seed), &[]);
    check_expected(&run, &case);
    assert_eq!(run.json()["verdict"]["policy"], "resource", "{}", run.context());

    let (moto, seed, case) = seeded("runtime-s3-denied", "task-role-allowed");
    let run = why(&moto, dir.path(), task(&seed), &[]);
    check_expected(&run, &case);
}

/// `capture` stores what verification read; `why --from` verifies from it with no network, and
/// reaches the same answer. `--no-verify` skips it on both sides.
#[test]
fn verify_offline_from_a_captured_bundle() {
    let (moto, seed, case) = seeded("startup-ssm-denied", "boundary-cap");
    let dir = scratch();
    let live = why(&moto, dir.path(), task(&seed), &[]);
    let live_ver = check_expected(&live, &case);

    let bundle = dir.path().join("bundle");
    let bundle_s = bundle.to_str().expect("utf-8 temp path");
    let cap = ecsdoctor().endpoint(&moto.endpoint).home(dir.path()).run(&[
        "capture",
        task(&seed),
        "--out",
        bundle_s,
        "--no-cache",
    ]);
    cap.expect_code(0);
    assert!(
        bundle.join("iam/get-role/ecsTaskExecutionRole.json").is_file(),
        "{}",
        cap.context()
    );
    assert!(bundle.join("iam/get-policy").is_dir(), "{}", cap.context());
    drop(moto); // Offline means offline: nothing answers any more.

    let replay = ecsdoctor()
        .endpoint(&bin::dead_endpoint())
        .home(dir.path())
        .traced(dir.path())
        .run(&["why", "--from", bundle_s, "--format", "json"]);
    replay.expect_code(0);
    assert!(
        replay.trace.is_empty(),
        "a replay must not call AWS\n{}",
        replay.context()
    );
    let ver = &replay.json()["verdict"]["verification"];
    assert_eq!(ver["status"], live_ver["status"], "{}", replay.context());
    assert_eq!(ver["layer"], live_ver["layer"], "{}", replay.context());
    assert_eq!(replay.json()["verdict"]["policy"], "permissions-boundary");

    let off = ecsdoctor()
        .home(dir.path())
        .run(&["why", "--from", bundle_s, "--format", "json", "--no-verify"]);
    assert!(off.json()["verdict"].get("verification").is_none(), "{}", off.context());

    // The boundary was written just now; a task that stopped in 2020 was denied by whatever
    // version was in force then, and the output says the one evaluated is newer. (moto's
    // DescribeTasks has no stoppedAt: the bundle gets one, as AWS would have given.)
    let tasks_file = bundle.join("describe-tasks.json");
    let mut tasks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tasks_file).expect("describe-tasks.json")).expect("JSON");
    tasks["tasks"][0]["stoppedAt"] = serde_json::json!("2020-01-01T00:00:00+00:00");
    std::fs::write(&tasks_file, tasks.to_string()).expect("write describe-tasks.json");
    let old = ecsdoctor()
        .home(dir.path())
        .run(&["why", "--from", bundle_s, "--format", "json"]);
    let changed = old.json()["verdict"]["verification"]["changed_after_stop"].to_string();
    assert!(
        changed.contains("policy/ecs-execution-boundary") && changed.contains("2020-01-01T00:00:00"),
        "{}",
        old.context()
    );
    let md = ecsdoctor()
        .home(dir.path())
        .run(&["why", "--from", bundle_s, "--format", "markdown"]);
    assert!(md.stdout.contains("changed since the stop:"), "{}", md.context());

    // A bundle captured without verification says so instead of guessing.
    let plain = dir.path().join("plain");
    let plain_s = plain.to_str().expect("utf-8 temp path");
    let (moto, seed, _) = seeded("startup-ssm-denied", "allowed");
    ecsdoctor()
        .endpoint(&moto.endpoint)
        .home(dir.path())
        .run(&["capture", task(&seed), "--out", plain_s, "--no-verify", "--no-cache"])
        .expect_code(0);
    assert!(!plain.join("iam").exists());
    let replay = ecsdoctor()
        .home(dir.path())
        .run(&["why", "--from", plain_s, "--format", "json"]);
    let out = replay.json();
    assert!(out["verdict"].get("verification").is_none(), "{}", replay.context());
    assert!(
        out["notes"].to_string().contains("the bundle holds none"),
        "{}",
        replay.context()
    );
}

/// ecsdoctor's own IAM read denied: `unavailable`, naming the call and the permission to grant;
/// the verdict and the exit code stand (never exit 3).
#[test]
fn verify_own_read_denied_is_unavailable_not_a_failure() {
    let (moto, seed, _) = seeded("startup-ssm-denied", "old-version");
    let denied = |action: &'static str| {
        (
            action,
            403,
            error_xml(
                "AccessDenied",
                &format!(
                    "User: arn:aws:sts::123456789012:assumed-role/oncall/me is not authorized to perform: iam:{action}"
                ),
            ),
        )
    };
    let stub = IamStub::start(vec![
        denied("GetRole"),
        denied("ListRolePolicies"),
        denied("ListAttachedRolePolicies"),
    ]);
    let dir = scratch();
    let run = why_with_iam_stub(&moto, &stub, dir.path(), task(&seed), &[]);
    run.expect_code(0);
    let ver = &run.json()["verdict"]["verification"];
    let ctx = run.context();
    assert_eq!(ver["status"], "unavailable", "{ctx}");
    let unreadable = ver["unreadable"].to_string();
    assert!(unreadable.contains("iam:GetRole"), "{ctx}");
    assert!(
        ver["summary"].as_str().unwrap_or_default().contains("grant iam:"),
        "the summary says what to grant\n{ctx}"
    );
    assert_eq!(run.json()["verdict"]["culprit"], "execution-role", "{ctx}");
    assert!(stub.asked().iter().any(|a| a == "GetRole"), "{:?}", stub.asked());
}

/// `--simulate`: IAM's policy simulator beside the local evaluation (moto does not implement it:
/// the stand-in answers as the IAM API reference documents). An implicit deny the simulator
/// reached without a context value is shown as no proof.
#[test]
fn verify_simulate_shows_agreement_and_caveats() {
    let (moto, seed, _) = seeded("startup-ssm-denied", "old-version");
    let role = "<Role><Path>/</Path><RoleName>ecsTaskExecutionRole</RoleName><Arn>arn:aws:iam::123456789012:role/ecsTaskExecutionRole</Arn><Tags/></Role>";
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22logs%3APutLogEvents%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
    let sim = "<EvaluationResults><member><EvalActionName>ssm:GetParameters</EvalActionName><EvalResourceName>arn:aws:ssm:us-east-1:123456789012:parameter/prod/db-password</EvalResourceName><EvalDecision>implicitDeny</EvalDecision><MatchedStatements/><MissingContextValues><member>aws:SourceVpce</member></MissingContextValues></member></EvaluationResults><IsTruncated>false</IsTruncated>";
    let stub = IamStub::start(vec![
        ("GetRole", 200, ok_xml("GetRole", role)),
        (
            "ListRolePolicies",
            200,
            ok_xml("ListRolePolicies", "<PolicyNames><member>logs</member></PolicyNames><IsTruncated>false</IsTruncated>"),
        ),
        (
            "ListAttachedRolePolicies",
            200,
            ok_xml("ListAttachedRolePolicies", "<AttachedPolicies/><IsTruncated>false</IsTruncated>"),
        ),
        (
            "GetRolePolicy",
            200,
            ok_xml(
                "GetRolePolicy",
                &format!("<RoleName>ecsTaskExecutionRole</RoleName><PolicyName>logs</PolicyName><PolicyDocument>{policy}</PolicyDocument>"),
            ),
        ),
        ("SimulatePrincipalPolicy", 200, ok_xml("SimulatePrincipalPolicy", sim)),
    ]);
    let dir = scratch();
    let run = why_with_iam_stub(&moto, &stub, dir.path(), task(&seed), &["--simulate"]);
    run.expect_code(0);
    let ver = &run.json()["verdict"]["verification"];
    let ctx = run.context();
    assert_eq!(ver["status"], "confirmed", "{ctx}");
    let r = &ver["simulation"]["results"][0];
    assert_eq!(r["action"], "ssm:GetParameters", "{ctx}");
    assert_eq!(r["decision"], "implicitDeny", "{ctx}");
    assert_eq!(r["agrees"], true, "{ctx}");
    assert!(
        r["caveat"].as_str().unwrap_or_default().contains("aws:SourceVpce"),
        "{ctx}"
    );
    assert!(
        stub.asked().iter().any(|a| a == "SimulatePrincipalPolicy"),
        "{:?}",
        stub.asked()
    );
    // Without --simulate the simulator is never asked.
    let stub_calls = stub.asked().len();
    why_with_iam_stub(&moto, &stub, dir.path(), task(&seed), &[]).expect_code(0);
    assert!(
        !stub.asked()[stub_calls..]
            .iter()
            .any(|a| a == "SimulatePrincipalPolicy"),
        "{:?}",
        stub.asked()
    );
}

/// IAM lists in pages: a policy on the second page of `ListRolePolicies` is read (IAM "might
/// return fewer than the MaxItems number of results even when there are more", so `IsTruncated`
/// is followed).
#[test]
fn verify_reads_every_page_of_a_listing() {
    let (moto, seed, _) = seeded("startup-ssm-denied", "old-version");
    let role = "<Role><Path>/</Path><RoleName>ecsTaskExecutionRole</RoleName><Arn>arn:aws:iam::123456789012:role/ecsTaskExecutionRole</Arn><Tags/></Role>";
    let doc = |action: &str, resource: &str| {
        let d = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "S", "Effect": "Allow", "Action": action, "Resource": resource}]});
        percent_encode(&d.to_string())
    };
    let logs = doc("logs:PutLogEvents", "*");
    let ssm = doc(
        "ssm:GetParameters",
        "arn:aws:ssm:us-east-1:123456789012:parameter/prod/*",
    );
    let stub = IamStub::start_with(Box::new(move |action, body| {
        let page2 = body.contains("Marker=");
        Some(match action {
            "GetRole" => (200, ok_xml("GetRole", role)),
            "ListRolePolicies" if page2 => (
                200,
                ok_xml("ListRolePolicies", "<PolicyNames><member>ssm</member></PolicyNames><IsTruncated>false</IsTruncated>"),
            ),
            "ListRolePolicies" => (
                200,
                ok_xml(
                    "ListRolePolicies",
                    "<PolicyNames><member>logs</member></PolicyNames><IsTruncated>true</IsTruncated><Marker>page-2</Marker>",
                ),
            ),
            "ListAttachedRolePolicies" => (
                200,
                ok_xml("ListAttachedRolePolicies", "<AttachedPolicies/><IsTruncated>false</IsTruncated>"),
            ),
            "GetRolePolicy" => {
                let (name, d) = if body.contains("PolicyName=ssm") { ("ssm", &ssm) } else { ("logs", &logs) };
                (
                    200,
                    ok_xml(
                        "GetRolePolicy",
                        &format!("<RoleName>ecsTaskExecutionRole</RoleName><PolicyName>{name}</PolicyName><PolicyDocument>{d}</PolicyDocument>"),
                    ),
                )
            }
            _ => (400, error_xml("InvalidAction", "not canned")),
        })
    }));
    let dir = scratch();
    let run = why_with_iam_stub(&moto, &stub, dir.path(), task(&seed), &[]);
    run.expect_code(0);
    let ver = &run.json()["verdict"]["verification"];
    // Only the second page's policy allows it: contradicted means that page was read.
    assert_eq!(ver["status"], "contradicted", "{}", run.context());
    assert!(
        ver["checked"].to_string().contains("inline policy ssm"),
        "{}",
        run.context()
    );
}

/// IAM that never answers: the verdict stands (exit 0) and says why it was not checked, within
/// `--timeout`; a verdict that is not a role's denial does not wait for IAM at all.
#[test]
fn verify_hung_iam_neither_hangs_nor_fails_the_run() {
    let stub = IamStub::start_with(Box::new(|_, _| None));
    let dir = scratch();

    let (moto, seed, _) = seeded("startup-ssm-denied", "old-version");
    let run = why_with_iam_stub(&moto, &stub, dir.path(), task(&seed), &["--timeout", "4"]);
    run.expect_code(0);
    let out = run.json();
    assert_eq!(out["verdict"]["culprit"], "execution-role", "{}", run.context());
    let said = format!("{}{}", out["verdict"]["verification"], out["notes"]);
    assert!(
        said.contains("--timeout"),
        "the output says IAM did not answer in time\n{}",
        run.context()
    );

    let moto = Moto::start();
    let seed = moto.seed("network-ecr-timeout");
    let run = why_with_iam_stub(&moto, &stub, dir.path(), task(&seed), &["--timeout", "20"]);
    run.expect_code(0);
    assert_eq!(run.json()["verdict"]["culprit"], "not-iam", "{}", run.context());
    // Had it waited for the roles' reads it would have run into the 20 s --timeout.
    assert!(
        run.elapsed < std::time::Duration::from_secs(20),
        "a verdict that is not a role's denial waited for IAM\n{}",
        run.context()
    );
}

/// Percent-encodes a policy document as IAM's API returns it.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `--redact-accounts` masks account ids everywhere, verification included, while verification
/// itself still plans from whole ARNs and reaches the same answer.
#[test]
fn verify_with_redacted_accounts_checks_and_masks() {
    let (moto, seed, case) = seeded("startup-ssm-denied", "boundary-cap");
    let dir = scratch();
    for format in ["json", "text", "markdown"] {
        let run = why_as(&moto, dir.path(), task(&seed), format, &["--redact-accounts"]);
        run.expect_code(0);
        assert!(
            !run.stdout.contains("123456789012"),
            "an account id leaked\n{}",
            run.context()
        );
        assert!(run.stdout.contains("permissions-boundary"), "{}", run.context());
        if format == "json" {
            assert_eq!(
                run.json()["verdict"]["verification"]["status"],
                case["expect"]["status"]
            );
        }
    }
}
