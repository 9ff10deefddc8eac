//! Subcommands: each turns parsed arguments into output and an exit code.

pub mod capture;
pub mod explain;
pub mod lambda;
pub mod policy;
pub mod rules;
pub mod scan;
pub mod why;

use std::io::Write;
use std::path::PathBuf;

use crate::cli::{AwsArgs, OutputArgs};
use crate::render::{RenderOptions, Styles};
use crate::rules::engine::Matcher;
use crate::sanitize::RedactOptions;
use crate::source::aws::AwsOptions;
use crate::source::cache::default_cache_dir;
use crate::verdict::Options;

/// An error with the exit code it maps to. `main` prints `error: {message}`.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// A failure with this code.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::error::SourceError> for Failure {
    fn from(e: crate::error::SourceError) -> Failure {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<crate::rules::RuleErrors> for Failure {
    fn from(e: crate::rules::RuleErrors) -> Failure {
        Failure {
            code: crate::error::EXIT_BAD_INPUT,
            message: format!("invalid rules:\n  {e}"),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure {
            code: crate::error::EXIT_BAD_INPUT,
            message: e.to_string(),
        }
    }
}

/// What a command returns.
pub type Outcome = Result<u8, Failure>;

/// The user's rule directory: `$XDG_CONFIG_HOME/ecsdoctor/rules` or `~/.config/ecsdoctor/rules`.
pub fn user_rules_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let dir = base.join("ecsdoctor").join("rules");
    dir.is_dir().then_some(dir)
}

/// Loads built-in rules, the user's rule directory, then `--rules` paths.
pub fn load_rules(extra: &[PathBuf]) -> Result<Matcher, Failure> {
    let mut paths: Vec<PathBuf> = user_rules_dir().into_iter().collect();
    paths.extend(extra.iter().cloned());
    Ok(Matcher::load(true, &paths)?)
}

/// Engine options from output flags.
pub fn engine_options(o: &OutputArgs) -> Options {
    Options {
        redact: RedactOptions {
            secrets: !o.no_redact,
            accounts: o.redact_accounts,
        },
    }
}

/// Render options from output flags and the color decision.
pub fn render_options(o: &OutputArgs, color: bool) -> RenderOptions {
    RenderOptions {
        styles: if color { Styles::colored() } else { Styles::default() },
        max_evidence: o.max_evidence,
    }
}

/// AWS options from flags.
pub fn aws_options(a: &AwsArgs) -> Result<AwsOptions, Failure> {
    if let Some(e) = &a.endpoint_url {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(Failure::new(
                crate::error::EXIT_BAD_INPUT,
                format!("--endpoint-url `{e}` is not an http:// or https:// URL"),
            ));
        }
    }
    if a.timeout == 0 {
        return Err(Failure::new(
            crate::error::EXIT_BAD_INPUT,
            "--timeout must be at least 1 second",
        ));
    }
    Ok(AwsOptions {
        profile: a.profile.clone().filter(|p| !p.is_empty()),
        region: a.region.clone(),
        endpoint_url: a.endpoint_url.clone(),
        cluster: a.cluster.clone(),
        log_lines: a.log_lines,
        cache_dir: if a.no_cache {
            None
        } else {
            a.cache_dir.clone().or_else(default_cache_dir)
        },
        timeout: std::time::Duration::from_secs(a.timeout),
        trace: std::env::var_os("ECSDOCTOR_API_TRACE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        ..AwsOptions::default()
    })
}

/// A multi-threaded runtime for the AWS calls.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(crate::error::EXIT_AWS, format!("cannot start the async runtime: {e}")))
}

/// Runs an AWS fetch to completion on `rt`, with a spinner on stderr while it runs. The runtime
/// lives on: what it started in the background (verification's reads beside the logs) keeps
/// running for the next step.
pub fn block_on_aws_in<T>(
    rt: &tokio::runtime::Runtime,
    message: &str,
    fetch: impl std::future::Future<Output = Result<T, crate::error::SourceError>>,
) -> Result<T, Failure> {
    let pb = spinner(message);
    let out = rt.block_on(fetch);
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(out?)
}

/// A spinner on stderr while fetching, only when stderr is a terminal.
pub fn spinner(message: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(message.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(pb)
}

/// Writes to stdout through a lock; a closed pipe is not an error (handled in `main`).
pub fn with_stdout(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    f(&mut lock).and_then(|_| lock.flush()).map_err(|e| Failure {
        code: if e.kind() == std::io::ErrorKind::BrokenPipe {
            0
        } else {
            2
        },
        message: if e.kind() == std::io::ErrorKind::BrokenPipe {
            String::new()
        } else {
            format!("cannot write output: {e}")
        },
    })
}
