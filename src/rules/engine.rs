//! The matcher. One Aho–Corasick pass over a text (a log line) finds the literals it holds
//! ([`super::prefilter`]); only the rules that require one of them (and those that require none)
//! run their own regex, compiled on first use, to confirm the match and extract named groups.
//! Start-up builds that one automaton and nothing else, so a command pays for the handful of
//! rules its evidence touches, not for the whole catalogue.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::prefilter::Prefilter;
use super::{Catalogue, Knowledge, Rule, RuleErrors};
use crate::evidence::Field;

/// One rule that matched one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Index of the rule in [`Matcher::rules`].
    pub rule: usize,
    /// The pattern's named groups that took part in the match.
    pub captures: BTreeMap<String, String>,
    /// The whole matched span.
    pub matched: String,
}

/// Rules ready for matching.
#[derive(Debug)]
pub struct Matcher {
    catalogue: Catalogue,
    /// Over every rule: for `explain`, and the fields holding a few short texts.
    all: OnceLock<Prefilter>,
    /// Over the rules that look in logs, built for speed once a log is large.
    logs: OnceLock<Prefilter>,
    /// Log bytes scanned so far (with `all` until they pass [`LARGE_LOG`]).
    log_bytes: AtomicUsize,
    /// For each rule, the fields it looks in, as bits of [`field_bit`].
    fields: Vec<u8>,
}

/// Log bytes after which the log automaton is built (a few ms, repaid within a few MB).
const LARGE_LOG: usize = 1 << 20;

impl Clone for Matcher {
    fn clone(&self) -> Matcher {
        Matcher {
            catalogue: self.catalogue.clone(),
            all: self.all.clone(),
            logs: self.logs.clone(),
            log_bytes: AtomicUsize::new(self.log_bytes.load(Ordering::Relaxed)),
            fields: self.fields.clone(),
        }
    }
}

/// The bit of a field in [`Matcher::fields`].
fn field_bit(field: Field) -> u8 {
    let i = Field::ALL.iter().position(|f| *f == field).unwrap_or(0);
    1 << i
}

impl Matcher {
    /// Prepares a validated catalogue for matching. Nothing is compiled yet: the automata are
    /// built on first use, and each rule's regex when the prefilter first keeps it.
    pub fn new(catalogue: Catalogue) -> Result<Matcher, RuleErrors> {
        let fields = catalogue
            .rules
            .iter()
            .map(|r| r.look_in.iter().fold(0u8, |bits, f| bits | field_bit(*f)))
            .collect();
        Ok(Matcher {
            catalogue,
            all: OnceLock::new(),
            logs: OnceLock::new(),
            log_bytes: AtomicUsize::new(0),
            fields,
        })
    }

    /// The prefilter for texts of `field` (`None`: any field).
    fn prefilter(&self, field: Option<Field>, text: &str) -> &Prefilter {
        let rules = &self.catalogue.rules;
        let all = || {
            self.all
                .get_or_init(|| Prefilter::new(rules.iter().map(|r| r.required.as_deref()).enumerate(), false))
        };
        if field != Some(Field::Logs) {
            return all();
        }
        if let Some(logs) = self.logs.get() {
            return logs;
        }
        if self.log_bytes.fetch_add(text.len(), Ordering::Relaxed) < LARGE_LOG {
            return all();
        }
        let bit = field_bit(Field::Logs);
        self.logs.get_or_init(|| {
            let in_logs = rules.iter().enumerate().filter(|(i, _)| self.fields[*i] & bit != 0);
            Prefilter::new(in_logs.map(|(i, r)| (i, r.required.as_deref())), true)
        })
    }

    /// Loads built-in and user rules.
    pub fn load(include_builtin: bool, user_paths: &[std::path::PathBuf]) -> Result<Matcher, RuleErrors> {
        Matcher::new(Catalogue::load(include_builtin, user_paths)?)
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.catalogue.rules
    }

    /// The catalogue behind this matcher.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The knowledge tables (operations, resources, phase weights).
    pub fn knowledge(&self) -> &Knowledge {
        &self.catalogue.knowledge
    }

    /// Every rule looking in `field` that matches `text`, in rule order.
    pub fn scan(&self, field: Field, text: &str) -> Vec<Hit> {
        let bit = field_bit(field);
        self.prefilter(Some(field), text)
            .candidates_where(text, |r| self.fields[r] & bit != 0)
            .into_iter()
            .filter_map(|r| self.captures_of(r, text))
            .collect()
    }

    /// Compiles, ahead of need, the regexes of the rules that look in logs (while a live run waits
    /// for the logs: what the log lines then need is ready).
    /// Stops at the rule it is compiling once `stop` is set (the logs are in: the diagnosis then
    /// compiles only what it needs, waiting for a regex being compiled here rather than compiling
    /// it twice).
    pub fn precompile_log_rules(&self, stop: &AtomicBool) {
        // What every denial's facts go through first: the extractors and the knowledge tables.
        super::extract::precompile();
        for re in self.catalogue.table_patterns() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let _ = re.get();
        }
        let bit = field_bit(Field::Logs);
        for (i, r) in self.catalogue.rules.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if self.fields[i] & bit != 0 {
                let _ = r.regex();
            }
        }
    }

    /// Every rule that matches `text`, whatever field it looks in, in rule order (`explain`: a
    /// paste is tried against every rule).
    pub fn scan_all(&self, text: &str) -> Vec<Hit> {
        self.prefilter(None, text)
            .candidates(text)
            .into_iter()
            .filter_map(|r| self.captures_of(r, text))
            .collect()
    }

    /// Whether the prefilter keeps `rule` for `text` (a rule it drops cannot match); the example
    /// runner checks this against the regex itself.
    pub fn is_candidate(&self, rule: usize, text: &str) -> bool {
        self.prefilter(None, text).candidates(text).binary_search(&rule).is_ok()
    }

    /// Runs one rule's own regex (ignoring `look_in` and the prefilter); used by the example
    /// runner.
    pub fn captures_of(&self, rule: usize, text: &str) -> Option<Hit> {
        let re = self.catalogue.rules[rule].regex()?;
        let caps = re.captures(text)?;
        let mut captures = BTreeMap::new();
        for name in re.capture_names().flatten() {
            if let Some(m) = caps.name(name) {
                captures.insert(name.to_string(), m.as_str().to_string());
            }
        }
        let matched = caps.get(0).map(|m| m.as_str().to_string()).unwrap_or_default();
        Some(Hit {
            rule,
            captures,
            matched,
        })
    }
}
