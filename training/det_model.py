"""SSD plate detector: MobileNetV2 backbone (from scratch), small FPN, plate anchors.

Two stems. "mobilenet" is keras' MobileNetV2 as it is (the shipped model).
"s4" reaches 80 px at once with a 4x4 stride-4 conv and then runs MobileNetV2's
blocks 2-16 (same widths, same layer names): on int8 XNNPACK the 160 px layers
of the standard net cost half the inference time for a fifth of its
multiply-adds (python -m training.profile_detector), and "s4" skips them.

Outputs raw SSD tensors: box encodings [B, N, 4] and class scores [B, N, 2]
(column 0 background, as TFLite_Detection_PostProcess expects, column 1 the
plate's sigmoid score). The export adds the post-process op.
"""

from __future__ import annotations

import keras
from keras import layers

from training.anchors import LEVELS, anchors_per_cell

INPUT_SIZE = 320
STEMS = ("mobilenet", "s4")
# MobileNetV2 blocks 2-16 as (expansion, output channels at alpha 1, stride)
_MNV2_BLOCKS = ((6, 24, 1),
                (6, 32, 2), (6, 32, 1), (6, 32, 1),
                (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1),
                (6, 96, 1), (6, 96, 1), (6, 96, 1),
                (6, 160, 2), (6, 160, 1), (6, 160, 1),
                (6, 320, 1))


def _divisible(v: float, d: int = 8) -> int:
    """keras' MobileNetV2 channel rounding (never more than 10 % below v)."""
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def _bn_relu(x, name, relu=True):
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name=name + "_BN")(x)
    return layers.ReLU(6.0, name=name + "_relu")(x) if relu else x


def _s4_backbone(x, alpha: float):
    """4x4/4 stem conv, then MobileNetV2 blocks 2-16 -> (stride 8, 16, 32 taps),
    tapped where build_detector taps keras' net."""
    x = layers.Conv2D(8, 4, strides=4, use_bias=False, name="stem")(x)
    x = _bn_relu(x, "stem")
    taps = {}
    for i, (t, c, stride) in enumerate(_MNV2_BLOCKS, start=2):
        c_in, c_out, pre = x.shape[-1], _divisible(c * alpha), f"block_{i}_"
        h = layers.Conv2D(c_in * t, 1, use_bias=False, name=pre + "expand")(x)
        h = _bn_relu(h, pre + "expand")
        taps[f"block_{i}_expand_relu"] = h
        h = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=pre + "depthwise")(h)
        h = _bn_relu(h, pre + "depthwise")
        h = layers.Conv2D(c_out, 1, use_bias=False, name=pre + "project")(h)
        h = _bn_relu(h, pre + "project", relu=False)
        x = layers.Add(name=pre + "add")([x, h]) if stride == 1 and c_in == c_out else h
    x = layers.Conv2D(1280, 1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name="Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    return taps["block_6_expand_relu"], taps["block_13_expand_relu"], x


def _sep(x, filters, name):
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=name + "_bn")(x)
    return layers.ReLU(6.0, name=name + "_relu")(x)


def build_detector(alpha: float = 0.35, size: int = INPUT_SIZE, fpn: int = 64,
                   stem: str = "mobilenet") -> keras.Model:
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inp)
    if stem == "s4":
        c8, c16, c32 = _s4_backbone(x, alpha)
    else:
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
