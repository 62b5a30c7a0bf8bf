//! JSON read from a stream into [`Node`]s with their lines, one object at a time.
//!
//! `kubectl get -o json` prints one `List` whose `items` hold every object; a large cluster's
//! dump is gigabytes. [`JsonStream`] hands each item over as soon as it is read and keeps
//! nothing of it, so memory holds one object, whatever the input's length. Hand-written
//! because no JSON crate reports the line of every value (serde_json knows only the line of
//! an error); the tests check it against serde_json.
//!
//! Values read as the YAML path reads JSON (JSON is YAML): integers as integers however
//! large, other numbers as floats.

use std::io::Read;

use crate::limits::{MAX_DEPTH, MAX_OBJECT_BYTES, MAX_OBJECT_NODES};
use crate::node::{Deferred, Node, Parsed, SyntaxError, Value};

/// JSON values read from `reader`: top-level values one after another (whitespace, or YAML's
/// `---` line, between them), each top-level object's `items` list item by item.
pub(crate) struct JsonStream<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    line: usize,
    /// Nodes the current object may still make.
    nodes_left: usize,
    /// String bytes the current object may still hold.
    bytes_left: usize,
    /// Bytes consumed before `buf[0]`.
    consumed: u64,
}

const BUFFER: usize = 1 << 20;

impl JsonStream<std::io::Empty> {
    /// A text already in memory, read where it lies (a cut-out List item).
    fn in_memory(text: Vec<u8>, first_line: usize) -> Self {
        JsonStream {
            reader: std::io::empty(),
            end: text.len(),
            buf: text,
            pos: 0,
            eof: true,
            line: first_line,
            nodes_left: MAX_OBJECT_NODES,
            bytes_left: MAX_OBJECT_BYTES,
            consumed: 0,
        }
    }
}

impl<R: Read> JsonStream<R> {
    /// `first_line`: the line the reader starts on.
    pub(crate) fn new(reader: R, first_line: usize) -> Self {
        JsonStream {
            reader,
            buf: vec![0; BUFFER],
            pos: 0,
            end: 0,
            eof: false,
            line: first_line,
            nodes_left: MAX_OBJECT_NODES,
            bytes_left: MAX_OBJECT_BYTES,
            consumed: 0,
        }
    }

    /// Bytes read so far (for progress).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    /// Reads everything, handing each object to `visit`. Stops at the first syntax error:
    /// past it, nothing says where the next object starts.
    /// While `defer` says so, List items are handed over unparsed ([`Parsed::Deferred`]):
    /// cut out by their brackets, for another thread to parse.
    pub(crate) fn run(
        &mut self,
        defer: &dyn Fn() -> bool,
        visit: &mut dyn FnMut(Parsed, u64),
    ) -> Result<(), SyntaxError> {
        loop {
            self.skip_whitespace()?;
            let Some(byte) = self.peek()? else {
                return Ok(());
            };
            if self.ahead(3)? == b"---" {
                self.document_separator()?;
                continue;
            }
            self.new_object();
            if byte == b'{' {
                self.top_object(defer, visit)?;
            } else {
                let node = self.value(0, Role::Other)?;
                visit(Parsed::Object(node), self.bytes_read());
            }
        }
    }

    fn new_object(&mut self) {
        self.nodes_left = MAX_OBJECT_NODES;
        self.bytes_left = MAX_OBJECT_BYTES;
    }

    /// A top-level object, with its `items` handed over one at a time.
    fn top_object(
        &mut self,
        defer: &dyn Fn() -> bool,
        visit: &mut dyn FnMut(Parsed, u64),
    ) -> Result<(), SyntaxError> {
        let line = self.line;
        self.pos += 1;
        let mut entries = Vec::new();
        let mut streamed = false;
        self.members(b'}', &mut |this| {
            let (key, key_line) = this.key()?;
            if key == "items" && this.peek()? == Some(b'[') {
                this.pos += 1;
                this.items(defer, visit)?;
                streamed = true;
                entries.push((key, leaf(key_line, Value::Seq(Vec::new()))));
            } else {
                let value = this.member(1, Role::Object.child(&key), key_line)?;
                entries.push((key, value));
            }
            Ok(())
        })?;
        let node = leaf(line, Value::Map(entries));
        let parsed = if streamed {
            Parsed::Envelope(node)
        } else {
            Parsed::Object(node)
        };
        visit(parsed, self.bytes_read());
        Ok(())
    }

