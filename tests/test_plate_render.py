"""The synthetic plate renderer: labels agree with the pixels, seeds are reproducible."""

import cv2
import numpy as np
import pytest

from training import fonts, plate_render
from training.degrade import degrade
from training.ocr_data import render_chunk
from training.ocr_model import ALPHABET
from training.plate_render import DIGITS, LAYOUTS, US_VANITY, render_plate


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_renders_a_plausible_label(layout):
    rng = np.random.default_rng(7)
    for _ in range(5):
        p = render_plate(rng, layout=layout)
        assert p.image.dtype == np.uint8 and p.image.ndim == 3
        assert 2 <= len(p.text) <= 12
        assert set(p.text) <= set(ALPHABET)
        x0, y0, x1, y1 = p.text_box
        assert 0 <= x0 < x1 <= p.image.shape[1] and 0 <= y0 < y1 <= p.image.shape[0]


@pytest.mark.parametrize("layout,seed", [("ES", 1), ("ES", 2), ("BR_MERCOSUR", 3), ("UK", 4), ("CZ", 5)])
def test_label_has_one_ink_blob_per_character(layout, seed):
    """Count the dark glyphs inside the text box: one per label character."""
    rng = np.random.default_rng(seed)
    p = render_plate(rng, layout=layout)
    x0, y0, x1, y1 = p.text_box
    gray = cv2.cvtColor(p.image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    ink = (gray < 100).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    big = [s for s in stats[1:] if s[cv2.CC_STAT_HEIGHT] > 0.5 * (y1 - y0)]
    assert len(big) == len(p.text), (p.text, len(big))


def _us_clutter(monkeypatch, p, **overrides):
    """Set every US clutter probability to p (or to an override) for one test."""
    for k in plate_render.US_CLUTTER_P:
        monkeypatch.setitem(plate_render.US_CLUTTER_P, k, overrides.get(k, p))


def test_us_clutter_never_enters_the_label(monkeypatch):
    """Stickers, pictures, side words and frames change the pixels, never the label."""
    for seed in range(12):
        _us_clutter(monkeypatch, 1.0, vanity=0.0)
        cluttered = render_plate(np.random.default_rng(seed), layout="US")
        _us_clutter(monkeypatch, 0.0)
        bare = render_plate(np.random.default_rng(seed), layout="US")
        assert cluttered.text == bare.text
        assert set(cluttered.text) <= set(ALPHABET)
        assert not np.array_equal(cluttered.image, bare.image)


def test_us_vanity_label_is_the_word(monkeypatch):
    """A vanity plate reads as its word (O keyed 0, as on US plates), at most with one digit added."""
    _us_clutter(monkeypatch, 1.0)
    words = {w.replace("O", "0") for w in US_VANITY}
    for seed in range(8):
        t = render_plate(np.random.default_rng(seed), layout="US").text
        assert t in words or t[1:] in words and t[0] in DIGITS or t[:-1] in words and t[-1] in DIGITS, t


def test_us_clutter_is_drawn_outside_the_text_box(monkeypatch):
    """Stickers, side clutter and the dealer frame leave every pixel inside text_box alone."""
    _us_clutter(monkeypatch, 1.0, vanity=0.0, separator=0.0)
    cluttered = [render_plate(np.random.default_rng(seed), layout="US") for seed in range(10)]
    for name in ("_us_stickers", "_us_side", "_us_frame"):
        monkeypatch.setattr(plate_render, name, lambda *a, **k: None)
    for seed, c in enumerate(cluttered):
        bare = render_plate(np.random.default_rng(seed), layout="US")
        assert c.text_box == bare.text_box and c.text == bare.text
        x0, y0, x1, y1 = c.text_box
        assert 0 <= x0 < x1 <= c.image.shape[1] and 0 <= y0 < y1 <= c.image.shape[0]
        assert np.array_equal(c.image[y0:y1, x0:x1], bare.image[y0:y1, x0:x1]), seed
        assert not np.array_equal(c.image, bare.image)  # the clutter was really drawn


def test_us_plate_with_clutter_is_reproducible(monkeypatch):
    _us_clutter(monkeypatch, 1.0, vanity=0.5)
    a = render_plate(np.random.default_rng(21), layout="US")
    b = render_plate(np.random.default_rng(21), layout="US")
    c = render_plate(np.random.default_rng(22), layout="US")
    assert np.array_equal(a.image, b.image) and a.text == b.text and a.text_box == b.text_box
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("layout", sorted(set(LAYOUTS) - {"US"}))
def test_us_clutter_settings_do_not_touch_other_layouts(monkeypatch, layout):
    before = render_plate(np.random.default_rng(3), layout=layout)
    _us_clutter(monkeypatch, 1.0)
    after = render_plate(np.random.default_rng(3), layout=layout)
    assert np.array_equal(before.image, after.image) and before.text == after.text


def test_same_seed_same_data_other_seed_other_data():
    a_img, a_lab = render_chunk(11, 8, ALPHABET)
    b_img, b_lab = render_chunk(11, 8, ALPHABET)
    c_img, _ = render_chunk(12, 8, ALPHABET)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)
    assert a_img.shape == (8, 32, 128) and a_img.dtype == np.uint8


