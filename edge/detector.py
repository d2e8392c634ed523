"""BGR frame -> plate boxes in frame pixels, with any SSD TFLite model that
ends in the TFLite_Detection_PostProcess op.

Models accepted: ours (training/export_detector.py: uint8 input, outputs named
detection_boxes / detection_classes / detection_scores / num_detections in
the 'serving_default' signature) and TF Object Detection API exports such as
the Raspberry Pi tutorials' (uint8 or float input, 300 or 320 px, outputs
without those names). The input size is read from the model. Unnamed outputs
are told apart by shape (boxes [1,M,4], count [1]); of the two [1,M] ones the
TF1 canonical order (boxes, classes, scores, count) is the first guess, and
values settle it: classes are integer-valued, scores lie in [0, 1]. Only the
first `count` rows are valid; the op leaves stale rows from earlier calls
behind them.

Modes: where in the frame the model looks, and what that costs.

- ``full``: the whole frame squashed to the model input. One inference, the
  cheapest; but a 1920 px frame shrinks 6x into 320 px, so a plate narrower
  than about 100 frame pixels becomes too small for the anchors and is missed.
- ``roi``: only the configured lane region (fractions of the frame), squashed.
  Same cost as full; resolution gains 1 / (ROI width), so smaller plates are
  found, and nothing outside the region ever is.
- ``tiles``: a cols x rows grid of overlapping tiles over the ROI (the whole
  frame by default), each squashed, results mapped back and merged. Costs
  cols*rows inferences (4x for 2x2) for about cols x the resolution; the
  overlap keeps any plate narrower than it whole in at least one tile, and
  the merge folds a plate cut by a tile edge into one box.
- ``auto`` (the default): the ROI squashed, as ``roi``; and when that squash
  shrinks the ROI more than AUTO_TILE_SQUASH times on a side (a 1280x720
  frame into 320 px: 4x), the tiles too, all merged. A phone photo or a
  640x480 frame costs one inference; a 720p frame costs 1 + cols*rows and
  its small plates are found, while a plate too big for one tile is still
  found whole by the first pass.

Boxes found in a tile must also reach tile_score_threshold (when set):
zoomed-in texture (brake lights, sign lettering) draws more
false boxes than the squashed whole view does.
"""

from __future__ import annotations

import logging
import time
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import cv2
import numpy as np

from edge.runtime import ModelError, TensorInfo, input_infos, load_interpreter, output_infos
from edge.types import Box, Detection

log = logging.getLogger(__name__)

Mode = Literal["auto", "full", "roi", "tiles"]
MODES: tuple[str, ...] = ("auto", "full", "roi", "tiles")
# auto: a region squashed more than this into the model input also gets tiles
# (plates ~60 px wide, the smallest the issue asks for, stay >= ~24 px)
AUTO_TILE_SQUASH = 2.5
OUTPUT_NAMES = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
# a class name that means a number plate ('plate', 'license-plate', 'LP', ...)
PLATE_NAME = re.compile(r"plate|licen[cs]e|number|^lpr?$", re.IGNORECASE)
CONTAIN_FRACTION = 0.8  # tiles merge: a box this much inside another is the same plate


@runtime_checkable
class Detector(Protocol):
    """Anything that finds plates in a BGR frame. Not thread-safe: one per thread."""

    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class Region:
    """A frame rectangle (integer pixels, x1/y1 exclusive) fed to the model."""

    x0: int
    y0: int
    x1: int
    y1: int
    tile: bool = False  # a zoomed-in tile (its boxes need tile_score_threshold)


@dataclass(frozen=True)
class OutputMap:
    """Output tensor indices by role; `named` when the signature said which."""

    boxes: int
    classes: int
    scores: int
    count: int
    named: bool


# ---------------------------------------------------------------- geometry

def regions_for(width: int, height: int, mode: str, roi: Sequence[float] = (0.0, 0.0, 1.0, 1.0),
                tiles: Sequence[int] = (2, 2), overlap: float = 0.15,
                input_size: Sequence[int] = (320, 320)) -> tuple[Region, ...]:
    """The frame rectangles one detect() call runs the model on."""
    if mode == "full":
        return (Region(0, 0, width, height),)
    fx0, fy0, fx1, fy1 = roi
    rx0, rx1 = round(fx0 * width), max(round(fx1 * width), round(fx0 * width) + 1)
    ry0, ry1 = round(fy0 * height), max(round(fy1 * height), round(fy0 * height) + 1)
    whole = Region(rx0, ry0, min(rx1, width), min(ry1, height))
    if mode == "roi":
        return (whole,)
    if mode == "auto":
        small = (whole.x1 - whole.x0 <= AUTO_TILE_SQUASH * input_size[0]
                 and whole.y1 - whole.y0 <= AUTO_TILE_SQUASH * input_size[1])
        if small or tuple(tiles) == (1, 1):
            return (whole,)
        return (whole,) + regions_for(width, height, "tiles", roi, tiles, overlap)
    cols, rows = tiles
    xs = _spans(rx0, min(rx1, width), cols, overlap)
    ys = _spans(ry0, min(ry1, height), rows, overlap)
    return tuple(Region(x0, y0, x1, y1, tile=True) for y0, y1 in ys for x0, x1 in xs)


