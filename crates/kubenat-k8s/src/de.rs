//! A serde `Deserializer` over a [`Node`] tree that reports the field path and line of a
//! type error, and of every field the target type does not know.

use std::cell::RefCell;
use std::fmt;

use serde::de::Visitor;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess};

use crate::node::{Node, Value};

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
    fn locate(mut self, path: Path<'_>, line: usize) -> Self {
        if self.located.is_none() {
            self.located = Some((path.to_string(), line));
        }
        self
    }
}

/// A field path as the API server writes it (`spec.ports[0].port`), rendered only when an
/// error or an unknown field needs it: the chain of parents lives on the stack.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// A field the target type does not have: its path and line.
pub(crate) type UnknownField = (String, usize);

/// Deserializes `T` from `node`, naming the failing field path and line on error. The
/// fields `T` does not know (those serde hands to `IgnoredAny`) are added to `unknown`.
pub(crate) fn from_node<T: de::DeserializeOwned>(
    node: &Node,
    unknown: &mut Vec<UnknownField>,
) -> Result<T, DeError> {
    let sink = RefCell::new(std::mem::take(unknown));
    let result = T::deserialize(NodeDe {
        node,
        path: Path::Root,
        unknown: &sink,
    })
    .map_err(|e| e.locate(Path::Root, node.line));
    *unknown = sink.into_inner();
    result
}

struct NodeDe<'a, 'p> {
    node: &'a Node,
    path: Path<'p>,
    unknown: &'a RefCell<Vec<UnknownField>>,
}

impl<'de> Deserializer<'de> for NodeDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => {
                let i = i.get();
                match i64::try_from(i) {
                    Ok(i) => visitor.visit_i64(i),
                    Err(_) => match u64::try_from(i) {
                        Ok(u) => visitor.visit_u64(u),
                        Err(_) => visitor.visit_i128(i),
                    },
                }
            }
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                index: 0,
                path: &self.path,
                unknown: self.unknown,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &self.path,
                unknown: self.unknown,
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

    /// What the target type skips: a field it does not have.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.unknown
            .borrow_mut()
            .push((self.path.to_string(), self.node.line));
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct SeqDe<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'p Path<'p>,
    unknown: &'a RefCell<Vec<UnknownField>>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = Path::Index(self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe {
            node,
            path,
            unknown: self.unknown,
        })
        .map(Some)
        .map_err(|e| e.locate(path, node.line))
    }
}

struct MapDe<'a, 'p> {
    entries: std::slice::Iter<'a, (String, Node)>,
    value: Option<(&'a str, &'a Node)>,
    path: &'p Path<'p>,
    unknown: &'a RefCell<Vec<UnknownField>>,
}

impl<'de> MapAccess<'de> for MapDe<'_, '_> {
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
            .map_err(|e| e.locate(Path::Key(self.path, key), node.line))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, node)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = Path::Key(self.path, key);
        seed.deserialize(NodeDe {
            node,
            path,
            unknown: self.unknown,
        })
        .map_err(|e| e.locate(path, node.line))
    }
}
