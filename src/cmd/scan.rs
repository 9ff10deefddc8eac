//! `ecsdoctor scan`: every stopped task of a cluster (or one service or family), grouped by cause.
//!
//! The cost grows with the number of distinct causes, not of tasks: ListTasks pages, DescribeTasks
//! in batches of 100, each distinct task definition revision once (cached on disk), every task
//! diagnosed without logs, and only where that verdict is generic the logs of at most
//! `--log-samples` representatives per failure signature, whose verdict the rest of the signature
//! takes when they agree. The rounds are in `source::aws::scan`, the decisions in `scan::plan`;
//! this file only wires them. `--from FILE` scans a describe-tasks answer offline.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{aws_options, engine_options, load_rules, render_options, runtime, with_stdout, Failure, Outcome};
use crate::cli::ScanArgs;
use crate::error::{EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_OK};
use crate::evidence::{Task, TaskDefinition};
use crate::input::{read_text, Expect, Input};
use crate::rules::engine::Matcher;
use crate::scan::plan::{self, Filter};
use crate::scan::{self, ApiCalls, ScanReport, TaskResult, SCAN_SCHEMA_VERSION};
use crate::source::aws::{self, AwsOptions, Clients};
use crate::source::bundle::{self, DescribeTasks};
use crate::verdict::{diagnose, Options};

/// Attempts per request in a scan: a fleet read is where throttling happens, so the SDK's
/// standard retry gets more room than a single `why` does.
const SCAN_RETRY_ATTEMPTS: u32 = 5;

/// Runs `scan`.
pub fn run(args: &ScanArgs, color: bool) -> Outcome {
    let since = match &args.since {
        Some(s) => Some((
            s.clone(),
            scan::parse_since(s).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?,
        )),
        None => None,
    };
    if args.limit == 0 {
        return Err(Failure::new(EXIT_BAD_INPUT, "--limit must be at least 1"));
    }
    if args.concurrency == 0 {
        return Err(Failure::new(EXIT_BAD_INPUT, "--concurrency must be at least 1"));
    }
    let filter = Filter {
        service: args.service.clone(),
        since,
    };
    let matcher = load_rules(&args.output.rules)?;
    let eopts = engine_options(&args.output);
    let report = match &args.from {
        Some(from) => offline(from, args, &filter, &matcher, &eopts)?,
        None => live(args, &filter, &matcher, &eopts)?,
    };
    let ropts = render_options(&args.output, color);
    with_stdout(|w| crate::render::scan(&report, args.output.format, &ropts, w))?;
    Ok(if report.conclusive() {
        EXIT_OK
    } else {
        EXIT_INCONCLUSIVE
    })
}

const DESCRIBE_TASKS: &str = "the JSON output of `aws ecs describe-tasks` (an object with `tasks`)";