def test_degraded_crop_has_model_input_shape():
    rng = np.random.default_rng(0)
    out = degrade(render_plate(rng), rng, out_size=(128, 32))
    assert out.shape == (32, 128) and out.dtype == np.uint8
    assert out.std() > 1  # not a blank image


def test_clean_crops_have_more_contrast_than_the_mix(monkeypatch):
    """--clean: a share of crops from a close, clear view (tight box, big characters, by day)."""
    from training import degrade as degrade_module

    def crops(share):
        monkeypatch.setattr(degrade_module, "CLEAN_P", share)
        rng = np.random.default_rng(7)
        return np.stack([degrade(render_plate(rng, layout="US"), rng) for _ in range(60)]).astype(np.float32)

    plain, clean = crops(0.0), crops(1.0)
    # no night, no "hard" contrast cut, characters that fill the crop: more contrast on average
    assert clean.std(axis=(1, 2)).mean() > plain.std(axis=(1, 2)).mean() + 3


def test_a_text_hugging_crop_puts_the_first_and_last_characters_at_its_edges():
    """Tight detector boxes on plates whose text fills them (NC) cut at the characters."""
    from training.degrade import crop_margins

    rng = np.random.default_rng(3)
    for _ in range(20):
        plate = render_plate(rng, layout="US")
        ph, pw = plate.image.shape[:2]
        (left, right), _ = crop_margins(plate, pw, ph, rng, "text")
        tx0, _, tx1, _ = plate.text_box
        tw = tx1 - tx0
        crop_x0, crop_x1 = -left, pw + right  # in plate pixels
        # the gap between text and crop edge: a sliver cut off at most, a few px at least
        for gap in (tx0 - crop_x0, crop_x1 - tx1):
            assert -0.01 * tw - 1e-6 <= gap <= 0.04 * tw + 1e-6


def test_crop_margin_styles_mix_and_an_unknown_one_is_refused():
    from training.degrade import MARGIN_STYLES, crop_margins

    assert set(MARGIN_STYLES) == {"loose", "tight", "text"}
    assert sum(MARGIN_STYLES.values()) == pytest.approx(1.0)
    plate = render_plate(np.random.default_rng(0), layout="CZ")
    with pytest.raises(ValueError, match="unknown margin style 'snug'"):
        crop_margins(plate, 100, 20, np.random.default_rng(0), "snug")


def test_missing_font_names_the_debian_package(monkeypatch):
    monkeypatch.setitem(fonts.FONTS, "din", ("fonts-opendin", ("/nonexistent/OSP-DIN.ttf",)))
    with pytest.raises(fonts.MissingFontError, match="apt-get install fonts-opendin"):
        fonts.font_path("din")


