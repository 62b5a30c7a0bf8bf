//! YAML (and JSON, which is YAML) into a tree that remembers the line of every node, and a
//! serde `Deserializer` over that tree that reports the field path and line of a type error.
//!
//! serde-saphyr parses the text (anchors, merge keys, multi-document streams, alias-bomb
//! budgets) and gives every node its location through `Spanned`. Scalars are then re-read
//! from their source text with the YAML 1.2 core schema, the one Kubernetes' JSON view of
//! YAML agrees with on the values that matter: `y`/`n`/`on`/`off` stay strings, `0080` is
//! the integer 80 and `010.010.001.101` stays a string.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess};
use serde::de::{Deserialize, Visitor};
use serde_saphyr::Spanned;

/// One YAML node and the line (1-based) it starts on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys are the keys' text; the key's line is the entry's value line for collections.
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        let mut node = self;
        for key in path {
            node = node.get(key)?;
        }
        node.as_str()
    }

    /// The line of the node a field path such as `spec.ports[0].port` or
    /// `metadata.labels[kubernetes.io/service-name]` names, or of its deepest existing parent.
    pub fn line_of(&self, path: &str) -> usize {
        let mut node = self;
        for segment in split_path(path) {
            let next = match (&node.value, segment) {
                (Value::Map(_), Segment::Key(key)) => node.get(key),
                (Value::Seq(items), Segment::Index(i)) => items.get(i),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node.line
    }

    /// A short rendering of a scalar for messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').unwrap_or(inner.len());
            let content = &inner[..end];
            out.push(match content.parse::<usize>() {
                Ok(i) => Segment::Index(i),
                Err(_) => Segment::Key(content),
            });
            rest = inner.get(end + 1..).unwrap_or("");
        } else if let Some(after) = rest.strip_prefix('.') {
            rest = after;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Segment::Key(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out
}

/// A YAML syntax error: message and line.
pub(crate) struct SyntaxError {
    pub line: Option<usize>,
    pub message: String,
}

/// Every document of `text`, in order (empty documents left out).
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let raw: Vec<RawNode> =
        serde_saphyr::from_str_multiple_with_options(text, options).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize).filter(|&l| l > 0);
            let message = e.without_snippet().to_string();
            let message = strip_location_suffix(&message).to_string();
            SyntaxError { line, message }
        })?;
    Ok(raw
        .into_iter()
        .map(|node| node.resolve(text))
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
    fn resolve(self, text: &str) -> Node {
        let raw_text = self
            .source
            .and_then(|(offset, len)| text.get(offset..offset.checked_add(len)?));
        let value = match self.value {
            RawValue::Seq(items) => {
                Value::Seq(items.into_iter().map(|n| n.resolve(text)).collect())
            }
            RawValue::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| {
                        let key_line = key.line;
                        let key = key.resolve(text);
                        let mut value = value.resolve(text);
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
                    RawValue::Int(i) => Value::Int(i),
                    RawValue::Float(f) => Value::Float(f),
                    _ => Value::Null,
                },
            },
        };
        Node {
            line: self.line,
            value,
        }
    }
}

fn scalar_text(node: &Node) -> String {
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
fn core_schema(raw: &str) -> Value {
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
            return Value::Int(i);
        }
    }
    if let Some(oct) = raw.strip_prefix("0o") {
        if let Ok(i) = i128::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    }
    if let Some(hex) = raw.strip_prefix("0x") {
        if let Ok(i) = i128::from_str_radix(hex, 16) {
            return Value::Int(i);
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

// ---------------------------------------------------------------------------------------
// The Deserializer over a Node tree.

/// A deserialization error with the field path and line of the node it happened at.
#[derive(Debug)]
pub(crate) struct DeError {
    pub message: String,
    pub located: Option<(String, usize)>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            located: None,
        }
    }
}

impl DeError {
    fn locate(mut self, path: &str, line: usize) -> Self {
        if self.located.is_none() {
            self.located = Some((path.to_string(), line));
        }
        self
    }
}

/// Deserializes `T` from `node`, naming the failing field path and line on error.
pub(crate) fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: String::new(),
    })
    .map_err(|e| e.locate("", node.line))
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(i) => visitor.visit_i64(i),
                Err(_) => match u64::try_from(*i) {
                    Ok(u) => visitor.visit_u64(u),
                    Err(_) => visitor.visit_i128(*i),
                },
            },
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &self.path,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(de::Error::invalid_type(
                de::Unexpected::Other(&self.node.describe()),
                &"a string",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct SeqDe<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'a str,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|e| e.locate(&path, node.line))
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, (String, Node)>,
    value: Option<(&'a str, &'a Node)>,
    path: &'a str,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, node));
        let key_de: de::value::StrDeserializer<'_, DeError> = key.as_str().into_deserializer();
        seed.deserialize(key_de)
            .map(Some)
            .map_err(|e| e.locate(&child_path(self.path, key), node.line))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, node)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = child_path(self.path, key);
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map_err(|e| e.locate(&path, node.line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_core_schema() {
        let docs = parse_documents(
            "a: y\nb: 0080\nc: 010.010.001.101\nd:\n  - x: \"1\"\n---\n---\n{\"e\": [1, null]}\n",
        )
        .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].get("a").map(|n| &n.value),
            Some(&Value::Str("y".into()))
        );
        assert_eq!(docs[0].get("b").map(|n| &n.value), Some(&Value::Int(80)));
        assert_eq!(docs[0].str_at(&["c"]), Some("010.010.001.101"));
        assert_eq!(docs[0].line_of("d[0].x"), 5);
        assert_eq!(docs[0].line_of("d"), 4);
        assert_eq!(docs[0].line_of("d[3].zz"), 4);
        assert_eq!(docs[1].line_of("e[1]"), 8);
    }
}
