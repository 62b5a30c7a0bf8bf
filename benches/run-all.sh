#!/usr/bin/env bash
# Reproduces every figure of docs/benchmarks.md: `kubenat bench` at 1k to 1M services with
# 1 and 2 threads, the kernel comparison (benches/kernel.sh, needs root), the criterion
# benches, then the plots (docs/img/*.svg). Results go to benches/results/, named by date;
# the plot command takes the newest of each.
#
#   benches/run-all.sh                        # everything (about half an hour on 2 cores)
#   SIZES="1000 10000" KERNEL=0 CRITERION=0 benches/run-all.sh
#
# Environment: SIZES (services, default "1000 10000 100000 1000000"), THREADS (default
# "1 2"; on the 16-core device use "1 2 4 8 16"), FLOWS (live connections per run, default
# 1000000), KERNEL=0 / CRITERION=0 to skip those parts, KERNEL_SIZES (default "1000 10000
# 100000").
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"1000 10000 100000 1000000"}
THREADS=${THREADS:-"1 2"}
FLOWS=${FLOWS:-1000000}
DATE=$(date -u +%Y-%m-%d)
RESULTS=benches/results
mkdir -p "$RESULTS"
LOG=$RESULTS/run-all-$DATE.txt

cargo build --release -q -p kubenat -p kubenat-benches
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # Results (this log among them) are rewritten by the run itself: not a change to the code.
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet -- . ':!benches/results' ':!docs/img' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB, kernel $(uname -r)"
  echo "rustc: $(rustc --version)"
} | tee "$LOG"

bench() { # services flows threads
  local out=$RESULTS/kubenat-$DATE-s$1-f$2-t$3.json
  local cmd="target/release/kubenat bench --services $1 --endpoints 4 --flows $2 --threads $3 --output json"
  echo "$cmd > $out" | tee -a "$LOG"
  $cmd > "$out"
}
for N in $SIZES; do
  for T in $THREADS; do
    bench "$N" "$FLOWS" "$T"
  done
done
# "More with few": the smallest size with as many connections as services.
FIRST=${SIZES%% *}
bench "$FIRST" "$FIRST" 1

if [ "${KERNEL:-1}" != 0 ]; then
  echo "KERNEL_SIZES=\"${KERNEL_SIZES:-1000 10000 100000}\" benches/kernel.sh" | tee -a "$LOG"
  KERNEL_SIZES=${KERNEL_SIZES:-"1000 10000 100000"} OUT=$RESULTS/kernel-$DATE.json benches/kernel.sh 2>&1 | tee -a "$LOG"
fi

if [ "${CRITERION:-1}" != 0 ]; then
  CRIT_SIZES=$(echo "$SIZES" | tr ' ' ',')
  echo "KUBENAT_BENCH_SIZES=$CRIT_SIZES cargo bench -p kubenat-benches" | tee -a "$LOG"
  KUBENAT_BENCH_SIZES=$CRIT_SIZES cargo bench -q -p kubenat-benches 2>&1 | tee "$RESULTS/criterion-$DATE.txt"
fi

echo "target/release/plot $RESULTS docs/img" | tee -a "$LOG"
target/release/plot "$RESULTS" docs/img
