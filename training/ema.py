"""An exponential moving average of a model's weights, for export.

The last weights of a run are one noisy point of the descent; the average of
the last ~1/(1-decay) steps is usually a little better and varies less from
seed to seed. The average is kept beside the model (checkpointed with it, so
a resumed run goes on averaging) and copied into the model only at the end.
Batch-norm statistics were measured with the raw weights, so after the copy
they are measured again with the averaged ones (`recalibrate`).
"""

from __future__ import annotations

import tensorflow as tf


class WeightAverage(tf.Module):
    """Shadow copies of `variables`, updated with `update()` after each step.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) over the n updates
    so far, so early random weights do not linger in the average.
    """

    def __init__(self, variables, decay: float) -> None:
        super().__init__(name="weight_average")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"weight average decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self._vars = list(variables)
        self.shadow = [tf.Variable(v.numpy(), trainable=False, name="avg") for v in self._vars]
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")

    def update(self) -> None:
        """One averaging step (call inside the compiled training step)."""
        n = tf.cast(self.updates, tf.float32)
        d = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
        for s, v in zip(self.shadow, self._vars):
            s.assign(d * s + (1.0 - d) * v)
        self.updates.assign_add(1)

    def copy_to_model(self) -> list:
        """Put the averaged weights into the model; returns the raw ones."""
        raw = [v.numpy() for v in self._vars]
        for s, v in zip(self.shadow, self._vars):
            v.assign(s)
        return raw


def recalibrate(model, batches) -> None:
    """Re-measure batch-norm moving statistics by forward passes in training
    mode (no gradient step); with momentum 0.9, ~50 batches forget the old."""
    for x in batches:
        model(x, training=True)
