"""Plate crop -> Reading: the TFLite CTC reader and the fallback combiner.

Model contract (training/ produces it): one uint8 (or int8) input [1,H,W,1]
fed the gray crop stretched by `edge.preprocess.to_model_input` and equalised
as `<model>.input.json` beside it says (none without that file); one output
[1,1,T,C] or [1,T,C] of softmax probabilities (quantized or float32) with
C = len(alphabet) + 1 and the CTC blank at the last index.

Confidence: a character's confidence is the highest probability its class
reaches over the frames it spans; the plate confidence is the PRODUCT of the
character confidences (the chance that every character is right, if they
were independent), so it falls with each doubtful character.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edge.plates import ALNUM, CLASS_CHARS, PlateFormat, match_format
from edge.preprocess import EQUALIZERS, equalizer, to_gray, to_model_input
from edge.runtime import ModelError, dequantize, input_infos, load_interpreter, output_infos
from edge.types import Reading

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parents[1] / "tflite_graphs" / "ocr"
DEFAULT_MODEL = MODEL_DIR / "ocr.tflite"
DEFAULT_ALPHABET = MODEL_DIR / "alphabet.txt"

# Below this probability a format is not allowed to force a character: the
# model is sure, so the plate is more likely of a format not configured.
DEFAULT_MIN_FIX_PROB = 0.02

# Characters many plate fonts draw with one glyph (CZ, SK, most US states):
# the model cannot tell them apart, so its certainty between them means
# nothing and a format may swap one for the other whatever its probability.
SAME_GLYPH = (("O", "0"),)


# The fallback's confidence as an opinion against the model's (CombinedReader):
# a Tesseract that says 100 % must not outvote a model that gives its reading
# no chance at all.
FALLBACK_CONF_RANGE = (0.01, 0.99)


@runtime_checkable
class Reader(Protocol):
    """Anything that reads one gray plate crop. Not thread-safe: one per thread."""

    def read(self, gray_crop: np.ndarray) -> Reading: ...


@runtime_checkable
class Scorer(Protocol):
    """A reader that can also say how probable it finds given texts on a crop:
    what lets the fallback's reading be weighed by the model's own evidence."""

    def likelihoods(self, gray_crop: np.ndarray, texts: Iterable[str]) -> tuple[float, ...]: ...


def load_alphabet(path: str | Path) -> str:
    """The model's classes in output order (blank excluded), one line of A-Z0-9."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{p}: alphabet file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"{p}: cannot read alphabet file ({e})") from None
    alphabet = text.strip("\r\n")
    if not alphabet:
        raise ModelError(f"{p}: alphabet file is empty")
    bad = sorted(set(alphabet) - set(ALNUM))
    if bad:
        raise ModelError(f"{p}: alphabet has characters outside A-Z0-9: {''.join(bad)!r}")
    if len(set(alphabet)) != len(alphabet):
        raise ModelError(f"{p}: alphabet repeats characters")
    return alphabet


def input_record_path(model_path: str | Path) -> Path:
    """Where a model's input record lives: `ocr.tflite` -> `ocr.input.json`."""
    return Path(model_path).with_suffix(".input.json")


def write_input_record(model_path: str | Path, equalize_method: str) -> Path:
    """Record beside a model how its input is equalised (the trainer calls this)."""
    equalizer(equalize_method)  # an unknown name is refused before anything is written
    path = input_record_path(model_path)
    path.write_text(json.dumps({"equalize": equalize_method}) + "\n")
    return path


def model_input_equalize(model_path: str | Path) -> str:
    """How the model's input must be equalised: what it was trained on, read
    from its input record; "none" without one (every model made before the
    record existed was trained on the plain stretched crop)."""
    path = input_record_path(model_path)
    if not path.exists():
        return "none"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: cannot read the model's input record ({e})") from None
    if not isinstance(record, dict):
        raise ModelError(f"{path}: the model's input record must be a JSON object, got {record!r}")
    method = record.get("equalize", "none")
    if method not in EQUALIZERS:
        raise ModelError(f"{path}: equalize must be one of {', '.join(EQUALIZERS)}, got {method!r}")
    return method


