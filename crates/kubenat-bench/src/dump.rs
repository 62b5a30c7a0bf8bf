//! Cluster dumps as kubectl prints them: `kubectl get svc,endpointslices -A -o json` (a
//! `List`), `-o yaml` (the same List in YAML), or multi-document YAML, with the metadata real
//! objects carry (managedFields, uid, resourceVersion, status). They are what the importer
//! must take at any size; [`write_dump`] streams them, so 1M Services need no memory.
//!
//! The objects describe the same cluster as [`crate::synthetic::cluster`]: Service `i` has
//! the cluster IP [`crate::synthetic::service_ip`]`(i)` and its endpoints the same pods.

use std::io::{self, Write};
use std::net::Ipv4Addr;

use crate::synthetic::{endpoint_ip, service_ip};

/// How the dump is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFormat {
    /// `kubectl get -o json`: one `List` object, indented by four spaces.
    JsonList,
    /// `kubectl get -o yaml`: the same `List` in YAML.
    YamlList,
    /// One YAML document per object, separated by `---`.
    YamlDocuments,
}

impl std::str::FromStr for DumpFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(DumpFormat::JsonList),
            "yaml" => Ok(DumpFormat::YamlList),
            "yaml-documents" => Ok(DumpFormat::YamlDocuments),
            other => Err(format!(
                "unknown dump format {other:?} (json, yaml or yaml-documents)"
            )),
        }
    }
}

