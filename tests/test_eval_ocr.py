"""`anpr-edge eval-ocr`: scores the readers on labelled crops, JSON last."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import evaluate
from edge.cli import EXIT_INPUT, EXIT_MODEL, main
from edge.evaluate import Scored, edit_distance, summarise
from edge.types import Reading
from training import SHARED

REPO = Path(__file__).resolve().parents[1]
REAL_MODEL = REPO / "tflite_graphs" / "ocr" / "ocr.tflite"
# ../shared beside the checkout (shared/README.md); /work/shared where a clone lives elsewhere
_US = Path("eval") / "openalpr-us-crops"
US_CROPS = next((d / _US for d in (SHARED, Path("/work/shared")) if (d / _US).is_dir()), SHARED / _US)
TRUTHS = {"a.png": "1AB2345", "b.png": "BA123CD", "c.png": "KA1234"}


class Scripted:
    """Fake reader: the given readings in call order; remembers crop shapes."""

    def __init__(self, *readings: tuple[str, float], engine: str = "tflite") -> None:
        self.readings = [Reading(t, c, engine=engine) for t, c in readings]
        self.shapes: list[tuple[int, ...]] = []

    def read(self, gray_crop):
        self.shapes.append(gray_crop.shape)
        return self.readings[len(self.shapes) - 1]


@pytest.fixture
def crops(tmp_path, render_plate):
    d = tmp_path / "crops"
    d.mkdir()
    for name, text in TRUTHS.items():
        cv2.imwrite(str(d / name), render_plate(text))
    rows = ["file,country,text"] + [f"{n},xx,{t}" for n, t in TRUTHS.items()]
    (d / "labels.csv").write_text("\n".join(rows) + "\n")
    return d


@pytest.fixture
def fakes(monkeypatch):
    tflite = Scripted(("1AB2345", 0.95), ("BA12CD", 0.3), ("KA1234", 0.9))
    tess = Scripted(("1AB2346", 0.9), ("BA123CD", 0.8), ("XA1234", 0.5))
    monkeypatch.setattr(evaluate, "build_tflite_reader", lambda args: tflite)
    monkeypatch.setattr(evaluate, "build_tesseract_reader", lambda args: tess)
    return tflite, tess


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(["eval-ocr", *argv])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 else None), captured.err


def test_scores_three_readers_and_ends_with_one_json_line(capsys, crops, fakes):
    code, result, _ = run_cli(capsys, "--crops", str(crops))
    assert code == 0 and result["n"] == 3
    assert result["tflite"]["exact"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["tflite"]["cer"] == pytest.approx(1 / 20, abs=1e-4)
    assert result["tesseract"]["exact"] == pytest.approx(1 / 3, abs=1e-4)
    # Tesseract is asked only about b (TFLite 0.3 < 0.6), and is surer there.
    assert result["combined"]["exact"] == 1.0
    assert result["combined"]["fallback_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert (result["combined"]["fallback_gained"], result["combined"]["fallback_lost"]) == (1, 0)
    assert fakes[1].shapes  # tesseract ran on every crop, once
    for key in ("exact", "exact_o0", "cer", "ms_per_crop"):
        assert result[key] == result["combined"][key]
        assert all(key in result[r] for r in ("tflite", "tesseract"))


class ScriptedScorer(Scripted):
    """Scripted, and a Scorer: the model's probability of each text, from a table."""

    def __init__(self, probability: dict[str, float], *readings: tuple[str, float]) -> None:
        super().__init__(*readings)
        self.probability, self.scored = probability, []

    def likelihoods(self, gray_crop, texts):
        self.scored.append(tuple(texts))
        return tuple(self.probability.get(t, 0.0) for t in texts)


def test_the_combined_row_weighs_the_fallback_by_the_models_own_scores(capsys, crops, monkeypatch):
    """A model that gives Tesseract's BA123CD no chance keeps its own reading,
    however sure Tesseract is; the run still ends with one JSON line."""
    tflite = ScriptedScorer({"BA12CD": 0.3, "BA123CD": 1e-9},
                            ("1AB2345", 0.95), ("BA12CD", 0.3), ("KA1234", 0.9))
    tess = Scripted(("1AB2346", 0.9), ("BA123CD", 0.8), ("XA1234", 0.5))
    monkeypatch.setattr(evaluate, "build_tflite_reader", lambda args: tflite)
    monkeypatch.setattr(evaluate, "build_tesseract_reader", lambda args: tess)
    code, result, _ = run_cli(capsys, "--crops", str(crops))
    assert code == 0
    assert tflite.scored == [("BA12CD", "BA123CD")]  # only the crop sent to the fallback
    assert result["combined"]["exact"] == result["tflite"]["exact"] == pytest.approx(2 / 3, abs=1e-4)
    assert (result["combined"]["fallback_gained"], result["combined"]["fallback_lost"]) == (0, 0)


