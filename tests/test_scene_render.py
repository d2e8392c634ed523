"""Detector training data: scene boxes are exact, hard negatives add no boxes,
and the anchor box encoding is what TFLite_Detection_PostProcess decodes."""

from __future__ import annotations

import numpy as np
import pytest

from training import anchors as A
from training import scene_render as S
from training.plate_render import Plate

MAGENTA = (255, 0, 255)


@pytest.fixture
def magenta_plates(monkeypatch):
    """Plates of one colour no background has, and no global effects, so
    every plate pixel can be found in the scene by colour."""
    def plate(rng, layout=None, backgrounds=None):
        img = np.empty((int(rng.integers(30, 60)), int(rng.integers(100, 200)), 3), np.uint8)
        img[:] = MAGENTA
        return Plate(img, "AB123", "TEST", (0, 0, img.shape[1], img.shape[0]))

    monkeypatch.setattr(S, "render_plate", plate)
    monkeypatch.setattr(S, "_global", lambda img, rng, glow=None: img)
    monkeypatch.setattr(S, "_background", lambda rng, w, h, bgs: np.full((h, w, 3), 90, np.uint8))
    monkeypatch.setattr(S, "_text_patch", lambda *a, **k: None)
    monkeypatch.setattr(S, "_country_oval", lambda *a, **k: None)
    monkeypatch.setattr(S, "_brake_light", lambda *a, **k: None)
    monkeypatch.setattr(S, "_lit_sign", lambda *a, **k: None)


def test_lights_add_no_box(monkeypatch):
    """Brake lights and lit signs are negatives: the same seed gives the same boxes without them."""
    with_lights = [S.render_scene(np.random.default_rng(seed), size=160)[1] for seed in range(6)]
    calls = []
    monkeypatch.setattr(S, "_brake_light", lambda *a, **k: calls.append("bar"))
    monkeypatch.setattr(S, "_lit_sign", lambda *a, **k: calls.append("sign"))
    for seed, boxes in enumerate(with_lights):
        assert np.array_equal(S.render_scene(np.random.default_rng(seed), size=160)[1], boxes)
    assert calls, "no light drawn in six scenes"


@pytest.mark.parametrize("seed", range(8))
def test_every_box_is_the_tight_box_of_its_plate_pixels(magenta_plates, seed):
    img, boxes = S.render_scene(np.random.default_rng(seed), size=320)
    is_plate = np.all(np.abs(img.astype(int) - MAGENTA) < 60, axis=2)
    found = np.zeros_like(is_plate)
    for x0, y0, x1, y1 in boxes:
        inside = is_plate[int(np.floor(y0)):int(np.ceil(y1)), int(np.floor(x0)):int(np.ceil(x1))]
        ys, xs = np.nonzero(inside)
        assert len(xs), f"box {x0, y0, x1, y1} holds no plate pixel"
        # the tight box of the pixels is the label, within the squash to 320 px
        fx0, fy0 = int(np.floor(x0)) + xs.min(), int(np.floor(y0)) + ys.min()
        fx1, fy1 = int(np.floor(x0)) + xs.max() + 1, int(np.floor(y0)) + ys.max() + 1
        assert np.allclose([fx0, fy0, fx1, fy1], [x0, y0, x1, y1], atol=2.0)
        found[int(np.floor(y0)):int(np.ceil(y1)), int(np.floor(x0)):int(np.ceil(x1))] = True
    assert not (is_plate & ~found).any(), "plate pixels outside every labelled box"


def test_the_same_seed_draws_the_same_scene():
    a_img, a_boxes = S.render_scene(np.random.default_rng(3), size=160)
    b_img, b_boxes = S.render_scene(np.random.default_rng(3), size=160)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_boxes, b_boxes)


def test_a_country_oval_draws_dark_code_on_a_light_oval():
    img = np.full((120, 200, 3), 90, np.uint8)
    S._country_oval(img, np.random.default_rng(1), (100, 60), 90)
    patch = img[35:85, 55:145]
    assert (patch > 195).all(axis=2).mean() > 0.3, "no light oval"
    assert (patch < 60).all(axis=2).mean() > 0.03, "no dark code"
    assert (img[:, :40] == 90).all(), "drawn outside its place"


