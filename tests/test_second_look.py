"""The second look: a doubtful crop is read again trimmed and padded, the best reading kept."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import ReaderConfig, SecondLookConfig
from edge.reader import CombinedReader, Scorer, TfliteReader
from edge.second_look import DEFAULT_RECROPS, Recrop, SecondLookReader
from edge.types import Reading

CROP = np.arange(40 * 100, dtype=np.uint32).reshape(40, 100).astype(np.uint8)


class ByWidth:
    """Fake reader: the reading for a crop of each width; remembers the crops it saw."""

    def __init__(self, readings: dict[int, Reading], default: Reading) -> None:
        self.readings, self.default, self.seen = readings, default, []

    def read(self, gray_crop):
        self.seen.append(gray_crop.shape)
        return self.readings.get(gray_crop.shape[1], self.default)


class Scoring(ByWidth):
    def likelihoods(self, gray_crop, texts):
        return tuple(0.5 for _ in texts)


def test_it_scores_texts_only_when_its_reader_can():
    """The combined reader asks it for the model's scores (edge.reader.Scorer)."""
    assert not isinstance(SecondLookReader(ByWidth({}, Reading("A", 0.9))), Scorer)
    scoring = SecondLookReader(Scoring({}, Reading("A", 0.9)))
    assert isinstance(scoring, Scorer)
    assert scoring.likelihoods(CROP, ("A", "B")) == (0.5, 0.5)


class ScoringByWidth(ByWidth):
    """Fake scorer: each text's probability on a crop of each width."""

    def __init__(self, probability: dict[int, dict[str, float]]) -> None:
        super().__init__({}, Reading("A", 0.9))
        self.probability = probability

    def likelihoods(self, gray_crop, texts):
        self.seen.append(gray_crop.shape)
        return tuple(self.probability.get(gray_crop.shape[1], {}).get(t, 0.0) for t in texts)


def test_each_text_is_scored_on_the_view_that_favours_it():
    """A reading kept from a recrop is weighed where it was read, not on the
    cut it failed on (the combined reader compares the two scores)."""
    primary = ScoringByWidth({100: {"ILEG0": 0.0003, "TLEGO": 0.006},
                              80: {"ILEG0": 0.28, "TLEGO": 0.02},
                              90: {"TLEGO": 0.05}})
    reader = SecondLookReader(primary, [Recrop(right=0.2), Recrop(left=0.1)], below=0.8)
    assert reader.likelihoods(CROP, ("ILEG0", "TLEGO", "XYZ")) == (0.28, 0.05, 0.0)
    assert primary.seen == [(40, 100), (40, 80), (40, 90)]


def test_a_confident_reading_is_not_read_again():
    primary = ByWidth({}, Reading("1AB2345", 0.95))
    reader = SecondLookReader(primary, below=0.8)
    assert reader.read(CROP).text == "1AB2345"
    assert primary.seen == [(40, 100)] and reader.looks == 0


def test_a_doubtful_reading_is_read_on_every_recrop_and_the_surest_kept():
    trimmed_left = Recrop(left=0.1)
    primary = ByWidth({90: Reading("1AB2345", 0.9)}, Reading("U1AB2345", 0.4))
    reader = SecondLookReader(primary, [Recrop(right=0.2), trimmed_left, Recrop(top=0.1)], below=0.8)
    assert reader.read(CROP).text == "1AB2345"
    assert primary.seen == [(40, 100), (40, 80), (40, 90), (36, 100)]
    assert reader.looks == 1


def test_the_first_reading_stays_when_no_recrop_does_better():
    primary = ByWidth({90: Reading("XX", 0.2)}, Reading("1AB2345", 0.6))
    assert SecondLookReader(primary, [Recrop(left=0.1)], below=0.8).read(CROP).text == "1AB2345"


