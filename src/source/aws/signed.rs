//! Signed requests to the AWS services ecsdoctor reads only a handful of operations from (IAM,
//! KMS, ECR, S3, Secrets Manager, SSM; SNS for the Lambda runner's delivery), on the SDK's own
//! pieces: credentials from the same provider chain, SigV4 from `aws-sigv4`, the same HTTP
//! connector (`aws-smithy-http-client`, rustls with ring), the retry attempts of the SDK's
//! `RetryConfig`. A full SDK crate per service would cost ~40 s of debug and ~90 s of release build
//! each (TESTING.md, section A) for one to six operations apiece.
//!
//! Every request passes the same read-only allow-list as the SDK clients ([`super::guard`]) and is
//! recorded in the API trace; [`Signed::deliver`] is the one write (SNS Publish), for the Lambda
//! runner only. Three protocols cover the operations: JSON 1.1 (KMS, ECR, Secrets Manager, SSM),
//! Query with XML answers (IAM, SNS), and S3's REST `GET /?policy`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use super::guard::{Tracer, ALLOWED_OPERATIONS, DELIVERY_OPERATIONS};
use crate::arn::Arn;
use crate::error::SourceError;

/// A service reached with signed requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Kms,
    Ecr,
    S3,
    SecretsManager,
    Ssm,
    Sns,
}

impl Service {
    /// The endpoint prefix (`api.ecr`; the others are their signing name).
    fn prefix(self) -> &'static str {
        match self {
            Service::Iam => "iam",
            Service::Kms => "kms",
            Service::Ecr => "api.ecr",
            Service::S3 => "s3",
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::Sns => "sns",
        }
    }

    /// The SigV4 signing name, which the API trace and errors use too.
    pub fn name(self) -> &'static str {
        match self {
            Service::Ecr => "ecr",
            s => s.prefix(),
        }
    }

    /// `AWS_ENDPOINT_URL_<ID>`: the SDKs' service-specific endpoint variable.
    fn endpoint_env(self) -> &'static str {
        match self {
            Service::Iam => "AWS_ENDPOINT_URL_IAM",
            Service::Kms => "AWS_ENDPOINT_URL_KMS",
            Service::Ecr => "AWS_ENDPOINT_URL_ECR",
            Service::S3 => "AWS_ENDPOINT_URL_S3",
            Service::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::Sns => "AWS_ENDPOINT_URL_SNS",
        }
    }

    /// The JSON 1.1 target prefix, for the services that speak it.
    fn json_target(self) -> Option<&'static str> {
        match self {
            Service::Kms => Some("TrentService"),
            Service::Ecr => Some("AmazonEC2ContainerRegistry_V20150921"),
            Service::SecretsManager => Some("secretsmanager"),
            Service::Ssm => Some("AmazonSSM"),
            _ => None,
        }
    }

    /// The Query protocol API version, for the services that speak it.
    fn query_version(self) -> Option<&'static str> {
        match self {
            Service::Iam => Some("2010-05-08"),
            Service::Sns => Some("2010-03-31"),
            _ => None,
        }
    }
}

/// An error an AWS service answered: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Why a signed request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    /// The service answered with an error (access denied, not found, throttled after retries).
    #[error("{}: {}", .0.code, .0.message)]
    Service(ServiceError),
    /// Not sent or not answered: credentials, network, timeout, a refused operation.
    #[error("{0}")]
    Transport(SourceError),
}

impl SignedError {
    /// The service's error code, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            SignedError::Service(e) => Some(&e.code),
            SignedError::Transport(_) => None,
        }
    }

    /// ecsdoctor's own call was denied.
    pub fn is_access_denied(&self) -> bool {
        self.code().is_some_and(|c| {
            matches!(
                c,
                "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError"
            ) || c.ends_with("AccessDenied")
        })
    }
}

