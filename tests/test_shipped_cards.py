"""Each shipped model's card and its machine-readable figures describe the same run.

Why: the test that the trainer's defaults remake the shipped model reads the
command from training_figures.json; if that file belongs to an older run
(as happened when retrain 26 shipped with retrain 22's figures beside it) the
check passes while checking the wrong model.
"""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.parent for p in (REPO / "tflite_graphs").glob("*/training_figures.json"))


def test_both_shipped_models_have_figures():
    assert [p.name for p in SHIPPED] == ["ocr", "plates"]


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_the_card_quotes_the_command_steps_and_size_of_its_figures(folder):
    figures = json.loads((folder / "training_figures.json").read_text())["figures"]
    card = (folder / "MODEL_CARD.md").read_text()
    assert f"`{figures['command']}`" in card
    assert f"{figures['steps']} steps" in card
    assert f"{figures['size_kb']} KB" in card


def test_the_ocr_cards_real_image_rows_are_the_figures_exact_matches():
    folder = REPO / "tflite_graphs" / "ocr"
    evals = json.loads((folder / "training_figures.json").read_text())["eval"]
    card = (folder / "MODEL_CARD.md").read_text()
    assert len(evals) == 6
    for name, e in evals.items():
        for reader in ("tflite", "tesseract", "combined"):
            if reader in e["result"]:
                r = e["result"][reader]
                assert f"| {name} | {reader} | {r['n']} | {r['exact']:.3f} | {r['exact_o0']:.3f} | {r['cer']:.3f} |" \
                    in card, (name, reader)


def test_the_detector_cards_rows_are_the_figures_recalls():
    folder = REPO / "tflite_graphs" / "plates"
    evals = json.loads((folder / "training_figures.json").read_text())["eval"]
    card = (folder / "MODEL_CARD.md").read_text()
    rows = {name: e["result"] for name, e in evals.items() if "sweep" not in name}
    assert len(rows) == 5
    for name, r in rows.items():
        assert f"| {name} | {r['n_images']} | {r['n_plates']} | {r['recall_iou50']:.3f} | {r['recall_iou30']:.3f} |" \
            in card, name


def test_the_shipped_ocr_model_is_read_with_the_input_it_was_trained_on():
    """The equalisation travels beside the model (ocr.input.json): shipping a model
    without its record would feed it inputs it never saw, and read worse, silently."""
    from edge.reader import model_input_equalize

    folder = REPO / "tflite_graphs" / "ocr"
    figures = json.loads((folder / "training_figures.json").read_text())["figures"]
    assert model_input_equalize(folder / "ocr.tflite") == figures.get("equalize", "none")
