//! `kubenat replay`: a packet capture through one node's engine, in capture order, with the
//! capture's timestamps as time, written back out as the packets leave the node.
//!
//! Input: pcap (either byte order, micro- or nanosecond timestamps) or pcapng, told apart by
//! their magic numbers. Link types: Ethernet (with 802.1Q/802.1ad VLAN tags), raw IP
//! (`LINKTYPE_RAW`, `LINKTYPE_IPV4`, `LINKTYPE_IPV6`) and Linux cooked capture v1 and v2.
//!
//! Output: a pcap of the input's link type and snaplen. Accepted and translated packets keep
//! their link header (translated ones carry the rewritten IP bytes), dropped ones are left
//! out, a rejected one is replaced by the ICMP port unreachable the node sends back. Frames
//! that are not IP (ARP, LLDP…) pass unchanged. Frames too short for their link header,
//! IP packets the engine cannot read and records longer than their snaplen are dropped with
//! a counted reason. A capture file whose structure cannot be read is an error naming the
//! record, as libpcap's are: a file cut short, a record whose captured length is over
//! libpcap's maximum of 262,144 bytes, a timestamp fraction of a second or more.

mod error;
mod link;
mod packet;
mod pcap;
mod pcapng;
mod run;
mod summary;

pub use error::ReplayError;
pub use packet::CaptureChecksums;
pub use run::{replay, replay_with};
pub use summary::{
    BEYOND_SNAPLEN, IP_VERSION_MISMATCH, MALFORMED_CAPTURE_RECORD, MALFORMED_LINK_HEADER,
    OTHER_LINK_TYPE, Summary,
};
