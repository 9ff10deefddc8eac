//! `ecsdoctor lambda` end to end, on 127.0.0.1 only: the real binary runs as a Lambda custom
//! runtime against a stand-in for the Runtime API (tests/support/lambda.rs), reads task
//! definitions and logs from a private moto (or a dead loopback port, to test degrading), reads
//! its webhook URL from an SSM SecureString in moto, and posts to a local webhook receiver and to
//! an SNS topic in moto. Each test kills the process once every queued event was answered.
//!
//! Covered: a diagnosable stop posted with its role and action; a user stop and a RUNNING event
//! posting nothing; a burst of 20 stops with one cause giving one message and one summary; a
//! secret in a container reason never reaching the chat; a webhook failing once (retried within
//! the invocation, which succeeds), one failing until the deadline and one answering 404 (both
//! reported as invocation errors) without ending the loop; every invocation answered; a webhook
//! URL from an SSM SecureString and SNS delivery; a non-HTTPS webhook and a bad setting refused
//! at init through `/runtime/init/error`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::bin::{dead_endpoint, event_sample};
use crate::support::lambda::{self, event, helper, seeded_task, sibling, tick, Cue, Invocation, Receiver, RuntimeApi};
use crate::support::moto::Moto;

/// How long a test waits for all answers.
const WAIT: Duration = Duration::from_secs(90);

fn statuses(api: &RuntimeApi) -> Vec<String> {
    api.answers()
        .iter()
        .map(|a| {
            if a.kind == "error" {
                // lambda_runtime sends `unhandled` in the header; the type is in the body.
                assert_eq!(a.error_type.as_deref(), Some("unhandled"));
                format!("error:{}", a.json()["errorType"].as_str().unwrap_or("?"))
            } else {
                a.json()["status"].as_str().unwrap_or("?").to_string()
            }
        })
        .collect()
}

/// Every event served was answered, once, in order, with a response or an error.
fn assert_all_answered(api: &RuntimeApi, n: usize, logs: &lambda::Logs) {
    let answered: Vec<String> = api.answers().iter().map(|a| a.id.clone()).collect();
    let expected: Vec<String> = (1..=n).map(|i| format!("req-{i}")).collect();
    assert_eq!(answered, expected, "every invocation answered once\n{}", logs.context());
    assert!(api.init_errors().is_empty(), "{:?}", api.init_errors());
}

/// A diagnosable stop is posted with its principal and action; a RUNNING event and a user's stop
/// post nothing; a secret quoted in a container reason never reaches the chat.
#[test]
fn lambda_posts_failures_only_with_role_and_action_and_no_secret() {
    let moto = Moto::start();
    let (task, seed) = seeded_task(&moto, "runtime-s3-denied");
    let task_id = seed["task_id"].as_str().expect("task_id");

    let mut user_stop = sibling(&task, 1);
    user_stop["stopCode"] = json!("UserInitiated");
    user_stop["stoppedReason"] = json!("Task stopped by user");

    let running = serde_json::from_str::<Value>(
        &std::fs::read_to_string(event_sample("task-state-change-running.json")).expect("sample"),
    )
    .expect("sample JSON");

    const PASSWORD: &str = "hunter2-Sup3rSecret-value";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    let mut leaky = sibling(&task, 2);
    leaky["stopCode"] = json!("EssentialContainerExited");
    leaky["containers"][0]["reason"] = json!(format!(
        "CannotStartContainerError: Error response from daemon: failed to create shim task: OCI runtime create failed: \
         env DB_PASSWORD={PASSWORD} AWS_SECRET_ACCESS_KEY={SECRET_KEY}: exec: \"/app/start\": permission denied"
    ));

    let events = vec![
        Invocation::new(&event(&task)),
        Invocation::new(&running),
        Invocation::new(&event(&user_stop)),
        Invocation::new(&event(&leaky)),
    ];
    let n = events.len();
    let api = RuntimeApi::start(events);
    let hook = Receiver::start(vec![]);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = hook.url("services/T000/B000/hook-token");
    let f = lambda::start(&api, &moto.endpoint, &[("ECSDOCTOR_WEBHOOK_URL", &url)], dir.path());
    let done = api.wait_answers(n, WAIT);
    let logs = f.stop();
    assert!(
        done,
        "not every event was answered: {:?}\n{}",
        statuses(&api),
        logs.context()
    );
    assert_all_answered(&api, n, &logs);
    assert_eq!(
        statuses(&api),
        ["posted", "skipped", "quiet", "posted"],
        "{}",
        logs.context()
    );

    let texts = hook.texts();
    assert_eq!(texts.len(), 2, "two messages: {texts:#?}");
    let first = &texts[0];
    assert!(
        first.starts_with("**Stopped ECS task** · cluster `ecsdoctor-live` · family `app`"),
        "{first}"
    );
    assert!(first.contains(&format!("task `{task_id}`")), "{first}");
    assert!(
        first.contains(&format!(
            "https://console.aws.amazon.com/ecs/v2/clusters/ecsdoctor-live/tasks/{task_id}/configuration?region=us-east-1"
        )),
        "{first}"
    );
    assert!(first.contains("IAM: the task role"), "{first}");
    assert!(
        first.contains("arn:aws:iam::123456789012:role/app-task-role"),
        "{first}"
    );
    assert!(first.contains("`s3:PutObject`"), "{first}");

    let leak = &texts[1];
    assert!(leak.contains("[REDACTED]"), "{leak}");
    for post in hook.posts() {
        assert!(
            !post.1.contains(PASSWORD) && !post.1.contains(SECRET_KEY),
            "a secret reached the chat: {}",
            post.1
        );
    }
    assert!(!logs.stdout.contains(PASSWORD) && !logs.stderr.contains(PASSWORD));

    // The event holds the task: no DescribeTasks; the task definition and logs were read.
    let ops: Vec<&str> = logs.calls.iter().map(|(_, o)| o.as_str()).collect();
    assert!(!ops.contains(&"DescribeTasks"), "{ops:?}");
    assert!(
        ops.contains(&"DescribeTaskDefinition") && ops.contains(&"GetLogEvents"),
        "{ops:?}"
    );
    // The webhook URL is a credential: never in the function's log.
    assert!(
        !logs.stdout.contains("hook-token") && !logs.stderr.contains("hook-token"),
        "{}",
        logs.context()
    );
    assert!(logs.stdout.contains("ecsdoctor: cold start in"), "{}", logs.context());
}

