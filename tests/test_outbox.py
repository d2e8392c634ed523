"""Outbox: durability, idempotency, order, bound policy, loud write errors."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.outbox import Outbox, OutboxFull, OutboxStats, OutboxWriteError, to_payload
from edge.types import VehicleResult

REPO = Path(__file__).resolve().parents[1]
T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def _result(n: int = 1, **kw: object) -> VehicleResult:
    base: dict[str, object] = dict(
        plate=f"W{n:05d}X", confidence=0.93, first_seen=T0 + n, last_seen=T0 + n + 1.5,
        frames=7, camera="cam0", key=f"k{n}", format="AT")
    base.update(kw)
    return VehicleResult(**base)  # type: ignore[arg-type]


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class V:
    vignette: str = "valid"
    valid_until: dt.date | None = dt.date(2024, 12, 31)
    duplicate: bool = False


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite"


# -- payload --------------------------------------------------------------

def test_to_payload_iso_utc_and_crop() -> None:
    p = to_payload(_result(1, crop_jpeg=b"\xff\xd8jpeg"))
    assert p["first_seen"] == "2024-05-01T12:00:01.000Z"
    assert p["last_seen"] == "2024-05-01T12:00:02.500Z"
    assert p["crop_jpeg_b64"] == "/9hqcGVn"
    assert p["key"] == "k1" and p["plate"] == "W00001X" and p["format"] == "AT"
    assert "crop_jpeg_b64" not in to_payload(_result(1))


@pytest.mark.parametrize("field,value", [
    ("confidence", float("nan")), ("confidence", 1.5), ("key", ""), ("plate", ""),
    ("frames", 0), ("first_seen", float("inf")), ("last_seen", 1e20), ("camera", None),
])
def test_to_payload_bad_input_names_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        to_payload(_result(1, **{field: value}))


# -- durability -----------------------------------------------------------

def test_put_is_visible_to_a_new_connection(db: Path) -> None:
    ob = Outbox(db)
    rid = ob.put(_result(1))
    # Before close: another connection already sees the committed row.
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT id, key, state FROM outbox").fetchall() == \
            [(rid, "k1", "pending")]
    ob.close()
    with Outbox(db) as again:
        item = again.next_pending()
        assert item is not None and item.key == "k1" and item.plate == "W00001X"


def test_put_survives_kill_9(db: Path) -> None:
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from edge.outbox import Outbox
        from edge.types import VehicleResult
        ob = Outbox(sys.argv[1])
        ob.put(VehicleResult("KILL9", 0.9, {T0}, {T0 + 1}, 3, "cam0", "kill-key"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(db)], timeout=30)
    assert proc.returncode == -9
    with Outbox(db) as ob:
        item = ob.next_pending()
        assert item is not None and item.key == "kill-key"


def test_wal_and_synchronous_full(db: Path) -> None:
    with Outbox(db) as ob:
        assert ob._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(db) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_key_twice_is_one_row(db: Path) -> None:
    with Outbox(db) as ob:
        first = ob.put(_result(1))
        again = ob.put(_result(1, plate="OTHER"))
        assert first == again
        assert ob.stats() == OutboxStats(pending=1, delivered=0, rejected=0)


def test_order_delivered_rejected_and_stats(db: Path, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    with Outbox(db) as ob:
        ids = [ob.put(_result(n)) for n in (3, 1, 2)]
        head = ob.next_pending()
        assert head is not None and head.id == ids[0] and head.key == "k3"
        assert ob.mark_delivered(ids[0], V())
        assert not ob.mark_delivered(ids[0], V())  # already done: no-op
        with caplog.at_level(logging.ERROR):
            assert ob.mark_rejected(ids[1], "HTTP 400: bad plate")
        assert "REJECTED" in caplog.text and "bad plate" in caplog.text
        head = ob.next_pending()
        assert head is not None and head.key == "k2"
        assert ob.stats() == OutboxStats(pending=1, delivered=1, rejected=1)
    with sqlite3.connect(db) as other:
        row = other.execute("SELECT vignette, valid_until, duplicate FROM outbox "
                            "WHERE id = ?", (ids[0],)).fetchone()
        assert row == ("valid", "2024-12-31", 0)


def test_delivered_rows_drop_their_crop(db: Path) -> None:
    with Outbox(db) as ob:
        rid = ob.put(_result(1, crop_jpeg=b"\xff\xd8jpeg"))
        item = ob.next_pending()
        assert item is not None and "crop_jpeg_b64" in item.payload
        ob.mark_delivered(rid, V())
    with sqlite3.connect(db) as other:
        (payload,) = other.execute("SELECT payload FROM outbox").fetchone()
        assert "crop_jpeg_b64" not in payload and '"plate":"W00001X"' in payload


def test_attempts_persist_across_reopen(db: Path) -> None:
    with Outbox(db) as ob:
        rid = ob.put(_result(1))
        assert ob.mark_attempt_failed(rid, "HTTP 503", T0 + 10) == 1
        assert ob.mark_attempt_failed(rid, "timeout", T0 + 30) == 2
    with Outbox(db) as ob:
        item = ob.next_pending()
        assert item is not None and (item.attempts, item.next_attempt_at) == (2, T0 + 30)


def test_unknown_id_is_a_one_line_error(db: Path) -> None:
    with Outbox(db) as ob, pytest.raises(LookupError, match="no read with id 99"):
        ob.mark_delivered(99, V())


def test_requeue_rejected(db: Path) -> None:
    with Outbox(db) as ob:
        rid = ob.put(_result(1))
        ob.mark_rejected(rid, "HTTP 404")
        assert ob.next_pending() is None
        assert ob.requeue_rejected() == 1
        item = ob.next_pending()
        assert item is not None and item.id == rid and item.attempts == 0


def test_corrupt_row_is_set_aside_not_blocking(db: Path) -> None:
    with Outbox(db) as ob:
        bad = ob.put(_result(1))
        ob.put(_result(2))
        ob._conn.execute("UPDATE outbox SET payload = 'not json' WHERE id = ?", (bad,))
        item = ob.next_pending()
        assert item is not None and item.key == "k2"
        assert ob.stats().rejected == 1


# -- bound policy ---------------------------------------------------------

def test_bound_prunes_delivered_then_refuses(db: Path, caplog: pytest.LogCaptureFixture
                                             ) -> None:
    with Outbox(db, max_rows=4, warn_fraction=0.5) as ob:
        ids = [ob.put(_result(n)) for n in range(4)]
        ob.mark_delivered(ids[0], V())
        ob.mark_delivered(ids[1], V())
        ob.put(_result(4))  # full: the oldest delivered row makes room
        ob.put(_result(5))
        assert ob.stats() == OutboxStats(pending=4, delivered=0, rejected=0)
        assert "OUTBOX FILLING" in caplog.text
        with pytest.raises(OutboxFull, match="k6 NOT stored"):
            ob.put(_result(6))
        assert ob.put(_result(5)) > 0  # a known key is still a no-op, not an error
        ob.mark_rejected(ids[2], "HTTP 400")  # rejected rows are kept, never pruned
        with pytest.raises(OutboxFull):
            ob.put(_result(6))
        assert ob.stats() == OutboxStats(pending=3, delivered=0, rejected=1)


def test_filling_warning_is_rate_limited(db: Path, caplog: pytest.LogCaptureFixture
                                        ) -> None:
    clock = Clock()
    with Outbox(db, max_rows=10, warn_fraction=0.1, warn_interval_s=60, clock=clock) as ob:
        for n in range(3):
            ob.put(_result(n))
        clock.t += 61
        ob.put(_result(9))
    assert caplog.text.count("OUTBOX FILLING") == 2


def test_delivered_rows_expire_after_keep_days(db: Path) -> None:
    clock = Clock()
    with Outbox(db, keep_delivered_days=1, clock=clock) as ob:
        rid = ob.put(_result(1))
        ob.put(_result(2))
        ob.mark_delivered(rid, V())
        clock.t += 0.5 * 86400
        assert ob.prune() == 0
        clock.t += 86400
        assert ob.prune() == 1
        assert ob.stats() == OutboxStats(pending=1, delivered=0, rejected=0)


# -- failures are loud ----------------------------------------------------

def test_missing_directory_raises_write_error(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "outbox.sqlite"
    with pytest.raises(OutboxWriteError, match=r"gone/outbox\.sqlite.*does not exist"):
        Outbox(path)


def test_disk_full_raises_write_error_naming_file(db: Path) -> None:
    with Outbox(db) as ob:
        ob.put(_result(1))
        pages = ob._conn.execute("PRAGMA page_count").fetchone()[0]
        ob._conn.execute(f"PRAGMA max_page_count = {pages}")  # simulate a full disk
        with pytest.raises(OutboxWriteError, match=r"outbox\.sqlite: put failed: .*full"):
            ob.put(_result(2, crop_jpeg=b"x" * 200_000))
        assert ob.stats().pending == 1  # rolled back, still usable


class _ReadOnly(sqlite3.Connection):
    """A connection whose writes fail like a read-only filesystem's."""

    fail = False

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        if self.fail and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return super().execute(sql, *args)


def test_readonly_database_raises_write_error(db: Path) -> None:
    def connect(path: str, **kw: object) -> sqlite3.Connection:
        return sqlite3.connect(path, factory=_ReadOnly, **kw)  # type: ignore[call-overload]

    with Outbox(db, connect=connect) as ob:
        rid = ob.put(_result(1))
        _ReadOnly.fail = True
        try:
            with pytest.raises(OutboxWriteError, match=r"outbox\.sqlite: put.*readonly"):
                ob.put(_result(2))
            with pytest.raises(OutboxWriteError, match="mark_delivered.*readonly"):
                ob.mark_delivered(rid, V())
        finally:
            _ReadOnly.fail = False
        ob.put(_result(2))
        assert ob.stats().pending == 2


@pytest.mark.parametrize("kw", [{"max_rows": 0}, {"keep_delivered_days": -1},
                                {"warn_fraction": 0}])
def test_bad_config_is_a_one_line_error(db: Path, kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kw))):
        Outbox(db, **kw)  # type: ignore[arg-type]


def test_file_that_is_not_a_database_raises_write_error(db: Path) -> None:
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxWriteError, match=r"outbox\.sqlite: cannot open"):
        Outbox(db)
