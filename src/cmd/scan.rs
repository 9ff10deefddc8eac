//! `ecsdoctor scan`: every stopped task of a cluster (or one service or family), grouped by cause.
//!
//! The cost grows with the number of distinct causes, not of tasks:
//! 1. `ListTasks` (desired status STOPPED) pages;
//! 2. `DescribeTasks` in batches of 100, a few in flight;
//! 3. each distinct task definition revision once (`DescribeTaskDefinition`, cached on disk);
//! 4. every task diagnosed without logs; only where that verdict is generic (a bare exit, nothing
//!    matched) are logs read, and then for at most `--log-samples` tasks per failure signature
//!    (same revision, stop code, normalised stop reason, container reasons and exit codes). When
//!    those representatives agree, the rest of the signature takes their verdict.
//!
//! Requests run at most `--concurrency` at a time (a tokio Semaphore); throttling errors that
//! survive the SDK's own retries are retried again with exponential backoff. `--from FILE` scans a
//! describe-tasks answer offline.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{aws_options, engine_options, load_rules, render_options, runtime, with_stdout, Failure, Outcome};
use crate::cli::ScanArgs;
use crate::error::{SourceError, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_OK};
use crate::evidence::{Evidence, Task, TaskDefinition};
use crate::rules::engine::Matcher;
use crate::scan::{self, ApiCalls, GroupKey, ScanReport, TaskResult, SCAN_SCHEMA_VERSION};
use crate::source::aws::{self, AwsOptions, Clients};
use crate::source::bundle::{self, DescribeTasks};
use crate::source::Limits;
use crate::verdict::{diagnose, Diagnosis, Options};

/// Throttled requests are retried this many times after the SDK's own attempts.
const THROTTLE_RETRIES: u32 = 4;

/// Runs `scan`.
pub fn run(args: &ScanArgs, color: bool) -> Outcome {
    let since = match &args.since {
        Some(s) => Some(scan::parse_since(s).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?),
        None => None,
    };
    if args.limit == 0 {
        return Err(Failure::new(EXIT_BAD_INPUT, "--limit must be at least 1"));
    }
    if args.concurrency == 0 {
        return Err(Failure::new(EXIT_BAD_INPUT, "--concurrency must be at least 1"));
    }
    let matcher = load_rules(&args.output.rules)?;
    let eopts = engine_options(&args.output);
    let report = match &args.from {
        Some(from) => offline(from, args, since, &matcher, &eopts)?,
        None => live(args, since, &matcher, &eopts)?,
    };
    let ropts = render_options(&args.output, color);
    with_stdout(|w| scan::render(&report, args.output.format, &ropts, w))?;
    Ok(if report.conclusive() {
        EXIT_OK
    } else {
        EXIT_INCONCLUSIVE
    })
}

