"""The OCR network's stems: each keeps the reader's contract (input 32x128 gray, 32 CTC steps)."""

import pytest

from training import train_ocr
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
