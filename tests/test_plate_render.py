"""The synthetic plate renderer: labels agree with the pixels, seeds are reproducible."""

import cv2
import numpy as np
import pytest

from training import fonts
from training.degrade import degrade
from training.ocr_data import render_chunk
from training.ocr_model import ALPHABET
from training.plate_render import LAYOUTS, render_plate


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_renders_a_plausible_label(layout):
    rng = np.random.default_rng(7)
    for _ in range(5):
        p = render_plate(rng, layout=layout)
        assert p.image.dtype == np.uint8 and p.image.ndim == 3
        assert 2 <= len(p.text) <= 12
        assert set(p.text) <= set(ALPHABET)
        x0, y0, x1, y1 = p.text_box
        assert 0 <= x0 < x1 <= p.image.shape[1] and 0 <= y0 < y1 <= p.image.shape[0]


@pytest.mark.parametrize("layout,seed", [("ES", 1), ("ES", 2), ("BR_MERCOSUR", 3), ("UK", 4), ("CZ", 5)])
def test_label_has_one_ink_blob_per_character(layout, seed):
    """Count the dark glyphs inside the text box: one per label character."""
    rng = np.random.default_rng(seed)
    p = render_plate(rng, layout=layout)
    x0, y0, x1, y1 = p.text_box
    gray = cv2.cvtColor(p.image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    ink = (gray < 100).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    big = [s for s in stats[1:] if s[cv2.CC_STAT_HEIGHT] > 0.5 * (y1 - y0)]
    assert len(big) == len(p.text), (p.text, len(big))


def test_same_seed_same_data_other_seed_other_data():
    a_img, a_lab = render_chunk(11, 8, ALPHABET)
    b_img, b_lab = render_chunk(11, 8, ALPHABET)
    c_img, _ = render_chunk(12, 8, ALPHABET)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)
    assert a_img.shape == (8, 32, 128) and a_img.dtype == np.uint8


def test_degraded_crop_has_model_input_shape():
    rng = np.random.default_rng(0)
    out = degrade(render_plate(rng), rng, out_size=(128, 32))
    assert out.shape == (32, 128) and out.dtype == np.uint8
    assert out.std() > 1  # not a blank image


def test_missing_font_names_the_debian_package(monkeypatch):
    monkeypatch.setitem(fonts.FONTS, "din", ("fonts-opendin", ("/nonexistent/OSP-DIN.ttf",)))
    with pytest.raises(fonts.MissingFontError, match="apt-get install fonts-opendin"):
        fonts.font_path("din")
