//! The Lambda runner's deployment (deploy/terraform/, scripts/lambda-zip.sh), offline: the IAM
//! actions the Terraform module grants are exactly ecsdoctor's read-only allow-list plus the
//! runner's delivery actions (parsed from the .tf files, compared with `ALLOWED_OPERATIONS` and
//! `DELIVERY_OPERATIONS` mapped to IAM actions); the rule's event pattern and the function's
//! settings; `terraform fmt -check`; and the zip the build script makes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ecsdoctor::source::aws::{ALLOWED_OPERATIONS, DELIVERY_OPERATIONS};

/// The IAM action of every operation ecsdoctor may send (the SDK operation name is the action
/// name; the prefix is the service's). An operation added to the allow-list fails the test below
/// until it is mapped here and granted in the module.
const IAM_ACTION_OF: &[(&str, &str)] = &[
    ("DescribeTasks", "ecs:DescribeTasks"),
    ("DescribeTaskDefinition", "ecs:DescribeTaskDefinition"),
    ("GetLogEvents", "logs:GetLogEvents"),
    ("FilterLogEvents", "logs:FilterLogEvents"),
    ("ListTasks", "ecs:ListTasks"),
    ("DescribeServices", "ecs:DescribeServices"),
    ("GetRole", "iam:GetRole"),
    ("ListRolePolicies", "iam:ListRolePolicies"),
    ("GetRolePolicy", "iam:GetRolePolicy"),
    ("ListAttachedRolePolicies", "iam:ListAttachedRolePolicies"),
    ("GetPolicy", "iam:GetPolicy"),
    ("GetPolicyVersion", "iam:GetPolicyVersion"),
    ("SimulatePrincipalPolicy", "iam:SimulatePrincipalPolicy"),
    ("GetKeyPolicy", "kms:GetKeyPolicy"),
    ("GetRepositoryPolicy", "ecr:GetRepositoryPolicy"),
    ("GetBucketPolicy", "s3:GetBucketPolicy"),
    ("GetResourcePolicy", "secretsmanager:GetResourcePolicy"),
    ("DescribeSecret", "secretsmanager:DescribeSecret"),
    ("DescribeParameters", "ssm:DescribeParameters"),
    // The runner's delivery: the webhook URL's parameter or secret, and the SNS topic.
    ("GetParameter", "ssm:GetParameter"),
    ("GetSecretValue", "secretsmanager:GetSecretValue"),
    ("Publish", "sns:Publish"),
];

/// Granted beyond the operations: decrypting the webhook's parameter or secret when a customer
/// managed key encrypts it (the AWS managed key needs no grant).
const KEY_ACTIONS: &[&str] = &["kms:Decrypt"];

/// What Lambda itself does with the function's role: its own log group, the on-failure queue.
const PLATFORM_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"];

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/terraform")
}

fn read(name: &str) -> String {
    let p = module_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The text of the block that starts at the first `{` after `header` (braces balanced).
fn block<'a>(text: &'a str, header: &str) -> &'a str {
    let start = text.find(header).unwrap_or_else(|| panic!("no `{header}`"));
    let open = start + text[start..].find('{').expect("a block");
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..=open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced block `{header}`")
}

/// Every action named in the `actions = [...]` lists of a block.
fn actions_in(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(i) = rest.find("actions") {
        let after = &rest[i + "actions".len()..];
        let Some(eq) = after.trim_start().strip_prefix('=') else {
            rest = after;
            continue;
        };
        let list = eq.trim_start();
        let end = list.find(']').expect("a closed list");
        for item in list[1..end].split(',') {
            let item = item.trim().trim_matches('"');
            if !item.is_empty() {
                out.push(item.to_string());
            }
        }
        rest = &list[end..];
    }
    out
}

