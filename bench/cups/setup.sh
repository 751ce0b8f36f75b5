#!/usr/bin/env bash
# bench/cups/setup.sh — install CUPS's label filter and build Zebra ZPL PPDs for the
# CUPS-vs-labeld comparison (see bench/cups/run.sh).
#
# Installs (Debian bookworm, as root, --no-install-recommends):
#   cups               /usr/lib/cups/filter/rastertolabel (pulls cups-daemon, cups-filters,
#                      ghostscript, poppler-utils as hard dependencies; no daemon is started
#                      where /usr/sbin/policy-rc.d forbids it, as in this container)
#   cups-ppdc          /usr/bin/ppdc (PPD compiler)
#   cups-common        /usr/share/cups/drv/sample.drv and /usr/share/cups/ppdc/*.defs
#   libcupsimage2-dev  /usr/include/cups/raster.h (reference for the raster header layout)
#   time, bc, linux-perf  GNU /usr/bin/time (user/sys split), bc (arithmetic in run.sh),
#                      perf stat (task-clock, CPU time at microsecond resolution)
# Then compiles every PPD in sample.drv into target/bench-cups/ppd/ and lists the Zebra ZPL
# one: sample.drv has a single "Zebra ZPL Label Printer" (zebra.ppd, default 4x5 in media)
# whose Resolution option offers 203, 300 and 600 dpi; run.sh sets the dpi in the raster.
# Last, if target/release/labelctl exists (cargo build --release) and Pillow imports, it
# draws the test labels target/bench-cups/{label,address}-{203,300}.png (make_label.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/bench-cups

PKGS=(cups cups-ppdc cups-common libcupsimage2-dev time bc linux-perf)
need=0
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need=1; done
if [ "$need" = 1 ]; then
  echo "installing: ${PKGS[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}"
fi
for f in /usr/lib/cups/filter/rastertolabel /usr/bin/ppdc /usr/share/cups/drv/sample.drv \
         /usr/include/cups/raster.h; do
  [ -e "$f" ] || { echo "missing $f" >&2; exit 1; }
done
echo "cups $(dpkg-query -W -f='${Version}' cups)"

# ppdc writes one PPD per model (PCFileName) into -d DIR.
mkdir -p "$OUT/ppd"
ppdc -d "$OUT/ppd" /usr/share/cups/drv/sample.drv
echo "ZPL PPDs (file, model, default resolution):"
for ppd in "$OUT"/ppd/*.ppd; do
  if grep -q 'ZPL' "$ppd" && grep -q rastertolabel "$ppd"; then
    printf '  %s  %s  %s\n' "$ppd" \
      "$(sed -n 's/^\*ModelName: *//p' "$ppd")" \
      "$(sed -n 's/^\*DefaultResolution: *//p' "$ppd")"
  fi
done

if [ -x target/release/labelctl ] && python3 -c 'import PIL' 2>/dev/null; then
  for dpi in 203 300; do
    python3 bench/cups/make_label.py --dpi $dpi -o "$OUT/label-$dpi.png"
    python3 bench/cups/make_label.py --dpi $dpi --layout address -o "$OUT/address-$dpi.png"
  done
else
  echo "skipped the test labels: needs target/release/labelctl and Pillow (pip install pillow)"
fi
