//! The live source, and the only module that imports the AWS SDK. It reads, never writes:
//! `ecs:DescribeTasks`, `ecs:DescribeTaskDefinition`, `logs:GetLogEvents`, `logs:FilterLogEvents`
//! (and `ecs:ListTasks` for `scan`). An interceptor on every client refuses any other operation
//! and, when `ECSDOCTOR_API_TRACE` names a file, records each call with its sequential round.
//!
//! Rounds on the critical path: 1 DescribeTasks; 2 DescribeTaskDefinition (skipped when the
//! immutable revision is cached on disk); 3 every container's GetLogEvents and FilterLogEvents in
//! parallel. So 3 rounds cold, 2 warm.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatchlogs as logs;
use aws_sdk_ecs as ecs;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{EvidenceSource, Limits};
use crate::arn::TaskRef;
use crate::error::SourceError;
use crate::evidence::{
    Container, ContainerDefinition, EnvironmentFile, Evidence, LogConfiguration, LogLine, RepositoryCredentials,
    Secret, Task, TaskDefinition, Timestamp,
};

/// The only operations ecsdoctor may send. Everything is read-only.
pub const ALLOWED_OPERATIONS: &[&str] = &[
    "DescribeTasks",
    "DescribeTaskDefinition",
    "GetLogEvents",
    "FilterLogEvents",
    "ListTasks",
];

/// Terms that find denials anywhere in a task's log, even far from its last lines.
/// CloudWatch filter syntax: `?term` is OR; quoted terms are phrases; matching is case-sensitive.
pub const DENIAL_FILTER: &str = r#"?AccessDenied ?"Access Denied" ?"not authorized" ?UnauthorizedOperation ?AuthorizationError ?Forbidden ?"Unable to locate credentials" ?NoCredentialProviders ?CredentialsProviderError ?"security token" ?"Could not load credentials" ?"Unable to load AWS credentials""#;

/// How to reach AWS and what to read.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub cluster: Option<String>,
    pub log_lines: usize,
    pub cache_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub trace: Option<PathBuf>,
}

/// Records calls and enforces the read-only list.
#[derive(Debug, Default)]
pub struct Tracer {
    round: AtomicUsize,
    file: Option<Mutex<std::fs::File>>,
    calls: Mutex<Vec<(usize, String, String)>>,
}

impl Tracer {
    /// A tracer writing to `path` (JSON lines), if any.
    pub fn new(path: Option<&std::path::Path>) -> Tracer {
        let file = path
            .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok())
            .map(Mutex::new);
        Tracer {
            round: AtomicUsize::new(0),
            file,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Starts the next sequential round of calls.
    pub fn next_round(&self) -> usize {
        self.round.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The calls made so far: (round, service, operation).
    pub fn calls(&self) -> Vec<(usize, String, String)> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The number of sequential rounds used.
    pub fn rounds(&self) -> usize {
        self.round.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
struct Guard(Arc<Tracer>);

impl Intercept for Guard {
    fn name(&self) -> &'static str {
        "ecsdoctor-read-only-guard"
    }

    // `read_before_execution` runs before the operation's runtime plugin stores its Metadata, so
    // the check sits in the first hook that can see which operation this is.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_string(), m.name().to_string()),
            None => return Err("ecsdoctor refused an AWS call it could not identify".into()),
        };
        if !ALLOWED_OPERATIONS.contains(&op.as_str()) {
            return Err(format!("ecsdoctor is read-only and refused to send {service}:{op}").into());
        }
        let round = self.0.round.load(Ordering::SeqCst);
        if let Ok(mut c) = self.0.calls.lock() {
            c.push((round, service.clone(), op.clone()));
        }
        if let Some(f) = &self.0.file {
            if let Ok(mut f) = f.lock() {
                let svc = if service.eq_ignore_ascii_case("cloudwatch logs") {
                    "logs".to_string()
                } else {
                    service.to_ascii_lowercase()
                };
                let line = serde_json::json!({ "round": round, "service": svc, "operation": op });
                let _ = writeln!(f, "{line}");
            }
        }
        Ok(())
    }
}

/// AWS clients sharing one configuration and one tracer.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ecs: ecs::Client,
    base: Option<aws_config::SdkConfig>,
    logs: Arc<Mutex<BTreeMap<String, logs::Client>>>,
    pub tracer: Arc<Tracer>,
    pub region: String,
}

