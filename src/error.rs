//! Errors callers branch on, each mapped to a documented exit code: bad input is 2, a failure to
//! read AWS is 3. Messages are one line and say what to do.

/// Exit code: a verdict was reached (or a command succeeded).
pub const EXIT_OK: u8 = 0;
/// Exit code: inconclusive (nothing matched), or `rules test` found a failing example.
pub const EXIT_INCONCLUSIVE: u8 = 1;
/// Exit code: usage error, bad input file, bad rule file.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: AWS could not be read (credentials, permissions, network, task not found).
pub const EXIT_AWS: u8 = 3;

/// Why evidence could not be gathered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// A file or argument is not what was expected (exit 2).
    #[error("{0}")]
    BadInput(String),
    /// ECS does not know the task (exit 3 live).
    #[error("task {task} was not found in cluster {cluster}: ECS keeps stopped tasks for about an hour after they stop; for next time, run `ecsdoctor capture` right away or diagnose from an EventBridge task-state event (`ecsdoctor why --event`)")]
    TaskNotFound { task: String, cluster: String },
    /// The cluster does not exist.
    #[error("cluster {cluster} was not found in {region}: check --cluster, --region and --profile")]
    ClusterNotFound { cluster: String, region: String },
    /// ecsdoctor's own call was denied.
    #[error("AWS denied ecsdoctor's own call {action}: {message} (ecsdoctor needs {action}; see the README's IAM policy for ecsdoctor)")]
    AccessDenied { action: String, message: String },
    /// No credentials, or expired ones.
    #[error("{0}")]
    Credentials(String),
    /// The endpoint could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// Throttled after retries.
    #[error("AWS throttled {action} even after retries: {message}; wait a little and run again")]
    Throttled { action: String, message: String },
    /// The overall `--timeout` ran out.
    #[error("gave up after {0} s (--timeout): AWS did not answer in time")]
    Timeout(u64),
    /// Anything else AWS said.
    #[error("{0}")]
    Other(String),
}

impl SourceError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            SourceError::BadInput(_) => EXIT_BAD_INPUT,
            _ => EXIT_AWS,
        }
    }
}
