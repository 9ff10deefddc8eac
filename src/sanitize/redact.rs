//! The redaction engine: [`redact`] runs the compiled secret and account patterns of
//! [`super::secrets`] over a text. Finding a match is one DFA pass over a single alternation;
//! only the rules that could have matched then run their own small regex to locate the secret.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;

use regex::{CaptureLocations, Regex, RegexSet};

use super::secrets::{ACCOUNTS, SECRETS};
use super::RedactOptions;

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
pub(super) type Check = fn(prefix: &str, secret: &str, after: &str) -> bool;

/// Where a rule's secret is.
#[derive(Clone, Copy)]
pub(super) enum Secret {
    /// The `(?P<s>...)` groups in the pattern mark it; a rule may have several (one per
    /// alternative), and exactly one takes part in any match.
    Groups,
    /// The pattern matches the context up to the secret's start; the secret runs from there to
    /// the index this function returns (given the whole text and the start). Used for values that
    /// can be arbitrarily long, which a linear scan finds far faster than capture groups can.
    Until(fn(&str, usize) -> usize),
}

/// One redaction pattern.
pub(super) struct Rule {
    pub(super) pattern: String,
    pub(super) secret: Secret,
    pub(super) check: Check,
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
pub(super) struct Redactor {
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
    pub(super) fn new(rules: Vec<Rule>, mask: &'static str) -> Self {
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
    pub(super) fn apply(&self, text: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::testutil::*;

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
}
