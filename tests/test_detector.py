"""edge.detector on tiny SSD models exported with the real exporter.

The tiny model's answer is known: its anchors are a 10x10 grid of cells, box
encodings are zero (so a box is its anchor's cell) and a cell's plate logit
grows with the cell's mean brightness: a white cell on black is a plate
(score ~1), a quarter-white cell is not. So a white block on a black frame
must come back exactly where it was drawn, in whatever mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edge.detector import (Detector, SsdTfliteDetector, classes_scores_swapped, load_labels,
                           Region, merge_boxes, plate_classes, read_output_map, regions_for,
                           valid_rows)
from edge.runtime import ModelError
from edge.types import Box

ROOT = Path(__file__).resolve().parents[1]
TFLRT_PYTHON = ROOT / ".venv-tflrt" / "bin" / "python"
CHECK_SCRIPT = ROOT / "scripts" / "tflite_runtime_check.py"
REAL_MODEL = ROOT / "tflite_graphs" / "plates" / "detect.tflite"

_BUILT: dict[str, SimpleNamespace] = {}


# ---------------------------------------------------------------- tiny models

def cell_anchors(n: int = 10) -> np.ndarray:
    """(yc, xc, h, w) anchors, one per cell of an n x n grid, row-major."""
    c = (np.arange(n, dtype=np.float32) + 0.5) / n
    yc, xc = np.meshgrid(c, c, indexing="ij")
    side = np.full(n * n, 1.0 / n, np.float32)
    return np.stack([yc.ravel(), xc.ravel(), side, side], axis=1)


def _tiny_keras(size: int, normalised_input: bool, gain: float):
    """Logit = gain * (cell brightness in -1..1); boxes = 0 (the anchor itself)."""
    import keras
    from keras import layers

    inp = keras.Input((size, size, 3), name="image")
    cells = layers.AveragePooling2D(size // 10)(inp)
    if normalised_input:  # input already in -1..1
        k, b = gain / 3.0, 0.0
    else:                 # raw 0..255 pixels, as our exporter feeds them
        k, b = 2.0 * gain / (3.0 * 255.0), -gain
    logit = layers.Conv2D(1, 1, kernel_initializer=keras.initializers.Constant(k),
                          bias_initializer=keras.initializers.Constant(b))(cells)
    box = layers.Conv2D(4, 1, kernel_initializer="zeros", bias_initializer="zeros")(cells)
    return keras.Model(inp, [layers.Reshape((-1, 4))(box), layers.Reshape((-1, 1))(logit)])


def _export_unnamed(model, anchors: np.ndarray, path: Path, size: int) -> Path:
    """A TF-OD-API-like export: float input, the 4 outputs as a tuple (no names)."""
    import tempfile

    import keras
    import tensorflow as tf

    from training.export_detector import _postprocess_fn

    post = _postprocess_fn(10, 0.1, 0.45)
    anchors_c = tf.constant(anchors)

    def serve(x):
        box, logit = model(x, training=False)
        score = tf.sigmoid(logit)
        return post(box, tf.concat([tf.zeros_like(score), score], axis=-1), anchors_c)

    tmp = tempfile.mkdtemp(prefix="det_unnamed_")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="image")])
    archive.write_out(tmp)
    conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
    conv.allow_custom_ops = True
    path.write_bytes(conv.convert())
    return path


def _export_classifier(path: Path) -> Path:
    """A valid TFLite that is no detector (one [1,2] output)."""
    import keras
    import tensorflow as tf

    inp = keras.Input((32, 32, 3))
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inp))
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out))
    path.write_bytes(conv.convert())
    return path


def build_tiny_models(directory: Path) -> SimpleNamespace:
    """named: ours (uint8 320 px, named outputs, int8); unnamed: float 300 px,
    tuple outputs; classifier: not a detector. Built once per test session."""
    if "models" in _BUILT:
        return _BUILT["models"]
    from training.export_detector import export_detector

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rep = [rng.integers(0, 256, (320, 320, 3)).astype(np.uint8) for _ in range(4)]
    rep += [np.zeros((320, 320, 3), np.uint8), np.full((320, 320, 3), 255, np.uint8)]
    named = export_detector(_tiny_keras(320, False, 20.0), cell_anchors(), rep,
                            directory / "named.tflite", max_detections=10)
    unnamed = _export_unnamed(_tiny_keras(300, True, 6.0), cell_anchors(),
                              directory / "unnamed.tflite", 300)
    classifier = _export_classifier(directory / "classifier.tflite")
    _BUILT["models"] = SimpleNamespace(named=named, unnamed=unnamed, classifier=classifier)
    return _BUILT["models"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> SimpleNamespace:
    return build_tiny_models(tmp_path_factory.mktemp("tiny_ssd"))


def frame_with_blocks(h: int, w: int, *blocks: tuple[int, int, int, int]) -> np.ndarray:
    """Black BGR frame with white rectangles (x0, y0, x1, y1)."""
    img = np.zeros((h, w, 3), np.uint8)
    for x0, y0, x1, y1 in blocks:
        img[y0:y1, x0:x1] = 255
    return img


def assert_box(got: Box, want: tuple[float, float, float, float], tol: float = 1.0) -> None:
    assert np.allclose([got.x0, got.y0, got.x1, got.y1], want, atol=tol), (got, want)


# ---------------------------------------------------------------- our model

def test_named_model_full_frame_boxes_in_frame_pixels(tiny_models):
    det = SsdTfliteDetector(tiny_models.named)
    assert isinstance(det, Detector) and det.input_size == (320, 320)
    # 960x640 squashed to 320: a cell is 96x64 frame px; cell (row 3, col 5).
    found = det.detect(frame_with_blocks(640, 960, (480, 192, 576, 256)))
    assert len(found) == 1 and found[0].score > 0.9
    assert_box(found[0].box, (480, 192, 576, 256))


def test_roi_mode_looks_only_inside_the_roi(tiny_models):
    det = SsdTfliteDetector(tiny_models.named, mode="roi", roi=(0.5, 0.5, 1.0, 1.0))
    # ROI = the bottom-right 320x320 of a 640x640 frame, fed 1:1: cell (1, 2)
    # of the ROI; the block at the top-left is outside the ROI.
    img = frame_with_blocks(640, 640, (384, 352, 416, 384), (0, 0, 64, 64))
    found = det.detect(img)
    assert len(found) == 1
    assert_box(found[0].box, (384, 352, 416, 384))
    assert len(SsdTfliteDetector(tiny_models.named).detect(img)) == 1  # full: only the big block


def test_tiles_find_a_plate_too_small_for_the_full_frame(tiny_models):
    # 32 px block: a quarter of a cell when 640 px is squashed to 320 (missed),
    # a whole cell in a 2x2 grid of 320 px tiles (found, mapped back).
    img = frame_with_blocks(640, 640, (96, 96, 128, 128))
    assert SsdTfliteDetector(tiny_models.named, mode="full").detect(img) == []
    tiled = SsdTfliteDetector(tiny_models.named, mode="tiles", tiles=(2, 2), tile_overlap=0.0)
    found = tiled.detect(img)
    assert len(found) == 1
    assert_box(found[0].box, (96, 96, 128, 128))
    # The same in the bottom-right tile.
    found = tiled.detect(frame_with_blocks(640, 640, (416, 352, 448, 384)))
    assert len(found) == 1
    assert_box(found[0].box, (416, 352, 448, 384))


def test_auto_tiles_only_frames_much_larger_than_the_model_input():
    assert regions_for(640, 480, "auto") == (Region(0, 0, 640, 480),)  # 2x squash: one inference
    big = regions_for(1280, 720, "auto", tiles=(2, 2), overlap=0.2)
    assert big[0] == Region(0, 0, 1280, 720) and big[1:] == regions_for(1280, 720, "tiles", tiles=(2, 2),
                                                                          overlap=0.2)
    lane = regions_for(1280, 720, "auto", roi=(0.25, 0.3, 0.75, 1.0))  # 640x504 lane: no tiles
    assert lane == (Region(320, 216, 960, 720),)
    assert regions_for(1280, 720, "auto", tiles=(1, 1)) == (Region(0, 0, 1280, 720),)


def test_auto_finds_a_plate_too_small_for_the_squashed_frame(tiny_models):
    # 1280 px squashed 4x: a 64 px block is a quarter of a cell (missed); a
    # 640 px tile squashed 2x makes it a whole cell (found, mapped back).
    img = frame_with_blocks(1280, 1280, (192, 192, 256, 256))
    assert SsdTfliteDetector(tiny_models.named, mode="full").detect(img) == []
    found = SsdTfliteDetector(tiny_models.named, mode="auto", tiles=(2, 2), tile_overlap=0.0).detect(img)
    assert len(found) == 1
    assert_box(found[0].box, (192, 192, 256, 256))


def test_boxes_found_in_tiles_need_the_tile_threshold(tiny_models):
    # auto on a 1280 px frame: the 128 px block is seen by the whole-view pass
    # (one cell after the 4x squash) and by a tile; the 64 px one by a tile only.
    # Both score ~0.996: a tile threshold of 1 keeps only what the whole view found.
    img = frame_with_blocks(1280, 1280, (192, 192, 256, 256), (768, 768, 896, 896))
    both = SsdTfliteDetector(tiny_models.named, mode="auto", tile_overlap=0.0, tile_score_threshold=0.5)
    assert len(both.detect(img)) == 2
    strict = SsdTfliteDetector(tiny_models.named, mode="auto", tile_overlap=0.0, tile_score_threshold=1.0)
    found = strict.detect(img)
    assert len(found) == 1
    assert_box(found[0].box, (768, 768, 896, 896))
    # the higher bar applies: a score threshold of 1 drops the tiles' boxes too
    assert SsdTfliteDetector(tiny_models.named, mode="auto", tile_overlap=0.0, score_threshold=1.0,
                             tile_score_threshold=0.5).detect(img) == []
    # unset: tiles take score_threshold, as before the setting existed
    assert len(SsdTfliteDetector(tiny_models.named, mode="auto", tile_overlap=0.0).detect(img)) == 2


def test_only_tiles_are_marked_as_tiles():
    assert not any(r.tile for r in regions_for(1280, 720, "full") + regions_for(1280, 720, "roi"))
    auto = regions_for(1280, 720, "auto")
    assert not auto[0].tile and all(r.tile for r in auto[1:]) and len(auto) == 5
    assert all(r.tile for r in regions_for(1280, 720, "tiles"))


def test_tiles_merge_the_same_plate_seen_by_two_tiles(tiny_models):
    # With 50 % overlap on 480 px the two 320 px tiles share x 160..320; a
    # block there is seen by both (same frame box) and reported once.
    det = SsdTfliteDetector(tiny_models.named, mode="tiles", tiles=(2, 1), tile_overlap=0.5)
    assert [(r.x0, r.x1) for r in regions_for(480, 320, "tiles", tiles=(2, 1), overlap=0.5)] \
        == [(0, 320), (160, 480)]
    found = det.detect(frame_with_blocks(320, 480, (192, 64, 224, 96)))
    assert len(found) == 1
    assert_box(found[0].box, (192, 64, 224, 96))


def test_min_width_and_max_detections(tiny_models):
    img = frame_with_blocks(320, 320, (0, 0, 32, 32), (64, 64, 96, 96), (160, 160, 192, 192))
    assert len(SsdTfliteDetector(tiny_models.named).detect(img)) == 3
    assert len(SsdTfliteDetector(tiny_models.named, max_detections=2).detect(img)) == 2
    assert SsdTfliteDetector(tiny_models.named, min_plate_width_px=33).detect(img) == []


def test_gray_and_bgra_frames(tiny_models):
    det = SsdTfliteDetector(tiny_models.named)
    bgr = frame_with_blocks(320, 320, (64, 64, 96, 96))
    for img in (bgr[:, :, 0].copy(), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)):
        (d,) = det.detect(img)
        assert_box(d.box, (64, 64, 96, 96))


def test_bad_frame_is_a_one_line_error(tiny_models):
    det = SsdTfliteDetector(tiny_models.named)
    for bad in (np.zeros((10, 10, 3), np.float32), np.zeros((0, 5, 3), np.uint8), "frame.jpg"):
        with pytest.raises(ValueError, match=r"^detect: expected") as e:
            det.detect(bad)
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------- other SSDs

def test_unnamed_float_300px_model_is_read_by_shape_and_value(tiny_models):
    det = SsdTfliteDetector(tiny_models.unnamed)  # (x - 127.5) / 127.5, as the tutorials
    assert det.input_size == (300, 300)
    (d,) = det.detect(frame_with_blocks(300, 300, (150, 90, 180, 120)))  # cell (3, 5)
    assert_box(d.box, (150, 90, 180, 120))
    assert 0.99 < d.score < 1.0  # scores, not the all-zero classes


def test_only_the_first_count_rows_are_used(tiny_models):
    # The op leaves the previous call's rows behind `count` (seen with the
    # float model): two plates, then one, must give one.
    det = SsdTfliteDetector(tiny_models.unnamed)
    assert len(det.detect(frame_with_blocks(300, 300, (0, 0, 30, 30), (210, 210, 240, 240)))) == 2
    (d,) = det.detect(frame_with_blocks(300, 300, (0, 0, 30, 30)))
    assert_box(d.box, (0, 0, 30, 30))
    assert det.detect(np.zeros((300, 300, 3), np.uint8)) == []


def test_valid_rows_ignores_stale_rows():
    boxes = np.array([[[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.9, 0.9], [0.3, 0.3, 0.4, 0.4]]], np.float32)
    classes = np.zeros((1, 3), np.float32)
    scores = np.array([[0.9, 0.99, 0.98]], np.float32)
    b, c, s = valid_rows(boxes, classes, scores, np.array([1.0], np.float32))
    assert b.shape == (1, 4) and s.tolist() == pytest.approx([0.9])
    assert len(valid_rows(boxes, classes, scores, np.array([7.0]))[0]) == 3  # clipped to M
    assert len(valid_rows(boxes, classes, scores, np.array([-1.0]))[0]) == 0


def test_classes_and_scores_told_apart_by_value():
    cls, sc = np.array([0.0, 2.0]), np.array([0.93, 0.41])
    assert classes_scores_swapped(cls, sc) is False
    assert classes_scores_swapped(sc, cls) is True
    assert classes_scores_swapped(np.zeros(2), np.ones(2)) is None  # undecidable: keep the order
    assert classes_scores_swapped(np.zeros(0), np.zeros(0)) is None


class _Tf1Interpreter:
    """What a TF1 OD API export (the Pi tutorials' models) shows: no signature,
    outputs in the canonical order with the op's own names."""

    def __init__(self, shapes):
        self.shapes = shapes

    def get_signature_list(self):
        return {}

    def get_output_details(self):
        names = ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1",
                 "TFLite_Detection_PostProcess:2", "TFLite_Detection_PostProcess:3"]
        return [{"name": n, "index": 100 + k, "shape": np.array(sh), "dtype": np.float32,
                 "quantization": (0.0, 0)} for k, (n, sh) in enumerate(zip(names, self.shapes))]


