"""The TFLite reader: model loading, the model contract, format-aware
decoding, and the fallback combiner."""

from __future__ import annotations

import base64
import itertools
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

from edge import reader as reader_mod
from edge.plates import FORMATS
from edge.preprocess import equalize, to_model_input
from edge.reader import (CombinedReader, FormatDecoder, Reader, Scorer, TfliteReader, ctc_probability,
                         write_input_record)
from edge.runtime import ModelError, TensorInfo, dequantize, describe, load_interpreter, quantize
from edge.types import Reading

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BLANK = len(ALPHABET)

# A 2.8 kB model honouring the OCR contract: uint8 input [1,4,8,1], uint8
# softmax output [1,8,3] over alphabet "01" + blank. Each image column is a
# frame: top half bright -> '0', bottom half bright -> '1', dark -> blank.
TINY_OCR_TFLITE = zlib.decompress(base64.b64decode("""
eNqNVk1oXFUUPjOZJjOTaTLEMaY6tK+SUhGZJHVA2/QnaVJJIGlDGmQQYXxkXszY+fP9lCJCJv5s
pAsXQqF00UhX0qULkSIiwZW46kIkC5GstKviojSTPL/z3nnz3kzz0wvfu3/nnu+cc+899ylEtPDO
zJuoKEUKpWkAdZIS6EcpgjZhjOgmsAmMhYnmgGycqAP9EBABbjdsOyGyZ4FewND068XKh/mCtqRa
JbMp+7XtykYcDqKqZdYsMz9MAX2fbds21yx3TdNVI29qFaOqswzoKStyG9DVK+0XgIkrl9+9NH91
+srl/OylhfHJ8YVxcCQcX5irJyBbLlbyulUxi2Utf13TjWK1As+JcjBiDsgCA0ADY38BvwHrwAPg
e+A+cA+4A3wDmKL7/I5r+wdifxSsHj/rf42doE5nrFPWsN//drC8F/+Is/bYdN669t+t7bD4HXFW
Ep3KnBrJIGLfCVfSGRvOOEGUMvzEtrPA28BZYAyYBKaAv2Ud864Aj3f8eK+srKK437jtj3vl91tE
r7aNh0XXmcB4KLDHD8D58xN3r2ZnpueViWoFMTe1QsaRSzlaeprec2x6ZJzP1B0I3QXuhVydZbVY
4RVdQAFjg8AjtH8AasCgcP8Cv6IBe7y6G/gVtqZd82NcK8Chtr0hql/w5LmOi50vi53dYqfi6okq
AW6WjpJrpbuOQp4OvjsxkeP2n3InkuTfq5jENSo1r/RiExdfkoHYe3Jd0g/GszsQT5QXk9JmudxT
2w7JurCcr0PC5+WBuOj34tfZ5GiNK5fDfMehIAtswMEcsA6ncsAjENSABoTrsmc3JA4/wg5Wk5L7
fdhV1zHF9+ypu4+pAA8F+KFt9BV8r5qqqS1ZpTlVN4smbrRWmFBLpfzImeFmXKMS49e3fL5h/yzH
mC+15fIlZU3ddovHld6fa4QC++jx3d5q9a9b+Jbx+WKr1T+hsz3/1u4q50dRL1mVRaZSQTNUQErU
UC84qbFQNUd3nb5YVI3xQuFZ/xut9sgZjc2xHY1We+pt9qzW66NKuz01TS9bJlOauloxalVDa48D
7/O3jda4xwJxv9nYO+7MebSdU9eMZbXGnPNuq/VdYl19261+RoVvBp/Gc/iZ3oVzUS3x0zYyVLZK
FMjhHie3v2rj7RJefh/N7f15Oe/weTSXSpmPLRWP1CfaXjyP23g6A/5tHMDzeWj1rWP7+TehGubQ
DUfhezs+z0wzR1CMAzApeXZQ9nu/wvNfXlw75+L4uRMHnuuhWdWcdQIdlvXs/z8Be6aaOZfC/O4+
FHuUA+zhuY821067OH46vZct3iWSuDnrbJ8/5fOEeQ/uY+7Ec9wPZyyg8yfROYDPQDPvU1hx/Is4
PnIeV/WiuZxZrFYME4fDX0/U7/zDvSQvBcn70y+pkvWM+Tm0I+fkPTfzReWf44A8e+Hos/92+eA/
GlLtrueUz+WnwPtiwxviI8usw+8jvr9HHqIfC5yxTfRP+vMn/0BffOpPwNfegP19vlxfwnn73JvD
c7o7rv8P8qD32A=="""))


