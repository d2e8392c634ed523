"""Turn a clean rendered plate into what a detector crop really looks like.

Loose and tight margins, perspective and rotation, scale down to ~8 px
character height, focus and motion blur, uneven light and shadows, dirt,
frames, noise and JPEG: all drawn from one numpy Generator (deterministic).
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.preprocess import to_model_input
from training.plate_render import Plate, _color


def _scene(plate: np.ndarray, rng, backgrounds) -> tuple[np.ndarray, np.ndarray]:
    """Put the plate into some surrounding (car body, bumper or a real photo).

    Returns the canvas and the plate's 4 corners in it.
    """
    ph, pw = plate.shape[:2]
    H, W = ph * 3, int(pw * 1.8)
    if backgrounds and rng.random() < 0.5:
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        canvas = cv2.resize(bg, (W, H), interpolation=cv2.INTER_LINEAR)
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
    else:
        canvas = np.empty((H, W, 3), np.uint8)
        canvas[:] = _color(rng, 0, 255)
        if rng.random() < 0.5:  # bumper line / lights
            y = int(H * rng.uniform(0.6, 0.8))
            canvas[y:] = _color(rng, 0, 120)
            for x in (int(W * 0.05), int(W * 0.85)):
                cv2.rectangle(canvas, (x, int(H * 0.2)), (x + W // 10, int(H * 0.35)), _color(rng, 100, 255), -1)
    x0, y0 = (W - pw) // 2, (H - ph) // 2
    if rng.random() < 0.35:  # dealer frame around the plate
        t = int(ph * rng.uniform(0.05, 0.15))
        col = _color(rng, 0, 255)
        cv2.rectangle(canvas, (x0 - t, y0 - t), (x0 + pw + t, y0 + ph + int(t * rng.uniform(1, 2.5))), col, -1)
    canvas[y0:y0 + ph, x0:x0 + pw] = plate
    corners = np.array([[x0, y0], [x0 + pw, y0], [x0 + pw, y0 + ph], [x0, y0 + ph]], np.float32)
    return canvas, corners


def _lighting(img: np.ndarray, rng, night: bool = True) -> np.ndarray:
    """Uneven light, a hard shadow edge, low light (unless not `night`), dirt."""
    h, w = img.shape[:2]
    f = img.astype(np.float32)
    if rng.random() < 0.5:  # smooth illumination gradient
        gx = np.linspace(rng.uniform(0.5, 1.2), rng.uniform(0.5, 1.2), w, dtype=np.float32)
        gy = np.linspace(rng.uniform(0.6, 1.2), rng.uniform(0.6, 1.2), h, dtype=np.float32)
        f *= (gy[:, None] * gx[None, :])[..., None]
    if rng.random() < 0.25:  # hard shadow over part of the plate
        a = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d = (xx - w * rng.uniform(0.2, 0.8)) * np.cos(a) + (yy - h * rng.uniform(0.2, 0.8)) * np.sin(a)
        f[d > 0] *= rng.uniform(0.35, 0.75)
    if rng.random() < 0.25:  # dirt blobs
        for _ in range(int(rng.integers(1, 6))):
            c = (int(rng.integers(w)), int(rng.integers(h)))
            r = int(rng.integers(2, max(3, h // 12)))
            overlay = f.copy()
            cv2.circle(overlay, c, r, _color(rng, 30, 120), -1)
            f = cv2.addWeighted(overlay, 0.6, f, 0.4, 0)
    if rng.random() < 0.1 and night:  # night: dark
        f = f * rng.uniform(0.25, 0.5)
    return np.clip(f, 0, 255).astype(np.uint8)


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = length // 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(k, (int(c - dx), int(c - dy)), (int(c + dx), int(c + dy)), 1.0, 1)
    return k / max(k.sum(), 1.0)


MARGIN_STYLES = {"loose": 0.3, "tight": 0.5, "text": 0.2}  # style -> share of crops
# Share of crops from a close, clear view (`--clean`): the plate fills a tight box, its
# characters are 18-48 px high, straight on, lit by day and never "hard". The real
# benchmark crops (and a camera beside the lane) look like this far more often than the
# rest of the mix, which spends most crops on far, dark and blurred views. 0: no draw,
# so the crops come out as every model before retrain 49 saw them.
CLEAN_P = 0.0
CLEAN_MARGINS = {"tight": 0.7, "text": 0.3}


def crop_margins(plate: Plate, pw: float, ph: float, rng, style: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Crop margins (left, right), (top, bottom) in px beyond the plate's edges.

    "loose" and "tight" frame the plate; "text" hugs the characters as a tight
    detector box does on plates whose text fills them (North Carolina's, say):
    the first and last characters touch the crop's edge or lose a sliver, and
    the reader must still read them rather than take them for side clutter.
    """
    if style is None:
        style = str(rng.choice(list(MARGIN_STYLES), p=list(MARGIN_STYLES.values())))
    if style == "loose":
        return rng.uniform(0.02, 0.12, 2) * pw, rng.uniform(0.05, 0.3, 2) * ph
    if style == "tight":
        return rng.uniform(-0.03, 0.06, 2) * pw, rng.uniform(-0.06, 0.15, 2) * ph
    if style == "text":
        tx0, _, tx1, _ = plate.text_box
        pad = rng.uniform(-0.01, 0.04, 2) * (tx1 - tx0)
        mx = np.array([pad[0] - tx0, tx1 + pad[1] - pw])
        return mx, rng.uniform(-0.06, 0.15, 2) * ph
    raise ValueError(f"unknown margin style {style!r} (known: {', '.join(MARGIN_STYLES)})")