/// The scan of a describe-tasks answer: no task definitions (unless a bundle directory holds the
/// one the tasks ran) and no logs.
fn offline(
    from: &Path,
    args: &ScanArgs,
    since: Option<Duration>,
    matcher: &Matcher,
    eopts: &Options,
) -> Result<ScanReport, Failure> {
    let (name, text, dir) = read_describe_tasks(from)?;
    let what = "the JSON output of `aws ecs describe-tasks` (an object with `tasks`)";
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: is not valid JSON ({e}); expected {what}"),
        )
    })?;
    if !v.get("tasks").is_some_and(serde_json::Value::is_array) {
        return Err(Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: has no `tasks` array; expected {what}"),
        ));
    }
    let dt: DescribeTasks = serde_json::from_value(v).map_err(|e| {
        Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: has the wrong shape ({e}); expected {what}"),
        )
    })?;
    let mut notes = Vec::new();
    let td = match dir {
        Some(d) if d.join("describe-task-definition.json").is_file() => {
            let p = d.join("describe-task-definition.json");
            let text = read_bounded(&p)?;
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
    let mut tasks = filter_tasks(tasks, args, since, &mut notes);
    sort_tasks(&mut tasks);
    let defs: BTreeMap<String, TaskDefinition> = td
        .into_iter()
        .filter_map(|t| t.task_definition_arn.clone().map(|a| (a, t)))
        .collect();
    let mut results = Vec::new();
    let mut would_read = 0;
    for t in &tasks {
        let ev = Evidence {
            task: t.clone(),
            task_definition: t.task_definition_arn.as_ref().and_then(|a| defs.get(a)).cloned(),
            ..Evidence::default()
        };
        let d = diagnose(&ev, matcher, eopts);
        if scan::needs_logs(&d, matcher) {
            would_read += 1;
        }
        results.push(result_of(t, d, false, false));
    }
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
    let cluster = args.aws.cluster.clone().or_else(|| common_cluster(&tasks));
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

/// The file to read for `--from`: `-`, a describe-tasks file, or a bundle directory. Returns the
/// name for messages, the text, and the directory (for a bundle).
fn read_describe_tasks(from: &Path) -> Result<(String, String, Option<std::path::PathBuf>), Failure> {
    if from.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(bundle::MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(EXIT_BAD_INPUT, format!("standard input: cannot read: {e}")))?;
        let text = to_text(bytes, "standard input")?;
        return Ok(("standard input".into(), text, None));
    }
    if from.is_dir() {
        let p = from.join("describe-tasks.json");
        let text = read_bounded(&p)?;
        return Ok((p.display().to_string(), text, Some(from.to_path_buf())));
    }
    Ok((from.display().to_string(), read_bounded(from)?, None))
}

fn read_bounded(p: &Path) -> Result<String, Failure> {
    let name = p.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(p)
        .and_then(|f| f.take(bundle::MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            Failure::new(EXIT_BAD_INPUT, format!("{name}: cannot read: {why}"))
        })?;
    to_text(bytes, &name)
}

fn to_text(bytes: Vec<u8>, name: &str) -> Result<String, Failure> {
    if bytes.len() as u64 > bundle::MAX_FILE_BYTES {
        return Err(Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: more than {} bytes", bundle::MAX_FILE_BYTES),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        Failure::new(
            EXIT_BAD_INPUT,
            format!("{name}: is not UTF-8 text; expected the JSON output of `aws ecs describe-tasks`"),
        )
    })
}

/// The cluster name all tasks share, if they do.
fn common_cluster(tasks: &[Task]) -> Option<String> {
    let names: Vec<&str> = tasks
        .iter()
        .filter_map(|t| t.cluster_arn.as_deref())
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .collect();
    let first = *names.first()?;
    names.iter().all(|n| *n == first).then(|| first.to_string())
}

/// Applies `--service` (by the task's group, since not every ListTasks honours serviceName) and
/// `--since` (by stoppedAt; tasks without one are kept and counted in a note).
fn filter_tasks(tasks: Vec<Task>, args: &ScanArgs, since: Option<Duration>, notes: &mut Vec<String>) -> Vec<Task> {
    let mut tasks = tasks;
    if let Some(svc) = &args.service {
        let want = format!("service:{svc}");
        let before = tasks.len();
        tasks.retain(|t| t.group.as_deref().is_none_or(|g| g == want));
        if tasks.len() < before {
            notes.push(format!(
                "{} listed task(s) did not belong to service {svc} (their group is not `{want}`) and were left out",
                before - tasks.len()
            ));
        }
    }
    if let (Some(d), Some(raw)) = (since, &args.since) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let cutoff = now - d.as_millis() as i64;
        let before = tasks.len();
        let unknown = tasks.iter().filter(|t| t.stopped_at.is_none()).count();
        tasks.retain(|t| t.stopped_at.is_none_or(|s| s.0 >= cutoff));
        if tasks.len() < before {
            notes.push(format!(
                "{} task(s) stopped more than {raw} ago were left out (--since)",
                before - tasks.len()
            ));
        }
        if unknown > 0 {
            notes.push(format!(
                "{unknown} task(s) have no stoppedAt and were kept: --since could not judge them"
            ));
        }
    }
    tasks
}

/// Newest first, then by ARN: the order tasks are diagnosed and representatives picked in.
fn sort_tasks(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| {
        b.stopped_at
            .cmp(&a.stopped_at)
            .then_with(|| a.task_arn.cmp(&b.task_arn))
    });
}

