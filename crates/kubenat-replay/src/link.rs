//! The link layers replay reads: where a frame's IP packet starts, and the link header of
//! the reply to a rejected one.

use pcap_file::DataLink;

/// The link layers replay understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    Ethernet,
    /// Raw IP (`LINKTYPE_RAW`): the version field tells.
    Raw,
    /// `LINKTYPE_IPV4`
    RawV4,
    /// `LINKTYPE_IPV6`
    RawV6,
    /// Linux cooked capture v1 (16-byte header)
    Sll,
    /// Linux cooked capture v2 (20-byte header)
    Sll2,
}

impl Link {
    pub(crate) fn from_datalink(datalink: DataLink) -> Option<Link> {
        match u32::from(datalink) {
            1 => Some(Link::Ethernet),
            101 => Some(Link::Raw),
            228 => Some(Link::RawV4),
            229 => Some(Link::RawV6),
            113 => Some(Link::Sll),
            276 => Some(Link::Sll2),
            _ => None,
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// Linux `PACKET_OUTGOING`: the SLL packet type of a packet the node sends.
const PACKET_OUTGOING: u8 = 4;

/// Where the IP packet starts in a frame, or what else the frame is.
pub(crate) enum Frame {
    /// IP at this offset; `version` is what the link header says (None: read the packet).
    Ip { offset: usize, version: Option<u8> },
    /// Not IP: passes unchanged.
    Other,
    /// Cut short inside the link header.
    Malformed,
}

fn be16(frame: &[u8], at: usize) -> Option<u16> {
    frame
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn ether_version(ethertype: u16) -> Option<u8> {
    match ethertype {
        ETHERTYPE_IPV4 => Some(4),
        ETHERTYPE_IPV6 => Some(6),
        _ => None,
    }
}

pub(crate) fn classify(link: Link, frame: &[u8]) -> Frame {
    let ip_or_other = |offset: usize, ethertype: u16| match ether_version(ethertype) {
        Some(v) => Frame::Ip {
            offset,
            version: Some(v),
        },
        None => Frame::Other,
    };
    match link {
        Link::Raw => Frame::Ip {
            offset: 0,
            version: None,
        },
        Link::RawV4 => Frame::Ip {
            offset: 0,
            version: Some(4),
        },
        Link::RawV6 => Frame::Ip {
            offset: 0,
            version: Some(6),
        },
        Link::Ethernet => {
            let mut at = 12;
            loop {
                let Some(ethertype) = be16(frame, at) else {
                    return Frame::Malformed;
                };
                if ETHERTYPE_VLAN.contains(&ethertype) {
                    // Tag control information, then the next type.
                    at += 4;
                    continue;
                }
                return ip_or_other(at + 2, ethertype);
            }
        }
        Link::Sll => match be16(frame, 14) {
            Some(protocol) if frame.len() >= 16 => ip_or_other(16, protocol),
            _ => Frame::Malformed,
        },
        Link::Sll2 => match be16(frame, 0) {
            Some(protocol) if frame.len() >= 20 => ip_or_other(20, protocol),
            _ => Frame::Malformed,
        },
    }
}

/// Turns the link header of a rejected frame (copied into `header`) into the header of
/// the reply the node sends back.
pub(crate) fn reply_link_header(link: Link, header: &mut [u8]) {
    match link {
        Link::Ethernet => {
            // Back to the sender: destination and source swapped, VLAN tags kept.
            let (dst, src) = header[..12].split_at_mut(6);
            dst.swap_with_slice(src);
        }
        Link::Sll => {
            // Sent by the node: PACKET_OUTGOING, and the node's own link address is unknown.
            header[0..2].copy_from_slice(&u16::from(PACKET_OUTGOING).to_be_bytes());
            header[4..14].fill(0);
        }
        Link::Sll2 => {
            header[10] = PACKET_OUTGOING;
            header[11..20].fill(0);
        }
        Link::Raw | Link::RawV4 | Link::RawV6 => {}
    }
}
