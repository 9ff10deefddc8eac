//! The read-only guard: an interceptor on every SDK client refuses any operation that is not on
//! the allow-list before it is serialized, and records every call with its sequential round (the
//! API trace of `ECSDOCTOR_API_TRACE`, and the round counts the tests and benchmarks check).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The only operations ecsdoctor may send. Everything is read-only: the task and its logs (ECS,
/// CloudWatch Logs), the service's events (`scan --service`), and what verification reads of the
/// denied role's policies and the resource's policy (IAM, KMS, ECR, S3, Secrets Manager, SSM).
pub const ALLOWED_OPERATIONS: &[&str] = &[
    "DescribeTasks",
    "DescribeTaskDefinition",
    "GetLogEvents",
    "FilterLogEvents",
    "ListTasks",
    "DescribeServices",
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

/// What the Lambda runner may send besides: read its webhook URL (an SSM SecureString or a
/// Secrets Manager secret) and publish to its SNS topic. Nothing else ever uses these.
pub const DELIVERY_OPERATIONS: &[&str] = &["GetParameter", "GetSecretValue", "Publish"];

/// Records calls and enforces the read-only list.
#[derive(Debug, Default)]
pub struct Tracer {
    round: AtomicUsize,
    file: Option<Mutex<std::fs::File>>,
    calls: Mutex<Vec<(usize, String, String)>>,
}

impl Tracer {
    /// A tracer writing to `path` (JSON lines), if any.
    pub fn new(path: Option<&std::path::Path>) -> Tracer {
        let file = path
            .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok())
            .map(Mutex::new);
        Tracer {
            round: AtomicUsize::new(0),
            file,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Starts the next sequential round of calls.
    pub fn next_round(&self) -> usize {
        self.round.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The calls made so far: (round, service, operation).
    pub fn calls(&self) -> Vec<(usize, String, String)> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The number of sequential rounds used.
    pub fn rounds(&self) -> usize {
        self.round.load(Ordering::SeqCst)
    }

    /// The read-only check every call goes through, SDK client or signed request: `operation` must
    /// be on `allowed`; then the call is recorded. The error is the one-line refusal.
    pub fn admit(&self, service: &str, operation: &str, allowed: &[&str]) -> Result<(), String> {
        if !allowed.contains(&operation) {
            return Err(format!(
                "ecsdoctor is read-only and refused to send {service}:{operation}"
            ));
        }
        self.record(service, operation);
        Ok(())
    }

    /// Records one call in the current round (and in the trace file, if any).
    pub fn record(&self, service: &str, operation: &str) {
        let round = self.round.load(Ordering::SeqCst);
        if let Ok(mut c) = self.calls.lock() {
            c.push((round, service.to_string(), operation.to_string()));
        }
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let svc = if service.eq_ignore_ascii_case("cloudwatch logs") {
                    "logs".to_string()
                } else {
                    service.to_ascii_lowercase()
                };
                let line = serde_json::json!({ "round": round, "service": svc, "operation": operation });
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Guard(pub(super) Arc<Tracer>);

impl Intercept for Guard {
    fn name(&self) -> &'static str {
        "ecsdoctor-read-only-guard"
    }

    // `read_before_execution` runs before the operation's runtime plugin stores its Metadata, so
    // the check sits in the first hook that can see which operation this is.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_string(), m.name().to_string()),
            None => return Err("ecsdoctor refused an AWS call it could not identify".into()),
        };
        Ok(self.0.admit(&service, &op, ALLOWED_OPERATIONS)?)
    }
}

/// The read-only guard as an interceptor, for clients built elsewhere (tests).
pub fn guard(tracer: Arc<Tracer>) -> impl Intercept + 'static {
    Guard(tracer)
}
