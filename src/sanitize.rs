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

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{LazyLock, OnceLock};

use regex::{CaptureLocations, Regex, RegexSet};

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

// ---------------------------------------------------------------------------------------------
// terminal_safe
// ---------------------------------------------------------------------------------------------

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
fn needs_attention(c: char) -> bool {
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

// ---------------------------------------------------------------------------------------------
// redact
// ---------------------------------------------------------------------------------------------

/// Redact secrets (when `opts.secrets`) and account ids (when `opts.accounts`); returns the input
/// unchanged (borrowed) when nothing matched.
///
/// Secrets become `[REDACTED]` while a little context stays so the evidence still reads: the key
/// name and separator of `key=value` pairs, the user of `scheme://user:password@host`, the scheme
/// of an `Authorization` header, the well-known prefix of a token (`AKIA[REDACTED]`,
/// `ghp_[REDACTED]`), the header segment of a JWT, and the BEGIN/END lines of a PEM key. A PEM
/// key without an END line is redacted to the end of the input. Sensitive keys are those
/// containing `password`, `passwd`, `pwd`, `secret`, `token`, `api_key`/`apikey`, `access_key`,
/// `private_key`, `credential` (case-insensitive) or `X-Amz-Signature`; the word alone in prose never triggers,
/// and neither does `word:value` without a space or quotes, so IAM actions
/// (`secretsmanager:GetSecretValue`) and ARNs stay. Values that name rather than hold a secret
/// stay too: keys ending in `Id`, `Arn`, `Name`, `Type`, `File`, `Path`, `Url` and the like,
/// values that are ARNs, empty, already masked (`****`), `null`/`true`/`false`/`yes`/`no` or a
/// `${VAR}` reference, pagination tokens (`NextToken`), and the shell's `PWD`. After a bare key
/// and a colon, a plain word followed by more words is prose, not a secret: error messages read
/// that way ("NoCredentialsError: Unable to locate credentials"). A quoted
/// value left open (a truncated line) is redacted to the end of the line.
///
/// Account ids become `************`: any run of exactly 12 ASCII digits bounded by non-digits,
/// which covers ARNs (`arn:aws:iam::************:role/x`), ECR hosts
/// (`************.dkr.ecr.us-east-1.amazonaws.com`) and ids standing alone, but not 12 digits
/// inside a longer digit run.
///
/// Account ids are masked in one pass, then secrets are found in another with a single
/// alternation, and the result is idempotent: redacting it again changes nothing. Run it on [`terminal_safe`]
/// output: colour codes inside a value would otherwise split the secret.
#[must_use]
pub fn redact(s: &str, opts: RedactOptions) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(s);
    // Accounts go first. Masking digits changes word boundaries (`123456789012AKIA...` becomes
    // `************AKIA...`, and only then is the key id a word of its own), so secrets must be
    // found in the masked text, or a second run would find more. The other way round cannot
    // happen: no secret rule can end or start inside a run of digits, so redacting a secret never
    // makes a new 12-digit run.
    if opts.accounts {
        if let Some(out) = ACCOUNTS.apply(&text) {
            text = Cow::Owned(out);
        }
    }
    if opts.secrets {
        if let Some(out) = SECRETS.apply(&text) {
            text = Cow::Owned(out);
        }
    }
    text
}

/// Decides whether a match is really a secret, given the text of the match before the secret
/// (the key or prefix), the secret itself, and the text after it.
type Check = fn(prefix: &str, secret: &str, after: &str) -> bool;

/// Where a rule's secret is.
#[derive(Clone, Copy)]
enum Secret {
    /// The `(?P<s>...)` groups in the pattern mark it; a rule may have several (one per
    /// alternative), and exactly one takes part in any match.
    Groups,
    /// The pattern matches the context up to the secret's start; the secret runs from there to
    /// the index this function returns (given the whole text and the start). Used for values that
    /// can be arbitrarily long, which a linear scan finds far faster than capture groups can.
    Until(fn(&str, usize) -> usize),
}

/// One redaction pattern.
struct Rule {
    pattern: String,
    secret: Secret,
    check: Check,
}

