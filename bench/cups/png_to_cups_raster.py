#!/usr/bin/env python3
"""Convert a 1-bit label PNG into a CUPS raster stream for CUPS's `rastertolabel` filter.

What it makes: the input that cupsd hands a raster driver (application/vnd.cups-raster):
N identical pages, each a `cups_page_header2_t` (layout from /usr/include/cups/raster.h,
CUPS 2.4) followed by cupsHeight rows of cupsBytesPerLine bytes, 1 bit per pixel,
CUPS_CSPACE_K (colour space 3), so a 1 bit is a black dot, most significant bit leftmost.
Header values are what the sample.drv "Zebra ZPL Label Printer" PPD defaults give
(Darkness "printer default" = cupsCompression 0xFFFFFFFF, zeLabelTop 200 = cupsRowStep 200,
zeTearOffPosition 1000 = AdvanceDistance 1000, MediaType unset), so rastertolabel emits no
~SD, ^LT or ~TA commands; only size and resolution come from the image.

Sync word: `RaS3` (uncompressed, what CUPS_RASTER_WRITE writes) by default, or `RaS2` with
--v2 (CUPS's compressed v2 format: per row a repeat count, then PackBits-like runs of bytes).
Both are written in host byte order, as libcups writes them (on x86 the file starts "3SaR").

Needs: Python 3 only. The PNG reader is built in (zlib; non-interlaced greyscale, palette,
RGB or RGBA at bit depth 1-8, any filter type). Pixels with luminance < 128 are ink.

Usage: png_to_cups_raster.py PNG --dpi 203 [--copies N] [--v2] -o OUT.ras
       png_to_cups_raster.py --dump RASTER      (print the first page header's fields)
"""
import argparse
import struct
import sys
import zlib

# ---------------------------------------------------------------- PNG reading


