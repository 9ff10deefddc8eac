//! `ecsdoctor why`: source -> evidence -> engine -> diagnosis -> render.

use std::path::Path;

use super::{aws_options, block_on_aws, engine_options, load_rules, render_options, with_stdout, Failure, Outcome};
use crate::arn::{parse_task, TaskRef};
use crate::cli::WhyArgs;
use crate::error::{EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_OK};
use crate::evidence::Evidence;
use crate::source::aws::AwsSource;
use crate::source::bundle::{Bundle, BundleSource};
use crate::source::{EvidenceSource, Limits};
use crate::verdict::{diagnose, Diagnosis};

/// Runs `why`.
pub fn run(args: &WhyArgs, color: bool) -> Outcome {
    let matcher = load_rules(&args.output.rules)?;
    let task = match &args.task {
        Some(t) => Some(parse_task(t).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?),
        None => None,
    };
    let limits = Limits::default();
    let ev = if let Some(from) = &args.from {
        let src = BundleSource {
            bundle: Bundle::from_arg(from),
            limits,
        };
        block_on_sync(src.evidence(task.as_ref()))?
    } else if let Some(event) = &args.event {
        event_evidence(event, args, limits)?
    } else {
        let Some(t) = task.as_ref() else {
            return Err(Failure::new(
                EXIT_BAD_INPUT,
                "name the task to diagnose (a task ARN, or an id with --cluster), or pass --from DIR",
            ));
        };
        live(t, args, limits)?
    };
    emit(&ev, &matcher, args, color)
}

/// Diagnoses evidence and prints it; returns the exit code.
pub fn emit(ev: &Evidence, matcher: &crate::rules::engine::Matcher, args: &WhyArgs, color: bool) -> Outcome {
    let d: Diagnosis = diagnose(ev, matcher, &engine_options(&args.output));
    let ropts = render_options(&args.output, color);
    with_stdout(|w| crate::render::diagnosis(&d, args.output.format, &ropts, w))?;
    Ok(if d.conclusive() { EXIT_OK } else { EXIT_INCONCLUSIVE })
}

/// Fetches evidence live.
pub fn live(task: &TaskRef, args: &WhyArgs, limits: Limits) -> Result<Evidence, Failure> {
    let src = AwsSource::new(aws_options(&args.aws)?, limits);
    block_on_aws(&format!("reading task {} from AWS", task.id), src.evidence(Some(task)))
}

/// Runs a future that does no real async work (the bundle source) to completion.
fn block_on_sync<T>(f: impl std::future::Future<Output = Result<T, crate::error::SourceError>>) -> Result<T, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Failure::new(EXIT_BAD_INPUT, format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(f)?)
}

/// Evidence from an EventBridge "ECS Task State Change" event: its `detail` is the task, as
/// DescribeTasks would return it. The task definition and logs come from AWS unless --offline.
pub fn event_evidence(path: &Path, args: &WhyArgs, limits: Limits) -> Result<Evidence, Failure> {
    let task = crate::source::event::read_event(path)?;
    let mut ev = Evidence {
        task,
        ..Evidence::default()
    };
    if args.offline {
        ev.notes
            .push("offline: the task definition and logs were not fetched (--offline)".into());
        return Ok(ev);
    }
    if ev.task.task_arn.is_none() {
        return Err(Failure::new(
            EXIT_BAD_INPUT,
            format!("{}: the event's detail has no taskArn", path.display()),
        ));
    }
    let src = AwsSource::new(aws_options(&args.aws)?, limits);
    block_on_aws("reading the task definition and logs from AWS", async {
        Ok(src.complete_task(ev.task).await)
    })
}
