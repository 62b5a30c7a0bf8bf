//! networking.k8s.io/v1 Ingress: rules, paths and backends.

use k8s_openapi::api::networking::v1 as networking;
use kubenat_core::TargetPort;

use super::Ctx;
use super::fields::{metadata_namespace, named_port, port_number, subdomain_name};
use crate::validate::{is_dns1035_label, is_dns1123_subdomain};
use crate::{Ingress, IngressBackend, IngressPath, IngressRule, Manifests};

pub(super) fn ingress(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(ing) = ctx.decode::<networking::Ingress>() else {
        return;
    };
    let name = subdomain_name(ctx, &ing.metadata.name);
    let namespace = metadata_namespace(ctx, &ing.metadata.namespace);
    let spec = ing.spec.unwrap_or_default();
    let default_backend = spec
        .default_backend
        .as_ref()
        .and_then(|b| ingress_backend(ctx, "spec.defaultBackend", b));
    let mut rules = Vec::new();
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        let base = format!("spec.rules[{i}]");
        let host = rule.host.clone().filter(|h| !h.is_empty());
        if let Some(h) = &host {
            let bare = h.strip_prefix("*.").unwrap_or(h);
            if !is_dns1123_subdomain(bare) {
                ctx.error(
                    &format!("{base}.host"),
                    format!("{h:?} is not a valid host name (a DNS-1123 subdomain, optionally with a leading \"*.\")"),
                );
            }
        }
        let mut paths = Vec::new();
        for (j, p) in rule
            .http
            .as_ref()
            .map(|h| h.paths.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let pbase = format!("{base}.http.paths[{j}]");
            let path = p.path.clone().unwrap_or_default();
            match p.path_type.as_str() {
                "Exact" | "Prefix" => {
                    if !path.starts_with('/') {
                        ctx.error(
                            &format!("{pbase}.path"),
                            format!("{path:?} must be an absolute path"),
                        );
                    }
                }
                "ImplementationSpecific" => {}
                other => ctx.error(
                    &format!("{pbase}.pathType"),
                    format!(
                        "{other:?} is not a supported value (Exact, Prefix or ImplementationSpecific)"
                    ),
                ),
            }
            if let Some(backend) = ingress_backend(ctx, &format!("{pbase}.backend"), &p.backend) {
                paths.push(IngressPath {
                    path,
                    path_type: p.path_type.clone(),
                    backend,
                });
            }
        }
        rules.push(IngressRule { host, paths });
    }
    if ctx.failed {
        return;
    }
    out.ingresses.push(Ingress {
        namespace,
        name,
        class: spec.ingress_class_name,
        rules,
        default_backend,
    });
}

fn ingress_backend(
    ctx: &mut Ctx<'_>,
    base: &str,
    backend: &networking::IngressBackend,
) -> Option<IngressBackend> {
    match (&backend.service, &backend.resource) {
        (Some(_), Some(_)) => {
            ctx.error(base, "service and resource may not both be set");
            None
        }
        (None, None) => {
            ctx.error(base, "one of service or resource is required");
            None
        }
        (None, Some(_)) => {
            ctx.warn(
                &format!("{base}.resource"),
                "resource backends are not simulated; skipped",
            );
            None
        }
        (Some(service), None) => {
            let sbase = format!("{base}.service");
            if !is_dns1035_label(&service.name) {
                ctx.error(
                    &format!("{sbase}.name"),
                    format!(
                        "{:?} is not a valid Service name (a DNS-1035 label)",
                        service.name
                    ),
                );
            }
            let port = service.port.clone().unwrap_or_default();
            let port = match (port.name.filter(|n| !n.is_empty()), port.number) {
                (Some(_), Some(_)) => {
                    ctx.error(
                        &format!("{sbase}.port"),
                        "name and number may not both be set",
                    );
                    None
                }
                (None, None) => {
                    ctx.error(
                        &format!("{sbase}.port"),
                        "one of name or number is required",
                    );
                    None
                }
                (Some(name), None) => named_port(ctx, &format!("{sbase}.port.name"), &name),
                (None, Some(n)) => port_number(ctx, &format!("{sbase}.port.number"), n.into())
                    .map(TargetPort::Number),
            }?;
            Some(IngressBackend {
                service: service.name.clone(),
                port,
            })
        }
    }
}