/// A compiled set of rules.
///
/// Finding a match and locating the secret inside it are split for speed. `all`, the single
/// alternation of every rule (wrapped in `(?:...)`, so leftmost-first priority between rules
/// holds), finds the next match with its DFA, which is cheap; capture groups on that big
/// alternation are not (about ten times the cost), so `set` says which rules could have produced
/// the match, and the first of those (in priority order) whose own small regex reproduces the
/// match exactly locates the secret. Should none do so, `reference` (the same alternation with a
/// named group around each rule, built on first use) decides: it is the definition the fast path
/// must agree with, and a property test checks that it does.
struct Redactor {
    all: Regex,
    set: RegexSet,
    rules: Vec<CompiledRule>,
    /// The rules' patterns with their secret groups named, for `reference`.
    patterns: Vec<String>,
    reference: OnceLock<Reference>,
    mask: &'static str,
}

struct CompiledRule {
    re: Regex,
    /// Capture group indexes in `re` of the secret groups.
    secret_groups: Vec<usize>,
    secret: Secret,
    check: Check,
}

/// The alternation of all rules with capture groups: slow, but the definition of a match.
struct Reference {
    re: Regex,
    /// Capture group index of each rule's group.
    rule_groups: Vec<usize>,
    /// Capture group indexes of every rule's secret groups.
    secret_groups: Vec<usize>,
}

/// Buffers reused across the matches in one text.
struct Scratch {
    set: Vec<bool>,
    locs: Vec<Option<CaptureLocations>>,
}

/// One match: where it starts, the secret inside it, and the rule that produced it.
struct Found {
    start: usize,
    secret: std::ops::Range<usize>,
    rule: usize,
}

const VALID: &str = "built-in redaction patterns are valid regular expressions";

impl Redactor {
    fn new(rules: Vec<Rule>, mask: &'static str) -> Self {
        let mut patterns = Vec::with_capacity(rules.len());
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            // Give each secret group a unique name that says which rule it belongs to.
            let mut pattern = String::with_capacity(rule.pattern.len() + 16);
            for (j, piece) in rule.pattern.split("(?P<s>").enumerate() {
                if j > 0 {
                    let _ = write!(pattern, "(?P<s{i}x{j}>");
                }
                pattern.push_str(piece);
            }
            let re = Regex::new(&pattern).expect(VALID);
            let secret_groups = named_groups(&re, 's').map(|(gi, _)| gi).collect();
            compiled.push(CompiledRule {
                re,
                secret_groups,
                secret: rule.secret,
                check: rule.check,
            });
            patterns.push(pattern);
        }
        let plain: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
        let all = Regex::new(&plain.join("|")).expect(VALID);
        let set = RegexSet::new(&patterns).expect(VALID);
        Redactor {
            all,
            set,
            rules: compiled,
            patterns,
            reference: OnceLock::new(),
            mask,
        }
    }

    fn reference(&self) -> &Reference {
        self.reference.get_or_init(|| {
            let grouped: Vec<String> = (self.patterns.iter().enumerate())
                .map(|(i, p)| format!("(?P<r{i}>{p})"))
                .collect();
            let re = Regex::new(&grouped.join("|")).expect(VALID);
            let mut rule_groups = vec![0; self.patterns.len()];
            for (gi, rule) in named_groups(&re, 'r') {
                rule_groups[rule] = gi;
            }
            let secret_groups = named_groups(&re, 's').map(|(gi, _)| gi).collect();
            Reference {
                re,
                rule_groups,
                secret_groups,
            }
        })
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            set: vec![false; self.rules.len()],
            locs: (0..self.rules.len()).map(|_| None).collect(),
        }
    }

    /// The next match starting at or after `pos`, as the alternation `all` defines it.
    fn next_match(&self, scratch: &mut Scratch, text: &str, pos: usize) -> Option<Found> {
        let m = self.all.find_at(text, pos)?;
        // Cut the haystack at the match end, so a rule that does not match here cannot scan the
        // rest of the text for a match further on.
        let hay = &text[..m.end()];
        scratch.set.fill(false);
        self.set.matches_read_at(&mut scratch.set, hay, m.start());
        for rule in (0..self.rules.len()).filter(|&r| scratch.set[r]) {
            let compiled = &self.rules[rule];
            let secret = match compiled.secret {
                Secret::Until(end) => {
                    if compiled.re.find_at(hay, m.start()).map(|w| w.range()) != Some(m.range()) {
                        continue;
                    }
                    m.end()..end(text, m.end())
                }
                Secret::Groups => {
                    let locs = scratch.locs[rule].get_or_insert_with(|| compiled.re.capture_locations());
                    let whole = compiled.re.captures_read_at(locs, hay, m.start());
                    if whole.map(|w| w.range()) != Some(m.range()) {
                        continue;
                    }
                    let Some((start, end)) = compiled.secret_groups.iter().find_map(|&gi| locs.get(gi)) else {
                        continue;
                    };
                    start..end
                }
            };
            return Some(Found {
                start: m.start(),
                secret,
                rule,
            });
        }
        self.next_match_reference(scratch, text, m.start())
    }

    /// The next match using only the reference alternation's captures.
    fn next_match_reference(&self, _: &mut Scratch, text: &str, pos: usize) -> Option<Found> {
        let reference = self.reference();
        let caps = reference.re.captures_at(text, pos)?;
        let whole = caps.get(0)?;
        let rule = (0..self.rules.len()).find(|&r| caps.get(reference.rule_groups[r]).is_some())?;
        let secret = match self.rules[rule].secret {
            Secret::Until(end) => whole.end()..end(text, whole.end()),
            Secret::Groups => reference.secret_groups.iter().find_map(|&gi| caps.get(gi))?.range(),
        };
        Some(Found {
            start: whole.start(),
            secret,
            rule,
        })
    }

    /// Replace every accepted secret; `None` when nothing changed.
    fn apply(&self, text: &str) -> Option<String> {
        self.apply_with(text, Self::next_match)
    }

    fn apply_with(&self, text: &str, next: NextMatch) -> Option<String> {
        let mut scratch = self.scratch();
        let mut out: Option<String> = None;
        let mut copied = 0; // text[..copied] is already in `out`
        let mut pos = 0; // where the next search starts
        while pos < text.len() {
            let Some(found) = next(self, &mut scratch, text, pos) else {
                break;
            };
            let secret = found.secret;
            let value = &text[secret.clone()];
            if value == self.mask {
                // Already redacted (this is what makes redaction idempotent): skip it.
                pos = secret.end.max(next_boundary(text, found.start));
                continue;
            }
            let prefix = &text[found.start..secret.start];
            let after = &text[secret.end..];
            if value.is_empty() || !(self.rules[found.rule].check)(prefix, value, after) {
                // Not a secret after all. Look again from where the value starts, since the
                // value may still hold something another rule redacts (an access key id under
                // `AccessKeyId`); but step over a long value whole, or values nested in values
                // (`a_id=b_id=c_id=...`) would make the pass quadratic.
                let resume = if value.len() <= RESCAN_LIMIT {
                    secret.start
                } else {
                    secret.end
                };
                pos = resume.max(next_boundary(text, found.start));
                continue;
            }
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..secret.start]);
            o.push_str(self.mask);
            copied = secret.end;
            // Resume right after the secret, not after the match: a closing quote or boundary
            // character that the match used as context may start the next match.
            pos = secret.end;
        }
        out.map(|mut o| {
            o.push_str(&text[copied..]);
            o
        })
    }
}

