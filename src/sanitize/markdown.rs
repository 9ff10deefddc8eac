//! Chat safety: text that cannot close a code fence, ping a channel, or render a link or HTML,
//! inside a fenced block ([`markdown_code`]) or inline ([`markdown_inline`]).

use super::terminal::terminal_safe;

/// Make text safe to put inside a fenced markdown code block in chat (Slack, Teams, GitHub,
/// Mattermost): it can never close the fence (break up runs of 3+ backticks or tildes), never
/// ping (`@here`, `@channel`, `@everyone`, `<!channel>`, `<!here>`, `<!everyone>`, `<@U123>`,
/// `<#C123>`, `<!subteam^...>`), and has been through [`terminal_safe`].
///
/// The changes are visible on purpose, never invisible characters (which `terminal_safe`
/// itself removes as a way to hide text):
/// - every backtick becomes U+FF40 `｀`, so the text is also safe inside an inline code span
///   (`` `...` ``), which a single backtick would close; every tilde in a run of three or more
///   becomes U+FF5E `～` (shorter runs stay). So the output never has three backticks or three
///   tildes in a row, and no backtick at all;
/// - an `@` in mention position becomes U+FF20 `＠`: followed by a letter, digit or `_`, and not
///   preceded by one. That covers `@here`, `@channel`, `@everyone`, `@all` and `@user` mentions,
///   while `ops@example.com` stays as it is: an `@` inside a word is an address, and no chat
///   tool treats it as a mention;
/// - Slack's control sequences lose their sigil: `<!` becomes `<！` (U+FF01), `<@` becomes `<＠`
///   and `<#` becomes `<＃` (U+FF03), so `<!here>`, `<@U123>`, `<#C123>` and
///   `<!subteam^S1|team>` show as text.
#[must_use]
pub fn markdown_code(s: &str) -> String {
    chat_safe(&terminal_safe(s), false)
}

/// Make text safe for markdown *inline* use (outside a code block): as [`markdown_code`], plus no
/// links or images render (`[x](y)`, `![x](y)`, autolinks `<http://...>`, bare URLs are OK to
/// keep but must not become masked links), no HTML tags, no headings/emphasis injection: escape
/// markdown metacharacters `` \ ` * _ [ ] < > ! # | `` with backslashes, and wrap nothing.
///
/// Backticks never need the escape: like [`markdown_code`], this replaces them with U+FF40 `｀`.
/// Also escaped, with the same CommonMark backslash escapes: `~` (strikethrough), `&` (entity
/// references), `$` (math on GitHub), and a leading `-`, `+`, `=` or `1.`/`1)` that would start
/// a list, a rule or a heading if the text begins a line. The escapes target CommonMark dialects
/// (GitHub, Teams, Mattermost); Slack has no backslash escapes, so for Slack use
/// [`markdown_code`].
#[must_use]
pub fn markdown_inline(s: &str) -> String {
    chat_safe(&terminal_safe(s), true)
}

/// Fullwidth stand-ins for characters that would otherwise close a fence or ping someone.
fn fullwidth(c: char) -> char {
    match c {
        '`' => '\u{FF40}',
        '~' => '\u{FF5E}',
        '@' => '\u{FF20}',
        '!' => '\u{FF01}',
        '#' => '\u{FF03}',
        other => other,
    }
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub(super) fn is_markdown_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '!' | '#' | '|' | '~' | '&' | '$'
    )
}

/// Byte offset of the list/heading marker at the start of `s` that must be escaped, if any.
fn line_start_marker(s: &str) -> Option<usize> {
    let lead = s.len() - s.trim_start_matches([' ', '\t']).len();
    let b = s.as_bytes();
    match b.get(lead)? {
        b'-' | b'+' | b'=' => Some(lead),
        b'0'..=b'9' => {
            let digits = b[lead..].iter().take_while(|c| c.is_ascii_digit()).count();
            matches!(b.get(lead + digits), Some(b'.' | b')')).then_some(lead + digits)
        }
        _ => None,
    }
}

