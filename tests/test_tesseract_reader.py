"""The Tesseract reader: the classic method must read a crisp plate."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edge.plates import FORMATS
from edge.runtime import ModelError
from edge.tesseract_reader import (SYSTEM_TESSDATA, TesseractConfig, TesseractReader,
                                   find_tessdata, prepare, text_line)


@pytest.fixture(scope="module")
def reader():
    with TesseractReader() as r:
        yield r


def test_reads_a_crisp_plate_in_process(reader, render_plate):
    reading = reader.read(render_plate("1AB2345"))
    assert reading.text == "1AB2345" and reading.engine == "tesseract"
    assert reader._engine.name == "tesserocr"
    assert len(reading.char_confidences) == 7
    assert 0.5 < reading.confidence <= min(reading.char_confidences) <= 1.0


@pytest.mark.parametrize("kwargs", [{"light_text": True}, {"height": 14}, {"height": 150}])
def test_reads_light_on_dark_tiny_and_large_plates(reader, render_plate, kwargs):
    assert reader.read(render_plate("BA123CD", **kwargs)).text == "BA123CD"


def test_reads_bgr_crops_too(reader, render_plate):
    bgr = np.repeat(render_plate("KA1234")[:, :, None], 3, axis=2)
    assert reader.read(bgr).text == "KA1234"


def test_reports_the_format_the_reading_fits(render_plate):
    with TesseractReader(formats=(FORMATS["SK"], FORMATS["CZ"])) as r:
        assert r.read(render_plate("1AB2345")).format == "CZ"


def test_crops_are_cut_to_the_text_line_and_scaled_to_line_height(render_plate):
    crop = np.full((120, 300), 235, np.uint8)
    crop[4:8, 10:290] = 20                                  # the plate's rim
    text = render_plate("AB12", height=40)
    crop[20:20 + text.shape[0], 40:40 + text.shape[1]] = text
    small = render_plate("TEXAS", height=8)                 # a state name below
    crop[95:95 + small.shape[0], 100:100 + small.shape[1]] = small
    x0, y0, x1, y1, light = text_line(crop)
    assert 20 < y0 < y1 < 20 + text.shape[0] and 40 < x0 < x1 < 40 + text.shape[1]
    assert not light
    cfg = TesseractConfig()
    assert prepare(crop, cfg).shape[0] == cfg.line_height + 2 * round(cfg.line_height * cfg.border)


def test_a_plate_traineddata_in_tessdata_wins(tmp_path):
    eng = next(d / "eng.traineddata" for d in SYSTEM_TESSDATA if (d / "eng.traineddata").is_file())
    (tmp_path / "plate.traineddata").symlink_to(eng)
    assert find_tessdata(None, tmp_path) == (tmp_path, "plate")
    assert find_tessdata("plate", tmp_path) == (tmp_path, "plate")


def test_missing_language_data_is_a_model_error_naming_it():
    with pytest.raises(ModelError, match="klingon.traineddata: Tesseract language data not found"):
        TesseractReader(TesseractConfig(lang="klingon"))


def test_falls_back_to_pytesseract_without_tesserocr(monkeypatch, render_plate):
    monkeypatch.setitem(sys.modules, "tesserocr", None)  # import now fails
    r = TesseractReader()
    assert r._engine.name == "pytesseract"
    assert r.read(render_plate("1AB2345")).text == "1AB2345"


def test_neither_engine_is_a_model_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tesserocr", None)
    monkeypatch.setitem(sys.modules, "pytesseract", None)
    with pytest.raises(ModelError, match="neither tesserocr nor pytesseract"):
        TesseractReader()