impl Clients {
    /// Builds clients the way the AWS CLI resolves credentials and region: the default chain,
    /// `--profile`, `--region` (else the task ARN's region, else the configured one) and
    /// `--endpoint-url` (the SDK also honours `AWS_ENDPOINT_URL*`).
    pub async fn new(opts: &AwsOptions, arn_region: Option<&str>) -> Result<Clients, SourceError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = opts.region.as_deref().or(arn_region) {
            loader = loader.region(Region::new(r.to_string()));
        }
        if let Some(e) = &opts.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let base = loader.load().await;
        let region = base.region().map(|r| r.to_string()).ok_or_else(|| {
            SourceError::BadInput(
                "no AWS region: pass --region, use a full task ARN, or set AWS_REGION / a profile region".into(),
            )
        })?;
        let tracer = Arc::new(Tracer::new(opts.trace.as_deref()));
        let ecs_conf = ecs::config::Builder::from(&base)
            .interceptor(Guard(tracer.clone()))
            .build();
        Ok(Clients {
            ecs: ecs::Client::from_conf(ecs_conf),
            base: Some(base),
            logs: Arc::new(Mutex::new(BTreeMap::new())),
            tracer,
            region,
        })
    }

    /// Clients around ready-made SDK clients (tests with mocked clients): `logs` serves every region.
    pub fn from_clients(ecs: ecs::Client, logs: logs::Client, region: &str, tracer: Arc<Tracer>) -> Clients {
        let map = BTreeMap::from([(String::new(), logs)]);
        Clients {
            ecs,
            base: None,
            logs: Arc::new(Mutex::new(map)),
            tracer,
            region: region.to_string(),
        }
    }

    /// A CloudWatch Logs client for a region (awslogs may ship to another region than the task's).
    pub fn logs(&self, region: &str) -> logs::Client {
        let mut map = match self.logs.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let Some(base) = &self.base else {
            // Ready-made clients: one client for every region.
            return map
                .values()
                .next()
                .cloned()
                .expect("from_clients always stores one logs client");
        };
        map.entry(region.to_string())
            .or_insert_with(|| {
                let conf = logs::config::Builder::from(base)
                    .region(Region::new(region.to_string()))
                    .interceptor(Guard(self.tracer.clone()))
                    .build();
                logs::Client::from_conf(conf)
            })
            .clone()
    }
}

/// The read-only guard as an interceptor, for clients built elsewhere (tests).
pub fn guard(tracer: Arc<Tracer>) -> impl Intercept + 'static {
    Guard(tracer)
}

/// The live source.
#[derive(Debug, Clone)]
pub struct AwsSource {
    pub opts: AwsOptions,
    pub limits: Limits,
    /// Filled after a run: the tracer of the clients used.
    pub tracer: Arc<Mutex<Option<Arc<Tracer>>>>,
}

impl AwsSource {
    /// A source with these options.
    pub fn new(opts: AwsOptions, limits: Limits) -> AwsSource {
        AwsSource {
            opts,
            limits,
            tracer: Arc::new(Mutex::new(None)),
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
        let secs = self.opts.timeout.as_secs().max(1);
        let work = async {
            let clients = Clients::new(&self.opts, task.region.as_deref()).await?;
            if let Ok(mut t) = self.tracer.lock() {
                *t = Some(clients.tracer.clone());
            }
            fetch(&clients, task, &self.opts, &self.limits).await
        };
        match tokio::time::timeout(self.opts.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout(secs)),
        }
    }
}

impl AwsSource {
    /// Completes a task known from elsewhere (an EventBridge event) with its task definition and
    /// logs, without asking ECS for the task itself (it may be gone already).
    pub async fn complete_task(&self, task: Task) -> Result<Evidence, SourceError> {
        let secs = self.opts.timeout.as_secs().max(1);
        let region = task
            .task_arn
            .as_deref()
            .and_then(|a| a.split(':').nth(3))
            .map(str::to_string);
        let cluster = task.cluster_arn.clone().unwrap_or_else(|| "default".into());
        let work = async {
            let clients = Clients::new(&self.opts, region.as_deref()).await?;
            if let Ok(mut t) = self.tracer.lock() {
                *t = Some(clients.tracer.clone());
            }
            complete(&clients, task, &cluster, &self.opts, &self.limits).await
        };
        match tokio::time::timeout(self.opts.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout(secs)),
        }
    }
}

/// The cluster to ask: the ARN's, else `--cluster`, else `default`.
pub fn cluster_of(task: &TaskRef, opts: &AwsOptions) -> String {
    task.cluster
        .clone()
        .or_else(|| opts.cluster.clone())
        .unwrap_or_else(|| "default".to_string())
}

/// Fetches the evidence for one task: round 1 DescribeTasks, round 2 DescribeTaskDefinition
/// (unless cached), round 3 the logs of every container in parallel.
pub async fn fetch(
    clients: &Clients,
    task: &TaskRef,
    opts: &AwsOptions,
    limits: &Limits,
) -> Result<Evidence, SourceError> {
    let cluster = cluster_of(task, opts);
    let task_key = task.arn.clone().unwrap_or_else(|| task.id.clone());
    clients.tracer.next_round();
    let tasks = describe_tasks(clients, &cluster, std::slice::from_ref(&task_key), opts).await?;
    let Some(t) = tasks.into_iter().next() else {
        return Err(SourceError::TaskNotFound {
            task: task_key,
            cluster,
        });
    };
    complete(clients, t, &cluster, opts, limits).await
}

