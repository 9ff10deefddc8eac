//! The live source, and the only code importing the AWS SDK. It reads, never writes: every client
//! carries the read-only [`guard`]. What it reads, one file each: ECS tasks and task definitions
//! ([`task`]), CloudWatch Logs ([`logs`]); the clients ([`clients`]), the mapping from SDK types
//! to evidence ([`mapping`]), error mapping ([`errors`]), and `scan`'s batched rounds ([`scan`]).
//!
//! Rounds on the critical path of `why`: 1 DescribeTasks; 2 DescribeTaskDefinition (skipped when
//! the immutable revision is cached on disk); 3 every container's GetLogEvents and
//! FilterLogEvents in parallel. So 3 rounds cold, 2 warm. Only failing to read the task itself is
//! an error: a task definition or log that cannot be read is a note, and the verdict comes from
//! what was read. With verification ([`policies`], [`crate::verify`]) the roles' name-level reads
//! join round 3, and verification adds two rounds after the verdict: 5 cold, 4 warm.

pub mod clients;
pub mod errors;
pub mod guard;
pub mod logs;
pub mod mapping;
pub mod policies;
pub mod scan;
pub mod signed;
pub mod task;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use clients::Clients;
pub use guard::{guard, Tracer, ALLOWED_OPERATIONS, DELIVERY_OPERATIONS};
pub use logs::DENIAL_FILTER;

use super::{EvidenceSource, Limits};
use crate::arn::{Arn, TaskRef};
use crate::error::SourceError;
use crate::evidence::{Evidence, Task};

/// How to reach AWS and what to read.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub cluster: Option<String>,
    pub log_lines: usize,
    pub cache_dir: Option<PathBuf>,
    /// The whole run's budget; each operation also times out after it.
    pub timeout: Duration,
    pub trace: Option<PathBuf>,
    /// Attempts per operation, the first included: the SDK's standard retry mode retries
    /// throttling and transient errors with exponential backoff and jitter.
    pub retry_attempts: u32,
    /// Verification will follow: read the roles' name-level facts beside the logs.
    pub verify: bool,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            profile: None,
            region: None,
            endpoint_url: None,
            cluster: None,
            log_lines: 200,
            cache_dir: None,
            timeout: Duration::from_secs(30),
            trace: None,
            retry_attempts: 3,
            verify: false,
        }
    }
}

impl AwsOptions {
    /// What keeps one endpoint's cached task definitions apart from another's.
    pub fn cache_scope(&self) -> &str {
        self.endpoint_url.as_deref().unwrap_or("aws")
    }
}

/// The live source.
#[derive(Debug, Clone)]
pub struct AwsSource {
    pub opts: AwsOptions,
    pub limits: Limits,
    /// Filled after a run: the tracer of the clients used.
    pub tracer: Arc<Mutex<Option<Arc<Tracer>>>>,
    /// The clients built so far, by the region asked for: a source that lives for many tasks (the
    /// Lambda runner) builds its configuration, credentials provider and HTTP client once.
    /// Clones of the source share them.
    clients: Arc<tokio::sync::Mutex<BTreeMap<Option<String>, Clients>>>,
    /// What verification read for the current task (prefetched beside the logs, then the rest);
    /// emptied when the next task starts, so a long-lived source never serves stale policies.
    answers: policies::Answers,
    /// The current task's clients and deadline: verification uses the same clients (and tracer)
    /// as the reads before it, and the same `--timeout`.
    current: Arc<Mutex<Option<(Clients, Instant)>>>,
    /// Told what is known of a task before its logs are read (the task and its definition).
    pub on_task: Option<OnTask>,
}

/// A hook on the task and its definition, called as the logs are requested: `why` diagnoses
/// that much on another thread meanwhile, so the regexes its rules need are compiled while the
/// network works, not after it.
#[derive(Clone)]
pub struct OnTask(pub Arc<dyn Fn(&Evidence) + Send + Sync>);

impl std::fmt::Debug for OnTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnTask")
    }
}

impl AwsSource {
    /// A source with these options.
    pub fn new(opts: AwsOptions, limits: Limits) -> AwsSource {
        AwsSource {
            opts,
            limits,
            tracer: Arc::new(Mutex::new(None)),
            clients: Arc::new(tokio::sync::Mutex::new(BTreeMap::new())),
            answers: Arc::default(),
            current: Arc::default(),
            on_task: None,
        }
    }