def degrade(plate: Plate, rng: np.random.Generator, out_size=(128, 32), backgrounds=None,
            margin_style: str | None = None) -> np.ndarray:
    """Clean plate -> gray uint8 model input as a real crop would give it."""
    canvas, corners = _scene(plate.image, rng, backgrounds)
    clean = CLEAN_P > 0 and rng.random() < CLEAN_P  # no draw at 0 (see CLEAN_P)
    if clean and margin_style is None:
        margin_style = str(rng.choice(list(CLEAN_MARGINS), p=list(CLEAN_MARGINS.values())))
    pw = corners[1, 0] - corners[0, 0]
    ph = corners[3, 1] - corners[0, 1]
    mx, my = crop_margins(plate, pw, ph, rng, margin_style)
    quad = corners.copy()
    quad[[0, 3], 0] -= mx[0]
    quad[[1, 2], 0] += mx[1]
    quad[[0, 1], 1] -= my[0]
    quad[[2, 3], 1] += my[1]
    # perspective: jitter each corner; rotation: turn the quad about its centre
    tilt = 0.5 if clean else 1.0
    quad += rng.normal(0, tilt, (4, 2)).astype(np.float32) * np.array([pw * 0.025, ph * 0.05], np.float32)
    ang = np.deg2rad(rng.normal(0, 3.0 * tilt))
    c = quad.mean(axis=0)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]], np.float32)
    quad = (quad - c) @ rot.T + c
    # camera resolution: main characters between ~8 and ~40 px high
    text_h = plate.text_box[3] - plate.text_box[1]
    target = float(np.exp(rng.uniform(np.log(18 if clean else 9), np.log(48))))
    s = target / max(text_h, 1)
    qw = np.linalg.norm(quad[1] - quad[0])
    qh = np.linalg.norm(quad[3] - quad[0])
    W = max(8, int(round(qw * s)))
    H = max(6, int(round(qh * s)))
    dst = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
    M = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    small = cv2.warpPerspective(canvas, M, (W, H), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    small = _lighting(small, rng, night=not clean)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    hard = rng.random() < 0.3 and not clean  # a minority of really bad crops; most are fair
    if rng.random() < (0.5 if hard else 0.3):
        sigma = rng.uniform(0.3, 1.2 if hard else 0.7)
        gray = cv2.GaussianBlur(gray, (0, 0), sigma)
    if rng.random() < (0.3 if hard else 0.1):
        k = _motion_kernel(int(rng.integers(3, 7)), rng.uniform(0, np.pi))
        gray = cv2.filter2D(gray, -1, k)
    # contrast and brightness
    alpha = rng.uniform(0.4 if hard else 0.7, 1.25)
    beta = rng.uniform(-40, 40)
    f = gray.astype(np.float32) * alpha + beta + (128 - 128 * alpha) * rng.random()
    if rng.random() < 0.6:
        f += rng.normal(0, rng.uniform(2, 12 if hard else 6), f.shape).astype(np.float32)
    gray = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        q = int(rng.integers(15 if hard else 40, 95))
        ok, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, q])
        gray = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return to_model_input(gray, out_size)
