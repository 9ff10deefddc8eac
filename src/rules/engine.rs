//! The compiled matcher. For each field there is one `RegexSet` over every rule that looks there,
//! so a text (a log line) is scanned once to learn which rules match; only those rules' own
//! regexes then run, to extract named groups.

use std::collections::BTreeMap;

use regex::{RegexSet, RegexSetBuilder};

use super::{Catalogue, Knowledge, Rule, RuleErrors, RuleFileError};
use crate::evidence::Field;

/// The size budget of one field's `RegexSet` (it holds every pattern of that field at once). The
/// built-in catalogue needs under 2 MiB; a larger budget only delays rejecting a pathological file.
const SET_SIZE_LIMIT: usize = 16 << 20;

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

/// Rules compiled for matching.
#[derive(Debug, Clone)]
pub struct Matcher {
    catalogue: Catalogue,
    sets: Vec<(Field, RegexSet, Vec<usize>)>,
}

impl Matcher {
    /// Compiles a validated catalogue.
    pub fn new(catalogue: Catalogue) -> Result<Matcher, RuleErrors> {
        // Validation compiled every rule's own regex already (`Rule::regex`); only the
        // per-field sets are built here.
        let mut sets = Vec::new();
        for field in Field::ALL {
            let idx: Vec<usize> = catalogue
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.look_in.contains(&field))
                .map(|(i, _)| i)
                .collect();
            let set = RegexSetBuilder::new(idx.iter().map(|&i| &catalogue.rules[i].pattern))
                .case_insensitive(true)
                .size_limit(SET_SIZE_LIMIT)
                .dfa_size_limit(SET_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    RuleErrors(vec![RuleFileError {
                        path: "(all rules)".into(),
                        line: None,
                        rule_id: None,
                        message: format!(
                            "the rules looking in `{}` are too large to compile together: {e}",
                            field.name()
                        ),
                    }])
                })?;
            sets.push((field, set, idx));
        }
        Ok(Matcher { catalogue, sets })
    }

    /// Loads and compiles built-in and user rules.
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

    /// Every rule looking in `field` that matches `text`: one pass of the field's set over the
    /// text, then capture extraction for the matching rules only.
    pub fn scan(&self, field: Field, text: &str) -> Vec<Hit> {
        let Some((_, set, idx)) = self.sets.iter().find(|(f, _, _)| *f == field) else {
            return Vec::new();
        };
        let matched = set.matches(text);
        if !matched.matched_any() {
            return Vec::new();
        }
        matched.iter().filter_map(|k| self.captures_of(idx[k], text)).collect()
    }

    /// Runs one rule's own regex (ignoring `look_in`); used by the example runner and `explain`.
    pub fn captures_of(&self, rule: usize, text: &str) -> Option<Hit> {
        let re = &self.catalogue.rules[rule].regex;
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
