"""The classic plate OCR: find the text line, blur, Tesseract --psm 7.

Used as the fallback behind the TFLite reader and as a baseline. Runs
in-process through tesserocr (one PyTessBaseAPI for the reader's life);
pytesseract (one `tesseract` process per crop, much slower) is the fallback.

Language data: `plate.traineddata` dropped into the repo's tessdata/ wins
(see tessdata/README.md), else the system's `eng`. Dictionaries are off:
plates are not words. Tesseract's own threads: set OMP_THREAD_LIMIT (the
CLI sets 1) before the first reader is made.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.plates import ALNUM, PlateFormat, coerce, normalise
from edge.preprocess import to_gray
from edge.reader import plate_confidence
from edge.runtime import ModelError
from edge.types import Reading

log = logging.getLogger(__name__)

REPO_TESSDATA = Path(__file__).resolve().parents[1] / "tessdata"
PLATE_LANG = "plate"
SYSTEM_TESSDATA = (
    Path("/usr/share/tesseract-ocr/5/tessdata"),
    Path("/usr/share/tesseract-ocr/4.00/tessdata"),
    Path("/usr/share/tessdata"),
    Path("/usr/local/share/tessdata"),
)
PSM_SINGLE_LINE = 7
VARIABLES = {
    "tessedit_char_whitelist": ALNUM,
    "load_system_dawg": "0",
    "load_freq_dawg": "0",
}


@dataclass(frozen=True)
class TesseractConfig:
    """Preprocessing and engine settings (defaults tuned on a slice of eval data)."""

    lang: str | None = None          # None: 'plate' if in tessdata/, else 'eng'
    tessdata_dir: Path | None = None  # None: repo tessdata/, then the system's
    blur_kernel: int = 3             # odd Gaussian kernel after scaling; <= 1 = none
    line_height: int = 60            # the text line is scaled to this many pixels
    border: float = 0.3              # background margin, fraction of line_height
    psm: int = PSM_SINGLE_LINE


def find_tessdata(lang: str | None, tessdata_dir: Path | None = None) -> tuple[Path, str]:
    """(directory, language) to load; ModelError naming what is missing."""
    if tessdata_dir is not None:
        dirs = [Path(tessdata_dir)]
    else:
        dirs = [REPO_TESSDATA]
        prefix = os.environ.get("TESSDATA_PREFIX")
        if prefix:
            dirs += [Path(prefix), Path(prefix) / "tessdata"]
        dirs += list(SYSTEM_TESSDATA)
    if lang is None:
        lang = PLATE_LANG if any((d / f"{PLATE_LANG}.traineddata").is_file() for d in dirs) else "eng"
    for d in dirs:
        if (d / f"{lang}.traineddata").is_file():
            return d, lang
    raise ModelError(f"{lang}.traineddata: Tesseract language data not found in "
                     f"{', '.join(str(d) for d in dirs)}")


class _Engine(Protocol):
    name: str

    def recognize(self, img: np.ndarray) -> list[tuple[str, float]]:
        """(character, confidence 0..1) for each recognised symbol."""


class _Tesserocr:
    name = "tesserocr"

    def __init__(self, tessdata: Path, lang: str, psm: int) -> None:
        import tesserocr
        self._tesserocr = tesserocr
        try:
            self._api = tesserocr.PyTessBaseAPI(path=f"{tessdata}/", lang=lang, psm=psm,
                                                variables=dict(VARIABLES))
        except RuntimeError as e:
            raise ModelError(f"{tessdata}/{lang}.traineddata: Tesseract cannot load it ({e})") from None

    def recognize(self, img: np.ndarray) -> list[tuple[str, float]]:
        h, w = img.shape
        api, RIL = self._api, self._tesserocr.RIL
        api.SetImageBytes(np.ascontiguousarray(img).tobytes(), w, h, 1, w)
        api.SetSourceResolution(70)  # avoids the "invalid resolution 0 dpi" guess
        api.Recognize()
        it = api.GetIterator()
        out: list[tuple[str, float]] = []
        if it is None:
            return out
        for sym in self._tesserocr.iterate_level(it, RIL.SYMBOL):
            try:
                text = sym.GetUTF8Text(RIL.SYMBOL)
            except RuntimeError:  # tesserocr's way of saying "nothing found"
                continue
            if text:
                out.append((text, sym.Confidence(RIL.SYMBOL) / 100.0))
        return out

    def close(self) -> None:
        self._api.End()


class _Pytesseract:
    name = "pytesseract"

    def __init__(self, tessdata: Path, lang: str, psm: int) -> None:
        import pytesseract
        try:
            pytesseract.get_tesseract_version()
        except pytesseract.TesseractNotFoundError:
            raise ModelError("tesseract: neither tesserocr nor the tesseract program is "
                             "installed (pip install tesserocr, or apt install tesseract-ocr)") from None
        self._pt = pytesseract
        self._lang = lang
        variables = " ".join(f"-c {k}={v}" for k, v in VARIABLES.items())
        self._config = f'--psm {psm} --tessdata-dir "{tessdata}" {variables}'

    def recognize(self, img: np.ndarray) -> list[tuple[str, float]]:
        d = self._pt.image_to_data(img, lang=self._lang, config=self._config,
                                   output_type=self._pt.Output.DICT)
        return [(ch, max(0.0, float(conf)) / 100.0)
                for word, conf in zip(d["text"], d["conf"]) for ch in str(word).strip()]

    def close(self) -> None:
        pass


def _make_engine(tessdata: Path, lang: str, psm: int) -> _Engine:
    try:
        import tesserocr  # noqa: F401
    except ImportError:
        try:
            import pytesseract  # noqa: F401
        except ImportError:
            raise ModelError("tesseract: neither tesserocr nor pytesseract is installed") from None
        log.warning("tesserocr missing; using pytesseract (one process per crop, slow)")
        return _Pytesseract(tessdata, lang, psm)
    return _Tesserocr(tessdata, lang, psm)


def text_line(gray: np.ndarray) -> tuple[int, int, int, int, bool] | None:
    """Box (x0, y0, x1, y1) around the plate's row of characters, and whether
    the characters are lighter than the plate; None if no row is found.

    --psm 7 wants exactly one line, but a crop also holds state names,
    slogans and the plate's rim. Characters are the connected components of
    the Otsu mask (either polarity) of character-like size, shape and fill
    that share one row; the polarity with more of them wins.
    """
    H, W = gray.shape
    _, dark = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    best: tuple[int, tuple[int, int, int, int, bool]] | None = None
    for mask, light in ((dark, False), (255 - dark, True)):
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        x, y, w, h, area = stats[1:].T
        inside = (x > 0) & (x + w < W) & (h >= 0.2 * H) & (h <= 0.9 * H)
        ok = inside & (h >= w) & (h <= 8 * w) & (area >= 0.15 * w * h)
        if not ok.any():
            continue
        hm = np.median(h[ok])
        cy = y + h / 2
        row = (np.abs(cy - np.median(cy[ok])) < 0.5 * hm) & (h > 0.6 * hm) & (h < 1.4 * hm)
        k = int((ok & row).sum())
        if k >= 2 and (best is None or k > best[0]):
            keep = inside & row & (w <= 2 * hm)  # wide letters (W, M) count here
            mx, my = 0.3 * hm, 0.2 * hm
            box = (max(0, int(x[keep].min() - mx)), max(0, int(y[keep].min() - my)),
                   min(W, int((x + w)[keep].max() + mx)), min(H, int((y + h)[keep].max() + my)),
                   light)
            best = (k, box)
    return None if best is None else best[1]


def prepare(gray: np.ndarray, cfg: TesseractConfig) -> np.ndarray:
    """Cut the text line, make it dark on light, scale it to a height Tesseract
    reads well, blur away sensor noise, pad with plate background."""
    line = text_line(gray)
    if line is not None:
        x0, y0, x1, y1, light = line
        gray = gray[y0:y1, x0:x1]
        if light:
            gray = 255 - gray
    f = cfg.line_height / gray.shape[0]
    if f != 1:
        gray = cv2.resize(gray, None, fx=f, fy=f,
                          interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)
    if cfg.blur_kernel > 1:
        k = cfg.blur_kernel | 1
        gray = cv2.GaussianBlur(gray, (k, k), 0)
    pad = int(round(gray.shape[0] * cfg.border))
    if pad:
        background = int(np.percentile(gray, 90))
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=background)
    return gray


class TesseractReader:
    """Reader over Tesseract; engine 'tesseract'. Not thread-safe."""

    engine = "tesseract"

    def __init__(self, config: TesseractConfig = TesseractConfig(),
                 formats: tuple[PlateFormat, ...] = ()) -> None:
        self.config = config
        self.formats = tuple(formats)
        self.tessdata, self.lang = find_tessdata(config.lang, config.tessdata_dir)
        self._engine = _make_engine(self.tessdata, self.lang, config.psm)
        log.info("tesseract reader: %s, %s/%s.traineddata",
                 self._engine.name, self.tessdata, self.lang)

    def read(self, gray_crop: np.ndarray) -> Reading:
        gray = to_gray(gray_crop)
        if gray.size == 0:
            raise ValueError("empty plate crop")
        symbols = [(c, p) for s, p in self._engine.recognize(prepare(gray, self.config))
                   for c in normalise(s)]
        text = "".join(c for c, _ in symbols)
        confs = tuple(min(1.0, max(0.0, p)) for _, p in symbols)
        fmt_name = None
        if self.formats:
            fitted = coerce(text, self.formats)
            if fitted is not None:
                text, fmt_name = fitted[0], fitted[1].name
        return Reading(text=text, confidence=plate_confidence(confs), char_confidences=confs,
                       format=fmt_name, engine=self.engine)

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> "TesseractReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
