"""The OCR's one training command works end to end: train -> int8 export -> runtime read.

A tiny run (a few steps, tiny model) of the same command the shipped model
was made with, then the product's own TfliteReader loads and runs the file.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.reader import TfliteReader
from edge.runtime import describe, load_interpreter

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_train_export_load_run(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "training.train_ocr", "--tiny", "--work", str(tmp_path / "work"), "--out", str(out),
         "--threads", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    model, alphabet = out / "ocr.tflite", out / "alphabet.txt"
    assert model.stat().st_size > 1000
    assert alphabet.read_text().strip() == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    figures = json.loads((out / "training_figures.json").read_text())["figures"]
    assert figures["steps"] == 30
    assert "ocr.tflite" in (out / "MODEL_CARD.md").read_text()

    interp = load_interpreter(model, num_threads=1)
    assert "uint8" in describe(interp)  # full-integer: uint8 input
    reader = TfliteReader(model, alphabet, num_threads=1)
    crop = np.random.default_rng(0).integers(0, 255, (40, 160), dtype=np.uint8)
    reading = reader.read(crop)
    assert set(reading.text) <= set(alphabet.read_text().strip())
    assert 0.0 <= reading.confidence <= 1.0
    assert len(reading.char_confidences) == len(reading.text)


@pytest.mark.slow
def test_a_taller_separable_net_trained_in_bf16_on_equalised_input_exports_and_reads_through_the_runtime_reader(
        tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "training.train_ocr", "--tiny", "--height", "48", "--precision", "bf16",
         "--conv", "separable", "--equalize", "clahe",
         "--work", str(tmp_path / "work"), "--out", str(out), "--threads", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    interp = load_interpreter(out / "ocr.tflite", num_threads=1)
    assert tuple(interp.get_input_details()[0]["shape"]) == (1, 48, 128, 1)
    card = (out / "MODEL_CARD.md").read_text()
    assert "1x48x128x1" in card and "computing in bf16 (float32 weights)" in card
    assert "| set | bf16 | int8 |" in card  # its validation figures are the bf16 net's
    assert "depthwise-separable" in card
    assert "DEPTHWISE_CONV_2D" in {op["op_name"] for op in interp._get_ops_details()}
    assert "then equalised: clahe (recorded in ocr.input.json)" in card
    # the reader learns the equalisation from the record beside the model
    assert json.loads((out / "ocr.input.json").read_text()) == {"equalize": "clahe"}
    reader = TfliteReader(out / "ocr.tflite", out / "alphabet.txt", num_threads=1)
    assert reader.equalize == "clahe"
    reading = reader.read(np.random.default_rng(0).integers(0, 255, (40, 160), dtype=np.uint8))
    assert 0.0 <= reading.confidence <= 1.0 and len(reading.char_confidences) == len(reading.text)


def test_resume_continues_from_the_checkpoint(tmp_path):
    """Running the command again with the same --work resumes instead of restarting."""
    args = [sys.executable, "-m", "training.train_ocr", "--tiny", "--no-eval", "--work", str(tmp_path / "w"),
            "--out", str(tmp_path / "o"), "--threads", "2"]
    first = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0
    assert "resumed from" in second.stdout and "at step 30 of 30" in second.stdout


def test_the_training_step_benchmark_reports_its_speed():
    """python -m training.bench_train_step times the trainer's own step (one JSON line)."""
    proc = subprocess.run([sys.executable, "-m", "training.bench_train_step", "--steps", "2", "--batch", "4",
                           "--width", "0.25", "--threads", "1", "--inter-op", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["ms_per_step"] > 0 and figures["batch"] == 4 and figures["inter_op"] == 1
    assert figures["height"] == 32 and figures["conv"] == "full"
    assert figures["TF_ENABLE_ONEDNN_OPTS"] == "1" and figures["precision"] == "float32"


@pytest.mark.parametrize("option, default, good, bad", [
    ("--us-extra-faces", 0.35, "0", "1.5"), ("--narrow-wm", 0.0, "1", "-0.5"),
    ("--emboss", 0.0, "0.5", "2"), ("--glyph-vary", 0.0, "1", "-1"), ("--clean", 0.0, "0.3", "1.2"),
])
def test_renderer_shares_outside_0_to_1_are_usage_errors(capsys, option, default, good, bad):
    from training.train_ocr import parse_args

    attr = option[2:].replace("-", "_")
    assert getattr(parse_args([]), attr) == default and getattr(parse_args([option, good]), attr) == float(good)
    with pytest.raises(SystemExit):
        parse_args([option, bad])
    assert f"argument {option}: expected a number from 0 to 1, got '{bad}'" in capsys.readouterr().err


def test_the_documented_command_has_the_options_that_made_the_shipped_model():
    """`python -m training.train_ocr` with no options retrains the committed model:
    every option in its card's command other than where files go is a default."""
    from training.train_ocr import parse_args

    figures = json.loads((REPO / "tflite_graphs" / "ocr" / "training_figures.json").read_text())["figures"]
    words = figures["command"].split()
    assert words[:3] == ["python", "-m", "training.train_ocr"]
    shipped, default = vars(parse_args(words[3:])), vars(parse_args([]))
    for where in ("out", "work"):
        shipped.pop(where), default.pop(where)
    assert shipped == default


def test_a_width_that_is_not_positive_is_a_usage_error(capsys):
    from training.train_ocr import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--width", "0"])
    assert "argument --width: expected a positive number, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, expected", [
    ("--batch", "0", "a positive integer"), ("--threads", "-1", "a positive integer"),
    ("--real-fraction", "1.5", "a number from 0 to 1"), ("--minutes", "nan", "a positive number"),
])
def test_both_trainers_refuse_a_bad_number_before_any_work(capsys, option, value, expected):
    from training import train_detector, train_ocr

    for trainer in (train_ocr, train_detector):
        with pytest.raises(SystemExit):
            trainer.parse_args([option, value])
        assert f"argument {option}: expected {expected}, got '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--real", "--backgrounds"])
