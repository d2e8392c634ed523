"""The OCR network: a small CRNN-style conv net with a CTC head.

All-convolutional on purpose: it converts to full int8 TFLite cleanly and
runs well under 1 ms on one core, while a recurrent head would cost time
(and a non-unrolled LSTM crashes the int8 converter). The sequence context
comes from 1-D convolutions over the 32 time steps.

Input: uint8-range gray (B, H, 128, 1), H one of OCR_HEIGHTS (32 shipped).
Output: softmax (B, 1, T=32, C) with the CTC blank at the last index, the
same for every H, so the runtime reader needs no change for a taller input.
"""

from __future__ import annotations

import keras
from keras import layers

from training import OCR_CONVS, OCR_HEIGHT, OCR_HEIGHTS, OCR_PRECISIONS, OCR_STEMS

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
INPUT_H, INPUT_W = OCR_HEIGHT, 128


def _conv(x, filters, kernel=(3, 3), name=None, dilation=(1, 1), strides=(1, 1), dtype=None,
          separable=False):
    """Conv, batch norm, ReLU. `separable` first filters each channel alone (depthwise,
    with its own batch norm and ReLU) and then mixes channels with a 1x1 conv."""
    if separable:
        x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False,
                                   dilation_rate=dilation, name=name + "_dw", dtype=dtype)(x)
        x = layers.BatchNormalization(momentum=0.9, name=name + "_dw_bn", dtype=dtype)(x)
        x = layers.ReLU(name=name + "_dw_relu", dtype=dtype)(x)
        kernel, dilation, strides = (1, 1), (1, 1), (1, 1)
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      dilation_rate=dilation, name=name, dtype=dtype)(x)
    # momentum 0.9: with 0.999 a short run's moving statistics stay at their
    # initial values and the exported (inference-mode) model is garbage.
    x = layers.BatchNormalization(momentum=0.9, name=None if name is None else name + "_bn", dtype=dtype)(x)
    return layers.ReLU(name=None if name is None else name + "_relu", dtype=dtype)(x)


# How the first layer reaches 16 x 64: "pool" convolves at full resolution and
# max-pools; "stride2" convolves with stride 2 and never writes the 32x128x24
# map, the net's largest tensor (few multiply-adds, much memory traffic): one
# read 0.34 against 0.39 ms on an AVX-512 CPU, 1.20 against 1.41 ms on an AVX2 one.
STEMS = OCR_STEMS

# "separable" factorises every 3-wide convolution after the first (c2-c5, s1-s3);
# the first layer (one input channel) and the height-collapsing c6 stay full.
# On an AVX2 CPU it trains 256 against 139 img/s at width 1.5, but at width 2
# (retrain 44, docs/ocr-retrains.md) it read 7-8 points fewer real plates than
# the full net, at half its read time: so "full" stays the default.
CONVS = OCR_CONVS


# Keras dtype policy per precision: "bf16" keeps the weights float32 (so a
# checkpoint, the moving average and export are the same for both) and
# computes in bfloat16; the softmax stays float32 for the CTC loss's log.
POLICIES = {"float32": "float32", "bf16": "mixed_bfloat16"}


def build_ocr_model(width: float = 1.0, n_classes: int = len(ALPHABET) + 1,
                    stem: str = "pool", height: int = INPUT_H, precision: str = "float32",
                    dropout: float = 0.0, conv: str = "full") -> keras.Model:
    """CRNN-without-RNN. `width` scales channel counts (tests use a tiny one);
    `height` is the input's, the width always INPUT_W (32 CTC steps); `precision`
    how it computes while training (export wants "float32", see float32_twin);
    `dropout` a training-time regulariser with no weights (float32_twin leaves it out);
    `conv` whether the 3-wide convolutions after the first are full or separable."""
    if precision not in OCR_PRECISIONS:
        raise ValueError(f"precision: {precision!r} is not one of {', '.join(OCR_PRECISIONS)}")
    dt = POLICIES[precision]
    if stem not in STEMS:
        raise ValueError(f"stem: {stem!r} is not one of {', '.join(STEMS)}")
    if height not in OCR_HEIGHTS:
        raise ValueError(f"height: {height!r} is not one of {', '.join(map(str, OCR_HEIGHTS))}")
    if conv not in CONVS:
        raise ValueError(f"conv: {conv!r} is not one of {', '.join(CONVS)}")
    sep = conv == "separable"
    c = lambda n: max(4, int(round(n * width)))  # noqa: E731
    pool = lambda size: layers.MaxPooling2D(size, dtype=dt)  # noqa: E731
    inp = keras.Input((height, INPUT_W, 1), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, dtype=dt)(inp)
    if stem == "stride2":
        x = _conv(x, c(24), name="c1", strides=(2, 2), dtype=dt)  # H/2 x 64 (16 x 64 at H 32)
    else:
        x = _conv(x, c(24), name="c1", dtype=dt)
        x = pool((2, 2))(x)  # H/2 x 64
    x = _conv(x, c(48), name="c2", dtype=dt, separable=sep)
    x = pool((2, 2))(x)  # H/4 x 32
    x = _conv(x, c(64), name="c3", dtype=dt, separable=sep)
    x = _conv(x, c(64), name="c4", dtype=dt, separable=sep)
    x = pool((2, 1))(x)  # H/8 x 32
    x = _conv(x, c(96), name="c5", dtype=dt, separable=sep)
    x = pool((2, 1))(x)  # H/16 x 32 (2 at H 32, 3 at 48)
    x = _conv(x, c(128), kernel=(2, 1), name="c6", dtype=dt)
    x = pool((height // 16, 1))(x)  # collapse height: 1 x 32
    x = _conv(x, c(128), kernel=(1, 3), name="s1", dtype=dt, separable=sep)
    x = _conv(x, c(128), kernel=(1, 3), dilation=(1, 2), name="s2", dtype=dt, separable=sep)
    # a wider view along the plate (receptive field ~15 of 32 steps) lets the
    # head tell the registration from stickers and logos beside it
    x = _conv(x, c(128), kernel=(1, 3), dilation=(1, 4), name="s3", dtype=dt, separable=sep)
    if dropout:  # training only: the exported (inference) graph has no dropout op
        x = layers.Dropout(dropout, dtype=dt)(x)
    x = layers.Conv2D(n_classes, (1, 1), name="logits", dtype=dt)(x)
    out = layers.Softmax(axis=-1, name="probs", dtype="float32")(x)
    return keras.Model(inp, out, name="plate_ocr")


def float32_twin(model: keras.Model, **net) -> keras.Model:
    """The net built from `net` (build_ocr_model's options) computing in float32,
    with a copy of `model`'s weights: what the int8 converter is given, as it
    cannot calibrate bfloat16 ops."""
    twin = build_ocr_model(**net, precision="float32")
    twin.set_weights(model.get_weights())
    return twin
