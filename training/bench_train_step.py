"""How long one training step of the OCR net takes here, ms per step (random data).

    python -m training.bench_train_step [--steps 20] [--batch 64] [--threads 2]

The OCR command trains for a fixed time, so its step count (and with it the
model's accuracy) follows this figure. Compare TensorFlow's kernels with
`TF_ENABLE_ONEDNN_OPTS=0 python -m training.bench_train_step` (the trainers
turn oneDNN on unless the variable is set), and TensorFlow's op scheduling with
`--inter-op 1` (train_ocr's --inter-op, default 2), and bfloat16 compute with
`--precision bf16` (measured faster on a CPU with AMX and AVX-512 BF16), and
depthwise-separable convolutions with `--conv separable`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from edge.argtypes import positive_float, positive_int
from training import OCR_CONVS, OCR_HEIGHT, OCR_HEIGHTS, OCR_PRECISIONS, OCR_STEMS, OCR_WIDTH


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=positive_int, default=20, help="timed steps (after 3 warm-up steps)")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--threads", type=positive_int, default=os.cpu_count() or 2)
    p.add_argument("--inter-op", type=positive_int, default=2, help="ops TensorFlow runs at once (as train_ocr)")
    p.add_argument("--width", type=positive_float, default=OCR_WIDTH, help="channel width multiplier (as train_ocr)")
    p.add_argument("--stem", choices=OCR_STEMS, default="pool", help="as train_ocr --stem")
    p.add_argument("--conv", choices=OCR_CONVS, default="full", help="as train_ocr --conv")
    p.add_argument("--height", type=int, choices=OCR_HEIGHTS, default=OCR_HEIGHT, help="as train_ocr --height")
    p.add_argument("--precision", choices=OCR_PRECISIONS, default="float32", help="as train_ocr --precision")
    a = p.parse_args(argv)
    from training.loop import configure_tf, tf_environment

    tf_environment()
    tf = configure_tf(a.threads, seed=0, inter_op=a.inter_op)
    from training.ocr_model import ALPHABET, INPUT_W, build_ocr_model
    from training.train_ocr import make_train_step

    model = build_ocr_model(width=a.width, stem=a.stem, height=a.height, precision=a.precision,
                            conv=a.conv)
    step = make_train_step(tf, model, tf.keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (a.batch, a.height, INPUT_W, 1)).astype(np.float32))
    y = tf.constant(rng.integers(0, len(ALPHABET), (a.batch, 8)).astype(np.int32))
    ylen = tf.constant(rng.integers(5, 9, a.batch).astype(np.int32))
    for _ in range(3):
        float(step(x, y, ylen))
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        float(step(x, y, ylen))
        times.append((time.perf_counter() - t) * 1000)
    ms = float(np.median(times))
    print(json.dumps({"ms_per_step": round(ms, 1), "img_per_s": round(a.batch * 1000 / ms),
                      "steps": a.steps, "batch": a.batch, "stem": a.stem, "conv": a.conv, "height": a.height,
                      "precision": a.precision,
                      "threads": a.threads, "inter_op": a.inter_op,
                      "TF_ENABLE_ONEDNN_OPTS": os.environ["TF_ENABLE_ONEDNN_OPTS"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
