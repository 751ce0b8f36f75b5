#!/usr/bin/env bash
# bench/labels/vs_cups.sh — labeld's ZPL driver and CUPS's rastertolabel on the same bitmap,
# bytes and CPU time, in the same run.
#
# 1. Builds the `labels` bench binary (benches/labels.rs + bench/labels/zpl_from_png.rs) and
#    renders the issue's example job (examples/jobs/address-4x6.json) to a 1-bit PNG for a
#    ZPL profile at exactly 203 dpi, 812 dots wide: the 812 x 1218 page CUPS makes of a
#    4x6 in label at 203 dpi (labeld's generic zpl-203 is 203.2 dpi, 813 x 1219).
# 2. Runs bench/cups/run.sh on that PNG (CUPS's own table: bytes, CPU for N=1 and N=LABELS,
#    its ~DG output decoded back and compared with the PNG by check_zpl.py).
# 3. Interleaved head-to-head, REPS rounds, each round timing in turn (perf stat task-clock
#    = user+sys CPU of the process, pinned to BENCH_CPU, stdout and stderr to pipes):
#      cups N=1, cups N=LABELS        rastertolabel on the raster of the PNG (run.sh's input)
#      labeld N=1, labeld N=LABELS    `labels --zpl-from-png PNG --labels N`: the PNG read
#                                     once, then N x Zpl::write_page (auto encoding)
#      job N=1, job N=LABELS          `labels --job-to-zpl --labels N`: job JSON -> ZPL N
#                                     times (layout, text, IMb, verify, encode)
#    and reports medians, total/N and the marginal cost (T(N) - T(1)) / (N - 1), which
#    leaves out process start-up (CUPS: PPD parsing; labeld: PNG decoding).
# 4. The in-process numbers (this thread's CPU time over the loop, schedstat) for every
#    ZPL encoding on the PNG and for job -> ZPL; every output decoded back by
#    bench/labels/check_gf.py and compared with the PNG dot for dot.
#
# Needs: bench/cups/setup.sh run once (cups, cups-ppdc, the PPD, perf), python3, taskset, bc.
# Knobs: LABELS (100), REPS (11), BENCH_CPU (0), OUT (target/bench-labels/vs-cups),
#        PPD (target/bench-cups/ppd/zebra.ppd), LABELD_REV (the revision printed).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/../.."
ROOT=$PWD
LABELS=${LABELS:-100}; REPS=${REPS:-11}; CPU=${BENCH_CPU:-0}
OUT=${OUT:-target/bench-labels/vs-cups}
PNG=target/bench-labels/labeld-address-203.png
FILTER=/usr/lib/cups/filter/rastertolabel
PPD=$(realpath -m "${PPD:-$ROOT/target/bench-cups/ppd/zebra.ppd}")
mkdir -p "$OUT"
[ -x "$FILTER" ] && [ -f "$PPD" ] || { echo "run bench/cups/setup.sh first" >&2; exit 1; }
perf stat -x, -e task-clock -o /dev/null true 2>/dev/null || { echo "needs perf (linux-perf)" >&2; exit 1; }

BIN=$(cargo bench --bench labels --no-run --message-format=json 2> "$OUT/build.log" |
      python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "labels" and m.get("executable"):
        print(m["executable"])') || true
[ -x "$BIN" ] || { tail -20 "$OUT/build.log" >&2; echo "could not build the labels bench" >&2; exit 1; }
echo "## machine"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), nproc $(nproc), $(uname -r), pinned to cpu $CPU"
echo "labeld ${LABELD_REV:-$(git describe --always --dirty 2>/dev/null || echo unknown)}, $(rustc --version), bench binary $BIN"
echo "cups $(dpkg-query -W -f='${Version}' cups), $(date -u +%Y-%m-%dT%H:%MZ)"

echo; echo "## 1. the bitmap"
"$BIN" --cups-png "$PNG"
md5sum "$PNG"

