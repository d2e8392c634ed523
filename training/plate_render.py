"""Synthetic number plates with their text: the OCR's (and detector's) teacher.

`render_plate(rng)` draws a clean plate of one of our users' layouts (CZ, SK,
DE, UK, ES, BR, BR Mercosur, US-style, plus generic ones) and returns the
image, the label text (A-Z0-9 only) and where the characters are.
`training.degrade` then turns it into what a detector crop really looks like.

Everything is drawn from a numpy Generator, so a seed gives the same plate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from training.fonts import load_font

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
ALNUM = DIGITS + LETTERS

US_STATES = [
    "ALABAMA", "Alaska", "ARIZONA", "Arkansas", "California", "COLORADO", "Connecticut",
    "DELAWARE", "Florida", "GEORGIA", "Hawaii", "IDAHO", "Illinois", "INDIANA", "Iowa",
    "KANSAS", "Kentucky", "Louisiana", "MAINE", "Maryland", "MASSACHUSETTS", "Michigan",
    "MINNESOTA", "Mississippi", "MISSOURI", "Montana", "NEBRASKA", "Nevada",
    "NEW HAMPSHIRE", "New Jersey", "NEW MEXICO", "New York", "NORTH CAROLINA",
    "North Dakota", "OHIO", "Oklahoma", "OREGON", "Pennsylvania", "RHODE ISLAND",
    "South Carolina", "SOUTH DAKOTA", "Tennessee", "TEXAS", "Utah", "VERMONT",
    "Virginia", "WASHINGTON", "West Virginia", "WISCONSIN", "Wyoming", "Washington, D.C.",
]
US_SLOGANS = [
    "The First State", "Garden State", "Sunshine State", "Land of Lincoln", "Empire State",
    "Green Mountain State", "LIVE FREE OR DIE", "Grand Canyon State", "First in Flight",
    "Ocean State", "Great Lakes", "America's Dairyland", "Famous Potatoes", "Wild Wonderful",
    "The Silver State", "Land of Enchantment", "Explore Minnesota", "The Natural State",
    "Lone Star State", "Sportsman's Paradise", "Peach State", "keystone state",
    "In God We Trust", "visitPA.com", "Heart of Dixie", "SESQUICENTENNIAL - 150 YEARS",
    "TAXATION WITHOUT REPRESENTATION", "Show Me State", "Centennial 1912-2012",
]
US_PATTERNS = [
    "DLLLDDD", "LLL DDDD", "LLL-DDDD", "DDD LLL", "LLL DDD", "LL DDDDD", "DDDDDD",
    "LLDDDD", "DLLDDD", "LLL DDDL", "DDD-LLL", "LLLDDD", "DLDDDDD", "DDD.LLL", "LL-DDDD",
    "DDDD", "AAAAA", "AAAAAA", "AAAAAAA", "LL DDD", "DDDDDDD", "LLL|DDD", "DD|DDDD",
    "LLL.DDDD", "DDD DDD", "D|LLLDDD", "LLLL DD", "DLL DDDD", "LL DDDDD",
]
# Vanity plates: the owner's word (optionally with a digit) instead of a serial.
US_VANITY = [
    "GOBLUE", "MYTOY", "LUVBUG", "ROCKY", "BOSSMAN", "MAMA", "NANA", "SURFER", "HOCKEY",
    "GOLFER", "JEEPER", "ZOOM", "BEACH", "FISHN", "DREAMR", "KATIE", "JAKE", "MUSTANG",
    "BUCKEYE", "TXAGGIE", "HOOSIER", "GRANDPA", "NURSE", "CEO", "FASTCAR", "LUCKY", "TACO",
    "MYJEEP", "HAWKEYE", "PAPA", "QUEEN", "OUTATIME", "GATOR", "BAMA", "SOONER", "VOLS",
]
# Clutter real US plates have and the reader must learn to ignore; tests may raise these.
CZ_SK_ONE_ROUND_GLYPH_P = 0.4  # share of CZ/SK plates drawing O and 0 with one shape
# Plate typefaces draw W and M about as wide as the other letters (Germany's FE-Schrift,
# which Slovak, Czech and Mercosur plates resemble, and most US serial dies); our fonts
# draw them wide, and a reader that never saw a narrow W reads one as H, N or M.
NARROW_WM = "WM"
NARROW_WM_P = {"EU": 0.5, "DE": 0.8, "US": 0.35}  # shares of plates drawing W and M narrow (retrain 24)
# Multiplies NARROW_WM_P: 0 (retrain 22's renderer, no draw at all) unless training sets it
# (python -m training.train_ocr --narrow-wm F).
NARROW_WM_SCALE = 0.0
# Most US states leave I and O out of serials (they read as 1 and 0), so on a real US
# plate a bar is nearly always 1. Q is issued by many states and stays in.
US_SERIAL_SKIP = "IO"
US_SERIAL_SKIP_P = 0.85  # share of US serial plates without those letters (vanity plates keep them)
# US plates print O and 0 with one glyph in most states, and the plate is keyed with 0
# (the OpenALPR US labels write 0 even in vanity words: 314 zeros to 16 O's). So a US
# plate's round glyph is labelled 0 whatever it spells, and drawn with our fonts' O on
# some plates so that a wide, O-like zero reads 0 too.
US_ZERO_AS_O_SHAPE_P = 0.5  # share of US plates drawing 0 with the font's O
US_SERIF_I_P = 0.3  # share of US plates whose 'I' has serifs (Idaho, Delaware, ...)
US_SIDES_P = (0.5, 0.2, 0.3)  # side clutter on the left, the right, both
US_CLUTTER_P = {"vanity": 0.1, "separator": 0.35, "side": 0.6, "stickers": 0.5, "frame": 0.25}
# Stacked letters beside a US serial (Massachusetts' U/S, Maryland's M/S/C) are mostly printed
# in the serial's own ink and typeface, so only their size and place tell them from it.
US_SIDE_SERIAL_INK_P = 0.7  # share of side clutter drawn in the serial's colour and font
# Serial typefaces: Highway-Gothic-like and DIN-like faces (US_FACES), and optionally
# other designs too (slab, serif, geometric, tall condensed: US_EXTRA_FACES), since
# real plates use many and a net that saw only a few may misread letters in the others
US_FACES = ("gothic_c", "gothic_d", "gothic_e", "gothic_b", "din", "narrow_bold",
            "sans_cond_bold", "lib_mono_bold", "gothic_em")
US_EXTRA_FACES = ("nimbus_narrow_bold", "mono_slab_bold", "schoolbook_bold", "geometric_demi",
                  "tall_cond_bold", "roboto_cond_bold")
# Share of plates whose serial is embossed: raised characters lit from one side show a
# bright rim on the lit side and a dark one opposite, as on most US plates and older EU
# ones; flat paint otherwise. 0 (retrain 42's renderer, no draw at all) unless training
# sets it (python -m training.train_ocr --emboss P).
EMBOSS_P = 0.0
# Share of plates whose serial is drawn in another weight and condensed (_reweigh; its
# width times 0.65-1): 0 (retrain 42's renderer) unless training sets it
# (python -m training.train_ocr --glyph-vary P).
GLYPH_VARY_P = 0.0
# Share of plates whose serial is in one of US_EXTRA_FACES: 0 (retrain 11's renderer)
# unless training sets it (python -m training.train_ocr --us-extra-faces P, default 0.35).
US_EXTRA_FACE_P = 0.0
_STICKER_TEXT = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    "12", "05", "11", "04", "16", "24", "2016", "2019", "2000", "2023", "7", "6", "A 1234567",
    "B 0456213", "EXP", "TAGS",
]
# (sticker BGR colour, whether its text is light)
_STICKER_COLORS = [
    ((0, 220, 255), False), ((0, 140, 255), False), ((40, 40, 215), True), ((60, 190, 60), False),
    ((190, 110, 30), True), ((245, 245, 245), False), ((180, 120, 255), False), ((240, 200, 120), False),
    ((30, 30, 30), True),
]
_SIDE_STACK = ["TRK", "DV", "COM", "PARK", "FARM", "APP", "BUS", "HAM", "MC", "VET", "TAX", "AM", "PV"]
_SIDE_WORDS = ["COUNTY", "TRUCK", "DISABLED", "COMMERCIAL", "VETERAN", "TRAILER", "PASSENGER",
               "APPORTIONED", "FARM", "TAXI", "DEALER", "SENIOR"]
_DEALER_A = ["CITY", "VALLEY", "SUNSET", "PREMIER", "METRO", "LAKESIDE", "HILLTOP", "CAPITOL", "BAY",
             "PARKWAY", "EAGLE", "SUMMIT", "Smith", "Anderson"]
_DEALER_B = ["MOTORS", "TOYOTA", "FORD", "HONDA", "CHEVROLET", "AUTO SALES", "NISSAN", "DODGE",
             "AUTO GROUP", "Motors", "Subaru"]


@dataclass(frozen=True)
class Plate:
    """A clean rendered plate: BGR image, label and the text's bounding box."""

    image: np.ndarray
    text: str
    layout: str
    text_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the main characters