    fn items(
        &mut self,
        defer: &dyn Fn() -> bool,
        visit: &mut dyn FnMut(Parsed, u64),
    ) -> Result<(), SyntaxError> {
        self.members(b']', &mut |this| {
            if defer() {
                let (text, line) = this.cut_value()?;
                let work = move || {
                    vec![
                        JsonStream::in_memory(text, line)
                            .whole_item()
                            .map(Parsed::Object),
                    ]
                };
                visit(Parsed::Deferred(Deferred::new(work)), this.bytes_read());
            } else {
                this.new_object();
                let item = this.value(1, Role::Object)?;
                visit(Parsed::Object(item), this.bytes_read());
            }
            Ok(())
        })
    }

    /// A cut-out List item: one value and nothing after it.
    fn whole_item(&mut self) -> Result<Node, SyntaxError> {
        let item = self.value(1, Role::Object)?;
        self.skip_whitespace()?;
        match self.peek()? {
            None => Ok(item),
            Some(byte) => Err(self.error(format!("expected `,` or `]`, found {}", describe(byte)))),
        }
    }

    /// The text of the value that starts here, and its line: cut at the bracket that closes
    /// it (or, for a scalar, before the `,` `]` or space that ends it), strings skipped
    /// whole. Its syntax is checked by whoever parses it.
    fn cut_value(&mut self) -> Result<(Vec<u8>, usize), SyntaxError> {
        let line = self.line;
        let mut text = Vec::new();
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let chunk = &self.buf[self.pos..self.end];
            let mut end = None;
            for (at, &byte) in chunk.iter().enumerate() {
                if in_string {
                    match (escaped, byte) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_string = false,
                        (false, b'\n') => self.line += 1,
                        _ => {}
                    }
                    continue;
                }
                match byte {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => {
                        end = Some(at);
                        break;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(at + 1);
                            break;
                        }
                    }
                    b',' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => {
                        end = Some(at);
                        break;
                    }
                    b'\n' => self.line += 1,
                    _ => {}
                }
            }
            let taken = end.unwrap_or(chunk.len());
            if text.len() + taken > MAX_OBJECT_BYTES {
                return Err(self.error(format!(
                    "one object's text exceeds {MAX_OBJECT_BYTES} bytes (the limit for one object)"
                )));
            }
            text.extend_from_slice(&chunk[..taken]);
            self.pos += taken;
            if end.is_some() {
                return Ok((text, line));
            }
            if !self.fill()? {
                // The end of the input inside the value: its parser says what is missing.
                return Ok((text, line));
            }
        }
    }

    /// The members of an object or array whose opening bracket was just read, up to
    /// `close`: `each` reads one (for an object, `key: value`), this the commas between.
    fn members(
        &mut self,
        close: u8,
        each: &mut dyn FnMut(&mut Self) -> Result<(), SyntaxError>,
    ) -> Result<(), SyntaxError> {
        self.skip_whitespace()?;
        if self.peek()? == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace()?;
            each(self)?;
            if self.separator(close)? {
                return Ok(());
            }
        }
    }

    /// An object member's key and its line, up to the value.
    fn key(&mut self) -> Result<(String, usize), SyntaxError> {
        let line = self.line;
        let key = self.string()?;
        self.skip_whitespace()?;
        self.expect(b':')?;
        self.skip_whitespace()?;
        Ok((key, line))
    }

    /// An object member's value; a collection takes its key's line, as the YAML path has it.
    fn member(&mut self, depth: usize, role: Role, key_line: usize) -> Result<Node, SyntaxError> {
        let mut value = self.value(depth, role)?;
        if matches!(value.value, Value::Map(_) | Value::Seq(_)) {
            value.line = key_line;
        }
        Ok(value)
    }

    /// YAML's document marker between JSON documents: `---` and the rest of its line.
    fn document_separator(&mut self) -> Result<(), SyntaxError> {
        for _ in 0..3 {
            self.expect(b'-')?;
        }
        while let Some(byte) = self.peek()? {
            if byte == b'\n' {
                break;
            }
            if !matches!(byte, b' ' | b'\t' | b'\r') {
                return Err(self.error(format!(
                    "unexpected {} after `---` (a JSON stream takes only `---` lines between documents)",
                    describe(byte)
                )));
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// One value and what it holds; under [`Role::Skipped`] read for its syntax only, and
    /// nothing kept.
    fn value(&mut self, depth: usize, role: Role) -> Result<Node, SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "nested deeper than {MAX_DEPTH} levels (the limit for one object)"
            )));
        }
        if self.nodes_left == 0 {
            return Err(self.error(format!(
                "one object holds more than {MAX_OBJECT_NODES} values (the limit for one object)"
            )));
        }
        self.nodes_left -= 1;
        let line = self.line;
        let Some(byte) = self.peek()? else {
            return Err(self.error("the text ends where a value should start".into()));
        };
        let value = match byte {
            b'{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                self.members(b'}', &mut |this| {
                    let (key, key_line) = this.key()?;
                    let child = role.child(&key);
                    let value = this.member(depth + 1, child, key_line)?;
                    if child != Role::Skipped {
                        entries.push((key, value));
                    }
                    Ok(())
                })?;
                Value::Map(entries)
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.members(b']', &mut |this| {
                    let item = this.value(depth + 1, role.child_item())?;
                    if role != Role::Skipped {
                        items.push(item);
                    }
                    Ok(())
                })?;
                Value::Seq(items)
            }
            b'"' => Value::Str(self.string()?),
            b't' => self.literal("true", Value::Bool(true))?,
            b'f' => self.literal("false", Value::Bool(false))?,
            b'n' => self.literal("null", Value::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            other => {
                return Err(self.error(format!("expected a value, found {}", describe(other))));
            }
        };
        Ok(leaf(line, value))
    }

    /// After a collection's element: `true` at its end (`close`), `false` after a comma.
    fn separator(&mut self, close: u8) -> Result<bool, SyntaxError> {
        self.skip_whitespace()?;
        match self.peek()? {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(byte) if byte == close => {
                self.pos += 1;
                Ok(true)
            }
            Some(byte) => Err(self.error(format!(
                "expected `,` or `{}`, found {}",
                close as char,
                describe(byte)
            ))),
            None => Err(self.error(format!(
                "the text ends before the closing `{}`",
                close as char
            ))),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, SyntaxError> {
        for expected in word.bytes() {
            if self.peek()? != Some(expected) {
                return Err(self.error(format!("expected `{word}`")));
            }
            self.pos += 1;
        }
        Ok(value)
    }

    /// A number as the YAML core schema reads it: an integer when it has no fraction or
    /// exponent and fits 128 bits, a float otherwise.
    fn number(&mut self) -> Result<Value, SyntaxError> {
        let mut text = String::new();
        while let Some(byte) = self.peek()? {
            if !matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') || text.len() > 400 {
                break;
            }
            text.push(byte as char);
            self.pos += 1;
        }
        let digits = text.strip_prefix('-').unwrap_or(&text);
        let grammar_ok = digits.starts_with(|c: char| c.is_ascii_digit())
            && !(digits.len() > 1
                && digits.starts_with('0')
                && digits.as_bytes()[1].is_ascii_digit());
        if grammar_ok && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(integer) = text.parse::<i128>() {
                return Ok(Value::Int(integer));
            }
        }
        match text.parse::<f64>() {
            // 1e309 overflows: out of range, as serde_json and the YAML path say.
            Ok(float) if !float.is_finite() => {
                Err(self.error(format!("{text:?} is out of a number's range")))
            }
            Ok(float) if grammar_ok && !text.ends_with('.') && !text.contains(".e") => {
                Ok(Value::Float(float))
            }
            _ => Err(self.error(format!("{text:?} is not a JSON number"))),
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        if self.peek()? != Some(b'"') {
            let found = self.peek()?.map_or("the end of the text".into(), describe);
            return Err(self.error(format!("expected a string, found {found}")));
        }
        self.pos += 1;
        // Most strings close in the buffer with no escape: one exact allocation.
        let chunk = &self.buf[self.pos..self.end];
        if let Some(end) = chunk
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        {
            if chunk[end] == b'"' {
                let text = std::str::from_utf8(&chunk[..end]).map(str::to_owned);
                self.pos += end + 1;
                return match text {
                    Ok(text) => self.charge(text),
                    Err(e) => Err(self.error(format!(
                        "not UTF-8 text (byte {} of a string)",
                        e.valid_up_to()
                    ))),
                };
            }
        }
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let chunk = &self.buf[self.pos..self.end];
            let stop = chunk
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let taken = stop.unwrap_or(chunk.len());
            bytes.extend_from_slice(&chunk[..taken]);
            self.pos += taken;
            if stop.is_none() {
                if !self.fill()? {
                    return Err(self.error("the text ends inside a string".into()));
                }
                continue;
            }
            match self.buf[self.pos] {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape(&mut bytes)?;
                }
                other => {
                    return Err(self.error(format!(
                        "control character {} inside a string (JSON needs it escaped)",
                        describe(other)
                    )));
                }
            }
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            self.error(format!(
                "not UTF-8 text (byte {} of a string)",
                e.utf8_error().valid_up_to()
            ))
        })?;
        self.charge(text)
    }

    /// Counts a string against the object's budget.
    fn charge(&mut self, text: String) -> Result<String, SyntaxError> {
        if text.len() > self.bytes_left {
            return Err(self.error(format!(
                "one object's strings exceed {MAX_OBJECT_BYTES} bytes (the limit for one object)"
            )));
        }
        self.bytes_left -= text.len();
        Ok(text)
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
        let Some(byte) = self.next()? else {
            return Err(self.error("the text ends inside a string".into()));
        };
        let simple = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut code = self.hex4()?;
                if (0xd800..0xdc00).contains(&code) {
                    // A surrogate pair: the low half must follow as another \u escape.
                    if self.next()? != Some(b'\\') || self.next()? != Some(b'u') {
                        return Err(self.error("a lone surrogate in a \\u escape".into()));
                    }
                    let low = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(self.error("a lone surrogate in a \\u escape".into()));
                    }
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                }
                let Some(c) = char::from_u32(code) else {
                    return Err(self.error("a lone surrogate in a \\u escape".into()));
                };
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                return Ok(());
            }
            other => {
                return Err(self.error(format!("unknown escape \\{}", other as char)));
            }
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .next()?
                .and_then(|b| (b as char).to_digit(16))
                .ok_or_else(|| self.error("a \\u escape needs four hex digits".into()))?;
            code = code * 16 + digit;
        }
        Ok(code)
    }

    fn expect(&mut self, expected: u8) -> Result<(), SyntaxError> {
        match self.peek()? {
            Some(byte) if byte == expected => {
                self.pos += 1;
                Ok(())
            }
            Some(byte) => Err(self.error(format!(
                "expected `{}`, found {}",
                expected as char,
                describe(byte)
            ))),
            None => Err(self.error(format!(
                "the text ends where `{}` should be",
                expected as char
            ))),
        }
    }

    /// Skips spaces, tabs and line ends, counting lines. The hot loop of a kubectl dump,
    /// whose indentation is most of its bytes: runs of spaces go eight at a time.
    fn skip_whitespace(&mut self) -> Result<(), SyntaxError> {
        const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
        loop {
            let buf = &self.buf[self.pos..self.end];
            let mut at = 0;
            while at < buf.len() {
                while let Some(chunk) = buf.get(at..at + 8) {
                    if u64::from_ne_bytes(chunk.try_into().unwrap_or_default()) != SPACES {
                        break;
                    }
                    at += 8;
                }
                match buf.get(at) {
                    Some(b' ' | b'\t' | b'\r') => at += 1,
                    Some(b'\n') => {
                        self.line += 1;
                        at += 1;
                    }
                    Some(_) => {
                        self.pos += at;
                        return Ok(());
                    }
                    None => break,
                }
            }
            self.pos = self.end;
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, SyntaxError> {
        if self.pos == self.end && !self.fill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn next(&mut self) -> Result<Option<u8>, SyntaxError> {
        let byte = self.peek()?;
        if byte.is_some() {
            self.pos += 1;
        }
        Ok(byte)
    }

    /// The next `n` bytes (fewer at the end of the input), unconsumed: the buffer keeps
    /// what is left of it and reads on behind.
    fn ahead(&mut self, n: usize) -> Result<&[u8], SyntaxError> {
        if self.end - self.pos < n && !self.eof {
            self.buf.copy_within(self.pos..self.end, 0);
            self.consumed += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
            while self.end < n && !self.eof {
                match self.reader.read(&mut self.buf[self.end..]) {
                    Ok(0) => self.eof = true,
                    Ok(read) => self.end += read,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(SyntaxError {
                            line: Some(self.line),
                            message: format!("cannot read: {e}"),
                        });
                    }
                }
            }
        }
        Ok(&self.buf[self.pos..self.end.min(self.pos + n)])
    }

    /// Refills an exhausted buffer; `false` at the end of the input.
    fn fill(&mut self) -> Result<bool, SyntaxError> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.consumed += self.end as u64;
        self.pos = 0;
        self.end = 0;
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(SyntaxError {
                        line: Some(self.line),
                        message: format!("cannot read: {e}"),
                    });
                }
            }
        }
    }

    fn error(&self, message: String) -> SyntaxError {
        SyntaxError {
            line: Some(self.line),
            message,
        }
    }
}

