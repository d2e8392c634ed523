"""Durable store-and-forward queue for vehicle reads (SQLite, one file).

Why: the network to the backend comes and goes; a read must survive it, a
kill -9 and a power cut.  put() returns only after the row is committed with
journal_mode=WAL and synchronous=FULL, i.e. fsync'd to the WAL file.

Rows are keyed by the read's idempotency key: putting the same read twice
stores it once.  A row is 'pending' until the backend answers, then
'delivered' (2xx) or 'rejected' (4xx; kept, never deleted, logged loudly).

Bound policy (max_rows counts every row):
  * delivered rows are pruned after keep_delivered_days;
  * when the table is full, the oldest delivered rows are pruned early;
  * pending and rejected rows are never dropped: if they alone fill the
    table, put() raises OutboxFull so the caller knows the read is NOT
    stored.  A WARNING is logged (rate-limited) from warn_fraction upward.

SQLite failures (disk full, read-only, I/O error, cannot open) surface as
OutboxWriteError / OutboxError naming the file; nothing is swallowed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import math
import numbers
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol

if TYPE_CHECKING:
    from edge.types import VehicleResult

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_PLAUSIBLE_UNIX_T = 1_577_836_800.0  # 2020-01-01: earlier is a monotonic clock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT    NOT NULL UNIQUE,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'rejected')),
    created_at      REAL    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL DEFAULT 0,
    last_error      TEXT,
    done_at         REAL,
    vignette        TEXT,
    valid_until     TEXT,
    duplicate       INTEGER,
    reason          TEXT
);
CREATE INDEX IF NOT EXISTS outbox_state_id ON outbox (state, id);
"""
# AUTOINCREMENT: ids are never reused after pruning, so id order stays
# insertion order for the life of the file.


class OutboxError(Exception):
    """The outbox file could not be read or used."""


class OutboxWriteError(OutboxError):
    """A write did not reach disk (disk full, read-only, I/O error)."""


class OutboxFull(OutboxError):
    """max_rows reached with nothing prunable: the read was NOT stored."""


class VerdictLike(Protocol):
    """What mark_delivered records (edge.backend.Verdict fits)."""

    @property
    def vignette(self) -> str: ...

    @property
    def valid_until(self) -> dt.date | None: ...

    @property
    def duplicate(self) -> bool: ...


@dataclass(frozen=True)
class OutboxItem:
    """One pending read, with its persisted retry state."""

    id: int
    key: str
    payload: Mapping[str, Any]
    attempts: int
    next_attempt_at: float
    created_at: float

    @property
    def plate(self) -> str:
        return str(self.payload.get("plate", ""))


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    delivered: int
    rejected: int

    @property
    def total(self) -> int:
        return self.pending + self.delivered + self.rejected


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)):
        raise ValueError(f"VehicleResult.{name} must be a finite number, got {value!r}")
    return float(value)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"VehicleResult.{name} must be a non-empty string, got {value!r}")
    return value


def iso_utc(t: float, name: str = "time") -> str:
    """Unix seconds -> '2024-05-01T12:00:00.123Z' (what the API expects)."""
    seconds = _real(t, name)
    if seconds < _PLAUSIBLE_UNIX_T:
        log.warning("VehicleResult.%s=%r is before 2020: a monotonic clock, or the "
                    "wall clock is not set yet?", name, seconds)
    try:
        stamp = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"VehicleResult.{name}={seconds!r} is out of range "
                         f"for a Unix time") from None
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_payload(result: "VehicleResult") -> dict[str, Any]:
    """VehicleResult -> the JSON body of POST /v1/reads (see api/openapi.yaml).

    first_seen/last_seen must be Unix (wall-clock) seconds.
    """
    confidence = _real(result.confidence, "confidence")
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"VehicleResult.confidence must be in [0, 1], got {confidence!r}")
    frames = result.frames
    if isinstance(frames, bool) or not isinstance(frames, numbers.Integral) or frames < 1:
        raise ValueError(f"VehicleResult.frames must be an integer >= 1, got {frames!r}")
    fmt = result.format
    if fmt is not None and not isinstance(fmt, str):
        raise ValueError(f"VehicleResult.format must be a string or None, got {fmt!r}")
    payload: dict[str, Any] = {
        "key": _text(result.key, "key"),
        "plate": _text(result.plate, "plate"),
        "confidence": confidence,
        "format": fmt,
        "first_seen": iso_utc(result.first_seen, "first_seen"),
        "last_seen": iso_utc(result.last_seen, "last_seen"),
        "frames": int(frames),
        "camera": _text(result.camera, "camera"),
    }
    crop = result.crop_jpeg
    if crop is not None:
        if not isinstance(crop, (bytes, bytearray, memoryview)):
            raise ValueError(f"VehicleResult.crop_jpeg must be bytes or None, "
                             f"got {type(crop).__name__}")
        payload["crop_jpeg_b64"] = base64.b64encode(bytes(crop)).decode("ascii")
    return payload