/// Completes a task already read (from DescribeTasks or an EventBridge event) with its task
/// definition and logs.
pub async fn complete(
    clients: &Clients,
    task: Task,
    cluster: &str,
    opts: &AwsOptions,
    limits: &Limits,
) -> Result<Evidence, SourceError> {
    let mut ev = Evidence {
        task,
        ..Evidence::default()
    };
    if let Some(td_arn) = ev.task.task_definition_arn.clone() {
        let cached = read_cache(opts, &td_arn).is_some();
        if !cached {
            clients.tracer.next_round();
        }
        match task_definition(clients, &td_arn, cluster, opts).await {
            Ok(td) => ev.task_definition = Some(td),
            Err(err @ (SourceError::Credentials(_) | SourceError::Unreachable(_) | SourceError::Timeout(_))) => {
                return Err(err)
            }
            Err(err) => ev.notes.push(format!(
                "could not read task definition {td_arn}: {err}; role names unknown"
            )),
        }
    }
    clients.tracer.next_round();
    fetch_logs(clients, &mut ev, opts, limits).await?;
    Ok(ev)
}

/// DescribeTasks for up to 100 tasks per call (calls in parallel when there are more). Tasks ECS
/// no longer knows are simply absent from the result.
pub async fn describe_tasks(
    clients: &Clients,
    cluster: &str,
    tasks: &[String],
    opts: &AwsOptions,
) -> Result<Vec<Task>, SourceError> {
    let mut set = tokio::task::JoinSet::new();
    for (i, chunk) in tasks.chunks(100).enumerate() {
        let req = clients
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()));
        set.spawn(async move { (i, req.send().await) });
    }
    let mut pages = Vec::new();
    while let Some(r) = set.join_next().await {
        let (i, out) = r.map_err(|e| SourceError::Other(format!("a DescribeTasks call failed: {e}")))?;
        let out = out.map_err(|e| map_err("ecs:DescribeTasks", e, cluster, &clients.region, opts))?;
        pages.push((i, out.tasks().iter().map(map_task).collect::<Vec<_>>()));
    }
    pages.sort_by_key(|p| p.0);
    Ok(pages.into_iter().flat_map(|p| p.1).collect())
}

/// One task definition revision, from the on-disk cache or DescribeTaskDefinition (revisions are
/// immutable, so a cached one never goes stale).
pub async fn task_definition(
    clients: &Clients,
    td_arn: &str,
    cluster: &str,
    opts: &AwsOptions,
) -> Result<TaskDefinition, SourceError> {
    if let Some(td) = read_cache(opts, td_arn) {
        return Ok(td);
    }
    let out = clients
        .ecs
        .describe_task_definition()
        .task_definition(td_arn)
        .send()
        .await
        .map_err(|e| map_err("ecs:DescribeTaskDefinition", e, cluster, &clients.region, opts))?;
    let td = out.task_definition().map(map_task_definition).ok_or_else(|| {
        SourceError::Other(format!(
            "DescribeTaskDefinition returned no task definition for {td_arn}"
        ))
    })?;
    write_cache(opts, td_arn, &td);
    Ok(td)
}

/// The ARNs of a cluster's stopped tasks (ListTasks, desiredStatus STOPPED, every page up to
/// `limit`), optionally only those of one service or family. Returns the ARNs and the page count.
pub async fn list_stopped_tasks(
    clients: &Clients,
    cluster: &str,
    service: Option<&str>,
    family: Option<&str>,
    limit: usize,
    opts: &AwsOptions,
) -> Result<(Vec<String>, usize), SourceError> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = clients
            .ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(ecs::types::DesiredStatus::Stopped)
            .max_results(100)
            .set_next_token(token.take());
        if let Some(s) = service {
            req = req.service_name(s);
        }
        if let Some(f) = family {
            req = req.family(f);
        }
        let out = req
            .send()
            .await
            .map_err(|e| map_err("ecs:ListTasks", e, cluster, &clients.region, opts))?;
        pages += 1;
        arns.extend(out.task_arns().iter().cloned());
        token = out.next_token().map(str::to_string).filter(|t| !t.is_empty());
        if token.is_none() || arns.len() >= limit {
            break;
        }
    }
    arns.truncate(limit);
    Ok((arns, pages))
}

