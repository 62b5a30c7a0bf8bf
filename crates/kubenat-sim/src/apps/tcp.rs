//! TCP helpers over smoltcp sockets: a listener that always keeps one socket listening, and
//! a buffered stream.

use std::net::SocketAddr;
use std::time::Duration;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};

use super::Ctx;
use crate::journey::FlowView;

/// Every message here (requests, pages, queries) is well under 2 KiB; 16 KiB each way keeps
/// ten thousand pods' listening sockets at a few hundred MB, where 64 KiB took over a GB.
const BUFFER: usize = 16 * 1024;

/// A connection whose peer acknowledges nothing for this long is aborted (smoltcp's
/// retransmission would go on for ever otherwise; an ICMP error does not stop it).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A TCP socket with 16 KiB buffers each way.
pub fn new_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; BUFFER]),
        tcp::SocketBuffer::new(vec![0; BUFFER]),
    )
}

/// The ports a host serves and the socket listening on each. A listening socket (and its
/// buffers) is made when a connection for its port arrives, not before: a server pod
/// nobody calls holds none (75,000 idle web pods held 2.4 GB of them).
#[derive(Debug, Default)]
pub struct Listening {
    ports: Vec<(u16, Option<SocketHandle>)>,
}

impl Listening {
    /// Serves `port` from now on.
    pub fn serve(&mut self, port: u16) {
        if !self.ports.iter().any(|&(p, _)| p == port) {
            self.ports.push((port, None));
        }
    }

    /// Before the stack reads `packet`: a SYN for a served port with no socket listening
    /// gets one, so the stack accepts it rather than resetting it.
    pub fn prepare(&mut self, packet: &[u8], sockets: &mut SocketSet<'static>) {
        let Some(port) = syn_port(packet) else {
            return;
        };
        let Some((_, listening)) = self.ports.iter_mut().find(|(p, _)| *p == port) else {
            return;
        };
        if listening.is_none() {
            let mut socket = new_socket();
            socket
                .listen(port)
                .expect("a fresh socket listens on a non-zero port");
            *listening = Some(sockets.add(socket));
        }
    }

    /// The socket that listened on `port`, once it has taken a connection; the next SYN
    /// gets a fresh one.
    pub fn accepted(&mut self, port: u16, sockets: &SocketSet<'static>) -> Option<SocketHandle> {
        let (_, listening) = self.ports.iter_mut().find(|(p, _)| *p == port)?;
        let h = (*listening)?;
        (sockets.get::<tcp::Socket>(h).state() != State::Listen).then(|| {
            *listening = None;
            h
        })
    }
}

/// The destination port of an IPv4 TCP SYN (without ACK: a connection's first packet).
fn syn_port(packet: &[u8]) -> Option<u16> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    if packet[0] >> 4 != 4 || packet.get(9) != Some(&6) {
        return None;
    }
    let tcp = packet.get(ihl..ihl + 14)?;
    let flags = tcp[13];
    (flags & 0x12 == 0x02).then(|| u16::from_be_bytes([tcp[2], tcp[3]]))
}

/// smoltcp sockets accept one connection each: this serves `port` through the host's
/// [`Listening`] and hands over each socket that got a connection.
pub struct Listener {
    port: u16,
}

impl Listener {
    pub fn new(port: u16) -> Listener {
        Listener { port }
    }

    /// The next accepted connection, if any; call until `None`. The first call makes the
    /// host serve the port (apps are polled as soon as their host starts).
    pub fn accept(&mut self, cx: &mut Ctx<'_>) -> Option<SocketHandle> {
        cx.listening.serve(self.port);
        cx.listening.accepted(self.port, cx.sockets)
    }
}

/// A connection with an input buffer and an output queue.
pub struct Stream {
    pub handle: SocketHandle,
    /// Everything received so far and not consumed.
    pub inbox: Vec<u8>,
    outbox: Vec<u8>,
    close_when_sent: bool,
    established: bool,
}

impl Stream {
    /// Wraps an accepted socket.
    pub fn accepted(handle: SocketHandle) -> Stream {
        Stream {
            handle,
            inbox: Vec::new(),
            outbox: Vec::new(),
            close_when_sent: false,
            established: false,
        }
    }

    /// Opens a connection to `remote` from an ephemeral port; returns it with its tuple.
    pub fn connect(cx: &mut Ctx<'_>, remote: SocketAddr) -> Result<(Stream, FlowView), String> {
        let port = cx.ports.next_port();
        let mut socket = new_socket();
        socket.set_timeout(Some(smoltcp::time::Duration::from_micros(
            CONNECT_TIMEOUT.as_micros() as u64,
        )));
        socket
            .connect(cx.iface.context(), remote, port)
            .map_err(|e| format!("connect to {remote}: {e}"))?;
        let local = socket
            .local_endpoint()
            .map(SocketAddr::from)
            .ok_or("connect chose no local address")?;
        let handle = cx.sockets.add(socket);
        Ok((Stream::accepted(handle), FlowView::tcp(local, remote)))
    }

    /// The connection's tuple as this end sees it (remote -> local for accepted ones is
    /// [`Stream::incoming_flow`]).
    pub fn incoming_flow(&self, sockets: &SocketSet<'static>) -> Option<FlowView> {
        let s = sockets.get::<tcp::Socket>(self.handle);
        Some(FlowView::tcp(
            s.remote_endpoint()?.into(),
            s.local_endpoint()?.into(),
        ))
    }

    /// Queues bytes to send.
    pub fn send(&mut self, data: &[u8]) {
        self.outbox.extend_from_slice(data);
    }

    /// Closes the sending side once everything queued is sent.
    pub fn close_when_sent(&mut self) {
        self.close_when_sent = true;
    }

    /// Moves bytes between the socket and the buffers; true if anything moved.
    pub fn pump(&mut self, sockets: &mut SocketSet<'static>) -> bool {
        let s = sockets.get_mut::<tcp::Socket>(self.handle);
        let mut progress = false;
        if !matches!(
            s.state(),
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        ) {
            self.established = true;
        }
        while s.can_recv() {
            match s.recv(|buf| (buf.len(), buf.to_vec())) {
                Ok(data) if !data.is_empty() => {
                    self.inbox.extend_from_slice(&data);
                    progress = true;
                }
                _ => break,
            }
        }
        if !self.outbox.is_empty() && s.can_send() {
            if let Ok(n) = s.send_slice(&self.outbox) {
                if n > 0 {
                    self.outbox.drain(..n);
                    progress = true;
                }
            }
        }
        if self.close_when_sent && self.outbox.is_empty() && s.may_send() {
            s.close();
            progress = true;
        }
        progress
    }

    /// The peer closed its side (FIN received) or the connection is gone; nothing more
    /// will arrive.
    pub fn peer_done(&self, sockets: &SocketSet<'static>) -> bool {
        let s = sockets.get::<tcp::Socket>(self.handle);
        matches!(
            s.state(),
            State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed
        ) && !s.can_recv()
    }

    /// The connection never came up, or was reset before the peer finished.
    pub fn failed(&self, sockets: &SocketSet<'static>) -> bool {
        let s = sockets.get::<tcp::Socket>(self.handle);
        s.state() == State::Closed && !self.established
    }

    /// Everything queued has been handed to the socket.
    pub fn sent_all(&self) -> bool {
        self.outbox.is_empty()
    }
}
