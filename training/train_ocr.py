"""One command: render data, train the plate OCR, export int8 TFLite, evaluate.

    python -m training.train_ocr            # the documented full run (<= 90 min on 2 cores)
    python -m training.train_ocr --tiny     # a seconds-long smoke run (tests)

Checkpoints every few minutes under --work and resumes from there when run
again with the same arguments; progress (loss, speed, ETA, validation) is
logged. The final model, alphabet and model card go to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from edge.argtypes import fraction, fraction_below_one, positive_float, positive_int
from edge.preprocess import EQUALIZERS, equalize_all
from edge.reader import write_input_record
from training import OCR_CONVS, OCR_HEIGHT, OCR_HEIGHTS, OCR_PRECISIONS, OCR_STEMS, OCR_WIDTH, REPO, SHARED
from training.evaluation import rewrite_figures, run_eval, training_command
from training.loop import Run, begin, check_data_folders, configure_tf, setup_logging, warm_cosine

log = logging.getLogger("train_ocr")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "tflite_graphs" / "ocr"), help="where the model, alphabet and card go")
    p.add_argument("--work", default=str(REPO / "runs" / "ocr"), help="checkpoints and data cache")
    p.add_argument("--synthetic", type=positive_int, default=200_000,
                   help="synthetic crops to render once and cache (rendering counts against --minutes; "
                        "400000 read no better in retrain 48)")
    p.add_argument("--chunk", type=positive_int, default=10_000)
    p.add_argument("--minutes", type=positive_float, default=82.0,
                   help="time budget for rendering + training (the step count follows the machine's speed); "
                        "export and evaluation add ~4 min")
    p.add_argument("--steps", type=int, default=0, help="fixed step count instead of --minutes")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--real-fraction", type=fraction, default=0.12, help="share of each batch from real crops")
    p.add_argument("--real-recut", type=fraction, default=0.0, metavar="F",
                   help="cut each real crop again from a box whose sides move out by up to F or in by up to "
                        "F/3 of its size (training.ocr_data.recut); 0 = the crops as labelled")
    # The defaults are the options that made the shipped model (its card's command; a test checks).
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--us-extra-faces", type=fraction, default=0.35, metavar="P",
                   help="share of US serials drawn in other typefaces (slab, serif, geometric, tall "
                        "condensed); 0 = the nine Highway-Gothic- and DIN-like faces only")
    p.add_argument("--narrow-wm", type=fraction, default=0.0, metavar="F",
                   help="draw W and M as narrow as H, as plate typefaces do, on F times 50 %% of EU "
                        "plates, 80 %% of German and 35 %% of US ones; 0 = our fonts' wide W and M")
    p.add_argument("--ema", type=fraction_below_one, default=0.9995, metavar="M",
                   help="export a moving average of the weights (momentum M per step); 0 = the last weights")
    p.add_argument("--width", type=positive_float, default=OCR_WIDTH,
                   help="channel width multiplier (default: the shipped model's; 1: retrains 1-25's narrower net)")
    p.add_argument("--stem", choices=OCR_STEMS, default="pool",
                   help="first layer: full-resolution conv + max-pool, or a stride-2 conv (faster)")
    p.add_argument("--conv", choices=OCR_CONVS, default="full",
                   help="the 3-wide convolutions after the first: full, or separable (depthwise then 1x1: "
                        "a fifth of the multiply-adds at width 1.5, ~1.8x the training speed, and 7-8 "
                        "points fewer real plates read in retrain 44 (width 2); python -m training.bench_train_step "
                        "--conv separable compares)")
    p.add_argument("--height", type=int, choices=OCR_HEIGHTS, default=OCR_HEIGHT,
                   help="input height in pixels (width 128): taller keeps more of a loose crop's characters")
    p.add_argument("--equalize", choices=EQUALIZERS, default="none",
                   help="equalise every model input (edge/preprocess.py), in training and, through the "
                        "ocr.input.json written beside the model, in reading: clahe = contrast-limited "
                        "adaptive histogram equalisation (retrains 45-46); none = the stretched crop as it is")
    p.add_argument("--precision", choices=OCR_PRECISIONS, default="float32",
                   help="how the net computes while training: bf16 = bfloat16 with float32 weights, a third "
                        "faster on a CPU with AMX and AVX-512 BF16 (python -m training.bench_train_step "
                        "--precision bf16 compares); the export is int8 either way")
    p.add_argument("--emboss", type=fraction, default=0.0, metavar="P",
                   help="share of plates whose serial is embossed (raised, lit from one side); 0 = flat paint, "
                        "as retrains 1-42")
    p.add_argument("--glyph-vary", type=fraction, default=0.0, metavar="P",
                   help="share of plates whose serial is drawn bolder or lighter and condensed; 0 = the fonts "
                        "as they are, as retrains 1-42")
    p.add_argument("--clean", type=fraction, default=0.0, metavar="P",
                   help="share of crops from a close, clear view: a tight box, characters 18-48 px high, "
                        "straight on, by day, never badly degraded (training/degrade.py); 0 = the mix of "
                        "retrains 1-48")
    p.add_argument("--weight-decay", type=fraction, default=0.0, metavar="W",
                   help="decoupled weight decay (AdamW) on the conv weights; 0 = plain Adam, as retrains 1-42")
    p.add_argument("--dropout", type=fraction_below_one, default=0.0, metavar="P",
                   help="dropout on the sequence features before the logits while training; 0 = none, as retrains 1-42")
    p.add_argument("--monotone-lr", action="store_true",
                   help="the cosine learning rate never rises again when the time budget re-plans more steps "
                        "(a machine that speeds up mid-run); default: it follows step / planned total")
    p.add_argument("--threads", type=positive_int, default=os.cpu_count() or 2)
    p.add_argument("--inter-op", type=positive_int, default=2,
                   help="ops TensorFlow runs at once (python -m training.bench_train_step --inter-op N compares)")
    p.add_argument("--real", default=str(SHARED / "train" / "br-crops"), help="real crops with labels.csv ('' = none)")
    p.add_argument("--backgrounds", default=str(SHARED / "train" / "backgrounds"))
    p.add_argument("--eval-us", default=str(SHARED / "eval" / "openalpr-us-crops"))
    p.add_argument("--eval-eu", default=str(SHARED / "eval" / "openalpr-eu"))
    p.add_argument("--no-eval", action="store_true", help="skip the real-set evaluation and model card figures")
    p.add_argument("--evaluate-only", action="store_true",
                   help="only evaluate the model in --out and rewrite its card (training figures kept)")
    p.add_argument("--tiny", action="store_true", help="smoke run: tiny data, tiny model, a few steps")
    a = p.parse_args(argv)
    a.missing_folders = check_data_folders(p, a, ("real", "backgrounds"))
    if a.tiny:
        a.synthetic, a.chunk, a.steps, a.batch, a.width = 256, 128, 30, 16, 0.25
        a.no_eval = True
    return a


def greedy_decode(probs: np.ndarray, alphabet: str) -> list[str]:
    """(B, T, C) probabilities -> strings (blank = last class)."""
    best = probs.argmax(-1)
    blank = probs.shape[-1] - 1
    out = []
    for row in best:
        keep = np.ones_like(row, bool)
        keep[1:] = row[1:] != row[:-1]
        keep &= row != blank
        out.append("".join(alphabet[i] for i in row[keep]))
    return out


def label_text(lab: np.ndarray, alphabet: str) -> str:
    return "".join(alphabet[i] for i in lab if i >= 0)


def make_train_step(tf, model, opt):
    """One compiled CTC step: (x, labels padded with 0, label lengths) -> mean loss."""
    T = model.output_shape[2]

    @tf.function(reduce_retracing=True)
    def train_step(x, y, ylen):
        with tf.GradientTape() as tape:
            p = model(x, training=True)[:, 0]
            logits = tf.math.log(p + 1e-7)
            loss = tf.nn.ctc_loss(y, logits, ylen, tf.fill([tf.shape(x)[0]], T),
                                  logits_time_major=False, blank_index=-1)
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 5.0)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return train_step


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    if args.evaluate_only:
        return evaluate_only(args)
    for warning in args.missing_folders:
        log.warning(warning)
    t_start, work = begin(args.work)
    check_same_net(work, args)

    from training.ocr_data import RenderOptions, is_held_out, real_crops, recut, synthetic_set
    from training.ocr_model import ALPHABET, INPUT_W

    alphabet = ALPHABET
    size = (INPUT_W, args.height)
    # equalised after the cache: the rendered crops do not depend on it
    imgs, labs = synthetic_set(str(work / "cache"), args.synthetic, args.chunk, args.seed, alphabet,
                               args.backgrounds, workers=max(1, args.threads),
                               options=RenderOptions(args.us_extra_faces, args.narrow_wm, args.emboss,
                                                     args.glyph_vary, args.clean), size=size)
    imgs = equalize_all(imgs, args.equalize)
    n_val = min(2000, len(imgs) // 10)
    s_val_x, s_val_y = imgs[:n_val], labs[:n_val]
    s_tr_x, s_tr_y = imgs[n_val:], labs[n_val:]
    if args.real and os.path.isdir(args.real):
        rx, ry, names = real_crops(args.real, alphabet, size)
        # deterministic 90/10 split by file name
        is_val = np.array([is_held_out(n) for n in names])
        r_tr_raw, r_tr_y, r_val_y = rx[~is_val], ry[~is_val], ry[is_val]
        # recut (in batch()) cuts the stretched crop again, before equalising
        r_tr_x, r_val_x = equalize_all(r_tr_raw, args.equalize), equalize_all(rx[is_val], args.equalize)
        log.info("real crops: %d train, %d validation (%s)", len(r_tr_x), len(r_val_x), args.real)
    else:
        r_tr_x = r_tr_y = r_val_x = r_val_y = None
        log.info("no real crops used")
    log.info("synthetic: %d train, %d validation (%.0f s so far)", len(s_tr_x), n_val, time.time() - t_start)

    tf = configure_tf(args.threads, args.seed, inter_op=args.inter_op)
    from training.ocr_model import build_ocr_model, float32_twin

    net = net_options(args)
    model = build_ocr_model(**net, precision=args.precision, dropout=args.dropout)
    run = Run(model, args.lr, work, steps=args.steps, minutes=args.minutes, t_start=t_start,
              budget_every=100, budget_warmup=150, ema=args.ema, monotone_lr=args.monotone_lr,
              weight_decay=args.weight_decay)
    train_step = make_train_step(tf, model, run.opt)

    @tf.function(reduce_retracing=True)
    def predict(x):
        return model(x, training=False)[:, 0]

    def accuracy(x, y) -> float:
        if x is None or len(x) == 0:
            return float("nan")
        preds = []
        for k in range(0, len(x), 256):
            xb = tf.constant(x[k:k + 256, :, :, None].astype(np.float32))
            preds += greedy_decode(predict(xb).numpy(), alphabet)
        truth = [label_text(t, alphabet) for t in y]
        return float(np.mean([a == b for a, b in zip(preds, truth)]))

    rng = np.random.default_rng(args.seed + run.step)
    n_real = 0 if r_tr_x is None else int(round(args.batch * args.real_fraction))
    n_syn = args.batch - n_real

    def batch():
        i = rng.integers(0, len(s_tr_x), n_syn)
        x, y = s_tr_x[i], s_tr_y[i]
        if n_real:
            j = rng.integers(0, len(r_tr_x), n_real)
            rx = equalize_all(recut(r_tr_raw[j], rng, args.real_recut), args.equalize).astype(np.float32)
            # cheap photometric jitter so the few real crops are not memorised
            rx = rx * rng.uniform(0.6, 1.3, (n_real, 1, 1)) + rng.uniform(-30, 30, (n_real, 1, 1))
            rx += rng.normal(0, 4, rx.shape)
            x = np.concatenate([x.astype(np.float32), np.clip(rx, 0, 255)])
            y = np.concatenate([y, r_tr_y[j]])
        x = x.astype(np.float32)[..., None]
        ylen = (y >= 0).sum(1).astype(np.int32)
        return x, np.maximum(y, 0).astype(np.int32), ylen

    t_loop = time.time()
    step0 = run.step
    last_ckpt = time.time()
    losses = []
    while not run.finished():
        step, total = run.step, run.total
        lr = warm_cosine(args.lr, step, run.progress(), warm=300, floor=0.02)
        run.opt.learning_rate.assign(lr)
        x, y, ylen = batch()
        losses.append(float(train_step(tf.constant(x), tf.constant(y), tf.constant(ylen))))
        run.advance()
        step += 1
        if step % 200 == 0 or (args.tiny and step % 10 == 0):
            el = time.time() - t_loop
            rate = (step - step0) / max(el, 1e-6)
            eta = (total - step) / rate / 60 if total else float("nan")
            log.info("step %d/%d loss %.3f lr %.2e %.0f img/s eta %.1f min", step, total,
                     float(np.mean(losses[-200:])), lr, rate * args.batch, eta)
        if time.time() - last_ckpt > 300:
            run.save()
            last_ckpt = time.time()
            log.info("checkpoint at step %d; val exact: synthetic %.3f, real %.3f", step,
                     accuracy(s_val_x[:1000], s_val_y[:1000]), accuracy(r_val_x, r_val_y))
    run.save()
    train_minutes = run.minutes()
    acc_syn, acc_real = accuracy(s_val_x, s_val_y), accuracy(r_val_x, r_val_y)
    log.info("trained: val exact synthetic %.3f, real (held-out br-crops) %.3f", acc_syn, acc_real)

    from training.export_ocr import export_int8

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rep = np.concatenate([s_tr_x[:400]] + ([r_tr_x[:100]] if r_tr_x is not None else []))

    def export(path: Path) -> Path:
        """The net's int8 model at path, with the record of its input beside it."""
        write_input_record(export_int8(float32_twin(model, **net), rep, path), args.equalize)
        return path

    averaged = {}
    if args.ema:
        # the last weights stay beside the average, for comparison (not shipped)
        raw = export(work / "last_weights_ocr.tflite")
        averaged["last_weights"] = {"val_exact_synthetic_float": round(acc_syn, 4),
                                    "val_exact_brcrops_float": round(acc_real, 4),
                                    "val_exact_brcrops_int8": round(int8_accuracy(raw, r_val_x, r_val_y, alphabet), 4),
                                    "tflite": str(raw)}
        rng_bn = np.random.default_rng(args.seed)
        run.use_averaged_weights(
            tf.constant(s_tr_x[rng_bn.integers(0, len(s_tr_x), args.batch)][..., None].astype(np.float32))
            for _ in range(50))
        acc_syn, acc_real = accuracy(s_val_x, s_val_y), accuracy(r_val_x, r_val_y)
        log.info("averaged weights (momentum %s): val exact synthetic %.3f, real (held-out br-crops) %.3f; "
                 "last weights exported to %s", args.ema, acc_syn, acc_real, raw)
    tfl = export(out / "ocr.tflite")
    (out / "alphabet.txt").write_text(alphabet + "\n")
    int8_syn = int8_accuracy(tfl, s_val_x, s_val_y, alphabet)
    int8_real = int8_accuracy(tfl, r_val_x, r_val_y, alphabet) if r_val_x is not None else float("nan")
    log.info("int8 model %s (%.0f KB): val exact synthetic %.3f, real %.3f", tfl, tfl.stat().st_size / 1024,
             int8_syn, int8_real)
    figures = {
        "train_minutes": round(train_minutes, 1), "steps": run.step, "batch": args.batch,
        "val_exact_synthetic_float": round(acc_syn, 4), "val_exact_brcrops_float": round(acc_real, 4),
        "val_exact_synthetic_int8": round(int8_syn, 4), "val_exact_brcrops_int8": round(int8_real, 4),
        "size_kb": round(tfl.stat().st_size / 1024, 1),
        "input": f"1x{args.height}x{INPUT_W}x1",
        "synthetic": args.synthetic, "seed": args.seed, "real_fraction": args.real_fraction,
        "real_recut": args.real_recut, "ema": args.ema, "monotone_lr": args.monotone_lr,
        "emboss": args.emboss, "glyph_vary": args.glyph_vary, "clean": args.clean, "weight_decay": args.weight_decay,
        "dropout": args.dropout, "conv": args.conv, "equalize": args.equalize,
        "precision": args.precision, **averaged,
        "command": training_command("training.train_ocr", argv),
    }
    evals = {}
    if not args.no_eval:
        evals = evaluate_real(out, args)
    total_minutes = run.minutes()
    figures["total_minutes"] = round(total_minutes, 1)
    rewrite_figures(out, evals, figures)
    write_card(out, figures, evals)
    log.info("done in %.1f min: %s", total_minutes, json.dumps(figures))
    return 0


