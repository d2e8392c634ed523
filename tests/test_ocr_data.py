"""The OCR's synthetic crop cache: reused when nothing changed, never when the drawing code did."""

import importlib
import shutil

import numpy as np
import pytest

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

    monkeypatch.setattr(ocr_data, "render_fingerprint", lambda alphabet, bg, options=None: "0newcode")
    ocr_data.synthetic_set(str(cache), 6, 3, 5, ALPHABET, None, workers=1)
    names = sorted(p.name for p in cache.glob("*.npz"))
    assert len(names) == 4 and sum("0newcode" in n for n in names) == 2


def test_a_taller_input_renders_and_caches_its_own_chunks(tmp_path):
    cache = tmp_path / "cache"
    short, _ = ocr_data.synthetic_set(str(cache), 3, 3, 5, ALPHABET, None, workers=1)
    tall, labs = ocr_data.synthetic_set(str(cache), 3, 3, 5, ALPHABET, None, workers=1, size=(128, 48))
    assert short.shape == (3, 32, 128) and tall.shape == (3, 48, 128)
    assert np.array_equal(labs, ocr_data.synthetic_set(str(cache), 3, 3, 5, ALPHABET, None, workers=1)[1])
    names = sorted(p.name for p in cache.glob("*.npz"))
    assert len(names) == 2 and any("_128x48_" in n for n in names) and any("_128x32_" in n for n in names)


@pytest.mark.parametrize("options, n, global_name", [
    (ocr_data.RenderOptions(us_extra_faces=1.0), 40, "plate_render.US_EXTRA_FACE_P"),  # ~16 of 40 crops are US plates
    (ocr_data.RenderOptions(narrow_wm=1.0), 200, "plate_render.NARROW_WM_SCALE"),
    (ocr_data.RenderOptions(emboss=1.0), 10, "plate_render.EMBOSS_P"),
    (ocr_data.RenderOptions(glyph_vary=1.0), 10, "plate_render.GLYPH_VARY_P"),
    (ocr_data.RenderOptions(clean=1.0), 10, "degrade.CLEAN_P"),
])
def test_each_renderer_option_reaches_the_rendering_workers_and_names_its_own_chunks(tmp_path, options, n,
                                                                                      global_name):
    """--us-extra-faces, --narrow-wm, --emboss, --glyph-vary and --clean change what the worker processes draw, so their crops get
    their own cache names and the default's cache is neither reused for them nor overwritten."""
    module, name = global_name.split(".")
    cache = tmp_path / "cache"
    plain, _ = ocr_data.synthetic_set(str(cache), n, n, 3, ALPHABET, None, workers=1)
    other, _ = ocr_data.synthetic_set(str(cache), n, n, 3, ALPHABET, None, workers=1, options=options)
    assert len(list(cache.glob("*.npz"))) == 2
    assert ocr_data.render_fingerprint(ALPHABET, None) != ocr_data.render_fingerprint(ALPHABET, None, options)
    assert not np.array_equal(plain, other)
    assert getattr(importlib.import_module(f"training.{module}"), name) == 0.0  # set in the workers, not here