def test_a_serif_i_has_bars_top_and_bottom_that_a_plain_i_lacks() -> None:
    """Many US plate fonts draw I with serifs; a reader trained without them reads T."""
    from training.plate_render import _text_line

    plain, _ = _text_line(list("I"), "gothic_d", np.random.default_rng(0), 1.0)
    serif, _ = _text_line(list("I"), "gothic_d", np.random.default_rng(0), 1.0, serif_i=True)
    cols = lambda m, rows: (m[rows] > 0.5).any(axis=0).sum()  # noqa: E731
    top, mid = slice(4, 7), slice(serif.shape[0] // 2 - 1, serif.shape[0] // 2 + 2)
    assert cols(serif, top) > 1.8 * cols(serif, mid)  # the bar is wider than the stem
    assert cols(plain, top) <= 1.2 * cols(plain, mid)  # a plain I is one stem


def test_cached_glyphs_draw_what_pil_draws_in_place() -> None:
    """The glyph cache only moves a glyph by under half a pixel from where PIL would draw it."""
    from PIL import Image, ImageDraw

    from training.fonts import load_font
    from training.plate_render import _text_line

    text = "W8B0IQ"
    mask, _ = _text_line(list(text), "din", np.random.default_rng(0), 1.0)
    font = load_font("din", 72)
    cap_top = font.getbbox("H0")[1]
    img = Image.new("L", (mask.shape[1], mask.shape[0]), 0)
    draw, x = ImageDraw.Draw(img), 2
    for ch in text:
        w = int(font.getlength(ch))
        draw.text((x + (w - font.getlength(ch)) / 2, 4 - cap_top), ch, font=font, fill=255)
        x += w
    direct = np.asarray(img, np.float32) / 255.0
    ink_a, ink_b = mask > 0.5, direct > 0.5
    assert (ink_a & ink_b).sum() / (ink_a | ink_b).sum() > 0.9
    assert np.abs(mask - direct).mean() < 0.03


def test_render_benchmark_command_prints_one_json_line(capsys) -> None:
    import json

    from training.bench_render import main

    assert main(["--n", "5", "--repeats", "1", "--backgrounds", ""]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 5 and result["ms_per_crop"] > 0


def test_access_symbol_and_printed_picture_stay_in_their_box() -> None:
    """Both pictures that real US crops misread as characters paint only inside the box given."""
    rng = np.random.default_rng(4)
    photos = [np.random.default_rng(i).integers(0, 255, (90, 140), dtype=np.uint8) for i in range(3)]
    box = (30, 20, 70, 60)
    for draw in (lambda c: plate_render._access_symbol(c, box, rng, (20, 20, 20)),
                 lambda c: plate_render._printed_picture(c, box, rng, (20, 20, 20), photos)):
        for _ in range(6):
            canvas = np.full((80, 100, 3), 230.0, np.float32)
            draw(canvas)
            changed = np.argwhere((canvas != 230.0).any(axis=2))
            assert len(changed) > 0.05 * 40 * 40  # something was drawn
            assert changed[:, 0].min() >= 20 and changed[:, 0].max() < 61
            assert changed[:, 1].min() >= 30 and changed[:, 1].max() < 71


def test_printed_picture_needs_photos_and_skips_without_them() -> None:
    canvas = np.full((80, 100, 3), 230.0, np.float32)
    plate_render._printed_picture(canvas, (30, 20, 70, 60), np.random.default_rng(0), (0, 0, 0), [])
    assert (canvas == 230.0).all()


def test_side_pictures_drawn_from_photos_never_enter_the_text_box(monkeypatch):
    """With street photos given (as training does), side pictures still leave the characters alone."""
    photos = [np.random.default_rng(i).integers(0, 255, (200, 300), dtype=np.uint8) for i in range(4)]
    _us_clutter(monkeypatch, 1.0, vanity=0.0, separator=0.0, stickers=0.0, frame=0.0)
    monkeypatch.setattr(plate_render, "_SIDE_KINDS", (plate_render._side_big_picture,))
    cluttered = [render_plate(np.random.default_rng(seed), layout="US", backgrounds=photos) for seed in range(8)]
    monkeypatch.setattr(plate_render, "_us_side", lambda *a, **k: None)
    for seed, c in enumerate(cluttered):
        bare = render_plate(np.random.default_rng(seed), layout="US", backgrounds=photos)
        assert c.text == bare.text and c.text_box == bare.text_box
        x0, y0, x1, y1 = c.text_box
        assert np.array_equal(c.image[y0:y1, x0:x1], bare.image[y0:y1, x0:x1]), seed
        assert not np.array_equal(c.image, bare.image), seed


def test_a_glyph_map_draws_one_shape_for_two_characters() -> None:
    """CZ/SK plates sometimes draw O and 0 alike; the label must keep the true character."""
    from training.plate_render import _text_line

    zero, _ = _text_line(list("0"), "din", np.random.default_rng(0), 1.0)
    oh, _ = _text_line(list("O"), "din", np.random.default_rng(0), 1.0)
    zero_as_oh, _ = _text_line(list("0"), "din", np.random.default_rng(0), 1.0, glyphs={"0": "O"})
    assert not np.array_equal(zero, oh)
    assert np.array_equal(zero_as_oh, oh)


def test_a_narrow_w_is_as_wide_as_h_and_keeps_the_fonts_stroke_weight() -> None:
    """Plate faces draw W and M narrow; a squeezed glyph must still look like the same font."""
    from training.plate_render import _glyph, _stem, _text_line

    wide, _ = _text_line(list("W"), "din", np.random.default_rng(0), 1.0)
    h, _ = _text_line(list("H"), "din", np.random.default_rng(0), 1.0)
    keep = h.shape[1] / wide.shape[1]
    narrow, _ = _text_line(list("W"), "din", np.random.default_rng(0), 1.0, narrow={"W": keep})
    assert abs(narrow.shape[1] - h.shape[1]) <= 2 < wide.shape[1] - h.shape[1]
    # a row through the strokes: its ink is about as wide as before the squeeze, not `keep` of it
    row = narrow.shape[0] // 4
    ink = lambda m: int(np.count_nonzero(m[row] > 0.5))  # noqa: E731
    assert ink(narrow) > 0.85 * ink(wide)
    squeezed_only = cv2.resize(_glyph("din", 72, "W")[0], None, fx=keep, fy=1.0, interpolation=cv2.INTER_AREA)
    assert ink(narrow) > np.count_nonzero(squeezed_only[row] > 127) + _stem("din", 72) * (1 - keep)
    # characters not in the map are drawn as they were
    other, _ = _text_line(list("HN"), "din", np.random.default_rng(0), 1.0, narrow={"W": keep})
    plain, _ = _text_line(list("HN"), "din", np.random.default_rng(0), 1.0)
    assert np.array_equal(other, plain)


def test_w_and_m_are_narrow_on_the_configured_share_of_plates_and_keep_their_labels(monkeypatch) -> None:
    import training.plate_render as pr

    maps = [pr._narrow_wm(np.random.default_rng(s), "din", 0.5) for s in range(400)]
    narrow = [m for m in maps if m is not None]
    assert abs(len(narrow) / len(maps) - 0.5) < 0.07
    assert all(set(m) == set(pr.NARROW_WM) and all(0.3 < k <= 1.0 for k in m.values()) for m in narrow)
    assert len({m["W"] for m in narrow}) > 5  # widths vary from plate to plate
    assert pr._narrow_wm(np.random.default_rng(0), "din", 0.0) is None

    drawn = []
    real_place_line = pr._place_line
    monkeypatch.setattr(pr, "_place_line", lambda *a, **k: ("narrow" in k and drawn.append(k["narrow"]))
                        or real_place_line(*a, **k))

    def shares(scale):
        monkeypatch.setattr(pr, "NARROW_WM_SCALE", scale)
        out = {}
        for layout, key in (("DE", "DE"), ("SK", "EU"), ("US", "US")):
            drawn.clear()
            labels = [pr.render_plate(np.random.default_rng(s), layout).text for s in range(200)]
            assert len(drawn) == 200, layout
            out[key] = np.mean([d is not None for d in drawn])
            assert any("W" in t for t in labels)  # the label keeps the character, narrow or not
        return out

    assert pr.NARROW_WM_SCALE == 0.0 and set(shares(pr.NARROW_WM_SCALE).values()) == {0.0}  # off by default
    for key, share in shares(1.0).items():
        assert abs(share - pr.NARROW_WM_P[key]) < 0.1, key
    for key, share in shares(0.5).items():
        assert abs(share - pr.NARROW_WM_P[key] / 2) < 0.1, key


def test_czech_and_slovak_plates_draw_o_and_zero_alike_at_the_configured_share(monkeypatch) -> None:
    import training.plate_render as pr

    maps = [pr._round_glyphs(np.random.default_rng(s), pr.CZ_SK_ONE_ROUND_GLYPH_P) for s in range(400)]
    alike = [m for m in maps if m is not None]
    assert abs(len(alike) / len(maps) - pr.CZ_SK_ONE_ROUND_GLYPH_P) < 0.07
    assert all(m["0"] == m["O"] for m in alike)
    assert {m["0"] for m in alike} == {"0", "O"}  # both shapes are used
    assert pr._round_glyphs(np.random.default_rng(0), 0.0) is None


def test_most_us_serials_leave_out_i_and_o_as_us_states_do(monkeypatch) -> None:
    """A bar on a US plate is nearly always 1, a round glyph 0: the renderer must teach that prior."""
    import training.plate_render as pr

    _us_clutter(monkeypatch, 0.0)
    labels = [pr.render_plate(np.random.default_rng(s), "US").text for s in range(300)]
    with_skipped = [t for t in labels if set(t) & set(pr.US_SERIAL_SKIP)]
    # the few that keep them come from the plates drawn with the full alphabet
    assert 0 < len(with_skipped) < 0.1 * len(labels)
    monkeypatch.setattr(pr, "US_SERIAL_SKIP_P", 1.0)
    labels = [pr.render_plate(np.random.default_rng(s), "US").text for s in range(300)]
    assert not any(set(t) & set(pr.US_SERIAL_SKIP) for t in labels)
    monkeypatch.setattr(pr, "US_SERIAL_SKIP_P", 0.0)
    labels = [pr.render_plate(np.random.default_rng(s), "US").text for s in range(300)]
    assert sum(bool(set(t) & set(pr.US_SERIAL_SKIP)) for t in labels) > 0.05 * len(labels)


def test_a_us_plates_round_glyph_is_labelled_zero_even_in_vanity_words(monkeypatch) -> None:
    """US plates key O as 0; some draw that 0 with the font's O shape, still labelled 0."""
    import training.plate_render as pr

    _us_clutter(monkeypatch, 0.0, vanity=0.5)
    monkeypatch.setattr(pr, "US_SERIAL_SKIP_P", 0.0)
    drawn = []
    real_place_line = pr._place_line
    monkeypatch.setattr(pr, "_place_line", lambda *a, **k: drawn.append(k.get("glyphs")) or real_place_line(*a, **k))
    labels = [pr.render_plate(np.random.default_rng(s), "US").text for s in range(300)]
    assert not any("O" in t for t in labels)
    assert sum(t.count("0") for t in labels) > 100
    o_shaped = [g for g in drawn if g == {"0": "O"}]
    assert abs(len(o_shaped) / len(labels) - pr.US_ZERO_AS_O_SHAPE_P) < 0.1


def test_side_clutter_is_mostly_printed_in_the_serials_ink_and_font(monkeypatch) -> None:
    """Real stacked letters share the serial's ink and typeface: only size and place set them apart."""
    import training.plate_render as pr

    _us_clutter(monkeypatch, 0.0, side=1.0)
    calls = []
    real_side = pr._us_side
    monkeypatch.setattr(pr, "_us_side", lambda *a, **k: calls.append(k) or real_side(*a, **k))
    painted = []
    monkeypatch.setattr(pr, "_SIDE_KINDS", (lambda canvas, tb, rng, region, fam, col, bg=None:
                                            painted.append((fam, tuple(col))),))

    def shares(p):
        monkeypatch.setattr(pr, "US_SIDE_SERIAL_INK_P", p)
        calls.clear()
        painted.clear()
        for s in range(200):
            n = len(painted)
            pr.render_plate(np.random.default_rng(s), "US")
            k = calls[-1]
            painted[n:] = [(f == k["family"], c == tuple(k["ink"])) for f, c in painted[n:]]
        return np.mean([f for f, _ in painted]), np.mean([c for _, c in painted])

    assert shares(1.0) == (1.0, 1.0)
    fam_share, ink_share = shares(0.7)
    assert 0.6 < ink_share < 0.85
    assert fam_share >= ink_share
    assert shares(0.0)[1] < 0.1


def test_side_clutter_probe_reads_synthetic_plates_and_leaves_the_renderer_as_it_was(capsys, tmp_path) -> None:
    import json

    import training.plate_render as pr
    from training.probe_side_clutter import main

    before = pr.US_CLUTTER_P, pr.US_SIDES_P, pr._SIDE_KINDS
    assert main(["--n", "4", "--kind", "upright_chars", "--backgrounds", ""]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["kind"] == "upright_chars" and result["n"] == 4 and 0 <= result["exact"] <= 1
    assert (pr.US_CLUTTER_P, pr.US_SIDES_P, pr._SIDE_KINDS) == before
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path / "missing.tflite"), "--n", "1"])
    assert "missing.tflite" in capsys.readouterr().err


