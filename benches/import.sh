#!/usr/bin/env bash
# The import figures of docs/benchmarks.md ("Importing real dumps"): dumps as kubectl prints
# them, imported in interleaved rounds; wall, user and system seconds and peak RSS per run.
#
#   benches/import.sh [DIR] [ROUNDS]     # DIR holds the dumps (about 14 GB at 1M), default /tmp/kubenat-import
#
# Needs root for `unshare -n nft -f` (the kernel's load of 1k Services); skipped without nft.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/kubenat-import}
ROUNDS=${2:-3}
mkdir -p "$DIR"
cargo build --release -p kubenat -p kubenat-benches --bin dump --bin kernel-rules
cargo build --release -p kubenat --example import
BIN=$PWD/target/release
for spec in "100000 yaml-documents" "1000000 json" "1000000 yaml-documents" "1000000 yaml"; do
  set -- $spec
  [ -s "$DIR/s$1.$2" ] || "$BIN/dump" --services "$1" --format "$2" > "$DIR/s$1.$2"
done
printf 'apiVersion: v1\nkind: Node\nmetadata:\n  name: node-0\nstatus:\n  addresses:\n  - type: InternalIP\n    address: 192.168.0.1\n' > "$DIR/nodes.yaml"
"$BIN/kernel-rules" --services 1000 --format nft > "$DIR/k1k.nft" 2>/dev/null
cd "$DIR"
for f in s100000.yaml-documents s1000000.json s1000000.yaml-documents s1000000.yaml; do cat "$f" > /dev/null; done
for run in $(seq "$ROUNDS"); do
  if command -v nft > /dev/null; then
    /usr/bin/time -f "nft-1k run$run wall %e user %U sys %S" unshare -n nft -f k1k.nft
  fi
  /usr/bin/time -f "trace-100k-yaml-docs run$run wall %e user %U sys %S rss_kb %M" \
    "$BIN/kubenat" trace --cluster s100000.yaml-documents --cluster nodes.yaml --node node-0 \
    --src 10.1.1.1 --dst 172.16.0.5:80 > /dev/null
  for f in s1000000.json s1000000.yaml-documents s1000000.yaml; do
    /usr/bin/time -f "import-$f run$run wall %e user %U sys %S rss_kb %M" "$BIN/examples/import" "$f"
  done
done
