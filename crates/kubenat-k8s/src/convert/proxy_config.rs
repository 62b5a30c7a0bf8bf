//! kube-proxy's KubeProxyConfiguration: its settings, checked; one per file.

use super::Ctx;
use crate::Manifests;
use crate::proxy::KubeProxyConfiguration;
use crate::proxy_schema::unknown_fields;

pub(super) fn proxy_config(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    // kubenat's type keeps only the fields it honours: the v1alpha1 schema judges the rest.
    let root = ctx.root;
    for (path, line) in unknown_fields(root) {
        ctx.unknown_field(&path, line);
    }
    let Some(config) = ctx.decode_from::<KubeProxyConfiguration>(root, false) else {
        return;
    };
    let (_, problems) = config.settings();
    for (field, message, warning) in problems {
        if warning {
            ctx.warn(&field, message);
        } else {
            ctx.error(&field, message);
        }
    }
    if ctx.failed {
        return;
    }
    if out.proxy.is_some() {
        ctx.error("", "a second KubeProxyConfiguration in the same file");
        return;
    }
    out.proxy = Some(config);
}
