"""Crop preprocessing shared by the runtime reader and the OCR training code.

The OCR model is trained on exactly what `to_model_input` produces, so both
sides import it from here: one definition, no train/serve skew.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

# How a model's stretched input is equalised, by name. A model is trained on
# one of these and must be read with the same: the trainer records the name
# beside the model (edge.reader.model_input_equalize), so an older model,
# with no record, keeps its plain input.
#   none:  the stretched crop as it is (every model up to retrain 45).
#   clahe: contrast-limited adaptive histogram equalisation in 2 x 8 tiles
#          (64x4 pixels at 128x32), clip limit 2. Real plates differ from
#          rendered ones most in lighting and ink contrast; equalising each
#          region makes both alike in that respect, and the clip limit keeps
#          noise from being stretched into strokes. First values, not tuned.
# (EQUALIZERS, below, names them.)
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (2, 8)  # (across, down), the order cv2.createCLAHE takes

_local = threading.local()  # cv2.CLAHE keeps buffers between calls: one per thread


def _clahe() -> cv2.CLAHE:
    c = getattr(_local, "clahe", None)
    if c is None:
        c = _local.clahe = cv2.createCLAHE(CLAHE_CLIP_LIMIT, CLAHE_TILES)
    return c


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR or gray uint8 image -> 2-D gray uint8."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_model_input(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stretch a gray plate crop to the model's (width, height), uint8.

    Plates of every layout share one input size; the aspect ratio is not kept
    because the model is trained on stretched crops of all layouts.
    """
    w, h = size
    ch, cw = gray.shape[:2]
    interp = cv2.INTER_AREA if (cw > w or ch > h) else cv2.INTER_LINEAR
    return cv2.resize(gray, (w, h), interpolation=interp)


def _as_is(pixels: np.ndarray) -> np.ndarray:
    return pixels


def _clahe_apply(pixels: np.ndarray) -> np.ndarray:
    return _clahe().apply(pixels)


_EQUALIZE_BY_NAME = {"none": _as_is, "clahe": _clahe_apply}
EQUALIZERS = tuple(_EQUALIZE_BY_NAME)  # ("none", "clahe"): the names trainer and reader accept


def equalizer(method: str):
    """The function that equalises a stretched uint8 model input [H, W] by
    `method` (EQUALIZERS), looked up once: a reader resolves it at load, not per crop."""
    try:
        return _EQUALIZE_BY_NAME[method]
    except KeyError:
        raise ValueError(f"unknown input equalisation {method!r} (known: {', '.join(EQUALIZERS)})") from None


def equalize(pixels: np.ndarray, method: str) -> np.ndarray:
    """A stretched uint8 model input [H, W] equalised by `method` (EQUALIZERS)."""
    return equalizer(method)(pixels)


def equalize_all(inputs: np.ndarray, method: str) -> np.ndarray:
    """equalize() for a stack [N, H, W] of model inputs (training: the cached crops)."""
    eq = equalizer(method)
    if eq is _as_is or not len(inputs):
        return inputs
    return np.stack([eq(p) for p in inputs])


def crop_box(image: np.ndarray, x0: float, y0: float, x1: float, y1: float,
             margin: float = 0.0) -> np.ndarray:
    """Cut a box (plus a relative margin) out of an image, clipped to it."""
    h, w = image.shape[:2]
    mx = (x1 - x0) * margin
    my = (y1 - y0) * margin
    xa = int(max(0, np.floor(x0 - mx)))
    ya = int(max(0, np.floor(y0 - my)))
    xb = int(min(w, np.ceil(x1 + mx)))
    yb = int(min(h, np.ceil(y1 + my)))
    if xb <= xa or yb <= ya:
        raise ValueError(f"empty crop box ({x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}) in {w}x{h} image")
    return image[ya:yb, xa:xb]
