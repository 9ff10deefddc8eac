//! `ecsdoctor capture`: fetch a task's evidence and write it as a bundle, the same files the AWS
//! CLI prints, so that someone without credentials (or a bug report) can replay it with
//! `ecsdoctor why --from DIR`.

use super::{aws_options, block_on_aws, Failure, Outcome};
use crate::arn::parse_task;
use crate::cli::CaptureArgs;
use crate::error::{EXIT_BAD_INPUT, EXIT_OK};
use crate::source::aws::AwsSource;
use crate::source::{EvidenceSource, Limits};

/// Runs `capture`.
pub fn run(args: &CaptureArgs) -> Outcome {
    let task = parse_task(&args.task).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?;
    let src = AwsSource::new(aws_options(&args.aws)?, Limits::default());
    let ev = block_on_aws(&format!("capturing task {}", task.id), src.evidence(Some(&task)))?;
    let files = crate::source::bundle::write(&ev, &args.out).map_err(|e| {
        Failure::new(
            EXIT_BAD_INPUT,
            format!("{}: cannot write the bundle: {e}", args.out.display()),
        )
    })?;
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    eprintln!("replay with: ecsdoctor why --from {}", args.out.display());
    Ok(EXIT_OK)
}
