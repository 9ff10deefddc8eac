//! What "safe output" means, as checks shared by `tests/hardening.rs` (the binary) and
//! `tests/fuzz.rs` (the library): no character a terminal would interpret, no chat ping, no code
//! fence breakout, no rendered link, image or HTML, and none of the secrets listed in
//! `tests/corpus/secrets.tsv`.
//!
//! Include it from an integration test with
//! ```ignore
//! #[path = "support/checks.rs"]
//! mod checks;
//! ```
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The committed fuzz corpus.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// A character that must never reach a terminal or a chat from untrusted text: C0 controls other
/// than `\t` and `\n` (line breaks are ours: every renderer ends its lines with them), DEL, C1
/// controls (8-bit CSI, OSC, DCS, ST ...), bidi overrides and isolates, and the invisible format
/// characters that can hide text.
pub fn is_forbidden(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{b}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2028}'..='\u{2029}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// The first forbidden character of `s`, with some context, for an assertion message.
pub fn first_forbidden(s: &str) -> Option<String> {
    let (i, c) = s.char_indices().find(|&(_, c)| is_forbidden(c))?;
    let mut from = i.saturating_sub(60);
    while !s.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (i + 60).min(s.len());
    while !s.is_char_boundary(to) {
        to += 1;
    }
    Some(format!("U+{:04X} at byte {i} in {:?}", c as u32, &s[from..to]))
}

/// Removes SGR sequences (`ESC [ params m`): the only escapes ecsdoctor itself prints, with
/// `--color always`. Anything else that starts with ESC stays, so a check still sees it.
pub fn strip_sgr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let params = after.bytes().take_while(|b| b.is_ascii_digit() || *b == b';').count();
        if after.as_bytes().get(params) == Some(&b'm') {
            rest = &after[params + 1..];
        } else {
            out.push_str("\x1b[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Every string in a JSON document, keys included: what `jq -r` would print.
pub fn json_strings(v: &Value) -> Vec<&str> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => {
                for (k, x) in o {
                    out.push(k);
                    walk(x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// Markdown with its backslash escapes and fullwidth stand-ins undone: what a reader sees, so a
/// secret cannot hide from a substring check behind `\_` or `｀`.
pub fn md_plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if it.peek().is_some_and(|n| n.is_ascii_punctuation()) => {}
            '\u{FF40}' => out.push('`'),
            '\u{FF5E}' => out.push('~'),
            '\u{FF20}' => out.push('@'),
            '\u{FF01}' => out.push('!'),
            '\u{FF03}' => out.push('#'),
            _ => out.push(c),
        }
    }
    out
}

/// Chat hazards in markdown output: pings, fences that do not belong to ecsdoctor, and links,
/// images or HTML outside code (inside a fenced block or an inline code span nothing renders).
pub fn markdown_problems(md: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let lower = md.to_lowercase();
    for ping in [
        "@here",
        "@channel",
        "@everyone",
        "<!here",
        "<!channel",
        "<!everyone",
        "<!subteam",
        "<@u",
        "<@w",
        "<#c",
    ] {
        if lower.contains(ping) {
            problems.push(format!("can ping: {ping}"));
        }
    }
    let mut in_fence = false;
    for line in md.lines() {
        if line.starts_with("```") {
            if !(line == "```" || (!in_fence && line == "```json")) {
                problems.push(format!("foreign fence line: {line:?}"));
            }
            in_fence = !in_fence;
            continue;
        }
        if line.contains("```") || line.contains("~~~") {
            problems.push(format!("fence inside a line: {line:?}"));
        }
        if in_fence {
            continue;
        }
        // Outside code: drop inline code spans (ours; untrusted text inside them has no
        // backticks), then every `[`, `]` and `<` must be escaped.
        let mut outside = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                outside.push_str(part);
            }
        }
        let mut prev = ' ';
        for c in outside.chars() {
            if matches!(c, '[' | ']' | '<') && prev != '\\' {
                problems.push(format!("unescaped {c:?} outside code: {line:?}"));
                break;
            }
            prev = c;
        }
    }
    if in_fence {
        problems.push("a fence is left open".into());
    }
    problems
}

/// One secret shape: the text that carries it and the part that must never be printed.
#[derive(Debug, Clone)]
pub struct SecretCase {
    pub shape: String,
    pub text: String,
    pub secret: String,
}

/// Undoes the escapes of `secrets.tsv`: `\n`, `\t`, `\e` (ESC), `\\` and `\uXXXX`.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('e') => out.push('\x1b'),
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).expect("secrets.tsv: \\u takes 4 hex digits");
                out.push(char::from_u32(code).expect("secrets.tsv: \\u names a char"));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The secret shapes of `tests/corpus/secrets.tsv`.
pub fn secret_cases() -> Vec<SecretCase> {
    let text = std::fs::read_to_string(corpus_dir().join("secrets.tsv")).expect("tests/corpus/secrets.tsv");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "secrets.tsv: three tab-separated columns: {l:?}");
            SecretCase {
                shape: cols[0].to_string(),
                text: unescape(cols[1]),
                secret: unescape(cols[2]),
            }
        })
        .collect()
}

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Text,
    Markdown,
    Json,
}

impl Fmt {
    pub const ALL: [Fmt; 3] = [Fmt::Text, Fmt::Markdown, Fmt::Json];

    /// The `--format` value.
    pub fn arg(self) -> &'static str {
        match self {
            Fmt::Text => "text",
            Fmt::Markdown => "markdown",
            Fmt::Json => "json",
        }
    }
}

/// Everything wrong with one rendered output: forbidden characters (in JSON, also in every decoded
/// string), chat hazards in markdown, and any of `secrets` in what a reader would see.
pub fn output_problems(fmt: Fmt, out: &str, secrets: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(f) = first_forbidden(out) {
        problems.push(format!("forbidden character in the output: {f}"));
    }
    let mut views: Vec<String> = vec![out.to_string()];
    match fmt {
        Fmt::Text => {}
        Fmt::Markdown => {
            problems.extend(markdown_problems(out));
            views.push(md_plain(out));
        }
        Fmt::Json => match serde_json::from_str::<Value>(out) {
            Ok(v) => {
                for s in json_strings(&v) {
                    if let Some(f) = first_forbidden(s) {
                        problems.push(format!("forbidden character in a JSON string: {f}"));
                    }
                }
                views.push(json_strings(&v).join("\n"));
            }
            Err(e) => problems.push(format!("not JSON: {e}")),
        },
    }
    for s in secrets {
        if views.iter().any(|v| v.contains(s)) {
            problems.push(format!("secret printed: {s}"));
        }
    }
    problems
}
