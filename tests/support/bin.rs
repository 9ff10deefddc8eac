//! Running the `ecsdoctor` binary in a test: one runner (assert_cmd) with the safety environment,
//! a hang guard, optional stdin, an optional loopback endpoint and API trace, and one [`Out`] with
//! the checks every test repeats (exit code, one-line error, JSON, the API trace).
//!
//! Safety: every run gets dummy credentials, a fixed region, no config files, no EC2 metadata
//! probing and no proxies (see [`super::moto::safe_env`]); an endpoint must be on 127.0.0.1.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::moto;

/// The only AWS operations ecsdoctor may call: read-only. Kept by hand, apart from the code's
/// allow-list (`ALLOWED_OPERATIONS`), so that a write added there fails these tests.
pub const READ_ONLY_OPS: &[&str] = &[
    "DescribeTasks",
    "DescribeTaskDefinition",
    "GetLogEvents",
    "FilterLogEvents",
    "ListTasks",
    "DescribeServices",
    // Verification's reads of the denied role's policies and the resource's and key's policies.
    "GetRole",
    "ListRolePolicies",
    "GetRolePolicy",
    "ListAttachedRolePolicies",
    "GetPolicy",
    "GetPolicyVersion",
    "SimulatePrincipalPolicy",
    "GetKeyPolicy",
    "GetRepositoryPolicy",
    "GetBucketPolicy",
    "GetResourcePolicy",
    "DescribeSecret",
    "DescribeParameters",
];

/// The services a `why` may read with verification on.
pub const VERIFY_SERVICES: &[&str] = &["ecs", "logs", "iam", "ssm", "secretsmanager", "kms", "ecr", "s3"];

/// How long a run may take before it counts as a hang.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// A path under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A path under `tests/fixtures-events/`.
pub fn event_sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures-events")
        .join(name)
}

/// A number unique within this test process (file names).
pub fn unique() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A loopback endpoint where nothing listens: any AWS call fails fast (and is traced).
pub fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", moto::free_port())
}

/// A run being set up: `ecsdoctor().stdin(b"..").run(&["why", ...])`.
#[derive(Debug, Clone)]
pub struct Runner {
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    trace: Option<PathBuf>,
    guard: Duration,
}

/// A runner with the safety environment, no user rules and no `NO_COLOR` (tests of color set it).
pub fn ecsdoctor() -> Runner {
    Runner {
        env: vec![
            // User rules from the developer's own config must not change test results.
            (
                "XDG_CONFIG_HOME".into(),
                Some("/nonexistent-ecsdoctor-test-config".into()),
            ),
            ("NO_COLOR".into(), None),
            ("ECSDOCTOR_API_TRACE".into(), None),
            ("ECSDOCTOR_CLUSTER".into(), None),
            // A user-facing error must not depend on the developer's shell.
            ("RUST_BACKTRACE".into(), None),
            ("RUST_LIB_BACKTRACE".into(), None),
        ],
        stdin: None,
        trace: None,
        guard: HANG_GUARD,
    }
}

impl Runner {
    /// Sets (or with `None` removes) an environment variable.
    pub fn env(mut self, key: &str, value: Option<&str>) -> Runner {
        self.env.push((key.into(), value.map(OsString::from)));
        self
    }