/// Where a value stands, for passing over `metadata.managedFields` unread: it is a third of
/// a real dump's bytes, and kube-proxy never reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A top-level object or a List item.
    Object,
    Metadata,
    Skipped,
    Other,
}

impl Role {
    fn child(self, key: &str) -> Role {
        match (self, key) {
            (Role::Object, "metadata") => Role::Metadata,
            (Role::Metadata, "managedFields") | (Role::Skipped, _) => Role::Skipped,
            _ => Role::Other,
        }
    }

    fn child_item(self) -> Role {
        match self {
            Role::Skipped => Role::Skipped,
            _ => Role::Other,
        }
    }
}

fn leaf(line: usize, value: Value) -> Node {
    Node { line, value }
}

fn describe(byte: u8) -> String {
    match byte {
        b' '..=b'~' => format!("`{}`", byte as char),
        other => format!("byte 0x{other:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Vec<(bool, Node)>, SyntaxError> {
        let mut out = Vec::new();
        JsonStream::new(text.as_bytes(), 1).run(&|| false, &mut |parsed, _| match parsed {
            Parsed::Object(node) => out.push((false, node)),
            Parsed::Envelope(node) => out.push((true, node)),
            Parsed::Deferred(_) => panic!("the JSON reader parses as it reads"),
        })?;
        Ok(out)
    }

    /// The same tree as serde_json reads, lines aside.
    fn to_json(node: &Node) -> serde_json::Value {
        match &node.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => i64::try_from(*i).map_or_else(|_| (*i as f64).into(), Into::into),
            Value::Float(f) => (*f).into(),
            Value::Str(s) => s.as_str().into(),
            Value::Seq(items) => items.iter().map(to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    #[test]
    fn a_list_streams_item_by_item_with_lines() {
        let text = "{\n  \"apiVersion\": \"v1\",\n  \"items\": [\n    {\"kind\": \"Service\",\n     \"spec\": {\"ports\": [\n       {\"port\": 80}]}},\n    {\"kind\": \"Node\"}\n  ],\n  \"kind\": \"List\"\n}\n";
        let parsed = read_all(text).unwrap_or_default();
        let kinds: Vec<(bool, Option<&str>)> = parsed
            .iter()
            .map(|(e, n)| (*e, n.str_at(&["kind"])))
            .collect();
        assert_eq!(
            kinds,
            [
                (false, Some("Service")),
                (false, Some("Node")),
                (true, Some("List"))
            ]
        );
        assert_eq!(parsed[0].1.line, 4);
        assert_eq!(parsed[0].1.line_of("spec.ports[0].port"), 6);
        assert_eq!(parsed[0].1.line_of("spec.ports"), 5);
        assert_eq!(parsed[1].1.line, 7);
        assert_eq!(parsed[2].1.line_of("items"), 3);
        assert_eq!(parsed[2].1.line_of("kind"), 9);
    }

    #[test]
    fn objects_without_items_and_separated_documents() {
        let parsed =
            read_all("{\"kind\": \"Service\"}\n---\n{\"kind\": \"Node\", \"items\": 3}\n[1]")
                .unwrap_or_default();
        let envelopes: Vec<bool> = parsed.iter().map(|(e, _)| *e).collect();
        assert_eq!(envelopes, [false, false, false]);
        assert_eq!(parsed[1].1.line, 3);
        // A negative number is a value, not the start of a `---` line (found by the
        // generated test below).
        let numbers = read_all("-1\n---\n-2").unwrap_or_default();
        let values: Vec<&Value> = numbers.iter().map(|(_, n)| &n.value).collect();
        assert_eq!(values, [&Value::Int(-1), &Value::Int(-2)]);
    }

    #[test]
    fn values_match_serde_json() {
        let text = r#"{"a": [1, -2, 3.5, 1e3, 170141183460469231731687303715884105728, true, false, null],
            "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 ünï", "e": {}, "l": [], "n": {"x": [{"y": "z"}]}}"#;
        let parsed = read_all(text).unwrap_or_default();
        let expected: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(to_json(&parsed[0].1), expected);
        assert_eq!(parsed[0].1.get("a").map(|a| a.line), Some(1));
        // Where serde_json reads a float, YAML's core schema (and so the YAML path) an integer.
        let zero = read_all("[-0]").unwrap_or_default();
        assert_eq!(zero[0].1.value, Value::Seq(vec![leaf(1, Value::Int(0))]));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("{\"a\": 1,\n}", 2, "expected a string"),
            ("{\"a\": [1\n\n", 3, "ends before the closing"),
            ("{\"a\": 01}", 1, "not a JSON number"),
            ("{\"a\": 1.}", 1, "not a JSON number"),
            ("{\"a\": -1e309}", 1, "out of a number's range"),
            ("{\"a\": tru}", 1, "expected `true`"),
            ("{\"a\": \"x\ny\"}", 1, "control character"),
            ("{\"a\": \"\\q\"}", 1, "unknown escape"),
            ("{\"a\": \"\\ud800\"}", 1, "lone surrogate"),
            ("{\"a\" 1}", 1, "expected `:`"),
            ("{\n\"a\": {\"b\": 1} \"c\"}", 2, "expected `,` or `}`"),
            ("{}\n--- x", 2, "after `---`"),
        ];
        for (text, line, message) in cases {
            let mut stream = JsonStream::new(text.as_bytes(), 1);
            let error = stream.run(&|| false, &mut |_, _| {}).err();
            let error = error.unwrap_or(SyntaxError {
                line: None,
                message: "no error".into(),
            });
            assert!(
                error.message.contains(message),
                "{text:?}: {}",
                error.message
            );
            assert_eq!(error.line, Some(line), "{text:?}: {}", error.message);
        }
    }

    #[test]
    fn managed_fields_are_read_for_syntax_only() {
        let text = r#"{"items": [{"metadata": {"name": "a", "managedFields": [{"f": {"x": [1]}}]},
            "spec": {"managedFields": 1}}], "metadata": {"managedFields": 2}}"#;
        let parsed = read_all(text).unwrap_or_default();
        assert_eq!(
            parsed[0]
                .1
                .get("metadata")
                .and_then(|m| m.get("managedFields")),
            None
        );
        assert_eq!(parsed[0].1.str_at(&["metadata", "name"]), Some("a"));
        assert!(
            parsed[0]
                .1
                .get("spec")
                .and_then(|m| m.get("managedFields"))
                .is_some()
        );
        // The top-level object is an object too (a single Service, or here the List).
        let list_metadata = parsed[1].1.get("metadata");
        assert_eq!(list_metadata.and_then(|m| m.get("managedFields")), None);
        let broken = r#"{"items": [{"metadata": {"managedFields": [{"f" 1}]}}]}"#;
        assert!(
            read_all(broken).is_err(),
            "a syntax error there is still one"
        );
    }

    #[test]
    fn strings_must_be_utf8() {
        let error = JsonStream::new(&b"{\"a\": \"\xff\"}"[..], 1)
            .run(&|| false, &mut |_, _| {})
            .err();
        assert!(error.is_some_and(|e| e.message.contains("not UTF-8")));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let error = read_all(&deep).err().map(|e| e.message).unwrap_or_default();
        assert!(error.contains("nested deeper"), "{error}");
        let fine = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
        assert!(read_all(&fine).is_ok());
    }

    #[test]
    fn values_spanning_buffer_refills_read_whole() {
        // A reader that hands over one byte at a time: every value crosses a refill.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = first;
                self.0 = rest;
                Ok(1)
            }
        }
        let text = "{\"items\": [{\"name\": \"w\\u00e9b\", \"port\": 8080, \"ok\": true}]}";
        let mut nodes = Vec::new();
        JsonStream::new(Trickle(text.as_bytes()), 1)
            .run(&|| false, &mut |parsed, _| {
                if let Parsed::Object(node) = parsed {
                    nodes.push(node);
                }
            })
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(nodes[0].str_at(&["name"]), Some("wéb"));
        assert_eq!(
            nodes[0].get("port").map(|n| &n.value),
            Some(&Value::Int(8080))
        );
    }

    mod generated {
        use super::{read_all, to_json};
        use proptest::prelude::*;
        use serde_json::Value as Json;

        fn json() -> impl Strategy<Value = Json> {
            let leaf = prop_oneof![
                Just(Json::Null),
                any::<bool>().prop_map(Json::from),
                any::<i64>().prop_map(Json::from),
                // Eighths: exact in binary and in short decimals (serde_json's default float
                // reading can miss the last bit where Rust's is exact).
                (-4_000_000i32..4_000_000).prop_map(|n| Json::from(f64::from(n) / 8.0)),
                "[a-z\"\\\\/\u{e9}\u{1F600}\n\t ]{0,12}".prop_map(Json::from),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Json::from),
                    prop::collection::btree_map("[a-zA-Z:./-]{1,8}", inner, 0..6)
                        .prop_map(|m| Json::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]
            /// What serde_json writes, compact or pretty, reads back as serde_json reads it.
            #[test]
            fn serde_json_output_reads_back(value in json(), pretty in any::<bool>()) {
                let text = if pretty {
                    serde_json::to_string_pretty(&value)
                } else {
                    serde_json::to_string(&value)
                }.unwrap_or_default();
                let parsed = read_all(&text).map_err(|e| TestCaseError::fail(e.message))?;
                let expected: Json = serde_json::from_str(&text).unwrap_or_default();
                prop_assert_eq!(to_json(&parsed[0].1), expected);
            }

            /// Items cut out and parsed later read as items parsed in place, lines included;
            /// damaged, they give an error, never a panic.
            #[test]
            fn deferred_items_read_as_items_read_in_place(items in prop::collection::vec(json(), 0..6), pretty in any::<bool>(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let list = serde_json::json!({"apiVersion": "v1", "items": items, "kind": "List"});
                let text = if pretty {
                    serde_json::to_vec_pretty(&list)
                } else {
                    serde_json::to_vec(&list)
                }.unwrap_or_default();
                let read = |text: &[u8], defer: bool| {
                    let mut out = Vec::new();
                    let result = super::JsonStream::new(text, 1).run(&|| defer, &mut |parsed, _| {
                        match parsed {
                            super::Parsed::Deferred(work) => out.extend(work.parse().into_iter().map(|r| r.map_err(|e| e.message))),
                            other => out.push(Ok(other)),
                        }
                    });
                    (result.map_err(|e| e.message), out)
                };
                let (in_place_result, in_place) = read(&text, false);
                let (deferred_result, deferred) = read(&text, true);
                prop_assert!(in_place_result.is_ok() && deferred_result.is_ok());
                let nodes = |parsed: Vec<Result<super::Parsed, String>>| -> Vec<Option<super::Node>> {
                    parsed.into_iter().map(|p| match p {
                        Ok(super::Parsed::Object(n) | super::Parsed::Envelope(n)) => Some(n),
                        _ => None,
                    }).collect()
                };
                prop_assert_eq!(nodes(in_place), nodes(deferred));
                let mut damaged = text.clone();
                let at = at.index(damaged.len());
                damaged[at] = byte;
                let _ = read(&damaged, true);
            }

            /// Bytes cut or changed anywhere: an error or a value, never a panic, and never
            /// a value where serde_json finds an error.
            #[test]
            fn damaged_json_is_an_error_not_a_panic(value in json(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
                let mut text = serde_json::to_vec(&value).unwrap_or_default();
                let at = at.index(text.len().max(1));
                if cut { text.truncate(at) } else if let Some(b) = text.get_mut(at) { *b = byte }
                let mut ours = Vec::new();
                let result = super::JsonStream::new(text.as_slice(), 1).run(&|| false, &mut |parsed, _| ours.push(parsed));
                let theirs = serde_json::from_slice::<Json>(&text);
                if result.is_ok() && ours.len() == 1 {
                    prop_assert!(theirs.is_ok(), "read {:?}", String::from_utf8_lossy(&text));
                }
            }
        }
    }
}