fn result_of(t: &Task, d: Diagnosis, logs_read: bool, inferred: bool) -> TaskResult {
    TaskResult {
        task_arn: t.task_arn.clone().unwrap_or_else(|| "(no taskArn)".into()),
        stopped_at: t.stopped_at,
        diagnosis: Arc::new(d),
        logs_read,
        inferred,
    }
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
        tasks: results.len(),
        logs_read,
        inferred: results.iter().filter(|r| r.inferred).count(),
        task_definitions: revisions.len(),
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
fn live(args: &ScanArgs, since: Option<Duration>, matcher: &Matcher, eopts: &Options) -> Result<ScanReport, Failure> {
    let opts = aws_options(&args.aws)?;
    let rt = runtime()?;
    let progress = Progress::new();
    let out = rt.block_on(scan_live(args, since, matcher, eopts, &opts, &progress));
    progress.finish();
    out
}

/// Runs `f` under the per-request `--timeout`, retrying throttling with exponential backoff.
async fn request<T, F, Fut>(timeout: Duration, f: F) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SourceError>>,
{
    request_with(timeout, Duration::from_millis(400), f).await
}

/// [`request`] with the first backoff delay given (it doubles on each retry).
async fn request_with<T, F, Fut>(timeout: Duration, first_delay: Duration, mut f: F) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SourceError>>,
{
    let mut delay = first_delay;
    let mut attempt = 0;
    loop {
        let out = match tokio::time::timeout(timeout, f()).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout(timeout.as_secs().max(1))),
        };
        match out {
            Err(SourceError::Throttled { .. }) if attempt < THROTTLE_RETRIES => {
                attempt += 1;
                // Jitter from the clock: enough to spread concurrent retries without a RNG.
                let jitter = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| u64::from(d.subsec_nanos()) % 1000)
                    .unwrap_or(0);
                tokio::time::sleep(delay + delay * jitter as u32 / 2000).await;
                delay *= 2;
            }
            other => return other,
        }
    }
}

/// Errors after which nothing else can be read either.
fn is_fatal(e: &SourceError) -> bool {
    matches!(
        e,
        SourceError::Credentials(_) | SourceError::Unreachable(_) | SourceError::Timeout(_) | SourceError::BadInput(_)
    )
}

