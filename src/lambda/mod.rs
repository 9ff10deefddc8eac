//! The Lambda runner (`ecsdoctor lambda`): the same binary as an AWS Lambda custom runtime
//! (`provided.al2023`), on the `lambda_runtime` crate's Runtime API loop. Each invocation receives
//! an EventBridge "ECS Task State Change" event and runs the diagnosis of `why --event`: the task
//! from the event, its task definition and logs read through `AwsSource::complete_task`, then
//! `verdict::diagnose`. What is worth a message is [`notify`]; folding a burst of one cause into
//! one follow-up is [`dedup`]; the message is [`message`]; posting it is [`deliver`]; the
//! environment it reads is [`config`].
//!
//! Once per cold start (before the first event): the configuration is checked, the rules are
//! compiled, the AWS clients are built (one SDK configuration, credentials provider and HTTP
//! client for the sandbox's life) and the webhook URL is read. Any failure there is one line
//! posted to `/runtime/init/error`, and the process exits. After that no event can end the loop:
//! an invocation whose message cannot be delivered is answered with an error (Lambda's async
//! retries and the on-failure destination take over) and the next event is handled.

pub mod config;
pub mod dedup;
pub mod deliver;
pub mod message;
pub mod notify;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

use crate::evidence::Task;
use crate::rules::engine::Matcher;
use crate::sanitize::RedactOptions;
use crate::scan::GroupKey;
use crate::source::aws::signed::Signed;
use crate::source::aws::{AwsOptions, AwsSource};
use crate::source::Limits;
use crate::verdict::{diagnose, Diagnosis, Options};

use config::{Config, ConfigError};
use dedup::{Admit, Folder, Headline, Signature, Summary};
use deliver::{DeliveryError, Webhook};
use message::Header;
use notify::Decision;

/// The `detail-type` of the scheduled tick the Terraform module sends: it only posts the
/// summaries of windows that have ended.
pub const TICK_DETAIL_TYPE: &str = "Scheduled Event";

/// The most time the AWS reads of one invocation may take (the rest is for delivery).
pub const READ_BUDGET: Duration = Duration::from_secs(20);

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    Webhook,
    Sns,
}

/// Why an invocation failed. Its text is the `errorMessage` reported to the Runtime API.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The message could not be delivered (the webhook refused it or stayed down, or SNS failed).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Delivery(Vec<DeliveryError>),
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Diagnostic {
        let error_type = match &e {
            InvocationError::Delivery(errs) if errs.iter().any(|d| matches!(d, DeliveryError::Rejected { .. })) => {
                "ecsdoctor.WebhookRejected"
            }
            InvocationError::Delivery(_) => "ecsdoctor.DeliveryFailed",
        };
        Diagnostic {
            error_type: error_type.to_string(),
            error_message: crate::sanitize::error_quote(&e.to_string(), 1_000),
        }
    }
}

/// Everything built once per cold start, and the folding state of the sandbox.
#[derive(Debug)]
pub struct Runner {
    config: Config,
    source: AwsSource,
    matcher: Matcher,
    webhook: Option<Webhook>,
    signed: Option<Signed>,
    folder: Mutex<Folder>,
    /// Destinations already reached for a stop whose other destination failed, by task ARN and
    /// event version: Lambda's retry of that event posts only where it is still missing.
    delivered: Mutex<BTreeMap<String, Vec<Destination>>>,
}