/// The runner checks the verdict against the account's policies as `why` does (on by default):
/// the task role's inline policy allows the denied `s3:PutObject`, so the message says the
/// verdict is contradicted, from IAM and S3 reads; with `ECSDOCTOR_VERIFY=false` nothing is read.
#[test]
fn lambda_checks_the_verdict_against_the_accounts_policies() {
    let moto = Moto::start();
    let (task, _) = seeded_task(&moto, "runtime-s3-denied");
    moto.seed_iam("task-role-allowed");
    for verify in [true, false] {
        // The default is to verify: leave the variable out for that run.
        let env: &[(&str, &str)] = if verify { &[] } else { &[("ECSDOCTOR_VERIFY", "false")] };
        let lambda::Run {
            api,
            hook,
            logs,
            answered,
        } = lambda::run(&moto, vec![Invocation::new(&event(&task))], env, WAIT);
        assert!(answered, "the event was not answered\n{}", logs.context());
        assert_eq!(statuses(&api), ["posted"], "{}", logs.context());
        let texts = hook.texts();
        let message = texts.first().expect("one message");
        let ops: Vec<&str> = logs.calls.iter().map(|(_, o)| o.as_str()).collect();
        if verify {
            assert!(
                message.contains("**Checked against the account:** contradicted"),
                "{message}"
            );
            assert!(message.contains("`s3:PutObject`"), "{message}");
            for op in ["GetRole", "ListRolePolicies", "GetRolePolicy", "GetBucketPolicy"] {
                assert!(ops.contains(&op), "{op} not read: {ops:?}");
            }
        } else {
            assert!(!message.contains("Checked against the account"), "{message}");
            assert!(!ops.iter().any(|o| o.starts_with("GetRole")), "{ops:?}");
        }
    }
}

/// A burst of 20 stops with one cause is one message, then one summary with the count, sent by
/// the first invocation after the window (here the scheduled tick).
#[test]
fn lambda_folds_a_burst_of_one_cause_into_one_summary() {
    let moto = Moto::start();
    let (task, _) = seeded_task(&moto, "startup-ssm-denied");
    let mut events: Vec<Invocation> = (0..20).map(|i| Invocation::new(&event(&sibling(&task, i)))).collect();
    events.push(Invocation::new(&tick()).after(Duration::from_secs(6)));
    let n = events.len();
    let lambda::Run {
        api,
        hook,
        logs,
        answered,
    } = lambda::run(&moto, events, &[("ECSDOCTOR_DEDUP_WINDOW", "5s")], WAIT);
    assert!(answered, "{:?}\n{}", statuses(&api), logs.context());
    assert_all_answered(&api, n, &logs);
    let st = statuses(&api);
    assert_eq!(st[0], "posted", "{st:?}");
    assert!(st[1..20].iter().all(|s| s == "folded"), "{st:?}\n{}", logs.context());
    assert_eq!(st[20], "tick");
    assert_eq!(api.answers()[20].json()["summaries"], 1);

    let texts = hook.texts();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(texts[0].contains("IAM: the task execution role"), "{}", texts[0]);
    assert!(texts[0].contains("ssm:GetParameters"), "{}", texts[0]);
    let summary = &texts[1];
    assert!(
        summary.starts_with(
            "**ecsdoctor — 19 more tasks stopped with the same cause** · cluster `ecsdoctor-live` · family `app`"
        ),
        "{summary}"
    );
    assert!(summary.contains("00000001"), "folded task ids are listed\n{summary}");
    eprintln!("burst messages:\n--- 1 ---\n{}\n--- 2 ---\n{}", texts[0], texts[1]);
}