def _spans(lo: int, hi: int, n: int, overlap: float) -> list[tuple[int, int]]:
    """n equal spans covering [lo, hi), neighbours sharing `overlap` of a span."""
    size = (hi - lo) / (n - (n - 1) * overlap)
    step = size * (1.0 - overlap)
    out = []
    for i in range(n):
        a = lo + round(i * step)
        b = hi if i == n - 1 else min(hi, lo + round(i * step + size))
        out.append((a, max(b, a + 1)))
    return out


def merge_boxes(boxes: np.ndarray, scores: np.ndarray, iou: float,
                contain: float = CONTAIN_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Greedy NMS across tiles: [N,4] (x0,y0,x1,y1) and scores -> kept.

    A box overlapping a better one by IoU >= `iou`, or lying `contain` inside
    it, is dropped. When the better box is the one lying inside (a plate cut by
    a tile edge scored higher than the whole plate from the next tile), the
    kept box grows to their union so the crop holds the whole plate.
    """
    if len(boxes) == 0:
        return boxes.reshape(0, 4), scores.reshape(0)
    order = np.argsort(-scores, kind="stable")
    b = boxes[order].astype(np.float64)
    s = scores[order]
    area = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    alive = np.ones(len(b), bool)
    kept_boxes, kept_scores = [], []
    for i in range(len(b)):  # over detections (a handful), never pixels
        if not alive[i]:
            continue
        alive[i] = False
        ix = np.clip(np.minimum(b[i, 2], b[:, 2]) - np.maximum(b[i, 0], b[:, 0]), 0, None)
        iy = np.clip(np.minimum(b[i, 3], b[:, 3]) - np.maximum(b[i, 1], b[:, 1]), 0, None)
        inter = ix * iy
        union = area[i] + area - inter
        by_iou = (inter > 0) & (inter >= iou * np.maximum(union, 1e-9))  # iou 0: any overlap
        other_inside = inter >= contain * np.maximum(area, 1e-9)
        self_inside = inter >= contain * max(area[i], 1e-9)
        gone = alive & (by_iou | other_inside | self_inside)
        box = b[i].copy()
        grow = gone & self_inside & ~other_inside  # the other is the bigger, whole plate
        if grow.any():
            box[:2] = np.minimum(box[:2], b[grow, :2].min(axis=0))
            box[2:] = np.maximum(box[2:], b[grow, 2:].max(axis=0))
        alive &= ~gone
        kept_boxes.append(box)
        kept_scores.append(s[i])
    return np.array(kept_boxes, np.float64).reshape(-1, 4), np.array(kept_scores, np.float32)


# ---------------------------------------------------------------- model outputs

def valid_rows(boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, count: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first `count` rows of the op's outputs ([M,4], [M], [M]); the rest is stale."""
    m = boxes.reshape(-1, 4).shape[0]
    n = int(np.clip(np.nan_to_num(float(np.ravel(count)[0])), 0, m))
    return boxes.reshape(-1, 4)[:n], classes.reshape(-1)[:n], scores.reshape(-1)[:n]


def _is_integral(v: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)))


def _is_probability(v: np.ndarray) -> bool:
    return bool(np.all((v >= 0.0) & (v <= 1.0)))


def classes_scores_swapped(first: np.ndarray, second: np.ndarray) -> bool | None:
    """Which of two [n] rows is which: True when `second` holds the classes.

    None while undecided (e.g. every score exactly 0 or 1, or no rows).
    """
    first_cls = _is_integral(first) and _is_probability(second)
    second_cls = _is_integral(second) and _is_probability(first)
    if first_cls and not second_cls:
        return False
    if second_cls and not first_cls:
        return True
    return None


def _suffix_number(name: str) -> int:
    """Output order hint: 'output_2' -> 2, 'StatefulPartitionedCall:3' -> 3, else 0."""
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else 0


