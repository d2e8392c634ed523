"""Detector training batches: synthetic scenes and real dashcam frames, with SSD targets.

Batches are made in a worker process (`BatchMaker`) so rendering overlaps
training. Real frames come from Pascal VOC folders (../shared/train/ro-dashcam):
random windows like the runtime's ROI/tiles, or the whole frame squashed.
"""

from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import cv2
import numpy as np

from training.anchors import make_anchors, match


def read_voc(xml_path: str) -> np.ndarray:
    """Pascal VOC boxes [K, 4] (x0, y0, x1, y1) px."""
    root = ET.parse(xml_path).getroot()
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        out.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
    return np.array(out, np.float32).reshape(-1, 4)


def load_voc_folder(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(BGR image, boxes)] for every NAME.jpg with a NAME.xml in folder."""
    items = []
    for xml in sorted(glob.glob(os.path.join(folder, "*.xml"))):
        img_path = xml[:-4] + ".jpg"
        if not os.path.exists(img_path):
            img_path = xml[:-4] + ".png"
        im = cv2.imread(img_path)
        if im is None:
            continue
        items.append((im, read_voc(xml)))
    return items


def real_window(rng, img: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ROI/tile-like window of a real frame (or all of it), squashed to size."""
    H, W = img.shape[:2]
    if rng.random() < 0.25 or len(boxes) == 0:
        x0, y0, x1, y1 = 0, 0, W, H
    else:
        ww = W * rng.uniform(0.3, 0.8)
        wh = min(H, ww * rng.uniform(0.55, 1.0))
        b = boxes[int(rng.integers(len(boxes)))]
        cx = (b[0] + b[2]) / 2 + rng.uniform(-0.4, 0.4) * ww
        cy = (b[1] + b[3]) / 2 + rng.uniform(-0.4, 0.4) * wh
        x0 = int(np.clip(cx - ww / 2, 0, W - ww))
        y0 = int(np.clip(cy - wh / 2, 0, H - wh))
        x1, y1 = int(x0 + ww), int(y0 + wh)
    crop = cv2.resize(img[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    b = boxes.copy()
    b[:, [0, 2]] = (np.clip(b[:, [0, 2]], x0, x1) - x0) * size / (x1 - x0)
    b[:, [1, 3]] = (np.clip(b[:, [1, 3]], y0, y1) - y0) * size / (y1 - y0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) * (size / (x1 - x0)) * (size / (y1 - y0))
    kept = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = kept >= 0.6 * np.maximum(area, 1e-6)
    if rng.random() < 0.5:  # photometric jitter
        f = crop.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
        crop = np.clip(f, 0, 255).astype(np.uint8)
    return crop, b[keep]


@dataclass
class BatchSpec:
    seed: int
    batch: int
    size: int
    real_fraction: float


_STATE: dict = {}


def _init(bg_folder: str | None, real_folder: str | None, size: int):
    from training.ocr_data import load_backgrounds

    _STATE["bgs"] = load_backgrounds(bg_folder, limit=600)
    _STATE["real"] = load_voc_folder(real_folder) if real_folder and os.path.isdir(real_folder) else []
    _STATE["anchors"] = make_anchors(size)


def make_batch(spec: BatchSpec):
    """(images uint8 [B,S,S,3] RGB, cls int8 [B,N], box float32 [B,N,4])."""
    from training.scene_render import render_scene

    rng = np.random.default_rng(spec.seed)
    anchors = _STATE["anchors"]
    S = spec.size
    imgs = np.empty((spec.batch, S, S, 3), np.uint8)
    cls = np.empty((spec.batch, len(anchors)), np.int8)
    box = np.empty((spec.batch, len(anchors), 4), np.float32)
    real = _STATE["real"]
    for i in range(spec.batch):
        if real and rng.random() < spec.real_fraction:
            im, b = real[int(rng.integers(len(real)))]
            im, b = real_window(rng, im, b, S)
        else:
            im, b = render_scene(rng, S, _STATE["bgs"])
        imgs[i] = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
        gt = (b[:, [1, 0, 3, 2]] / S).astype(np.float32)  # -> (y0, x0, y1, x1) normalised
        gt = gt[(gt[:, 2] - gt[:, 0] > 2 / S) & (gt[:, 3] - gt[:, 1] > 4 / S)]
        cls[i], box[i] = match(gt, anchors)
    return imgs, cls, box


class BatchMaker:
    """Makes batches in worker processes, `ahead` batches in advance."""

    def __init__(self, workers: int, bg_folder, real_folder, size: int, batch: int,
                 real_fraction: float, seed: int, start: int, ahead: int = 6):
        from concurrent.futures import ProcessPoolExecutor

        self.ex = ProcessPoolExecutor(workers, initializer=_init, initargs=(bg_folder, real_folder, size))
        self.spec = (batch, size, real_fraction)
        self.seed, self.k = seed, start
        self.pending = [self._submit() for _ in range(ahead)]

    def _submit(self):
        b, s, rf = self.spec
        fut = self.ex.submit(make_batch, BatchSpec(self.seed * 1_000_003 + self.k, b, s, rf))
        self.k += 1
        return fut

    def next(self):
        fut = self.pending.pop(0)
        self.pending.append(self._submit())
        return fut.result()

    def close(self):
        for f in self.pending:
            f.cancel()
        self.ex.shutdown(wait=False, cancel_futures=True)
