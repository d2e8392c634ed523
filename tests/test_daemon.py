"""The daemon: its loop in-process with fakes, and `anpr-edge run` as a process.

The fakes here are also the daemon's test hooks (ANPR_EDGE_TEST_PIPELINE=
test_daemon:fake_pipeline, ANPR_EDGE_TEST_SOURCE=test_daemon:fake_source):
vehicle v is in frames [10v, 10v + 5) of any source, plate "AB" + 4 digits,
so expected results follow from the frame count alone. test_faults.py
reuses the helpers.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from edge.config import load_config
from edge.committer import Committer
from edge.daemon import Daemon
from edge.framefeed import FeedEvent, FrameFeed
from edge.outbox import Outbox, OutboxFull, OutboxWriteError
from edge.sources import SourceError
from edge.tracker import Observation
from edge.types import Box, Frame, Reading, VehicleResult

ROOT = Path(__file__).resolve().parents[1]
PERIOD = 10   # frames per vehicle
VISIBLE = 5   # frames a vehicle's plate is read in


def plate_of(v: int) -> str:
    return f"AB{v:04d}"


def plates_in(frames: int) -> list[str]:
    """The plates a source of this many frames shows (a vehicle needs 2 frames)."""
    return [plate_of(v) for v in range((frames + PERIOD - 1) // PERIOD)
            if min(VISIBLE, frames - v * PERIOD) >= 2]


# --------------------------------------------------------------------------
# Fakes (also reachable as the daemon's test hooks).

class FakePipeline:
    """Reads vehicle frame.index // PERIOD while frame.index % PERIOD < VISIBLE.

    Env ANPR_EDGE_FAKE="delay=S,hang_at=N,hang_file=PATH" slows each frame,
    or hangs forever from frame N on (writing hang_file first): a hung model.
    """

    def __init__(self, delay_s: float = 0.0, hang_at: int | None = None,
                 hang_file: str | None = None) -> None:
        self.delay_s = delay_s
        self.hang_at = hang_at
        self.hang_file = hang_file
        self.frames = 0
        self.reconfigured: list[Any] = []

    @classmethod
    def from_env(cls) -> "FakePipeline":
        opts = dict(part.split("=", 1) for part in os.environ.get("ANPR_EDGE_FAKE", "").split(",") if part)
        return cls(float(opts.get("delay", 0)), int(opts["hang_at"]) if "hang_at" in opts else None,
                   opts.get("hang_file"))

    def process(self, frame: Frame) -> list[Observation]:
        if self.hang_at is not None and frame.index >= self.hang_at:
            if self.hang_file:
                Path(self.hang_file).write_text(str(frame.index))
            threading.Event().wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        self.frames += 1
        v, k = divmod(frame.index, PERIOD)
        if k >= VISIBLE:
            return []
        plate = plate_of(v)
        x = 10.0 + 30.0 * (v % 2)
        return [Observation(Box(x, 10.0, x + 40.0, 22.0), Reading(plate, 0.95, (0.99,) * len(plate)))]

    def reconfigure(self, cfg: Any) -> None:
        self.reconfigured.append(cfg)


def fake_pipeline(cfg: Any) -> FakePipeline:
    return FakePipeline.from_env()


class FakeLiveSource:
    """A camera: frames every period_s with wall-clock times.

    stall_after: after that many frames it blocks (no error, no end) until
    closed; fail_after: raises SourceError after that many frames.
    """

    live = True

    def __init__(self, camera_id: str = "cam0", *, period_s: float = 0.01, start_index: int = 0,
                 stall_after: int | None = None, fail_after: int | None = None) -> None:
        self.camera_id = camera_id
        self.description = "fake camera"
        self.period_s = period_s
        self.start_index = start_index
        self.stall_after = stall_after
        self.fail_after = fail_after
        self._closed = threading.Event()
        self.fps = 1.0 / period_s

    def __iter__(self) -> Iterator[Frame]:
        image = np.zeros((24, 32, 3), np.uint8)
        i = 0
        while not self._closed.is_set():
            if self.stall_after is not None and i >= self.stall_after:
                self._closed.wait()
                return
            if self.fail_after is not None and i >= self.fail_after:
                raise SourceError("fake camera: unplugged")
            yield Frame(image, time.time(), self.camera_id, self.start_index + i)
            i += 1
            self._closed.wait(self.period_s)

    def close(self) -> None:
        self._closed.set()


def fake_source(cfg: Any) -> FakeLiveSource:
    """Hook: ANPR_EDGE_FAKE_SOURCE="stall_after=N,period=S"."""
    opts = dict(part.split("=", 1) for part in os.environ.get("ANPR_EDGE_FAKE_SOURCE", "").split(",") if part)
    return FakeLiveSource(cfg.id, period_s=float(opts.get("period", 0.01)),
                          stall_after=int(opts["stall_after"]) if "stall_after" in opts else None)


class RecordingNotifier:
    """In-memory systemd: keeps every notification."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def notify(self, *fields: str) -> bool:
        with self._lock:
            self.messages.append("\n".join(fields))
        return True

    def fields(self, prefix: str) -> list[str]:
        with self._lock:
            return [line for m in self.messages for line in m.split("\n") if line.startswith(prefix)]


