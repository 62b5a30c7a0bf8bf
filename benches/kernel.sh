#!/usr/bin/env bash
# The kernel side of issue 5: load the same N synthetic Services into netfilter the way
# kube-proxy writes them (nftables mode: verdict maps, a chain per service and endpoint,
# numgen; iptables mode: KUBE-SERVICES / KUBE-SVC-* / KUBE-SEP-* with statistic and DNAT),
# time the load against kubenat's compile, then measure the kernel's forwarding rate of new
# and established connections through those rules between two network namespaces.
#
# Everything happens inside namespaces this script creates and removes (kubenat-client-$$
# sends over a veth to kubenat-bench-$$, which holds the rules and routes the DNATed
# traffic over a second veth to kubenat-sink-$$, which drops it); addresses exist only
# there and no packet leaves them. Needs root,
# iproute2, nft, iptables (installed with apt when missing).
#
#   benches/kernel.sh                      # N = 1000 10000 100000
#   KERNEL_SIZES="1000" FORWARD_SECONDS=3 benches/kernel.sh
#
# Environment: KERNEL_SIZES (default "1000 10000 100000"), KERNEL_LAYOUTS (default
# "nftables iptables-legacy iptables-nft"), LOAD_BOUND (seconds a load may take before it is
# stopped, default 600), FORWARD_SECONDS (per new-connection measurement, default 10),
# ESTABLISHED_SECONDS (default 5), OUT (default benches/results/kernel-<date>.json).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/wire.sh

SIZES=${KERNEL_SIZES:-"1000 10000 100000"}
LAYOUTS=${KERNEL_LAYOUTS:-"nftables iptables-legacy iptables-nft"}
LOAD_BOUND=${LOAD_BOUND:-600}
FORWARD_SECONDS=${FORWARD_SECONDS:-10}
ESTABLISHED_SECONDS=${ESTABLISHED_SECONDS:-5}
DATE=$(date -u +%Y-%m-%d)
OUT=${OUT:-benches/results/kernel-$DATE.json}

if [ "$(id -u)" != 0 ]; then echo "kernel.sh: needs root (network namespaces)" >&2; exit 1; fi
need() { command -v "$1" >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null); }
need ip iproute2
need nft nftables
need iptables-legacy-restore iptables

cargo build --release -q -p kubenat-benches --bin kernel-rules --bin flood
RULES=target/release/kernel-rules
FLOOD=$PWD/target/release/flood

ROUTER=kubenat-bench-$$
CLIENT=kubenat-client-$$
WORK=$(mktemp -d)
SINK=kubenat-sink-$$
cleanup() {
  cleanup_ns
  rm -rf "$WORK"
}
trap cleanup EXIT

in_router() { ip netns exec "$ROUTER" "$@"; }
in_client() { ip netns exec "$CLIENT" "$@"; }

# The wire (wire.sh); the router, holding the rules, DNATs service traffic to pod
# addresses in 10.0.0.0/9, routed to the sink.
make_namespaces() {
  cleanup_ns
  make_wire "$ROUTER" "$CLIENT" "$SINK" kb-c-$$ kb-r-$$ kb-s-$$ kb-o-$$
  in_router ip route add 10.0.0.0/9 via 198.51.100.2
}
cleanup_ns() {
  ip netns del "$ROUTER" 2>/dev/null || true
  ip netns del "$CLIENT" 2>/dev/null || true
  ip netns del "$SINK" 2>/dev/null || true
}

now() { date +%s.%N; }
json_or_null() { if [ -n "$1" ]; then echo "$1"; else echo null; fi; }

# Packets per second the router forwarded to the sink while `flood` ran in the client.
forward_rate() { # services mode seconds
  local before after report seconds
  before=$(in_router cat "/sys/class/net/kb-o-$$/statistics/tx_packets")
  report=$(in_client timeout $(( $3 + 60 )) "$FLOOD" --services "$1" --mode "$2" --seconds "$3" --flows 1024) || return 0
  after=$(in_router cat "/sys/class/net/kb-o-$$/statistics/tx_packets")
  seconds=$(sed -E 's/.*"seconds": ([0-9.e+-]+).*/\1/' <<<"$report")
  awk -v a="$after" -v b="$before" -v s="$seconds" 'BEGIN { printf "%.0f", (a - b) / s }'
}

