//! The SDK clients of one run: one configuration (credentials and region resolved as the AWS CLI
//! does, `--profile`, `--region`, `--endpoint-url`), one HTTP client (rustls with ring), the
//! SDK's own retry configuration and per-operation timeout, and the read-only guard on every
//! client. CloudWatch Logs clients are made per region on first use (awslogs may ship elsewhere).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatchlogs as logs;
use aws_sdk_ecs as ecs;

use super::guard::{Guard, Tracer};
use super::signed::Signed;
use super::AwsOptions;
use crate::error::SourceError;

/// The SDK's retry configuration for these options: standard mode, a bounded number of attempts
/// with exponential backoff and jitter. (Adaptive mode's client-side rate limiter was tried for
/// scans: after a burst of throttling it can hold a request back far longer than `--timeout`.)
pub fn retry_config(opts: &AwsOptions) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(opts.retry_attempts.max(1))
}

/// How a run's credentials and endpoints are set, as far as the transport depends on them.
struct Setup<'a> {
    profile: Option<&'a str>,
    endpoint_url: Option<&'a str>,
    /// The environment's variables (only `AWS_*` ones matter).
    vars: Vec<(String, String)>,
}

impl Setup<'_> {
    fn var(&self, k: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// Static credentials from the environment (`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`)
    /// and no `--profile`: what the default credential chain would use first anyway, before any
    /// profile, web identity, SSO or container source.
    fn static_env_credentials(&self) -> bool {
        let set = |k: &str| self.var(k).is_some_and(|v| !v.is_empty());
        self.profile.is_none() && set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY")
    }

    /// No request of the run can need TLS: static credentials from the environment (no STS, SSO
    /// or container credentials call), `--endpoint-url` is `http://`, and no `AWS_ENDPOINT_URL*`
    /// variable names an `https://` endpoint (moto, LocalStack).
    fn plain_http_only(&self) -> bool {
        let http = |u: &str| u.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("http://"));
        self.static_env_credentials()
            && self.endpoint_url.is_some_and(http)
            && self
                .vars
                .iter()
                .all(|(k, v)| !k.starts_with("AWS_ENDPOINT_URL") || v.is_empty() || http(v))
    }
}

/// AWS clients sharing one configuration and one tracer.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ecs: ecs::Client,
    base: Option<aws_config::SdkConfig>,
    logs: Arc<Mutex<BTreeMap<String, logs::Client>>>,
    /// Signed requests to the services read only a few operations of (verification, delivery).
    pub signed: Option<Signed>,
    pub tracer: Arc<Tracer>,
    pub region: String,
}

impl Clients {
    /// Builds clients the way the AWS CLI resolves credentials and region: the default chain,
    /// `--profile`, `--region` (else the task ARN's region, else the configured one) and
    /// `--endpoint-url` (the SDK also honours `AWS_ENDPOINT_URL*`).
    pub async fn new(opts: &AwsOptions, arn_region: Option<&str>) -> Result<Clients, SourceError> {
        // Plain HTTP only when no credential source can need HTTPS either (STS for web identity
        // or assume-role profiles, SSO, a container endpoint): static credentials from the
        // environment, no profile.
        let setup = Setup {
            profile: opts.profile.as_deref(),
            endpoint_url: opts.endpoint_url.as_deref(),
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
                .filter(|(k, _)| k.starts_with("AWS_"))
                .collect(),
        };
        let static_env = setup.static_env_credentials();
        let plain_http = setup.plain_http_only();
        let http = if plain_http {
            // Every endpoint is plain HTTP (moto, LocalStack): no TLS set-up, whose loading of
            // the system's CA roots is most of the time before the first call.
            aws_smithy_http_client::Builder::new().build_http()
        } else {
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        } else if static_env {
            // The default chain would take these first anyway; building the chain also builds
            // its web-identity provider's STS client (a few ms before the first call).
            loader =
                loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
        }
        if let Some(r) = opts.region.as_deref().or(arn_region) {
            loader = loader.region(Region::new(r.to_string()));
        }
        if let Some(e) = &opts.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        loader = loader
            .retry_config(retry_config(opts))
            .timeout_config(TimeoutConfig::builder().operation_timeout(opts.timeout).build());
        let base = loader.load().await;
        let region = base.region().map(|r| r.to_string()).ok_or_else(|| {
            SourceError::BadInput(
                "no AWS region: pass --region, use a full task ARN, or set AWS_REGION / a profile region".into(),
            )
        })?;
        let tracer = Arc::new(Tracer::new(opts.trace.as_deref()));
        let ecs_conf = ecs::config::Builder::from(&base)
            .interceptor(Guard(tracer.clone()))
            .build();
        let signed = Signed::new(&base, &region, tracer.clone(), opts.timeout, plain_http);
        Ok(Clients {
            ecs: ecs::Client::from_conf(ecs_conf),
            signed,
            base: Some(base),
            logs: Arc::new(Mutex::new(BTreeMap::new())),
            tracer,
            region,
        })
    }

    /// Clients around ready-made SDK clients (tests with mocked clients): `logs` serves every region.
    pub fn from_clients(ecs: ecs::Client, logs: logs::Client, region: &str, tracer: Arc<Tracer>) -> Clients {
        let map = BTreeMap::from([(String::new(), logs)]);
        Clients {
            ecs,
            signed: None,
            base: None,
            logs: Arc::new(Mutex::new(map)),
            tracer,
            region: region.to_string(),
        }
    }

    /// A CloudWatch Logs client for a region (awslogs may ship to another region than the task's).
    pub fn logs(&self, region: &str) -> logs::Client {
        let mut map = match self.logs.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let Some(base) = &self.base else {
            // Ready-made clients: one client for every region.
            return map
                .values()
                .next()
                .cloned()
                .expect("from_clients always stores one logs client");
        };
        map.entry(region.to_string())
            .or_insert_with(|| {
                let conf = logs::config::Builder::from(base)
                    .region(Region::new(region.to_string()))
                    .interceptor(Guard(self.tracer.clone()))
                    .build();
                logs::Client::from_conf(conf)
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::Setup;

    fn setup<'a>(profile: Option<&'a str>, endpoint: Option<&'a str>, vars: &[(&str, &str)]) -> Setup<'a> {
        Setup {
            profile,
            endpoint_url: endpoint,
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const KEYS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "s")];

    #[test]
    fn plain_http_only_when_no_request_can_need_tls() {
        let moto = Some("http://127.0.0.1:5000");
        assert!(setup(None, moto, &KEYS).plain_http_only());
        // Credentials that need STS, SSO or a container endpoint keep TLS.
        assert!(!setup(Some("dev"), moto, &KEYS).plain_http_only());
        assert!(!setup(
            None,
            moto,
            &[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "arn")]
        )
        .plain_http_only());
        assert!(!setup(None, moto, &KEYS[..1]).plain_http_only());
        // An https endpoint anywhere keeps TLS.
        let mut vars = KEYS.to_vec();
        vars.push(("AWS_ENDPOINT_URL_IAM", "https://iam.example"));
        assert!(!setup(None, moto, &vars).plain_http_only());
        assert!(!setup(None, Some("https://127.0.0.1:4566"), &KEYS).plain_http_only());
        assert!(!setup(None, None, &KEYS).plain_http_only());
        let mut vars = KEYS.to_vec();
        vars.push(("AWS_ENDPOINT_URL_IAM", "HTTP://127.0.0.1:5001"));
        assert!(setup(None, moto, &vars).plain_http_only());
    }
}
