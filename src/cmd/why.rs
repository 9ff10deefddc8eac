//! `ecsdoctor why`: source -> evidence -> engine -> diagnosis -> verification -> render.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{
    aws_options, block_on_aws_in, engine_options, load_rules, render_options, runtime, with_stdout, Failure, Outcome,
};
use crate::arn::{parse_task, TaskRef};
use crate::cli::WhyArgs;
use crate::error::{EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_OK};
use crate::evidence::Evidence;
use crate::rules::engine::Matcher;
use crate::source::aws::{AwsSource, OnTask};
use crate::source::bundle::{Bundle, BundleSource};
use crate::source::{EvidenceSource, Limits};
use crate::verdict::{diagnose, Diagnosis};
use crate::verify::BundleReader;

/// Where verification reads the role's policies from.
pub enum Verifier {
    /// Not checked (`--no-verify`, `--offline`, a single describe-tasks file).
    Off,
    /// From AWS, through the source that read the task, on the runtime that read it (the roles'
    /// reads it started beside the logs are still running there).
    Live(Box<(AwsSource, tokio::runtime::Runtime)>),
    /// From the captured bundle's `iam/` and `resource-policies/`.
    Bundle(BundleReader),
}

/// Runs `why`.
pub fn run(args: &WhyArgs, color: bool) -> Outcome {
    let matcher = Arc::new(load_rules(&args.output.rules)?);
    let task = match &args.task {
        Some(t) => Some(parse_task(t).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?),
        None => None,
    };
    let limits = Limits::default();
    let verify = !args.verify.no_verify;
    let (ev, verifier) = if let Some(from) = &args.from {
        let bundle = Bundle::from_arg(from);
        let verifier = match &bundle {
            Bundle::Dir(dir) if verify => Verifier::Bundle(BundleReader::new(dir)),
            _ => Verifier::Off,
        };
        let src = BundleSource { bundle, limits };
        (block_on_sync(src.evidence(task.as_ref()))?, verifier)
    } else if let Some(event) = &args.event {
        event_evidence(event, args, limits)?
    } else {
        let Some(t) = task.as_ref() else {
            return Err(Failure::new(
                EXIT_BAD_INPUT,
                "name the task to diagnose (a task ARN, or an id with --cluster), or pass --from DIR",
            ));
        };
        live(t, args, limits, &matcher)?
    };
    let out = emit(&ev, &matcher, args, color, verifier);
    // The process ends here: freeing a 200,000-line log and the compiled rules one allocation
    // at a time costs more than a tenth of a big bundle's run, and the OS takes it all back.
    std::mem::forget(ev);
    std::mem::forget(matcher);
    out
}

/// Diagnoses evidence, checks the verdict against the account's policies, prints it; returns the
/// exit code.
pub fn emit(
    ev: &Evidence,
    matcher: &crate::rules::engine::Matcher,
    args: &WhyArgs,
    color: bool,
    verifier: Verifier,
) -> Outcome {
    let opts = engine_options(&args.output);
    let mut d: Diagnosis = diagnose(ev, matcher, &opts);
    verify(&mut d, ev, matcher, &opts, verifier, args.verify.simulate)?;
    let ropts = render_options(&args.output, color);
    with_stdout(|w| crate::render::diagnosis(&d, args.output.format, &ropts, w))?;
    Ok(if d.conclusive() { EXIT_OK } else { EXIT_INCONCLUSIVE })
}

