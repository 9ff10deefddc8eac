//! The literals a pattern cannot match without: for a rule pattern, a set of words one of which
//! every match contains, found on the regex crate's own parse of the pattern (regex-syntax's
//! HIR). The prefilter ([`super::prefilter`]) looks for them before any regex runs. Sound by
//! construction: a set is only ever taken from a part of the pattern every match goes through.
//!
//! This file uses nothing but `std` and `regex-syntax`: `build.rs` includes it too, to work the
//! sets of the built-in rules out at build time.

use std::collections::BTreeSet;

use regex_syntax::hir::{Class, Hir, HirKind};

/// Most alternatives a literal set may hold; beyond it the set is given up (a weaker but still
/// required set from elsewhere in the pattern is used instead).
const MAX_SET: usize = 64;
/// Most characters a class may hold to be spelled out as alternatives (`[Ss\u{17f}]` under
/// `(?i)` has three; `\w` thousands).
const MAX_CLASS: usize = 8;
/// Longest literal kept while building sets (`x{1000}` spelled out helps no one).
const MAX_LITERAL: usize = 256;

/// The longest literal handed to the prefilter (longer ones are cut to their first characters).
const KEPT_LITERAL: usize = 16;

/// The first characters of `s`, at most `max` bytes.
fn prefix(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Literals, spelled as [`fold`] says; matched ASCII-case-insensitively, so `(?i)` costs nothing.
type Set = BTreeSet<String>;

/// The characters outside ASCII that simple case folding makes equal to an ASCII letter: under
/// `(?i)`, `s` also matches U+017F and `k` U+212A. Literals and texts both spell them as the
/// ASCII letter, so `[Ss\u{17f}]` is one literal `s`, not two (a test checks this table against
/// regex-syntax's own case folding).
pub const FOLDS: [(char, char); 2] = [('\u{17f}', 's'), ('\u{212a}', 'k')];

/// A character as literals spell it: folded as [`FOLDS`] says, then ASCII-lowercased.
pub fn fold(ch: char) -> char {
    FOLDS
        .iter()
        .find(|(from, _)| *from == ch)
        .map_or(ch, |(_, to)| *to)
        .to_ascii_lowercase()
}

/// Whether a text holds a [`FOLDS`] character (and so must be folded before it is scanned).
pub fn needs_folding(text: &str) -> bool {
    !text.is_ascii() && text.contains(|c| FOLDS.iter().any(|(from, _)| *from == c))
}

/// A text spelled the way literals are: every [`FOLDS`] character replaced by its ASCII letter
/// (ASCII case is left alone: the automaton ignores it).
pub fn fold_text(text: &str) -> String {
    text.chars()
        .map(|c| FOLDS.iter().find(|(from, _)| *from == c).map_or(c, |(_, to)| *to))
        .collect()
}

/// `text` as the literals are spelled: folded only when it holds a [`FOLDS`] character.
pub fn spelled(text: &str) -> std::borrow::Cow<'_, str> {
    if needs_folding(text) {
        std::borrow::Cow::Owned(fold_text(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Whether `text` holds one of `literals` (spelled as [`fold`] says), ignoring ASCII case: the
/// prefilter of a single pattern, for the few texts it is tried on.
pub fn holds_any(text: &str, literals: &[String]) -> bool {
    let text = spelled(text);
    let hay = text.as_bytes();
    literals.iter().any(|lit| {
        let lit = lit.as_bytes();
        lit.is_empty() || hay.windows(lit.len()).any(|w| w.eq_ignore_ascii_case(lit))
    })
}

/// Parses a pattern the way rule patterns are compiled: case-insensitive, the regex crate's
/// defaults otherwise. Its errors are the regex crate's syntax errors, word for word.
pub fn parse(pattern: &str) -> Result<Hir, Box<regex_syntax::Error>> {
    regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(pattern)
        .map_err(Box::new)
}

/// The named groups of a parsed pattern, in order.
pub fn capture_names(hir: &Hir) -> Vec<String> {
    fn walk(h: &Hir, out: &mut Vec<String>) {
        if let HirKind::Capture(c) = h.kind() {
            if let Some(n) = &c.name {
                out.push(n.to_string());
            }
        }
        for s in h.kind().subs() {
            walk(s, out);
        }
    }
    let mut out = Vec::new();
    walk(hir, &mut out);
    out
}

/// The literals one of which every match of `hir` contains, spelled as [`fold`] says; `None`
/// when the pattern requires none (`^\d+$`, `.*`), so the rule is a candidate for every text.
pub fn required_literals(hir: &Hir) -> Option<Vec<String>> {
    let f = facts(hir);
    let set = best([f.must, usable(f.exact)])?;
    // A prefix of a required literal is required too: a short one selects nearly as well and
    // keeps the automaton small, so that building it costs next to nothing at start-up.
    let set: Set = set.into_iter().map(|l| prefix(l, KEPT_LITERAL)).collect();
    // A literal that contains another of the set adds nothing: any text holding it holds both.
    let minimal: Vec<String> = set
        .iter()
        .filter(|l| !set.iter().any(|o| o != *l && l.contains(o.as_str())))
        .cloned()
        .collect();
    Some(minimal)
}

/// What is known about the texts one piece of a pattern matches.
struct Facts {
    /// Every string it can match, when they are few (`None`: too many, or unbounded).
    exact: Option<Set>,
    /// Literals one of which every match contains (`None`: nothing known).
    must: Option<Set>,
}

/// A set fit to require: not empty, and without the empty string (which every text contains).
fn usable(s: Option<Set>) -> Option<Set> {
    s.filter(|s| !s.is_empty() && !s.contains(""))
}

/// How selective a required set is: its shortest literal (up to a point), then fewer members,
/// then longer literals.
fn score(s: &Set) -> (usize, std::cmp::Reverse<usize>, usize) {
    let shortest = s.iter().map(String::len).min().unwrap_or(0);
    (shortest.min(8), std::cmp::Reverse(s.len()), shortest)
}

/// The most selective of several sets that are all required.
fn best(sets: impl IntoIterator<Item = Option<Set>>) -> Option<Set> {
    let mut out: Option<Set> = None;
    for s in sets.into_iter().filter_map(usable) {
        if out.as_ref().is_none_or(|o| score(&s) > score(o)) {
            out = Some(s);
        }
    }
    out
}

fn single(s: &str) -> Set {
    BTreeSet::from([s.to_string()])
}

/// Every concatenation of a member of `a` with a member of `b`, if that stays small.
fn cross(a: &Set, b: &Set) -> Option<Set> {
    if a.len().saturating_mul(b.len()) > MAX_SET {
        return None;
    }
    let mut out = Set::new();
    for x in a {
        for y in b {
            if x.len() + y.len() > MAX_LITERAL {
                return None;
            }
            out.insert(format!("{x}{y}"));
        }
    }
    Some(out)
}

/// The characters of a small class, each spelled out.
fn class_members(class: &Class) -> Option<Set> {
    let mut out = Set::new();
    match class {
        Class::Unicode(c) => {
            let n: u32 = c
                .ranges()
                .iter()
                .map(|r| u32::from(r.end()) - u32::from(r.start()) + 1)
                .sum();
            if n as usize > MAX_CLASS {
                return None;
            }
            for r in c.ranges() {
                for ch in r.start()..=r.end() {
                    out.insert(fold(ch).to_string());
                }
            }
        }
        Class::Bytes(c) => {
            let n: usize = c.ranges().iter().map(|r| usize::from(r.end() - r.start()) + 1).sum();
            // Only ASCII bytes spell a character of a `&str`.
            if n > MAX_CLASS || c.ranges().iter().any(|r| !r.end().is_ascii()) {
                return None;
            }
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    out.insert(char::from(b).to_ascii_lowercase().to_string());
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn facts(hir: &Hir) -> Facts {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Facts {
            exact: Some(single("")),
            must: None,
        },
        HirKind::Literal(lit) => Facts {
            // Under Unicode mode a literal is UTF-8; anything else is left unknown.
            exact: std::str::from_utf8(&lit.0)
                .ok()
                .map(|s| single(&s.chars().map(fold).collect::<String>())),
            must: None,
        },
        HirKind::Class(c) => Facts {
            exact: class_members(c),
            must: None,
        },
        HirKind::Capture(c) => facts(&c.sub),
        HirKind::Repetition(r) => {
            let sub = facts(&r.sub);
            if r.min == 0 {
                // Optional: requires nothing; `x?` still has a small exact set.
                let exact = match (r.max, sub.exact) {
                    (Some(1), Some(mut e)) if e.len() < MAX_SET => {
                        e.insert(String::new());
                        Some(e)
                    }
                    _ => None,
                };
                return Facts { exact, must: None };
            }
            let exact = match (&sub.exact, r.max) {
                (Some(e), Some(max)) if max == r.min && r.min <= 16 => {
                    (1..r.min).try_fold(e.clone(), |acc, _| cross(&acc, e))
                }
                _ => None,
            };
            Facts {
                exact,
                must: best([sub.must, usable(sub.exact)]),
            }
        }
        HirKind::Concat(subs) => {
            let mut candidates: Vec<Option<Set>> = Vec::new();
            // The strings of a stretch of items with small exact sets, concatenated: every
            // match holds one of them, contiguous.
            let mut run = single("");
            let mut whole = true;
            for sub in subs {
                let f = facts(sub);
                candidates.push(f.must);
                match f.exact {
                    Some(e) => match cross(&run, &e) {
                        Some(x) => run = x,
                        None => {
                            candidates.push(Some(std::mem::replace(&mut run, e)));
                            whole = false;
                        }
                    },
                    None => {
                        candidates.push(Some(std::mem::replace(&mut run, single(""))));
                        whole = false;
                    }
                }
            }
            candidates.push(Some(run.clone()));
            Facts {
                exact: whole.then_some(run),
                must: best(candidates),
            }
        }
        HirKind::Alternation(subs) => {
            // A match goes through one branch: it holds one of that branch's literals.
            let mut exact = Some(Set::new());
            let mut must = Some(Set::new());
            for f in subs.iter().map(facts) {
                exact = match (exact, &f.exact) {
                    (Some(mut a), Some(e)) if a.len() + e.len() <= MAX_SET => {
                        a.extend(e.iter().cloned());
                        Some(a)
                    }
                    _ => None,
                };
                must = match (must, best([f.must, usable(f.exact)])) {
                    (Some(mut a), Some(m)) if a.len() + m.len() <= MAX_SET => {
                        a.extend(m);
                        Some(a)
                    }
                    _ => None,
                };
            }
            Facts { exact, must }
        }
    }
}
