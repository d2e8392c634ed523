"""Greedy CTC decoding: what the OCR model's frames turn into."""

from __future__ import annotations

import numpy as np
import pytest

from edge.reader import ctc_greedy, plate_confidence

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BLANK = len(ALPHABET)


def frames(spec: str, p: float = 0.9) -> np.ndarray:
    """One frame per character of spec ('-' = blank); the chosen class gets
    p, the other classes share the rest."""
    probs = np.full((len(spec), BLANK + 1), (1 - p) / BLANK, np.float32)
    for t, ch in enumerate(spec):
        probs[t, BLANK if ch == "-" else ALPHABET.index(ch)] = p
    return probs


def test_repeats_collapse_and_blanks_drop():
    assert ctc_greedy(frames("--AAA--BB-7"), ALPHABET).text == "AB7"


def test_a_blank_between_equal_classes_keeps_both():
    assert ctc_greedy(frames("A-A-AA"), ALPHABET).text == "AAA"


def test_blank_is_the_last_class():
    probs = frames("-")
    assert probs.argmax() == BLANK
    assert ctc_greedy(probs, ALPHABET).text == ""


def test_all_blank_reads_nothing_with_zero_confidence():
    g = ctc_greedy(frames("-----"), ALPHABET)
    assert g.text == "" and g.char_confidences.size == 0
    assert plate_confidence(g.char_confidences) == 0.0


def test_character_confidence_is_its_best_frame():
    probs = np.concatenate([frames("A", 0.5), frames("A", 0.95), frames("-"), frames("B", 0.7)])
    g = ctc_greedy(probs, ALPHABET)
    assert g.text == "AB"
    np.testing.assert_allclose(g.char_confidences, [0.95, 0.7], rtol=1e-6)


def test_plate_confidence_is_the_product_of_character_confidences():
    assert plate_confidence([0.9, 0.5, 1.0]) == pytest.approx(0.45)


def test_position_probabilities_keep_the_runner_up_per_character():
    probs = frames("O-1")
    probs[0, ALPHABET.index("0")] = 0.08  # '0' is the runner-up for the first character
    g = ctc_greedy(probs, ALPHABET)
    assert g.position_probs.shape == (2, len(ALPHABET))
    assert g.position_probs[0, ALPHABET.index("0")] == pytest.approx(0.08)
    assert list(g.indices) == [ALPHABET.index("O"), ALPHABET.index("1")]


def test_class_count_must_match_alphabet_plus_blank():
    with pytest.raises(ValueError, match="36-character alphabet"):
        ctc_greedy(np.zeros((4, 36), np.float32), ALPHABET)
