"""The detector's one training command works end to end: train -> int8 export
with the fused TFLite_Detection_PostProcess op -> the runtime detector loads it.

A tiny run (4 steps) of the command the shipped model was made with, on
synthetic scenes only (no real frames, so it runs without ../shared), then
the product's own SsdTfliteDetector loads and runs the file; a second run
with the same --work resumes from the checkpoint instead of starting over.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.detector import SsdTfliteDetector
from edge.runtime import describe, load_interpreter

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_train_export_load_detect_and_resume(tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "training.train_detector", "--tiny", "--work", str(tmp_path / "work"),
            "--out", str(out), "--threads", "2", "--real", "", "--val", "", "--backgrounds", ""]
    first = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    model, labels = out / "detect.tflite", out / "labelmap.txt"
    assert labels.read_text().strip() == "plate"
    figures = json.loads((out / "training_figures.json").read_text())["figures"]
    assert figures["steps"] == 4 and figures["command"].startswith("python -m training.train_detector --tiny")
    assert "detect.tflite" in (out / "MODEL_CARD.md").read_text()

    interp = load_interpreter(model, num_threads=1)
    assert "uint8" in describe(interp)  # full-integer: uint8 input
    assert "TFLite_Detection_PostProcess" in model.read_bytes().decode("latin-1")
    detector = SsdTfliteDetector(model, labels, num_threads=1, score_threshold=0.01)
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    found = detector.detect(frame)
    assert len(found) <= detector.max_detections
    for d in found:
        assert 0.01 <= d.score <= 1.0
        assert 0 <= d.box.x0 < d.box.x1 <= 640 and 0 <= d.box.y0 < d.box.y1 <= 360

    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "resumed from" in second.stdout and "at step 4 of 4" in second.stdout


@pytest.mark.slow
def test_the_s4_stem_exports_to_a_model_the_runtime_detector_runs(tmp_path):
    """The faster stem (training.det_model STEMS) converts to full int8 with the post-process op."""
    from training.anchors import make_anchors
    from training.det_model import build_detector
    from training.export_detector import export_detector

    rng = np.random.default_rng(0)
    model = build_detector(size=128, stem="s4")
    model(rng.uniform(0, 255, (2, 128, 128, 3)).astype(np.float32), training=True)
    rep = [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(2)]
    path = export_detector(model, make_anchors(128), rep, tmp_path / "detect.tflite")
    (tmp_path / "labelmap.txt").write_text("plate\n")
    assert "uint8" in describe(load_interpreter(path, num_threads=1))
    detector = SsdTfliteDetector(path, tmp_path / "labelmap.txt", num_threads=1, score_threshold=0.01)
    assert len(detector.detect(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8))) <= detector.max_detections


def test_an_unknown_stem_is_named():
    from training.det_model import build_detector

    with pytest.raises(ValueError, match="stem must be one of mobilenet, s4, got 'vgg'"):
        build_detector(stem="vgg")
