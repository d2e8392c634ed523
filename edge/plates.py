"""Plate formats per country, text normalisation and look-alike characters.

Readers use the formats to fix the classic OCR confusions (O/0, B/8, ...):
a plate position that can only hold a digit cannot hold an 'O'.

A pattern is a string over character classes, spaces ignored:
  L = letter, D = digit, A = either (upper case: required);
  l, d, a = an optional character of that class (for variable-length plates).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
ALNUM = DIGITS + LETTERS

CLASS_CHARS: Mapping[str, str] = MappingProxyType(
    {"L": LETTERS, "D": DIGITS, "A": ALNUM})

# Look-alikes, one direction each: what a misread letter most likely is when
# the position must be a digit, and the other way round.
TO_DIGIT: Mapping[str, str] = MappingProxyType({
    "O": "0", "D": "0", "Q": "0", "U": "0", "I": "1", "L": "1", "J": "1",
    "Z": "2", "A": "4", "S": "5", "G": "6", "T": "7", "B": "8",
})
TO_LETTER: Mapping[str, str] = MappingProxyType({
    "0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "7": "T",
    "8": "B",
})

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_PATTERN = re.compile(r"^[LDAlda]+$")


def normalise(text: str) -> str:
    """Upper-case and keep A-Z0-9 only: how plates are compared and stored."""
    return _NOT_ALNUM.sub("", text.upper())


def _expand(pattern: str, max_len: int | None) -> tuple[str, ...]:
    """All fixed templates (over L/D/A) a pattern with optional slots allows."""
    optional = [i for i, c in enumerate(pattern) if c.islower()]
    out: set[str] = set()
    for keep in itertools.product((True, False), repeat=len(optional)):
        drop = {i for i, k in zip(optional, keep) if not k}
        t = "".join(c.upper() for i, c in enumerate(pattern) if i not in drop)
        if max_len is None or len(t) <= max_len:
            out.add(t)
    return tuple(sorted(out, key=lambda t: (len(t), t)))


@dataclass(frozen=True)
class PlateFormat:
    """One plate layout; `templates` are its fixed-length expansions."""

    name: str
    country: str
    pattern: str
    max_len: int | None = None
    # O and 0 are one glyph on these plates and the letter O is not issued on
    # standard ones, so an O is stored as 0 (what registries look up).
    zero_for_o: bool = False
    templates: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = self.pattern.replace(" ", "")
        if not _PATTERN.match(pattern):
            raise ValueError(f"plate format {self.name!r}: bad pattern {self.pattern!r} "
                             "(use L, D, A; lower case for optional)")
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "templates", _expand(pattern, self.max_len))

    @property
    def generic(self) -> bool:
        """Any character anywhere (e.g. US): accepts, never corrects."""
        return set(self.pattern.upper()) == {"A"}

    @property
    def lengths(self) -> frozenset[int]:
        return frozenset(len(t) for t in self.templates)

    def templates_of_length(self, n: int) -> tuple[str, ...]:
        return tuple(t for t in self.templates if len(t) == n)

    def canonical(self, text: str) -> str:
        """The text as this format's registry writes it (O -> 0 where one glyph)."""
        return text.replace("O", "0") if self.zero_for_o else text

    def matches(self, text: str) -> bool:
        """True when normalised `text` fits one of the templates exactly."""
        return any(fits(text, t) for t in self.templates_of_length(len(text)))


def fits(text: str, template: str) -> bool:
    """True when each character of text is in its template position's class."""
    return len(text) == len(template) and all(
        ch in CLASS_CHARS[cls] for ch, cls in zip(text, template))


DEFAULT_FORMATS: tuple[PlateFormat, ...] = (
    PlateFormat("CZ", "CZ", "DLA DDDD"),
    PlateFormat("SK", "SK", "LL DDD LL"),
    PlateFormat("UK", "GB", "LL DD LLL"),
    PlateFormat("ES", "ES", "DDDD LLL"),
    PlateFormat("BR", "BR", "LLL DDDD"),
    PlateFormat("BR_MERCOSUR", "BR", "LLL D L DD"),
    # Kreis (1-3 letters), 1-2 letters, 1-4 digits; at most 8 characters.
    PlateFormat("DE", "DE", "Lll Ll Dddd", max_len=8),
    # Generic: anything 5-7 characters long; accepts, never forces a fix.
    # Most states issue no letter O and draw O and 0 alike: O is stored as 0.
    PlateFormat("US", "US", "AAAAAaa", zero_for_o=True),
)

FORMATS: Mapping[str, PlateFormat] = MappingProxyType(
    {f.name: f for f in DEFAULT_FORMATS})


def get_formats(names: Iterable[str]) -> tuple[PlateFormat, ...]:
    """Look formats up by name (case-insensitive); 'all' means every default."""
    out: list[PlateFormat] = []
    for raw in names:
        name = raw.strip().upper()
        if not name:
            continue
        if name == "ALL":
            out.extend(f for f in DEFAULT_FORMATS if f not in out)
            continue
        if name not in FORMATS:
            raise ValueError(f"unknown plate format {raw!r} (known: {', '.join(FORMATS)})")
        if FORMATS[name] not in out:
            out.append(FORMATS[name])
    return tuple(out)


def match_format(text: str, formats: Iterable[PlateFormat]) -> PlateFormat | None:
    """First format that text fits, in the given order, generic ones last."""
    formats = tuple(formats)
    return next((f for f in formats if not f.generic and f.matches(text)),
                next((f for f in formats if f.generic and f.matches(text)), None))


def coerce(text: str, formats: Iterable[PlateFormat]) -> tuple[str, PlateFormat] | None:
    """Fit text to a format (see `_fit`), written the format's canonical way."""
    fitted = _fit(text, formats)
    return None if fitted is None else (fitted[1].canonical(fitted[0]), fitted[1])


def _fit(text: str, formats: Iterable[PlateFormat]) -> tuple[str, PlateFormat] | None:
    """Fit text to a format by swapping look-alikes; None when nothing fits.

    For readers without per-character probabilities (Tesseract). Text that
    fits a specific format is kept; otherwise the first specific format
    reachable with the fewest swaps wins; a generic format only accepts
    text as it is, after the specific ones had their chance.
    """
    formats = tuple(formats)
    specific = tuple(f for f in formats if not f.generic)
    fmt = match_format(text, specific)
    if fmt is not None:
        return text, fmt
    best: tuple[int, str, PlateFormat] | None = None
    for fmt in specific:
        for template in fmt.templates_of_length(len(text)):
            fixed, swaps = _swap_to(text, template)
            if fixed is not None and (best is None or swaps < best[0]):
                best = (swaps, fixed, fmt)
    if best is not None:
        return best[1], best[2]
    fmt = match_format(text, formats)
    return None if fmt is None else (text, fmt)


def _swap_to(text: str, template: str) -> tuple[str | None, int]:
    out, swaps = [], 0
    for ch, cls in zip(text, template):
        if ch in CLASS_CHARS[cls]:
            out.append(ch)
            continue
        swap = (TO_DIGIT if cls == "D" else TO_LETTER).get(ch)
        if swap is None:
            return None, 0
        out.append(swap)
        swaps += 1
    return "".join(out), swaps