def plate_confidence(char_confidences: Iterable[float]) -> float:
    """Product of character confidences; 0 for an empty reading."""
    c = np.fromiter(char_confidences, dtype=np.float64)
    return float(np.prod(c)) if c.size else 0.0


@dataclass(frozen=True, eq=False)
class CtcGreedy:
    """Best-path decode plus, per character, its class probabilities.

    position_probs[i, k] is the highest probability of alphabet[k] over the
    frames of character i: the alternatives format-aware decoding picks from.
    """

    text: str
    indices: np.ndarray          # [n] alphabet index per character
    char_confidences: np.ndarray  # [n]
    position_probs: np.ndarray    # [n, len(alphabet)]


def ctc_greedy(probs: np.ndarray, alphabet: str) -> CtcGreedy:
    """Greedy CTC on [T, C] probabilities: best class per frame, collapse
    repeats, drop blanks (last index). A blank between equal classes keeps
    both characters."""
    probs = np.asarray(probs, dtype=np.float32)
    t, c = probs.shape
    if c != len(alphabet) + 1:
        raise ValueError(f"{c} classes for a {len(alphabet)}-character alphabet (+ blank)")
    blank = c - 1
    best = probs.argmax(axis=1)
    nonblank = best != blank
    starts = nonblank & np.r_[True, best[1:] != best[:-1]]
    frames = np.flatnonzero(nonblank)
    indices = best[starts]
    n = len(indices)
    if n:
        # each character's frames are consecutive in `frames`: reduce each run
        first = np.flatnonzero(starts[frames])
        char_conf = np.maximum.reduceat(probs[frames, best[frames]], first)
        position = np.maximum.reduceat(probs[frames, :blank], first, axis=0)
    else:
        char_conf = np.zeros(0, np.float32)
        position = np.zeros((0, c - 1), np.float32)
    text = "".join(alphabet[i] for i in indices)
    return CtcGreedy(text, indices, char_conf, position)


def ctc_probability(probs: np.ndarray, indices: Iterable[int]) -> float:
    """P(label | frames): the CTC forward sum over every alignment of the label
    (class indices, blank last) to the [T, C] frame probabilities. Rescaled at
    each frame, so it does not underflow."""
    probs = np.asarray(probs, dtype=np.float64)
    t, c = probs.shape
    label = np.fromiter(indices, dtype=np.int64)
    if label.size and (label.min() < 0 or label.max() >= c - 1):
        raise ValueError(f"label index outside 0..{c - 2}")
    ext = np.full(2 * label.size + 1, c - 1)  # blank, l1, blank, l2, ..., blank
    ext[1::2] = label
    s = ext.size
    # a state may also come from two back: a character after a blank, unless it repeats the previous one
    skip = np.zeros(s, bool)
    skip[3::2] = label[1:] != label[:-1]
    alpha = np.zeros(s)
    alpha[0] = probs[0, ext[0]]
    if s > 1:
        alpha[1] = probs[0, ext[1]]
    log_scale = 0.0
    for k in range(1, t):
        prev = alpha.copy()
        alpha[1:] += prev[:-1]
        alpha[2:] += np.where(skip[2:], prev[:-2], 0.0)
        alpha *= probs[k, ext]
        total = alpha.sum()
        if total <= 0.0:
            return 0.0
        alpha /= total
        log_scale += np.log(total)
    end = alpha[-1] + (alpha[-2] if s > 1 else 0.0)
    return float(np.exp(log_scale) * end) if end > 0 else 0.0


