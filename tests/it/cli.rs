//! End-to-end tests of the binary on evidence bundles: verdicts per scenario, exit codes, color
//! handling, bad input, closed pipes. Every process runs with the safety environment (no real
//! credentials, no EC2 metadata probing); none of these tests talks to any network.

use crate::support::bin::{ecsdoctor, fixture, Out};

use std::process::Command;

use serde_json::Value;

fn cmd() -> Command {
    ecsdoctor().std_command()
}

fn run(args: &[&str]) -> Out {
    ecsdoctor().run(args)
}

fn run_stdin(args: &[&str], input: &[u8]) -> Out {
    ecsdoctor().stdin(input).run(args)
}

fn why_json(name: &str) -> (i32, Value) {
    let p = fixture(name);
    let o = run(&["why", "--from", p.to_str().expect("utf8 path"), "--format", "json"]);
    assert!(o.stderr.is_empty() || !o.stderr.contains("panicked"), "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {}", o.stdout));
    (o.code, v)
}

/// One expectation per scenario: (fixture, culprit, category, a permission that must be listed, policy layer).
type Scenario = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);
const SCENARIOS: &[Scenario] = &[
    (
        "exec-ssm-denied",
        "execution-role",
        "iam",
        Some("ssm:GetParameters"),
        Some("identity"),
    ),
    (
        "exec-ecr-auth-denied",
        "execution-role",
        "iam",
        Some("ecr:GetAuthorizationToken"),
        Some("identity"),
    ),
    (
        "exec-createloggroup-denied",
        "execution-role",
        "iam",
        Some("logs:CreateLogGroup"),
        Some("identity"),
    ),
    ("kms-denied-secret", "execution-role", "iam", Some("kms:Decrypt"), None),
    ("envfile-s3-denied", "execution-role", "iam", Some("s3:GetObject"), None),
    (
        "ec2-repo-policy-denied",
        "instance-role",
        "iam",
        Some("ecr:BatchGetImage"),
        Some("resource"),
    ),
    ("ecr-pull-timeout", "not-iam", "network", None, None),
    ("ecr-auth-network", "not-iam", "network", None, None),
    ("log-group-missing", "not-iam", "config", None, None),
    (
        "runtime-task-role-s3",
        "task-role",
        "iam",
        Some("s3:PutObject"),
        Some("identity"),
    ),
    (
        "runtime-go2-s3-no-principal",
        "task-role",
        "iam",
        Some("s3:PutObject"),
        None,
    ),
    ("runtime-no-task-role", "task-role", "iam", None, None),
    (
        "ec2-instance-role-fallback",
        "instance-role",
        "iam",
        Some("dynamodb:UpdateItem"),
        None,
    ),
    (
        "runtime-scp-deny",
        "task-role",
        "iam",
        Some("s3:GetObject"),
        Some("scp"),
    ),
    ("oom-killed", "not-iam", "app", None, None),
    ("elb-health-check", "not-iam", "app", None, None),
    ("spot-interruption", "not-iam", "capacity", None, None),
    ("user-stopped", "not-iam", "user", None, None),
    ("runtime-crash", "not-iam", "app", None, None),
    (
        "efs-access-denied",
        "task-role",
        "iam",
        Some("elasticfilesystem:ClientMount"),
        None,
    ),
    (
        "firelens-denied",
        "task-role",
        "iam",
        Some("logs:CreateLogStream"),
        None,
    ),
    ("eni-timeout", "not-iam", "network", None, None),
    ("throttled-app", "not-iam", "app", None, None),
];

