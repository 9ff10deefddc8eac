//! The offline source: an evidence bundle, i.e. exactly what the AWS CLI prints.
//! `DIR/describe-tasks.json` (required), `DIR/describe-task-definition.json` (optional),
//! `DIR/logs/<container>.json` (`aws logs get-log-events` or `filter-log-events`, optional).
//! `--from FILE` or `--from -` reads a lone describe-tasks answer. `ecsdoctor capture` writes the
//! same files with [`write`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EvidenceSource, Limits};
use crate::arn::TaskRef;
use crate::error::SourceError;
use crate::evidence::{ContainerLogs, Evidence, LogLine, Task, TaskDefinition};
use crate::input::{self, Expect, Input};

/// The largest bundle file read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `aws ecs describe-tasks` output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasks {
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub failures: Vec<Failure>,
}

/// A `failures[]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `aws ecs describe-task-definition` output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinition {
    pub task_definition: TaskDefinition,
}

/// `aws logs get-log-events` / `filter-log-events` output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvents {
    #[serde(default)]
    pub events: Vec<LogLine>,
}

/// Where the bundle is.
#[derive(Debug, Clone)]
pub enum Bundle {
    /// A directory with the files above.
    Dir(PathBuf),
    /// One describe-tasks file.
    File(PathBuf),
    /// describe-tasks JSON on standard input.
    Stdin,
}

impl Bundle {
    /// `-` is stdin, a directory is a bundle, anything else one file.
    pub fn from_arg(arg: &Path) -> Bundle {
        if arg.as_os_str() == "-" {
            Bundle::Stdin
        } else if arg.is_dir() {
            Bundle::Dir(arg.to_path_buf())
        } else {
            Bundle::File(arg.to_path_buf())
        }
    }
}

/// A value from the file, fit to quote in a one-line error: no escapes or line breaks, short.
fn quote(s: &str) -> String {
    crate::sanitize::error_quote(s, 100)
}

fn bad(msg: String) -> SourceError {
    SourceError::BadInput(msg)
}

