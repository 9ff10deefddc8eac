//! The secret patterns: what a credential looks like in a log line (AWS keys and session tokens,
//! bearer and basic credentials, URL passwords, sensitive `key=value` pairs, PEM private keys,
//! JWTs, vendor tokens) and 12-digit account ids, each with the check that tells a secret from a
//! look-alike and, for long values, the scanner that finds where the value ends.

use std::sync::LazyLock;

use regex::Regex;

use super::redact::{Check, Redactor, Rule, Secret};
use super::{ACCOUNT_MASK, REDACTED};

// Ends of open-ended secrets. A secret that starts with the marker is the marker, so redacted
// output is recognised (and skipped) when it is redacted again. Values other than PEM bodies
// also end at a line break: a quote left open must not swallow the lines after it.

/// The end of the marker, if it starts at `text[start..]`.
fn marker_at(text: &str, start: usize) -> Option<usize> {
    text[start..].starts_with(REDACTED).then(|| start + REDACTED.len())
}

/// Up to the first `"` not escaped by a backslash (JSON string contents).
fn until_dquote(text: &str, start: usize) -> usize {
    if let Some(end) = marker_at(text, start) {
        return end;
    }
    let b = text.as_bytes();
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' | b'\n' | b'\r' => return i,
            // Skip the escaped char too, unless it is a line break (or missing).
            // Stepping into a multi-byte char is harmless: only ASCII bytes stop the scan.
            b'\\' if !matches!(b.get(i + 1), None | Some(b'\n' | b'\r')) => i += 2,
            _ => i += 1,
        }
    }
    b.len()
}

/// Up to the first `\"` or `"` (JSON string contents inside another JSON string).
fn until_escaped_dquote(text: &str, start: usize) -> usize {
    if let Some(end) = marker_at(text, start) {
        return end;
    }
    let b = text.as_bytes();
    let mut i = start;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'"' | b'\n' | b'\r', _) | (b'\\', Some(b'"')) => return i,
            // `\\` is an escaped backslash: step over both.
            (b'\\', Some(b'\\')) => i += 2,
            _ => i += 1,
        }
    }
    b.len()
}

/// Up to the first `'`.
fn until_squote(text: &str, start: usize) -> usize {
    until_byte(text, start, |b| matches!(b, b'\'' | b'\n' | b'\r'))
}

/// Up to the next element (`<`), for XML.
fn until_tag(text: &str, start: usize) -> usize {
    until_byte(text, start, |b| matches!(b, b'<' | b'\n' | b'\r'))
}

/// Up to whitespace or a delimiter, for unquoted values.
fn until_delimiter(text: &str, start: usize) -> usize {
    until_byte(text, start, |b| {
        b.is_ascii_whitespace()
            || matches!(
                b,
                b'\x0b' | b'"' | b'\'' | b',' | b';' | b'&' | b'<' | b'>' | b'(' | b')' | b'{' | b'}' | b'[' | b']'
            )
    })
}

/// Up to the first byte for which `stop` is true. Only ASCII bytes stop it, so the result is a
/// char boundary.
fn until_byte(text: &str, start: usize, stop: fn(u8) -> bool) -> usize {
    if let Some(end) = marker_at(text, start) {
        return end;
    }
    text.as_bytes()[start..]
        .iter()
        .position(|&b| stop(b))
        .map_or(text.len(), |p| start + p)
}

/// Up to the END line of a PEM private key, or the end of the text if it was cut off.
fn until_pem_end(text: &str, start: usize) -> usize {
    static END: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
            .expect("the PEM END pattern is a valid regular expression")
    });
    if let Some(end) = marker_at(text, start) {
        if text[end..].starts_with("-----END ") || end == text.len() {
            return end;
        }
    }
    END.find_at(text, start).map_or(text.len(), |m| m.start())
}

/// ASCII word boundary; Unicode-aware `\b` would slow every search down on non-ASCII text.
const B: &str = r"(?-u:\b)";

/// A key name that marks its value as sensitive.
const KEY: &str = r"[A-Za-z0-9_.-]*(?i-u:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|amz-signature)[A-Za-z0-9_.-]*";

