//! kubenat end to end: the notes' manifests imported with kubenat-k8s, played on the
//! simulator with every node's kubenat-core engine, captured, drawn; generated clusters.
//! The tests are the files beside this one; this library holds what they share: the
//! example files, a scratch directory per test, and independent checks of packets and XML.

use std::path::PathBuf;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use kubenat_sim::Scenario;

/// `examples/miempresa/<name>` in the repository.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/miempresa")
        .join(name)
}

/// An empty directory `name` under the target's scratch space (`CARGO_TARGET_TMPDIR`,
/// which Cargo gives integration tests only, hence a macro), for one test's files.
#[macro_export]
macro_rules! scratch_dir {
    ($name:expr) => {
        $crate::empty_dir(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join($name))
    };
}

/// `dir`, emptied or created.
pub fn empty_dir(dir: PathBuf) -> PathBuf {
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// What a capture file holds.
pub fn capture_bytes(file: &kubenat_sim::CaptureFile) -> Vec<u8> {
    std::fs::read(&file.path).unwrap_or_else(|e| panic!("{}: {e}", file.path.display()))
}

/// The example scenario file `name`, parsed.
pub fn scenario(name: &str) -> Scenario {
    Scenario::from_yaml_file(example(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The notes' scenario with `requests` requests, every WordPress pod reaching its database
/// at `db` instead of `mariadb-service:3307`.
pub fn notes_with_database(requests: u32, db: kubenat_sim::apps::wordpress::DbHost) -> Scenario {
    let mut scenario = Scenario::notes(requests);
    for pod in &mut scenario.pods {
        if let kubenat_sim::scenario::PodApp::WordPress { db: host } = &mut pod.app {
            *host = db.clone();
        }
    }
    scenario
}

/// Checks that `packet` is an IPv4 packet whose header and TCP/UDP/ICMP checksums are the
/// ones etherparse computes; a UDP checksum of 0 (none) counts as bad, since every stack
/// and engine in the simulator fills it in.
pub fn check_packet(packet: &[u8]) -> Result<(), String> {
    let sliced = SlicedPacket::from_ip(packet).map_err(|e| format!("does not parse: {e:?}"))?;
    let Some(NetSlice::Ipv4(v4)) = &sliced.net else {
        return Err(format!("not IPv4: {:?}", sliced.net));
    };
    let ip = v4.header();
    let header = ip.to_header();
    if header.header_checksum != header.calc_header_checksum() {
        return Err("bad IPv4 header checksum".into());
    }
    if usize::from(ip.total_len()) != packet.len() {
        return Err(format!(
            "IPv4 total length {} but {} bytes captured",
            ip.total_len(),
            packet.len()
        ));
    }
    let (source, destination) = (ip.source(), ip.destination());
    match sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t
                .to_header()
                .calc_checksum_ipv4_raw(source, destination, t.payload())
                .map_err(|e| format!("{e:?}"))?;
            (t.checksum() == want)
                .then_some(())
                .ok_or_else(|| format!("bad TCP checksum {:#06x}, want {want:#06x}", t.checksum()))
        }
        Some(TransportSlice::Udp(u)) => {
            let want = u
                .to_header()
                .calc_checksum_ipv4_raw(source, destination, u.payload())
                .map_err(|e| format!("{e:?}"))?;
            (u.checksum() == want)
                .then_some(())
                .ok_or_else(|| format!("bad UDP checksum {:#06x}, want {want:#06x}", u.checksum()))
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let want = i.icmp_type().calc_checksum(i.payload());
            (i.checksum() == want)
                .then_some(())
                .ok_or_else(|| format!("bad ICMP checksum {:#06x}, want {want:#06x}", i.checksum()))
        }
        other => Err(format!("unexpected transport {other:?}")),
    }
}

/// The source and destination addresses of an IPv4 packet.
pub fn addresses(packet: &[u8]) -> (std::net::Ipv4Addr, std::net::Ipv4Addr) {
    let a =
        |i: usize| std::net::Ipv4Addr::new(packet[i], packet[i + 1], packet[i + 2], packet[i + 3]);
    (a(12), a(16))
}

/// Checks that `text` is well-formed XML (one root element, balanced and properly nested
/// tags, quoted and unique attributes, only the predefined or numeric entities, no raw `<`
/// or `&` in text). Written from the XML 1.0 rules, independent of the code under test;
/// returns the element names in document order.
pub fn check_xml(text: &str) -> Result<Vec<String>, String> {
    let mut rest = text;
    if let Some(after) = rest.strip_prefix("<?xml") {
        let end = after.find("?>").ok_or("unterminated XML declaration")?;
        rest = &after[end + 2..];
    }
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut roots = 0;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            check_text(rest)?;
            if !stack.is_empty() || !rest.trim().is_empty() {
                return Err(format!("text after the last tag or unclosed {stack:?}"));
            }
            break;
        };
        let text_part = &rest[..open];
        check_text(text_part)?;
        if stack.is_empty() && !text_part.trim().is_empty() {
            return Err(format!("text outside the root element: {text_part:?}"));
        }
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("unterminated comment")?;
            rest = &after[end + 3..];
            continue;
        }
        let close = find_tag_end(rest)?;
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim_end();
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let empty = tag.ends_with('/');
        let tag = tag.strip_suffix('/').unwrap_or(tag);
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        check_name(name)?;
        check_attributes(&tag[name_end..], name)?;
        if stack.is_empty() {
            roots += 1;
        }
        elements.push(name.to_string());
        if !empty {
            stack.push(name.to_string());
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(elements)
}

/// The index of the `>` that ends the tag at the start of `s`, skipping quoted values.
fn find_tag_end(s: &str) -> Result<usize, String> {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Ok(i),
            (None, '<') => return Err("'<' inside a tag".into()),
            _ => {}
        }
    }
    Err("unterminated tag".into())
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'));
    ok.then_some(()).ok_or_else(|| format!("bad name {name:?}"))
}

fn check_attributes(mut s: &str, element: &str) -> Result<(), String> {
    let mut seen = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s
            .find('=')
            .ok_or_else(|| format!("<{element}>: attribute without value in {s:?}"))?;
        let name = s[..eq].trim();
        check_name(name)?;
        if seen.contains(&name) {
            return Err(format!("<{element}>: attribute {name} twice"));
        }
        seen.push(name);
        let value = s[eq + 1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
        let quote = quote.ok_or_else(|| format!("<{element}>: {name} not quoted"))?;
        let end = value[1..]
            .find(quote)
            .ok_or_else(|| format!("<{element}>: {name} unterminated"))?;
        let content = &value[1..1 + end];
        if content.contains('<') {
            return Err(format!("<{element}>: '<' in {name}"));
        }
        check_text(content)?;
        s = &value[end + 2..];
        if !s.is_empty() && !s.starts_with(char::is_whitespace) {
            return Err(format!("<{element}>: no space after {name}"));
        }
    }
}

/// Every `&` starts a predefined or numeric entity reference.
fn check_text(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        rest = &rest[i + 1..];
        let end = rest.find(';').ok_or("'&' without ';'")?;
        let entity = &rest[..end];
        let numeric = entity
            .strip_prefix("#x")
            .map(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            .or_else(|| {
                entity
                    .strip_prefix('#')
                    .map(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            })
            .unwrap_or(false);
        if !numeric && !matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos") {
            return Err(format!("unknown entity &{entity};"));
        }
        rest = &rest[end + 1..];
    }
    Ok(())
}
