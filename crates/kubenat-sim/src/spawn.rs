//! Building the applications a scenario names, at the start of the run and again for pods
//! the control plane recreates.

use std::cell::OnceCell;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use kubenat_core::Service;
use kubenat_k8s::Ingress;

use crate::apps::App;
use crate::apps::balancer::Balancer;
use crate::apps::dns::{DnsServer, ResolverConfig, Zone};
use crate::apps::ingress::{IngressController, RoutingTable};
use crate::apps::mariadb::MariaDb;
use crate::apps::pc::Pc;
use crate::apps::web::Web;
use crate::apps::wordpress::WordPress;
use crate::scenario::{LanApp, PodApp, Scenario};

/// What pod applications are built from: the cluster's Services and Ingresses, and where
/// pods send DNS queries.
#[derive(Clone, Debug)]
pub struct PodFactory {
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    /// The cluster DNS Service's address.
    pub dns_ip: Ipv4Addr,
    pub cluster_domain: String,
    pub veth_latency: Duration,
    /// The zone every cluster DNS pod serves, made for the first one.
    cluster_zone: OnceCell<Arc<Zone>>,
}

impl PodFactory {
    /// The factory for `scenario`'s pods.
    pub fn new(scenario: &Scenario) -> Result<PodFactory, String> {
        let m = &scenario.manifests;
        let dns_ip = m
            .services
            .iter()
            .find(|s| s.name == scenario.cluster_dns)
            .and_then(|s| {
                s.cluster_ips.iter().find_map(|ip| match ip {
                    std::net::IpAddr::V4(v4) => Some(*v4),
                    std::net::IpAddr::V6(_) => None,
                })
            })
            .ok_or_else(|| format!("no cluster DNS Service {}", scenario.cluster_dns))?;
        Ok(PodFactory {
            services: m.services.clone(),
            ingresses: m.ingresses.clone(),
            dns_ip,
            cluster_domain: scenario.cluster_domain.clone(),
            veth_latency: scenario.veth_latency,
            cluster_zone: OnceCell::new(),
        })
    }

    /// A fresh application for a pod in `namespace`.
    pub fn app(&self, app: &PodApp, namespace: &str) -> Box<dyn App> {
        let resolver = ResolverConfig::pod(namespace, self.dns_ip, &self.cluster_domain);
        match app {
            PodApp::ClusterDns => {
                let zone = self
                    .cluster_zone
                    .get_or_init(|| Arc::new(Zone::cluster(&self.services, &self.cluster_domain)));
                Box::new(DnsServer::new(zone.clone()))
            }
            PodApp::IngressController { class } => Box::new(IngressController::new(
                RoutingTable::new(&self.ingresses, &self.services, class.as_deref()),
            )),
            PodApp::WordPress { db } => Box::new(WordPress::new(db.clone(), resolver)),
            PodApp::MariaDb { port, blogname } => Box::new(MariaDb::new(*port, blogname)),
            PodApp::Web { port } => Box::new(Web::new(*port)),
            PodApp::Browser { browse } => Box::new(Pc::new(browse.clone(), resolver)),
        }
    }
}

/// The application of a LAN machine.
pub fn lan_app(app: &LanApp) -> Box<dyn App> {
    match app {
        LanApp::Browser { dns, browse } => {
            Box::new(Pc::new(browse.clone(), ResolverConfig::plain(*dns)))
        }
        LanApp::Balancer { port, backends } => Box::new(Balancer::new(*port, backends.clone())),
        LanApp::Dns { records } => Box::new(DnsServer::new(Zone::records(
            records.iter().map(|(n, ip)| (n.as_str(), *ip)),
        ))),
    }
}
