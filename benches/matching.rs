//! Rule-matching throughput: `cargo bench --bench matching` diagnoses a task with a 100,000-line
//! log (and a 200,000-line log with a 5 MB line in it) and prints lines per second. Run by
//! `cargo test` (no `--bench` argument) it does one small pass as a smoke test, so it cannot rot.

use std::time::Instant;

use ecsdoctor::evidence::{Container, Evidence, LogLine, Task};
use ecsdoctor::rules::engine::Matcher;
use ecsdoctor::source::Limits;
use ecsdoctor::verdict::{diagnose, Options};

fn log(n: usize, huge_line: bool) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = (0..n)
        .map(|i| LogLine {
            timestamp: Some(i as i64),
            message: match i % 5 {
                0 => format!(
                    "2026-11-23T09:14:{:02}Z INFO request id={i} path=/orders/{i} status=200 duration_ms=12",
                    i % 60
                ),
                1 => format!("{{\"level\":\"debug\",\"msg\":\"cache miss\",\"key\":\"order:{i}\",\"ttl\":300}}"),
                2 => "    at com.acme.orders.Reconciler.run(Reconciler.java:88)".to_string(),
                3 => format!("GET /healthz 200 {i}us"),
                _ => {
                    format!("worker {i} processed batch of 52 messages from arn:aws:sqs:eu-west-1:123456789012:orders")
                }
            },
        })
        .collect();
    lines.push(LogLine {
        timestamp: Some(n as i64),
        message: "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: User: arn:aws:sts::123456789012:assumed-role/orders-task/0123456789abcdef0123456789abcdef is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::acme/x\" because no identity-based policy allows the s3:PutObject action".into(),
    });
    if huge_line {
        lines.insert(
            n / 2,
            LogLine {
                timestamp: None,
                message: "x".repeat(5 * 1024 * 1024),
            },
        );
    }
    lines
}

fn evidence(lines: Vec<LogLine>) -> Evidence {
    let mut notes = Vec::new();
    let logs = Limits::default().apply("app", lines, &mut notes);
    Evidence {
        task: Task {
            task_arn: Some("arn:aws:ecs:eu-west-1:123456789012:task/prod/0123456789abcdef0123456789abcdef".into()),
            last_status: Some("STOPPED".into()),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: vec![Container {
                name: "app".into(),
                exit_code: Some(1),
                ..Container::default()
            }],
            ..Task::default()
        },
        task_definition: None,
        logs: vec![logs],
        notes,
    }
}

fn run(m: &Matcher, label: &str, n: usize, huge: bool, reps: usize) {
    let ev = evidence(log(n, huge));
    let lines = ev.logs[0].lines.len();
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let d = diagnose(&ev, m, &Options::default());
        best = best.min(t.elapsed().as_secs_f64());
        assert!(d.verdict.rule_id.is_some(), "the denial must be found");
    }
    println!(
        "{label}: {lines} lines in {:.3} s (best of {reps}) = {:.0} lines/s",
        best,
        lines as f64 / best
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let t = Instant::now();
    let m = Matcher::load(true, &[]).expect("built-in rules");
    println!(
        "compiled {} rules in {:.3} s",
        m.rules().len(),
        t.elapsed().as_secs_f64()
    );
    if bench {
        run(&m, "100k-line log", 100_000, false, 5);
        run(&m, "200k-line log with a 5 MB line", 200_000, true, 3);
    } else {
        run(&m, "smoke (1k lines)", 1_000, true, 1);
    }
}
