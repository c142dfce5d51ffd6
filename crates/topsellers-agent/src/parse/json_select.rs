//! Reads a JSON object keeping only the mapped keys: the allow-list applied while parsing, not after.
//!
//! Building a whole `serde_json::Value` per line was most of the agent's parse time (a map node and a string for
//! every key and value, personal data included, each allocated and freed; see docs/BENCHMARKS.md). Here every key
//! that no mapped path starts with is skipped as it is read: its value is validated but never allocated, so the
//! customer block, card and address of a purchase line are not even copied. What is kept has the shape of the
//! original object, so the dotted-path lookup works on it unchanged.
//!
//! Skipping goes through `deserialize_any`, so serde_json's nesting limit (128) applies to skipped values as it
//! does to kept ones: a deeply nested line is still malformed, not a line with missing fields.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// The keys to keep, as a tree: a key kept whole (a mapped field, or a key equal to a whole dotted name), or a key
/// whose object holds kept keys (the first segments of a dotted path).
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    children: Vec<(String, Wanted)>,
    whole: bool,
}

impl Wanted {
    /// From the mapped names (dotted paths allowed). As the lookup does, a name is tried as one key first, then
    /// as a path.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Wanted {
        let mut root = Wanted::default();
        for name in names {
            root.child(name).whole = true;
            let mut node = &mut root;
            for segment in name.split('.') {
                node = node.child(segment);
            }
            node.whole = true;
        }
        root
    }

    fn child(&mut self, key: &str) -> &mut Wanted {
        let i = match self.children.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.children.push((key.to_string(), Wanted::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[i].1
    }

    fn get(&self, key: &str) -> Option<&Wanted> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, w)| w)
    }

    /// Parses `text`, one JSON object and nothing after it (but whitespace), keeping only the wanted keys.
    pub(crate) fn parse(&self, text: &str) -> Result<Map<String, Value>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let object = Select(self).deserialize(&mut de)?;
        de.end()?;
        Ok(object.unwrap_or_default())
    }
}

/// An object's wanted keys; `None` when the value is not an object (then nothing under it can be found).
struct Select<'w>(&'w Wanted);

impl<'de> DeserializeSeed<'de> for Select<'_> {
    type Value = Option<Map<String, Value>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Select<'_> {
    type Value = Option<Map<String, Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            match self.0.get(&key) {
                Some(w) if w.whole => {
                    let value: Value = map.next_value()?;
                    out.insert(key.into_owned(), value);
                }
                Some(w) => match map.next_value_seed(Select(w))? {
                    Some(inner) => {
                        out.insert(key.into_owned(), Value::Object(inner));
                    }
                    None => {
                        out.remove(key.as_ref());
                    }
                },
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A key, borrowed from the line when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// Reads a value and keeps nothing of it (strings are looked at in the parser's scratch space, never allocated).
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_mapped_paths_only_as_the_whole_parse_would() {
        let wanted = Wanted::new(["sku", "product.name", "a.b.c", "x.y"]);
        let line = r#"{"sku":"A1","customer":{"email":"jane@example.com","cards":[1,2,{"n":"4111"}]},"product":{"name":"Mug","secret":"s"},"a":{"b":{"c":3,"d":4}},"x.y":"literal","x":5}"#;
        let kept = wanted.parse(line).unwrap();
        assert_eq!(
            Value::Object(kept),
            serde_json::json!({"sku":"A1","product":{"name":"Mug"},"a":{"b":{"c":3}},"x.y":"literal"})
        );
    }

    #[test]
    fn bad_json_is_still_an_error_also_in_skipped_values() {
        let wanted = Wanted::new(["sku"]);
        let deep = format!(
            r#"{{"sku":"A","deep":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for bad in [
            deep.as_str(),
            r#"{"sku":"A","other":[1,2}"#,
            r#"{"sku":"A"} trailing"#,
            r#"{"sku":"A","x":tru}"#,
        ] {
            assert!(wanted.parse(bad).is_err(), "{bad}");
        }
        assert!(wanted.parse("{\"sku\":\"A\"}  ").is_ok());
        // Escaped keys are still matched.
        let kept = wanted.parse(r#"{"s\u006bu":"B"}"#).unwrap();
        assert_eq!(kept["sku"], "B");
    }
}