def test_unsigned_tf1_outputs_are_read_in_canonical_order():
    roles = read_output_map(_Tf1Interpreter([(1, 10, 4), (1, 10), (1, 10), (1,)]), Path("tf1.tflite"))
    assert (roles.boxes, roles.classes, roles.scores, roles.count, roles.named) == (100, 101, 102, 103, False)
    with pytest.raises(ModelError, match=r"^tf1.tflite: not an SSD detector"):
        read_output_map(_Tf1Interpreter([(1, 10, 4), (1, 10), (1, 12), (1,)]), Path("tf1.tflite"))


# ---------------------------------------------------------------- helpers

def test_regions_cover_the_roi_with_the_overlap():
    regions = regions_for(1920, 1080, "tiles", roi=(0.0, 0.5, 1.0, 1.0), tiles=(3, 2), overlap=0.2)
    assert len(regions) == 6
    assert min(r.x0 for r in regions) == 0 and max(r.x1 for r in regions) == 1920
    assert min(r.y0 for r in regions) == 540 and max(r.y1 for r in regions) == 1080
    left, mid = regions[0], regions[1]
    assert (left.x1 - mid.x0) / (left.x1 - left.x0) == pytest.approx(0.2, abs=0.01)
    assert regions_for(640, 480, "full") == regions_for(640, 480, "full", roi=(0.1, 0.1, 0.2, 0.2))
    (r,) = regions_for(1000, 500, "roi", roi=(0.25, 0.2, 0.75, 1.0))
    assert (r.x0, r.y0, r.x1, r.y1) == (250, 100, 750, 500)


