"""`anpr-edge bench VIDEO_OR_DIR`: our pipeline against the classic tutorial's, on the same frames.

Ours is what `replay` and the daemon run: the config's Pipeline (TFLite
detector, TFLite OCR with its second look and Tesseract fallback) and
Tracker, built once.
The baseline is the Raspberry Pi ANPR tutorial's recipe on the same
detector's boxes: crop, gray, 5x5 Gaussian blur, then pytesseract --psm 7
with an A-Z0-9 whitelist per plate, keeping words with confidence > 73 and
more than 6 characters. pytesseract starts one `tesseract` process per
plate; that cost is what the comparison shows.

Frames are decoded as a stream, once per pass (ours, then the baseline; a
decoder gives the same frames each time, and the baseline takes exactly as
many). Nothing is cached, so peak RSS (ru_maxrss, read after our pass and
before the baseline loads anything) is the pipeline's, not a frame cache's.

Each stage is timed per frame with perf_counter: decode, detect,
crop+preprocess, read, track; total is the frame's wall time from decode
through track, so it also holds the filters. fps is frames over the summed
totals, plates/s accepted reads over the same. The first frame (model
warm-up) counts. Threads are explicit: TFLite from detector.threads and
reader.threads (--threads sets both), Tesseract's OpenMP from
OMP_THREAD_LIMIT (1 unless set); OpenCV's pool is left as the daemon has it
and reported.

Output: a table (median and p95 ms per frame and stage, ours and baseline)
and, as the last line, one JSON object. Exit codes: 2 bad arguments or
config; 3 a model, or the tesseract program for the baseline, is missing;
4 the video or folder cannot be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import json
import logging
import os
import platform
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.argtypes import positive_int
from edge.check_config import DEFAULT_CONFIG, load_checked
from edge.config import Config
from edge.detector import Detector
from edge.evaluate import DataError
from edge.pipeline import Pipeline, build_pipeline
from edge.plates import ALNUM
from edge.preprocess import crop_box
from edge.runtime import ModelError
from edge.sources import FrameSource, ImageFolderSource, SourceError, VideoFileSource
from edge.tracker import Tracker
from edge.types import Frame

__all__ = ["STAGES", "Timings", "TutorialOcr", "add_parser", "bench_baseline", "bench_ours",
           "cpu_model", "report", "run", "tutorial_texts"]

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("decode", "detect", "preprocess", "read", "track", "total")
BASELINE_STAGES: tuple[str, ...] = ("decode", "detect", "preprocess", "read", "total")  # no tracker
_LABELS = {"preprocess": "crop+preprocess"}

# The tutorial's filter and OCR call.
TUTORIAL_MIN_CONF = 73.0   # keep words with confidence above this (0-100)
TUTORIAL_MIN_CHARS = 6     # ... and more than this many characters
TUTORIAL_BLUR = (5, 5)
TUTORIAL_CONFIG = f"--psm 7 -c tessedit_char_whitelist={ALNUM}"

OcrFn = Callable[[np.ndarray], Mapping[str, Sequence[Any]]]  # image_to_data's DICT output


# --------------------------------------------------------------------------
# Per-frame timings.

@dataclass
class Timings:
    """Per-frame seconds of each stage, and what was read."""

    stages: tuple[str, ...] = STAGES
    seconds: dict[str, list[float]] = field(default_factory=dict)
    plates: int = 0       # accepted reads (ours) or texts kept by the tutorial's filter
    vehicles: int = 0     # tracker results (ours only)

    def add(self, **seconds: float) -> None:
        for stage in self.stages:
            self.seconds.setdefault(stage, []).append(seconds.get(stage, 0.0))

    @property
    def frames(self) -> int:
        return len(self.seconds.get("total", ()))

    def ms(self, stage: str, q: float = 50.0) -> float | None:
        """Percentile q of the stage's per-frame milliseconds; None if not a stage here."""
        values = self.seconds.get(stage)
        if stage not in self.stages or not values:
            return None
        return 1e3 * float(np.percentile(values, q))

    @property
    def busy_s(self) -> float:
        return float(sum(self.seconds.get("total", ())))

    @property
    def fps(self) -> float:
        return self.frames / self.busy_s if self.busy_s > 0 else 0.0

    @property
    def plates_per_s(self) -> float:
        return self.plates / self.busy_s if self.busy_s > 0 else 0.0


