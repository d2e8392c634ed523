"""Compare OCR models crop by crop on the real evaluation sets.

    python -m training.compare_ocr --model tflite_graphs/ocr --model runs/ocr_retrain20

Two models with the same exact-match rate can be right on the same crops or
on different ones. This prints, per set, each model's exact rate, how often
they all agree, the share of crops at least one reads right (what no choice
between them can beat) and the exact rate of two ways of combining them (the
most confident reading; a vote, ties going to the larger summed
confidence). Much disagreement with a high "any right" says the runs vary
more than they are limited, which is what weight averaging (`--ema`) and
more seeds address. Each model reads as the daemon does (its second look
unless --second-look-below 0), one thread, and each read is timed: the
models take turns crop by crop, so a machine whose speed drifts between
runs slows them alike and their median times compare.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.argtypes import fraction, positive_int
from edge.evaluate import DataError, Sample, load_boxes, load_crops, tflite_reader
from edge.reader import Reader, rank
from edge.second_look import DEFAULT_BELOW
from edge.types import Reading
from training import SHARED


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", type=Path, required=True,
                   help="a folder with ocr.tflite and alphabet.txt (give two or more)")
    p.add_argument("--us", type=Path, default=SHARED / "eval" / "openalpr-us-crops", help="crops + groundtruth.csv")
    p.add_argument("--eu", type=Path, default=SHARED / "eval" / "openalpr-eu", help="photos + box .txt files")
    p.add_argument("--second-look-below", type=fraction, default=DEFAULT_BELOW,
                   help="the daemon's default unless given; 0 = one read per crop")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N crops of each set")
    a = p.parse_args(argv)
    if len(a.model) < 2:
        p.error("argument --model: give two models or more to compare")
    for folder in a.model:
        for name in ("ocr.tflite", "alphabet.txt"):
            if not (folder / name).is_file():
                p.error(f"argument --model: {folder / name}: no such file")
    return a


def vote(readings: Sequence[Reading]) -> str:
    """The text most models read; a tie goes to the larger summed confidence."""
    score: dict[str, tuple[int, float]] = {}
    for r in readings:
        n, conf = score.get(r.text, (0, 0.0))
        score[r.text] = (n + 1, conf + r.confidence)
    return max(score, key=lambda t: score[t])


def read_in_turn(readers: Sequence[Reader], samples: Sequence[Sample]
                 ) -> tuple[list[list[Reading]], list[list[float]]]:
    """readings[m][i] and ms[m][i]: model m on sample i. The models read each
    crop in turn, first to last on even crops and last to first on odd ones,
    so neither always reads a crop first (warm caches) or last."""
    readings: list[list[Reading]] = [[] for _ in readers]
    ms: list[list[float]] = [[] for _ in readers]
    for i, s in enumerate(samples):
        order = range(len(readers)) if i % 2 == 0 else reversed(range(len(readers)))
        for m in order:
            t0 = time.perf_counter()
            readings[m].append(readers[m].read(s.image))
            ms[m].append((time.perf_counter() - t0) * 1e3)
    return readings, ms


def compare(samples: Sequence[Sample], readings: Sequence[Sequence[Reading]]) -> dict[str, object]:
    """readings[m][i]: model m's reading of sample i."""
    truth = [s.truth for s in samples]
    right = np.array([[r.text == t for r, t in zip(rows, truth)] for rows in readings])
    per_crop = list(zip(*readings))
    texts = [{r.text for r in rs} for rs in per_crop]
    return {
        "n": len(samples),
        "exact": [round(float(x), 4) for x in right.mean(1)],
        "all_agree": round(float(np.mean([len(t) == 1 for t in texts])), 4),
        "any_right": round(float(right.any(0).mean()), 4),
        "most_confident": round(float(np.mean([max(rs, key=rank).text == t for rs, t in zip(per_crop, truth)])), 4),
        "vote": round(float(np.mean([vote(rs) == t for rs, t in zip(per_crop, truth)])), 4),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:  # the data before the models: a wrong folder is one line, not a traceback
        sets = {"us": load_crops(args.us), "eu": load_boxes(args.eu)}
    except DataError as e:
        sys.stderr.write(f"compare_ocr: error: {e}\n")
        return 2
    readers = [tflite_reader(m / "ocr.tflite", m / "alphabet.txt", second_look_below=args.second_look_below)
               for m in args.model]
    result: dict[str, object] = {"models": [str(m) for m in args.model]}
    for name, samples in sets.items():
        samples = samples[: args.limit] if args.limit else samples
        readings, ms = read_in_turn(readers, samples)
        row = result[name] = compare(samples, readings)
        row["ms_per_crop"] = [round(float(np.median(t)), 3) for t in ms]  # median, as eval-ocr
        sys.stdout.write(f"{name}: n {row['n']}, exact {row['exact']}, all agree {row['all_agree']}, "
                         f"any right {row['any_right']}, most confident {row['most_confident']}, "
                         f"vote {row['vote']}, ms per crop {row['ms_per_crop']}\n")
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
