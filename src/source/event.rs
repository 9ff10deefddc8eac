//! EventBridge "ECS Task State Change" events: the `detail` member is the task in the shape
//! DescribeTasks returns, so a rule that posts every STOPPED task to ecsdoctor no longer races
//! ECS's one-hour retention of stopped tasks.

use std::io::Read;
use std::path::Path;

use crate::error::SourceError;
use crate::evidence::Task;

/// Reads an event from a file (or `-` for stdin) and returns its task.
pub fn read_event(path: &Path) -> Result<Task, SourceError> {
    let name = if path.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let mut bytes = Vec::new();
    let limit = super::bundle::MAX_FILE_BYTES;
    let res = if path.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
    };
    res.map_err(|e| SourceError::BadInput(format!("{name}: cannot read the event: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        SourceError::BadInput(format!(
            "{name}: is not UTF-8 text, expected an EventBridge event (JSON)"
        ))
    })?;
    parse_event(&text, &name)
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
