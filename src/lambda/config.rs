//! The runner's configuration: read once per cold start from the function's environment and
//! checked whole before the first event, so a wrong value is one line reported to the Runtime
//! API's `/runtime/init/error` instead of a failure on every invocation. Nothing here does I/O:
//! where the webhook URL lives is decided here, reading it is [`super::deliver::read_webhook_url`].

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use strum::VariantArray;

use crate::rules::Category;

/// Which stops are worth a message: `failures` (default), `all`, or a comma-separated list of
/// verdict categories.
pub const ENV_NOTIFY_ON: &str = "ECSDOCTOR_NOTIFY_ON";
/// How long stops with one failure signature are folded after the first message (`15m`).
pub const ENV_DEDUP_WINDOW: &str = "ECSDOCTOR_DEDUP_WINDOW";
/// The webhook URL itself (tests and local runs; in AWS use one of the two below).
pub const ENV_WEBHOOK_URL: &str = "ECSDOCTOR_WEBHOOK_URL";
/// The name or ARN of an SSM parameter (SecureString) holding the webhook URL.
pub const ENV_WEBHOOK_PARAMETER: &str = "ECSDOCTOR_WEBHOOK_PARAMETER";
/// The name or ARN of a Secrets Manager secret whose SecretString is the webhook URL.
pub const ENV_WEBHOOK_SECRET: &str = "ECSDOCTOR_WEBHOOK_SECRET";
/// The webhook's payload format: `slack` (default), `teams` or `chime`.
pub const ENV_WEBHOOK_FORMAT: &str = "ECSDOCTOR_WEBHOOK_FORMAT";
/// An SNS topic ARN to publish every message to as well (or instead).
pub const ENV_SNS_TOPIC_ARN: &str = "ECSDOCTOR_SNS_TOPIC_ARN";
/// The longest message, in bytes of UTF-8 (default [`DEFAULT_MESSAGE_LIMIT`]).
pub const ENV_MESSAGE_LIMIT: &str = "ECSDOCTOR_MESSAGE_LIMIT";
/// `true` masks AWS account ids in messages (a channel shared outside the company).
pub const ENV_REDACT_ACCOUNTS: &str = "ECSDOCTOR_REDACT_ACCOUNTS";
/// `false` skips checking verdicts against the role's policies (default `true`).
pub const ENV_VERIFY: &str = "ECSDOCTOR_VERIFY";

/// The default message limit: under every target's own limit (Slack 40,000 characters of text,
/// Mattermost 16,383, Rocket.Chat 5,000 by default, Teams about 28 KB, Amazon Chime 4,096), so
/// one setting works wherever the webhook points.
pub const DEFAULT_MESSAGE_LIMIT: usize = 4_000;
/// The smallest limit accepted: the headline, the header and the fix must fit.
pub const MIN_MESSAGE_LIMIT: usize = 1_000;
/// The largest limit accepted (Slack's limit for `text`).
pub const MAX_MESSAGE_LIMIT: usize = 40_000;
/// The default folding window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A configuration error: one line, naming the variable, never quoting a webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Which stops are worth a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyOn {
    /// Every stop whose verdict is not a deliberate stop (category `user`) and whose stop code is
    /// not `UserInitiated`.
    Failures,
    /// Every STOPPED task.
    All,
    /// Stops whose verdict has one of these categories.
    Categories(BTreeSet<Category>),
}

