//! Where evidence comes from: an offline bundle of AWS CLI output ([`bundle`]) or AWS itself
//! ([`aws`]). Both produce the same [`Evidence`]; no AWS SDK type crosses this boundary.

pub mod aws;
pub mod bundle;
pub mod cache;
pub mod event;

use crate::arn::TaskRef;
use crate::error::SourceError;
use crate::evidence::{ContainerLogs, Evidence, LogLine};

/// A source of evidence about one stopped task.
#[allow(async_fn_in_trait)]
pub trait EvidenceSource {
    /// Gathers the task, its definition and its logs. `task` may be `None` for a bundle holding
    /// exactly one task.
    async fn evidence(&self, task: Option<&TaskRef>) -> Result<Evidence, SourceError>;
}

/// Caps on what is read, so a huge or hostile log cannot exhaust memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most log lines kept per container (the newest are kept).
    pub max_lines: usize,
    /// Longest log line kept, in bytes (longer lines are truncated, and a note says so).
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_lines: 200_000,
            max_line_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// Applies the caps to one container's lines (oldest first), noting what was cut.
    pub fn apply(&self, container: &str, mut lines: Vec<LogLine>, notes: &mut Vec<String>) -> ContainerLogs {
        if lines.len() > self.max_lines {
            self.note_kept(container, lines.len(), notes);
            lines.drain(..lines.len() - self.max_lines);
        }
        let cut = lines
            .iter_mut()
            .map(|l| self.cut_line(&mut l.message))
            .filter(|&c| c)
            .count();
        self.note_cut(container, cut, notes);
        ContainerLogs {
            container: container.to_string(),
            lines,
        }
    }

    /// Cuts one line to the byte cap; true when it was cut.
    pub fn cut_line(&self, message: &mut String) -> bool {
        if message.len() <= self.max_line_bytes {
            return false;
        }
        let (t, _) = crate::sanitize::truncate(message, self.max_line_bytes);
        // Drop the token the cut went through: half a secret would escape redaction.
        let keep = t
            .rfind(char::is_whitespace)
            .filter(|&i| t.len() - i < 512)
            .unwrap_or(t.len());
        *message = format!("{} [truncated]", &t[..keep]);
        true
    }

    /// The note saying only the newest `max_lines` of `seen` lines of `container` were kept.
    pub fn note_kept(&self, container: &str, seen: usize, notes: &mut Vec<String>) {
        notes.push(format!(
            "logs of `{container}`: kept the newest {} of {seen} lines",
            self.max_lines
        ));
    }

    /// The note saying `cut` kept lines of `container` were cut.
    pub fn note_cut(&self, container: &str, cut: usize, notes: &mut Vec<String>) {
        if cut > 0 {
            notes.push(format!(
                "logs of `{container}`: {cut} line(s) longer than {} bytes were truncated",
                self.max_line_bytes
            ));
        }
    }
}
