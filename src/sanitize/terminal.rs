//! Terminal safety: strip every escape sequence, control and invisible character a terminal could
//! interpret ([`terminal_safe`]), cut text on a character boundary ([`truncate`]), and quote input
//! in a one-line error message ([`error_quote`]).

use std::borrow::Cow;

/// Strip everything a terminal could interpret: ESC-based sequences (CSI `ESC [ ... final`, OSC
/// `ESC ] ... BEL|ESC \` incl. hyperlinks OSC 8 and title changes, DCS/SOS/PM/APC strings,
/// two-byte ESC sequences), C0 controls except `\t` (replace `\n`/`\r` with a space — evidence is
/// shown one line at a time), DEL, C1 controls U+0080–U+009F (incl. 8-bit CSI U+009B and OSC
/// U+009D), Unicode bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), and
/// zero-width/invisible format chars that can hide text (U+200B–U+200D, U+2060, U+FEFF).
/// Printable text, including non-ASCII letters and emoji, is untouched.
///
/// Details:
/// - `\r\n` becomes a single space, and so do U+2028/U+2029 (line and paragraph separators).
/// - A few more invisible format characters are removed for the same reason as the zero-width
///   ones: U+2061–U+2064 (invisible operators), U+206A–U+206F (deprecated format controls),
///   U+180E, U+FFF9–U+FFFB (interlinear annotation) and the tag block U+E0000–U+E007F (invisible
///   ASCII look-alikes). Emoji built with U+200D (ZWJ) or tags fall apart into their visible
///   parts; that is the price of removing characters that can hide text.
/// - A string sequence (OSC, DCS, SOS, PM, APC) ends at BEL, ST (`ESC \` or U+009C), CAN, SUB,
///   any other ESC (which starts a new sequence) or any C1 control, as in a terminal's parser;
///   the whole sequence is removed. If none of those follows before the end of the input, only
///   the introducer is removed and the rest is shown as text: an attacker (or a truncation)
///   must not be able to hide the rest of a log line by opening a string it never closes.
/// - A CSI sequence whose parameters are followed by something other than a final byte ends
///   there; its introducer and parameters are removed, and what follows is treated as text.
#[must_use]
pub fn terminal_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let Some((at, c)) = next_attention(s, i) else {
            out.push_str(&s[i..]);
            break;
        };
        out.push_str(&s[i..at]);
        let after = at + c.len_utf8();
        i = match c {
            '\r' => {
                out.push(' ');
                // A CRLF pair is one line break, so it becomes one space.
                if s.as_bytes().get(after) == Some(&b'\n') {
                    after + 1
                } else {
                    after
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {
                out.push(' ');
                after
            }
            '\u{1b}' => skip_escape(s, after),
            '\u{9b}' => skip_csi(s, after),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(s, after),
            // Every other character that needs attention is simply dropped.
            _ => after,
        };
    }
    out
}

/// The next character at or after byte `from` that `terminal_safe` must not copy through.
fn next_attention(s: &str, from: usize) -> Option<(usize, char)> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        let byte = b[i];
        if byte < 0x80 {
            // ASCII, the common case, needs no decoding.
            if (byte < 0x20 && byte != b'\t') || byte == 0x7f {
                return Some((i, char::from(byte)));
            }
            i += 1;
        } else {
            let c = s[i..].chars().next()?;
            if needs_attention(c) {
                return Some((i, c));
            }
            i += c.len_utf8();
        }
    }
    None
}