def _rand_text(pattern: str, rng: np.random.Generator, letters: str = LETTERS) -> list[str]:
    """Pattern chars: L letter, D digit, A either; ' ', '-', '.', '|' separators."""
    out = []
    alnum = DIGITS + letters
    for p in pattern:
        if p == "L":
            out.append(letters[rng.integers(len(letters))])
        elif p == "D":
            out.append(DIGITS[rng.integers(10)])
        elif p == "A":
            out.append(alnum[rng.integers(len(alnum))])
        else:
            out.append(p)
    return out


def _color(rng, lo=0, hi=255) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi + 1, 3))


def _jitter(c, rng, amount=20):
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)


# --------------------------------------------------------------------------- text line

def _text_line(tokens: list[str], family: str, rng: np.random.Generator,
               spacing: float, ref: int = 72, serif_i: bool = False,
               glyphs: dict[str, str] | None = None, narrow: dict[str, float] | None = None
               ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Ink mask (float32 0..1) of a line of characters and separators at height ~ref.

    Returns the mask cropped to the capital-letter height and the boxes of
    emblem separators ('|') that the caller paints in colour. serif_i draws
    'I' with bars top and bottom, as many US plate fonts do (a reader that
    never saw one reads it as T). glyphs maps a character to the one whose
    shape is drawn for it (the label keeps the character); narrow maps a drawn
    shape to the share of its width it keeps (see _narrow_wm).
    """
    glyphs = glyphs or {}
    narrow = narrow or {}
    font = load_font(family, ref)
    cap_top, cap_h = _caps(family, ref)
    pieces: list[tuple[str, str, int]] = []  # kind, char, width
    for t in tokens:
        if t == " ":
            pieces.append(("gap", t, int(cap_h * rng.uniform(0.25, 0.6))))
        elif t == "-":
            pieces.append(("dash", t, int(cap_h * rng.uniform(0.35, 0.55))))
        elif t == ".":
            pieces.append(("dot", t, int(cap_h * rng.uniform(0.25, 0.4))))
        elif t == "|":
            pieces.append(("emblem", t, int(cap_h * rng.uniform(0.45, 0.8))))
        elif t == "I" and serif_i:
            pieces.append(("serif_i", t, int(max(font.getlength(t), cap_h * 0.5) * spacing)))
        else:
            shape = glyphs.get(t, t)
            pieces.append(("char", t, int(font.getlength(shape) * narrow.get(shape, 1.0) * spacing)))
    total_w = sum(p[2] for p in pieces) + 4
    img = Image.new("L", (total_w, cap_h + 8), 0)
    draw = ImageDraw.Draw(img)
    line = np.zeros((cap_h + 8, total_w), np.uint8)  # glyphs, pasted from the cache
    x = 2
    emblems = []
    for kind, ch, w in pieces:
        if kind in ("char", "serif_i"):
            shape = glyphs.get(ch, ch)
            glyph, left, advance = _glyph(family, ref, shape, narrow.get(shape, 1.0))
            gx = int(round(x + (w - advance) / 2)) - left
            a, b = max(0, gx), min(total_w, gx + glyph.shape[1])
            if b > a:
                np.maximum(line[:, a:b], glyph[:, a - gx:b - gx], out=line[:, a:b])
        if kind == "serif_i":
            bar, half = max(2, int(cap_h * 0.11)), cap_h * 0.2
            cx = x + w / 2
            draw.rectangle([cx - half, 4, cx + half, 4 + bar], fill=255)
            draw.rectangle([cx - half, 4 + cap_h - bar, cx + half, 4 + cap_h], fill=255)
        elif kind == "dash":
            y = 4 + cap_h * rng.uniform(0.42, 0.5)
            draw.rectangle([x + w * 0.15, y, x + w * 0.85, y + cap_h * 0.09], fill=255)
        elif kind == "dot":
            r = cap_h * 0.07
            cx, cy = x + w / 2, 4 + cap_h * rng.choice([0.5, 0.75])
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        elif kind == "emblem":
            emblems.append((x, 4, x + w, 4 + cap_h))
        x += w
    mask = np.maximum(np.asarray(img), line).astype(np.float32) / 255.0
    return mask, emblems


@functools.lru_cache(maxsize=64)
def _caps(family: str, ref: int) -> tuple[int, int]:
    """Top and height of the capitals (what a plate line is cropped to) at size ref."""
    _, top, _, bottom = load_font(family, ref).getbbox("H0")
    return top, bottom - top


@functools.lru_cache(maxsize=4096)
def _glyph(family: str, ref: int, ch: str, keep: float = 1.0) -> tuple[np.ndarray, int, float]:
    """One character's ink (uint8, the text line's height), its left padding and advance width,
    squeezed to `keep` of its width.

    Drawing glyphs with PIL was half the renderer's time; a plate repeats a
    few dozen glyphs per font, so each is drawn once per process (callers
    round `keep` so that the cache stays small).
    """
    if keep != 1.0:  # squeezed, then thickened back to the font's stroke width
        glyph, pad, advance = _glyph(family, ref, ch)
        w = max(1, int(round(glyph.shape[1] * keep)))
        out = cv2.resize(glyph, (w, glyph.shape[0]), interpolation=cv2.INTER_AREA)
        grow = int(round(_stem(family, ref) * (1.0 - keep)))
        if grow > 0:
            out = cv2.dilate(out, np.ones((1, grow + 1), np.uint8))
        out.setflags(write=False)
        return out, int(round(pad * keep)), advance * keep
    font = load_font(family, ref)
    cap_top, cap_h = _caps(family, ref)
    pad = ref // 4  # room for overhangs (italics, wide serifs)
    advance = font.getlength(ch)
    img = Image.new("L", (int(np.ceil(advance)) + 2 * pad, cap_h + 8), 0)
    ImageDraw.Draw(img).text((pad, 4 - cap_top), ch, font=font, fill=255)
    glyph = np.asarray(img).copy()
    glyph.setflags(write=False)
    return glyph, pad, advance


@functools.lru_cache(maxsize=64)
def _stem(family: str, ref: int) -> float:
    """Width in pixels of the font's vertical strokes (H's stems, a quarter down)."""
    glyph, _, _ = _glyph(family, ref, "H")
    _, cap_h = _caps(family, ref)
    return float(np.count_nonzero(glyph[4 + cap_h // 4] > 127)) / 2


def _paint(canvas: np.ndarray, mask: np.ndarray, color) -> None:
    """Alpha-blend a colour through a float mask of the same size (in place)."""
    m = mask[..., None]
    canvas[:] = (canvas * (1 - m) + np.asarray(color, np.float32) * m)


def _place_line(canvas: np.ndarray, tokens, family, color, box, rng, spacing=1.0,
                align="center", emblem_style="shield", shadow=True, serif_i=False, glyphs=None,
                narrow=None, serial=False):
    """Render a token line scaled into box=(x0,y0,x1,y1) of the float canvas.
    A `serial` (the plate's registration) is drawn bolder or lighter and
    condensed on GLYPH_VARY_P of plates, and embossed on EMBOSS_P."""
    x0, y0, x1, y1 = box
    mask, emblems = _text_line(tokens, family, rng, spacing, serif_i=serif_i, glyphs=glyphs,
                               narrow=narrow)
    bh, bw = y1 - y0, x1 - x0
    squeeze = rng.uniform(0.85, 1.15)
    if serial and GLYPH_VARY_P > 0 and rng.random() < GLYPH_VARY_P:
        mask = _reweigh(mask, rng)
        squeeze *= rng.uniform(0.65, 1.0)
    mh, mw = mask.shape
    scale_h = bh / mh
    tw = min(bw, int(mw * scale_h * squeeze))
    th = bh
    if tw < 4 or th < 4:
        return (x0, y0, x1, y1)
    small = cv2.resize(mask, (tw, th), interpolation=cv2.INTER_AREA)
    ox = x0 + (bw - tw) // 2 if align == "center" else x0
    region = canvas[y0:y0 + th, ox:ox + tw]
    if shadow and rng.random() < 0.5:
        d = max(1, int(th * 0.03))
        sh = np.zeros_like(small)
        sh[d:, d:] = small[:-d, :-d]
        _paint(region, sh * 0.5, (0, 0, 0))
    _paint(region, small, color)
    if serial and EMBOSS_P > 0 and rng.random() < EMBOSS_P:
        _emboss(region, small, rng)
    sx, sy = tw / mw, th / mh
    for ex0, ey0, ex1, ey1 in emblems:
        a, b = int(ox + ex0 * sx), int(y0 + ey0 * sy)
        c, d = int(ox + ex1 * sx), int(y0 + ey1 * sy)
        _draw_emblem(canvas, (a, b, c, d), rng, emblem_style)
    return (ox, y0, ox + tw, y0 + th)


def _reweigh(mask: np.ndarray, rng) -> np.ndarray:
    """The line's strokes 2-4 px (at the ~72 px drawing size, about a sixth to a third
    of a stem) bolder or lighter: plate dies come in more weights than our fonts."""
    k = int(rng.integers(1, 3))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    return cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)


def _emboss(region: np.ndarray, mask: np.ndarray, rng) -> None:
    """Light raised characters (in place): the mask's slope along the light's direction,
    bright where the edge faces the light and dark where it faces away. The light
    comes mostly from above; the rim is 2-6 % of the text's height."""
    th = mask.shape[0]
    r = max(0.7, th * rng.uniform(0.02, 0.06))
    soft = cv2.GaussianBlur(mask, (0, 0), r)
    ang = rng.normal(-np.pi / 2, 0.6)  # image y points down: -pi/2 is light from above
    dx, dy = np.cos(ang) * r, np.sin(ang) * r
    moved = cv2.warpAffine(soft, np.float32([[1, 0, dx], [0, 1, dy]]), (soft.shape[1], soft.shape[0]),
                           borderMode=cv2.BORDER_REPLICATE)
    rim = (moved - soft) * rng.uniform(150, 400)
    region += rim[..., None]
    np.clip(region, 0, 255, out=region)