/// The scan of a describe-tasks answer: no task definitions (unless a bundle directory holds the
/// one the tasks ran) and no logs.
fn offline(
    from: &Path,
    args: &ScanArgs,
    filter: &Filter,
    matcher: &Matcher,
    eopts: &Options,
) -> Result<ScanReport, Failure> {
    let expect = Expect {
        what: DESCRIBE_TASKS,
        max_bytes: bundle::MAX_FILE_BYTES,
        lossy: false,
        non_empty: true,
    };
    let bad = |e: crate::input::InputError| Failure::new(EXIT_BAD_INPUT, e.to_string());
    let (file, dir) = if from.as_os_str() != "-" && from.is_dir() {
        (from.join("describe-tasks.json"), Some(from.to_path_buf()))
    } else {
        (from.to_path_buf(), None)
    };
    let input = Input::from_arg(&file);
    let name = input.name();
    let text = read_text(input, expect).map_err(bad)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: is not valid JSON ({e}); expected {DESCRIBE_TASKS}"),
        )
    })?;
    if !v.get("tasks").is_some_and(serde_json::Value::is_array) {
        return Err(Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: has no `tasks` array; expected {DESCRIBE_TASKS}"),
        ));
    }
    let dt: DescribeTasks = serde_json::from_value(v).map_err(|e| {
        Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: has the wrong shape ({e}); expected {DESCRIBE_TASKS}"),
        )
    })?;
    let mut notes = Vec::new();
    let td = match dir {
        Some(d) if d.join("describe-task-definition.json").is_file() => {
            let p = d.join("describe-task-definition.json");
            let text = read_text(
                Input::File(&p),
                Expect {
                    what: "the JSON output of `aws ecs describe-task-definition`",
                    ..expect
                },
            )
            .map_err(bad)?;
            Some(bundle::parse_task_definition(&text, &p.display().to_string())?)
        }
        _ => None,
    };
    if !dt.failures.is_empty() {
        notes.push(format!(
            "{} task(s) are in failures[] (e.g. reason {}): ECS no longer knows them",
            dt.failures.len(),
            dt.failures[0].reason.as_deref().unwrap_or("unknown")
        ));
    }
    let mut tasks = dt.tasks;
    tasks.truncate(args.limit);
    let mut tasks = plan::filter_tasks(tasks, filter, &mut notes);
    plan::sort_tasks(&mut tasks);
    let defs: BTreeMap<String, TaskDefinition> = td
        .into_iter()
        .filter_map(|t| t.task_definition_arn.clone().map(|a| (a, t)))
        .collect();
    let results = plan::diagnose_all(&tasks, &defs, matcher, eopts);
    let would_read = results
        .iter()
        .filter(|r| scan::needs_logs(&r.diagnosis, matcher))
        .count();
    notes.insert(
        0,
        format!(
            "offline (--from {}): {} and no logs were read, so role names come from the messages alone",
            from.display(),
            if defs.is_empty() {
                "no task definitions".to_string()
            } else {
                "only describe-task-definition.json".to_string()
            }
        ),
    );
    if would_read > 0 {
        notes.push(format!(
            "{would_read} task(s) stopped with a generic reason that their logs would explain: scan the cluster live, or `ecsdoctor why` one of them"
        ));
    }
    let cluster = args.aws.cluster.clone().or_else(|| plan::common_cluster(&tasks));
    Ok(build_report(
        args,
        cluster,
        &tasks,
        results,
        0,
        ApiCalls::default(),
        notes,
    ))
}

fn build_report(
    args: &ScanArgs,
    cluster: Option<String>,
    tasks: &[Task],
    results: Vec<TaskResult>,
    logs_read: usize,
    api_calls: ApiCalls,
    notes: Vec<String>,
) -> ScanReport {
    let revisions: std::collections::BTreeSet<&str> =
        tasks.iter().filter_map(|t| t.task_definition_arn.as_deref()).collect();
    ScanReport {
        version: SCAN_SCHEMA_VERSION,
        cluster,
        service: args.service.clone(),
        family: args.family.clone(),
        since: args.since.clone(),
        tasks: tasks.len(),
        logs_read,
        inferred: results.iter().filter(|r| r.inferred).count(),
        task_definitions: revisions.len(),
        service_events: 0,
        groups: scan::group(&results),
        api_calls,
        notes,
    }
}