impl Runner {
    /// The cold start: configuration, rules, AWS clients, the webhook URL.
    pub async fn init(config: Config) -> Result<Runner, ConfigError> {
        let region = std::env::var("AWS_REGION")
            .ok()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ConfigError("AWS_REGION is not set (Lambda always sets it)".into()))?;
        let opts = AwsOptions {
            // The task definition cache lives in /tmp, the only writable place in Lambda; it
            // survives warm starts.
            cache_dir: Some(std::env::temp_dir().join("ecsdoctor")),
            timeout: READ_BUDGET,
            trace: std::env::var_os("ECSDOCTOR_API_TRACE")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from),
            verify: config.verify,
            ..AwsOptions::default()
        };
        let source = AwsSource::new(opts, Limits::default());
        // Built now, under the key the events' task ARNs (same region) will ask for.
        let clients = source
            .clients(Some(&region))
            .await
            .map_err(|e| ConfigError(format!("cannot set up the AWS clients: {e}")))?;
        let matcher =
            Matcher::load(true, &[]).map_err(|e| ConfigError(format!("the built-in rules do not load: {e}")))?;
        let signed = clients.signed.clone();
        let webhook = match &config.webhook {
            Some(src) => {
                let url = deliver::read_webhook_url(src, signed.as_ref()).await?;
                Some(Webhook::new(url, config.format))
            }
            None => None,
        };
        if config.sns_topic_arn.is_some() && signed.is_none() {
            return Err(ConfigError("cannot publish to SNS: no AWS credentials".into()));
        }
        Ok(Runner {
            folder: Mutex::new(Folder::new(config.window)),
            config,
            source,
            matcher,
            webhook,
            signed,
            delivered: Mutex::new(BTreeMap::new()),
        })
    }

    /// Handles one event; `deadline` is the invocation's. The answer says what was done.
    pub async fn handle(&self, event: &Value, deadline: SystemTime) -> Result<Value, InvocationError> {
        let summaries = self.post_summaries(deadline).await;
        if event.get("detail-type").and_then(Value::as_str) == Some(TICK_DETAIL_TYPE) {
            return match summaries {
                Ok(n) => Ok(json!({ "status": "tick", "summaries": n })),
                Err(e) => Err(InvocationError::Delivery(e)),
            };
        }
        let task = match crate::source::event::parse_event(&event.to_string(), "the event") {
            Ok(t) => t,
            Err(e) => return Ok(json!({ "status": "ignored", "reason": e.to_string() })),
        };
        if let Err(Decision::NotStopped(reason)) = notify::is_stopped(&task) {
            return Ok(json!({ "status": "skipped", "reason": reason, "task_arn": task.task_arn }));
        }
        let version = event
            .pointer("/detail/version")
            .map(Value::to_string)
            .unwrap_or_default();
        let seen_key = format!("{}#{version}", task.task_arn.as_deref().unwrap_or(""));
        let header = Header::of(&task);
        let d = self.diagnose(task, deadline).await;
        let v = &d.verdict;
        let facts = json!({
            "task_arn": d.task_arn,
            "culprit": v.culprit.name(),
            "category": v.category.name(),
            "rule_id": v.rule_id,
        });
        if let Decision::Quiet(reason) = notify::decide(&d, &self.config.notify_on) {
            return Ok(with(facts, json!({ "status": "quiet", "reason": reason })));
        }
        let sig = Signature {
            cluster: header.cluster.clone(),
            group: header.service.clone(),
            key: GroupKey::of(&d),
        };
        let now = SystemTime::now();
        match self.folder().admit(&sig, &seen_key, &header.task_id, now) {
            Admit::Duplicate => return Ok(with(facts, json!({ "status": "duplicate" }))),
            Admit::Folded(n) => return Ok(with(facts, json!({ "status": "folded", "folded": n }))),
            Admit::First => {}
        }
        let text = message::compose(&d, &header, self.config.message_limit);
        let subject = message::sns_subject(&header);
        let done = self.delivered_for(&seen_key);
        let (reached, errors) = self.deliver(&text, &subject, deadline, &done).await;
        if errors.is_empty() {
            self.forget_delivered(&seen_key);
            let headline = Headline {
                text: format!("{}: {}", tag(&d), v.summary),
                cluster: header.cluster.clone(),
                service: header.service.clone(),
            };
            self.folder().open(sig, &seen_key, headline, now);
            Ok(with(facts, json!({ "status": "posted", "bytes": text.len() })))
        } else {
            self.remember_delivered(&seen_key, reached);
            Err(InvocationError::Delivery(errors))
        }
    }

    async fn diagnose(&self, task: Task, deadline: SystemTime) -> Diagnosis {
        // The reads get at most half of what is left, so delivery keeps time for its retries.
        let left = deliver::time_left(deadline);
        let mut source = self.source.clone();
        source.opts.timeout = (left / 2).clamp(Duration::from_secs(1), READ_BUDGET);
        let ev = source.complete_task(task).await;
        let opts = Options {
            redact: RedactOptions {
                secrets: true,
                accounts: self.config.redact_accounts,
            },
        };
        let mut d = diagnose(&ev, &self.matcher, &opts);
        if self.config.verify {
            // Verification plans from whole ARNs, and shares the reads' budget.
            let plain = crate::verify::unmasked(&d, &ev, &self.matcher, &opts);
            source
                .verify(&mut d, &plain, &ev, false, self.matcher.knowledge(), &opts)
                .await;
        }
        d
    }

    /// Posts the summaries of windows that have ended; a summary that fails is kept for later.
    async fn post_summaries(&self, deadline: SystemTime) -> Result<usize, Vec<DeliveryError>> {
        let due: Vec<Summary> = self.folder().due(SystemTime::now());
        let mut errors = Vec::new();
        let mut posted = 0;
        for s in due {
            let text = message::summary(&s, self.config.message_limit);
            let subject = format!("ecsdoctor: {} more stopped tasks, same cause", s.count);
            let (_, errs) = self.deliver(&text, &subject, deadline, &[]).await;
            if errs.is_empty() {
                posted += 1;
            } else {
                errors.extend(errs);
                self.folder().retry_later(s);
            }
        }
        if errors.is_empty() {
            Ok(posted)
        } else {
            Err(errors)
        }
    }

    /// Sends to every configured destination not in `skip`; returns those reached and the errors.
    async fn deliver(
        &self,
        text: &str,
        subject: &str,
        deadline: SystemTime,
        skip: &[Destination],
    ) -> (Vec<Destination>, Vec<DeliveryError>) {
        let mut reached = skip.to_vec();
        let mut errors = Vec::new();
        if let Some(w) = self.webhook.as_ref().filter(|_| !skip.contains(&Destination::Webhook)) {
            match w.post(text, deadline).await {
                Ok(_) => reached.push(Destination::Webhook),
                Err(e) => errors.push(e),
            }
        }
        if let (Some(topic), Some(signed)) = (&self.config.sns_topic_arn, &self.signed) {
            if !skip.contains(&Destination::Sns) {
                match deliver::publish(signed, topic, subject, text).await {
                    Ok(()) => reached.push(Destination::Sns),
                    Err(e) => errors.push(e),
                }
            }
        }
        (reached, errors)
    }

    fn folder(&self) -> MutexGuard<'_, Folder> {
        // A panic while holding the lock leaves the counts usable: take them as they are.
        self.folder.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delivered_for(&self, key: &str) -> Vec<Destination> {
        let map = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).cloned().unwrap_or_default()
    }

    fn remember_delivered(&self, key: &str, reached: Vec<Destination>) {
        let mut map = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= 1_000 {
            map.clear();
        }
        if !reached.is_empty() {
            map.insert(key.to_string(), reached);
        }
    }

    fn forget_delivered(&self, key: &str) {
        let mut map = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// The verdict's tag as the markdown headline shows it.
fn tag(d: &Diagnosis) -> String {
    crate::render::tag_markdown(d.verdict.culprit, d.verdict.category)
}

fn with(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// A one-line record of an invocation for the function's log (CloudWatch): never the URL.
fn log_line(request_id: &str, outcome: &Result<Value, InvocationError>, took: Duration) -> String {
    let ms = took.as_millis();
    match outcome {
        Ok(v) => {
            let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
            format!(
                "ecsdoctor: {request_id} {} task={} category={} rule={} {ms} ms",
                field("status"),
                field("task_arn"),
                field("category"),
                field("rule_id"),
            )
        }
        Err(e) => format!("ecsdoctor: {request_id} failed: {e} ({ms} ms)"),
    }
}

/// The environment the Runtime API client needs; checked first so a run outside Lambda is one
/// line, not a panic inside `lambda_runtime`.
pub const RUNTIME_ENV: &[&str] = &[
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Why the runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Not inside Lambda (a Runtime API variable is missing).
    #[error("ecsdoctor lambda runs inside AWS Lambda (a custom runtime): {0} is not set")]
    NotInLambda(&'static str),
    /// The configuration or the cold start failed (reported to `/runtime/init/error`).
    #[error("{0}")]
    Init(ConfigError),
    /// The Runtime API loop ended (the API went away).
    #[error("the Lambda Runtime API loop ended: {0}")]
    Loop(String),
}

/// Runs the runner: the cold start, then the Runtime API loop until the sandbox ends.
pub async fn run() -> Result<(), RunError> {
    for var in RUNTIME_ENV {
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            return Err(RunError::NotInLambda(var));
        }
    }
    if std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").is_ok_and(|m| m.parse::<i32>().is_err()) {
        return Err(RunError::NotInLambda("a numeric AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
    }
    let started = Instant::now();
    let runner = match Config::from_env() {
        Ok(config) => Runner::init(config).await,
        Err(e) => Err(e),
    };
    let runner = match runner {
        Ok(r) => Arc::new(r),
        Err(e) => {
            report_init_error(&e).await;
            return Err(RunError::Init(e));
        }
    };
    println!(
        "ecsdoctor: cold start in {} ms (notify on {:?}, window {:?}, webhook {}, sns {})",
        started.elapsed().as_millis(),
        runner.config.notify_on,
        runner.config.window,
        runner.webhook.as_ref().map(|w| w.host()).unwrap_or("none"),
        if runner.config.sns_topic_arn.is_some() {
            "yes"
        } else {
            "no"
        },
    );
    let handler = lambda_runtime::service_fn(move |ev: LambdaEvent<Value>| {
        let runner = runner.clone();
        async move {
            let t = Instant::now();
            let out = runner.handle(&ev.payload, ev.context.deadline()).await;
            println!(
                "{}",
                crate::sanitize::error_line(&log_line(&ev.context.request_id, &out, t.elapsed()))
            );
            out
        }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|e| RunError::Loop(crate::sanitize::error_quote(&e.to_string(), 300)))
}

/// Reports a cold-start failure to `/runtime/init/error`, as the Runtime API documents it (the
/// `lambda_runtime` crate reports only SnapStart failures there itself).
async fn report_init_error(e: &ConfigError) {
    use lambda_runtime_api_client::body::Body;
    let diagnostic = Diagnostic {
        error_type: "ecsdoctor.ConfigError".into(),
        error_message: crate::sanitize::error_quote(&e.0, 1_000),
    };
    let Ok(body) = serde_json::to_vec(&diagnostic) else {
        return;
    };
    let client = lambda_runtime_api_client::PooledClient::builder().build();
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(Body::from(body));
    match request {
        Ok(req) => {
            if let Err(err) = client.call(req).await {
                eprintln!(
                    "error: could not report the init error to the Runtime API: {}",
                    crate::sanitize::error_quote(&err.to_string(), 200)
                );
            }
        }
        Err(err) => eprintln!("error: could not build the init error report: {err}"),
    }
}

#[cfg(test)]
mod tests;
