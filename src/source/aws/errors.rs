//! SDK errors mapped to one-line [`SourceError`]s that say what to do: ecsdoctor's own call
//! denied (naming the action), credentials missing or expired, the endpoint unreachable,
//! throttling, a missing cluster. Causes are printed from their Display texts, never a Debug dump.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::AwsOptions;
use crate::error::SourceError;

/// An error and its causes as one line of their Display texts (never a Debug dump), each cause
/// once: `dispatch failure: io error: tcp connect error: Connection refused (os error 111)`.
pub fn one_line<E: std::error::Error + 'static>(e: &E) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// Maps an SDK error to a one-line error that says what to do.
pub fn map_err<E>(
    action: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    cluster: &str,
    region: &str,
    opts: &AwsOptions,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().unwrap_or_default().to_string();
    let message = e.message().unwrap_or_default().to_string();
    let login = match &opts.profile {
        Some(p) => {
            format!("run `aws sso login --profile {p}` or refresh the profile's credentials")
        }
        None => "refresh your credentials (e.g. `aws sso login --profile NAME`, then --profile NAME)".to_string(),
    };
    match code.as_str() {
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" | "UnauthorizedException" => {
            return SourceError::AccessDenied {
                action: action.into(),
                message: first_line(&message),
            };
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            return SourceError::Credentials(format!("AWS credentials have expired ({code}): {login}"));
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "SignatureDoesNotMatch" => {
            return SourceError::Credentials(format!(
                "AWS rejected the credentials ({code}: {}): {login}",
                first_line(&message)
            ));
        }
        "ClusterNotFoundException" => {
            return SourceError::ClusterNotFound {
                cluster: cluster.into(),
                region: region.into(),
            };
        }
        c if is_throttling(c) => {
            return SourceError::Throttled {
                action: action.into(),
                message: format!("{code}: {}", first_line(&message)),
            };
        }
        _ => {}
    }
    let chain = one_line(&e);
    match &e {
        SdkError::DispatchFailure(d) => {
            let lower = chain.to_ascii_lowercase();
            if lower.contains("credentials")
                && (lower.contains("not loaded") || lower.contains("no credentials") || lower.contains("providers"))
            {
                return SourceError::Credentials(format!(
                    "no AWS credentials found (environment, profile, SSO, web identity, container or instance metadata): {login}; or pass --profile"
                ));
            }
            if lower.contains("expired") || lower.contains("sso") && lower.contains("token") {
                return SourceError::Credentials(format!(
                    "AWS credentials could not be refreshed ({}): {login}",
                    shorten(&chain)
                ));
            }
            if lower.contains("signing region") || lower.contains("region") && lower.contains("missing") {
                return SourceError::BadInput(
                    "no AWS region: pass --region, use a full task ARN, or set AWS_REGION".into(),
                );
            }
            let what = if d.is_timeout() {
                "timed out"
            } else if d.is_io() {
                "connection failed"
            } else {
                "request failed"
            };
            SourceError::Unreachable(format!(
                "cannot reach AWS for {action} ({what}{}): {}; check the network, proxy and --endpoint-url",
                opts.endpoint_url
                    .as_deref()
                    .map(|u| format!(" at {u}"))
                    .unwrap_or_default(),
                shorten(&chain)
            ))
        }
        SdkError::TimeoutError(_) => SourceError::Unreachable(format!(
            "AWS did not answer {action} in time; check the network and --endpoint-url"
        )),
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if status == 403 {
                return SourceError::AccessDenied {
                    action: action.into(),
                    message: "HTTP 403 Forbidden".into(),
                };
            }
            SourceError::Other(format!(
                "{action}: unexpected HTTP {status} answer: {}",
                shorten(&chain)
            ))
        }
        _ => SourceError::Other(format!(
            "{action} failed: {}",
            if code.is_empty() {
                shorten(&chain)
            } else {
                format!("{code}: {}", first_line(&message))
            }
        )),
    }
}

/// Error codes the SDK treats as throttling.
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "SlowDown"
            | "LimitExceededException"
    )
}

fn first_line(s: &str) -> String {
    shorten(s.lines().next().unwrap_or(""))
}

fn shorten(s: &str) -> String {
    crate::sanitize::error_quote(s, 300)
}
