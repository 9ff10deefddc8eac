//! `ecsdoctor explain`: diagnose a pasted stoppedReason or log excerpt (a whole paste: several lines
//! read as one piece of evidence), with what the user knows of the task: its launch type, whether
//! it started, its task definition.

use super::{engine_options, load_rules, render_options, with_stdout, Failure, Outcome};
use crate::cli::ExplainArgs;
use crate::error::{EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_OK};
use crate::input::{read_text, Expect, Input};
use crate::verdict::Hints;

/// The most text read from standard input.
const MAX_STDIN: u64 = 16 * 1024 * 1024;

/// Runs `explain`.
pub fn run(args: &ExplainArgs, color: bool) -> Outcome {
    let matcher = load_rules(&args.output.rules)?;
    let text = match &args.text {
        Some(t) => t.clone(),
        None => {
            // A paste may hold any bytes a log did: keep what is text, replace the rest.
            let expect = Expect {
                what: "a stoppedReason or log excerpt",
                max_bytes: MAX_STDIN,
                lossy: true,
                non_empty: false,
            };
            read_text(Input::Stdin, expect).map_err(|e| Failure::new(EXIT_BAD_INPUT, e.to_string()))?
        }
    };
    if text.trim().is_empty() {
        return Err(Failure::new(
            EXIT_BAD_INPUT,
            "explain: the text is empty; pass a stoppedReason or log excerpt as TEXT or on standard input",
        ));
    }
    let task_definition = match &args.task_def {
        Some(p) => {
            let expect = Expect {
                what: "the JSON output of `aws ecs describe-task-definition`",
                max_bytes: crate::source::bundle::MAX_FILE_BYTES,
                lossy: false,
                non_empty: true,
            };
            let text = read_text(Input::File(p), expect).map_err(|e| Failure::new(EXIT_BAD_INPUT, e.to_string()))?;
            Some(crate::source::bundle::parse_task_definition(
                &text,
                &p.display().to_string(),
            )?)
        }
        None => None,
    };
    let hints = Hints {
        launch_type: args.launch_type.map(|l| l.ecs_name().to_string()),
        started: match (args.started, args.never_started) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        task_definition,
    };
    let d = crate::verdict::explain_with(&text, &hints, &matcher, &engine_options(&args.output));
    let ropts = render_options(&args.output, color);
    with_stdout(|w| crate::render::diagnosis(&d, args.output.format, &ropts, w))?;
    Ok(if d.conclusive() { EXIT_OK } else { EXIT_INCONCLUSIVE })
}
