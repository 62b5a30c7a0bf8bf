//! kube-proxy's rules for a new connection: which service port, which endpoint class,
//! whether to masquerade, or why to drop or reject. Pure: reads the tables only.

use std::net::IpAddr;

use crate::addr::Addr;
use crate::model::{Protocol, ProxyMode};
use crate::port_lines::PortLine;
use crate::tables::{EndpointClass, Frontend, ServicePortId, Tables};
use crate::trace::{MasqueradeReason, Trace, TraceStep};
use crate::verdict::{DropReason, RejectReason};

/// What a new connection to a service port should get, before an endpoint is picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan<'a> {
    pub port: ServicePortId,
    /// The port's line, borrowed: the packet path reads it again without another lookup,
    /// and a copy of it was copied again on its way out of [`decide`].
    pub line: &'a PortLine,
    pub class: EndpointClass,
    pub masquerade: Option<MasqueradeReason>,
}

/// The outcome of the rules for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision<'a> {
    /// No Service rule matches: the packet is not kube-proxy's business.
    Pass,
    Drop(DropReason),
    Reject(RejectReason),
    Service(Plan<'a>),
}

/// Applies the rules to a new connection from `src` to `dst:dport`; `candidate` is a
/// service port its cluster-IP frontend may be (a batch's look-ahead), checked first.
/// Inlined into its one caller, on every new connection's path.
#[inline(always)]
pub(crate) fn decide<'a, A: Addr>(
    tables: &'a Tables,
    src: A,
    dst: A,
    protocol: Protocol,
    dport: u16,
    candidate: Option<ServicePortId>,
    trace: &mut impl Trace,
) -> Decision<'a> {
    let settings = tables.settings();
    // Cluster IPs first, through the packet path's compact lines; then every frontend.
    let lines = tables.lines();
    let (id, frontend, port) = match lines.lookup_from(candidate, dst, protocol, dport) {
        Some((id, line)) => (id, Frontend::ClusterIp, line),
        None => {
            let Some((id, frontend)) = tables.lookup(dst.into(), protocol, dport) else {
                return unmatched(tables, dst.into(), trace);
            };
            (id, frontend, tables.lines().line(id))
        }
    };
    if trace.enabled() {
        trace.step(TraceStep::ServiceMatched {
            service: tables.port(id).name.clone(),
            frontend,
        });
    }
    // Source ranges are checked before DNAT (nftables: filter-prerouting, whatever the
    // endpoints); iptables only builds its firewall chain when endpoints exist.
    if frontend == Frontend::LoadBalancerIp {
        let compiled = tables.port(id);
        let firewall_applies = !compiled.source_ranges().is_empty()
            && (settings.mode == ProxyMode::Nftables || port.has_endpoints());
        if firewall_applies {
            if !compiled.allows_source(src.into(), &settings.node_ips) {
                return Decision::Drop(DropReason::SourceRangeDenied);
            }
            if trace.enabled() {
                trace.step(TraceStep::SourceRangeAllowed);
            }
        }
    }
    if !port.has_endpoints() {
        return Decision::Reject(RejectReason::NoEndpoints);
    }
    let (class, masquerade, empty) = if frontend.is_external() {
        if !port.external_policy_local() {
            (
                EndpointClass::Cluster,
                Some(MasqueradeReason::ExternalTrafficPolicyCluster),
                DropReason::NoLocalEndpoints,
            )
        } else if settings.is_pod_ip(src.into()) {
            // Pod traffic short-circuits to every endpoint, source kept.
            (EndpointClass::Cluster, None, DropReason::NoLocalEndpoints)
        } else if settings.is_local_ip(src.into()) {
            (
                EndpointClass::Cluster,
                Some(MasqueradeReason::NodeLocalSource),
                DropReason::NoLocalEndpoints,
            )
        } else {
            (EndpointClass::Local, None, DropReason::NoLocalEndpoints)
        }
    } else {
        let masquerade = internal_masquerade(tables, src.into());
        let class = if port.internal_policy_local() {
            EndpointClass::Local
        } else {
            EndpointClass::Cluster
        };
        (class, masquerade, DropReason::NoLocalInternalEndpoints)
    };
    let count = match class {
        EndpointClass::Cluster => port.cluster_endpoints(),
        EndpointClass::Local => tables.local_endpoints(id).len(),
    };
    if count == 0 {
        return Decision::Drop(empty);
    }
    Decision::Service(Plan {
        port: id,
        line: port,
        class,
        masquerade,
    })
}

/// Why a new connection from `src` to a cluster-internal frontend (a cluster IP or an
/// external one's internal side) is masqueraded, if it is: masquerade-all, or a source
/// outside the cluster CIDRs.
#[inline(always)]
pub(crate) fn internal_masquerade(tables: &Tables, src: IpAddr) -> Option<MasqueradeReason> {
    if tables.settings().masquerade_all {
        Some(MasqueradeReason::MasqueradeAll)
    } else if tables.is_outside_cluster(src) {
        Some(MasqueradeReason::OutsideClusterCidr)
    } else {
        None
    }
}

/// No Service port matches: nftables mode still guards the service ranges.
fn unmatched<'a>(tables: &Tables, dst: IpAddr, trace: &mut impl Trace) -> Decision<'a> {
    if trace.enabled() {
        trace.step(TraceStep::NoServiceMatched);
    }
    if tables.settings().mode == ProxyMode::Nftables {
        if tables.is_cluster_ip(dst) {
            return Decision::Reject(RejectReason::PortNotServed);
        }
        if tables.in_service_cidrs(dst) {
            return Decision::Drop(DropReason::UnallocatedServiceIp);
        }
    }
    Decision::Pass
}

/// The rules for a new packet of a protocol without ports (ICMP echo, GRE, ...): only the
/// nftables service-range guards apply.
pub(crate) fn decide_portless<'a>(
    tables: &Tables,
    dst: IpAddr,
    trace: &mut impl Trace,
) -> Decision<'a> {
    unmatched(tables, dst, trace)
}