def test_each_crop_the_fallback_turns_right_or_wrong_is_named(capsys, crops, monkeypatch):
    tflite = Scripted(("1AB2345", 0.5), ("BA12CD", 0.3), ("KA1234", 0.9))
    tess = Scripted(("1AB2346", 0.9), ("BA123CD", 0.8), ("XA1234", 0.5), engine="tesseract")
    monkeypatch.setattr(evaluate, "build_tflite_reader", lambda args: tflite)
    monkeypatch.setattr(evaluate, "build_tesseract_reader", lambda args: tess)
    assert main(["eval-ocr", "--crops", str(crops)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert (result["combined"]["fallback_gained"], result["combined"]["fallback_lost"]) == (1, 1)
    assert [line for line in lines if line.startswith("fallback ")] == [
        "fallback lost a.png: truth 1AB2345, tflite 1AB2345 (0.50), kept 1AB2346 (0.90, tesseract)",
        "fallback gained b.png: truth BA123CD, tflite BA12CD (0.30), kept BA123CD (0.80, tesseract)",
    ]


def test_labels_without_header_can_be_named(capsys, crops, fakes, tmp_path):
    labels = tmp_path / "gt.csv"
    labels.write_text("a.png,cz,1AB2345\nb.png,sk,BA123CD\n")
    (crops / "labels.csv").unlink()
    code, result, _ = run_cli(capsys, "--crops", str(crops), "--labels", str(labels),
                              "--readers", "tflite")
    assert code == 0 and result["n"] == 2 and list(result)[:2] == ["n", "tflite"]


def test_boxes_mode_cuts_crops_from_labelled_photos(capsys, tmp_path, render_plate, fakes):
    photo = np.full((200, 400), 90, np.uint8)
    plate = render_plate("BA123CD", height=20)
    h, w = plate.shape
    photo[120:120 + h, 50:50 + w] = plate
    cv2.imwrite(str(tmp_path / "car1.jpg"), photo)
    (tmp_path / "car1.txt").write_text(f"car1.jpg\t50\t120\t{w}\t{h}\tBA123CD\n")
    code, result, _ = run_cli(capsys, "--crops", str(tmp_path), "--boxes", "--readers", "tflite")
    assert code == 0 and result["n"] == 1 and fakes[0].shapes == [(h, w)]


def test_boxes_mode_finds_the_photo_by_its_label_name_and_passes_over_notes(capsys, tmp_path, render_plate,
                                                                            fakes):
    photo = np.full((100, 300), 90, np.uint8)
    plate = render_plate("1AB2345", height=20)
    h, w = plate.shape
    photo[40:40 + h, 20:20 + w] = plate
    cv2.imwrite(str(tmp_path / "car2.PNG"), photo)  # the label says .jpg; the photo is a .PNG
    (tmp_path / "car2.txt").write_text(f"car2.jpg 20 40 {w} {h} 1AB2345\n")
    (tmp_path / "README.txt").write_text("Photos of cars, one plate each.\n")
    code, result, _ = run_cli(capsys, "--crops", str(tmp_path), "--boxes", "--readers", "tflite")
    assert code == 0 and result["n"] == 1 and fakes[0].shapes == [(h, w)]


def test_boxes_label_with_a_bad_line_is_a_one_line_error_naming_file_and_line(capsys, tmp_path, fakes):
    cv2.imwrite(str(tmp_path / "car3.jpg"), np.zeros((50, 50), np.uint8))
    (tmp_path / "car3.txt").write_text("car3.jpg 1 1 10 5 AB1\ncar3.jpg one 1 10 5 AB2\n")
    code, _, err = run_cli(capsys, "--crops", str(tmp_path), "--boxes")
    assert code == EXIT_INPUT and f"{tmp_path / 'car3.txt'}:2: expected NAME x y w h TEXT" in err
    assert err.count("\n") == 1


def test_report_shows_misread_crops_with_truth_and_readings(capsys, crops, fakes, tmp_path):
    fakes[1].readings[2] = Reading("KA1234", 0.5)  # c is now read right by all
    report = tmp_path / "report"
    code, _, _ = run_cli(capsys, "--crops", str(crops), "--report", str(report))
    page = (report / "index.html").read_text()
    assert code == 0 and "2 of 3 crops misread" in page
    assert "BA12CD" in page and "1AB2346" in page and "<b>BA123CD</b>" in page
    assert len(list((report / "crops").glob("*.png"))) == 2


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no .csv in the directory"),
    (lambda d: (d / "x.csv").write_text("a.png,A\n") and (d / "y.csv").write_text(""), "2 .csv files"),
    (lambda d: (d / "x.png").write_bytes(b"not a png") and (d / "l.csv").write_text("x.png,AB1\n"),
     "no readable labelled images"),
])
def test_unusable_input_is_a_one_line_error_with_exit_4(capsys, tmp_path, fakes, setup, message):
    setup(tmp_path)
    code, _, err = run_cli(capsys, "--crops", str(tmp_path))
    assert code == EXIT_INPUT and message in err and str(tmp_path) in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_model_is_a_one_line_error_with_exit_3(capsys, crops, tmp_path):
    code, _, err = run_cli(capsys, "--crops", str(crops), "--model", str(tmp_path / "no.tflite"))
    assert code == EXIT_MODEL and err == f"anpr-edge: error: {tmp_path / 'no.tflite'}: model file not found\n"


