//! An input of any length, one object at a time.
//!
//! JSON (`kubectl get -o json`) goes through [`JsonStream`]. YAML is cut into documents at
//! their `---` and `...` lines, and a document's top-level `items:` block sequence (what
//! `kubectl get -o yaml` prints) into its items, each parsed on its own by serde-saphyr. Both
//! cuts are sound on the text alone: YAML forbids those marker lines inside a document, and
//! every line of a block sequence's item is indented past its `-` or is blank or a comment.
//! The one cost: an alias must name an anchor within the same item.

use std::io::BufRead;

use crate::json::JsonStream;
use crate::limits::{MAX_OBJECT_BYTES, too_long};
use crate::node::{Deferred, Node, Parsed, SyntaxError, Value};
use crate::scan::{leading_spaces, lines_inclusive};
use crate::yaml::parse_documents;

/// Every object of `reader`, in order, each with the bytes read so far; returns the bytes
/// read in all. After a JSON syntax error nothing follows; a YAML error ends only its
/// document or item. While `defer` says so, YAML texts come cut out but unparsed
/// ([`Parsed::Deferred`]), for another thread to parse.
pub(crate) fn read_objects<R: BufRead>(
    mut reader: R,
    defer: &dyn Fn() -> bool,
    visit: &mut dyn FnMut(Result<Parsed, SyntaxError>, u64),
) -> u64 {
    let mut bom = 0;
    let json = match reader.fill_buf() {
        Ok(head) => {
            if head.starts_with(b"\xef\xbb\xbf") {
                bom = 3;
            }
            looks_like_json(&head[bom..])
        }
        Err(e) => {
            let error = SyntaxError {
                line: None,
                message: format!("cannot read: {e}"),
            };
            visit(Err(error), 0);
            return 0;
        }
    };
    reader.consume(bom);
    if json {
        let mut stream = JsonStream::new(reader, 1);
        let mut on_object = |parsed, bytes| visit(Ok(parsed), bytes);
        if let Err(error) = stream.run(defer, &mut on_object) {
            visit(Err(error), stream.bytes_read());
        }
        bom as u64 + stream.bytes_read()
    } else {
        bom as u64 + YamlSplitter::new(defer, visit).run(reader)
    }
}

/// JSON when the text opens an object with a quoted key (or closes it at once); anything
/// else, flow-style YAML such as `{kind: List}` included, is read as YAML.
fn looks_like_json(head: &[u8]) -> bool {
    let mut rest = head.iter().skip_while(|b| b.is_ascii_whitespace());
    if rest.next() != Some(&b'{') {
        return false;
    }
    matches!(
        rest.find(|b| !b.is_ascii_whitespace()),
        Some(b'"') | Some(b'}')
    )
}

enum State {
    /// Lines go to the document.
    Document,
    /// The document's top-level `items:` line was read; blank lines and comments after it.
    ItemsKey { line: usize, held: Vec<String> },
    /// Inside the `items` block sequence, whose dashes stand at this column.
    Items { column: usize },
}

/// The text of one document or one item, and where its lines came from.
#[derive(Default)]
struct Text {
    text: String,
    lines: usize,
    /// `(line within the text, line of the file)` wherever the text skips lines of the file.
    jumps: Vec<(usize, usize)>,
    content: bool,
    too_long: bool,
}

impl Text {
    fn push(&mut self, line: &str, file_line: usize) {
        let expected = self.jumps.last().map(|&(at, from)| from + self.lines - at);
        if expected != Some(file_line) {
            self.jumps.push((self.lines, file_line));
        }
        if self.text.len() + line.len() > MAX_OBJECT_BYTES {
            self.too_long = true;
        } else {
            self.text.push_str(line);
        }
        self.lines += 1;
        let trimmed = line.trim_start();
        let directive = line.starts_with('%');
        let bare_marker = line.starts_with("---") && is_comment_or_blank(&line[3..]);
        if !trimmed.is_empty() && !trimmed.starts_with('#') && !directive && !bare_marker {
            self.content = true;
        }
    }

    /// The file's line for line `line` (1-based) of the text.
    fn file_line(&self, line: usize) -> usize {
        let index = line.saturating_sub(1);
        let jump = self.jumps.partition_point(|&(at, _)| at <= index);
        match jump.checked_sub(1).map(|j| self.jumps[j]) {
            Some((at, from)) => from + index - at,
            None => line,
        }
    }

