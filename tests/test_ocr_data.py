"""The OCR's synthetic crop cache: reused when nothing changed, never when the drawing code did."""

import shutil

import numpy as np

from training import ocr_data
from training.ocr_model import ALPHABET


def test_fingerprint_follows_the_drawing_code(tmp_path, monkeypatch):
    copies = []
    for src in ocr_data.RENDER_SOURCES:
        dst = tmp_path / src.name
        shutil.copy(src, dst)
        copies.append(dst)
    monkeypatch.setattr(ocr_data, "RENDER_SOURCES", tuple(copies))
    before = ocr_data.render_fingerprint(ALPHABET, "/bg")
    assert ocr_data.render_fingerprint(ALPHABET, "/bg") == before
    copies[0].write_text(copies[0].read_text() + "\n# a changed renderer\n")
    assert ocr_data.render_fingerprint(ALPHABET, "/bg") != before
    assert ocr_data.render_fingerprint(ALPHABET, "/bg") != ocr_data.render_fingerprint(ALPHABET, "/other")


def test_cached_chunks_are_reused_and_a_new_renderer_draws_afresh(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    imgs, labs = ocr_data.synthetic_set(str(cache), 6, 3, 5, ALPHABET, None, workers=1)
    first = sorted(p.name for p in cache.glob("*.npz"))
    assert len(first) == 2 and all(ocr_data.render_fingerprint(ALPHABET, None) in n for n in first)
    assert imgs.shape == (6, 32, 128) and labs.shape[0] == 6

    stamps = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")}
    again, _ = ocr_data.synthetic_set(str(cache), 6, 3, 5, ALPHABET, None, workers=1)
    assert np.array_equal(again, imgs)
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")} == stamps  # read, not rewritten

    monkeypatch.setattr(ocr_data, "render_fingerprint", lambda alphabet, bg: "0newcode")
    ocr_data.synthetic_set(str(cache), 6, 3, 5, ALPHABET, None, workers=1)
    names = sorted(p.name for p in cache.glob("*.npz"))
    assert len(names) == 4 and sum("0newcode" in n for n in names) == 2
