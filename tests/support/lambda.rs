//! Scaffolding for the Lambda runner's end-to-end tests, all on 127.0.0.1: a stand-in for the
//! Lambda Runtime API ([`RuntimeApi`]: `GET /2018-06-01/runtime/invocation/next` with the
//! documented headers, `POST .../invocation/{id}/response`, `POST .../invocation/{id}/error`,
//! `POST /2018-06-01/runtime/init/error`), a chat webhook receiver that records POST bodies and
//! can answer 500 or 404 on cue ([`Receiver`]), and a runner for `ecsdoctor lambda` with the
//! safety environment and the variables `lambda_runtime` reads ([`start`]).
//!
//! The stand-in serves its queued events in order; when the queue is empty, `/next` waits (as
//! Lambda does between events) and the test kills the process once every event was answered.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::moto::{self, Moto};

/// The function ARN the stand-in names in `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:ecsdoctor";

/// One event to serve.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The event (JSON).
    pub body: String,
    /// The invocation's deadline, counted from when it is served.
    pub timeout: Duration,
    /// A pause before it is served (to let a folding window end).
    pub delay: Duration,
}

impl Invocation {
    /// An event with a 30 s deadline, served at once.
    pub fn new(event: &Value) -> Invocation {
        Invocation {
            body: event.to_string(),
            timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
        }
    }

    /// With this deadline.
    pub fn timeout(mut self, t: Duration) -> Invocation {
        self.timeout = t;
        self
    }

    /// Served after this pause.
    pub fn after(mut self, d: Duration) -> Invocation {
        self.delay = d;
        self
    }
}

/// How the function answered one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The request id.
    pub id: String,
    /// `response` or `error`.
    pub kind: String,
    /// The body posted.
    pub body: String,
    /// `Lambda-Runtime-Function-Error-Type`, for errors.
    pub error_type: Option<String>,
    /// From serving the event to the answer.
    pub took: Duration,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct ApiState {
    queue: VecDeque<(String, Invocation)>,
    served: Vec<(String, Instant)>,
    answers: Vec<Answer>,
    init_errors: Vec<(String, Option<String>)>,
    first_next: Option<Instant>,
}

/// The Runtime API stand-in.
pub struct RuntimeApi {
    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    state: Arc<Mutex<ApiState>>,
    stop: Arc<AtomicBool>,
    /// When the stand-in started (the process is started right after).
    pub started: Instant,
}

impl RuntimeApi {
    /// Starts the stand-in with these events queued (request ids `req-1`, `req-2`, ...).
    pub fn start(events: Vec<Invocation>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Runtime API stand-in");
        let address = listener.local_addr().expect("local_addr").to_string();
        let state = Arc::new(Mutex::new(ApiState {
            queue: events
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("req-{}", i + 1), e))
                .collect(),
            ..ApiState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, st) = (s.clone(), st.clone());
                std::thread::spawn(move || serve_api(conn, s, st));
            }
        });
        RuntimeApi {
            address,
            state,
            stop,
            started: Instant::now(),
        }
    }

    /// Waits until `n` invocations were answered or an init error came (at most `limit`).
    pub fn wait_answers(&self, n: usize, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            {
                let s = self.state.lock().expect("state");
                if s.answers.len() >= n || !s.init_errors.is_empty() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The answers so far, in order.
    pub fn answers(&self) -> Vec<Answer> {
        self.state.lock().expect("state").answers.clone()
    }

    /// The ids served so far.
    pub fn served(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("state")
            .served
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The init errors posted: (body, error type header).
    pub fn init_errors(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().expect("state").init_errors.clone()
    }

    /// From the start to the first `/next` call: the cold start.
    pub fn cold_start(&self) -> Option<Duration> {
        self.state.lock().expect("state").first_next.map(|t| t - self.started)
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so its thread ends.
        let _ = TcpStream::connect(&self.address);
    }
}

/// One HTTP/1.1 request read off a connection.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

pub(crate) fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub(crate) fn respond(w: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body.as_bytes())?;
    w.flush()
}

fn serve_api(conn: TcpStream, state: Arc<Mutex<ApiState>>, stop: Arc<AtomicBool>) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        let accepted = (202, r#"{"status":"OK"}"#);
        if req.method == "GET" && req.path == "/2018-06-01/runtime/invocation/next" {
            let next = {
                let mut s = state.lock().expect("state");
                s.first_next.get_or_insert_with(Instant::now);
                s.queue.pop_front()
            };
            let Some((id, inv)) = next else {
                // No more events: hold the call as Lambda does until the test ends.
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            };
            std::thread::sleep(inv.delay);
            let deadline = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock after 1970")
                + inv.timeout;
            state.lock().expect("state").served.push((id.clone(), Instant::now()));
            let headers = [
                ("Content-Type", "application/json".to_string()),
                ("Lambda-Runtime-Aws-Request-Id", id.clone()),
                ("Lambda-Runtime-Deadline-Ms", deadline.as_millis().to_string()),
                ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_string()),
                ("Lambda-Runtime-Trace-Id", format!("Root=1-00000000-{id}")),
            ];
            if respond(&mut w, 200, &headers, &inv.body).is_err() {
                return;
            }
            continue;
        }
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")]) => {
                let mut s = state.lock().expect("state");
                let took = s
                    .served
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, t)| t.elapsed())
                    .unwrap_or_default();
                s.answers.push(Answer {
                    id: id.to_string(),
                    kind: kind.to_string(),
                    body: req.body.clone(),
                    error_type: req.header("Lambda-Runtime-Function-Error-Type"),
                    took,
                });
            }
            ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
                state
                    .lock()
                    .expect("state")
                    .init_errors
                    .push((req.body.clone(), req.header("Lambda-Runtime-Function-Error-Type")));
            }
            _ => {
                if respond(&mut w, 404, &[], "{}").is_err() {
                    return;
                }
                continue;
            }
        }
        if respond(
            &mut w,
            accepted.0,
            &[("Content-Type", "application/json".into())],
            accepted.1,
        )
        .is_err()
        {
            return;
        }
    }
}