/// Signed-request client of one run.
#[derive(Clone)]
pub struct Signed {
    credentials: SharedCredentialsProvider,
    region: String,
    partition: String,
    endpoint: Option<String>,
    /// Built on first use (a run that verifies nothing never loads the TLS roots for it), then
    /// shared by every clone.
    connector: Arc<std::sync::OnceLock<Arc<dyn HttpConnector>>>,
    /// Every endpoint is plain HTTP: no TLS (see `clients::plain_http_only`).
    plain_http: bool,
    tracer: Arc<Tracer>,
    attempts: u32,
    initial_backoff: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Signed {
    /// A client from the run's SDK configuration: its credentials, region, endpoint override and
    /// retry configuration; `None` when the configuration has no credentials provider.
    pub fn new(
        base: &SdkConfig,
        region: &str,
        tracer: Arc<Tracer>,
        timeout: Duration,
        plain_http: bool,
    ) -> Option<Signed> {
        let retry = base
            .retry_config()
            .cloned()
            .unwrap_or_else(aws_config::retry::RetryConfig::standard);
        Some(Signed {
            credentials: base.credentials_provider()?,
            region: region.to_string(),
            partition: partition_of(region).to_string(),
            endpoint: base.endpoint_url().map(str::to_string),
            connector: Arc::default(),
            plain_http,
            tracer,
            attempts: retry.max_attempts().max(1),
            initial_backoff: retry.initial_backoff(),
            timeout,
        })
    }

    /// The HTTP connector, built on first use.
    fn connector(&self) -> &Arc<dyn HttpConnector> {
        self.connector.get_or_init(|| {
            let builder = aws_smithy_http_client::Connector::builder();
            if self.plain_http {
                Arc::new(builder.build_http())
            } else {
                Arc::new(
                    builder
                        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                        ))
                        .build(),
                )
            }
        })
    }

    /// The same client for another region (a secret, key or repository outside the task's).
    pub fn in_region(&self, region: &str) -> Signed {
        let mut s = self.clone();
        if !region.is_empty() && region != self.region {
            s.region = region.to_string();
            s.partition = partition_of(region).to_string();
        }
        s
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The URL and signing region of a service.
    fn endpoint_of(&self, service: Service) -> (String, String) {
        let custom = std::env::var(service.endpoint_env())
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.endpoint.clone());
        let global = service == Service::Iam;
        let signing_region = match (global, self.partition.as_str()) {
            (true, "aws-cn") => "cn-north-1".to_string(),
            (true, "aws-us-gov") => "us-gov-west-1".to_string(),
            (true, _) => "us-east-1".to_string(),
            (false, _) => self.region.clone(),
        };
        if let Some(url) = custom {
            return (url.trim_end_matches('/').to_string(), signing_region);
        }
        let suffix = if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let host = match (global, self.partition.as_str()) {
            (true, "aws") => format!("iam.{suffix}"),
            (true, "aws-us-gov") => format!("iam.us-gov.{suffix}"),
            _ => format!("{}.{}.{suffix}", service.prefix(), self.region),
        };
        (format!("https://{host}"), signing_region)
    }

    /// A read-only JSON 1.1 call (KMS, ECR, Secrets Manager, SSM).
    pub async fn json(
        &self,
        service: Service,
        operation: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, SignedError> {
        self.json_call(service, operation, body, false).await
    }

    /// The Lambda runner's reads of its own configuration (`ssm:GetParameter` of the webhook's
    /// SecureString, `secretsmanager:GetSecretValue`): allowed for the runner only.
    pub async fn runner_read(
        &self,
        service: Service,
        operation: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, SignedError> {
        self.json_call(service, operation, body, true).await
    }

    async fn json_call(
        &self,
        service: Service,
        operation: &str,
        body: serde_json::Value,
        delivery: bool,
    ) -> Result<serde_json::Value, SignedError> {
        let target = service
            .json_target()
            .ok_or_else(|| transport(format!("{} does not speak JSON 1.1", service.name())))?;
        let (url, region) = self.endpoint_of(service);
        let request = Prepared {
            method: "POST",
            url: format!("{url}/"),
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".to_string()),
                ("x-amz-target", format!("{target}.{operation}")),
            ],
            body: body.to_string().into_bytes(),
            region,
        };
        let (status, text) = self.send(service, operation, &request, delivery).await?;
        if !(200..300).contains(&status) {
            return Err(SignedError::Service(json_error(status, &text)));
        }
        serde_json::from_str(&text)
            .map_err(|e| transport(format!("{} {operation}: answer is not JSON ({e})", service.name())))
    }

    /// A read-only Query call with an XML answer (IAM).
    pub async fn query(
        &self,
        service: Service,
        operation: &str,
        params: &[(&str, &str)],
    ) -> Result<String, SignedError> {
        self.query_call(service, operation, params, false).await
    }

    /// The Lambda runner's one write: SNS Publish of a message to a topic.
    pub async fn deliver(&self, topic_arn: &str, subject: &str, message: &str) -> Result<(), SignedError> {
        let params = [("TopicArn", topic_arn), ("Subject", subject), ("Message", message)];
        self.query_call(Service::Sns, "Publish", &params, true)
            .await
            .map(|_| ())
    }

    async fn query_call(
        &self,
        service: Service,
        operation: &str,
        params: &[(&str, &str)],
        delivery: bool,
    ) -> Result<String, SignedError> {
        let version = service
            .query_version()
            .ok_or_else(|| transport(format!("{} does not speak Query", service.name())))?;
        let mut form = form_urlencoded(&[("Action", operation), ("Version", version)]);
        let rest = form_urlencoded(params);
        if !rest.is_empty() {
            form.push('&');
            form.push_str(&rest);
        }
        let (url, region) = self.endpoint_of(service);
        let request = Prepared {
            method: "POST",
            url: format!("{url}/"),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            )],
            body: form.into_bytes(),
            region,
        };
        let (status, text) = self.send(service, operation, &request, delivery).await?;
        if !(200..300).contains(&status) {
            return Err(SignedError::Service(xml_error(status, &text)));
        }
        Ok(text)
    }

    /// S3 `GetBucketPolicy`: the bucket's policy document (the answer body is the JSON itself).
    pub async fn bucket_policy(&self, bucket: &str) -> Result<String, SignedError> {
        let (url, region) = self.endpoint_of(Service::S3);
        // Path-style against an emulator or a custom endpoint, virtual-hosted against AWS.
        let url = if self.endpoint.is_some() || std::env::var_os(Service::S3.endpoint_env()).is_some() {
            format!("{url}/{}?policy", percent_path(bucket))
        } else {
            match url.strip_prefix("https://") {
                Some(host) => format!("https://{}.{host}/?policy", percent_path(bucket)),
                None => format!("{url}/{}?policy", percent_path(bucket)),
            }
        };
        let request = Prepared {
            method: "GET",
            url,
            headers: Vec::new(),
            body: Vec::new(),
            region,
        };
        let (status, text) = self.send(Service::S3, "GetBucketPolicy", &request, false).await?;
        if !(200..300).contains(&status) {
            return Err(SignedError::Service(xml_error(status, &text)));
        }
        Ok(text)
    }

    /// Signs and sends, retrying throttling and server errors with exponential backoff and jitter
    /// up to the configured attempts; the whole call is bounded by the operation timeout.
    async fn send(
        &self,
        service: Service,
        operation: &str,
        req: &Prepared,
        delivery: bool,
    ) -> Result<(u16, String), SignedError> {
        let allowed = if delivery {
            DELIVERY_OPERATIONS
        } else {
            ALLOWED_OPERATIONS
        };
        self.tracer
            .admit(service.name(), operation, allowed)
            .map_err(transport)?;
        let work = async {
            let mut delay = self.initial_backoff;
            let mut attempt = 1;
            loop {
                let (status, text) = self.send_once(service, req).await?;
                let retryable = status >= 500 || status == 429 || is_throttling_body(&text);
                if !retryable || attempt >= self.attempts {
                    return Ok((status, text));
                }
                attempt += 1;
                let jitter = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| u64::from(d.subsec_nanos()) % 1000)
                    .unwrap_or(0);
                tokio::time::sleep(delay + delay * jitter as u32 / 1000).await;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(transport(format!(
                "AWS did not answer {}:{operation} in time",
                service.name()
            ))),
        }
    }

    async fn send_once(&self, service: Service, req: &Prepared) -> Result<(u16, String), SignedError> {
        let creds =
            self.credentials.provide_credentials().await.map_err(|e| {
                SignedError::Transport(SourceError::Credentials(format!("no AWS credentials found: {e}")))
            })?;
        let identity: Identity = creds.into();
        let mut settings = SigningSettings::default();
        if service == Service::S3 {
            settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&req.region)
            .name(service.name())
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| transport(format!("cannot sign the request: {e}")))?
            .into();
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let signable = SignableRequest::new(
            req.method,
            req.url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&req.body),
        )
        .map_err(|e| transport(format!("cannot sign the request: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| transport(format!("cannot sign the request: {e}")))?
            .into_parts();
        let mut builder = http::Request::builder().method(req.method).uri(&req.url);
        for (k, v) in &req.headers {
            builder = builder.header(*k, v);
        }
        let mut request = builder
            .body(SdkBody::from(req.body.clone()))
            .map_err(|e| transport(format!("bad request: {e}")))?;
        instructions.apply_to_request_http1x(&mut request);
        let request = aws_smithy_runtime_api::http::Request::try_from(request)
            .map_err(|e| transport(format!("bad request: {e}")))?;
        let response = self.connector().call(request).await.map_err(|e| {
            SignedError::Transport(SourceError::Unreachable(format!(
                "cannot reach AWS for {} ({}): {}",
                service.name(),
                req.url,
                crate::sanitize::error_quote(&e.to_string(), 200)
            )))
        })?;
        let status = response.status().as_u16();
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if declared > MAX_ANSWER_BYTES {
            return Err(transport(format!(
                "{} answered {declared} bytes, more than the {MAX_ANSWER_BYTES} ecsdoctor reads",
                service.name()
            )));
        }
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| transport(format!("cannot read the answer: {e}")))?
            .into_bytes();
        if bytes.len() as u64 > MAX_ANSWER_BYTES {
            return Err(transport(format!(
                "{} answered more than the {MAX_ANSWER_BYTES} bytes ecsdoctor reads",
                service.name()
            )));
        }
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// The largest answer read: IAM documents are at most a few KB, a key policy 32 KB.
const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;

/// A request before signing.
struct Prepared {
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    region: String,
}

fn transport(message: String) -> SignedError {
    SignedError::Transport(SourceError::Other(message))
}

/// The partition of a region.
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn is_throttling_body(text: &str) -> bool {
    [
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    ]
    .iter()
    .any(|c| {
        text.contains(&format!("\"{c}\""))
            || text.contains(&format!("<Code>{c}</Code>"))
            || text.contains(&format!("#{c}\""))
    })
}

/// A JSON 1.1 error: `{"__type": "[namespace#]Code", "message": "..."}`.
fn json_error(status: u16, text: &str) -> ServiceError {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let code = v["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = v["message"]
        .as_str()
        .or_else(|| v["Message"].as_str())
        .unwrap_or_default()
        .to_string();
    ServiceError { status, code, message }
}

/// A Query or REST-XML error: `<Error><Code>..</Code><Message>..</Message></Error>`.
fn xml_error(status: u16, text: &str) -> ServiceError {
    let first = |name: &str| xml_values(text, name).into_iter().next();
    ServiceError {
        status,
        code: first("Code").unwrap_or_else(|| format!("HTTP {status}")),
        message: first("Message").unwrap_or_default(),
    }
}

/// The text of every element called `name`, in document order (entities decoded). Malformed XML
/// yields what was read before the fault.
pub fn xml_values(xml: &str, name: &str) -> Vec<String> {
    use aws_smithy_xml::decode::{try_data, Document};
    let mut doc = Document::new(xml);
    let mut out = Vec::new();
    while let Some(el) = doc.next_start_element() {
        if el.local() == name {
            let mut scoped = doc.scoped_to(el);
            match try_data(&mut scoped) {
                Ok(text) => out.push(text.into_owned()),
                Err(_) => break,
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` pairs.
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // The unreserved set of RFC 3986 stays as it is; everything else is escaped.
    const SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, SET), utf8_percent_encode(v, SET)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A bucket name escaped for a URL path.
fn percent_path(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    utf8_percent_encode(s, SET).to_string()
}

/// The bucket of an S3 ARN (`arn:aws:s3:::bucket/key` -> `bucket`).
pub fn bucket_of(resource: &str) -> Option<String> {
    let a = Arn::parse(resource)?;
    (a.service == "s3").then(|| a.resource.split('/').next().unwrap_or(a.resource).to_string())
}

/// Pairs of an XML list: for every element `outer`, the texts of its `fields` children.
pub fn xml_records(xml: &str, outer: &str, fields: &[&str]) -> Vec<BTreeMap<String, String>> {
    // Responses are small and flat: split on the outer element and read each piece.
    let open = format!("<{outer}>");
    let close = format!("</{outer}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|piece| piece.split(&close).next())
        .map(|inner| {
            fields
                .iter()
                .filter_map(|f| {
                    xml_values(&format!("<r>{inner}</r>"), f)
                        .into_iter()
                        .next()
                        .map(|v| (f.to_string(), v))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_both_protocols() {
        let e = json_error(
            400,
            r#"{"__type":"com.amazonaws.kms#AccessDeniedException","message":"User: x is not authorized"}"#,
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("AccessDeniedException", "User: x is not authorized")
        );
        let e = xml_error(
            404,
            "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name x cannot be found.</Message></Error></ErrorResponse>",
        );
        assert_eq!(e.code, "NoSuchEntity");
        assert!(e.message.contains("cannot be found"));
        assert!(SignedError::Service(ServiceError {
            status: 403,
            code: "AccessDenied".into(),
            message: String::new()
        })
        .is_access_denied());
    }

    #[test]
    fn xml_values_decode_entities_and_keep_order() {
        let xml = "<R><PolicyNames><member>a&amp;b</member><member>c</member></PolicyNames></R>";
        assert_eq!(xml_values(xml, "member"), ["a&b", "c"]);
        let recs = xml_records(
            "<AttachedPolicies><member><PolicyName>P1</PolicyName><PolicyArn>arn:1</PolicyArn></member><member><PolicyName>P2</PolicyName><PolicyArn>arn:2</PolicyArn></member></AttachedPolicies>",
            "member",
            &["PolicyName", "PolicyArn"],
        );
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1]["PolicyArn"], "arn:2");
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            form_urlencoded(&[("RoleName", "a b/c"), ("Message", "x&y=z")]),
            "RoleName=a%20b%2Fc&Message=x%26y%3Dz"
        );
        assert_eq!(bucket_of("arn:aws:s3:::acme/2026/x.csv").as_deref(), Some("acme"));
        assert_eq!(bucket_of("arn:aws:sqs:us-east-1:1:q"), None);
    }
}
