#!/usr/bin/env python3
"""Run an SSD .tflite with tflite_runtime ONLY and print its detections as JSON.

Shows an exported detector also works on the legacy runtime (tflite-runtime
2.14, numpy<2; the `.venv-tflrt` venv from scripts/setup.sh). Stdlib + numpy
only: no cv2, and nothing that imports TensorFlow, which breaks
tflite_runtime when loaded first. The input is the model's raw input, RGB,
already at the model's size: a .npy of shape [H,W,3] or [1,H,W,3].

    .venv-tflrt/bin/python scripts/tflite_runtime_check.py detect.tflite image.npy

Prints one JSON object: runtime, version, count and detections, each with
box [ymin, xmin, ymax, xmax] (0..1), class and score, only the first `count`
rows. A uint8 .npy for a float model is normalised with --mean/--std, as
edge.detector does. Exit 0, or 2 with a one-line error naming the culprit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

NAMES = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def _fail(message: str) -> int:
    sys.stderr.write(f"tflite_runtime_check: error: {message}\n")
    return 2


def _signature_outputs(interp) -> dict[str, int]:
    sigs = interp.get_signature_list()
    if not sigs:
        return {}
    key = "serving_default" if "serving_default" in sigs else next(iter(sigs))
    runner = interp.get_signature_runner(key)
    out = {name: int(d["index"]) for name, d in runner.get_output_details().items()}
    del runner  # a live runner blocks invoke()
    return out


def _roles(interp) -> tuple[int, int, int, int]:
    """(boxes, classes, scores, count) indices: by name, else canonical order."""
    sig = _signature_outputs(interp)
    if all(n in sig for n in NAMES):
        return tuple(sig[n] for n in NAMES)  # type: ignore[return-value]
    if sig:
        order = [i for _, i in sorted(sig.items(), key=lambda kv: int((re.findall(r"\d+", kv[0]) or ["0"])[-1]))]
    else:
        order = [int(d["index"]) for d in interp.get_output_details()]
    shapes = {int(d["index"]): tuple(d["shape"]) for d in interp.get_output_details()}
    boxes = [i for i in order if len(shapes[i]) == 3]
    count = [i for i in order if int(np.prod(shapes[i])) == 1]
    rows = [i for i in order if len(shapes[i]) == 2 and shapes[i][1] > 1]
    if len(boxes) != 1 or len(count) != 1 or len(rows) != 2:
        raise ValueError(f"not an SSD post-process model (outputs {sorted(shapes.values())})")
    return boxes[0], rows[0], rows[1], count[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("input", type=Path, help=".npy RGB input at the model's size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mean", type=float, default=127.5, help="float models: uint8 input -> (x - mean) / std")
    ap.add_argument("--std", type=float, default=127.5)
    args = ap.parse_args(argv)

    try:
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        return _fail("tflite_runtime is not installed in this Python (use .venv-tflrt)")
    if not args.model.is_file():
        return _fail(f"{args.model}: model file not found")
    try:
        interp = Interpreter(model_path=str(args.model), num_threads=args.threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        return _fail(f"{args.model}: cannot load model ({(str(e).splitlines() or ['?'])[0]})")
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        return _fail(f"{args.input}: cannot read .npy ({e})")
    inp = interp.get_input_details()[0]
    want = tuple(int(v) for v in inp["shape"])
    if x.ndim == 3:
        x = x[None]
    if tuple(x.shape) != want:
        return _fail(f"{args.input}: shape {list(x.shape)} does not fit the model input {list(want)}")
    if inp["dtype"] == np.int8 and x.dtype == np.uint8:
        x = (x.astype(np.int16) - 128).astype(np.int8)
    elif inp["dtype"] == np.float32 and x.dtype == np.uint8:
        x = (x.astype(np.float32) - np.float32(args.mean)) / np.float32(args.std)
    try:
        roles = _roles(interp)
    except ValueError as e:
        return _fail(f"{args.model}: {e}")
    interp.set_tensor(inp["index"], x.astype(inp["dtype"], copy=False))
    interp.invoke()
    boxes, classes, scores, count = (interp.get_tensor(i) for i in roles)
    n = int(np.clip(float(count.ravel()[0]), 0, boxes.shape[1]))
    dets = [{"box": [round(float(v), 6) for v in boxes[0, k]], "class": float(classes[0, k]),
             "score": round(float(scores[0, k]), 6)} for k in range(n)]
    print(json.dumps({"runtime": "tflite_runtime", "version": tflite_runtime.__version__,
                      "count": n, "detections": dets}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
