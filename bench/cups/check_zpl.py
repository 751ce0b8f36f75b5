#!/usr/bin/env python3
"""Check rastertolabel's ZPL: decode every ~DG graphic and compare it with the source PNG.

Decodes the ZPL II ~DG ASCII-hex compression that CUPS writes (G-Y repeat 1-19, g-z repeat
20-400 in steps of 20, counts added up; ',' fills the rest of the row with 0; '!' with 1;
':' repeats the previous row), checks each graphic's declared size (total bytes =
bytes/row x rows) and that its dots equal the PNG's, and prints bytes per label.

Needs: Python 3 (reads the PNG with png_to_cups_raster.read_png, next to this file).
Usage: check_zpl.py OUT.zpl LABEL.png
"""
import re
import sys

from png_to_cups_raster import read_png


def decode_dg(body, total, per_row):
    rows, row, count = [], [], 0
    hex_per_row = 2 * per_row
    for ch in body:
        if "G" <= ch <= "Y":
            count += ord(ch) - ord("F")
        elif "g" <= ch <= "z":
            count += 20 * (ord(ch) - ord("f"))
        elif ch in "0123456789ABCDEF":
            row += [ch] * (count or 1)
            count = 0
        elif ch in ",!":
            row += ["0" if ch == "," else "F"] * (hex_per_row - len(row))
        elif ch == ":":
            row = list(rows[-1]) if rows else ["0"] * hex_per_row
        elif ch in "\r\n":
            continue
        else:
            raise ValueError(f"unexpected {ch!r} in ~DG data")
        if len(row) >= hex_per_row:
            assert len(row) == hex_per_row, "row overflow"
            rows.append("".join(row))
            row = []
    assert not row, "trailing partial row"
    data = b"".join(bytes.fromhex(r) for r in rows)
    assert len(data) == total, f"~DG declared {total} bytes, decoded {len(data)}"
    return data


def main():
    zpl = open(sys.argv[1], "rb").read().decode("ascii")
    width, height, png_rows = read_png(sys.argv[2])
    want = b"".join(png_rows)
    # Each label: ~DGname,total,per_row,<data> up to the ^XA that prints it.
    graphics = re.findall(r"~DG([^,]*),(\d+),(\d+),\n?([^\^~]*)", zpl)
    ok = 0
    for name, total, per_row, body in graphics:
        got = decode_dg(body, int(total), int(per_row))
        assert int(per_row) == (width + 7) // 8 and int(total) == int(per_row) * height
        ok += got == want
    labels = zpl.count("^XG")
    payload = sum(len(b) for *_, b in graphics)
    print(f"{labels} labels, {len(graphics)} ~DG graphics ({graphics[0][0]}, "
          f"{graphics[0][1]} bytes = {graphics[0][2]} x {height}), {ok} decode to the PNG's dots; "
          f"{len(zpl) / labels:.0f} bytes/label on the wire ({payload / labels:.0f} of ~DG data)")
    sys.exit(0 if ok == len(graphics) == labels else 1)


if __name__ == "__main__":
    main()