# --------------------------------------------------------------------------
# Files and processes.

def make_video(path: Path, frames: int, fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 24))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((24, 32, 3), i % 256, np.uint8))
    writer.release()
    return path


def write_config(tmp: Path, *, source: str = "video", video: Path | None = None,
                 backend_url: str | None = None, **sections: dict[str, Any]) -> Path:
    """A config for the fakes: dummy model files, fast tracker and backoffs."""
    models = tmp / "models"
    models.mkdir(exist_ok=True)
    for name in ("detect.tflite", "ocr.tflite", "alphabet.txt"):
        (models / name).write_bytes(b"unused by the fake pipeline")
    doc: dict[str, Any] = {
        "camera": {"id": "cam0", "source": source, "fps": 25,
                   "reconnect_initial_s": 0.05, "reconnect_max_s": 0.2},
        "detector": {"model": str(models / "detect.tflite")},
        "reader": {"ocr_model": str(models / "ocr.tflite"), "alphabet": str(models / "alphabet.txt"),
                   "tesseract": {"enabled": False}},
        "tracker": {"max_gap_s": 0.1, "min_frames": 2, "min_confidence": 0.5, "max_delay_s": 30.0},
        "backend": {"url": backend_url, "token_env": None, "timeout_s": 0.5,
                    "backoff_initial_s": 0.05, "backoff_max_s": 0.3},
        "outbox": {"path": str(tmp / "state" / "outbox.sqlite")},
        "privacy": {"crops_dir": str(tmp / "state" / "crops")},
        "daemon": {"stats_interval_s": 1.0},
    }
    if video is not None:
        doc["camera"]["path"] = str(video)
    for section, values in sections.items():
        doc.setdefault(section, {}).update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def outbox_rows(cfg_path: Path) -> list[tuple[str, str, str]]:
    """(key, plate, state) of every outbox row, in insertion order."""
    import json
    db = Path(yaml.safe_load(cfg_path.read_text())["outbox"]["path"])
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("SELECT key, payload, state FROM outbox ORDER BY id").fetchall()
    except sqlite3.OperationalError as exc:  # the file exists a moment before its schema does
        if "no such table" not in str(exc):
            raise
        return []
    finally:
        conn.close()
    return [(k, json.loads(p)["plate"], s) for k, p, s in rows]


