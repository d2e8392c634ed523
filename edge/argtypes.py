"""argparse value types shared by the commands: one wording for one mistake."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _checked(text: str, parse: Callable[[str], float], ok: Callable[[float], bool], expected: str):
    """`parse(text)` if it parses and passes `ok`, else a usage error naming what was expected."""
    try:
        v = parse(text)
    except ValueError:
        v = None
    if v is None or not ok(v):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    return _checked(text, int, lambda v: 1 <= v <= 100_000_000, "a positive integer")


def fraction(text: str) -> float:
    return _checked(text, float, lambda v: 0.0 <= v <= 1.0, "a number from 0 to 1")


def fraction_below_one(text: str) -> float:
    """A share or momentum that must stay below 1 (at 1 an average never moves)."""
    return _checked(text, float, lambda v: 0.0 <= v < 1.0, "a number from 0 to below 1")


def positive_float(text: str) -> float:
    return _checked(text, float, lambda v: v > 0.0 and math.isfinite(v), "a positive number")


def nonzero_float(text: str) -> float:
    return _checked(text, float, lambda v: v != 0.0 and math.isfinite(v), "a non-zero number")
