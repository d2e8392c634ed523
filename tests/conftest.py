"""Shared fixtures: a crisp rendered plate, the kind Tesseract must read."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest


def _render(text: str, height: int = 60, light_text: bool = False) -> np.ndarray:
    """Gray plate crop: dark text on a light plate (or the reverse), small margin."""
    font, thickness = cv2.FONT_HERSHEY_DUPLEX, max(1, height // 20)
    scale = cv2.getFontScaleFromHeight(font, height, thickness)
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    pad = height // 3
    img = np.full((h + base + 2 * pad, w + 2 * pad), 235, np.uint8)
    cv2.putText(img, text, (pad, pad + h), font, scale, 20, thickness, cv2.LINE_AA)
    return 255 - img if light_text else img


@pytest.fixture
def render_plate() -> Callable[..., np.ndarray]:
    return _render


@pytest.fixture
def labelled_crop_folder(tmp_path) -> tuple:
    """A folder of 40 rendered plate crops with labels.csv, as ../shared/train/br-crops
    is laid out, and how many of them training holds out (at least two)."""
    from training.ocr_data import is_held_out

    names = [f"p{i}.png" for i in range(40)]
    for i, name in enumerate(names):
        cv2.imwrite(str(tmp_path / name), _render(f"AB{i:02d}CD"))
    (tmp_path / "labels.csv").write_text("file,text\n" + "".join(f"p{i}.png,AB{i:02d}CD\n" for i in range(40)))
    held = sum(map(is_held_out, names))
    assert held >= 2  # the fixture has some held-out crops to read
    return tmp_path, held
