#!/usr/bin/env python3
"""Decode labeld's ZPL (^GFA graphic fields) back to dots and compare with a 1-bit PNG.

For every ^XA...^XZ format in OUT.zpl: reads ^PW and ^LL, draws every
^FOx,y^GFA,total,total,per_row,DATA^FS on a blank ^PW x ^LL page, and checks that the
page equals the PNG dot for dot. DATA may be plain hex, the ZPL run-length scheme
(decoded by bench/cups/check_zpl.py's decode_dg, the decoder used on CUPS's ~DG output),
:Z64: (zlib + base64, CRC-16/XMODEM over the base64 text checked) or :B64:. Prints
formats, bytes per label and the encodings seen; exits 1 on any mismatch.

This is a benchmark cross-check, independent of labeld's own code and of its tests
(which decode with the `zpl` crate and their own decoder).

Needs: Python 3 only. Usage: check_gf.py OUT.zpl LABEL.png
"""
import base64
import os
import re
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cups"))
from check_zpl import decode_dg  # noqa: E402  (the run-length decoder used for CUPS)
from png_to_cups_raster import read_png  # noqa: E402


def crc16_xmodem(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def decode_gf(data, total, per_row):
    """Return (bytes, encoding name) for one ^GFA data field."""
    for kind in ("Z64", "B64"):
        marker = f":{kind}:"
        if data.startswith(marker):
            body, crc = data[len(marker):].rsplit(":", 1)
            assert int(crc, 16) == crc16_xmodem(body.encode("ascii")), f"{kind} CRC mismatch"
            raw = base64.b64decode(body)
            raw = zlib.decompress(raw) if kind == "Z64" else raw
            assert len(raw) == total, f"{kind}: {len(raw)} bytes, declared {total}"
            return raw, kind
    if re.fullmatch(r"[0-9A-F]*", data) and len(data) == 2 * total:
        return bytes.fromhex(data), "hex"
    return decode_dg(data, total, per_row), "run-length"


def main():
    zpl = open(sys.argv[1], "rb").read().decode("ascii")
    width, height, png_rows = read_png(sys.argv[2])
    stride = (width + 7) // 8
    want = [int.from_bytes(r, "big") for r in png_rows]
    formats = re.findall(r"\^XA(.*?)\^XZ", zpl, re.S)
    ok, kinds = 0, set()
    for fmt in formats:
        pw = int(re.search(r"\^PW(\d+)", fmt).group(1))
        ll = int(re.search(r"\^LL(\d+)", fmt).group(1))
        assert (pw, ll) == (width, height), f"^PW{pw} ^LL{ll} vs PNG {width} x {height}"
        page = [0] * height
        for x, y, total, _, per_row, data in re.findall(
                r"\^FO(\d+),(\d+)\^GFA,(\d+),(\d+),(\d+),(.*?)\^FS", fmt, re.S):
            x, y, total, per_row = int(x), int(y), int(total), int(per_row)
            raw, kind = decode_gf(data, total, per_row)
            kinds.add(kind)
            shift = stride * 8 - x - per_row * 8
            for i in range(total // per_row):
                row = int.from_bytes(raw[i * per_row:(i + 1) * per_row], "big")
                page[y + i] |= row << shift if shift >= 0 else row >> -shift
        ok += page == want
    print(f"{len(formats)} labels ({', '.join(sorted(kinds)) or 'no graphics'}), {ok} decode to "
          f"the PNG's dots; {len(zpl) / max(len(formats), 1):.0f} bytes/label on the wire")
    sys.exit(0 if formats and ok == len(formats) else 1)


if __name__ == "__main__":
    main()
