//! Dumps as large as real clusters print them import whole, streamed one object at a time
//! (the full-size runs, 1M Services, are in docs/benchmarks.md).

use std::io::{BufWriter, Write};
use std::net::IpAddr;

use kubenat_bench::dump::{DumpFormat, DumpShape, write_dump};
use kubenat_bench::synthetic::service_ip;
use kubenat_k8s::{LoadOptions, Manifests, load_with, parse_str};

/// The dump written to a file and loaded from it as the CLI does, streamed: the importer
/// holds one object at a time.
fn import(services: usize, format: DumpFormat) -> Manifests {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dump-{services}-{format:?}"));
    let shape = DumpShape {
        services,
        endpoints: 4,
    };
    let file = std::fs::File::create(&path).expect("a file in the target directory");
    let mut out = BufWriter::new(file);
    let written = write_dump(&mut out, shape, format).and_then(|n| out.flush().map(|()| n));
    assert_eq!(written.ok(), Some(2 * services as u64));
    let size = std::fs::metadata(&path).map(|m| m.len()).ok();
    let mut last_progress = 0;
    let manifests = load_with(&[&path], &LoadOptions::default(), &mut |progress| {
        assert!(
            progress.bytes_read >= last_progress,
            "progress goes forward"
        );
        assert_eq!(progress.file_bytes, size);
        last_progress = progress.bytes_read;
    })
    .unwrap_or_else(|errors| panic!("{:?}", &errors[..errors.len().min(3)]));
    let _ = std::fs::remove_file(&path);
    assert_eq!(Some(last_progress), size, "progress reaches the end");
    manifests
}

fn check(manifests: &Manifests, services: usize) {
    assert_eq!(manifests.services.len(), services);
    assert_eq!(manifests.endpoint_slices.len(), services);
    assert!(
        manifests.warnings.is_empty(),
        "{:?}",
        &manifests.warnings[..1]
    );
    let last = &manifests.services[services - 1];
    assert_eq!(last.name.name, format!("svc-{}", services - 1));
    assert_eq!(last.cluster_ips, [IpAddr::V4(service_ip(services - 1))]);
    let slice = &manifests.endpoint_slices[services - 1];
    assert_eq!(slice.service, last.name);
    assert_eq!(slice.endpoints.len(), 4);
}

#[test]
fn a_json_list_of_20k_services_and_their_slices() {
    check(&import(20_000, DumpFormat::JsonList), 20_000);
}

#[test]
fn multi_document_yaml_past_1024_documents() {
    check(&import(550, DumpFormat::YamlDocuments), 550);
}

#[test]
fn a_yaml_list_past_the_parser_budgets() {
    // 5,000 Services with their slices: some 600,000 YAML nodes in one document.
    check(&import(5_000, DumpFormat::YamlList), 5_000);
}

#[test]
fn an_error_deep_in_a_streamed_list_names_its_line() {
    for format in [DumpFormat::JsonList, DumpFormat::YamlList] {
        let mut text = Vec::new();
        let shape = DumpShape {
            services: 3,
            endpoints: 1,
        };
        write_dump(&mut text, shape, format).expect("writes to memory");
        let text = String::from_utf8(text).expect("UTF-8");
        // Service 2's port, the last `80` of a "port" field in the text.
        let needle = if format == DumpFormat::JsonList {
            "\"port\": 80,"
        } else {
            "port: 80\n"
        };
        let at = text.rfind(needle).expect("service 2's port");
        let line = text[..at].matches('\n').count() + 1;
        let bad = format!(
            "{}{}{}",
            &text[..at],
            needle.replace("80", "70000"),
            &text[at + needle.len()..]
        );
        let errors = parse_str("dump", &bad).expect_err("port 70000 is refused");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [format!(
                "dump:{line}: Service ns-2/svc-2: spec.ports[0].port: 70000 is not a valid port (1-65535)"
            )],
            "{format:?}"
        );
    }
}

#[test]
fn yaml_and_json_dumps_import_the_same() {
    // Two parsers (the JSON reader, the YAML fast path) and three layouts, one cluster.
    let json = import(300, DumpFormat::JsonList);
    assert_eq!(import(300, DumpFormat::YamlList), json);
    assert_eq!(import(300, DumpFormat::YamlDocuments), json);
}
