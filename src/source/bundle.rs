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
use crate::input::{self, Chunked, Expect, Input};

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

/// Parses log events from text, applying the caps (see [`read_logs`]).
pub fn parse_logs(
    text: &str,
    name: &str,
    container: &str,
    limits: &Limits,
    notes: &mut Vec<String>,
) -> Result<ContainerLogs, SourceError> {
    read_logs(text_source(text, name), container, limits, notes)
}

/// Text already in memory, read as a log file is (its size was checked when it was read).
fn text_source<'t>(text: &'t str, name: &str) -> Chunked<'t> {
    let expect = Expect {
        max_bytes: u64::MAX,
        non_empty: false,
        ..log_expect()
    };
    Chunked::new(text.as_bytes(), name.to_string(), expect)
}

/// How a log file is read: bounded like every bundle file, never empty.
fn log_expect() -> Expect<'static> {
    Expect {
        what: LOG_EVENTS,
        max_bytes: MAX_FILE_BYTES,
        lossy: false,
        non_empty: true,
    }
}

/// Reads `aws logs get-log-events` / `filter-log-events` JSON event by event as it is read:
/// only the lines the caps keep are ever held (the newest `max_lines`, each cut at
/// `max_line_bytes`), never the file or a JSON tree of it. Errors are those of parsing the whole
/// file at once: one line naming the file, with the line and column of the problem.
pub fn read_logs(
    mut src: Chunked<'_>,
    container: &str,
    limits: &Limits,
    notes: &mut Vec<String>,
) -> Result<ContainerLogs, SourceError> {
    let mut keep = Keeper {
        limits,
        lines: Vec::new(),
        seen: 0,
    };
    let mut json = JsonStream { src: &mut src };
    json.log_events(&mut keep)?;
    Ok(keep.finish(container, notes))
}

/// The lines kept so far: the newest `max_lines` by timestamp (file order breaks ties, as the
/// stable sort of the whole log would), each already cut, with whether it was.
struct Keeper<'l> {
    limits: &'l Limits,
    lines: Vec<(LogLine, bool)>,
    seen: usize,
}

impl Keeper<'_> {
    fn push(&mut self, mut line: LogLine) {
        self.seen += 1;
        let cut = self.limits.cut_line(&mut line.message);
        let max = self.limits.max_lines;
        if max == 0 {
            return;
        }
        self.lines.push((line, cut));
        // Twice the cap: drop the oldest, so memory stays bounded and sorting amortised.
        if self.lines.len() >= 2 * max {
            self.lines.sort_by_key(|(l, _)| l.timestamp.unwrap_or(i64::MIN));
            let drop = self.lines.len() - max;
            self.lines.drain(..drop);
        }
    }

    fn finish(mut self, container: &str, notes: &mut Vec<String>) -> ContainerLogs {
        let max = self.limits.max_lines;
        self.lines.sort_by_key(|(l, _)| l.timestamp.unwrap_or(i64::MIN));
        if self.seen > max {
            self.limits.note_kept(container, self.seen, notes);
            let drop = self.lines.len().saturating_sub(max);
            self.lines.drain(..drop);
        }
        let mut cut = 0;
        // In place: the pairs' buffer becomes the lines' buffer, then gives back what it does
        // not need (the growth's slack: a quarter of it on average).
        let mut lines: Vec<LogLine> = self
            .lines
            .into_iter()
            .map(|(l, c)| {
                cut += usize::from(c);
                l
            })
            .collect();
        lines.shrink_to_fit();
        self.limits.note_cut(container, cut, notes);
        ContainerLogs {
            container: container.to_string(),
            lines,
        }
    }
}

/// JSON read from a [`Chunked`] input: the structure by hand, each value (a log event, a key, a
/// field to skip) by serde_json on the bytes at hand, reading more when a value runs past them.
struct JsonStream<'s, 'a> {
    src: &'s mut Chunked<'a>,
}