def read_png(path):
    """Return (width, height, rows) with rows as bytes, 1 bit per pixel, 1 = ink, MSB first."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, palette = 8, [], None
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            palette = [body[i:i + 3] for i in range(0, len(body), 3)]
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    channels = {0: 1, 2: 3, 3: 1, 6: 4}.get(colour)
    if channels is None or interlace or depth > 8:
        sys.exit(f"{path}: unsupported PNG (colour type {colour}, depth {depth}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = (width * channels * depth + 7) // 8
    bpp = max(1, channels * depth // 8)  # filter unit in bytes
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        unfilter(ftype, line, prev, bpp)
        rows.append(to_ink_bits(line, width, depth, colour, channels, palette))
        prev = line
    return width, height, rows


def unfilter(ftype, line, prev, bpp):
    """Undo PNG filter type 0-4 in place."""
    if ftype == 0:
        return
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        if ftype == 1:
            p = a
        elif ftype == 2:
            p = b
        elif ftype == 3:
            p = (a + b) // 2
        elif ftype == 4:
            c = prev[i - bpp] if i >= bpp else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        else:
            sys.exit(f"bad PNG filter type {ftype}")
        line[i] = (line[i] + p) & 0xFF


INVERT = bytes(255 - i for i in range(256))


def to_ink_bits(line, width, depth, colour, channels, palette):
    out_len = (width + 7) // 8
    if colour == 0 and depth == 1:  # fast path: PNG 0 = black, CUPS K 1 = black
        out = bytearray(bytes(line).translate(INVERT))
    else:
        out = bytearray(out_len)
        maxval = (1 << depth) - 1
        for x in range(width):
            if depth == 8:
                px = line[x * channels:(x + 1) * channels]
            else:  # sub-byte greyscale or palette index
                bit = x * depth
                px = [(line[bit // 8] >> (8 - depth - bit % 8)) & maxval]
            if colour == 3:
                r, g, b = palette[px[0]]
            elif channels >= 3:
                r, g, b = px[0], px[1], px[2]
            else:
                r = g = b = px[0] * 255 // maxval
            if channels == 4 and px[3] < 128:  # transparent counts as paper
                continue
            if 299 * r + 587 * g + 114 * b < 128 * 1000:
                out[x // 8] |= 0x80 >> (x % 8)
    if width % 8:  # clear padding bits past the right edge
        out[-1] &= (0xFF << (8 - width % 8)) & 0xFF
    return bytes(out[:out_len])


# ---------------------------------------------------------------- CUPS raster writing


def page_header(width, height, dpi):
    """Pack a cups_page_header2_t (1796 bytes) in host byte order."""
    bpl = (width + 7) // 8
    pw, ph = round(width * 72 / dpi), round(height * 72 / dpi)  # PageSize in points
    s64 = lambda s: s.encode().ljust(64, b"\0")
    u = []
    u += [1000, 0, 0, 0, 0]            # AdvanceDistance, AdvanceMedia, Collate, CutMedia, Duplex
    u += [dpi, dpi]                    # HWResolution
    u += [0, 0, pw, ph]                # ImagingBoundingBox (points)
    u += [0, 0, 0]                     # InsertSheet, Jog, LeadingEdge
    u += [0, 0]                        # Margins
    u += [0, 0, 0, 0, 0]               # ManualFeed, MediaPosition, MediaWeight, MirrorPrint, NegativePrint
    u += [1, 0, 0]                     # NumCopies, Orientation, OutputFaceUp
    u += [pw, ph]                      # PageSize (points)
    u += [0, 0, 0]                     # Separations, TraySwitch, Tumble
    u += [width, height, 0]            # cupsWidth, cupsHeight, cupsMediaType
    u += [1, 1, bpl]                   # cupsBitsPerColor, cupsBitsPerPixel, cupsBytesPerLine
    u += [0, 3]                        # cupsColorOrder CHUNKED, cupsColorSpace K
    u += [0xFFFFFFFF, 0, 0, 200]       # cupsCompression (darkness), RowCount, RowFeed, RowStep
    u += [1]                           # cupsNumColors
    head = b"".join(s64("") for _ in range(4))  # MediaClass, MediaColor, MediaType, OutputType
    head += struct.pack("=42I", *u)
    head += struct.pack("=7f", 1.0, pw, ph, 0, 0, pw, ph)  # scaling, cupsPageSize, cupsImagingBBox
    head += struct.pack("=16I", *[0] * 16) + struct.pack("=16f", *[0.0] * 16)
    head += b"".join(s64("") for _ in range(16))  # cupsString
    head += s64("") + s64("") + s64(f"w{pw}h{ph}")  # MarkerType, RenderingIntent, PageSizeName
    assert len(head) == 1796, len(head)
    return head


def v2_rows(rows):
    """CUPS v2 compression: [row repeat-1] then runs: n<128 = next byte repeated n+1 times,
    n>128 = 257-n literal bytes follow. Identical consecutive rows share one record (max 256)."""
    out, i = bytearray(), 0
    while i < len(rows):
        row, rep = rows[i], 1
        while i + rep < len(rows) and rep < 256 and rows[i + rep] == row:
            rep += 1
        out.append(rep - 1)
        j = 0
        while j < len(row):
            k = j + 1
            while k < len(row) and k - j < 128 and row[k] == row[j]:
                k += 1
            if k - j > 1:
                out += bytes([k - j - 1, row[j]])
                j = k
                continue
            k = j + 1  # literal run: up to the next pair of equal bytes
            while k < len(row) and k - j < 128 and not (k + 1 < len(row) and row[k] == row[k + 1]):
                k += 1
            if k - j == 1:  # a lone byte is a run of one
                out += bytes([0, row[j]])
            else:
                out.append(257 - (k - j))
                out += row[j:k]
            j = k
        i += rep
    return bytes(out)


def dump(path):
    data = open(path, "rb").read(4 + 1796)
    sync = data[:4]
    order = "<" if sync in (b"3SaR", b"2SaR", b"tSaR") else ">"
    u = struct.unpack(order + "42I", data[4 + 256:4 + 256 + 168])
    names = ("AdvanceDistance AdvanceMedia Collate CutMedia Duplex HWRes0 HWRes1 IBB0 IBB1 IBB2 "
             "IBB3 InsertSheet Jog LeadingEdge Margins0 Margins1 ManualFeed MediaPosition "
             "MediaWeight MirrorPrint NegativePrint NumCopies Orientation OutputFaceUp PageSize0 "
             "PageSize1 Separations TraySwitch Tumble cupsWidth cupsHeight cupsMediaType "
             "cupsBitsPerColor cupsBitsPerPixel cupsBytesPerLine cupsColorOrder cupsColorSpace "
             "cupsCompression cupsRowCount cupsRowFeed cupsRowStep cupsNumColors").split()
    strs = [data[4 + 64 * i:4 + 64 * (i + 1)].split(b"\0")[0].decode() for i in range(4)]
    print("sync", sync, "MediaClass/Color/Type/OutputType", strs)
    print(" ".join(f"{n}={v}" for n, v in zip(names, u)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("png", nargs="?")
    ap.add_argument("--dpi", type=int, default=203)
    ap.add_argument("--copies", type=int, default=1, help="pages in the stream (N labels)")
    ap.add_argument("--v2", action="store_true", help="write compressed RaS2 instead of RaS3")
    ap.add_argument("-o", "--output", default="-")
    ap.add_argument("--dump", metavar="RASTER", help="print a raster file's first header")
    a = ap.parse_args()
    if a.dump:
        return dump(a.dump)
    width, height, rows = read_png(a.png)
    page = page_header(width, height, a.dpi) + (v2_rows(rows) if a.v2 else b"".join(rows))
    sync = struct.pack("=I", 0x52615332 if a.v2 else 0x52615333)
    out = sys.stdout.buffer if a.output == "-" else open(a.output, "wb")
    out.write(sync)
    for _ in range(a.copies):
        out.write(page)
    out.close()
    print(f"{a.png}: {width}x{height} dots at {a.dpi} dpi, {(width + 7) // 8} bytes/row, "
          f"{sum(bin(b).count('1') for r in rows for b in r)} black dots; "
          f"{a.copies} page(s), {'RaS2' if a.v2 else 'RaS3'}", file=sys.stderr)


if __name__ == "__main__":
    main()
