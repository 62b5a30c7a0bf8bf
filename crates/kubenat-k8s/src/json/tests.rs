//! The JSON reader against serde_json, by example and by generated text.

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
        Value::Int(i) => {
            i64::try_from(i.get()).map_or_else(|_| (i.get() as f64).into(), Into::into)
        }
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
    let parsed = read_all("{\"kind\": \"Service\"}\n---\n{\"kind\": \"Node\", \"items\": 3}\n[1]")
        .unwrap_or_default();
    let envelopes: Vec<bool> = parsed.iter().map(|(e, _)| *e).collect();
    assert_eq!(envelopes, [false, false, false]);
    assert_eq!(parsed[1].1.line, 3);
    // A negative number is a value, not the start of a `---` line (found by the
    // generated test below).
    let numbers = read_all("-1\n---\n-2").unwrap_or_default();
    let values: Vec<&Value> = numbers.iter().map(|(_, n)| &n.value).collect();
    assert_eq!(values, [&Value::Int((-1).into()), &Value::Int((-2).into())]);
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
    assert_eq!(
        zero[0].1.value,
        Value::Seq(vec![leaf(1, Value::Int(0.into()))])
    );
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
fn numbers_follow_the_json_grammar() {
    let cases = [
        ("0", true),
        ("-0", true),
        ("12", true),
        ("1.5", true),
        ("1.5e-3", true),
        ("1E+5", true),
        ("1.", false),
        ("1.e5", false),
        ("-57361.E5", false),
        ("01", false),
        ("-", false),
        ("1e", false),
        ("1E+", false),
        ("1e5.0", false),
    ];
    for (text, valid) in cases {
        assert_eq!(read_all(text).is_ok(), valid, "{text}");
    }
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
        Some(&Value::Int(8080.into()))
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

        /// The word-at-a-time scanners stop where a byte-by-byte search does.
        #[test]
        fn scanners_stop_where_a_byte_search_does(bytes in prop::collection::vec(prop_oneof![Just(b' '), Just(b'"'), Just(b'\\'), Just(b'\n'), Just(b'a'), Just(0xc3), Just(0xa9), any::<u8>()], 0..40)) {
            let plain_end = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let expected = plain_end.map(|end| super::PlainRun { end, ascii: bytes[..end].is_ascii() });
            prop_assert_eq!(super::plain_run(&bytes), expected);
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
