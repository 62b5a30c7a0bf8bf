//! A database with a one-line protocol: the client sends `QUERY <text>\n`, the server
//! answers `ROW <value>\nOK\n` (or `ERR <message>\n`) and closes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::tcp::{Listener, Stream};
use super::{App, Ctx};
use crate::clock::Instant;
use crate::journey::Step;

/// The server.
pub struct MariaDb {
    listener: Listener,
    /// Query text -> the row it returns.
    tables: BTreeMap<String, String>,
    conns: Vec<Stream>,
}

/// The query WordPress sends for every page.
pub const BLOGNAME_QUERY: &str = "SELECT option_value FROM wp_options WHERE option_name='blogname'";

impl MariaDb {
    /// A server on `port` knowing the WordPress site's name.
    pub fn new(port: u16, blogname: &str) -> MariaDb {
        MariaDb {
            listener: Listener::new(port),
            tables: BTreeMap::from([(BLOGNAME_QUERY.to_string(), blogname.to_string())]),
            conns: Vec::new(),
        }
    }

    /// The reply to one request line.
    pub fn reply(&self, line: &str) -> String {
        match line.strip_prefix("QUERY ") {
            Some(query) => match self.tables.get(query.trim()) {
                Some(row) => format!("ROW {row}\nOK\n"),
                None => "ERR unknown query\n".into(),
            },
            None => "ERR expected QUERY\n".into(),
        }
    }
}

impl App for MariaDb {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        while let Some(h) = self.listener.accept(cx) {
            self.conns.push(Stream::accepted(h));
        }
        let mut again = false;
        let mut i = 0;
        while i < self.conns.len() {
            let conn = &mut self.conns[i];
            again |= conn.pump(cx.sockets);
            if let Some(end) = conn.inbox.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = conn.inbox.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line).trim().to_string();
                let flow = conn.incoming_flow(cx.sockets);
                let reply = self.reply(&line);
                let conn = &mut self.conns[i];
                conn.send(reply.as_bytes());
                conn.close_when_sent();
                again |= conn.pump(cx.sockets);
                let request = flow.and_then(|f| cx.request_of(&f));
                let from = flow.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |f| f.source);
                cx.record(request, Step::DbQuery { query: line, from });
            }
            let conn = &self.conns[i];
            if conn.peer_done(cx.sockets) && conn.sent_all() || conn.failed(cx.sockets) {
                let conn = self.conns.remove(i);
                cx.retire(conn.handle);
            } else {
                i += 1;
            }
        }
        again.then_some(cx.now)
    }
}