RUNS=()
for N in $SIZES; do
  "$RULES" --services "$N" --format nft > "$WORK/rules.nft" 2> "$WORK/compile.json"
  "$RULES" --services "$N" --format iptables > "$WORK/rules.iptables" 2>> "$WORK/compile.json"
  COMPILE=$(head -1 "$WORK/compile.json" | sed -E 's/.*: ([0-9.e+-]+).*/\1/')
  for LAYOUT in $LAYOUTS; do
    case $LAYOUT in
      nftables) FILE=$WORK/rules.nft; LOAD=(nft -f "$FILE") ;;
      iptables-legacy) FILE=$WORK/rules.iptables; LOAD=(sh -c "exec iptables-legacy-restore < $FILE") ;;
      iptables-nft) FILE=$WORK/rules.iptables; LOAD=(sh -c "exec iptables-nft-restore < $FILE") ;;
      *) echo "unknown layout $LAYOUT" >&2; exit 1 ;;
    esac
    LINES=$(wc -l < "$FILE")
    make_namespaces
    echo "N=$N $LAYOUT: loading $LINES lines (bound ${LOAD_BOUND}s)" >&2
    T0=$(now)
    STATUS=0
    timeout "$LOAD_BOUND" ip netns exec "$ROUTER" "${LOAD[@]}" || STATUS=$?
    T1=$(now)
    LOAD_SECONDS=""; TIMED_OUT=false; NEW=""; EST=""
    if [ "$STATUS" = 0 ]; then
      LOAD_SECONDS=$(awk -v a="$T1" -v b="$T0" 'BEGIN { printf "%.3f", a - b }')
      # SYN_SENT entries of the new-connection flood expire fast instead of filling the table.
      in_router sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_syn_sent=2 2>/dev/null || true
      echo "  loaded in ${LOAD_SECONDS}s; forwarding new connections for ${FORWARD_SECONDS}s" >&2
      NEW=$(forward_rate "$N" new "$FORWARD_SECONDS")
      EST=$(forward_rate "$N" established "$ESTABLISHED_SECONDS")
      echo "  new connections: ${NEW:-?} pps, established: ${EST:-?} pps" >&2
    elif [ "$STATUS" = 124 ]; then
      TIMED_OUT=true
      echo "  stopped after ${LOAD_BOUND}s" >&2
    else
      echo "  load failed (exit $STATUS)" >&2
    fi
    cleanup_ns
    RUNS+=("    {\"services\": $N, \"layout\": \"$LAYOUT\", \"rule_lines\": $LINES, \"load_seconds\": $(json_or_null "$LOAD_SECONDS"), \"load_timed_out\": $TIMED_OUT, \"kubenat_compile_seconds\": $(json_or_null "$COMPILE"), \"new_connections_pps\": $(json_or_null "$NEW"), \"established_pps\": $(json_or_null "$EST")}")
  done
done

MACHINE="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB"
mkdir -p "$(dirname "$OUT")"
{
  echo "{"
  echo "  \"date\": \"$DATE\","
  echo "  \"machine\": \"$MACHINE\","
  echo "  \"kernel\": \"$(uname -r)\","
  echo "  \"nft_version\": \"$(nft --version | head -1)\","
  echo "  \"iptables_version\": \"$(iptables-legacy --version | head -1); $(iptables-nft --version | head -1)\","
  echo "  \"load_bound_seconds\": $LOAD_BOUND,"
  echo "  \"forward_seconds\": $FORWARD_SECONDS,"
  echo "  \"runs\": ["
  for i in "${!RUNS[@]}"; do
    if [ "$i" -lt $(( ${#RUNS[@]} - 1 )) ]; then echo "${RUNS[$i]},"; else echo "${RUNS[$i]}"; fi
  done
  echo "  ]"
  echo "}"
} > "$OUT"
echo "wrote $OUT" >&2
