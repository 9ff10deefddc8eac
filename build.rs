//! Works the built-in rule files (`rules/*.toml`) out at build time, so that start-up neither
//! parses TOML nor parses regexes: each file becomes a static tree of its values with their byte
//! spans, and each pattern its named groups and the literals the prefilter looks for
//! (`src/rules/literals.rs`, included here as it is in the crate). `src/rules/builtin.rs` reads
//! the tree through serde into the same types the TOML parser fills, and validation runs on it
//! as on any rule file. A file or pattern this script cannot handle is left out, and the crate
//! parses it at run time instead, with the same errors: the output is only ever a shortcut.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[allow(dead_code)]
#[path = "src/rules/literals.rs"]
mod literals;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Table keys whose string values are regex patterns in the rule-file schema.
const PATTERN_KEYS: [&str; 5] = ["pattern", "match", "applies", "expect", "service_from"];

/// The tree of one or more files, flat: arrays' items and tables' values are consecutive nodes.
#[derive(Default)]
struct Tree {
    nodes: Vec<String>,
    entries: Vec<String>,
    patterns: BTreeMap<String, String>,
}

impl Tree {
    /// Adds a value's node (and its children after it); `None` when the value has no static form.
    fn node(&mut self, v: &Spanned<DeValue<'_>>, slot: usize) -> Option<()> {
        let span = v.span();
        let kind = match v.get_ref() {
            DeValue::String(s) => format!("Kind::Str({s:?})"),
            DeValue::Integer(i) => format!("Kind::Int({})", i64::from_str_radix(i.as_str(), i.radix()).ok()?),
            DeValue::Boolean(b) => format!("Kind::Bool({b})"),
            // The schema has no floats or dates: a file holding one is parsed at run time.
            DeValue::Float(_) | DeValue::Datetime(_) => return None,
            DeValue::Array(items) => {
                let first = self.reserve(items.len());
                for (i, item) in items.iter().enumerate() {
                    self.node(item, first + i)?;
                }
                format!("Kind::Arr({first}, {})", items.len())
            }
            DeValue::Table(t) => self.table(t)?,
        };
        self.nodes[slot] = format!(
            "    Node {{ start: {}, end: {}, kind: {kind} }},\n",
            span.start, span.end
        );
        Some(())
    }

    fn table(&mut self, t: &DeTable<'_>) -> Option<String> {
        let first_entry = self.entries.len();
        let first = self.reserve(t.len());
        self.entries.resize(first_entry + t.len(), String::new());
        for (i, (k, v)) in t.iter().enumerate() {
            self.entries[first_entry + i] = format!("    ({:?}, {}),\n", k.get_ref(), first + i);
            if let (true, Some(p)) = (PATTERN_KEYS.contains(&k.get_ref().as_ref()), v.get_ref().as_str()) {
                self.pattern(p);
            }
            self.node(v, first + i)?;
        }
        Some(format!("Kind::Table({first_entry}, {})", t.len()))
    }

    fn reserve(&mut self, n: usize) -> usize {
        let first = self.nodes.len();
        self.nodes.resize(first + n, String::new());
        first
    }

    /// A pattern's named groups and required literals (nothing when it does not parse: the
    /// crate then parses it itself, and reports the error).
    fn pattern(&mut self, p: &str) {
        let Ok(hir) = literals::parse(p) else {
            return;
        };
        let groups = literals::capture_names(&hir);
        let required = match literals::required_literals(&hir) {
            Some(l) => format!("Some(&{l:?})"),
            None => "None".into(),
        };
        self.patterns.insert(
            p.to_string(),
            format!("    Pattern {{ text: {p:?}, groups: &{groups:?}, literals: {required} }},\n"),
        );
    }
}

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&root).join("rules");
    println!("cargo:rerun-if-changed=rules");
    println!("cargo:rerun-if-changed=src/rules/literals.rs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".toml"));
    names.sort();
    let mut tree = Tree::default();
    let mut files = String::new();
    for name in names {
        let Ok(text) = std::fs::read_to_string(dir.join(&name)) else {
            continue;
        };
        let Ok(doc) = DeTable::parse(&text) else {
            continue;
        };
        // A file is all or nothing: undo what a value without a static form left behind.
        let (nodes, entries) = (tree.nodes.len(), tree.entries.len());
        let slot = tree.reserve(1);
        let span = doc.span();
        match tree.table(doc.get_ref()) {
            Some(kind) => {
                tree.nodes[slot] = format!(
                    "    Node {{ start: {}, end: {}, kind: {kind} }},\n",
                    span.start, span.end
                );
                let _ = writeln!(files, "    (\"rules/{name}\", {slot}),");
            }
            None => {
                tree.nodes.truncate(nodes);
                tree.entries.truncate(entries);
            }
        }
    }
    let mut out = String::from("// @generated by build.rs from rules/*.toml; see src/rules/builtin.rs.\n");
    let _ = write!(out, "static FILES: &[(&str, u32)] = &[\n{files}];\n");
    let _ = write!(out, "static NODES: &[Node] = &[\n{}];\n", tree.nodes.concat());
    let _ = write!(
        out,
        "static ENTRIES: &[(&str, u32)] = &[\n{}];\n",
        tree.entries.concat()
    );
    let patterns: String = tree.patterns.into_values().collect();
    let _ = write!(out, "static PATTERNS: &[Pattern] = &[\n{patterns}];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_rules.rs");
    std::fs::write(&dest, out).expect("OUT_DIR is writable");
}
