"""Render the bundled sample video: a fixed camera over a lane, cars driving at it.

    python -m training.render_sample_video [--seed 7] [--out samples]

Writes, deterministically for a seed:
  sample.mp4          1280x720, 15 fps, H.264 (libx264 through ffmpeg, crf 28,
                      yuv420p): small enough to commit;
  sample.truth.json   the plates in the order the cars pass, with their layout,
                      the frames in which each plate is wholly in view and its
                      box per frame, and whether it has a paid vignette;
  paid.csv            the paid plates, for `python -m refbackend --paid-file`.

Why our own renderer: the cars carry plates drawn by training.plate_render
(the layouts the models learnt), on the car shapes of training.scene_render,
so the sample needs no downloaded footage and no licence beyond ours.

Geometry: a pinhole camera beside the road. A plate at distance d appears
with width ~ 1/d and sits K * width below the horizon; each car's plate
grows geometrically from W_FAR to W_GONE pixels over CAR_S seconds (about 80
to 260 px while wholly in view), then the car has passed. One car at a time,
GAP_S apart, so a tracker has a clean gap between vehicles.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.annotate import VideoWriter
from edge.plates import DEFAULT_FORMATS, FORMATS, match_format
from training.plate_render import Plate, render_plate
from training.scene_render import _car

log = logging.getLogger(__name__)

W, H, FPS = 1280, 720, 15
HORIZON = 250          # y of the horizon (vanishing point)
VP_X = 380             # x of the vanishing point (the camera stands right of the road)
K = 1.5                # plate centre: K * plate width below the horizon
LANE = 2.2             # right lane's centre: this many plate widths right of VP_X
ROAD_SPREAD = 2 * LANE / K  # road half-width per pixel below the horizon (two lanes)
W_FAR, W_GONE = 80.0, 340.0
CAR_S, GAP_S, LEAD_S = 3.0, 0.4, 0.5
LAYOUTS = ("CZ", "SK", "DE", "UK", "US")
PAID = (True, False, True, True, False)  # which of the cars have a vignette
# Left out, as many countries' plates do: letters that look like digits, so a
# wrong verdict in the demo means a misread, not an ambiguity. A generic (US)
# format cannot fix a digit/letter mix-up either, so its 0 and 1 go too.
UNCLEAR = frozenset("OQI")
UNCLEAR_US = UNCLEAR | frozenset("01")


@dataclass(frozen=True, eq=False)
class Car:
    plate: Plate
    body_seed: int
    start: int     # first frame
    frames: int    # frames from far away to passed
    paid: bool

    def plate_width(self, i: int) -> float:
        u = (i - self.start) / self.frames
        return W_FAR * (W_GONE / W_FAR) ** u

    def visible(self, i: int) -> bool:
        return self.start <= i < self.start + self.frames


def _format_of(text: str, layout: str) -> bool:
    """The text fits its layout's format (and a US text fits no specific one)."""
    if UNCLEAR & set(text):
        return False
    if layout == "US":
        return 6 <= len(text) <= 7 and not UNCLEAR_US & set(text) and \
            match_format(text, DEFAULT_FORMATS) is FORMATS["US"]
    return FORMATS[layout].matches(text)


def plan(seed: int) -> list[Car]:
    """The cars, in the order they pass: distinct plates, one of each layout."""
    rng = np.random.default_rng(seed)
    per_car = round(CAR_S * FPS)
    cars: list[Car] = []
    seen: set[str] = set()
    for k, layout in enumerate(LAYOUTS):
        while True:
            plate = render_plate(rng, layout)
            if plate.text not in seen and _format_of(plate.text, layout):
                break
        seen.add(plate.text)
        start = round((LEAD_S + k * (CAR_S + GAP_S)) * FPS)
        cars.append(Car(plate, int(rng.integers(2**31)), start, per_car, PAID[k]))
    return cars