def _draw_emblem(canvas, box, rng, style):
    """Paint the picture of a '|' separator; style may be a callable(canvas, box, rng)."""
    if callable(style):
        style(canvas, box, rng)
        return
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) // 2
    if style == "shield":  # SK coat of arms-like: red shield, white cross, blue hills
        top, bot = y0 + int(h * 0.05), y0 + int(h * 0.5)
        pts = np.array([[x0 + w * 0.15, top], [x1 - w * 0.15, top], [x1 - w * 0.15, bot - h * 0.1],
                        [cx, bot + h * 0.05], [x0 + w * 0.15, bot - h * 0.1]], np.int32)
        cv2.fillPoly(canvas, [pts], (40, 40, 200))
        cv2.line(canvas, (cx, top + 2), (cx, bot - 2), (255, 255, 255), max(1, w // 10))
        cv2.line(canvas, (cx - w // 5, top + h // 8), (cx + w // 5, top + h // 8), (255, 255, 255), max(1, w // 12))
        if rng.random() < 0.5:  # a small second sticker below
            cv2.circle(canvas, (cx, y0 + int(h * 0.75)), max(2, w // 4), _color(rng, 40, 220), -1)
    elif style == "stickers":  # DE: two round stickers stacked
        r = max(2, int(min(w, h) * 0.35))
        cv2.circle(canvas, (cx, y0 + h // 4 + 1), r, _color(rng, 60, 230), -1)
        cv2.circle(canvas, (cx, y0 + 3 * h // 4 - 1), r, _color(rng, 60, 230), -1)
    else:  # a random state emblem / pictogram
        kind = rng.integers(3)
        col = _color(rng, 20, 230)
        if kind == 0:
            cv2.circle(canvas, (cx, (y0 + y1) // 2), max(2, int(min(w, h) * 0.45)), col, -1)
        elif kind == 1:
            pts = np.array([[cx, y0], [x1, (y0 + y1) // 2], [cx, y1], [x0, (y0 + y1) // 2]], np.int32)
            cv2.fillPoly(canvas, [pts], col)
        else:
            cv2.rectangle(canvas, (x0 + 1, y0 + h // 4), (x1 - 1, y1 - h // 4), col, -1)


# --------------------------------------------------------------------------- layouts

def _base(w, h, color, rng, gradient=0.15):
    """Plate background with a gentle gradient (float32 BGR)."""
    c = np.asarray(color, np.float32)
    g = np.linspace(1 - gradient * rng.random(), 1 + gradient * rng.random(), h, dtype=np.float32)
    canvas = np.ones((h, w, 3), np.float32) * c
    canvas *= g[:, None, None]
    return np.clip(canvas, 0, 255)


def _border(canvas, rng, color=(20, 20, 20), p=0.7):
    if rng.random() < p:
        t = int(rng.integers(1, 4))
        h, w = canvas.shape[:2]
        cv2.rectangle(canvas, (t // 2, t // 2), (w - 1 - t // 2, h - 1 - t // 2), color, t)


def _bolts(canvas, rng, p=0.5):
    if rng.random() < p:
        h, w = canvas.shape[:2]
        r = max(2, h // 30)
        ys = [int(h * 0.12), int(h * 0.88)] if rng.random() < 0.5 else [int(h * 0.12)]
        for y in ys:
            for x in (int(w * 0.22), int(w * 0.78)):
                cv2.circle(canvas, (x, y), r, _color(rng, 60, 200), -1)
                cv2.circle(canvas, (x, y), r, (40, 40, 40), 1)


def _eu_band(canvas, rng, code):
    h, w = canvas.shape[:2]
    bw = int(w * rng.uniform(0.07, 0.09))
    canvas[:, :bw] = np.asarray(_jitter((160, 60, 10), rng, 25), np.float32)
    cx, cy, r = bw // 2, int(h * 0.32), int(bw * 0.3)
    for k in range(12):
        a = 2 * np.pi * k / 12
        cv2.circle(canvas, (int(cx + r * np.cos(a)), int(cy + r * np.sin(a))), max(1, bw // 18), (0, 210, 240), -1)
    if code:
        font = "din" if rng.random() < 0.5 else "sans_bold"
        _place_line(canvas, list(code), font, (250, 250, 250),
                    (2, int(h * 0.58), bw - 2, int(h * 0.9)), rng, shadow=False)
    return bw


def _narrow_wm(rng, family: str, share: float) -> dict[str, float] | None:
    """On `share` of plates, W and M as wide as H give or take 15 % (never wider than drawn).

    No draw at share 0, so that the crops of a renderer without this come out as they were.
    """
    if share <= 0 or rng.random() >= share:
        return None
    font = load_font(family, 72)
    h = font.getlength("H")
    return {c: min(1.0, round(float(rng.uniform(0.85, 1.15)) * h / font.getlength(c), 2)) for c in NARROW_WM}


def _eu_plate(rng, tokens, code, family, bg=(235, 235, 235), fg=(25, 25, 25),
              emblem_style="shield", band=True, w=312, h=68, layout="EU", glyphs=None):
    narrow = _narrow_wm(rng, family, NARROW_WM_P["DE" if layout == "DE" else "EU"] * NARROW_WM_SCALE)
    canvas = _base(w, h, _jitter(bg, rng, 18), rng)
    x0 = _eu_band(canvas, rng, code) + 4 if band else 6
    _border(canvas, rng)
    margin_y = int(h * rng.uniform(0.1, 0.17))
    box = (x0 + int(w * 0.01), margin_y, w - int(w * 0.03), h - margin_y)
    tb = _place_line(canvas, tokens, family, _jitter(fg, rng, 15), box, rng, serial=True,
                     spacing=rng.uniform(0.95, 1.2), emblem_style=emblem_style, glyphs=glyphs,
                     narrow=narrow)
    return canvas, tb


def _round_glyphs(rng, share: float) -> dict[str, str] | None:
    """On some plates O and 0 share one shape, so the reader must use the position.

    Czech and Slovak plate fonts draw O and 0 nearly alike; a reader
    that only ever saw our fonts' distinct shapes swaps them on real plates.
    """
    if rng.random() >= share:
        return None
    g = "0" if rng.random() < 0.5 else "O"
    return {"0": g, "O": g}


def plate_cz(rng):
    tokens = _rand_text("DLA DDDD", rng)
    fam = rng.choice(["din", "narrow_bold", "sans_cond_bold", "gothic_c"])
    c, tb = _eu_plate(rng, tokens, "CZ", fam, layout="CZ", glyphs=_round_glyphs(rng, CZ_SK_ONE_ROUND_GLYPH_P))
    return c, tokens, tb


def plate_sk(rng):
    tokens = _rand_text("LL|DDDLL" if rng.random() < 0.8 else "LL-DDDLL", rng)
    fam = rng.choice(["din", "narrow_bold", "sans_cond_bold", "gothic_c"])
    c, tb = _eu_plate(rng, tokens, "SK", fam, layout="SK", glyphs=_round_glyphs(rng, CZ_SK_ONE_ROUND_GLYPH_P))
    return c, tokens, tb


def plate_de(rng):
    n1, n2, n3 = rng.integers(1, 4), rng.integers(1, 3), rng.integers(1, 5)
    sep = "|" if rng.random() < 0.7 else "-"
    tokens = _rand_text("L" * n1 + sep + "L" * n2 + " " + "D" * n3, rng)
    c, tb = _eu_plate(rng, tokens, "D", "din", emblem_style="stickers", layout="DE")
    return c, tokens, tb


def plate_uk(rng):
    tokens = _rand_text("LLDD LLL", rng)
    bg = (240, 240, 240) if rng.random() < 0.5 else (20, 200, 245)
    fam = rng.choice(["narrow_bold", "din", "sans_cond_bold"])
    c, tb = _eu_plate(rng, tokens, "GB" if rng.random() < 0.5 else "UK", fam, bg=bg,
                      fg=(15, 15, 15), band=rng.random() < 0.6, layout="UK")
    return c, tokens, tb


def plate_es(rng):
    tokens = _rand_text("DDDD LLL", rng)
    fam = rng.choice(["din", "narrow_bold", "sans_cond_bold"])
    c, tb = _eu_plate(rng, tokens, "E", fam, layout="ES")
    return c, tokens, tb


def plate_eu_generic(rng):
    n = int(rng.integers(5, 9))
    pat = "".join(rng.choice(list("LLDDA"), n))
    if rng.random() < 0.6:
        k = int(rng.integers(1, n))
        pat = pat[:k] + rng.choice([" ", "-", "|", "."]) + pat[k:]
    tokens = _rand_text(pat, rng)
    code = rng.choice(["D", "F", "I", "PL", "A", "NL", "B", "H", "HR", "SLO", "RO", ""])
    dark = rng.random() < 0.15
    bg = (30, 30, 30) if dark else rng.choice([(235, 235, 235), (30, 200, 240)])
    fg = (230, 230, 230) if dark else (20, 20, 20)
    fam = rng.choice(["din", "narrow_bold", "sans_cond_bold", "gothic_c", "lib_sans_bold", "mono_bold"])
    c, tb = _eu_plate(rng, tokens, code, fam, bg=bg, fg=fg, band=not dark and rng.random() < 0.8,
                      emblem_style="shield" if rng.random() < 0.5 else "stickers")
    return c, tokens, tb


def plate_br(rng):
    w, h = 280, 90
    tokens = _rand_text("LLL-DDDD" if rng.random() < 0.8 else "LLL DDDD", rng)
    grey = int(rng.integers(150, 215))
    canvas = _base(w, h, _jitter((grey, grey, grey), rng, 10), rng)
    _border(canvas, rng, p=0.9)
    # city strip on top
    if rng.random() < 0.8:
        city = "".join(rng.choice(list(LETTERS), int(rng.integers(4, 10))))
        _place_line(canvas, list(f"{''.join(rng.choice(list(LETTERS), 2))}-{city}"), "sans_bold",
                    (30, 30, 30), (int(w * 0.2), 3, int(w * 0.8), int(h * 0.2)), rng, shadow=False)
    fam = rng.choice(["din", "sans_cond_bold", "narrow_bold", "gothic_d"])
    tb = _place_line(canvas, tokens, fam, _jitter((25, 25, 25), rng, 15),
                     (int(w * 0.05), int(h * 0.26), int(w * 0.95), int(h * 0.92)), rng,
                     spacing=rng.uniform(0.95, 1.15), serial=True)
    return canvas, tokens, tb


def plate_mercosur(rng):
    w, h = 280, 90
    tokens = _rand_text("LLLDLDD", rng)
    canvas = _base(w, h, _jitter((245, 245, 245), rng, 10), rng)
    band_h = int(h * 0.22)
    canvas[:band_h] = np.asarray(_jitter((150, 60, 10), rng, 20), np.float32)
    _place_line(canvas, list("BRASIL"), "sans_bold", (250, 250, 250),
                (int(w * 0.35), 2, int(w * 0.65), band_h - 2), rng, shadow=False)
    _border(canvas, rng, p=0.9)
    tb = _place_line(canvas, tokens, rng.choice(["din", "sans_cond_bold", "narrow_bold"]),
                     _jitter((20, 20, 20), rng, 15),
                     (int(w * 0.04), int(h * 0.3), int(w * 0.96), int(h * 0.92)), rng)
    return canvas, tokens, tb


def _texture(canvas, rng, backgrounds):
    """Faint scenery/graphics behind US plate text (many states print pictures)."""
    h, w = canvas.shape[:2]
    kind = rng.integers(4)
    if kind == 0 and backgrounds:
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        bh, bw = bg.shape[:2]
        if bh > h and bw > w:
            y, x = int(rng.integers(bh - h)), int(rng.integers(bw - w))
            patch = bg[y:y + h, x:x + w].astype(np.float32)
            tint = np.asarray(_color(rng, 100, 255), np.float32) / 255.0
            alpha = rng.uniform(0.1, 0.35)
            canvas[:] = canvas * (1 - alpha) + patch[..., None] * tint * alpha
    elif kind == 1:
        for _ in range(int(rng.integers(1, 4))):
            col = _jitter(tuple(int(v) for v in canvas[h // 2, w // 2]), rng, 70)
            cv2.ellipse(canvas, (int(rng.integers(w)), int(rng.integers(h))),
                        (int(rng.integers(10, w // 2)), int(rng.integers(5, h // 2))),
                        float(rng.uniform(0, 180)), 0, 360, col, -1)
    elif kind == 2:  # mountains / skyline band
        pts = [(0, h)]
        for x in np.linspace(0, w, int(rng.integers(4, 10))):
            pts.append((int(x), int(h * rng.uniform(0.4, 0.9))))
        pts.append((w, h))
        col = _jitter(tuple(int(v) for v in canvas[h // 2, w // 2]), rng, 60)
        cv2.fillPoly(canvas, [np.array(pts, np.int32)], col)


def _access_symbol(canvas, box, rng, color):
    """The wheelchair (International Symbol of Access) of US disabled plates, at text height.

    Real US crops with it were read with an extra first character (5, 6, G).
    """
    x0, y0, x1, y1 = box
    s = min(x1 - x0, y1 - y0)
    if s < 6:
        return
    ox, oy = x0 + (x1 - x0 - s) // 2, y0 + (y1 - y0 - s) // 2
    ink = color
    if rng.random() < 0.4:  # the symbol on a square panel, ink and panel swapped
        cv2.rectangle(canvas, (ox, oy), (ox + s, oy + s), color, -1)
        ink = _color(rng, 200, 255)
    t = max(1, int(s * rng.uniform(0.07, 0.11)))
    pt = lambda u, v: (int(ox + u * s), int(oy + v * s))  # noqa: E731
    cv2.circle(canvas, pt(0.48, 0.14), max(1, int(s * 0.09)), ink, -1)       # head
    cv2.line(canvas, pt(0.45, 0.27), pt(0.42, 0.58), ink, t)                 # back
    cv2.line(canvas, pt(0.44, 0.38), pt(0.66, 0.38), ink, t)                 # arm
    cv2.line(canvas, pt(0.42, 0.58), pt(0.70, 0.58), ink, t)                 # seat
    cv2.line(canvas, pt(0.70, 0.58), pt(0.82, 0.86), ink, t)                 # leg
    cv2.ellipse(canvas, pt(0.42, 0.66), (int(s * 0.27), int(s * 0.27)), 0,   # wheel, open at the top right
                int(rng.uniform(-40, -20)), int(rng.uniform(230, 260)), ink, t)


def _printed_picture(canvas, box, rng, color, backgrounds):
    """A printed picture (seal, animal, landmark, ribbon): a photo patch posterised to 2-3 inks.

    Real US plates print detailed pictures beside or between the characters
    (Virginia's seals, Wyoming's bronco, Maine's ribbon); the reader read their
    strokes as Q, 6, T. Drawn from the street photos so no two look alike.
    """
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if not backgrounds or bw < 4 or bh < 4:
        return
    src = backgrounds[int(rng.integers(len(backgrounds)))]
    k = rng.uniform(1.0, 5.0)  # how much of the photo: fine or coarse detail
    pw, ph = min(src.shape[1], int(bw * k)), min(src.shape[0], int(bh * k))
    px, py = int(rng.integers(src.shape[1] - pw + 1)), int(rng.integers(src.shape[0] - ph + 1))
    g = cv2.resize(src[py:py + ph, px:px + pw], (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)
    lo, hi = np.percentile(g, (5, 95))
    g = np.clip((g - lo) / max(hi - lo, 1.0), 0, 1)
    levels = int(rng.integers(2, 4))
    q = np.floor(g * levels * 0.999) / max(levels - 1, 1)  # 0 = ink, 1 = paper
    region = canvas[y0:y1, x0:x1]
    paper = region.copy() if rng.random() < 0.6 else np.broadcast_to(
        np.asarray(_color(rng, 120, 255), np.float32), region.shape)
    pic = paper * q[..., None] + np.asarray(color, np.float32) * (1 - q[..., None])
    shape = int(rng.integers(3))
    if shape == 0:  # round seal
        m = np.zeros((bh, bw), np.uint8)
        cv2.ellipse(m, (bw // 2, bh // 2), (max(1, bw // 2 - 1), max(1, bh // 2 - 1)), 0, 0, 360, 1, -1)
        m = m.astype(bool)
    elif shape == 1:  # a rectangular panel
        m = np.ones((bh, bw), bool)
    else:  # a silhouette: only the ink
        m = q < 0.5
    region[m] = pic[m]


def _us_graphic(canvas, box, rng, color, backgrounds=None):
    """A non-letter picture between character groups (state outline, heart, star, ...).

    Real plates print these in the gap; drawn here so the reader learns they are no character.
    """
    x0, y0, x1, y1 = box
    h = y1 - y0
    s = h * rng.uniform(0.5, 0.9)
    sw = min(x1 - x0, s) / 2
    sh = s / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + h * rng.uniform(-0.1, 0.1)
    col = color if rng.random() < 0.5 else _color(rng, 20, 230)
    kind = int(rng.integers(8))
    if kind == 6 and backgrounds:
        _printed_picture(canvas, box, rng, col, backgrounds)
    elif kind >= 6:
        _access_symbol(canvas, box, rng, col)
    elif kind == 0:  # state-silhouette-like blob
        n = int(rng.integers(6, 11))
        a = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.55, 1.0, n)
        pts = np.stack([cx + sw * r * np.cos(a), cy + sh * r * np.sin(a)], 1)
        cv2.fillPoly(canvas, [pts.astype(np.int32)], col)
    elif kind == 1:  # heart
        r = max(1, int(sw * 0.5))
        cv2.circle(canvas, (int(cx - sw * 0.5), int(cy - sh * 0.3)), r, col, -1)
        cv2.circle(canvas, (int(cx + sw * 0.5), int(cy - sh * 0.3)), r, col, -1)
        pts = np.array([[cx - sw, cy - sh * 0.2], [cx + sw, cy - sh * 0.2], [cx, cy + sh]], np.int32)
        cv2.fillPoly(canvas, [pts], col)
    elif kind == 2:  # five-pointed star
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([cx + sw * r * np.cos(a), cy + sh * r * np.sin(a)], 1)
        cv2.fillPoly(canvas, [pts.astype(np.int32)], col)
    elif kind == 3:  # disc (seal) with a dot
        r = max(2, int(min(sw, sh)))
        cv2.circle(canvas, (int(cx), int(cy)), r, col, -1)
        cv2.circle(canvas, (int(cx), int(cy)), max(1, r // 3), _color(rng, 0, 255), -1)
    elif kind == 4:  # flying bird
        t = max(1, int(s / 10))
        pts = np.array([[cx - sw, cy - sh * 0.1], [cx - sw * 0.45, cy - sh * 0.5], [cx, cy],
                        [cx + sw * 0.45, cy - sh * 0.5], [cx + sw, cy - sh * 0.1]], np.int32)
        cv2.polylines(canvas, [pts], False, col, t)
        cv2.ellipse(canvas, (int(cx), int(cy)), (max(1, int(sw * 0.25)), max(1, int(sh * 0.12))), 0, 0, 360, col, -1)
    else:  # palmetto-like tree: trunk and a fan of fronds
        t = max(1, int(s / 12))
        top = (int(cx), int(cy - sh * 0.4))
        cv2.line(canvas, top, (int(cx), int(cy + sh)), col, t)
        for a in np.linspace(-np.pi * 0.9, -np.pi * 0.1, int(rng.integers(4, 8))):
            cv2.line(canvas, top, (int(cx + sw * np.cos(a)), int(top[1] + sh * 0.6 * np.sin(a) + sh * 0.2)), col, t)


def _us_vanity(rng) -> list[str]:
    """A vanity registration: a word, sometimes with a digit before or after it."""
    word = US_VANITY[int(rng.integers(len(US_VANITY)))]
    if len(word) <= 6 and rng.random() < 0.4:
        d = DIGITS[int(rng.integers(10))]
        word = d + word if rng.random() < 0.3 else word + d
    return list(word)


def _split_for_graphic(tokens: list[str]) -> list[str] | None:
    """Tokens with a '|' picture between two character groups, or None if there is no split.

    The first separator becomes '|'; otherwise split where letters meet digits or in the middle.
    """
    for i, t in enumerate(tokens):
        if t in " -.|":
            return tokens[:i] + ["|"] + tokens[i + 1:]
    if len(tokens) < 4:
        return None
    k = next((i for i in range(2, len(tokens) - 1) if tokens[i].isdigit() != tokens[i - 1].isdigit()),
             len(tokens) // 2)
    return tokens[:k] + ["|"] + tokens[k:]


def _us_stickers(canvas, tb, rng):
    """1-2 registration stickers (month, year, serial) in corners above/below the main text."""
    h, w = canvas.shape[:2]
    ch = tb[3] - tb[1]
    corners = rng.permutation(4)[:1 + int(rng.random() < 0.5)]
    for corner in corners:
        top, left = corner < 2, corner % 2 == 0
        lo, hi = (int(h * 0.03), tb[1] - 2) if top else (tb[3] + 2, int(h * 0.97))
        room = hi - lo
        text = _STICKER_TEXT[int(rng.integers(len(_STICKER_TEXT)))]
        col, light_text = _STICKER_COLORS[int(rng.integers(len(_STICKER_COLORS)))]
        pad = int(rng.integers(1, 4))
        th = int(min(ch * rng.uniform(0.25, 0.5), room - 2 * pad))
        if th < 5:
            continue
        sh = th + 2 * pad
        sw = int(min(w * 0.35, th * rng.uniform(0.55, 0.8) * len(text) + 2 * pad + rng.integers(0, 6)))
        sw = max(sw, int(sh * rng.uniform(0.9, 1.4)))
        dx = int(w * rng.uniform(0.01, 0.06))
        x = dx if left else w - sw - dx
        y = lo + int(rng.integers(0, room - sh + 1))
        cv2.rectangle(canvas, (x, y), (x + sw, y + sh), _jitter(col, rng, 20), -1)
        if rng.random() < 0.75:
            tcol = (235, 235, 235) if light_text else _color(rng, 0, 60)
            fam = rng.choice(["sans_bold", "din", "narrow_bold", "sans_cond_bold"])
            _place_line(canvas, list(text), fam, tcol, (x + pad, y + pad, x + sw - pad, y + sh - pad), rng,
                        shadow=False)


def _side_stacked_words(canvas, tb, rng, region, fam, col, backgrounds=None):
    """2-3 tiny stacked words or letters."""
    rx0, rx1, _ = region
    ch = tb[3] - tb[1]
    n = int(rng.integers(2, 4))
    lh = int(ch * rng.uniform(0.2, min(0.42, 0.85 / n)))
    gap = max(1, lh // 4)
    y = (tb[1] + tb[3]) // 2 - (n * lh + (n - 1) * gap) // 2
    for _ in range(n):
        word = (_SIDE_STACK[int(rng.integers(len(_SIDE_STACK)))] if rng.random() < 0.5
                else LETTERS[int(rng.integers(26))])
        _place_line(canvas, list(word), fam, col, (rx0, y, rx1, y + lh), rng, shadow=False)
        y += lh + gap


def _side_vertical_word(canvas, tb, rng, region, fam, col, backgrounds=None):
    """One word written vertically."""
    rx0, rx1, _ = region
    rw, ch = rx1 - rx0, tb[3] - tb[1]
    word = _SIDE_WORDS[int(rng.integers(len(_SIDE_WORDS)))]
    mask, _ = _text_line(list(word), fam, rng, 1.0)
    mask = np.rot90(mask, 1 if rng.random() < 0.5 else -1)
    mh, mw = mask.shape
    scale = min(ch * rng.uniform(0.8, 1.1) / mh, min(ch * 0.4, rw) / mw)
    th, tw = int(mh * scale), int(mw * scale)
    if th < 4 or tw < 3:
        return
    small = cv2.resize(np.ascontiguousarray(mask), (tw, th), interpolation=cv2.INTER_AREA)
    x = rx0 + (rw - tw) // 2
    y = max(0, min(canvas.shape[0] - th, (tb[1] + tb[3]) // 2 - th // 2))
    _paint(canvas[y:y + th, x:x + tw], small, col)


def _side_logo(canvas, tb, rng, region, fam, col, backgrounds=None):
    """A small logo."""
    rx0, rx1, _ = region
    s = int(min(rx1 - rx0, (tb[3] - tb[1]) * rng.uniform(0.4, 0.7)))
    if s < 5:
        return
    x = rx0 + (rx1 - rx0 - s) // 2
    y = (tb[1] + tb[3]) // 2 - s // 2
    _us_graphic(canvas, (x, y, x + s, y + s), rng, col, backgrounds)


def _side_big_picture(canvas, tb, rng, region, fam, col, backgrounds=None):
    """A picture as tall as the characters (wheelchair symbol, seal, animal): the likeliest to pass for one."""
    rx0, rx1, side = region
    ch = tb[3] - tb[1]
    s = int(min(rx1 - rx0, ch * rng.uniform(0.75, 1.15)))
    if s < 6:
        return
    x = rx1 - s if side == "left" else rx0  # close to the text, as printed
    y = max(0, min(canvas.shape[0] - s, (tb[1] + tb[3]) // 2 - s // 2))
    if rng.random() < 0.4:
        _access_symbol(canvas, (x, y, x + s, y + s), rng, col)
    elif backgrounds:
        _printed_picture(canvas, (x, y, x + s, y + s), rng, col, backgrounds)
    else:
        _us_graphic(canvas, (x, y, x + s, y + s), rng, col)


def _side_upright_chars(canvas, tb, rng, region, fam, col, backgrounds=None):
    """2-3 upright characters stacked over the text's height (D/C, T/R/K, 4/H)."""
    rx0, rx1, side = region
    rw, ch = rx1 - rx0, tb[3] - tb[1]
    n = 2 if rng.random() < 0.7 else 3  # mostly pairs: R/T, U/S, S/N, 2/2
    gap = max(1, int(ch * 0.04))
    lh = (ch - (n - 1) * gap) // n
    lw = min(rw, int(lh * rng.uniform(0.7, 1.0)))
    if lh < 4 or lw < 3:
        return
    # mostly right against the text, as Massachusetts and Wyoming print them
    x = rx0 + (rw - lw) // 2 if rng.random() < 0.3 else (rx1 - lw if side == "left" else rx0)
    y = tb[1]
    for _ in range(n):
        c = ALNUM[int(rng.integers(len(ALNUM)))] if rng.random() < 0.3 else LETTERS[int(rng.integers(26))]
        _place_line(canvas, [c], fam, col, (x, y, x + lw, y + lh), rng, shadow=False)
        y += lh + gap


def _side_picture_panel(canvas, tb, rng, region, fam, col, backgrounds=None):
    """A specialty plate's picture panel: a graphic with a word or number on it."""
    rx0, rx1, _ = region
    rw, ch = rx1 - rx0, tb[3] - tb[1]
    s = int(min(rw, ch * rng.uniform(0.8, 1.4)))
    if s < 8:
        return
    x = rx0 + (rw - s) // 2
    y = max(0, min(canvas.shape[0] - s, (tb[1] + tb[3]) // 2 - s // 2))
    if rng.random() < 0.5:
        cv2.rectangle(canvas, (x, y), (x + s, y + s), _color(rng, 0, 255), -1)
    _us_graphic(canvas, (x, y, x + s, y + s), rng, _color(rng, 0, 255), backgrounds)
    if rng.random() < 0.7:
        word = (_SIDE_STACK[int(rng.integers(len(_SIDE_STACK)))] if rng.random() < 0.6
                else str(int(rng.integers(1, 100))))
        wh = int(s * rng.uniform(0.2, 0.4))
        wy = y + int(rng.integers(0, max(1, s - wh)))
        _place_line(canvas, list(word), fam, _color(rng, 0, 255), (x, wy, x + s, wy + wh), rng, shadow=False)


# one painter per kind of side clutter, drawn with equal chance per entry; the two
# kinds that real US crops' extra first characters came from most are listed twice
_SIDE_KINDS = (_side_stacked_words, _side_vertical_word, _side_logo, _side_upright_chars, _side_upright_chars,
               _side_picture_panel, _side_big_picture, _side_big_picture)


def _us_side(canvas, tb, rng, sides, color, backgrounds=None, ink=None, family=None):
    """Clutter at the plate ends, left of/right of the text (one of _SIDE_KINDS per side).
    Real labels leave all of it out; on real US crops it was read as an extra first character.
    `ink` and `family` are the serial's: most side clutter is printed with them."""
    w = canvas.shape[1]
    for side in sides:
        rx0, rx1 = (int(w * 0.03), tb[0] - 3) if side == "left" else (tb[2] + 3, int(w * 0.97))
        if rx1 - rx0 < 6:
            continue
        same = ink is not None and rng.random() < US_SIDE_SERIAL_INK_P
        col = ink if same else color if rng.random() < 0.6 else _color(rng, 0, 200)
        fam = rng.choice(["sans_bold", "din", "narrow_bold", "sans_cond_bold", "serif"])
        if same and family is not None:
            fam = family
        _SIDE_KINDS[int(rng.integers(len(_SIDE_KINDS)))](canvas, tb, rng, (rx0, rx1, side), fam, col, backgrounds)


def _us_frame(canvas, tb, rng):
    """A dealer licence-plate frame: border band, widest at the bottom, with the dealer's name.

    It may cover the state name and slogan but stops short of the main text box.
    """
    h, w = canvas.shape[:2]
    t_top = max(0, min(tb[1] - 2, int(h * rng.uniform(0.03, 0.12))))
    t_bot = max(0, min(h - tb[3] - 2, int(h * rng.uniform(0.1, 0.22))))
    t_side = max(0, min(tb[0] - 2, w - tb[2] - 2, int(w * rng.uniform(0.015, 0.05))))
    m = np.zeros((h, w), bool)
    m[:t_top] = m[h - t_bot:] = True
    m[:, :t_side] = m[:, w - t_side:] = True
    chrome = rng.random() < 0.4
    if chrome:
        g = int(rng.integers(150, 215))
        shade = np.linspace(1.2, 0.75, h, dtype=np.float32)[:, None, None]
        frame = np.clip(np.asarray(_jitter((g, g, g), rng, 10), np.float32) * shade, 0, 255)
        frame = np.broadcast_to(frame, canvas.shape)
        tcol = _color(rng, 0, 60)
    else:
        frame = np.broadcast_to(np.asarray(_color(rng, 0, 45), np.float32), canvas.shape)
        tcol = (230, 230, 230) if rng.random() < 0.6 else (40, 170, 210)  # white or gold print
    canvas[m] = frame[m]
    for band, y0, y1 in (("bot", h - t_bot, h), ("top", 0, t_top)):
        if y1 - y0 < 8 or (band == "top" and rng.random() < 0.5):
            continue
        a = _DEALER_A[int(rng.integers(len(_DEALER_A)))]
        b = _DEALER_B[int(rng.integers(len(_DEALER_B)))]
        r = rng.random()
        text = f"{a} {b}" if r < 0.6 else f"www.{a.lower()}{b.split()[0].lower()}.com" if r < 0.85 else "555-0123"
        th = int((y1 - y0) * rng.uniform(0.5, 0.75))
        ty = y0 + (y1 - y0 - th) // 2
        fam = rng.choice(["sans_bold", "serif", "lib_serif_bold", "narrow_bold", "serif_italic"])
        _place_line(canvas, list(text), fam, tcol, (int(w * 0.12), ty, int(w * 0.88), ty + th), rng, shadow=False)


def plate_us(rng, backgrounds=None):
    w, h = 240, 120
    light = rng.random() < 0.8
    bg = _color(rng, 170, 255) if light else _color(rng, 0, 120)
    if light and rng.random() < 0.5:
        bg = (245, 245, 245)
    fg = _color(rng, 0, 110) if light else _color(rng, 160, 255)
    canvas = _base(w, h, bg, rng, gradient=0.3)
    if rng.random() < 0.6:
        _texture(canvas, rng, backgrounds)
    _border(canvas, rng, color=fg, p=0.5)
    _bolts(canvas, rng)
    # state name on top, slogan at the bottom: clutter the reader must ignore
    top_col = _color(rng, 0, 200) if light else _color(rng, 150, 255)
    if rng.random() < 0.9:
        name = US_STATES[int(rng.integers(len(US_STATES)))]
        fam = rng.choice(["serif", "serif_italic", "lib_serif_bold", "lib_serif_italic", "sans_bold", "gothic_d"])
        _place_line(canvas, list(name), fam, top_col,
                    (int(w * 0.12), int(h * 0.03), int(w * 0.88), int(h * rng.uniform(0.17, 0.24))), rng, shadow=False)
    if rng.random() < 0.8:
        slogan = US_SLOGANS[int(rng.integers(len(US_SLOGANS)))]
        fam = rng.choice(["serif", "serif_italic", "sans_bold", "lib_sans_bold", "narrow"])
        _place_line(canvas, list(slogan), fam, _color(rng, 0, 200) if light else _color(rng, 150, 255),
                    (int(w * 0.1), int(h * rng.uniform(0.8, 0.86)), int(w * 0.9), int(h * 0.96)), rng, shadow=False)
    # Every clutter decision is drawn up front, so switching one on or off never changes the label.
    u = dict(zip(US_CLUTTER_P, rng.random(len(US_CLUTTER_P))))
    on = {k: u[k] < p for k, p in US_CLUTTER_P.items()}
    skip = rng.random() < US_SERIAL_SKIP_P
    glyphs = {"0": "O"} if rng.random() < US_ZERO_AS_O_SHAPE_P else None
    if on["vanity"]:
        tokens = _us_vanity(rng)
    else:
        letters = "".join(c for c in LETTERS if c not in US_SERIAL_SKIP) if skip else LETTERS
        tokens = _rand_text(US_PATTERNS[int(rng.integers(len(US_PATTERNS)))], rng, letters)
    tokens = ["0" if t == "O" else t for t in tokens]
    style = "random"
    split = _split_for_graphic(tokens) if on["separator"] else None
    if split is not None:
        tokens = split
        style = functools.partial(_us_graphic, color=fg, backgrounds=backgrounds)
    # left of the serial most: where an emblem or stacked letters pass for a first character
    sides = [["left"], ["right"], ["left", "right"]][int(rng.choice(3, p=US_SIDES_P))] if on["side"] else []
    reserve = int(w * rng.uniform(0.09, 0.2)) if sides else 0
    # no draw at 0, so that retrain 11's crops come out as they were
    extra = US_EXTRA_FACE_P > 0 and rng.random() < US_EXTRA_FACE_P
    fam = rng.choice(list(US_EXTRA_FACES if extra else US_FACES))
    th = rng.uniform(0.38, 0.52)
    yc = rng.uniform(0.48, 0.56)
    x0 = max(int(w * 0.05), reserve if "left" in sides else 0)
    x1 = min(int(w * 0.95), w - reserve if "right" in sides else w)
    box = (x0, int(h * (yc - th / 2)), x1, int(h * (yc + th / 2)))
    serif_i = rng.random() < US_SERIF_I_P
    narrow = _narrow_wm(rng, fam, NARROW_WM_P["US"] * NARROW_WM_SCALE)
    tb = _place_line(canvas, tokens, fam, fg, box, rng, spacing=rng.uniform(0.95, 1.3), emblem_style=style,
                     serif_i=serif_i, glyphs=glyphs, narrow=narrow, serial=True)
    # clutter around the text (never inside tb): stickers, side words/logos, dealer frame
    if on["stickers"]:
        _us_stickers(canvas, tb, rng)
    if sides:
        _us_side(canvas, tb, rng, sides, top_col, backgrounds, ink=fg, family=fam)
    if on["frame"]:
        _us_frame(canvas, tb, rng)
    return canvas, tokens, tb


LAYOUTS = {
    "US": (plate_us, 0.40),
    "CZ": (plate_cz, 0.09),
    "SK": (plate_sk, 0.09),
    "DE": (plate_de, 0.07),
    "UK": (plate_uk, 0.06),
    "ES": (plate_es, 0.05),
    "BR": (plate_br, 0.10),
    "BR_MERCOSUR": (plate_mercosur, 0.05),
    "EU_GENERIC": (plate_eu_generic, 0.09),
}


def render_plate(rng: np.random.Generator, layout: str | None = None, backgrounds=None) -> Plate:
    """Draw one clean plate (BGR uint8) of a random or given layout."""
    names = list(LAYOUTS)
    if layout is None:
        p = np.array([LAYOUTS[n][1] for n in names])
        layout = names[int(rng.choice(len(names), p=p / p.sum()))]
    fn = LAYOUTS[layout][0]
    canvas, tokens, tb = fn(rng, backgrounds) if layout == "US" else fn(rng)
    text = "".join(t for t in tokens if t in ALNUM)
    img = np.clip(canvas, 0, 255).astype(np.uint8)
    return Plate(img, text, layout, tuple(int(v) for v in tb))