    /// `AWS_ENDPOINT_URL`; only loopback endpoints are allowed in tests.
    pub fn endpoint(self, url: &str) -> Runner {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "tests may only use loopback endpoints, got {url}"
        );
        self.env("AWS_ENDPOINT_URL", Some(url))
    }

    /// `AWS_ENDPOINT_URL_IAM`: IAM alone elsewhere (a stand-in for what moto cannot do); loopback
    /// only.
    pub fn iam_endpoint(self, url: &str) -> Runner {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "tests may only use loopback endpoints, got {url}"
        );
        self.env("AWS_ENDPOINT_URL_IAM", Some(url))
    }

    /// Its own HOME and XDG cache/config directories under `dir` (created).
    pub fn home(self, dir: &Path) -> Runner {
        for d in ["xdg-cache", "xdg-config"] {
            std::fs::create_dir_all(dir.join(d)).expect("create scratch dir");
        }
        let s = |p: PathBuf| p.to_str().expect("utf-8 temp path").to_string();
        self.env("HOME", Some(&s(dir.to_path_buf())))
            .env("XDG_CACHE_HOME", Some(&s(dir.join("xdg-cache"))))
            .env("XDG_CONFIG_HOME", Some(&s(dir.join("xdg-config"))))
    }

    /// Records every AWS call into a trace file in `dir`.
    pub fn traced(mut self, dir: &Path) -> Runner {
        self.trace = Some(dir.join(format!("trace-{}.jsonl", unique())));
        self
    }

    /// Standard input.
    pub fn stdin(mut self, bytes: &[u8]) -> Runner {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// How long the run may take before it fails the test as a hang.
    pub fn guard(mut self, guard: Duration) -> Runner {
        self.guard = guard;
        self
    }

    /// The process as a `std` command with this environment, for tests that drive its pipes
    /// themselves (a reader that closes stdout early).
    pub fn std_command(&self) -> std::process::Command {
        let mut std_cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ecsdoctor"));
        moto::safe_env(&mut std_cmd);
        for (k, v) in &self.env {
            match v {
                Some(v) => std_cmd.env(k, v),
                None => std_cmd.env_remove(k),
            };
        }
        if let Some(t) = &self.trace {
            std_cmd.env("ECSDOCTOR_API_TRACE", t);
        }
        std_cmd
    }

    /// Runs `ecsdoctor ARGS` and closes its stdout after 16 bytes, as `| head -c 16` would.
    pub fn run_closing_stdout(&self, args: &[&str]) -> Out {
        use std::io::Read;
        let mut c = self.std_command();
        let start = Instant::now();
        let mut child = c
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the ecsdoctor binary runs");
        let mut out = child.stdout.take().expect("stdout");
        let mut buf = [0u8; 16];
        let _ = out.read(&mut buf);
        drop(out);
        let o = child.wait_with_output().expect("wait");
        Out {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&buf).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            elapsed: start.elapsed(),
            trace: Vec::new(),
        }
    }

    /// Runs `ecsdoctor ARGS`; fails the test on a hang or a panic.
    pub fn run(&self, args: &[&str]) -> Out {
        let mut std_cmd = self.std_command();
        std_cmd.args(args);
        let mut cmd = assert_cmd::Command::from_std(std_cmd);
        cmd.timeout(self.guard);
        // No input is an empty, closed stdin: a read sees end of file at once.
        cmd.write_stdin(self.stdin.clone().unwrap_or_default());
        let start = Instant::now();
        let o = cmd.output().expect("the ecsdoctor binary runs");
        let elapsed = start.elapsed();
        assert!(
            elapsed < self.guard,
            "ecsdoctor {args:?} still running after {:?}: a hang",
            self.guard
        );
        let trace = self
            .trace
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("ECSDOCTOR_API_TRACE line is not JSON ({e}): {l}"))
            })
            .collect();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "ecsdoctor {args:?} panicked: {stderr}");
        Out {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).expect("ecsdoctor prints UTF-8"),
            stderr,
            elapsed,
            trace,
        }
    }
}

/// What one ecsdoctor run produced.
#[derive(Debug)]
pub struct Out {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// One JSON object per AWS call (ECSDOCTOR_API_TRACE), in order; empty when not traced.
    pub trace: Vec<Value>,
}

impl Out {
    /// Everything about the run, for assertion messages.
    pub fn context(&self) -> String {
        format!(
            "ecsdoctor {:?}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- API trace ---\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr,
            self.trace.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")
        )
    }

    /// stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{}", self.context()))
    }

    /// Asserts the exit code.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.context());
        self
    }

    /// The error line of a failed run: exactly one line, `error: ...`.
    pub fn one_line_error(&self) -> &str {
        let err = self.stderr.trim_end();
        assert!(err.starts_with("error: "), "{}", self.context());
        assert_eq!(err.lines().count(), 1, "expected a one-line error\n{}", self.context());
        err
    }

    /// The operations called, in order.
    pub fn ops(&self) -> Vec<String> {
        self.trace
            .iter()
            .filter_map(|t| t["operation"].as_str().map(str::to_string))
            .collect()
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: &str) -> usize {
        self.ops().iter().filter(|o| *o == op).count()
    }

    /// The highest sequential round of the trace.
    pub fn max_round(&self) -> u64 {
        self.trace
            .iter()
            .map(|t| t["round"].as_u64().unwrap_or(u64::MAX))
            .max()
            .unwrap_or(0)
    }

    /// Every call is an allowed read-only operation of one of `services`, and the calls took at
    /// most `max_rounds` sequential rounds.
    pub fn assert_trace(&self, services: &[&str], max_rounds: u64) {
        for t in &self.trace {
            let op = t["operation"].as_str().unwrap_or("<missing>");
            let svc = t["service"].as_str().unwrap_or("<missing>");
            assert!(
                READ_ONLY_OPS.contains(&op),
                "ecsdoctor called {svc}:{op}, which is not in the read-only allowlist {READ_ONLY_OPS:?}\n{}",
                self.context()
            );
            assert!(
                services.contains(&svc),
                "unexpected service {svc:?} in the API trace\n{}",
                self.context()
            );
            assert!(
                t["round"].as_u64().is_some(),
                "trace line without a numeric round: {t}\n{}",
                self.context()
            );
        }
        assert!(
            self.max_round() <= max_rounds,
            "AWS calls took {} sequential rounds, expected at most {max_rounds}\n{}",
            self.max_round(),
            self.context()
        );
    }
}
