//! Text → `serde_json::Value`: JSON when the text parses as JSON, YAML otherwise.
//!
//! YAML goes through serde_yaml_ng (YAML 1.2 core schema, so `yes`/`no`/`on` stay strings
//! as the OpenAPI authors meant them) into our own visitor rather than into
//! `serde_json::Value` directly, because real descriptions carry things the stock visitor
//! rejects: integers beyond 64 bits (`maximum: 99999999999999999999`), non-string mapping
//! keys (`200:` under `responses`), and `<<` merge keys.

use super::error::SpecError;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;
use std::path::Path;

/// Parses a whole document. `origin` only names the file in errors.
pub fn parse_text(text: &str, origin: &Path) -> Result<Value, SpecError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json_error = match serde_json::from_str::<Value>(text) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    match parse_yaml(text) {
        Ok(value) => Ok(value),
        Err(yaml_error) => {
            // A file that looks like JSON gets the JSON parser's message: it points at the
            // real mistake, where the YAML parser would complain about something later.
            if text.trim_start().starts_with(['{', '[']) {
                Err(SpecError::Json {
                    file: origin.to_path_buf(),
                    line: json_error.line(),
                    column: json_error.column(),
                    message: json_error.to_string(),
                })
            } else {
                let (line, column) = yaml_error
                    .location()
                    .map_or((0, 0), |l| (l.line(), l.column()));
                Err(SpecError::Yaml {
                    file: origin.to_path_buf(),
                    line,
                    column,
                    message: yaml_message(&yaml_error),
                })
            }
        }
    }
}

/// Reads a file as text. Bytes that are not UTF-8 (Latin-1 descriptions happen) are
/// replaced rather than rejected: they only ever occur in prose, never in structure.
pub fn read_file(path: &Path) -> Result<String, std::io::Error> {
    let bytes = std::fs::read(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn parse_yaml(text: &str) -> Result<Value, serde_yaml_ng::Error> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    ValueSeed.deserialize(de)
}

/// serde_yaml_ng repeats the location inside its message; keep only the description.
fn yaml_message(error: &serde_yaml_ng::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    // Beyond 64 bits: keep the magnitude as a float; such numbers are bounds, not IDs.
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(float(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(float(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut merges = Vec::new();
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let value = access.next_value_seed(ValueSeed)?;
            if key == "<<" {
                merges.push(value);
            } else {
                // Duplicate keys: the last one wins, as in most YAML tools.
                map.insert(key, value);
            }
        }
        // `<<: *anchor` (or a list of anchors): keys written explicitly take precedence.
        for merge in merges {
            let sources = match merge {
                Value::Array(items) => items,
                other => vec![other],
            };
            for source in sources {
                if let Value::Object(entries) = source {
                    for (k, v) in entries {
                        map.entry(k).or_insert(v);
                    }
                }
            }
        }
        Ok(Value::Object(map))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A custom tag (`!foo value`): keep the value, drop the tag.
        use de::VariantAccess;
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant_seed(ValueSeed)
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Mapping keys: any scalar becomes its text (`200:` → `"200"`, `true:` → `"true"`).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<String, A::Error> {
        Err(de::Error::custom(
            "a sequence cannot be a mapping key in an OpenAPI document",
        ))
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<String, A::Error> {
        Err(de::Error::custom(
            "a mapping cannot be a mapping key in an OpenAPI document",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        match parse_text(text, Path::new("t.yaml")) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn big_integers_become_floats() {
        let v = yaml("a: 123456789012345678901234567890\nb: 99999999999999999999\n");
        assert!(v["a"].is_f64());
        assert!(v["b"].is_f64());
    }

    #[test]
    fn yaml_11_booleans_stay_strings_and_int_keys_are_text() {
        let v = yaml("enum: [yes, no, on, off]\nresponses:\n  200:\n    description: ok\n");
        assert_eq!(v["enum"][0], "yes");
        assert_eq!(v["responses"]["200"]["description"], "ok");
    }

    #[test]
    fn merge_keys_apply() {
        let v = yaml("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n");
        assert_eq!(v["derived"]["x"], 1);
        assert_eq!(v["derived"]["y"], 3);
    }

    #[test]
    fn errors_carry_lines() {
        let e = parse_text("a: 1\nb: [\n", Path::new("bad.yaml"));
        assert!(matches!(e, Err(SpecError::Yaml { line: 3, .. })), "{e:?}");
        let e = parse_text("{\"a\": 1\n \"b\": 2}", Path::new("bad.json"));
        assert!(matches!(e, Err(SpecError::Json { line: 2, .. })), "{e:?}");
    }
}