impl FromStr for NotifyOn {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<NotifyOn, ConfigError> {
        let t = s.trim();
        match t {
            "" | "failures" => return Ok(NotifyOn::Failures),
            "all" => return Ok(NotifyOn::All),
            _ => {}
        }
        let mut set = BTreeSet::new();
        for part in t.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let c = Category::from_str(part).map_err(|_| {
                ConfigError(format!(
                    "{ENV_NOTIFY_ON}: `{}` is not a category; use `failures` or `all` alone, or a comma-separated list of: {}",
                    crate::sanitize::error_quote(part, 40),
                    Category::VARIANTS.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            set.insert(c);
        }
        if set.is_empty() {
            return Err(ConfigError(format!(
                "{ENV_NOTIFY_ON} names no category: use `failures`, `all` or e.g. `iam,network`"
            )));
        }
        Ok(NotifyOn::Categories(set))
    }
}

/// The webhook's payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"text": markdown}`: Slack incoming webhooks, Mattermost, Rocket.Chat.
    Slack,
    /// A Microsoft Teams Workflows ("When a Teams webhook request is received") message carrying
    /// one Adaptive Card whose TextBlock holds the markdown.
    Teams,
    /// `{"Content": "/md " + markdown}`: an Amazon Chime webhook.
    Chime,
}

impl FromStr for WebhookFormat {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<WebhookFormat, ConfigError> {
        match s.trim() {
            "" | "slack" | "mattermost" | "rocketchat" => Ok(WebhookFormat::Slack),
            "teams" => Ok(WebhookFormat::Teams),
            "chime" => Ok(WebhookFormat::Chime),
            other => Err(ConfigError(format!(
                "{ENV_WEBHOOK_FORMAT} `{}` is not one of slack, teams, chime",
                crate::sanitize::error_quote(other, 40)
            ))),
        }
    }
}

/// Where the webhook URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookSource {
    /// Given directly in [`ENV_WEBHOOK_URL`].
    Url(WebhookUrl),
    /// An SSM parameter (name or ARN), read with decryption.
    Parameter(String),
    /// A Secrets Manager secret (name or ARN).
    Secret(String),
}

impl WebhookSource {
    /// Where the URL came from, for messages (never the URL itself).
    pub fn origin(&self) -> String {
        match self {
            WebhookSource::Url(_) => ENV_WEBHOOK_URL.to_string(),
            WebhookSource::Parameter(p) => format!("SSM parameter {}", crate::sanitize::error_quote(p, 200)),
            WebhookSource::Secret(s) => format!("secret {}", crate::sanitize::error_quote(s, 200)),
        }
    }
}

/// A checked webhook URL. It is a credential (the path carries the token): it has no `Display`,
/// its `Debug` hides it, and no error message quotes it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(http::Uri);

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookUrl(<hidden>)")
    }
}

impl WebhookUrl {
    /// Checks a URL read from `origin`: it must be `https://`, or `http://` to a loopback host
    /// (127.0.0.1, localhost, ::1: a local receiver in tests).
    pub fn parse(raw: &str, origin: &str) -> Result<WebhookUrl, ConfigError> {
        let bad = |why: &str| ConfigError(format!("the webhook URL from {origin} {why}"));
        let uri: http::Uri = raw.trim().parse().map_err(|_| bad("is not a URL"))?;
        let host = uri.host().ok_or_else(|| bad("has no host"))?;
        match uri.scheme_str() {
            Some("https") => Ok(WebhookUrl(uri)),
            Some("http") if is_loopback(host) => Ok(WebhookUrl(uri)),
            _ => Err(bad(
                "is not an https:// URL (plain http:// is accepted only for 127.0.0.1, localhost and ::1)",
            )),
        }
    }

    /// The URI, for the request.
    pub fn uri(&self) -> &http::Uri {
        &self.0
    }

    /// The host alone, which is safe to name in a log line or an error.
    pub fn host(&self) -> &str {
        self.0.host().unwrap_or("?")
    }

    /// Removes the URL (and its path and query) from a text that might quote it.
    pub fn scrub(&self, text: &str) -> String {
        let full = self.0.to_string();
        let mut out = text.replace(&full, "<webhook>");
        if let Some(pq) = self.0.path_and_query().map(|p| p.as_str()).filter(|p| p.len() > 1) {
            out = out.replace(pq, "/<hidden>");
        }
        out
    }
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]")
}