    /// The parsed nodes (one per document the text holds), with the file's lines.
    fn parse(&self) -> Result<Vec<Node>, SyntaxError> {
        let first_line = self.file_line(1);
        if self.too_long {
            return Err(too_long(first_line));
        }
        if self.jumps.len() <= 1 {
            return parse_documents(&self.text, first_line);
        }
        let mut nodes = parse_documents(&self.text, 1).map_err(|mut e| {
            e.line = e.line.map(|l| self.file_line(l));
            e
        })?;
        for node in &mut nodes {
            self.relocate(node);
        }
        Ok(nodes)
    }

    fn relocate(&self, node: &mut Node) {
        node.line = self.file_line(node.line);
        match &mut node.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| self.relocate(n)),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| self.relocate(n)),
            _ => {}
        }
    }
}

fn is_comment_or_blank(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

/// `---` or `...` at the start of a line, alone or followed by a space.
fn marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

struct YamlSplitter<'v> {
    defer: &'v dyn Fn() -> bool,
    visit: &'v mut dyn FnMut(Result<Parsed, SyntaxError>, u64),
    document: Text,
    item: Option<Text>,
    /// Whether the document's items were handed over apart from it.
    split: bool,
    state: State,
    bytes: u64,
}

impl<'v> YamlSplitter<'v> {
    fn new(
        defer: &'v dyn Fn() -> bool,
        visit: &'v mut dyn FnMut(Result<Parsed, SyntaxError>, u64),
    ) -> Self {
        YamlSplitter {
            defer,
            visit,
            document: Text::default(),
            item: None,
            split: false,
            state: State::Document,
            bytes: 0,
        }
    }