/// Reads the logs of every awslogs container of a task, all in parallel: the newest
/// `--log-lines` events, plus a FilterLogEvents pass over the task's lifetime for denial terms,
/// so that an AccessDenied followed by a long stack trace is not missed.
pub async fn fetch_logs(
    clients: &Clients,
    ev: &mut Evidence,
    opts: &AwsOptions,
    limits: &Limits,
) -> Result<(), SourceError> {
    let cluster = ev.task.cluster_arn.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let plans = log_plans(ev, &clients.region, &mut notes);
    if !plans.is_empty() {
        let mut set = tokio::task::JoinSet::new();
        let (start, end) = (
            ev.task.created_at.map(|t| t.0),
            ev.task.stopped_at.map(|t| t.0 + 60_000),
        );
        for (i, plan) in plans.into_iter().enumerate() {
            let client = clients.logs(&plan.region);
            let n = opts.log_lines.clamp(1, 10_000) as i32;
            set.spawn(async move {
                let tail = client
                    .get_log_events()
                    .log_group_name(&plan.group)
                    .log_stream_name(&plan.stream)
                    .start_from_head(false)
                    .limit(n)
                    .send();
                let filter = client
                    .filter_log_events()
                    .log_group_name(&plan.group)
                    .log_stream_names(&plan.stream)
                    .filter_pattern(DENIAL_FILTER)
                    .set_start_time(start)
                    .set_end_time(end)
                    .limit(200);
                let (tail, filter) = tokio::join!(tail, filter.send());
                (i, plan, tail, filter)
            });
        }
        let mut results = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(x) => results.push(x),
                Err(e) => notes.push(format!("a log fetch failed: {e}")),
            }
        }
        results.sort_by_key(|r| r.0);
        for (_, plan, tail, filter) in results {
            let mut lines: Vec<LogLine> = Vec::new();
            match tail {
                Ok(o) => lines.extend(o.events().iter().map(|e| LogLine {
                    timestamp: e.timestamp(),
                    message: e.message().unwrap_or_default().to_string(),
                })),
                Err(e) => {
                    if let Some(n) = log_error_note(&e, &plan) {
                        notes.push(n);
                        continue;
                    }
                    return Err(map_err("logs:GetLogEvents", e, &cluster, &clients.region, opts));
                }
            }
            match filter {
                Ok(o) => {
                    let before = lines.len();
                    for e in o.events() {
                        let l = LogLine {
                            timestamp: e.timestamp(),
                            message: e.message().unwrap_or_default().to_string(),
                        };
                        if !lines
                            .iter()
                            .any(|x| x.timestamp == l.timestamp && x.message == l.message)
                        {
                            lines.push(l);
                        }
                    }
                    if lines.len() > before {
                        notes.push(format!(
                            "logs of `{}`: added {} earlier line(s) matching denial terms (FilterLogEvents over the task's lifetime)",
                            plan.container,
                            lines.len() - before
                        ));
                    }
                }
                Err(e) => notes.push(format!(
                    "logs of `{}`: the denial search failed: {}",
                    plan.container,
                    one_line(&e)
                )),
            }
            lines.sort_by_key(|l| l.timestamp.unwrap_or(i64::MIN));
            ev.logs.push(limits.apply(&plan.container, lines, &mut notes));
        }
    }
    ev.notes.extend(notes);
    Ok(())
}

struct LogPlan {
    container: String,
    group: String,
    stream: String,
    region: String,
}

/// Where each container's logs are, or why they cannot be read here.
fn log_plans(ev: &Evidence, default_region: &str, notes: &mut Vec<String>) -> Vec<LogPlan> {
    let Some(td) = &ev.task_definition else {
        return Vec::new();
    };
    let task_id = ev.task_id().unwrap_or_default().to_string();
    let mut plans = Vec::new();
    for c in &td.container_definitions {
        let Some(lc) = &c.log_configuration else {
            notes.push(format!(
                "logs of `{}` not available here: the container has no logConfiguration",
                c.name
            ));
            continue;
        };
        match lc.log_driver.as_str() {
            "awslogs" => {}
            "awsfirelens" => {
                notes.push(format!("logs of `{}` not available here: FireLens routes them to its own destination (read them there; FireLens ships with the task role)", c.name));
                continue;
            }
            other => {
                notes.push(format!(
                    "logs of `{}` not available here: log driver `{other}` does not write to CloudWatch Logs",
                    c.name
                ));
                continue;
            }
        }
        let Some(group) = lc.options.get("awslogs-group") else {
            notes.push(format!(
                "logs of `{}` not available here: awslogs without awslogs-group",
                c.name
            ));
            continue;
        };
        let stream = match lc.options.get("awslogs-stream-prefix") {
            Some(prefix) => format!("{prefix}/{}/{task_id}", c.name),
            None => {
                match ev
                    .task
                    .containers
                    .iter()
                    .find(|x| x.name == c.name)
                    .and_then(|x| x.runtime_id.clone())
                {
                    // Without a prefix (EC2 only) the stream is named after the Docker container id.
                    Some(id) => id,
                    None => {
                        notes.push(format!("logs of `{}` not available here: no awslogs-stream-prefix and no runtimeId to name the stream", c.name));
                        continue;
                    }
                }
            }
        };
        let region = lc
            .options
            .get("awslogs-region")
            .cloned()
            .unwrap_or_else(|| default_region.to_string());
        plans.push(LogPlan {
            container: c.name.clone(),
            group: group.clone(),
            stream,
            region,
        });
    }
    plans
}

