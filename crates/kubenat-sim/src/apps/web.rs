//! A plain web server: answers every HTTP request with a small page naming the pod, as the
//! `X-Served-By` header does. The backends of generated clusters ([`crate::generate`]).

use std::net::SocketAddr;

use super::http::{Parse, Response, parse_request};
use super::tcp::{Listener, Stream};
use super::{App, Ctx};
use crate::clock::Instant;
use crate::journey::Step;

/// The server on `port`.
pub struct Web {
    listener: Listener,
    conns: Vec<Stream>,
}

impl Web {
    pub fn new(port: u16) -> Web {
        Web {
            listener: Listener::new(port),
            conns: Vec::new(),
        }
    }
}

/// Answers the request in `conn`'s inbox once it is whole; true when it did.
fn answer(cx: &mut Ctx<'_>, conn: &mut Stream) -> bool {
    let (status, reason, body) = match parse_request(&conn.inbox) {
        Parse::Incomplete => return false,
        Parse::Invalid(e) => (400, "Bad Request", e),
        Parse::Done(http, _) => {
            let flow = conn.incoming_flow(cx.sockets);
            let request = flow.and_then(|f| cx.request_of(&f));
            cx.record(
                request,
                Step::HttpRequest {
                    method: http.method.clone(),
                    host: http.host(),
                    path: http.path.clone(),
                    from: flow.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |f| f.source),
                },
            );
            let page = format!("{} served by {}\n", http.path, cx.host);
            (200, "OK", page)
        }
    };
    conn.inbox.clear();
    let mut response = Response::new(status, reason, &body);
    response.set_header("X-Served-By", cx.host);
    conn.send(&response.to_bytes());
    conn.close_when_sent();
    true
}

impl App for Web {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        while let Some(h) = self.listener.accept(cx) {
            self.conns.push(Stream::accepted(h));
        }
        let mut again = false;
        self.conns.retain_mut(|conn| {
            again |= conn.pump(cx.sockets);
            if answer(cx, conn) {
                conn.pump(cx.sockets);
                again = true;
            }
            let done = conn.peer_done(cx.sockets) && conn.sent_all() || conn.failed(cx.sockets);
            if done {
                cx.retire(conn.handle);
            }
            !done
        });
        again.then_some(cx.now)
    }
}