echo; echo "## 2. bench/cups/run.sh (CUPS alone)"
PPD=$PPD REPS=$REPS BENCH_CPU=$CPU bash bench/cups/run.sh "$PNG" 203 "$LABELS"
RAS=$ROOT/target/bench-cups/run-labeld-address-203-v3-pipe

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# timed NAME N CMD...: CMD pinned under perf stat, stdout -> $OUT/NAME-N.out, stderr ->
# $OUT/NAME-N.err (both through pipes); appends the task-clock ms to $OUT/NAME-N.ms.
timed() {
  local name=$1 n=$2; shift 2
  { taskset -c "$CPU" perf stat -x, -e task-clock -o "$OUT/perf.txt" -- "$@" 2>&1 1>&3 |
      cat > "$OUT/$name-$n.err"; } 3>&1 | cat > "$OUT/$name-$n.out"
  awk -F, '/task-clock/ {print $1}' "$OUT/perf.txt" >> "$OUT/$name-$n.ms"
}
cups()   { timed cups "$1" env -i PATH=/usr/bin:/bin LANG=C PPD="$PPD" "$FILTER" 1 bench "label bench" 1 "" < "$RAS/in-$1.ras"; }
labeld() { timed labeld "$1" "$BIN" --zpl-from-png "$PNG" --labels "$1"; }
job()    { timed job "$1" "$BIN" --job-to-zpl --labels "$1"; }

echo; echo "## 3. head to head, interleaved, $REPS rounds (perf stat task-clock, ms)"
rm -f "$OUT"/*.ms
for n in 1 "$LABELS"; do cups "$n"; labeld "$n"; job "$n"; rm -f "$OUT"/*-"$n".ms; done  # warm-up
for _ in $(seq "$REPS"); do
  for n in 1 "$LABELS"; do cups "$n"; labeld "$n"; job "$n"; done
done
python3 bench/cups/check_zpl.py "$OUT/cups-$LABELS.out" "$PNG" | sed 's/^/  cups check: /'
python3 bench/labels/check_gf.py "$OUT/labeld-$LABELS.out" "$PNG" | sed 's/^/  labeld check: /'
python3 bench/labels/check_gf.py "$OUT/job-$LABELS.out" "$PNG" | sed 's/^/  job check: /'
printf '\n| what | bytes/label | T(1) ms, median (min-max) | T(%d) ms, median (min-max) | ms/label, T(%d)/%d | marginal ms/label |\n' "$LABELS" "$LABELS" "$LABELS"
printf '|---|---:|---:|---:|---:|---:|\n'
declare -A MARG BYTES
for name in cups labeld job; do
  t1=$(median < "$OUT/$name-1.ms"); tn=$(median < "$OUT/$name-$LABELS.ms")
  r1=$(sort -g "$OUT/$name-1.ms" | sed -n '1p;$p' | paste -sd-)
  rn=$(sort -g "$OUT/$name-$LABELS.ms" | sed -n '1p;$p' | paste -sd-)
  BYTES[$name]=$(echo "$(stat -c %s "$OUT/$name-$LABELS.out") / $LABELS" | bc -l)
  MARG[$name]=$(echo "($tn - $t1) / ($LABELS - 1)" | bc -l)
  label=$name
  case $name in
    cups) label="CUPS rastertolabel (raster in)" ;;
    labeld) label="labeld Zpl::write_page (PNG in, auto)" ;;
    job) label="labeld job JSON -> ZPL (render_job)" ;;
  esac
  printf '| %s | %.0f | %.2f (%s) | %.2f (%s) | %.3f | %.3f |\n' "$label" "${BYTES[$name]}" \
    "$t1" "$r1" "$tn" "$rn" "$(echo "$tn / $LABELS" | bc -l)" "${MARG[$name]}"
done
printf '\nbytes labeld / CUPS: %.3f (target <= 0.45); marginal CPU labeld encode / CUPS: %.2f; job -> ZPL marginal %.3f ms (target <= 0.5)\n' \
  "$(echo "${BYTES[labeld]} / ${BYTES[cups]}" | bc -l)" "$(echo "${MARG[labeld]} / ${MARG[cups]}" | bc -l)" "${MARG[job]}"

echo; echo "## 4. in process, $LABELS labels, each ZPL encoding (thread CPU time, schedstat)"
for enc in auto hex run-length z64; do
  taskset -c "$CPU" "$BIN" --zpl-from-png "$PNG" --labels "$LABELS" --encoding "$enc" \
    2> "$OUT/inproc-$enc.err" | cat > "$OUT/inproc-$enc.zpl"
  grep -v '^target' "$OUT/inproc-$enc.err"
  python3 bench/labels/check_gf.py "$OUT/inproc-$enc.zpl" "$PNG" | sed 's/^/  check: /'
done
taskset -c "$CPU" "$BIN" --job-to-zpl --labels "$LABELS" --png "$PNG" 2> "$OUT/inproc-job.err" |
  cat > "$OUT/inproc-job.zpl"
cat "$OUT/inproc-job.err"
python3 bench/labels/check_gf.py "$OUT/inproc-job.zpl" "$PNG" | sed 's/^/  check: /'