class FormatDecoder:
    """Greedy CTC, then, if the text fits no specific format, the most
    probable string of the same length that fits one (a digit-only position
    takes the best digit, turning 'O' into '0'). A swap needs the model to
    give the new character at least min_fix_prob, except between characters
    of one glyph (O/0), which it cannot tell apart. Generic formats (US)
    accept a reading only when no specific format could be reached."""

    def __init__(self, alphabet: str, formats: Iterable[PlateFormat] = (),
                 min_fix_prob: float = DEFAULT_MIN_FIX_PROB, engine: str = "tflite") -> None:
        self.alphabet = alphabet
        self.formats = tuple(formats)
        self.min_fix_prob = float(min_fix_prob)
        self.engine = engine
        # length -> (format per template, class masks [K, n, len(alphabet)])
        self._masks: dict[int, tuple[tuple[PlateFormat, ...], np.ndarray]] = {}
        # twin[k]: alphabet index drawn with the same glyph as alphabet[k] (or k)
        self._twin = np.arange(len(alphabet))
        for a, b in SAME_GLYPH:
            if a in alphabet and b in alphabet:
                self._twin[alphabet.index(a)], self._twin[alphabet.index(b)] = alphabet.index(b), alphabet.index(a)
        specific = tuple(f for f in self.formats if not f.generic)
        for n in sorted({n for f in specific for n in f.lengths}):
            owners, masks = [], []
            for f in specific:
                for template in f.templates_of_length(n):
                    owners.append(f)
                    masks.append([[ch in CLASS_CHARS[cls] for ch in alphabet] for cls in template])
            self._masks[n] = (tuple(owners), np.array(masks, dtype=bool))

    def decode(self, probs: np.ndarray) -> Reading:
        g = ctc_greedy(probs, self.alphabet)
        fmt = match_format(g.text, self.formats)
        if (fmt is not None and not fmt.generic) or len(g.text) not in self._masks:
            return self._reading(g.text, g.char_confidences, fmt)
        owners, masks = self._masks[len(g.text)]
        # a glyph's probability: P(O) + P(0) for O and for 0, as the model cannot tell them apart
        glyph = g.position_probs + np.where(self._twin != np.arange(len(self.alphabet)),
                                            g.position_probs[:, self._twin], 0.0)
        allowed = np.where(masks, np.minimum(glyph, 1.0)[None], -1.0)  # [K, n, A]
        pick = allowed.argmax(axis=2)                                   # [K, n]
        p = np.take_along_axis(allowed, pick[..., None], axis=2)[..., 0]
        changed = pick != g.indices[None]
        ok = ~np.any(changed & (p < self.min_fix_prob), axis=1) & np.all(p >= 0, axis=1)
        if not ok.any():
            return self._reading(g.text, g.char_confidences, fmt)
        score = np.where(ok, np.log(np.maximum(p, 1e-12)).sum(axis=1), -np.inf)
        k = int(score.argmax())  # ties: the earlier format wins
        text = "".join(self.alphabet[i] for i in pick[k])
        log.debug("format %s: %s -> %s", owners[k].name, g.text, text)
        return self._reading(text, p[k], owners[k])

    def _reading(self, text: str, char_conf: np.ndarray, fmt: PlateFormat | None) -> Reading:
        conf = tuple(float(c) for c in char_conf)
        text = fmt.canonical(text) if fmt else text
        return Reading(text=text, confidence=plate_confidence(conf), char_confidences=conf,
                       format=fmt.name if fmt else None, engine=self.engine)


