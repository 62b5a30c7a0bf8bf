//! kube-proxy's settings for one node: mode, endpoint selection, conntrack timeouts.

use std::net::IpAddr;
use std::time::Duration;

use super::IpNet;

/// kube-proxy's backend. The two differ in a few observable ways, which the engine honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// Traffic to a ClusterIP on a port the Service lacks is rejected; traffic to an
    /// unallocated address inside the service CIDRs is dropped; no localhost NodePorts.
    #[default]
    Nftables,
    /// NodePorts also answer on 127.0.0.1 when `localhost_node_ports` is set; other
    /// ports of a cluster IP and unallocated service addresses are not kube-proxy's business
    /// (passed untouched); loadBalancerSourceRanges apply only while the Service has
    /// endpoints.
    Iptables,
}

/// How the engine picks one endpoint of a service port for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EndpointSelection {
    /// Strict rotation per service port and traffic class: deterministic and even.
    /// (kube-proxy draws at random; rotation gives the same long-run spread reproducibly.)
    #[default]
    RoundRobin,
    /// Maglev consistent hashing of the 5-tuple over a lookup table: a flow keeps its
    /// endpoint across engines and when other endpoints come or go.
    Maglev {
        /// Slots per table, rounded up to a prime by
        /// [`maglev::table_size`](crate::maglev::table_size) (65537 in the Maglev paper).
        /// Larger spreads more evenly and costs 4 bytes a slot, twice per service port.
        table_size: u32,
    },
}

/// Conntrack timeouts: Linux defaults, with kube-proxy's overrides
/// (`tcpEstablishedTimeout` 24 h, `tcpCloseWaitTimeout` 1 h).
///
/// A connection's timer restarts with its state's timeout on every packet; when it runs
/// out the connection is forgotten (see [`Engine::handle_timeout`](crate::Engine::handle_timeout)).
/// Each field names the Linux sysctl `net.netfilter.nf_conntrack_<protocol>_timeout_<state>`
/// it mirrors; defaults in parentheses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConntrackTimeouts {
    /// TCP after the client's SYN (120 s).
    pub tcp_syn_sent: Duration,
    /// TCP after the SYN-ACK (60 s).
    pub tcp_syn_recv: Duration,
    /// TCP once established (24 h, kube-proxy's `conntrack.tcpEstablishedTimeout`).
    pub tcp_established: Duration,
    /// TCP after the first FIN (120 s).
    pub tcp_fin_wait: Duration,
    /// TCP once the first FIN is acknowledged (1 h, kube-proxy's
    /// `conntrack.tcpCloseWaitTimeout`).
    pub tcp_close_wait: Duration,
    /// TCP after the second FIN (30 s).
    pub tcp_last_ack: Duration,
    /// TCP after the last ACK (120 s); a new SYN reopens the tuple.
    pub tcp_time_wait: Duration,
    /// TCP after a RST (10 s); a new SYN reopens the tuple.
    pub tcp_close: Duration,
    /// UDP until the flow has seen traffic in both directions (30 s).
    pub udp: Duration,
    /// UDP once replied (`udp_timeout_stream`, 120 s).
    pub udp_stream: Duration,
    /// SCTP from INIT until the association is up (`COOKIE_WAIT`, 3 s).
    pub sctp_handshake: Duration,
    /// SCTP association up (210 s).
    pub sctp_established: Duration,
    /// SCTP after ABORT or SHUTDOWN (10 s).
    pub sctp_closing: Duration,
}

impl Default for ConntrackTimeouts {
    fn default() -> Self {
        let secs = Duration::from_secs;
        ConntrackTimeouts {
            tcp_syn_sent: secs(120),
            tcp_syn_recv: secs(60),
            tcp_established: secs(86_400),
            tcp_fin_wait: secs(120),
            tcp_close_wait: secs(3_600),
            tcp_last_ack: secs(30),
            tcp_time_wait: secs(120),
            tcp_close: secs(10),
            udp: secs(30),
            udp_stream: secs(120),
            sctp_handshake: secs(3),
            sctp_established: secs(210),
            sctp_closing: secs(10),
        }
    }
}

/// kube-proxy's settings for this node, plus the engine's own limits.
///
/// The default is an nftables-mode node with no name and no addresses; set at least
/// `node_name`, `node_ips` and `cluster_cidrs` (struct-update syntax keeps the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// This node's name (`hostnameOverride`), used for node-local endpoints.
    pub node_name: String,
    /// This node's own addresses: NodePorts answer here, masquerade uses the first
    /// non-loopback one of the packet's family, and traffic from them (or from loopback) is
    /// the node's own.
    pub node_ips: Vec<IpAddr>,
    /// The pod network (`clusterCIDR`): sources inside it are pods, others are outside, and
    /// outside sources reaching a cluster IP are masqueraded. Without a range of the
    /// packet's family, no such masquerade.
    pub cluster_cidrs: Vec<IpNet>,
    /// The service ranges (ServiceCIDR objects); nftables mode drops traffic to unallocated
    /// addresses inside them.
    pub service_cidrs: Vec<IpNet>,
    /// `masqueradeAll`: masquerade every connection to a cluster IP, pods' included.
    pub masquerade_all: bool,
    /// `nodePortAddresses`: the node addresses NodePorts answer on. Empty means all of
    /// `node_ips`.
    pub node_port_addresses: Vec<IpNet>,
    /// iptables mode only: NodePorts also answer on 127.0.0.1 (`iptables.localhostNodePorts`,
    /// default true). IPv4 only.
    pub localhost_node_ports: bool,
    /// `mode`: `nftables` (the default) or `iptables`.
    pub mode: ProxyMode,
    /// How new connections pick an endpoint (default round robin).
    pub selection: EndpointSelection,
    /// Conntrack timeouts per state.
    pub timeouts: ConntrackTimeouts,
    /// Connections tracked per address family in use (default 262144); new flows beyond it
    /// are dropped ([`DropReason::ConntrackFull`](crate::DropReason::ConntrackFull)). A family
    /// with no node address and no Service gets no table: its packets meet no NAT rule and
    /// pass untracked. The session-affinity table holds an eighth as many clients (at least
    /// 1024). A ceiling, not a reservation: the tables grow with the connections tracked
    /// ([`Engine::conntrack_bytes`](crate::Engine::conntrack_bytes)). At most
    /// [`conntrack::MAX_CAPACITY`](crate::conntrack::MAX_CAPACITY) (about 2.1 billion; a
    /// larger value is taken as that). Fixed when the [`Engine`](crate::Engine) is made.
    pub conntrack_capacity: usize,
    /// Source ports masquerade may choose (Linux `fully-random` uses 1024-65535).
    pub masquerade_ports: std::ops::RangeInclusive<u16>,
    /// Seeds masquerade port choice and Maglev tables, so runs are reproducible. The
    /// masquerade sequence is seeded once, when the [`Engine`](crate::Engine) is made.
    pub seed: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            node_name: String::new(),
            node_ips: Vec::new(),
            cluster_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            masquerade_all: false,
            node_port_addresses: Vec::new(),
            localhost_node_ports: true,
            mode: ProxyMode::default(),
            selection: EndpointSelection::default(),
            timeouts: ConntrackTimeouts::default(),
            conntrack_capacity: 262_144,
            masquerade_ports: 1024..=65535,
            seed: 0x6b75_6265_6e61_7421,
        }
    }
}
