#!/usr/bin/env bash
# Issue 14's benchmark: the same wire, the same sender, three datapaths. A router namespace
# between a client and a sink (kernel.sh's topology) forwards `flood`'s traffic to N
# synthetic Services through, in turn: the kernel with kube-proxy's nftables rules, the
# kernel with its iptables rules (iptables-legacy), and `kubenat run` (no rules at all).
# Rounds interleave the three; the summary is the median of the rounds.
#
#   benches/live.sh                                 # N = 1000 10000, 5 rounds
#   LIVE_SIZES="1000 10000 100000" ROUNDS=5 benches/live.sh
#
# Measured at the sink's side of the router (tx_packets of its veth): new connections per
# second forwarded (every packet a SYN of a new flow) and established packets per second;
# for kubenat, its process's CPU time per forwarded packet, and the time from start to its
# `ready` line. Environment: LIVE_SIZES, ROUNDS, DATAPATHS (default "nftables iptables
# kubenat"), SECONDS_EACH (default 5), LOAD_BOUND
# (seconds a kernel load may take, default 300), OUT (default
# benches/results/live-<date>.json). Needs root, iproute2, nft, iptables (apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/wire.sh

SIZES=${LIVE_SIZES:-"1000 10000"}
ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-5}
DATAPATHS=${DATAPATHS:-"nftables iptables kubenat"}
LOAD_BOUND=${LOAD_BOUND:-300}
DATE=$(date -u +%Y-%m-%d)
OUT=${OUT:-benches/results/live-$DATE.json}
if [ "$(id -u)" != 0 ]; then echo "live.sh: needs root (network namespaces)" >&2; exit 1; fi
need() { command -v "$1" >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null); }
need nft nftables
need iptables-legacy-restore iptables

cargo build --release -q -p kubenat -p kubenat-benches --bin kubenat --bin flood --bin kernel-rules --bin dump
BIN=${CARGO_TARGET_DIR:-target}/release
ROUTER=kn-live-r-$$
CLIENT=kn-live-c-$$
SINK=kn-live-s-$$
WORK=$(mktemp -d)
RUN_PID=""
cleanup_ns() {
  if [ -n "$RUN_PID" ]; then kill -INT "$RUN_PID" 2>/dev/null || true; wait "$RUN_PID" 2>/dev/null || true; RUN_PID=""; fi
  for ns in "$ROUTER" "$CLIENT" "$SINK"; do ip netns del "$ns" 2>/dev/null || true; done
}
cleanup() { cleanup_ns; rm -rf "$WORK"; }
trap cleanup EXIT
in_router() { ip netns exec "$ROUTER" "$@"; }

# The wire (wire.sh); the pods (10.0.0.0/8 after DNAT) are behind the sink.
make_namespaces() {
  cleanup_ns
  make_wire "$ROUTER" "$CLIENT" "$SINK" klc$$ klr$$ kls$$ klo$$
  in_router ip route add 10.0.0.0/8 via 198.51.100.2
  # SYN_SENT entries of the new-connection flood expire fast instead of filling the table.
  in_router sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_syn_sent=2 2>/dev/null || true
}

# "pps cpu-ns-per-packet" forwarded to the sink while flood ran in `mode`.
measure() { # services mode
  local before after report seconds cpu_before=0 cpu_after=0
  before=$(in_router cat /sys/class/net/klo$$/statistics/tx_packets)
  [ -n "$RUN_PID" ] && cpu_before=$(awk '{ print $14 + $15 }' /proc/"$RUN_PID"/stat)
  report=$(ip netns exec "$CLIENT" timeout $((SECONDS_EACH + 30)) "$BIN/flood" --services "$1" \
    --mode "$2" --seconds "$SECONDS_EACH" --flows 1024)
  [ -n "$RUN_PID" ] && cpu_after=$(awk '{ print $14 + $15 }' /proc/"$RUN_PID"/stat)
  after=$(in_router cat /sys/class/net/klo$$/statistics/tx_packets)
  seconds=$(sed -E 's/.*"seconds": ([0-9.e+-]+).*/\1/' <<<"$report")
  awk -v a="$after" -v b="$before" -v s="$seconds" -v c0="$cpu_before" -v c1="$cpu_after" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN {
      n = a - b; printf "%.0f %.0f\n", n / s, (n > 0 ? (c1 - c0) / hz * 1e9 / n : 0) }'
}

