//! The on-disk cache of task definition revisions (immutable, so a cached one never goes stale).
//! No SDK code: it stores the evidence model as JSON. Failing to write it is not an error.

use std::path::{Path, PathBuf};

use crate::evidence::TaskDefinition;

/// The default cache directory: `$XDG_CACHE_HOME/ecsdoctor`, `~/.cache/ecsdoctor`
/// (`~/Library/Caches/ecsdoctor` on macOS, `%LOCALAPPDATA%\ecsdoctor` on Windows).
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("ecsdoctor"));
    }
    if cfg!(windows) {
        return std::env::var_os("LOCALAPPDATA").map(|d| PathBuf::from(d).join("ecsdoctor"));
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    if cfg!(target_os = "macos") {
        Some(home.join("Library/Caches/ecsdoctor"))
    } else {
        Some(home.join(".cache/ecsdoctor"))
    }
}

/// Where a revision is cached: `scope` keeps an emulator's ARNs apart from AWS's.
fn cache_path(dir: &Path, scope: &str, td_arn: &str) -> Option<PathBuf> {
    let name: String = format!("{scope}-{td_arn}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(dir.join("task-definitions").join(format!("{name}.json")))
}

/// The cached revision, if any.
pub fn read(dir: Option<&Path>, scope: &str, td_arn: &str) -> Option<TaskDefinition> {
    let p = cache_path(dir?, scope, td_arn)?;
    let text = std::fs::read_to_string(p).ok()?;
    let td: TaskDefinition = serde_json::from_str(&text).ok()?;
    (td.task_definition_arn.as_deref() == Some(td_arn)).then_some(td)
}

/// Stores a revision; a cache is an optimisation, so failing to write is not an error.
pub fn write(dir: Option<&Path>, scope: &str, td_arn: &str, td: &TaskDefinition) {
    if let Some(p) = dir.and_then(|d| cache_path(d, scope, td_arn)) {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(text) = serde_json::to_string(td) {
            let tmp = p.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &p);
            }
        }
    }
}