def test_a_recrop_reading_that_fits_a_format_beats_a_surer_one_that_fits_none():
    primary = ByWidth({90: Reading("BA123CD", 0.5, format="SK")}, Reading("SBA123CD", 0.7))
    assert SecondLookReader(primary, [Recrop(left=0.1)], below=0.8).read(CROP).text == "BA123CD"


def test_below_zero_or_no_recrops_means_one_read_per_crop():
    for reader in (SecondLookReader(ByWidth({}, Reading("A", 0.0)), below=0.0),
                   SecondLookReader(ByWidth({}, Reading("A", 0.1)), recrops=(), below=0.8)):
        reader.read(CROP)
        assert len(reader.primary.seen) == 1 and reader.looks == 0


def test_recrops_trim_and_pad_the_sides_they_name():
    assert np.array_equal(Recrop(left=0.1).apply(CROP), CROP[:, 10:])
    assert np.array_equal(Recrop(top=0.1, bottom=0.25).apply(CROP), CROP[4:30])
    padded = Recrop(-0.1, -0.05, 0.0, 0.0).apply(CROP)
    assert padded.shape == (42, 110)
    assert np.array_equal(padded[2:, 10:], CROP)  # the crop itself, untouched
    assert np.array_equal(padded[2:, 0], CROP[:, 0])  # padding repeats the edge


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 7), (40, 100)])
def test_no_recrop_ever_makes_an_empty_crop(shape):
    crop = np.full(shape, 200, np.uint8)
    for recrop in DEFAULT_RECROPS + (Recrop(0.44, 0.44, 0.44, 0.44),):
        out = recrop.apply(crop)
        assert out.size > 0 and out.dtype == np.uint8


@pytest.mark.parametrize("sides", [(0.5, 0, 0, 0), (0, -0.6, 0, 0), (0.45, 0, 0.45, 0)])
def test_a_recrop_that_would_cut_away_the_plate_is_refused(sides):
    with pytest.raises(ValueError, match="recrop"):
        Recrop(*sides)


def test_the_config_defaults_are_the_modules_defaults():
    cfg = SecondLookConfig()
    assert tuple(Recrop(*c) for c in cfg.recrops) == DEFAULT_RECROPS
    assert ReaderConfig().second_look == cfg


def test_the_daemons_reader_looks_twice_before_asking_tesseract():
    from dataclasses import replace
    from pathlib import Path

    from edge.config import Config
    from edge.pipeline import build_reader

    models = Path(__file__).resolve().parents[1] / "tflite_graphs" / "ocr"
    cfg = Config(reader=ReaderConfig(ocr_model=models / "ocr.tflite", alphabet=models / "alphabet.txt"))
    reader = build_reader(cfg)
    assert isinstance(reader, CombinedReader) and isinstance(reader.primary, SecondLookReader)
    assert isinstance(reader.primary.primary, TfliteReader)
    assert reader.primary.below == cfg.reader.second_look.below
    none = replace(cfg, reader=replace(cfg.reader, second_look=SecondLookConfig(recrops=())))
    assert isinstance(build_reader(none).primary, TfliteReader)


def test_a_reload_changes_the_threshold_of_the_running_second_look():
    from dataclasses import replace
    from pathlib import Path

    from edge.config import Config
    from edge.pipeline import Pipeline, build_reader

    models = Path(__file__).resolve().parents[1] / "tflite_graphs" / "ocr"
    cfg = Config(reader=ReaderConfig(ocr_model=models / "ocr.tflite", alphabet=models / "alphabet.txt",
                                     second_look=SecondLookConfig(below=0.0)))
    for reader in (build_reader(cfg), build_reader(replace(cfg, reader=replace(cfg.reader, tesseract=replace(
            cfg.reader.tesseract, enabled=False))))):
        pipeline = Pipeline(detector=None, reader=reader)
        pipeline.reconfigure(replace(cfg, reader=replace(cfg.reader, second_look=SecondLookConfig(below=0.7))))
        look = reader.primary if isinstance(reader, CombinedReader) else reader
        assert isinstance(look, SecondLookReader) and look.below == 0.7
