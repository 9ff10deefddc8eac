//! EventBridge "ECS Task State Change" events: the `detail` member is the task in the shape
//! DescribeTasks returns, so a rule that posts every STOPPED task to ecsdoctor no longer races
//! ECS's one-hour retention of stopped tasks.

use std::path::Path;

use crate::error::SourceError;
use crate::evidence::Task;
use crate::input::{read_text, Expect, Input};

/// Reads an event from a file (or `-` for stdin) and returns its task.
pub fn read_event(path: &Path) -> Result<Task, SourceError> {
    let input = Input::from_arg(path);
    let expect = Expect {
        what: "an EventBridge event (JSON)",
        max_bytes: super::bundle::MAX_FILE_BYTES,
        lossy: false,
        non_empty: true,
    };
    let text = read_text(input, expect).map_err(|e| SourceError::BadInput(e.to_string()))?;
    parse_event(&text, &input.name())
}

/// Parses an event's text.
pub fn parse_event(text: &str, name: &str) -> Result<Task, SourceError> {
    let expected = "expected an EventBridge \"ECS Task State Change\" event (JSON with `detail-type` and `detail`)";
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| SourceError::BadInput(format!("{name}: is not valid JSON ({e}); {expected}")))?;
    let dt = v.get("detail-type").and_then(|d| d.as_str());
    match dt {
        Some("ECS Task State Change") => {}
        Some(other) => {
            return Err(SourceError::BadInput(format!(
                "{name}: is a \"{other}\" event; {expected}"
            )));
        }
        None => {
            return Err(SourceError::BadInput(format!(
                "{name}: has no `detail-type`; {expected}"
            )))
        }
    }
    let detail = v
        .get("detail")
        .cloned()
        .ok_or_else(|| SourceError::BadInput(format!("{name}: has no `detail`; {expected}")))?;
    serde_json::from_value(detail).map_err(|e| {
        SourceError::BadInput(format!(
            "{name}: the event's detail has the wrong shape ({e}); {expected}"
        ))
    })
}
