"""One frame -> plate observations: detector -> crop -> gray -> reader -> filters.

The stages meet through Protocols (edge.detector.Detector, edge.reader.Reader),
so tests, replay, bench and the daemon run the same code with fakes or with
the real models. `build_pipeline` loads the models once from the config;
`process` does no setup per frame.

Crops: the detector box plus `crop_margin`, converted to gray. The TFLite OCR
gets that plain gray crop (it was trained on it, see edge.preprocess); the
Tesseract fallback blurs inside its own preprocessing
(edge.tesseract_reader.prepare, reader.tesseract.blur_kernel), so the blur
never reaches the model that was not trained on it.

Filters, in order (each rejection is counted by its reason, see REJECT_REASONS):
before reading, so no OCR time is spent on them,
  det_score  the detector's score is below detector.score_threshold;
  roi        the box centre lies outside filters.roi_polygon;
  crop       the box is empty once clipped to the frame;
after reading,
  empty      the reader found no characters;
  confidence the plate confidence is below reader.min_confidence;
  length     the text is shorter or longer than filters.min/max_length;
  format     filters.require_format and the text fits none of the formats.
A box rejected after reading is still a plate the vehicle carries, so it is
returned as a *sighting* (an Observation whose reading has no text): the
tracker keeps that vehicle's track alive with it but never votes with it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import cv2
import numpy as np

from edge.config import Config, ConfigError, FiltersConfig
from edge.detector import Detector
from edge.plates import DEFAULT_FORMATS, PlateFormat, get_formats, match_format
from edge.preprocess import crop_box, to_gray
from edge.reader import Reader
from edge.second_look import Recrop, SecondLookReader
from edge.tracker import Observation, Tracker
from edge.types import Detection, Frame, Reading, VehicleResult

__all__ = [
    "Candidate", "Pipeline", "PipelineStats", "REJECT_REASONS", "StageTimes",
    "build_detector", "build_pipeline", "build_reader", "process_stream",
]

log = logging.getLogger(__name__)

REJECT_REASONS: tuple[str, ...] = ("det_score", "roi", "crop", "empty", "confidence", "length", "format")
_SIGHTING_REASONS = frozenset({"empty", "confidence", "length", "format"})


@dataclass(frozen=True)
class StageTimes:
    """Seconds spent per stage (decode is the source's, outside the pipeline)."""

    detect_s: float = 0.0
    preprocess_s: float = 0.0  # crop + gray
    read_s: float = 0.0
    frames: int = 0
    detections: int = 0
    reads: int = 0

    @property
    def total_s(self) -> float:
        return self.detect_s + self.preprocess_s + self.read_s

    def __add__(self, other: StageTimes) -> StageTimes:
        return StageTimes(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def per_frame_ms(self) -> dict[str, float]:
        """Mean milliseconds per frame of each stage (for bench and summaries)."""
        n = max(self.frames, 1)
        return {"detect": 1e3 * self.detect_s / n, "preprocess": 1e3 * self.preprocess_s / n,
                "read": 1e3 * self.read_s / n, "total": 1e3 * self.total_s / n}


@dataclass(frozen=True)
class PipelineStats:
    """Counters since the pipeline was made (a snapshot)."""

    times: StageTimes
    accepted: int
    rejected: Mapping[str, int]

    @property
    def frames(self) -> int:
        return self.times.frames


@dataclass(frozen=True, eq=False)
class Candidate:
    """One detection of the last frame and what became of it (for annotation).

    reading is None when the box was rejected before reading; rejected is
    the reason (see REJECT_REASONS) or None for an accepted read.
    """

    detection: Detection
    reading: Reading | None = None
    rejected: str | None = None

    @property
    def accepted(self) -> bool:
        return self.rejected is None


@dataclass(frozen=True)
class _Thresholds:
    """Per-frame thresholds, swapped as a whole on hot reload."""

    filters: FiltersConfig
    min_det_score: float
    min_confidence: float
    formats: tuple[PlateFormat, ...]
    polygon: np.ndarray | None = field(default=None, compare=False)


class Pipeline:
    """Detector -> crop -> reader -> filters for one frame at a time. Not thread-safe."""

    def __init__(self, detector: Detector, reader: Reader, filters: FiltersConfig = FiltersConfig(), *,
                 min_det_score: float = 0.0, min_confidence: float = 0.0, crop_margin: float = 0.0,
                 keep_crops: bool = False, keep_sightings: bool = True,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.detector = detector
        self.reader = reader
        self.crop_margin = float(crop_margin)
        self.keep_crops = keep_crops
        self.keep_sightings = keep_sightings
        self._clock = clock
        self._limits = _thresholds(filters, min_det_score, min_confidence)
        self._totals = StageTimes()
        self._accepted = 0
        self._rejected: Counter[str] = Counter()
        self.last_times = StageTimes()
        self.last_candidates: tuple[Candidate, ...] = ()

    # ------------------------------------------------------------------ config

    @property
    def filters(self) -> FiltersConfig:
        return self._limits.filters

    def set_thresholds(self, filters: FiltersConfig, min_det_score: float, min_confidence: float) -> None:
        """Swap the per-frame thresholds (hot reload); the next frame uses them."""
        self._limits = _thresholds(filters, min_det_score, min_confidence)

    def reconfigure(self, cfg: Config) -> None:
        """Take the hot-reloadable keys of a reloaded config (see edge.config.HOT_RELOAD_KEYS)."""
        self.set_thresholds(cfg.filters, cfg.detector.score_threshold, cfg.reader.min_confidence)
        for name, value in (("score_threshold", cfg.detector.score_threshold),
                            ("tile_score_threshold", cfg.detector.tile_score_threshold),
                            ("max_detections", cfg.detector.max_detections),
                            ("min_plate_width_px", cfg.detector.min_plate_width_px)):
            if hasattr(self.detector, name):
                setattr(self.detector, name, value)
        for r in reader_chain(self.reader):
            if hasattr(r, "fallback_below"):
                r.fallback_below = cfg.reader.tesseract.fallback_below
            if isinstance(r, SecondLookReader):
                r.below = cfg.reader.second_look.below

    # ------------------------------------------------------------------ work

    def process(self, frame: Frame) -> list[Observation]:
        """Plates read in this frame: accepted reads, then sightings (empty text)."""
        limits = self._limits
        clock = self._clock
        image = frame.image
        h, w = image.shape[:2]
        t0 = clock()
        detections = self.detector.detect(image)
        t1 = clock()
        prep_s = read_s = 0.0
        reads = 0
        accepted: list[Observation] = []
        sightings: list[Observation] = []
        candidates: list[Candidate] = []
        for det in detections:
            reason = _pre_read_reason(det, limits, w, h)
            if reason is not None:
                candidates.append(Candidate(det, None, reason))
                self._rejected[reason] += 1
                continue
            ta = clock()
            b = det.box
            try:
                crop = crop_box(image, b.x0, b.y0, b.x1, b.y1, self.crop_margin)
            except ValueError:
                crop = None
            gray = to_gray(crop) if crop is not None else None
            tb = clock()
            prep_s += tb - ta
            if gray is None:
                candidates.append(Candidate(det, None, "crop"))
                self._rejected["crop"] += 1
                continue
            reading = self.reader.read(gray)
            read_s += clock() - tb
            reads += 1
            reading, reason = _post_read(reading, limits)
            candidates.append(Candidate(det, reading, reason))
            if reason is None:
                self._accepted += 1
                accepted.append(Observation(b, reading, det.score, crop.copy() if self.keep_crops else None))
            else:
                self._rejected[reason] += 1
                if self.keep_sightings and reason in _SIGHTING_REASONS:
                    blank = Reading("", 0.0, (), None, reading.engine)
                    sightings.append(Observation(b, blank, det.score, None))
        self.last_times = StageTimes(t1 - t0, prep_s, read_s, 1, len(detections), reads)
        self._totals = self._totals + self.last_times
        self.last_candidates = tuple(candidates)
        return accepted + sightings

    # ------------------------------------------------------------------ stats

    @property
    def times(self) -> StageTimes:
        """Accumulated stage times since the start (or the last reset_stats)."""
        return self._totals

    @property
    def rejected(self) -> Mapping[str, int]:
        """Rejected boxes by reason (every reason present, zero or not)."""
        return {r: self._rejected.get(r, 0) for r in REJECT_REASONS}

    @property
    def stats(self) -> PipelineStats:
        return PipelineStats(self._totals, self._accepted, self.rejected)

    def reset_stats(self) -> None:
        self._totals = StageTimes()
        self._accepted = 0
        self._rejected.clear()


def _thresholds(filters: FiltersConfig, min_det_score: float, min_confidence: float) -> _Thresholds:
    formats = get_formats(filters.formats)
    polygon = None
    if filters.roi_polygon is not None:
        polygon = np.array(filters.roi_polygon, np.float32).reshape(-1, 1, 2)
    return _Thresholds(filters, float(min_det_score), float(min_confidence), formats, polygon)


def _pre_read_reason(det: Detection, limits: _Thresholds, w: int, h: int) -> str | None:
    if det.score < limits.min_det_score:
        return "det_score"
    if limits.polygon is not None:
        b = det.box
        centre = ((b.x0 + b.x1) / (2.0 * w), (b.y0 + b.y1) / (2.0 * h))
        if cv2.pointPolygonTest(limits.polygon, centre, False) < 0:
            return "roi"
    return None


def _post_read(reading: Reading, limits: _Thresholds) -> tuple[Reading, str | None]:
    """The reading (with its format filled in when known) and why it is rejected, if it is."""
    text = reading.text
    if not text:
        return reading, "empty"
    if reading.confidence < limits.min_confidence:
        return reading, "confidence"
    f = limits.filters
    if not f.min_length <= len(text) <= f.max_length:
        return reading, "length"
    fmt = match_format(text, limits.formats or DEFAULT_FORMATS)
    if f.require_format and fmt is None:
        return reading, "format"
    if reading.format is None and fmt is not None:
        reading = dataclasses.replace(reading, format=fmt.name)
    return reading, None


# --------------------------------------------------------------------------
# Loading from the config: models once, threads from the config.

def build_detector(cfg: Config) -> Detector:
    """The SSD detector the config describes (ModelError when it cannot load)."""
    from edge.detector import SsdTfliteDetector

    d = cfg.detector
    try:
        return SsdTfliteDetector(d.model, d.labels, num_threads=d.threads, score_threshold=d.score_threshold,
                                 max_detections=d.max_detections, mode=d.mode, roi=d.roi, tiles=d.tiles,
                                 tile_overlap=d.tile_overlap, min_plate_width_px=d.min_plate_width_px,
                                 merge_iou=d.merge_iou, tile_score_threshold=d.tile_score_threshold)
    except ValueError as exc:  # a setting the config's ranges allow but the detector does not
        raise ConfigError(f"detector.{exc}") from None


def reader_chain(reader: Reader | None):
    """A reader and the ones it wraps (`.primary`), outermost first: where reloaded thresholds go."""
    while reader is not None:
        yield reader
        reader = getattr(reader, "primary", None)


def build_reader(cfg: Config) -> Reader:
    """TFLite OCR (with its second look at doubtful crops), then the Tesseract fallback when enabled."""
    from edge.reader import CombinedReader, TfliteReader

    r = cfg.reader
    formats = get_formats(cfg.filters.formats)
    primary: Reader = TfliteReader(r.ocr_model, r.alphabet, num_threads=r.threads, formats=formats,
                                   min_fix_prob=r.min_fix_prob)
    look = r.second_look
    if look.recrops:  # kept even when below is 0, so a reload can turn it on
        primary = SecondLookReader(primary, [Recrop(*c) for c in look.recrops], look.below)
    if not r.tesseract.enabled:
        return primary
    from edge.tesseract_reader import TesseractConfig, TesseractReader

    t = r.tesseract
    fallback = TesseractReader(TesseractConfig(lang=t.lang, tessdata_dir=t.tessdata, blur_kernel=t.blur_kernel,
                                               line_height=t.line_height, border=t.border, psm=t.psm),
                               formats=formats)
    return CombinedReader(primary, fallback, t.fallback_below)


def build_pipeline(cfg: Config, *, detector: Detector | None = None, reader: Reader | None = None) -> Pipeline:
    """The pipeline the config describes; loads each model once (ModelError if one cannot)."""
    detector = build_detector(cfg) if detector is None else detector
    reader = build_reader(cfg) if reader is None else reader
    return Pipeline(detector, reader, cfg.filters, min_det_score=cfg.detector.score_threshold,
                    min_confidence=cfg.reader.min_confidence, crop_margin=cfg.reader.crop_margin,
                    keep_crops=cfg.privacy.save_crops)


# --------------------------------------------------------------------------
# The loop both replay and the daemon run.

FrameHook = Callable[[Frame, Sequence[Observation], Sequence[VehicleResult]], None]


def process_stream(frames: Iterable[Frame], pipeline: Pipeline, tracker: Tracker,
                   on_result: Callable[[VehicleResult], None], *, on_frame: FrameHook | None = None,
                   stop: threading.Event | None = None, flush: bool = True) -> int:
    """Run every frame through pipeline and tracker; hand each vehicle to on_result.

    on_frame sees each frame after the tracker (annotation, progress,
    watchdog). Stops at the end of the frames or when `stop` is set; flush
    then emits the vehicles still in view. Returns the frames processed.
    """
    n = 0
    for frame in frames:
        if stop is not None and stop.is_set():
            break
        observations = pipeline.process(frame)
        results = tracker.update(frame.t, observations)
        for result in results:
            on_result(result)
        n += 1
        if on_frame is not None:
            on_frame(frame, observations, results)
    if flush:
        for result in tracker.flush():
            on_result(result)
    return n
