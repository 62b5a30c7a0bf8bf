//! The ingress controller (the notes' nginx as reverse proxy): reads the HTTP `Host` and
//! path, picks the Ingress rule, and proxies to the backend Service's cluster IP and port,
//! so the connection goes through its node's engine like any pod's.

use std::net::SocketAddr;

use kubenat_core::{Service, TargetPort};
use kubenat_k8s::{Ingress, IngressBackend};

use super::http::{Parse, Response, parse_request, parse_response};
use super::tcp::{Listener, Stream};
use super::{App, Ctx};
use crate::clock::Instant;
use crate::journey::{RequestId, Step};

/// One routable path of one Ingress rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `namespace/name` of the Ingress.
    pub ingress: String,
    /// `None`: any host. `*.example.com`: one label, as the Ingress API defines it.
    pub host: Option<String>,
    pub path: String,
    /// `Exact`, `Prefix` or `ImplementationSpecific` (taken as `Prefix`).
    pub path_type: String,
    /// `service:port` as written in the Ingress.
    pub backend: String,
    /// The Service's cluster IP and port.
    pub address: SocketAddr,
}

impl Route {
    fn host_matches(&self, host: &str) -> bool {
        match &self.host {
            None => true,
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
                None => h.eq_ignore_ascii_case(host),
            },
        }
    }

    fn path_matches(&self, path: &str) -> bool {
        if self.path_type == "Exact" {
            return self.path == path;
        }
        // Prefix: element-wise on `/`-separated segments, trailing slashes ignored.
        let want: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        let got: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        got.len() >= want.len() && got[..want.len()] == want[..]
    }
}

/// Resolves an Ingress backend to the Service's cluster IP and port.
fn backend_address(
    namespace: &str,
    backend: &IngressBackend,
    services: &[Service],
) -> Option<SocketAddr> {
    let service = services
        .iter()
        .find(|s| s.name.namespace == namespace && s.name.name == backend.service)?;
    let ip = service.cluster_ips.iter().find(|ip| ip.is_ipv4())?;
    let port = service.ports.iter().find(|p| match &backend.port {
        TargetPort::Number(n) => p.port == *n,
        TargetPort::Name(name) => &p.name == name,
    })?;
    Some(SocketAddr::new(*ip, port.port))
}

/// The routing table built from Ingress objects of one class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingTable {
    pub routes: Vec<Route>,
    pub default: Option<Route>,
}

impl RoutingTable {
    /// The routes of the Ingresses of `class` (all of them when `None`) whose backends are
    /// known Services.
    pub fn new(ingresses: &[Ingress], services: &[Service], class: Option<&str>) -> Self {
        let mut table = RoutingTable::default();
        for ing in ingresses {
            if class.is_some() && ing.class.is_some() && ing.class.as_deref() != class {
                continue;
            }
            let name = format!("{}/{}", ing.namespace, ing.name);
            let describe = |b: &IngressBackend| match &b.port {
                TargetPort::Number(n) => format!("{}:{n}", b.service),
                TargetPort::Name(p) => format!("{}:{p}", b.service),
            };
            for rule in &ing.rules {
                for p in &rule.paths {
                    if let Some(address) = backend_address(&ing.namespace, &p.backend, services) {
                        table.routes.push(Route {
                            ingress: name.clone(),
                            host: rule.host.clone(),
                            path: if p.path.is_empty() {
                                "/".into()
                            } else {
                                p.path.clone()
                            },
                            path_type: p.path_type.clone(),
                            backend: describe(&p.backend),
                            address,
                        });
                    }
                }
            }
            if let Some(b) = &ing.default_backend
                && table.default.is_none()
                && let Some(address) = backend_address(&ing.namespace, b, services)
            {
                table.default = Some(Route {
                    ingress: name.clone(),
                    host: None,
                    path: "/".into(),
                    path_type: "Prefix".into(),
                    backend: describe(b),
                    address,
                });
            }
        }
        table
    }

    /// The route for `host` and `path`: hosts written out beat wildcards beat none; then
    /// Exact beats Prefix; then the longest path; then the first written.
    pub fn route(&self, host: &str, path: &str) -> Option<&Route> {
        let rank = |r: &Route| {
            let host_rank = match &r.host {
                Some(h) if !h.starts_with("*.") => 2,
                Some(_) => 1,
                None => 0,
            };
            (host_rank, r.path_type == "Exact", r.path.len())
        };
        let mut best: Option<&Route> = None;
        for r in self
            .routes
            .iter()
            .filter(|r| r.host_matches(host) && r.path_matches(path))
        {
            if best.is_none_or(|b| rank(r) > rank(b)) {
                best = Some(r);
            }
        }
        best.or(self.default.as_ref())
    }
}

enum Phase {
    ReadRequest,
    Proxy(Stream),
    Respond,
}

struct Exchange {
    client: Stream,
    request: Option<RequestId>,
    phase: Phase,
}