class TfliteReader:
    """The on-device OCR model. Loads once; read() reuses one input buffer.

    formats: the plate formats of the deployment (empty: no fitting). Only
    name the formats expected: a specific format is preferred to a generic
    one, so foreign plates of the same length may be bent to fit it.
    """

    engine = "tflite"

    def __init__(self, model_path: str | Path, alphabet_path: str | Path, num_threads: int = 1,
                 formats: Iterable[PlateFormat] = (),
                 min_fix_prob: float = DEFAULT_MIN_FIX_PROB) -> None:
        self._interp = load_interpreter(model_path, num_threads)
        alphabet = load_alphabet(alphabet_path)
        self.equalize = model_input_equalize(model_path)
        self._equalize_input = equalizer(self.equalize)
        ins, outs = input_infos(self._interp), output_infos(self._interp)
        if len(ins) != 1 or len(ins[0].shape) != 4 or ins[0].shape[0] != 1 \
                or ins[0].shape[3] != 1 or ins[0].dtype not in (np.uint8, np.int8):
            got = "; ".join(str(i) for i in ins)
            raise ModelError(f"{model_path}: OCR input must be one uint8 [1,H,W,1] tensor, got {got}")
        if len(outs) != 1 or outs[0].shape[:-2] not in ((1,), (1, 1)):
            got = "; ".join(str(o) for o in outs)
            raise ModelError(f"{model_path}: OCR output must be one [1,T,C] or [1,1,T,C] tensor, got {got}")
        if outs[0].shape[-1] != len(alphabet) + 1:
            raise ModelError(f"{alphabet_path}: {len(alphabet)} characters + blank != "
                             f"{outs[0].shape[-1]} classes of {model_path}")
        self._in, self._out = ins[0], outs[0]
        _, h, w, _ = self._in.shape
        self.input_size = (w, h)
        self._buf = np.zeros(self._in.shape, self._in.dtype)
        self._pixels = self._buf.view(np.uint8)[0, :, :, 0]  # writes land in _buf
        self._decoder = FormatDecoder(alphabet, formats, min_fix_prob, engine=self.engine)
        self._index = {ch: i for i, ch in enumerate(alphabet)}

    @property
    def alphabet(self) -> str:
        return self._decoder.alphabet

    def read(self, gray_crop: np.ndarray) -> Reading:
        return self._decoder.decode(self._probs(gray_crop))

    def likelihoods(self, gray_crop: np.ndarray, texts: Iterable[str]) -> tuple[float, ...]:
        """The model's probability of each text on this crop (one model run);
        0 for a text with a character outside its alphabet."""
        probs = self._probs(gray_crop)
        index = self._index
        return tuple(ctc_probability(probs, [index[ch] for ch in text]) if all(ch in index for ch in text)
                     else 0.0 for text in texts)

    def _probs(self, gray_crop: np.ndarray) -> np.ndarray:
        """[T, C] frame probabilities for one crop."""
        gray = to_gray(gray_crop)
        if gray.size == 0:
            raise ValueError("empty plate crop")
        pixels = self._equalize_input(to_model_input(gray, self.input_size))
        if self._buf.dtype == np.int8:  # int8 input: uint8's scale, zero point - 128
            np.bitwise_xor(pixels, 0x80, out=self._pixels)
        else:
            self._pixels[...] = pixels
        self._interp.set_tensor(self._in.index, self._buf)
        self._interp.invoke()
        raw = self._interp.get_tensor(self._out.index)
        return dequantize(raw, self._out).reshape(-1, raw.shape[-1])


class CombinedReader:
    """Primary reader first; the (slower) fallback only for doubtful reads.

    Keeps a reading that fits a configured plate format over one that fits
    none (the format is the stronger evidence). Between two that fit alike:
    if the primary is a Scorer, the engines' confidences are not compared
    raw (they are not calibrated against each other: Tesseract is sure of
    misreads the model gives almost no chance), but as two opinions on the
    crop: each reading's probability under the model, times the fallback's
    confidence c for its own reading and 1 - c for the other (c kept within
    FALLBACK_CONF_RANGE: neither engine is ever certain). Else the more
    confident reading. `fallback_below` is a config threshold; eval-ocr
    reports how often it fires.
    """

    def __init__(self, primary: Reader, fallback: Reader, fallback_below: float) -> None:
        self.primary, self.fallback = primary, fallback
        self.fallback_below = float(fallback_below)

    def read(self, gray_crop: np.ndarray) -> Reading:
        first = self.primary.read(gray_crop)
        if first.confidence >= self.fallback_below:
            return first
        second = self.fallback.read(gray_crop)
        weigh = second.text != first.text and (first.format is None) == (second.format is None)
        if weigh and isinstance(self.primary, Scorer):
            p_first, p_second = self.primary.likelihoods(gray_crop, (first.text, second.text))
            c = min(max(second.confidence, FALLBACK_CONF_RANGE[0]), FALLBACK_CONF_RANGE[1])
            return second if p_second * c > p_first * (1.0 - c) else first
        return second if rank(second) > rank(first) else first


def rank(reading: Reading) -> tuple[bool, float]:
    """How two readings of one crop compare: fitting a plate format first, then confidence."""
    return reading.format is not None, reading.confidence
