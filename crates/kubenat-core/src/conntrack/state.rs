//! Connection states and the timeout each one takes.

use crate::model::ConntrackTimeouts;
use crate::time::saturating_nanos;

/// Connection state, just deep enough to pick netfilter's timeouts. Each state's timeout is
/// the matching [`ConntrackTimeouts`] field (`TcpSynSent` uses `tcp_syn_sent`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// TCP: the client's SYN was seen.
    TcpSynSent,
    /// TCP: the SYN-ACK was seen.
    TcpSynRecv,
    /// TCP: the handshake completed (or the connection was picked up mid-stream by an ACK).
    TcpEstablished,
    /// A FIN was seen.
    TcpFinWait,
    /// The FIN was acknowledged: one side is half-closed.
    TcpCloseWait,
    /// TCP: both sides sent a FIN; waiting for the last ACK.
    TcpLastAck,
    /// TCP: closed cleanly; a new SYN on the tuple starts a new connection.
    TcpTimeWait,
    /// TCP: reset; a new SYN on the tuple starts a new connection.
    TcpClose,
    /// UDP: packets seen in the original direction only (timeout `udp`).
    UdpUnreplied,
    /// UDP: a reply was seen (timeout `udp_stream`).
    UdpReplied,
    /// SCTP: INIT seen, association not up yet.
    SctpHandshake,
    /// SCTP: association up.
    SctpEstablished,
    /// SCTP: ABORT or SHUTDOWN seen.
    SctpClosing,
}

pub(super) const STATES: usize = 13;

/// Every state, in declaration (and discriminant) order.
const ALL: [State; STATES] = [
    State::TcpSynSent,
    State::TcpSynRecv,
    State::TcpEstablished,
    State::TcpFinWait,
    State::TcpCloseWait,
    State::TcpLastAck,
    State::TcpTimeWait,
    State::TcpClose,
    State::UdpUnreplied,
    State::UdpReplied,
    State::SctpHandshake,
    State::SctpEstablished,
    State::SctpClosing,
];

/// Each state's timeout in nanoseconds, indexed by state: what a packet adds to the
/// clock, without converting a `Duration` every time.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimeoutNanos([u64; STATES]);

impl TimeoutNanos {
    pub(super) fn new(timeouts: &ConntrackTimeouts) -> TimeoutNanos {
        TimeoutNanos(ALL.map(|state| saturating_nanos(state.timeout(timeouts))))
    }

    #[inline(always)]
    pub(super) fn of(&self, state: State) -> u64 {
        self.0[state as usize]
    }
}

impl State {
    /// The name `conntrack -L` shows for the state (`"SYN_SENT"`, `"UNREPLIED"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::TcpSynSent => "SYN_SENT",
            State::TcpSynRecv => "SYN_RECV",
            State::TcpEstablished => "ESTABLISHED",
            State::TcpFinWait => "FIN_WAIT",
            State::TcpCloseWait => "CLOSE_WAIT",
            State::TcpLastAck => "LAST_ACK",
            State::TcpTimeWait => "TIME_WAIT",
            State::TcpClose => "CLOSE",
            State::UdpUnreplied => "UNREPLIED",
            State::UdpReplied => "REPLIED",
            State::SctpHandshake => "COOKIE_WAIT",
            State::SctpEstablished => "ESTABLISHED",
            State::SctpClosing => "SHUTDOWN",
        }
    }

    pub(super) fn timeout(self, t: &ConntrackTimeouts) -> std::time::Duration {
        match self {
            State::TcpSynSent => t.tcp_syn_sent,
            State::TcpSynRecv => t.tcp_syn_recv,
            State::TcpEstablished => t.tcp_established,
            State::TcpFinWait => t.tcp_fin_wait,
            State::TcpCloseWait => t.tcp_close_wait,
            State::TcpLastAck => t.tcp_last_ack,
            State::TcpTimeWait => t.tcp_time_wait,
            State::TcpClose => t.tcp_close,
            State::UdpUnreplied => t.udp,
            State::UdpReplied => t.udp_stream,
            State::SctpHandshake => t.sctp_handshake,
            State::SctpEstablished => t.sctp_established,
            State::SctpClosing => t.sctp_closing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `ALL` is in discriminant order, so each state reads its own timeout: thirteen
    /// distinct values catch any two states swapped.
    #[test]
    fn each_state_takes_its_own_timeout_in_nanoseconds() {
        let secs = Duration::from_secs;
        let timeouts = ConntrackTimeouts {
            tcp_syn_sent: secs(1),
            tcp_syn_recv: secs(2),
            tcp_established: secs(3),
            tcp_fin_wait: secs(4),
            tcp_close_wait: secs(5),
            tcp_last_ack: secs(6),
            tcp_time_wait: secs(7),
            tcp_close: secs(8),
            udp: secs(9),
            udp_stream: secs(10),
            sctp_handshake: secs(11),
            sctp_established: secs(12),
            sctp_closing: secs(13),
        };
        let nanos = TimeoutNanos::new(&timeouts);
        for (index, state) in ALL.into_iter().enumerate() {
            assert_eq!(state as usize, index, "{state:?}");
            assert_eq!(
                u128::from(nanos.of(state)),
                state.timeout(&timeouts).as_nanos(),
                "{state:?}"
            );
        }
    }
}
