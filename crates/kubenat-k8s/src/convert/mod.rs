//! Documents into objects: dispatch on apiVersion/kind, typed decoding with k8s-openapi,
//! API-server validation with lines, and conversion into kubenat's model.

mod endpoint_slice;
mod fields;
mod ingress;
mod node;
mod proxy_config;
mod service;
mod service_cidr;

use std::fmt;
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::de;
use crate::node::{Node, Parsed, SyntaxError, Value};
use crate::proxy;
use crate::stream::read_objects;
use crate::{Diagnostic, LoadOptions, Manifests};

use endpoint_slice::{endpoint_slice, endpoints};
use ingress::ingress;
use node::node;
use proxy_config::proxy_config;
use service::service;
use service_cidr::service_cidr;

/// Objects handed from the reading thread to the converting one at a time.
const BATCH: usize = 256;

/// Reads one file's objects as they stream by; `progress` hears the bytes read so far.
/// `pipelined`: the text is parsed on a thread of its own while this one converts (for
/// large inputs: two cores read a dump in about half the time).
pub(crate) fn parse(
    file: &str,
    reader: impl BufRead + Send,
    options: &LoadOptions,
    pipelined: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Manifests, Vec<Diagnostic>> {
    let file = Source {
        file,
        strict: options.strict,
    };
    let mut out = Manifests::default();
    let mut errors = Vec::new();
    // Batches sent and not yet taken: while fewer than two wait, the converting thread is
    // keeping up, and the reading one hands texts over unparsed.
    let queued = AtomicUsize::new(0);
    let queued = &queued;
    let bytes = if pipelined {
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel(4);
            let reading = scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                let defer = || queued.load(Ordering::Relaxed) < 2;
                let bytes = read_objects(reader, &defer, &mut |parsed, bytes| {
                    batch.push((parsed, bytes));
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        queued.fetch_add(1, Ordering::Relaxed);
                        // The receiver outlives this thread: a send cannot fail.
                        let _ = sender.send(full);
                    }
                });
                queued.fetch_add(1, Ordering::Relaxed);
                let _ = sender.send(batch);
                bytes
            });
            for batch in receiver {
                queued.fetch_sub(1, Ordering::Relaxed);
                for (parsed, bytes) in batch {
                    convert(file, parsed, &mut out, &mut errors);
                    progress(bytes);
                }
            }
            reading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    } else {
        read_objects(reader, &|| false, &mut |parsed, bytes| {
            convert(file, parsed, &mut out, &mut errors);
            progress(bytes);
        })
    };
    progress(bytes);
    if errors.is_empty() {
        // Merging into an empty set replaces an object defined twice, with a warning.
        let mut deduplicated = Manifests::default();
        deduplicated.merge(out);
        Ok(deduplicated)
    } else {
        Err(errors)
    }
}

/// One parsed object (or error) into `out` (or `errors`).
fn convert(
    file: Source<'_>,
    parsed: Result<Parsed, SyntaxError>,
    out: &mut Manifests,
    errors: &mut Vec<Diagnostic>,
) {
    match parsed {
        Ok(Parsed::Object(node)) => object(file, &node, out, errors, 0),
        Ok(Parsed::Envelope(node)) => envelope(file, &node, out, errors),
        Ok(Parsed::Deferred(work)) => {
            for parsed in work.parse() {
                convert(file, parsed, out, errors);
            }
        }
        Err(e) => errors.push(Diagnostic {
            file: file.file.into(),
            line: e.line,
            object: None,
            field: None,
            message: format!("not valid YAML or JSON: {}", e.message),
        }),
    }
}

/// A List whose items came one by one: what remains of it must still be a List.
fn envelope(file: Source<'_>, root: &Node, out: &mut Manifests, errors: &mut Vec<Diagnostic>) {
    let kind = root.str_at(&["kind"]).unwrap_or("");
    if kind.ends_with("List") {
        return object(file, root, out, errors, 0);
    }
    errors.push(Diagnostic {
        file: file.file.into(),
        line: Some(root.line_of("items")),
        object: (!kind.is_empty()).then(|| kind.to_string()),
        field: Some("items".into()),
        message: "only a List (kind: List, ServiceList, ...) holds items".into(),
    });
}

/// The file being read, and whether a field the schema does not know is an error.
#[derive(Clone, Copy)]
struct Source<'a> {
    file: &'a str,
    strict: bool,
}

/// Where diagnostics for one object go.
struct Ctx<'a> {
    file: &'a str,
    strict: bool,
    root: &'a Node,
    object: Option<String>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    failed: bool,
}

