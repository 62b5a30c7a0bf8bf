//! WordPress: answers HTTP; for every page it finds its database (through the cluster DNS
//! when configured with a name, as `wp-config.php` with `db_host=mariadb-service:3307`)
//! and runs one query.

use std::net::{IpAddr, SocketAddr};

use super::dns::{Resolver, ResolverConfig};
use super::http::{Parse, Response, parse_request};
use super::mariadb::BLOGNAME_QUERY;
use super::tcp::{Listener, Stream};
use super::{App, Ctx, earliest};
use crate::clock::Instant;
use crate::journey::{RequestId, Step};

/// `db_host` in `wp-config.php`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbHost {
    /// A name resolved per page (`mariadb-service:3307`): survives the database moving.
    Name(String, u16),
    /// A fixed address (the notes' "OPCION 1: RUINA"): breaks when the pod moves.
    Address(SocketAddr),
}

enum Phase {
    ReadRequest,
    Resolve(Resolver),
    Query(Stream),
    Respond,
}

struct Page {
    client: Stream,
    request: Option<RequestId>,
    phase: Phase,
    path: String,
}

/// The WordPress server on port 80.
pub struct WordPress {
    listener: Listener,
    db: DbHost,
    resolver: ResolverConfig,
    pages: Vec<Page>,
}

impl WordPress {
    pub fn new(db: DbHost, resolver: ResolverConfig) -> WordPress {
        WordPress {
            listener: Listener::new(80),
            db,
            resolver,
            pages: Vec::new(),
        }
    }
}

fn respond(cx: &mut Ctx<'_>, page: &mut Page, status: u16, reason: &str, body: &str) {
    let mut response = Response::new(status, reason, body);
    response.set_header("X-Served-By", cx.host);
    page.client.send(&response.to_bytes());
    page.client.close_when_sent();
    page.phase = Phase::Respond;
    cx.record(
        page.request,
        Step::HttpResponse {
            status,
            served_by: Some(cx.host.to_string()),
        },
    );
}

fn connect_db(cx: &mut Ctx<'_>, page: &mut Page, address: SocketAddr) {
    match Stream::connect(cx, address) {
        Ok((mut stream, flow)) => {
            if let Some(id) = page.request {
                cx.journal.register(flow, id);
            }
            cx.record(
                page.request,
                Step::Connect {
                    flow,
                    purpose: "database".into(),
                },
            );
            stream.send(format!("QUERY {BLOGNAME_QUERY}\n").as_bytes());
            page.phase = Phase::Query(stream);
        }
        Err(e) => respond(cx, page, 500, "Internal Server Error", &e),
    }
}

enum Next {
    Stay,
    Respond(u16, &'static str, String),
    Resolve(String),
    Connect(SocketAddr),
}

impl WordPress {
    /// Moves one page along; true on progress.
    fn step(&self, cx: &mut Ctx<'_>, page: &mut Page) -> bool {
        let mut progress = page.client.pump(cx.sockets);
        let request = page.request;
        let next = match &mut page.phase {
            Phase::ReadRequest => match parse_request(&page.client.inbox) {
                Parse::Incomplete => Next::Stay,
                Parse::Invalid(e) => Next::Respond(400, "Bad Request", e),
                Parse::Done(http, _) => {
                    let flow = page.client.incoming_flow(cx.sockets);
                    page.request = flow.and_then(|f| cx.request_of(&f));
                    page.path = http.path.clone();
                    cx.record(
                        page.request,
                        Step::HttpRequest {
                            method: http.method.clone(),
                            host: http.host(),
                            path: http.path.clone(),
                            from: flow.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |f| f.source),
                        },
                    );
                    match &self.db {
                        DbHost::Name(name, _) => Next::Resolve(name.clone()),
                        DbHost::Address(address) => Next::Connect(*address),
                    }
                }
            },
            Phase::Resolve(resolver) => match resolver.poll(cx) {
                None => Next::Stay,
                Some(Ok((_, ip))) => {
                    let port = match self.db {
                        DbHost::Name(_, port) => port,
                        DbHost::Address(a) => a.port(),
                    };
                    Next::Connect(SocketAddr::new(IpAddr::V4(ip), port))
                }
                Some(Err(e)) => Next::Respond(
                    500,
                    "Internal Server Error",
                    format!("Error establishing a database connection: {e}"),
                ),
            },
            Phase::Query(db) => {
                progress |= db.pump(cx.sockets);
                if db.failed(cx.sockets) {
                    cx.retire(db.handle);
                    cx.record(
                        request,
                        Step::Error {
                            message: "database connection failed".into(),
                        },
                    );
                    Next::Respond(
                        500,
                        "Internal Server Error",
                        "Error establishing a database connection".into(),
                    )
                } else if db.peer_done(cx.sockets) {
                    let reply = String::from_utf8_lossy(&db.inbox).trim().replace('\n', " ");
                    cx.sockets
                        .get_mut::<smoltcp::socket::tcp::Socket>(db.handle)
                        .close();
                    cx.retire(db.handle);
                    cx.record(
                        request,
                        Step::DbReply {
                            reply: reply.clone(),
                        },
                    );
                    let blogname = reply
                        .strip_prefix("ROW ")
                        .and_then(|r| r.strip_suffix(" OK"))
                        .unwrap_or("?")
                        .to_string();
                    Next::Respond(
                        200,
                        "OK",
                        format!(
                            "<html><head><title>{blogname}</title></head><body><h1>{blogname}</h1>\
                             <p>{} served by {}</p></body></html>\n",
                            page.path, cx.host
                        ),
                    )
                } else {
                    Next::Stay
                }
            }
            Phase::Respond => Next::Stay,
        };
        progress |= !matches!(next, Next::Stay);
        match next {
            Next::Stay => {}
            Next::Respond(status, reason, body) => respond(cx, page, status, reason, &body),
            Next::Resolve(name) => {
                let resolver = Resolver::start(&self.resolver, &name, page.request, cx);
                page.phase = Phase::Resolve(resolver);
            }
            Next::Connect(address) => connect_db(cx, page, address),
        }
        progress | page.client.pump(cx.sockets)
    }
}

impl App for WordPress {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        while let Some(h) = self.listener.accept(cx) {
            self.pages.push(Page {
                client: Stream::accepted(h),
                request: None,
                phase: Phase::ReadRequest,
                path: String::new(),
            });
        }
        let mut again = false;
        let mut wake = None;
        let mut pages = std::mem::take(&mut self.pages);
        pages.retain_mut(|page| {
            again |= self.step(cx, page);
            if let Phase::Resolve(r) = &page.phase {
                wake = earliest(wake, r.wake());
            }
            let done = (matches!(page.phase, Phase::Respond)
                && page.client.sent_all()
                && page.client.peer_done(cx.sockets))
                || page.client.failed(cx.sockets);
            if done {
                cx.retire(page.client.handle);
            }
            !done
        });
        self.pages = pages;
        if again { Some(cx.now) } else { wake }
    }
}
