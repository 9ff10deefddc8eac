//! CloudWatch Logs reads: for every awslogs container, the newest `--log-lines` events and a
//! FilterLogEvents pass over the task's lifetime for denial terms, all in parallel. A log that
//! cannot be read is a note in the output, never a failure of the diagnosis: an incident is
//! exactly when the API is busy, and the stop reason still speaks.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::clients::Clients;
use super::errors::{is_throttling, map_err, one_line};
use super::AwsOptions;
use crate::evidence::{Evidence, LogLine};
use crate::source::Limits;

/// Terms that find denials anywhere in a task's log, even far from its last lines.
/// CloudWatch filter syntax: `?term` is OR; quoted terms are phrases; matching is case-sensitive.
pub const DENIAL_FILTER: &str = r#"?AccessDenied ?"Access Denied" ?"not authorized" ?UnauthorizedOperation ?AuthorizationError ?Forbidden ?"Unable to locate credentials" ?NoCredentialProviders ?CredentialsProviderError ?"security token" ?"Could not load credentials" ?"Unable to load AWS credentials""#;

/// Reads the logs of every awslogs container of a task, all in parallel: the newest
/// `--log-lines` events, plus a FilterLogEvents pass over the task's lifetime for denial terms,
/// so that an AccessDenied followed by a long stack trace is not missed. A log that cannot be
/// read is a note in `ev.notes`.
pub async fn fetch_logs(clients: &Clients, ev: &mut Evidence, opts: &AwsOptions, limits: &Limits) {
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
                    notes.push(
                        log_error_note(&e, &plan)
                            .unwrap_or_else(|| not_read(&plan.container, e, &cluster, &clients.region, opts)),
                    );
                    continue;
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
}

/// The note for a log that could not be read: which container, and why in one line.
fn not_read<E>(
    container: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    cluster: &str,
    region: &str,
    opts: &AwsOptions,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let why = match e.code().filter(|c| is_throttling(c)) {
        Some(code) => format!("{code} after {} attempts", opts.retry_attempts.max(1)),
        None => map_err("logs:GetLogEvents", e, cluster, region, opts).to_string(),
    };
    format!("logs of `{container}` not read: {why}; the verdict comes from the stop reason, container reasons and task definition")
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