def timed_frames(source: FrameSource, limit: int | None) -> Iterator[tuple[Frame, float]]:
    """(frame, seconds its decode took), at most `limit` frames; closes the source."""
    it = iter(source)
    clock = time.perf_counter
    try:
        for _ in range(limit) if limit is not None else itertools.count():
            t0 = clock()
            frame = next(it, None)
            decode_s = clock() - t0
            if frame is None:
                return
            yield frame, decode_s
    finally:
        source.close()


# --------------------------------------------------------------------------
# Ours: the daemon's pipeline and tracker.

def bench_ours(frames: Iterator[tuple[Frame, float]], pipeline: Pipeline, tracker: Tracker) -> Timings:
    """Every frame through pipeline and tracker, timed per stage."""
    clock = time.perf_counter
    t = Timings(STAGES)
    for frame, decode_s in frames:
        t0 = clock()
        observations = pipeline.process(frame)
        t1 = clock()
        t.vehicles += len(tracker.update(frame.t, observations))
        t2 = clock()
        st = pipeline.last_times
        t.add(decode=decode_s, detect=st.detect_s, preprocess=st.preprocess_s, read=st.read_s,
              track=t2 - t1, total=decode_s + (t2 - t0))
        t.plates += sum(1 for ob in observations if ob.reading.text)
    t.vehicles += len(tracker.flush())
    return t


# --------------------------------------------------------------------------
# Baseline: the tutorial's crop -> gray -> blur -> pytesseract per plate.

def tutorial_texts(data: Mapping[str, Sequence[Any]]) -> list[str]:
    """The tutorial's filter on image_to_data output: confidence > 73 and more than 6 characters."""
    kept = []
    for text, conf in zip(data.get("text", ()), data.get("conf", ())):
        word = str(text).strip()
        try:
            confidence = float(conf)
        except (TypeError, ValueError):
            continue
        if confidence > TUTORIAL_MIN_CONF and len(word) > TUTORIAL_MIN_CHARS:
            kept.append(word)
    return kept


class TutorialOcr:
    """pytesseract.image_to_data as the tutorial calls it: one `tesseract` process per plate.

    Made before our pass (a cheap check, so a missing program fails early);
    start() imports pytesseract after it, so it stays out of our peak RSS.
    """

    def __init__(self, lang: str = "eng") -> None:
        if importlib.util.find_spec("pytesseract") is None:
            raise ModelError("baseline: pytesseract is not installed (pip install pytesseract); "
                             "or pass --no-baseline")
        if shutil.which("tesseract") is None:
            raise ModelError("baseline: the tesseract program is not installed (apt install "
                             "tesseract-ocr); or pass --no-baseline")
        self.lang = lang
        self._pt: Any = None

    def start(self) -> None:
        import pytesseract

        if self.lang not in pytesseract.get_languages(config=""):
            raise ModelError(f"baseline: Tesseract has no '{self.lang}' language data "
                             "(apt install tesseract-ocr-eng); or pass --no-baseline")
        self._pt = pytesseract

    def __call__(self, image: np.ndarray) -> Mapping[str, Sequence[Any]]:
        pt = self._pt
        try:
            return pt.image_to_data(image, lang=self.lang, config=TUTORIAL_CONFIG, output_type=pt.Output.DICT)
        except pt.TesseractError as exc:  # e.g. a crop too small to scale: nothing read
            log.debug("baseline: tesseract failed on a %dx%d crop: %s", image.shape[1], image.shape[0], exc)
            return {}