/// Checks `d` against the account's policies through `verifier`. Verification plans from the
/// diagnosis without account masking (ARNs must be whole), and the result is masked like `d`.
pub fn verify(
    d: &mut Diagnosis,
    ev: &Evidence,
    matcher: &crate::rules::engine::Matcher,
    opts: &crate::verdict::Options,
    verifier: Verifier,
    simulate: bool,
) -> Result<(), Failure> {
    if matches!(verifier, Verifier::Off) {
        return Ok(());
    }
    let plain = crate::verify::unmasked(d, ev, matcher, opts);
    let k = matcher.knowledge();
    match verifier {
        Verifier::Off => {}
        Verifier::Live(live) => {
            let (src, rt) = *live;
            let checked = block_on_aws_in(&rt, "checking the role's policies", async {
                src.verify(d, &plain, ev, simulate, k, opts).await;
                Ok(())
            });
            // Prefetched reads nobody needed may still be in flight: the OS ends them.
            rt.shutdown_background();
            checked?;
        }
        Verifier::Bundle(reader) => {
            if !reader.has_policies() && crate::verify::plan(&plain, ev, k).is_ok() {
                d.notes.push(
                    "not checked against the account's policies: the bundle holds none (captured with --no-verify, or by an older ecsdoctor)"
                        .into(),
                );
                return Ok(());
            }
            block_on_sync(async {
                crate::verify::verify_diagnosis(d, &plain, ev, &reader, simulate, k, opts).await;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Fetches evidence live; the source stays for verification unless `--no-verify`.
pub fn live(
    task: &TaskRef,
    args: &WhyArgs,
    limits: Limits,
    matcher: &Arc<Matcher>,
) -> Result<(Evidence, Verifier), Failure> {
    let mut src = live_source(args, limits)?;
    // While the logs are read, diagnose the task and its definition on another thread: the
    // regexes of the rules they touch (and the redaction patterns) are compiled by the time the
    // logs arrive. Its result is dropped; the real diagnosis follows with the logs.
    let (warm_matcher, opts) = (matcher.clone(), engine_options(&args.output));
    let logs_in = Arc::new(AtomicBool::new(false));
    let stop = logs_in.clone();
    src.on_task = Some(OnTask(Arc::new(move |ev: &Evidence| {
        let (m, ev, stop) = (warm_matcher.clone(), ev.clone(), stop.clone());
        std::thread::spawn(move || {
            drop(diagnose(&ev, &m, &opts));
            m.precompile_log_rules(&stop);
        });
    })));
    let rt = runtime()?;
    let ev = block_on_aws_in(
        &rt,
        &format!("reading task {} from AWS", task.id),
        src.evidence(Some(task)),
    );
    logs_in.store(true, Ordering::Relaxed);
    let ev = ev?;
    Ok((ev, live_verifier(args, src, rt)))
}

/// The live source of `why` (and `why --event`): the AWS options, reading the roles beside the logs
/// unless --no-verify.
fn live_source(args: &WhyArgs, limits: Limits) -> Result<AwsSource, Failure> {
    let mut aws = aws_options(&args.aws)?;
    aws.verify = !args.verify.no_verify;
    Ok(AwsSource::new(aws, limits))
}

/// What checks a live verdict: the source and its runtime, or nothing with --no-verify.
fn live_verifier(args: &WhyArgs, src: AwsSource, rt: tokio::runtime::Runtime) -> Verifier {
    if args.verify.no_verify {
        // Nothing more to read: leave the idle connections to the OS instead of waiting for
        // the runtime's workers to wind down.
        rt.shutdown_background();
        Verifier::Off
    } else {
        Verifier::Live(Box::new((src, rt)))
    }
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
pub fn event_evidence(path: &Path, args: &WhyArgs, limits: Limits) -> Result<(Evidence, Verifier), Failure> {
    let task = crate::source::event::read_event(path)?;
    let mut ev = Evidence {
        task,
        ..Evidence::default()
    };
    if args.offline {
        ev.notes
            .push("offline: the task definition and logs were not fetched (--offline)".into());
        return Ok((ev, Verifier::Off));
    }
    if ev.task.task_arn.is_none() {
        return Err(Failure::new(
            EXIT_BAD_INPUT,
            format!("{}: the event's detail has no taskArn", path.display()),
        ));
    }
    let src = live_source(args, limits)?;
    let rt = runtime()?;
    let ev = block_on_aws_in(&rt, "reading the task definition and logs from AWS", async {
        Ok(src.complete_task(ev.task).await)
    })?;
    Ok((ev, live_verifier(args, src, rt)))
}