now() { date +%s.%N; }
: > "$WORK/results"
for N in $SIZES; do
  "$BIN/kernel-rules" --services "$N" --format nft > "$WORK/rules.nft" 2>/dev/null
  "$BIN/kernel-rules" --services "$N" --format iptables > "$WORK/rules.iptables" 2>/dev/null
  "$BIN/dump" --services "$N" --format yaml-documents > "$WORK/cluster.yaml" 2>/dev/null
  # The router as the synthetic cluster's node (its address faces the client), and the
  # KubeProxyConfiguration the kernel rules were written for.
  cat > "$WORK/node.yaml" <<EOF
apiVersion: v1
kind: Node
metadata: {name: bench-node}
status: {addresses: [{address: 192.0.2.2, type: InternalIP}]}
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clusterCIDR: 10.0.0.0/8
# Room for every connection of a measurement: the kernel's SYN_SENT entries expire after
# 2 s here (below), kubenat's keep kube-proxy's timeouts.
conntrack: {maxPerCore: 4194304, min: 4194304}
---
apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata: {name: kubernetes}
spec: {cidrs: [172.16.0.0/12]}
EOF
  for round in $(seq "$ROUNDS"); do
    for datapath in $DATAPATHS; do
      make_namespaces
      T0=$(now)
      case $datapath in
        nftables) timeout "$LOAD_BOUND" ip netns exec "$ROUTER" nft -f "$WORK/rules.nft" || { echo "N=$N $datapath: load failed or took over ${LOAD_BOUND}s" >&2; continue; } ;;
        iptables) timeout "$LOAD_BOUND" ip netns exec "$ROUTER" sh -c "exec iptables-legacy-restore < $WORK/rules.iptables" || { echo "N=$N $datapath: load failed or took over ${LOAD_BOUND}s" >&2; continue; } ;;
        kubenat)
          # Not through a function: $! must be kubenat itself.
          ip netns exec "$ROUTER" "$BIN/kubenat" run --cluster "$WORK/cluster.yaml" --cluster "$WORK/node.yaml" \
            --node bench-node > "$WORK/run.out" 2> "$WORK/run.err" &
          RUN_PID=$!
          timeout "$LOAD_BOUND" bash -c "until grep -q ready '$WORK/run.out'; do kill -0 $RUN_PID || exit 1; sleep 0.01; done" \
            || { echo "N=$N kubenat: no ready line: $(cat "$WORK/run.err")" >&2; exit 1; } ;;
      esac
      READY=$(awk -v a="$(now)" -v b="$T0" 'BEGIN { printf "%.3f", a - b }')
      read -r NEW NEW_NS < <(measure "$N" new)
      read -r EST EST_NS < <(measure "$N" established)
      echo "$N $datapath $round $READY $NEW $EST $NEW_NS $EST_NS" | tee -a "$WORK/results" >&2
      cleanup_ns
    done
  done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "null") }'; }
column() { awk -v n="$1" -v d="$2" -v c="$3" '$1 == n && $2 == d { print $c }' "$WORK/results" | median; }
MACHINE="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB"
mkdir -p "$(dirname "$OUT")"
{
  echo "{"
  echo "  \"date\": \"$DATE\", \"machine\": \"$MACHINE\", \"kernel\": \"$(uname -r)\","
  echo "  \"rounds\": $ROUNDS, \"seconds_each\": $SECONDS_EACH,"
  echo "  \"medians\": ["
  first=1
  for N in $SIZES; do
    for datapath in nftables iptables kubenat; do
      [ $first = 1 ] || echo ","
      first=0
      printf '    {"services": %s, "datapath": "%s", "ready_seconds": %s, "new_connections_pps": %s, "established_pps": %s, "new_cpu_ns_per_packet": %s, "established_cpu_ns_per_packet": %s}' \
        "$N" "$datapath" "$(column "$N" $datapath 4)" "$(column "$N" $datapath 5)" "$(column "$N" $datapath 6)" \
        "$(column "$N" $datapath 7)" "$(column "$N" $datapath 8)"
    done
  done
  echo
  echo "  ],"
  echo "  \"runs\": ["
  awk '{ printf "%s    {\"services\": %s, \"datapath\": \"%s\", \"round\": %s, \"ready_seconds\": %s, \"new_connections_pps\": %s, \"established_pps\": %s}", (NR > 1 ? ",\n" : ""), $1, $2, $3, $4, $5, $6 } END { print "" }' "$WORK/results"
  echo "  ]"
  echo "}"
} > "$OUT"
echo "wrote $OUT" >&2
