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

mod cut;

use std::io::Read;

use cut::Cutter;

use crate::limits::{MAX_DEPTH, MAX_OBJECT_BYTES, MAX_OBJECT_NODES, too_long};
use crate::node::{Deferred, Node, Parsed, SyntaxError, Value};
use crate::scan::leading_spaces;

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
    /// Where strings with escapes are unescaped, kept between strings.
    scratch: Vec<u8>,
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
            scratch: Vec::new(),
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
            scratch: Vec::new(),
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
        let mut cutter = Cutter::default();
        loop {
            let chunk = &self.buf[self.pos..self.end];
            let scanned = cutter.scan(chunk);
            self.line += scanned.newlines;
            let taken = scanned.taken;
            if text.len() + taken > MAX_OBJECT_BYTES {
                return Err(too_long(self.line));
            }
            text.extend_from_slice(&chunk[..taken]);
            self.pos += taken;
            if scanned.ended {
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
        self.key_with(str::to_owned)
    }

    /// [`Self::key`], with what `keep` makes of the key's text.
    fn key_with<T>(&mut self, keep: impl FnOnce(&str) -> T) -> Result<(T, usize), SyntaxError> {
        let line = self.line;
        let key = self.string_with(keep)?;
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
                    if role == Role::Skipped {
                        this.key_with(|_| ())?;
                        this.value(depth + 1, Role::Skipped)?;
                        return Ok(());
                    }
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
            b'"' if role == Role::Skipped => {
                self.string_with(|_| ())?;
                Value::Null
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
        let mut bytes = [0u8; 401];
        let mut len = 0;
        while let Some(byte) = self.peek()? {
            if !matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') || len == bytes.len()
            {
                break;
            }
            bytes[len] = byte;
            len += 1;
            self.pos += 1;
        }
        // Only ASCII was taken.
        let text = std::str::from_utf8(&bytes[..len]).unwrap_or_default();
        if !is_json_number(text) {
            return Err(self.error(format!("{text:?} is not a JSON number")));
        }
        if !text.contains(['.', 'e', 'E'])
            && let Ok(integer) = text.parse::<i128>()
        {
            return Ok(Value::Int(integer.into()));
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Ok(Value::Float(float)),
            // 1e309 overflows: out of range, as serde_json and the YAML path say.
            _ => Err(self.error(format!("{text:?} is out of a number's range"))),
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.string_with(str::to_owned)
    }

    /// Reads a string, checked and counted against the object's budget, and hands its text
    /// to `keep`: nothing is allocated for a string that is not kept.
    fn string_with<T>(&mut self, keep: impl FnOnce(&str) -> T) -> Result<T, SyntaxError> {
        if self.peek()? != Some(b'"') {
            let found = self.peek()?.map_or("the end of the text".into(), describe);
            return Err(self.error(format!("expected a string, found {found}")));
        }
        self.pos += 1;
        // Most strings close in the buffer with no escape: read where they lie.
        let chunk = &self.buf[self.pos..self.end];
        if let Some(PlainRun { end, ascii }) = plain_run(chunk)
            && chunk[end] == b'"'
        {
            let start = self.pos;
            self.pos += end + 1;
            self.charge(end)?;
            let bytes = &self.buf[start..start + end];
            if ascii {
                // SAFETY: every byte is below 0x80, and ASCII text is UTF-8. (Checking again
                // with `from_utf8` was a tenth of a dump's parsing: its strings are short.)
                return Ok(keep(unsafe { std::str::from_utf8_unchecked(bytes) }));
            }
            return match std::str::from_utf8(bytes) {
                Ok(text) => Ok(keep(text)),
                Err(e) => Err(self.error(format!(
                    "not UTF-8 text (byte {} of a string)",
                    e.valid_up_to()
                ))),
            };
        }
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let read = self.escaped_string(&mut bytes);
        let kept = read.and_then(|()| match std::str::from_utf8(&bytes) {
            Ok(text) => {
                self.charge(text.len())?;
                Ok(keep(text))
            }
            Err(e) => Err(self.error(format!(
                "not UTF-8 text (byte {} of a string)",
                e.valid_up_to()
            ))),
        });
        self.scratch = bytes;
        kept
    }

    /// The rest of a string that holds escapes or crosses the buffer's end, unescaped into
    /// `bytes`, up to and past its closing quote.
    fn escaped_string(&mut self, bytes: &mut Vec<u8>) -> Result<(), SyntaxError> {
        loop {
            let chunk = &self.buf[self.pos..self.end];
            let stop = plain_run(chunk).map(|run| run.end);
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
                    return Ok(());
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape(bytes)?;
                }
                other => {
                    return Err(self.error(format!(
                        "control character {} inside a string (JSON needs it escaped)",
                        describe(other)
                    )));
                }
            }
        }
    }

    /// Counts a string against the object's budget.
    fn charge(&mut self, len: usize) -> Result<(), SyntaxError> {
        if len > self.bytes_left {
            return Err(self.error(format!(
                "one object's strings exceed {MAX_OBJECT_BYTES} bytes (the limit for one object)"
            )));
        }
        self.bytes_left -= len;
        Ok(())
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

    /// Skips spaces, tabs and line ends, counting lines. Most calls find none (a key's colon
    /// or a value's comma follows at once) and return here.
    #[inline(always)]
    fn skip_whitespace(&mut self) -> Result<(), SyntaxError> {
        match self.buf[..self.end].get(self.pos) {
            Some(b' ' | b'\n' | b'\t' | b'\r') | None => self.skip_whitespace_run(),
            Some(_) => Ok(()),
        }
    }

    /// [`Self::skip_whitespace`] past a run: the hot loop of a kubectl dump, whose
    /// indentation is most of its bytes.
    fn skip_whitespace_run(&mut self) -> Result<(), SyntaxError> {
        loop {
            let rest = &self.buf[self.pos..self.end];
            let mut at = 0;
            loop {
                at += leading_spaces(&rest[at..]);
                match rest.get(at) {
                    Some(b'\n') => self.line += 1,
                    Some(b'\t' | b'\r') => {}
                    Some(_) => {
                        self.pos += at;
                        return Ok(());
                    }
                    None => break,
                }
                at += 1;
            }
            self.pos = self.end;
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    #[inline(always)]
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
            self.read_until_unread(n)?;
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
        self.read_until_unread(1)?;
        Ok(self.pos < self.end)
    }

    /// Moves the unread bytes to the buffer's start and reads behind them until `n` bytes
    /// are unread or the input ends.
    fn read_until_unread(&mut self, n: usize) -> Result<(), SyntaxError> {
        self.buf.copy_within(self.pos..self.end, 0);
        self.consumed += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        while self.end < n && !self.eof {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(read) => self.end += read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(format!("cannot read: {e}"))),
            }
        }
        Ok(())
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

/// JSON's number grammar (RFC 8259 section 6): `-`, then `0` or digits not starting with
/// `0`, then `.` and digits, then `e` or `E`, a sign and digits; each part after the first
/// optional.
fn is_json_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    let digits = |at: &mut usize| {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    };
    let whole = digits(&mut at);
    if whole == 0 || (whole > 1 && bytes[at - whole] == b'0') {
        return false;
    }
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        if digits(&mut at) == 0 {
            return false;
        }
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if digits(&mut at) == 0 {
            return false;
        }
    }
    at == bytes.len()
}

/// Where a string's text stops being plain, and whether the bytes before it are all ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PlainRun {
    /// Where the closing quote, a backslash or a control character stands.
    end: usize,
    ascii: bool,
}

/// The [`PlainRun`] at the start of a string's text (the bytes after its opening quote),
/// eight bytes at a time.
fn plain_run(bytes: &[u8]) -> Option<PlainRun> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // A byte of the word is zero: exact for the lowest one flagged, which is all we read.
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGH;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    let mut seen = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let stops = has_zero(word ^ (ONES * u64::from(b'"')))
            | has_zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH);
        if stops != 0 {
            // Little-endian: the flag is bit 7 of the stopping byte; the bytes below it are
            // the string's.
            let flag = stops.trailing_zeros();
            seen |= word & ((1u64 << (flag & !7)) - 1);
            return Some(PlainRun {
                end: at + (flag / 8) as usize,
                ascii: seen & HIGH == 0,
            });
        }
        seen |= word;
        at += 8;
    }
    let rest = words.remainder();
    let stop = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(PlainRun {
        end: at + stop,
        ascii: seen & HIGH == 0 && rest[..stop].is_ascii(),
    })
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
mod tests;