    /// A verification reader on these clients, sharing this source's answers, ending by
    /// `deadline`.
    pub fn policy_reader(&self, clients: &Clients, deadline: Instant) -> policies::LiveReader {
        policies::LiveReader::new(
            clients.signed.clone(),
            clients.tracer.clone(),
            self.answers.clone(),
            deadline,
        )
    }

    /// What verification read for the current task, answers and errors (for `capture`).
    pub fn verification_answers(
        &self,
    ) -> BTreeMap<crate::verify::Call, Result<serde_json::Value, crate::verify::ReadError>> {
        policies::answers_of(&self.answers)
    }

    /// A new task starts: forget what verification read, remember its clients and deadline.
    fn start_task(&self, clients: Option<&Clients>, deadline: Instant) {
        if let Ok(mut a) = self.answers.lock() {
            a.clear();
        }
        if let Ok(mut c) = self.current.lock() {
            *c = clients.map(|c| (c.clone(), deadline));
        }
    }

    /// Reads the roles verification may need in the background, beside the logs (when
    /// verification will follow): their answers wait in the reader for the verdict, and a
    /// diagnosis that needs none of them never waits for them.
    fn prefetch_roles(&self, clients: &Clients, deadline: Instant, ev: &Evidence) {
        if let Some(hook) = &self.on_task {
            (hook.0)(ev);
        }
        if !self.opts.verify {
            return;
        }
        let reader = self.policy_reader(clients, deadline);
        let roles = crate::verify::roles_to_prefetch(ev);
        tokio::spawn(async move { crate::verify::prefetch(&roles, &reader).await });
    }

    /// Checks a diagnosis against the account's policies (see [`crate::verify`]): reads what it
    /// needs through the clients of the task's region, within `--timeout`. `plain` is the same
    /// diagnosis built without account masking.
    pub async fn verify(
        &self,
        d: &mut crate::verdict::Diagnosis,
        plain: &crate::verdict::Diagnosis,
        ev: &Evidence,
        simulate: bool,
        knowledge: &crate::rules::Knowledge,
        opts: &crate::verdict::Options,
    ) {
        let current = self.current.lock().ok().and_then(|c| c.clone());
        let (clients, deadline) = match current {
            Some(c) => c,
            None => {
                let region = ev
                    .task
                    .task_arn
                    .as_deref()
                    .and_then(Arn::parse)
                    .map(|a| a.region.to_string());
                match self.clients(region.as_deref()).await {
                    Ok(c) => (c, Instant::now() + self.opts.timeout),
                    Err(e) => {
                        d.notes.push(crate::verdict::clean(
                            &format!("not checked against the account's policies: {e}"),
                            opts,
                        ));
                        return;
                    }
                }
            }
        };
        let reader = self.policy_reader(&clients, deadline);
        let work = crate::verify::verify_diagnosis(d, plain, ev, &reader, simulate, knowledge, opts);
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, work).await.is_err() {
            d.notes.push(format!(
                "not checked against the account's policies: AWS did not answer within {} s (--timeout)",
                self.opts.timeout.as_secs()
            ));
        }
    }

    /// The clients for a region (the task ARN's; `None`: the configured one), built on first use
    /// and kept for the life of the source.
    pub async fn clients(&self, arn_region: Option<&str>) -> Result<Clients, SourceError> {
        let mut built = self.clients.lock().await;
        let key = arn_region.map(str::to_string);
        let clients = match built.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = Clients::new(&self.opts, arn_region).await?;
                built.insert(key, c.clone());
                c
            }
        };
        if let Ok(mut t) = self.tracer.lock() {
            *t = Some(clients.tracer.clone());
        }
        Ok(clients)
    }

    /// Completes a task known from elsewhere (an EventBridge event) with its task definition and
    /// logs, without asking ECS for the task itself (it may be gone already). Nothing here is
    /// fatal: what cannot be read becomes a note.
    pub async fn complete_task(&self, task: Task) -> Evidence {
        let deadline = Instant::now() + self.opts.timeout;
        self.start_task(None, deadline);
        let region = task
            .task_arn
            .as_deref()
            .and_then(Arn::parse)
            .map(|a| a.region.to_string());
        let cluster = task.cluster_arn.clone().unwrap_or_else(|| "default".into());
        match within(deadline, self.opts.timeout, self.clients(region.as_deref())).await {
            Ok(clients) => {
                self.start_task(Some(&clients), deadline);
                let prefetch = |ev: &Evidence| self.prefetch_roles(&clients, deadline, ev);
                complete(&clients, task, &cluster, &self.opts, &self.limits, deadline, &prefetch).await
            }
            Err(e) => Evidence {
                task,
                notes: vec![format!(
                    "the task definition and logs were not read: {e}; the verdict comes from the event alone"
                )],
                ..Evidence::default()
            },
        }
    }
}

