"""Training ends on time: the step count follows the machine's speed."""

from __future__ import annotations

import os

from training.budget import Progress, StepBudget, fraction_done


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def run(budget: StepBudget, clock: Clock, seconds_per_step) -> tuple[int, float]:
    """Train until the budget's total is reached; (steps, seconds)."""
    step, total, start = 0, 0, clock.t
    while not total or step < total:
        clock.t += seconds_per_step(step)
        step += 1
        total = budget.update(step, total)
    return step, clock.t - start


def test_a_machine_that_slows_down_still_ends_on_time():
    clock = Clock()
    budget = StepBudget(10.0, 0.0, clock.t, clock=clock)
    steps, seconds = run(budget, clock, lambda s: 0.1 if s < 2000 else 0.3)  # 3x slower after 2000
    assert abs(seconds - 600) < 5
    assert 2000 < steps < 6000  # a plan fixed at the start would have run 6000 steps, 1400 s


def test_a_resumed_run_counts_the_time_already_spent():
    clock = Clock()
    budget = StepBudget(10.0, 4.0, clock.t, clock=clock)  # 4 of 10 minutes spent before the resume
    _, seconds = run(budget, clock, lambda s: 0.1)
    assert abs(seconds - 360) < 2


def test_no_estimate_before_the_warmup_and_between_marks():
    clock = Clock()
    budget = StepBudget(10.0, 0.0, clock.t, every=50, warmup=60, clock=clock)
    assert budget.update(0, 0) == 0
    clock.t += 10
    assert budget.update(50, 0) == 0       # still warming up
    clock.t += 2
    assert budget.update(101, 7) == 7      # not on a mark
    assert budget.update(100, 7) > 100


def test_an_exhausted_budget_stops_at_the_next_step():
    clock = Clock()
    budget = StepBudget(1.0, 0.0, clock.t, clock=clock)
    budget.update(0, 0)
    clock.t += 120
    assert budget.update(100, 0) == 101


def test_learning_rate_warms_up_then_decays_to_its_floor():
    from training.loop import warm_cosine

    lrs = [warm_cosine(1e-3, s, fraction_done(s, 1000), warm=100, floor=0.02) for s in range(1001)]
    assert abs(lrs[0] - 1e-5) < 1e-12 and lrs[99] > 0.97e-3  # linear warm-up to (nearly) the base rate
    assert max(lrs) <= 1e-3 and all(a >= b for a, b in zip(lrs[100:], lrs[101:]))  # no rise after warm-up
    assert abs(lrs[1000] - 2e-5) < 1e-9 and abs(lrs[500] - 1e-3 * 0.51) < 1e-9
    assert warm_cosine(1e-3, 50, fraction_done(50, 0), warm=10, floor=0.02) == 1e-3  # total not planned yet: full rate


def test_a_monotone_progress_keeps_the_rate_falling_when_the_budget_replans_more_steps():
    from training.loop import warm_cosine

    clock = Clock()
    budget = StepBudget(10.0, 0.0, clock.t, every=50, warmup=60, window=3, clock=clock)
    plain, monotone = Progress(False), Progress(True)
    step, total, rates = 0, 0, {"plain": [], "monotone": []}
    while not total or step < total:
        clock.t += 0.2 if step < 1500 else 0.05  # the machine speeds up 4x: the planned total grows
        step += 1
        total = budget.update(step, total)
        rates["plain"].append(warm_cosine(1e-3, step, plain(step, total), warm=100, floor=0.02))
        rates["monotone"].append(warm_cosine(1e-3, step, monotone(step, total), warm=100, floor=0.02))
    rises = {k: sum(b > a * 1.001 for a, b in zip(r[100:], r[101:])) for k, r in rates.items()}
    assert rises["plain"] > 0 and rises["monotone"] == 0  # the plain schedule climbs again; monotone never
    assert abs(rates["monotone"][-1] - 2e-5) < 1e-6  # and still ends at its floor
    assert Progress(True, peak=0.7)(10, 100) == 0.7  # a resumed run starts from its checkpointed peak
    assert Progress(False, peak=0.7)(10, 100) == 0.1 and Progress(True)(5, 0) == 0.0


def test_training_turns_on_onednn_unless_the_user_chose(monkeypatch):
    """oneDNN is off by default on AVX2-only CPUs, where a training step is faster with it."""
    from training.loop import tf_environment

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    tf_environment()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    tf_environment()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
