"""What flows between the pipeline's stages: small frozen records.

sources -> Frame -> detector -> Detection -> reader -> Reading
-> tracker -> VehicleResult -> outbox -> backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in frame pixels (x0, y0 top-left; x1, y1 exclusive)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    def iou(self, other: "Box") -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera image (BGR uint8) with its source time in seconds."""

    image: np.ndarray
    t: float
    camera: str = "cam0"
    index: int = 0


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


@dataclass(frozen=True)
class Reading:
    """One plate read from one crop.

    text is A-Z0-9 only; confidence is the product-style plate confidence in
    [0, 1]; char_confidences has one entry per character of text.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()
    format: str | None = None
    engine: str = "tflite"


@dataclass(frozen=True)
class VehicleResult:
    """One vehicle, reported once, after grouping its reads across frames."""

    plate: str
    confidence: float
    first_seen: float
    last_seen: float
    frames: int
    camera: str
    key: str
    format: str | None = None
    crop_jpeg: bytes | None = field(default=None, repr=False)