def test_merge_boxes():
    boxes = np.array([[10, 10, 50, 20], [11, 10, 51, 20], [100, 100, 140, 110]], float)
    kept, scores = merge_boxes(boxes, np.array([0.8, 0.9, 0.7], np.float32), iou=0.5)
    assert kept.tolist() == [[11, 10, 51, 20], [100, 100, 140, 110]] and scores.tolist() == pytest.approx([0.9, 0.7])
    # A plate cut by a tile edge scored higher than the whole one: keep the union.
    kept, scores = merge_boxes(np.array([[10, 10, 30, 20], [10, 10, 50, 20]], float),
                               np.array([0.9, 0.6], np.float32), iou=0.5)
    assert kept.tolist() == [[10, 10, 50, 20]] and scores.tolist() == pytest.approx([0.9])
    assert merge_boxes(np.zeros((0, 4)), np.zeros(0, np.float32), 0.5)[0].shape == (0, 4)


def test_labels(tmp_path, tiny_models):
    (tmp_path / "tf1.txt").write_text("???\nperson\nlicence plate\n")
    assert plate_classes(load_labels(tmp_path / "tf1.txt")) == {1}
    assert plate_classes(("plate",)) == {0}
    assert plate_classes(("person", "car")) is None  # no plate label: keep all
    (tmp_path / "ours.txt").write_text("plate\n")
    det = SsdTfliteDetector(tiny_models.named, labels_path=tmp_path / "ours.txt")
    assert det.labels == ("plate",) and len(det.detect(frame_with_blocks(320, 320, (0, 0, 32, 32)))) == 1
    (tmp_path / "other.txt").write_text("???\nperson\nplate\n")  # class 0 is a person here
    det = SsdTfliteDetector(tiny_models.named, labels_path=tmp_path / "other.txt")
    assert det.detect(frame_with_blocks(320, 320, (0, 0, 32, 32))) == []
    with pytest.raises(ModelError, match="missing.txt: label file not found"):
        SsdTfliteDetector(tiny_models.named, labels_path=tmp_path / "missing.txt")