def test_side_clutter_probe_draws_the_chosen_kind_on_every_plate(monkeypatch) -> None:
    import training.plate_render as pr
    from training.probe_side_clutter import only_side_clutter

    drawn = []
    monkeypatch.setattr(pr, "_side_logo", lambda *a, **k: drawn.append("logo"))
    with only_side_clutter("logo"):
        for s in range(20):
            pr.render_plate(np.random.default_rng(s), "US")
    assert drawn == ["logo"] * 20
    with only_side_clutter("none"):
        pr.render_plate(np.random.default_rng(0), "US")
    assert len(drawn) == 20


@pytest.mark.parametrize("family", plate_render.US_FACES + plate_render.US_EXTRA_FACES)
def test_every_us_serial_face_draws_each_character_with_a_glyph_of_its_own(family) -> None:
    """A face that lacks a glyph draws a blank or its 'missing' box: the label would lie."""
    font = fonts.load_font(family, 48)
    missing = np.array(font.getmask("\ue000"))  # a private-use code point no face has
    masks = {c: np.array(font.getmask(c)) for c in ALPHABET}
    for c, m in masks.items():
        assert m.size and m.max() > 0, (family, c)
        assert m.shape != missing.shape or not np.array_equal(m, missing), (family, c)
    # no two characters share one shape (a face drawing I as 1 would teach a confusion), except
    # O and 0, which some faces draw alike: a US plate's round glyph is labelled 0 whatever it is
    shape = {c: (m.shape, m.tobytes()) for c, m in masks.items()}
    not_round = [shape[c] for c in ALPHABET if c not in "O0"]
    assert len(set(not_round + [shape["0"]])) == len(not_round) + 1, family
    assert shape["O"] not in not_round, family