impl JsonStream<'_, '_> {
    /// The next byte that is not white space, not consumed; `None` at the end of the input.
    fn peek(&mut self) -> Result<Option<u8>, SourceError> {
        loop {
            let data = self.src.data();
            match data.iter().position(|b| !matches!(b, b' ' | b'\n' | b'\t' | b'\r')) {
                Some(i) => {
                    let b = data[i];
                    self.src.consume(i);
                    return Ok(Some(b));
                }
                None => {
                    let n = data.len();
                    self.src.consume(n);
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn fill(&mut self) -> Result<bool, SourceError> {
        self.src.fill().map_err(|e| bad(e.to_string()))
    }

    /// Parses one value at the current position.
    fn value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, SourceError> {
        self.typed::<T>()?
    }

    /// Parses one value of type `T` at the current position. A value of the wrong shape is
    /// skipped (its syntax still checked) and its error is the inner one: parsed as a whole, a
    /// file that is not JSON at all is named as such before a value of the wrong type.
    fn typed<T: serde::de::DeserializeOwned>(&mut self) -> Result<Result<T, SourceError>, SourceError> {
        loop {
            let data = self.src.data();
            let mut values = serde_json::Deserializer::from_slice(data).into_iter::<T>();
            let outcome = values.next();
            let used = values.byte_offset();
            // A value that ends where the data ends may go on in the next chunk (a number).
            let complete = used < data.len() || self.src.at_eof();
            match outcome {
                Some(Ok(v)) if complete => {
                    self.src.consume(used);
                    return Ok(Ok(v));
                }
                Some(Err(e)) if !e.is_eof() || self.src.at_eof() => {
                    let err = self.json_error(&e);
                    if e.is_syntax() || e.is_eof() {
                        return Err(err);
                    }
                    self.value::<Skip>()?;
                    return Ok(Err(err));
                }
                None if self.src.at_eof() => return Err(self.syntax("EOF while parsing a value", 0)),
                _ => {
                    self.fill()?;
                }
            }
        }
    }

    /// A serde_json error, with its line and column in the whole input.
    fn json_error(&self, e: &serde_json::Error) -> SourceError {
        let kind = if e.is_syntax() || e.is_eof() {
            "is not valid JSON"
        } else {
            "has the wrong shape"
        };
        let msg = e.to_string();
        let detail = match msg.rsplit_once(" at line ") {
            Some((what, _)) if e.line() > 0 => {
                let (line, column) = self.src.position(e.line(), e.column());
                format!("{what} at line {line} column {column}")
            }
            _ => msg,
        };
        bad(format!("{}: {kind} ({detail}); expected {LOG_EVENTS}", self.src.name()))
    }

    /// A syntax error at the current position (`after` bytes into the data), worded as serde_json
    /// words its own.
    fn syntax(&self, what: &str, after: usize) -> SourceError {
        self.error_at("is not valid JSON", what, after)
    }

    fn error_at(&self, kind: &str, what: &str, after: usize) -> SourceError {
        let (line, column) = self.src.position(1, after);
        bad(format!(
            "{}: {kind} ({what} at line {line} column {column}); expected {LOG_EVENTS}",
            self.src.name()
        ))
    }

    fn bump(&mut self) {
        self.src.consume(1);
    }

    /// The whole document: an object with `events`, every other key skipped.
    fn log_events(&mut self, keep: &mut Keeper<'_>) -> Result<(), SourceError> {
        let name = self.src.name().to_string();
        match self.peek()? {
            Some(b'{') => self.bump(),
            first => {
                // Not an object: make sure it is JSON at all, then say what it is.
                self.value::<Skip>()?;
                self.end()?;
                let kind = match first {
                    Some(b'[') => "array",
                    Some(b'"') => "string",
                    Some(b't' | b'f') => "boolean",
                    Some(b'n') => "null",
                    _ => "number",
                };
                return Err(bad(format!("{name}: is a JSON {kind}, expected {LOG_EVENTS}")));
            }
        }
        let mut keys: Vec<String> = Vec::new();
        let mut events = false;
        // The first value of the wrong shape, said once the whole file is known to be JSON.
        let mut shape: Option<SourceError> = None;
        if self.peek()? == Some(b'}') {
            self.bump();
        } else {
            loop {
                match self.peek()? {
                    Some(b'"') => {}
                    Some(_) => return Err(self.syntax("key must be a string", 1)),
                    None => return Err(self.syntax("EOF while parsing an object", 0)),
                }
                let key: String = self.value()?;
                let duplicate = key == "events" && events;
                if duplicate && shape.is_none() {
                    shape = Some(self.error_at("has the wrong shape", "duplicate field `events`", 0));
                }
                match self.peek()? {
                    Some(b':') => self.bump(),
                    Some(_) => return Err(self.syntax("expected `:`", 1)),
                    None => return Err(self.syntax("EOF while parsing an object", 0)),
                }
                if key == "events" && shape.is_none() {
                    events = true;
                    if let Err(e) = self.events(keep)? {
                        shape = Some(e);
                    }
                } else {
                    self.value::<Skip>()?;
                }
                if !keys.contains(&key) {
                    keys.push(key);
                }
                match self.peek()? {
                    Some(b',') => {
                        self.bump();
                        if self.peek()? == Some(b'}') {
                            return Err(self.syntax("trailing comma", 1));
                        }
                    }
                    Some(b'}') => {
                        self.bump();
                        break;
                    }
                    None => return Err(self.syntax("EOF while parsing an object", 0)),
                    Some(_) => return Err(self.syntax("expected `,` or `}`", 1)),
                }
            }
        }
        self.end()?;
        if let Some(e) = shape {
            return Err(e);
        }
        if !events {
            let keys: Vec<String> = keys.iter().map(|k| quote(k)).take(5).collect();
            return Err(bad(format!(
                "{name}: has no `events` (found {}); expected {LOG_EVENTS}",
                if keys.is_empty() {
                    "an empty object".into()
                } else {
                    format!("keys {}", keys.join(", "))
                }
            )));
        }
        Ok(())
    }

    /// Nothing but white space after the document.
    fn end(&mut self) -> Result<(), SourceError> {
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters", 1)),
        }
    }

    /// `events`: an array read one event at a time. A value of the wrong shape is the inner
    /// error, the rest of the array still checked.
    fn events(&mut self, keep: &mut Keeper<'_>) -> Result<Result<(), SourceError>, SourceError> {
        if self.peek()? != Some(b'[') {
            // Not an array: serde_json says what it is instead (`null`, a string ...).
            return Ok(self
                .typed::<Vec<LogLine>>()?
                .map(|lines| lines.into_iter().for_each(|l| keep.push(l))));
        }
        self.bump();
        match self.peek()? {
            Some(b']') => {
                self.bump();
                return Ok(Ok(()));
            }
            None => return Err(self.syntax("EOF while parsing a list", 0)),
            Some(_) => {}
        }
        let mut shape = Ok(());
        loop {
            if shape.is_ok() {
                match self.typed::<LogLine>()? {
                    Ok(line) => keep.push(line),
                    Err(e) => shape = Err(e),
                }
            } else {
                self.value::<Skip>()?;
            }
            match self.peek()? {
                Some(b',') => {
                    self.bump();
                    if self.peek()? == Some(b']') {
                        return Err(self.syntax("trailing comma", 1));
                    }
                }
                Some(b']') => {
                    self.bump();
                    return Ok(shape);
                }
                None => return Err(self.syntax("EOF while parsing a list", 0)),
                Some(_) => return Err(self.syntax("expected `,` or `]`", 1)),
            }
        }
    }
}

/// A JSON value read and dropped. Unlike serde's `IgnoredAny` (which serde_json skips with no
/// depth limit) it goes through `deserialize_any`, so nesting past serde_json's recursion limit
/// fails as it did when the whole file was parsed into a tree.
struct Skip;

impl<'de> serde::Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> serde::de::Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
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
                    let src = Chunked::open(Input::File(&f), log_expect()).map_err(|e| bad(e.to_string()))?;
                    ev.logs.push(read_logs(src, &container, limits, &mut ev.notes)?);
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

    /// `aws logs get-log-events` / `filter-log-events` output, parsed whole (the reader streams it).
    #[derive(Debug, Deserialize)]
    struct LogEvents {
        #[serde(default)]
        events: Vec<LogLine>,
    }

    /// The log parser before it streamed: the whole file as one JSON value, then the typed
    /// parse, the sort and the caps. The streaming parser must give exactly its answers.
    fn whole_file(text: &str, limits: &Limits) -> Result<(ContainerLogs, Vec<String>), String> {
        let name = "x/logs/app.json";
        require_key(text, "events", name, LOG_EVENTS).map_err(|e| e.to_string())?;
        let le: LogEvents = parse(text, name, LOG_EVENTS).map_err(|e| e.to_string())?;
        let mut lines = le.events;
        lines.sort_by_key(|l| l.timestamp.unwrap_or(i64::MIN));
        let mut notes = Vec::new();
        let logs = limits.apply("app", lines, &mut notes);
        Ok((logs, notes))
    }

    fn streamed(text: &str, limits: &Limits, chunk: usize) -> Result<(ContainerLogs, Vec<String>), String> {
        let mut notes = Vec::new();
        let src = text_source(text, "x/logs/app.json").with_chunk(chunk);
        read_logs(src, "app", limits, &mut notes)
            .map(|logs| (logs, notes))
            .map_err(|e| e.to_string())
    }

    /// What `Chunked` reads at a time (256 KiB).
    const CHUNK_BYTES: usize = 256 * 1024;

    const CHUNKS: [usize; 8] = [1, 2, 3, 5, 8, 13, 64, 1 << 20];

    #[test]
    fn a_streamed_log_is_read_as_the_whole_file_was() {
        let limits = Limits {
            max_lines: 3,
            max_line_bytes: 12,
        };
        let cases = [
            r#"{"events": []}"#.to_string(),
            r#"{"events":[{"timestamp":3,"message":"c"},{"timestamp":1,"message":"a"},{"timestamp":2,"message":"b"}]}"#.into(),
            // More than the cap, out of order, ties and missing timestamps: the newest three are
            // kept, oldest first, ties in file order.
            r#"{"events":[{"timestamp":5,"message":"e1"},{"message":"none"},{"timestamp":5,"message":"e2"},
              {"timestamp":9,"message":"z"},{"timestamp":1,"message":"a"},{"timestamp":5,"message":"e3"},
              {"timestamp":-7,"message":"neg"},{"timestamp":9,"message":"z2"}]}"#.into(),
            // Long lines are cut (and counted only among the lines kept).
            r#"{"events":[{"timestamp":1,"message":"a long line that is cut here"},{"timestamp":2,"message":"short"},
              {"timestamp":3,"message":"another rather long line"},{"timestamp":4,"message":"x"},{"timestamp":5,"message":"y"}]}"#.into(),
            // Other keys before and after, nested values, escapes, non-ASCII, CRLF, numbers at the
            // end of a value.
            "{\r\n  \"nextBackwardToken\": \"b/1\", \"searchedLogStreams\": [{\"a\": [1, {\"b\": null}], \"c\": true}],\r\n  \"events\": [ {\"ingestionTime\": 17, \"message\": \"q\\\"uo\\u00e9te \u{17f}\u{212a} \\n\", \"timestamp\": 12} ] , \"n\": -1.5e3 }\n".into(),
            r#"{"events": [{"timestamp": 1, "message": "m", "eventId": "1", "logStreamName": "s"}], "nextForwardToken": 42}"#.into(),
        ];
        for text in &cases {
            let want = whole_file(text, &limits).expect(text);
            for chunk in CHUNKS {
                assert_eq!(
                    streamed(text, &limits, chunk).as_ref(),
                    Ok(&want),
                    "chunk {chunk}: {text}"
                );
            }
        }
    }

    #[test]
    fn a_malformed_log_fails_as_the_whole_file_did() {
        let cases = [
            "[]",
            "[1, 2",
            "\"events\"",
            "42",
            "null",
            "true",
            "{",
            "{\"events\": [",
            "{\"events\": [{\"message\": 5}]}",
            "{\"events\": [{\"timestamp\": 1.5}]}",
            "{\"events\": [{\"timestamp\": 99999999999999999999}]}",
            "{\"events\": \"nope\"}",
            "{\"events\": null}",
            "{\"events\": {\"message\": \"m\"}}",
            "{\"other\": 1}",
            "{\"a\": 1, \"b\": [], \"c\": {}, \"d\": 2, \"e\": 3, \"f\": 4}",
            "{}",
            "{\"events\": []} x",
            "{\"events\": [{}],}",
            "{\"events\": [{},]}",
            "{\"events\" []}",
            "{events: []}",
            "{\"events\": [], \"events\": []}",
            "{\"events\": [{\"message\": \"m\"} {\"message\": \"n\"}]}",
            "{\"events\": [],\n\n  \"x\": tru}",
            "{\"events\": [{\"message\": \"\\x\"}]}",
            "{\"events\": [{\"message\": \"a\nb\"}]}",
            "\u{feff}{\"events\": []}",
            "{\"events\": []}\u{c}",
            "{\"events\": [], \"events\"",
            "{\"events\": [], \"k\"",
            "{\"events\": [{\"message\": 5}], \"x\": tru}",
            "{\"events\": [{\"message\": 5}, {\"message\": [1, }]}",
            "{\"events\": 7, \"events\": [{\"message\": 5}]}",
            "{\"x\": 1, \"events\": [{\"timestamp\": \"t\"}], \"events\": [}",
        ];
        for text in cases {
            let want = whole_file(text, &Limits::default()).map(|_| ()).expect_err(text);
            for chunk in CHUNKS {
                let got = streamed(text, &Limits::default(), chunk).map(|_| ()).expect_err(text);
                assert_eq!(got, want, "chunk {chunk}: {text:?}");
            }
        }
        // Nesting past serde_json's recursion limit, where the stream skips a value (another key,
        // the whole file, an event after one of the wrong shape), is refused as the whole file
        // was (the column may differ by the levels the stream reads by hand).
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for text in [
            format!("{{\"x\": {}, \"events\": []}}", deep(200)),
            deep(200),
            format!("{{\"events\": [{{\"message\": 5}}, {}]}}", deep(200)),
        ] {
            let want = whole_file(&text, &Limits::default()).map(|_| ()).expect_err(&text);
            assert!(want.to_string().contains("recursion limit exceeded"), "{want}");
            for chunk in CHUNKS {
                let got = streamed(&text, &Limits::default(), chunk).map(|_| ()).expect_err(&text);
                assert!(
                    got.to_string().contains("recursion limit exceeded"),
                    "chunk {chunk}: {got}"
                );
            }
        }
    }

    /// A file of many chunks, with lines longer than a chunk and than the line cap, loads as the
    /// whole file did (the CLI's indented layout, as `aws logs get-log-events` prints it).
    #[test]
    fn a_large_log_file_streams_to_the_same_evidence() {
        let events: Vec<serde_json::Value> = (0..20_000_i64)
            .map(|i| {
                let message = match i {
                    7_000 => "x".repeat(300 * 1024),
                    12_345 => format!("{} AccessDenied", "y ".repeat(40 * 1024)),
                    _ => format!("line {i} \"quoted\" caf\u{e9} \\ {}", "z".repeat((i % 97) as usize)),
                };
                serde_json::json!({ "timestamp": 1_795_445_327_000_i64 + (i * 7919) % 20_000, "message": message, "ingestionTime": 1 })
            })
            .collect();
        let text = serde_json::to_string_pretty(&serde_json::json!({ "events": events, "nextForwardToken": "f/1" }))
            .expect("json");
        assert!(text.len() > 4 * CHUNK_BYTES, "{} bytes", text.len());
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
        std::fs::write(
            dir.path().join("describe-tasks.json"),
            r#"{"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/0f3c1e2d4b5a69788796a5b4c3d2e1f0"}]}"#,
        )
        .expect("write");
        std::fs::write(dir.path().join("logs/app.json"), &text).expect("write");
        let limits = Limits::default();
        let ev = load(&Bundle::Dir(dir.path().to_path_buf()), None, &limits).expect("loads");
        let (want, mut want_notes) = whole_file(&text, &limits).expect("whole file");
        assert_eq!(ev.logs, vec![want]);
        want_notes.insert(
            0,
            "no describe-task-definition.json in the bundle: role names unknown, the verdict relies on the phase"
                .into(),
        );
        assert_eq!(ev.notes, want_notes);
        assert!(
            ev.notes.iter().any(|n| n.contains("2 line(s) longer than 65536 bytes")),
            "{:?}",
            ev.notes
        );
    }

    #[test]
    fn a_log_file_is_checked_as_it_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let read = |bytes: &[u8]| {
            let p = dir.path().join("app.json");
            std::fs::write(&p, bytes).expect("write");
            let src = Chunked::open(Input::File(&p), log_expect())
                .map_err(|e| e.to_string())?
                .with_chunk(4);
            read_logs(src, "app", &Limits::default(), &mut Vec::new())
                .map(|l| l.lines.len())
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(br#"{"events": [{"message": "ok"}]}"#), Ok(1));
        let e = read(b" \n\t").expect_err("blank");
        assert!(
            e.ends_with(
                "app.json: is empty, expected the JSON output of `aws logs get-log-events` (an object with `events`)"
            ),
            "{e}"
        );
        // Bytes that are not UTF-8 get the error reading the whole file gave.
        for bad in [
            &b"{\"events\": [{\"message\": \"caf\xc3\"}]}"[..],
            b"{\"events\": [{\"message\": \"\xff\"}]}",
            b"\xfe",
        ] {
            let e = read(bad).expect_err("not UTF-8");
            let p = dir.path().join("app.json");
            let want = input::read_text(Input::File(&p), log_expect()).expect_err("not UTF-8");
            assert_eq!(e, want.to_string());
            assert!(e.contains("is not UTF-8 text (invalid byte at offset"), "{e}");
        }
        // A character cut by a chunk boundary is fine.
        assert_eq!(
            read("{\"events\": [{\"message\": \"\u{1F600}\u{e9}\"}]}".as_bytes()),
            Ok(1)
        );
    }

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