@pytest.fixture
def tiny_model(tmp_path):
    model, alphabet = tmp_path / "ocr.tflite", tmp_path / "alphabet.txt"
    model.write_bytes(TINY_OCR_TFLITE)
    alphabet.write_text("01\n")
    return model, alphabet


# ------------------------------------------------------------ model loading

def test_loads_a_model_and_describes_its_tensors(tiny_model):
    interp = load_interpreter(tiny_model[0], num_threads=1)
    text = describe(interp)
    assert "input 0:" in text and "uint8 [1, 4, 8, 1]" in text
    assert "output 0:" in text and "[1, 8, 3]" in text


@pytest.mark.parametrize("content, reason", [
    (None, "model file not found"),
    (b"", "model file is empty"),
    (b"<html>404 Not Found</html>", "not a TFLite model"),
    (TINY_OCR_TFLITE[:300], "cannot load model"),
    (TINY_OCR_TFLITE[:8] + bytes(400), "cannot load model"),
])
def test_bad_model_files_are_one_line_errors_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "ocr.tflite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as err:
        load_interpreter(path, num_threads=1)
    message = str(err.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message


def test_quantize_and_dequantize_invert_each_other():
    info = TensorInfo("t", 0, (3,), np.dtype(np.int8), scale=1 / 256, zero_point=-128)
    q = quantize(np.array([0.0, 0.5, 0.99]), info)
    assert q.dtype == np.int8 and list(q) == [-128, 0, 125]
    np.testing.assert_allclose(dequantize(q, info), [0.0, 0.5, 0.98828125])
    floats = TensorInfo("f", 0, (1,), np.dtype(np.float32), scale=0.0, zero_point=0)
    assert dequantize(np.array([0.25], np.float32), floats)[0] == 0.25


# ------------------------------------------------------------ real tiny model

def test_reads_through_a_real_tflite_model(tiny_model):
    r = TfliteReader(*tiny_model, num_threads=1, formats=())
    assert isinstance(r, Reader) and r.input_size == (8, 4)
    img = np.zeros((4, 8), np.uint8)
    img[:2, 1:3] = 255  # '0' over two frames: one character
    img[2:, 5] = 255    # '1'
    reading = r.read(img)
    assert reading.text == "01" and reading.engine == "tflite" and reading.format is None
    assert len(reading.char_confidences) == 2 and reading.confidence > 0.9


def test_crops_of_any_size_are_stretched_to_the_model_input(tiny_model):
    r = TfliteReader(*tiny_model, num_threads=1, formats=())
    img = np.zeros((40, 80, 3), np.uint8)  # BGR, 10x the model's size
    img[:20, 10:30] = 255
    assert r.read(img).text == "0"


def test_alphabet_must_match_the_model_classes(tiny_model, tmp_path):
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("012\n")
    with pytest.raises(ModelError, match="wrong.txt: 3 characters"):
        TfliteReader(tiny_model[0], wrong)
    with pytest.raises(ModelError, match="missing.txt: alphabet file not found"):
        TfliteReader(tiny_model[0], tmp_path / "missing.txt")
    wrong.write_text("0a\n")
    with pytest.raises(ModelError, match="outside A-Z0-9"):
        TfliteReader(tiny_model[0], wrong)


# ------------------------------------------------------------ contract, faked

@dataclass
class FakeInterpreter:
    """Stands in for the runtime: fixed output, records what it was fed."""

    input_dtype: type
    output: np.ndarray
    quantization: tuple[float, int]
    input_shape: tuple[int, ...] = (1, 16, 64, 1)
    fed: list = field(default_factory=list)

    def get_input_details(self):
        return [{"name": "image", "index": 0, "shape": np.array(self.input_shape),
                 "dtype": self.input_dtype, "quantization": (1.0, 0)}]

    def get_output_details(self):
        return [{"name": "probs", "index": 1, "shape": np.array(self.output.shape),
                 "dtype": self.output.dtype.type, "quantization": self.quantization}]

    def set_tensor(self, index, value):
        self.fed.append(value)

    def invoke(self):
        pass

    def get_tensor(self, index):
        return self.output.copy()


def frames(spec: str, p: float = 0.9) -> np.ndarray:
    probs = np.full((len(spec), BLANK + 1), (1 - p) / BLANK, np.float32)
    for t, ch in enumerate(spec):
        probs[t, BLANK if ch == "-" else ALPHABET.index(ch)] = p
    return probs


def fake_reader(monkeypatch, tmp_path, fake, formats=()):
    monkeypatch.setattr(reader_mod, "load_interpreter", lambda path, num_threads: fake)
    (tmp_path / "alphabet.txt").write_text(ALPHABET + "\n")
    return TfliteReader(tmp_path / "model.tflite", tmp_path / "alphabet.txt", formats=formats)


@pytest.mark.parametrize("shape", [(1, 1, -1, BLANK + 1), (1, -1, BLANK + 1)])
def test_uint8_softmax_output_in_either_shape(monkeypatch, tmp_path, shape):
    out = np.round(frames("-1-AB-B-") * 255).astype(np.uint8).reshape(shape)
    r = fake_reader(monkeypatch, tmp_path, FakeInterpreter(np.uint8, out, (1 / 255, 0)))
    reading = r.read(np.zeros((30, 120), np.uint8))
    assert reading.text == "1ABB"
    assert reading.char_confidences == pytest.approx((0.9,) * 4, abs=0.003)


def test_int8_and_float_outputs_are_dequantized(monkeypatch, tmp_path):
    probs = frames("7-X")
    q = (np.round(probs * 256) - 128).clip(-128, 127).astype(np.int8)[None]
    r = fake_reader(monkeypatch, tmp_path, FakeInterpreter(np.uint8, q, (1 / 256, -128)))
    assert r.read(np.zeros((30, 120), np.uint8)).confidence == pytest.approx(0.81, abs=0.01)
    r = fake_reader(monkeypatch, tmp_path, FakeInterpreter(np.uint8, probs[None], (0.0, 0)))
    assert r.read(np.zeros((30, 120), np.uint8)).confidence == pytest.approx(0.81)


def test_input_is_the_stretched_crop_in_one_reused_buffer(monkeypatch, tmp_path):
    fake = FakeInterpreter(np.uint8, frames("-")[None], (0.0, 0))
    r = fake_reader(monkeypatch, tmp_path, fake)
    r.read(np.full((30, 120), 200, np.uint8))
    r.read(np.full((10, 20), 100, np.uint8))
    assert fake.fed[0] is fake.fed[1]  # preallocated, not rebuilt per call
    assert fake.fed[1].shape == (1, 16, 64, 1) and fake.fed[1].dtype == np.uint8
    assert np.all(fake.fed[1] == 100)


def test_int8_input_is_shifted_by_128(monkeypatch, tmp_path):
    fake = FakeInterpreter(np.int8, frames("-")[None], (0.0, 0))
    fake_reader(monkeypatch, tmp_path, fake).read(np.full((16, 64), 200, np.uint8))
    assert fake.fed[0].dtype == np.int8 and np.all(fake.fed[0] == 72)


def test_a_float_input_model_is_refused(monkeypatch, tmp_path):
    fake = FakeInterpreter(np.float32, frames("-")[None], (0.0, 0))
    with pytest.raises(ModelError, match="model.tflite: OCR input must be one uint8"):
        fake_reader(monkeypatch, tmp_path, fake)


# ------------------------------------------------------------ format-aware

def decoder(*names: str, min_fix_prob: float = 0.02) -> FormatDecoder:
    return FormatDecoder(ALPHABET, tuple(FORMATS[n] for n in names), min_fix_prob)


def with_runner_up(spec: str, frame: int, char: str, p: float, top: float = 0.6) -> np.ndarray:
    probs = frames(spec)
    probs[frame] = (1 - top - p) / (BLANK - 1)
    probs[frame, ALPHABET.index(spec[frame])] = top
    probs[frame, ALPHABET.index(char)] = p
    return probs


def test_a_reading_that_fits_is_kept_and_its_format_reported():
    reading = decoder("CZ").decode(frames("1AB2345"))
    assert reading.text == "1AB2345" and reading.format == "CZ"
    assert reading.char_confidences == pytest.approx((0.9,) * 7)


def test_a_letter_in_a_digit_position_becomes_the_best_digit():
    probs = with_runner_up("1ABO345", 3, "0", 0.35)  # 'O' 0.6, '0' 0.35
    reading = decoder("CZ").decode(probs)
    assert reading.text == "1AB0345" and reading.format == "CZ"
    assert reading.char_confidences[3] == pytest.approx(0.95)  # P(O) + P(0): one glyph
    assert reading.confidence == pytest.approx(0.9 ** 6 * 0.95)


def test_a_swap_between_different_glyphs_keeps_the_new_characters_probability():
    probs = with_runner_up("1ABS345", 3, "5", 0.35)
    reading = decoder("CZ").decode(probs)
    assert reading.text == "1AB5345" and reading.char_confidences[3] == pytest.approx(0.35)


def test_the_most_probable_fitting_format_wins():
    # '8A123BC': CZ needs digits for B and C (improbable); SK needs B for 8 (likely).
    probs = with_runner_up("8A123BC", 0, "B", 0.35)
    reading = decoder("CZ", "SK", min_fix_prob=0.0).decode(probs)
    assert reading.text == "BA123BC" and reading.format == "SK"


def test_a_confident_character_is_not_forced_into_a_format():
    probs = with_runner_up("1ABS345", 3, "5", 0.001, top=0.98)
    reading = decoder("CZ").decode(probs)
    assert reading.text == "1ABS345" and reading.format is None


def test_o_and_zero_share_a_glyph_so_the_format_decides_however_sure_the_model_is():
    probs = with_runner_up("RK34OAO", 4, "0", 0.0, top=0.98)
    reading = decoder("SK").decode(probs)
    assert reading.text == "RK340AO" and reading.format == "SK"
    assert reading.char_confidences[4] == pytest.approx(0.98)  # the glyph was read surely
    letter = with_runner_up("RK340A0", 6, "O", 0.0, top=0.98)  # and back: digit in a letter slot
    assert decoder("SK").decode(letter).text == "RK340AO"


def test_readings_of_no_format_length_are_left_alone():
    reading = decoder("CZ").decode(frames("1AB23456"))
    assert reading.text == "1AB23456" and reading.format is None


def test_a_generic_format_accepts_without_fixing():
    probs = with_runner_up("1ABS345", 3, "5", 0.35)
    reading = decoder("US").decode(probs)
    assert reading.text == "1ABS345" and reading.format == "US"


def test_specific_formats_get_their_chance_before_a_generic_one():
    probs = with_runner_up("1ABO345", 3, "0", 0.35)
    assert decoder("US", "CZ").decode(probs).text == "1AB0345"
    confident = with_runner_up("1ABS345", 3, "5", 0.001, top=0.98)
    assert decoder("US", "CZ").decode(confident).format == "US"


# ------------------------------------------------------------ combined

@dataclass
class Stub:
    reading: Reading
    calls: int = 0

    def read(self, gray_crop):
        self.calls += 1
        return self.reading


CROP = np.zeros((20, 80), np.uint8)


def test_a_confident_primary_reading_skips_the_fallback():
    primary, fallback = Stub(Reading("AB123", 0.9)), Stub(Reading("XX", 0.99, engine="tesseract"))
    assert CombinedReader(primary, fallback, fallback_below=0.8).read(CROP).text == "AB123"
    assert fallback.calls == 0


def test_a_reading_that_fits_a_format_beats_a_surer_one_that_fits_none():
    primary = Stub(Reading("SI819AK", 0.5, format="SK"))
    surer = Stub(Reading("IST2BTSAK", 0.7, engine="tesseract"))
    assert CombinedReader(primary, surer, 0.8).read(CROP).text == "SI819AK"
    fitting = Stub(Reading("SI819AK", 0.3, format="SK", engine="tesseract"))
    assert CombinedReader(Stub(Reading("S1B19AK", 0.5)), fitting, 0.8).read(CROP).text == "SI819AK"


def test_a_doubtful_primary_reading_asks_the_fallback_and_keeps_the_surer():
    primary = Stub(Reading("AB123", 0.5))
    sure, unsure = Stub(Reading("AB128", 0.7, engine="tesseract")), Stub(Reading("A8", 0.2))
    assert CombinedReader(primary, sure, 0.8).read(CROP).text == "AB128"
    assert CombinedReader(primary, unsure, 0.8).read(CROP).text == "AB123"
    assert unsure.calls == 1


@dataclass
class ScoringStub(Stub):
    """A primary that also scores texts, with the probabilities given."""

    probability: dict = field(default_factory=dict)
    scored: list = field(default_factory=list)

    def likelihoods(self, gray_crop, texts):
        self.scored.append(tuple(texts))
        return tuple(self.probability.get(t, 0.0) for t in texts)


def test_a_sure_fallback_reading_the_model_gives_no_chance_does_not_replace_its_reading():
    """Tesseract at 0.84 on 0005888 against the model's right 000BBB at 0.46 (retrain 51)."""
    primary = ScoringStub(Reading("000BBB", 0.46), probability={"000BBB": 0.46, "0005888": 1e-9})
    fallback = Stub(Reading("0005888", 0.84, engine="tesseract"))
    assert CombinedReader(primary, fallback, 0.6).read(CROP).text == "000BBB"
    assert primary.scored == [("000BBB", "0005888")]


def test_a_sure_fallback_reading_the_model_finds_plausible_replaces_its_reading():
    """The model splits O from 0; Tesseract is sure of 200000."""
    primary = ScoringStub(Reading("2O0000", 0.53), probability={"2O0000": 0.53, "200000": 0.40})
    fallback = Stub(Reading("200000", 0.97, engine="tesseract"))
    assert CombinedReader(primary, fallback, 0.6).read(CROP).text == "200000"


def test_a_fallback_that_says_it_is_certain_still_needs_some_chance_under_the_model():
    primary = ScoringStub(Reading("000BBB", 0.46), probability={"000BBB": 0.46, "0005888": 1e-9})
    certain = Stub(Reading("0005888", 1.0, engine="tesseract"))
    assert CombinedReader(primary, certain, 0.6).read(CROP).text == "000BBB"
    primary.probability["0005888"] = 0.05
    assert CombinedReader(primary, certain, 0.6).read(CROP).text == "0005888"


def test_without_a_scorer_the_more_confident_reading_wins():
    primary = Stub(Reading("000BBB", 0.46))
    assert not isinstance(primary, Scorer)
    assert CombinedReader(primary, Stub(Reading("0005888", 0.84)), 0.6).read(CROP).text == "0005888"


def test_the_format_still_decides_before_the_model_scores():
    primary = ScoringStub(Reading("S1B19AK", 0.5), probability={"S1B19AK": 0.5, "SI819AK": 1e-6})
    fitting = Stub(Reading("SI819AK", 0.3, format="SK", engine="tesseract"))
    assert CombinedReader(primary, fitting, 0.8).read(CROP).text == "SI819AK"
    assert primary.scored == []


def brute_force_ctc(probs, label):
    """Sum over every frame path that collapses to label (tiny T only)."""
    t, c = probs.shape
    total = 0.0
    for path in itertools.product(range(c), repeat=t):
        out, prev = [], None
        for k in path:
            if k != prev and k != c - 1:
                out.append(k)
            prev = k
        if tuple(out) == tuple(label):
            total += float(np.prod(probs[np.arange(t), path]))
    return total


@pytest.mark.parametrize("label", [(), (0,), (0, 0), (1, 2, 0), (2, 2, 2), (0, 1, 0, 1)])
def test_ctc_probability_sums_every_alignment(label):
    rng = np.random.default_rng(0)
    probs = rng.random((6, 4))
    probs /= probs.sum(1, keepdims=True)
    assert ctc_probability(probs, label) == pytest.approx(brute_force_ctc(probs, label), rel=1e-9)


def test_ctc_probability_of_a_label_longer_than_the_frames_allow_is_zero():
    assert ctc_probability(frames("1-1-1"), [1, 1, 1, 1]) == 0.0


def test_the_tflite_reader_scores_texts_on_the_crop(monkeypatch, tmp_path):
    out = np.round(frames("-1-AB-B-") * 255).astype(np.uint8)[None, None]
    r = fake_reader(monkeypatch, tmp_path, FakeInterpreter(np.uint8, out, (1 / 255, 0)))
    right, swapped, foreign = r.likelihoods(np.zeros((30, 120), np.uint8), ("1ABB", "1AB8", "1AB-B"))
    assert right > 0.4 and swapped < right / 100 and foreign == 0.0


def test_a_us_reading_writes_o_as_zero():
    reading = decoder("US").decode(frames("BLOG-GER"))
    assert reading.text == "BL0GGER" and reading.format == "US"


# ------------------------------------------------------------ input record

def test_a_model_without_an_input_record_reads_the_plain_stretched_crop(tiny_model):
    """Every model made before the record existed was trained on the plain crop."""
    assert TfliteReader(*tiny_model, num_threads=1).equalize == "none"


def test_the_input_record_beside_the_model_sets_its_equalisation(monkeypatch, tmp_path):
    path = write_input_record(tmp_path / "model.tflite", "clahe")
    assert path == tmp_path / "model.input.json"
    fake = FakeInterpreter(np.uint8, frames("-")[None], (0.0, 0))
    r = fake_reader(monkeypatch, tmp_path, fake)
    assert r.equalize == "clahe"
    crop = np.random.default_rng(0).integers(80, 120, (30, 120), dtype=np.uint8)
    r.read(crop)
    expected = equalize(to_model_input(crop, r.input_size), "clahe")
    assert np.array_equal(fake.fed[0][0, :, :, 0], expected)
    assert not np.array_equal(expected, to_model_input(crop, r.input_size))


@pytest.mark.parametrize("content, reason", [
    ("{", "cannot read the model's input record"),
    ('"clahe"', "input record must be a JSON object"),
    ('{"equalize": "hist"}', "equalize must be one of none, clahe, got 'hist'"),
])
def test_a_bad_input_record_is_a_one_line_error_naming_the_file(monkeypatch, tmp_path, content, reason):
    (tmp_path / "model.input.json").write_text(content)
    fake = FakeInterpreter(np.uint8, frames("-")[None], (0.0, 0))
    with pytest.raises(ModelError) as err:
        fake_reader(monkeypatch, tmp_path, fake)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "model.input.json")) and reason in message and "\n" not in message
