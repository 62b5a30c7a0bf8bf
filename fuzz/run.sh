#!/usr/bin/env bash
# Runs one fuzz target for a set time on stable Rust (no sanitizer), one job:
#
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
#
# TARGET: packet_fixed, packet_cluster, manifest or replay. Needs cargo-fuzz
# (`cargo install cargo-fuzz`). It starts from the committed seeds (fuzz/corpus/TARGET,
# read only) and what earlier runs found (fuzz/work/TARGET, not committed); crashes go to
# fuzz/artifacts/TARGET. The log, with libFuzzer's cov/ft figures and the executions, is
# fuzz/logs/TARGET-<date>.log.
# Stop a run (Ctrl-C, SIGTERM) rather than pause it: -timeout counts wall-clock time, so the
# input in flight when a paused fuzzer resumes is reported as a timeout.
# See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
shift 2
case "$target" in
  manifest) max_len=8192 ;;
  replay) max_len=4096 ;;
  *) max_len=1024 ;;
esac
mkdir -p logs "work/$target"
log="logs/$target-$(date +%Y%m%d-%H%M%S).log"
cargo fuzz run -s none -O "$target" "work/$target" "corpus/$target" -- \
  -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 "$@" 2>&1 | tee "$log"