#[test]
fn why_every_scenario_gets_the_right_principal() {
    let mut failures = Vec::new();
    for (name, culprit, category, permission, policy) in SCENARIOS {
        let (code, v) = why_json(name);
        let verdict = &v["verdict"];
        let perms: Vec<String> = verdict["permissions"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_lowercase)).collect())
            .unwrap_or_default();
        let got = (
            verdict["culprit"].as_str().unwrap_or(""),
            verdict["category"].as_str().unwrap_or(""),
        );
        if got != (*culprit, *category) || code != 0 {
            failures.push(format!(
                "{name}: want {culprit}/{category} exit 0, got {}/{} exit {code} (rule {})",
                got.0, got.1, verdict["rule_id"]
            ));
        }
        if let Some(p) = permission {
            if !perms.contains(&p.to_lowercase()) {
                failures.push(format!("{name}: want permission {p}, got {perms:?}"));
            }
        }
        if let Some(p) = policy {
            if verdict["policy"].as_str() != Some(p) {
                failures.push(format!("{name}: want policy {p}, got {}", verdict["policy"]));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn why_names_the_role_arn_from_the_task_definition() {
    let (_, v) = why_json("exec-ssm-denied");
    assert_eq!(
        v["verdict"]["role_arn"],
        "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
    );
    assert_eq!(v["phase"], "startup");
    let (_, v) = why_json("runtime-task-role-s3");
    assert_eq!(
        v["verdict"]["role_arn"],
        "arn:aws:iam::123456789012:role/orders-api-task-role"
    );
    assert_eq!(
        v["verdict"]["resource"],
        "arn:aws:s3:::acme-orders-exports/2026/11/23/orders.csv"
    );
    assert_eq!(v["phase"], "runtime");
}

#[test]
fn why_missing_task_role_says_so() {
    let (_, v) = why_json("runtime-no-task-role");
    assert!(v["verdict"]["role_arn"].is_null());
    let reason = v["findings"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("no taskRoleArn"), "{reason}");
}

#[test]
fn why_resource_policy_denial_tells_who_must_act() {
    let (_, v) = why_json("ec2-repo-policy-denied");
    let who = v["verdict"]["who_must_act"].as_str().unwrap_or("");
    assert!(who.contains("owner of the resource"), "{who}");
    assert_eq!(
        v["verdict"]["role_arn"],
        "arn:aws:iam::111111111111:role/ecsInstanceRole"
    );
}

#[test]
fn why_json_contract_has_every_field() {
    let (_, v) = why_json("exec-ssm-denied");
    assert_eq!(v["version"], 1);
    for k in ["task_arn", "launch_type", "phase", "verdict", "findings"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    for k in [
        "culprit",
        "category",
        "role_arn",
        "permissions",
        "resource",
        "policy",
        "summary",
        "fix",
    ] {
        assert!(v["verdict"].get(k).is_some(), "missing verdict.{k}");
    }
    for k in ["rule_id", "source", "evidence", "culprit", "category", "permissions"] {
        assert!(v["findings"][0].get(k).is_some(), "missing findings[].{k}");
    }
}

#[test]
fn why_no_match_is_inconclusive_with_exit_1() {
    let (code, v) = why_json("no-match");
    assert_eq!(code, 1);
    assert_eq!(v["verdict"]["culprit"], "unknown");
}

#[test]
fn why_running_task_is_reported_not_an_error() {
    let p = fixture("running-task");
    let o = run(&["why", "--from", p.to_str().expect("utf8"), "--format", "json"]);
    // A RUNNING task has no stop reason to explain yet: inconclusive, not an error.
    assert_eq!(o.code, 1, "exit {}: {}", o.code, o.stderr);
    assert!(o.stdout.contains("not STOPPED"), "{}", o.stdout);
}

#[test]
fn why_reads_describe_tasks_from_stdin() {
    let text = std::fs::read(fixture("exec-ecr-auth-denied").join("describe-tasks.json")).expect("fixture");
    let o = run_stdin(&["why", "--from", "-", "--format", "json"], &text);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["verdict"]["culprit"], "execution-role");
}

#[test]
fn color_only_when_asked_or_on_a_terminal() {
    let p = fixture("exec-ssm-denied");
    let p = p.to_str().expect("utf8");
    let always = run(&["--color", "always", "why", "--from", p]);
    assert!(always.stdout.contains("\x1b["), "--color always must color");
    let piped = run(&["why", "--from", p]);
    assert!(!piped.stdout.contains('\x1b'), "piped output must not be colored");
    let o = cmd()
        .args(["why", "--from", p])
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert!(!String::from_utf8_lossy(&o.stdout).contains('\x1b'));
    let md = run(&["--color", "always", "why", "--from", p, "--format", "markdown"]);
    assert!(!md.stdout.contains('\x1b'), "markdown is never colored");
}

#[test]
fn hostile_log_content_is_neutralised_in_every_format() {
    let p = fixture("hostile-log");
    let p = p.to_str().expect("utf8");
    for format in ["text", "markdown", "json"] {
        let o = run(&[
            "--color",
            "never",
            "why",
            "--from",
            p,
            "--format",
            format,
            "--max-evidence",
            "50",
        ]);
        assert_eq!(o.code, 0, "{format}: {}", o.stderr);
        assert!(
            !o.stdout.contains('\x1b') && !o.stdout.contains('\x07'),
            "{format} leaked an escape"
        );
        assert!(!o.stdout.contains("\\u001b"), "{format} leaked an escaped ESC");
        assert!(
            !o.stdout.contains("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "{format} leaked a secret key"
        );
        assert!(
            !o.stdout.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{format} leaked a token"
        );
    }
    let md = run(&["why", "--from", p, "--format", "markdown", "--max-evidence", "50"]).stdout;
    assert!(
        !md.contains("@channel") && !md.contains("<!here>"),
        "markdown can ping: {md}"
    );
    // Outside code blocks nothing may render as a link; inside them markdown is inert.
    let outside: String = md.split("```").step_by(2).collect();
    assert!(!outside.contains("](https://evil"), "markdown renders a link: {md}");
}

#[test]
fn explain_reads_text_and_stdin() {
    let text = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/7cb7b3bcc4b642298dc313b41fdc8d9d is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/x";
    let o = run(&["explain", "--format", "json", text]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["verdict"]["culprit"], "execution-role");
    let o = run_stdin(&["explain", "--format", "json"], b"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/nginx:latest: failed to do request: Head \"https://registry-1.docker.io/v2/library/nginx/manifests/latest\": dial tcp 54.236.113.205:443: i/o timeout");
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(
        (v["verdict"]["culprit"].as_str(), v["verdict"]["category"].as_str()),
        (Some("not-iam"), Some("network"))
    );
    let o = run(&["explain", "   "]);
    assert_eq!(o.code, 2);
}

fn one_line_error(o: &Out) -> &str {
    o.one_line_error()
}

#[test]
fn bad_bundles_name_the_file_and_exit_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let dt = d.join("describe-tasks.json");
    let cases: &[(&[u8], &str)] = &[
        (b"", "is empty"),
        (b"{\"tasks\": [", "not valid JSON"),
        (b"[1,2]", "JSON array"),
        (b"{\"taskDefinition\": {}}", "no `tasks`"),
        (b"{\"tasks\": [{\"containers\": 7}]}", "wrong shape"),
        (b"\xff\xfe{\"tasks\": []}", "not UTF-8"),
        (b"{\"tasks\": [\x00]}", "not valid JSON"),
        (b"{\"tasks\": [], \"failures\": [{\"arn\": \"arn:aws:ecs:us-east-1:123456789012:task/c/aaaa0000aaaa0000aaaa0000aaaa0000\", \"reason\": \"MISSING\"}]}", "MISSING"),
    ];
    for (bytes, says) in cases {
        std::fs::write(&dt, bytes).expect("write");
        let o = run(&["why", "--from", d.to_str().expect("utf8")]);
        assert_eq!(o.code, 2, "{says}: {}", o.stderr);
        let e = one_line_error(&o);
        assert!(
            e.contains("describe-tasks.json") && e.contains(says),
            "want {says:?}: {e}"
        );
    }
    let o = run(&["why", "--from", "/nonexistent/bundle"]);
    assert_eq!(o.code, 2);
    assert!(one_line_error(&o).contains("/nonexistent/bundle"));
}

#[test]
fn a_bad_task_definition_or_log_file_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::copy(
        fixture("runtime-task-role-s3").join("describe-tasks.json"),
        d.join("describe-tasks.json"),
    )
    .expect("copy");
    std::fs::write(d.join("describe-task-definition.json"), b"{\"tags\": []}").expect("write");
    let o = run(&["why", "--from", d.to_str().expect("utf8")]);
    assert_eq!(o.code, 2);
    assert!(one_line_error(&o).contains("describe-task-definition.json"));
    std::fs::remove_file(d.join("describe-task-definition.json")).expect("rm");
    std::fs::create_dir(d.join("logs")).expect("mkdir");
    std::fs::write(d.join("logs/app.json"), b"{\"events\": \"nope\"}").expect("write");
    let o = run(&["why", "--from", d.to_str().expect("utf8")]);
    assert_eq!(o.code, 2);
    assert!(one_line_error(&o).contains("logs/app.json"));
}

#[test]
fn a_bundle_with_several_tasks_needs_the_task_argument() {
    let dir = tempfile::tempdir().expect("tmp");
    let one: Value =
        serde_json::from_slice(&std::fs::read(fixture("oom-killed").join("describe-tasks.json")).expect("read"))
            .expect("json");
    let two: Value =
        serde_json::from_slice(&std::fs::read(fixture("exec-ssm-denied").join("describe-tasks.json")).expect("read"))
            .expect("json");
    let both = serde_json::json!({ "tasks": [one["tasks"][0], two["tasks"][0]], "failures": [] });
    let f = dir.path().join("tasks.json");
    std::fs::write(&f, both.to_string()).expect("write");
    let o = run(&["why", "--from", f.to_str().expect("utf8")]);
    assert_eq!(o.code, 2);
    assert!(one_line_error(&o).contains("holds 2 tasks"));
    let arn = two["tasks"][0]["taskArn"].as_str().expect("arn");
    let o = run(&["why", arn, "--from", f.to_str().expect("utf8"), "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["task_arn"], arn);
}

#[test]
fn a_bad_task_argument_exits_2() {
    for bad in [
        "arn:aws:ecs:us-east-1:123456789012:service/prod/web",
        "not-a-task!",
        "arn:aws:ecs:us-east-1:1234:task/c/0f3c1e2d4b5a69788796a5b4c3d2e1f0",
    ] {
        let o = run(&["why", bad, "--from", fixture("oom-killed").to_str().expect("utf8")]);
        assert_eq!(o.code, 2, "{bad}");
        one_line_error(&o);
    }
}

#[test]
fn a_bad_user_rule_names_file_line_and_exits_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("team.toml");
    std::fs::write(
        &f,
        "[[rule]]\nid = \"team-denial\"\ntitle = \"t\"\nlook_in = [\"logs\"]\npattern = 'denied ('\nculprit = \"task-role\"\ncategory = \"iam\"\nfix = \"f\"\nexplain = \"e\"\ndocs = [\"https://example.com\"]\n[rule.examples]\nmatch = [\"denied x\"]\nno_match = [\"ok\"]\n",
    )
    .expect("write");
    let o = run(&["rules", "test", "--rules", f.to_str().expect("utf8")]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("team.toml:5: rule `team-denial`") && o.stderr.contains("not a valid regex"),
        "{}",
        o.stderr
    );
}

#[test]
fn user_rules_are_tested_and_used() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("team.toml");
    std::fs::write(
        &f,
        "[[rule]]\nid = \"ledger-quota-exhausted\"\ntitle = \"Ledger quota exhausted\"\nlook_in = [\"logs\"]\npattern = 'LEDGER-QUOTA-(?P<code>\\d+)'\nculprit = \"not-iam\"\ncategory = \"app\"\npriority = 95\nfix = \"Raise quota {code}\"\nexplain = \"e\"\ndocs = [\"https://example.com\"]\n[rule.examples]\nmatch = [\"LEDGER-QUOTA-42 hit\"]\nno_match = [\"LEDGER-QUOTA\"]\n",
    )
    .expect("write");
    let o = run(&["rules", "test", "--only-user", "--rules", f.to_str().expect("utf8")]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("1 rules, 2 examples passed, 0 failed"),
        "{}",
        o.stdout
    );
    let o = run(&[
        "explain",
        "--rules",
        f.to_str().expect("utf8"),
        "--format",
        "json",
        "LEDGER-QUOTA-42 hit, exiting",
    ]);
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["verdict"]["rule_id"], "ledger-quota-exhausted");
    assert_eq!(v["verdict"]["fix"], "Raise quota 42");
    // A failing example fails `rules test` with exit 1.
    let text = std::fs::read_to_string(&f)
        .expect("read")
        .replace("no_match = [\"LEDGER-QUOTA\"]", "no_match = [\"LEDGER-QUOTA-7\"]");
    std::fs::write(&f, text).expect("write");
    let o = run(&["rules", "test", "--only-user", "--rules", f.to_str().expect("utf8")]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("FAIL ledger-quota-exhausted"), "{}", o.stdout);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let o = ecsdoctor().run_closing_stdout(&["rules", "docs"]);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn help_and_subcommand_help_work() {
    for args in [
        &["--help"][..],
        &["why", "--help"],
        &["explain", "--help"],
        &["capture", "--help"],
        &["rules", "--help"],
    ] {
        let o = run(args);
        assert_eq!(o.code, 0, "{args:?}");
        assert!(o.stdout.contains("Usage:"), "{args:?}");
    }
    assert!(run(&["--help"]).stdout.contains("Exit codes:"));
    assert_eq!(run(&["why", "--format", "yaml"]).code, 2);
}

#[test]
fn completions_and_man_page_are_generated() {
    let o = run(&["completions", "bash"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("ecsdoctor"));
    let o = run(&["man"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains(".TH"));
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    ecsdoctor::cli::Cli::command().debug_assert();
}

/// Every subcommand's `--help` is a reviewed snapshot (cargo-deny): a changed flag or wording is a
/// diff someone reads.
#[test]
fn help_of_every_subcommand_is_reviewed() {
    let subcommands: &[&[&str]] = &[
        &[],
        &["why"],
        &["explain"],
        &["capture"],
        &["scan"],
        &["lambda"],
        &["rules"],
        &["rules", "list"],
        &["rules", "show"],
        &["rules", "test"],
        &["rules", "docs"],
        &["policy"],
        &["policy", "eval"],
        &["completions"],
        &["man"],
    ];
    for sub in subcommands {
        let mut args: Vec<&str> = sub.to_vec();
        args.push("--help");
        let o = ecsdoctor().env("COLUMNS", Some("100")).run(&args);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let name = if sub.is_empty() {
            "ecsdoctor".to_string()
        } else {
            sub.join("-")
        };
        insta::assert_snapshot!(format!("help-{name}"), o.stdout);
    }
}

/// `rules list` and `rules show` are reviewed snapshots: every name is the JSON contract's.
#[test]
fn rules_list_and_show_are_reviewed() {
    let list = run(&["rules", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    insta::assert_snapshot!("rules-list", list.stdout);
    for id in [
        "secret-ssm-access-denied",
        "ecr-pull-forbidden-cross-account",
        "exit-code-137-sigkill",
    ] {
        let show = run(&["rules", "show", id]);
        assert_eq!(show.code, 0, "{}", show.stderr);
        insta::assert_snapshot!(format!("rules-show-{id}"), show.stdout);
    }
}

/// The README's IAM policy for ecsdoctor names exactly the operations the allow-list lets out, no
/// more (a policy that grants writes) and no fewer (a read that would be denied).
#[test]
fn readme_iam_policy_is_the_allow_list() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let section = readme
        .split("## IAM policy for ecsdoctor itself")
        .nth(1)
        .and_then(|s| s.split("```json").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the README has the policy as a json block");
    let policy: serde_json::Value = serde_json::from_str(section).expect("the README's policy is JSON");
    let mut ops: Vec<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().and_then(|a| a.split(':').nth(1)).map(str::to_string))
        .collect();
    ops.sort();
    let mut allowed: Vec<String> = ecsdoctor::source::aws::ALLOWED_OPERATIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    allowed.sort();
    assert_eq!(ops, allowed);
}
