//! Making untrusted evidence safe to show. Log lines, stop reasons and exit messages come from
//! the workload, so an attacker or a buggy app controls them: they may carry terminal escape
//! sequences (to retitle the window, plant hyperlinks, rewrite what is on screen or hide text
//! with bidi overrides), live credentials, account ids, and markdown that breaks out of a code
//! fence or pings a whole chat channel. The intended pipeline for one piece of evidence is
//! [`terminal_safe`] first (so escape sequences cannot split a secret and hide it from the
//! patterns), then [`redact`], then [`truncate`] (after redaction, so a cut cannot leave half a
//! secret that no longer matches), and finally, for chat output only, [`markdown_code`] or
//! [`markdown_inline`] (last, so a cut cannot split one of their escapes). Each function is total:
//! it never panics on any input, and its cost is linear in the input length.
//!
//! The pieces: [`terminal`] (escapes, controls, cutting), [`redact`] (the engine) with its
//! patterns in [`secrets`], [`markdown`] (chat). [`clean`], [`clean_composed`] and
//! [`clean_lines`] are the three ways the output model applies them, and [`error_line`] the way
//! `main` cleans an error message.

pub mod markdown;
pub mod redact;
pub mod secrets;
pub mod terminal;

pub use markdown::{markdown_code, markdown_inline};
pub use redact::redact;
pub use terminal::{error_quote, terminal_safe, truncate};

/// Options for redaction.
///
/// `secrets` removes credentials (keys, tokens, passwords, private keys); `accounts` masks
/// 12-digit AWS account ids. Both default to off, so callers opt in explicitly.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactOptions {
    /// Redact credentials: AWS keys and session tokens, bearer/basic credentials, URL passwords,
    /// sensitive `key=value` pairs, PEM private keys, JWTs and well-known vendor tokens.
    pub secrets: bool,
    /// Mask 12-digit AWS account ids (in ARNs, ECR hosts, or standing alone).
    pub accounts: bool,
}

/// What a redacted secret is replaced with.
const REDACTED: &str = "[REDACTED]";

/// What a redacted account id is replaced with: same width as the id and obviously masked, and
/// free of `<`/`>`, which chat tools treat as markup.
const ACCOUNT_MASK: &str = "************";

/// How much of one piece of untrusted evidence is kept for display (bytes).
pub const EVIDENCE_MAX_BYTES: usize = 600;

/// Untrusted text to display (a log line, a stop reason, a name): escapes and controls out,
/// secrets redacted as `opts` says, cut to [`EVIDENCE_MAX_BYTES`] with ` [truncated]`.
#[must_use]
pub fn clean(s: &str, opts: RedactOptions) -> String {
    // Sanitize and redact before cutting, so a cut never leaves half a secret that no longer
    // matches its pattern. Input lines are already capped at ingestion (`Limits`).
    let safe = terminal_safe(s);
    let redacted = redact(&safe, opts);
    let (t, truncated) = truncate(&redacted, EVIDENCE_MAX_BYTES);
    let mut out = t.into_owned();
    if truncated {
        out.push_str(" [truncated]");
    }
    out
}

/// Text ecsdoctor composed from rule prose and names: escapes out and, when `opts.accounts`,
/// account ids masked, line breaks kept; but no secret patterns (they would misread prose such as
/// "no credentials: boto3 ..." as a `credentials: value` pair).
#[must_use]
pub fn clean_composed(s: &str, opts: RedactOptions) -> String {
    clean_lines(
        s,
        RedactOptions {
            secrets: false,
            accounts: opts.accounts,
        },
    )
}

