"""Tracker: grouping noisy reads per vehicle, voting, emitting once, stable keys."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.config import TrackerConfig
from edge.tracker import Observation, Tracker, levenshtein, similarity, vote
from edge.types import Box, Reading, VehicleResult

CFG = TrackerConfig(max_gap_s=1.0, max_delay_s=10.0, iou_match=0.2, text_similarity=0.6,
                    max_shift_per_s=30.0, min_frames=2, min_confidence=0.6)
SYMBOLS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def read(text: str, conf: float = 0.9, chars: list[float] | None = None, fmt: str | None = None) -> Reading:
    chars = chars if chars is not None else [conf] * len(text)
    return Reading(text=text, confidence=float(np.prod(chars)), char_confidences=tuple(chars), format=fmt)


def obs(x: float, y: float, reading: Reading, w: float = 100, h: float = 25,
        crop: np.ndarray | None = None) -> Observation:
    return Observation(box=Box(x, y, x + w, y + h), reading=reading, det_score=0.9, crop=crop)


def noisy(plate: str, rng: np.random.Generator) -> Reading:
    """A read with one wrong (unsure) character half the time, a lost one sometimes."""
    chars = list(plate)
    confs = list(rng.uniform(0.85, 0.99, len(plate)))
    r = rng.random()
    if r < 0.5:
        i = int(rng.integers(len(chars)))
        chars[i] = SYMBOLS[(SYMBOLS.index(chars[i]) + 1 + int(rng.integers(35))) % 36]
        confs[i] = float(rng.uniform(0.3, 0.6))
    elif r < 0.6:
        i = int(rng.integers(len(chars)))
        del chars[i], confs[i]
    return read("".join(chars), chars=confs, fmt="CZ" if "".join(chars) == plate else None)


def two_cars(tracker: Tracker, seed: int = 1) -> list[VehicleResult]:
    """Car A in the upper lane (t 0-1.4 s), car B in the lower lane (t 0.6-2.0 s), 10 fps."""
    rng = np.random.default_rng(seed)
    out: list[VehicleResult] = []
    for k in range(21):
        t = k / 10
        frame: list[Observation] = []
        if t <= 1.4:
            frame.append(obs(100 + 40 * k, 200, noisy("1AB2345", rng)))
        if t >= 0.6:
            frame.append(obs(900 - 40 * (k - 6), 420, noisy("5XY9876", rng)))
        out += tracker.update(t, frame)
    out += tracker.update(5.0, [])
    return out


def test_two_noisy_cars_give_two_voted_results() -> None:
    tracker = Tracker(CFG, "gate")
    results = two_cars(tracker)
    assert [r.plate for r in results] == ["1AB2345", "5XY9876"]
    a, b = results
    assert (a.first_seen, a.last_seen, a.frames) == (0.0, 1.4, 15)
    assert (b.first_seen, b.last_seen, b.frames) == (0.6, 2.0, 15)
    assert all(r.confidence > 0.9 and r.camera == "gate" for r in results)
    assert a.format == "CZ"
    assert a.key != b.key and len(a.key) == 32
    assert tracker.flush() == []
    assert tracker.stats.emitted == 2 and tracker.stats.active == 0


@pytest.mark.parametrize("seed", range(2, 12))
def test_two_noisy_cars_many_seeds(seed: int) -> None:
    assert [r.plate for r in two_cars(Tracker(CFG, "gate"), seed)] == ["1AB2345", "5XY9876"]


def test_keys_are_stable_across_runs_and_depend_on_camera_and_salt() -> None:
    keys = [r.key for r in two_cars(Tracker(CFG, "gate"))]
    assert keys == [r.key for r in two_cars(Tracker(CFG, "gate"))]
    assert keys != [r.key for r in two_cars(Tracker(CFG, "other"))]
    assert keys != [r.key for r in two_cars(Tracker(CFG, "gate", key_salt="cars.mp4"))]


def test_a_lingering_car_is_emitted_once_at_max_delay() -> None:
    tracker = Tracker(CFG, "gate")
    emitted: list[tuple[float, VehicleResult]] = []
    for k in range(300):  # 30 s parked in front of the camera
        t = k / 10
        emitted += [(t, r) for r in tracker.update(t, [obs(500 + k % 3, 300, read("AB123CD"))])]
    emitted += [(40.0, r) for r in tracker.update(40.0, [])]
    emitted += [(99.0, r) for r in tracker.flush()]
    assert len(emitted) == 1
    t, result = emitted[0]
    assert t == 10.0 and result.plate == "AB123CD" and result.first_seen == 0.0
    assert result.frames == 101


def test_a_garbage_single_read_is_dropped() -> None:
    tracker = Tracker(CFG, "gate")
    assert tracker.update(0.0, [obs(10, 10, read("X1", 0.95))]) == []
    assert tracker.update(3.0, []) == []
    assert tracker.stats.dropped_few_frames == 1 and tracker.stats.emitted == 0


def test_low_confidence_vehicles_are_dropped() -> None:
    tracker = Tracker(CFG, "gate")
    tracker.update(0.0, [obs(10, 10, read("AB1234", 0.5))])
    tracker.update(0.1, [obs(12, 10, read("AB1234", 0.5))])
    assert tracker.flush() == []
    assert tracker.stats.dropped_low_confidence == 1


def test_unqualified_track_waits_past_max_delay_then_emits_when_it_qualifies() -> None:
    cfg = TrackerConfig(max_gap_s=5.0, max_delay_s=1.0, min_frames=2)
    tracker = Tracker(cfg, "gate")
    assert tracker.update(0.0, [obs(10, 10, read("AB1234"))]) == []
    assert tracker.update(3.0, [obs(10, 10, read("AB1234"))])[0].frames == 2


def test_flush_emits_open_tracks() -> None:
    tracker = Tracker(CFG, "gate")
    tracker.update(0.0, [obs(10, 10, read("AB1234"))])
    tracker.update(0.1, [obs(14, 10, read("AB1284", chars=[0.9, 0.9, 0.9, 0.9, 0.4, 0.9]))])
    tracker.update(0.2, [obs(18, 10, read("AB1234"))])
    [result] = tracker.flush()
    assert result.plate == "AB1234" and result.frames == 3
    assert tracker.update(0.3, []) == []


def test_empty_reads_keep_a_vehicle_alive_without_voting() -> None:
    tracker = Tracker(CFG, "gate")
    tracker.update(0.0, [obs(10, 10, read("AB1234"))])
    for k in range(1, 20):  # plate unreadable for 2 s, but still detected
        assert tracker.update(k / 10, [obs(10 + k, 10, read(""))]) == []
    tracker.update(2.0, [obs(30, 10, read("AB1234"))])
    [result] = tracker.update(9.0, [])
    assert result.frames == 2 and result.first_seen == 0.0 and result.last_seen == 2.0


def test_same_place_different_plate_is_one_vehicle_only_if_the_boxes_overlap() -> None:
    tracker = Tracker(CFG, "gate")
    tracker.update(0.0, [obs(10, 10, read("AB1234")), obs(300, 10, read("ZZ9999"))])
    tracker.update(0.1, [obs(12, 10, read("AB1234")), obs(305, 10, read("ZZ9999"))])
    assert sorted(r.plate for r in tracker.flush()) == ["AB1234", "ZZ9999"]


def test_fast_car_matched_by_text_within_the_motion_limit() -> None:
    tracker = Tracker(CFG, "gate")
    for k in range(4):  # 250 px (2.5 widths) per frame at 10 fps: no overlap
        tracker.update(k / 10, [obs(250 * k, 10, read("AB1234"))])
    [result] = tracker.flush()
    assert result.frames == 4


def test_time_going_back_closes_the_tracks() -> None:
    tracker = Tracker(CFG, "gate")
    tracker.update(100.0, [obs(10, 10, read("AB1234"))])
    tracker.update(100.1, [obs(10, 10, read("AB1234"))])
    results = tracker.update(0.0, [obs(10, 10, read("CD5678"))])
    assert [r.plate for r in results] == ["AB1234"]


def test_best_crop_only_when_asked() -> None:
    crops = [np.full((25, 100, 3), v, np.uint8) for v in (50, 200)]
    for keep in (False, True):
        tracker = Tracker(CFG, "gate", keep_crops=keep)
        tracker.update(0.0, [obs(10, 10, read("AB1234", 0.8), crop=crops[0])])
        tracker.update(0.1, [obs(10, 10, read("AB1234", 0.95), crop=crops[1])])
        [result] = tracker.flush()
        if not keep:
            assert result.crop_jpeg is None
        else:
            image = cv2.imdecode(np.frombuffer(result.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (25, 100, 3) and abs(float(image.mean()) - 200) < 3


# ---------------------------------------------------------------- voting

def test_vote_weights_characters_by_confidence() -> None:
    text, conf = vote([
        read("AB1234", chars=[0.9, 0.9, 0.9, 0.9, 0.9, 0.9]),
        read("A81234", chars=[0.9, 0.4, 0.9, 0.9, 0.9, 0.9]),
        read("A81234", chars=[0.9, 0.4, 0.9, 0.9, 0.9, 0.9]),
    ])
    assert text == "AB1234" and 0 < conf < 1


def test_vote_uses_the_majority_length() -> None:
    text, conf = vote([read("AB1234"), read("AB1234"), read("AB134", 0.95)])
    assert text == "AB1234"
    assert conf < vote([read("AB1234"), read("AB1234")])[1]


def test_vote_confidence_grows_with_agreement() -> None:
    one = vote([read("AB1234", 0.9)])[1]
    three = vote([read("AB1234", 0.9)] * 3)[1]
    split = vote([read("AB1234", 0.9), read("AB1235", 0.9)])[1]
    assert one == pytest.approx(0.9 ** 6, rel=1e-3)
    assert three > 0.99 and split < 0.6


def test_vote_without_char_confidences_and_empty() -> None:
    assert vote([Reading("AB12", 0.8), Reading("AB12", 0.8)])[0] == "AB12"
    assert vote([]) == ("", 0.0) and vote([Reading("", 0.9)]) == ("", 0.0)


def test_edit_distance() -> None:
    assert levenshtein("AB1234", "AB1234") == 0
    assert levenshtein("AB1234", "AB134") == 1
    assert levenshtein("AB1234", "BA1234") == 2
    assert levenshtein("", "ABC") == 3
    assert similarity("AB1234", "AB1235") == pytest.approx(5 / 6)
    assert similarity("", "AB") == 0.0