impl EvidenceSource for AwsSource {
    async fn evidence(&self, task: Option<&TaskRef>) -> Result<Evidence, SourceError> {
        let Some(task) = task else {
            return Err(SourceError::BadInput(
                "name the task to diagnose: a task ARN, or a task id with --cluster".into(),
            ));
        };
        let deadline = Instant::now() + self.opts.timeout;
        self.start_task(None, deadline);
        let clients = within(deadline, self.opts.timeout, self.clients(task.region.as_deref())).await?;
        self.start_task(Some(&clients), deadline);
        let prefetch = |ev: &Evidence| self.prefetch_roles(&clients, deadline, ev);
        fetch(&clients, task, &self.opts, &self.limits, deadline, &prefetch).await
    }
}

/// Runs `work` until `deadline`; running out is [`SourceError::Timeout`] (of `budget`).
async fn within<T>(
    deadline: Instant,
    budget: Duration,
    work: impl std::future::Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => Err(SourceError::Timeout(budget.as_secs().max(1))),
    }
}

/// The cluster to ask: the ARN's, else `--cluster`, else `default`.
pub fn cluster_of(task: &TaskRef, opts: &AwsOptions) -> String {
    task.cluster
        .clone()
        .or_else(|| opts.cluster.clone())
        .unwrap_or_else(|| "default".to_string())
}

/// Fetches the evidence for one task: round 1 DescribeTasks (its failure is the only fatal one),
/// then [`complete`].
pub async fn fetch(
    clients: &Clients,
    task: &TaskRef,
    opts: &AwsOptions,
    limits: &Limits,
    deadline: Instant,
    prefetch: &dyn Fn(&Evidence),
) -> Result<Evidence, SourceError> {
    let cluster = cluster_of(task, opts);
    let task_key = task.arn.clone().unwrap_or_else(|| task.id.clone());
    clients.tracer.next_round();
    let tasks = within(
        deadline,
        opts.timeout,
        task::describe_tasks(clients, &cluster, std::slice::from_ref(&task_key), opts),
    )
    .await?;
    let Some(t) = tasks.into_iter().next() else {
        return Err(SourceError::TaskNotFound {
            task: task_key,
            cluster,
        });
    };
    Ok(complete(clients, t, &cluster, opts, limits, deadline, prefetch).await)
}

/// Completes a task already read (from DescribeTasks or an EventBridge event) with its task
/// definition and logs. What cannot be read (denied, throttled, unreachable, out of time) is a
/// note in the evidence. `prefetch` is called with the task and its definition as the logs are
/// read: the source starts reading the roles verification may need, in the background.
pub async fn complete(
    clients: &Clients,
    task: Task,
    cluster: &str,
    opts: &AwsOptions,
    limits: &Limits,
    deadline: Instant,
    prefetch: &dyn Fn(&Evidence),
) -> Evidence {
    let mut ev = Evidence {
        task,
        ..Evidence::default()
    };
    if let Some(td_arn) = ev.task.task_definition_arn.clone() {
        let cached = crate::source::cache::read(opts.cache_dir.as_deref(), opts.cache_scope(), &td_arn).is_some();
        if !cached {
            clients.tracer.next_round();
        }
        match within(
            deadline,
            opts.timeout,
            task::task_definition(clients, &td_arn, cluster, opts),
        )
        .await
        {
            Ok(td) => ev.task_definition = Some(td),
            Err(err) => ev.notes.push(format!(
                "could not read task definition {td_arn}: {err}; role names unknown"
            )),
        }
    }
    clients.tracer.next_round();
    prefetch(&ev);
    let mut work = ev.clone();
    let logs_read = within(deadline, opts.timeout, async {
        logs::fetch_logs(clients, &mut work, opts, limits).await;
        Ok(())
    });
    match logs_read.await {
        Ok(()) => ev = work,
        Err(err) => ev
            .notes
            .push(format!("logs not read: {err}; the verdict comes from the task alone")),
    }
    ev
}

#[cfg(test)]
mod tests;