    /// Returns the bytes read. Lines are read where they lie in the reader's buffer (one
    /// UTF-8 check per buffer, not per line); only a line the buffer cuts is copied.
    fn run(mut self, mut reader: impl BufRead) -> u64 {
        let mut cut_line = Vec::new();
        let mut line_number = 0;
        loop {
            let buffer = match reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let error = SyntaxError {
                        line: Some(line_number + 1),
                        message: format!("cannot read: {e}"),
                    };
                    self.finish_document();
                    (self.visit)(Err(error), self.bytes);
                    return self.bytes;
                }
            };
            let read = buffer.len();
            if read == 0 {
                break;
            }
            // The buffer's whole lines, after the end of a line the last buffer cut.
            let whole = memchr::memrchr(b'\n', buffer).map_or(0, |end| end + 1);
            let (head, lines) = match memchr::memchr(b'\n', &buffer[..whole]) {
                Some(end) if !cut_line.is_empty() => {
                    cut_line.extend_from_slice(&buffer[..=end]);
                    (Some(std::mem::take(&mut cut_line)), &buffer[end + 1..whole])
                }
                _ => (None, &buffer[..whole]),
            };
            if let Some(head) = head {
                if !self.lines(&head, &mut line_number) {
                    return self.bytes;
                }
            }
            if !self.lines(lines, &mut line_number) {
                return self.bytes;
            }
            cut_line.extend_from_slice(&buffer[whole..]);
            reader.consume(read);
        }
        if !cut_line.is_empty() {
            self.lines(&cut_line, &mut line_number);
        }
        self.finish_document();
        self.bytes
    }

    /// Each line of `text` (whole lines, the last one perhaps without its line end), counted
    /// from `line_number`; `false` after text that is not UTF-8, which ends the input.
    fn lines(&mut self, text: &[u8], line_number: &mut usize) -> bool {
        let (valid, invalid) = match std::str::from_utf8(text) {
            Ok(text) => (text, false),
            Err(e) => {
                // The lines before the one that holds the bad byte still count.
                let good =
                    memchr::memrchr(b'\n', &text[..e.valid_up_to()]).map_or(0, |end| end + 1);
                (std::str::from_utf8(&text[..good]).unwrap_or_default(), true)
            }
        };
        for line in lines_inclusive(valid) {
            *line_number += 1;
            self.bytes += line.len() as u64;
            self.line(line, *line_number);
        }
        if invalid {
            let error = SyntaxError {
                line: Some(*line_number + 1),
                message: "not UTF-8 text".into(),
            };
            self.bytes += (text.len() - valid.len()) as u64;
            (self.visit)(Err(error), self.bytes);
        }
        !invalid
    }

    fn line(&mut self, line: &str, number: usize) {
        if marker(line, "---") || marker(line, "...") {
            let starts_next = line.starts_with('-');
            if self.document.content || self.split || !starts_next {
                self.finish_document();
            }
            if starts_next {
                self.document.push(line, number);
            }
            return;
        }
        match std::mem::replace(&mut self.state, State::Document) {
            State::Document => {
                if line.strip_prefix("items:").is_some_and(is_comment_or_blank) {
                    self.state = State::ItemsKey {
                        line: number,
                        held: Vec::new(),
                    };
                } else {
                    self.document.push(line, number);
                }
            }
            State::ItemsKey {
                line: key,
                mut held,
            } => {
                let column = leading_spaces(line.as_bytes());
                if is_comment_or_blank(line) {
                    held.push(line.to_string());
                    self.state = State::ItemsKey { line: key, held };
                } else if is_dash(&line[column..]) {
                    self.document.push("items: []\n", key);
                    self.split = true;
                    self.start_item(line, number, column);
                    self.state = State::Items { column };
                } else {
                    // Not a block sequence: the document keeps its lines as they are.
                    self.keep_items_key(key, &held);
                    self.line(line, number);
                }
            }
            State::Items { column } => {
                let indent = leading_spaces(line.as_bytes());
                if is_comment_or_blank(line) || indent > column {
                    if let Some(item) = &mut self.item {
                        item.push(line, number);
                    }
                    self.state = State::Items { column };
                } else if indent == column && is_dash(&line[column..]) {
                    self.finish_item();
                    self.start_item(line, number, column);
                    self.state = State::Items { column };
                } else {
                    self.finish_item();
                    self.line(line, number);
                }
            }
        }
    }

    /// An `items:` key (at line `key`) that turned out not to open a block sequence: it
    /// and the blank and comment lines held after it go back into the document.
    fn keep_items_key(&mut self, key: usize, held: &[String]) {
        self.document.push("items:\n", key);
        for (k, held_line) in held.iter().enumerate() {
            self.document.push(held_line, key + 1 + k);
        }
    }

    /// An item's first line, its dash made a space: the item's text is then a document.
    fn start_item(&mut self, line: &str, number: usize, column: usize) {
        let mut item = Text::default();
        let mut text = String::with_capacity(line.len());
        text.push_str(&line[..column]);
        text.push(' ');
        text.push_str(&line[column + 1..]);
        item.push(&text, number);
        self.item = Some(item);
    }

    fn finish_item(&mut self) {
        if let Some(item) = self.item.take() {
            self.hand_over(move || vec![parse_item(&item)]);
        }
    }

    fn finish_document(&mut self) {
        self.finish_item();
        if let State::ItemsKey { line, held } = std::mem::replace(&mut self.state, State::Document)
        {
            self.keep_items_key(line, &held);
        }
        let document = std::mem::take(&mut self.document);
        let split = std::mem::take(&mut self.split);
        if document.content || split {
            self.hand_over(move || parse_document(&document, split));
        }
    }

    /// Parses a cut-out text here, or hands it over unparsed while `defer` says so.
    fn hand_over(
        &mut self,
        work: impl FnOnce() -> Vec<Result<Parsed, SyntaxError>> + Send + 'static,
    ) {
        if (self.defer)() {
            (self.visit)(Ok(Parsed::Deferred(Deferred::new(work))), self.bytes);
        } else {
            for parsed in work() {
                (self.visit)(parsed, self.bytes);
            }
        }
    }
}

/// One List item: its object (`-` alone is a null item, which the converter reports).
fn parse_item(item: &Text) -> Result<Parsed, SyntaxError> {
    let mut nodes = item.parse()?;
    match nodes.len() {
        0 => Ok(Parsed::Object(Node {
            line: item.file_line(1),
            value: Value::Null,
        })),
        1 => Ok(Parsed::Object(nodes.swap_remove(0))),
        // Only where lone carriage returns end lines, which the cut does not see.
        _ => Err(SyntaxError {
            line: Some(nodes[1].line),
            message: "a document marker inside a List item".into(),
        }),
    }
}

