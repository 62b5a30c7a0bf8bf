#!/usr/bin/env bash
# Which slow batches are the engine's and which the machine's: runs `kubenat bench` RUNS
# times with the same arguments (so the same packets in the same batches), lines the runs up
# batch by batch (`--batch-times`) and reports, per phase, the slowest batch of each run and
# the slowest batch position once each position takes its fastest (min) or its middle
# (lower median) time over the runs. A batch slow by its own work (a growth, a fault it
# takes) is slow in every run; one slowed by an interrupt or by the host taking the virtual
# CPU away is slow in one run and not in the others.
#
#   benches/batch-floor.sh 8 --services 1000000 --flows 1000000 --updates 1000
#   KUBENAT=/tmp/other/kubenat OUT=/tmp/runs benches/batch-floor.sh 4 --services 100000
#   benches/batch-floor.sh --files run-1.csv run-2.csv ...   # runs already written
#
# Environment: KUBENAT (the binary, default target/release/kubenat), OUT (where each run's
# CSV and JSON report go, default a new temporary folder, printed).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == --files ]]; then
  shift
  files=("$@")
else
  runs=${1:?usage: benches/batch-floor.sh RUNS [kubenat bench arguments] | --files CSV...}
  shift
  kubenat=${KUBENAT:-target/release/kubenat}
  out=${OUT:-$(mktemp -d /tmp/batch-floor.XXXXXX)}
  mkdir -p "$out"
  echo "runs in $out: $kubenat bench $*"
  files=()
  for k in $(seq "$runs"); do
    "$kubenat" bench "$@" --batch-times "$out/run-$k.csv" -o json > "$out/run-$k.json"
    files+=("$out/run-$k.csv")
    # The machine's pauses in the same run: how many a phase of that length meets.
    pauses=$(tr -d ' \n' < "$out/run-$k.json" | grep -o '"machine_pauses":{[^}]*}')
    echo "run $k: ${pauses#\"machine_pauses\":}"
  done
fi

# Per position: its fastest and its middle time over the runs ("P phase index min median"); per
# run: its slowest batch ("R phase slowest"). Sorted by phase and middle time, then summed up
# (mawk has no sort of its own).
awk -F, '
  FNR == 1 { run++; next }
  {
    key = $1 SUBSEP $2
    value[key, run] = $3
    if (!(key in seen)) { seen[key] = 1; positions[$1]++ }
    if ($3 > slowest[$1, run]) slowest[$1, run] = $3
    if ($4 > 0) grew[$1]++
  }
  END {
    for (key in seen) {
      split(key, part, SUBSEP)
      m = 0
      for (r = 1; r <= run; r++) if ((key, r) in value) times[++m] = value[key, r]
      for (i = 2; i <= m; i++) { t = times[i]; for (j = i - 1; j >= 1 && times[j] > t; j--) times[j + 1] = times[j]; times[j + 1] = t }
      print "P", part[1], part[2], times[1], times[int((m + 1) / 2)]
    }
    for (key in slowest) { split(key, part, SUBSEP); print "R", part[1], slowest[key], grew[part[1]] + 0 }
  }' "${files[@]}" | sort -k2,2 -k1,1 -k5,5n -k3,3n | awk '
  function us(ns) { return sprintf("%.1f", ns / 1000) }
  function flush(    i, j, t) {
    if (phase == "") return
    for (i = 2; i <= runs; i++) { t = slow[i]; for (j = i - 1; j >= 1 && slow[j] > t; j--) slow[j + 1] = slow[j]; slow[j + 1] = t }
    printf "%-19s %4d %8d  %10s %10s %10s  %10s %7s  %10s %7s  %10s  %6d\n", phase, runs, count, us(slow[1]), us(slow[int((runs + 1) / 2)]), us(slow[runs]), us(worst_min), "#" at_min, us(median[count]), "#" at_median, us(median[int((count - 1) * 0.99 + 0.5) + 1]), grew
  }
  BEGIN {
    print "Times in us. Slowest batch of each run (fastest run, median run, slowest run); the slowest"
    print "position once each takes its fastest time over the runs, and once each takes its median"
    print "(with its index); the p99 of the positions at their median; batches, over all runs, in"
    print "which the connection tables took fresh memory themselves (the helper late, or none)."
    printf "%-19s %4s %8s  %10s %10s %10s  %18s  %18s  %10s  %6s\n", "phase", "runs", "batches", "fastest", "median", "slowest", "slowest at fastest", "slowest at median", "p99 median", "grew"
  }
  $2 != phase { flush(); phase = $2; runs = 0; count = 0; worst_min = 0 }
  $1 == "P" { median[++count] = $5; at_median = $3; if ($4 + 0 > worst_min) { worst_min = $4; at_min = $3 } }
  $1 == "R" { slow[++runs] = $3; grew = $4 }
  END { flush() }'