NET_FILE = "net.json"


def net_options(args) -> dict:
    """build_ocr_model's options that make the net (its weights' meaning); --precision
    is not one: a float32 and a bf16 run share weights, checkpoints and export."""
    return {"width": args.width, "stem": args.stem, "height": args.height, "conv": args.conv}


def check_same_net(work: Path, args) -> None:
    """Refuse to resume a checkpoint of another net, or one trained on other
    inputs: a different height, stem or equalisation has the same weight
    shapes, so it would load silently and train nonsense."""
    net = {**net_options(args), "equalize": args.equalize}
    path = work / NET_FILE
    if path.exists():
        # recorded before --conv or --equalize existed: full, none
        was = {"conv": "full", "equalize": "none", **json.loads(path.read_text())}
        if was != net:
            diff = ", ".join(f"{k} {was.get(k)!r} (now {v!r})" for k, v in net.items() if was.get(k) != v)
            raise SystemExit(f"train_ocr: --work {work} holds a checkpoint of another net: {diff}; "
                             f"use another --work or the same options")
    elif not (work / "ckpt").exists():  # a checkpoint from before nets were recorded resumes as before
        path.write_text(json.dumps(net) + "\n")


def int8_accuracy(path: Path, x, y, alphabet) -> float:
    if x is None or len(x) == 0:
        return float("nan")
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outd = interp.get_output_details()[0]
    scale, zero = outd["quantization"]
    good = 0
    for img, lab in zip(x, y):
        interp.set_tensor(inp["index"], img[None, :, :, None].astype(np.uint8))
        interp.invoke()
        p = (interp.get_tensor(outd["index"]).astype(np.float32) - zero) * scale
        good += greedy_decode(p.reshape(1, -1, p.shape[-1]), alphabet)[0] == label_text(lab, alphabet)
    return good / len(x)


