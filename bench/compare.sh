#!/usr/bin/env bash
# bench/compare.sh - labeld's IMb encoder against libzint, in the same run.
#
# Needs (this script installs nothing):
#   cc + libzint headers/library  Debian: apt-get install -y libzint-dev  (2.11.1 on bookworm)
#   cargo / rustc                 the workspace toolchain
#   python3                       bench/gen_lines.py, and reading cargo/hyperfine JSON
#   taskset                       util-linux, to pin the timed processes to one core
#   hyperfine (optional)          apt-get install -y hyperfine; otherwise repeated
#                                 /usr/bin/time (GNU time, apt-get install -y time) runs
#
# What it does:
#   1. builds bench/zint_encode.c (cc -O2 ... -lzint), labelctl (release) and the divan
#      bench binary (benches/imb.rs, which also has a --throughput mode);
#   2. generates LINES deterministic random valid `TRACKING[,ROUTING]` lines (all
#      routing lengths) with bench/gen_lines.py;
#   3. correctness gate: `labelctl imb encode -` and `zint_encode --stream` must give
#      byte-identical output on those lines, and both must reject the same few invalid
#      lines; no timing happens if this fails;
#   4. encode throughput on one core: N codes from strings, in-process, zint
#      (ZBarcode_Clear per code, and Create/Delete per code) vs labeld `encode_str`,
#      REPEAT runs each, median taken;
#   5. end to end on one core: `labelctl imb encode - < lines` vs
#      `zint_encode --stream < lines` (hyperfine, or /usr/bin/time);
#   6. prints a summary with codes/s and ratios against the targets (>= 20x libzint
#      for encode, >= 10x for the stream), then the divan table (unless NO_DIVAN=1).
#
# Environment: LINES (default 1000000), REPEAT (5), RUNS (hyperfine runs, 10),
#   BENCH_CPU (core to pin to, 0), OUT (work dir, target/bench-compare), NO_DIVAN.
# Measures only; nothing here fails because of a number.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
LINES=${LINES:-1000000}
REPEAT=${REPEAT:-5}
RUNS=${RUNS:-10}
CPU=${BENCH_CPU:-0}
OUT=${OUT:-$ROOT/target/bench-compare}
mkdir -p "$OUT"

need() { command -v "$1" >/dev/null 2>&1 || { echo "compare.sh: missing $1 ($2)" >&2; exit 2; }; }
need cc "a C compiler"
need cargo "the Rust toolchain"
need python3 "python3"
need taskset "util-linux"
[ -f /usr/include/zint.h ] || { echo "compare.sh: missing zint.h (apt-get install -y libzint-dev)" >&2; exit 2; }
PIN=(taskset -c "$CPU")