class NotifyListener:
    """A fake $NOTIFY_SOCKET: records (monotonic time, message) of each datagram."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="anpr-nfy-")
        self.path = os.path.join(self._dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def fields(self, prefix: str, since: float = 0.0) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, line) for t, m in self.messages if t >= since
                    for line in m.split("\n") if line.startswith(prefix)]

    def wait_for(self, prefix: str, timeout: float = 10.0, since: float = 0.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.fields(prefix, since)
            if found:
                return found[0][1]
            time.sleep(0.02)
        raise AssertionError(f"no {prefix!r} notification within {timeout} s: {self.messages[-5:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()
        try:
            os.unlink(self.path)
            os.rmdir(self._dir)
        except OSError:
            pass


class DaemonProcess:
    """`python -m edge run` with the fake pipeline, stderr to a log file."""

    def __init__(self, config: Path, log_path: Path, *, notify: NotifyListener | None = None,
                 watchdog_usec: int | None = None, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
        full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
        full_env["ANPR_EDGE_TEST_PIPELINE"] = "test_daemon:fake_pipeline"
        if notify is not None:
            full_env["NOTIFY_SOCKET"] = notify.path
        if watchdog_usec is not None:
            full_env["WATCHDOG_USEC"] = str(watchdog_usec)
        full_env.update(env or {})
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config), *args],
            cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None and text not in self.log():
                raise AssertionError(f"daemon exited {self.proc.returncode} before logging {text!r}:\n"
                                     + self.log()[-3000:])
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the daemon log within {timeout} s:\n" + self.log()[-3000:])

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("daemon did not exit:\n" + self.log()[-3000:]) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        self._log.close()


@pytest.fixture
def daemons() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemon processes; all are killed at the end of the test."""
    started: list[DaemonProcess] = []

    def start(*args: Any, **kwargs: Any) -> DaemonProcess:
        d = DaemonProcess(*args, **kwargs)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


@pytest.fixture
def notify() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    yield listener
    listener.close()


# --------------------------------------------------------------------------
# In-process: the loop with fakes.

def _daemon(cfg_path: Path, *, source_factory: Callable[..., Any], pipeline: FakePipeline | None = None,
            notifier: RecordingNotifier | None = None, **kwargs: Any) -> Daemon:
    cfg = load_config(cfg_path)
    pipeline = pipeline or FakePipeline()
    return Daemon(cfg, cfg_path, pipeline_factory=lambda c: pipeline, source_factory=source_factory,
                  notifier=notifier or RecordingNotifier(), **kwargs)


def _run_in_thread(daemon: Daemon) -> tuple[threading.Thread, list[int]]:
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(daemon.run()), daemon=True)
    thread.start()
    return thread, code


