"""replay: one JSON object per vehicle, delivery through outbox and sender, real models on the sample."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge.replay as replay
from edge.cli import main
from edge.config import Config, FiltersConfig
from edge.pipeline import Pipeline
from edge.types import Box, Detection, Reading
from refbackend import RefBackend

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
MODELS = (REPO / "tflite_graphs/plates/detect.tflite", REPO / "tflite_graphs/ocr/ocr.tflite",
          REPO / "tflite_graphs/ocr/alphabet.txt")

# Two cars in a 30-frame, 15 fps video: frames 0-7 and 14-21.
CARS = {"1AB2345": range(0, 8), "2CD6789": range(14, 22)}
BOX = Box(20, 60, 80, 75)
KEYS = {"plate", "confidence", "first_seen", "last_seen", "frames", "camera", "key", "format", "source"}


class ScheduledDetector:
    """Finds each car's plate in its frames (counting calls); tells the reader what it is."""

    def __init__(self, reader: QueueReader) -> None:
        self.reader = reader
        self.calls = 0

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        i, self.calls = self.calls, self.calls + 1
        found = [text for text, frames in CARS.items() if i in frames]
        self.reader.queue.extend(found)
        return [Detection(BOX, 0.9) for _ in found]


class QueueReader:
    def __init__(self) -> None:
        self.queue: deque[str] = deque()

    def read(self, gray_crop: np.ndarray) -> Reading:
        assert gray_crop.ndim == 2
        text = self.queue.popleft()
        return Reading(text, 0.95, (0.99,) * len(text))


