#!/usr/bin/env python3
"""Make the 1-bit 4x6 in test label for the CUPS rastertolabel benchmark (bench/cups/run.sh).

Layout, in inches so 203 and 300 dpi get the same label: a USPS-style shipping label with
a solid service-letter box, a postage indicia box, a service banner between 0.03 in rules,
return and ship-to addresses, labeld's own IMb (`labelctl imb render`, pasted dot for dot),
a Code 128 symbol from `labelctl tray --json` at 3 dots per module standing in for the
IMpb barcode, its human-readable line, and a footer. Text is Pillow's built-in font drawn
without anti-aliasing, so the page has real glyph edges, not just rectangles.

Needs: Python 3 with Pillow, and target/release/labelctl (cargo build --release).
With --layout address: only the two addresses and the IMb (a sparse mail-piece label).
Usage: make_label.py --dpi 203 [--layout shipping|address] -o target/bench-cups/label-203.png
"""
import argparse
import json
import subprocess
import tempfile

from PIL import Image, ImageDraw, ImageFont

LABELCTL = "target/release/labelctl"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpi", type=int, default=203)
    ap.add_argument("--layout", choices=["shipping", "address"], default="shipping",
                    help="shipping: the full label above; address: only the return and "
                         "ship-to addresses and the IMb (a sparse mail-piece label)")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    dpi = a.dpi
    d = lambda inches: round(inches * dpi)  # inches -> dots
    W, H = d(4), d(6)
    img = Image.new("1", (W, H), 1)  # 1 = white paper
    g = ImageDraw.Draw(img)
    g.fontmode = "1"  # no anti-aliasing: a thermal head has no grey
    font = lambda pt: ImageFont.load_default(size=max(8, round(pt / 72 * dpi)))

    def text(x, y, s, pt, bold=False):
        g.text((d(x), d(y)), s, font=font(pt), fill=0, stroke_width=1 if bold else 0, stroke_fill=0)

    def hrule(y, t=0.03):
        g.rectangle([0, d(y), W - 1, d(y) + max(2, d(t)) - 1], fill=0)

    if a.layout == "address":
        return address_label(a, img, g, d, text)
    # Service letter box and postage indicia.
    g.rectangle([d(0.1), d(0.1), d(1.1), d(1.1)], fill=0)
    g.text((d(0.32), d(0.08)), "P", font=font(64), fill=1)
    g.rectangle([d(2.3), d(0.1), d(3.9), d(1.1)], outline=0, width=max(2, d(0.02)))
    for i, s in enumerate(["PRIORITY MAIL", "U.S. POSTAGE PAID", "ePostage", "ZONE 4  1 LB 2 OZ"]):
        text(2.4, 0.18 + i * 0.21, s, 9, bold=(i == 0))
    hrule(1.2)
    text(0.35, 1.26, "USPS PRIORITY MAIL", 20, bold=True)
    hrule(1.62)
    # Return address, ship-to address.
    for i, s in enumerate(["ACME FULFILLMENT CENTER", "1200 INDUSTRIAL PKWY STE 4",
                           "COLUMBUS OH 43215-1234"]):
        text(0.12, 1.7 + i * 0.15, s, 8)
    text(3.0, 1.7, "0006", 9)
    text(0.12, 2.3, "SHIP TO:", 9, bold=True)
    for i, s in enumerate(["JANE Q CUSTOMER", "ATTN RECEIVING DOCK 7", "4567 MAPLE AVENUE APT 12B",
                           "SPRINGFIELD IL 62704-5678"]):
        text(0.75, 2.3 + i * 0.24, s, 12, bold=(i == 0))
    paste_imb(img, dpi, d(0.75), d(3.32))
    hrule(3.62, 0.05)
    # Code 128 (tray barcode) as a stand-in for the IMpb, 3 dots per module, 0.9 in tall.
    text(0.9, 3.72, "USPS TRACKING # EP", 11, bold=True)
    sym = json.loads(subprocess.run(
        [LABELCTL, "tray", "--zip", "62704", "--cin", "123", "--mailer-id", "123456",
         "--serial", "00000001", "--json"], check=True, capture_output=True, text=True).stdout)
    modules = sym["symbol"]["modules"]
    x0 = (W - 3 * len(modules)) // 2
    for i, m in enumerate(modules):
        if m == "1":
            g.rectangle([x0 + 3 * i, d(3.98), x0 + 3 * i + 2, d(4.88)], fill=0)
    text(0.75, 4.93, "9405 5036 9930 0123 4567 89", 11)
    hrule(5.25, 0.05)
    text(0.12, 5.4, "Electronic Rate Approved #038555749", 8)
    text(0.12, 5.58, "labeld bench label  REF 2026-11-27  PO 88341", 8)
    save(a, img)


def address_label(a, img, g, d, text):
    for i, s in enumerate(["ACME FULFILLMENT CENTER", "1200 INDUSTRIAL PKWY STE 4",
                           "COLUMBUS OH 43215-1234"]):
        text(0.15, 0.15 + i * 0.15, s, 8)
    for i, s in enumerate(["JANE Q CUSTOMER", "4567 MAPLE AVENUE APT 12B",
                           "SPRINGFIELD IL 62704-5678"]):
        text(0.75, 2.4 + i * 0.24, s, 12)
    paste_imb(img, a.dpi, d(0.75), d(3.2))
    save(a, img)


def paste_imb(img, dpi, x, y):
    """labeld's IMb, dot for dot."""
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        subprocess.run([LABELCTL, "imb", "render", "00270123456200800001", "987654321",
                        "--dpi", str(dpi), "-o", f.name], check=True)
        img.paste(Image.open(f.name).convert("1"), (x, y))


def save(a, img):
    img.save(a.output)
    ink, (w, h) = img.histogram()[0], img.size
    print(f"{a.output}: {w}x{h} dots at {a.dpi} dpi, {ink} black dots ({100 * ink / (w * h):.1f} %)")


if __name__ == "__main__":
    main()
