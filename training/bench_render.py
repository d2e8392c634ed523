"""How fast the OCR's training crops are made (render_plate + degrade), ms per crop, one process.

    python -m training.bench_render [--n 300] [--repeats 3]

Rendering is a fixed share of the OCR command's time budget: what it costs
here is time the model does not train.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edge.argtypes import positive_int
from training import SHARED


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=positive_int, default=300, help="crops per repeat")
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument("--backgrounds", default=str(SHARED / "train" / "backgrounds"))
    a = p.parse_args(argv)
    from training.degrade import degrade
    from training.ocr_data import load_backgrounds
    from training.plate_render import render_plate

    bgs = load_backgrounds(a.backgrounds) or None
    rng = np.random.default_rng(0)
    for _ in range(50):  # warm caches (fonts, glyphs)
        render_plate(rng, backgrounds=bgs)
    best = float("inf")
    for _ in range(a.repeats):
        t = time.perf_counter()
        for _ in range(a.n):
            degrade(render_plate(rng, backgrounds=bgs), rng, backgrounds=bgs)
        best = min(best, (time.perf_counter() - t) / a.n * 1000)
    print(f'{{"ms_per_crop": {best:.2f}, "n": {a.n}, "repeats": {a.repeats}}}')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