/// The shared body of `markdown_code` (inline = false) and `markdown_inline` (inline = true).
fn chat_safe(text: &str, inline: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let marker = if inline { line_start_marker(text) } else { None };
    let mut prev: Option<char> = None;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let next = it.peek().map(|&(_, n)| n);
        match c {
            '`' => out.push(fullwidth(c)),
            '~' => {
                let run = text[i..].bytes().take_while(|&b| b == b'~').count();
                for _ in 1..run {
                    it.next();
                }
                for _ in 0..run {
                    if run >= 3 {
                        out.push(fullwidth(c));
                    } else {
                        if inline {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                }
            }
            '@' if !prev.is_some_and(is_word_char) && next.is_some_and(is_word_char) => {
                out.push(fullwidth('@'));
            }
            '<' if matches!(next, Some('!' | '@' | '#')) => {
                if inline {
                    out.push('\\');
                }
                out.push('<');
                if let Some((_, sigil)) = it.next() {
                    out.push(fullwidth(sigil));
                    prev = Some(sigil);
                    continue;
                }
            }
            _ if inline && (is_markdown_meta(c) || marker == Some(i)) => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        prev = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // ----- markdown_code -----

    #[test]
    fn markdown_code_cannot_close_a_fence() {
        let out = markdown_code("x ``` y ```` z ~~~ w `` v ~~ u");
        assert!(!out.contains("```") && !out.contains("~~~"), "{out}");
        assert_eq!(out, "x ｀｀｀ y ｀｀｀｀ z ～～～ w ｀｀ v ~~ u");
        // Safe inside an inline code span too, which one backtick would close.
        assert_eq!(markdown_code("res`[x](https://evil)`"), "res｀[x](https://evil)｀");
        let breakout = markdown_code("```\n@channel deploy now\n```");
        assert_eq!(breakout, "｀｀｀ ＠channel deploy now ｀｀｀");
    }

    #[test]
    fn markdown_code_neutralises_mentions() {
        for (input, want) in [
            ("@here", "＠here"),
            ("hey @channel!", "hey ＠channel!"),
            ("(@everyone)", "(＠everyone)"),
            ("@all @alice", "＠all ＠alice"),
            ("<!channel>", "<！channel>"),
            ("<!here>", "<！here>"),
            ("<!everyone>", "<！everyone>"),
            ("<@U123ABC>", "<＠U123ABC>"),
            ("<#C123|general>", "<＃C123|general>"),
            ("<!subteam^S123|@oncall>", "<！subteam^S123|＠oncall>"),
        ] {
            assert_eq!(markdown_code(input), want, "input: {input}");
        }
    }

    #[test]
    fn markdown_code_keeps_email_addresses() {
        assert_eq!(markdown_code("mail ops@example.com"), "mail ops@example.com");
        assert_eq!(markdown_code("a @ b"), "a @ b");
    }

    #[test]
    fn markdown_code_is_terminal_safe() {
        assert_eq!(markdown_code("\x1b[31merr\x1b[0m\r\nnext\u{202E}"), "err next");
    }

    // ----- markdown_inline -----

    #[test]
    fn markdown_inline_neutralises_links_images_and_html() {
        assert_eq!(
            markdown_inline("[click](https://evil.example)"),
            r"\[click\](https://evil.example)"
        );
        assert_eq!(
            markdown_inline("![x](https://evil.example/p.png)"),
            r"\!\[x\](https://evil.example/p.png)"
        );
        assert_eq!(markdown_inline("<https://evil.example>"), r"\<https://evil.example\>");
        assert_eq!(
            markdown_inline("<img src=x onerror=alert(1)>"),
            r"\<img src=x onerror=alert(1)\>"
        );
        // Bare URLs are kept.
        assert_eq!(
            markdown_inline("see https://example.com/a"),
            "see https://example.com/a"
        );
    }

    #[test]
    fn markdown_inline_neutralises_headings_emphasis_and_code() {
        assert_eq!(markdown_inline("# Title"), r"\# Title");
        assert_eq!(markdown_inline("*bold* _it_"), r"\*bold\* \_it\_");
        assert_eq!(markdown_inline("~~gone~~"), r"\~\~gone\~\~");
        assert_eq!(markdown_inline("`code` a|b"), r"｀code｀ a\|b");
        assert_eq!(markdown_inline(r"C:\path"), r"C:\\path");
        assert_eq!(markdown_inline("> quote"), r"\> quote");
        assert_eq!(markdown_inline("&lt;b&gt;"), r"\&lt;b\&gt;");
        assert_eq!(markdown_inline("- item"), r"\- item");
        assert_eq!(markdown_inline("  + item"), r"  \+ item");
        assert_eq!(markdown_inline("12. item"), r"12\. item");
        assert_eq!(markdown_inline("us-east-1 v1.2"), "us-east-1 v1.2");
        assert_eq!(markdown_inline("```"), "｀｀｀");
    }

    #[test]
    fn markdown_inline_neutralises_mentions_too() {
        assert_eq!(markdown_inline("@here <!channel>"), r"＠here \<！channel\>");
        assert_eq!(markdown_inline("ops@example.com"), "ops@example.com");
    }
}
