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
# back; hairpin (a WordPress pod reaching itself through its Service, masqueraded); a UDP
# DNS query to kube-dns; a Service port that does not exist is refused at once; a pod
# started after kubenat is steered and reaches a ClusterIP; SIGUSR1
# prints the counters as JSON; SIGHUP applies an endpoint taken out of the re-read file
# while a connection to it stays open and working; SIGINT restores every rule, route,
# device and sysctl and exits 0; after SIGKILL, `--cleanup` restores them and is
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
PODS=(client wp1 wp2 ingress dns mariadb)
declare -A POD_IP=([client]=10.10.0.50 [wp1]=10.10.0.102 [wp2]=10.10.0.112 [ingress]=10.10.0.105 [dns]=10.10.0.10 [mariadb]=10.10.0.103)
declare -A POD_IP6=([client]=fd00:10::50 [wp1]=fd00:10::102 [wp2]=fd00:10::112 [ingress]=fd00:10::105 [dns]=fd00:10::10 [mariadb]=fd00:10::103)
WORK=$(mktemp -d)
# A copy, so that SIGHUP can be shown a change.
cp examples/miempresa/cluster.yaml "$WORK/cluster.yaml"
# Dual-stack: the pod network gains fd00:10::/48, and wp-service an IPv6 twin.
sed 's|^clusterCIDR: 10.10.0.0/16$|clusterCIDR: 10.10.0.0/16,fd00:10::/48|' \
  examples/miempresa/kube-proxy.yaml > "$WORK/kube-proxy.yaml"
grep -q 'fd00:10::/48' "$WORK/kube-proxy.yaml" || fail "could not make the KubeProxyConfiguration dual-stack"
cat > "$WORK/v6.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: wp-v6, namespace: default}
spec:
  clusterIP: fd00:10:1::102
  clusterIPs: [fd00:10:1::102]
  ipFamilies: [IPv6]
  ipFamilyPolicy: SingleStack
  ports: [{name: http, port: 8080, protocol: TCP, targetPort: 80}]
  selector: {app: wordpress}
  type: ClusterIP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
addressType: IPv6
metadata:
  name: wp-v6-abcde
  namespace: default
  labels: {kubernetes.io/service-name: wp-v6}
endpoints:
- addresses: [fd00:10::102]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: nodoa
- addresses: [fd00:10::112]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: nodob
ports: [{name: http, port: 80, protocol: TCP}]
EOF
CLUSTER=(--cluster "$WORK/cluster.yaml" --cluster "$WORK/v6.yaml" --cluster "$WORK/kube-proxy.yaml" --node nodoa)
RUN_PID=""

