"""The OCR network's stems, heights and convolutions: each keeps the reader's contract (gray input 128 wide, 32 CTC steps)."""

import pytest

import json

from training import OCR_HEIGHTS, train_ocr
from training.ocr_model import ALPHABET, CONVS, INPUT_H, INPUT_W, STEMS, build_ocr_model


@pytest.mark.parametrize("stem", STEMS)
def test_every_stem_keeps_the_readers_input_and_output_shapes(stem):
    model = build_ocr_model(width=0.25, stem=stem)
    assert tuple(model.input.shape) == (None, INPUT_H, INPUT_W, 1)
    assert tuple(model.output.shape) == (None, 1, 32, len(ALPHABET) + 1)


@pytest.mark.parametrize("conv", CONVS)
def test_every_kind_of_convolution_keeps_the_readers_input_and_output_shapes(conv):
    model = build_ocr_model(width=0.25, conv=conv, height=48)
    assert tuple(model.input.shape) == (None, 48, INPUT_W, 1)
    assert tuple(model.output.shape) == (None, 1, 32, len(ALPHABET) + 1)


def test_separable_convolutions_filter_each_channel_then_mix_with_fewer_weights():
    """c2-c5 and s1-s3 become depthwise + 1x1 (the 1x1 keeps the layer's name);
    the first layer, with its one input channel, and the height-collapsing c6 stay full."""
    full, sep = build_ocr_model(width=1.5), build_ocr_model(width=1.5, conv="separable")
    depthwise = [layer.name for layer in sep.layers if type(layer).__name__ == "DepthwiseConv2D"]
    assert depthwise == [f"{n}_dw" for n in ("c2", "c3", "c4", "c5", "s1", "s2", "s3")]
    assert not [layer for layer in full.layers if type(layer).__name__ == "DepthwiseConv2D"]
    assert sep.get_layer("c2").kernel_size == (1, 1) and full.get_layer("c2").kernel_size == (3, 3)
    assert sep.get_layer("s3_dw").dilation_rate == (1, 4)  # the view along the plate is kept
    assert sep.get_layer("c6").kernel_size == full.get_layer("c6").kernel_size == (2, 1)
    assert sep.count_params() < full.count_params() / 2


def test_an_unknown_conv_is_refused_by_name(capsys):
    with pytest.raises(ValueError, match="conv: 'grouped' is not one of full, separable"):
        build_ocr_model(width=0.25, conv="grouped")
    assert train_ocr.parse_args([]).conv == "full"  # the shipped model's
    assert train_ocr.parse_args(["--conv", "separable"]).conv == "separable"
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--conv", "grouped"])
    assert "--conv: invalid choice: 'grouped'" in capsys.readouterr().err


def test_an_unknown_stem_is_refused_by_name():
    with pytest.raises(ValueError, match="stem: 'conv7'"):
        build_ocr_model(width=0.25, stem="conv7")


def test_the_trainer_offers_exactly_the_models_stems(capsys):
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--help"])
    assert "--stem {" + ",".join(STEMS) + "}" in capsys.readouterr().out
    for stem in STEMS:
        assert train_ocr.parse_args(["--stem", stem, "--real", "", "--backgrounds", ""]).stem == stem
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--stem", "conv7"])
    assert "--stem: invalid choice: 'conv7'" in capsys.readouterr().err


@pytest.mark.parametrize("height", OCR_HEIGHTS)
@pytest.mark.parametrize("stem", STEMS)
def test_a_taller_input_still_gives_the_reader_32_steps(stem, height):
    model = build_ocr_model(width=0.25, stem=stem, height=height)
    assert tuple(model.input.shape) == (None, height, INPUT_W, 1)
    assert tuple(model.output.shape) == (None, 1, 32, len(ALPHABET) + 1)


def test_the_shipped_height_is_the_default_and_an_unknown_one_is_refused_by_name(capsys):
    assert INPUT_H == 32 and train_ocr.parse_args([]).height == 32
    assert train_ocr.parse_args(["--height", "48"]).height == 48
    with pytest.raises(ValueError, match="height: 40 is not one of 32, 48, 64"):
        build_ocr_model(width=0.25, height=40)
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--height", "40"])
    assert "--height: invalid choice: 40" in capsys.readouterr().err