def test_a_chosen_share_of_us_serials_use_the_other_typefaces(monkeypatch) -> None:
    """US_EXTRA_FACE_P of US serials leave the Highway-Gothic/DIN-like faces; by default none
    (retrain 11's renderer; the trainer sets it)."""
    import training.plate_render as pr

    _us_clutter(monkeypatch, 0.0)
    faces = []
    real_place_line = pr._place_line
    # the serial is the one line drawn with the serif-I choice; state names and slogans are not
    monkeypatch.setattr(pr, "_place_line", lambda canvas, tokens, fam, *a, **k:
                        ("serif_i" in k and faces.append(fam)) or real_place_line(canvas, tokens, fam, *a, **k))

    def extra_share(p):
        monkeypatch.setattr(pr, "US_EXTRA_FACE_P", p)
        faces.clear()
        for s in range(300):
            pr.render_plate(np.random.default_rng(s), "US")
        assert len(faces) == 300 and set(faces) <= set(pr.US_FACES + pr.US_EXTRA_FACES)
        return np.mean([f in pr.US_EXTRA_FACES for f in faces]), set(faces)

    assert pr.US_EXTRA_FACE_P == 0.0 and extra_share(pr.US_EXTRA_FACE_P)[0] == 0.0
    share, used = extra_share(0.35)
    assert abs(share - 0.35) < 0.07
    assert set(pr.US_EXTRA_FACES) <= used
    assert extra_share(1.0)[0] == 1.0