/// A webhook that fails once is retried within the invocation (which then succeeds); one that
/// stays down until the deadline, or answers 404, fails its invocation with an error response;
/// the loop goes on. AWS is unreachable here: the verdict comes from the event alone, with a note.
#[test]
fn lambda_webhook_failures_fail_the_invocation_not_the_loop() {
    let sample = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(event_sample(name)).expect("sample")).expect("JSON")
    };
    let base = sample("ssm-secrets-denied.json");
    let with_cluster = |cluster: &str| {
        let text = base.to_string().replace("FargateCluster", cluster);
        serde_json::from_str::<Value>(&text).expect("JSON")
    };
    let events = vec![
        // 500 once, then 200: retried, posted.
        Invocation::new(&with_cluster("flaky")),
        // 500 every time: fails by its deadline.
        Invocation::new(&with_cluster("down")).timeout(Duration::from_secs(6)),
        // 404: a configuration error, not retried.
        Invocation::new(&with_cluster("gone")),
        // The loop is still alive.
        Invocation::new(&with_cluster("fine")),
    ];
    let n = events.len();
    let api = RuntimeApi::start(events);
    let hook = Receiver::start(vec![
        Cue {
            marker: "cluster `flaky`".into(),
            script: vec![500],
            then: 200,
        },
        Cue {
            marker: "cluster `down`".into(),
            script: vec![],
            then: 500,
        },
        Cue {
            marker: "cluster `gone`".into(),
            script: vec![],
            then: 404,
        },
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = hook.url("hook");
    let f = lambda::start(&api, &dead_endpoint(), &[("ECSDOCTOR_WEBHOOK_URL", &url)], dir.path());
    let done = api.wait_answers(n, WAIT);
    let logs = f.stop();
    assert!(done, "{:?}\n{}", statuses(&api), logs.context());
    assert_all_answered(&api, n, &logs);
    assert_eq!(
        statuses(&api),
        [
            "posted",
            "error:ecsdoctor.DeliveryFailed",
            "error:ecsdoctor.WebhookRejected",
            "posted"
        ],
        "{}",
        logs.context()
    );
    let posts = hook.posts();
    let count = |m: &str| posts.iter().filter(|(_, b, _)| b.contains(m)).count();
    assert_eq!(count("cluster `flaky`"), 2, "one failure, one retry");
    assert!(count("cluster `down`") >= 1);
    assert_eq!(count("cluster `gone`"), 1, "a 404 is not retried");
    let answers = api.answers();
    let down = answers[1].json();
    assert_eq!(down["errorType"], "ecsdoctor.DeliveryFailed");
    let msg = down["errorMessage"].as_str().unwrap_or_default();
    assert!(msg.contains("HTTP 500") && msg.contains("127.0.0.1"), "{msg}");
    assert!(!msg.contains("/hook"), "the URL's path is never quoted: {msg}");
    let gone = answers[2].json();
    assert!(
        gone["errorMessage"].as_str().unwrap_or_default().contains("HTTP 404"),
        "{gone}"
    );

    // Degraded, not lost: the verdict comes from the event, with a note about what was not read.
    let fine = hook
        .texts()
        .into_iter()
        .find(|t| t.contains("cluster `fine`"))
        .expect("posted");
    assert!(fine.contains("IAM: the task execution role"), "{fine}");
    assert!(fine.contains("_Note:_ could not read task definition"), "{fine}");
}

/// The webhook URL comes from an SSM SecureString, read once at the cold start; the message also
/// goes to an SNS topic (Publish, the runner's one write).
#[test]
fn lambda_reads_the_webhook_from_ssm_and_publishes_to_sns() {
    let moto = Moto::start();
    let hook = Receiver::start(vec![]);
    let url = hook.url("services/T000/B000/from-ssm-token");
    helper(&moto, &["secure-parameter", "/ecsdoctor/webhook", &url]);
    let sns = helper(&moto, &["topic-with-queue", "ecs-stops"]);
    let topic = sns["topic_arn"].as_str().expect("topic").to_string();
    let (task, _) = seeded_task(&moto, "network-ecr-timeout");
    let events = vec![
        Invocation::new(&event(&task)),
        Invocation::new(&event(&sibling(&task, 7))),
    ];
    let n = events.len();
    let api = RuntimeApi::start(events);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = lambda::start(
        &api,
        &moto.endpoint,
        &[
            ("ECSDOCTOR_WEBHOOK_PARAMETER", "/ecsdoctor/webhook"),
            ("ECSDOCTOR_SNS_TOPIC_ARN", &topic),
        ],
        dir.path(),
    );
    let done = api.wait_answers(n, WAIT);
    let logs = f.stop();
    assert!(done, "{:?}\n{}", statuses(&api), logs.context());
    assert_all_answered(&api, n, &logs);
    assert_eq!(statuses(&api), ["posted", "folded"], "{}", logs.context());
    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].0, "/services/T000/B000/from-ssm-token");
    assert!(hook.texts()[0].contains("Not IAM (network)"), "{}", hook.texts()[0]);

    let got = helper(&moto, &["receive", sns["queue_url"].as_str().expect("queue")]);
    let msgs = got.as_array().expect("messages");
    assert_eq!(msgs.len(), 1, "{got}");
    assert!(
        msgs[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Not IAM (network)"),
        "{got}"
    );
    assert!(msgs[0]["subject"]
        .as_str()
        .unwrap_or_default()
        .starts_with("ecsdoctor: stopped task in ecsdoctor-live"));

    let ops: Vec<String> = logs.calls.iter().map(|(s, o)| format!("{s}:{o}")).collect();
    assert_eq!(
        ops.iter().filter(|o| *o == "ssm:GetParameter").count(),
        1,
        "read once: {ops:?}"
    );
    assert_eq!(ops.iter().filter(|o| *o == "sns:Publish").count(), 1, "{ops:?}");
    assert!(!logs.stdout.contains("from-ssm-token") && !logs.stderr.contains("from-ssm-token"));
}