/// A JSON-shaped value, just rich enough for the objects below. Map keys are printed in the
/// order given, which the builders keep sorted as kubectl does.
enum Value {
    Str(String),
    Int(u64),
    Bool(bool),
    Seq(Vec<Value>),
    Map(Vec<(&'static str, Value)>),
    /// A map whose keys are built at run time (managedFields' `k:{...}` keys, labels).
    OwnedMap(Vec<(String, Value)>),
}

fn s(text: impl Into<String>) -> Value {
    Value::Str(text.into())
}

fn empty() -> Value {
    Value::Map(Vec::new())
}

/// What the dump holds: `services` Services, each with one EndpointSlice of `endpoints` ready
/// endpoints spread over 16 nodes.
#[derive(Clone, Copy, Debug)]
pub struct DumpShape {
    pub services: usize,
    pub endpoints: usize,
}

/// Writes the dump; returns the number of objects written.
pub fn write_dump(out: &mut impl Write, shape: DumpShape, format: DumpFormat) -> io::Result<u64> {
    let objects = (0..shape.services)
        .flat_map(|i| [service(i), endpoint_slice(i, shape.endpoints.min(1000))]);
    let mut count = 0;
    match format {
        DumpFormat::JsonList => {
            out.write_all(b"{\n    \"apiVersion\": \"v1\",\n    \"items\": [")?;
            for object in objects {
                out.write_all(if count == 0 { b"\n" } else { b",\n" })?;
                write_indent(out, 2)?;
                write_json(out, &object, 2)?;
                count += 1;
            }
            let close = if count == 0 { "]" } else { "\n    ]" };
            write!(
                out,
                "{close},\n    \"kind\": \"List\",\n    \"metadata\": {{\n        \"resourceVersion\": \"\"\n    }}\n}}\n"
            )?;
        }
        DumpFormat::YamlList => {
            out.write_all(b"apiVersion: v1\nitems:")?;
            for object in objects {
                out.write_all(b"\n- ")?;
                write_yaml_map_body(out, &object, 1)?;
                count += 1;
            }
            let close = if count == 0 { " []" } else { "" };
            writeln!(
                out,
                "{close}\nkind: List\nmetadata:\n  resourceVersion: \"\""
            )?;
        }
        DumpFormat::YamlDocuments => {
            for object in objects {
                out.write_all(b"---\n")?;
                write_yaml_map_body(out, &object, 0)?;
                out.write_all(b"\n")?;
                count += 1;
            }
        }
    }
    Ok(count)
}

fn name(i: usize) -> String {
    format!("svc-{i}")
}

fn namespace(i: usize) -> String {
    format!("ns-{}", i % 64)
}

/// A UUID-shaped identifier that differs per object.
fn uid(kind: u64, i: usize) -> String {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ kind;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xfff,
        (x >> 4) & 0xfff,
        x & 0xffff_ffff_ffff
    )
}

const TIMESTAMP: &str = "2026-11-02T09:14:07Z";

fn managed_fields(manager: &str, fields: Value) -> Value {
    Value::Seq(vec![Value::Map(vec![
        (
            "apiVersion",
            s(if manager == "kube-controller-manager" {
                "discovery.k8s.io/v1"
            } else {
                "v1"
            }),
        ),
        ("fieldsType", s("FieldsV1")),
        ("fieldsV1", fields),
        ("manager", s(manager)),
        ("operation", s("Update")),
        ("time", s(TIMESTAMP)),
    ])])
}

fn metadata(i: usize, kind: u64, object_name: String, labels: Value, fields: Value) -> Value {
    let manager = if kind == 1 {
        "kubectl-create"
    } else {
        "kube-controller-manager"
    };
    let mut entries = vec![("creationTimestamp", s(TIMESTAMP))];
    if kind == 2 {
        entries.push(("generation", Value::Int(1)));
    }
    entries.extend([
        ("labels", labels),
        ("managedFields", managed_fields(manager, fields)),
        ("name", s(object_name)),
        ("namespace", s(namespace(i))),
        (
            "resourceVersion",
            s(format!("{}", 1000 + 2 * i as u64 + kind)),
        ),
        ("uid", s(uid(kind, i))),
    ]);
    Value::Map(entries)
}

fn service(i: usize) -> Value {
    let ip = service_ip(i).to_string();
    let fields = Value::OwnedMap(vec![
        (
            "f:metadata".into(),
            Value::Map(vec![(
                "f:labels",
                Value::OwnedMap(vec![(".".into(), empty()), ("f:app".into(), empty())]),
            )]),
        ),
        (
            "f:spec".into(),
            Value::OwnedMap(vec![
                ("f:internalTrafficPolicy".into(), empty()),
                (
                    "f:ports".into(),
                    Value::OwnedMap(vec![
                        (".".into(), empty()),
                        (
                            r#"k:{"port":80,"protocol":"TCP"}"#.into(),
                            Value::OwnedMap(
                                [".", "f:name", "f:port", "f:protocol", "f:targetPort"]
                                    .into_iter()
                                    .map(|k| (k.to_string(), empty()))
                                    .collect(),
                            ),
                        ),
                    ]),
                ),
                ("f:selector".into(), empty()),
                ("f:sessionAffinity".into(), empty()),
                ("f:type".into(), empty()),
            ]),
        ),
    ]);
    let labels = Value::OwnedMap(vec![("app".into(), s(name(i)))]);
    Value::Map(vec![
        ("apiVersion", s("v1")),
        ("kind", s("Service")),
        ("metadata", metadata(i, 1, name(i), labels, fields)),
        (
            "spec",
            Value::Map(vec![
                ("clusterIP", s(ip.clone())),
                ("clusterIPs", Value::Seq(vec![s(ip)])),
                ("internalTrafficPolicy", s("Cluster")),
                ("ipFamilies", Value::Seq(vec![s("IPv4")])),
                ("ipFamilyPolicy", s("SingleStack")),
                (
                    "ports",
                    Value::Seq(vec![Value::Map(vec![
                        ("name", s("http")),
                        ("port", Value::Int(80)),
                        ("protocol", s("TCP")),
                        ("targetPort", Value::Int(8080)),
                    ])]),
                ),
                (
                    "selector",
                    Value::OwnedMap(vec![("app".into(), s(name(i)))]),
                ),
                ("sessionAffinity", s("None")),
                ("type", s("ClusterIP")),
            ]),
        ),
        ("status", Value::Map(vec![("loadBalancer", empty())])),
    ])
}

fn endpoint_slice(i: usize, endpoints: usize) -> Value {
    let pod = |j: usize| format!("{}-{:05x}", name(i), (i * 31 + j * 7) & 0xfffff);
    let addresses: Vec<Ipv4Addr> = (0..endpoints)
        .map(|j| endpoint_ip(i, j, endpoints))
        .collect();
    let endpoint = |j: usize| {
        Value::Map(vec![
            ("addresses", Value::Seq(vec![s(addresses[j].to_string())])),
            (
                "conditions",
                Value::Map(vec![
                    ("ready", Value::Bool(true)),
                    ("serving", Value::Bool(true)),
                    ("terminating", Value::Bool(false)),
                ]),
            ),
            ("nodeName", s(format!("node-{}", j % 16))),
            (
                "targetRef",
                Value::Map(vec![
                    ("kind", s("Pod")),
                    ("name", s(pod(j))),
                    ("namespace", s(namespace(i))),
                    ("uid", s(uid(3 + j as u64, i))),
                ]),
            ),
            ("zone", s(format!("zone-{}", j % 3))),
        ])
    };
    let fields = Value::OwnedMap(vec![
        ("f:addressType".into(), empty()),
        ("f:endpoints".into(), empty()),
        (
            "f:metadata".into(),
            Value::OwnedMap(vec![
                ("f:generateName".into(), empty()),
                (
                    "f:labels".into(),
                    Value::OwnedMap(
                        [
                            ".",
                            "f:endpointslice.kubernetes.io/managed-by",
                            "f:kubernetes.io/service-name",
                        ]
                        .into_iter()
                        .map(|k| (k.to_string(), empty()))
                        .collect(),
                    ),
                ),
            ]),
        ),
        ("f:ports".into(), empty()),
    ]);
    let labels = Value::OwnedMap(vec![
        (
            "endpointslice.kubernetes.io/managed-by".into(),
            s("endpointslice-controller.k8s.io"),
        ),
        ("kubernetes.io/service-name".into(), s(name(i))),
    ]);
    let slice_name = format!("{}-{:05x}", name(i), (i * 7919) & 0xfffff);
    Value::Map(vec![
        ("addressType", s("IPv4")),
        ("apiVersion", s("discovery.k8s.io/v1")),
        (
            "endpoints",
            Value::Seq((0..endpoints).map(endpoint).collect()),
        ),
        ("kind", s("EndpointSlice")),
        ("metadata", metadata(i, 2, slice_name, labels, fields)),
        (
            "ports",
            Value::Seq(vec![Value::Map(vec![
                ("name", s("http")),
                ("port", Value::Int(8080)),
                ("protocol", s("TCP")),
            ])]),
        ),
    ])
}

fn write_indent(out: &mut impl Write, level: usize) -> io::Result<()> {
    const SPACES: &[u8; 64] = &[b' '; 64];
    let mut n = level * 4;
    while n > 0 {
        let step = n.min(SPACES.len());
        out.write_all(&SPACES[..step])?;
        n -= step;
    }
    Ok(())
}

fn write_json_str(out: &mut impl Write, text: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    for c in text.chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => write!(out, "{c}")?,
        }
    }
    out.write_all(b"\"")
}