/// Reads a bundle file (or standard input) that must be JSON text of bounded size.
fn read_text(input: Input<'_>, what: &str) -> Result<String, SourceError> {
    let expect = Expect {
        what,
        max_bytes: MAX_FILE_BYTES,
        lossy: false,
        non_empty: true,
    };
    input::read_text(input, expect).map_err(|e| bad(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, name: &str, what: &str) -> Result<T, SourceError> {
    serde_json::from_str(text).map_err(|e| {
        let kind = if e.is_syntax() || e.is_eof() {
            "is not valid JSON"
        } else {
            "has the wrong shape"
        };
        bad(format!("{name}: {kind} ({e}); expected {what}"))
    })
}

const DESCRIBE_TASKS: &str = "the JSON output of `aws ecs describe-tasks` (an object with `tasks`)";
const DESCRIBE_TD: &str = "the JSON output of `aws ecs describe-task-definition` (an object with `taskDefinition`)";
const LOG_EVENTS: &str = "the JSON output of `aws logs get-log-events` (an object with `events`)";

/// Checks the top level is an object with the key that identifies the answer, so that a file of
/// the wrong command is named as such rather than read as empty.
fn require_key(text: &str, key: &str, name: &str, what: &str) -> Result<(), SourceError> {
    let v: serde_json::Value = parse(text, name, what)?;
    match v.as_object() {
        Some(o) if o.contains_key(key) => Ok(()),
        Some(o) => {
            let keys: Vec<String> = o.keys().map(|k| quote(k)).take(5).collect();
            Err(bad(format!(
                "{name}: has no `{key}` (found {}); expected {what}",
                if keys.is_empty() {
                    "an empty object".into()
                } else {
                    format!("keys {}", keys.join(", "))
                }
            )))
        }
        None => Err(bad(format!("{name}: is a JSON {}, expected {what}", json_kind(&v)))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Parses describe-tasks JSON and picks the task.
pub fn select_task(text: &str, name: &str, want: Option<&TaskRef>) -> Result<Task, SourceError> {
    require_key(text, "tasks", name, DESCRIBE_TASKS)?;
    let dt: DescribeTasks = parse(text, name, DESCRIBE_TASKS)?;
    let matches = |arn: Option<&str>, w: &TaskRef| -> bool {
        match (arn, &w.arn) {
            (Some(a), Some(wa)) => a == wa || a.rsplit('/').next() == Some(w.id.as_str()),
            (Some(a), None) => a.rsplit('/').next() == Some(w.id.as_str()),
            (None, _) => false,
        }
    };
    if let Some(w) = want {
        if let Some(t) = dt.tasks.iter().find(|t| matches(t.task_arn.as_deref(), w)) {
            return Ok(t.clone());
        }
        if let Some(f) = dt.failures.iter().find(|f| matches(f.arn.as_deref(), w)) {
            return Err(bad(format!(
                "{name}: task {w} is in failures[] with reason {} — ECS no longer knows it (stopped tasks are kept about an hour); expected a task in tasks[]",
                quote(f.reason.as_deref().unwrap_or("unknown"))
            )));
        }
        return Err(bad(format!(
            "{name}: has no task {w} (it holds {} task(s)); expected the task to be in tasks[]",
            dt.tasks.len()
        )));
    }
    match dt.tasks.len() {
        1 => Ok(dt.tasks[0].clone()),
        0 => {
            let why = dt
                .failures
                .first()
                .map(|f| {
                    format!(
                        " (failures[]: {} {})",
                        quote(f.arn.as_deref().unwrap_or("?")),
                        quote(f.reason.as_deref().unwrap_or("?"))
                    )
                })
                .unwrap_or_default();
            Err(bad(format!(
                "{name}: tasks[] is empty{why}; expected one task — ECS keeps stopped tasks for about an hour"
            )))
        }
        n => {
            let ids: Vec<&str> = dt.tasks.iter().filter_map(|t| t.task_arn.as_deref()).take(5).collect();
            Err(bad(format!(
                "{name}: holds {n} tasks; name one as the task argument (e.g. {})",
                quote(ids.first().copied().unwrap_or("its ARN"))
            )))
        }
    }
}

/// Parses describe-task-definition JSON (also accepts a bare task definition object).
pub fn parse_task_definition(text: &str, name: &str) -> Result<TaskDefinition, SourceError> {
    let v: serde_json::Value = parse(text, name, DESCRIBE_TD)?;
    let Some(o) = v.as_object() else {
        return Err(bad(format!(
            "{name}: is a JSON {}, expected {DESCRIBE_TD}",
            json_kind(&v)
        )));
    };
    let inner = if let Some(td) = o.get("taskDefinition") {
        td.clone()
    } else if o.contains_key("containerDefinitions") {
        v.clone()
    } else {
        return Err(bad(format!("{name}: has no `taskDefinition`; expected {DESCRIBE_TD}")));
    };
    serde_json::from_value(inner).map_err(|e| bad(format!("{name}: has the wrong shape ({e}); expected {DESCRIBE_TD}")))
}

/// Parses log events, applying the caps.
pub fn parse_logs(
    text: &str,
    name: &str,
    container: &str,
    limits: &Limits,
    notes: &mut Vec<String>,
) -> Result<ContainerLogs, SourceError> {
    require_key(text, "events", name, LOG_EVENTS)?;
    let le: LogEvents = parse(text, name, LOG_EVENTS)?;
    let mut lines = le.events;
    lines.sort_by_key(|l| l.timestamp.unwrap_or(i64::MIN));
    Ok(limits.apply(container, lines, notes))
}

/// The bundle as a source.
#[derive(Debug, Clone)]
pub struct BundleSource {
    pub bundle: Bundle,
    pub limits: Limits,
}

impl EvidenceSource for BundleSource {
    async fn evidence(&self, task: Option<&TaskRef>) -> Result<Evidence, SourceError> {
        load(&self.bundle, task, &self.limits)
    }
}

/// Reads a bundle.
pub fn load(bundle: &Bundle, want: Option<&TaskRef>, limits: &Limits) -> Result<Evidence, SourceError> {
    match bundle {
        Bundle::Stdin => {
            let text = read_text(Input::Stdin, DESCRIBE_TASKS)?;
            let task = select_task(&text, "standard input", want)?;
            Ok(Evidence {
                task,
                ..Evidence::default()
            })
        }
        Bundle::File(p) => {
            let text = read_text(Input::File(p), DESCRIBE_TASKS)?;
            let task = select_task(&text, &p.display().to_string(), want)?;
            Ok(Evidence {
                task,
                ..Evidence::default()
            })
        }
        Bundle::Dir(d) => {
            let dt_path = d.join("describe-tasks.json");
            let text = read_text(Input::File(&dt_path), DESCRIBE_TASKS)?;
            let task = select_task(&text, &dt_path.display().to_string(), want)?;
            let mut ev = Evidence {
                task,
                ..Evidence::default()
            };
            let td_path = d.join("describe-task-definition.json");
            if td_path.exists() {
                let text = read_text(Input::File(&td_path), DESCRIBE_TD)?;
                let td = parse_task_definition(&text, &td_path.display().to_string())?;
                if let (Some(want), Some(got)) = (
                    ev.task.task_definition_arn.as_deref(),
                    td.task_definition_arn.as_deref(),
                ) {
                    if want != got {
                        ev.notes.push(format!(
                            "{} is {got}, but the task ran {want}: roles may differ",
                            td_path.display()
                        ));
                    }
                }
                ev.task_definition = Some(td);
            } else {
                ev.notes.push("no describe-task-definition.json in the bundle: role names unknown, the verdict relies on the phase".into());
            }
            let logs_dir = d.join("logs");
            if logs_dir.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&logs_dir)
                    .map_err(|e| bad(format!("{}: cannot read: {}", logs_dir.display(), input::io_reason(&e))))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                files.sort();
                for f in files {
                    let container = f
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let text = read_text(Input::File(&f), LOG_EVENTS)?;
                    let logs = parse_logs(&text, &f.display().to_string(), &container, limits, &mut ev.notes)?;
                    ev.logs.push(logs);
                }
            }
            Ok(ev)
        }
    }
}

/// Writes evidence as a bundle (`ecsdoctor capture`), in the AWS CLI v2 shape.
pub fn write(ev: &Evidence, dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    std::fs::create_dir_all(dir.join("logs"))?;
    let mut written = Vec::new();
    let mut put = |path: PathBuf, value: serde_json::Value| -> Result<(), std::io::Error> {
        let text = serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        written.push(path);
        Ok(())
    };
    put(
        dir.join("describe-tasks.json"),
        serde_json::json!({ "tasks": [ev.task], "failures": [] }),
    )?;
    if let Some(td) = &ev.task_definition {
        put(
            dir.join("describe-task-definition.json"),
            serde_json::json!({ "taskDefinition": td }),
        )?;
    }
    for l in &ev.logs {
        // A container name is a file name here: keep it to the characters ECS allows.
        let safe: String = l
            .container
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if safe.is_empty() {
            continue;
        }
        put(
            dir.join("logs").join(format!("{safe}.json")),
            serde_json::json!({ "events": l.lines }),
        )?;
    }
    if !ev.notes.is_empty() {
        put(dir.join("notes.json"), serde_json::json!({ "notes": ev.notes }))?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_id_and_reports_missing_tasks() {
        let text = r#"{"tasks":[{"taskArn":"arn:aws:ecs:us-east-1:123456789012:task/c/aaaa0000aaaa0000aaaa0000aaaa0000","lastStatus":"STOPPED"}],
            "failures":[{"arn":"arn:aws:ecs:us-east-1:123456789012:task/c/bbbb0000bbbb0000bbbb0000bbbb0000","reason":"MISSING"}]}"#;
        let a = crate::arn::parse_task("aaaa0000aaaa0000aaaa0000aaaa0000").expect("id");
        assert!(select_task(text, "f.json", Some(&a)).is_ok());
        let b = crate::arn::parse_task("bbbb0000bbbb0000bbbb0000bbbb0000").expect("id");
        let e = select_task(text, "f.json", Some(&b)).expect_err("missing").to_string();
        assert!(e.contains("f.json") && e.contains("MISSING"), "{e}");
    }

    #[test]
    fn wrong_shapes_name_the_file_and_what_was_expected() {
        for (text, says) in [
            ("[]", "is a JSON array"),
            ("{\"taskDefinition\":{}}", "has no `tasks`"),
            ("{\"tasks\": 5}", "wrong shape"),
            ("{\"tasks\": [", "not valid JSON"),
            ("{\"tasks\":[{\"createdAt\":\"yesterday\"}]}", "ISO 8601"),
        ] {
            let e = select_task(text, "x/describe-tasks.json", None)
                .expect_err(text)
                .to_string();
            assert!(
                e.starts_with("x/describe-tasks.json: ") && e.contains(says),
                "{text}: {e}"
            );
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }
}