def test_both_trainers_refuse_a_data_folder_typed_wrong_before_any_work(capsys, tmp_path, option):
    """A typo in a data folder would otherwise train a different model, quietly."""
    from training import train_detector, train_ocr

    absent = tmp_path / "no-such"
    for trainer in (train_ocr, train_detector):
        with pytest.raises(SystemExit):
            trainer.parse_args([option, str(absent)])
        assert f"{option} {absent}: no such folder" in capsys.readouterr().err


def test_a_missing_default_data_folder_is_a_warning_and_an_empty_one_means_none(tmp_path):
    """A clone without ../shared still trains (on synthetic data only) and says so."""
    import argparse

    from training.loop import check_data_folders

    p = argparse.ArgumentParser()
    p.add_argument("--real", default=str(tmp_path / "shared" / "br-crops"))
    p.add_argument("--backgrounds", default=str(tmp_path))
    assert check_data_folders(p, p.parse_args([]), ("real", "backgrounds")) == [
        f"--real {tmp_path / 'shared' / 'br-crops'}: no such folder, training without it"]
    assert check_data_folders(p, p.parse_args(["--real", ""]), ("real", "backgrounds")) == []


def test_an_ema_momentum_of_one_or_more_is_a_usage_error(capsys):
    """At momentum 1 the average would never leave the first weights."""
    from training.train_ocr import parse_args

    assert parse_args(["--ema", "0"]).ema == 0.0
    with pytest.raises(SystemExit):
        parse_args(["--ema", "1"])
    assert "argument --ema: expected a number from 0 to below 1, got '1'" in capsys.readouterr().err