def background(seed: int) -> np.ndarray:
    """The empty scene: sky, a skyline, verges and a two-lane road to the horizon."""
    rng = np.random.default_rng(seed + 1)
    img = np.empty((H, W, 3), np.uint8)
    sky = np.linspace(0, 1, HORIZON)[:, None, None]
    img[:HORIZON] = ((1 - sky) * np.array([235, 200, 150]) + sky * np.array([245, 230, 215])).astype(np.uint8)
    img[HORIZON:] = (70, 120, 80)  # verge
    x = 0
    while x < W:  # skyline: buildings and trees standing on the horizon
        bw = int(rng.integers(40, 140))
        bh = int(rng.integers(20, 110))
        shade = int(rng.integers(90, 170))
        tint = int(rng.integers(-10, 20))
        color = (shade, shade, shade + tint) if rng.random() < 0.6 else (40, 90 + shade // 4, 50)
        cv2.rectangle(img, (x, HORIZON - bh), (x + bw, HORIZON), color, -1)
        x += bw + int(rng.integers(0, 30))
    bottom = H + 200
    half = ROAD_SPREAD * (bottom - HORIZON)
    road = np.array([[VP_X - 2, HORIZON], [VP_X + 2, HORIZON], [VP_X + half, bottom], [VP_X - half, bottom]],
                    np.int32)
    cv2.fillPoly(img, [road], (95, 95, 100), cv2.LINE_AA)
    for side in (-0.96, 0.96):  # edge lines
        cv2.line(img, (VP_X, HORIZON), (int(VP_X + side * half), bottom), (225, 225, 225), 3, cv2.LINE_AA)
    for k in range(12):  # dashed centre line, dashes evenly spaced in depth
        y0 = HORIZON + 4 * 1.45 ** k
        y1 = HORIZON + 4 * 1.45 ** (k + 0.5)
        if y0 > H:
            break
        w0, w1 = max(1, int(0.012 * (y0 - HORIZON))), max(1, int(0.012 * (y1 - HORIZON)))
        cv2.line(img, (VP_X, int(y0)), (VP_X, int(y1)), (225, 225, 225), max(w0, w1), cv2.LINE_AA)
    noise = rng.normal(0, 4, (H, W, 1))  # static texture: the camera sees a real surface
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def plate_box(car: Car, i: int) -> tuple[float, float, float, float]:
    """The plate's box (x0, y0, x1, y1) in frame i, possibly outside the frame."""
    pw = car.plate_width(i)
    ph = pw * car.plate.image.shape[0] / car.plate.image.shape[1]
    cx, cy = VP_X + LANE * pw, HORIZON + K * pw
    return cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2


def render_frame(bg: np.ndarray, cars: list[Car], i: int) -> np.ndarray:
    img = bg.copy()
    for car in sorted((c for c in cars if c.visible(i)), key=lambda c: c.plate_width(i)):  # far first
        x0, y0, x1, y1 = plate_box(car, i)
        pw, ph = x1 - x0, y1 - y0
        _car(img, np.random.default_rng(car.body_seed), pw, ph, (x0 + x1) / 2, (y0 + y1) / 2)
        _paste(img, car.plate.image, x0, y0, pw, ph)
    return img


def _paste(img: np.ndarray, plate: np.ndarray, x0: float, y0: float, pw: float, ph: float) -> None:
    """Draw the plate scaled to (pw, ph) at (x0, y0), clipped to the frame."""
    w, h = max(1, round(pw)), max(1, round(ph))
    scaled = cv2.resize(plate, (w, h), interpolation=cv2.INTER_AREA)
    xa, ya = round(x0), round(y0)
    xb, yb = min(W, xa + w), min(H, ya + h)
    sx, sy = max(0, -xa), max(0, -ya)
    if xb <= max(xa, 0) or yb <= max(ya, 0):
        return
    img[max(ya, 0):yb, max(xa, 0):xb] = scaled[sy:sy + yb - max(ya, 0), sx:sx + xb - max(xa, 0)]


def truth(cars: list[Car], seed: int, n_frames: int) -> dict[str, object]:
    plates = []
    for car in cars:
        boxes = []
        for i in range(car.start, car.start + car.frames):
            x0, y0, x1, y1 = plate_box(car, i)
            if x0 >= 0 and y0 >= 0 and x1 <= W and y1 <= H:
                boxes.append([i, round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)])
        plates.append({
            "plate": car.plate.text, "layout": car.plate.layout,
            "vignette": "valid" if car.paid else "invalid",
            "first_frame": boxes[0][0], "last_frame": boxes[-1][0],
            "first_s": round(boxes[0][0] / FPS, 3), "last_s": round(boxes[-1][0] / FPS, 3),
            "width_px": [round(boxes[0][3] - boxes[0][1], 1), round(boxes[-1][3] - boxes[-1][1], 1)],
            "boxes": boxes,
        })
    return {"video": "sample.mp4", "seed": seed, "size": [W, H], "fps": FPS, "frames": n_frames,
            "note": "boxes: [frame, x0, y0, x1, y1] while the plate is wholly in view",
            "plates": plates}


def _dump(doc: dict[str, object]) -> str:
    """JSON with one line per top-level key and one line per plate: diffs stay readable."""
    head = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k != "plates"]
    plates = ",\n".join(f"  {json.dumps(p)}" for p in doc["plates"])  # type: ignore[union-attr]
    return "{\n" + ",\n".join(head) + ',\n "plates": [\n' + plates + "\n ]\n}\n"


def render(out_dir: Path, seed: int, crf: int = 28) -> Path:
    cars = plan(seed)
    n_frames = cars[-1].start + cars[-1].frames + round(GAP_S * FPS)
    bg = background(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "sample.mp4"
    with VideoWriter(video, FPS, crf=crf, preset="slow") as writer:
        for i in range(n_frames):
            writer.write(render_frame(bg, cars, i))
    doc = truth(cars, seed, n_frames)
    (out_dir / "sample.truth.json").write_text(_dump(doc), encoding="utf-8")
    with open(out_dir / "paid.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["plate", "valid_until", "valid_from"])
        for car in cars:
            if car.paid:
                w.writerow([car.plate.text, "", ""])
    check(video, n_frames)
    return video


def check(video: Path, n_frames: int) -> None:
    """OpenCV must read every frame back at the right size (what replay uses)."""
    cap = cv2.VideoCapture(str(video))
    n = 0
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            if img.shape[:2] != (H, W):
                raise SystemExit(f"{video}: frame {n} is {img.shape[1]}x{img.shape[0]}, not {W}x{H}")
            n += 1
    finally:
        cap.release()
    if n != n_frames:
        raise SystemExit(f"{video}: OpenCV read {n} frames, {n_frames} were written")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "samples")
    p.add_argument("--crf", type=int, default=28, help="x264 quality (higher: smaller, blurrier)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    video = render(args.out, args.seed, args.crf)
    doc = json.loads((args.out / "sample.truth.json").read_text(encoding="utf-8"))
    log.info("%s: %d frames, %.0f kB; plates: %s", video, doc["frames"], video.stat().st_size / 1e3,
             ", ".join(f"{p['plate']} ({p['layout']}, {p['vignette']})" for p in doc["plates"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
