"""Do the two readers' confidences mean the same thing? Checked on crops we may tune on.

    python -m training.check_fallback [--model M] [--crops DIR] [--synthetic N]

The combined reader (edge.reader.CombinedReader) asks Tesseract when the
model's reading is below `reader.tesseract.fallback_below`. Keeping the more
confident reading would only be fair if a confidence of 0.7 were as often
right from either engine; it is not, so the reader weighs Tesseract's reading
by the model's own probability of it. This reads the held-out 10 % of ../shared/train/br-crops
(training.ocr_data.is_held_out) and N freshly rendered synthetic crops (a seed
no training run uses) with both readers as the daemon runs them, and prints,
per engine, how often a reading is right in each confidence band, then, per
fallback threshold, what the model alone and the fallback rule get right on
the crops below it. The last line is one JSON object. The evaluation sets in
../shared/eval are not read. No TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

import numpy as np

from edge.second_look import DEFAULT_BELOW
from training.ocr_data import add_held_out_crop_args, check_held_out_crop_args

BANDS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)
SEED = 977  # far from the seeds the documented training runs render with (2-4)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_held_out_crop_args(p)
    p.add_argument("--synthetic", type=int, default=1500, help="synthetic crops to render and read (0: none)")
    args = p.parse_args(argv)
    check_held_out_crop_args(p, args)
    if args.synthetic < 0:
        p.error(f"--synthetic: must be 0 or more, got {args.synthetic}")
    return args


def crops(args: argparse.Namespace, alphabet: str) -> list:
    """The held-out real crops, then the synthetic ones, as eval-ocr's samples."""
    from edge.evaluate import Sample
    from training.ocr_data import is_held_out, labelled_crops, synthetic_set

    out = [Sample(name, gray, text) for name, gray, text in labelled_crops(str(args.crops), alphabet)
           if is_held_out(name)]
    if args.synthetic:
        with tempfile.TemporaryDirectory() as cache:
            imgs, labs = synthetic_set(cache, args.synthetic, args.synthetic, SEED, alphabet, None, workers=1)
        out += [Sample(f"synthetic {k}", img, "".join(alphabet[i] for i in lab if i >= 0))
                for k, (img, lab) in enumerate(zip(imgs, labs))]
    return out


def bands(conf: np.ndarray, right: np.ndarray) -> list[list[float]]:
    """[low, high, n, share right] per confidence band (the last band includes 1.0)."""
    rows = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:]):
        m = (conf >= lo) & ((conf < hi) | (hi == BANDS[-1]))
        rows.append([lo, hi, int(m.sum()), round(float(right[m].mean()), 3) if m.any() else None])
    return rows


def main(argv=None) -> int:
    from edge.evaluate import combine, is_exact, time_reader, tflite_reader
    from edge.tesseract_reader import TesseractReader

    args = parse_args(argv)
    model = tflite_reader(args.model, args.model.parent / "alphabet.txt", second_look_below=DEFAULT_BELOW)
    samples = crops(args, model.primary.alphabet)
    if not samples:
        raise SystemExit(f"check_fallback: no held-out crops in {args.crops} and --synthetic 0")
    scored = {"tflite": time_reader(model, samples), "tesseract": time_reader(TesseractReader(), samples)}
    conf = {name: np.array([s.reading.confidence for s in rs]) for name, rs in scored.items()}
    right = {name: np.array([is_exact(s) for s in rs]) for name, rs in scored.items()}
    result = {"n": len(samples), "synthetic": args.synthetic, "model": str(args.model),
              "bands": {name: bands(conf[name], right[name]) for name in scored}, "fallback": {}}
    print(f"share of readings right by confidence (held-out br-crops + {args.synthetic} synthetic, n {len(samples)})")
    for name, rows in result["bands"].items():
        print(f"{name:<10} " + "  ".join(f"{lo:.1f}-{hi:.1f}: {share if share is not None else '-'} ({n})"
                                         for lo, hi, n, share in rows))
    print("fallback_below  below   model right  tesseract right  kept right")
    for t in THRESHOLDS:
        # the daemon's own rule (edge.reader.CombinedReader), replayed on the readings above
        kept, _ = combine(samples, scored["tflite"], scored["tesseract"], t, model)
        m = conf["tflite"] < t
        row = {"below": int(m.sum()), "model_right": int(right["tflite"][m].sum()),
               "tesseract_right": int(right["tesseract"][m].sum()),
               "kept_right": int(np.array([is_exact(s) for s in kept])[m].sum())}
        result["fallback"][str(t)] = row
        print(f"{t:<15} {row['below']:<7} {row['model_right']:<12} {row['tesseract_right']:<16} {row['kept_right']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