def read_output_map(interp: Any, path: Path) -> OutputMap:
    """Output roles from the signature's names, else from shapes (see module doc)."""
    outputs = {t.index: t for t in output_infos(interp)}
    signature = _signature_outputs(interp)
    if set(OUTPUT_NAMES) <= set(signature) and set(signature.values()) <= set(outputs):
        roles = OutputMap(*(signature[k] for k in OUTPUT_NAMES), named=True)
    else:
        if signature and set(signature.values()) == set(outputs):
            by_name = sorted(signature.items(), key=lambda kv: _suffix_number(kv[0]))
            ordered = [outputs[i] for _, i in by_name]
        else:
            ordered = list(outputs.values())  # a TF1 export keeps the canonical order here
        boxes = [t.index for t in ordered if len(t.shape) == 3]
        counts = [t.index for t in ordered if len(t.shape) == 1]
        rows = [t.index for t in ordered if len(t.shape) == 2]
        if len(ordered) == 4 and len(boxes) == len(counts) == 1 and len(rows) == 2:
            roles = OutputMap(boxes[0], rows[0], rows[1], counts[0], named=False)
        else:
            roles = None
    if roles is None or not _shapes_fit(roles, outputs):
        got = ", ".join(str(list(t.shape)) for t in outputs.values())
        raise ModelError(f"{path}: not an SSD detector: expected outputs boxes [1,M,4], "
                         f"classes [1,M], scores [1,M], count [1]; got {got}")
    if not roles.named:
        log.info("%s: outputs not named %s; reading them as boxes, classes, scores, count "
                 "(checked on the first detections)", path, ", ".join(OUTPUT_NAMES))
    return roles


def _shapes_fit(roles: OutputMap, outputs: dict[int, TensorInfo]) -> bool:
    boxes, classes, scores, count = (outputs[i].shape for i in
                                     (roles.boxes, roles.classes, roles.scores, roles.count))
    m = boxes[1] if len(boxes) == 3 else -1
    return (len(boxes) == 3 and boxes[0] == 1 and boxes[2] == 4 and m >= 1
            and classes == scores == (1, m) and count == (1,))


def _signature_outputs(interp: Any) -> dict[str, int]:
    """Output name -> tensor index of the model's one (or serving_default) signature."""
    try:
        keys = list(interp.get_signature_list())
        if not keys:
            return {}
        key = "serving_default" if "serving_default" in keys else keys[0]
        runner = interp.get_signature_runner(key)
        if hasattr(runner, "get_output_details"):
            details = runner.get_output_details()
            del runner  # a live runner holds the interpreter: invoke() refuses while it exists
            return {name: int(d["index"]) for name, d in details.items()}
        del runner
        full = interp._get_full_signature_list()  # older runtimes
        return {name: int(i) for name, i in full[key]["outputs"].items()}
    except (AttributeError, KeyError, ValueError, RuntimeError) as e:
        log.debug("no usable signature (%s); reading outputs by shape", e)
        return {}


