"""Pipeline: each filter rejects what it should, with fakes for the models."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import FiltersConfig, TrackerConfig
from edge.pipeline import REJECT_REASONS, Pipeline, StageTimes, process_stream
from edge.tracker import Tracker
from edge.types import Box, Detection, Frame, Reading, VehicleResult

W, H = 640, 480


class FakeDetector:
    def __init__(self, *detections: Detection) -> None:
        self.detections = list(detections)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        return list(self.detections)


class FakeReader:
    """Returns the given readings in turn; remembers the crops it was given."""

    def __init__(self, *readings: Reading) -> None:
        self.readings = list(readings)
        self.crops: list[np.ndarray] = []

    def read(self, gray_crop: np.ndarray) -> Reading:
        self.crops.append(gray_crop)
        return self.readings[(len(self.crops) - 1) % len(self.readings)]


def det(x: float = 100, y: float = 300, w: float = 120, h: float = 30, score: float = 0.9) -> Detection:
    return Detection(Box(x, y, x + w, y + h), score)


def reading(text: str = "1AB2345", conf: float = 0.9, fmt: str | None = None) -> Reading:
    n = max(len(text), 1)
    return Reading(text, conf, (conf ** (1 / n),) * len(text), fmt)


def frame(t: float = 0.0, index: int = 0) -> Frame:
    image = np.full((H, W, 3), 128, np.uint8)
    return Frame(image, t, "cam0", index)


def make(detector: FakeDetector, reader: FakeReader, filters: FiltersConfig = FiltersConfig(),
         **kw: object) -> Pipeline:
    kw = {"min_det_score": 0.5, "min_confidence": 0.5, **kw}
    return Pipeline(detector, reader, filters, **kw)  # type: ignore[arg-type]


def accepted(obs: list) -> list[str]:
    return [o.reading.text for o in obs if o.reading.text]


def test_good_read_passes_with_gray_crop_and_margin() -> None:
    reader = FakeReader(reading())
    p = make(FakeDetector(det(100, 300, 120, 30)), reader, crop_margin=0.1)
    obs = p.process(frame())
    assert accepted(obs) == ["1AB2345"]
    assert obs[0].det_score == 0.9 and obs[0].crop is None
    crop = reader.crops[0]
    assert crop.ndim == 2 and crop.shape == (36, 144)  # gray; 10 % margin on each side
    assert p.rejected == dict.fromkeys(REJECT_REASONS, 0)
    assert p.last_candidates[0].accepted and p.last_candidates[0].reading.format == "CZ"


def test_detection_score_rejected_before_reading() -> None:
    reader = FakeReader(reading())
    p = make(FakeDetector(det(score=0.4), det(x=300, score=0.6)), reader)
    obs = p.process(frame())
    assert accepted(obs) == ["1AB2345"]
    assert len(reader.crops) == 1
    assert p.rejected["det_score"] == 1
    assert [c.rejected for c in p.last_candidates] == ["det_score", None]


def test_low_confidence_becomes_a_sighting() -> None:
    p = make(FakeDetector(det()), FakeReader(reading(conf=0.3)))
    obs = p.process(frame())
    assert accepted(obs) == []
    assert len(obs) == 1 and obs[0].reading.text == "" and obs[0].box == det().box
    assert p.rejected["confidence"] == 1


def test_sightings_can_be_turned_off() -> None:
    p = make(FakeDetector(det()), FakeReader(reading(conf=0.3)), keep_sightings=False)
    assert p.process(frame()) == []


@pytest.mark.parametrize("text", ["AB1", "ABCDEFGHIJK"])
def test_length_limits(text: str) -> None:
    p = make(FakeDetector(det()), FakeReader(reading(text)), FiltersConfig(min_length=4, max_length=10))
    assert accepted(p.process(frame())) == []
    assert p.rejected["length"] == 1


def test_empty_read() -> None:
    p = make(FakeDetector(det()), FakeReader(Reading("", 0.0)))
    assert accepted(p.process(frame())) == []
    assert p.rejected["empty"] == 1


def test_required_format() -> None:
    filters = FiltersConfig(formats=("CZ",), require_format=True)
    p = make(FakeDetector(det(), det(x=300)), FakeReader(reading("ABCDEFG"), reading("1AB2345")), filters)
    obs = p.process(frame())
    assert accepted(obs) == ["1AB2345"]
    assert obs[0].reading.format == "CZ"
    assert p.rejected["format"] == 1


def test_format_is_a_label_unless_required() -> None:
    p = make(FakeDetector(det()), FakeReader(reading("ABCDEFGH")), FiltersConfig(formats=("CZ",)))
    obs = p.process(frame())
    assert accepted(obs) == ["ABCDEFGH"] and obs[0].reading.format is None


def test_roi_polygon_on_box_centre() -> None:
    left_half = ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    reader = FakeReader(reading())
    p = make(FakeDetector(det(x=100), det(x=400)), reader, FiltersConfig(roi_polygon=left_half))
    obs = p.process(frame())
    assert [o.box.x0 for o in obs] == [100]
    assert p.rejected["roi"] == 1 and len(reader.crops) == 1


def test_box_outside_frame_is_a_crop_reject() -> None:
    p = make(FakeDetector(det(x=W + 10)), FakeReader(reading()))
    assert p.process(frame()) == []
    assert p.rejected["crop"] == 1


def test_crops_kept_for_privacy_setting() -> None:
    p = make(FakeDetector(det()), FakeReader(reading()), keep_crops=True)
    obs = p.process(frame())
    assert obs[0].crop is not None and obs[0].crop.shape == (30, 120, 3)


def test_stage_times_accumulate() -> None:
    ticks = iter(np.arange(0.0, 100.0, 1.0))
    p = make(FakeDetector(det()), FakeReader(reading()), clock=lambda: float(next(ticks)))
    p.process(frame())
    assert p.last_times == StageTimes(detect_s=1.0, preprocess_s=1.0, read_s=1.0, frames=1, detections=1,
                                      reads=1)
    p.process(frame())
    assert p.times.frames == 2 and p.times.total_s == 6.0
    assert p.times.per_frame_ms()["detect"] == 1000.0
    assert p.stats.accepted == 2
    p.reset_stats()
    assert p.times == StageTimes() and p.stats.accepted == 0


def test_set_thresholds_applies_to_next_frame() -> None:
    p = make(FakeDetector(det(score=0.6)), FakeReader(reading(conf=0.55)))
    assert accepted(p.process(frame())) == ["1AB2345"]
    p.set_thresholds(FiltersConfig(), min_det_score=0.7, min_confidence=0.5)
    assert accepted(p.process(frame())) == []
    assert p.rejected["det_score"] == 1


def test_process_stream_reports_each_vehicle_once() -> None:
    cfg = TrackerConfig(max_gap_s=0.5, min_frames=2, min_confidence=0.5)
    p = make(FakeDetector(det()), FakeReader(reading("1AB2345", 0.95)))
    results: list[VehicleResult] = []
    seen: list[int] = []
    frames = [frame(i / 10, i) for i in range(8)]
    n = process_stream(frames, p, Tracker(cfg, "cam0"), results.append,
                       on_frame=lambda f, obs, res: seen.append(f.index))
    assert n == 8 and seen == list(range(8))
    assert [(r.plate, r.frames) for r in results] == [("1AB2345", 8)]


def test_reconfigure_takes_hot_keys() -> None:
    from edge.config import Config, DetectorConfig, ReaderConfig, TesseractConfig

    class Tunable(FakeDetector):
        score_threshold, tile_score_threshold, max_detections, min_plate_width_px = 0.5, 0.5, 10, 40

    class Combined(FakeReader):
        fallback_below = 0.6

    detector, reader = Tunable(det(score=0.6)), Combined(reading(conf=0.7))
    p = make(detector, reader)
    cfg = Config(detector=DetectorConfig(score_threshold=0.65, tile_score_threshold=0.7, max_detections=3,
                                         min_plate_width_px=20),
                 reader=ReaderConfig(min_confidence=0.8, tesseract=TesseractConfig(fallback_below=0.9)),
                 filters=FiltersConfig(min_length=8))
    p.reconfigure(cfg)
    assert (detector.score_threshold, detector.tile_score_threshold, detector.max_detections,
            detector.min_plate_width_px) == (0.65, 0.7, 3, 20)
    assert reader.fallback_below == 0.9 and p.filters.min_length == 8
    assert p.process(frame()) == [] and p.rejected["det_score"] == 1
