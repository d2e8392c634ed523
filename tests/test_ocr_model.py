"""The OCR network's stems and heights: each keeps the reader's contract (gray input 128 wide, 32 CTC steps)."""

import pytest

import json

from training import OCR_HEIGHTS, train_ocr
from training.ocr_model import ALPHABET, INPUT_H, INPUT_W, STEMS, build_ocr_model


@pytest.mark.parametrize("stem", STEMS)
def test_every_stem_keeps_the_readers_input_and_output_shapes(stem):
    model = build_ocr_model(width=0.25, stem=stem)
    assert tuple(model.input.shape) == (None, INPUT_H, INPUT_W, 1)
    assert tuple(model.output.shape) == (None, 1, 32, len(ALPHABET) + 1)


def test_an_unknown_stem_is_refused_by_name():
    with pytest.raises(ValueError, match="stem: 'conv7'"):
        build_ocr_model(width=0.25, stem="conv7")


def test_the_trainer_offers_exactly_the_models_stems(capsys):
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--help"])
    assert "--stem {" + ",".join(STEMS) + "}" in capsys.readouterr().out
    for stem in STEMS:
        assert train_ocr.parse_args(["--stem", stem, "--real", "", "--backgrounds", ""]).stem == stem
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--stem", "conv7"])
    assert "--stem: invalid choice: 'conv7'" in capsys.readouterr().err


@pytest.mark.parametrize("height", OCR_HEIGHTS)
@pytest.mark.parametrize("stem", STEMS)
def test_a_taller_input_still_gives_the_reader_32_steps(stem, height):
    model = build_ocr_model(width=0.25, stem=stem, height=height)
    assert tuple(model.input.shape) == (None, height, INPUT_W, 1)
    assert tuple(model.output.shape) == (None, 1, 32, len(ALPHABET) + 1)


def test_the_shipped_height_is_the_default_and_an_unknown_one_is_refused_by_name(capsys):
    assert INPUT_H == 32 and train_ocr.parse_args([]).height == 32
    assert train_ocr.parse_args(["--height", "48"]).height == 48
    with pytest.raises(ValueError, match="height: 40 is not one of 32, 48, 64"):
        build_ocr_model(width=0.25, height=40)
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--height", "40"])
    assert "--height: invalid choice: 40" in capsys.readouterr().err


def test_a_checkpoint_of_another_net_is_not_resumed(tmp_path):
    """Height and stem leave the weight shapes alone, so a checkpoint of another
    net would load without complaint: the work folder remembers its net."""
    args = train_ocr.parse_args(["--work", str(tmp_path)])
    train_ocr.check_same_net(tmp_path, args)
    assert json.loads((tmp_path / train_ocr.NET_FILE).read_text())["height"] == 32
    train_ocr.check_same_net(tmp_path, args)  # the same net resumes
    taller = train_ocr.parse_args(["--work", str(tmp_path), "--height", "48", "--stem", "stride2"])
    with pytest.raises(SystemExit, match=r"holds a checkpoint of another net: stem 'pool' \(now 'stride2'\), "
                                         r"height 32 \(now 48\); use another --work"):
        train_ocr.check_same_net(tmp_path, taller)
