"""Where the detector's inference time goes, stage by stage (int8, one thread).

    python -m training.profile_detector [--size 320] [--alpha 0.35] [--model PATH]

The Python interpreter has no per-op profiler, so this builds the detector's
architecture (training.det_model, random weights: an int8 model's speed does
not depend on its weights), cuts it after each backbone stage, converts every
cut to full-int8 TFLite with uint8 input like the shipped model, and times
the cuts in turn (interleaved, so a noisy machine hurts them all alike).
A stage's time is the difference between consecutive cuts. The 3 ms target
of the detector is met or missed by these numbers, so a new architecture is
chosen from them before a 100-minute training run, not after.

Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.argtypes import positive_int

# (label, keras layer the cut ends at), per stem (training.det_model.STEMS).
# Strides are of the 320 px input.
_HEADS = {
    "mobilenet": (
        ("stem conv 3x3/2 (+input quantize, rescale)", "Conv1_relu"),
        ("block 0 (stride 2)", "expanded_conv_project_BN"),
        ("block 1 (stride 2 -> 4)", "block_1_project_BN"),
        ("blocks 2-3 (stride 4 -> 8)", "block_3_project_BN"),
    ),
    "s4": (
        ("stem conv 4x4/4 (+input quantize, rescale)", "stem_relu"),
        ("block 2 (stride 4)", "block_2_project_BN"),
        ("block 3 (stride 4 -> 8)", "block_3_project_BN"),
    ),
}
_TAIL = (
    ("blocks 4-6 expand (stride 8, FPN tap)", "block_6_expand_relu"),
    ("blocks 6-13 expand (stride 16, FPN tap)", "block_13_expand_relu"),
    ("blocks 13-16 (stride 32)", "block_16_project_BN"),
    ("last 1x1 conv to 1280 channels", "out_relu"),
)


def stages(stem: str = "mobilenet") -> tuple[tuple[str, str], ...]:
    return _HEADS[stem] + _TAIL


WHOLE = "whole detector (FPN, heads, post-process)"


def stage_rows(order: list[str], cumulative_ms: dict[str, float],
               cumulative_macs: dict[str, int]) -> list[dict[str, object]]:
    """Cuts measured from the input -> one row per stage: its own ms and
    multiply-adds (the difference from the cut before) and the cumulative ms."""
    rows, prev_ms, prev_macs = [], 0.0, 0
    for label in order:
        ms, macs = cumulative_ms[label], cumulative_macs[label]
        rows.append({"stage": label, "stage_ms": round(ms - prev_ms, 2), "cumulative_ms": round(ms, 2),
                     "stage_mmacs": round((macs - prev_macs) / 1e6, 1)})
        prev_ms, prev_macs = ms, macs
    return rows


def _convert(model, size: int, rng: np.random.Generator) -> bytes:
    import warnings

    import tensorflow as tf

    warnings.filterwarnings("ignore", message="Statistics for quantized inputs")

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)] for _ in range(4))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.int8
    return conv.convert()


def layer_macs(layer) -> int:
    """Multiply-adds of one conv layer (0 for the rest: they are memory moves)."""
    from keras import layers

    out = layer.output.shape
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return out[1] * out[2] * out[3] * kh * kw
    if isinstance(layer, layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        return out[1] * out[2] * layer.input.shape[-1] * (kh * kw + out[3])
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        return out[1] * out[2] * out[3] * kh * kw * layer.input.shape[-1]
    return 0


def cumulative_macs(model, stem: str = "mobilenet") -> dict[str, int]:
    """label -> multiply-adds of the model up to that cut (keras lists layers in graph order)."""
    names = [layer.name for layer in model.layers]
    per_layer = [layer_macs(layer) for layer in model.layers]
    out = {label: sum(per_layer[:names.index(layer) + 1]) for label, layer in stages(stem)}
    out[WHOLE] = sum(per_layer)
    return out


def build_cuts(size: int, alpha: float, work: Path,
               stem: str = "mobilenet") -> tuple[dict[str, Path], dict[str, int]]:
    """label -> int8 .tflite of the backbone up to that stage ('whole detector': the
    full SSD with its post-process), and label -> cumulative multiply-adds."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from training.det_model import build_detector, n_anchors
    from training.export_detector import export_detector

    rng = np.random.default_rng(0)
    model = build_detector(alpha=alpha, size=size, stem=stem)
    # one training-mode pass so BatchNorm statistics are not all 0/1
    model(rng.uniform(0, 255, (4, size, size, 3)).astype(np.float32), training=True)
    cuts: dict[str, Path] = {}
    for label, layer in stages(stem):
        path = work / f"{layer}.tflite"
        path.write_bytes(_convert(keras.Model(model.input, model.get_layer(layer).output), size, rng))
        cuts[label] = path
    n = n_anchors(size)
    rep = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
    cuts[WHOLE] = export_detector(
        model, rng.uniform(0, 1, (n, 4)).astype(np.float32), rep, work / "detector.tflite")
    return cuts, cumulative_macs(model, stem)


def time_models(paths: dict[str, Path], rounds: int, invokes: int) -> dict[str, float]:
    """label -> median ms per invoke, one thread, XNNPACK (the daemon's runtime)."""
    from edge.runtime import load_interpreter

    rng = np.random.default_rng(1)
    interps = {}
    for label, path in paths.items():
        it = load_interpreter(path, num_threads=1)
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], rng.integers(0, 256, d["shape"]).astype(d["dtype"]))
        it.invoke()
        interps[label] = it
    samples: dict[str, list[float]] = {label: [] for label in interps}
    for _ in range(rounds):
        for label, it in interps.items():
            t = time.perf_counter()
            for _ in range(invokes):
                it.invoke()
            samples[label].append((time.perf_counter() - t) / invokes * 1000)
    return {label: float(np.median(v)) for label, v in samples.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=positive_int, default=320, help="input size in px")
    p.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width")
    p.add_argument("--stem", choices=tuple(_HEADS), default="s4",
                   help="backbone stem (training.det_model.STEMS; default: the shipped detector's)")
    p.add_argument("--model", default=None, help="also time this .tflite (e.g. the shipped detect.tflite)")
    p.add_argument("--rounds", type=positive_int, default=7)
    p.add_argument("--invokes", type=positive_int, default=20, help="invokes per round")
    a = p.parse_args(argv)
    if a.model and not Path(a.model).is_file():
        p.error(f"--model: {a.model}: no such file")
    with tempfile.TemporaryDirectory(prefix="profile_detector_") as tmp:
        paths, macs = build_cuts(a.size, a.alpha, Path(tmp), a.stem)
        if a.model:
            paths[f"--model {a.model}"] = Path(a.model)
        ms = time_models(paths, a.rounds, a.invokes)
    rows = stage_rows([label for label, _ in stages(a.stem)] + [WHOLE], ms, macs)
    width = max(len(r["stage"]) for r in rows)
    print(f"{'stage':<{width}}  {'ms':>6}  {'cumul.':>6}  {'M MACs':>6}")
    for r in rows:
        print(f"{r['stage']:<{width}}  {r['stage_ms']:6.2f}  {r['cumulative_ms']:6.2f}  {r['stage_mmacs']:6.1f}")
    doc = {"size": a.size, "alpha": a.alpha, "stem": a.stem, "threads": 1, "stages": rows}
    if a.model:
        doc["model"] = a.model
        doc["model_ms"] = round(ms[f"--model {a.model}"], 2)
        print(f"{a.model}: {doc['model_ms']:.2f} ms per inference")
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
