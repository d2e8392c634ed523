"""Synthetic detector scenes: plates on cars in real street photos, with exact boxes.

Plates come from training.plate_render; they are warped into real photos
without plates (../shared/train/backgrounds) or onto procedurally drawn car
rears/fronts, 0 to several per image, 3 %-50 % of the image wide, with
perspective, blur, lighting, noise, JPEG and night. Hard negatives (signs,
stickers, random text, country ovals) teach the detector plates rather than
text. Lights (high-mounted brake lights, lit shop signs) are drawn on their
own emissive layer, added after a night scene is dimmed, because at night
they stay bright bars and words on black: the commonest false plates on
real dashcam frames (ro-dashcam/valid) after the ovals.

The scene is drawn at a source aspect (16:9, 4:3 or square) and squashed to
the square model input, as the runtime squashes a frame, ROI or tile.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.plate_render import ALNUM, LETTERS, _color, _place_line, render_plate

ASPECTS = ((16, 9), (4, 3), (1, 1), (3, 2))
TEXT_FONTS = ["sans_bold", "serif", "narrow_bold", "din", "gothic_d", "lib_serif_bold", "mono_bold"]
# International vehicle registration codes, as on the white oval stickers on
# cars' rears (SK and CZ ovals were our commonest false plates on real photos).
OVAL_CODES = ("SK", "CZ", "D", "A", "H", "PL", "NL", "F", "I", "CH", "GB", "UA", "RO", "HR", "SLO", "BG", "USA")


def _background(rng, w, h, backgrounds) -> np.ndarray:
    if backgrounds and rng.random() < 0.85:
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        bh, bw = bg.shape[:2]
        s = rng.uniform(0.5, 1.0)
        cw, ch = max(16, int(bw * s)), max(16, int(bh * s))
        x, y = int(rng.integers(0, bw - cw + 1)), int(rng.integers(0, bh - ch + 1))
        g = cv2.resize(bg[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
        img = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR).astype(np.float32)
        if rng.random() < 0.6:  # colour the gray photo so colour is no plate cue
            img *= rng.uniform(0.6, 1.3, 3).astype(np.float32)
            img += rng.uniform(-25, 25, 3).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _color(rng)
    for _ in range(int(rng.integers(2, 8))):
        p1 = (int(rng.integers(w)), int(rng.integers(h)))
        p2 = (int(rng.integers(w)), int(rng.integers(h)))
        cv2.rectangle(img, p1, p2, _color(rng), -1)
    return img


def _car(img, rng, plate_w, plate_h, cx, cy, lights=None):
    """Draw a car rear/front around where the plate goes (body, window, lights, bumper);
    `lights` may add a lit high-mounted brake light above the window."""
    h, w = img.shape[:2]
    bw = int(plate_w * rng.uniform(3.0, 4.5))
    bh = int(plate_w * rng.uniform(1.6, 2.6))
    x0, y0 = int(cx - bw / 2), int(cy - bh * rng.uniform(0.55, 0.75))
    body = _color(rng)
    cv2.rectangle(img, (x0, y0), (x0 + bw, y0 + bh), body, -1)
    cv2.rectangle(img, (x0 + bw // 8, y0 - bh // 3), (x0 + 7 * bw // 8, y0 + bh // 10), _color(rng, 0, 90), -1)
    lw = bw // 6
    ly = y0 + int(bh * rng.uniform(0.15, 0.35))
    light = (30, 30, int(rng.integers(150, 255))) if rng.random() < 0.6 else _color(rng, 150, 255)
    cv2.rectangle(img, (x0 + 4, ly), (x0 + 4 + lw, ly + bh // 6), light, -1)
    cv2.rectangle(img, (x0 + bw - 4 - lw, ly), (x0 + bw - 4, ly + bh // 6), light, -1)
    by = int(cy + plate_h * rng.uniform(0.7, 1.2))
    cv2.rectangle(img, (x0 - 2, by), (x0 + bw + 2, by + max(2, bh // 8)), _color(rng, 0, 80), -1)
    if rng.random() < 0.5:  # badge / model name: text that is not a plate
        _text_patch(img, rng, (int(cx + plate_w * 0.4), int(cy - plate_h * 2)), int(plate_h * 0.5), sign=False)
    if rng.random() < 0.35:  # a country oval beside the plate or on the boot lid
        side = rng.choice([-1, 1])
        ox = cx + side * plate_w * rng.uniform(0.75, 1.3)
        oy = cy - plate_h * rng.uniform(-0.3, 2.5)
        _country_oval(img, rng, (ox, oy), plate_w * rng.uniform(0.28, 0.4))
    if lights is not None:
        lights.maybe_brake_light(cx, y0 - bh / 3, bw, plate_h)


class Lights:
    """A scene's emissive layer (added after a night scene is dimmed) with its
    own random stream, so drawing lights or not never moves a plate."""

    def __init__(self, h: int, w: int, seed: int) -> None:
        self.glow = np.zeros((h, w, 3), np.float32)
        self.rng = np.random.default_rng(seed)
        self.lit = False

    def maybe_brake_light(self, cx: float, window_top: float, car_w: float, plate_h: float) -> None:
        r = self.rng
        if r.random() < 0.4:
            bar_h = max(2.0, plate_h * r.uniform(0.12, 0.35))
            _brake_light(self.glow, r, (cx, window_top - bar_h * r.uniform(0.6, 1.5)), car_w * r.uniform(0.15, 0.4),
                         bar_h)
            self.lit = True

    def maybe_signs(self, img: np.ndarray) -> None:
        r = self.rng
        h, w = img.shape[:2]
        if r.random() < 0.25:
            for _ in range(int(r.integers(1, 3))):
                _lit_sign(img, self.glow, r, (r.uniform(0, w * 0.9), r.uniform(0, h * 0.6)),
                          h * float(np.exp(r.uniform(np.log(0.015), np.log(0.08)))))
            self.lit = True

    def resized(self, size: int) -> np.ndarray | None:
        return cv2.resize(self.glow, (size, size), interpolation=cv2.INTER_AREA) if self.lit else None


def _brake_light(glow, rng, center, width, height):
    """A high-mounted brake light: a thin bright bar (white core, red halo),
    plate-like in shape but with no characters."""
    h, w = glow.shape[:2]
    x0, y0 = int(center[0] - width / 2), int(center[1] - height / 2)
    x1, y1 = int(x0 + width), int(y0 + max(2, height))
    pad = int(max(3, height * 2))
    if x0 - pad < 0 or y0 - pad < 0 or x1 + pad > w or y1 + pad > h or x1 - x0 < 4:
        return
    patch = glow[y0 - pad:y1 + pad, x0 - pad:x1 + pad]
    core = np.zeros(patch.shape[:2], np.float32)
    cv2.rectangle(core, (pad, pad), (pad + x1 - x0 - 1, pad + y1 - y0 - 1), 1.0, -1)
    halo = cv2.GaussianBlur(core, (0, 0), max(1.0, height * rng.uniform(0.5, 1.2)))
    red = np.array([rng.uniform(20, 90), rng.uniform(20, 90), 255.0], np.float32)  # BGR
    white = np.float32(rng.uniform(180, 255))
    patch += halo[..., None] * red * rng.uniform(0.6, 1.0) + core[..., None] * white


def _lit_sign(img, glow, rng, at, height):
    """A shop or road sign lit at night: bright words (with a halo) on a dark panel."""
    h, w = img.shape[:2]
    n = int(rng.integers(3, 10))
    text = list("".join(rng.choice(list(LETTERS + ALNUM), n)))
    height = max(5, int(height))
    tw = int(height * len(text) * rng.uniform(0.5, 0.75))
    x0, y0 = int(at[0]), int(at[1])
    x1, y1 = x0 + tw + height // 2, y0 + height + height // 3
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        return
    if rng.random() < 0.6:
        cv2.rectangle(img, (x0, y0), (x1, y1), _color(rng, 0, 40), -1)
    ink = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    colour = (255.0, 255.0, 255.0) if rng.random() < 0.5 else _color(rng, 120, 255)
    _place_line(ink, text, str(rng.choice(TEXT_FONTS)), colour, (2, 2, x1 - x0 - 2, y1 - y0 - 2), rng,
                shadow=False)
    halo = cv2.GaussianBlur(ink, (0, 0), max(1.0, height * 0.15))
    glow[y0:y1, x0:x1] += ink + halo * rng.uniform(0.3, 0.8)


def _country_oval(img, rng, center, width):
    """A white oval sticker with a black country code: plate-like text on a
    light patch, but not a plate (EU ovals are 175x115 mm, a plate 520x110)."""
    h, w = img.shape[:2]
    ow, oh = max(8.0, width), max(6.0, width * rng.uniform(0.6, 0.72))
    x0, y0 = int(center[0] - ow / 2), int(center[1] - oh / 2)
    x1, y1 = int(x0 + ow), int(y0 + oh)
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        return
    axes = (max(2, (x1 - x0) // 2), max(2, (y1 - y0) // 2))
    c = ((x0 + x1) // 2, (y0 + y1) // 2)
    cv2.ellipse(img, c, axes, 0, 0, 360, _color(rng, 200, 255), -1, cv2.LINE_AA)
    ink = _color(rng, 0, 50)
    if rng.random() < 0.7:
        cv2.ellipse(img, c, axes, 0, 0, 360, ink, max(1, axes[1] // 10), cv2.LINE_AA)
    code = str(rng.choice(OVAL_CODES))
    th = int((y1 - y0) * rng.uniform(0.45, 0.6))
    tw = int((x1 - x0) * min(0.75, 0.3 * len(code)))
    bx0, by0 = c[0] - tw // 2, c[1] - th // 2
    if tw < 4 or th < 4:
        return
    f = img[by0:by0 + th, bx0:bx0 + tw].astype(np.float32)
    _place_line(f, list(code), str(rng.choice(["sans_bold", "din", "narrow_bold", "lib_sans_bold"])), ink,
                (0, 0, tw, th), rng, shadow=False)
    img[by0:by0 + th, bx0:bx0 + tw] = np.clip(f, 0, 255).astype(np.uint8)


def _text_patch(img, rng, at, height, sign=True):
    """Text-like clutter: a sign or sticker with random text."""
    h, w = img.shape[:2]
    n = int(rng.integers(2, 12))
    text = list("".join(rng.choice(list(ALNUM + LETTERS + "  "), n)).strip() or "AB")
    height = max(5, height)
    tw = int(height * len(text) * rng.uniform(0.5, 0.8))
    x, y = at
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(w, x + tw + height // 2), min(h, y + height + height // 3)
    if x1 - x0 < 8 or y1 - y0 < 5:
        return
    if sign:
        cv2.rectangle(img, (x0, y0), (x1, y1), _color(rng), -1)
    f = img[y0:y1, x0:x1].astype(np.float32)
    _place_line(f, text, str(rng.choice(TEXT_FONTS)), _color(rng),
                (2, 2, x1 - x0 - 2, y1 - y0 - 2), rng, shadow=False)
    img[y0:y1, x0:x1] = np.clip(f, 0, 255).astype(np.uint8)


def _warp_plate(img, plate_img, rng, x, y, pw, boxes_out):
    """Warp a plate into img with its top-left near (x, y), width pw; record its box."""
    ph0, pw0 = plate_img.shape[:2]
    ph = pw * ph0 / pw0
    src = np.array([[0, 0], [pw0, 0], [pw0, ph0], [0, ph0]], np.float32)
    dst = np.array([[x, y], [x + pw, y], [x + pw, y + ph], [x, y + ph]], np.float32)
    dst += rng.normal(0, 1, (4, 2)).astype(np.float32) * np.array([pw * 0.03, ph * 0.06], np.float32)
    ang = np.deg2rad(rng.normal(0, 4))
    c = dst.mean(0)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]], np.float32)
    dst = (dst - c) @ rot.T + c
    x0, y0 = np.floor(dst.min(0)).astype(int)
    x1, y1 = np.ceil(dst.max(0)).astype(int)
    h, w = img.shape[:2]
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        return False
    M = cv2.getPerspectiveTransform(src, (dst - [x0, y0]).astype(np.float32))
    bw, bh = x1 - x0, y1 - y0
    warped = cv2.warpPerspective(plate_img, M, (bw, bh), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ph0, pw0), 255, np.uint8), M, (bw, bh), flags=cv2.INTER_LINEAR)
    m = (mask.astype(np.float32) / 255.0)[..., None]
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi * (1 - m) + warped * m).astype(np.uint8)
    # the labelled box is the tight box of the plate's pixels
    ys, xs = np.nonzero(mask > 127)
    if len(xs) == 0:
        return False
    boxes_out.append((x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1))
    return True


def _global(img, rng, glow=None) -> np.ndarray:
    """Camera and light: exposure, night, lights (after the dimming), noise, blur, JPEG, gray."""
    f = img.astype(np.float32)
    f = f * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)
    night = rng.random() < 0.15
    if night:
        f *= rng.uniform(0.2, 0.45)
    by_day = rng.uniform(0.5, 0.9)  # drawn either way: the same seed makes the same scene with or without lights
    if glow is not None:
        f += glow * (1.0 if night else by_day)
    if rng.random() < 0.4:
        f += rng.normal(0, rng.uniform(2, 10), f.shape[:2]).astype(np.float32)[..., None]
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.35:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.3))
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 95))])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if rng.random() < 0.3:  # a gray camera (or night IR) image
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return out


def render_scene(rng: np.random.Generator, size: int = 320, backgrounds=None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One scene: BGR uint8 (size, size, 3) and boxes float32 [K, 4] (x0, y0, x1, y1) px."""
    aw, ah = ASPECTS[int(rng.integers(len(ASPECTS)))]
    H = int(rng.choice([320, 400, 480]))
    W = int(H * aw / ah)
    img = _background(rng, W, H, backgrounds)
    lights = Lights(H, W, int(rng.integers(2**31)))
    for _ in range(int(rng.integers(0, 4))):  # hard negatives first (plates may cover them)
        _text_patch(img, rng, (int(rng.integers(W)), int(rng.integers(H))),
                    int(H * rng.uniform(0.02, 0.1)))
    if rng.random() < 0.2:
        _country_oval(img, rng, (rng.uniform(0, W), rng.uniform(0, H)),
                      W * float(np.exp(rng.uniform(np.log(0.015), np.log(0.15)))))
    lights.maybe_signs(img)
    r = rng.random()
    n = 0 if r < 0.08 else 1 if r < 0.65 else int(rng.integers(2, 5))
    boxes: list[tuple[int, int, int, int]] = []
    placed = []  # (plate, x, y, pw, ph, with_car); cars are all drawn before any plate
    taken: list[tuple[float, float, float, float]] = []
    for _ in range(n):
        plate = render_plate(rng, backgrounds=backgrounds)
        frac = float(np.exp(rng.uniform(np.log(0.035), np.log(0.5))))
        pw = max(12.0, W * frac)
        ph = pw * plate.image.shape[0] / plate.image.shape[1]
        car = rng.random() < 0.6 and pw < W * 0.3
        for _try in range(5):
            x = rng.uniform(2, max(3, W - pw - 2))
            y = rng.uniform(2, max(3, H - ph - 2))
            m = 2.5 if car else 0.3
            cand = (x - pw * m, y - ph * m * 2, x + pw * (1 + m), y + ph * (1 + m))
            if all(cand[2] < b[0] or cand[0] > b[2] or cand[3] < b[1] or cand[1] > b[3] for b in taken):
                break
        else:
            continue
        taken.append(cand)
        placed.append((plate, x, y, pw, ph, car))
    for plate, x, y, pw, ph, car in placed:
        if car:
            _car(img, rng, pw, ph, x + pw / 2, y + ph / 2, lights)
    for plate, x, y, pw, ph, car in placed:
        _warp_plate(img, plate.image, rng, x, y, pw, boxes)
    out = _global(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), rng, lights.resized(size))
    b = np.array(boxes, np.float32).reshape(-1, 4)
    b[:, [0, 2]] *= size / W
    b[:, [1, 3]] *= size / H
    return out, b
