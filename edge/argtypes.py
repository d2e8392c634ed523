"""argparse value types shared by the commands: one wording for one mistake."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if not 1 <= v <= 100_000_000:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = 0.0
    if not (v > 0.0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def nonzero_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = 0.0
    if v == 0.0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a non-zero number, got {text!r}")
    return v
