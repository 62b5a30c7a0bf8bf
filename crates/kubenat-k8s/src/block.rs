//! The YAML that kubectl prints, read fast: block mappings and sequences of one-line
//! scalars (plain, single- or double-quoted) and empty `{}` / `[]`.
//!
//! A large cluster's `kubectl get -o yaml` is gigabytes of exactly this subset, and the
//! general parser (serde-saphyr) reads it at some 10 MB/s. [`parse`] reads the subset into
//! the same [`Node`] tree, lines included, and answers `None` for anything outside it
//! (anchors, tags, block or multi-line scalars, flow collections with content, comments
//! after values, tabs, duplicate keys...), which then goes to serde-saphyr: the subset is an
//! optimisation, never a second dialect. The tests hold the two parsers to the same trees.

use crate::node::{Node, Value};
use crate::scan::{leading_spaces, split_lines};
use crate::yaml::{core_schema, scalar_text};

/// One significant line: its indentation, its text without indentation or line end, and
/// its number in the file.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
    number: usize,
}

/// The documents of `text` (which starts on line `first_line`), or `None` when `text`
/// leaves the subset. `skip_managed_fields`: the root object's `metadata.managedFields` is
/// passed over unread (a third of a dump's lines; kube-proxy never reads them).
pub(crate) fn parse(text: &str, first_line: usize, skip_managed_fields: bool) -> Option<Vec<Node>> {
    let mut lines = Vec::new();
    for (index, raw) in split_lines(text).enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let indent = leading_spaces(raw.as_bytes());
        let body = raw[indent..].trim_end_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if leaves_the_subset(body.as_bytes()) {
            return None;
        }
        if indent == 0 && (body.starts_with("---") || body.starts_with("...")) {
            // One document, its marker bare: what the splitter hands over.
            if body != "---" || !lines.is_empty() {
                return None;
            }
            continue;
        }
        if indent == 0 && body.starts_with('%') {
            return None;
        }
        lines.push(Line {
            indent,
            text: body,
            number: first_line + index,
        });
    }
    if lines.is_empty() {
        return Some(Vec::new());
    }
    let mut parser = Parser {
        lines,
        next: 0,
        skip_managed_fields,
    };
    let indent = parser.lines[0].indent;
    let root = parser.block(indent, Role::Object)?;
    (parser.next == parser.lines.len()).then(|| vec![root])
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
    skip_managed_fields: bool,
}

/// Where a mapping stands: the object itself, its `metadata`, or anywhere else.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Object,
    Metadata,
    Other,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    /// The block node whose first line is the next one, at `indent`.
    fn block(&mut self, indent: usize, role: Role) -> Option<Node> {
        let line = self.peek()?;
        if is_entry(line.text) {
            self.sequence(indent)
        } else {
            self.mapping(indent, role)
        }
    }

    fn mapping(&mut self, indent: usize, role: Role) -> Option<Node> {
        let first = self.peek()?.number;
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent != indent || is_entry(line.text) {
                break;
            }
            let (key, rest) = split_key(line.text)?;
            if entries.iter().any(|(k, _)| *k == key) {
                return None;
            }
            self.next += 1;
            if role == Role::Metadata && self.skip_managed_fields && key == "managedFields" {
                if rest.is_empty() {
                    self.skip_nested(indent);
                } else {
                    // Still the subset's to read, or serde-saphyr's: only then left out.
                    scalar(rest, line.number)?;
                }
                continue;
            }
            let value = if rest.is_empty() {
                let role = if role == Role::Object && key == "metadata" {
                    Role::Metadata
                } else {
                    Role::Other
                };
                self.nested(indent, true, line.number, role)?
            } else {
                scalar(rest, line.number)?
            };
            entries.push((key, value));
        }
        self.done_with(indent)?;
        Some(Node {
            line: first,
            value: Value::Map(entries),
        })
    }

    fn sequence(&mut self, indent: usize) -> Option<Node> {
        let first = self.peek()?.number;
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent != indent || !is_entry(line.text) {
                break;
            }
            let rest = line.text[1..].trim_start_matches(' ');
            let item = if rest.is_empty() {
                self.next += 1;
                self.nested(indent, false, line.number, Role::Other)?
            } else if is_entry(rest) {
                return None;
            } else if split_key(rest).is_some() {
                // `- key: value`: a mapping that starts on the dash's line, at its column.
                let column = indent + (line.text.len() - rest.len());
                self.lines[self.next] = Line {
                    indent: column,
                    text: rest,
                    number: line.number,
                };
                self.mapping(column, Role::Other)?
            } else {
                self.next += 1;
                scalar(rest, line.number)?
            };
            items.push(item);
        }
        self.done_with(indent)?;
        Some(Node {
            line: first,
            value: Value::Seq(items),
        })
    }

    /// The value of a `key:` or `-` whose text ends there: the deeper block that follows (a
    /// key's sequence may also stand at the key's own indentation, as kubectl prints it),
    /// with the key's line, or null.
    fn nested(&mut self, indent: usize, after_key: bool, line: usize, role: Role) -> Option<Node> {
        match self.peek() {
            Some(next)
                if next.indent > indent
                    || (after_key && next.indent == indent && is_entry(next.text)) =>
            {
                let mut node = self.block(next.indent, role)?;
                if after_key {
                    node.line = line;
                }
                Some(node)
            }
            // An empty value: left to serde-saphyr, whose line for it this does not guess.
            _ => None,
        }
    }

    /// Passes over the value of a `key:` at `indent`: the deeper lines, and a sequence at
    /// the key's own indentation.
    fn skip_nested(&mut self, indent: usize) {
        while let Some(line) = self.peek() {
            if line.indent < indent || (line.indent == indent && !is_entry(line.text)) {
                break;
            }
            self.next += 1;
        }
    }

    /// A block at `indent` ends at a line indented less (or the end); deeper is a
    /// continuation this subset does not take.
    fn done_with(&self, indent: usize) -> Option<()> {
        match self.peek() {
            Some(line) if line.indent > indent => None,
            _ => Some(()),
        }
    }
}