# ---------------------------------------------------------------- bad models

@pytest.mark.parametrize("content, message", [
    (None, "model file not found"),
    (b"", "model file is empty"),
    (b"this is not a model at all" * 10, "not a TFLite model"),
    (b"\x18\x00\x00\x00TFL3" + b"\x00" * 64, "cannot load model"),
])
def test_missing_or_garbage_model_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "detect.tflite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as e:
        SsdTfliteDetector(path)
    text = str(e.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_a_model_that_is_no_detector_is_a_one_line_error(tiny_models):
    with pytest.raises(ModelError) as e:
        SsdTfliteDetector(tiny_models.classifier)
    assert str(e.value).startswith(str(tiny_models.classifier)) and "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs, culprit", [
    ({"mode": "zoom"}, "mode"), ({"roi": (0.5, 0, 0.4, 1)}, "roi"), ({"tiles": (0, 2)}, "tiles"),
    ({"tile_overlap": 1.0}, "tile_overlap"), ({"score_threshold": 2}, "score_threshold"),
    ({"input_std": 0}, "input_std"), ({"max_detections": 0}, "max_detections"),
    ({"tile_score_threshold": -0.1}, "tile_score_threshold"),
])
def test_bad_settings_name_the_setting(tiny_models, kwargs, culprit):
    with pytest.raises(ValueError, match=f"^{culprit}: "):
        SsdTfliteDetector(tiny_models.named, **kwargs)