echo "== machine"
echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:     $(nproc)"
cpuinfo() { grep -m1 "^$1" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
echo "cpu:       $(cpuinfo 'model name') (family $(cpuinfo 'cpu family'), model $(cpuinfo 'model	'), $(cpuinfo 'cpu MHz') MHz)$(grep -q hypervisor /proc/cpuinfo && echo ', virtual machine')"
echo "kernel:    $(uname -r)"
echo "rustc:     $(rustc --version)"
echo "cc:        $(cc --version | head -1)"
echo "zint pkg:  $(dpkg-query -W -f='${Package} ${Version}' libzint-dev 2>/dev/null || echo unknown)"
echo "git:       $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet -- src 2>/dev/null || echo ' (src has uncommitted changes)')"
echo "loadavg:   $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pinned to: cpu $CPU"

echo "== build"
cc -O2 -Wall -Wextra -o "$OUT/zint_encode" bench/zint_encode.c -lzint
cargo build --quiet --release --bin labelctl
LABELCTL=$ROOT/target/release/labelctl
BENCH_EXE=$(cargo bench --quiet --bench imb --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "imb":
        print(m["executable"])')
[ -x "$BENCH_EXE" ] || { echo "compare.sh: could not find the imb bench executable" >&2; exit 2; }
echo "zint_encode: $OUT/zint_encode"
echo "labelctl:    $LABELCTL"
echo "imb bench:   $BENCH_EXE"

echo "== input"
python3 bench/gen_lines.py "$LINES" > "$OUT/lines.txt"
echo "$LINES lines, $(wc -c < "$OUT/lines.txt") bytes, md5 $(md5sum < "$OUT/lines.txt" | cut -d' ' -f1)"
awk -F, '{ n[NF == 1 ? 0 : length($2)]++ } END { for (k in n) printf "  routing %2d digits: %d lines\n", k, n[k] }' "$OUT/lines.txt" | sort -n -k2

echo "== correctness gate"
"$LABELCTL" imb encode - < "$OUT/lines.txt" > "$OUT/labelctl.out"
"$OUT/zint_encode" --stream < "$OUT/lines.txt" > "$OUT/zint.out"
if ! cmp -s "$OUT/labelctl.out" "$OUT/zint.out"; then
    echo "FAIL: labelctl and zint outputs differ:" >&2
    cmp "$OUT/labelctl.out" "$OUT/zint.out" >&2 || true
    diff <(paste -d' ' "$OUT/lines.txt" "$OUT/labelctl.out") <(paste -d' ' "$OUT/lines.txt" "$OUT/zint.out") | head -10 >&2
    exit 1
fi
if grep -q -v '^[ADFT]\{65\}$' "$OUT/labelctl.out"; then
    echo "FAIL: an output line is not 65 letters A/D/F/T" >&2
    exit 1
fi
echo "ok: $(wc -l < "$OUT/labelctl.out") lines byte-identical ($(md5sum < "$OUT/labelctl.out" | cut -d' ' -f1))"
printf '%s\n' 05234567094987654321 0123456709498765432 012345670949876543210 \
    0123456709498765432X 01234567094987654321,1234 01234567094987654321,123456 \
    01234567094987654321,1234567890 01234567094987654321,123456789012 \
    01234567094987654321,1234X > "$OUT/invalid.txt"
rust_rejects=$("$LABELCTL" imb encode - < "$OUT/invalid.txt" | grep -c '^error')
zint_rejects=$("$OUT/zint_encode" --stream < "$OUT/invalid.txt" | grep -c '^error')
invalid=$(wc -l < "$OUT/invalid.txt")
if [ "$rust_rejects" != "$invalid" ] || [ "$zint_rejects" != "$invalid" ]; then
    echo "FAIL: of $invalid invalid lines labelctl rejected $rust_rejects, zint $zint_rejects" >&2
    exit 1
fi
echo "ok: both reject all $invalid invalid lines"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate_of() { sed -n 's/.* = \([0-9.]*\) codes\/s.*/\1/p'; }

echo "== encode throughput: $LINES codes from strings, one process, cpu $CPU, median of $REPEAT"
: > "$OUT/tp_zint_clear" ; : > "$OUT/tp_zint_create" ; : > "$OUT/tp_rust"
run_tp() { # file, command...: print the command's line and keep its codes/s
    local file=$1 line
    shift
    line=$("$@")
    echo "$line"
    echo "$line" | rate_of >> "$file"
}
for _ in $(seq "$REPEAT"); do
    run_tp "$OUT/tp_zint_clear" "${PIN[@]}" "$OUT/zint_encode" --throughput "$LINES" < "$OUT/lines.txt"
    run_tp "$OUT/tp_zint_create" "${PIN[@]}" "$OUT/zint_encode" --throughput "$LINES" --create-per-code < "$OUT/lines.txt"
    run_tp "$OUT/tp_rust" "${PIN[@]}" "$BENCH_EXE" --throughput "$LINES" < "$OUT/lines.txt"
done
ZC=$(median < "$OUT/tp_zint_clear")
ZD=$(median < "$OUT/tp_zint_create")
RT=$(median < "$OUT/tp_rust")

echo "== end to end: $LINES-line stream, cpu $CPU"
RUST_CMD="${PIN[*]} $LABELCTL imb encode - < $OUT/lines.txt > /dev/null"
ZINT_CMD="${PIN[*]} $OUT/zint_encode --stream < $OUT/lines.txt > /dev/null"
if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$OUT/stream.json" \
        -n labelctl "$RUST_CMD" -n zint_encode "$ZINT_CMD"
    read -r RS ZS < <(python3 -c '
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(r["labelctl"], r["zint_encode"])' "$OUT/stream.json")
    STREAM_HOW="hyperfine median of $RUNS runs (1 warm-up)"
else
    [ -x /usr/bin/time ] || { echo "compare.sh: need hyperfine or GNU time (/usr/bin/time)" >&2; exit 2; }
    : > "$OUT/st_rust" ; : > "$OUT/st_zint"
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f %e -a -o "$OUT/st_rust" sh -c "$RUST_CMD"
        /usr/bin/time -f %e -a -o "$OUT/st_zint" sh -c "$ZINT_CMD"
    done
    RS=$(median < "$OUT/st_rust")
    ZS=$(median < "$OUT/st_zint")
    STREAM_HOW="/usr/bin/time median of $RUNS runs"
fi

echo
echo "== summary ($LINES codes; cpu $CPU; $(date -u +%Y-%m-%d))"
python3 - "$LINES" "$ZC" "$ZD" "$RT" "$RS" "$ZS" "$STREAM_HOW" <<'EOF'
import sys
n = int(sys.argv[1])
zc, zd, rt, rs, zs = map(float, sys.argv[2:7])
how = sys.argv[7]
def met(ratio, target):
    return f"{ratio:.1f}x  target >= {target}x: {'MET' if ratio >= target else 'NOT MET'}"
print(f"{'measurement':58} {'codes/s':>12} {'ns/code':>9}")
print(f"{'zint ZBarcode_Encode, one symbol + ZBarcode_Clear':58} {zc:12,.0f} {1e9/zc:9.1f}")
print(f"{'zint ZBarcode_Encode, Create/Delete per code':58} {zd:12,.0f} {1e9/zd:9.1f}")
print(f"{'labeld encode_str (parse + encode)':58} {rt:12,.0f} {1e9/rt:9.1f}")
print(f"encode ratio (labeld / fastest zint): {met(rt / max(zc, zd), 20)}")
print()
print(f"stream, {how}:")
print(f"{'zint_encode --stream':58} {n/zs:12,.0f} {1e9*zs/n:9.1f}   ({zs:.3f} s)")
print(f"{'labelctl imb encode -':58} {n/rs:12,.0f} {1e9*rs/n:9.1f}   ({rs:.3f} s)")
print(f"stream ratio (zint time / labelctl time): {met(zs / rs, 10)}")
EOF

if [ -z "${NO_DIVAN:-}" ]; then
    echo
    echo "== divan (benches/imb.rs), cpu $CPU; time per iteration of 1024 codes, itm/s = codes/s"
    "${PIN[@]}" "$BENCH_EXE" --bench
fi