def test_a_checkpoint_of_another_net_is_not_resumed(tmp_path):
    """Height and stem leave the weight shapes alone, so a checkpoint of another
    net would load without complaint: the work folder remembers its net."""
    args = train_ocr.parse_args(["--work", str(tmp_path)])
    train_ocr.check_same_net(tmp_path, args)
    assert json.loads((tmp_path / train_ocr.NET_FILE).read_text())["height"] == 32
    train_ocr.check_same_net(tmp_path, args)  # the same net resumes
    taller = train_ocr.parse_args(["--work", str(tmp_path), "--height", "48", "--stem", "stride2"])
    with pytest.raises(SystemExit, match=r"holds a checkpoint of another net: stem 'pool' \(now 'stride2'\), "
                                         r"height 32 \(now 48\); use another --work"):
        train_ocr.check_same_net(tmp_path, taller)


def test_a_checkpoint_recorded_before_conv_existed_resumes_as_the_full_net_only(tmp_path):
    (tmp_path / train_ocr.NET_FILE).write_text(json.dumps({"width": 1.5, "stem": "pool", "height": 32}) + "\n")
    train_ocr.check_same_net(tmp_path, train_ocr.parse_args(["--work", str(tmp_path)]))
    sep = train_ocr.parse_args(["--work", str(tmp_path), "--conv", "separable"])
    with pytest.raises(SystemExit, match=r"another net: conv 'full' \(now 'separable'\)"):
        train_ocr.check_same_net(tmp_path, sep)


def test_a_checkpoint_trained_on_other_inputs_is_not_resumed(tmp_path):
    """Equalised and plain inputs fit the same weights: the work folder remembers
    which the checkpoint learnt; one recorded before --equalize learnt plain ones."""
    (tmp_path / train_ocr.NET_FILE).write_text(json.dumps({"width": 1.5, "stem": "pool", "height": 32}) + "\n")
    train_ocr.check_same_net(tmp_path, train_ocr.parse_args(["--work", str(tmp_path)]))
    clahe = train_ocr.parse_args(["--work", str(tmp_path), "--equalize", "clahe"])
    with pytest.raises(SystemExit, match=r"another net: equalize 'none' \(now 'clahe'\)"):
        train_ocr.check_same_net(tmp_path, clahe)


def test_bf16_training_keeps_float32_weights_and_a_float32_softmax():
    """bf16 computes in bfloat16 but its weights, and so checkpoints and the
    moving average, are the float32 net's, and the CTC loss gets float32 probabilities."""
    model = build_ocr_model(width=0.25, precision="bf16")
    assert {v.dtype for v in model.weights} == {"float32"}
    assert model.output.dtype == "float32"
    assert model.get_layer("c2").compute_dtype == "bfloat16"
    plain = build_ocr_model(width=0.25)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in plain.get_weights()]


def test_the_float32_twin_reads_as_the_bf16_net_does():
    """Export converts the float32 twin: the same weights, the same readings up to bfloat16 rounding."""
    import numpy as np

    from training.ocr_model import float32_twin

    model = build_ocr_model(width=0.25, precision="bf16", height=48)
    twin = float32_twin(model, width=0.25, height=48)
    assert twin.get_layer("c2").compute_dtype == "float32"
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
    x = np.random.default_rng(0).uniform(0, 255, (4, 48, INPUT_W, 1)).astype(np.float32)
    p16, p32 = model(x, training=False).numpy(), twin(x, training=False).numpy()
    assert np.abs(p16 - p32).max() < 0.05
    assert (p16.argmax(-1) == p32.argmax(-1)).mean() > 0.9


def test_an_unknown_precision_is_refused_by_name(capsys):
    with pytest.raises(ValueError, match="precision: 'fp16' is not one of float32, bf16"):
        build_ocr_model(width=0.25, precision="fp16")
    assert train_ocr.parse_args([]).precision == "float32"
    assert train_ocr.parse_args(["--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        train_ocr.parse_args(["--precision", "fp16"])
    assert "--precision: invalid choice: 'fp16'" in capsys.readouterr().err
