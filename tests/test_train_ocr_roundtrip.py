"""The OCR's one training command works end to end: train -> int8 export -> runtime read.

A tiny run (a few steps, tiny model) of the same command the shipped model
was made with, then the product's own TfliteReader loads and runs the file.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.reader import TfliteReader
from edge.runtime import describe, load_interpreter

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_train_export_load_run(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "training.train_ocr", "--tiny", "--work", str(tmp_path / "work"), "--out", str(out),
         "--threads", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    model, alphabet = out / "ocr.tflite", out / "alphabet.txt"
    assert model.stat().st_size > 1000
    assert alphabet.read_text().strip() == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    figures = json.loads((out / "training_figures.json").read_text())["figures"]
    assert figures["steps"] == 30
    assert "ocr.tflite" in (out / "MODEL_CARD.md").read_text()

    interp = load_interpreter(model, num_threads=1)
    assert "uint8" in describe(interp)  # full-integer: uint8 input
    reader = TfliteReader(model, alphabet, num_threads=1)
    crop = np.random.default_rng(0).integers(0, 255, (40, 160), dtype=np.uint8)
    reading = reader.read(crop)
    assert set(reading.text) <= set(alphabet.read_text().strip())
    assert 0.0 <= reading.confidence <= 1.0
    assert len(reading.char_confidences) == len(reading.text)


def test_resume_continues_from_the_checkpoint(tmp_path):
    """Running the command again with the same --work resumes instead of restarting."""
    args = [sys.executable, "-m", "training.train_ocr", "--tiny", "--no-eval", "--work", str(tmp_path / "w"),
            "--out", str(tmp_path / "o"), "--threads", "2"]
    first = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0
    assert "resumed from" in second.stdout and "at step 30 of 30" in second.stdout


def test_the_training_step_benchmark_reports_its_speed():
    """python -m training.bench_train_step times the trainer's own step (one JSON line)."""
    proc = subprocess.run([sys.executable, "-m", "training.bench_train_step", "--steps", "2", "--batch", "4",
                           "--width", "0.25", "--threads", "1", "--inter-op", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["ms_per_step"] > 0 and figures["batch"] == 4 and figures["inter_op"] == 1
    assert figures["TF_ENABLE_ONEDNN_OPTS"] == "1"


def test_a_share_of_us_faces_outside_0_to_1_is_a_usage_error(capsys):
    from training.train_ocr import parse_args

    assert parse_args([]).us_extra_faces == 0.0  # the documented command draws the shipped model's data
    assert parse_args(["--us-extra-faces", "0.35"]).us_extra_faces == 0.35
    with pytest.raises(SystemExit):
        parse_args(["--us-extra-faces", "1.5"])
    assert "argument --us-extra-faces: expected a number from 0 to 1, got '1.5'" in capsys.readouterr().err


def test_a_width_that_is_not_positive_is_a_usage_error(capsys):
    from training.train_ocr import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--width", "0"])
    assert "argument --width: expected a positive number, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, expected", [
    ("--batch", "0", "a positive integer"), ("--threads", "-1", "a positive integer"),
    ("--real-fraction", "1.5", "a number from 0 to 1"), ("--minutes", "nan", "a positive number"),
])
def test_both_trainers_refuse_a_bad_number_before_any_work(capsys, option, value, expected):
    from training import train_detector, train_ocr

    for trainer in (train_ocr, train_detector):
        with pytest.raises(SystemExit):
            trainer.parse_args([option, value])
        assert f"argument {option}: expected {expected}, got '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--real", "--backgrounds"])
def test_both_trainers_refuse_a_data_folder_typed_wrong_before_any_work(capsys, tmp_path, option):
    """A typo in a data folder would otherwise train a different model, quietly."""
    from training import train_detector, train_ocr

    absent = tmp_path / "no-such"
    for trainer in (train_ocr, train_detector):
        with pytest.raises(SystemExit):
            trainer.parse_args([option, str(absent)])
        assert f"{option} {absent}: no such folder" in capsys.readouterr().err


def test_a_missing_default_data_folder_is_a_warning_and_an_empty_one_means_none(tmp_path):
    """A clone without ../shared still trains (on synthetic data only) and says so."""
    import argparse

    from training.loop import check_data_folders

    p = argparse.ArgumentParser()
    p.add_argument("--real", default=str(tmp_path / "shared" / "br-crops"))
    p.add_argument("--backgrounds", default=str(tmp_path))
    assert check_data_folders(p, p.parse_args([]), ("real", "backgrounds")) == [
        f"--real {tmp_path / 'shared' / 'br-crops'}: no such folder, training without it"]
    assert check_data_folders(p, p.parse_args(["--real", ""]), ("real", "backgrounds")) == []