/// True for every character `terminal_safe` must not copy through unchanged.
pub(super) fn needs_attention(c: char) -> bool {
    (c.is_control() && c != '\t') || is_hidden_format(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Bidi controls and invisible format characters that can reorder or hide text.
fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Skip the sequence after an ESC at `s[pos - 1]`; returns where normal text resumes.
///
/// Only ASCII bytes are ever skipped here, so every returned index is a char boundary.
fn skip_escape(s: &str, pos: usize) -> usize {
    let b = s.as_bytes();
    match b.get(pos) {
        Some(b'[') => skip_csi(s, pos + 1),
        Some(b']' | b'P' | b'X' | b'^' | b'_') => skip_string(s, pos + 1),
        // nF sequences (charset designation and the like): intermediates, then one final byte.
        Some(0x20..=0x2f) => {
            let mut p = pos;
            while matches!(b.get(p), Some(0x20..=0x2f)) {
                p += 1;
            }
            if matches!(b.get(p), Some(0x30..=0x7e)) {
                p + 1
            } else {
                p
            }
        }
        // Two-byte sequences: ESC 7, ESC c (full reset), ESC M, a stray ESC \ ...
        Some(0x30..=0x7e) => pos + 1,
        // ESC at the end, or before a control, DEL or a non-ASCII char: drop the ESC alone and
        // keep that char in play.
        _ => pos,
    }
}

/// Skip CSI parameters, intermediates and the final byte starting at `pos`.
fn skip_csi(s: &str, pos: usize) -> usize {
    let b = s.as_bytes();
    let mut p = pos;
    while matches!(b.get(p), Some(0x20..=0x3f)) {
        p += 1;
    }
    if matches!(b.get(p), Some(0x40..=0x7e)) {
        p + 1
    } else {
        p
    }
}

/// Skip a control string (OSC, DCS, SOS, PM, APC) whose payload starts at `pos`.
fn skip_string(s: &str, pos: usize) -> usize {
    for (off, c) in s[pos..].char_indices() {
        let at = pos + off;
        match c {
            '\u{07}' | '\u{18}' | '\u{1a}' | '\u{9c}' => return at + c.len_utf8(),
            '\u{1b}' => {
                // ESC \ is the terminator; any other ESC aborts the string and starts afresh.
                return if s.as_bytes().get(at + 1) == Some(&b'\\') {
                    at + 2
                } else {
                    at
                };
            }
            // Other C1 controls also abort the string; the main loop deals with them.
            '\u{80}'..='\u{9f}' => return at,
            _ => {}
        }
    }
    // Unterminated: drop only the introducer so the payload stays visible (see the doc).
    pos
}

/// Input echoed in a one-line error message (a task argument, a key or value from a bundle, an
/// AWS error text): terminal-safe, on one line, and at most `max_chars` characters, ending in
/// `...` when cut.
pub fn error_quote(s: &str, max_chars: usize) -> String {
    let safe = terminal_safe(s);
    if safe.chars().count() > max_chars {
        safe.chars().take(max_chars.saturating_sub(3)).collect::<String>() + "..."
    } else {
        safe
    }
}

/// Truncate to at most `max_bytes` on a char boundary; returns `(text, was_truncated)`.
///
/// The text is cut at the last char boundary that fits, without adding an ellipsis (the caller
/// knows how it wants to mark the cut). Truncate after [`redact`], so a cut cannot leave part of a
/// secret that no longer matches, and before the markdown functions, so a cut cannot split one of
/// their escapes.
#[must_use]
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

#[cfg(test)]
mod tests {
    use super::*;

    // ----- terminal_safe -----

    #[test]
    fn csi_colors_are_stripped() {
        assert_eq!(terminal_safe("\x1b[31mred\x1b[0m plain"), "red plain");
        assert_eq!(terminal_safe("\x1b[1;38;5;208mX\x1b[m"), "X");
        assert_eq!(terminal_safe("\x1b[38;2;255;0;0mrgb\x1b[39m"), "rgb");
    }

    #[test]
    fn cursor_moves_and_screen_edits_are_stripped() {
        assert_eq!(terminal_safe("\x1b[2J\x1b[H\x1b[10;20Hhi\x1b[1A\x1b[K\x1b[3D"), "hi");
        assert_eq!(terminal_safe("\x1b[?25l\x1b[?1049hx\x1b[?1049l"), "x");
        // Intermediate bytes (DECSCUSR) and a lone ESC \ are removed too.
        assert_eq!(terminal_safe("a\x1b[2 qb\x1b\\c"), "abc");
    }

    #[test]
    fn osc_title_change_is_stripped() {
        assert_eq!(terminal_safe("\x1b]0;pwned\x07after"), "after");
        assert_eq!(terminal_safe("\x1b]2;pwned\x1b\\after"), "after");
    }

    #[test]
    fn osc8_hyperlink_is_stripped_with_bel_and_st() {
        assert_eq!(
            terminal_safe("\x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07!"),
            "click me!"
        );
        assert_eq!(
            terminal_safe("\x1b]8;id=1;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\!"),
            "click me!"
        );
    }

    #[test]
    fn dcs_sos_pm_apc_strings_are_stripped() {
        assert_eq!(terminal_safe("\x1bP$qm\x1b\\ok"), "ok");
        assert_eq!(terminal_safe("\x1bPq#0;2;0;0;0#0~~@@\x1b\\ok"), "ok");
        assert_eq!(terminal_safe("a\x1bXsos\x1b\\b\x1b^pm\x1b\\c\x1b_apc\x1b\\d"), "abcd");
        assert_eq!(terminal_safe("a\u{90}dcs\u{9c}b\u{9f}apc\u{9c}c"), "abc");
    }

    #[test]
    fn eight_bit_csi_and_osc_are_stripped() {
        assert_eq!(terminal_safe("\u{9b}31mred\u{9b}0m"), "red");
        assert_eq!(terminal_safe("\u{9d}0;title\u{9c}x"), "x");
        assert_eq!(terminal_safe("\u{9d}8;;https://evil/\x07link"), "link");
    }

    #[test]
    fn two_byte_escapes_are_stripped() {
        assert_eq!(terminal_safe("\x1b7a\x1b8b\x1bcc\x1bMd\x1b=e"), "abcde");
        // nF sequences: charset designation and DECALN.
        assert_eq!(terminal_safe("\x1b(Ba\x1b#8b\x1b%Gc"), "abc");
    }

    #[test]
    fn string_ends_at_other_escape_or_c1() {
        // A new ESC aborts the OSC and starts its own sequence.
        assert_eq!(terminal_safe("\x1b]0;x\x1b[31mred"), "red");
        assert_eq!(terminal_safe("\x1b]0;x\u{85}y"), "y");
        assert_eq!(terminal_safe("\x1b]0;x\x18y"), "y");
    }

    #[test]
    fn bidi_override_trick_is_defused() {
        assert_eq!(terminal_safe("evil\u{202E}txt.exe"), "eviltxt.exe");
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert_eq!(terminal_safe(&format!("a{c}b")), "ab", "{:04X}", u32::from(c));
        }
    }

    #[test]
    fn zero_width_and_invisible_chars_are_stripped() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{2062}',
            '\u{180E}',
            '\u{E0041}',
        ] {
            assert_eq!(terminal_safe(&format!("pass{c}word")), "password");
        }
    }

    #[test]
    fn nul_del_and_other_c0_c1_controls_are_stripped() {
        assert_eq!(terminal_safe("a\0b\x7fc\x07d\x0be\x0cf\x01g"), "abcdefg");
        assert_eq!(terminal_safe("a\u{85}b\u{9c}c\u{80}d"), "abcd");
    }

    #[test]
    fn backspace_overwrite_is_defused() {
        assert_eq!(terminal_safe("abc\x08\x08\x08xyz"), "abcxyz");
    }

    #[test]
    fn carriage_return_and_newlines_become_spaces() {
        assert_eq!(terminal_safe("progress 100%\rHACKED"), "progress 100% HACKED");
        assert_eq!(terminal_safe("one\ntwo\r\nthree"), "one two three");
        assert_eq!(terminal_safe("a\u{2028}b\u{2029}c"), "a b c");
        assert_eq!(terminal_safe("tab\tkept"), "tab\tkept");
    }

    #[test]
    fn unterminated_sequences_at_end_do_not_panic() {
        assert_eq!(terminal_safe("abc\x1b"), "abc");
        assert_eq!(terminal_safe("abc\x1b["), "abc");
        assert_eq!(terminal_safe("abc\x1b[31;1"), "abc");
        assert_eq!(terminal_safe("abc\x1b("), "abc");
        assert_eq!(terminal_safe("abc\u{9b}"), "abc");
        assert_eq!(terminal_safe("abc\u{9b}12"), "abc");
        assert_eq!(terminal_safe("abc\x1bP"), "abc");
        assert_eq!(terminal_safe("abc\x1b]"), "abc");
        // An unclosed string keeps its payload visible instead of eating the rest of the line.
        assert_eq!(terminal_safe("abc\x1b]0;rest of line"), "abc0;rest of line");
        assert_eq!(terminal_safe("abc\u{9d}rest"), "abcrest");
        // ...but an ESC at the very end is a cut-off ST, so that string counts as closed.
        assert_eq!(terminal_safe("abc\x1b]8;;url\x1b"), "abc");
    }

    #[test]
    fn esc_before_non_ascii_or_control_keeps_what_follows() {
        assert_eq!(terminal_safe("\x1bé"), "é");
        assert_eq!(terminal_safe("\x1b\nx"), " x");
        assert_eq!(terminal_safe("\x1b[31é"), "é");
    }

    #[test]
    fn printable_text_is_untouched() {
        let s = "héllo 世界 🎉 ünïcödé ½ Ωμέγα עברית العربية \t ~`!@#$%^&*()[]{}<>|\\";
        assert_eq!(terminal_safe(s), s);
        // Zero-width joiners are removed, so joined emoji fall apart into their parts.
        assert_eq!(terminal_safe("👨\u{200D}👩"), "👨👩");
    }

    // ----- truncate -----

    #[test]
    fn truncate_cuts_on_char_boundaries() {
        assert_eq!(truncate("hello", 10), (Cow::Borrowed("hello"), false));
        assert_eq!(truncate("hello", 5), (Cow::Borrowed("hello"), false));
        assert_eq!(truncate("hello", 3), (Cow::Borrowed("hel"), true));
        assert_eq!(truncate("héllo", 2), (Cow::Borrowed("h"), true));
        assert_eq!(truncate("🎉x", 3), (Cow::Borrowed(""), true));
        assert_eq!(truncate("abc", 0), (Cow::Borrowed(""), true));
        assert_eq!(truncate("", 0), (Cow::Borrowed(""), false));
    }
}
