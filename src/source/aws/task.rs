//! ECS reads: DescribeTasks (in batches of 100), DescribeTaskDefinition (through the on-disk
//! cache of immutable revisions) and ListTasks (stopped tasks of a cluster, service or family).

use aws_sdk_ecs as ecs;

use super::clients::Clients;
use super::errors::map_err;
use super::mapping::{map_task, map_task_definition};
use super::AwsOptions;
use crate::error::SourceError;
use crate::evidence::{Task, TaskDefinition};
use crate::source::cache;

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
    if let Some(td) = cache::read(opts.cache_dir.as_deref(), opts.cache_scope(), td_arn) {
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
    cache::write(opts.cache_dir.as_deref(), opts.cache_scope(), td_arn, &td);
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

/// One entry of a service's event log (`DescribeServices`): placement failures, circuit-breaker
/// rollbacks and launch errors that never create a task are only told here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: Option<crate::evidence::Timestamp>,
    pub message: String,
}

/// The events of one service, newest first (ECS keeps the last 100).
pub async fn service_events(
    clients: &Clients,
    cluster: &str,
    service: &str,
    opts: &AwsOptions,
) -> Result<Vec<ServiceEvent>, SourceError> {
    let out = clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| map_err("ecs:DescribeServices", e, cluster, &clients.region, opts))?;
    Ok(out
        .services()
        .iter()
        .flat_map(|s| s.events())
        .map(super::mapping::map_service_event)
        .collect())
}
