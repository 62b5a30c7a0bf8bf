//! networking.k8s.io/v1 Ingress: rules, paths and backends.

use k8s_openapi::api::networking::v1 as networking;
use kubenat_core::TargetPort;

use super::Ctx;
use super::fields::{Field, metadata_namespace, named_port, port_number, subdomain_name};
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
        .and_then(|b| ingress_backend(ctx, Field::Path("spec.defaultBackend"), b));
    let mut rules = Vec::new();
    let rules_field = Field::Path("spec.rules");
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        let base = rules_field.item(i);
        let paths_field = base.member("http.paths");
        let host = rule.host.clone().filter(|h| !h.is_empty());
        if let Some(h) = &host {
            let bare = h.strip_prefix("*.").unwrap_or(h);
            if !is_dns1123_subdomain(bare) {
                ctx.error(
                    base.member("host"),
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
            let pbase = paths_field.item(j);
            let path = p.path.clone().unwrap_or_default();
            match p.path_type.as_str() {
                "Exact" | "Prefix" => {
                    if !path.starts_with('/') {
                        ctx.error(
                            pbase.member("path"),
                            format!("{path:?} must be an absolute path"),
                        );
                    }
                }
                "ImplementationSpecific" => {}
                other => ctx.error(
                    pbase.member("pathType"),
                    format!(
                        "{other:?} is not a supported value (Exact, Prefix or ImplementationSpecific)"
                    ),
                ),
            }
            if let Some(backend) = ingress_backend(ctx, pbase.member("backend"), &p.backend) {
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
    base: Field<'_>,
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
                base.member("resource"),
                "resource backends are not simulated; skipped",
            );
            None
        }
        (Some(service), None) => {
            let sbase = base.member("service");
            if !is_dns1035_label(&service.name) {
                ctx.error(
                    sbase.member("name"),
                    format!(
                        "{:?} is not a valid Service name (a DNS-1035 label)",
                        service.name
                    ),
                );
            }
            let port = service.port.clone().unwrap_or_default();
            let port = match (port.name.filter(|n| !n.is_empty()), port.number) {
                (Some(_), Some(_)) => {
                    ctx.error(sbase.member("port"), "name and number may not both be set");
                    None
                }
                (None, None) => {
                    ctx.error(sbase.member("port"), "one of name or number is required");
                    None
                }
                (Some(name), None) => named_port(ctx, sbase.member("port.name"), &name),
                (None, Some(n)) => {
                    port_number(ctx, sbase.member("port.number"), n.into()).map(TargetPort::Number)
                }
            }?;
            Some(IngressBackend {
                service: service.name.clone(),
                port,
            })
        }
    }
}
