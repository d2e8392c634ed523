"""Second look: re-read a doubtful plate crop cut a little differently.

A detector's box is sometimes loose (a sticker, stacked letters or a frame's
edge inside it) and sometimes tight (an outer character clipped); the OCR
model's confidence drops in both cases, and the cut is what is wrong, not the
model. So a reading below a confidence threshold is read again on a few
trimmed and padded versions of the same crop, and the best of all readings
is kept (one that fits a plate format first, then the most confident: all
the readings are the same model's, so their confidences compare). Confident
reads, most of them, cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.config import SecondLookConfig
from edge.reader import Reader, Scorer, rank
from edge.types import Reading

__all__ = ["DEFAULT_BELOW", "DEFAULT_RECROPS", "Recrop", "SecondLookReader", "keep_best"]


@dataclass(frozen=True)
class Recrop:
    """Fractions of the crop's width (left, right) and height (top, bottom)
    to cut off each side; a negative fraction pads that side instead, by
    repeating the edge pixels (the crop is all there is to pad from)."""

    left: float = 0.0
    top: float = 0.0
    right: float = 0.0
    bottom: float = 0.0

    def __post_init__(self) -> None:
        for name in ("left", "top", "right", "bottom"):
            v = getattr(self, name)
            if not -0.5 <= v < 0.5:
                raise ValueError(f"recrop {name} must be in [-0.5, 0.5), got {v}")
        if self.left + self.right >= 0.9 or self.top + self.bottom >= 0.9:
            raise ValueError(f"recrop {self.as_list()} cuts off 90 % of the crop or more")

    def as_list(self) -> list[float]:
        return [self.left, self.top, self.right, self.bottom]

    def apply(self, gray: np.ndarray) -> np.ndarray:
        """The recut crop; never empty for a non-empty crop."""
        h, w = gray.shape[:2]

        def cut(frac: float, size: int) -> int:
            return int(frac * size) if frac > 0 else 0

        x0, x1 = cut(self.left, w), w - cut(self.right, w)
        y0, y1 = cut(self.top, h), h - cut(self.bottom, h)
        if x1 <= x0:
            x0, x1 = 0, w
        if y1 <= y0:
            y0, y1 = 0, h
        out = gray[y0:y1, x0:x1]
        pads = [int(round(-f * s)) if f < 0 else 0 for f, s in
                ((self.top, h), (self.bottom, h), (self.left, w), (self.right, w))]
        if any(pads):
            out = cv2.copyMakeBorder(out, *pads, cv2.BORDER_REPLICATE)
        return out


# The config's defaults (edge.config.SecondLookConfig, one place): six cuts
# around the detector's crop, padded (a box tight on the characters), trimmed
# on the left, right or both (stacked letters, stickers, bands at the sides),
# at top and bottom (state names, slogans, frame text), and all round.
DEFAULT_RECROPS: tuple[Recrop, ...] = tuple(Recrop(*c) for c in SecondLookConfig().recrops)
DEFAULT_BELOW = SecondLookConfig().below


def keep_best(first: Reading, others: Iterable[Reading]) -> Reading:
    """The best of the readings of one crop; the earliest wins a tie (edge.reader.rank)."""
    best = first
    for reading in others:
        if rank(reading) > rank(best):
            best = reading
    return best


class SecondLookReader:
    """Reads with `primary`; below `below` confidence also reads each recrop.

    `looks` counts the crops that got a second look (eval-ocr reports the
    rate, since each one costs len(recrops) more model runs).
    """

    def __init__(self, primary: Reader, recrops: Iterable[Recrop] = DEFAULT_RECROPS,
                 below: float = DEFAULT_BELOW) -> None:
        self.primary = primary
        self.recrops = tuple(recrops)
        self.below = float(below)
        self.looks = 0
        if isinstance(primary, Scorer):  # a Scorer too (edge.reader.CombinedReader)
            self.likelihoods = self._likelihoods

    @property
    def engine(self) -> str:
        return getattr(self.primary, "engine", "tflite")

    def _likelihoods(self, gray_crop: np.ndarray, texts: Iterable[str]) -> tuple[float, ...]:
        """Each text's best probability over the crop as cut and its recrops:
        the views a doubtful crop is read on, so a reading kept from a recrop
        is weighed on the view it came from, not on the cut it failed on."""
        texts = tuple(texts)
        best = np.array(self.primary.likelihoods(gray_crop, texts))
        for r in self.recrops:
            np.maximum(best, self.primary.likelihoods(r.apply(gray_crop), texts), out=best)
        return tuple(float(p) for p in best)

    def read(self, gray_crop: np.ndarray) -> Reading:
        first = self.primary.read(gray_crop)
        if first.confidence >= self.below or not self.recrops:
            return first
        self.looks += 1
        return keep_best(first, (self.primary.read(r.apply(gray_crop)) for r in self.recrops))