def evaluate_only(args) -> int:
    """Re-run the real-set evaluation of the model in --out and rewrite its card."""
    out = Path(args.out)
    figures = json.loads((out / "training_figures.json").read_text())["figures"]
    for key, value in (("synthetic", args.synthetic), ("seed", args.seed), ("real_fraction", args.real_fraction),
                       ("command", "python -m training.train_ocr")):
        figures.setdefault(key, value)
    evals = evaluate_real(out, args)
    rewrite_figures(out, evals, figures)
    write_card(out, figures, evals)
    log.info("re-evaluated %s; card rewritten", out / "ocr.tflite")
    return 0


def evaluate_real(out: Path, args) -> dict:
    """The product's own `anpr-edge eval-ocr` on the real evaluation sets: as
    it reads by default (no plate formats), and with the formats a deployment
    there would configure (US; CZ and SK, what the EU set holds); and the
    model alone, one read per crop (no second look), without formats."""
    res: dict = {}
    model = ["--model", str(out / "ocr.tflite"), "--alphabet", str(out / "alphabet.txt")]
    runs = {
        "openalpr-us-crops": ["--crops", args.eval_us],
        "openalpr-us-crops, formats US": ["--crops", args.eval_us, "--formats", "US"],
        "openalpr-eu": ["--crops", args.eval_eu, "--boxes"],
        "openalpr-eu, formats CZ,SK": ["--crops", args.eval_eu, "--boxes", "--formats", "CZ,SK"],
        "openalpr-us-crops, one read": ["--crops", args.eval_us, "--readers", "tflite", "--second-look-below", "0"],
        "openalpr-eu, one read": ["--crops", args.eval_eu, "--boxes", "--readers", "tflite",
                                  "--second-look-below", "0"],
    }
    for name, extra in runs.items():
        if not os.path.isdir(extra[1]):
            log.warning("evaluation set %s not found at %s: skipped", name, extra[1])
            continue
        run_eval("eval-ocr", name, extra, model, res)
    return res


