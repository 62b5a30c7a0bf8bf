//! The API server's field rules we need, and kube-proxy's lenient address parsing.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// kube-proxy's `netutils.ParseIPSloppy`: like Go's pre-1.17 `net.ParseIP`, IPv4 parts may
/// carry leading zeros and are read as decimal (`010.010.001.101` is 10.10.1.101), and an
/// IPv4-mapped IPv6 address is the IPv4 address.
pub(crate) fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    parse_ipv4_leading_zeros(s).map(IpAddr::V4)
}

fn parse_ipv4_leading_zeros(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse::<u32>().ok()?.try_into().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// kube-proxy's `netutils.ParseCIDRSloppy`: the network of `ip/len`, with the address read
/// like [`parse_ip_sloppy`] (host bits are cleared, as Go's `ParseCIDR` network is).
pub(crate) fn parse_cidr_sloppy(s: &str) -> Option<IpNet> {
    let (addr, len) = s.split_once('/')?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    // An IPv4-mapped address keeps its IPv6 prefix length in Go; read plain forms only.
    let ip = match addr.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => IpAddr::V4(parse_ipv4_leading_zeros(addr)?),
    };
    IpNet::new(ip, len).ok().map(|n| n.trunc())
}

pub(crate) fn family(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// RFC 1123 label: what the API calls a DNS label (namespaces, port names, nodes' parts).
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1035 label: Service names (must start with a letter).
pub(crate) fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// RFC 1123 subdomain: object names such as Nodes, EndpointSlices and Endpoints.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// IANA_SVC_NAME (`validation.IsValidPortName`): a named `targetPort`.
pub(crate) fn is_iana_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// A label value: at most 63 characters of `[A-Za-z0-9_.-]`, starting and ending with an
/// alphanumeric character (or empty).
pub(crate) fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

/// `ValidateNonSpecialIP`: why an address may not be an external IP, if it may not.
pub(crate) fn special_ip(ip: &IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("may not be unspecified (0.0.0.0, ::)");
    }
    if ip.is_loopback() {
        return Some("may not be in the loopback range (127.0.0.0/8, ::1/128)");
    }
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        return Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)");
    }
    if ip.is_multicast() {
        return Some("may not be in the multicast range (224.0.0.0/4, ff00::/8)");
    }
    None
}

pub(crate) const DNS_LABEL_RULE: &str = "a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit";

pub(crate) fn valid_port(port: i64) -> Option<u16> {
    u16::try_from(port).ok().filter(|&p| p != 0)
}

/// Go's `time.ParseDuration`, for `metav1.Duration` fields ("24h0m0s", "1h", "90s", "0").
pub(crate) fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * unit;
    }
    if negative && total > 0.0 {
        return None;
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sloppy_addresses_read_leading_zeros_as_decimal() {
        assert_eq!(
            parse_ip_sloppy("010.010.001.101"),
            Some("10.10.1.101".parse().unwrap())
        );
        assert_eq!(parse_ip_sloppy("1.2.3.256"), None);
        assert_eq!(
            parse_ip_sloppy("::ffff:1.2.3.4"),
            Some("1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            parse_cidr_sloppy("010.010.000.000/16"),
            Some("10.10.0.0/16".parse().unwrap())
        );
        assert_eq!(
            parse_cidr_sloppy("10.10.1.7/24"),
            Some("10.10.1.0/24".parse().unwrap())
        );
        assert_eq!(parse_cidr_sloppy("10.10.1.7/33"), None);
    }

    #[test]
    fn go_durations() {
        let secs = std::time::Duration::from_secs;
        assert_eq!(parse_go_duration("24h0m0s"), Some(secs(86_400)));
        assert_eq!(parse_go_duration("1h"), Some(secs(3_600)));
        assert_eq!(parse_go_duration("1m30s"), Some(secs(90)));
        assert_eq!(parse_go_duration("0s"), Some(secs(0)));
        assert_eq!(
            parse_go_duration("1500ms"),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("h"), None);
    }

    #[test]
    fn names() {
        assert!(is_iana_svc_name("http"));
        assert!(!is_iana_svc_name("8080"));
        assert!(!is_iana_svc_name("a--b"));
        assert!(is_dns1035_label("wp-service"));
        assert!(!is_dns1035_label("1wp"));
        assert!(is_dns1123_subdomain("node-1.example.com"));
        assert!(is_label_value("wp-service"));
        assert!(!is_label_value("-x"));
    }
}