/// The runner's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which stops are worth a message.
    pub notify_on: NotifyOn,
    /// The folding window; `None` posts every stop.
    pub window: Option<Duration>,
    /// Where the webhook URL comes from, if a webhook is configured.
    pub webhook: Option<WebhookSource>,
    /// The webhook's payload format.
    pub format: WebhookFormat,
    /// An SNS topic to publish to.
    pub sns_topic_arn: Option<String>,
    /// The longest message, in bytes.
    pub message_limit: usize,
    /// Mask account ids in messages.
    pub redact_accounts: bool,
    /// Check each verdict against the denied role's policies.
    pub verify: bool,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let notify_on = match var(ENV_NOTIFY_ON) {
            Some(v) => v.parse()?,
            None => NotifyOn::Failures,
        };
        let window = match var(ENV_DEDUP_WINDOW) {
            None => Some(DEFAULT_WINDOW),
            Some(v) if v == "0" || v == "off" => None,
            Some(v) => Some(crate::scan::parse_since(&v).map_err(|_| {
                ConfigError(format!(
                    "{ENV_DEDUP_WINDOW} `{}` is not a duration: use a number and a unit (s, m, h), e.g. 15m, or 0 to post every stop",
                    crate::sanitize::error_quote(&v, 40)
                ))
            })?),
        };
        let sources: Vec<WebhookSource> = [
            var(ENV_WEBHOOK_URL)
                .map(|u| WebhookUrl::parse(&u, ENV_WEBHOOK_URL).map(WebhookSource::Url))
                .transpose()?,
            var(ENV_WEBHOOK_PARAMETER).map(WebhookSource::Parameter),
            var(ENV_WEBHOOK_SECRET).map(WebhookSource::Secret),
        ]
        .into_iter()
        .flatten()
        .collect();
        if sources.len() > 1 {
            return Err(ConfigError(format!(
                "set only one of {ENV_WEBHOOK_URL}, {ENV_WEBHOOK_PARAMETER} and {ENV_WEBHOOK_SECRET}"
            )));
        }
        let webhook = sources.into_iter().next();
        let format = match var(ENV_WEBHOOK_FORMAT) {
            Some(v) => v.parse()?,
            None => WebhookFormat::Slack,
        };
        let sns_topic_arn = var(ENV_SNS_TOPIC_ARN);
        if let Some(t) = &sns_topic_arn {
            let ok = crate::arn::Arn::parse(t).is_some_and(|a| a.service == "sns" && !a.resource.is_empty());
            if !ok {
                return Err(ConfigError(format!(
                    "{ENV_SNS_TOPIC_ARN} `{}` is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
                    crate::sanitize::error_quote(t, 200)
                )));
            }
        }
        if webhook.is_none() && sns_topic_arn.is_none() {
            return Err(ConfigError(format!(
                "nowhere to post: set {ENV_WEBHOOK_PARAMETER}, {ENV_WEBHOOK_SECRET} or {ENV_WEBHOOK_URL}, and/or {ENV_SNS_TOPIC_ARN}"
            )));
        }
        let message_limit = match var(ENV_MESSAGE_LIMIT) {
            None => DEFAULT_MESSAGE_LIMIT,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (MIN_MESSAGE_LIMIT..=MAX_MESSAGE_LIMIT).contains(n))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{ENV_MESSAGE_LIMIT} `{}` is not a number of bytes from {MIN_MESSAGE_LIMIT} to {MAX_MESSAGE_LIMIT}",
                        crate::sanitize::error_quote(&v, 40)
                    ))
                })?,
        };
        let boolean = |name: &str, default: bool| match var(name).as_deref() {
            None => Ok(default),
            Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(v) => Err(ConfigError(format!(
                "{name} `{}` is not true or false",
                crate::sanitize::error_quote(v, 40)
            ))),
        };
        let redact_accounts = boolean(ENV_REDACT_ACCOUNTS, false)?;
        let verify = boolean(ENV_VERIFY, true)?;
        Ok(Config {
            notify_on,
            window,
            webhook,
            format,
            sns_topic_arn,
            message_limit,
            redact_accounts,
            verify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const HOOK: (&str, &str) = (
        ENV_WEBHOOK_URL,
        "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX",
    );

    #[test]
    fn defaults_post_failures_with_a_fifteen_minute_window() {
        let c = config(&[HOOK]).expect("valid");
        assert_eq!(c.notify_on, NotifyOn::Failures);
        assert_eq!(c.window, Some(Duration::from_secs(900)));
        assert_eq!(c.format, WebhookFormat::Slack);
        assert_eq!(c.message_limit, DEFAULT_MESSAGE_LIMIT);
        assert!(matches!(c.webhook, Some(WebhookSource::Url(_))));
    }

    #[test]
    fn notify_on_takes_keywords_and_category_lists() {
        assert_eq!("all".parse::<NotifyOn>(), Ok(NotifyOn::All));
        assert_eq!(
            "iam, network".parse::<NotifyOn>(),
            Ok(NotifyOn::Categories(BTreeSet::from([Category::Iam, Category::Network])))
        );
        let e = config(&[HOOK, (ENV_NOTIFY_ON, "iam,oops")]).expect_err("bad category");
        assert!(e.0.starts_with("ECSDOCTOR_NOTIFY_ON: `oops` is not a category"), "{e}");
        assert!(e.0.contains("iam, network"), "{e}");
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn window_is_a_duration_or_off() {
        assert_eq!(
            config(&[HOOK, (ENV_DEDUP_WINDOW, "5m")]).expect("ok").window,
            Some(Duration::from_secs(300))
        );
        assert_eq!(config(&[HOOK, (ENV_DEDUP_WINDOW, "0")]).expect("ok").window, None);
        let e = config(&[HOOK, (ENV_DEDUP_WINDOW, "soon")]).expect_err("bad");
        assert!(e.0.contains(ENV_DEDUP_WINDOW), "{e}");
    }

    #[test]
    fn a_plain_http_webhook_is_refused_unless_loopback_and_never_quoted() {
        let e = config(&[(ENV_WEBHOOK_URL, "http://hooks.example.com/services/T0/B0/SECRETPATH")]).expect_err("http");
        assert!(e.0.contains("https://"), "{e}");
        assert!(!e.0.contains("SECRETPATH") && !e.0.contains("hooks.example.com"), "{e}");
        for ok in [
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "http://[::1]:9/x",
            "https://example.com/x",
        ] {
            assert!(WebhookUrl::parse(ok, "test").is_ok(), "{ok}");
        }
        assert!(WebhookUrl::parse("ftp://127.0.0.1/x", "test").is_err());
        assert!(WebhookUrl::parse("not a url", "test").is_err());
        let u = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/SECRETPATH", "t").expect("ok");
        assert_eq!(format!("{u:?}"), "WebhookUrl(<hidden>)");
        assert_eq!(u.host(), "hooks.slack.com");
        assert!(!u
            .scrub("error sending to https://hooks.slack.com/services/T0/B0/SECRETPATH: x")
            .contains("SECRET"));
    }

    #[test]
    fn one_webhook_source_and_somewhere_to_post() {
        let e = config(&[HOOK, (ENV_WEBHOOK_PARAMETER, "/chat/hook")]).expect_err("two");
        assert!(e.0.contains("only one"), "{e}");
        let e = config(&[]).expect_err("none");
        assert!(e.0.contains("nowhere to post"), "{e}");
        let c = config(&[(ENV_SNS_TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:ecs-stops")]).expect("sns only");
        assert!(c.webhook.is_none());
        assert!(config(&[(ENV_SNS_TOPIC_ARN, "ecs-stops")]).is_err());
    }

    #[test]
    fn format_and_limit_are_checked() {
        assert_eq!(
            config(&[HOOK, (ENV_WEBHOOK_FORMAT, "teams")]).expect("ok").format,
            WebhookFormat::Teams
        );
        assert!(config(&[HOOK, (ENV_WEBHOOK_FORMAT, "discord")]).is_err());
        assert!(config(&[HOOK, (ENV_MESSAGE_LIMIT, "100")]).is_err());
        assert_eq!(
            config(&[HOOK, (ENV_MESSAGE_LIMIT, "12000")]).expect("ok").message_limit,
            12_000
        );
        assert!(config(&[HOOK, (ENV_REDACT_ACCOUNTS, "yes")]).is_err());
    }
}