def bench_baseline(frames: Iterator[tuple[Frame, float]], detector: Detector, min_score: float,
                   ocr: OcrFn) -> Timings:
    """The tutorial's recipe on the detector's boxes, timed per stage like ours."""
    clock = time.perf_counter
    t = Timings(BASELINE_STAGES)
    for frame, decode_s in frames:
        image = frame.image
        t0 = clock()
        detections = detector.detect(image)
        t1 = clock()
        prep_s = read_s = 0.0
        for det in detections:
            if det.score < min_score:
                continue
            ta = clock()
            b = det.box
            try:
                crop = crop_box(image, b.x0, b.y0, b.x1, b.y1)
            except ValueError:
                continue
            gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            blurred = cv2.GaussianBlur(gray, TUTORIAL_BLUR, 0)
            tb = clock()
            t.plates += len(tutorial_texts(ocr(blurred)))
            tc = clock()
            prep_s += tb - ta
            read_s += tc - tb
        t.add(decode=decode_s, detect=t1 - t0, preprocess=prep_s, read=read_s,
              total=decode_s + (clock() - t0))
    return t


# --------------------------------------------------------------------------
# Machine and memory.

def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name from /proc/cpuinfo ('model name' on x86, the board's 'Model' on a Pi)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "model", "hardware", "processor"):
        value = fields.get(key, "")
        if value and not value.isdigit():  # x86's 'model : 2' is a number, not a name
            return value
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"machine": platform.machine(), "cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable}


def peak_rss_mb() -> float:
    """This process's ru_maxrss in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


# --------------------------------------------------------------------------
# Report.

def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def report(ours: Timings, base: Timings | None, *, peak_mb: float, threads: Mapping[str, Any],
           source: str) -> dict[str, Any]:
    """The JSON object (the command's last line)."""
    doc: dict[str, Any] = {
        "input": source, "frames": ours.frames, "fps": _r(ours.fps, 2),
        "baseline_fps": _r(base.fps, 2) if base else None,
        "speedup": _r(ours.fps / base.fps, 2) if base and base.fps > 0 else None,
        "peak_rss_mb": _r(peak_mb, 1), "plates_per_s": _r(ours.plates_per_s, 2),
        "plates": ours.plates, "vehicles": ours.vehicles,
    }
    doc.update({f"{s}_ms": _r(ours.ms(s)) for s in STAGES})
    doc["p95_ms"] = {s: _r(ours.ms(s, 95)) for s in STAGES}
    doc.update({f"baseline_{s}_ms": _r(base.ms(s)) if base else None for s in STAGES})
    doc["baseline_p95_ms"] = {s: _r(base.ms(s, 95)) for s in STAGES} if base else None
    doc["baseline_plates_per_s"] = _r(base.plates_per_s, 2) if base else None
    doc["baseline_plates"] = base.plates if base else None
    doc["baseline_frames"] = base.frames if base else None
    doc["machine"] = machine_info()
    doc["threads"] = dict(threads)
    return doc


def table(doc: Mapping[str, Any]) -> list[str]:
    """Stage x median/p95 ms per frame, ours and baseline, then the rates."""
    base = doc["baseline_fps"] is not None

    def cell(x: float | None) -> str:
        return f"{x:9.2f}" if x is not None else f"{'-':>9}"

    m, th = doc["machine"], doc["threads"]
    lines = [f"bench {doc['input']}: {doc['frames']} frames; {m['machine']} {m['cpu']}, "
             f"{m['usable_cores']}/{m['cores']} cores; threads detector {th['detector']}, "
             f"OCR {th['ocr']}, OMP_THREAD_LIMIT {th['omp_thread_limit']}, OpenCV {th['opencv']}",
             f"{'ms per frame':<16}{'ours':>9}{'':9}" + (f"{'baseline':>11}" if base else ""),
             f"{'stage':<16}{'median':>9}{'p95':>9}" + (f"{'median':>11}{'p95':>9}" if base else "")]
    for s in STAGES:
        row = f"{_LABELS.get(s, s):<16}{cell(doc[f'{s}_ms'])}{cell(doc['p95_ms'][s])}"
        if base:
            row += "  " + cell(doc[f"baseline_{s}_ms"]) + cell(doc["baseline_p95_ms"][s])
        lines.append(row)
    lines.append(f"{'fps':<16}{cell(doc['fps'])}{'':9}" + ("  " + cell(doc["baseline_fps"]) if base else ""))
    lines.append(f"{'plates/s':<16}{cell(doc['plates_per_s'])}{'':9}"
                 + ("  " + cell(doc["baseline_plates_per_s"]) if base else ""))
    if base:
        lines.append(f"speedup {doc['speedup']}x (fps / baseline fps); "
                     f"plates {doc['plates']} ours, {doc['baseline_plates']} baseline")
    lines.append(f"peak RSS {doc['peak_rss_mb']} MB (ours, frames streamed, before the baseline ran); "
                 f"{doc['vehicles']} vehicles")
    return lines


# --------------------------------------------------------------------------
# The command.



def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="time our pipeline against the Tesseract tutorial's, per stage",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("input", type=Path, metavar="VIDEO_OR_DIR", help="a video file or a folder of images")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH",
                   help=f"config file (default: $ANPR_EDGE_CONFIG or {DEFAULT_CONFIG})")
    p.add_argument("--frames", type=positive_int, metavar="N", help="at most N frames (default: all)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="TFLite threads for detector and OCR (default: the config's)")
    p.add_argument("--no-baseline", action="store_true", help="time only our pipeline")
    p.add_argument("--json-only", action="store_true", help="print only the JSON line")
    return p


def _with_threads(cfg: Config, threads: int | None) -> Config:
    if threads is None:
        return cfg
    return dataclasses.replace(cfg, detector=dataclasses.replace(cfg.detector, threads=threads),
                               reader=dataclasses.replace(cfg.reader, threads=threads))


def _open(path: Path, cfg: Config, *, again: bool = False) -> FrameSource:
    """A stream of the video's frames or the folder's images; DataError when it has none.

    again: the second pass, whose skipped-file warnings would repeat the first's.
    """
    if not path.exists():
        raise DataError(f"{path}: no such video file or folder")
    sources_log = logging.getLogger("edge.sources")
    level = sources_log.level
    if again:
        sources_log.setLevel(logging.ERROR)
    try:
        if path.is_dir():
            return ImageFolderSource(path, cfg.camera.id, fps=cfg.camera.fps)
        return VideoFileSource(path, cfg.camera.id)
    except SourceError as exc:
        raise DataError(str(exc)) from None
    finally:
        sources_log.setLevel(level)


def run(args: argparse.Namespace) -> int:
    from edge.cli import out

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # before Tesseract loads (the CLI sets it too)
    if not args.input.exists():
        raise DataError(f"{args.input}: no such video file or folder")
    cfg, pipeline = load_checked(args.config, lambda c: build_pipeline(_with_threads(c, args.threads)))
    assert isinstance(pipeline, Pipeline)
    cfg = _with_threads(cfg, args.threads)
    tutorial = None if args.no_baseline else TutorialOcr()
    tracker = Tracker(cfg.tracker, cfg.camera.id, keep_crops=cfg.privacy.save_crops)

    try:
        log.info("bench: our pipeline on %s", args.input)
        ours = bench_ours(timed_frames(_open(args.input, cfg), args.frames), pipeline, tracker)
        if ours.frames == 0:
            raise DataError(f"{args.input}: no frames")
        peak = peak_rss_mb()
        base = None
        if tutorial is not None:
            log.info("bench: the tutorial's pipeline on the same %d frames", ours.frames)
            tutorial.start()
            base = bench_baseline(timed_frames(_open(args.input, cfg, again=True), ours.frames), pipeline.detector,
                                  cfg.detector.score_threshold, tutorial)
            if base.frames != ours.frames:
                log.warning("bench: the baseline decoded %d frames, ours %d", base.frames, ours.frames)
    except SourceError as exc:  # a stream failing part-way
        raise DataError(str(exc)) from None

    threads = {"detector": cfg.detector.threads, "ocr": cfg.reader.threads,
               "omp_thread_limit": os.environ.get("OMP_THREAD_LIMIT"), "opencv": cv2.getNumThreads()}
    doc = report(ours, base, peak_mb=peak, threads=threads, source=str(args.input))
    if not args.json_only:
        for line in table(doc):
            out(line)
    out(json.dumps(doc, separators=(",", ":")))
    return 0