fn set(items: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

#[test]
fn deploy_iam_actions_are_exactly_the_allow_list_plus_delivery() {
    let action_of = |op: &str| {
        IAM_ACTION_OF
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, a)| a.to_string())
            .unwrap_or_else(|| panic!("operation {op} of the allow-list has no IAM action in IAM_ACTION_OF"))
    };
    let mut expected: BTreeSet<String> = ALLOWED_OPERATIONS.iter().map(|op| action_of(op)).collect();
    expected.extend(DELIVERY_OPERATIONS.iter().map(|op| action_of(op)));
    expected.extend(set(KEY_ACTIONS.iter().copied()));
    // The table maps nothing that the code does not send.
    let ops: BTreeSet<&str> = ALLOWED_OPERATIONS.iter().chain(DELIVERY_OPERATIONS).copied().collect();
    for (op, _) in IAM_ACTION_OF {
        assert!(ops.contains(op), "IAM_ACTION_OF maps {op}, which ecsdoctor never sends");
    }

    let iam = read("iam.tf");
    let runner = actions_in(block(&iam, r#"data "aws_iam_policy_document" "runner""#));
    let granted = set(runner.iter().cloned());
    assert_eq!(granted.len(), runner.len(), "an action is granted twice: {runner:?}");
    let missing: Vec<_> = expected.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "deploy/terraform/iam.tf grants the wrong actions: missing {missing:?}, extra {extra:?}"
    );

    let platform = set(actions_in(block(&iam, r#"data "aws_iam_policy_document" "platform""#)));
    assert_eq!(platform, set(PLATFORM_ACTIONS.iter().copied()));
    let trust = set(actions_in(block(&iam, r#"data "aws_iam_policy_document" "assume""#)));
    assert_eq!(trust, set(["sts:AssumeRole"]));

    // Nothing else grants anything: no other policy document, no managed policy, no inline JSON.
    let all_tf: String = std::fs::read_dir(module_dir())
        .expect("module dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .map(|p| std::fs::read_to_string(p).expect("read .tf"))
        .collect();
    assert_eq!(all_tf.matches(r#"data "aws_iam_policy_document""#).count(), 3);
    assert_eq!(all_tf.matches(r#"resource "aws_iam_role_policy""#).count(), 2);
    for forbidden in [
        "aws_iam_role_policy_attachment",
        "managed_policy_arns",
        "aws_iam_policy\"",
        "\"Action\"",
    ] {
        assert!(!all_tf.contains(forbidden), "the module must not use {forbidden}");
    }
    let total = actions_in(&all_tf).len();
    assert_eq!(
        total,
        runner.len() + PLATFORM_ACTIONS.len() + 1,
        "an action list outside the three documents"
    );
}

#[test]
fn deploy_module_rule_and_function_settings() {
    let main = read("main.tf");
    let pattern = block(&main, "event_pattern = {");
    for needed in [
        r#"source        = ["aws.ecs"]"#,
        r#""detail-type" = ["ECS Task State Change"]"#,
        r#"{ lastStatus = ["STOPPED"] }"#,
    ] {
        assert!(pattern.contains(needed), "the event pattern lacks {needed}:\n{pattern}");
    }
    let filters = block(&main, "filters = {");
    assert!(filters.contains("clusterArn = var.cluster_arns") && filters.contains(r#""service:${s}""#));
    let function = block(&main, r#"resource "aws_lambda_function" "this""#);
    for needed in [
        r#"runtime          = "provided.al2023""#,
        "architectures    = [var.architecture]",
        "reserved_concurrent_executions = 1",
        "log_group  = aws_cloudwatch_log_group.this.name",
    ] {
        assert!(function.contains(needed), "the function lacks {needed}");
    }
    let invoke = block(&main, r#"resource "aws_lambda_function_event_invoke_config" "this""#);
    assert!(invoke.contains("on_failure") && invoke.contains("local.on_failure_arn"));
    assert!(block(&main, r#"resource "aws_cloudwatch_log_group" "this""#)
        .contains("retention_in_days = var.log_retention_days"));
    // Every setting the runner reads is passed through.
    let env = block(&main, "environment = {");
    for var in [
        "ECSDOCTOR_WEBHOOK_PARAMETER",
        "ECSDOCTOR_WEBHOOK_SECRET",
        "ECSDOCTOR_WEBHOOK_FORMAT",
        "ECSDOCTOR_SNS_TOPIC_ARN",
        "ECSDOCTOR_NOTIFY_ON",
        "ECSDOCTOR_DEDUP_WINDOW",
        "ECSDOCTOR_MESSAGE_LIMIT",
        "ECSDOCTOR_REDACT_ACCOUNTS",
    ] {
        assert!(env.contains(var), "{var} is not set by the module");
    }
    assert!(read("variables.tf").contains(r#"contains(["x86_64", "arm64"], var.architecture)"#));
    assert!(std::fs::metadata(module_dir().join("example/main.tf")).is_ok());
}

/// `terraform fmt -check -recursive deploy/terraform` (offline: fmt needs no provider).
#[test]
fn deploy_terraform_is_formatted() {
    let out = Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "-diff"])
        .arg(module_dir())
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .expect("terraform is on the machine image (TESTING.md); it must run here");
    assert!(
        out.status.success(),
        "terraform fmt -check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// scripts/lambda-zip.sh makes a zip with an executable `bootstrap` that starts the runner and
/// the binary itself (here the test build's, with --binary; CI does not build a release).
#[test]
fn deploy_zip_holds_bootstrap_and_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("ecsdoctor-x86_64.zip");
    let bin = env!("CARGO_BIN_EXE_ecsdoctor");
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lambda-zip.sh"))
        .args(["--target", "x86_64-unknown-linux-gnu", "--binary", bin, "--out"])
        .arg(&zip)
        .output()
        .expect("run scripts/lambda-zip.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile, json\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             print(json.dumps([[i.filename, i.external_attr >> 16, i.file_size, z.read('bootstrap').decode() if i.filename == 'bootstrap' else ''] for i in z.infolist()]))",
        )
        .arg(&zip)
        .output()
        .expect("python3 reads the zip");
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let entries: serde_json::Value = serde_json::from_slice(&listing.stdout).expect("JSON listing");
    let entries = entries.as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0][0], "bootstrap");
    assert_eq!(entries[0][1], 0o100755);
    assert_eq!(
        entries[0][3],
        "#!/bin/sh\nexec \"${LAMBDA_TASK_ROOT:-$(dirname \"$0\")}/ecsdoctor\" lambda\n"
    );
    assert_eq!(entries[1][0], "ecsdoctor");
    assert_eq!(entries[1][1], 0o100755);
    let size = std::fs::metadata(bin).expect("binary").len();
    assert_eq!(entries[1][2], size);
    // Same binary, same zip (a stable source_code_hash).
    let again = dir.path().join("again.zip");
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lambda-zip.sh"))
        .args(["--binary", bin, "--out"])
        .arg(&again)
        .output()
        .expect("run scripts/lambda-zip.sh");
    assert!(out.status.success());
    assert_eq!(std::fs::read(&zip).expect("zip"), std::fs::read(&again).expect("zip"));
}
