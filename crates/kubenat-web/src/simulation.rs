//! The notes' network played in the browser: the default journey and the broken ones.

use kubenat_core::ServiceName;
use kubenat_sim::{Breakage, Report, Scenario, report};
use serde::Serialize;
use wasm_bindgen::prelude::wasm_bindgen;

/// A played run, rendered on demand.
#[wasm_bindgen]
pub struct Simulation {
    report: Report,
}

#[wasm_bindgen]
impl Simulation {
    /// The report as `kubenat simulate -o json` prints it (same seed, same document).
    pub fn json(&self) -> String {
        let mut json = self.report.to_json();
        json.push('\n');
        json
    }

    /// The report as `kubenat simulate` prints it.
    pub fn text(&self) -> String {
        self.report.to_string()
    }

    /// Request `id`'s hops as `kubenat simulate` prints them, as JSON: `[{"at": place,
    /// "line": text}]`, empty when there is no such request.
    pub fn hops(&self, id: u32) -> String {
        let hops: Vec<HopLine<'_>> = self
            .report
            .journeys
            .iter()
            .filter(|j| j.id == id)
            .flat_map(|j| &j.hops)
            .map(|hop| HopLine {
                at: &hop.at,
                line: report::hop_line(hop),
            })
            .collect();
        serde_json::to_string(&hops).expect("strings serialize")
    }

    /// Request `id`'s journey as the sequence diagram `kubenat simulate --svg` draws;
    /// empty when there is no such request.
    pub fn svg(&self, id: u32) -> String {
        kubenat_sim::svg::sequence_diagram(&self.report, id).unwrap_or_default()
    }
}

/// A hop for the page: where it happened, and the CLI's line.
#[derive(Serialize)]
struct HopLine<'a> {
    at: &'a str,
    line: String,
}

/// The notes' network with the PC making `requests` requests: `kubenat simulate
/// --requests N --seed S`. The seed is a u32 so JavaScript passes a plain number.
#[wasm_bindgen]
pub fn simulate(seed: u32, requests: u32) -> Result<Simulation, String> {
    let scenario = Scenario::notes(requests).with_seed(seed.into());
    play(&scenario)
}

/// The notes' network with one thing broken at 1 s: `kill:POD` (the pod dies and is
/// rescheduled), `ruina` (MariaDB dies while a WordPress uses its pod address),
/// `rollout:NAMESPACE/NAME` (a Deployment's rollout restart) or
/// `scale:NAMESPACE/NAME=N` (a Deployment scaled to N replicas).
#[wasm_bindgen]
pub fn break_things(what: &str, seed: u32) -> Result<Simulation, String> {
    play(&breakage(what)?.scenario(seed.into()))
}

fn breakage(what: &str) -> Result<Breakage, String> {
    let deployment = |text: &str| match text.split_once('/') {
        Some((namespace, name)) => Ok(ServiceName::new(namespace, name)),
        None => Err(format!("{what}: expected NAMESPACE/NAME")),
    };
    match what.split_once(':') {
        Some(("kill", pod)) if !pod.is_empty() => Ok(Breakage::KillPod(pod.to_string())),
        Some(("rollout", name)) => Ok(Breakage::Rollout(deployment(name)?)),
        Some(("scale", spec)) => {
            let (name, replicas) = spec
                .split_once('=')
                .ok_or_else(|| format!("{what}: expected scale:NAMESPACE/NAME=REPLICAS"))?;
            let replicas = replicas
                .parse()
                .map_err(|e| format!("{what}: replicas: {e}"))?;
            Ok(Breakage::Scale(deployment(name)?, replicas))
        }
        None if what == "ruina" => Ok(Breakage::PodIpInWpConfig),
        _ => Err(format!(
            "{what:?}: expected kill:POD, ruina, rollout:NAMESPACE/NAME or scale:NAMESPACE/NAME=N"
        )),
    }
}

fn play(scenario: &Scenario) -> Result<Simulation, String> {
    let run = kubenat_sim::simulate(scenario, None)?;
    Ok(Simulation { report: run.report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_journey_is_the_clis() {
        let played = simulate(1, 4).unwrap();
        let expected = kubenat_sim::run(&Scenario::notes(4));
        assert_eq!(played.json(), format!("{}\n", expected.to_json()));
        assert!(
            played
                .text()
                .contains("served by wordpress-5d8f7c9b6-abcde")
        );
        assert!(played.svg(1).contains("wordpress-5d8f7c9b6-abcde"));
        assert_eq!(played.svg(99), "");
        let hops: serde_json::Value = serde_json::from_str(&played.hops(1)).unwrap();
        let lines: Vec<&str> = hops
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["line"].as_str().unwrap())
            .collect();
        let text = played.text();
        assert!(lines.len() > 20, "{lines:?}");
        assert!(lines.iter().all(|l| text.contains(&format!("  {l}\n"))));
        assert_eq!(hops[0]["at"], "MenchuPC");
        assert_eq!(played.hops(99), "[]");
    }

    #[test]
    fn breakages_are_named_as_the_page_names_them() {
        let killed = break_things("kill:mariadb-0", 1).unwrap();
        assert!(
            killed.text().contains("kill pod mariadb-0"),
            "{}",
            killed.text()
        );
        let ruina = break_things("ruina", 1).unwrap();
        assert!(ruina.report.summary.failed > 0);
        let rollout = break_things("rollout:default/wordpress", 1).unwrap();
        assert!(
            rollout
                .text()
                .contains("rollout deployment default/wordpress")
        );
        let scaled = break_things("scale:default/wordpress=3", 1).unwrap();
        assert!(
            scaled
                .text()
                .contains("scale deployment default/wordpress --replicas=3")
        );
        for bad in [
            "kill",
            "kill:",
            "rollout:wordpress",
            "scale:default/wordpress",
            "scale:default/wordpress=many",
            "explode:all",
        ] {
            assert!(break_things(bad, 1).is_err(), "{bad}");
        }
    }
}