async fn scan_live(
    args: &ScanArgs,
    since: Option<Duration>,
    matcher: &Matcher,
    eopts: &Options,
    opts: &AwsOptions,
    progress: &Progress,
) -> Result<ScanReport, Failure> {
    let clients = Clients::new(opts, None).await?;
    let cluster = opts.cluster.clone().unwrap_or_else(|| "default".into());
    let timeout = opts.timeout;
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let mut notes = Vec::new();

    // Round 1: the stopped tasks' ARNs.
    progress.phase("listing stopped tasks", 0);
    clients.tracer.next_round();
    let (arns, _pages) = request(timeout, || {
        aws::list_stopped_tasks(
            &clients,
            &cluster,
            args.service.as_deref(),
            args.family.as_deref(),
            args.limit,
            opts,
        )
    })
    .await?;

    // Round 2: DescribeTasks, 100 per call, a few calls in flight.
    progress.phase("describing tasks", arns.len());
    clients.tracer.next_round();
    let mut set = JoinSet::new();
    for (i, chunk) in arns.chunks(100).enumerate() {
        let (clients, cluster, opts, sem, chunk) = (
            clients.clone(),
            cluster.clone(),
            opts.clone(),
            sem.clone(),
            chunk.to_vec(),
        );
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let n = chunk.len();
            let out = request(timeout, || aws::describe_tasks(&clients, &cluster, &chunk, &opts)).await;
            (i, n, out)
        });
    }
    let mut pages = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, n, out) =
            joined.map_err(|e| Failure::from(SourceError::Other(format!("a DescribeTasks call failed: {e}"))))?;
        progress.inc(n);
        pages.push((i, out?));
    }
    pages.sort_by_key(|p| p.0);
    let described: Vec<Task> = pages.into_iter().flat_map(|p| p.1).collect();
    if described.len() < arns.len() {
        notes.push(format!(
            "{} listed task(s) were gone by the time they were described",
            arns.len() - described.len()
        ));
    }
    let mut tasks = filter_tasks(described, args, since, &mut notes);
    sort_tasks(&mut tasks);

    // Round 3: each distinct task definition revision once.
    let revisions: Vec<String> = {
        let mut seen = std::collections::BTreeSet::new();
        tasks
            .iter()
            .filter_map(|t| t.task_definition_arn.clone())
            .filter(|a| seen.insert(a.clone()))
            .collect()
    };
    progress.phase("reading task definitions", revisions.len());
    clients.tracer.next_round();
    let mut set = JoinSet::new();
    for td_arn in revisions {
        let (clients, cluster, opts, sem) = (clients.clone(), cluster.clone(), opts.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let out = request(timeout, || aws::task_definition(&clients, &td_arn, &cluster, &opts)).await;
            (td_arn, out)
        });
    }
    let mut defs: BTreeMap<String, TaskDefinition> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let (td_arn, out) = joined
            .map_err(|e| Failure::from(SourceError::Other(format!("a DescribeTaskDefinition call failed: {e}"))))?;
        progress.inc(1);
        match out {
            Ok(td) => {
                defs.insert(td_arn, td);
            }
            Err(e) if is_fatal(&e) => return Err(e.into()),
            Err(e) => notes.push(format!(
                "could not read task definition {td_arn}: {e}; its role names are unknown"
            )),
        }
    }

    // Every task diagnosed from what ECS said; then the logs where that verdict is generic.
    let evidence = |t: &Task| Evidence {
        task: t.clone(),
        task_definition: t.task_definition_arn.as_ref().and_then(|a| defs.get(a)).cloned(),
        ..Evidence::default()
    };
    let mut results: Vec<TaskResult> = tasks
        .iter()
        .map(|t| result_of(t, diagnose(&evidence(t), matcher, eopts), false, false))
        .collect();
    // Signature -> indices of the tasks (newest first) whose verdict needs logs.
    let mut signatures: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        if scan::needs_logs(&r.diagnosis, matcher) {
            signatures.entry(scan::signature(&tasks[i])).or_default().push(i);
        }
    }
    let reps: Vec<usize> = signatures
        .values()
        .flat_map(|ix| ix.iter().take(args.log_samples).copied())
        .collect();

    // Round 4: the representatives' logs.
    progress.phase("reading logs of representative tasks", reps.len());
    clients.tracer.next_round();
    let mut set = JoinSet::new();
    for &i in &reps {
        let ev = evidence(&tasks[i]);
        let (clients, opts, sem) = (clients.clone(), opts.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let limits = Limits::default();
            let out = request(timeout, || {
                let (clients, opts) = (&clients, &opts);
                let mut ev = ev.clone();
                async move {
                    aws::fetch_logs(clients, &mut ev, opts, &limits).await?;
                    Ok(ev)
                }
            })
            .await;
            (i, out)
        });
    }
    let mut logs_read = 0;
    let mut log_errors: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let (i, out) = joined.map_err(|e| Failure::from(SourceError::Other(format!("a log fetch failed: {e}"))))?;
        progress.inc(1);
        match out {
            Ok(ev) => {
                logs_read += 1;
                results[i] = result_of(&tasks[i], diagnose(&ev, matcher, eopts), true, false);
            }
            Err(e) if is_fatal(&e) => return Err(e.into()),
            Err(e) => *log_errors.entry(e.to_string()).or_default() += 1,
        }
    }
    for (e, n) in log_errors {
        notes.push(format!("the logs of {n} task(s) could not be read: {e}"));
    }

    // The rest of each signature takes the representatives' verdict when they agree.
    for members in signatures.values() {
        let (read, rest): (Vec<usize>, Vec<usize>) = members.iter().partition(|&&i| results[i].logs_read);
        let Some(&first) = read.first() else { continue };
        let key = GroupKey::of(&results[first].diagnosis);
        if read.iter().any(|&i| GroupKey::of(&results[i].diagnosis) != key) {
            notes.push(format!(
                "{} task(s) with the same failure as {} kept the verdict of their stop reason: the logs of their representatives disagreed (run `ecsdoctor why` on them)",
                rest.len(),
                results[first].task_arn
            ));
            continue;
        }
        let shared = results[first].diagnosis.clone();
        for i in rest {
            if GroupKey::of(&results[i].diagnosis) != key {
                results[i].diagnosis = shared.clone();
                results[i].inferred = true;
            }
        }
    }

    let api_calls = ApiCalls::count(clients.tracer.calls().iter().map(|c| c.2.as_str()));
    Ok(build_report(
        args,
        Some(cluster),
        &tasks,
        results,
        logs_read,
        api_calls,
        notes,
    ))
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
        assert_eq!(common_cluster(&[t("a"), t("a")]), Some("a".into()));
        assert_eq!(common_cluster(&[t("a"), t("b")]), None);
        assert_eq!(common_cluster(&[]), None);
    }

    #[tokio::test]
    async fn request_retries_throttling_then_gives_up() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let out: Result<(), SourceError> = request_with(Duration::from_secs(5), Duration::from_millis(1), || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                Err(SourceError::Throttled {
                    action: "ecs:DescribeTasks".into(),
                    message: "Rate exceeded".into(),
                })
            }
        })
        .await;
        assert!(matches!(out, Err(SourceError::Throttled { .. })));
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1 + THROTTLE_RETRIES as usize
        );
    }
}
