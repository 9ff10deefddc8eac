//! `ecsdoctor capture`: fetch a task's evidence and write it as a bundle, the same files the AWS
//! CLI prints, so that someone without credentials (or a bug report) can replay it with
//! `ecsdoctor why --from DIR`. Unless `--no-verify`, the task is diagnosed and what verification
//! reads (the denied role's policies, the resource's and the key's) is stored too, under `iam/`
//! and `resource-policies/`, so the replay checks the verdict offline.

use super::{aws_options, block_on_aws_in, load_rules, runtime, Failure, Outcome};
use crate::arn::parse_task;
use crate::cli::CaptureArgs;
use crate::error::{EXIT_BAD_INPUT, EXIT_OK};
use crate::source::aws::AwsSource;
use crate::source::{EvidenceSource, Limits};
use crate::verdict::{diagnose, Options};

/// Runs `capture`.
pub fn run(args: &CaptureArgs) -> Outcome {
    let task = parse_task(&args.task).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?;
    let matcher = if args.no_verify {
        None
    } else {
        Some(load_rules(&args.rules)?)
    };
    let mut aws = aws_options(&args.aws)?;
    aws.verify = !args.no_verify;
    let src = AwsSource::new(aws, Limits::default());
    let rt = runtime()?;
    let ev = block_on_aws_in(&rt, &format!("capturing task {}", task.id), src.evidence(Some(&task)))?;
    let cannot_write = |e: std::io::Error| {
        Failure::new(
            EXIT_BAD_INPUT,
            format!("{}: cannot write the bundle: {e}", args.out.display()),
        )
    };
    let mut files = crate::source::bundle::write(&ev, &args.out).map_err(cannot_write)?;
    if let Some(matcher) = &matcher {
        // The diagnosis decides what verification reads; the bundle keeps the raw answers, so
        // nothing here is masked.
        let opts = Options::default();
        let mut d = diagnose(&ev, matcher, &opts);
        let plain = d.clone();
        block_on_aws_in(&rt, "reading the role's policies", async {
            src.verify(&mut d, &plain, &ev, false, matcher.knowledge(), &opts).await;
            Ok(())
        })?;
        let answers = src.verification_answers();
        files.extend(crate::verify::write_answers(&answers, &args.out).map_err(cannot_write)?);
        if let Some(v) = &d.verdict.verification {
            eprintln!("checked against the account's policies: {}", v.status.name());
        }
    }
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    eprintln!("replay with: ecsdoctor why --from {}", args.out.display());
    Ok(EXIT_OK)
}