@pytest.mark.slow
def test_averaged_weights_replace_the_last_ones_after_the_checkpoint_keeps_the_last(tmp_path):
    """use_averaged_weights puts the optimizer's moving average in the model and
    re-estimates batch-norm statistics; the checkpoint saved before it holds the
    last weights, so a rerun resumes from those; without --ema nothing changes."""
    import time

    import keras
    import tensorflow as tf

    from training.loop import Run

    def model_and_run(ema, work):
        keras.utils.set_random_seed(0)
        inp = keras.Input((4,))
        out = keras.layers.Dense(1)(keras.layers.BatchNormalization(momentum=0.5)(keras.layers.Dense(3)(inp)))
        model = keras.Model(inp, out)
        return model, Run(model, 0.1, work, steps=5, minutes=1.0, t_start=time.time(), ema=ema)

    x = tf.constant(np.random.default_rng(0).normal(3.0, 2.0, (8, 4)).astype(np.float32))

    def train(model, run):
        for _ in range(5):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model(x, training=True) ** 2)
            run.opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            run.advance()
        run.save()

    model, run = model_and_run(0.5, tmp_path / "ema")
    train(model, run)
    last = [v.numpy().copy() for v in model.trainable_variables]
    average = [v.numpy().copy() for v in run.opt._model_variables_moving_average]
    bn_mean = model.layers[2].moving_mean.numpy().copy()
    assert not all(np.allclose(a, b) for a, b in zip(last, average))
    assert run.use_averaged_weights([x * 2.0] * 3)
    for v, a in zip(model.trainable_variables, average):
        np.testing.assert_allclose(v.numpy(), a)
    assert not np.allclose(model.layers[2].moving_mean.numpy(), bn_mean)  # statistics re-estimated

    again, resumed = model_and_run(0.5, tmp_path / "ema")
    assert resumed.step == 5
    for v, a in zip(again.trainable_variables, last):
        np.testing.assert_allclose(v.numpy(), a)

    plain, plain_run = model_and_run(0.0, tmp_path / "plain")
    train(plain, plain_run)
    before = [v.numpy().copy() for v in plain.variables]
    assert not plain_run.use_averaged_weights([x])
    for v, b in zip(plain.variables, before):
        np.testing.assert_array_equal(v.numpy(), b)


@pytest.mark.slow
def test_a_monotone_schedule_keeps_its_peak_over_a_resume(tmp_path):
    """The budget can re-plan a larger total; with monotone_lr the progress
    stays at its peak, and a resumed run starts from the checkpointed peak."""
    import time

    import keras

    from training.loop import Run

    def run_of(work, monotone):
        inp = keras.Input((2,))
        return Run(keras.Model(inp, keras.layers.Dense(1)(inp)), 0.1, work, steps=10, minutes=1.0,
                   t_start=time.time(), monotone_lr=monotone)

    run = run_of(tmp_path / "w", True)
    for _ in range(5):
        run.advance()
    assert run.progress() == 0.5
    run._total.assign(20)  # what the budget does when the machine speeds up
    assert run.progress() == 0.5
    run.save()
    resumed = run_of(tmp_path / "w", True)
    assert (resumed.step, resumed.total, resumed.progress()) == (5, 20, 0.5)
    assert run_of(tmp_path / "w", False).progress() == 0.25  # the plain schedule goes back


