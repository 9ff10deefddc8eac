//! Delivery: the webhook URL read once per cold start (an SSM SecureString or a Secrets Manager
//! secret, through the signed client's runner reads), the webhook POST on the SDK's own HTTP
//! connector (`aws-smithy-http-client`, the one signed.rs uses: no second HTTP stack), and SNS
//! Publish through [`Signed::deliver`], the runner's only write.
//!
//! A webhook that answers 5xx or 429, or does not answer, is tried again with exponential backoff
//! while the invocation's deadline leaves room; a 4xx is a configuration error and is not retried.
//! The URL is a credential: no error or log line quotes it (only its host).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use super::config::{ConfigError, WebhookFormat, WebhookSource, WebhookUrl};
use crate::source::aws::signed::{Service, Signed, SignedError};

/// The first pause between two webhook attempts; it doubles each time.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest one webhook attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time kept back before the deadline to report the outcome to the Runtime API.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1_500);

/// Why a delivery failed: one line, with no URL in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The webhook refused the request (4xx other than 429): its URL or format is wrong.
    #[error("the webhook at {host} answered HTTP {status}{detail}: check the webhook URL and ECSDOCTOR_WEBHOOK_FORMAT (not retried)")]
    Rejected {
        /// The webhook's host.
        host: String,
        /// The HTTP status.
        status: u16,
        /// A short, cleaned quote of the answer (`: no_service`), or empty.
        detail: String,
    },
    /// The webhook failed (5xx, 429, no answer) on every attempt the deadline allowed.
    #[error("the webhook at {host} failed {attempts} time(s), last: {last}")]
    Unavailable {
        /// The webhook's host.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// SNS Publish failed (after the signed client's own retries).
    #[error("sns:Publish to {topic} failed: {reason}")]
    Sns {
        /// The topic ARN.
        topic: String,
        /// The service's code and message, or the transport error.
        reason: String,
    },
}

/// Reads the webhook URL from where the configuration says, once per cold start.
pub async fn read_webhook_url(source: &WebhookSource, signed: Option<&Signed>) -> Result<WebhookUrl, ConfigError> {
    let origin = source.origin();
    let (service, operation, body, pointer) = match source {
        WebhookSource::Url(u) => return Ok(u.clone()),
        WebhookSource::Parameter(name) => (
            Service::Ssm,
            "GetParameter",
            serde_json::json!({ "Name": name, "WithDecryption": true }),
            "/Parameter/Value",
        ),
        WebhookSource::Secret(id) => (
            Service::SecretsManager,
            "GetSecretValue",
            serde_json::json!({ "SecretId": id }),
            "/SecretString",
        ),
    };
    let Some(signed) = signed else {
        return Err(ConfigError(format!(
            "cannot read the webhook URL from {origin}: no AWS credentials"
        )));
    };
    let action = format!("{}:{operation}", service.name());
    let answer = signed.runner_read(service, operation, body).await.map_err(|e| {
        let hint = if e.is_access_denied() {
            format!(" (the function's role needs {action} on it)")
        } else {
            String::new()
        };
        ConfigError(format!(
            "cannot read the webhook URL from {origin}: {}{hint}",
            crate::sanitize::error_quote(&e.to_string(), 300)
        ))
    })?;
    let value = answer
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .ok_or_else(|| ConfigError(format!("{origin} holds no string value")))?;
    WebhookUrl::parse(value, &origin)
}

/// A webhook to post messages to.
#[derive(Clone)]
pub struct Webhook {
    url: WebhookUrl,
    format: WebhookFormat,
    connector: Arc<dyn HttpConnector>,
    /// The first pause between attempts (shorter in tests).
    backoff: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.url.host())
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook on the SDK's HTTP connector (rustls with ring; plain HTTP for a loopback URL).
    pub fn new(url: WebhookUrl, format: WebhookFormat) -> Webhook {
        let connector = aws_smithy_http_client::Connector::builder()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build();
        Webhook {
            url,
            format,
            connector: Arc::new(connector),
            backoff: FIRST_BACKOFF,
        }
    }

    /// The webhook's host (safe to log).
    pub fn host(&self) -> &str {
        self.url.host()
    }

    /// Posts `text`, trying again on 5xx, 429 and no answer until `deadline` (less a margin).
    /// Returns the number of attempts.
    pub async fn post(&self, text: &str, deadline: SystemTime) -> Result<u32, DeliveryError> {
        let body = super::message::payload(self.format, text).to_string();
        let host = self.url.host().to_string();
        let mut delay = self.backoff;
        let mut attempts = 0u32;
        loop {
            let left = time_left(deadline);
            if left.is_zero() {
                return Err(DeliveryError::Unavailable {
                    host,
                    attempts,
                    last: if attempts == 0 {
                        "no time left before the invocation's deadline".into()
                    } else {
                        "no time left for another attempt".into()
                    },
                });
            }
            attempts += 1;
            let last = match tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), self.send(&body)).await {
                Ok(Ok((status, _))) if (200..300).contains(&status) => return Ok(attempts),
                Ok(Ok((status, answer))) if (400..500).contains(&status) && status != 429 => {
                    let detail = self.url.scrub(&crate::sanitize::error_quote(answer.trim(), 80));
                    return Err(DeliveryError::Rejected {
                        host,
                        status,
                        detail: if detail.is_empty() {
                            String::new()
                        } else {
                            format!(": {detail}")
                        },
                    });
                }
                Ok(Ok((status, _))) => format!("HTTP {status}"),
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {} s", left.min(ATTEMPT_TIMEOUT).as_secs()),
            };
            // Another attempt only if the pause and a reasonable attempt still fit.
            if time_left(deadline) <= delay + Duration::from_millis(200) {
                return Err(DeliveryError::Unavailable { host, attempts, last });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
        }
    }

    async fn send(&self, body: &str) -> Result<(u16, String), String> {
        let request = http::Request::builder()
            .method("POST")
            .uri(self.url.uri().clone())
            .header("content-type", "application/json")
            .header("user-agent", concat!("ecsdoctor/", env!("CARGO_PKG_VERSION")))
            .body(SdkBody::from(body.to_string()))
            .map_err(|_| "the request could not be built".to_string())?;
        let request = aws_smithy_runtime_api::http::Request::try_from(request)
            .map_err(|_| "the request could not be built".to_string())?;
        let response = self.connector.call(request).await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_io() {
                "connection failed"
            } else {
                "request failed"
            };
            // The connector's text may quote the URL: scrub it, then make it one safe line.
            format!(
                "{kind}: {}",
                self.url.scrub(&crate::sanitize::error_quote(&error_chain(&e), 200))
            )
        })?;
        let status = response.status().as_u16();
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map(|b| b.into_bytes())
            .unwrap_or_default();
        let answer = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).into_owned();
        Ok((status, answer))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Time left before `deadline`, less [`DEADLINE_MARGIN`].
pub fn time_left(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(DEADLINE_MARGIN)
}

/// Publishes a message to an SNS topic (the signed client retries throttling and 5xx itself).
pub async fn publish(signed: &Signed, topic: &str, subject: &str, text: &str) -> Result<(), DeliveryError> {
    signed
        .deliver(topic, subject, text)
        .await
        .map_err(|e: SignedError| DeliveryError::Sns {
            topic: topic.to_string(),
            reason: crate::sanitize::error_quote(&e.to_string(), 300),
        })
}