/// A missing log group or stream is evidence (a logger that never started), not a failure.
fn log_error_note<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    plan: &LogPlan,
) -> Option<String> {
    if e.code() == Some("ResourceNotFoundException") {
        return Some(format!(
            "logs of `{}` not available: log group `{}` or stream `{}` does not exist ({}) — the container may never have started, or the group is missing",
            plan.container,
            plan.group,
            plan.stream,
            e.message().unwrap_or("ResourceNotFoundException")
        ));
    }
    None
}

/// An error and its causes as one line of their Display texts (never a Debug dump), each cause
/// once: `dispatch failure: io error: tcp connect error: Connection refused (os error 111)`.
fn one_line<E: std::error::Error + 'static>(e: &E) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// Maps an SDK error to a one-line error that says what to do.
pub fn map_err<E>(
    action: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    cluster: &str,
    region: &str,
    opts: &AwsOptions,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().unwrap_or_default().to_string();
    let message = e.message().unwrap_or_default().to_string();
    let login = match &opts.profile {
        Some(p) => {
            format!("run `aws sso login --profile {p}` or refresh the profile's credentials")
        }
        None => "refresh your credentials (e.g. `aws sso login --profile NAME`, then --profile NAME)".to_string(),
    };
    match code.as_str() {
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" | "UnauthorizedException" => {
            return SourceError::AccessDenied {
                action: action.into(),
                message: first_line(&message),
            };
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            return SourceError::Credentials(format!("AWS credentials have expired ({code}): {login}"));
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "SignatureDoesNotMatch" => {
            return SourceError::Credentials(format!(
                "AWS rejected the credentials ({code}: {}): {login}",
                first_line(&message)
            ));
        }
        "ClusterNotFoundException" => {
            return SourceError::ClusterNotFound {
                cluster: cluster.into(),
                region: region.into(),
            };
        }
        c if crate::source::aws::is_throttling(c) => {
            return SourceError::Throttled {
                action: action.into(),
                message: format!("{code}: {}", first_line(&message)),
            };
        }
        _ => {}
    }
    let chain = one_line(&e);
    match &e {
        SdkError::DispatchFailure(d) => {
            let lower = chain.to_ascii_lowercase();
            if lower.contains("credentials")
                && (lower.contains("not loaded") || lower.contains("no credentials") || lower.contains("providers"))
            {
                return SourceError::Credentials(format!(
                    "no AWS credentials found (environment, profile, SSO, web identity, container or instance metadata): {login}; or pass --profile"
                ));
            }
            if lower.contains("expired") || lower.contains("sso") && lower.contains("token") {
                return SourceError::Credentials(format!(
                    "AWS credentials could not be refreshed ({}): {login}",
                    shorten(&chain)
                ));
            }
            if lower.contains("signing region") || lower.contains("region") && lower.contains("missing") {
                return SourceError::BadInput(
                    "no AWS region: pass --region, use a full task ARN, or set AWS_REGION".into(),
                );
            }
            let what = if d.is_timeout() {
                "timed out"
            } else if d.is_io() {
                "connection failed"
            } else {
                "request failed"
            };
            SourceError::Unreachable(format!(
                "cannot reach AWS for {action} ({what}{}): {}; check the network, proxy and --endpoint-url",
                opts.endpoint_url
                    .as_deref()
                    .map(|u| format!(" at {u}"))
                    .unwrap_or_default(),
                shorten(&chain)
            ))
        }
        SdkError::TimeoutError(_) => SourceError::Unreachable(format!(
            "AWS did not answer {action} in time; check the network and --endpoint-url"
        )),
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if status == 403 {
                return SourceError::AccessDenied {
                    action: action.into(),
                    message: "HTTP 403 Forbidden".into(),
                };
            }
            SourceError::Other(format!(
                "{action}: unexpected HTTP {status} answer: {}",
                shorten(&chain)
            ))
        }
        _ => SourceError::Other(format!(
            "{action} failed: {}",
            if code.is_empty() {
                shorten(&chain)
            } else {
                format!("{code}: {}", first_line(&message))
            }
        )),
    }
}

/// Error codes the SDK treats as throttling.
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "SlowDown"
            | "LimitExceededException"
    )
}

fn first_line(s: &str) -> String {
    shorten(s.lines().next().unwrap_or(""))
}

fn shorten(s: &str) -> String {
    crate::sanitize::error_quote(s, 300)
}

fn ts(d: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    d.and_then(|d| d.to_millis().ok()).map(Timestamp)
}

