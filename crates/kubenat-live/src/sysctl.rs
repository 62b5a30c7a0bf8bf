//! Kernel settings under /proc/sys/net, which show the network namespace of the process that
//! opens them.

use std::io;

/// The value of `key` (`net/ipv4/ip_forward`), without the trailing newline.
pub fn read(key: &str) -> io::Result<String> {
    std::fs::read_to_string(path(key))
        .map(|value| value.trim_end().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path(key))))
}

/// Sets `key` to `value`.
pub fn write(key: &str, value: &str) -> io::Result<()> {
    std::fs::write(path(key), value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path(key))))
}

/// The per-device key `net/ipv4/conf/<device>/<name>`.
pub fn device_key(family: &str, device: &str, name: &str) -> String {
    format!("net/{family}/conf/{device}/{name}")
}

fn path(key: &str) -> String {
    format!("/proc/sys/{key}")
}
