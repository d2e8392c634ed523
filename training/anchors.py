"""SSD anchors for plates and the box encoding TFLite_Detection_PostProcess decodes.

Anchors are (ycenter, xcenter, h, w), normalised to [0, 1] of the model input,
in the order the model's heads emit them (level, row, column, anchor).
Encoding matches the op: ty = (y - ya) / ha * Y_SCALE, th = log(h / ha) * H_SCALE.
"""

from __future__ import annotations

import numpy as np

Y_SCALE = X_SCALE = 10.0
H_SCALE = W_SCALE = 5.0

# (stride, anchor heights in input px, width/height ratios). Plate-shaped: a
# plate squashed from 16:9 into a square input is ~1.1 (US) to ~2.7 (EU) wide.
LEVELS: tuple[tuple[int, tuple[float, ...], tuple[float, ...]], ...] = (
    (8, (11.0,), (1.5, 3.0)),
    (16, (20.0, 30.0), (1.3, 2.2, 3.5)),
    (32, (45.0, 70.0, 110.0), (1.3, 2.2, 3.5)),
)


def anchors_per_cell(level: int) -> int:
    _, hs, rs = LEVELS[level]
    return len(hs) * len(rs)


def make_anchors(size: int = 320) -> np.ndarray:
    """All anchors, float32 [N, 4] as (yc, xc, h, w) in [0, 1]."""
    out = []
    for stride, heights, ratios in LEVELS:
        n = size // stride
        c = (np.arange(n, dtype=np.float32) + 0.5) * stride / size
        yc, xc = np.meshgrid(c, c, indexing="ij")
        per = []
        for h in heights:
            for r in ratios:
                per.append((h / size, min(h * r, size) / size))
        per = np.array(per, np.float32)  # [A, 2]
        a = np.empty((n, n, len(per), 4), np.float32)
        a[..., 0] = yc[..., None]
        a[..., 1] = xc[..., None]
        a[..., 2] = per[:, 0]
        a[..., 3] = per[:, 1]
        out.append(a.reshape(-1, 4))
    return np.concatenate(out)


def corners(a: np.ndarray) -> np.ndarray:
    """(yc, xc, h, w) -> (y0, x0, y1, x1)."""
    return np.stack([a[:, 0] - a[:, 2] / 2, a[:, 1] - a[:, 3] / 2,
                     a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between corner boxes a [N,4] and b [K,4] (y0, x0, y1, x1)."""
    y0 = np.maximum(a[:, None, 0], b[None, :, 0])
    x0 = np.maximum(a[:, None, 1], b[None, :, 1])
    y1 = np.minimum(a[:, None, 2], b[None, :, 2])
    x1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def encode(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Corner boxes (y0,x0,y1,x1) matched one per anchor -> [N,4] (ty, tx, th, tw)."""
    h = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
    w = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    yc = boxes[:, 0] + h / 2
    xc = boxes[:, 1] + w / 2
    return np.stack([(yc - anchors[:, 0]) / anchors[:, 2] * Y_SCALE,
                     (xc - anchors[:, 1]) / anchors[:, 3] * X_SCALE,
                     np.log(h / anchors[:, 2]) * H_SCALE,
                     np.log(w / anchors[:, 3]) * W_SCALE], axis=1).astype(np.float32)


def decode(enc: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Inverse of encode: [N,4] -> corner boxes (y0, x0, y1, x1)."""
    yc = enc[:, 0] / Y_SCALE * anchors[:, 2] + anchors[:, 0]
    xc = enc[:, 1] / X_SCALE * anchors[:, 3] + anchors[:, 1]
    h = np.exp(enc[:, 2] / H_SCALE) * anchors[:, 2]
    w = np.exp(enc[:, 3] / W_SCALE) * anchors[:, 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)


def match(gt: np.ndarray, anchors: np.ndarray, pos_iou: float = 0.45,
          neg_iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Targets for one image.

    gt: [K,4] corner boxes (y0,x0,y1,x1) normalised. Returns cls [N] int8
    (1 plate, 0 background, -1 ignored) and box targets [N,4] (zeros where
    not positive). Every plate gets at least its best anchor.
    """
    n = len(anchors)
    cls = np.zeros(n, np.int8)
    box = np.zeros((n, 4), np.float32)
    if len(gt) == 0:
        return cls, box
    iou = iou_matrix(corners(anchors), gt)
    best_gt = iou.argmax(1)
    best_iou = iou.max(1)
    cls[(best_iou >= neg_iou) & (best_iou < pos_iou)] = -1
    pos = best_iou >= pos_iou
    forced = iou.argmax(0)  # best anchor per plate
    best_gt[forced] = np.arange(len(gt))
    pos[forced] = True
    cls[pos] = 1
    box[pos] = encode(gt[best_gt[pos]], anchors[pos])
    return cls, box
