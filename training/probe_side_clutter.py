"""How well an OCR model ignores one kind of US side clutter, on synthetic plates.

    python -m training.probe_side_clutter [--model M] [--kind upright_chars] [--n 400]

Renders US plates with that kind of clutter left of the serial (or, with
`--kind none`, no side clutter), degrades them as training does and prints the
model's exact-match share as one JSON line. A model that reads these well but
real crops' side clutter badly has learnt a cue the real plates lack.
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edge.argtypes import positive_int
from training import REPO, SHARED


def side_kinds() -> list[str]:
    from training import plate_render as pr

    return sorted({f.__name__.removeprefix("_side_") for f in pr._SIDE_KINDS})


@contextmanager
def only_side_clutter(kind: str):
    """US plates drawn with `kind` left of the serial on every plate ('none': never), for the block only."""
    from training import plate_render as pr

    saved = pr.US_CLUTTER_P, pr.US_SIDES_P, pr._SIDE_KINDS
    try:
        if kind == "none":
            pr.US_CLUTTER_P = dict(pr.US_CLUTTER_P, side=0.0)
        else:
            pr.US_CLUTTER_P = dict(pr.US_CLUTTER_P, side=1.0)
            pr.US_SIDES_P = (1.0, 0.0, 0.0)
            pr._SIDE_KINDS = (getattr(pr, "_side_" + kind),)
        yield
    finally:
        pr.US_CLUTTER_P, pr.US_SIDES_P, pr._SIDE_KINDS = saved


def probe(reader, kind: str, n: int, seed: int, backgrounds=None) -> int:
    """How many of n synthetic US plates with that side clutter the reader gets exactly right."""
    from training.degrade import degrade
    from training.plate_render import render_plate

    rng = np.random.default_rng(seed)
    right = 0
    with only_side_clutter(kind):
        for _ in range(n):
            plate = render_plate(rng, "US", backgrounds=backgrounds)
            right += reader.read(degrade(plate, rng, backgrounds=backgrounds)).text == plate.text
    return right


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(REPO / "tflite_graphs" / "ocr" / "ocr.tflite"))
    p.add_argument("--kind", default="upright_chars", choices=side_kinds() + ["none"])
    p.add_argument("--n", type=positive_int, default=400)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--backgrounds", default=str(SHARED / "train" / "backgrounds"))
    a = p.parse_args(argv)
    from edge.reader import TfliteReader
    from training.ocr_data import load_backgrounds

    model = Path(a.model)
    if not model.is_file():
        p.error(f"--model: no such file: {model}")
    reader = TfliteReader(model, model.with_name("alphabet.txt"))
    bgs = load_backgrounds(a.backgrounds) or None
    right = probe(reader, a.kind, a.n, a.seed, bgs)
    print(json.dumps({"kind": a.kind, "n": a.n, "exact": round(right / a.n, 4), "model": str(model)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
