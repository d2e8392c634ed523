"""Real crops cut again from a wandering box (training --real-recut): the
framing changes, the characters all stay in."""

import numpy as np

from training.ocr_data import recut


def plates(n: int = 200, h: int = 32, w: int = 128) -> np.ndarray:
    """Gray crops with dark 'characters' from 5 % to 95 % of the width."""
    imgs = np.full((n, h, w), 200, np.uint8)
    imgs[:, 8:24, int(0.05 * w):int(0.95 * w)] = 20
    return imgs


def ink_columns(img: np.ndarray) -> np.ndarray:
    return np.flatnonzero((img < 110).any(0))


def test_no_recut_returns_the_crops_as_they_are():
    imgs = plates(3)
    assert recut(imgs, np.random.default_rng(0), 0.0) is imgs


def test_the_same_seed_recuts_the_same_way_and_keeps_shape_and_type():
    imgs = plates(5)
    a = recut(imgs, np.random.default_rng(7), 0.1)
    b = recut(imgs, np.random.default_rng(7), 0.1)
    assert np.array_equal(a, b) and a.shape == imgs.shape and a.dtype == np.uint8
    assert not np.array_equal(a, imgs)


def test_the_framing_wanders_but_no_character_is_cut_off():
    out = recut(plates(), np.random.default_rng(1), 0.1)  # in by at most 3.3 %: the ink starts at 5 %
    lefts = np.array([ink_columns(o)[0] for o in out])
    rights = np.array([ink_columns(o)[-1] for o in out])
    assert lefts.min() >= 1 and rights.max() <= 126  # a margin left on both sides of every crop
    assert np.ptp(lefts) >= 8 and np.ptp(rights) >= 8  # and it differs from crop to crop


def test_moving_the_sides_out_only_shrinks_the_plate_within_the_crop():
    imgs = plates(50)
    out = recut(imgs, np.random.default_rng(2), 0.1, tight=0.0)
    widths = np.array([len(ink_columns(o)) for o in out])
    assert widths.max() <= len(ink_columns(imgs[0])) and widths.min() >= 0.95 * len(ink_columns(imgs[0])) / 1.2 - 1