cleanup() {
  if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill -INT "$RUN_PID" 2>/dev/null || true
    timeout 5 tail --pid="$RUN_PID" -f /dev/null || kill -KILL "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  # A journal left by a failed step lives outside the namespace: undo it while it exists.
  ip netns exec "$NODE" "$KUBENAT" run --cleanup >/dev/null 2>&1 || true
  for ns in "$NODE" "$PC" $(for pod in "${PODS[@]}" late; do pod_ns "$pod"; done); do
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
  # IPv6 the same way: the gateway is fe80::1 on the node's side of the veth.
  ip netns exec "$ns" ip -6 addr add "${POD_IP6[$pod]}/128" dev "ke$n$ID" nodad
  in_node ip -6 addr add fe80::1/64 dev "kv$n$ID" nodad
  ip netns exec "$ns" ip -6 route add default via fe80::1 dev "ke$n$ID"
  in_node ip -6 route add "${POD_IP6[$pod]}/128" dev "kv$n$ID"
done
# Strict reverse-path filtering, as many distributions ship: kubenat must keep it for the
# interfaces and put it back.
in_node sysctl -qw net.ipv4.conf.all.rp_filter=1

# --- servers and clients -----------------------------------------------------------------
cat > "$WORK/server.py" <<'EOF'
# Answers each TCP connection with "NAME PEER-ADDRESS", then echoes what it gets until the
# peer closes; "bulk" instead gets 8 MiB and the end of the connection. IPv4 and IPv6.
import socket, sys, threading
name = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 80
def serve(c, peer):
    with c:
        c.sendall(f"{name} {peer[0].removeprefix('::ffff:')}\n".encode())
        while data := c.recv(200):
            if data == b"bulk\n":
                c.sendall(b"k" * (8 << 20))
                return
            c.sendall(data)
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", port))
s.listen(64)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
EOF
cat > "$WORK/dns.py" <<'EOF'
# A DNS server of one answer: every query gets its ID back with an A record, 10.10.0.102,
# whatever it asks (the test checks the path, not DNS); prints "listening" when bound.
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("listening", flush=True)
while True:
    query, peer = s.recvfrom(512)
    header = query[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
    answer = struct.pack(">HHHLH4s", 0xC00C, 1, 1, 30, 4, socket.inet_aton("10.10.0.102"))
    s.sendto(header + query[12:] + answer, peer)
EOF
cat > "$WORK/dig.py" <<'EOF'
# Asks HOST:53 for NAME's A record over UDP; prints "answer ADDRESS from SERVER" or the error.
import socket, struct, sys
host, name = sys.argv[1], sys.argv[2]
query = struct.pack(">HHHHHH", 0x4b4e, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
query += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(query, (host, 53))
try:
    reply, server = s.recvfrom(512)
    assert reply[:2] == query[:2], "the reply carries the query's ID"
    print(f"answer {socket.inet_ntoa(reply[-4:])} from {server[0]}", flush=True)
except OSError as e:
    print(f"error {e}", flush=True)
EOF
cat > "$WORK/hold.py" <<'EOF'
# Connects to HOST:PORT, prints the greeting, then keeps the connection open until FLAG
# exists (at most 20 s) and prints what one echo through it gives.
import os, socket, sys, time
host, port, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = socket.create_connection((host, port), timeout=3)
c.settimeout(3)
print(c.recv(200).decode().strip(), flush=True)
deadline = time.monotonic() + 20
while not os.path.exists(flag) and time.monotonic() < deadline:
    time.sleep(0.05)
try:
    c.sendall(b"ping\n")
    print("echo " + c.recv(200).decode().strip(), flush=True)
except OSError as e:
    print(f"error {e}", flush=True)
EOF
cat > "$WORK/bulk.py" <<'EOF'
# Asks HOST:PORT for its 8 MiB; prints "bulk BYTES" (all of them intact) or the error.
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
with socket.create_connection((host, port), timeout=5) as c:
    c.settimeout(5)
    c.recv(200)
    c.sendall(b"bulk\n")
    total, intact = 0, True
    while data := c.recv(1 << 16):
        total += len(data)
        intact = intact and data.count(b"k") == len(data)
    print(f"bulk {total}" if intact else "bulk corrupted", flush=True)
EOF
cat > "$WORK/not-ready.py" <<'EOF'
# Marks the endpoint ADDRESS of the manifests in FILE not ready, as the API server would
# once its pod stops being ready.
import re, sys
path, address = sys.argv[1], sys.argv[2]
text = open(path).read()
pattern = r"(- " + re.escape(address) + r"\n\s+conditions:\n\s+ready: )true"
changed = re.sub(pattern, r"\1false", text)
assert changed != text, "the endpoint's ready condition was not found"
open(path, "w").write(changed)
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
ip netns exec "$(pod_ns dns)" "$PY" -u "$WORK/dns.py" > "$WORK/dns.log" 2>&1 &
disown
ip netns exec "$(pod_ns mariadb)" "$PY" -u "$WORK/server.py" mariadb 3306 > "$WORK/mariadb.log" 2>&1 &
disown
for pod in wp1 wp2 ingress dns mariadb; do
  timeout 10 bash -c "until grep -q listening '$WORK/$pod.log'; do sleep 0.05; done" \
    || fail "server $pod did not start: $(cat "$WORK/$pod.log")"
done
client() { ip netns exec "$1" timeout 20 "$PY" -u "$WORK/client.py" "$2" "$3" "$4"; }

# Everything kubenat may touch, to compare before and after.
snapshot() {
  {
    in_node ip -d rule show
    in_node ip -6 -d rule show
    in_node ip -6 route show table all | grep -E 'table 2750[12]' || true
    in_node sysctl net.ipv6.conf.all.forwarding
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

# The node itself to a ClusterIP: its service range is routed into the TUN from lo.
client "$NODE" 10.10.1.102 8080 2 > "$WORK/local-clusterip"
[ "$(grep -c '^wp[12] ' "$WORK/local-clusterip")" = 2 ] \
  || fail "ClusterIP from the node itself: $(cat "$WORK/local-clusterip")"

# The node itself to its own NodePort: steered from lo, DNATed to the ingress pod.
client "$NODE" 192.168.0.101 30880 2 > "$WORK/local-nodeport"
[ "$(grep -c '^ingress ' "$WORK/local-nodeport")" = 2 ] \
  || fail "NodePort sent by the node itself: $(cat "$WORK/local-nodeport")"

# A port wp-service does not serve: ICMP port unreachable, so "connection refused" at once.
client "$(pod_ns client)" 10.10.1.102 9999 1 > "$WORK/refused"
grep -Eq '^refused after 0\.[0-4]' "$WORK/refused" || fail "port 9999 not refused quickly: $(cat "$WORK/refused")"

# IPv6: wp-service's IPv6 twin reaches both WordPress pods, pod source kept.
client "$(pod_ns client)" fd00:10:1::102 8080 6 > "$WORK/clusterip6"
grep -qx "wp1 fd00:10::50" "$WORK/clusterip6" || fail "IPv6 ClusterIP never reached wp1: $(cat "$WORK/clusterip6")"
grep -qx "wp2 fd00:10::50" "$WORK/clusterip6" || fail "IPv6 ClusterIP never reached wp2: $(cat "$WORK/clusterip6")"

# WordPress to MariaDB, as in the notes: mariadb-service 10.10.1.101:3307 -> the pod's 3306.
client "$(pod_ns wp1)" 10.10.1.101 3307 2 > "$WORK/mariadb"
[ "$(grep -cx 'mariadb 10.10.0.102' "$WORK/mariadb")" = 2 ] \
  || fail "WordPress to mariadb-service: $(cat "$WORK/mariadb")"

# Bulk TCP through a ClusterIP: the kernel hands kubenat 64 KiB GSO super-packets with
# partial checksums (the TUN's offloads), which must leave with the NAT applied and come out
# as intact segments at both ends.
ip netns exec "$(pod_ns client)" timeout 20 "$PY" -u "$WORK/bulk.py" 10.10.1.102 8080 > "$WORK/bulk" 2>&1
grep -qx "bulk 8388608" "$WORK/bulk" || fail "8 MiB through the ClusterIP: $(cat "$WORK/bulk")"

# Hairpin: a WordPress pod through its own Service; when round robin sends it to itself,
# it sees the node's address (masqueraded), and the reply still finds its way back.
client "$(pod_ns wp1)" 10.10.1.102 8080 6 > "$WORK/hairpin"
grep -qx "wp1 192.168.0.101" "$WORK/hairpin" || fail "hairpin to itself not masqueraded: $(cat "$WORK/hairpin")"
grep -qx "wp2 10.10.0.102" "$WORK/hairpin" || fail "wp1 never reached wp2 unmasqueraded: $(cat "$WORK/hairpin")"

# UDP DNS: kube-dns's cluster IP 10.10.1.10:53 to the DNS pod, the answer back from the
# Service's address.
ip netns exec "$(pod_ns client)" timeout 10 "$PY" -u "$WORK/dig.py" 10.10.1.10 wp-service.default.svc.cluster.local > "$WORK/dig"
grep -qx "answer 10.10.0.102 from 10.10.1.10" "$WORK/dig" || fail "UDP DNS through kube-dns: $(cat "$WORK/dig")"

# A pod started after kubenat: its veth is steered as soon as it appears (the kernel says so
# over netlink), so its connections to a ClusterIP are translated like the others'. Gone
# again before the exit checks, as a deleted pod's veth goes.
LATE=$(pod_ns late)
ip netns add "$LATE"
ip link add "kx$ID" netns "$LATE" type veth peer name "kw$ID" netns "$NODE"
timeout 5 bash -c "until grep -q 'steering kw$ID' '$WORK/run.err'; do sleep 0.05; done" \
  || fail "the veth of a pod started after kubenat was not steered: $(cat "$WORK/run.err")"
ip netns exec "$LATE" ip link set lo up
ip netns exec "$LATE" ip addr add 10.10.0.60/32 dev "kx$ID"
ip netns exec "$LATE" ip link set "kx$ID" up
ip netns exec "$LATE" ip route add 169.254.1.1 dev "kx$ID"
ip netns exec "$LATE" ip route add default via 169.254.1.1 dev "kx$ID"
in_node ip addr add 169.254.1.1/32 dev "kw$ID"
in_node ip link set "kw$ID" up
in_node ip route add 10.10.0.60/32 dev "kw$ID"
client "$LATE" 10.10.1.102 8080 4 > "$WORK/late"
[ "$(grep -c '^wp[12] 10.10.0.60$' "$WORK/late")" = 4 ] \
  || fail "ClusterIP from a pod started after kubenat: $(cat "$WORK/late")"
ip netns del "$LATE"

# SIGUSR1: one JSON line of counters on stderr.
kill -USR1 "$RUN_PID"
timeout 5 bash -c "until grep -q '\"verdicts\"' '$WORK/run.err'; do sleep 0.05; done" \
  || fail "no counters after SIGUSR1: $(cat "$WORK/run.err")"
grep '"verdicts"' "$WORK/run.err" | tail -1 | "$PY" -c '
import json, sys
stats = json.loads(sys.stdin.read())
assert stats["verdicts"]["translated"] > 0, stats
assert stats["packets_in"] > 0 and stats["packets_out"] > 0, stats
assert stats["connections"] > 0 and stats["conntrack_max"] > 0, stats
assert "packets_in_per_second" in stats and "drop_reasons" in stats, stats
' || fail "the SIGUSR1 counters are not as expected: $(grep verdicts "$WORK/run.err" | tail -1)"

# SIGHUP: the endpoint a connection is open to leaves the re-read file (not ready); the
# open connection keeps working, new ones go to the other endpoint only.
ip netns exec "$(pod_ns client)" timeout 30 "$PY" -u "$WORK/hold.py" 10.10.1.102 8080 "$WORK/flag" > "$WORK/held" &
HOLD_PID=$!
timeout 5 bash -c "until [ -s '$WORK/held' ]; do sleep 0.05; done" || fail "the held connection never opened"
HELD=$(cut -d' ' -f1 "$WORK/held")
case "$HELD" in
  wp1) GONE=10.10.0.102; STAYS=wp2 ;;
  wp2) GONE=10.10.0.112; STAYS=wp1 ;;
  *) fail "held: $(cat "$WORK/held")" ;;
esac
"$PY" "$WORK/not-ready.py" "$WORK/cluster.yaml" "$GONE" || fail "could not edit the cluster file"
kill -HUP "$RUN_PID"
timeout 5 bash -c "until grep -q 'SIGHUP: [1-9][0-9]* changes applied' '$WORK/run.err'; do sleep 0.05; done" \
  || fail "SIGHUP was not applied: $(cat "$WORK/run.err")"
client "$(pod_ns client)" 10.10.1.102 8080 4 > "$WORK/after-hup"
[ "$(grep -cx "$STAYS 10.10.0.50" "$WORK/after-hup")" = 4 ] \
  || fail "after SIGHUP new connections still reach $HELD: $(cat "$WORK/after-hup")"
touch "$WORK/flag"
wait "$HOLD_PID" || true
grep -qx "echo ping" "$WORK/held" || fail "the connection open across SIGHUP broke: $(cat "$WORK/held")"

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

echo "live-run: ok (ClusterIP to both endpoints over IPv4 and IPv6, WordPress to MariaDB, NodePort masqueraded, ClusterIP and NodePort from the node itself, refused port, bulk TCP with offloads, hairpin, UDP DNS, a pod started after kubenat, SIGUSR1 counters, SIGHUP with an open connection, SIGINT restore, --cleanup after SIGKILL)" >&2
