//! The built-in rule files as `build.rs` worked them out: each file a static tree of its values
//! with their byte spans, read through serde into the very types the TOML parser fills (so there
//! is one schema and one validation), and each pattern's named groups and prefilter literals. A
//! file or pattern missing here (build.rs could not handle it) is parsed from its text at run
//! time, with the errors that gives; the tests below check that both give the same catalogue.

use serde::de::value::Error;
use serde::de::value::{BorrowedStrDeserializer, U64Deserializer};
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};

/// One value of a rule file, with its byte span in the file.
struct Node {
    start: u32,
    end: u32,
    kind: Kind,
}

enum Kind {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    /// Items: `NODES[first..first + len]`.
    Arr(u32, u32),
    /// Entries: `ENTRIES[first..first + len]`, each a key and its value's node.
    Table(u32, u32),
}

/// A pattern of the built-in files, parsed.
pub(super) struct Pattern {
    /// The pattern as written.
    pub text: &'static str,
    /// Its named groups, in order.
    pub groups: &'static [&'static str],
    /// Its required literals (see [`super::literals::required_literals`]).
    pub literals: Option<&'static [&'static str]>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// The built-in file at `path` (as in [`super::BUILTIN_FILES`]) read into `T`; `None` when
/// build.rs left it out, or it does not fit `T` (the TOML parser then says why, with a line).
pub(super) fn file<T: DeserializeOwned>(path: &str) -> Option<T> {
    let &(_, root) = FILES.iter().find(|(p, _)| *p == path)?;
    T::deserialize(De(&NODES[root as usize])).ok()
}

/// What build.rs worked out about a pattern of the built-in files.
pub(super) fn pattern(text: &str) -> Option<&'static Pattern> {
    PATTERNS
        .binary_search_by(|p| p.text.cmp(text))
        .ok()
        .map(|i| &PATTERNS[i])
}

fn nodes(first: u32, len: u32) -> &'static [Node] {
    &NODES[first as usize..(first + len) as usize]
}

/// A node as a serde deserializer; `Spanned` fields get the node's span, as from the TOML parser.
#[derive(Clone, Copy)]
struct De(&'static Node);

/// The name and fields by which `toml::Spanned` asks for its span (serde_spanned's protocol).
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";

impl<'de> de::Deserializer<'de> for De {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.kind {
            Kind::Str(s) => visitor.visit_borrowed_str(s),
            Kind::Int(i) => visitor.visit_i64(i),
            Kind::Bool(b) => visitor.visit_bool(b),
            Kind::Arr(first, len) => visitor.visit_seq(Items(nodes(first, len).iter())),
            Kind::Table(first, len) => visitor.visit_map(Entries {
                entries: ENTRIES[first as usize..(first + len) as usize].iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // TOML has no null: a value that is there is `Some`.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0.kind {
            // The rule files' enums are kebab-case names.
            Kind::Str(s) => visitor.visit_enum(BorrowedStrDeserializer::<Error>::new(s)),
            _ => Err(de::Error::custom("expected a string naming a variant")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            return visitor.visit_map(Span { node: self.0, step: 0 });
        }
        self.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// An array's items.
struct Items(std::slice::Iter<'static, Node>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|n| seed.deserialize(De(n))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A table's entries.
struct Entries {
    entries: std::slice::Iter<'static, (&'static str, u32)>,
    value: Option<&'static Node>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(&(key, node)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(&NODES[node as usize]);
        seed.deserialize(BorrowedStrDeserializer::<Error>::new(key)).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let node = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value without a key"))?;
        seed.deserialize(De(node))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A value as `toml::Spanned` reads it: its start, its end, then the value itself.
struct Span {
    node: &'static Node,
    step: u8,
}

impl<'de> MapAccess<'de> for Span {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let key = match self.step {
            0 => SPANNED_START,
            1 => SPANNED_END,
            2 => SPANNED_VALUE,
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::<Error>::new(key)).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(U64Deserializer::<Error>::new(u64::from(self.node.start))),
            2 => seed.deserialize(U64Deserializer::<Error>::new(u64::from(self.node.end))),
            _ => seed.deserialize(De(self.node)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate::RawFile;
    use super::super::{literals, Catalogue, BUILTIN_FILES};
    use super::*;

    /// Every built-in file has its tree, and the catalogue read from the trees is exactly the
    /// one read from the TOML text (rules, origins and lines, tables, literal sets).
    #[test]
    fn the_builtin_trees_are_the_toml() {
        let (mut from_tree, mut from_text) = (Catalogue::default(), Catalogue::default());
        let (mut e1, mut e2) = (Vec::new(), Vec::new());
        for (path, text) in BUILTIN_FILES {
            assert!(file::<RawFile>(path).is_some(), "build.rs left {path} out");
            from_tree.add_builtin(path, text, &mut e1);
            from_text.add_text(path, text, true, &mut e2);
        }
        assert_eq!((e1, e2), (Vec::new(), Vec::new()));
        assert_eq!(format!("{from_tree:?}"), format!("{from_text:?}"));
        assert!(from_tree.rules.len() > 100);
    }

    /// What build.rs worked out about each pattern is what parsing it at run time gives.
    #[test]
    fn the_builtin_pattern_facts_are_the_parse() {
        assert!(PATTERNS.len() > 200);
        assert!(
            PATTERNS.windows(2).all(|w| w[0].text < w[1].text),
            "sorted for binary search"
        );
        for p in PATTERNS {
            let hir = literals::parse(p.text).expect("build.rs only lists patterns that parse");
            assert_eq!(literals::capture_names(&hir), p.groups, "{}", p.text);
            let want = literals::required_literals(&hir);
            let got = p.literals.map(|l| l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{}", p.text);
            assert!(std::ptr::eq(pattern(p.text).expect("found"), p));
        }
    }

    /// A `Spanned` field gets the span of its value, as from the TOML parser.
    #[test]
    fn spans_come_from_the_tree() {
        #[derive(serde::Deserialize)]
        struct Id {
            id: toml::Spanned<String>,
        }
        #[derive(serde::Deserialize)]
        struct File {
            rule: Vec<Id>,
        }
        let (path, text) = BUILTIN_FILES[0];
        let from_tree: File = file(path).expect("tree");
        let from_text: File = toml::from_str(text).expect("toml");
        let spans = |f: &File| {
            f.rule
                .iter()
                .map(|r| (r.id.span(), r.id.get_ref().clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(spans(&from_tree), spans(&from_text));
    }
}
