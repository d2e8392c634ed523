"""Moves reads from the outbox to the backend, oldest first, one at a time.

Why one at a time and in order: the backend sees passages in the order they
happened, and a dead network costs one retry stream, not a thundering herd.
Transient failures are retried forever with capped exponential backoff and
jitter; the retry state lives in the outbox row, so it survives restarts.
A 4xx (PermanentError) sets the read aside and moves on; 401/403 (AuthError)
keep the read pending, because the token is wrong, not the read.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from edge.backend import AuthError, PermanentError, TransientError, Verdict
from edge.outbox import OutboxError, OutboxItem

log = logging.getLogger(__name__)

METRIC_NAMES = ("delivered", "rejected", "retries", "auth_failures", "outbox_errors",
                "duplicates", "malformed", "vignette_valid", "vignette_invalid",
                "vignette_unknown")


class OutboxLike(Protocol):
    def next_pending(self) -> OutboxItem | None: ...

    def mark_delivered(self, item_id: int, verdict: Verdict) -> bool: ...

    def mark_rejected(self, item_id: int, reason: str) -> bool: ...

    def mark_attempt_failed(self, item_id: int, error: str,
                            next_attempt_at: float) -> int: ...


class ClientLike(Protocol):
    def post(self, payload: Mapping[str, Any]) -> Verdict: ...


VerdictHook = Callable[[OutboxItem, Verdict], None]
WaitFn = Callable[[threading.Event, float], bool]


class Outcome(enum.Enum):
    IDLE = "idle"            # outbox empty
    DELIVERED = "delivered"  # 2xx, recorded
    REJECTED = "rejected"    # 4xx, set aside
    FAILED = "failed"        # transient/auth failure, retry scheduled
    NOT_DUE = "not_due"      # head read is backing off
    ERROR = "error"          # the outbox itself failed


@dataclass(frozen=True)
class Step:
    """What one deliver_once() did, and how long until another is useful."""

    outcome: Outcome
    wait_s: float
    item_id: int | None = None


def _event_wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


class Sender:
    """Delivers the outbox's head read; see deliver_once and run_forever."""

    def __init__(self, outbox: OutboxLike, client: ClientLike,
                 backoff_initial_s: float = 1.0, backoff_max_s: float = 300.0, *,
                 jitter: float = 0.5, idle_poll_s: float = 0.5,
                 clock: Callable[[], float] = time.time,
                 rng: Callable[[], float] = random.random,
                 wait: WaitFn = _event_wait,
                 on_verdict: VerdictHook | None = None,
                 plate_log_level: int | None = logging.DEBUG) -> None:
        if not backoff_initial_s > 0:
            raise ValueError(f"sender backoff_initial_s must be > 0, got {backoff_initial_s!r}")
        if not backoff_max_s >= backoff_initial_s:
            raise ValueError(f"sender backoff_max_s must be >= backoff_initial_s, "
                             f"got {backoff_max_s!r}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"sender jitter must be in [0, 1], got {jitter!r}")
        if not idle_poll_s > 0:
            raise ValueError(f"sender idle_poll_s must be > 0, got {idle_poll_s!r}")
        self.outbox = outbox
        self.client = client
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.jitter = float(jitter)
        self.idle_poll_s = float(idle_poll_s)
        self._clock = clock
        self._rng = rng
        self._wait = wait
        self._on_verdict = on_verdict
        # Plate texts are personal data: logged only at this level (None:
        # never).  Plain attribute so a SIGHUP reload can change it.
        self.plate_log_level = plate_log_level
        self._lock = threading.Lock()  # one delivery at a time, thread or drain
        self._metrics: dict[str, int] = dict.fromkeys(METRIC_NAMES, 0)

    @property
    def metrics(self) -> dict[str, int]:
        """A snapshot of the counters (keys: METRIC_NAMES)."""
        return dict(self._metrics)

    def backoff_delay(self, attempts: int) -> float:
        """Seconds before retry number `attempts` (1 = first failure)."""
        base = min(self.backoff_max_s,
                   self.backoff_initial_s * 2.0 ** min(max(attempts - 1, 0), 60))
        return base * (1.0 - self.jitter * self._rng())

    # -- one step ---------------------------------------------------------

    def deliver_once(self) -> Step:
        """Try the head read if it is due; never sleeps, never raises BackendError."""
        with self._lock:
            try:
                item = self.outbox.next_pending()
            except OutboxError as exc:
                return self._outbox_failed("reading the outbox", exc)
            if item is None:
                return Step(Outcome.IDLE, self.idle_poll_s)
            wait_s = item.next_attempt_at - self._clock()
            if wait_s > self.backoff_max_s:
                log.warning("read %s scheduled %.0fs ahead, beyond backoff_max_s: "
                            "wall clock stepped back? retrying now", item.key, wait_s)
            elif wait_s > 0:
                return Step(Outcome.NOT_DUE, wait_s, item.id)
            return self._send(item)

    def _send(self, item: OutboxItem) -> Step:
        try:
            verdict = self.client.post(item.payload)
        except AuthError as exc:
            self._metrics["auth_failures"] += 1
            return self._retry_later(item, exc, logging.ERROR)
        except PermanentError as exc:
            return self._reject(item, str(exc))
        except TransientError as exc:
            return self._retry_later(item, exc, logging.WARNING)
        except ValueError as exc:  # the stored payload cannot be sent at all
            return self._reject(item, f"unsendable payload: {exc}")
        try:
            self.outbox.mark_delivered(item.id, verdict)
        except OutboxError as exc:
            # The backend has it; resending is harmless (same idempotency key).
            return self._outbox_failed(f"recording delivery of {item.key}", exc)
        self._report(item, verdict)
        return Step(Outcome.DELIVERED, 0.0, item.id)

    def _reject(self, item: OutboxItem, reason: str) -> Step:
        try:
            self.outbox.mark_rejected(item.id, reason)
        except OutboxError as exc:
            return self._outbox_failed(f"setting aside {item.key}", exc)
        self._metrics["rejected"] += 1
        return Step(Outcome.REJECTED, 0.0, item.id)

    def _retry_later(self, item: OutboxItem, exc: Exception, level: int) -> Step:
        attempts = item.attempts + 1
        delay = self.backoff_delay(attempts)
        self._metrics["retries"] += 1
        log.log(level, "read %s not delivered (attempt %d): %s; retry in %.1fs",
                item.key, attempts, exc, delay)
        try:
            self.outbox.mark_attempt_failed(item.id, str(exc), self._clock() + delay)
        except OutboxError as err:
            self._metrics["outbox_errors"] += 1
            log.error("could not persist retry state: %s", err)
        return Step(Outcome.FAILED, delay, item.id)

    def _outbox_failed(self, what: str, exc: OutboxError) -> Step:
        self._metrics["outbox_errors"] += 1
        log.error("outbox failure while %s: %s", what, exc)
        return Step(Outcome.ERROR, self.backoff_max_s)

    def _report(self, item: OutboxItem, verdict: Verdict) -> None:
        m = self._metrics
        m["delivered"] += 1
        m[f"vignette_{verdict.vignette}"] += 1
        m["duplicates"] += verdict.duplicate
        m["malformed"] += verdict.malformed
        dup = " (duplicate)" if verdict.duplicate else ""
        if verdict.vignette == "invalid":
            log.warning("NO VALID VIGNETTE: read %s camera %s seen %s%s", item.key,
                        item.payload.get("camera"), item.payload.get("last_seen"), dup)
        else:
            log.info("read %s: vignette %s%s", item.key, verdict.vignette, dup)
        if self.plate_log_level is not None:
            log.log(self.plate_log_level, "read %s is plate %s: vignette %s",
                    item.key, item.plate, verdict.vignette)
        if self._on_verdict is not None:
            try:
                self._on_verdict(item, verdict)
            except Exception:
                log.exception("on_verdict hook failed for read %s", item.key)

    # -- loops ------------------------------------------------------------

    def run_forever(self, stop_event: threading.Event) -> None:
        """Deliver until stop_event is set; returns within one request of it."""
        log.info("sender started")
        while not stop_event.is_set():
            try:
                step = self.deliver_once()
            except Exception:
                log.exception("sender step failed unexpectedly; retrying in %.0fs",
                              self.backoff_max_s)
                step = Step(Outcome.ERROR, self.backoff_max_s)
            if step.wait_s > 0:
                self._wait(stop_event, step.wait_s)
        log.info("sender stopped")

    def start(self, stop_event: threading.Event) -> threading.Thread:
        """run_forever in a daemon thread (reads are safe in the outbox anyway)."""
        thread = threading.Thread(target=self.run_forever, args=(stop_event,),
                                  name="anpr-sender", daemon=True)
        thread.start()
        return thread

    def drain(self, timeout_s: float) -> bool:
        """Deliver what is due within timeout_s (for SIGTERM); True if emptied.

        Gives up early when the next retry would fall past the deadline;
        whatever is left stays in the outbox for the next start.
        """
        deadline = self._clock() + timeout_s
        never = threading.Event()
        while True:
            step = self.deliver_once()
            if step.outcome is Outcome.IDLE:
                return True
            remaining = deadline - self._clock()
            if remaining <= 0 or step.wait_s > remaining:
                return False
            if step.wait_s > 0:
                self._wait(never, step.wait_s)
