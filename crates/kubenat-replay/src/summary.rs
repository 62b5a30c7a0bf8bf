//! What a replay counted: the summary it returns and the link-level reasons it adds to
//! the engine's.

use std::collections::BTreeMap;

use serde::Serialize;

/// Link-level reasons a frame is dropped before the engine sees it.
pub const MALFORMED_LINK_HEADER: &str = "malformed-link-header";
/// The link header says IPv4 (or IPv6) and the packet's version field says otherwise.
pub const IP_VERSION_MISMATCH: &str = "ip-version-mismatch";
/// pcapng: a packet on an interface of another link type than the first one (the output
/// pcap holds one link type).
pub const OTHER_LINK_TYPE: &str = "other-link-type";
/// pcapng: a packet block the capture library could not decode.
pub const MALFORMED_CAPTURE_RECORD: &str = "malformed-capture-record";
/// A record that holds more bytes than the snaplen of its file (pcap) or interface (pcapng)
/// allows: the header contradicts itself, so the packet is not replayed.
pub const BEYOND_SNAPLEN: &str = "captured-beyond-snaplen";

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Packets read from the capture.
    pub packets: u64,
    /// Packets per verdict: `translated`, `accept`, `reject`, `drop` (always all four).
    /// Frames that are not IP count as `accept`.
    pub by_verdict: BTreeMap<String, u64>,
    /// Dropped and rejected packets per reason: the engine's reasons plus the link-level
    /// ones of this module (e.g. `malformed-link-header`).
    pub by_reason: BTreeMap<String, u64>,
    /// Packets written to the output (rejected ones count once, as their reply).
    pub written: u64,
}

/// Per-verdict and per-reason counts, keyed by static names so counting never allocates.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) packets: u64,
    pub(crate) translated: u64,
    pub(crate) accept: u64,
    pub(crate) reject: u64,
    pub(crate) drop: u64,
    reasons: BTreeMap<&'static str, u64>,
    pub(crate) written: u64,
}

impl Counts {
    pub(crate) fn dropped(&mut self, reason: &'static str) {
        self.drop += 1;
        *self.reasons.entry(reason).or_default() += 1;
    }

    pub(crate) fn rejected(&mut self, reason: &'static str) {
        self.reject += 1;
        *self.reasons.entry(reason).or_default() += 1;
    }

    pub(crate) fn summary(&self) -> Summary {
        let by_verdict = [
            ("translated", self.translated),
            ("accept", self.accept),
            ("reject", self.reject),
            ("drop", self.drop),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Summary {
            packets: self.packets,
            by_verdict,
            by_reason: self
                .reasons
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            written: self.written,
        }
    }
}