impl Ctx<'_> {
    fn diagnostic(&self, field: impl fmt::Display, message: String) -> Diagnostic {
        let field = field.to_string();
        self.diagnostic_at(self.root.line_of(&field), &field, message)
    }

    fn diagnostic_at(&self, line: usize, field: &str, message: String) -> Diagnostic {
        Diagnostic {
            file: self.file.to_string(),
            line: Some(line),
            object: self.object.clone(),
            field: (!field.is_empty()).then(|| field.to_string()),
            message,
        }
    }

    fn error(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        let d = self.diagnostic(field, message.into());
        self.errors.push(d);
        self.failed = true;
    }

    fn warn(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        let d = self.diagnostic(field, message.into());
        self.warnings.push(d);
    }

    /// A field the Kubernetes schema does not have: a warning, or an error with `--strict`
    /// (kubectl and the API server warn, kube-proxy logs and goes on).
    fn unknown_field(&mut self, path: &str, line: usize) {
        let d = self.diagnostic_at(line, "", format!("unknown field {path}"));
        if self.strict {
            self.errors.push(d);
        } else {
            self.warnings.push(d);
        }
    }

    /// Typed decoding of the object; a type error becomes a diagnostic at the failing field,
    /// a field the type does not know an [`Ctx::unknown_field`].
    fn decode<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        self.decode_from(self.root, true)
    }

    /// [`Ctx::decode`] of `node`, a stand-in for the object's root; `report_unknown` false
    /// when the type is not the schema (the caller judges the fields).
    fn decode_from<T: serde::de::DeserializeOwned>(
        &mut self,
        node: &Node,
        report_unknown: bool,
    ) -> Option<T> {
        let mut unknown = Vec::new();
        let decoded = de::from_node::<T>(node, &mut unknown);
        if report_unknown {
            for (path, line) in unknown {
                self.unknown_field(&path, line);
            }
        }
        match decoded {
            Ok(value) => Some(value),
            Err(e) => {
                let (field, line) = e.located.unwrap_or_default();
                let line = if line == 0 { self.root.line } else { line };
                let d = self.diagnostic_at(line, &field, e.message);
                self.errors.push(d);
                self.failed = true;
                None
            }
        }
    }
}

fn object(
    file: Source<'_>,
    root: &Node,
    out: &mut Manifests,
    errors: &mut Vec<Diagnostic>,
    depth: usize,
) {
    let mut ctx = Ctx {
        file: file.file,
        strict: file.strict,
        root,
        object: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        failed: false,
    };
    dispatch(&mut ctx, out, errors, depth);
    errors.append(&mut ctx.errors);
    out.warnings.append(&mut ctx.warnings);
}

fn dispatch(ctx: &mut Ctx<'_>, out: &mut Manifests, errors: &mut Vec<Diagnostic>, depth: usize) {
    let root = ctx.root;
    let file = Source {
        file: ctx.file,
        strict: ctx.strict,
    };
    if !matches!(root.value, Value::Map(_)) {
        ctx.error(
            "",
            format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                root.describe()
            ),
        );
        return;
    }
    let api_version = root.str_at(&["apiVersion"]).unwrap_or("").to_string();
    let kind = root.str_at(&["kind"]).unwrap_or("").to_string();
    let name = root.str_at(&["metadata", "name"]).unwrap_or("");
    let namespace = root.str_at(&["metadata", "namespace"]).unwrap_or("default");
    let namespaced = matches!(
        kind.as_str(),
        "Service" | "EndpointSlice" | "Endpoints" | "Ingress"
    );
    if !kind.is_empty() && !kind.ends_with("List") {
        ctx.object = Some(match (namespaced, name.is_empty()) {
            (_, true) => kind.clone(),
            (true, false) => format!("{kind} {namespace}/{name}"),
            (false, false) => format!("{kind} {name}"),
        });
    }
    if api_version.is_empty() {
        ctx.error("apiVersion", "required (e.g. v1)");
    }
    if kind.is_empty() {
        ctx.error("kind", "required (e.g. Service)");
    }
    if ctx.failed {
        return;
    }
    if kind.ends_with("List") && root.get("items").is_some() {
        let Some(Value::Seq(items)) = root.get("items").map(|n| &n.value) else {
            if root.get("items").map(|n| &n.value) != Some(&Value::Null) {
                ctx.error("items", "expected a list of objects");
            }
            return;
        };
        if depth > 8 {
            ctx.error("items", "Lists nested too deeply");
            return;
        }
        for item in items {
            object(file, item, out, errors, depth + 1);
        }
        return;
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Service") => service(ctx, out),
        ("v1", "Endpoints") => endpoints(ctx, out),
        ("v1", "Node") => node(ctx, out),
        ("discovery.k8s.io/v1", "EndpointSlice") => endpoint_slice(ctx, out),
        ("networking.k8s.io/v1", "Ingress") => ingress(ctx, out),
        ("networking.k8s.io/v1" | "networking.k8s.io/v1beta1", "ServiceCIDR") => {
            service_cidr(ctx, out)
        }
        (proxy::API_VERSION, "KubeProxyConfiguration") => proxy_config(ctx, out),
        (_, "Service" | "Endpoints" | "Node" | "EndpointSlice" | "Ingress" | "ServiceCIDR")
        | (_, "KubeProxyConfiguration") => {
            let expected = match kind.as_str() {
                "EndpointSlice" => "discovery.k8s.io/v1",
                "Ingress" | "ServiceCIDR" => "networking.k8s.io/v1",
                "KubeProxyConfiguration" => proxy::API_VERSION,
                _ => "v1",
            };
            ctx.error(
                "apiVersion",
                format!("{api_version:?} is not supported for {kind} (expected {expected})"),
            );
        }
        _ => ctx.warn(
            "kind",
            format!("{kind} ({api_version}) is not used by kube-proxy; skipped"),
        ),
    }
}