/// How the receiver answers POSTs whose body contains `marker`: `script` first, then `then`.
#[derive(Debug, Clone)]
pub struct Cue {
    /// A substring of the body.
    pub marker: String,
    /// Statuses for the first matching POSTs.
    pub script: Vec<u16>,
    /// The status after the script.
    pub then: u16,
}

/// A chat webhook receiver: records every POST, answers 200 `ok` unless a [`Cue`] says otherwise.
pub struct Receiver {
    /// The port on 127.0.0.1.
    pub port: u16,
    posts: Arc<Mutex<Vec<(String, String, u16)>>>,
}

impl Receiver {
    /// Starts a receiver with these cues.
    pub fn start(cues: Vec<Cue>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let port = listener.local_addr().expect("local_addr").port();
        let posts: Arc<Mutex<Vec<(String, String, u16)>>> = Arc::new(Mutex::new(Vec::new()));
        let cues = Arc::new(Mutex::new(cues));
        let p = posts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (p, cues) = (p.clone(), cues.clone());
                std::thread::spawn(move || {
                    let Ok(mut w) = conn.try_clone() else { return };
                    let mut r = BufReader::new(conn);
                    while let Some(req) = read_request(&mut r) {
                        let status = {
                            let mut cues = cues.lock().expect("cues");
                            match cues.iter_mut().find(|c| req.body.contains(&c.marker)) {
                                Some(c) if !c.script.is_empty() => c.script.remove(0),
                                Some(c) => c.then,
                                None => 200,
                            }
                        };
                        p.lock()
                            .expect("posts")
                            .push((req.path.clone(), req.body.clone(), status));
                        let body = if status == 200 { "ok" } else { "no_service" };
                        if respond(&mut w, status, &[("Content-Type", "text/plain".into())], body).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { port, posts }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// Every POST so far: (path, body, status answered).
    pub fn posts(&self) -> Vec<(String, String, u16)> {
        self.posts.lock().expect("posts").clone()
    }

    /// The `text` of every POST answered 200 (Slack format).
    pub fn texts(&self) -> Vec<String> {
        self.posts()
            .into_iter()
            .filter(|(_, _, s)| *s == 200)
            .map(|(_, b, _)| {
                serde_json::from_str::<Value>(&b)
                    .ok()
                    .and_then(|v| v["text"].as_str().map(str::to_string))
                    .unwrap_or(b)
            })
            .collect()
    }
}

/// The binary the tests run: the test build's, or `ECSDOCTOR_LAMBDA_BIN` (a release build, for
/// the timing test).
pub fn binary() -> PathBuf {
    std::env::var_os("ECSDOCTOR_LAMBDA_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ecsdoctor")))
}

/// A running `ecsdoctor lambda`.
pub struct Function {
    child: Child,
    dir: PathBuf,
}

/// What the function printed, once stopped.
#[derive(Debug)]
pub struct Logs {
    /// Exit status, when it exited by itself.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The AWS calls it made (`ECSDOCTOR_API_TRACE`): (service, operation).
    pub calls: Vec<(String, String)>,
}

impl Logs {
    /// Both streams, for assertion messages.
    pub fn context(&self) -> String {
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

/// Starts `ecsdoctor lambda` against the stand-in, with the safety environment, AWS at
/// `aws_endpoint` (moto, or a dead loopback port) and the runner's variables in `env`. Scratch
/// files (TMPDIR, the API trace, stdout and stderr) go to `dir`.
pub fn start(api: &RuntimeApi, aws_endpoint: &str, env: &[(&str, &str)], dir: &Path) -> Function {
    assert!(
        aws_endpoint.starts_with("http://127.0.0.1:"),
        "tests may only use loopback endpoints, got {aws_endpoint}"
    );
    for (k, v) in env {
        if k.contains("WEBHOOK_URL") && v.starts_with("http") {
            // Plain http is only used for the refused-at-init test, which never sends.
            assert!(v.starts_with("http://127.0.0.1:") || v.contains(".invalid/"), "{v}");
        }
    }
    std::fs::create_dir_all(dir.join("tmp")).expect("scratch dir");
    let mut cmd = Command::new(binary());
    cmd.arg("lambda");
    moto::safe_env(&mut cmd);
    for (k, _) in std::env::vars() {
        if k.starts_with("ECSDOCTOR_") || k.starts_with("AWS_ENDPOINT_URL") || k.starts_with("AWS_LAMBDA_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("AWS_ENDPOINT_URL", aws_endpoint)
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "ecsdoctor")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]0123456789abcdef")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ecsdoctor")
        .env("TMPDIR", dir.join("tmp"))
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("ECSDOCTOR_API_TRACE", dir.join("trace.jsonl"))
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::fs::File::create(dir.join("stdout")).expect("stdout file"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr")).expect("stderr file"),
        ));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start ecsdoctor lambda");
    Function {
        child,
        dir: dir.to_path_buf(),
    }
}

impl Function {
    /// Waits for the process to exit by itself (an init error), at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the process (after the last answer) and returns what it printed.
    pub fn stop(mut self) -> Logs {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => s.code(),
            _ => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                None
            }
        };
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let calls = read("trace.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| {
                (
                    v["service"].as_str().unwrap_or_default().to_string(),
                    v["operation"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        Logs {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
            calls,
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An EventBridge "ECS Task State Change" event around a task (as DescribeTasks returns it).
pub fn event(task: &Value) -> Value {
    serde_json::json!({
        "version": "0",
        "id": "3317b2af-7005-947d-b652-f55e762e571a",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-11-23T09:16:45Z",
        "region": "us-east-1",
        "resources": [task["taskArn"].clone()],
        "detail": task,
    })
}

/// The scheduled tick the Terraform module sends (an EventBridge "Scheduled Event").
pub fn tick() -> Value {
    serde_json::json!({
        "version": "0",
        "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-23T09:30:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ecsdoctor-tick"],
        "detail": {}
    })
}

/// One finished run of the runner: the Runtime API stand-in (its answers), the webhook receiver
/// (its posts), the function's logs, and whether every event was answered in time.
pub struct Run {
    pub api: RuntimeApi,
    pub hook: Receiver,
    pub logs: Logs,
    pub answered: bool,
}

/// Runs `ecsdoctor lambda` over `events` against moto, posting to a receiver at `/hook` (`env`
/// adds to `ECSDOCTOR_WEBHOOK_URL`), until all are answered or `wait` passes, then stops it.
pub fn run(moto: &Moto, events: Vec<Invocation>, env: &[(&str, &str)], wait: Duration) -> Run {
    let n = events.len();
    let api = RuntimeApi::start(events);
    let hook = Receiver::start(vec![]);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = hook.url("hook");
    let mut all = vec![("ECSDOCTOR_WEBHOOK_URL", url.as_str())];
    all.extend_from_slice(env);
    let f = start(&api, &moto.endpoint, &all, dir.path());
    let answered = api.wait_answers(n, wait);
    let logs = f.stop();
    Run {
        api,
        hook,
        logs,
        answered,
    }
}

/// Runs `tests/moto/lambda_helpers.py` against moto and returns its JSON.
pub fn helper(moto: &Moto, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto/lambda_helpers.py");
    let mut cmd = Command::new(moto::moto_python());
    cmd.arg(&script).args(["--endpoint", &moto.endpoint]).args(args);
    moto.apply_env(&mut cmd);
    let out = cmd.output().expect("run lambda_helpers.py");
    assert!(
        out.status.success(),
        "lambda_helpers.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("lambda_helpers.py prints JSON")
}

/// A seeded scenario's task, as DescribeTasks returns it, and the seed's facts.
pub fn seeded_task(moto: &Moto, scenario: &str) -> (Value, Value) {
    let seed = moto.seed(scenario);
    let cluster = seed["cluster"].as_str().expect("cluster").to_string();
    let arn = seed["task_arn"].as_str().expect("task_arn").to_string();
    (helper(moto, &["describe", &cluster, &arn]), seed)
}

/// A copy of `task` as another task of the same service: new id everywhere it appears.
pub fn sibling(task: &Value, n: usize) -> Value {
    let arn = task["taskArn"].as_str().expect("taskArn");
    let old_id = arn.rsplit('/').next().expect("task id").to_string();
    let new_id = format!("{n:08x}{}", &old_id[8..]);
    let text = task.to_string().replace(&old_id, &new_id);
    serde_json::from_str(&text).expect("still JSON")
}
