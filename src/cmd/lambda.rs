//! `ecsdoctor lambda`: the Lambda runner (`crate::lambda`) on the command's async runtime. A
//! configuration error was already reported to the Runtime API; here it becomes exit code 2.

use super::{runtime, Failure, Outcome};
use crate::error::{EXIT_AWS, EXIT_BAD_INPUT, EXIT_OK};
use crate::lambda::RunError;

/// Runs the runner until the sandbox ends.
pub fn run() -> Outcome {
    let rt = runtime()?;
    match rt.block_on(crate::lambda::run()) {
        Ok(()) => Ok(EXIT_OK),
        Err(e @ (RunError::NotInLambda(_) | RunError::Init(_))) => Err(Failure::new(EXIT_BAD_INPUT, e.to_string())),
        Err(e @ RunError::Loop(_)) => Err(Failure::new(EXIT_AWS, e.to_string())),
    }
}