def _without_crop(payload_text: str) -> str:
    try:
        payload = json.loads(payload_text)
    except ValueError:
        return payload_text
    if isinstance(payload, dict) and payload.pop("crop_jpeg_b64", None) is not None:
        return json.dumps(payload, separators=(",", ":"))
    return payload_text


class _Every:
    """True at most once per interval: keeps loud warnings from flooding logs."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    def __call__(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval_s:
            return False
        self._last = now
        return True


ConnectFn = Callable[..., sqlite3.Connection]


class Outbox:
    """SQLite-backed FIFO of reads waiting for the backend; thread-safe."""

    def __init__(self, path: str | os.PathLike[str], max_rows: int = 50_000,
                 keep_delivered_days: float = 7.0, warn_fraction: float = 0.8, *,
                 warn_interval_s: float = 60.0, busy_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time,
                 connect: ConnectFn = sqlite3.connect) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"outbox max_rows must be an integer >= 1, got {max_rows!r}")
        if not keep_delivered_days >= 0:
            raise ValueError(f"outbox keep_delivered_days must be >= 0, "
                             f"got {keep_delivered_days!r}")
        if not 0.0 < warn_fraction <= 1.0:
            raise ValueError(f"outbox warn_fraction must be in (0, 1], got {warn_fraction!r}")
        self.path = Path(path)
        self.max_rows = max_rows
        self.keep_delivered_s = float(keep_delivered_days) * 86400.0
        self.warn_fraction = warn_fraction
        self._clock = clock
        self._lock = threading.Lock()
        self._warn_full = _Every(warn_interval_s, clock)
        self._last_prune = -math.inf
        self._conn = self._open(connect, busy_timeout_s)

    # -- plumbing ---------------------------------------------------------

    def _open(self, connect: ConnectFn, busy_timeout_s: float) -> sqlite3.Connection:
        existed = self.path.exists()
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(str(self.path), timeout=busy_timeout_s,
                           isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise OutboxError(f"outbox {self.path}: schema version {version}, "
                                  f"this code reads {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            hint = "" if self.path.parent.is_dir() else " (directory does not exist)"
            raise OutboxWriteError(f"outbox {self.path}: cannot open: {exc}{hint}") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if str(mode).lower() != "wal":
            log.warning("outbox %s: journal_mode is %s, not wal (filesystem?); "
                        "still durable, but slower", self.path, mode)
        if not existed:
            self._fsync_dir()
        return conn

    def _fsync_dir(self) -> None:
        """Make the new file's directory entry survive a power cut."""
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.debug("outbox %s: fsync of directory failed: %s", self.path, exc)

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; commit is durable when this exits."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxWriteError(f"outbox {self.path}: {what} failed: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("outbox %s: rollback failed: %s", self.path, exc)

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self.path}: {what} failed: {exc}") from exc

    @staticmethod
    def _counts(conn: sqlite3.Connection) -> OutboxStats:
        counts = dict(conn.execute(
            "SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
        return OutboxStats(pending=counts.get("pending", 0),
                           delivered=counts.get("delivered", 0),
                           rejected=counts.get("rejected", 0))

    def _prune_aged(self, conn: sqlite3.Connection, now: float) -> int:
        cur = conn.execute("DELETE FROM outbox WHERE state = 'delivered' AND done_at < ?",
                           (now - self.keep_delivered_s,))
        self._last_prune = now
        return cur.rowcount

    def _make_room(self, conn: sqlite3.Connection, key: str, now: float) -> OutboxStats:
        """Prune delivered rows until one more fits, or raise OutboxFull."""
        if now - self._last_prune >= 3600.0:
            self._prune_aged(conn, now)
        counts = self._counts(conn)
        if counts.total >= self.max_rows and counts.delivered:
            chunk = max(1 + counts.total - self.max_rows, self.max_rows // 10)
            conn.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                         "WHERE state = 'delivered' ORDER BY id LIMIT ?)", (chunk,))
            counts = self._counts(conn)
        if counts.total >= self.max_rows:
            msg = (f"outbox {self.path} is full: {counts.pending} pending + "
                   f"{counts.rejected} rejected = max_rows {self.max_rows}; "
                   f"read {key} NOT stored")
            log.error("%s", msg)
            raise OutboxFull(msg)
        return counts

    def _warn_if_filling(self, counts: OutboxStats) -> None:
        kept = counts.pending + counts.rejected
        if kept >= self.warn_fraction * self.max_rows and self._warn_full():
            log.warning("OUTBOX FILLING: %s holds %d pending + %d rejected of max_rows "
                        "%d; backend unreachable? new reads are refused when full",
                        self.path, counts.pending, counts.rejected, self.max_rows)

    # -- public API -------------------------------------------------------

    def put(self, result: "VehicleResult") -> int:
        """Store a read durably and return its id (existing id if key known)."""
        payload = to_payload(result)
        text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
        key = payload["key"]
        now = self._clock()
        with self._write("put") as conn:
            row = conn.execute("SELECT id FROM outbox WHERE key = ?", (key,)).fetchone()
            if row is not None:
                log.debug("outbox: read %s already stored as id %d", key, row[0])
                return int(row[0])
            counts = self._make_room(conn, key, now)
            cur = conn.execute(
                "INSERT INTO outbox (key, payload, created_at, next_attempt_at) "
                "VALUES (?, ?, ?, 0)", (key, text, now))
            new_id = int(cur.lastrowid or 0)
        self._warn_if_filling(OutboxStats(counts.pending + 1, counts.delivered,
                                          counts.rejected))
        return new_id

    def next_pending(self) -> OutboxItem | None:
        """Oldest pending read (insertion order), whether due or not."""
        while True:
            with self._read("next_pending") as conn:
                row = conn.execute(
                    "SELECT id, key, payload, attempts, next_attempt_at, created_at "
                    "FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            try:
                payload = json.loads(row[2])
                if not isinstance(payload, dict):
                    raise ValueError("payload is not a JSON object")
            except ValueError as exc:
                # Unreadable rows would block the queue forever: set aside.
                self.mark_rejected(row[0], f"corrupt payload in outbox: {exc}")
                continue
            return OutboxItem(id=row[0], key=row[1], payload=payload, attempts=row[3],
                              next_attempt_at=row[4], created_at=row[5])

    def _finish(self, what: str, item_id: int, sql: str, args: tuple[Any, ...]) -> bool:
        with self._write(what) as conn:
            cur = conn.execute(sql + " WHERE id = ? AND state = 'pending'",
                               (*args, item_id))
            if cur.rowcount:
                return True
            if conn.execute("SELECT 1 FROM outbox WHERE id = ?", (item_id,)).fetchone():
                log.debug("outbox: %s(%d) ignored, row is not pending", what, item_id)
                return False
        raise LookupError(f"outbox {self.path}: no read with id {item_id}")

    def mark_delivered(self, item_id: int, verdict: VerdictLike) -> bool:
        """Record the backend's verdict; False if the row was not pending.

        The crop is dropped from the kept payload: the backend has it, and
        plate images are personal data not worth keeping for N more days.
        """
        until = verdict.valid_until.isoformat() if verdict.valid_until else None
        with self._write("mark_delivered") as conn:
            row = conn.execute("SELECT payload FROM outbox WHERE id = ? AND "
                               "state = 'pending'", (item_id,)).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE outbox SET state = 'delivered', done_at = ?, vignette = ?, "
                    "valid_until = ?, duplicate = ?, last_error = NULL, payload = ? "
                    "WHERE id = ?",
                    (self._clock(), str(verdict.vignette), until,
                     int(bool(verdict.duplicate)), _without_crop(row[0]), item_id))
                return True
            known = conn.execute("SELECT 1 FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if known:
            log.debug("outbox: mark_delivered(%d) ignored, row is not pending", item_id)
            return False
        raise LookupError(f"outbox {self.path}: no read with id {item_id}")

    def mark_rejected(self, item_id: int, reason: str) -> bool:
        """Set a read aside for good (kept in the table for an operator)."""
        changed = self._finish(
            "mark_rejected", item_id,
            "UPDATE outbox SET state = 'rejected', done_at = ?, reason = ?",
            (self._clock(), reason))
        if changed:
            log.error("READ REJECTED and set aside in %s: id %d: %s "
                      "(kept; see Outbox.requeue_rejected)", self.path, item_id, reason)
        return changed

    def mark_attempt_failed(self, item_id: int, error: str, next_attempt_at: float) -> int:
        """Persist a failed try and when to retry; returns attempts so far."""
        with self._write("mark_attempt_failed") as conn:
            conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                         "next_attempt_at = ? WHERE id = ? AND state = 'pending'",
                         (error, next_attempt_at, item_id))
            row = conn.execute("SELECT attempts FROM outbox WHERE id = ?",
                               (item_id,)).fetchone()
        if row is None:
            raise LookupError(f"outbox {self.path}: no read with id {item_id}")
        return int(row[0])

    def requeue_rejected(self) -> int:
        """Put rejected reads back in the queue (after fixing their cause)."""
        with self._write("requeue_rejected") as conn:
            cur = conn.execute("UPDATE outbox SET state = 'pending', attempts = 0, "
                               "next_attempt_at = 0, done_at = NULL, reason = NULL "
                               "WHERE state = 'rejected'")
        if cur.rowcount:
            log.warning("outbox %s: %d rejected reads requeued", self.path, cur.rowcount)
        return cur.rowcount

    def prune(self) -> int:
        """Delete delivered rows older than keep_delivered_days; returns count."""
        with self._write("prune") as conn:
            return self._prune_aged(conn, self._clock())

    def stats(self) -> OutboxStats:
        with self._read("stats") as conn:
            return self._counts(conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, max_rows={self.max_rows})"
