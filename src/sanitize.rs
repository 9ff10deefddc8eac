//! Placeholder sanitizer (replaced by the full implementation): strips control characters,
//! leaves redaction as identity.
use std::borrow::Cow;

/// Options for redaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactOptions {
    pub secrets: bool,
    pub accounts: bool,
}

/// Strip control characters.
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .filter(|c| !c.is_control() || *c == '\t')
        .collect()
}

/// Redact secrets.
pub fn redact(s: &str, _opts: RedactOptions) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

/// Safe inside a code fence.
pub fn markdown_code(s: &str) -> String {
    terminal_safe(s).replace("```", "`\u{2009}`\u{2009}`")
}

/// Safe inline.
pub fn markdown_inline(s: &str) -> String {
    markdown_code(s)
}

/// Truncate on a char boundary.
pub fn truncate(s: &str, max_bytes: usize) -> (Cow<'_, str>, bool) {
    if s.len() <= max_bytes {
        return (Cow::Borrowed(s), false);
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (Cow::Borrowed(&s[..end]), true)
}