def load_labels(path: str | Path) -> tuple[str, ...]:
    """labelmap.txt: one label per line; a first '???' is TF1's background row."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ModelError(f"{p}: label file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"{p}: cannot read label file ({e})") from None
    labels = tuple(line.strip() for line in lines if line.strip())
    if not labels:
        raise ModelError(f"{p}: label file is empty")
    return labels


def is_plate_name(name: str) -> bool:
    """Whether a label-map or dataset class name means a number plate."""
    return PLATE_NAME.search(name.strip()) is not None


def tile_bar(score_threshold: float, tile_score_threshold: float | None) -> float:
    """The score a box found in a tile needs. A tile zooms in 2x or more: texture
    that the squashed frame blurs away starts to look like a plate there, so its
    boxes may need a higher score (never a lower one: raising score_threshold
    raises both)."""
    return score_threshold if tile_score_threshold is None else max(score_threshold, tile_score_threshold)


def plate_classes(labels: Sequence[str]) -> frozenset[int] | None:
    """Class ids (as the op emits them) whose label names a plate; None = keep all.

    The op numbers classes from 0 without the background row, so a TF1-style
    labelmap starting with '???' is shifted by one.
    """
    names = list(labels[1:] if labels and labels[0] == "???" else labels)
    wanted = frozenset(i for i, name in enumerate(names) if is_plate_name(name))
    if not wanted and len(names) > 1:
        log.warning("no label names a plate (%s); keeping every class", ", ".join(names))
    return wanted or None


# ---------------------------------------------------------------- detector

class SsdTfliteDetector:
    """One SSD TFLite model, loaded once; buffers allocated once per frame shape."""

    def __init__(self, model_path: str | Path, labels_path: str | Path | None = None,
                 num_threads: int = 1, score_threshold: float = 0.5, max_detections: int = 10,
                 input_mean: float = 127.5, input_std: float = 127.5, mode: Mode = "full",
                 roi: Sequence[float] = (0.0, 0.0, 1.0, 1.0), tiles: Sequence[int] = (2, 2),
                 tile_overlap: float = 0.15, min_plate_width_px: float = 0,
                 merge_iou: float = 0.5, tile_score_threshold: float | None = None) -> None:
        _check_settings(mode, roi, tiles, tile_overlap, score_threshold, max_detections,
                        input_std, merge_iou, tile_score_threshold)
        self.path = Path(model_path)
        self.mode = mode
        self.roi = tuple(float(v) for v in roi)
        self.tiles = (int(tiles[0]), int(tiles[1]))
        self.tile_overlap = float(tile_overlap)
        self.score_threshold = float(score_threshold)
        # boxes from tiles (tiles mode, auto's extra passes) need this too; None: no more
        self.tile_score_threshold = None if tile_score_threshold is None else float(tile_score_threshold)
        self.max_detections = int(max_detections)
        self.min_plate_width_px = float(min_plate_width_px)
        self.merge_iou = float(merge_iou)
        self.labels = load_labels(labels_path) if labels_path is not None else ()
        keep = plate_classes(self.labels) if self.labels else None
        self._keep_classes = None if keep is None else np.array(sorted(keep), np.int64)

        self._interp = load_interpreter(self.path, num_threads)
        self._input = _check_input(input_infos(self._interp), self.path)
        self.input_size = (self._input.shape[2], self._input.shape[1])  # (w, h)
        self._outputs = read_output_map(self._interp, self.path)
        self._swapped: bool | None = False if self._outputs.named else None
        w, h = self.input_size
        self._rgb = np.empty((1, h, w, 3), np.uint8)
        self._resized: dict[int, np.ndarray] = {}  # channels -> (h, w[, c]) buffer
        if self._input.dtype == np.uint8:
            self._feed = self._rgb  # raw pixels: what uint8 SSD exports expect
        elif self._input.dtype == np.int8:
            self._feed = np.empty((1, h, w, 3), np.int8)  # pixel - 128
        elif self._input.dtype == np.float32:
            self._feed = np.empty((1, h, w, 3), np.float32)  # (pixel - mean) / std
        else:
            raise ModelError(f"{self.path}: unsupported input type {self._input.dtype}")
        self._mean = np.float32(input_mean)
        self._inv_std = np.float32(1.0 / input_std)
        self._regions: dict[tuple[int, int], tuple[Region, ...]] = {}
        # model time alone (invoke) of the last detect(), summed over its regions
        self.last_invoke_ms = 0.0
        self.last_inferences = 0
        log.info("detector %s: %dx%d %s input, mode %s, %d thread(s)", self.path, w, h,
                 self._input.dtype, mode, num_threads)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Plates in the frame, best first, boxes in frame pixels."""
        img = _check_image(image_bgr)
        h, w = img.shape[:2]
        regions = self._regions.get((h, w))
        if regions is None:
            regions = regions_for(w, h, self.mode, self.roi, self.tiles, self.tile_overlap, self.input_size)
            self._regions[(h, w)] = regions
        found_boxes, found_scores = [], []
        self.last_invoke_ms, self.last_inferences = 0.0, len(regions)
        for r in regions:
            boxes, scores = self._run(img[r.y0:r.y1, r.x0:r.x1], self._threshold(r))
            if len(boxes):
                boxes = boxes * np.array([r.x1 - r.x0, r.y1 - r.y0] * 2) + np.array([r.x0, r.y0] * 2)
                found_boxes.append(boxes)
                found_scores.append(scores)
        if not found_boxes:
            return []
        boxes, scores = np.concatenate(found_boxes), np.concatenate(found_scores)
        if len(regions) > 1:
            boxes, scores = merge_boxes(boxes, scores, self.merge_iou)
        wide = (boxes[:, 2] - boxes[:, 0]) >= self.min_plate_width_px
        boxes, scores = boxes[wide], scores[wide]
        order = np.argsort(-scores, kind="stable")[: self.max_detections]
        return [Detection(Box(*(float(v) for v in boxes[i])), float(scores[i])) for i in order]

    def _threshold(self, region: Region) -> float:
        if region.tile:
            return tile_bar(self.score_threshold, self.tile_score_threshold)
        return self.score_threshold

    def _run(self, crop: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """One inference on a BGR crop -> boxes [n,4] (x0,y0,x1,y1) in 0..1 of it, scores [n]."""
        self._fill_input(crop)
        it, o = self._interp, self._outputs
        it.set_tensor(self._input.index, self._feed)
        t0 = time.perf_counter()
        it.invoke()
        self.last_invoke_ms += (time.perf_counter() - t0) * 1000.0
        boxes, classes, scores = valid_rows(it.get_tensor(o.boxes), it.get_tensor(o.classes),
                                            it.get_tensor(o.scores), it.get_tensor(o.count))
        if self._swapped is None:
            self._settle_order(classes, scores)
        if self._swapped:
            classes, scores = scores, classes
        keep = scores >= min_score
        if self._keep_classes is not None:
            keep &= np.isin(np.rint(classes).astype(np.int64), self._keep_classes)
        yx = np.clip(boxes[keep].astype(np.float64), 0.0, 1.0)
        return yx[:, [1, 0, 3, 2]], scores[keep].astype(np.float32)

    def _settle_order(self, classes: np.ndarray, scores: np.ndarray) -> None:
        swapped = classes_scores_swapped(classes, scores)
        if swapped is not None:
            self._swapped = swapped
            log.info("%s: unnamed outputs read as %s", self.path,
                     "boxes, scores, classes" if swapped else "boxes, classes, scores")

    def _fill_input(self, crop: np.ndarray) -> None:
        """Resize (INTER_AREA, as training squashed its scenes) and BGR->RGB into
        the preallocated input; a float model also gets (x - mean) / std."""
        channels = 1 if crop.ndim == 2 else crop.shape[2]
        buf = self._resized.get(channels)
        if buf is None:
            w, h = self.input_size
            buf = np.empty((h, w) if channels == 1 else (h, w, channels), np.uint8)
            self._resized[channels] = buf
        cv2.resize(crop, self.input_size, dst=buf, interpolation=cv2.INTER_AREA)
        code = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}[channels]
        cv2.cvtColor(buf, code, dst=self._rgb[0])
        if self._feed.dtype == np.int8:
            np.bitwise_xor(self._rgb, np.uint8(0x80), out=self._feed.view(np.uint8))
        elif self._feed.dtype == np.float32:
            np.subtract(self._rgb, self._mean, out=self._feed)
            np.multiply(self._feed, self._inv_std, out=self._feed)


