#!/usr/bin/env bash
# The transport spike of issue 14: how many packets per second a router namespace forwards
# on its own (the kernel) and through `kubenat run`'s TUN device, on kernel.sh's wire
# (client -> router -> sink), with the same `flood` sender. Only the transport is measured:
# the destinations are no Service, so the engine looks each packet up and accepts it.
#
#   benches/live-spike.sh              # 3 interleaved rounds of 5 s each
#   ROUNDS=5 SECONDS_EACH=10 benches/live-spike.sh
#
# Needs root and iproute2. Prints one line per measurement and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/wire.sh

ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-5}
if [ "$(id -u)" != 0 ]; then echo "live-spike.sh: needs root (network namespaces)" >&2; exit 1; fi
cargo build --release -q -p kubenat -p kubenat-benches --bin kubenat --bin flood
BIN=${CARGO_TARGET_DIR:-target}/release
ROUTER=kn-spike-r-$$
CLIENT=kn-spike-c-$$
SINK=kn-spike-s-$$
RUN_PID=""
cleanup() {
  if [ -n "$RUN_PID" ]; then kill -INT "$RUN_PID" 2>/dev/null || true; wait "$RUN_PID" 2>/dev/null || true; fi
  for ns in "$ROUTER" "$CLIENT" "$SINK"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

in_router() { ip netns exec "$ROUTER" "$@"; }
make_wire "$ROUTER" "$CLIENT" "$SINK" ksc$$ ksr$$ kss$$ kso$$
# Whatever flood sends (its synthetic Service addresses) leaves towards the sink.
in_router ip route add default via 198.51.100.2

# Packets per second the router sent to the sink while flood ran: "pps cpu-ns-per-packet".
measure() { # mode
  local before after report seconds cpu_before=0 cpu_after=0
  before=$(in_router cat /sys/class/net/kso$$/statistics/tx_packets)
  [ -n "$RUN_PID" ] && cpu_before=$(awk '{ print $14 + $15 }' /proc/"$RUN_PID"/stat)
  report=$(ip netns exec "$CLIENT" timeout $((SECONDS_EACH + 30)) "$BIN/flood" --services 1000 \
    --mode "$1" --seconds "$SECONDS_EACH" --flows 1024)
  [ -n "$RUN_PID" ] && cpu_after=$(awk '{ print $14 + $15 }' /proc/"$RUN_PID"/stat)
  after=$(in_router cat /sys/class/net/kso$$/statistics/tx_packets)
  seconds=$(sed -E 's/.*"seconds": ([0-9.e+-]+).*/\1/' <<<"$report")
  awk -v a="$after" -v b="$before" -v s="$seconds" -v c0="$cpu_before" -v c1="$cpu_after" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN {
      n = a - b; printf "%.0f %.0f\n", n / s, (n > 0 ? (c1 - c0) / hz * 1e9 / n : 0) }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: > /tmp/live-spike-$$.txt
for round in $(seq "$ROUNDS"); do
  for mode in established new; do
    echo "kernel $mode $(measure "$mode")" | tee -a /tmp/live-spike-$$.txt >&2
  done
  # Not through a function: $! must be kubenat itself.
  ip netns exec "$ROUTER" "$BIN/kubenat" run --cluster examples/miempresa/cluster.yaml --node nodoa \
    --interface ksr$$ --interface kso$$ > /tmp/live-spike-run-$$.out 2>/dev/null &
  RUN_PID=$!
  timeout 15 bash -c "until grep -q ready /tmp/live-spike-run-$$.out; do sleep 0.05; done"
  for mode in established new; do
    echo "kubenat $mode $(measure "$mode")" | tee -a /tmp/live-spike-$$.txt >&2
  done
  kill -INT "$RUN_PID"; wait "$RUN_PID"; RUN_PID=""
done
for who in kernel kubenat; do
  for mode in established new; do
    pps=$(awk -v w=$who -v m=$mode '$1 == w && $2 == m { print $3 }' /tmp/live-spike-$$.txt | median)
    ns=$(awk -v w=$who -v m=$mode '$1 == w && $2 == m { print $4 }' /tmp/live-spike-$$.txt | median)
    [ $who = kubenat ] && cpu=", kubenat process CPU $ns ns/packet" || cpu=""
    echo "median $who $mode: $pps packets/s forwarded$cpu"
  done
done
rm -f /tmp/live-spike-$$.txt /tmp/live-spike-run-$$.out