fn opt(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

/// SDK task -> evidence task.
pub fn map_task(t: &ecs::types::Task) -> Task {
    Task {
        task_arn: opt(t.task_arn()),
        cluster_arn: opt(t.cluster_arn()),
        task_definition_arn: opt(t.task_definition_arn()),
        container_instance_arn: opt(t.container_instance_arn()),
        last_status: opt(t.last_status()),
        desired_status: opt(t.desired_status()),
        stop_code: t.stop_code().map(|c| c.as_str().to_string()),
        stopped_reason: opt(t.stopped_reason()),
        launch_type: t.launch_type().map(|l| l.as_str().to_string()),
        capacity_provider_name: opt(t.capacity_provider_name()),
        platform_version: opt(t.platform_version()),
        group: opt(t.group()),
        started_by: opt(t.started_by()),
        created_at: ts(t.created_at()),
        pull_started_at: ts(t.pull_started_at()),
        pull_stopped_at: ts(t.pull_stopped_at()),
        started_at: ts(t.started_at()),
        stopping_at: ts(t.stopping_at()),
        stopped_at: ts(t.stopped_at()),
        containers: t
            .containers()
            .iter()
            .map(|c| Container {
                name: c.name().unwrap_or_default().to_string(),
                image: opt(c.image()),
                last_status: opt(c.last_status()),
                reason: opt(c.reason()),
                exit_code: c.exit_code().map(i64::from),
                runtime_id: opt(c.runtime_id()),
                health_status: c.health_status().map(|h| h.as_str().to_string()),
            })
            .collect(),
    }
}

fn map_secret(s: &ecs::types::Secret) -> Secret {
    Secret {
        name: s.name().to_string(),
        value_from: s.value_from().to_string(),
    }
}

/// SDK task definition -> evidence task definition.
pub fn map_task_definition(td: &ecs::types::TaskDefinition) -> TaskDefinition {
    TaskDefinition {
        task_definition_arn: opt(td.task_definition_arn()),
        family: opt(td.family()),
        revision: Some(i64::from(td.revision())).filter(|r| *r > 0),
        execution_role_arn: opt(td.execution_role_arn()),
        task_role_arn: opt(td.task_role_arn()),
        network_mode: td.network_mode().map(|n| n.as_str().to_string()),
        requires_compatibilities: td
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        container_definitions: td
            .container_definitions()
            .iter()
            .map(|c| ContainerDefinition {
                name: c.name().unwrap_or_default().to_string(),
                image: opt(c.image()),
                essential: c.essential(),
                log_configuration: c.log_configuration().map(|l| LogConfiguration {
                    log_driver: l.log_driver().as_str().to_string(),
                    options: l
                        .options()
                        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                    secret_options: l.secret_options().iter().map(map_secret).collect(),
                }),
                secrets: c.secrets().iter().map(map_secret).collect(),
                repository_credentials: c.repository_credentials().map(|r| RepositoryCredentials {
                    credentials_parameter: r.credentials_parameter().to_string(),
                }),
                environment_files: c
                    .environment_files()
                    .iter()
                    .map(|f| EnvironmentFile {
                        value: f.value().to_string(),
                        kind: f.r#type().as_str().to_string(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/ecsdoctor`, `~/.cache/ecsdoctor`
/// (`~/Library/Caches/ecsdoctor` on macOS, `%LOCALAPPDATA%\ecsdoctor` on Windows).
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("ecsdoctor"));
    }
    if cfg!(windows) {
        return std::env::var_os("LOCALAPPDATA").map(|d| PathBuf::from(d).join("ecsdoctor"));
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    if cfg!(target_os = "macos") {
        Some(home.join("Library/Caches/ecsdoctor"))
    } else {
        Some(home.join(".cache/ecsdoctor"))
    }
}

fn cache_path(opts: &AwsOptions, td_arn: &str) -> Option<PathBuf> {
    let dir = opts.cache_dir.clone()?;
    // An emulator's ARNs are not AWS's: keep their cache apart.
    let scope = opts.endpoint_url.as_deref().unwrap_or("aws");
    let name: String = format!("{scope}-{td_arn}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(dir.join("task-definitions").join(format!("{name}.json")))
}

fn read_cache(opts: &AwsOptions, td_arn: &str) -> Option<TaskDefinition> {
    let p = cache_path(opts, td_arn)?;
    let text = std::fs::read_to_string(p).ok()?;
    let td: TaskDefinition = serde_json::from_str(&text).ok()?;
    (td.task_definition_arn.as_deref() == Some(td_arn)).then_some(td)
}

fn write_cache(opts: &AwsOptions, td_arn: &str, td: &TaskDefinition) {
    // A cache is an optimisation: failing to write it is not an error.
    if let Some(p) = cache_path(opts, td_arn) {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(text) = serde_json::to_string(td) {
            let tmp = p.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The SDK-to-evidence mapping and the error mapping, on mocked SDK clients: moto cannot
    //! produce container reasons, exit codes, stop codes, timestamps or most error shapes, so these
    //! fields are covered here (the real HTTP path is covered by tests/live.rs against moto).
    use super::*;
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::display::DisplayErrorContext;

    fn task_output() -> DescribeTasksOutput {
        use ecs::types::{Container as C, Task as T, TaskStopCode};
        DescribeTasksOutput::builder()
            .tasks(
                T::builder()
                    .task_arn("arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef")
                    .cluster_arn("arn:aws:ecs:us-east-1:123456789012:cluster/demo")
                    .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3")
                    .last_status("STOPPED")
                    .launch_type(ecs::types::LaunchType::Fargate)
                    .stop_code(TaskStopCode::EssentialContainerExited)
                    .stopped_reason("Essential container in task exited")
                    .created_at(aws_smithy_types::DateTime::from_secs(1_763_900_000))
                    .started_at(aws_smithy_types::DateTime::from_secs(1_763_900_020))
                    .stopped_at(aws_smithy_types::DateTime::from_secs(1_763_902_410))
                    .containers(
                        C::builder()
                            .name("app")
                            .exit_code(137)
                            .reason("OutOfMemoryError: Container killed due to memory usage")
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    fn td_output() -> DescribeTaskDefinitionOutput {
        use ecs::types::{
            ContainerDefinition as CD, LogConfiguration as LC, LogDriver, Secret as S, TaskDefinition as TD,
        };
        DescribeTaskDefinitionOutput::builder()
            .task_definition(
                TD::builder()
                    .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3")
                    .execution_role_arn("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
                    .task_role_arn("arn:aws:iam::123456789012:role/web-task")
                    .container_definitions(
                        CD::builder()
                            .name("app")
                            .log_configuration(
                                LC::builder()
                                    .log_driver(LogDriver::Awslogs)
                                    .options("awslogs-group", "/ecs/web")
                                    .options("awslogs-stream-prefix", "ecs")
                                    .build()
                                    .expect("log configuration"),
                            )
                            .secrets(
                                S::builder()
                                    .name("DB")
                                    .value_from("arn:aws:ssm:us-east-1:123456789012:parameter/db")
                                    .build()
                                    .expect("secret"),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    fn opts() -> AwsOptions {
        AwsOptions {
            log_lines: 50,
            timeout: Duration::from_secs(5),
            ..AwsOptions::default()
        }
    }

    fn task_ref() -> TaskRef {
        crate::arn::parse_task("arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef")
            .expect("arn")
    }

    #[tokio::test]
    async fn fetch_maps_every_field_moto_cannot_hold_and_reads_the_right_stream() {
        let dt = mock!(ecs::Client::describe_tasks).then_output(task_output);
        let dtd = mock!(ecs::Client::describe_task_definition).then_output(td_output);
        let tracer = Arc::new(Tracer::new(None));
        let g = tracer.clone();
        let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&dt, &dtd], |c| c
            .interceptor(guard(g.clone())));
        let gle = mock!(logs::Client::get_log_events)
            .match_requests(|r| {
                r.log_group_name() == Some("/ecs/web")
                    && r.log_stream_name() == Some("ecs/app/0123456789abcdef0123456789abcdef")
                    && r.start_from_head() == Some(false)
            })
            .then_output(|| {
                logs::operation::get_log_events::GetLogEventsOutput::builder()
                    .events(
                        logs::types::OutputLogEvent::builder()
                            .timestamp(5)
                            .message("java.lang.OutOfMemoryError")
                            .build(),
                    )
                    .build()
            });
        let fle = mock!(logs::Client::filter_log_events).then_output(|| {
            logs::operation::filter_log_events::FilterLogEventsOutput::builder()
                .events(
                    logs::types::FilteredLogEvent::builder()
                        .timestamp(1)
                        .message("AccessDenied: Access Denied")
                        .build(),
                )
                .build()
        });
        let g = tracer.clone();
        let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, [&gle, &fle], |c| c
            .interceptor(guard(g.clone())));
        let clients = Clients::from_clients(ecs, logs, "us-east-1", tracer.clone());
        let ev = fetch(&clients, &task_ref(), &opts(), &Limits::default())
            .await
            .expect("fetch");
        let c = &ev.task.containers[0];
        assert_eq!(c.exit_code, Some(137));
        assert_eq!(
            c.reason.as_deref(),
            Some("OutOfMemoryError: Container killed due to memory usage")
        );
        assert_eq!(ev.task.stop_code.as_deref(), Some("EssentialContainerExited"));
        assert_eq!(ev.task.started_at, Some(Timestamp(1_763_900_020_000)));
        let td = ev.task_definition.as_ref().expect("task definition");
        assert_eq!(
            td.task_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/web-task")
        );
        assert_eq!(
            td.container_definitions[0].secrets[0].value_from,
            "arn:aws:ssm:us-east-1:123456789012:parameter/db"
        );
        // The filter pass found an earlier denial; both lines are kept in time order.
        let msgs: Vec<&str> = ev.logs[0].lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(msgs, ["AccessDenied: Access Denied", "java.lang.OutOfMemoryError"]);
        assert_eq!(gle.num_calls(), 1);
        // Three sequential rounds, every call on the read-only list.
        let calls = tracer.calls();
        assert_eq!(tracer.rounds(), 3, "{calls:?}");
        assert!(
            calls.iter().all(|(_, _, op)| ALLOWED_OPERATIONS.contains(&op.as_str())),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn the_guard_refuses_anything_not_read_only() {
        let stop =
            mock!(ecs::Client::stop_task).then_output(|| ecs::operation::stop_task::StopTaskOutput::builder().build());
        let tracer = Arc::new(Tracer::new(None));
        let g = tracer.clone();
        let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&stop], |c| c
            .interceptor(guard(g.clone())));
        let err = ecs
            .stop_task()
            .task("t")
            .send()
            .await
            .expect_err("a write must be refused");
        assert!(
            format!("{}", DisplayErrorContext(&err)).contains("read-only"),
            "{}",
            DisplayErrorContext(&err)
        );
        // Refused before serialization: never recorded as sent.
        assert!(tracer.calls().is_empty(), "{:?}", tracer.calls());
    }

    async fn error_for(status: u16, body: &'static str) -> SourceError {
        let rule = mock!(ecs::Client::describe_tasks).then_http_response(move || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("status"),
                aws_smithy_types::body::SdkBody::from(body),
            )
        });
        let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(1)));
        let err = ecs
            .describe_tasks()
            .cluster("demo")
            .tasks("t")
            .send()
            .await
            .expect_err("error");
        map_err(
            "ecs:DescribeTasks",
            err,
            "demo",
            "us-east-1",
            &AwsOptions {
                profile: Some("ops".into()),
                ..opts()
            },
        )
    }

    #[tokio::test]
    async fn aws_errors_become_one_line_messages_with_exit_3() {
        let e = error_for(400, r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::1:assumed-role/oncall/x is not authorized to perform: ecs:DescribeTasks"}"#).await;
        assert!(
            matches!(&e, SourceError::AccessDenied { action, .. } if action == "ecs:DescribeTasks"),
            "{e}"
        );
        let e = error_for(
            400,
            r#"{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}"#,
        )
        .await;
        assert!(e.to_string().contains("aws sso login --profile ops"), "{e}");
        let e = error_for(400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#).await;
        assert!(matches!(e, SourceError::Throttled { .. }), "{e}");
        let e = error_for(
            400,
            r#"{"__type":"ClusterNotFoundException","message":"Cluster not found."}"#,
        )
        .await;
        assert!(matches!(e, SourceError::ClusterNotFound { .. }), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_AWS);
        assert!(!e.to_string().contains('\n'));
    }

    #[tokio::test]
    async fn a_missing_task_is_task_not_found_with_the_retention_hint() {
        let dt = mock!(ecs::Client::describe_tasks).then_output(|| {
            DescribeTasksOutput::builder()
                .failures(
                    ecs::types::Failure::builder()
                        .arn("arn:aws:ecs:us-east-1:123456789012:task/demo/x")
                        .reason("MISSING")
                        .build(),
                )
                .build()
        });
        let ecs = mock_client!(aws_sdk_ecs, [&dt]);
        let logs = mock_client!(aws_sdk_cloudwatchlogs, Vec::<&aws_smithy_mocks::Rule>::new());
        let clients = Clients::from_clients(ecs, logs, "us-east-1", Arc::new(Tracer::new(None)));
        let e = fetch(&clients, &task_ref(), &opts(), &Limits::default())
            .await
            .expect_err("missing");
        assert!(matches!(e, SourceError::TaskNotFound { .. }));
        assert!(e.to_string().contains("about an hour"), "{e}");
    }

    #[tokio::test]
    async fn no_credentials_is_a_credentials_error() {
        let client = aws_smithy_http_client::test_util::infallible_client_fn(|_req| {
            http::Response::builder()
                .status(200)
                .body(aws_smithy_types::body::SdkBody::from("{}"))
                .expect("response")
        });
        let conf = ecs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .http_client(client)
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(NoCreds))
            .build();
        let err = ecs::Client::from_conf(conf)
            .describe_tasks()
            .tasks("t")
            .send()
            .await
            .expect_err("no creds");
        let e = map_err("ecs:DescribeTasks", err, "default", "us-east-1", &opts());
        assert!(matches!(e, SourceError::Credentials(_)), "{e}");
        assert!(e.to_string().contains("no AWS credentials found"), "{e}");
    }

    #[derive(Debug)]
    struct NoCreds;
    impl aws_credential_types::provider::ProvideCredentials for NoCreds {
        fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "no providers in chain provided credentials",
                ),
            ))
        }
    }
}
