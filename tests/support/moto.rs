//! A private moto server (local AWS emulator) per test, on 127.0.0.1 only.
//!
//! Include it from an integration test with
//! ```ignore
//! #[path = "support/moto.rs"]
//! mod moto;
//! ```
//! `Moto::start()` needs the Python venv that `scripts/test.sh` creates (`target/moto-venv`, or the
//! interpreter named by `ECSDOCTOR_MOTO_PYTHON`). Without it the test FAILS: it never skips.
//!
//! Safety: every process started from here (moto, the seeding script, the ecsdoctor binary via
//! [`safe_env`] / [`Moto::apply_env`]) gets dummy credentials, a fixed region, no config files, no
//! EC2 metadata probing, no proxies and loopback endpoints only. Nothing may reach real AWS.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment every process in these tests runs with.
pub const SAFE_ENV: &[(&str, &str)] = &[
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ("NO_PROXY", "127.0.0.1,localhost"),
    ("no_proxy", "127.0.0.1,localhost"),
];

/// Variables that could send a request somewhere else or pick other credentials: always removed.
pub const UNSAFE_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "AWS_ENDPOINT_URL_STS",
    // The services verification and the Lambda runner sign requests to.
    "AWS_ENDPOINT_URL_IAM",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_SSM",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// The environment pairs of [`SAFE_ENV`], for APIs that take an iterator (e.g. `assert_cmd`'s `envs`).
pub fn safe_env_pairs() -> Vec<(&'static str, &'static str)> {
    SAFE_ENV.to_vec()
}

/// Applies the safety environment to a std `Command`. For `assert_cmd`, build a std `Command`
/// (`Command::new(env!("CARGO_BIN_EXE_ecsdoctor"))`), apply this, then `assert_cmd::Command::from_std`.
pub fn safe_env(cmd: &mut Command) {
    for k in UNSAFE_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in SAFE_ENV {
        cmd.env(k, v);
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where moto's logs go: `target/tmp/moto/` (cargo's per-target scratch directory).
fn log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto")
}

/// The Python interpreter of the moto venv. Panics (the test fails) when there is none.
pub fn moto_python() -> PathBuf {
    let from_env = std::env::var_os("ECSDOCTOR_MOTO_PYTHON")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let candidate = from_env.unwrap_or_else(|| manifest_dir().join("target/moto-venv/bin/python"));
    if !candidate.exists() {
        panic!(
            "moto is not installed: run scripts/test.sh (it creates target/moto-venv) \
             [looked for {}]",
            candidate.display()
        );
    }
    candidate
}

/// A port on 127.0.0.1 that was free a moment ago (bound, then released).
/// Also used for "nothing is listening here" tests.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// One raw HTTP/1.1 request to 127.0.0.1:`port`; returns (status, body).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: ecsdoctor-tests\r\n\
         Accept: */*\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    s.flush()?;
    let _ = s.shutdown(Shutdown::Write);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {:.200}", text),
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A moto server owned by one test; killed on drop.
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    pub log_path: PathBuf,
    child: Child,
}

impl Moto {
    /// Starts moto on a free loopback port, waits until it answers (at most 10 s), and freezes the
    /// ECS task state machine (otherwise every DescribeTasks moves a task one state forward).
    pub fn start() -> Moto {
        let python = moto_python();
        let mut last_err = String::new();
        // A port picked by `free_port` can be taken by someone else before moto binds it: retry.
        for _ in 0..3 {
            match Self::try_start(&python) {
                Ok(m) => return m,
                Err(e) => last_err = e,
            }
        }
        panic!("moto did not start: {last_err}");
    }

    fn try_start(python: &Path) -> Result<Moto, String> {
        let port = free_port();
        let dir = log_dir();
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let log_path = dir.join(format!("moto-{}-{port}.log", std::process::id()));
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;

        let mut cmd = Command::new(python);
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(manifest_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        safe_env(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {} -m moto.server: {e}", python.display()))?;
        let mut moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            log_path,
            child,
        };

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!(
                    "moto exited early ({status}); log {}:\n{}",
                    moto.log_path.display(),
                    moto.log()
                ));
            }
            match http_request(port, "GET", "/moto-api/", None, Duration::from_secs(2)) {
                Ok((200, _)) => break,
                Ok(_) | Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => {
                    return Err(format!(
                        "moto on port {port} not ready after 10 s (last answer: {other:?}); log {}:\n{}",
                        moto.log_path.display(),
                        moto.log()
                    ))
                }
            }
        }

        let body = r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#;
        match moto.http("POST", "/moto-api/state-manager/set-transition", Some(body)) {
            Ok((s, _)) if (200..300).contains(&s) => Ok(moto),
            other => Err(format!("freezing moto's ecs::task state machine failed: {other:?}")),
        }
    }

    /// A raw HTTP request to this moto (e.g. `/moto-api/reset`).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
        http_request(self.port, method, path, body, Duration::from_secs(5))
    }

    /// What moto has printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Environment for a process that talks to this moto: [`SAFE_ENV`] plus `AWS_ENDPOINT_URL`
    /// pointing here, so that even an SDK client built without `--endpoint-url` stays on loopback.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = SAFE_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        v.push(("AWS_ENDPOINT_URL".into(), self.endpoint.clone()));
        v
    }

    /// Applies [`Moto::env`] (and removes [`UNSAFE_ENV`]) on a std `Command`.
    pub fn apply_env(&self, cmd: &mut Command) {
        safe_env(cmd);
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint);
    }

    /// Runs `tests/moto/seed.py --endpoint URL --scenario NAME` and returns its JSON:
    /// `{"task_arn", "task_id", "cluster", "region", "execution_role_arn", "task_role_arn",
    ///   "log_group", "log_stream", ...}`. Panics with the script's stderr on failure.
    pub fn seed(&self, scenario: &str) -> serde_json::Value {
        self.script("seed.py", &["--scenario", scenario])
    }

    /// Runs `tests/moto/seed_iam.py --endpoint URL --case NAME` (after [`Moto::seed`]): the roles,
    /// policies, keys and resource policies of one verification case. Returns its JSON, with the
    /// case's `expect`ed status, layer and statement.
    pub fn seed_iam(&self, case: &str) -> serde_json::Value {
        self.script("seed_iam.py", &["--case", case])
    }

    fn script(&self, name: &str, args: &[&str]) -> serde_json::Value {
        let python = moto_python();
        let script = manifest_dir().join("tests/moto").join(name);
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args(["--endpoint", &self.endpoint])
            .args(args)
            .current_dir(manifest_dir())
            .stdin(Stdio::null());
        self.apply_env(&mut cmd);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("could not run {} {}: {e}", python.display(), script.display()));
        if !out.status.success() {
            panic!(
                "{name} {args:?} failed ({}):\n{}\n--- moto log ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{name} {args:?} printed no JSON ({e}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
