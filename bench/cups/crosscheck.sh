#!/usr/bin/env bash
# bench/cups/crosscheck.sh PNG DPI — is png_to_cups_raster.py's raster the one CUPS makes?
#
# Puts the PNG on a PDF page of the same size (Pillow), lets CUPS's own PDF path make the
# raster (cups-filters gstoraster -> Ghostscript's cups device, with the zebra.ppd defaults),
# and compares it byte for byte with png_to_cups_raster.py's output (header and pixels).
# Needs: bench/cups/setup.sh run first (cups pulls in cups-filters and ghostscript), Pillow.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 PNG DPI" >&2; exit 2; }
PNG=$(realpath "$1"); DPI=$2
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
python3 -c "import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2], resolution=$DPI)" \
  "$PNG" "$T/label.pdf"
W=$(python3 -c "from PIL import Image; w, h = Image.open('$PNG').size; print(f'w{round(w*72/$DPI)}h{round(h*72/$DPI)}')")
env -i PATH=/usr/bin:/bin PPD="$ROOT/target/bench-cups/ppd/zebra.ppd" /usr/lib/cups/filter/gstoraster \
  1 bench bench 1 "PageSize=$W Resolution=${DPI}dpi" "$T/label.pdf" > "$T/gs.ras" 2> "$T/gs.log"
python3 "$HERE/png_to_cups_raster.py" "$PNG" --dpi "$DPI" -o "$T/ours.ras" 2>/dev/null
if cmp -s "$T/gs.ras" "$T/ours.ras"; then
  echo "ok: gstoraster's raster ($(stat -c %s "$T/gs.ras") bytes, $(head -c 4 "$T/gs.ras")) is byte-identical"
else
  echo "DIFFER: gstoraster vs png_to_cups_raster.py"; cmp "$T/gs.ras" "$T/ours.ras" || true
  python3 "$HERE/png_to_cups_raster.py" --dump "$T/gs.ras"; exit 1
fi
