//! The in-memory network card of one host: smoltcp reads received packets from `rx` and
//! writes the packets it sends into `tx`; the simulator moves them between hosts.

use std::collections::VecDeque;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A `Medium::Ip` device: raw IP packets, no link header (what the engines take, too).
/// Checksums are computed and verified by smoltcp, so every engine rewrite is checked by a
/// real TCP/IP stack on arrival.
#[derive(Debug)]
pub struct SimDevice {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
    mtu: usize,
}

impl SimDevice {
    /// A device with the given IP MTU.
    pub fn new(mtu: usize) -> SimDevice {
        SimDevice {
            rx: VecDeque::new(),
            tx: Vec::new(),
            mtu,
        }
    }

    /// A packet arrives from the link.
    pub fn push_rx(&mut self, packet: Vec<u8>) {
        self.rx.push_back(packet);
    }

    /// Packets received and not yet read by smoltcp, in order.
    pub fn received(&self) -> impl Iterator<Item = &[u8]> {
        self.rx.iter().map(Vec::as_slice)
    }

    /// Packets smoltcp sent since the last call, in order.
    pub fn take_tx(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.tx)
    }

    /// Packets smoltcp sent and nobody took yet.
    pub fn pending_tx(&self) -> usize {
        self.tx.len()
    }
}

impl Device for SimDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((RxToken(packet), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

#[doc(hidden)]
pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

#[doc(hidden)]
pub struct TxToken<'a>(&'a mut Vec<Vec<u8>>);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let result = f(&mut packet);
        self.0.push(packet);
        result
    }
}