/// What joins a key to its value: `key=value`, `key = value`, `key => value`, `key: value`, and
/// after a quoted key (`"key": `, `\"key\":`, `'key' =>`) any of `:`, `=`, `=>`. A bare
/// `key:value` (no space, no quotes) is not a pair: that is how IAM actions and ARNs look
/// (`secretsmanager:GetSecretValue`, `...:secret:prod/db`). A quoted value may follow a bare `:`.
const SEP: &str = r#"(?:\\?["'][ \t]*(?:=>|[:=])[ \t]*|[ \t]*=>?[ \t]*|:[ \t]+)"#;
const SEP_QUOTED: &str = r#"(?:\\?["'][ \t]*(?:=>|[:=])[ \t]*|[ \t]*=>?[ \t]*|:[ \t]*)"#;

pub(super) static SECRETS: LazyLock<Redactor> = LazyLock::new(|| Redactor::new(secret_rules(), REDACTED));
pub(super) static ACCOUNTS: LazyLock<Redactor> = LazyLock::new(|| {
    Redactor::new(
        vec![Rule {
            // The boundary characters are part of the match (there is no look-around), which is
            // fine: the search resumes at the trailing one.
            pattern: r"(?:^|[^0-9])(?P<s>[0-9]{12})(?:[^0-9]|$)".to_owned(),
            secret: Secret::Groups,
            check: always,
        }],
        ACCOUNT_MASK,
    )
});

