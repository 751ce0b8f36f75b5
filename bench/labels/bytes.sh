#!/usr/bin/env bash
# bench/labels/bytes.sh — bytes on the wire per label, per printer language and encoding.
#
# Renders example jobs with `labelctl render JOB --model M -o FILE [...]` (every IMb read
# back and verified before a byte is written) and prints a markdown table:
#   * the issue's 4x6 address label (examples/jobs/address-4x6.json) and the tray tag
#     (examples/jobs/tray.json) on the generic ZPL profiles at 203.2 / 304.8 / 609.6 dpi
#     with ^GF as plain hex, run-length, Z64 and auto (the driver's per-graphic choice),
#     and native (`--native text,code128,imb`: printer fonts, ^BC, ^BZ), plus
#     `--native text,code128` (IMb still drawn and verified: the setting a user who keeps
#     labeld's checked IMb geometry would pick);
#   * EPL2 (epl-203) on both; Brother QL-820NWB (PackBits) and QL-800 (no compression) on
#     the 62 mm job (the 4x6 does not fit a 62 mm head) and the tray tag; DYMO LabelWriter
#     450 on its 3.5x1.125 job (examples/jobs/address-dymo.json) and the tray tag; PCL at
#     300 / 600 dpi on the #10 envelope job (PCL pages are letter or #10 envelope only);
#     PDF and PNG previews of the 4x6.
# Columns: page size in dots (as printed, after any turn), the raw 1-bit page
# (ceil(w/8) x h bytes), bytes on the wire, for ZPL the ^GF payload bytes (what the
# encoding choice acts on), and wire / raw.
# Then checks the issue's byte targets (auto ^GF <= min(run-length, Z64) per label and
# dpi; native ZPL <= 600 bytes) and prints them as "met" / "MISSED".
#
# Needs: target/release/labelctl (built here: cargo build --release --bin labelctl), python3.
# Knobs: OUT (target/bench-labels/bytes), NO_BUILD=1, LABELD_REV (the revision printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/bench-labels/bytes}
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --bin labelctl -q
LABELCTL=target/release/labelctl
JOBS=examples/jobs

# stats FILE PNG: "w h raw wire gf" (page size from the preview PNG's header; gf = ^GF
# payload bytes, the data after the fourth comma of each ^GFA up to ^FS; "-" for non-ZPL).
stats() {
  python3 - "$1" "$2" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
w, h = struct.unpack(">II", open(sys.argv[2], "rb").read()[16:24])
gf = "-"
if b"^XA" in data[:64]:
    fields = data.decode("latin-1").split("^GFA,")[1:]
    gf = sum(len(f.split("^FS")[0].split(",", 3)[3]) for f in fields)
print(w, h, (w + 7) // 8 * h, len(data), gf)
EOF
}

declare -A GF WIRE
row() {  # row LABEL JOB MODEL VARIANT [labelctl args...]
  local label=$1 job=$2 model=$3 variant=$4; shift 4
  local key="$label-$model-$variant" ext=out
  case $variant in pdf) ext=pdf ;; png) ext=png ;; esac
  local file="$OUT/$key.$ext" png="$OUT/$label-$model.page.png"
  local dpi
  dpi=$("$LABELCTL" render "$JOBS/$job" --model "$model" -o "$file" --json "$@" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["dpi"][0])')
  [ -f "$png" ] || "$LABELCTL" render "$JOBS/$job" --model "$model" -o "$png" > /dev/null
  read -r w h raw wire gf < <(stats "$file" "$png")
  GF[$key]=$gf; WIRE[$key]=$wire
  printf '| %s | %s | %s | %s | %s x %s | %s | %s | %s | %.3f |\n' "$label" "$model" "$dpi" \
    "$variant" "$w" "$h" "$raw" "$wire" "$gf" "$(echo "$wire / $raw" | bc -l)"
}

echo "labeld ${LABELD_REV:-$(git describe --always --dirty 2>/dev/null || echo unknown)}, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo '| label | model | dpi | encoding / mode | page, dots | raw 1-bit, bytes | on the wire, bytes | ^GF data, bytes | wire / raw |'
echo '|---|---|---:|---|---:|---:|---:|---:|---:|'
for label in address-4x6 tray; do
  for model in zpl-203 zpl-300 zpl-600; do
    for enc in hex run-length z64 auto; do
      row "$label" "$label.json" "$model" "$enc" --zpl-graphics "$enc"
    done
    row "$label" "$label.json" "$model" native --native text,code128,imb
    row "$label" "$label.json" "$model" native-text+code128 --native text,code128
  done
  row "$label" "$label.json" epl-203 graphics
done
row address-62mm address-62mm.json brother-ql-820nwb packbits
row address-62mm address-62mm.json brother-ql-800 uncompressed
row tray tray.json brother-ql-820nwb packbits
row tray tray.json brother-ql-800 uncompressed
row address-dymo address-dymo.json dymo-lw450 raster
row tray tray.json dymo-lw450 raster
row envelope envelope.json pcl-300 modes-2+3
row envelope envelope.json pcl-600 modes-2+3
row address-4x6 address-4x6.json pdf-300 pdf
row address-4x6 address-4x6.json png-203 png

echo
echo "Targets:"
for label in address-4x6 tray; do
  for model in zpl-203 zpl-300 zpl-600; do
    auto=${GF[$label-$model-auto]} rle=${GF[$label-$model-run-length]} z64=${GF[$label-$model-z64]}
    best=$(( rle < z64 ? rle : z64 ))
    verdict=met; [ "$auto" -le "$best" ] || verdict=MISSED
    echo "- $label $model: auto ^GF $auto bytes <= min(run-length $rle, Z64 $z64) = $best: $verdict"
  done
done
for label in address-4x6 tray; do
  for model in zpl-203 zpl-300 zpl-600; do
    n=${WIRE[$label-$model-native]}
    verdict=met; [ "$n" -le 600 ] || verdict=MISSED
    echo "- $label $model native (text, code128, imb): $n bytes <= 600: $verdict"
  done
done
