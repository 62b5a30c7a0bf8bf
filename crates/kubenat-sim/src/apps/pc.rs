//! The PC ("MenchuPC"): resolves the site's name with the outside DNS and makes N HTTP
//! requests one after another, each on a new connection. In a pod (the clients of
//! generated clusters) the same browser resolves through the cluster DNS.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::dns::{Resolver, ResolverConfig};
use super::http::{Parse, Request, parse_response};
use super::tcp::Stream;
use super::{App, Ctx};
use crate::clock::Instant;
use crate::journey::{Outcome, RequestId, Step};

/// What the browser does.
#[derive(Clone, Debug, PartialEq)]
pub struct Browse {
    /// The host name in the URL (`web1.miempresa.com`).
    pub host: String,
    pub path: String,
    pub port: u16,
    pub requests: u32,
    /// When the first request starts.
    pub start: Instant,
    /// Pause between the end of one request and the start of the next.
    pub gap: Duration,
    /// A request that has not finished after this fails.
    pub timeout: Duration,
}

enum State {
    Waiting(Instant),
    Resolving(Resolver),
    Fetching(Stream),
    Done,
}

/// The PC's browser.
pub struct Pc {
    browse: Browse,
    resolver: ResolverConfig,
    state: State,
    started: u32,
    current: Option<(RequestId, Instant)>,
}

impl Pc {
    pub fn new(browse: Browse, resolver: ResolverConfig) -> Pc {
        Pc {
            state: State::Waiting(browse.start),
            browse,
            resolver,
            started: 0,
            current: None,
        }
    }

    fn end(&mut self, cx: &mut Ctx<'_>, outcome: Outcome) {
        if let Some((id, _)) = self.current.take() {
            if let Some(error) = &outcome.error {
                cx.record(
                    Some(id),
                    Step::Error {
                        message: error.clone(),
                    },
                );
            }
            cx.journal.finish(id, cx.now, outcome);
        }
        self.state = if self.started < self.browse.requests {
            State::Waiting(cx.now + self.browse.gap)
        } else {
            State::Done
        };
    }

    fn failed(error: String) -> Outcome {
        Outcome {
            error: Some(error),
            ..Outcome::default()
        }
    }
}

impl App for Pc {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        if let Some((_, started)) = self.current
            && cx.now >= started + self.browse.timeout
        {
            if let State::Fetching(s) = &self.state {
                cx.sockets
                    .get_mut::<smoltcp::socket::tcp::Socket>(s.handle)
                    .abort();
                cx.retire(s.handle);
            }
            self.end(cx, Self::failed("timed out".into()));
        }
        match &mut self.state {
            State::Done => None,
            State::Waiting(at) if cx.now < *at => Some(*at),
            State::Waiting(_) => {
                self.started += 1;
                let label = format!("GET http://{}{}", self.browse.host, self.browse.path);
                let id = cx.journal.begin(cx.now, label);
                self.current = Some((id, cx.now));
                let resolver = Resolver::start(&self.resolver, &self.browse.host, Some(id), cx);
                self.state = State::Resolving(resolver);
                Some(cx.now)
            }
            State::Resolving(resolver) => {
                let deadline = self.current.map(|(_, t)| t + self.browse.timeout);
                match resolver.poll(cx) {
                    None => super::earliest(resolver.wake(), deadline),
                    Some(Err(e)) => {
                        self.end(cx, Self::failed(e));
                        Some(cx.now)
                    }
                    Some(Ok((_, ip))) => {
                        let id = self.current.map(|(id, _)| id);
                        let remote = SocketAddr::new(IpAddr::V4(ip), self.browse.port);
                        match Stream::connect(cx, remote) {
                            Ok((mut stream, flow)) => {
                                if let Some(id) = id {
                                    cx.journal.register(flow, id);
                                }
                                cx.record(
                                    id,
                                    Step::Connect {
                                        flow,
                                        purpose: "browser".into(),
                                    },
                                );
                                let request = Request::get(&self.browse.host, &self.browse.path);
                                stream.send(&request.to_bytes());
                                self.state = State::Fetching(stream);
                            }
                            Err(e) => self.end(cx, Self::failed(e)),
                        }
                        Some(cx.now)
                    }
                }
            }
            State::Fetching(stream) => {
                let progress = stream.pump(cx.sockets);
                let eof = stream.peer_done(cx.sockets);
                let handle = stream.handle;
                if stream.failed(cx.sockets) {
                    cx.retire(handle);
                    self.end(cx, Self::failed("connection failed".into()));
                    return Some(cx.now);
                }
                match parse_response(&stream.inbox, eof) {
                    Parse::Done(response, _) => {
                        cx.sockets
                            .get_mut::<smoltcp::socket::tcp::Socket>(handle)
                            .close();
                        cx.retire(handle);
                        let served_by = response.header("X-Served-By").map(str::to_string);
                        let id = self.current.map(|(id, _)| id);
                        cx.record(
                            id,
                            Step::HttpResponse {
                                status: response.status,
                                served_by: served_by.clone(),
                            },
                        );
                        self.end(
                            cx,
                            Outcome {
                                status: Some(response.status),
                                served_by,
                                error: None,
                            },
                        );
                        Some(cx.now)
                    }
                    Parse::Invalid(e) => {
                        cx.retire(handle);
                        self.end(cx, Self::failed(e));
                        Some(cx.now)
                    }
                    Parse::Incomplete if eof => {
                        cx.retire(handle);
                        self.end(
                            cx,
                            Self::failed("connection closed before the response".into()),
                        );
                        Some(cx.now)
                    }
                    Parse::Incomplete => {
                        let deadline = self.current.map(|(_, t)| t + self.browse.timeout);
                        if progress { Some(cx.now) } else { deadline }
                    }
                }
            }
        }
    }
}