def fake_pipeline(cfg: Config) -> Pipeline:
    reader = QueueReader()
    return Pipeline(ScheduledDetector(reader), reader, FiltersConfig(), min_det_score=0.5, min_confidence=0.5)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(config, video): a config whose model files exist (but are never loaded) and a tiny video."""
    for name in ("det.tflite", "ocr.tflite", "alphabet.txt"):
        (tmp_path / name).write_bytes(b"unused")
    config = tmp_path / "config.yaml"
    config.write_text(
        "camera: {id: testcam}\n"
        "detector: {model: det.tflite}\n"
        "reader: {ocr_model: ocr.tflite, alphabet: alphabet.txt, tesseract: {enabled: false}}\n"
        "tracker: {max_gap_s: 0.3, min_frames: 2, min_confidence: 0.5}\n"
        "outbox: {path: state/outbox.sqlite}\n", encoding="utf-8")
    video = tmp_path / "tiny.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (160, 120))
    for i in range(30):
        img = np.full((120, 160, 3), 60, np.uint8)
        if any(i in frames for frames in CARS.values()):
            cv2.rectangle(img, (20, 60), (79, 74), (230, 230, 230), -1)
        writer.write(img)
    writer.release()
    monkeypatch.setattr(replay, "build_pipeline", fake_pipeline)
    return config, video


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_one_object_per_vehicle(setup: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    config, video = setup
    out = tmp_path / "out.jsonl"
    assert main(["replay", str(video), "--config", str(config), "--jsonl", str(out), "--no-progress"]) == 0
    docs = read_jsonl(out)
    assert [d["plate"] for d in docs] == list(CARS)
    for d in docs:
        assert KEYS <= d.keys()
        assert d["camera"] == "testcam" and d["source"] == str(video) and d["frames"] == 8
        assert d["first_seen"].startswith("2024-01-01T00:00:") and d["format"] == "CZ"
    assert docs[1]["first_s"] == pytest.approx(14 / 15, abs=1e-3)
    stdout = capsys.readouterr().out
    assert stdout.count("vehicle ") == 2 and "summary: 30 frames" in stdout
    assert not (tmp_path / "state").exists()  # no backend: no outbox either

    # Same file, same keys (stable idempotency across replays).
    again = tmp_path / "again.jsonl"
    assert main(["replay", str(video), "--config", str(config), "--jsonl", str(again), "--no-progress"]) == 0
    assert [d["key"] for d in read_jsonl(again)] == [d["key"] for d in docs]


def test_backend_gets_each_vehicle_exactly_once(setup: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config, video = setup
    out = tmp_path / "out.jsonl"
    with RefBackend(tmp_path / "ref.sqlite", paid=[("1AB2345", None)]) as srv:
        args = ["replay", str(video), "--config", str(config), "--backend", srv.url, "--no-progress",
                "--state-dir", str(tmp_path / "st"), "--wait", "20"]
        assert main(args + ["--jsonl", str(out)]) == 0
        reads = srv.db.reads()
        assert sorted(r["plate"] for r in reads) == sorted(CARS)
        assert len({r["key"] for r in reads}) == 2
        docs = {d["plate"]: d for d in read_jsonl(out)}
        assert docs["1AB2345"]["vignette"] == "valid" and docs["2CD6789"]["vignette"] == "invalid"
        assert all(d["delivery"] == "delivered" and not d["duplicate"] for d in docs.values())
        stdout = capsys.readouterr().out
        assert stdout.count("verdict ") == 2 and "2 delivered (valid 1, invalid 1" in stdout

        # A second replay (fresh outbox) sends the same keys: the backend sees duplicates, not new reads.
        args[args.index(str(tmp_path / "st"))] = str(tmp_path / "st2")
        assert main(args) == 0
        assert len(srv.db.reads()) == 2
        assert capsys.readouterr().out.count("(duplicate)") == 2


def test_backend_down_is_exit_5(setup: tuple[Path, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    config, video = setup
    with RefBackend(tmp_path / "ref.sqlite") as srv:
        url = srv.url
    code = main(["replay", str(video), "--config", str(config), "--backend", url, "--no-progress",
                 "--state-dir", str(tmp_path / "st"), "--wait", "0.5"])
    assert code == replay.EXIT_DELIVERY
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("anpr-edge: error: 2 vehicle(s) not delivered")


def test_annotated_video_and_snapshot(setup: tuple[Path, Path], tmp_path: Path) -> None:
    config, video = setup
    movie, png = tmp_path / "ann.mp4", tmp_path / "snap.png"
    assert main(["replay", str(video), "--config", str(config), "--annotate", str(movie),
                 "--snapshot", str(png), "--no-progress"]) == 0
    cap = cv2.VideoCapture(str(movie))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 30
    snap = cv2.imread(str(png))
    assert snap is not None and snap.shape == (120, 160, 3)


def test_missing_video_is_one_line_exit_4(setup: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = setup
    assert main(["replay", str(tmp_path / "nope.mp4"), "--config", str(config)]) == replay.EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.mp4" in err


def test_not_a_video_is_one_line_exit_4(setup: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = setup
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["replay", str(bad), "--config", str(config), "--no-progress"]) == replay.EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.mp4" in err


def test_sample_video_matches_its_truth() -> None:
    """The bundled sample decodes with OpenCV as rendered; paid.csv lists the 'valid' plates."""
    truth = json.loads((SAMPLES / "sample.truth.json").read_text(encoding="utf-8"))
    cap = cv2.VideoCapture(str(SAMPLES / "sample.mp4"))
    n = 0
    while cap.grab():
        n += 1
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    assert n == truth["frames"] and list(size) == truth["size"]
    plates = [p["plate"] for p in truth["plates"]]
    assert len(set(plates)) == len(plates) >= 4
    paid = (SAMPLES / "paid.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert [row.split(",")[0] for row in paid] == [p["plate"] for p in truth["plates"] if p["vignette"] == "valid"]
    assert (SAMPLES / "sample.mp4").stat().st_size < 3_000_000


@pytest.mark.slow
def test_real_models_report_every_sample_plate_once(tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / "sample.truth.json").read_text(encoding="utf-8"))
    out = tmp_path / "sample.jsonl"
    assert main(["replay", str(SAMPLES / "sample.mp4"), "--config", str(SAMPLES / "demo-config.yaml"),
                 "--jsonl", str(out), "--no-progress"]) == 0
    plates = [d["plate"] for d in read_jsonl(out)]
    assert sorted(plates) == sorted(p["plate"] for p in truth["plates"])