def _wait(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_video_source_results_in_order_and_exit_0_at_end(tmp_path: Path) -> None:
    video = make_video(tmp_path / "road.avi", 60)
    cfg_path = write_config(tmp_path, video=video)
    notifier = RecordingNotifier()
    daemon = _daemon(cfg_path, source_factory=_open_source, notifier=notifier)
    assert daemon.run() == 0
    assert [plate for _, plate, _ in outbox_rows(cfg_path)] == plates_in(60)
    assert "READY=1" in notifier.fields("READY=1")
    assert notifier.fields("STOPPING=1")


def _open_source(cfg: Any) -> Any:
    from edge.sources import open_source
    return open_source(cfg)


def test_replaying_the_same_file_gives_the_same_keys(tmp_path: Path) -> None:
    video = make_video(tmp_path / "road.avi", 40)
    cfg_path = write_config(tmp_path, video=video)
    assert _daemon(cfg_path, source_factory=_open_source).run() == 0
    first = outbox_rows(cfg_path)
    assert _daemon(cfg_path, source_factory=_open_source).run() == 0
    assert outbox_rows(cfg_path) == first and len(first) == len(plates_in(40))


def test_live_source_reconnects_with_backoff_and_keeps_the_watchdog_fed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    cfg_path = write_config(tmp_path, source="opencv",
                            camera={"reconnect_initial_s": 0.2, "reconnect_max_s": 0.8})
    opened: list[FakeLiveSource] = []

    def factory(cfg: Any) -> FakeLiveSource:
        n = len(opened)
        if n in (1, 2):  # the 2nd and 3rd opens fail: the camera is gone for a while
            opened.append(None)  # type: ignore[arg-type]
            raise SourceError("fake camera: not found")
        # each working open shows 12 frames (vehicle 0 and the start of vehicle 1), then unplugs
        src = FakeLiveSource(cfg.id, period_s=0.03, start_index=100 * n, fail_after=12 if n < 3 else None)
        opened.append(src)
        return src

    notifier = RecordingNotifier()
    pipeline = FakePipeline()
    # stall after 0.5 s; the camera is away 0.2 + 0.4 + 0.8 s, yet reopening is progress
    daemon = _daemon(cfg_path, source_factory=factory, pipeline=pipeline, notifier=notifier, watchdog_s=0.25)
    thread, code = _run_in_thread(daemon)
    _wait(lambda: len(opened) >= 4 and pipeline.frames > 40, what="the 4th open")
    daemon.request_stop()
    thread.join(10)
    assert code == [0]
    text = caplog.text
    assert "source failed: fake camera: unplugged; reopening in 0.2 s" in text
    assert "source cannot open: fake camera: not found; reopening in 0.4 s" in text
    assert "source cannot open: fake camera: not found; reopening in 0.8 s" in text  # doubled, capped
    assert "no longer feeding the systemd watchdog" not in text
    assert notifier.fields("WATCHDOG=1")
    plates = [p for _, p, _ in outbox_rows(cfg_path)]
    assert plate_of(0) in plates and plate_of(30) in plates  # before and after the outage


def test_frame_feed_file_end_is_done_but_loop_continues_in_time(tmp_path: Path) -> None:
    video = make_video(tmp_path / "road.avi", 5)
    cfg = load_config(write_config(tmp_path, video=video)).camera
    feed = FrameFeed(cfg, _open_source, threading.Event(), loop=True)
    feed.open_first()
    times: list[float] = []
    while len(times) < 12:
        tick = feed.next()
        if tick.event is FeedEvent.FRAME:
            times.append(tick.t)
        assert tick.event is not FeedEvent.END
    assert times == sorted(times) and len(set(times)) == 12  # the second pass continues the clock
    assert times[0] == pytest.approx(feed.base)
    feed.close()
    once = FrameFeed(cfg, _open_source, threading.Event(), loop=False)
    once.open_first()
    events = [once.next().event for _ in range(6)]
    assert events == [FeedEvent.FRAME] * 5 + [FeedEvent.END]


def test_file_source_that_cannot_be_read_exits_4(tmp_path: Path) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    cfg_path = write_config(tmp_path, video=bad)
    assert _daemon(cfg_path, source_factory=_open_source).run() == 4


def _reload(daemon: Daemon, notifier: RecordingNotifier) -> None:
    """Reload and wait for its end: READY=1 after RELOADING=1, as systemd waits (not its first log line)."""
    done = len(notifier.fields("READY=1"))
    daemon.request_reload()
    _wait(lambda: len(notifier.fields("READY=1")) > done, what="the reload's READY=1")


def test_sighup_reload_logs_changes_and_restart_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    cfg_path = write_config(tmp_path, source="opencv")
    pipeline = FakePipeline()
    notifier = RecordingNotifier()
    daemon = _daemon(cfg_path, source_factory=lambda c: FakeLiveSource(c.id, period_s=0.03), pipeline=pipeline,
                     notifier=notifier)
    thread, code = _run_in_thread(daemon)
    _wait(lambda: pipeline.frames > 5, what="frames")
    doc = yaml.safe_load(cfg_path.read_text())
    doc["tracker"]["max_gap_s"] = 0.3
    doc["camera"]["fps"] = 5
    cfg_path.write_text(yaml.safe_dump(doc))
    _reload(daemon, notifier)
    assert daemon.tracker is not None and daemon.tracker.cfg.max_gap_s == 0.3
    assert daemon.cfg.camera.fps == 25  # not hot: kept
    assert pipeline.reconfigured and pipeline.reconfigured[-1].tracker.max_gap_s == 0.3
    assert "reload: tracker.max_gap_s 0.1 -> 0.3" in caplog.text
    assert "needs a restart (systemctl restart anpr-edge): camera.fps" in caplog.text
    cfg_path.write_text("tracker: {max_gap_s: lots}\n")
    _reload(daemon, notifier)
    assert "reload failed, keeping the running configuration" in caplog.text
    assert "tracker.max_gap_s: expected a number" in caplog.text
    daemon.request_stop()
    thread.join(10)
    assert code == [0]


# --------------------------------------------------------------------------
# Committer: outbox first, hold and retry what it refuses.

def _result(n: int) -> VehicleResult:
    return VehicleResult(plate_of(n), 0.9, 1_714_564_800.0 + n, 1_714_564_801.0 + n, 3, "cam0", f"k{n}")


class FlakyOutbox:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.error: Exception | None = None

    def put(self, result: VehicleResult) -> int:
        if self.error is not None:
            raise self.error
        self.rows.append(result.key)
        return len(self.rows)


def test_committer_holds_in_order_and_retries_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    box = FlakyOutbox()
    c = Committer(box, limit=3, retry_initial_s=1.0, retry_max_s=4.0, clock=lambda: now[0])
    box.error = OutboxWriteError("outbox x: put failed: disk I/O error")
    c.add([_result(0)])
    assert c.flush() == [] and c.held == 1 and "disk I/O error" in (c.error or "")
    assert "OUTBOX WRITE FAILED: 1 result(s) NOT stored" in caplog.text
    assert [r.levelname for r in caplog.records if "OUTBOX WRITE FAILED" in r.message] == ["CRITICAL"]
    box.error = None
    c.add([_result(1)])
    assert c.flush() == [] and box.rows == []  # not due yet: order kept, no hammering
    now[0] = 1.0
    assert [r.key for r in c.flush()] == ["k0", "k1"] and c.error is None
    box.error = OutboxFull("full")
    c.add([_result(2)])
    c.flush()
    now[0] = 2.0
    c.flush()  # fails again: next try 2 s later (doubled)
    now[0] = 3.0
    c.add([_result(3), _result(4), _result(5)])  # 4 held > limit 3: the oldest is lost, loudly
    assert c.lost == ["k2"] and c.held == 3
    assert "READ LOST" in caplog.text
    assert c.flush() == []
    box.error = None
    now[0] = 4.0
    assert [r.key for r in c.flush()] == ["k3", "k4", "k5"]


def test_committer_drops_an_unstorable_result_but_not_the_rest() -> None:
    box = Outbox(":memory:")
    c = Committer(box)
    bad = VehicleResult("X1", float("nan"), 1.7e9, 1.7e9, 2, "cam0", "kbad")
    c.add([_result(0), bad, _result(1)])
    assert [r.key for r in c.flush()] == ["k0", "k1"] and c.lost == ["kbad"] and c.held == 0


# --------------------------------------------------------------------------
# The process, end to end.

@pytest.mark.slow
def test_process_sigterm_flushes_tracker_and_exits_0(tmp_path: Path, daemons: Callable[..., DaemonProcess],
                                                    notify: NotifyListener) -> None:
    cfg_path = write_config(tmp_path, source="opencv")
    log_path = tmp_path / "daemon.log"
    log_path.touch()
    st = log_path.stat()  # as systemd does: stderr is the journal stream named here
    d = daemons(cfg_path, log_path, notify=notify, watchdog_usec=1_000_000,
                env={"ANPR_EDGE_TEST_SOURCE": "test_daemon:fake_source",
                     "ANPR_EDGE_FAKE_SOURCE": "period=0.03", "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    notify.wait_for("READY=1")
    notify.wait_for("WATCHDOG=1")
    d.wait_log("vehicle stored")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("reload: no threshold changed")
    d.proc.send_signal(signal.SIGTERM)
    assert d.wait() == 0
    log_text = d.log()
    assert "SIGTERM received: stopping" in log_text and "flushing the tracker" in log_text
    assert notify.fields("STOPPING=1") and notify.fields("RELOADING=1")
    assert "Traceback" not in log_text
    lines = log_text.splitlines()
    assert lines and all(line[:3] in ("<4>", "<6>", "<3>") for line in lines), lines[:3]  # priority prefix
    assert any(ln.startswith("<6>INFO edge.daemon: ready: camera cam0") for ln in lines)  # no timestamp
    rows = outbox_rows(cfg_path)
    assert rows and all(state == "pending" for _, _, state in rows)


@pytest.mark.slow
def test_process_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, source="video", video=tmp_path)
    cfg_path.write_text(cfg_path.read_text() + "\nbogus: 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(cfg_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "bogus: unknown key" in out.stderr
    missing = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(tmp_path / "nope.yaml")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.startswith("anpr-edge: error: ")
    assert "Traceback" not in missing.stderr


@pytest.mark.slow
def test_process_startup_failures_are_one_line_with_distinct_codes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "ANPR_EDGE_TEST_PIPELINE": "test_daemon:fake_pipeline"}
    env.pop("NOTIFY_SOCKET", None)

    def run(cfg_path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(cfg_path)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    video = make_video(tmp_path / "road.avi", 10)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    out = run(write_config(tmp_path, video=video, outbox={"path": str(blocker / "outbox.sqlite")}))
    assert out.returncode == 5 and "cannot open the outbox" in out.stderr and "Traceback" not in out.stderr
    bad_video = tmp_path / "bad.avi"
    bad_video.write_bytes(b"junk")
    out = run(write_config(tmp_path, video=bad_video))
    assert out.returncode == 4 and f"cannot read video {bad_video}" in out.stderr
    assert "Traceback" not in out.stderr
    cfg_path = write_config(tmp_path, video=video)
    (tmp_path / "models" / "detect.tflite").unlink()
    out = run(cfg_path)
    assert out.returncode == 3 and out.stderr.count("\n") == 1 and "detector.model: file not found" in out.stderr


# --------------------------------------------------------------------------
# Logging: journald shape under systemd, timestamps by hand.

def test_under_journald_needs_the_matching_stream(tmp_path: Path) -> None:
    from edge.logsetup import under_journald
    with open(tmp_path / "err", "w") as stream:
        st = os.fstat(stream.fileno())
        assert under_journald(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not under_journald(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not under_journald(stream, {"JOURNAL_STREAM": "garbage"})
        assert not under_journald(stream, {})


def test_journal_format_has_priorities_and_no_timestamps() -> None:
    import io
    from edge.logsetup import setup_logging
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        buf = io.StringIO()
        setup_logging("info", stream=buf, journal=True)
        log = logging.getLogger("edge.test")
        log.debug("hidden")
        log.warning("outbox %s", "filling")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        lines = buf.getvalue().splitlines()
        assert lines[0] == "<4>WARNING edge.test: outbox filling"
        assert lines[1] == "<3>ERROR edge.test: failed"
        assert len(lines) > 3 and all(ln.startswith("<3>") for ln in lines[1:])  # traceback keeps PRIORITY
        plain = io.StringIO()
        setup_logging("info", stream=plain, journal=False)
        log.info("hello")
        assert plain.getvalue()[:2] == "20" and plain.getvalue().rstrip().endswith("INFO edge.test: hello")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_file_is_keyed_by_its_content_as_replay_keys_it(tmp_path: Path) -> None:
    from edge.sources import file_fingerprint

    video = make_video(tmp_path / "road.avi", 3)
    feed = FrameFeed(load_config(write_config(tmp_path, video=video)).camera, _open_source, threading.Event())
    assert feed.key_salt == file_fingerprint(video)  # what `anpr-edge replay` salts keys with
    assert feed.base == int(video.stat().st_mtime)    # what `replay --start mtime` starts at
    moved = tmp_path / "elsewhere.avi"
    video.rename(moved)
    assert file_fingerprint(moved) == feed.key_salt   # renaming the recording keeps its keys
