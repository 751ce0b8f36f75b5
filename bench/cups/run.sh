#!/usr/bin/env bash
# bench/cups/run.sh PNG DPI [N] — CUPS's rastertolabel (ZPL) on a ready 1-bit label bitmap.
#
# Measures, for a stream of 1 label and of N labels (default 100) made of the same page:
#   * bytes on the wire: the ZPL the filter writes (what the backend would send), per label;
#   * CPU time of the filter process (perf stat task-clock = user+sys, median of REPS runs;
#     GNU time's user/sys split from one more run), per label, both as total/N and as the
#     marginal cost (T(N) - T(1)) / (N - 1) that leaves out start-up (PPD parsing etc.).
# It starts from an already-rendered raster, as the filter does under cupsd: the PNG is
# turned into a CUPS raster stream (png_to_cups_raster.py) before any timing, and the
# output is checked (check_zpl.py: every ~DG graphic must decode to the PNG's dots).
# The filter is run as cupsd runs it: `rastertolabel job-id user title copies options`,
# raster on stdin, ZPL on stdout and status lines on stderr (both pipes by default, as the
# backend and the scheduler read them), and a bare environment with PPD=.
#
# Needs: bench/cups/setup.sh run first (cups, cups-ppdc, the PPD), python3, taskset,
# perf (linux-perf; falls back to GNU time's 10 ms resolution without it).
# Knobs: REPS (7), BENCH_CPU (0, the core to pin to), PPD (target/bench-cups/ppd/zebra.ppd),
#        RAS=v2 for compressed RaS2 input instead of RaS3 (CUPS's imagetoraster and gstoraster write RaS3);
#        SINK=pipe (default; stdout and stderr go to pipes, as under cupsd) or SINK=file.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in bench/cups (check_zpl.py imports the converter)
[ $# -ge 2 ] || { echo "usage: $0 PNG DPI [N]" >&2; exit 2; }
PNG=$(realpath "$1"); DPI=$2; N=${3:-100}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
FILTER=/usr/lib/cups/filter/rastertolabel
PPD=$(realpath "${PPD:-$ROOT/target/bench-cups/ppd/zebra.ppd}")
REPS=${REPS:-7}; CPU=${BENCH_CPU:-0}; RAS=${RAS:-v3}; SINK=${SINK:-pipe}
RASFLAG=(); [ "$RAS" = v2 ] && RASFLAG=(--v2)
OUT=$ROOT/target/bench-cups/run-$(basename "$PNG" .png)-$RAS-$SINK
mkdir -p "$OUT"
[ -x "$FILTER" ] && [ -f "$PPD" ] || { echo "run bench/cups/setup.sh first" >&2; exit 1; }
HAVE_PERF=0; perf stat -x, -e task-clock -o /dev/null true 2>/dev/null && HAVE_PERF=1

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# run_filter N CMD...: the filter on in-N.ras -> out-N.zpl, under CMD (a timer), pinned.
# SINK=pipe: stdout and stderr are pipes read by `cat`, as under cupsd (backend, scheduler).
run_filter() {
  local n=$1; shift
  local cmd=(taskset -c "$CPU" env -i PATH=/usr/bin:/bin LANG=C PPD="$PPD" "$@"
             "$FILTER" 1 bench "label bench" 1 "")
  if [ "$SINK" = pipe ]; then
    { "${cmd[@]}" < "$OUT/in-$n.ras" 2>&1 1>&3 | cat > "$OUT/err-$n.log"; } 3>&1 | cat > "$OUT/out-$n.zpl"
  else
    "${cmd[@]}" < "$OUT/in-$n.ras" > "$OUT/out-$n.zpl" 2> "$OUT/err-$n.log"
  fi
}

echo "rastertolabel $(dpkg-query -W -f='${Version}' cups 2>/dev/null), PPD $(sed -n 's/^\*NickName: *//p' "$PPD"), $(basename "$PNG") at $DPI dpi, input $RAS, output to $SINK, cpu $CPU, $REPS runs"
declare -A MS RANGE USR SYS BYTES
for n in 1 "$N"; do
  python3 "$HERE/png_to_cups_raster.py" "$PNG" --dpi "$DPI" --copies "$n" \
    "${RASFLAG[@]}" -o "$OUT/in-$n.ras"
  run_filter "$n"  # warm-up (page cache, dynamic loader)
  python3 "$HERE/check_zpl.py" "$OUT/out-$n.zpl" "$PNG" | sed 's/^/  check: /'
  head -c 40 "$OUT/out-$n.zpl" | head -1 | sed 's/^/  starts: /'
  times=()
  for _ in $(seq "$REPS"); do
    if [ $HAVE_PERF = 1 ]; then
      run_filter "$n" perf stat -x, -e task-clock -o "$OUT/perf.txt" --
      times+=("$(awk -F, '/task-clock/ {print $1}' "$OUT/perf.txt")")
    else
      run_filter "$n" /usr/bin/time -f '%U %S' -o "$OUT/time.txt"
      times+=("$(awk '{print 1000 * ($1 + $2)}' "$OUT/time.txt")")
    fi
  done
  MS[$n]=$(printf '%s\n' "${times[@]}" | median)
  RANGE[$n]=$(printf '%s\n' "${times[@]}" | sort -g | sed -n '1p;$p' | paste -sd-)
  run_filter "$n" /usr/bin/time -f '%U %S' -o "$OUT/time.txt"
  read -r USR[$n] SYS[$n] < "$OUT/time.txt"
  BYTES[$n]=$(stat -c %s "$OUT/out-$n.zpl")
  echo "  N=$n: stderr lines/label $(( $(wc -l < "$OUT/err-$n.log") / n ))"
done

printf '\n| labels | raster in, bytes | ZPL out, bytes | bytes/label | CPU ms, median (min-max) | user s | sys s | CPU ms/label |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for n in 1 "$N"; do
  printf '| %d | %d | %d | %.0f | %.2f (%s) | %s | %s | %.3f |\n' "$n" "$(stat -c %s "$OUT/in-$n.ras")" \
    "${BYTES[$n]}" "$(echo "${BYTES[$n]} / $n" | bc -l)" "${MS[$n]}" "${RANGE[$n]}" "${USR[$n]}" "${SYS[$n]}" \
    "$(echo "${MS[$n]} / $n" | bc -l)"
done
if [ "$N" -gt 1 ]; then
  printf '\nmarginal CPU per label, (T(%d) - T(1)) / %d: %.3f ms; start-up T(1): %.2f ms\n' "$N" \
    $((N - 1)) "$(echo "(${MS[$N]} - ${MS[1]}) / ($N - 1)" | bc -l)" "${MS[1]}"
fi