/// A plain-http webhook (not loopback) and a wrong ECSDOCTOR_NOTIFY_ON are refused at init: one
/// line to /runtime/init/error, the URL never quoted, no event fetched, exit code 2.
#[test]
fn lambda_refuses_bad_configuration_at_init() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "ECSDOCTOR_WEBHOOK_URL",
                "http://hooks.example.invalid/services/T0/B0/SECRETPATH",
            )],
            "is not an https:// URL",
        ),
        (
            &[
                (
                    "ECSDOCTOR_WEBHOOK_URL",
                    "https://hooks.example.invalid/services/T0/B0/SECRETPATH",
                ),
                ("ECSDOCTOR_NOTIFY_ON", "failures,bogus"),
            ],
            "ECSDOCTOR_NOTIFY_ON: `failures` is not a category",
        ),
    ];
    for (env, expected) in cases {
        let api = RuntimeApi::start(vec![Invocation::new(&tick())]);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = lambda::start(&api, &dead_endpoint(), env, dir.path());
        let code = f.wait_exit(Duration::from_secs(30));
        let logs = f.stop();
        assert_eq!(code, Some(2), "{}", logs.context());
        let errs = api.init_errors();
        assert_eq!(errs.len(), 1, "{errs:?}\n{}", logs.context());
        assert_eq!(errs[0].1.as_deref(), Some("Runtime.InitError"));
        let body: Value = serde_json::from_str(&errs[0].0).expect("init error is JSON");
        assert_eq!(body["errorType"], "ecsdoctor.ConfigError");
        let msg = body["errorMessage"].as_str().unwrap_or_default();
        assert!(msg.contains(expected), "{msg}");
        assert!(!msg.contains('\n') && !msg.contains("SECRETPATH"), "{msg}");
        assert!(api.served().is_empty(), "no event is fetched after an init error");
        assert!(!logs.stderr.contains("SECRETPATH"), "{}", logs.context());
        assert_eq!(logs.stderr.lines().count(), 1, "{}", logs.context());
    }
}

/// Outside Lambda the command says so in one line (no panic inside lambda_runtime).
#[test]
fn lambda_outside_lambda_is_one_line() {
    let out = crate::support::bin::ecsdoctor().run(&["lambda"]);
    assert_eq!(out.code, 2, "{}", out.context());
    assert!(
        out.one_line_error().contains("AWS_LAMBDA_RUNTIME_API is not set"),
        "{}",
        out.context()
    );
}