/// The controller on port 80.
pub struct IngressController {
    listener: Listener,
    table: RoutingTable,
    exchanges: Vec<Exchange>,
}

impl IngressController {
    pub fn new(table: RoutingTable) -> IngressController {
        IngressController {
            listener: Listener::new(80),
            table,
            exchanges: Vec::new(),
        }
    }
}

fn reply(cx: &mut Ctx<'_>, ex: &mut Exchange, response: Response) {
    cx.record(
        ex.request,
        Step::HttpResponse {
            status: response.status,
            served_by: response.header("X-Served-By").map(str::to_string),
        },
    );
    ex.client.send(&response.to_bytes());
    ex.client.close_when_sent();
    ex.phase = Phase::Respond;
}

impl IngressController {
    fn step(&self, cx: &mut Ctx<'_>, ex: &mut Exchange) -> bool {
        let mut progress = ex.client.pump(cx.sockets);
        let mut response = None;
        match &mut ex.phase {
            Phase::ReadRequest => match parse_request(&ex.client.inbox) {
                Parse::Incomplete => {}
                Parse::Invalid(e) => response = Some(Response::new(400, "Bad Request", &e)),
                Parse::Done(mut http, _) => {
                    progress = true;
                    let flow = ex.client.incoming_flow(cx.sockets);
                    ex.request = flow.and_then(|f| cx.request_of(&f));
                    let host = http.host();
                    let path = http.path_only().to_string();
                    match self.table.route(&host, &path) {
                        None => {
                            cx.record(ex.request, Step::IngressNoRule { host, path });
                            response = Some(Response::new(404, "Not Found", "404 Not Found\n"));
                        }
                        Some(route) => {
                            cx.record(
                                ex.request,
                                Step::IngressRule {
                                    host: host.clone(),
                                    path,
                                    ingress: route.ingress.clone(),
                                    rule: format!(
                                        "{} {} {}",
                                        route.host.as_deref().unwrap_or("*"),
                                        route.path_type,
                                        route.path
                                    ),
                                    backend: route.backend.clone(),
                                    address: route.address,
                                },
                            );
                            if let Some(f) = flow {
                                http.set_header("X-Forwarded-For", &f.source.ip().to_string());
                            }
                            http.set_header("X-Forwarded-Host", &host);
                            http.set_header("Connection", "close");
                            match Stream::connect(cx, route.address) {
                                Ok((mut upstream, flow)) => {
                                    if let Some(id) = ex.request {
                                        cx.journal.register(flow, id);
                                    }
                                    cx.record(
                                        ex.request,
                                        Step::Connect {
                                            flow,
                                            purpose: format!("upstream {}", route.backend),
                                        },
                                    );
                                    upstream.send(&http.to_bytes());
                                    ex.phase = Phase::Proxy(upstream);
                                }
                                Err(e) => {
                                    response = Some(Response::new(502, "Bad Gateway", &e));
                                }
                            }
                        }
                    }
                }
            },
            Phase::Proxy(upstream) => {
                progress |= upstream.pump(cx.sockets);
                if upstream.failed(cx.sockets) {
                    cx.retire(upstream.handle);
                    response = Some(Response::new(502, "Bad Gateway", "upstream failed\n"));
                } else {
                    let eof = upstream.peer_done(cx.sockets);
                    match parse_response(&upstream.inbox, eof) {
                        Parse::Done(r, _) => {
                            cx.sockets
                                .get_mut::<smoltcp::socket::tcp::Socket>(upstream.handle)
                                .close();
                            cx.retire(upstream.handle);
                            response = Some(r);
                        }
                        Parse::Invalid(e) => {
                            cx.retire(upstream.handle);
                            response = Some(Response::new(502, "Bad Gateway", &e));
                        }
                        Parse::Incomplete if eof => {
                            cx.retire(upstream.handle);
                            response =
                                Some(Response::new(502, "Bad Gateway", "truncated response\n"));
                        }
                        Parse::Incomplete => {}
                    }
                }
            }
            Phase::Respond => {}
        }
        if let Some(r) = response {
            reply(cx, ex, r);
            progress = true;
        }
        progress | ex.client.pump(cx.sockets)
    }
}

impl App for IngressController {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        while let Some(h) = self.listener.accept(cx) {
            self.exchanges.push(Exchange {
                client: Stream::accepted(h),
                request: None,
                phase: Phase::ReadRequest,
            });
        }
        let mut again = false;
        let mut exchanges = std::mem::take(&mut self.exchanges);
        exchanges.retain_mut(|ex| {
            again |= self.step(cx, ex);
            let done = (matches!(ex.phase, Phase::Respond)
                && ex.client.sent_all()
                && ex.client.peer_done(cx.sockets))
                || ex.client.failed(cx.sockets);
            if done {
                cx.retire(ex.client.handle);
            }
            !done
        });
        self.exchanges = exchanges;
        again.then_some(cx.now)
    }
}