@pytest.mark.slow
def test_with_ema_the_command_exports_the_average_and_keeps_the_last_weights_beside_it(tmp_path):
    """... and the card names each option the run was made with."""
    out, work = tmp_path / "out", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "training.train_ocr", "--tiny", "--ema", "0.9", "--monotone-lr", "--work", str(work),
         "--out", str(out), "--threads", "2", "--dropout", "0.2", "--weight-decay", "0.01", "--emboss", "0.5",
         "--glyph-vary", "0.25", "--clean", "0.3"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    figures = json.loads((out / "training_figures.json").read_text())["figures"]
    assert figures["ema"] == 0.9
    last = Path(figures["last_weights"]["tflite"])
    assert last == work / "last_weights_ocr.tflite"
    for model in (out / "ocr.tflite", last):  # each with its input record: plain input
        assert json.loads(model.with_suffix(".input.json").read_text()) == {"equalize": "none"}
    assert "equalised" not in (out / "MODEL_CARD.md").read_text()
    assert "moving average of the weights (momentum 0.9" in (out / "MODEL_CARD.md").read_text()
    assert figures["monotone_lr"] is True and "--monotone-lr" in figures["command"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "cosine decay (on the largest fraction done so far" in card
    assert "dropout 0.2 on the sequence features, weight decay 0.01" in card
    assert ("50% of serials embossed, 25% of serials bolder or lighter and condensed, "
            "30% of crops from a close, clear view") in card
    assert (figures["dropout"], figures["weight_decay"], figures["emboss"], figures["glyph_vary"],
            figures["clean"]) == (0.2, 0.01, 0.5, 0.25, 0.3)
    outputs = []
    for model in (out / "ocr.tflite", last):
        interp = load_interpreter(model, num_threads=1)
        inp = interp.get_input_details()[0]
        interp.set_tensor(inp["index"], np.random.default_rng(0).integers(0, 255, inp["shape"], dtype=np.uint8))
        interp.invoke()
        outputs.append(interp.get_tensor(interp.get_output_details()[0]["index"]).astype(int))
    assert np.abs(outputs[0] - outputs[1]).sum() > 0  # two different sets of weights


def test_weight_decay_shrinks_the_conv_kernels_but_not_batch_norm_or_biases(tmp_path):
    """AdamW-style decay: with a zero gradient Adam moves nothing, so what moves is the decay,
    lr * weight_decay of each kernel, while batch-norm scales and offsets and biases stay."""
    import time

    import keras
    import tensorflow as tf

    from training.loop import Run

    inp = keras.Input((4,))
    out = keras.layers.Dense(2, name="head")(keras.layers.BatchNormalization(name="d_bn")(
        keras.layers.Dense(3, name="d")(inp)))
    model = keras.Model(inp, out)
    model.get_layer("d_bn").gamma.assign(np.full(3, 1.5, np.float32))
    model.get_layer("head").bias.assign(np.ones(2, np.float32))
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    run = Run(model, 0.1, tmp_path, steps=1, minutes=1.0, t_start=time.time(), weight_decay=0.5)
    run.opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    after = {v.path: v.numpy() for v in model.trainable_variables}
    for path in ("d/kernel", "head/kernel"):
        np.testing.assert_allclose(after[path], before[path] * (1 - 0.1 * 0.5), rtol=1e-6)
    for path in ("d/bias", "d_bn/gamma", "d_bn/beta", "head/bias"):
        np.testing.assert_array_equal(after[path], before[path])


def test_dropout_is_for_training_only_and_the_exported_twin_has_none():
    import keras

    from training.ocr_model import build_ocr_model, float32_twin

    model = build_ocr_model(width=0.25, dropout=0.5)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.5]
    twin = float32_twin(model, width=0.25)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in twin.layers)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 128, 1)).astype(np.float32)
    np.testing.assert_allclose(model(x, training=False).numpy(), twin(x, training=False).numpy(), atol=1e-6)
    assert not np.allclose(model(x, training=True).numpy(), model(x, training=True).numpy())


@pytest.mark.parametrize("option, value, expected", [
    ("--weight-decay", "-0.1", "a number from 0 to 1"), ("--dropout", "1", "a number from 0 to below 1"),
])  # (the renderer's shares: test_renderer_shares_outside_0_to_1_are_usage_errors)
def test_regulariser_strengths_out_of_range_are_usage_errors(capsys, option, value, expected):
    from training.train_ocr import parse_args

    assert (parse_args([]).weight_decay, parse_args([]).dropout) == (0.0, 0.0)
    with pytest.raises(SystemExit):
        parse_args([option, value])
    assert f"argument {option}: expected {expected}, got '{value}'" in capsys.readouterr().err
