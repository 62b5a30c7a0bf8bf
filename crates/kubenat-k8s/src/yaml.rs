//! YAML (and JSON, which is YAML) into a tree that remembers the line of every node, and a
//! serde `Deserializer` over that tree that reports the field path and line of a type error.
//!
//! serde-saphyr parses the text (anchors, merge keys, multi-document streams, alias-bomb
//! budgets) and gives every node its location through `Spanned`. Scalars are then re-read
//! from their source text with the YAML 1.2 core schema, the one Kubernetes' JSON view of
//! YAML agrees with on the values that matter: `y`/`n`/`on`/`off` stay strings, `0080` is
//! the integer 80 and `010.010.001.101` stays a string.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::limits::{MAX_DEPTH, MAX_OBJECT_BYTES, MAX_OBJECT_NODES};
use crate::node::{Node, SyntaxError, Value};

/// Every document of `text`, in order (empty documents left out). `text` starts on line
/// `first_line` of its file, and the nodes' lines say so. The budgets are one object's
/// (see [`crate::limits`]): the caller hands over one object, or one document, at a time.
/// What kubectl prints takes the fast path ([`crate::block`]); the rest serde-saphyr.
/// Either way each object's `metadata.managedFields` is left out.
pub(crate) fn parse_documents(text: &str, first_line: usize) -> Result<Vec<Node>, SyntaxError> {
    match crate::block::parse(text, first_line, true) {
        Some(nodes) => Ok(nodes),
        None => {
            let mut nodes = parse_with_saphyr(text, first_line)?;
            nodes.iter_mut().for_each(Node::drop_managed_fields);
            Ok(nodes)
        }
    }
}

/// [`parse_documents`] by serde-saphyr alone.
pub(crate) fn parse_with_saphyr(text: &str, first_line: usize) -> Result<Vec<Node>, SyntaxError> {
    let offset = first_line.saturating_sub(1);
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_OBJECT_NODES,
            max_events: 4 * MAX_OBJECT_NODES,
            max_total_scalar_bytes: MAX_OBJECT_BYTES,
            max_reader_input_bytes: None,
        },
    };
    let raw: Vec<RawNode> =
        serde_saphyr::from_str_multiple_with_options(text, options).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize).filter(|&l| l > 0);
            let message = e.without_snippet().to_string();
            let message = strip_location_suffix(&message).to_string();
            SyntaxError {
                line: line.map(|l| l + offset),
                message,
            }
        })?;
    Ok(raw
        .into_iter()
        .map(|node| node.resolve(text, offset))
        .filter(|n| n.value != Value::Null)
        .collect())
}

/// serde-saphyr ends messages with " at line X, column Y"; the diagnostic carries the line.
fn strip_location_suffix(message: &str) -> &str {
    let Some(at) = message.rfind(" at line ") else {
        return message;
    };
    let tail = &message[at + " at line ".len()..];
    let location = tail
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b',' | b' ') || b.is_ascii_lowercase());
    if location && tail.starts_with(|c: char| c.is_ascii_digit()) {
        &message[..at]
    } else {
        message
    }
}

/// What serde-saphyr hands over: its own guess at each scalar, plus where the node is.
struct RawNode {
    line: usize,
    /// Byte range of the node's definition (for aliases: of the anchored node).
    source: Option<(usize, usize)>,
    value: RawValue,
}

