#!/usr/bin/env bash
# `kubenat run` on live traffic, with real Linux TCP clients and servers: the course notes'
# node nodoa (examples/miempresa) built from network namespaces.
#
#   client pod 10.10.0.50 ──┐
#   wordpress  10.10.0.102 ─┤ veths   node nodoa, 192.168.0.101/24     LAN    PC 192.168.0.50
#   wordpress  10.10.0.112 ─┼──────── (default via 192.168.0.1) ────────────── (off-cluster)
#   ingress    10.10.0.105 ─┘         kubenat run, no NAT rules of its own
#
# Proves: a ClusterIP reaches both WordPress endpoints over several connections (pod source
# kept); the nginx NodePort from the PC reaches the ingress pod masqueraded, replies come
# back; a Service port that does not exist is refused at once; SIGINT restores every rule,
# route, device and sysctl and exits 0; after SIGKILL, `--cleanup` restores them and is
# idempotent.
#
#   tests/live-run.sh path/to/kubenat
#
# Needs root, iproute2 and python3; fails (never skips) without them. Every namespace and
# device carries this shell's pid and is removed on exit; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBENAT=${1:?usage: tests/live-run.sh path/to/kubenat}
fail() { echo "live-run: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces); CI runs as root"
command -v ip >/dev/null || fail "needs iproute2 (ip)"
PY=$(python3 -c 'import sys; print(sys.executable)') || fail "needs python3"

ID=$$
NODE=kn-node-$ID
PC=kn-pc-$ID
PODS=(client wp1 wp2 ingress)
declare -A POD_IP=([client]=10.10.0.50 [wp1]=10.10.0.102 [wp2]=10.10.0.112 [ingress]=10.10.0.105)
CLUSTER=(--cluster examples/miempresa/cluster.yaml --cluster examples/miempresa/kube-proxy.yaml --node nodoa)
WORK=$(mktemp -d)
RUN_PID=""

cleanup() {
  if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill -INT "$RUN_PID" 2>/dev/null || true
    timeout 5 tail --pid="$RUN_PID" -f /dev/null || kill -KILL "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  # A journal left by a failed step lives outside the namespace: undo it while it exists.
  ip netns exec "$NODE" "$KUBENAT" run --cleanup >/dev/null 2>&1 || true
  for ns in "$NODE" "$PC" $(for pod in "${PODS[@]}"; do pod_ns "$pod"; done); do
    # The servers this script started in it.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
pod_ns() { echo "kn-$1-$ID"; }
trap cleanup EXIT

in_node() { ip netns exec "$NODE" "$@"; }

# --- the topology ------------------------------------------------------------------------
ip netns add "$NODE"
ip netns add "$PC"
in_node ip link set lo up
ip link add "kl$ID" netns "$NODE" type veth peer name "kp$ID" netns "$PC"
in_node ip addr add 192.168.0.101/24 dev "kl$ID"
in_node ip link set "kl$ID" up
# A real node's default route: without kubenat, Service traffic would leave this way.
in_node ip route add default via 192.168.0.1 dev "kl$ID"
ip netns exec "$PC" ip link set lo up
ip netns exec "$PC" ip addr add 192.168.0.50/24 dev "kp$ID"
ip netns exec "$PC" ip link set "kp$ID" up

n=0
for pod in "${PODS[@]}"; do
  ns=$(pod_ns "$pod"); n=$((n + 1))
  ip netns add "$ns"
  ip link add "ke$n$ID" netns "$ns" type veth peer name "kv$n$ID" netns "$NODE"
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "${POD_IP[$pod]}/32" dev "ke$n$ID"
  ip netns exec "$ns" ip link set "ke$n$ID" up
  # Calico-style: the pod's gateway is a link-local address its veth peer holds.
  ip netns exec "$ns" ip route add 169.254.1.1 dev "ke$n$ID"
  ip netns exec "$ns" ip route add default via 169.254.1.1 dev "ke$n$ID"
  in_node ip addr add 169.254.1.1/32 dev "kv$n$ID"
  in_node ip link set "kv$n$ID" up
  in_node ip route add "${POD_IP[$pod]}/32" dev "kv$n$ID"
done
# Strict reverse-path filtering, as many distributions ship: kubenat must keep it for the
# interfaces and put it back.
in_node sysctl -qw net.ipv4.conf.all.rp_filter=1

# --- servers and clients -----------------------------------------------------------------
cat > "$WORK/server.py" <<'EOF'
# Answers each TCP connection with "NAME PEER-ADDRESS" and closes it.
import socket, sys
name = sys.argv[1]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(64)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(f"{name} {peer[0]}\n".encode())
    c.close()
EOF
cat > "$WORK/client.py" <<'EOF'
# Connects COUNT times to HOST:PORT; prints each answer, or "refused"/"timeout"/the error.
import socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=3) as c:
            c.settimeout(3)
            print(c.recv(200).decode().strip(), flush=True)
    except ConnectionRefusedError:
        print(f"refused after {time.monotonic() - start:.3f}s", flush=True)
    except OSError as e:
        print(f"error {e}", flush=True)
EOF
for pod in wp1 wp2 ingress; do
  ip netns exec "$(pod_ns "$pod")" "$PY" -u "$WORK/server.py" "$pod" > "$WORK/$pod.log" 2>&1 &
  disown
done
for pod in wp1 wp2 ingress; do
  timeout 10 bash -c "until grep -q listening '$WORK/$pod.log'; do sleep 0.05; done" \
    || fail "server $pod did not start: $(cat "$WORK/$pod.log")"
done
client() { ip netns exec "$1" timeout 20 "$PY" -u "$WORK/client.py" "$2" "$3" "$4"; }

# Everything kubenat may touch, to compare before and after.
snapshot() {
  {
    in_node ip -d rule show
    # IPv4 only: IPv6 link-local addresses appear on their own as DAD completes.
    in_node ip -4 route show table all
    in_node ip -o link show | awk '{ print $2 }'
    for key in net.ipv4.ip_forward net.ipv4.conf.all.rp_filter net.ipv4.conf.all.accept_local; do
      in_node sysctl "$key"
    done
    for dev in $(in_node ls /proc/sys/net/ipv4/conf); do
      in_node sysctl "net.ipv4.conf.$dev.rp_filter"
    done
  } > "$1"
}
snapshot "$WORK/before"

start_run() {
  : > "$WORK/run.out"
  # Not through a function: $! must be kubenat's pid (`ip netns exec` execs it).
  ip netns exec "$NODE" "$KUBENAT" run "${CLUSTER[@]}" > "$WORK/run.out" 2> "$WORK/run.err" &
  RUN_PID=$!
  timeout 15 bash -c "until grep -q ready '$WORK/run.out'; do kill -0 $RUN_PID || exit 1; sleep 0.05; done" \
    || fail "kubenat run did not print ready: $(cat "$WORK/run.out" "$WORK/run.err")"
}

# --- kubenat run -------------------------------------------------------------------------
start_run
echo "live-run: $(cat "$WORK/run.out")" >&2

# ClusterIP wp-service 10.10.1.102:8080 -> both WordPress pods on :80, pod source kept.
client "$(pod_ns client)" 10.10.1.102 8080 8 > "$WORK/clusterip"
grep -qx "wp1 10.10.0.50" "$WORK/clusterip" || fail "ClusterIP never reached wp1: $(cat "$WORK/clusterip")"
grep -qx "wp2 10.10.0.50" "$WORK/clusterip" || fail "ClusterIP never reached wp2: $(cat "$WORK/clusterip")"
[ "$(grep -c '^wp[12] 10.10.0.50$' "$WORK/clusterip")" = 8 ] || fail "not every ClusterIP connection answered: $(cat "$WORK/clusterip")"

# NodePort nginx 30880 on the node's address, from the PC: masqueraded to the node's IP.
client "$PC" 192.168.0.101 30880 3 > "$WORK/nodeport"
[ "$(grep -cx 'ingress 192.168.0.101' "$WORK/nodeport")" = 3 ] \
  || fail "NodePort from the PC: $(cat "$WORK/nodeport")"

# A port wp-service does not serve: ICMP port unreachable, so "connection refused" at once.
client "$(pod_ns client)" 10.10.1.102 9999 1 > "$WORK/refused"
grep -Eq '^refused after 0\.[0-4]' "$WORK/refused" || fail "port 9999 not refused quickly: $(cat "$WORK/refused")"

# SIGINT: exit 0, everything as it was.
kill -INT "$RUN_PID"
STATUS=0
timeout 10 tail --pid="$RUN_PID" -f /dev/null || fail "kubenat run did not exit within 10 s of SIGINT"
wait "$RUN_PID" || STATUS=$?
RUN_PID=""
[ "$STATUS" = 0 ] || fail "kubenat run exited $STATUS after SIGINT: $(cat "$WORK/run.err")"
snapshot "$WORK/after"
diff -u "$WORK/before" "$WORK/after" >&2 || fail "SIGINT left the node changed (diff above)"

# SIGKILL: nothing restores, until --cleanup (twice: the second has nothing to do).
start_run
kill -KILL "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || true
RUN_PID=""
in_node "$KUBENAT" run --cleanup 2> "$WORK/cleanup1" || fail "--cleanup failed: $(cat "$WORK/cleanup1")"
grep -q " 0 changes" "$WORK/cleanup1" && fail "--cleanup after SIGKILL found nothing to undo"
in_node "$KUBENAT" run --cleanup 2> "$WORK/cleanup2" || fail "second --cleanup failed: $(cat "$WORK/cleanup2")"
grep -q " 0 changes" "$WORK/cleanup2" || fail "second --cleanup undid something: $(cat "$WORK/cleanup2")"
snapshot "$WORK/cleaned"
diff -u "$WORK/before" "$WORK/cleaned" >&2 || fail "--cleanup after SIGKILL left the node changed (diff above)"

echo "live-run: ok (ClusterIP to both endpoints, NodePort masqueraded, refused port, SIGINT restore, --cleanup after SIGKILL)" >&2
