"""The detector's training command picks its score threshold on validation
frames and its model card reports the figures at that threshold."""

from __future__ import annotations

from training.train_detector import MAX_FALSE_PER_IMAGE, choose_threshold, write_card


def row(t: float, recall: float, false: float) -> dict:
    return {"score_threshold": t, "recall_iou50": recall, "recall_iou30": recall, "false_per_image": false}


SWEEP = [row(0.2, 0.95, 1.0), row(0.3, 0.9, MAX_FALSE_PER_IMAGE), row(0.4, 0.85, 0.1), row(0.5, 0.7, 0.0)]


def test_the_lowest_threshold_within_the_false_detection_bound_is_chosen():
    assert choose_threshold(SWEEP) == 0.3


def test_no_threshold_is_chosen_when_every_one_has_too_many_false_detections():
    assert choose_threshold([row(0.5, 0.9, 0.5), row(0.6, 0.8, 0.3)]) is None


def test_the_card_quotes_the_command_the_chosen_threshold_and_inference_time(tmp_path):
    figures = {"command": "python -m training.train_detector --minutes 5", "alpha": 0.35, "anchors": 6500,
               "size": 320, "steps": 10, "batch": 4, "train_minutes": 1.0, "total_minutes": 1.5,
               "size_kb": 900.0}
    evals = {
        "valid (full, sweep)": {"command": "anpr-edge eval-detect --images V --sweep 0.2,0.3",
                                "result": {**row(0.5, 0.7, 0.0), "sweep": SWEEP}},
        "eu (full)": {"command": "anpr-edge eval-detect --images E --score 0.3",
                      "result": {"n_images": 108, "n_plates": 108, "recall_iou50": 0.97, "recall_iou30": 0.99,
                                 "false_per_image": 0.15, "ms_per_image": 3.5, "ms_per_inference": 2.0,
                                 "score_threshold": 0.3}},
    }
    write_card(tmp_path, figures, evals)
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "`python -m training.train_detector --minutes 5`" in card
    assert "| eu (full) | 108 | 108 | 0.970 | 0.990 | 0.15 | 3.5 | 2.0 | 0.30 |" in card
    assert "**0.3**" in card and "| 0.20 | 0.950 | 1.00 |" in card
    assert "anpr-edge eval-detect --images E --score 0.3" in card