def test_setup_installs_every_font_package_the_renderer_needs() -> None:
    """CI and a fresh machine get their fonts from scripts/setup.sh: a package left out there
    is a MissingFontError at the first training run."""
    import re
    from pathlib import Path

    setup = (Path(__file__).resolve().parents[1] / "scripts" / "setup.sh").read_text()
    apt = set(re.search(r'^APT_PKGS="([^"]*)"', setup, re.M).group(1).split())
    assert set(fonts.DEBIAN_PACKAGES) <= apt, set(fonts.DEBIAN_PACKAGES) - apt


def test_an_embossed_serial_is_lit_from_above():
    """--emboss: raised characters show a bright rim above and a dark one below."""
    region = np.full((40, 60, 3), 128.0, np.float32)
    mask = np.zeros((40, 60), np.float32)
    mask[10:30, 20:40] = 1.0
    lit_from_above = 0
    for seed in range(20):
        r = region.copy()
        plate_render._emboss(r, mask, np.random.default_rng(seed))
        above, below = r[7:10, 22:38].mean(), r[30:33, 22:38].mean()
        lit_from_above += above > 128 > below
    assert lit_from_above >= 18


def test_a_reweighed_serial_is_bolder_or_lighter():
    mask = np.zeros((60, 60), np.float32)
    mask[10:50, 25:35] = 1.0  # a 10 px stem
    widths = {int(plate_render._reweigh(mask, np.random.default_rng(s))[30].sum()) for s in range(20)}
    assert widths == {6, 8, 12, 14}


@pytest.mark.parametrize("share", ["EMBOSS_P", "GLYPH_VARY_P"])
def test_serial_variations_keep_the_label_and_are_off_by_default(monkeypatch, share):
    """At the default 0 the renderer draws exactly what it drew before the option existed
    (no random draw is spent on it); at 1 every serial changes and no label does."""
    plates = [(s, layout) for s in range(6) for layout in ("US", "CZ", "BR")]
    assert getattr(plate_render, share) == 0.0
    flat = [render_plate(np.random.default_rng(s), layout) for s, layout in plates]
    monkeypatch.setattr(plate_render, share, 1.0)
    varied = [render_plate(np.random.default_rng(s), layout) for s, layout in plates]
    assert [p.text for p in varied] == [p.text for p in flat]
    assert all(not np.array_equal(a.image, b.image) for a, b in zip(varied, flat))
    monkeypatch.setattr(plate_render, share, 0.0)
    again = [render_plate(np.random.default_rng(s), layout) for s, layout in plates]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(again, flat))
