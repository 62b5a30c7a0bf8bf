//! The few fields replay needs from a pcapng block's body.

use pcap_file::pcapng::RawBlock;
use pcap_file::{DataLink, Endianness};

/// Converts a pcapng timestamp in `units` per second to nanoseconds.
pub(super) fn to_nanos(raw: u64, units: u64) -> u64 {
    if units == 1_000_000_000 {
        return raw;
    }
    let nanos = u128::from(raw) * 1_000_000_000 / u128::from(units.max(1));
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// Timestamp units per second from an `if_tsresol` option (default: microseconds).
fn units_per_second(tsresol: Option<u8>) -> u64 {
    match tsresol {
        None => 1_000_000,
        Some(r) if r & 0x80 != 0 => 1u64.checked_shl(u32::from(r & 0x7F)).unwrap_or(u64::MAX),
        Some(r) => 10u64.checked_pow(u32::from(r)).unwrap_or(u64::MAX),
    }
}

pub(super) enum Decoded<'a> {
    Section(Endianness),
    /// (link type, snaplen, timestamp units per second)
    Interface(DataLink, u32, u64),
    Packet {
        interface: u32,
        /// In the interface's units; None for a simple packet block (no timestamp).
        timestamp: Option<u64>,
        orig_len: u32,
        data: &'a [u8],
    },
    BadPacket,
    Other,
}

const SECTION_HEADER_BLOCK: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION_BLOCK: u32 = 1;
const PACKET_BLOCK: u32 = 2;
const SIMPLE_PACKET_BLOCK: u32 = 3;
const ENHANCED_PACKET_BLOCK: u32 = 6;
/// `if_tsresol`
const OPTION_TSRESOL: u16 = 9;

/// Reads the blocks replay needs from a block body (pcap-file's own block decoding reads
/// every timestamp as nanoseconds and allocates for options, so the few fields are read
/// here).
pub(super) fn decode<'a>(block: &RawBlock<'a>, endianness: Endianness) -> Decoded<'a> {
    let body: &'a [u8] = match &block.body {
        std::borrow::Cow::Borrowed(body) => body,
        // The reader lends blocks from its buffer; an owned body never comes from it.
        std::borrow::Cow::Owned(_) => return Decoded::Other,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = body.get(at..at + 2)?.try_into().ok()?;
        Some(match endianness {
            Endianness::Big => u16::from_be_bytes(b),
            Endianness::Little => u16::from_le_bytes(b),
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(match endianness {
            Endianness::Big => u32::from_be_bytes(b),
            Endianness::Little => u32::from_le_bytes(b),
        })
    };
    let packet = |interface: u32, timestamp: Option<u64>, header: usize| {
        let captured = u32_at(header - 8)? as usize;
        let orig_len = u32_at(header - 4)?;
        let data = body.get(header..header.checked_add(captured)?)?;
        Some(Decoded::Packet {
            interface,
            timestamp,
            orig_len,
            data,
        })
    };
    let timestamp = |at: usize| -> Option<u64> {
        Some((u64::from(u32_at(at)?) << 32) | u64::from(u32_at(at + 4)?))
    };
    match block.type_ {
        SECTION_HEADER_BLOCK => match body.get(..4) {
            Some([0x1A, 0x2B, 0x3C, 0x4D]) => Decoded::Section(Endianness::Big),
            _ => Decoded::Section(Endianness::Little),
        },
        INTERFACE_DESCRIPTION_BLOCK => {
            let (Some(link), Some(snaplen)) = (u16_at(0), u32_at(4)) else {
                return Decoded::Other;
            };
            let mut tsresol = None;
            let mut at = 8;
            while let (Some(code), Some(len)) = (u16_at(at), u16_at(at + 2)) {
                if code == 0 {
                    break;
                }
                if code == OPTION_TSRESOL && len == 1 {
                    tsresol = body.get(at + 4).copied();
                }
                at += 4 + usize::from(len).div_ceil(4) * 4;
            }
            Decoded::Interface(
                DataLink::from(u32::from(link)),
                snaplen,
                units_per_second(tsresol),
            )
        }
        ENHANCED_PACKET_BLOCK => u32_at(0)
            .and_then(|interface| packet(interface, Some(timestamp(4)?), 20))
            .unwrap_or(Decoded::BadPacket),
        PACKET_BLOCK => u16_at(0)
            .and_then(|interface| packet(u32::from(interface), Some(timestamp(4)?), 20))
            .unwrap_or(Decoded::BadPacket),
        SIMPLE_PACKET_BLOCK => match u32_at(0) {
            Some(orig_len) => {
                let data = &body[4..];
                let captured = data.len().min(orig_len as usize);
                Decoded::Packet {
                    interface: 0,
                    timestamp: None,
                    orig_len,
                    data: &data[..captured],
                }
            }
            None => Decoded::BadPacket,
        },
        _ => Decoded::Other,
    }
}
