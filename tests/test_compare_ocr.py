"""training.compare_ocr: how often OCR models agree, and what choosing between them could gain."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.evaluate import Sample
from edge.types import Reading
from training.compare_ocr import compare, parse_args, read_in_turn, vote

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "tflite_graphs" / "ocr"


def sample(truth: str) -> Sample:
    return Sample(name=truth, image=np.zeros((4, 4), np.uint8), truth=truth)


def test_the_vote_goes_to_the_most_models_then_to_the_larger_summed_confidence():
    assert vote([Reading("AB1", 0.4), Reading("AB1", 0.3), Reading("A81", 0.9)]) == "AB1"
    assert vote([Reading("AB1", 0.4), Reading("A81", 0.5)]) == "A81"


def test_models_right_on_different_crops_count_once_each_in_any_right():
    samples = [sample("AB1"), sample("CD2"), sample("EF3")]
    first = [Reading("AB1", 0.9), Reading("CO2", 0.4), Reading("EF3", 0.6)]
    second = [Reading("A81", 0.5), Reading("CD2", 0.8), Reading("EF3", 0.7)]
    row = compare(samples, [first, second])
    assert row["n"] == 3
    assert row["exact"] == [round(2 / 3, 4), round(2 / 3, 4)]
    assert row["all_agree"] == round(1 / 3, 4)
    assert row["any_right"] == 1.0
    assert row["most_confident"] == 1.0  # here the confident one is always the right one
    assert row["vote"] == 1.0


class Recorder:
    """A reader that logs which model read which crop, in call order."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def read(self, gray_crop):
        self.log.append((self.name, int(gray_crop[0, 0])))
        return Reading(f"{self.name}{int(gray_crop[0, 0])}", 0.5)


def test_models_take_turns_on_each_crop_first_and_last_alternating_and_every_read_is_timed():
    log: list = []
    crops = [Sample(name=str(i), image=np.full((4, 4), i, np.uint8), truth="X") for i in range(3)]
    readings, ms = read_in_turn([Recorder("a", log), Recorder("b", log)], crops)
    assert log == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    assert [[r.text for r in rows] for rows in readings] == [["a0", "a1", "a2"], ["b0", "b1", "b2"]]
    assert [len(t) for t in ms] == [3, 3] and all(x >= 0 for t in ms for x in t)


def test_one_model_or_a_missing_file_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit):
        parse_args(["--model", str(SHIPPED)])
    assert "give two models or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--model", str(SHIPPED), "--model", str(tmp_path)])
    assert f"argument --model: {tmp_path / 'ocr.tflite'}: no such file" in capsys.readouterr().err


def test_a_folder_without_crops_is_one_line_naming_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "training.compare_ocr", "--model", str(SHIPPED), "--model",
                           str(SHIPPED), "--us", str(tmp_path / "absent")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"compare_ocr: error: {tmp_path / 'absent'}: not a directory"


def test_a_model_compared_with_itself_always_agrees(tmp_path):
    us = tmp_path / "us"
    us.mkdir()
    import cv2

    crop = np.full((60, 160), 200, np.uint8)
    cv2.putText(crop, "AB123", (8, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.3, 0, 3)
    cv2.imwrite(str(us / "a.png"), crop)
    (us / "groundtruth.csv").write_text("a.png,xx,AB123\n")
    eu = tmp_path / "eu"
    eu.mkdir()
    cv2.imwrite(str(eu / "b.jpg"), cv2.copyMakeBorder(crop, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=90))
    (eu / "b.txt").write_text("b.jpg\t20\t20\t160\t60\tAB123\n")
    proc = subprocess.run([sys.executable, "-m", "training.compare_ocr", "--model", str(SHIPPED), "--model",
                           str(SHIPPED), "--us", str(us), "--eu", str(eu)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("us", "eu"):
        row = result[name]
        assert row["n"] == 1 and row["all_agree"] == 1.0
        assert row["exact"][0] == row["exact"][1] == row["any_right"] == row["vote"] == row["most_confident"]
        assert len(row["ms_per_crop"]) == 2 and all(ms > 0 for ms in row["ms_per_crop"])
