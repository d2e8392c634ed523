"""What the OCR model sees: the crop stretched to its input size
(edge.preprocess.to_model_input), then equalised as the model was trained
(edge.preprocess.equalize)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edge.preprocess import EQUALIZERS, equalize, equalize_all, to_model_input

SIZE = (128, 32)  # (width, height), the shipped model's input


def faint_plate(h: int = 60, w: int = 200, ink: int = 100, paper: int = 116) -> np.ndarray:
    """A washed-out crop: five dark bars ("characters") barely darker than the plate."""
    img = np.full((h, w), paper, np.uint8)
    for x in range(20, w - 20, 36):
        img[12:h - 12, x:x + 10] = ink
    return img


def clahe_input(gray: np.ndarray) -> np.ndarray:
    return equalize(to_model_input(gray, SIZE), "clahe")


def test_the_input_has_the_models_size_and_dtype():
    for method in EQUALIZERS:
        out = equalize(to_model_input(faint_plate(), SIZE), method)
        assert out.shape == (32, 128) and out.dtype == np.uint8


def test_without_equalisation_the_input_is_the_stretched_crop():
    stretched = to_model_input(faint_plate(), SIZE)
    assert equalize(stretched, "none") is stretched
    assert set(np.unique(stretched)) <= set(range(100, 117))


def test_clahe_stretches_faint_ink_apart_from_the_plate():
    out = clahe_input(faint_plate()).astype(int)
    ink = out[10:22, 14:17]  # inside the first bar (x 20-29 of 200 -> 12.8-18.6 of 128)
    paper = out[10:22, 24:32]  # between the first and second bars (x 30-55 -> 19.2-35.2)
    assert ink.max() < paper.min()  # the order of grey levels is kept...
    assert paper.mean() - ink.mean() > 1.3 * (116 - 100)  # ...and the gap widened (clip limit 2: ~1.5x here)


def test_clahe_leaves_a_blank_crop_blank():
    out = clahe_input(np.full((40, 160), 90, np.uint8))
    assert out.min() == out.max()  # no strokes invented from nothing


def test_threads_get_the_same_input_as_one_thread():
    """OpenCV's CLAHE object keeps buffers between calls; shared by threads it
    gave them different inputs. Each thread has its own."""
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (48 + i, 150 + 3 * i), dtype=np.uint8) for i in range(16)]
    alone = [clahe_input(c) for c in crops]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            together = list(pool.map(clahe_input, crops))
            assert all(np.array_equal(a, b) for a, b in zip(alone, together))


def test_a_stack_of_inputs_is_equalised_one_by_one():
    """Training equalises its cached crops in stacks: the same as the reader's one at a time."""
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 256, (5, 32, 128), dtype=np.uint8)
    out = equalize_all(stack, "clahe")
    assert out.shape == stack.shape and out.dtype == np.uint8
    assert all(np.array_equal(out[k], equalize(stack[k], "clahe")) for k in range(5))
    assert equalize_all(stack, "none") is stack
    assert equalize_all(stack[:0], "clahe").shape == (0, 32, 128)


def test_an_unknown_equalisation_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown input equalisation 'hist' \\(known: none, clahe\\)"):
        equalize(np.zeros((32, 128), np.uint8), "hist")
