"""What both trainers share: a run that checkpoints, resumes where it stopped,
ends inside its time budget and follows one learning-rate curve."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path

from training.budget import Progress, StepBudget

log = logging.getLogger("training")


def setup_logging() -> None:
    """Progress lines with timestamps on stdout (a nohup log reads in order)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)


def check_data_folders(parser, args, names: tuple[str, ...]) -> list[str]:
    """A data folder typed on the command line must exist: a typo would quietly
    train a different model. A default one may be missing (a clone without
    ../shared), so that only comes back as warnings saying what the run does
    without."""
    missing = []
    for name in names:
        path = getattr(args, name)
        if not path or os.path.isdir(path):
            continue
        flag = "--" + name.replace("_", "-")
        if path != parser.get_default(name):
            parser.error(f"{flag} {path}: no such folder")
        missing.append(f"{flag} {path}: no such folder, training without it")
    return missing


def tf_environment() -> None:
    """Settings TensorFlow reads once, at import: call before importing it.

    TensorFlow turns its oneDNN kernels on by itself only for CPUs with
    AVX-512 VNNI/BF16/AMX; on an AVX2-only CPU a training step of the OCR net
    took 256-336 ms with them against 370-465 ms without (python -m
    training.bench_train_step with TF_ENABLE_ONEDNN_OPTS=1 and =0, three runs
    each). A value already set is kept.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def begin(work: str | Path) -> tuple[float, Path]:
    """Start a training run: set TensorFlow's environment, make the work
    folder, fail now (not after an hour) when a font package is missing ->
    (start time, work). Call it before anything imports TensorFlow."""
    tf_environment()
    t_start = time.time()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    from training.fonts import check_fonts

    check_fonts()
    return t_start, work


def configure_tf(threads: int, seed: int, inter_op: int = 1):
    """TensorFlow with explicit threads and a seed: `threads` per op, `inter_op`
    ops at once (2 lets a small op use the core a big one leaves idle)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    tf.random.set_seed(seed)
    return tf


def warm_cosine(base: float, step: int, frac: float, warm: int, floor: float) -> float:
    """Linear warm-up over `warm` steps, then cosine decay to `floor` x base at `frac` = 1.

    `frac` is the run's progress as the caller measures it (Run.progress:
    step / total, or its peak with --monotone-lr, training.budget.Progress),
    so that the schedule and the checkpointed progress cannot disagree."""
    return base * min(1.0, (step + 1) / warm) * (0.5 * (1 + math.cos(math.pi * frac)) * (1 - floor) + floor)


class Run:
    """Model, Adam optimizer, step, planned total and minutes spent, checkpointed together.

    `steps` > 0 fixes the step count; otherwise `minutes` is the budget for
    the whole run (including time before `t_start` spent by earlier, resumed
    runs) and the total follows the machine's speed (training.budget).
    `ema` > 0 keeps an exponential moving average of the weights in the
    optimizer (checkpointed with it) for `use_averaged_weights`.
    `weight_decay` > 0 shrinks the conv weights by lr * weight_decay a step (AdamW).
    `monotone_lr`: `progress()` never goes back when the total is re-planned
    larger (training.budget.Progress); its peak is checkpointed.
    """

    def __init__(self, model, lr: float, work: Path, *, steps: int, minutes: float, t_start: float,
                 budget_every: int = 50, budget_warmup: int = 60, ema: float = 0.0,
                 monotone_lr: bool = False, weight_decay: float = 0.0) -> None:
        import tensorflow as tf

        self.model = model
        kw = {"use_ema": True, "ema_momentum": ema} if ema > 0 else {}
        # decoupled (AdamW) when weight_decay > 0 (None: off); never on batch-norm scales and offsets or biases
        self.opt = tf.keras.optimizers.Adam(learning_rate=lr, weight_decay=weight_decay or None, **kw)
        self.opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        self.opt.build(model.trainable_variables)  # create slots now so a resume restores them
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._total = tf.Variable(steps, dtype=tf.int64, trainable=False)
        self._elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False)  # minutes, over resumes
        self._peak = tf.Variable(0.0, dtype=tf.float64, trainable=False)  # Progress.peak, over resumes
        ckpt = tf.train.Checkpoint(model=model, optimizer=self.opt, step=self._step, total=self._total,
                                   elapsed=self._elapsed, peak=self._peak)
        self._manager = tf.train.CheckpointManager(ckpt, str(Path(work) / "ckpt"), max_to_keep=2)
        if self._manager.latest_checkpoint:
            ckpt.restore(self._manager.latest_checkpoint)
            log.info("resumed from %s at step %d of %d", self._manager.latest_checkpoint, self.step, self.total)
        self.prior_minutes = float(self._elapsed)
        self._progress = Progress(monotone_lr, float(self._peak))
        self.t_start = t_start
        self._budget = None if steps else StepBudget(minutes, self.prior_minutes, t_start,
                                                     every=budget_every, warmup=budget_warmup)

    @property
    def step(self) -> int:
        return int(self._step)

    @property
    def total(self) -> int:
        """Planned steps (0 until the budget has measured the speed)."""
        return int(self._total)

    def finished(self) -> bool:
        """True once the planned steps are done; re-plans from the recent speed first."""
        if self._budget is not None:
            self._total.assign(self._budget.update(self.step, self.total))
        return bool(self.total) and self.step >= self.total

    def progress(self) -> float:
        """The fraction done for the learning-rate schedule (step / total, or its peak when monotone)."""
        return self._progress(self.step, self.total)

    def advance(self) -> None:
        self._step.assign_add(1)

    def minutes(self) -> float:
        """Minutes spent by this run, resumes included."""
        return self.prior_minutes + (time.time() - self.t_start) / 60

    def save(self) -> None:
        self._elapsed.assign(self.minutes())
        self._peak.assign(self._progress.peak)
        self._manager.save()

    def use_averaged_weights(self, batches) -> bool:
        """Swap the moving average into the model (after the last save, so the
        checkpoint keeps the raw weights and a rerun gives the same result);
        then re-estimate batch-norm statistics, which were tracked for the raw
        weights, by forward passes in training mode over `batches` (no
        gradient step). False, and nothing changed, when the run keeps no average."""
        if not self.opt.use_ema:
            return False
        self.opt.finalize_variable_values(self.model.trainable_variables)
        for x in batches:
            self.model(x, training=True)
        return True