/// A progress bar on stderr, only when stderr is a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new() -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let pb = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}") {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(pb))
    }

    fn phase(&self, msg: &str, len: usize) {
        if let Some(pb) = &self.0 {
            pb.set_message(msg.to_string());
            pb.set_length(len as u64);
            pb.set_position(0);
        }
    }

    fn inc(&self, n: usize) {
        if let Some(pb) = &self.0 {
            pb.inc(n as u64);
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

/// The live scan.
fn live(args: &ScanArgs, filter: &Filter, matcher: &Matcher, eopts: &Options) -> Result<ScanReport, Failure> {
    let opts = AwsOptions {
        retry_attempts: SCAN_RETRY_ATTEMPTS,
        ..aws_options(&args.aws)?
    };
    let rt = runtime()?;
    let progress = Progress::new();
    let out = rt.block_on(scan_live(args, filter, matcher, eopts, &opts, &progress));
    progress.finish();
    out
}

async fn scan_live(
    args: &ScanArgs,
    filter: &Filter,
    matcher: &Matcher,
    eopts: &Options,
    opts: &AwsOptions,
    progress: &Progress,
) -> Result<ScanReport, Failure> {
    let clients = Clients::new(opts, None).await?;
    let cluster = opts.cluster.clone().unwrap_or_else(|| "default".into());
    let n = args.concurrency;
    let inc = |k: usize| progress.inc(k);
    let mut notes = Vec::new();

    progress.phase("listing and describing stopped tasks", 0);
    let selection = aws::scan::Selection {
        cluster: &cluster,
        service: args.service.as_deref(),
        family: args.family.as_deref(),
        limit: args.limit,
    };
    // The service's own event log tells of failures no task does (placement, rollbacks): read it
    // beside the task list.
    let events = async {
        match args.service.as_deref() {
            Some(svc) => Some(aws::task::service_events(&clients, &cluster, svc, opts).await),
            None => None,
        }
    };
    let (tasks_read, events) = tokio::join!(aws::scan::stopped_tasks(&clients, &selection, n, opts, &inc), events);
    let (described, listed) = tasks_read?;
    let event_results = match events {
        Some(Ok(events)) => plan::event_results(&events, filter, matcher, eopts),
        Some(Err(e)) => {
            notes.push(format!("the service's events were not read: {e}"));
            Vec::new()
        }
        None => Vec::new(),
    };
    if described.len() < listed {
        notes.push(format!(
            "{} listed task(s) were gone by the time they were described",
            listed - described.len()
        ));
    }
    let mut tasks = plan::filter_tasks(described, filter, &mut notes);
    plan::sort_tasks(&mut tasks);

    let revisions: Vec<String> = {
        let mut seen = std::collections::BTreeSet::new();
        tasks
            .iter()
            .filter_map(|t| t.task_definition_arn.clone())
            .filter(|a| seen.insert(a.clone()))
            .collect()
    };
    progress.phase("reading task definitions", revisions.len());
    let (defs, td_notes) = aws::scan::task_definitions(&clients, revisions, &cluster, n, opts, &inc).await?;
    notes.extend(td_notes);

    let mut results = plan::diagnose_all(&tasks, &defs, matcher, eopts);
    let (signatures, reps) = plan::representatives(&results, &tasks, matcher, args.log_samples);
    progress.phase("reading logs of representative tasks", reps.len());
    let wanted = reps.iter().map(|&i| (i, plan::evidence_of(&tasks[i], &defs))).collect();
    let mut logs_read = 0;
    let mut log_errors: BTreeMap<String, usize> = BTreeMap::new();
    for (i, ev) in aws::scan::read_logs(&clients, wanted, n, opts, &inc).await {
        for note in ev.notes.iter().filter(|n| n.contains(" not read: ")) {
            *log_errors.entry(note.clone()).or_default() += 1;
        }
        if ev.logs.is_empty() {
            continue;
        }
        logs_read += 1;
        results[i] = plan::result_of(&tasks[i], diagnose(&ev, matcher, eopts), true, false);
    }
    for (e, count) in log_errors {
        notes.push(format!("{count} task(s): {e}"));
    }
    plan::infer_from_representatives(&mut results, &signatures, &mut notes);
    if !args.verify.no_verify {
        progress.phase("checking the roles' policies", 0);
        verify_groups(
            &mut results,
            &tasks,
            &defs,
            &clients,
            matcher,
            eopts,
            args,
            opts,
            &mut notes,
        )
        .await;
    }

    let api_calls = ApiCalls::count(clients.tracer.calls().iter().map(|c| c.2.as_str()));
    // Failure events group with the tasks of the same cause.
    let service_events = event_results.len();
    results.extend(event_results);
    let mut report = build_report(args, Some(cluster), &tasks, results, logs_read, api_calls, notes);
    report.service_events = service_events;
    Ok(report)
}

/// Checks each failure signature's verdict once against the account's policies: one
/// representative per group (the first whose logs were read, else the first), at most
/// `--concurrency` groups at once on one reader (a role shared by groups is read once, even when
/// two groups ask at the same time), within `--timeout`; every task of the group carries the
/// result. Rounds are counted as the deepest group's: groups' stages run side by side.
#[allow(clippy::too_many_arguments)]
async fn verify_groups(
    results: &mut [TaskResult],
    tasks: &[Task],
    defs: &BTreeMap<String, TaskDefinition>,
    clients: &Clients,
    matcher: &Matcher,
    eopts: &Options,
    args: &ScanArgs,
    opts: &AwsOptions,
    notes: &mut Vec<String>,
) {
    use futures_util::StreamExt;
    if eopts.redact.accounts {
        notes.push("verdicts were not checked against the account's policies: --redact-accounts masks the account ids they need (run `ecsdoctor why` on one task of a group)".into());
        return;
    }
    // Tasks only: the results after them are service events, with no task to verify.
    let groups = scan::members_by_key(&results[..tasks.len().min(results.len())]);
    let deadline = std::time::Instant::now() + opts.timeout;
    let reader = aws::policies::LiveReader::new(
        clients.signed.clone(),
        clients.tracer.clone(),
        std::sync::Arc::default(),
        deadline,
    );
    let deepest = std::sync::atomic::AtomicUsize::new(0);
    let k = matcher.knowledge();
    let simulate = args.verify.simulate;
    let work = groups.values().map(|(rep, members)| {
        let rep = *rep;
        let ev = plan::evidence_of(&tasks[rep], defs);
        let mut d = (*results[rep].diagnosis).clone();
        let group_reader = GroupReader {
            inner: &reader,
            tracer: &clients.tracer,
            stage: std::sync::atomic::AtomicUsize::new(0),
            deepest: &deepest,
        };
        async move {
            let plain = d.clone();
            crate::verify::verify_diagnosis(&mut d, &plain, &ev, &group_reader, simulate, k, eopts).await;
            (members.clone(), d)
        }
    });
    let all = futures_util::stream::iter(work)
        .buffer_unordered(args.concurrency.max(1))
        .collect::<Vec<_>>();
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let Ok(done) = tokio::time::timeout(left, all).await else {
        notes.push(format!(
            "verdicts were not checked against the account's policies: AWS did not answer within {} s (--timeout)",
            opts.timeout.as_secs()
        ));
        return;
    };
    for (members, d) in done {
        if d.verdict.verification.is_none() {
            continue;
        }
        let d = std::sync::Arc::new(d);
        for i in members {
            results[i].diagnosis = d.clone();
        }
    }
}

/// One group's view of the scan's reader: its stages count as rounds only when no other group
/// has gone that deep yet, so the trace's rounds are the deepest chain, not the sum of groups.
struct GroupReader<'a> {
    inner: &'a aws::policies::LiveReader,
    tracer: &'a aws::Tracer,
    stage: std::sync::atomic::AtomicUsize,
    deepest: &'a std::sync::atomic::AtomicUsize,
}

impl crate::verify::Reader for GroupReader<'_> {
    async fn read(&self, call: &crate::verify::Call) -> Result<serde_json::Value, crate::verify::ReadError> {
        crate::verify::Reader::read(self.inner, call).await
    }

    fn has(&self, call: &crate::verify::Call) -> bool {
        crate::verify::Reader::has(self.inner, call)
    }

    fn next_round(&self) {
        use std::sync::atomic::Ordering;
        let mine = self.stage.fetch_add(1, Ordering::SeqCst) + 1;
        if self.deepest.fetch_max(mine, Ordering::SeqCst) < mine {
            self.tracer.next_round();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_cluster_only_when_shared() {
        let t = |c: &str| Task {
            cluster_arn: Some(format!("arn:aws:ecs:us-east-1:123456789012:cluster/{c}")),
            ..Task::default()
        };
        assert_eq!(plan::common_cluster(&[t("a"), t("a")]), Some("a".into()));
        assert_eq!(plan::common_cluster(&[t("a"), t("b")]), None);
        assert_eq!(plan::common_cluster(&[]), None);
    }
}