def test_unknown_plate_format_is_a_usage_error(capsys, crops):
    with pytest.raises(SystemExit) as exit_:
        main(["eval-ocr", "--crops", str(crops), "--formats", "CZ,XX"])
    assert exit_.value.code == 2 and "unknown plate format 'XX'" in capsys.readouterr().err


def test_real_tesseract_reads_rendered_crops(capsys, crops):
    code, result, _ = run_cli(capsys, "--crops", str(crops), "--readers", "tesseract")
    assert code == 0 and result["tesseract"]["exact"] == 1.0 and result["cer"] == 0.0


def test_exact_o0_forgives_labels_that_write_o_for_zero():
    s = summarise([Scored("RKO99AN", Reading("RK099AN", 0.9), 1.0),
                   Scored("AB1234", Reading("AB1234", 0.9), 3.0)])
    assert (s.exact, s.exact_o0, s.ms_per_crop) == (0.5, 1.0, 2.0)
    assert s.cer == pytest.approx(1 / 13, abs=1e-4)


@pytest.mark.parametrize("a, b, d", [("", "ABC", 3), ("ABC", "ABC", 0), ("1AB2345", "1AB2346", 1),
                                     ("AB", "BA", 2), ("KA1234", "A1234", 1)])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)


def test_python_dash_m_edge_is_the_cli():
    done = subprocess.run([sys.executable, "-m", "edge", "--version"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("anpr-edge ")


def test_shipped_model_reads_real_us_crops(capsys):
    """The committed model on 20 real crops (it reads 70 % of them exactly, CER 0.05)."""
    assert REAL_MODEL.exists(), "tflite_graphs/ocr/ocr.tflite is part of the repo"
    assert US_CROPS.is_dir(), f"{US_CROPS}: the real US crops (../shared/eval) are missing"
    code, result, _ = run_cli(capsys, "--crops", str(US_CROPS), "--limit", "20",
                              "--formats", "US", "--readers", "tflite")
    assert code == 0 and result["n"] == 20
    assert result["tflite"]["exact"] >= 0.55
    assert result["tflite"]["cer"] < 0.15


def test_the_tflite_row_is_the_daemons_reader_with_its_second_look(capsys, crops):
    runs = {}
    for below in ("1", "0"):
        code, result, _ = run_cli(capsys, "--crops", str(crops), "--readers", "tflite", "--second-look-below", below)
        assert code == 0
        runs[below] = result["tflite"]
    assert runs["1"]["second_look_rate"] == 1.0 and runs["0"]["second_look_rate"] == 0.0
    assert runs["1"]["second_look_below"] == 1.0
    assert all(r["ms_mean"] > 0 for r in runs.values())
    _, default, _ = run_cli(capsys, "--crops", str(crops), "--readers", "tflite")
    assert default["tflite"]["second_look_below"] == 0.8


def test_exit_codes_are_mapped_in_one_place():
    from edge.cli import EXIT_USAGE, exit_code_for
    from edge.config import ConfigError
    from edge.evaluate import DataError
    from edge.runtime import ModelError
    assert [exit_code_for(e) for e in (ConfigError("c"), ModelError("m"), DataError("d"))] == \
        [EXIT_USAGE, EXIT_MODEL, EXIT_INPUT]
    assert exit_code_for(KeyError("bug")) is None  # bugs keep their traceback
