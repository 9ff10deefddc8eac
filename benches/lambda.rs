//! The Lambda runner's own cost: `scripts/bench-lambda.sh` (or `cargo bench --bench lambda`) runs
//! the release `ecsdoctor lambda` against the Runtime API stand-in and moto, both on 127.0.0.1,
//! and prints its cold start (process start to its first `/next`) and the time per invocation
//! (the stand-in handing out an event to the runner posting its answer), with and without
//! verification, over EVENTS stops of one service (the task role's policies seeded, so
//! verification has real reads to make). Run by `cargo test` (no `--bench` argument) it handles
//! two events as a smoke test, so it cannot rot.

use std::time::Duration;

#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use support::lambda::{self, event, seeded_task, sibling, Invocation};
use support::moto::Moto;

const EVENTS: usize = 30;
const WAIT: Duration = Duration::from_secs(120);

struct Timing {
    cold_start: Duration,
    first: Duration,
    median: Duration,
    min: Duration,
    max: Duration,
    statuses: Vec<String>,
}

/// Runs one runner over `n` stops of the seeded task's service and times it.
fn run(moto: &Moto, task: &serde_json::Value, n: usize, verify: bool) -> Timing {
    let events: Vec<Invocation> = (0..n).map(|i| Invocation::new(&event(&sibling(task, i)))).collect();
    let env = [
        ("ECSDOCTOR_DEDUP_WINDOW", "0"),
        ("ECSDOCTOR_VERIFY", if verify { "true" } else { "false" }),
    ];
    let lambda::Run {
        api, logs, answered, ..
    } = lambda::run(moto, events, &env, WAIT);
    assert!(
        answered,
        "the runner answered too few events; its log:\n{}",
        logs.stderr
    );
    let answers = api.answers();
    let mut took: Vec<Duration> = answers.iter().map(|a| a.took).collect();
    let first = took[0];
    took.sort();
    Timing {
        cold_start: api.cold_start().expect("the runner asked for an event"),
        first,
        median: took[n / 2],
        min: took[0],
        max: took[n - 1],
        statuses: answers.iter().map(|a| a.kind.clone()).collect(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let moto = Moto::start();
    let (task, _) = seeded_task(&moto, "runtime-s3-denied");
    // The task role's inline policy, so verification reads and evaluates real policies.
    moto.seed_iam("task-role-allowed");
    let n = if bench { EVENTS } else { 2 };
    let plain = run(&moto, &task, n, false);
    let verified = run(&moto, &task, n, true);
    for t in [&plain, &verified] {
        assert!(
            t.statuses.iter().all(|s| s == "response"),
            "every invocation succeeds: {:?}",
            t.statuses
        );
    }
    println!(
        "ecsdoctor lambda ({}) against the Runtime API stand-in and moto, {n} events each",
        lambda::binary().display()
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "", "cold start", "first", "median", "min", "max"
    );
    for (label, t) in [("no verification", &plain), ("verifying", &verified)] {
        println!(
            "{label:<22} {:>10} {:>10} {:>10} {:>8} {:>8}",
            ms(t.cold_start),
            ms(t.first),
            ms(t.median),
            ms(t.min),
            ms(t.max)
        );
    }
    println!("(ms; cold start: process start to the first /next; per invocation: event handed out to answer posted)");
    if !bench {
        println!("smoke run: `cargo bench --bench lambda` or scripts/bench-lambda.sh measures {EVENTS} events");
    }
}