/// The secret rules, in priority order for matches that start at the same place.
fn secret_rules() -> Vec<Rule> {
    let groups = |pattern: String, check: Check| Rule {
        pattern,
        secret: Secret::Groups,
        check,
    };
    let until = |pattern: String, end: fn(&str, usize) -> usize, check: Check| Rule {
        pattern,
        secret: Secret::Until(end),
        check,
    };
    // Every secret group also accepts the marker itself, so redacted output matches the same
    // rule at the same place again, and is then left alone.
    let secret = |inner: &str| format!(r"(?P<s>\[REDACTED\]|{inner})");
    vec![
        // PEM private keys, to the END line or, if it was cut off, to the end of the input.
        until(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----".to_owned(),
            until_pem_end,
            always,
        ),
        // ECS container environment as JSON: {"name": "DB_PASSWORD", "value": "hunter2"}.
        until(
            format!(r#""name"[\t\n\r ]*:[\t\n\r ]*"{KEY}"[\t\n\r ]*,[\t\n\r ]*"value"[\t\n\r ]*:[\t\n\r ]*""#),
            until_dquote,
            env_pair_check,
        ),
        // Authorization headers with a scheme: keep the scheme, redact the credentials.
        groups(
            format!(
                r#"{B}(?i-u:(?:proxy-)?authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:bearer|basic|token|digest|negotiate|ntlm|aws4-hmac-sha256|apikey|sso-key|splunk)[ \t]+{}"#,
                secret(r#"[^\t\n\x0B\x0C\r "',;]+"#)
            ),
            always,
        ),
        // Authorization headers without a scheme, when the value looks like a credential
        // (so "may require authorization: server message" stays).
        groups(
            format!(
                r#"{B}(?i-u:(?:proxy-)?authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?{}"#,
                secret(r"[A-Za-z0-9._~+/=-]+")
            ),
            auth_value_check,
        ),
        // scheme://user:password@host: keep the user, redact the password. The password may
        // contain '@' (it should not, but people write it): the last '@' before the path wins.
        groups(
            format!(
                r#"{B}[A-Za-z][A-Za-z0-9+.-]*://[^\t\n\x0B\x0C\r :/?#@"'<>\[\]]*:{}@"#,
                secret(r#"[^\t\n\x0B\x0C\r /?#"'<>]+"#)
            ),
            always,
        ),
        // AWS access key ids (and the other unique-id prefixes), keeping the prefix.
        groups(
            format!(
                // Not `\b` before the prefix: JSON loggers write ESC as `\u001b`, so a colour
                // code leaves a letter (`\u001b[31mAKIA...`) right before the key id.
                r"(?:^|[^A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA){}",
                secret(&format!(r"[A-Z0-9]{{16}}{B}"))
            ),
            always,
        ),
        // STS session tokens standing alone, recognisable by their fixed base64 openings.
        groups(
            format!(
                r"{B}(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE){}",
                secret(r"[A-Za-z0-9/+=%]{20,}")
            ),
            always,
        ),
        // JWTs: keep the header segment (it only names the algorithm), redact the rest.
        groups(
            format!(
                r"{B}eyJ[A-Za-z0-9_-]+\.{}",
                secret(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
            ),
            always,
        ),
        // GitHub tokens.
        groups(
            format!(r"{B}gh[pousr]_{}", secret(&format!(r"[A-Za-z0-9]{{30,}}{B}"))),
            always,
        ),
        groups(format!(r"{B}github_pat_{}", secret(r"[A-Za-z0-9_]{20,}")), always),
        // Slack tokens and incoming-webhook URLs.
        groups(format!(r"{B}xox[abprs]-{}", secret(r"[A-Za-z0-9-]{10,}")), always),
        groups(
            format!(
                r"{B}hooks\.slack\.com/(?:services|workflows|triggers)/{}",
                secret(r"[A-Za-z0-9/_-]{10,}")
            ),
            always,
        ),
        // Stripe secret and restricted keys.
        groups(
            format!(r"{B}[sr]k_(?:live|test)_{}", secret(r"[A-Za-z0-9]{10,}")),
            always,
        ),
        // Google API keys.
        groups(
            format!(r"{B}AIza{}", secret(&format!(r"[0-9A-Za-z_-]{{35}}{B}"))),
            always,
        ),
        // Sensitive key/value pairs, by the form of the value: JSON escaped inside a JSON string
        // (`\"key\":\"value\"`), double quotes, single quotes, and unquoted (after an optional
        // auth scheme). A quote left open runs to the end of the line, as a truncated one would.
        until(format!(r#"{KEY}{SEP_QUOTED}\\""#), until_escaped_dquote, kv_check),
        until(format!(r#"{KEY}{SEP_QUOTED}""#), until_dquote, kv_check),
        until(format!(r"{KEY}{SEP_QUOTED}'"), until_squote, kv_check),
        until(
            format!(r"{KEY}{SEP}(?:(?i-u:bearer|basic)[ \t]+)?"),
            until_delimiter,
            kv_check,
        ),
        // XML elements, as in STS responses: <SecretAccessKey>...</SecretAccessKey>.
        until(format!(r"<{KEY}>"), until_tag, xml_check),
        // Bearer tokens outside a header; the token must have a digit or be long, so prose
        // ("a bearer token is required") stays.
        groups(
            format!(
                r"{B}(?i-u:bearer)[ \t]+{}",
                secret(r"[A-Za-z0-9._~+/-]*[0-9][A-Za-z0-9._~+/-]*=*|[A-Za-z0-9._~+/-]{20,}=*")
            ),
            always,
        ),
        // Basic credentials outside a header, when they look like base64 rather than a word.
        groups(
            format!(r"{B}(?i-u:basic)[ \t]+{}", secret(r"[A-Za-z0-9+/]{8,}={0,2}")),
            basic_check,
        ),
    ]
}

fn always(_prefix: &str, _secret: &str, _after: &str) -> bool {
    true
}

/// Values that say whether or where there is a secret rather than being one; hiding them hides
/// the diagnosis (MySQL's "using password: NO", an empty or masked value, a `${VAR}` reference).
fn is_placeholder(secret: &str) -> bool {
    let v = secret.trim();
    v.is_empty()
        || v == "$" // what is left of `${VAR}` once the `{` ends an unquoted value
        || v.bytes().all(|b| b == b'*')
        || ["null", "nil", "none", "true", "false", "undefined", "yes", "no"]
            .iter()
            .any(|p| v.eq_ignore_ascii_case(p))
}

/// Key endings that name, locate or describe a secret instead of holding it.
const NON_SECRET_KEY_SUFFIXES: &[&str] = &[
    "arn",
    "id",
    "ids",
    "name",
    "names",
    "type",
    "file",
    "path",
    "source",
    "provider",
    "url",
    "uri",
    "endpoint",
    "ttl",
    "expiry",
    "expiration",
    "expires",
    "expiresin",
    "expiresat",
    "length",
    "count",
    // Pagination tokens (CloudWatch Logs' nextForwardToken, the APIs' NextToken) are cursors.
    "nexttoken",
    "forwardtoken",
    "backwardtoken",
    "pagetoken",
    "paginationtoken",
    "continuationtoken",
];

/// Whether `secret`, the value of the sensitive key `key`, should be redacted.
fn sensitive_value(key: &str, secret: &str) -> bool {
    // Compare on the key's letters and digits only, lowercased: `Secret_Id`, `secretId` and
    // `SECRET-ID` are one key. The key is ASCII by construction of the patterns.
    let norm = || {
        key.bytes()
            .rev()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| b.to_ascii_lowercase())
    };
    let ends_with = |suffix: &str| norm().take(suffix.len()).eq(suffix.bytes().rev());
    let is = |word: &str| norm().eq(word.bytes().rev());
    // PWD and OLDPWD are the shell's working directories, not passwords.
    if is("pwd") || is("oldpwd") {
        return false;
    }
    if NON_SECRET_KEY_SUFFIXES.iter().any(|s| ends_with(s)) {
        return false;
    }
    // An ARN identifies a secret; it is what an operator needs to fix a permission.
    !is_placeholder(secret) && !secret.starts_with("arn:")
}

/// The key name at the start of a key/value match.
fn leading_key(prefix: &str) -> &str {
    let end = prefix
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .unwrap_or(prefix.len());
    &prefix[..end]
}

fn kv_check(prefix: &str, secret: &str, after: &str) -> bool {
    let key = leading_key(prefix);
    if !sensitive_value(key, secret) {
        return false;
    }
    // `Label: text` is also how error messages read ("NoCredentialsError: Unable to locate
    // credentials", "get credentials: failed to refresh cached credentials"), and those are the
    // evidence. So after a bare key and a colon, a value that is a plain word followed by more
    // words is prose, not a secret; a value with digits or symbols, one at the end, or one
    // followed by another `key:`/`key=` is still redacted.
    let colon_only = prefix[key.len()..]
        .strip_prefix(':')
        .is_some_and(|rest| rest.bytes().all(|b| b == b' ' || b == b'\t'));
    let plain_word = secret.bytes().all(|b| b.is_ascii_alphabetic());
    !(colon_only && plain_word && continues_as_prose(after))
}

/// Whether `after` goes on with a word that is not itself a key (`word:` or `word=`).
fn continues_as_prose(after: &str) -> bool {
    let rest = after.trim_start_matches([' ', '\t']);
    if rest.len() == after.len() {
        return false;
    }
    let word = leading_key(rest);
    !word.is_empty() && !matches!(rest.as_bytes().get(word.len()), Some(b':' | b'='))
}

fn xml_check(prefix: &str, secret: &str, _after: &str) -> bool {
    sensitive_value(leading_key(prefix.trim_start_matches('<')), secret)
}

fn env_pair_check(prefix: &str, secret: &str, _after: &str) -> bool {
    // The prefix reads `"name": "KEY", "value": "`, so the key is the fourth quoted field.
    let key = prefix.split('"').nth(3).unwrap_or_default();
    sensitive_value(key, secret)
}

fn auth_value_check(_prefix: &str, secret: &str, _after: &str) -> bool {
    (secret.len() >= 8 && secret.bytes().any(|b| b.is_ascii_digit())) || secret.len() >= 20
}

fn basic_check(_prefix: &str, secret: &str, _after: &str) -> bool {
    // base64 of "user:password" is mixed case or has digits or symbols; an English word after
    // "basic" ("Basic authentication") is lowercase, capitalised or all caps.
    let has_non_letter = secret.bytes().any(|b| !b.is_ascii_alphabetic());
    let upper_after_first = secret.bytes().skip(1).any(|b| b.is_ascii_uppercase());
    let has_lower = secret.bytes().any(|b| b.is_ascii_lowercase());
    has_non_letter || (upper_after_first && has_lower)
}

#[cfg(test)]
mod tests {
    use super::super::redact::redact;
    use crate::sanitize::testutil::*;
    use crate::sanitize::RedactOptions;
    use std::borrow::Cow;

    // ----- redact: secrets -----

    #[test]
    fn aws_access_key_ids_are_redacted_keeping_the_prefix() {
        for p in [
            "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA",
        ] {
            let s = format!("key {p}IOSFODNN7EXAMPLE used");
            assert_eq!(red(&s), format!("key {p}[REDACTED] used"));
        }
    }

    #[test]
    fn aws_access_key_id_look_alikes_stay() {
        untouched("AKIAIOSFODNN7EXAMP"); // too short
        untouched("AKIAIOSFODNN7EXAMPLEX"); // too long
        untouched("akiaiosfodnn7example"); // lowercase
        untouched("XAKIAIOSFODNN7EXAMPLE"); // inside a word
        untouched("AXYZIOSFODNN7EXAMPLE"); // unknown prefix
    }

    #[test]
    fn secret_access_keys_are_redacted_in_key_context() {
        let k = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        for (input, want) in [
            (format!("aws_secret_access_key={k}"), "aws_secret_access_key=[REDACTED]"),
            (
                format!("aws_secret_access_key = {k}"),
                "aws_secret_access_key = [REDACTED]",
            ),
            (
                format!("AWS_SECRET_ACCESS_KEY={k} next"),
                "AWS_SECRET_ACCESS_KEY=[REDACTED] next",
            ),
            (
                format!(r#"{{"SecretAccessKey":"{k}"}}"#),
                r#"{"SecretAccessKey":"[REDACTED]"}"#,
            ),
            (
                format!(r#"SecretAccessKey": "{k}", "#),
                r#"SecretAccessKey": "[REDACTED]", "#,
            ),
            (
                format!("<SecretAccessKey>{k}</SecretAccessKey>"),
                "<SecretAccessKey>[REDACTED]</SecretAccessKey>",
            ),
        ] {
            assert_eq!(red(&input), want);
        }
    }

    #[test]
    fn bare_base64_and_hashes_stay() {
        untouched("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        untouched("commit 3f786850e387550fdab836ed7e6dc881de23001b");
        untouched("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn session_tokens_are_redacted() {
        assert_eq!(
            red("aws_session_token=IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH"),
            "aws_session_token=[REDACTED]"
        );
        assert_eq!(
            red(r#"{"SessionToken": "FwoGZXIvYXdzEBYaDHhBc3Rz", "Expiration": "2024"}"#),
            r#"{"SessionToken": "[REDACTED]", "Expiration": "2024"}"#
        );
        assert_eq!(
            red("GET /o?X-Amz-Security-Token=IQoJb3Jp%2F%2Bxyz&X-Amz-Date=20240101T000000Z"),
            "GET /o?X-Amz-Security-Token=[REDACTED]&X-Amz-Date=20240101T000000Z"
        );
        assert_eq!(
            red("blob IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ== end"),
            "blob IQoJb3JpZ2luX2Vj[REDACTED] end"
        );
        assert_eq!(
            red("blob FwoGZXIvYXdzEBYaDHhBc3RzLWVhc3QtMSJHMEUCIQ end"),
            "blob FwoGZXIvYXdzE[REDACTED] end"
        );
        untouched("IQoJb3JpZ2luX2Vj"); // the opening alone is not a token
    }

    #[test]
    fn authorization_credentials_are_redacted() {
        assert_eq!(
            red("Authorization: Bearer abc.DEF-123_x"),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(
            red("authorization: bearer abc123 next"),
            "authorization: bearer [REDACTED] next"
        );
        assert_eq!(
            red("Authorization: Basic dXNlcjpwYXNz"),
            "Authorization: Basic [REDACTED]"
        );
        assert_eq!(
            red(r#"{"Authorization":"Bearer abcdef"}"#),
            r#"{"Authorization":"Bearer [REDACTED]"}"#
        );
        assert_eq!(
            red("Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host"),
            "Authorization: AWS4-HMAC-SHA256 [REDACTED], SignedHeaders=host"
        );
        assert_eq!(
            red("Proxy-Authorization: Basic Zm9vOmJhcg=="),
            "Proxy-Authorization: Basic [REDACTED]"
        );
        assert_eq!(red("authorization: 0123456789abcdef"), "authorization: [REDACTED]");
        assert_eq!(
            red("sent bearer ya29.a0AfH6SMB in header"),
            "sent bearer [REDACTED] in header"
        );
        assert_eq!(red("Basic Zm9vOmJhcg=="), "Basic [REDACTED]");
        // The whole token goes, even when it also looks like an access key id.
        assert_eq!(red("Bearer AKIAIOSFODNN7EXAMPLE"), "Bearer [REDACTED]");
    }

    #[test]
    fn authorization_look_alikes_stay() {
        untouched(
            "pull access denied, may require authorization: server message: insufficient_scope: authorization failed",
        );
        untouched("a bearer token is required");
        untouched("Basic authentication failed");
        untouched("basic auth");
    }

    #[test]
    fn url_passwords_are_redacted_keeping_the_user() {
        assert_eq!(
            red("connect postgres://admin:hunter2@db.internal:5432/app failed"),
            "connect postgres://admin:[REDACTED]@db.internal:5432/app failed"
        );
        assert_eq!(red("mysql://u:p@ss@host/db"), "mysql://u:[REDACTED]@host/db");
        assert_eq!(red("redis://:s3cr3t@cache:6379"), "redis://:[REDACTED]@cache:6379");
        assert_eq!(
            red("mongodb+srv://app:pw@cluster0.example.net/?retryWrites=true"),
            "mongodb+srv://app:[REDACTED]@cluster0.example.net/?retryWrites=true"
        );
    }

    #[test]
    fn url_look_alikes_stay() {
        untouched("GET http://host:8080/path?q=1");
        untouched("ssh://git@github.com/org/repo");
        untouched("https://example.com/a:b@c");
        untouched("http://[::1]:8080/");
    }

    #[test]
    fn sensitive_key_values_are_redacted() {
        for (input, want) in [
            ("DB_PASSWORD=hunter2", "DB_PASSWORD=[REDACTED]"),
            ("Password=Hunter2!", "Password=[REDACTED]"),
            ("passwd: x", "passwd: [REDACTED]"),
            // After `key: ` a plain word is redacted at the end, before another key, or when it
            // has digits; only a plain word followed by prose is left (see the prose tests).
            ("password: changeme", "password: [REDACTED]"),
            ("password: changeme user: bob", "password: [REDACTED] user: bob"),
            ("password: hunter2 was rejected", "password: [REDACTED] was rejected"),
            ("db_pwd=x y", "db_pwd=[REDACTED] y"),
            (r#""client_secret": "abc""#, r#""client_secret": "[REDACTED]""#),
            (r"'api_key': 'k1'", r"'api_key': '[REDACTED]'"),
            ("apikey=k1&user=bob", "apikey=[REDACTED]&user=bob"),
            ("X-Api-Key: k1", "X-Api-Key: [REDACTED]"),
            ("access_key=k1,next", "access_key=[REDACTED],next"),
            ("private_key: \"k1\"", "private_key: \"[REDACTED]\""),
            ("credentials=u:p", "credentials=[REDACTED]"),
            ("GITHUB_TOKEN=abc", "GITHUB_TOKEN=[REDACTED]"),
            ("token:\"abc\"", "token:\"[REDACTED]\""),
            ("auth_token: Bearer abc", "auth_token: Bearer [REDACTED]"),
            ("password => 'x'", "password => '[REDACTED]'"),
            (
                r#"{\"password\":\"hunter2\",\"user\":\"bob\"}"#,
                r#"{\"password\":\"[REDACTED]\",\"user\":\"bob\"}"#,
            ),
            (
                r#"{"password": "a \"quoted\" pw", "user": "bob"}"#,
                r#"{"password": "[REDACTED]", "user": "bob"}"#,
            ),
            // A quote left open (truncated line) is redacted to the end.
            (r#"{"password": "hunter2"#, r#"{"password": "[REDACTED]"#),
            ("X-Amz-Signature=abcdef0123", "X-Amz-Signature=[REDACTED]"),
        ] {
            assert_eq!(red(input), want, "input: {input}");
        }
    }

    #[test]
    fn sensitive_words_in_prose_and_identifiers_stay() {
        untouched("the secret was not found");
        untouched("unable to pull secrets or registry auth: retrieve secret from asm failed");
        untouched("not authorized to perform: secretsmanager:GetSecretValue");
        untouched("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf");
        untouched("env SECRET_0 is not set");
        untouched("PWD=/app OLDPWD=/");
        untouched(r#"{"SecretId": "prod/db", "secretArn": "arn:aws:secretsmanager:x"}"#);
        untouched(r#"{"password": "", "token": null, "secret": true}"#);
        untouched("token_type=Bearer password_file=/run/secrets/db");
        untouched("password=[REDACTED]");
    }

    #[test]
    fn real_stop_reasons_and_errors_keep_their_evidence() {
        for s in [
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf from secrets manager: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/1a2b is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf because no identity-based policy allows the secretsmanager:GetSecretValue action",
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ssm parameter: ParameterNotFound: parameter /prod/DB_PASSWORD",
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest: 403 Forbidden",
            "Error response from daemon: Get \"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/\": no basic auth credentials",
            "java.sql.SQLException: Access denied for user 'app'@'10.0.1.23' (using password: YES)",
            "psycopg2.OperationalError: FATAL:  password authentication failed for user \"app\"",
            "spring.datasource.password=${DB_PASSWORD} token_count=5 password=******",
            "botocore.exceptions.NoCredentialsError: Unable to locate credentials",
            "botocore.exceptions.PartialCredentialsError: Partial credentials found in env, missing: aws_secret_access_key",
            "operation error S3: GetObject, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found",
            "An error occurred (ExpiredTokenException) when calling the GetObject operation: ExpiredTokenException: The security token included in the request is expired",
            "CredentialsProviderError: Could not load credentials from any providers",
            "NoCredentialProviders: no valid providers in chain. Deprecated.",
            r#"{"nextForwardToken": "f/38680000000000000000000000000000000000000000000000000000"}"#,
        ] {
            untouched(s);
        }
    }

    #[test]
    fn ecs_environment_pairs_are_redacted() {
        assert_eq!(
            red(r#"[{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "USER", "value": "bob"}]"#),
            r#"[{"name": "DB_PASSWORD", "value": "[REDACTED]"}, {"name": "USER", "value": "bob"}]"#
        );
        untouched(r#"{"name":"SECRET_ARN","value":"arn:aws:secretsmanager:us-east-1:1:secret:x"}"#);
    }

    #[test]
    fn pem_private_keys_are_redacted() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            red(&format!("key: {pem} done")),
            "key: -----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY----- done"
        );
        // JSON-escaped newlines, and other key kinds.
        assert_eq!(
            red(r"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----"),
            "-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]-----END OPENSSH PRIVATE KEY-----"
        );
        assert_eq!(
            red("-----BEGIN PRIVATE KEY----- MIIEvQIBADANBg -----END PRIVATE KEY----- x"),
            "-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY----- x"
        );
        // Truncated: redacted to the end.
        assert_eq!(
            red("-----BEGIN EC PRIVATE KEY----- MHcCAQEEIB password=x"),
            "-----BEGIN EC PRIVATE KEY-----[REDACTED]"
        );
    }

    #[test]
    fn public_pem_blocks_stay() {
        untouched("-----BEGIN CERTIFICATE----- MIIDdzCCAl+gAwIBAgIE -----END CERTIFICATE-----");
        untouched("-----BEGIN PUBLIC KEY----- MIIBIjANBgkqhkiG9w0B -----END PUBLIC KEY-----");
    }

    #[test]
    fn jwts_are_redacted_keeping_the_header() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(
            red(&format!("token {jwt} end")),
            "token eyJhbGciOiJIUzI1NiJ9.[REDACTED] end"
        );
        untouched("eyJhbGciOiJIUzI1NiJ9");
        untouched("eyJhbGciOiJIUzI1NiJ9.notapayload.x");
    }

    #[test]
    fn vendor_tokens_are_redacted_keeping_the_prefix() {
        for (input, want) in [
            ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_[REDACTED]"),
            ("gho_0123456789abcdefghijABCDEFGHIJ012345", "gho_[REDACTED]"),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "github_pat_[REDACTED]",
            ),
            ("xoxb-1234567890-0987654321-AbCdEfGh", "xoxb-[REDACTED]"),
            ("xoxp-1234567890-abcdef", "xoxp-[REDACTED]"),
            ("sk_live_51H8abcdefGHIJKL", "sk_live_[REDACTED]"),
            ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIza[REDACTED]"),
            (
                "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX",
                "https://hooks.slack.com/services/[REDACTED]",
            ),
        ] {
            assert_eq!(red(&format!("x {input} y")), format!("x {want} y"));
        }
    }

    #[test]
    fn vendor_token_look_alikes_stay() {
        untouched("ghp_short");
        untouched("the xoxb- prefix");
        untouched("task_live_abcdefghijkl");
        untouched("sk_live_");
        untouched("AIzaShort");
    }

    #[test]
    fn redaction_is_borrowed_when_nothing_matches() {
        assert!(matches!(redact("plain text", BOTH), Cow::Borrowed(_)));
        let off = redact("password=x 123456789012", RedactOptions::default());
        assert!(matches!(off, Cow::Borrowed(_)));
        assert!(matches!(redact("password=x", BOTH), Cow::Owned(_)));
    }
}
