"""SSD plate detector: MobileNetV2 backbone (from scratch), small FPN, plate anchors.

Outputs raw SSD tensors: box encodings [B, N, 4] and class scores [B, N, 2]
(column 0 background, as TFLite_Detection_PostProcess expects, column 1 the
plate's sigmoid score). The export adds the post-process op.
"""

from __future__ import annotations

import keras
from keras import layers

from training.anchors import LEVELS, anchors_per_cell

INPUT_SIZE = 320


def _sep(x, filters, name):
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=name + "_bn")(x)
    return layers.ReLU(6.0, name=name + "_relu")(x)


def build_detector(alpha: float = 0.35, size: int = INPUT_SIZE, fpn: int = 64) -> keras.Model:
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inp)
    base = keras.applications.MobileNetV2(input_tensor=x, alpha=alpha, include_top=False, weights=None)
    # keras' MobileNetV2 uses BN momentum 0.999: a fresh model's moving
    # statistics would barely move and inference outputs would ignore the input.
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    c8 = base.get_layer("block_6_expand_relu").output    # stride 8
    c16 = base.get_layer("block_13_expand_relu").output  # stride 16
    c32 = base.get_layer("out_relu").output              # stride 32
    p32 = layers.Conv2D(fpn, 1, name="lat32")(c32)
    p16 = layers.Add()([layers.Conv2D(fpn, 1, name="lat16")(c16), layers.UpSampling2D(2)(p32)])
    p8 = layers.Add()([layers.Conv2D(fpn, 1, name="lat8")(c8), layers.UpSampling2D(2)(p16)])
    boxes, scores = [], []
    for lvl, p in enumerate((p8, p16, p32)):
        a = anchors_per_cell(lvl)
        h = _sep(p, fpn, f"head{lvl}")
        b = layers.Conv2D(a * 4, 3, padding="same", name=f"box{lvl}")(h)
        c = layers.Conv2D(a, 3, padding="same", name=f"cls{lvl}",
                          bias_initializer=keras.initializers.Constant(-4.6))(h)  # prior 0.01
        boxes.append(layers.Reshape((-1, 4))(b))
        scores.append(layers.Reshape((-1, 1))(c))
    box = layers.Concatenate(axis=1, name="box_encodings")(boxes)
    logit = layers.Concatenate(axis=1, name="class_logits")(scores)
    return keras.Model(inp, [box, logit], name="plate_ssd")


def n_anchors(size: int = INPUT_SIZE) -> int:
    return sum((size // s) ** 2 * len(h) * len(r) for s, h, r in LEVELS)
