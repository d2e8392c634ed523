"""Choose the reader's second look on real crops we may tune on: the held-out br-crops.

    python -m training.tune_second_look [--model M] [--crops DIR]

Reads the 10 % of ../shared/train/br-crops that OCR training holds out
(training.ocr_data.is_held_out) with the shipped TFLite reader, once per crop
and then with each candidate second look (a set of recrops x a confidence
threshold, edge.second_look), and prints exact-match per candidate, best
first; the last line is one JSON object. The evaluation sets in ../shared/eval
are not read: they may not be tuned on. No TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import json
import sys

from edge.reader import TfliteReader
from edge.second_look import DEFAULT_BELOW, DEFAULT_RECROPS, Recrop, keep_best
from training.ocr_data import add_held_out_crop_args, check_held_out_crop_args

PAD, LEFT, RIGHT, SIDES, TOP_BOTTOM, ALL_ROUND = DEFAULT_RECROPS
CANDIDATE_SETS: dict[str, tuple[Recrop, ...]] = {
    "default (six)": DEFAULT_RECROPS,
    "padded": (PAD,),
    "sides trimmed": (LEFT, RIGHT, SIDES),
    "padded, sides, top+bottom": (PAD, SIDES, TOP_BOTTOM),
    "six + 12 % left": DEFAULT_RECROPS + (Recrop(left=0.12),),
}
THRESHOLDS = (0.6, 0.7, DEFAULT_BELOW, 0.9)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_held_out_crop_args(p)
    args = p.parse_args(argv)
    check_held_out_crop_args(p, args)
    return args


def main(argv=None) -> int:
    from training.ocr_data import is_held_out, labelled_crops

    args = parse_args(argv)
    reader = TfliteReader(args.model, args.model.parent / "alphabet.txt")
    recrops = sorted({r for rs in CANDIDATE_SETS.values() for r in rs}, key=Recrop.as_list)
    rows = []  # (truth, first reading, {recrop: reading})
    for name, gray, text in labelled_crops(str(args.crops), reader.alphabet):
        if is_held_out(name):
            rows.append((text, reader.read(gray), {r: reader.read(r.apply(gray)) for r in recrops}))
    if not rows:
        raise SystemExit(f"tune_second_look: no held-out crops in {args.crops}")
    n = len(rows)
    results = {"one read": sum(first.text == truth for truth, first, _ in rows) / n}
    for set_name, chosen in CANDIDATE_SETS.items():
        for below in THRESHOLDS:
            good = 0
            for truth, first, again in rows:
                kept = first if first.confidence >= below else keep_best(first, [again[r] for r in chosen])
                good += kept.text == truth
            results[f"{set_name} below {below}"] = good / n
    width = max(map(len, results))
    print(f"{'second look':<{width}}  exact  (held-out br-crops, n {n}, {args.model.name})")
    for key, exact in sorted(results.items(), key=lambda kv: -kv[1]):
        print(f"{key:<{width}}  {exact:.3f}")
    print(json.dumps({"n": n, "exact": {k: round(v, 4) for k, v in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
