#!/usr/bin/env bash
# bench/labels/run.sh — every label benchmark of BENCHMARKS.md "Labels: bytes on the wire and
# render time (issue 3)", in one go, into target/bench-labels/results-<UTC time>.txt:
#   1. bench/labels/bytes.sh       bytes on the wire per language / encoding / dpi (+ targets)
#   2. cargo bench --bench labels  divan, pinned with taskset: job JSON -> bytes per label, and
#                                  the stage split (layout, render, verify, encode); RUNS times
#   3. bench/labels/vs_cups.sh     labeld vs CUPS rastertolabel on the same 812 x 1218 bitmap
#
# Needs what those need (bench/cups/setup.sh run once; python3, perf, taskset, bc).
# Knobs: RUNS (2, divan runs), BENCH_CPU (0), and the knobs of the scripts above.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p target/bench-labels
LOG=target/bench-labels/results-$(date -u +%Y%m%dT%H%M%SZ).txt
CPU=${BENCH_CPU:-0}
{
  echo "# bytes"
  bash bench/labels/bytes.sh
  cargo bench --bench labels --no-run -q 2>/dev/null || cargo bench --bench labels --no-run
  for run in $(seq "${RUNS:-2}"); do
    echo; echo "# divan, run $run ($(date -u +%H:%M:%SZ))"
    taskset -c "$CPU" cargo bench -q --bench labels 2>&1
  done
  echo; echo "# same bitmap as CUPS"
  bash bench/labels/vs_cups.sh
} 2>&1 | tee "$LOG"
echo "saved $LOG"
