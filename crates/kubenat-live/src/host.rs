//! Attaching to the namespace: the TUN device, the sysctls forwarding through it needs and
//! the policy routing, each change journaled before it is made and undone on detach.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;

use crate::journal::{Journal, Undo};
use crate::routing::Family;
use crate::tun::Tun;
use crate::{ip, routing, sysctl};

/// The namespace with kubenat in its path.
pub struct Attached {
    pub tun: Tun,
    pub steered: Steered,
}

/// The interfaces steered into the TUN, and the journal of every change made to the host.
pub struct Steered {
    /// The interfaces whose arriving packets go through kubenat.
    pub interfaces: Vec<String>,
    tun: String,
    /// Whether interfaces that appear later are steered too (no `--interface` named).
    follows_new: bool,
    families: &'static [Family],
    /// `all`'s reverse-path setting before it was lowered, which each other device is
    /// raised to (none: `all` was 0 and stays).
    rp_filter_all: Option<String>,
    journal: Journal,
}

/// What goes into the TUN besides what arrives on the interfaces.
pub struct Steering<'a> {
    /// Where Services answer (ranges and addresses): what the node sends there.
    pub services: &'a BTreeSet<kubenat_core::IpNet>,
    /// The node's addresses and its NodePorts per protocol: what the node sends to itself
    /// on them.
    pub node_ips: &'a [IpAddr],
    pub node_ports: &'a [(&'static str, u16, u16)],
    /// IPv6 too.
    pub ipv6: bool,
}

/// Creates the TUN device `kn<pid>` and steers traffic into it: what arrives on the
/// interfaces `wanted` names (none: all but lo) and what `steering` names, for IPv4 and,
/// when it says so, IPv6. On an error, what was changed is undone.
pub fn attach(steering: &Steering<'_>, wanted: &[String]) -> io::Result<Attached> {
    let (services, ipv6) = (steering.services, steering.ipv6);
    let mut journal = Journal::create()?;
    let links = ip::links()?;
    let interfaces = interfaces(&links, wanted)?;
    let tun = Tun::create(&format!("kn{}", std::process::id()))?;
    let name = tun.name().to_string();
    // As large as the largest interface's, so that no forwarded packet is too big for it.
    let mtu = links
        .iter()
        .map(|l| l.mtu)
        .filter(|&m| m < 65536)
        .max()
        .unwrap_or(1500);
    // The TUN's own settings go with it: nothing to journal. No IPv6 address on it (no
    // link-local, so no router solicitations or duplicate address detection to loop back),
    // and no IPv6 at all unless IPv6 is steered; written-back packets come from anywhere,
    // the node's own addresses included (masquerade, ICMP errors), so no reverse-path check.
    if ipv6 {
        sysctl::write(&sysctl::device_key("ipv6", &name, "addr_gen_mode"), "1")?;
        sysctl::write(&sysctl::device_key("ipv6", &name, "accept_ra"), "0")?;
    } else {
        sysctl::write(&sysctl::device_key("ipv6", &name, "disable_ipv6"), "1")?;
    }
    sysctl::write(&sysctl::device_key("ipv4", &name, "rp_filter"), "0")?;
    sysctl::write(&sysctl::device_key("ipv4", &name, "accept_local"), "1")?;
    ip::ip(&["link", "set", &name, "mtu", &mtu.to_string(), "up"])?;

    let families: &'static [Family] = if ipv6 {
        &[Family::V4, Family::V6]
    } else {
        &[Family::V4]
    };
    for &family in families {
        claim_tables(&mut journal, family)?;
        ip::batch(&routing::routes(family, &name, services))?;
    }

    set(&mut journal, "net/ipv4/ip_forward", "1")?;
    if ipv6 {
        set(&mut journal, "net/ipv6/conf/all/forwarding", "1")?;
    }
    // The TUN's rp_filter counts only if `all` is 0 (the kernel takes the larger): lower
    // `all` and raise each other device to the old `all`, so their checks stay as they were.
    let all = sysctl::read("net/ipv4/conf/all/rp_filter")?;
    let rp_filter_all = (all != "0").then_some(all);
    if let Some(all) = &rp_filter_all {
        for link in links.iter().filter(|l| l.name != "lo") {
            keep_rp_filter(&mut journal, &link.name, all)?;
        }
        set(&mut journal, "net/ipv4/conf/all/rp_filter", "0")?;
    }

    for &family in families {
        let flag = family.flag();
        let node_ports = routing::node_port_rules(family, steering.node_ips, steering.node_ports);
        for rule in routing::rules(family, &name, &interfaces)
            .into_iter()
            .chain(node_ports)
        {
            add_rule(&mut journal, family, &rule)?;
        }
        if ip::ip(&[flag, "rule", "list", "pref", "0"])?.contains("lookup local") {
            journal.record(Undo::ip(&[
                flag, "rule", "add", "pref", "0", "lookup", "local", "protocol", "kernel",
            ]))?;
            ip::ip(&[flag, "rule", "del", "pref", "0", "lookup", "local"])?;
        }
    }
    Ok(Attached {
        steered: Steered {
            interfaces,
            tun: name,
            follows_new: wanted.is_empty(),
            families,
            rp_filter_all,
            journal,
        },
        tun,
    })
}

