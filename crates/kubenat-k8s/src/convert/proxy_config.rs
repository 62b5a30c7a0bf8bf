//! kube-proxy's KubeProxyConfiguration: its settings, checked; one per file.

use super::Ctx;
use crate::Manifests;
use crate::proxy::KubeProxyConfiguration;

pub(super) fn proxy_config(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(config) = ctx.decode::<KubeProxyConfiguration>() else {
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
