"""Fonts for the plate renderer, taken only from Debian packages.

A missing font is an error that names the package to install, because a
silently substituted font would quietly change what the model learns.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

# family -> (Debian package, candidate files)
FONTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "din": ("fonts-opendin", ("/usr/share/fonts/truetype/opendin/OSP-DIN.ttf",)),
    "gothic_b": ("fonts-roadgeek", ("/usr/share/fonts/truetype/roadgeek/RG2014B.ttf",)),
    "gothic_c": ("fonts-roadgeek", ("/usr/share/fonts/truetype/roadgeek/RG2014C.ttf",)),
    "gothic_d": ("fonts-roadgeek", ("/usr/share/fonts/truetype/roadgeek/RG2014D.ttf",)),
    "gothic_e": ("fonts-roadgeek", ("/usr/share/fonts/truetype/roadgeek/RG2014E.ttf",)),
    "gothic_em": ("fonts-roadgeek", ("/usr/share/fonts/truetype/roadgeek/RG2014EM.ttf",)),
    "sans_cond_bold": ("fonts-dejavu-extra", ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",)),
    "sans_cond": ("fonts-dejavu-extra", ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",)),
    "sans_bold": ("fonts-dejavu-core", ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",)),
    "mono_bold": ("fonts-dejavu-core", ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",)),
    "serif": ("fonts-dejavu-extra", ("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",)),
    "serif_italic": ("fonts-dejavu-extra", ("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf",)),
    "narrow_bold": ("fonts-liberation", (
        "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSansNarrow-Bold.ttf")),
    "narrow": ("fonts-liberation", (
        "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Regular.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSansNarrow-Regular.ttf")),
    "lib_sans_bold": ("fonts-liberation", (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf")),
    "lib_mono_bold": ("fonts-liberation", (
        "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationMono-Bold.ttf")),
    "lib_serif_bold": ("fonts-liberation", (
        "/usr/share/fonts/truetype/liberation/LiberationSerif-Bold.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf")),
    "lib_serif_italic": ("fonts-liberation", (
        "/usr/share/fonts/truetype/liberation/LiberationSerif-Italic.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSerif-Italic.ttf")),
    # More US serial faces (plate_render.US_EXTRA_FACES, train_ocr --us-extra-faces): real
    # US plates use many more type designs than Highway Gothic and DIN
    "nimbus_narrow_bold": ("fonts-urw-base35", ("/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf",)),
    "mono_slab_bold": ("fonts-urw-base35", ("/usr/share/fonts/opentype/urw-base35/NimbusMonoPS-Bold.otf",)),
    "schoolbook_bold": ("fonts-urw-base35", ("/usr/share/fonts/opentype/urw-base35/C059-Bold.otf",)),
    "geometric_demi": ("fonts-urw-base35", ("/usr/share/fonts/opentype/urw-base35/URWGothic-Demi.otf",)),
    "tall_cond_bold": ("fonts-bebas-neue", ("/usr/share/fonts/opentype/bebas-neue/BebasNeue-Bold.otf",)),
    "roboto_cond_bold": ("fonts-roboto-unhinted", (
        "/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Bold.ttf",)),
}

DEBIAN_PACKAGES = sorted({pkg for pkg, _ in FONTS.values()})


class MissingFontError(RuntimeError):
    """A font the renderer needs is not installed."""


def font_path(family: str) -> str:
    pkg, candidates = FONTS[family]
    for c in candidates:
        if Path(c).is_file():
            return c
    raise MissingFontError(
        f"font '{family}' not found ({candidates[0]}): install it with "
        f"'apt-get install {pkg}'")


@functools.lru_cache(maxsize=None)
def load_font(family: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(family), size)


def check_fonts() -> None:
    """Raise MissingFontError for the first missing family (fail fast)."""
    for family in FONTS:
        font_path(family)