/// `-` alone or followed by a space: a block sequence entry.
fn is_entry(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// A tab anywhere, a carriage return that ends no line (YAML reads it as a line break), or
/// ` #` (a comment after a value): all left to serde-saphyr.
fn leaves_the_subset(text: &[u8]) -> bool {
    text.iter()
        .enumerate()
        .any(|(at, &b)| b == b'\t' || b == b'\r' || (b == b'#' && at > 0 && text[at - 1] == b' '))
}

/// Where the first `: ` or a final `:` stands: a mapping key's end.
fn key_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .position(|(at, &b)| b == b':' && bytes.get(at + 1).is_none_or(|&next| next == b' '))
}

/// A plain key and the rest of its line: `key: rest` or `key:`.
fn split_key(text: &str) -> Option<(String, &str)> {
    let at = key_end(text)?;
    let (key, rest) = (&text[..at], text[at + 1..].trim_start_matches(' '));
    let indicator = |b: &u8| b"[]{}#&*!|>'\"%@`,?:-".contains(b);
    if key.as_bytes().first().is_none_or(indicator) {
        return None;
    }
    let key = match core_schema(key) {
        Value::Str(text) => text,
        other => scalar_text(&Node {
            line: 0,
            value: other,
        }),
    };
    Some((key, rest))
}

