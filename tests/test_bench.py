"""bench: the JSON last line, the tutorial's filter, bad input. No timing assertions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import edge.bench as bench
from edge.cli import main
from edge.config import Config, FiltersConfig
from edge.pipeline import Pipeline
from edge.types import Box, Detection, Frame, Reading

BOX = Box(20, 60, 80, 75)
STAGE_KEYS = {f"{s}_ms" for s in bench.STAGES}
KEYS = {"fps", "baseline_fps", "speedup", "peak_rss_mb", "plates_per_s", "frames", "machine", "threads",
        *STAGE_KEYS, *(f"baseline_{k}" for k in STAGE_KEYS)}


class PlateDetector:
    """One plate in frames where the frame has the white rectangle (counting calls)."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        self.calls += 1
        return [Detection(BOX, 0.9)] if image_bgr[67, 50].mean() > 150 else []


class FixedReader:
    def read(self, gray_crop: np.ndarray) -> Reading:
        assert gray_crop.ndim == 2
        return Reading("1AB2345", 0.95, (0.99,) * 7)


class FakeTesseract:
    """image_to_data's DICT output: a kept word, one too short, one too unsure."""

    started = False

    def __init__(self) -> None:
        self.calls = 0

    def start(self) -> None:
        FakeTesseract.started = True

    def __call__(self, image: np.ndarray) -> Mapping[str, Sequence[Any]]:
        assert image.ndim == 2 and image.dtype == np.uint8
        self.calls += 1
        return {"text": ["1AB2345", "AB12", "XYZ9876"], "conf": [90.0, 95.0, 50.0]}


def fake_pipeline(cfg: Config) -> Pipeline:
    assert cfg.detector.threads == cfg.reader.threads  # --threads reaches the build
    return Pipeline(PlateDetector(), FixedReader(), FiltersConfig(), min_det_score=0.5, min_confidence=0.5)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("det.tflite", "ocr.tflite", "alphabet.txt"):
        (tmp_path / name).write_bytes(b"unused")
    path = tmp_path / "config.yaml"
    path.write_text("camera: {id: benchcam}\n"
                    "detector: {model: det.tflite}\n"
                    "reader: {ocr_model: ocr.tflite, alphabet: alphabet.txt, tesseract: {enabled: false}}\n"
                    "tracker: {max_gap_s: 0.3, min_frames: 2, min_confidence: 0.5}\n", encoding="utf-8")
    monkeypatch.setattr(bench, "build_pipeline", fake_pipeline)
    monkeypatch.setattr(bench, "TutorialOcr", FakeTesseract)
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """20 frames at 15 fps; a plate in frames 0-9."""
    path = tmp_path / "tiny.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (160, 120))
    for i in range(20):
        img = np.full((120, 160, 3), 60, np.uint8)
        if i < 10:
            cv2.rectangle(img, (20, 60), (79, 74), (230, 230, 230), -1)
        writer.write(img)
    writer.release()
    return path


def bench_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], list[str]]:
    code = main(["bench", *argv])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    lines = cap.out.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0


def test_json_last_line_has_every_key(config: Path, video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc, table = bench_json([str(video), "--config", str(config), "--threads", "2"], capsys)
    assert KEYS <= doc.keys()
    assert doc["frames"] == doc["baseline_frames"] == 20
    for key in KEYS - {"machine", "threads", "frames", "baseline_track_ms"}:
        assert _number(doc[key]), key
    assert doc["baseline_track_ms"] is None  # the tutorial has no tracker
    assert doc["plates"] == 10 and doc["vehicles"] == 1
    assert doc["baseline_plates"] == 10  # one kept word per plate
    assert FakeTesseract.started
    assert doc["threads"]["detector"] == doc["threads"]["ocr"] == 2
    assert doc["threads"]["omp_thread_limit"] == "1"
    m = doc["machine"]
    assert isinstance(m["machine"], str) and isinstance(m["cpu"], str) and m["cores"] >= 1
    assert any(line.startswith("crop+preprocess") for line in table)
    assert any("speedup" in line for line in table)


def test_frames_limit_json_only_no_baseline(config: Path, video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc, table = bench_json([str(video), "--config", str(config), "--frames", "5", "--no-baseline",
                             "--json-only"], capsys)
    assert table == []
    assert doc["frames"] == 5
    assert doc["baseline_fps"] is None and doc["speedup"] is None and doc["baseline_total_ms"] is None
    assert _number(doc["fps"]) and _number(doc["total_ms"])


def test_image_folder_of_different_sizes(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (w, h) in enumerate([(160, 120), (320, 200), (100, 90)]):
        img = np.full((h, w, 3), 60, np.uint8)
        cv2.rectangle(img, (20, 60), (79, 74), (230, 230, 230), -1)
        cv2.imwrite(str(folder / f"img{i}.jpg"), img)
    doc, _ = bench_json([str(folder), "--config", str(config), "--json-only"], capsys)
    assert doc["frames"] == doc["baseline_frames"] == 3


def test_tutorial_filter() -> None:
    data = {"text": ["", "1AB2345", "AB 1234", "ABC123", "1AB2345", "RKO99AN", " SK123AB ", "BA123CD"],
            "conf": [-1, 73.0, "95", 99, 73.01, "96.5", 80, "x"]}
    # conf 73 is not > 73; "ABC123" has 6 characters, not > 6; "x" is no number.
    assert bench.tutorial_texts(data) == ["AB 1234", "1AB2345", "RKO99AN", "SK123AB"]
    assert bench.tutorial_texts({}) == []


def test_baseline_reads_each_box_through_the_filter() -> None:
    image = np.full((120, 160, 3), 230, np.uint8)
    frames = iter([(Frame(image=image, t=0.0), 0.001)] * 3)

    class TwoBoxes:
        def detect(self, image_bgr: np.ndarray) -> list[Detection]:
            return [Detection(BOX, 0.9), Detection(BOX, 0.2)]  # the second is below min_score

    ocr = FakeTesseract()
    t = bench.bench_baseline(frames, TwoBoxes(), 0.5, ocr)
    assert ocr.calls == 3 and t.plates == 3 and t.frames == 3
    assert t.ms("track") is None and t.ms("read") is not None


def test_cpu_model() -> None:
    assert bench.cpu_model("processor\t: 0\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n") == "AMD EPYC"
    pi = "processor\t: 0\nBogoMIPS\t: 108.00\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
    assert bench.cpu_model(pi) == "Raspberry Pi 4 Model B Rev 1.4"


@pytest.mark.parametrize("kind", ["missing", "corrupt", "empty_dir", "no_images"])
def test_bad_input_is_one_line_exit_4(kind: str, config: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / kind
    if kind == "corrupt":
        path = tmp_path / "corrupt.mp4"
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)
    elif kind == "empty_dir":
        path.mkdir()
    elif kind == "no_images":
        path.mkdir()
        (path / "notes.txt").write_text("no images here", encoding="utf-8")
    code = main(["bench", str(path), "--config", str(config)])
    cap = capsys.readouterr()
    assert code == 4
    assert cap.out == ""
    err = cap.err.strip().splitlines()
    assert err[-1].startswith("anpr-edge: error: ") and str(path.name) in err[-1]
    assert "Traceback" not in cap.err


def test_bad_frames_argument(config: Path, video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", str(video), "--config", str(config), "--frames", "0"])
    assert exc.value.code == 2
