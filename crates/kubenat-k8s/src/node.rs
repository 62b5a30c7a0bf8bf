//! A parsed manifest: a tree of values that remembers the line of every node, whichever
//! parser (JSON or YAML) built it.

/// One node and the line (1-based) it starts on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(Integer),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys are the keys' text; the key's line is the entry's value line for collections.
    Map(Vec<(String, Node)>),
}

/// An integer of up to 128 bits, kept as two 64-bit halves: an `i128` field would align
/// every node to 16 bytes and make it larger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Integer([u64; 2]);

impl From<i128> for Integer {
    fn from(value: i128) -> Self {
        let bits = value as u128;
        Integer([bits as u64, (bits >> 64) as u64])
    }
}

impl Integer {
    pub fn get(self) -> i128 {
        ((u128::from(self.0[1]) << 64) | u128::from(self.0[0])) as i128
    }
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

    /// Forgets this object's `metadata.managedFields`: kube-proxy never reads it, and
    /// decoding its free-form `fieldsV1` trees was a third of a real dump's import time.
    /// (The JSON reader and the YAML fast path pass over it without building it.)
    pub fn drop_managed_fields(&mut self) {
        if let Value::Map(entries) = &mut self.value {
            for (key, value) in entries.iter_mut() {
                if key == "metadata" {
                    if let Value::Map(metadata) = &mut value.value {
                        metadata.retain(|(key, _)| key != "managedFields");
                    }
                }
            }
        }
    }

    /// A short rendering of a scalar for messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.get().to_string(),
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

/// A syntax error: message and line.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub line: Option<usize>,
    pub message: String,
}

/// What a reader hands over, one at a time.
pub(crate) enum Parsed {
    /// A top-level value, or one item of a top-level object's `items` list.
    Object(Node),
    /// A top-level object whose `items` were handed over one by one; they are left out of it
    /// (an empty list at the `items` key's line).
    Envelope(Node),
    /// An object or document cut out of the text but not parsed yet: whichever thread has
    /// time parses it (the reading thread when the converting one is behind, else this one).
    Deferred(Deferred),
}

/// The parsing of one cut-out text, to run on any thread.
pub(crate) struct Deferred(Box<dyn FnOnce() -> Vec<Result<Parsed, SyntaxError>> + Send>);

impl Deferred {
    pub(crate) fn new(
        work: impl FnOnce() -> Vec<Result<Parsed, SyntaxError>> + Send + 'static,
    ) -> Self {
        Deferred(Box::new(work))
    }

    pub(crate) fn parse(self) -> Vec<Result<Parsed, SyntaxError>> {
        (self.0)()
    }
}
