"""A training run that must end on time: the step count follows the machine's speed.

A fixed step count measured once at the start overran by 40 % when the
machine slowed down mid-run (the OCR took 110 min against a 70 min plan).
Re-estimating the total from the recent speed and the time left keeps the
whole command inside its budget, and the cosine LR schedule, which runs on
step / total, still ends at its floor.
"""

from __future__ import annotations

import time
from typing import Callable


class StepBudget:
    """Re-estimates the total step count from recent speed and time left.

    minutes: the budget for everything counted since `t_start` plus
    `prior_minutes` (time spent by earlier, resumed runs).
    """

    def __init__(self, minutes: float, prior_minutes: float, t_start: float, *, every: int = 50,
                 warmup: int = 60, window: int = 6, clock: Callable[[], float] = time.time) -> None:
        self.minutes, self.prior_minutes, self.t_start = minutes, prior_minutes, t_start
        self.every, self.warmup, self.window = every, warmup, window
        self._clock = clock
        self._marks: list[tuple[float, int]] = []
        self._step0: int | None = None
        self._t0 = clock()

    def seconds_left(self) -> float:
        return self.minutes * 60 - (self.prior_minutes * 60 + self._clock() - self.t_start)

    def update(self, step: int, total: int) -> int:
        """The new total (at least step + 1), or `total` when it is not time to re-estimate."""
        if self._step0 is None:
            self._step0, self._t0 = step, self._clock()
        if step - self._step0 < self.warmup or step % self.every:
            return total
        now = self._clock()
        self._marks.append((now, step))
        t_old, s_old = self._marks[max(0, len(self._marks) - self.window)]
        if now > t_old and step > s_old:
            rate = (step - s_old) / (now - t_old)
        else:
            rate = (step - self._step0) / max(now - self._t0, 1e-6)
        return max(step + 1, int(step + rate * max(self.seconds_left(), 0.0)))


def fraction_done(step: int, total: int) -> float:
    """step / total, at most 1; 0 while no total is planned yet."""
    return min(step / total, 1.0) if total else 0.0


class Progress:
    """The fraction of the run done, as the learning-rate schedule sees it.

    step / total goes back whenever the budget re-plans a larger total (the
    machine sped up), and the cosine rate then rises again mid-anneal: seen on
    a machine whose speed swings (1.90e-4 at step 7,200, 2.77e-4 at 7,600).
    `monotone` keeps the largest fraction seen, so the rate only falls after
    its warm-up; `peak` carries it over a resume.
    """

    def __init__(self, monotone: bool, peak: float = 0.0) -> None:
        self.monotone, self.peak = monotone, peak

    def __call__(self, step: int, total: int) -> float:
        frac = fraction_done(step, total)
        if self.monotone:
            self.peak = frac = max(self.peak, frac)
        return frac
