"""`python -m training.tune_second_look`: the second look is chosen on held-out br-crops only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.second_look import Recrop, SecondLookReader, keep_best
from edge.types import Reading
from training.ocr_data import is_held_out
from training.tune_second_look import CANDIDATE_SETS, THRESHOLDS, main


def test_the_held_out_split_is_a_fixed_tenth_by_file_name():
    names = [f"crop{i:04d}.png" for i in range(2000)]
    held = [n for n in names if is_held_out(n)]
    assert 150 < len(held) < 250
    assert held == [n for n in names if is_held_out(n)]


def test_it_scores_every_candidate_on_the_held_out_crops_only(capsys, labelled_crop_folder):
    folder, held = labelled_crop_folder
    assert main(["--crops", str(folder)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == held
    assert set(result["exact"]) == {"one read"} | {f"{s} below {b}" for s in CANDIDATE_SETS for b in THRESHOLDS}
    assert all(0 <= v <= 1 for v in result["exact"].values())


def test_a_missing_model_or_labels_file_is_a_one_line_error(capsys, tmp_path):
    for argv, named in ((["--model", str(tmp_path / "none.tflite")], "none.tflite"),
                        (["--crops", str(tmp_path)], "labels.csv")):
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert named in err[-1]


def test_it_keeps_what_the_daemons_second_look_keeps():
    rng = np.random.default_rng(0)
    recrops = [Recrop(left=0.05 * k) for k in range(1, 5)]
    for _ in range(200):
        readings = [Reading(str(rng.integers(3)), float(rng.random()),
                            format="US" if rng.random() < 0.3 else None) for _ in range(5)]
        calls = iter(readings)
        reader = SecondLookReader(type("Scripted", (), {"read": lambda self, crop: next(calls)})(), recrops, 1.0)
        assert reader.read(np.zeros((20, 80), np.uint8)) == keep_best(readings[0], readings[1:])
