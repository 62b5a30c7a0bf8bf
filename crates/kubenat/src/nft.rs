//! kube-proxy nftables-mode ruleset export (being written).
