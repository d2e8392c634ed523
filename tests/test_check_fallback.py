"""`python -m training.check_fallback`: both readers' confidences, measured on crops we may tune on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.check_fallback import BANDS, THRESHOLDS, bands, main


def test_bands_give_the_share_right_per_confidence_band_with_one_in_the_top_band():
    conf = np.array([0.1, 0.15, 0.55, 0.95, 1.0, 1.0])
    right = np.array([False, True, True, True, True, False])
    rows = {(lo, hi): (n, share) for lo, hi, n, share in bands(conf, right)}
    assert rows[(0.0, 0.2)] == (2, 0.5)
    assert rows[(0.5, 0.6)] == (1, 1.0)
    assert rows[(0.9, 1.0)] == (3, 0.667)
    assert rows[(0.2, 0.4)] == (0, None)
    assert sum(n for n, _ in rows.values()) == len(conf)


def test_it_reads_the_held_out_crops_and_fresh_synthetic_ones_with_both_readers(capsys, labelled_crop_folder):
    folder, held = labelled_crop_folder
    assert main(["--crops", str(folder), "--synthetic", "6"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == held + 6
    for engine in ("tflite", "tesseract"):
        rows = result["bands"][engine]
        assert [r[0] for r in rows] == list(BANDS[:-1])
        assert sum(r[2] for r in rows) == result["n"]
    fallback = result["fallback"]
    assert list(fallback) == [str(t) for t in THRESHOLDS]
    below = [fallback[str(t)]["below"] for t in THRESHOLDS]
    assert below == sorted(below) and below[-1] <= result["n"]
    for row in fallback.values():
        assert 0 <= row["model_right"] <= row["below"]
        assert 0 <= row["tesseract_right"] <= row["below"]
        assert 0 <= row["kept_right"] <= row["model_right"] + row["tesseract_right"]


def test_a_missing_model_or_labels_file_or_a_negative_count_is_a_one_line_error(capsys, tmp_path):
    (tmp_path / "labels.csv").write_text("file,text\n")
    for argv, named in ((["--model", str(tmp_path / "none.tflite")], "none.tflite"),
                        (["--crops", str(tmp_path / "nowhere")], "labels.csv"),
                        (["--crops", str(tmp_path), "--synthetic", "-1"], "--synthetic")):
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert named in err[-1]
