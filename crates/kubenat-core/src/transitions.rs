//! Conntrack state transitions for TCP, UDP and SCTP, just deep enough for netfilter's timeouts.

use crate::conntrack::{Direction, State};
use crate::wire::tcp_flags::{ACK, FIN, RST, SYN};
use crate::wire::{SCTP, TCP, UDP};

/// SCTP chunk types that matter here (RFC 9260 §3.2).
mod sctp_chunk {
    pub const INIT: u8 = 1;
    pub const INIT_ACK: u8 = 2;
    pub const ABORT: u8 = 6;
    pub const SHUTDOWN: u8 = 7;
    pub const SHUTDOWN_ACK: u8 = 8;
    pub const COOKIE_ACK: u8 = 11;
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

/// The state of a connection whose first packet this is, or `None` when netfilter would
/// call the packet INVALID and not track it (a TCP segment that is neither a SYN nor a
/// plain ACK picked up mid-stream; an SCTP packet that cannot open an association).
pub(crate) fn initial(protocol: u8, tcp_flags: u8, sctp_chunk: u8) -> Option<State> {
    match protocol {
        TCP => {
            let flags = tcp_flags & (SYN | ACK | FIN | RST);
            if flags == SYN {
                Some(State::TcpSynSent)
            } else if flags == ACK {
                Some(State::TcpEstablished)
            } else {
                None
            }
        }
        UDP => Some(State::UdpUnreplied),
        SCTP => match sctp_chunk {
            sctp_chunk::INIT => Some(State::SctpHandshake),
            sctp_chunk::ABORT | sctp_chunk::SHUTDOWN_COMPLETE | sctp_chunk::COOKIE_ACK => None,
            _ => Some(State::SctpEstablished),
        },
        _ => None,
    }
}

/// Whether a TCP SYN in the original direction starts a new connection over an old one
/// that is closing or closed (Linux reopens TIME_WAIT and CLOSE connections).
pub(crate) fn reopens(state: State, direction: Direction, tcp_flags: u8) -> bool {
    direction == Direction::Original
        && tcp_flags & (SYN | ACK | RST) == SYN
        && matches!(state, State::TcpTimeWait | State::TcpClose)
}

/// The state after a packet of a tracked connection. Inlined into the one hot caller: a
/// call cost 8 instructions per established packet.
#[inline(always)]
pub(crate) fn next(state: State, direction: Direction, tcp_flags: u8, sctp_chunk: u8) -> State {
    use Direction::{Original, Reply};
    use State::*;
    let has = |flag: u8| tcp_flags & flag != 0;
    match state {
        TcpSynSent | TcpSynRecv | TcpEstablished | TcpFinWait | TcpCloseWait | TcpLastAck
        | TcpTimeWait | TcpClose
            if has(RST) =>
        {
            TcpClose
        }
        TcpSynSent if direction == Reply && has(SYN) && has(ACK) => TcpSynRecv,
        TcpSynSent if direction == Reply && has(ACK) => TcpEstablished,
        // Linux's tcp_conntracks[] is one state per connection: FIN takes it towards
        // LAST_ACK whichever side sends it, and ACK answers the close (FIN beats ACK when a
        // segment carries both).
        TcpSynRecv | TcpEstablished if has(FIN) => TcpFinWait,
        TcpSynRecv if direction == Original && has(ACK) && !has(SYN) => TcpEstablished,
        TcpFinWait | TcpCloseWait if has(FIN) => TcpLastAck,
        TcpFinWait if has(ACK) => TcpCloseWait,
        TcpLastAck if has(ACK) && !has(FIN) => TcpTimeWait,
        UdpUnreplied if direction == Reply => UdpReplied,
        SctpHandshake | SctpEstablished
            if matches!(
                sctp_chunk,
                sctp_chunk::ABORT
                    | sctp_chunk::SHUTDOWN
                    | sctp_chunk::SHUTDOWN_ACK
                    | sctp_chunk::SHUTDOWN_COMPLETE
            ) =>
        {
            SctpClosing
        }
        SctpHandshake if direction == Reply && sctp_chunk != sctp_chunk::INIT_ACK => {
            SctpEstablished
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Original, Reply};
    use State::*;

    #[test]
    fn tcp_lifecycle() {
        // (state, direction, flags) -> next state
        let steps = [
            (TcpSynSent, Reply, SYN | ACK, TcpSynRecv),
            (TcpSynRecv, Original, ACK, TcpEstablished),
            (TcpSynRecv, Reply, ACK, TcpSynRecv),
            (TcpEstablished, Original, ACK, TcpEstablished),
            (TcpEstablished, Original, FIN | ACK, TcpFinWait),
            (TcpEstablished, Reply, FIN | ACK, TcpFinWait),
            (TcpFinWait, Reply, ACK, TcpCloseWait),
            (TcpFinWait, Original, ACK, TcpCloseWait),
            (TcpFinWait, Reply, FIN | ACK, TcpLastAck),
            (TcpCloseWait, Original, FIN | ACK, TcpLastAck),
            (TcpCloseWait, Reply, ACK, TcpCloseWait),
            (TcpLastAck, Original, ACK, TcpTimeWait),
            (TcpLastAck, Reply, FIN | ACK, TcpLastAck),
            (TcpEstablished, Reply, RST, TcpClose),
            (TcpSynSent, Original, SYN, TcpSynSent),
        ];
        for (state, direction, flags, expected) in steps {
            assert_eq!(
                next(state, direction, flags, 0),
                expected,
                "{state:?} {direction:?} {flags:#x}"
            );
        }
    }

    #[test]
    fn first_packets() {
        assert_eq!(initial(TCP, SYN, 0), Some(TcpSynSent));
        assert_eq!(initial(TCP, ACK, 0), Some(TcpEstablished));
        assert_eq!(initial(TCP, SYN | ACK, 0), None);
        assert_eq!(initial(TCP, RST, 0), None);
        assert_eq!(initial(TCP, FIN | ACK, 0), None);
        assert_eq!(initial(UDP, 0, 0), Some(UdpUnreplied));
        assert_eq!(initial(SCTP, 0, sctp_chunk::INIT), Some(SctpHandshake));
        assert!(reopens(TcpTimeWait, Original, SYN));
        assert!(!reopens(TcpEstablished, Original, SYN));
    }

    #[test]
    fn udp_and_sctp() {
        assert_eq!(next(UdpUnreplied, Original, 0, 0), UdpUnreplied);
        assert_eq!(next(UdpUnreplied, Reply, 0, 0), UdpReplied);
        assert_eq!(
            next(SctpHandshake, Reply, 0, sctp_chunk::INIT_ACK),
            SctpHandshake
        );
        assert_eq!(
            next(SctpHandshake, Reply, 0, sctp_chunk::COOKIE_ACK),
            SctpEstablished
        );
        assert_eq!(
            next(SctpEstablished, Original, 0, sctp_chunk::SHUTDOWN),
            SctpClosing
        );
    }
}
