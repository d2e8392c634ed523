"""Plate detector recall, false detections and speed on labelled photos: the
`eval-detect` command.

DIR holds photos (NAME.jpg, .png, .bmp, .tif, .webp, any case) with
OpenALPR-style NAME.txt labels (lines `NAME.jpg<TAB>x<TAB>y<TAB>w<TAB>h<TAB>TEXT`,
one per plate) or Pascal VOC NAME.xml (every <object>'s <bndbox> is a plate;
in a set that also labels other classes, only the objects whose class name
is plate-like). A label file without its photo is skipped; a photo whose
label says nothing is a photo with no plates.

Scoring: detections are matched one-to-one to labelled plates, best score
first, each to the unmatched plate it overlaps most, at IoU >= 0.5 (for
recall_iou50) or >= 0.3 (recall_iou30). A detection left unmatched at
IoU >= 0.3 is false, so a second box on an already found plate counts as
false too (the reader would OCR it twice). ms_per_image is the median time
of the detector alone (decoded image in, boxes out: resize included), after
one warm-up call; ms_per_inference the median time of one model inference
(the 320 px invoke, without the resize of the photo).

Like the daemon, boxes narrower than detector.min_plate_width_px (40 px) are
dropped before scoring: the reader cannot read them, so the daemon never
passes them on (--min-width 1 keeps all).

--sweep T1,T2,... scores the same detections at several score thresholds
(one run at the lowest), to choose detector.score_threshold on your own
validation photos; boxes found in tiles keep their own bar (--tile-score)
where it is the higher. To choose detector.tile_score_threshold, run the
daemon's mode once per --tile-score.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.argtypes import fraction, nonzero_float, positive_int
from edge.cli import out
from edge.config import DetectorConfig
from edge.detector import MODES, Detector, SsdTfliteDetector, is_plate_name, tile_bar
from edge.evaluate import DataError, photo_for, read_image
from edge.types import Box, Detection

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parents[1] / "tflite_graphs" / "plates"
DEFAULT_MODEL = MODEL_DIR / "detect.tflite"
# the daemon's defaults (config.yaml), so eval-detect measures what it runs
_DAEMON = {f.name: f.default for f in dataclasses.fields(DetectorConfig)}
DEFAULT_SCORE = _DAEMON["score_threshold"]
DEFAULT_MODE = _DAEMON["mode"]
DEFAULT_TILES = _DAEMON["tiles"]
DEFAULT_TILE_OVERLAP = _DAEMON["tile_overlap"]
DEFAULT_MIN_WIDTH = _DAEMON["min_plate_width_px"]
DEFAULT_TILE_SCORE = _DAEMON["tile_score_threshold"]
FALSE_IOU = 0.3
TRUTH_COLOUR = (0, 200, 0)  # BGR green
FOUND_COLOUR = (0, 0, 255)  # BGR red


@dataclass(frozen=True)
class Labelled:
    """A photo and its labelled plates (loaded lazily: one photo in memory at a time)."""

    image: Path
    plates: tuple[Box, ...]


@dataclass(frozen=True)
class Result:
    labelled: Labelled
    found: tuple[Detection, ...]
    ms: float
    ms_inference: float | None = None  # per model inference, when the detector says


# ---------------------------------------------------------------- labels

def read_openalpr(txt: Path) -> tuple[str | None, tuple[Box, ...]]:
    """NAME.txt -> (image name from the first line, plate boxes)."""
    try:
        lines = txt.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{txt}: cannot read ({e})") from None
    name, boxes = None, []
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        try:
            x, y, w, h = (float(v) for v in fields[1:5])
        except (ValueError, IndexError):
            raise DataError(f"{txt}:{line_no}: expected NAME<TAB>x<TAB>y<TAB>w<TAB>h<TAB>TEXT") from None
        if w <= 0 or h <= 0:
            raise DataError(f"{txt}:{line_no}: plate width and height must be > 0")
        name = name or fields[0].strip()
        boxes.append(Box(x, y, x + w, y + h))
    return name, tuple(boxes)


def read_voc_objects(xml: Path) -> tuple[str | None, tuple[tuple[str, Box], ...]]:
    """NAME.xml (Pascal VOC) -> (<filename>, (class name, box) of every object)."""
    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError) as e:
        raise DataError(f"{xml}: cannot read Pascal VOC ({e})") from None
    boxes = []
    for k, obj in enumerate(root.iter("object"), 1):
        bb = obj.find("bndbox")
        try:
            x0, y0, x1, y1 = (float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr,arg-type]
        except (AttributeError, TypeError, ValueError):
            raise DataError(f"{xml}: object {k}: expected <bndbox> with xmin ymin xmax ymax") from None
        if x1 <= x0 or y1 <= y0:
            raise DataError(f"{xml}: object {k}: empty box")
        boxes.append(((obj.findtext("name") or "").strip(), Box(x0, y0, x1, y1)))
    return root.findtext("filename"), tuple(boxes)


def load_labelled(images_dir: Path) -> list[Labelled]:
    """Every photo in DIR with a NAME.txt or NAME.xml label beside it.

    VOC sets that also label other things (cars, people) are scored on their
    plates only: when any object of the set has a plate-like class name, the
    objects of other classes are left out (and listed in the log).
    """
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: not a directory")
    found: dict[Path, tuple[tuple[str, Box], ...]] = {}
    for label in sorted(images_dir.iterdir()):
        kind = label.suffix.lower()
        if kind not in (".txt", ".xml") or not label.is_file():
            continue
        photo = photo_for(label)
        if photo is None and kind == ".txt":
            continue  # a README or notes file, not a label
        if kind == ".txt":
            named, boxes = read_openalpr(label)
            objects = tuple(("plate", b) for b in boxes)
        else:
            named, objects = read_voc_objects(label)
        photo = photo or photo_for(label, named)
        if photo is None:
            log.warning("%s: no photo beside it, skipped", label)
            continue
        if photo in found:
            raise DataError(f"{label}: {photo.name} is labelled twice")
        found[photo] = objects
    if not found:
        raise DataError(f"{images_dir}: no labelled images (NAME.jpg/.png with NAME.txt or NAME.xml)")
    classes = {name for objects in found.values() for name, _ in objects}
    keep = {c for c in classes if is_plate_name(c)} or classes
    if keep != classes:
        log.info("%s: scoring classes %s; left out %s", images_dir, sorted(keep), sorted(classes - keep))
    return [Labelled(photo, tuple(b for name, b in objects if name in keep)) for photo, objects in found.items()]


# ---------------------------------------------------------------- scoring

def match(plates: Sequence[Box], found: Sequence[Detection], min_iou: float) -> tuple[int, int]:
    """One-to-one greedy matching, best detection first -> (plates found, detections unmatched)."""
    free = list(plates)
    unmatched = 0
    for det in sorted(found, key=lambda d: -d.score):
        ious = [det.box.iou(p) for p in free]
        best = int(np.argmax(ious)) if ious else -1
        if best >= 0 and ious[best] >= min_iou:
            free.pop(best)
        else:
            unmatched += 1
    return len(plates) - len(free), unmatched


def at_threshold(results: Sequence[Result], score: float) -> list[Result]:
    """The results as a run at a higher score threshold would have found them."""
    return [Result(r.labelled, tuple(d for d in r.found if d.score >= score), r.ms, r.ms_inference)
            for r in results]


def summarise(results: Sequence[Result], mode: str, score: float) -> dict[str, object]:
    n_plates = sum(len(r.labelled.plates) for r in results)
    hit50 = sum(match(r.labelled.plates, r.found, 0.5)[0] for r in results)
    hit30, false = 0, 0
    for r in results:
        h, f = match(r.labelled.plates, r.found, FALSE_IOU)
        hit30, false = hit30 + h, false + f
    return {
        "n_images": len(results),
        "n_plates": n_plates,
        "recall_iou50": round(hit50 / n_plates, 4) if n_plates else None,
        "recall_iou30": round(hit30 / n_plates, 4) if n_plates else None,
        "false_per_image": round(false / len(results), 4),
        "n_false": false,
        "ms_per_image": round(statistics.median(r.ms for r in results), 2),
        "ms_per_inference": _median_or_none([r.ms_inference for r in results]),
        "mode": mode,
        "score_threshold": score,
    }


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def sweep(results: Sequence[Result], thresholds: Sequence[float]) -> list[dict[str, float | None]]:
    rows = []
    for t in sorted(thresholds):
        s = summarise(at_threshold(results, t), "", t)
        rows.append({k: s[k] for k in ("score_threshold", "recall_iou50", "recall_iou30", "false_per_image")})
    return rows


def table(summary: dict[str, object]) -> list[str]:
    def fmt(v: object) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    keys = ("n_images", "n_plates", "recall_iou50", "recall_iou30", "false_per_image",
            "ms_per_image", "ms_per_inference", "mode", "score_threshold")
    width = max(len(k) for k in keys)
    return [f"{k:<{width}}  {fmt(summary[k])}" for k in keys]


# ---------------------------------------------------------------- running

def evaluate(detector: Detector, labelled: Sequence[Labelled], report: Path | None = None) -> list[Result]:
    """Detect on each photo (one warm-up call first), timing the detector only."""
    results: list[Result] = []
    warm = False
    for item in labelled:
        img = read_image(item.image, cv2.IMREAD_COLOR)
        if img is None:
            continue
        if not warm:
            detector.detect(img)
            warm = True
        t0 = time.perf_counter()
        found = tuple(detector.detect(img))
        ms = (time.perf_counter() - t0) * 1000.0
        n_inf = getattr(detector, "last_inferences", 0)
        infer = getattr(detector, "last_invoke_ms", 0.0) / n_inf if n_inf else None
        results.append(Result(item, found, ms, infer))
        if report is not None:
            draw_report(report, item, found, img)
    if not results:
        raise DataError(f"{labelled[0].image.parent}: no readable labelled images")
    return results


def draw_report(report: Path, item: Labelled, found: Sequence[Detection], img: np.ndarray) -> None:
    """The photo with labelled plates in green and detections (with score) in red."""
    thick = max(1, round(max(img.shape[:2]) / 500))
    for b in item.plates:
        cv2.rectangle(img, (round(b.x0), round(b.y0)), (round(b.x1), round(b.y1)), TRUTH_COLOUR, thick)
    for d in found:
        b = d.box
        cv2.rectangle(img, (round(b.x0), round(b.y0)), (round(b.x1), round(b.y1)), FOUND_COLOUR, thick)
        cv2.putText(img, f"{d.score:.2f}", (round(b.x0), max(10, round(b.y0) - 3)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, FOUND_COLOUR, thick, cv2.LINE_AA)
    report.mkdir(parents=True, exist_ok=True)
    dest = report / (item.image.stem + ".jpg")
    if not cv2.imwrite(str(dest), img):
        raise DataError(f"{dest}: cannot write report image")








def _roi(text: str) -> tuple[float, float, float, float]:
    try:
        v = tuple(float(p) for p in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 4 or not all(0 <= p <= 1 for p in v) or v[0] >= v[2] or v[1] >= v[3]:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 fractions with X0<X1, Y0<Y1, got {text!r}")
    return v  # type: ignore[return-value]


def _tiles(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(p) for p in text.lower().split("x"))
    except ValueError:
        cols = rows = 0
    if not (1 <= cols <= 16 and 1 <= rows <= 16):
        raise argparse.ArgumentTypeError(f"expected COLSxROWS such as 2x2, got {text!r}")
    return cols, rows


def write_report_index(report: Path, results: Sequence[Result]) -> None:
    """report/index.txt: the photos with a missed plate or a false detection, to look at first."""
    lines = []
    for r in results:
        found50, _ = match(r.labelled.plates, r.found, 0.5)
        _, false = match(r.labelled.plates, r.found, FALSE_IOU)
        missed = len(r.labelled.plates) - found50
        if missed or false:
            lines.append(f"{r.labelled.image.stem}.jpg\tmissed {missed}\tfalse {false}")
    (report / "index.txt").write_text("".join(line + "\n" for line in lines))


def _thresholds(text: str) -> tuple[float, ...]:
    return tuple(fraction(p) for p in text.split(",") if p.strip())


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval-detect", help="plate detector recall and speed on labelled photos",
                              description=" ".join(__doc__.split("\n\n")[1].split()))
    p.add_argument("--images", type=Path, required=True, metavar="DIR",
                   help="NAME.jpg/.png with NAME.txt (OpenALPR) or NAME.xml (Pascal VOC) labels")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, metavar="PATH")
    p.add_argument("--labels", type=Path, metavar="PATH",
                   help="label map (default: labelmap.txt beside the model, if there)")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N", help="TFLite threads")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                   help=f"where the model looks (default: {DEFAULT_MODE}, the daemon's; auto adds tiles "
                        "only on frames much larger than the model input)")
    p.add_argument("--roi", type=_roi, default=(0.0, 0.0, 1.0, 1.0), metavar="X0,Y0,X1,Y1",
                   help="roi/tiles: region as fractions of the frame (default: all)")
    p.add_argument("--tiles", type=_tiles, default=DEFAULT_TILES, metavar="COLSxROWS",
                   help="tiles/auto: grid (default %dx%d)" % DEFAULT_TILES)
    p.add_argument("--tile-overlap", type=fraction, default=DEFAULT_TILE_OVERLAP, metavar="F",
                   help=f"tiles/auto: overlap of neighbouring tiles (default {DEFAULT_TILE_OVERLAP})")
    p.add_argument("--score", type=fraction, default=DEFAULT_SCORE, metavar="T",
                   help=f"score threshold (default {DEFAULT_SCORE}: config.yaml's detector.score_threshold)")
    p.add_argument("--tile-score", type=fraction, default=DEFAULT_TILE_SCORE, metavar="T",
                   help=f"tiles/auto: boxes found in a tile need this score too (default "
                        f"{DEFAULT_TILE_SCORE}: config.yaml's detector.tile_score_threshold)")
    p.add_argument("--min-width", type=positive_int, default=DEFAULT_MIN_WIDTH, metavar="PX",
                   help=f"drop boxes narrower than PX frame pixels, as the daemon does: too small to "
                        f"read (default {DEFAULT_MIN_WIDTH}: config.yaml's detector.min_plate_width_px)")
    p.add_argument("--sweep", type=_thresholds, metavar="T1,T2,...",
                   help="also score these thresholds (detects once, at the lowest)")
    p.add_argument("--max-detections", type=positive_int, default=_DAEMON["max_detections"], metavar="N",
                   help=f"per photo, as the daemon's detector.max_detections (default {_DAEMON['max_detections']})")
    p.add_argument("--input-mean", type=float, default=127.5, metavar="M",
                   help="float-input models: feed (pixel - M) / S")
    p.add_argument("--input-std", type=nonzero_float, default=127.5, metavar="S")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write the photos here with labelled (green) and found (red) boxes")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N photos")
    return p


def run(args: argparse.Namespace) -> int:
    labelled = load_labelled(args.images)
    labelled = labelled[: args.limit] if args.limit else labelled
    labels = args.labels
    if labels is None and (args.model.parent / "labelmap.txt").is_file():
        labels = args.model.parent / "labelmap.txt"
    lowest = min((args.score, *(args.sweep or ())))
    detector = SsdTfliteDetector(args.model, labels, num_threads=args.threads,
                                 score_threshold=lowest, max_detections=args.max_detections,
                                 input_mean=args.input_mean, input_std=args.input_std,
                                 mode=args.mode, roi=args.roi, tiles=args.tiles,
                                 tile_overlap=args.tile_overlap, min_plate_width_px=args.min_width,
                                 tile_score_threshold=args.tile_score, merge_iou=_DAEMON["merge_iou"])
    results = evaluate(detector, labelled, args.report)
    summary = summarise(at_threshold(results, args.score), args.mode, args.score)
    summary["min_plate_width_px"] = args.min_width
    if args.mode != "full":
        summary["roi"] = list(args.roi)
    if args.mode in ("tiles", "auto"):
        summary["tiles"] = list(args.tiles)
        summary["tile_score_threshold"] = tile_bar(args.score, args.tile_score)
    if args.report is not None:
        write_report_index(args.report, at_threshold(results, args.score))
        out(f"report: {args.report}")
    for line in table(summary):
        out(line)
    if args.sweep:
        summary["sweep"] = sweep(results, args.sweep)
        out("threshold  recall_iou50  recall_iou30  false_per_image")
        for row in summary["sweep"]:
            out(f"{row['score_threshold']:9.2f}  {row['recall_iou50']!s:>12}  {row['recall_iou30']!s:>12}  "
                f"{row['false_per_image']:15.3f}")
    out(json.dumps(summary))
    return 0