enum RawValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<RawNode>),
    Map(Vec<(RawNode, RawNode)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawValue>::deserialize(d)?;
        let span = spanned.defined.span();
        let source = match (span.byte_offset(), span.byte_len()) {
            (Some(offset), Some(len)) => Some((offset as usize, len as usize)),
            _ => None,
        };
        Ok(RawNode {
            line: spanned.referenced.line() as usize,
            source,
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_none<E>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
                RawValue::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<RawValue, E> {
                Ok(RawValue::Int(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<RawValue, E> {
                Ok(RawValue::Float(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
                Ok(RawValue::Str(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<RawValue, E> {
                Ok(RawValue::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(RawValue::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    entries.push(entry);
                }
                Ok(RawValue::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl RawNode {
    fn resolve(self, text: &str, offset: usize) -> Node {
        let raw_text = self
            .source
            .and_then(|(offset, len)| text.get(offset..offset.checked_add(len)?));
        let value = match self.value {
            RawValue::Seq(items) => {
                Value::Seq(items.into_iter().map(|n| n.resolve(text, offset)).collect())
            }
            RawValue::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| {
                        let key_line = key.line + offset;
                        let key = key.resolve(text, offset);
                        let mut value = value.resolve(text, offset);
                        if matches!(value.value, Value::Map(_) | Value::Seq(_)) {
                            value.line = key_line;
                        }
                        (scalar_text(&key), value)
                    })
                    .collect(),
            ),
            RawValue::Str(s) => Value::Str(s),
            other => match raw_text {
                Some(raw) if is_plain(raw) => core_schema(raw.trim()),
                _ => match other {
                    RawValue::Null => Value::Null,
                    RawValue::Bool(b) => Value::Bool(b),
                    RawValue::Int(i) => Value::Int(i.into()),
                    RawValue::Float(f) => Value::Float(f),
                    _ => Value::Null,
                },
            },
        };
        Node {
            line: self.line + offset,
            value,
        }
    }
}

pub(crate) fn scalar_text(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => s.clone(),
        Value::Null => String::new(),
        other => Node {
            line: 0,
            value: other.clone(),
        }
        .describe(),
    }
}

/// A plain (unquoted, untagged, not block) scalar's source text.
fn is_plain(raw: &str) -> bool {
    !raw.starts_with(['"', '\'', '|', '>', '!', '&', '*'])
}

/// The YAML 1.2 core schema's reading of a plain scalar.
pub(crate) fn core_schema(raw: &str) -> Value {
    match raw {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = raw.parse::<i128>() {
            return Value::Int(i.into());
        }
    }
    if let Some(oct) = raw.strip_prefix("0o") {
        if let Ok(i) = i128::from_str_radix(oct, 8) {
            return Value::Int(i.into());
        }
    }
    if let Some(hex) = raw.strip_prefix("0x") {
        if let Ok(i) = i128::from_str_radix(hex, 16) {
            return Value::Int(i.into());
        }
    }
    let float_chars = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if float_chars && digits.bytes().any(|b| b.is_ascii_digit()) && !digits.starts_with(['e', 'E'])
    {
        if let Ok(f) = raw.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_core_schema() {
        let docs = parse_documents(
            "a: y\nb: 0080\nc: 010.010.001.101\nd:\n  - x: \"1\"\n---\n---\n{\"e\": [1, null]}\n",
            1,
        )
        .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].get("a").map(|n| &n.value),
            Some(&Value::Str("y".into()))
        );
        assert_eq!(
            docs[0].get("b").map(|n| &n.value),
            Some(&Value::Int(80.into()))
        );
        assert_eq!(docs[0].str_at(&["c"]), Some("010.010.001.101"));
        assert_eq!(docs[0].line_of("d[0].x"), 5);
        assert_eq!(docs[0].line_of("d"), 4);
        assert_eq!(docs[0].line_of("d[3].zz"), 4);
        assert_eq!(docs[1].line_of("e[1]"), 8);
    }

    #[test]
    fn lines_count_from_the_first_line_given() {
        let docs = parse_documents("a:\n  b: [1]\n", 41).unwrap_or_default();
        assert_eq!(docs[0].line, 41);
        assert_eq!(docs[0].line_of("a.b"), 42);
        let error = parse_documents("a: [\n", 10).err().and_then(|e| e.line);
        assert!(error.is_some_and(|l| l >= 10), "{error:?}");
    }
}