/// Adds the policy rule `rule` (`pref 3 iif eth0 ...`) of `family`, journaling its removal.
fn add_rule(journal: &mut Journal, family: Family, rule: &[String]) -> io::Result<()> {
    let flag = family.flag();
    let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
    journal.record(Undo::ip(&[&[flag, "rule", "del"], &rule[..]].concat()))?;
    ip::ip(&[&[flag, "rule", "add"], &rule[..]].concat()).map(drop)
}

/// Raises `device`'s reverse-path check to `all`'s old value when it is lower, so that
/// lowering `all` leaves its check as it was.
fn keep_rp_filter(journal: &mut Journal, device: &str, all: &str) -> io::Result<()> {
    let key = sysctl::device_key("ipv4", device, "rp_filter");
    if sysctl::read(&key)?.parse::<u8>().ok() < all.parse::<u8>().ok() {
        set(journal, &key, all)?;
    }
    Ok(())
}

/// Makes sure `family`'s two tables are free, and journals emptying them.
fn claim_tables(journal: &mut Journal, family: Family) -> io::Result<()> {
    let flag = family.flag();
    let all_routes = ip::ip(&[flag, "route", "show", "table", "all"])?;
    for table in [routing::INTERFACES_TABLE, routing::SERVICES_TABLE] {
        let in_use = all_routes.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.windows(2).any(|w| w == ["table", table])
        });
        if in_use {
            return Err(io::Error::other(format!(
                "routing table {table} is in use (`ip {flag} route show table {table}`): \
                 kubenat run needs tables {} and {} for itself",
                routing::INTERFACES_TABLE,
                routing::SERVICES_TABLE
            )));
        }
        journal.record(Undo::ip(&[flag, "route", "flush", "table", table]))?;
    }
    Ok(())
}

impl Steered {
    /// Steers the interfaces that appeared since the last look (when none were named at
    /// start): a pod's veth created after kubenat started. Returns their names.
    pub fn steer_new_interfaces(&mut self) -> io::Result<Vec<String>> {
        if !self.follows_new {
            return Ok(Vec::new());
        }
        let new: Vec<String> = ip::links()?
            .into_iter()
            .map(|link| link.name)
            .filter(|name| name != "lo" && *name != self.tun && !self.interfaces.contains(name))
            .collect();
        for name in &new {
            if let Some(all) = &self.rp_filter_all {
                keep_rp_filter(&mut self.journal, name, all)?;
            }
            for &family in self.families {
                for rule in routing::interface_rules(family, name) {
                    add_rule(&mut self.journal, family, &rule)?;
                }
            }
            self.interfaces.push(name.clone());
        }
        Ok(new)
    }

    /// Whether interfaces that appear later are steered.
    pub fn follows_new(&self) -> bool {
        self.follows_new
    }
}

impl Attached {
    /// Undoes every change, last first, and removes the TUN device. Returns the undo steps
    /// that failed.
    pub fn detach(self) -> Vec<String> {
        let Attached { tun, steered } = self;
        let failures = steered.journal.restore();
        drop(tun);
        failures
    }
}

/// Sets a sysctl, journaling its old value.
fn set(journal: &mut Journal, key: &str, value: &str) -> io::Result<()> {
    let old = sysctl::read(key)?;
    if old != value {
        journal.record(Undo::Sysctl {
            key: key.to_string(),
            value: old,
        })?;
        sysctl::write(key, value)?;
    }
    Ok(())
}

/// The interfaces to steer: those named, which must exist, or every one but lo.
fn interfaces(links: &[ip::Link], wanted: &[String]) -> io::Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(links
            .iter()
            .filter(|l| l.name != "lo")
            .map(|l| l.name.clone())
            .collect());
    }
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !links.iter().any(|l| &l.name == *w))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "--interface {}: no such device in this network namespace (it has {})",
                missing.join(", "),
                links
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(wanted.to_vec())
}
