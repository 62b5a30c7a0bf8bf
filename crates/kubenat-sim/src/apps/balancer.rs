//! The external load balancer (the notes' "Balanceador de carga EXTERNO"): a TCP proxy that
//! spreads connections round robin over the nodes' NodePort.

use std::net::SocketAddr;

use super::tcp::{Listener, Stream};
use super::{App, Ctx};
use crate::clock::Instant;
use crate::journey::{RequestId, Step};

struct Pair {
    client: Stream,
    upstream: Stream,
    request: Option<RequestId>,
    client_eof_sent: bool,
    upstream_eof_sent: bool,
}

/// Listens on `port`; each connection goes to the next backend.
pub struct Balancer {
    listener: Listener,
    backends: Vec<SocketAddr>,
    next: usize,
    pairs: Vec<Pair>,
}

impl Balancer {
    pub fn new(port: u16, backends: Vec<SocketAddr>) -> Balancer {
        Balancer {
            listener: Listener::new(port),
            backends,
            next: 0,
            pairs: Vec::new(),
        }
    }
}

impl App for Balancer {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        let mut again = false;
        while let Some(h) = self.listener.accept(cx) {
            let client = Stream::accepted(h);
            let request = client
                .incoming_flow(cx.sockets)
                .and_then(|f| cx.request_of(&f));
            if self.backends.is_empty() {
                cx.sockets
                    .get_mut::<smoltcp::socket::tcp::Socket>(h)
                    .abort();
                cx.retire(h);
                continue;
            }
            let index = self.next % self.backends.len();
            self.next += 1;
            let backend = self.backends[index];
            cx.record(
                request,
                Step::Balance {
                    backend,
                    index,
                    of: self.backends.len(),
                },
            );
            match Stream::connect(cx, backend) {
                Ok((upstream, flow)) => {
                    if let Some(id) = request {
                        cx.journal.register(flow, id);
                    }
                    cx.record(
                        request,
                        Step::Connect {
                            flow,
                            purpose: "to the NodePort".into(),
                        },
                    );
                    self.pairs.push(Pair {
                        client,
                        upstream,
                        request,
                        client_eof_sent: false,
                        upstream_eof_sent: false,
                    });
                    again = true;
                }
                Err(e) => {
                    cx.record(request, Step::Error { message: e });
                    cx.retire(h);
                }
            }
        }
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.retain_mut(|p| {
            again |= p.client.pump(cx.sockets) | p.upstream.pump(cx.sockets);
            if !p.client.inbox.is_empty() {
                let data = std::mem::take(&mut p.client.inbox);
                p.upstream.send(&data);
                again = true;
            }
            if !p.upstream.inbox.is_empty() {
                let data = std::mem::take(&mut p.upstream.inbox);
                p.client.send(&data);
                again = true;
            }
            if p.upstream.failed(cx.sockets) && !p.upstream_eof_sent {
                cx.record(
                    p.request,
                    Step::Error {
                        message: "backend connection failed".into(),
                    },
                );
                cx.sockets
                    .get_mut::<smoltcp::socket::tcp::Socket>(p.client.handle)
                    .abort();
                p.upstream_eof_sent = true;
                p.client_eof_sent = true;
            }
            if p.client.peer_done(cx.sockets) && !p.client_eof_sent {
                p.upstream.close_when_sent();
                p.client_eof_sent = true;
                again = true;
            }
            if p.upstream.peer_done(cx.sockets) && !p.upstream_eof_sent {
                p.client.close_when_sent();
                p.upstream_eof_sent = true;
                again = true;
            }
            let done = p.client_eof_sent
                && p.upstream_eof_sent
                && p.client.sent_all()
                && p.upstream.sent_all();
            if done {
                cx.retire(p.client.handle);
                cx.retire(p.upstream.handle);
            }
            !done
        });
        self.pairs = pairs;
        again.then_some(cx.now)
    }
}
