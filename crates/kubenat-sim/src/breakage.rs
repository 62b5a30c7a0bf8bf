//! The notes' network with one thing broken (or changed), as the failover and scale
//! examples do it: the lessons of "break things" in the browser playground, built
//! without files.

use std::time::Duration;

use kubenat_core::ServiceName;

use crate::apps::wordpress::DbHost;
use crate::scenario::{Action, LanApp, PodApp, Scenario};

/// What goes wrong or changes, one second into the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Breakage {
    /// A pod dies; its controller brings it back on another node with a new address
    /// (examples/miempresa/failover.yaml kills `mariadb-0`).
    KillPod(String),
    /// MariaDB dies while the first WordPress reaches it by the pod's address, the notes'
    /// "OPCION 1: RUINA" (examples/miempresa/failover-pod-ip.yaml).
    PodIpInWpConfig,
    /// `kubectl rollout restart deployment` of `namespace/name`.
    Rollout(ServiceName),
    /// `kubectl scale deployment --replicas=N` of `namespace/name`.
    Scale(ServiceName, u32),
}

/// When the breakage happens.
const AT: Duration = Duration::from_secs(1);

/// The PC's requests: one every 100 ms for 6 s, past the replacement pod's start (3 s).
const REQUESTS: u32 = 60;

impl Breakage {
    /// The notes' network browsed for 6 s with this breakage at 1 s, the same network as
    /// the failover examples.
    pub fn scenario(&self, seed: u64) -> Scenario {
        let mut scenario = Scenario::notes(REQUESTS).with_seed(seed);
        for machine in &mut scenario.machines {
            if let LanApp::Browser { browse, .. } = &mut machine.app {
                browse.gap = Duration::from_millis(100);
            }
        }
        let action = match self {
            Breakage::KillPod(pod) => Action::KillPod { pod: pod.clone() },
            Breakage::PodIpInWpConfig => {
                let database = scenario.pods.iter().find(|p| p.name == "mariadb-0");
                let address = database.map(|p| (p.ip, 3306).into());
                let first_wordpress = scenario
                    .pods
                    .iter_mut()
                    .find(|p| matches!(p.app, PodApp::WordPress { .. }));
                if let (Some(pod), Some(address)) = (first_wordpress, address) {
                    pod.app = PodApp::WordPress {
                        db: DbHost::Address(address),
                    };
                }
                Action::KillPod {
                    pod: "mariadb-0".into(),
                }
            }
            Breakage::Rollout(deployment) => Action::Rollout {
                deployment: deployment.clone(),
            },
            Breakage::Scale(deployment, replicas) => Action::Scale {
                deployment: deployment.clone(),
                replicas: *replicas,
            },
        };
        scenario.with_event(AT, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenario file's report, less its name: the same network, the same breakage.
    fn same_run(built: &Scenario, file: &str) {
        let path = format!(
            "{}/../../examples/miempresa/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let from_file = Scenario::from_yaml_file(&path).unwrap();
        let mut expected = crate::run(&from_file);
        let got = crate::run(built);
        expected.scenario = got.scenario.clone();
        assert_eq!(got.to_json(), expected.to_json(), "{file}");
    }

    #[test]
    fn killing_mariadb_is_the_failover_example() {
        same_run(
            &Breakage::KillPod("mariadb-0".into()).scenario(1),
            "failover.yaml",
        );
    }

    #[test]
    fn the_pod_ip_in_wp_config_is_the_ruina_example() {
        let scenario = Breakage::PodIpInWpConfig.scenario(1);
        same_run(&scenario, "failover-pod-ip.yaml");
        let report = crate::run(&scenario);
        assert!(report.summary.failed > 0, "the RUINA WordPress must fail");
    }

    #[test]
    fn scaling_wordpress_adds_its_pods_and_loses_no_request() {
        let wordpress = ServiceName::new("default", "wordpress");
        let report = crate::run(&Breakage::Scale(wordpress, 4).scenario(1));
        assert_eq!(report.summary.failed, 0);
        assert_eq!(report.summary.served_by.len(), 4, "{:?}", report.summary);
    }
}