fn entries(value: &Value) -> Vec<(&str, &Value)> {
    match value {
        Value::Map(items) => items.iter().map(|(k, v)| (*k, v)).collect(),
        Value::OwnedMap(items) => items.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        _ => Vec::new(),
    }
}

/// kubectl's JSON: four spaces a level, `{}` and `[]` for empty collections.
fn write_json(out: &mut impl Write, value: &Value, level: usize) -> io::Result<()> {
    match value {
        Value::Str(text) => write_json_str(out, text),
        Value::Int(n) => write!(out, "{n}"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Seq(items) if items.is_empty() => out.write_all(b"[]"),
        Value::Seq(items) => {
            out.write_all(b"[")?;
            for (k, item) in items.iter().enumerate() {
                out.write_all(if k == 0 { b"\n" } else { b",\n" })?;
                write_indent(out, level + 1)?;
                write_json(out, item, level + 1)?;
            }
            out.write_all(b"\n")?;
            write_indent(out, level)?;
            out.write_all(b"]")
        }
        Value::Map(_) | Value::OwnedMap(_) => {
            let items = entries(value);
            if items.is_empty() {
                return out.write_all(b"{}");
            }
            out.write_all(b"{")?;
            for (k, (key, item)) in items.into_iter().enumerate() {
                out.write_all(if k == 0 { b"\n" } else { b",\n" })?;
                write_indent(out, level + 1)?;
                write_json_str(out, key)?;
                out.write_all(b": ")?;
                write_json(out, item, level + 1)?;
            }
            out.write_all(b"\n")?;
            write_indent(out, level)?;
            out.write_all(b"}")
        }
    }
}

/// A YAML scalar as go-yaml prints it: plain where that reads back as the same string,
/// double-quoted otherwise.
fn write_yaml_str(out: &mut impl Write, text: &str) -> io::Result<()> {
    let needs_quotes = text.is_empty()
        || text.starts_with(|c: char| c.is_ascii_digit() || " -?:,[]{}#&*!|>'\"%@`.".contains(c))
            && text != "."
        || text.contains(": ")
        || text.contains(" #")
        || text.ends_with([' ', ':'])
        || matches!(
            text,
            "true" | "false" | "null" | "~" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if needs_quotes {
        write_json_str(out, text)
    } else {
        out.write_all(text.as_bytes())
    }
}

fn write_yaml_indent(out: &mut impl Write, level: usize) -> io::Result<()> {
    for _ in 0..level {
        out.write_all(b"  ")?;
    }
    Ok(())
}

/// The entries of a map, the first on the current line (after `- ` or at a document's
/// start), the rest at `level`.
fn write_yaml_map_body(out: &mut impl Write, value: &Value, level: usize) -> io::Result<()> {
    for (k, (key, item)) in entries(value).into_iter().enumerate() {
        if k > 0 {
            out.write_all(b"\n")?;
            write_yaml_indent(out, level)?;
        }
        write_yaml_str(out, key)?;
        out.write_all(b":")?;
        write_yaml_value(out, item, level)?;
    }
    Ok(())
}

/// A value after `key:`; collections go on the following lines (sequences at the key's
/// level, as kubectl prints them, maps one level in).
fn write_yaml_value(out: &mut impl Write, value: &Value, level: usize) -> io::Result<()> {
    match value {
        Value::Str(text) => {
            out.write_all(b" ")?;
            write_yaml_str(out, text)
        }
        Value::Int(n) => write!(out, " {n}"),
        Value::Bool(b) => write!(out, " {b}"),
        Value::Seq(items) if items.is_empty() => out.write_all(b" []"),
        Value::Seq(items) => {
            for item in items {
                out.write_all(b"\n")?;
                write_yaml_indent(out, level)?;
                out.write_all(b"- ")?;
                match item {
                    Value::Map(_) | Value::OwnedMap(_) => {
                        write_yaml_map_body(out, item, level + 1)?
                    }
                    Value::Str(text) => write_yaml_str(out, text)?,
                    Value::Int(n) => write!(out, "{n}")?,
                    Value::Bool(b) => write!(out, "{b}")?,
                    Value::Seq(_) => write_yaml_value(out, item, level + 1)?,
                }
            }
            Ok(())
        }
        Value::Map(_) | Value::OwnedMap(_) => {
            if entries(value).is_empty() {
                return out.write_all(b" {}");
            }
            out.write_all(b"\n")?;
            write_yaml_indent(out, level + 1)?;
            write_yaml_map_body(out, value, level + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(format: DumpFormat) -> String {
        let mut out = Vec::new();
        let shape = DumpShape {
            services: 2,
            endpoints: 2,
        };
        assert_eq!(write_dump(&mut out, shape, format).ok(), Some(4));
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn json_list_parses_and_holds_every_object() {
        let text = dump(DumpFormat::JsonList);
        let list: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            ["Service", "EndpointSlice", "Service", "EndpointSlice"]
        );
        assert_eq!(items[2]["spec"]["clusterIP"], "172.16.0.1");
        assert_eq!(
            items[1]["metadata"]["labels"]["kubernetes.io/service-name"],
            "svc-0"
        );
    }

    #[test]
    fn yaml_forms_hold_what_the_json_holds() {
        let json: serde_json::Value =
            serde_json::from_str(&dump(DumpFormat::JsonList)).unwrap_or_default();
        let list: serde_json::Value =
            serde_saphyr::from_str(&dump(DumpFormat::YamlList)).unwrap_or_default();
        assert_eq!(list, json);
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&dump(DumpFormat::YamlDocuments)).unwrap_or_default();
        assert_eq!(serde_json::Value::Array(documents), json["items"]);
    }
}