/// The longest declined value that is searched again for other secrets.
const RESCAN_LIMIT: usize = 128;

/// How `apply_with` finds the next match: `next_match`, or `next_match_reference` in tests.
type NextMatch = fn(&Redactor, &mut Scratch, &str, usize) -> Option<Found>;

/// (group index, rule index) for every group named `{kind}{rule}` or `{kind}{rule}x{n}`.
fn named_groups(re: &Regex, kind: char) -> impl Iterator<Item = (usize, usize)> + '_ {
    re.capture_names().enumerate().filter_map(move |(gi, name)| {
        let rule = name?.strip_prefix(kind)?.split('x').next()?.parse().ok()?;
        Some((gi, rule))
    })
}

/// The char boundary just after the char starting at `i` (or `s.len()`).
fn next_boundary(s: &str, i: usize) -> usize {
    s[i..].chars().next().map_or(s.len(), |c| i + c.len_utf8())
}

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

static SECRETS: LazyLock<Redactor> = LazyLock::new(|| Redactor::new(secret_rules(), REDACTED));
static ACCOUNTS: LazyLock<Redactor> = LazyLock::new(|| {
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

// ---------------------------------------------------------------------------------------------
// markdown
// ---------------------------------------------------------------------------------------------

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

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_markdown_meta(c: char) -> bool {
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

// ---------------------------------------------------------------------------------------------
// truncate
// ---------------------------------------------------------------------------------------------

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
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    const BOTH: RedactOptions = RedactOptions {
        secrets: true,
        accounts: true,
    };
    const SECRETS_ONLY: RedactOptions = RedactOptions {
        secrets: true,
        accounts: false,
    };
    const ACCOUNTS_ONLY: RedactOptions = RedactOptions {
        secrets: false,
        accounts: true,
    };

    fn red(s: &str) -> String {
        redact(s, BOTH).into_owned()
    }

    /// Asserts that `s` comes out of secret redaction unchanged, and borrowed.
    fn untouched(s: &str) {
        let out = redact(s, SECRETS_ONLY);
        assert_eq!(out, s, "should not be redacted: {s:?}");
        assert!(matches!(out, Cow::Borrowed(_)), "should be borrowed: {s:?}");
    }

    /// The forbidden set, written out from the spec rather than shared with the implementation.
    fn forbidden(c: char) -> bool {
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

    // ----- redact: accounts -----

    #[test]
    fn account_ids_are_masked_when_enabled() {
        let s = "arn:aws:iam::123456789012:role/x from 123456789012.dkr.ecr.us-east-1.amazonaws.com/app (account 210987654321)";
        assert_eq!(
            redact(s, ACCOUNTS_ONLY),
            "arn:aws:iam::************:role/x from ************.dkr.ecr.us-east-1.amazonaws.com/app (account ************)"
        );
        assert_eq!(redact(s, SECRETS_ONLY), s);
        assert_eq!(redact(s, RedactOptions::default()), s);
    }

    #[test]
    fn account_look_alikes_stay() {
        for s in [
            "1234567890123",
            "12345678901",
            "123456789012345678901234",
            "ts=1700000000123",
        ] {
            assert_eq!(redact(s, ACCOUNTS_ONLY), s);
        }
        // Back to back with a non-digit in between: both are ids.
        assert_eq!(
            redact("123456789012:210987654321", ACCOUNTS_ONLY),
            "************:************"
        );
    }

    #[test]
    fn secrets_option_alone_leaves_accounts_and_vice_versa() {
        let s = "password=hunter2 acct 123456789012";
        assert_eq!(redact(s, SECRETS_ONLY), "password=[REDACTED] acct 123456789012");
        assert_eq!(redact(s, ACCOUNTS_ONLY), "password=hunter2 acct ************");
        assert_eq!(redact(s, BOTH), "password=[REDACTED] acct ************");
    }

    #[test]
    fn accounts_are_masked_before_secrets_are_looked_for() {
        // Once masked, the id no longer runs into the key id, which becomes a word of its own.
        assert_eq!(red("123456789012AKIAIOSFODNN7EXAMPLE"), "************AKIA[REDACTED]");
    }

    #[test]
    fn redaction_examples_are_idempotent() {
        for s in [
            "DB_PASSWORD=hunter2",
            "AKIAIOSFODNN7EXAMPLE.password=x",
            "123456789012_password=x",
            "postgres://u:p@h",
            "-----BEGIN PRIVATE KEY----- abc",
            "SecretId=AKIAIOSFODNN7EXAMPLE",
            "123456789012AKIAIOSFODNN7EXAMPLE",
            "123456789012Bearer eyJhbGciOiJIUzI1NiJ9",
        ] {
            let once = red(s);
            assert_eq!(red(&once), once, "input: {s}");
        }
    }

    #[test]
    fn fast_matching_agrees_with_the_reference() {
        // Every sequence of up to three rule openings, so that the spans of different rules
        // overlap (a rule of higher priority matching inside another's span) in every way.
        let pieces = [
            "Bearer ",
            "basic ",
            "Authorization: ",
            "token",
            "password",
            "=",
            ": ",
            "\"",
            " ",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9.",
            "eyJzdWIiOiIxIn0.",
            "x1",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "postgres://u:",
            "@h",
            "<Password>",
            "-----BEGIN PRIVATE KEY-----",
            "123456789012",
            "Zm9vOmJhcg==",
            "[REDACTED]",
        ];
        let mut inputs = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = (inputs.iter())
                .flat_map(|s| pieces.iter().map(move |p| format!("{s}{p}")))
                .collect();
            inputs.extend(longer);
        }
        inputs.sort();
        inputs.dedup();
        for s in &inputs {
            for redactor in [&*SECRETS, &*ACCOUNTS] {
                let fast = redactor.apply_with(s, Redactor::next_match);
                let reference = redactor.apply_with(s, Redactor::next_match_reference);
                assert_eq!(fast, reference, "input {s:?}");
            }
        }
    }

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
                any::<char>().prop_map(|c| if needs_attention(c) { 'x' } else { c }),
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
                    let prev_word = i > 0 && is_word_char(chars[i - 1]);
                    let next_word = chars.get(i + 1).is_some_and(|&n| is_word_char(n));
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
                    prop_assert!(!is_markdown_meta(c), "unescaped {:?} in {:?}", c, out);
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
