//! `scan`'s API rounds: the stopped tasks of a cluster (ListTasks pages, then DescribeTasks in
//! batches of 100, a few in flight), each distinct task definition revision once, and the logs
//! of the representative tasks. At most `concurrency` requests run at once; throttling is
//! retried by the SDK itself (see [`super::AwsOptions::retry_attempts`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::clients::Clients;
use super::{logs, task, AwsOptions};
use crate::error::SourceError;
use crate::evidence::{Evidence, Task, TaskDefinition};
use crate::source::Limits;

/// Errors after which nothing else can be read either.
pub fn is_fatal(e: &SourceError) -> bool {
    matches!(
        e,
        SourceError::Credentials(_) | SourceError::Unreachable(_) | SourceError::Timeout(_) | SourceError::BadInput(_)
    )
}

/// Which stopped tasks a scan lists.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    pub cluster: &'a str,
    pub service: Option<&'a str>,
    pub family: Option<&'a str>,
    /// The most tasks listed.
    pub limit: usize,
}

/// Rounds 1 and 2: the ARNs of the selected stopped tasks, then the tasks themselves. Returns the
/// tasks and how many were listed.
pub async fn stopped_tasks(
    clients: &Clients,
    sel: &Selection<'_>,
    concurrency: usize,
    opts: &AwsOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(Vec<Task>, usize), SourceError> {
    let cluster = sel.cluster;
    clients.tracer.next_round();
    let (arns, _pages) = task::list_stopped_tasks(clients, cluster, sel.service, sel.family, sel.limit, opts).await?;
    clients.tracer.next_round();
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (i, chunk) in arns.chunks(100).enumerate() {
        let (clients, cluster, opts, sem, chunk) = (
            clients.clone(),
            cluster.to_string(),
            opts.clone(),
            sem.clone(),
            chunk.to_vec(),
        );
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let n = chunk.len();
            (i, n, task::describe_tasks(&clients, &cluster, &chunk, &opts).await)
        });
    }
    let mut pages = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, n, out) = joined.map_err(|e| SourceError::Other(format!("a DescribeTasks call failed: {e}")))?;
        progress(n);
        pages.push((i, out?));
    }
    pages.sort_by_key(|p| p.0);
    Ok((pages.into_iter().flat_map(|p| p.1).collect(), arns.len()))
}

/// Round 3: each distinct revision once. A revision that cannot be read is a note, unless the
/// error means nothing else can be read either.
pub async fn task_definitions(
    clients: &Clients,
    revisions: Vec<String>,
    cluster: &str,
    concurrency: usize,
    opts: &AwsOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(BTreeMap<String, TaskDefinition>, Vec<String>), SourceError> {
    clients.tracer.next_round();
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for td_arn in revisions {
        let (clients, cluster, opts, sem) = (clients.clone(), cluster.to_string(), opts.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let out = task::task_definition(&clients, &td_arn, &cluster, &opts).await;
            (td_arn, out)
        });
    }
    let mut defs = BTreeMap::new();
    let mut notes = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (td_arn, out) =
            joined.map_err(|e| SourceError::Other(format!("a DescribeTaskDefinition call failed: {e}")))?;
        progress(1);
        match out {
            Ok(td) => {
                defs.insert(td_arn, td);
            }
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => notes.push(format!(
                "could not read task definition {td_arn}: {e}; its role names are unknown"
            )),
        }
    }
    Ok((defs, notes))
}

/// Round 4: the logs of the given tasks (by index), each with its evidence completed.
pub async fn read_logs(
    clients: &Clients,
    tasks: Vec<(usize, Evidence)>,
    concurrency: usize,
    opts: &AwsOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<(usize, Evidence)> {
    clients.tracer.next_round();
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (i, mut ev) in tasks {
        let (clients, opts, sem) = (clients.clone(), opts.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            logs::fetch_logs(&clients, &mut ev, &opts, &Limits::default()).await;
            (i, ev)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(x) = joined {
            progress(1);
            out.push(x);
        }
    }
    out.sort_by_key(|x| x.0);
    out
}