/// Each line made terminal-safe and redacted, line breaks kept (fixes and Terraform are multi-line).
#[must_use]
pub fn clean_lines(s: &str, opts: RedactOptions) -> String {
    s.split('\n')
        .map(|l| redact(&terminal_safe(l), opts).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An error message for stderr: every line terminal-safe (a message may quote file names, event
/// fields or AWS answers), line breaks kept, secrets redacted.
#[must_use]
pub fn error_line(message: &str) -> String {
    clean_lines(
        message,
        RedactOptions {
            secrets: true,
            accounts: false,
        },
    )
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers the sanitize tests share.
    #![allow(dead_code)]
    use super::*;
    use std::borrow::Cow;

    pub const BOTH: RedactOptions = RedactOptions {
        secrets: true,
        accounts: true,
    };
    pub const SECRETS_ONLY: RedactOptions = RedactOptions {
        secrets: true,
        accounts: false,
    };
    pub const ACCOUNTS_ONLY: RedactOptions = RedactOptions {
        secrets: false,
        accounts: true,
    };

    pub fn red(s: &str) -> String {
        redact(s, BOTH).into_owned()
    }

    /// Asserts that `s` comes out of secret redaction unchanged, and borrowed.
    pub fn untouched(s: &str) {
        let out = redact(s, SECRETS_ONLY);
        assert_eq!(out, s, "should not be redacted: {s:?}");
        assert!(matches!(out, Cow::Borrowed(_)), "should be borrowed: {s:?}");
    }

    /// The forbidden set, written out from the spec rather than shared with the implementation.
    pub fn forbidden(c: char) -> bool {
        let u = u32::from(c);
        (u < 0x20 && c != '\t')
            || u == 0x7f
            || (0x80..=0x9f).contains(&u)
            || matches!(
                c,
                '\u{202A}'..='\u{202E}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{200E}'
                    | '\u{200F}'
                    | '\u{061C}'
                    | '\u{200B}'..='\u{200D}'
                    | '\u{2060}'
                    | '\u{FEFF}'
            )
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;
    use std::borrow::Cow;

    // ----- 5 MB -----

    #[test]
    fn five_megabyte_line_is_sanitized_and_redacted() {
        let unit = "\x1b[32mINFO\x1b[0m req=42 user=alice password=hunter2 key=AKIAIOSFODNN7EXAMPLE role=arn:aws:iam::123456789012:role/app {\"client_secret\": \"s3cr3t\"} Authorization: Bearer abc123 db=postgres://app:pw@db/x msg=\"ok\"\r\n";
        let n = 5 * 1024 * 1024 / unit.len() + 1;
        let line = unit.repeat(n);
        assert!(line.len() >= 5 * 1024 * 1024);

        // Compile the patterns first, so the timing shows the work on the line alone.
        let _ = redact("", BOTH);
        let start = std::time::Instant::now();
        let out = redact(&terminal_safe(&line), BOTH).into_owned();
        let busy = start.elapsed();

        assert!(!out.contains('\x1b'));
        assert!(!out.contains("hunter2"));
        assert!(!out.contains("IOSFODNN7EXAMPLE"));
        assert!(!out.contains("123456789012"));
        assert_eq!(out.matches("password=[REDACTED]").count(), n);
        assert_eq!(out.matches("key=AKIA[REDACTED]").count(), n);
        assert_eq!(out.matches("arn:aws:iam::************:role/app").count(), n);
        assert_eq!(out.matches("\"client_secret\": \"[REDACTED]\"").count(), n);
        assert_eq!(out.matches("Authorization: Bearer [REDACTED]").count(), n);
        assert_eq!(out.matches("postgres://app:[REDACTED]@db/x").count(), n);
        assert_eq!(out.matches("user=alice").count(), n);
        assert_eq!(out.matches("msg=\"ok\" ").count(), n);

        // Lines with nothing to find, and a private key that runs to the end.
        let start = std::time::Instant::now();
        let letters = "a".repeat(5 * 1024 * 1024);
        assert!(matches!(redact(&letters, BOTH), Cow::Borrowed(_)));
        assert_eq!(terminal_safe(&letters), letters);
        let digits = "1234567".repeat(750_000);
        assert!(matches!(redact(&digits, BOTH), Cow::Borrowed(_)));
        let pem = format!("-----BEGIN PRIVATE KEY-----{}", "Ab+/".repeat(1_300_000));
        assert_eq!(red(&pem), "-----BEGIN PRIVATE KEY-----[REDACTED]");
        // Declined values nested in declined values, and accepted ones.
        let nested = "a_id=".repeat(1_000_000);
        assert!(matches!(redact(&nested, BOTH), Cow::Borrowed(_)));
        let nested = "password=".repeat(600_000);
        assert_eq!(red(&nested), "password=[REDACTED]");
        let open = format!(r#"{{"password": "{}"#, "x".repeat(5 * 1024 * 1024));
        assert_eq!(red(&open), r#"{"password": "[REDACTED]"#);
        let worst = start.elapsed();
        eprintln!("5 MB line: sanitize+redact {busy:?}; six adversarial 5 MB lines {worst:?}");
    }

    // ----- properties -----

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(0x5eed_ec5d),
            ..ProptestConfig::default()
        }
    }

    /// Characters that exercise the escape parser far more often than `any::<char>()` would.
    fn nasty_char() -> impl Strategy<Value = char> {
        prop_oneof![
            3 => any::<char>(),
            2 => (0u32..0x20).prop_filter_map("char", char::from_u32),
            2 => (0x7fu32..0xa0).prop_filter_map("char", char::from_u32),
            2 => prop::sample::select(vec![
                '\u{1b}', '[', ']', '\\', 'P', 'X', '^', '_', '(', '#', ';', '0', '8', 'm',
                '\u{7}', '\u{9b}', '\u{9c}', '\u{9d}', '\u{202E}', '\u{2066}', '\u{200B}',
                '\u{200D}', '\u{FEFF}', '\u{E0041}', '\u{2028}', '\r', '\n', '\t', '`', '~',
                '@', '<', '!',
            ]),
            2 => prop::char::range(' ', '~'),
        ]
    }

    fn nasty_text() -> impl Strategy<Value = String> {
        prop::collection::vec(nasty_char(), 0..80).prop_map(String::from_iter)
    }

    /// Text assembled from pieces of secrets, keys, separators and markers, so the redaction
    /// rules meet each other (and their own output) often.
    fn secretish_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "password",
            "PASSWORD",
            "DB_",
            "secret",
            "Token",
            "api_key",
            "SecretId",
            "pwd",
            "=",
            ":",
            ": ",
            " => ",
            "\"",
            "'",
            "\\\"",
            " ",
            "  ",
            "[REDACTED]",
            "************",
            "AKIA",
            "IOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLE",
            "123456789012",
            "1234",
            "0",
            "arn:aws:iam::",
            ":role/x",
            "postgres://",
            "user",
            "@",
            "host",
            "/",
            "Bearer ",
            "basic ",
            "Authorization: ",
            "dXNlcjpwYXNz",
            "eyJhbGciOiJIUzI1NiJ9",
            ".",
            "eyJzdWIiOiIxIn0",
            "ghp_",
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "xoxb-",
            "-----BEGIN PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
            "MIIEvQ",
            "\n",
            ",",
            "{",
            "}",
            "<Password>",
            "</Password>",
            "<",
            ">",
            "null",
            "&",
            "?",
            "_",
            "-",
            "x",
            "IQoJb3JpZ2luX2Vj",
            "sk_live_",
            "AIza",
            "é",
            "\"name\": \"",
            "\", \"value\": \"",
            "github_pat_",
            "hooks.slack.com/services/",
            "arn:",
        ]);
        let piece = prop_oneof![
            6 => pieces.prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    fn any_options() -> impl Strategy<Value = RedactOptions> {
        (any::<bool>(), any::<bool>()).prop_map(|(secrets, accounts)| RedactOptions { secrets, accounts })
    }

    /// Undo the backslash escapes of `markdown_inline`.
    fn unescape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn terminal_safe_output_has_no_forbidden_chars(s in nasty_text()) {
            let out = terminal_safe(&s);
            prop_assert!(!out.chars().any(forbidden), "{:?} -> {:?}", s, out);
        }

        #[test]
        fn terminal_safe_handles_arbitrary_strings(s in any::<String>()) {
            let out = terminal_safe(&s);
            prop_assert!(!out.chars().any(forbidden));
            // Sanitising sanitised text changes nothing.
            prop_assert_eq!(terminal_safe(&out), out);
        }

        #[test]
        fn terminal_safe_keeps_printable_text(
            s in prop::collection::vec(
                any::<char>().prop_map(|c| if terminal::needs_attention(c) { 'x' } else { c }),
                0..80,
            ).prop_map(String::from_iter)
        ) {
            prop_assert_eq!(terminal_safe(&s), s);
        }

        #[test]
        fn redact_is_idempotent_on_secretish_text(s in secretish_text(), opts in any_options()) {
            let once = redact(&s, opts).into_owned();
            let twice = redact(&once, opts);
            prop_assert_eq!(twice.as_ref(), once.as_str(), "input {:?}", s);
            prop_assert!(matches!(twice, Cow::Borrowed(_)));
        }

        #[test]
        fn redact_is_idempotent_on_arbitrary_text(s in nasty_text(), opts in any_options()) {
            let once = redact(&s, opts).into_owned();
            let twice = redact(&once, opts);
            prop_assert_eq!(twice.as_ref(), once.as_str());
        }

        #[test]
        fn redact_removes_planted_secrets(
            before in "[ a-z=:,]{0,12}",
            after in "[ a-z=:,]{0,12}",
            secret in "[A-Z0-9]{16}",
        ) {
            let s = format!("{before} AKIA{secret} {after} DB_PASSWORD={secret}");
            let out = redact(&s, BOTH);
            prop_assert!(!out.contains(&secret), "{:?} -> {:?}", s, out);
        }

        #[test]
        fn markdown_code_never_opens_or_closes_a_fence(s in nasty_text()) {
            let out = markdown_code(&s);
            prop_assert!(!out.contains('`') && !out.contains("~~~"), "{:?}", out);
            prop_assert!(!out.chars().any(forbidden));
            prop_assert!(!out.contains("<!") && !out.contains("<@") && !out.contains("<#"));
        }

        #[test]
        fn markdown_code_leaves_no_mention_sigil(
            s in prop::collection::vec(
                prop::sample::select(vec!["@", "here", "channel", "<", "!", "#", "`", "~", " ", "a", "\n", "\u{1b}"]),
                0..30,
            ).prop_map(|v| v.concat())
        ) {
            let out = markdown_code(&s);
            let chars: Vec<char> = out.chars().collect();
            for (i, &c) in chars.iter().enumerate() {
                if c == '@' {
                    let prev_word = i > 0 && markdown::is_word_char(chars[i - 1]);
                    let next_word = chars.get(i + 1).is_some_and(|&n| markdown::is_word_char(n));
                    prop_assert!(prev_word || !next_word, "{:?} -> {:?}", s, out);
                }
            }
            prop_assert!(!out.contains("```") && !out.contains("~~~"));
        }

        #[test]
        fn markdown_inline_escapes_every_metacharacter(s in nasty_text()) {
            let out = markdown_inline(&s);
            prop_assert!(!out.contains("```") && !out.contains("~~~"));
            let mut chars = out.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    prop_assert!(chars.next().is_some(), "dangling backslash in {:?}", out);
                } else {
                    prop_assert!(!markdown::is_markdown_meta(c), "unescaped {:?} in {:?}", c, out);
                }
            }
            // Escapes are the only difference from the code-block form.
            prop_assert_eq!(unescape(&out), markdown_code(&s));
        }

        #[test]
        fn truncate_respects_boundaries_and_limit(
            // Up to 32 chars of up to 4 bytes each, and limits from 0 to past the end.
            s in prop::collection::vec(any::<char>(), 0..32).prop_map(String::from_iter),
            max in 0usize..140,
        ) {
            let (out, cut) = truncate(&s, max);
            prop_assert!(out.len() <= max);
            prop_assert!(s.starts_with(out.as_ref()));
            prop_assert!(s.is_char_boundary(out.len()));
            prop_assert_eq!(cut, s.len() > max);
            if cut {
                // Nothing more would have fit.
                let next = s[out.len()..].chars().next().map_or(0, char::len_utf8);
                prop_assert!(out.len() + next > max);
            } else {
                prop_assert_eq!(out.as_ref(), s.as_str());
            }
        }
    }
}