# ---------------------------------------------------------------- both runtimes

@pytest.mark.parametrize("which", ["named", "unnamed"])
def test_tflite_runtime_gives_the_same_detections(tiny_models, tmp_path, which):
    """The export also runs on legacy tflite-runtime 2.14 (numpy<2): .venv-tflrt,
    made by scripts/setup.sh. Not skipped: a missing venv is a failure."""
    assert TFLRT_PYTHON.exists(), f"{TFLRT_PYTHON} missing: run bash scripts/setup.sh"
    model = getattr(tiny_models, which)
    det = SsdTfliteDetector(model)
    w, h = det.input_size
    cell = w // 10
    bgr = frame_with_blocks(h, w, (5 * cell, 3 * cell, 6 * cell, 4 * cell), (cell, 7 * cell, 2 * cell, 8 * cell))
    np.save(tmp_path / "rgb.npy", np.ascontiguousarray(bgr[:, :, ::-1]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([str(TFLRT_PYTHON), str(CHECK_SCRIPT), str(model), str(tmp_path / "rgb.npy")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["runtime"] == "tflite_runtime" and got["version"].startswith("2.14")
    theirs = sorted((tuple(d["box"]), d["score"]) for d in got["detections"] if d["score"] >= 0.5)
    ours = sorted(((d.box.y0 / h, d.box.x0 / w, d.box.y1 / h, d.box.x1 / w), d.score) for d in det.detect(bgr))
    assert len(ours) == len(theirs) == 2
    for (b1, s1), (b2, s2) in zip(ours, theirs):
        assert np.allclose(b1, b2, atol=2e-3) and s1 == pytest.approx(s2, abs=0.01)


def test_runtime_check_script_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(CHECK_SCRIPT), str(tmp_path / "no.tflite"), "x.npy"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the real model

def test_real_model_finds_rendered_plates():
    from training.scene_render import render_scene

    det = SsdTfliteDetector(REAL_MODEL, score_threshold=0.3)
    rng = np.random.default_rng(7)
    hits = n = 0
    while n < 20:
        img, boxes = render_scene(rng, size=320)
        if len(boxes) == 0:
            continue
        found = det.detect(img)
        for b in boxes:
            n += 1
            hits += any(d.box.iou(Box(*map(float, b))) >= 0.5 for d in found)
    assert hits / n >= 0.6, f"found {hits} of {n} rendered plates"