/// One document: its object, or the List whose items were `split` off it.
fn parse_document(document: &Text, split: bool) -> Vec<Result<Parsed, SyntaxError>> {
    match document.parse() {
        Ok(nodes) => nodes
            .into_iter()
            .map(|node| {
                Ok(if split {
                    Parsed::Envelope(node)
                } else {
                    Parsed::Object(node)
                })
            })
            .collect(),
        Err(error) => vec![Err(error)],
    }
}

/// A block sequence entry: `-` then a space or the line's end.
fn is_dash(text: &str) -> bool {
    text.strip_prefix('-')
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\r', '\n']))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(envelope?, kind, line)` of an object read, or an error's line and message.
    type Read = Result<(bool, String, usize), (Option<usize>, String)>;

    fn read(text: &str) -> Vec<Read> {
        read_from(text.as_bytes())
    }

    fn read_from(reader: impl BufRead) -> Vec<Read> {
        let mut out = Vec::new();
        // Every other text deferred, and parsed as the converting thread would.
        let turn = std::cell::Cell::new(false);
        let defer = || turn.replace(!turn.get());
        read_objects(reader, &defer, &mut |parsed, _| {
            let expanded = match parsed {
                Ok(Parsed::Deferred(work)) => work.parse(),
                other => vec![other],
            };
            for parsed in expanded {
                out.push(match parsed {
                    Ok(Parsed::Object(n)) => Ok((false, kind(&n), n.line)),
                    Ok(Parsed::Envelope(n)) => Ok((true, kind(&n), n.line)),
                    Ok(Parsed::Deferred(_)) => Err((None, "deferred twice".into())),
                    Err(e) => Err((e.line, e.message)),
                })
            }
        });
        out
    }

    /// Lines the reader's buffer cuts anywhere read as lines read whole; a line that is not
    /// UTF-8 ends the input with an error at its line.
    #[test]
    fn buffer_boundaries_cut_nothing() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: List\napiVersion: v1\nitems:\n- kind: Node\n  apiVersion: v1\n# note\n- kind: Pod\n  apiVersion: v1";
        let whole = read(text);
        assert_eq!(whole.len(), 4, "{whole:?}");
        let bad: &[u8] =
            b"kind: Service\napiVersion: v1\n---\nkind: Node\nname: \xff\nkind: Node\n";
        let bad_whole = read_from(bad);
        assert_eq!(
            bad_whole.last(),
            Some(&Err((Some(5), "not UTF-8 text".to_string())))
        );
        for capacity in 1..40 {
            let cut = read_from(std::io::BufReader::with_capacity(capacity, text.as_bytes()));
            assert_eq!(cut, whole, "buffer of {capacity}");
            let cut = read_from(std::io::BufReader::with_capacity(capacity, bad));
            assert_eq!(cut, bad_whole, "buffer of {capacity}");
        }
    }

    fn kind(node: &Node) -> String {
        node.str_at(&["kind"]).unwrap_or("-").to_string()
    }

    fn ok(
        envelope: bool,
        kind: &str,
        line: usize,
    ) -> Result<(bool, String, usize), (Option<usize>, String)> {
        Ok((envelope, kind.to_string(), line))
    }

    #[test]
    fn kubectl_yaml_list_is_cut_into_items() {
        let text = "apiVersion: v1\nitems:\n# first\n- apiVersion: v1\n  kind: Service\n  spec:\n    ports:\n    - port: 80\n\n- kind: Node\n  metadata: {name: a}\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";
        assert_eq!(
            read(text),
            [
                ok(false, "Service", 4),
                ok(false, "Node", 10),
                ok(true, "List", 1)
            ]
        );
        // Lines inside the items and after them are the file's.
        let mut nodes = Vec::new();
        read_objects(text.as_bytes(), &|| false, &mut |parsed, _| {
            if let Ok(Parsed::Object(n) | Parsed::Envelope(n)) = parsed {
                nodes.push(n);
            }
        });
        assert_eq!(nodes[0].line_of("spec.ports[0].port"), 8);
        assert_eq!(nodes[2].line_of("kind"), 12);
        assert_eq!(nodes[2].line_of("metadata.resourceVersion"), 14);
        assert_eq!(nodes[2].line_of("items"), 2);
    }

    #[test]
    fn indented_items_and_documents() {
        let text = "---\nkind: List\nitems:\n  - kind: A\n    x: 1\n  - kind: B\n---\n# only a comment\n---\nkind: C\n...\n---\nkind: D\n";
        assert_eq!(
            read(text),
            [
                ok(false, "A", 4),
                ok(false, "B", 6),
                ok(true, "List", 2),
                ok(false, "C", 10),
                ok(false, "D", 13)
            ]
        );
    }

    #[test]
    fn items_that_are_not_a_block_sequence_stay_in_their_document() {
        for text in [
            "kind: X\nitems: [{kind: A}]\n",
            "kind: X\nitems:\n  a: 1\n",
            "kind: X\nitems:\n\n# c\n",
            "kind: X\nitems: # nothing\n",
        ] {
            assert_eq!(read(text), [ok(false, "X", 1)], "{text:?}");
        }
    }

    #[test]
    fn a_bad_item_spoils_only_itself() {
        let text = "kind: List\nitems:\n- kind: A\n- kind: [B\n- kind: C\n-\n";
        let read = read(text);
        assert_eq!(read[0], ok(false, "A", 3));
        assert!(matches!(&read[1], Err((Some(4), _))), "{read:?}");
        assert_eq!(read[2], ok(false, "C", 5));
        assert_eq!(read[3], ok(false, "-", 6));
        assert_eq!(read[4], ok(true, "List", 1));
    }

    #[test]
    fn json_goes_through_the_json_reader() {
        let text = "\u{feff}  {\n \"kind\": \"List\", \"items\": [{\"kind\": \"A\"}]}";
        assert_eq!(read(text), [ok(false, "A", 2), ok(true, "List", 1)]);
        assert_eq!(read("{kind: A}"), [ok(false, "A", 1)]);
        assert!(looks_like_json(b"{}"));
        assert!(!looks_like_json(b"[1]"));
    }

    #[test]
    fn directives_belong_to_the_next_document() {
        let text = "%YAML 1.2\n---\nkind: A\n";
        assert_eq!(read(text), [ok(false, "A", 3)]);
    }

    mod generated {
        use super::*;
        use crate::yaml::parse_with_saphyr;
        use proptest::prelude::*;

        /// A List item as kubectl prints it, with blank lines, comments and deeper lines.
        fn item() -> impl Strategy<Value = String> {
            let key = prop::sample::select(vec!["kind", "name", "spec", "x-y", "k:{\"p\":1}"]);
            let value = prop::sample::select(vec!["A", "1", "\"q: 1\"", "{}", "[]", "'s'"]);
            let extra = prop::sample::select(vec![
                "",
                "\n",
                "\n# comment\n",
                "\n  nested:\n    deep: 1\n",
                "\n  list:\n  - a\n  - b: 2\n",
                "\n  block: |\n    - not an item\n    --- not a marker\n",
            ]);
            (key, value, extra).prop_map(|(key, value, extra)| format!("- {key}: {value}{extra}"))
        }

        fn strip_items(node: &mut Node) {
            if let Value::Map(entries) = &mut node.value {
                for (key, value) in entries.iter_mut() {
                    if key == "items" {
                        value.value = Value::Seq(Vec::new());
                    }
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]
            /// A List cut into items reads as the whole document read at once: the same
            /// items, lines included, and the same List around them.
            #[test]
            fn cut_items_read_as_the_whole_list(items in prop::collection::vec(item(), 1..8), after in any::<bool>()) {
                let mut text = String::from("apiVersion: v1\nitems:\n");
                for item in &items {
                    text.push_str(item);
                    if !item.ends_with('\n') {
                        text.push('\n');
                    }
                }
                if after {
                    text.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
                }
                let whole = parse_with_saphyr(&text, 1).map_err(|e| TestCaseError::fail(e.message))?;
                let mut whole = whole.into_iter().next().ok_or_else(|| TestCaseError::fail("no document"))?;
                let Some(Value::Seq(expected)) = whole.get("items").map(|n| n.value.clone()) else {
                    return Err(TestCaseError::fail("no items"));
                };
                strip_items(&mut whole);
                let mut objects = Vec::new();
                let mut envelope = None;
                read_objects(text.as_bytes(), &|| false, &mut |parsed, _| match parsed {
                    Ok(Parsed::Object(node)) => objects.push(node),
                    Ok(Parsed::Envelope(node)) => envelope = Some(node),
                    other => panic!("{:?}", other.err().map(|e| e.message)),
                });
                prop_assert_eq!(objects, expected);
                prop_assert_eq!(envelope, Some(whole));
            }
        }
    }
}
