//! The prefilter: one Aho–Corasick automaton over the required literals of every rule
//! ([`super::literals`]). A text is scanned once; only the rules whose literals occur in it (and
//! the few that require none) are candidates, and only candidates ever have their regex compiled
//! and run. A rule the prefilter drops cannot match, so results are exactly the regexes' own.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::literals::spelled;

/// One automaton over the required literals of some rules.
#[derive(Debug, Clone)]
pub struct Prefilter {
    automaton: Option<AhoCorasick>,
    /// For each literal of the automaton, the rules that require it.
    owners: Vec<Vec<usize>>,
    /// Rules that require no literal: candidates for every text.
    always: Vec<usize>,
}

impl Prefilter {
    /// Builds the prefilter over `rules`: each rule's index and its literal set (`None`: it
    /// requires none, and is a candidate for every text). `fast_scan` builds a DFA: three
    /// times the build time of the default NFA (a few ms instead of one), for scans nearly twice
    /// as fast; worth it for a large log only.
    pub fn new<'r>(rules: impl IntoIterator<Item = (usize, Option<&'r [String]>)>, fast_scan: bool) -> Prefilter {
        let mut literals: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut all = Vec::new();
        for (rule, set) in rules {
            all.push(rule);
            let Some(set) = set else {
                always.push(rule);
                continue;
            };
            for lit in set.iter() {
                let i = *index.entry(lit.as_str()).or_insert_with(|| {
                    literals.push(lit);
                    owners.push(Vec::new());
                    literals.len() - 1
                });
                owners[i].push(rule);
            }
        }
        let kind = if fast_scan {
            AhoCorasickKind::DFA
        } else {
            AhoCorasickKind::ContiguousNFA
        };
        // Building only fails past limits far beyond a few hundred short literals; then every
        // rule is a candidate, which is slower but still exact.
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(kind))
            .build(&literals)
            .ok();
        if automaton.is_none() {
            always = all;
        }
        Prefilter {
            automaton,
            owners,
            always,
        }
    }

    /// The rules that may match `text`, in rule order.
    pub fn candidates(&self, text: &str) -> Vec<usize> {
        self.candidates_where(text, |_| true)
    }

    /// [`Prefilter::candidates`] among the rules `keep` accepts (those looking in the field at
    /// hand): a line holding no literal of those costs no allocation.
    pub fn candidates_where(&self, text: &str, keep: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut out: Vec<usize> = self.always.iter().copied().filter(|&r| keep(r)).collect();
        let Some(ac) = &self.automaton else {
            return out;
        };
        // A text holding U+017F or U+212A is scanned as the literals are spelled.
        let spelled = spelled(text);
        let text = spelled.as_ref();
        // Most log lines hold no literal at all: one quick pass says so.
        if !ac.is_match(text) {
            return out;
        }
        let mut seen: Vec<usize> = Vec::new();
        for m in ac.find_overlapping_iter(text) {
            let lit = m.pattern().as_usize();
            if !seen.contains(&lit) {
                seen.push(lit);
                out.extend(self.owners[lit].iter().copied().filter(|&r| keep(r)));
            }
        }
        if !seen.is_empty() {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::literals::{self, parse, required_literals, FOLDS};
    use super::*;

    fn lits(p: &str) -> Option<Vec<String>> {
        required_literals(&parse(p).expect("valid"))
    }

    fn prefilter(sets: &[Option<Vec<String>>]) -> Prefilter {
        Prefilter::new(sets.iter().map(|s| s.as_deref()).enumerate(), false)
    }

    #[test]
    fn a_required_word_is_taken_from_where_every_match_goes() {
        // Cut to 16 bytes: a prefix of a required literal is required too.
        assert_eq!(lits(r"CannotPullContainerError"), Some(vec!["cannotpullcontai".into()]));
        let got = lits(r"AccessDenied.*GetSecretValue").expect("literals");
        assert!(got == ["accessdenied"] || got == ["getsecretvalue"], "{got:?}");
        assert_eq!(
            lits(r"exit(?:ed)? with code 137"),
            Some(vec!["exit with code 1".into(), "exited with code".into()])
        );
    }

    #[test]
    fn case_folds_outside_ascii_are_spelled_as_ascii() {
        // (?i)s also matches U+017F and (?i)k U+212A: one literal, and texts are folded alike.
        assert_eq!(lits("task"), Some(vec!["task".to_string()]));
        let p = prefilter(&[Some(vec!["task".into()])]);
        assert_eq!(p.candidates("TA\u{17f}\u{212a} stopped"), vec![0]);
        let re = crate::rules::compile_pattern("task").expect("valid");
        assert!(re.is_match("TA\u{17f}\u{212a} stopped"));
    }

    #[test]
    fn the_fold_table_is_regex_syntaxs_own() {
        use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
        let mut found = Vec::new();
        for letter in ('a'..='z').chain('A'..='Z') {
            let mut class = ClassUnicode::new([ClassUnicodeRange::new(letter, letter)]);
            class.case_fold_simple();
            for r in class.ranges() {
                for ch in r.start()..=r.end() {
                    let pair = (ch, letter.to_ascii_lowercase());
                    if !ch.is_ascii() && !found.contains(&pair) {
                        found.push(pair);
                    }
                }
            }
        }
        found.sort();
        let mut want = FOLDS.to_vec();
        want.sort();
        assert_eq!(found, want);
        assert_eq!(literals::fold_text("\u{17f}K\u{212a}"), "sKk");
    }

    #[test]
    fn alternatives_require_one_of_their_words() {
        assert_eq!(
            lits(r"(?:timed out|timeout) connecting"),
            Some(vec!["timed out connec".into(), "timeout connecti".into()])
        );
        assert_eq!(
            lits(r"(?:ECONNREFUSED|ETIMEDOUT)"),
            Some(vec!["econnrefused".into(), "etimedout".into()])
        );
        // A longer alternative holding a shorter one adds nothing.
        assert_eq!(
            lits(r"AccessDenied(?:Exception)?|AccessDenied"),
            Some(vec!["accessdenied".into()])
        );
    }

    #[test]
    fn patterns_without_a_required_word_are_always_candidates() {
        assert_eq!(lits(r"^\d+$"), None);
        assert_eq!(lits(r".*"), None);
        assert_eq!(lits(r"(?:foo)?\w+"), None);
        assert_eq!(lits(r"foo|\w+"), None);
    }

    #[test]
    fn named_groups_are_read_off_the_parse() {
        let hir = parse(r"(?P<a>x)(y)(?:(?P<b>z))").expect("valid");
        assert_eq!(literals::capture_names(&hir), vec!["a", "b"]);
    }

    #[test]
    fn the_prefilter_keeps_every_rule_whose_word_occurs() {
        let sets = [
            Some(vec!["denied".into()]),
            None,
            Some(vec!["oom".into(), "killed".into()]),
        ];
        for fast in [false, true] {
            let p = Prefilter::new(sets.iter().map(|s| s.as_deref()).enumerate(), fast);
            assert_eq!(p.candidates("all good"), vec![1]);
            assert_eq!(p.candidates("Access DENIED, container KILLED"), vec![0, 1, 2]);
        }
        // Only the rules it was given.
        let p = Prefilter::new([(4, Some(&["oom".to_string()][..]))], false);
        assert_eq!(p.candidates("OOM"), vec![4]);
    }
}