def write_card(out: Path, figures: dict, evals: dict) -> None:
    cmd = figures["command"]
    averaging, last_rows = "", ""
    schedule = " (on the largest fraction done so far: never rising again)" if figures.get("monotone_lr") else ""
    recut_note = (f",\n  each cut again with its sides moved out by up to {figures['real_recut']:.0%} or in by a third of that"
                  if figures.get("real_recut") else "")
    render_note = "".join(f", {figures[key]:.0%} of {what}" for key, what in
                          (("emboss", "serials embossed"), ("glyph_vary", "serials bolder or lighter and condensed"),
                           ("clean", "crops from a close, clear view"))
                          if figures.get(key))
    for key, what in (("dropout", "dropout {:g} on the sequence features"), ("weight_decay", "weight decay {:g}")):
        if figures.get(key):
            schedule += ", " + what.format(figures[key])
    conv_note = (",\n  its 3-wide convolutions after the first depthwise-separable (depthwise, then 1x1)"
                 if figures.get("conv") == "separable" else "")
    eq_note = (f", then equalised: {figures['equalize']} (recorded in ocr.input.json)"
               if figures.get("equalize", "none") != "none" else "")
    compute = "float"  # the validation column: how the trained net computed, before int8
    if figures.get("precision", "float32") != "float32":
        schedule += f", computing in {figures['precision']} (float32 weights)"
        compute = figures["precision"]
    if figures.get("ema"):
        last = figures["last_weights"]
        averaging = (f"\n  the exported weights a moving average of the weights (momentum {figures['ema']} per step,"
                     f"\n  batch-norm statistics re-estimated for it),")
        last_rows = (f"\n| synthetic held-out, last weights (not exported) "
                     f"| {last['val_exact_synthetic_float']:.3f} | – |"
                     f"\n| br-crops held-out, last weights (not exported) | {last['val_exact_brcrops_float']:.3f} "
                     f"| {last['val_exact_brcrops_int8']:.3f} |")
    rows = []
    for name, e in evals.items():
        r = e["result"]
        for eng in ("tflite", "tesseract", "combined"):
            if eng in r:
                d = r[eng]
                rows.append(f"| {name} | {eng} | {d.get('n')} | {d.get('exact', float('nan')):.3f} | "
                            f"{d.get('exact_o0', float('nan')):.3f} | {d.get('cer', float('nan')):.3f} | "
                            f"{d.get('ms_per_crop', float('nan')):.2f} | {d.get('ms_mean', float('nan')):.2f} |")
    table = "\n".join(rows) if rows else "| (not evaluated in this run) | | | | | | | |"
    cmds = "\n".join(f"    {e['command']}" for e in evals.values()) or "    (none)"
    text = f"""# Plate OCR model card (`ocr.tflite`)

Made by this repository's own code; no pretrained weights, nothing downloaded.

- **Command that made this file:** `{cmd}` (from the repo root, in the project venv)
- **Architecture:** all-convolutional CRNN-style net with a CTC head (training/ocr_model.py){conv_note},
  input uint8 gray {figures.get('input', '1x32x128x1')} (crop stretched{eq_note}, edge/preprocess.py),
  output uint8 softmax 1x1x32x37 (classes `alphabet.txt` + CTC blank last). Full-integer int8 (TFLite builtins int8).
- **Data:** {figures['synthetic']} synthetic crops rendered by training/plate_render.py + training/degrade.py
  (US-style, CZ, SK, DE, UK, ES, BR, BR Mercosur, generic EU; fonts from Debian packages; seed {figures['seed']}{render_note}),
  plus {figures['real_fraction']:.0%} of each batch from real Brazilian crops `../shared/train/br-crops`{recut_note}
  (90 % of them; 10 % held out for validation, split by file-name hash).
  The model never saw the evaluation sets below. (The daemon's reader settings were
  chosen with them in view: the second look's recrops and threshold, and the Tesseract
  fallback threshold; see README, "Second look".)
- **Training:** {figures['steps']} steps of batch {figures['batch']}, Adam with warm-up and
  cosine decay{schedule},{averaging}
  {figures['train_minutes']} min of data rendering + training, {figures['total_minutes']} min for the whole
  command including export and evaluation, on a 2-core x86 CPU.
- **Size:** {figures['size_kb']} KB.

## Validation (not real-world figures)
| set | {compute} | int8 |
|---|---|---|
| synthetic held-out | {figures['val_exact_synthetic_float']:.3f} | {figures['val_exact_synthetic_int8']:.3f} |
| br-crops held-out 10 % (real) | {figures['val_exact_brcrops_float']:.3f} | {figures['val_exact_brcrops_int8']:.3f} |{last_rows}

## Real images (evaluation only)
Exact = whole plate right, comparing A-Z0-9; exact_o0 counts O and 0 as the same
(some upstream labels write O for zero); ms = median and mean reader time per crop,
one thread, on the machine that ran the evaluation (CPUs differ 3-4x between machines).
"tflite" is the TFLite reader as the daemon runs it: a crop read below confidence 0.8 is
read again trimmed and padded (config `reader.second_look`); "one read" rows are the
model alone, one read per crop.
"formats X": the reader fits readings to those plate formats (config `filters.formats`),
which fixes O/0-type confusions by position and writes US plates' O as 0.

| set | reader | n | exact | exact_o0 | CER | ms/crop | ms mean |
|---|---|---|---|---|---|---|---|
{table}

Commands:

{cmds}
"""
    (out / "MODEL_CARD.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