/// A one-line scalar, or `{}` / `[]`.
fn scalar(text: &str, line: usize) -> Option<Node> {
    let value = match text.as_bytes()[0] {
        b'"' => Value::Str(double_quoted(&text[1..])?),
        b'\'' => Value::Str(single_quoted(&text[1..])?),
        b'{' if text == "{}" => Value::Map(Vec::new()),
        b'[' if text == "[]" => Value::Seq(Vec::new()),
        b'{' | b'[' | b']' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`'
        | b',' | b'?' | b'#' => return None,
        b'-' | b':' if text.len() == 1 || text.as_bytes()[1] == b' ' => return None,
        _ if key_end(text).is_some() => return None,
        _ => match core_schema(text) {
            // serde-saphyr refuses `.inf` and `.nan`: let it say so.
            Value::Float(f) if !f.is_finite() => return None,
            value => value,
        },
    };
    Some(Node { line, value })
}

/// The inside of a double-quoted scalar that closes at the end of the line.
fn double_quoted(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return text[at + 1..].trim().is_empty().then_some(out),
            '\\' => {
                let (_, escape) = chars.next()?;
                out.push(match escape {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                    }
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// The inside of a single-quoted scalar that closes at the end of the line.
fn single_quoted(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let at = rest.find('\'')?;
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('\'') {
            out.push('\'');
            rest = after;
        } else {
            return rest.trim().is_empty().then_some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_with_saphyr;

    /// The subset's reading, where it gives one, is serde-saphyr's, lines included.
    fn agree(text: &str) -> bool {
        let fast = parse(text, 7, false);
        let general = parse_with_saphyr(text, 7).ok();
        if let Some(fast) = &fast {
            assert_eq!(Some(fast), general.as_ref(), "{text:?}");
        }
        fast.is_some()
    }

    #[test]
    fn kubectl_shapes_are_read_fast_and_the_same() {
        let cases = [
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n  clusterIPs:\n  - 10.96.0.1\n",
            "---\nk:{\"port\":80,\"protocol\":\"TCP\"}:\n  .: {}\n  f:name: {}\nx: []\n",
            "a: \"quoted: \\\"yes\\\" \\u00e9\"\nb: 'it''s'\nc: 0080\nd: 010.010.001.101\ne: y\nf: null\ng: ~\nh: true\ni: -5\nj: 1.5\n",
            "-\n  a: 1\n- b: 2\n  c:\n  - 3\n  - x: 4\n    y: 5\n",
            "  indented: 1\n  second:\n    - a\n    - b\n",
            "a: 1\r\n\r\n# comment\nb: 2\r\n",
            "80: x\ntrue: y\n",
            "",
            "# nothing but a comment\n",
        ];
        for text in cases {
            assert!(agree(text), "left the subset: {text:?}");
        }
    }

    #[test]
    fn the_notes_manifests_take_the_fast_path() {
        let files = [
            include_str!("../../../examples/miempresa/cluster.yaml"),
            include_str!("../../../examples/miempresa/kube-proxy.yaml"),
        ];
        for file in files {
            for document in file.split("\n---\n") {
                assert!(agree(document), "left the subset: {document:?}");
            }
        }
    }

    #[test]
    fn managed_fields_are_passed_over_when_asked() {
        let text = "kind: Service\nmetadata:\n  managedFields:\n  - manager: kubectl\n    fieldsV1:\n      f:spec: {}\n  name: web\nspec:\n  managedFields: kept\n";
        let skipped = parse(text, 1, true).unwrap_or_default();
        let kept = parse(text, 1, false).unwrap_or_default();
        let metadata = |nodes: &[Node]| nodes[0].get("metadata").cloned();
        assert_eq!(
            metadata(&skipped).and_then(|m| m.get("managedFields").cloned()),
            None
        );
        assert!(
            metadata(&kept)
                .and_then(|m| m.get("managedFields").cloned())
                .is_some()
        );
        assert_eq!(skipped[0].str_at(&["metadata", "name"]), Some("web"));
        assert_eq!(skipped[0].line_of("metadata.name"), 7);
        assert_eq!(skipped[0].str_at(&["spec", "managedFields"]), Some("kept"));
    }

    #[test]
    fn everything_else_goes_to_serde_saphyr() {
        let cases = [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |\n  text\n",
            "a: >\n  text\n",
            "a: [1, 2]\n",
            "a: {b: 1}\n",
            "a: 1 # comment\n",
            "a: multi\n  line\n",
            "a: \"open\n  close\"\n",
            "a: 1\na: 2\n",
            "a:\n",
            "- - 1\n",
            "\"quoted key\": 1\n",
            "? complex\n: key\n",
            "a:\tb\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: 1\n  b: 2\n",
            "a: .inf\n",
            "a: b: c\n",
            "a: 'open\n",
            "a: \"\\q\"\n",
            "scalar document\n",
            "a: 1\rb\n",
        ];
        for text in cases {
            assert!(!agree(text), "taken by the subset: {text:?}");
        }
    }

    mod generated {
        use super::agree;
        use proptest::prelude::*;

        /// Lines in the subset's shapes and just outside it, at small indentations.
        fn line() -> impl Strategy<Value = String> {
            let keys = prop::sample::select(vec![
                "a",
                "b",
                "spec",
                "k:{\"p\":1}",
                "80",
                "true",
                "-x",
                "x y",
                "\"q\"",
                "'s'",
                "a#b",
            ]);
            let values = prop::sample::select(vec![
                "1",
                "0080",
                "x",
                "\"s: \\\"q\\\"\"",
                "'it''s'",
                "{}",
                "[]",
                "[1]",
                "{a: 1}",
                "null",
                "~",
                "y",
                ".inf",
                "a # c",
                "x:y",
                "- z",
                "&a 1",
                "*a",
                "|",
                "-1.5e3",
                "1e5",
                "0x1F",
                "0o17",
                "é",
                "\"\\u00e9\"",
                "'a''",
                "\"open",
                "a: b",
                "-",
                "true",
                "\"\"",
                "''",
            ]);
            let shape = prop::sample::select(vec![0u8, 1, 2, 3, 4, 5, 6]);
            let indent = prop_oneof![Just(0usize), Just(2), Just(4), 0usize..5];
            (indent, shape, keys, values).prop_map(|(indent, shape, key, value)| {
                let pad = " ".repeat(indent);
                match shape {
                    0 => format!("{pad}{key}: {value}"),
                    1 => format!("{pad}{key}:"),
                    2 => format!("{pad}- {value}"),
                    3 => format!("{pad}- {key}: {value}"),
                    4 => format!("{pad}-"),
                    5 => format!("{pad}# {value}"),
                    _ => String::new(),
                }
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            /// Whatever the fast path takes, serde-saphyr reads the same (and refuses nothing
            /// it took); both never panic.
            #[test]
            fn the_subset_reads_as_serde_saphyr_reads(lines in prop::collection::vec(line(), 1..12)) {
                let text = lines.join("\n") + "\n";
                agree(&text);
            }
        }
    }
}
