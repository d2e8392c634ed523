"""Outbox first: write each result to the outbox, or hold it and retry.

Why a separate step: the outbox can refuse a write (disk full, read-only, an
I/O error, OutboxFull). The daemon must then neither lose the result nor
pretend it was stored; so it is held in a bounded in-memory list, in order,
and written again later, and only what the outbox accepted is reported as
stored (and only then logged or saved as a crop).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from edge.outbox import OutboxError
from edge.types import VehicleResult

__all__ = ["Committer", "HELD_RESULTS_LIMIT", "OutboxLike"]

log = logging.getLogger(__name__)

HELD_RESULTS_LIMIT = 2000  # ~10 MB with crops; beyond it the oldest are lost, loudly


class OutboxLike(Protocol):
    def put(self, result: VehicleResult) -> int: ...


class Committer:
    """Writes results to the outbox in order; holds and retries those it refuses.

    flush() returns the results stored just now, oldest first. While any
    result is held, new ones queue behind it (order is kept), and writes are
    retried after retry_initial_s, doubling to retry_max_s while nothing gets
    through (a write is cheap; the backoff spares a failing SD card). The
    failure is logged CRITICAL at once, then at most every log_every_s. At
    most `limit` results are held; beyond that the oldest is dropped and
    logged CRITICAL as lost.
    """

    def __init__(self, outbox: OutboxLike, *, limit: int = HELD_RESULTS_LIMIT,
                 retry_initial_s: float = 1.0, retry_max_s: float = 5.0, log_every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.outbox = outbox
        self.limit = limit
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.log_every_s = log_every_s
        self._clock = clock
        self._held: deque[VehicleResult] = deque()
        self._delay = retry_initial_s
        self._next_try = -math.inf
        self._logged_at = -math.inf
        self.error: str | None = None   # the last outbox error while results are held
        self.stored = 0
        self.lost: list[str] = []       # keys of results given up on
        self.invalid = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def add(self, results: Iterable[VehicleResult]) -> None:
        for result in results:
            self._held.append(result)
        while len(self._held) > self.limit:
            gone = self._held.popleft()
            self.lost.append(gone.key)
            log.critical("READ LOST: %d results held in memory while the outbox fails; "
                         "dropped the oldest, read %s (camera %s, seen %.3f)",
                         self.limit, gone.key, gone.camera, gone.first_seen)

    def flush(self, *, force: bool = False) -> list[VehicleResult]:
        """Write held results if due (or force); the ones stored now."""
        stored: list[VehicleResult] = []
        if not self._held or (not force and self._clock() < self._next_try):
            return stored
        while self._held:
            result = self._held[0]
            try:
                self.outbox.put(result)
            except ValueError as exc:  # the result itself is unstorable: a bug upstream
                self._held.popleft()
                self.invalid += 1
                self.lost.append(result.key)
                log.error("read %s cannot be stored and is dropped: %s", result.key, exc)
                continue
            except OutboxError as exc:
                if stored:  # progress (e.g. OutboxFull easing): try again soon
                    self._delay = self.retry_initial_s
                self._failed(exc)
                break
            self._held.popleft()
            stored.append(result)
        else:
            if self.error is not None:
                log.warning("outbox writes work again: held results stored")
            self.error = None
            self._delay = self.retry_initial_s
            self._next_try = -math.inf
        self.stored += len(stored)
        return stored

    def _failed(self, exc: OutboxError) -> None:
        now = self._clock()
        first = self.error is None
        self.error = " ".join(str(exc).split())
        self._next_try = now + self._delay
        if first or now - self._logged_at >= self.log_every_s:
            self._logged_at = now
            log.critical("OUTBOX WRITE FAILED: %d result(s) NOT stored, held in memory "
                         "(retrying every %.0f-%.0f s): %s", len(self._held), self.retry_initial_s,
                         self.retry_max_s, self.error)
        self._delay = min(self._delay * 2, self.retry_max_s)

    def abandon(self) -> list[VehicleResult]:
        """At exit: the results never stored (they are lost with the process)."""
        gone = list(self._held)
        self._held.clear()
        self.lost.extend(r.key for r in gone)
        return gone
