# The wire the forwarding benches measure on, sourced by kernel.sh, live.sh and live-spike.sh:
# three fresh namespaces, client 192.0.2.1 -- veth -- router 192.0.2.2 / 198.51.100.1 --
# veth -- sink 198.51.100.2 (forwarding off: it drops what it gets, and the router's
# tx_packets on that veth count what was forwarded). Neighbours are static, so no ARP runs
# during a measurement; the router forwards, with no reverse-path check on the client's
# spoofed sources. The caller adds the router's route towards the sink.
#
#   make_wire ROUTER CLIENT SINK CLIENT_IF ROUTER_IN_IF SINK_IF ROUTER_OUT_IF
make_wire() {
  local router=$1 client=$2 sink=$3 client_if=$4 router_in=$5 sink_if=$6 router_out=$7 ns
  for ns in "$router" "$client" "$sink"; do
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
  done
  ip link add "$client_if" netns "$client" type veth peer name "$router_in" netns "$router"
  ip link add "$sink_if" netns "$sink" type veth peer name "$router_out" netns "$router"
  ip netns exec "$client" ip addr add 192.0.2.1/30 dev "$client_if"
  ip netns exec "$client" ip link set "$client_if" up
  ip netns exec "$client" ip route add default via 192.0.2.2
  ip netns exec "$sink" ip addr add 198.51.100.2/30 dev "$sink_if"
  ip netns exec "$sink" ip link set "$sink_if" up
  ip netns exec "$sink" sysctl -qw net.ipv4.ip_forward=0
  ip netns exec "$router" ip addr add 192.0.2.2/30 dev "$router_in"
  ip netns exec "$router" ip addr add 198.51.100.1/30 dev "$router_out"
  ip netns exec "$router" ip link set "$router_in" up
  ip netns exec "$router" ip link set "$router_out" up
  ip netns exec "$router" ip neigh replace 198.51.100.2 dev "$router_out" nud permanent \
    lladdr "$(ip netns exec "$sink" cat /sys/class/net/"$sink_if"/address)"
  ip netns exec "$client" ip neigh replace 192.0.2.2 dev "$client_if" nud permanent \
    lladdr "$(ip netns exec "$router" cat /sys/class/net/"$router_in"/address)"
  ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$router" sysctl -qw net.ipv4.conf.all.rp_filter=0
  ip netns exec "$router" sysctl -qw net.ipv4.conf.default.rp_filter=0
  ip netns exec "$router" sysctl -qw "net.ipv4.conf.$router_in.rp_filter=0"
}
