#!/usr/bin/env bash
# bench/daemon/run.sh — every daemon measurement of BENCHMARKS.md "Daemon (issue 5)", in
# the order the section lists them, logged to target/bench-daemon/results-<UTC>.txt.
#
#   bash bench/daemon/run.sh              # RUNS=3 runs of each
#   RUNS=1 bash bench/daemon/run.sh       # quicker
#   DIAG=0 bash bench/daemon/run.sh       # without the diagnostic runs (latency and
#                                         # RSS variants that show what dominates)
#
# Builds the bench binary (bench profile = release; cargo builds labeld and labelctl
# with it), prints the machine and `uptime` before every step, then runs
# bench/daemon/main.rs's scenarios and bench/daemon/cli_vs_lp.sh (needs the `cups`
# package). Takes about 12 minutes. Other load on the machine changes every number
# here: read the load lines in the log.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
DIAG=${DIAG:-1}
OUT=target/bench-daemon
mkdir -p "$OUT"
LOG=$OUT/results-$(date -u +%Y%m%dT%H%M%SZ).txt

BIN=$(cargo bench --bench daemon --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "daemon" and m.get("executable"):
        print(m["executable"])' | tail -1)
[ -x "$BIN" ] || { echo "could not build the daemon bench" >&2; exit 1; }

{
  echo "# labeld daemon benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)') $(git status --porcelain 2>/dev/null | grep -q . && echo '(dirty)')"
  echo "nproc: $(nproc); $(grep -m1 'model name' /proc/cpuinfo); kernel $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "disk: $(df -h "${TMPDIR:-/tmp}" | tail -1)"
  step() { echo; echo "## $*"; echo "uptime: $(uptime)"; }
  step fsync;       "$BIN" fsync --count 500
  step accept ipc;  "$BIN" accept --runs "$RUNS" --clients 1,8,32 --window 32 --jobs 20000
  step accept tcp;  "$BIN" accept --runs 1 --clients 8 --window 32 --jobs 20000 --endpoint tcp
  step print;       "$BIN" print --runs "$RUNS" --labels 10000 --accepting 0,4
  step latency;     "$BIN" latency --runs "$RUNS" --rate 500 --clients 10 --seconds 20 \
                      --to zpl-file --background 30000 --probe 1
  step first-byte;  "$BIN" first-byte --runs "$RUNS" --jobs 200 --confirm both
  step rss;         "$BIN" rss --labels 100000 --batch 10000
  step cli-vs-lp;   RUNS=$RUNS bash bench/daemon/cli_vs_lp.sh
  if [ "$DIAG" = 1 ]; then
    step "diag: latency, submits to a paused printer, nothing printing"
    "$BIN" latency --runs "$RUNS" --to held --background 0 --probe 1
    step "diag: latency, submits to a paused printer, file printer printing"
    "$BIN" latency --runs "$RUNS" --to held --background 30000 --probe 1
    step "diag: latency, file printer printing to /dev/shm (its fsyncs off the spool's disk)"
    "$BIN" latency --runs "$RUNS" --to zpl-file --background 30000 --probe 1 --printer-dir /dev/shm
    step "diag: rss, resident memory by mapping"
    SMAPS=1 "$BIN" rss --labels 30000 --batch 10000
    step "diag: rss, 10,000-record batches accepted only (printer paused)"
    "$BIN" rss --labels 30000 --batch 10000 --print 0
    step "diag: rss, 1,000-record batches printed"
    "$BIN" rss --labels 20000 --batch 1000
    step "diag: rss, MALLOC_ARENA_MAX=1 (one glibc malloc arena)"
    MALLOC_ARENA_MAX=1 "$BIN" rss --labels 30000 --batch 10000
  fi
  echo; echo "uptime at the end: $(uptime)"
} 2>&1 | tee "$LOG"
echo "log: $LOG"
