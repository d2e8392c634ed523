"""`anpr-edge eval-detect` on tiny labelled folders, with the tiny SSD whose
answer is known (white 64 px blocks on a black 640 px photo are plates;
see test_detector.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_detector import build_tiny_models, frame_with_blocks  # noqa: E402

from edge import cli  # noqa: E402
from edge.config import DetectorConfig  # noqa: E402
from edge.eval_detect import DEFAULT_SCORE, load_labelled, match  # noqa: E402
from edge.evaluate import DataError  # noqa: E402
from edge.types import Box, Detection  # noqa: E402

CELL = 64  # a 640 px photo squashed to the 320 px model: one model cell


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    return build_tiny_models(tmp_path_factory.mktemp("tiny_ssd"))


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    """eval-detect in the CLI whether or not cli.COMMANDS lists it yet."""
    if "edge.eval_detect" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + ("edge.eval_detect",))


def cell(row: int, col: int, shift: int = 0) -> tuple[int, int, int, int]:
    return (col * CELL + shift, row * CELL, (col + 1) * CELL + shift, (row + 1) * CELL)


def openalpr_dir(root: Path) -> Path:
    """a.jpg: the plate is found; b.png: a plate the model cannot see (missed)."""
    d = root / "openalpr"
    d.mkdir()
    x0, y0, x1, y1 = cell(2, 3)
    cv2.imwrite(str(d / "a.jpg"), frame_with_blocks(640, 640, (x0, y0, x1, y1)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    (d / "a.txt").write_text(f"a.jpg\t{x0}\t{y0}\t{x1 - x0}\t{y1 - y0}\tAB123CD\n")
    cv2.imwrite(str(d / "b.png"), np.zeros((640, 640, 3), np.uint8))
    (d / "b.txt").write_text("b.png\t10\t10\t40\t10\tXY99\n")
    (d / "README.txt").write_text("not a label\n")
    return d


def voc_dir(root: Path) -> Path:
    """c.png: one plate exact (IoU 1), one shifted 27 px (IoU 0.41: found at
    0.3, not at 0.5), one unlabelled white block (a false detection)."""
    d = root / "voc"
    d.mkdir()
    cv2.imwrite(str(d / "c.png"), frame_with_blocks(640, 640, cell(1, 1), cell(6, 6), cell(8, 1)))
    objs = "".join(
        f"<object><name>license-plate</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for x0, y0, x1, y1 in (cell(1, 1), cell(6, 6, shift=27)))
    (d / "c.xml").write_text(f"<annotation><filename>c.png</filename>{objs}</annotation>")
    return d


def run_cli(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(["eval-detect", *argv])
    cap = capsys.readouterr()
    return code, cap.out.strip().splitlines(), cap.err


def test_openalpr_labels(tiny_models, tmp_path, capsys):
    code, lines, _ = run_cli(capsys, "--images", str(openalpr_dir(tmp_path)),
                             "--model", str(tiny_models.named), "--threads", "1")
    assert code == 0
    result = json.loads(lines[-1])
    assert result["n_images"] == 2 and result["n_plates"] == 2
    assert result["recall_iou50"] == 0.5 and result["recall_iou30"] == 0.5
    assert result["false_per_image"] == 0.0
    # the daemon's defaults (config.yaml): auto mode, which on a 640 px photo is one full-frame pass
    assert result["mode"] == "auto" and result["score_threshold"] == DEFAULT_SCORE
    assert result["ms_per_image"] > 0
    assert any(line.startswith("recall_iou50") for line in lines[:-1])  # the table


def test_voc_labels_iou_thresholds_and_false_detections(tiny_models, tmp_path, capsys):
    report = tmp_path / "report"
    code, lines, _ = run_cli(capsys, "--images", str(voc_dir(tmp_path)), "--model", str(tiny_models.named),
                             "--report", str(report), "--score", "0.4")
    assert code == 0
    result = json.loads(lines[-1])
    assert (result["n_images"], result["n_plates"]) == (1, 2)
    assert result["recall_iou50"] == 0.5 and result["recall_iou30"] == 1.0
    assert result["false_per_image"] == 1.0 and result["score_threshold"] == 0.4
    assert (report / "index.txt").read_text() == "c.jpg\tmissed 1\tfalse 1\n"
    drawn = cv2.imread(str(report / "c.jpg"))
    assert drawn is not None and drawn.shape == (640, 640, 3)
    x0, y0, _, _ = cell(8, 1)  # the false detection is outlined in red
    near = drawn[y0 + CELL // 2 - 2: y0 + CELL // 2 + 3, x0 - 2: x0 + 3].astype(int)
    assert (near[..., 2] - near[..., 1]).max() > 80  # red (BGR) where it was white/black


def test_tiles_mode_is_reported(tiny_models, tmp_path, capsys):
    code, lines, _ = run_cli(capsys, "--images", str(voc_dir(tmp_path)), "--model", str(tiny_models.named),
                             "--mode", "tiles", "--tiles", "2x2", "--tile-overlap", "0")
    result = json.loads(lines[-1])
    assert code == 0 and result["mode"] == "tiles" and result["tiles"] == [2, 2]


def test_no_labelled_images_is_one_line_and_nonzero(tiny_models, tmp_path, capsys):
    (tmp_path / "lonely.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello\n")
    code, lines, err = run_cli(capsys, "--images", str(tmp_path), "--model", str(tiny_models.named))
    assert code == cli.EXIT_INPUT and lines == []
    assert err.strip().count("\n") == 0 and str(tmp_path) in err and "no labelled images" in err


def test_bad_label_line_names_file_and_line(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "a.txt").write_text("a.png\t1\t2\t3\t4\tAB1\na.png\tten\t2\t3\t4\tAB2\n")
    with pytest.raises(DataError, match=r"a\.txt:2: expected NAME"):
        load_labelled(tmp_path)


def voc(name: str, *objects: tuple[str, tuple[int, int, int, int]]) -> str:
    body = "".join(f"<object><name>{c}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                   f"<ymax>{y1}</ymax></bndbox></object>" for c, (x0, y0, x1, y1) in objects)
    return f"<annotation><filename>{name}</filename>{body}</annotation>"


def test_voc_sets_that_also_label_cars_are_scored_on_their_plates(tmp_path):
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), np.zeros((40, 60, 3), np.uint8))
    (tmp_path / "a.xml").write_text(voc("a.jpg", ("car", (0, 0, 50, 30)), ("License-Plate", (10, 20, 30, 26))))
    (tmp_path / "b.xml").write_text(voc("b.jpg", ("car", (5, 5, 40, 30))))  # a car whose plate is hidden
    by_name = {item.image.name: item.plates for item in load_labelled(tmp_path)}
    assert by_name == {"a.jpg": (Box(10, 20, 30, 26),), "b.jpg": ()}


def test_voc_objects_of_one_unnamed_class_are_all_plates(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((40, 60, 3), np.uint8))
    (tmp_path / "a.xml").write_text(voc("a.jpg", ("0", (1, 2, 21, 8)), ("0", (30, 2, 50, 8))))
    assert load_labelled(tmp_path)[0].plates == (Box(1, 2, 21, 8), Box(30, 2, 50, 8))


def test_missing_model_is_one_line_exit_3(tmp_path, capsys):
    d = openalpr_dir(tmp_path)
    code, _, err = run_cli(capsys, "--images", str(d), "--model", str(tmp_path / "none.tflite"))
    assert code == cli.EXIT_MODEL and err.count("\n") == 1 and "none.tflite" in err


def test_match_is_one_to_one():
    plate = Box(0, 0, 10, 10)
    twice = [Detection(Box(0, 0, 10, 10), 0.9), Detection(Box(1, 0, 11, 10), 0.8)]
    assert match([plate], twice, 0.5) == (1, 1)  # the duplicate is false
    assert match([], twice, 0.3) == (0, 2)
    assert match([plate], [], 0.3) == (0, 0)


def test_inference_time_is_reported_apart_from_the_whole_detect_call(tiny_models, tmp_path, capsys):
    _, lines, _ = run_cli(capsys, "--images", str(voc_dir(tmp_path)), "--model", str(tiny_models.named))
    result = json.loads(lines[-1])
    assert 0 < result["ms_per_inference"] <= result["ms_per_image"]


def test_a_sweep_scores_each_threshold_as_a_run_at_that_threshold_would(tiny_models, tmp_path, capsys):
    images = str(voc_dir(tmp_path))
    photo = cv2.imread(images + "/c.png")
    x0, y0, x1, y1 = cell(4, 8)
    photo[y0:y1, x0:x1] = 134  # a grey block: a doubtful false detection (score ~0.7)
    cv2.imwrite(images + "/c.png", photo)
    _, lines, _ = run_cli(capsys, "--images", images, "--model", str(tiny_models.named),
                          "--sweep", "0.99,0.2,0.9")
    swept = json.loads(lines[-1])["sweep"]
    assert [row["score_threshold"] for row in swept] == [0.2, 0.9, 0.99]
    for row in swept:
        _, lines, _ = run_cli(capsys, "--images", images, "--model", str(tiny_models.named),
                              "--score", str(row["score_threshold"]))
        alone = json.loads(lines[-1])
        assert {k: alone[k] for k in row} == row
    assert [row["false_per_image"] for row in swept] == [2.0, 1.0, 1.0]


def test_boxes_too_narrow_to_read_are_dropped_as_the_daemon_drops_them(tiny_models, tmp_path, capsys):
    voc = str(voc_dir(tmp_path))
    _, lines, _ = run_cli(capsys, "--images", voc, "--model", str(tiny_models.named), "--score", "0.4")
    kept = json.loads(lines[-1])
    assert kept["min_plate_width_px"] == DetectorConfig().min_plate_width_px == 40  # config.yaml's
    assert kept["recall_iou30"] == 1.0 and kept["false_per_image"] == 1.0  # 64 px boxes: wide enough
    _, lines, _ = run_cli(capsys, "--images", voc, "--model", str(tiny_models.named), "--score", "0.4",
                          "--min-width", "65")
    dropped = json.loads(lines[-1])
    assert dropped["min_plate_width_px"] == 65
    assert dropped["recall_iou30"] == 0.0 and dropped["false_per_image"] == 0.0


def test_tile_threshold_defaults_to_the_daemons_and_is_reported(tiny_models, tmp_path, capsys):
    voc = str(voc_dir(tmp_path))
    _, lines, _ = run_cli(capsys, "--images", voc, "--model", str(tiny_models.named), "--mode", "tiles",
                          "--tile-overlap", "0")
    assert json.loads(lines[-1])["tile_score_threshold"] == DetectorConfig().tile_score_threshold
    # every box of tiles mode comes from a tile: a bar of 1 (scores ~0.996) drops them all
    _, lines, _ = run_cli(capsys, "--images", voc, "--model", str(tiny_models.named), "--mode", "tiles",
                          "--tile-overlap", "0", "--tile-score", "1")
    strict = json.loads(lines[-1])
    assert strict["tile_score_threshold"] == 1.0 and strict["recall_iou30"] == 0.0
    assert strict["false_per_image"] == 0.0