def test_a_brake_light_is_a_white_bar_in_a_red_halo_on_the_light_layer():
    glow = np.zeros((100, 200, 3), np.float32)
    S._brake_light(glow, np.random.default_rng(0), (100, 50), 60, 6)
    assert (glow[48:52, 75:125] >= 180).all(), "no bright core"
    halo = glow[40:44, 80:120]  # just above the bar
    assert (halo[..., 2] > 20).all() and (halo[..., 2] > 2 * halo[..., 0]).all(), "halo not red"
    assert (glow[:, :50] == 0).all() and (glow[:25] == 0).all(), "light outside its place"


def test_lights_stay_bright_when_the_scene_is_dimmed_for_night():
    dark = np.full((100, 200, 3), 30, np.uint8)
    glow = np.zeros((100, 200, 3), np.float32)
    glow[45:55, 60:140] = 255
    for seed in range(40):  # day and night draws alike
        out = S._global(dark, np.random.default_rng(seed), glow).astype(float)
        assert out[47:53, 65:135].mean() > out[:20].mean() + 80, seed


def test_a_lit_sign_is_bright_words_on_a_dark_panel():
    img = np.full((120, 300, 3), 90, np.uint8)
    glow = np.zeros(img.shape, np.float32)
    rng = np.random.default_rng(0)
    S._lit_sign(img, glow, rng, (10, 20), 40)
    assert (glow[20:75, 10:290].max(axis=2) > 120).mean() > 0.05, "no bright words"
    assert (glow[80:] == 0).all() and (img[80:] == 90).all(), "drawn outside its place"


def test_an_oval_off_the_image_is_skipped():
    img = np.full((50, 50, 3), 90, np.uint8)
    S._country_oval(img, np.random.default_rng(0), (2, 2), 40)
    assert (img == 90).all()


def test_box_encoding_round_trips_through_the_anchors():
    anchors = A.make_anchors(320)
    rng = np.random.default_rng(0)
    y0, x0 = rng.uniform(0, 0.8, (2, len(anchors)))
    h, w = rng.uniform(0.01, 0.2, (2, len(anchors)))
    boxes = np.stack([y0, x0, y0 + h, x0 + w], axis=1).astype(np.float32)
    assert np.allclose(A.decode(A.encode(boxes, anchors), anchors), boxes, atol=1e-5)


def test_a_box_on_its_anchor_encodes_to_zero():
    anchors = A.make_anchors(320)[:50]
    assert np.allclose(A.encode(A.corners(anchors), anchors), 0, atol=1e-5)


def test_anchor_count_follows_the_levels():
    n = sum((320 // stride) ** 2 * A.anchors_per_cell(i) for i, (stride, _, _) in enumerate(A.LEVELS))
    a = A.make_anchors(320)
    assert a.shape == (n, 4) and (a[:, 2:] > 0).all() and (a[:, :2] > 0).all() and (a[:, :2] < 1).all()


def test_every_plate_gets_an_anchor_and_far_anchors_are_background():
    anchors = A.make_anchors(320)
    gt = np.array([[0.40, 0.30, 0.45, 0.42], [0.1, 0.7, 0.13, 0.74]], np.float32)
    cls, box = A.match(gt, anchors)
    pos = np.nonzero(cls == 1)[0]
    decoded = A.decode(box[pos], anchors[pos])
    ious = A.iou_matrix(decoded, gt).max(1)
    assert np.allclose(ious, 1.0, atol=1e-4)  # positives decode back to their plate
    assert {int(i) for i in A.iou_matrix(decoded, gt).argmax(1)} == {0, 1}
    far = A.iou_matrix(A.corners(anchors), gt).max(1) == 0
    assert (cls[far] == 0).all() and (box[far] == 0).all()