def _check_input(inputs: tuple[TensorInfo, ...], path: Path) -> TensorInfo:
    shapes = ", ".join(str(list(t.shape)) for t in inputs)
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[0] != 1 \
            or inputs[0].shape[3] != 3 or min(inputs[0].shape[1:3]) < 1:
        raise ModelError(f"{path}: not an image detector: expected one input [1,H,W,3], got {shapes}")
    return inputs[0]


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0 \
            or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        what = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise ValueError(f"detect: expected a uint8 HxW, HxWx3 (BGR) or HxWx4 image, got {what}")
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image


def _check_settings(mode: str, roi: Sequence[float], tiles: Sequence[int], overlap: float,
                    score: float, max_detections: int, input_std: float, merge_iou: float,
                    tile_score: float | None = None) -> None:
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if len(roi) != 4 or not all(0.0 <= float(v) <= 1.0 for v in roi) \
            or not (roi[0] < roi[2] and roi[1] < roi[3]):
        raise ValueError(f"roi: expected fractions (x0, y0, x1, y1) with x0 < x1, y0 < y1, got {tuple(roi)}")
    if len(tiles) != 2 or not all(isinstance(v, (int, np.integer)) and 1 <= v <= 16 for v in tiles):
        raise ValueError(f"tiles: expected (cols, rows) of integers 1..16, got {tuple(tiles)}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile_overlap: expected 0 <= overlap < 1, got {overlap}")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score_threshold: expected 0..1, got {score}")
    if tile_score is not None and not 0.0 <= tile_score <= 1.0:
        raise ValueError(f"tile_score_threshold: expected 0..1, got {tile_score}")
    if max_detections < 1:
        raise ValueError(f"max_detections: expected >= 1, got {max_detections}")
    if not math.isfinite(input_std) or input_std == 0:
        raise ValueError(f"input_std: expected a non-zero number, got {input_std}")
    if not 0.0 <= merge_iou <= 1.0:
        raise ValueError(f"merge_iou: expected 0..1, got {merge_iou}")
