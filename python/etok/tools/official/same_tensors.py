"""Checks that two safetensors files hold bit-identical tensors (names, dtypes, shapes, bytes) and
lists how their metadata differ: the round-trip check of `etok-tools official to-official`
followed by `etok-tools convert` (which writes only format, config and name into the metadata).

usage: etok-tools official same-tensors A.safetensors B.safetensors
Exit status: 0 tensors identical, 1 they differ (each difference printed), 2 bad usage.
"""

from __future__ import annotations

import json
import struct
import sys


def load(path: str) -> tuple[dict, dict, memoryview]:
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    return header, meta, memoryview(blob)[8 + n:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if len(argv) != 2:
        print(next(l for l in __doc__.splitlines() if l.startswith("usage:")), file=sys.stderr)
        return 2
    (ha, ma, da), (hb, mb, db) = load(argv[0]), load(argv[1])
    bad = 0
    for name in sorted(set(ha) | set(hb)):
        if name not in ha or name not in hb:
            print(f"tensor {name}: only in {argv[0] if name in ha else argv[1]}")
            bad += 1
            continue
        a, b = ha[name], hb[name]
        if (a["dtype"], a["shape"]) != (b["dtype"], b["shape"]):
            print(f"tensor {name}: {a['dtype']}{a['shape']} against {b['dtype']}{b['shape']}")
            bad += 1
        elif da[slice(*a["data_offsets"])] != db[slice(*b["data_offsets"])]:
            print(f"tensor {name}: bytes differ")
            bad += 1
    for k in sorted(set(ma) | set(mb)):
        if ma.get(k) != mb.get(k):
            print(f"metadata {k}: {ma.get(k)!r} against {mb.get(k)!r}")
    print(f"{len(ha)} tensors: {'bit-identical' if bad == 0 else f'{bad} differ'}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
