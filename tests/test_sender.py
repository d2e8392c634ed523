"""Sender: order, backoff with a fake clock, rejection, hooks, stop, drain."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from edge.backend import (AuthError, BackendClient, PermanentError, TransientError,
                          Verdict)
from edge.outbox import Outbox, OutboxItem, OutboxStats, OutboxWriteError
from edge.sender import Outcome, Sender
from edge.types import VehicleResult
from refbackend import RefBackend

T0 = 1_714_564_800.0


def _result(n: int, plate: str | None = None) -> VehicleResult:
    return VehicleResult(plate or f"P{n}", 0.9, T0 + n, T0 + n + 1, 3, "cam0", f"k{n}")


class Clock:
    """Fake wall clock; its wait() advances time instead of sleeping."""

    def __init__(self) -> None:
        self.t = T0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.t

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.t += seconds
        return event.is_set()


class ScriptedClient:
    """Answers from a script: Verdict, or an exception to raise."""

    def __init__(self, *script: Verdict | Exception, default: Verdict | Exception
                 | None = None) -> None:
        self.script = list(script)
        self.default = default if default is not None else Verdict("", "valid")
        self.posted: list[str] = []

    def post(self, payload: Mapping[str, Any]) -> Verdict:
        self.posted.append(payload["key"])
        step = self.script.pop(0) if self.script else self.default
        if isinstance(step, Exception):
            raise step
        return step


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    with Outbox(tmp_path / "outbox.sqlite", clock=clock) as ob:
        yield ob


def _sender(outbox: Outbox, client: Any, clock: Clock, **kw: Any) -> Sender:
    kw.setdefault("rng", lambda: 0.0)
    return Sender(outbox, client, 1.0, 30.0, clock=clock, wait=clock.wait, **kw)


def test_delivers_in_order_and_reports_idle(outbox: Outbox, clock: Clock) -> None:
    for n in (1, 2, 3):
        outbox.put(_result(n))
    client = ScriptedClient()
    sender = _sender(outbox, client, clock)
    outcomes = [sender.deliver_once().outcome for _ in range(4)]
    assert outcomes == [Outcome.DELIVERED] * 3 + [Outcome.IDLE]
    assert client.posted == ["k1", "k2", "k3"]
    assert outbox.stats() == OutboxStats(0, 3, 0)


def test_backoff_sequence_doubles_to_the_cap(outbox: Outbox, clock: Clock) -> None:
    outbox.put(_result(1))
    client = ScriptedClient(default=TransientError("HTTP 503"))
    sender = _sender(outbox, client, clock)
    delays = []
    for _ in range(8):
        step = sender.deliver_once()
        assert step.outcome is Outcome.FAILED
        delays.append(step.wait_s)
        early = sender.deliver_once()  # not due yet: no request is made
        assert early.outcome is Outcome.NOT_DUE and early.wait_s == pytest.approx(step.wait_s)
        clock.t += step.wait_s
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert len(client.posted) == 8
    item = outbox.next_pending()
    assert item is not None and item.attempts == 8
    assert sender.metrics["retries"] == 8 and sender.metrics["delivered"] == 0


def test_jitter_stays_within_half_to_full(outbox: Outbox, clock: Clock) -> None:
    sender = _sender(outbox, ScriptedClient(), clock, rng=lambda: 1.0)
    assert [sender.backoff_delay(a) for a in (1, 2, 3, 10)] == [0.5, 1.0, 2.0, 15.0]
    assert sender.backoff_delay(10_000) == 15.0  # no overflow on huge counts


def test_backoff_survives_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, clock=clock) as ob:
        ob.put(_result(1))
        s = _sender(ob, ScriptedClient(TransientError("down"), TransientError("down")),
                    clock)
        s.deliver_once()
        clock.t += 1
        assert s.deliver_once().wait_s == 2
    with Outbox(path, clock=clock) as ob:
        client = ScriptedClient()
        s = _sender(ob, client, clock)
        assert s.deliver_once().outcome is Outcome.NOT_DUE
        clock.t += 2
        assert s.deliver_once().outcome is Outcome.DELIVERED


def test_clock_stepped_back_retries_now(outbox: Outbox, clock: Clock,
                                        caplog: pytest.LogCaptureFixture) -> None:
    rid = outbox.put(_result(1))
    outbox.mark_attempt_failed(rid, "down", T0 + 10 * 86400)
    assert _sender(outbox, ScriptedClient(), clock).deliver_once().outcome \
        is Outcome.DELIVERED
    assert "stepped back" in caplog.text


def test_permanent_error_sets_aside_and_moves_on(outbox: Outbox, clock: Clock) -> None:
    for n in (1, 2, 3):
        outbox.put(_result(n))
    client = ScriptedClient(Verdict("P1", "valid"),
                            PermanentError("backend rejected read: HTTP 400: bad", 400))
    sender = _sender(outbox, client, clock)
    outcomes = [sender.deliver_once().outcome for _ in range(3)]
    assert outcomes == [Outcome.DELIVERED, Outcome.REJECTED, Outcome.DELIVERED]
    assert outbox.stats() == OutboxStats(0, 2, 1)
    assert sender.metrics["rejected"] == 1


def test_auth_error_keeps_the_read(outbox: Outbox, clock: Clock,
                                   caplog: pytest.LogCaptureFixture) -> None:
    outbox.put(_result(1))
    sender = _sender(outbox, ScriptedClient(AuthError("HTTP 401", 401)), clock)
    with caplog.at_level(logging.ERROR):
        assert sender.deliver_once().outcome is Outcome.FAILED
    assert "HTTP 401" in caplog.text
    assert outbox.stats() == OutboxStats(1, 0, 0)
    assert sender.metrics["auth_failures"] == 1


def test_verdict_hook_metrics_and_unpaid_warning(outbox: Outbox, clock: Clock,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    outbox.put(_result(1, "UNPAID1"))
    outbox.put(_result(2, "PAID2"))
    outbox.put(_result(3, "DUP3"))
    seen: list[tuple[str, str]] = []

    def hook(item: OutboxItem, verdict: Verdict) -> None:
        seen.append((item.plate, verdict.vignette))
        raise RuntimeError("hook bug")  # must not stop delivery

    client = ScriptedClient(Verdict("UNPAID1", "invalid"),
                            Verdict("PAID2", "valid", dt.date(2024, 12, 31)),
                            Verdict("DUP3", "unknown", duplicate=True, malformed=True))
    sender = _sender(outbox, client, clock, on_verdict=hook)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert sender.deliver_once().outcome is Outcome.DELIVERED
    assert seen == [("UNPAID1", "invalid"), ("PAID2", "valid"), ("DUP3", "unknown")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "NO VALID VIGNETTE" in w and "k1" in w]
    assert not [w for w in warnings if "UNPAID1" in w]  # plates only at DEBUG by default
    m = sender.metrics
    assert (m["delivered"], m["vignette_invalid"], m["vignette_valid"],
            m["vignette_unknown"], m["duplicates"], m["malformed"]) == (3, 1, 1, 1, 1, 1)


class _BrokenOutbox:
    def __init__(self, inner: Outbox) -> None:
        self.inner = inner

    def next_pending(self) -> OutboxItem | None:
        return self.inner.next_pending()

    def mark_delivered(self, item_id: int, verdict: Verdict) -> bool:
        raise OutboxWriteError("outbox x.sqlite: mark_delivered failed: disk is full")

    def mark_rejected(self, item_id: int, reason: str) -> bool:
        return self.inner.mark_rejected(item_id, reason)

    def mark_attempt_failed(self, item_id: int, error: str, at: float) -> int:
        return self.inner.mark_attempt_failed(item_id, error, at)


def test_outbox_failure_is_reported_not_raised(outbox: Outbox, clock: Clock,
                                               caplog: pytest.LogCaptureFixture) -> None:
    outbox.put(_result(1))
    sender = _sender(_BrokenOutbox(outbox), ScriptedClient(), clock)  # type: ignore[arg-type]
    step = sender.deliver_once()
    assert step.outcome is Outcome.ERROR and step.wait_s == 30
    assert "disk is full" in caplog.text and sender.metrics["outbox_errors"] == 1
    assert outbox.stats().pending == 1  # will be resent; the backend dedups


def test_drain_delivers_through_retries(outbox: Outbox, clock: Clock) -> None:
    outbox.put(_result(1))
    outbox.put(_result(2))
    client = ScriptedClient(TransientError("down"), TransientError("down"))
    assert _sender(outbox, client, clock).drain(timeout_s=10)
    assert clock.waits == [1, 2] and outbox.stats() == OutboxStats(0, 2, 0)


def test_drain_gives_up_at_the_deadline(outbox: Outbox, clock: Clock) -> None:
    outbox.put(_result(1))
    sender = _sender(outbox, ScriptedClient(default=TransientError("down")), clock)
    assert not sender.drain(timeout_s=5)
    assert clock.t - T0 <= 5 and outbox.stats().pending == 1


def test_run_forever_delivers_and_stops_promptly(outbox: Outbox) -> None:
    client = ScriptedClient(TransientError("down"))
    sender = Sender(outbox, client, backoff_initial_s=0.01, backoff_max_s=0.05,
                    idle_poll_s=0.02)
    stop = threading.Event()
    thread = sender.start(stop)
    outbox.put(_result(1))
    outbox.put(_result(2))
    deadline = time.monotonic() + 5
    while outbox.stats().delivered < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outbox.stats() == OutboxStats(0, 2, 0)
    stop.set()
    thread.join(timeout=1)
    assert not thread.is_alive()


def test_stop_interrupts_a_long_backoff(outbox: Outbox) -> None:
    outbox.put(_result(1))
    sender = Sender(outbox, ScriptedClient(default=TransientError("down")),
                    backoff_initial_s=600, backoff_max_s=600)
    stop = threading.Event()
    thread = sender.start(stop)
    deadline = time.monotonic() + 5
    while sender.metrics["retries"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive() and time.monotonic() - started < 1


def test_end_to_end_through_faults(tmp_path: Path, outbox: Outbox, clock: Clock) -> None:
    with RefBackend(tmp_path / "ref.sqlite", token="tok",
                    paid=[("P1", dt.date(2099, 1, 1))]) as server:
        client = BackendClient(server.url, "tok", timeout_s=2)
        outbox.put(_result(1))
        outbox.put(_result(2))
        outbox.put(_result(3))
        server.faults.set("500", count=2)
        sender = _sender(outbox, client, clock)
        assert sender.drain(timeout_s=60)
        server.faults.set("close", count=1)  # stored, answer lost: resend is a duplicate
        outbox.put(_result(4))
        assert sender.drain(timeout_s=60)
        assert outbox.stats() == OutboxStats(0, 4, 0)
        assert [r["key"] for r in server.db.reads()] == ["k1", "k2", "k3", "k4"]
        m = sender.metrics
        assert (m["retries"], m["duplicates"], m["vignette_valid"],
                m["vignette_invalid"]) == (3, 1, 1, 3)
        client.close()


@pytest.mark.parametrize("level,shown", [(None, False), (logging.DEBUG, True),
                                         (logging.WARNING, True)])
def test_plate_texts_only_at_the_configured_level(outbox: Outbox, clock: Clock,
                                                  caplog: pytest.LogCaptureFixture,
                                                  level: int | None, shown: bool) -> None:
    outbox.put(_result(1, "SECRET1"))
    sender = _sender(outbox, ScriptedClient(Verdict("SECRET1", "invalid")), clock,
                     plate_log_level=level)
    with caplog.at_level(logging.DEBUG):
        sender.deliver_once()
    with_plate = [r.levelno for r in caplog.records if "SECRET1" in r.getMessage()]
    assert with_plate == ([level] if shown else [])
