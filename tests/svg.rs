//! `--svg`: the first request's journey as a sequence diagram: well-formed XML, a lane per
//! host it touched, an arrow per hop between hosts labelled with the packet's addresses
//! before and after each rewrite, the same bytes for the same seed.

use std::collections::BTreeSet;
use std::process::Command;

use kubenat_sim::svg::{escape, sequence_diagram};
use kubenat_sim::{Report, Scenario, Step, run};

fn diagram(report: &Report) -> String {
    sequence_diagram(report, 1).expect("request 1 exists")
}

/// The texts of the elements with `class="…"` `class`.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let start = t.find('>').unwrap() + 1;
            let end = t.find("</text>").unwrap();
            t[start..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

#[test]
fn the_diagram_is_well_formed_xml_with_a_lane_per_host() {
    let report = run(&Scenario::notes(2));
    let svg = diagram(&report);
    let elements = kubenat_e2e::check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(elements[0], "svg");
    assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
    let journey = &report.journeys[0];
    let hosts: BTreeSet<&str> = journey.hops.iter().map(|h| h.at.as_str()).collect();
    assert_eq!(svg.matches(r#"<g class="lane">"#).count(), hosts.len());
    // Every host of the journey has its lane, headed by its name (long pod names are
    // shortened) and its address.
    let texts = texts(&svg);
    for place in report
        .places
        .iter()
        .filter(|p| hosts.contains(p.name.as_str()))
    {
        let prefix: String = place.name.chars().take(30).collect();
        assert!(
            texts.iter().any(|t| t.starts_with(&prefix)),
            "no lane for {}",
            place.name
        );
        assert!(
            texts.iter().any(|t| t.contains(&place.ip.to_string())),
            "no address for {}",
            place.name
        );
    }
    // One arrow or dot per hop; an arrow wherever the journey moves to another host.
    let moves = journey
        .hops
        .windows(2)
        .filter(|w| w[0].at != w[1].at)
        .count();
    assert_eq!(svg.matches(r#"<g class="hop">"#).count(), moves);
    assert_eq!(svg.matches(r#"class="hop""#).count(), journey.hops.len());

    if Command::new("python3").arg("--version").output().is_ok() {
        let path = std::env::temp_dir().join(format!("kubenat-sim-{}.svg", std::process::id()));
        std::fs::write(&path, &svg).unwrap();
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])",
            ])
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Each rewrite of request 1 shows on the diagram with the addresses before and after it:
/// the arrow into the node carries the packet as it arrived, the arrow out of it the packet
/// as rewritten, and the note both.
#[test]
fn every_rewrite_is_labelled_before_and_after() {
    let report = run(&Scenario::notes(1));
    let texts = texts(&diagram(&report));
    let mut rewrites = 0;
    for hop in &report.journeys[0].hops {
        let Step::Node { before, after, .. } = &hop.step else {
            continue;
        };
        let label = |f: &kubenat_sim::journey::FlowView| {
            format!("{} {} → {}", f.protocol, f.source, f.destination)
        };
        assert!(
            texts.contains(&label(before)),
            "{} before: {}",
            hop.at,
            label(before)
        );
        assert!(
            texts.contains(&label(after)),
            "{} after: {}",
            hop.at,
            label(after)
        );
        if before.destination != after.destination {
            let dnat = format!("DNAT {} ⇒ {}", before.destination, after.destination);
            assert!(texts.contains(&dnat), "{dnat}");
            rewrites += 1;
        }
        if before.source != after.source {
            let snat = format!("SNAT {} ⇒ {}", before.source, after.source);
            assert!(texts.contains(&snat), "{snat}");
            rewrites += 1;
        }
    }
    // NodePort DNAT + masquerade, wp-service, kube-dns, mariadb-service.
    assert!(rewrites >= 5, "{rewrites} rewrites");
    for address in [
        "192.168.0.100:30880",
        "10.10.0.105:80",
        "10.10.1.102:8080",
        "10.10.1.101:3307",
        "10.10.0.103:3306",
    ] {
        assert!(texts.iter().any(|t| t.contains(address)), "{address}");
    }
}

#[test]
fn the_same_seed_draws_the_same_bytes_and_run_with_writes_them() {
    let scenario = Scenario::notes(2).with_seed(9);
    let first = diagram(&run(&scenario));
    let path = std::env::temp_dir().join(format!("kubenat-sim-run-{}.svg", std::process::id()));
    let options = kubenat_sim::Options {
        pcap_dir: None,
        svg: Some(path.clone()),
    };
    kubenat_sim::run_with(&scenario, &options).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(written, first);
    // Another seed picks other ephemeral ports, and the diagram shows them.
    assert_ne!(diagram(&run(&Scenario::notes(2).with_seed(10))), first);
}

#[test]
fn text_is_escaped() {
    assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    assert_eq!(escape("x\u{1}y"), "x y");
    let svg = format!("<t a=\"{}\">{}</t>", escape("\"&<"), escape("<&>"));
    kubenat_e2e::check_xml(&svg).unwrap();
    // The checker itself rejects what escaping prevents.
    for bad in [
        "<t>a & b</t>",
        "<t a=\"<\"/>",
        "<t><u></t></u>",
        "<t/><u/>",
        "<t a=1/>",
    ] {
        assert!(kubenat_e2e::check_xml(bad).is_err(), "{bad}");
    }
}
