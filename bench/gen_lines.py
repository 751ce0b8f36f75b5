#!/usr/bin/env python3
"""Deterministic random valid IMb input lines for bench/compare.sh.

usage: gen_lines.py COUNT [SEED] > lines

Each line is `TRACKING` or `TRACKING,ROUTING`, as `labelctl imb encode -` reads them:
- Barcode ID: first digit 0-9, second digit 0-4 (B3200 §2.1.3);
- STID: any 3 digits;
- Mailer ID: 6 digits starting 0-8 with a 9-digit serial, or 9 digits starting 9 with
  a 6-digit serial (half each);
- routing: none, 5, 9 or 11 digits (a quarter each).
The same COUNT and SEED give the same bytes on the same Python (random.Random with a
fixed seed; compare.sh prints the md5: 1,000,000 lines, default seed, Python 3.11.7
gave cb721d1785a400e1f212eda4e6c1a1e6).
"""
import random
import sys


def digits(rng, n):
    return str(rng.randrange(10**n)).zfill(n)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    count = int(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) == 3 else 20240521
    rng = random.Random(seed)
    routing_lengths = (0, 5, 9, 11)
    out = []
    for i in range(count):
        bi = str(rng.randrange(10)) + str(rng.randrange(5))
        stid = digits(rng, 3)
        if rng.randrange(2):
            mid = "9" + digits(rng, 8)
            serial = digits(rng, 6)
        else:
            mid = str(rng.randrange(9)) + digits(rng, 5)
            serial = digits(rng, 9)
        tracking = bi + stid + mid + serial
        rlen = routing_lengths[rng.randrange(4)]
        out.append(tracking + ("," + digits(rng, rlen) if rlen else ""))
        if len(out) == 65536:
            sys.stdout.write("\n".join(out) + "\n")
            out.clear()
    if out:
        sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
