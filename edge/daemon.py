"""`anpr-edge run`: the roadside daemon (camera -> pipeline -> tracker -> outbox -> backend).

The loop, in the main thread: take a frame, run the pipeline, feed the
tracker, and commit each finished vehicle to the SQLite outbox BEFORE
anything else (log lines, crops); the sender thread delivers from the
outbox. A result the outbox refuses (disk full, read-only, I/O error,
OutboxFull) is logged CRITICAL, shown in systemd's STATUS=, held in memory
and written again later (edge.committer); it is never counted as stored
until the outbox said so.

Frames come from edge.framefeed: live sources behind LatestFrameGrabber
(frames arriving while the pipeline is busy are skipped, not queued), a
source that errors or ends reopened with backoff. A video file or image
folder is different: its end means done, unless `--loop`. Then the daemon
flushes the tracker, waits until the outbox has nothing pending (SIGTERM
stops the wait; the reads stay stored), and exits 0. Replaying the same
file gives the same idempotency keys, so a restart re-sends nothing new.

Signals: SIGHUP reloads thresholds (edge.config.reload_thresholds) and logs
what changed and what needs a restart; SIGTERM/SIGINT stop reading frames,
flush the tracker into the outbox, let the sender drain briefly
(--drain-timeout), send STOPPING=1 and exit 0.

systemd: READY=1 once the outbox, pipeline and source are up; STATUS= with
fps, vehicles and outbox counts (and what is wrong); WATCHDOG=1 from
edge.watchdog.WatchdogFeeder, fed only while frames are processed or a
reopen is under way: a source that stops delivering without an error, a
model that hangs, or a pipeline that raises on every frame starve it, and
systemd restarts the service.

Exit codes: 0 done or stopped; 2 bad config or token (ConfigError); 3 the
pipeline (models, runtime) cannot be built; 4 the video file or image
folder cannot be read; 5 the outbox cannot be opened; 6 stopped with results
that could not be stored (lost, logged CRITICAL with their keys); 1 a bug
(traceback in the log; the tracker was flushed into the outbox first).

Test hooks (tests only, logged as a WARNING when used):
ANPR_EDGE_TEST_PIPELINE=module:function replaces edge.pipeline.build_pipeline
(function(cfg) -> object with process(frame) -> observations), and
ANPR_EDGE_TEST_SOURCE=module:function replaces edge.sources.open_source
(function(camera_cfg) -> FrameSource).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edge.committer import Committer
from edge.config import (BackendConfig, CameraConfig, Config, ConfigError, load_config,
                         reload_thresholds, watchdog_interval)
from edge.framefeed import FeedEvent, FrameFeed, SourceFactory
from edge.logsetup import level_number, set_level, setup_logging
from edge.outbox import Outbox, OutboxError, OutboxStats
from edge.tracker import Observation, Tracker
from edge.types import Frame, VehicleResult
from edge.watchdog import Notify, SdNotifier, WatchdogFeeder, watchdog_pid_ok

__all__ = ["Daemon", "Pipeline", "StartupError", "add_parser", "run"]

log = logging.getLogger("edge.daemon")

EXIT_OK = 0
EXIT_BUG = 1
EXIT_CONFIG = 2
EXIT_MODEL = 3
EXIT_INPUT = 4
EXIT_OUTBOX = 5
EXIT_LOST = 6

TEST_PIPELINE_ENV = "ANPR_EDGE_TEST_PIPELINE"
TEST_SOURCE_ENV = "ANPR_EDGE_TEST_SOURCE"

STATUS_INTERVAL_S = 5.0
OUTBOX_PRUNE_INTERVAL_S = 3600.0
CROPS_PRUNE_INTERVAL_S = 600.0


class Pipeline(Protocol):
    """One frame in, the plates read in it out (edge.pipeline.build_pipeline's product)."""

    def process(self, frame: Frame) -> Sequence[Observation]: ...


PipelineFactory = Callable[[Config], Pipeline]


class StartupError(Exception):
    """The daemon cannot start; one line, with the exit code to use."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code


# --------------------------------------------------------------------------
# The daemon.

@dataclass
class _Counters:
    frames: int = 0
    reads: int = 0
    vehicles: int = 0
    pipeline_errors: int = 0


class Daemon:
    """One run of the roadside loop; see the module docstring."""

    def __init__(self, cfg: Config, config_path: str | os.PathLike[str], *,
                 pipeline_factory: PipelineFactory, source_factory: SourceFactory,
                 notifier: Notify | None = None, outbox_factory: Callable[[Config], Any] | None = None,
                 client_factory: Callable[[BackendConfig], Any] | None = None,
                 watchdog_s: float | None = None, loop: bool = False, drain_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.config_path = Path(config_path)
        self.pipeline_factory = pipeline_factory
        self.source_factory = source_factory
        self.notifier: Notify = notifier if notifier is not None else SdNotifier(None)
        self.outbox_factory = outbox_factory or _open_outbox
        self.client_factory = client_factory or _make_client
        self.watchdog_s = watchdog_s
        self.loop = loop
        self.drain_s = drain_s
        self._clock = clock
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.counters = _Counters()
        self.outbox: Any = None
        self.committer: Committer | None = None
        self.pipeline: Any = None
        self.tracker: Tracker | None = None
        self.feed: FrameFeed | None = None
        self.sender: Any = None
        self.crops: Any = None
        self.feeder: WatchdogFeeder | None = None
        self._sender_thread: threading.Thread | None = None
        self._sender_stop = threading.Event()
        self._plate_level = cfg.privacy.plate_log_level
        self._ended = False
        self._stats_at = self._status_at = self._prune_at = self._crops_at = 0.0
        self._stats_frames = self._status_frames = 0
        self._fps_at = clock()
        self._fps = 0.0
        self._last_error_log = -math.inf

    # -- control (signal handlers call these; thread-safe) ----------------

    def request_stop(self) -> None:
        if self._stop.is_set():
            log.info("already stopping")
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the run ----------------------------------------------------------

    def run(self) -> int:
        """Start, loop until stopped or a file source is done, shut down; the exit code."""
        if self.watchdog_s:
            self.feeder = WatchdogFeeder(self.notifier, self.watchdog_s, clock=self._clock).start()
            log.info("systemd watchdog: ping every %.1f s while frames flow (stall after %.1f s)",
                     self.feeder.interval_s, self.feeder.stall_s)
        try:
            try:
                self._start()
            except StartupError as exc:
                log.critical("%s", exc)
                self.notifier.notify(f"STATUS=failed to start: {exc}"[:200])
                return exc.code
            if self._stop.is_set():
                return self._shutdown()
            self._ready()
            try:
                self._loop()
            except Exception:  # a bug: keep what can be kept, let systemd restart us
                log.exception("the frame loop failed; flushing into the outbox and exiting")
                self._shutdown()
                return EXIT_BUG
            return self._shutdown()
        finally:
            self._close_all()

    def _start(self) -> None:
        cfg = self.cfg
        self.notifier.notify("STATUS=starting: opening the outbox")
        try:
            self.outbox = self.outbox_factory(cfg)
        except (OutboxError, OSError) as exc:
            raise StartupError(f"cannot open the outbox: {exc}", EXIT_OUTBOX) from None
        self.committer = Committer(self.outbox, clock=self._clock)
        self._open_crops()
        self._report_outbox_start()
        self.notifier.notify("STATUS=starting: loading the pipeline")
        from edge.runtime import ModelError
        try:
            self.pipeline = self.pipeline_factory(cfg)
        except (ModelError, ImportError) as exc:
            raise StartupError(f"cannot build the pipeline: {exc}", EXIT_MODEL) from None
        except ConfigError as exc:
            raise StartupError(str(exc), EXIT_CONFIG) from None
        self.feed = FrameFeed(cfg.camera, self.source_factory, self._stop, loop=self.loop,
                              clock=self._clock)
        self.tracker = self._new_tracker()
        self._start_sender()
        self.notifier.notify("STATUS=starting: opening the camera")
        from edge.sources import SourceError
        try:
            self.feed.open_first()
        except SourceError as exc:
            raise StartupError(str(exc), EXIT_INPUT) from None

    def _report_outbox_start(self) -> None:
        try:
            stats = self.outbox.stats()
        except OutboxError as exc:
            log.error("outbox: cannot count rows: %s", exc)
            return
        log.info("outbox %s: %d pending, %d delivered, %d rejected", self.cfg.outbox.path,
                 stats.pending, stats.delivered, stats.rejected)
        if stats.rejected:
            log.warning("outbox holds %d REJECTED read(s) set aside by the backend (4xx); "
                        "see the outbox table, state 'rejected'", stats.rejected)

    def _open_crops(self) -> None:
        privacy = self.cfg.privacy
        if privacy.crops_dir is None:
            return
        from edge.crops import CropStore
        store = CropStore(privacy.crops_dir, privacy.keep_days, privacy.max_mb)
        if privacy.save_crops:
            store.ensure_dir()
            self.crops = store
            log.info("crops: saving plate crops in %s (keep %g days, max %g MB)",
                     privacy.crops_dir, privacy.keep_days, privacy.max_mb)
        if privacy.crops_dir.is_dir():
            store.prune()  # also when saving is off: what is left still expires

    def _new_tracker(self) -> Tracker:
        assert self.feed is not None
        return Tracker(self.cfg.tracker, self.cfg.camera.id, keep_crops=self.cfg.privacy.save_crops,
                       key_salt=self.feed.key_salt)

    def _start_sender(self) -> None:
        backend = self.cfg.backend
        if backend.url is None:
            log.warning("backend.url is null: results stay in the outbox, nothing is sent")
            return
        from edge.backend import TokenError
        from edge.sender import Sender
        try:
            client = self.client_factory(backend)
        except (TokenError, ValueError) as exc:
            raise StartupError(f"backend: {exc}", EXIT_CONFIG) from None
        self.sender = Sender(self.outbox, client, backend.backoff_initial_s, backend.backoff_max_s,
                             plate_log_level=self._plate_level)
        self._sender_thread = self.sender.start(self._sender_stop)

    def _ready(self) -> None:
        now = self._clock()
        self._stats_at = self._status_at = self._prune_at = self._crops_at = now
        assert self.feed is not None
        status = f"running: {self.feed.description}"
        self.notifier.notify("READY=1", f"STATUS={status}"[:200])
        if self.feeder is not None:
            self.feeder.watch_loop()
        log.info("ready: camera %s, %s", self.cfg.camera.id, self.feed.description)

    def _loop(self) -> None:
        assert self.feed is not None and self.tracker is not None
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            tick = self.feed.next(0.5)
            if tick.event is FeedEvent.FRAME:
                assert tick.frame is not None
                if self._process(tick.frame, tick.t):
                    self._pet()
            elif tick.event is FeedEvent.RETRY:
                self._pet()
            elif tick.event is FeedEvent.RESET:
                log.info("file source restarted: fresh tracker (same keys as before)")
                self.tracker = self._new_tracker()
                self._pet()
            elif tick.event is FeedEvent.END:
                self._commit(self.tracker.flush())
                self._ended = True
                self._wait_delivered()
                return
            elif not self.feed.is_file:  # idle live source: let tracks of gone vehicles expire
                self._commit(self.tracker.update(time.time(), ()))
            self._commit(())
            self._housekeeping()

    def _pet(self) -> None:
        if self.feeder is not None:
            self.feeder.pet()

    def _process(self, frame: Frame, t: float) -> bool:
        assert self.tracker is not None
        try:
            observations = self.pipeline.process(frame)
        except Exception:
            self.counters.pipeline_errors += 1
            now = self._clock()
            if now - self._last_error_log >= 60.0:
                self._last_error_log = now
                log.exception("pipeline failed on frame %d (%d failures so far; next report "
                              "in 60 s at the earliest)", frame.index, self.counters.pipeline_errors)
            return False
        self.counters.frames += 1
        self.counters.reads += sum(1 for ob in observations if ob.reading.text)
        self._commit(self.tracker.update(t, observations))
        return True

    def _commit(self, results: Sequence[VehicleResult]) -> None:
        """Outbox first; then (only for what was stored) logs and crops."""
        c = self.committer
        assert c is not None
        before = (c.error is not None, c.held, len(c.lost))
        if results:
            c.add(results)
        for result in c.flush():
            self._stored(result)
        after = (c.error is not None, c.held, len(c.lost))
        if after != before and (before[0] or after[0]):  # failing: keep STATUS= exact
            self._status()

    def _stored(self, result: VehicleResult) -> None:
        self.counters.vehicles += 1
        log.info("vehicle stored: read %s, %d frames, confidence %.2f", result.key,
                 result.frames, result.confidence)
        if self._plate_level is not None:
            log.log(self._plate_level, "read %s is plate %s", result.key, result.plate)
        if self.crops is not None:
            self.crops.save(result)

    def _wait_delivered(self) -> None:
        """A file source is done: stay until the outbox has nothing pending."""
        if self.sender is None:
            log.info("source ended; no backend configured: done")
            return
        announced = False
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            self._pet()
            self._commit(())
            pending = self._pending()
            if pending == 0 and self.committer is not None and self.committer.held == 0:
                log.info("source ended and every result is delivered or set aside: done")
                return
            if not announced:
                announced = True
                log.info("source ended; waiting for %s pending result(s) to be delivered "
                         "(SIGTERM stops waiting; they stay in the outbox)",
                         "?" if pending is None else pending)
            self._housekeeping()
            self._stop.wait(0.2)

    def _pending(self) -> int | None:
        try:
            return self.outbox.stats().pending
        except OutboxError:
            return None

    # -- periodic ---------------------------------------------------------

    def _housekeeping(self) -> None:
        now = self._clock()
        if now - self._status_at >= STATUS_INTERVAL_S:
            self._status()
        if now - self._stats_at >= self.cfg.daemon.stats_interval_s:
            log.info("stats: %s", self.stats_line(now - self._stats_at))
            self._stats_at = now
            self._stats_frames = self.counters.frames
        if now - self._prune_at >= OUTBOX_PRUNE_INTERVAL_S:
            self._prune_at = now
            try:
                self.outbox.prune()
            except OutboxError as exc:
                log.error("outbox prune failed: %s", exc)
        if self.crops is not None and now - self._crops_at >= CROPS_PRUNE_INTERVAL_S:
            self._crops_at = now
            self.crops.prune()
        thread = self._sender_thread
        if thread is not None and not thread.is_alive() and not self._sender_stop.is_set():
            log.critical("the sender thread died; starting it again")
            self._sender_thread = self.sender.start(self._sender_stop)

    def _outbox_stats(self) -> OutboxStats | None:
        try:
            return self.outbox.stats()
        except OutboxError:
            return None

    def stats_line(self, interval_s: float | None = None) -> str:
        """frames, fps, drops, reads, vehicles, outbox counts, unpaid: one line."""
        c = self.counters
        frames_now = c.frames - self._stats_frames
        fps = frames_now / interval_s if interval_s else 0.0
        parts = [f"frames {c.frames} ({fps:.1f} fps)",
                 f"dropped {self.feed.dropped if self.feed else 0}",
                 f"reads {c.reads}", f"vehicles {c.vehicles}"]
        if self.tracker is not None:
            ts = self.tracker.stats
            parts.append(f"tracks open {ts.active}, too few frames {ts.dropped_few_frames}, "
                         f"too unsure {ts.dropped_low_confidence}")
        stats = self._outbox_stats()
        parts.append("outbox unreadable" if stats is None else
                     f"outbox pending {stats.pending} delivered {stats.delivered} "
                     f"rejected {stats.rejected}")
        if self.committer is not None and (self.committer.held or self.committer.lost):
            parts.append(f"NOT STORED {self.committer.held} LOST {len(self.committer.lost)}")
        if self.sender is not None:
            m = self.sender.metrics
            parts.append(f"sent {m['delivered']}, set aside {m['rejected']}, retries {m['retries']}, "
                         f"unpaid {m['vignette_invalid']}")
        if c.pipeline_errors:
            parts.append(f"pipeline errors {c.pipeline_errors}")
        if self.feed is not None and self.feed.failures:
            parts.append(f"source failures {self.feed.failures}")
        return ", ".join(parts)

    def _status(self) -> None:
        now = self._clock()
        if now - self._fps_at >= 1.0:  # STATUS may come often while failing; fps over >= 1 s
            self._fps = (self.counters.frames - self._status_frames) / (now - self._fps_at)
            self._status_frames = self.counters.frames
            self._fps_at = now
        fps = self._fps
        self._status_at = now
        parts: list[str] = []
        if self.feeder is not None and self.feeder.stalled:
            parts.append(f"STALLED: no frame processed for {self.feeder.stalled_for():.0f} s")
        c = self.committer
        if c is not None and c.held:
            parts.append(f"OUTBOX FAILING: {c.held} result(s) NOT STORED ({c.error})")
        if c is not None and c.lost:
            parts.append(f"{len(c.lost)} LOST")
        if self.feed is not None and self.feed.reconnecting:
            parts.append("camera reconnecting")
        if self._ended:
            parts.append("source ended, delivering")
        stats = self._outbox_stats()
        parts.append(f"{fps:.1f} fps, {self.counters.vehicles} vehicles")
        parts.append("outbox unreadable" if stats is None else
                     f"outbox {stats.pending} pending, {stats.rejected} rejected")
        if self.sender is not None:
            parts.append(f"{self.sender.metrics['vignette_invalid']} unpaid")
        self.notifier.notify("STATUS=" + "; ".join(parts)[:200])

    # -- SIGHUP -----------------------------------------------------------

    def reload(self) -> None:
        """Take new thresholds from the config file; log what changed and what did not."""
        self.notifier.notify("RELOADING=1")
        try:
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                log.error("reload failed, keeping the running configuration: %s", exc)
                return
            merged, ignored = reload_thresholds(self.cfg, new)
            changes = _diff(self.cfg, merged)
            self._apply(merged, changes)
            if changes:
                log.info("reload: %s", ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items()))
            else:
                log.info("reload: no threshold changed")
            if ignored:
                log.warning("reload: changed but needs a restart (systemctl restart anpr-edge): %s",
                            ", ".join(ignored))
        finally:
            self.notifier.notify("READY=1")

    def _apply(self, cfg: Config, changes: dict[str, tuple[Any, Any]]) -> None:
        self.cfg = cfg
        if self.tracker is not None:
            self.tracker.reconfigure(cfg.tracker)
        set_level(cfg.daemon.log_level)
        self._plate_level = cfg.privacy.plate_log_level
        if self.sender is not None:
            self.sender.plate_log_level = self._plate_level
        pipeline_keys = [k for k in changes if k.split(".")[0] in ("detector", "reader", "filters")]
        reconfigure = getattr(self.pipeline, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(cfg)
        elif pipeline_keys:
            log.warning("reload: this pipeline cannot take new thresholds while running; "
                        "restart to apply: %s", ", ".join(pipeline_keys))

    # -- shutdown ---------------------------------------------------------

    def _shutdown(self) -> int:
        if self.feeder is not None:
            self.feeder.release()
        reason = "source done" if self._ended and not self._stop.is_set() else "stopping"
        self.notifier.notify("STOPPING=1", f"STATUS={reason}: flushing")
        log.info("%s: flushing the tracker into the outbox", reason)
        if self.feed is not None:
            self.feed.close()
        if self.tracker is not None and self.committer is not None:
            self._commit(self.tracker.flush())
            for result in self.committer.flush(force=True):
                self._stored(result)
        self._stop_sender()
        lost = self.committer.abandon() if self.committer is not None else []
        for result in lost:
            log.critical("READ LOST at exit, the outbox refused it: read %s (camera %s, seen %.3f)",
                         result.key, result.camera, result.first_seen)
            if self._plate_level is not None:
                log.log(max(self._plate_level, logging.WARNING), "lost read %s was plate %s",
                        result.key, result.plate)
        log.info("stats: %s", self.stats_line(self._clock() - self._stats_at))
        if self.committer is not None and self.committer.lost:
            log.critical("exiting with %d read(s) that were never stored", len(self.committer.lost))
            return EXIT_LOST
        return EXIT_OK

    def _stop_sender(self) -> None:
        if self.sender is None:
            return
        self._sender_stop.set()
        thread = self._sender_thread
        if thread is not None:
            thread.join(self.cfg.backend.timeout_s + 1.0)
            if thread.is_alive():
                log.warning("the sender is still waiting for the backend; not draining")
                return
        if self.drain_s > 0:
            emptied = self.sender.drain(self.drain_s)
            pending = self._pending()
            if emptied:
                log.info("outbox drained")
            else:
                log.info("%s result(s) stay in the outbox for the next start",
                         "some" if pending is None else pending)

    def _close_all(self) -> None:
        self._sender_stop.set()
        if self._sender_thread is not None:
            self._sender_thread.join(1.0)
        if self.feed is not None:
            self.feed.close()
        client = getattr(self.sender, "client", None)
        if client is not None and hasattr(client, "close"):
            client.close()
        if self.outbox is not None:
            try:
                self.outbox.close()
            except Exception as exc:
                log.warning("closing the outbox: %s", exc)
        if self.feeder is not None:
            self.feeder.stop()


def _diff(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old, new) for every leaf that differs."""
    if dataclasses.is_dataclass(old) and not isinstance(old, type):
        out: dict[str, tuple[Any, Any]] = {}
        for f in dataclasses.fields(old):
            out.update(_diff(getattr(old, f.name), getattr(new, f.name), f"{prefix}{f.name}."))
        return out
    return {} if old == new else {prefix.rstrip("."): (old, new)}


# --------------------------------------------------------------------------
# Default factories.

def _open_outbox(cfg: Config) -> Outbox:
    path = cfg.outbox.path
    assert path is not None  # load_config resolves it
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Outbox(path, cfg.outbox.max_rows, cfg.outbox.keep_delivered_days)


def backend_token(cfg: BackendConfig) -> str | None:
    """token_file, else the systemd credential anpr-edge-token, else $token_env; None: no token."""
    from edge.backend import DEFAULT_CREDENTIAL, load_token
    if cfg.token_file is not None:
        return load_token(cfg.token_file)
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    has_cred = bool(cred_dir) and (Path(cred_dir or ".") / DEFAULT_CREDENTIAL).exists()
    if cfg.token_env is None and not has_cred:
        return None
    return load_token(None, env_var=cfg.token_env or "ANPR_EDGE_TOKEN")


def _make_client(cfg: BackendConfig) -> Any:
    from edge.backend import BackendClient
    assert cfg.url is not None
    return BackendClient(cfg.url, backend_token(cfg), cfg.timeout_s, cfg.verify_tls, cfg.ca_file)


def _hook(env_name: str) -> Callable[..., Any] | None:
    spec = os.environ.get(env_name)
    if not spec:
        return None
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise StartupError(f"{env_name}={spec!r}: {exc}", EXIT_CONFIG) from None
    log.warning("TEST HOOK %s=%s in use: not for production", env_name, spec)
    return fn


def default_pipeline_factory(cfg: Config) -> Pipeline:
    from edge.pipeline import build_pipeline  # the models load here, once
    return build_pipeline(cfg)


def default_source_factory(cfg: CameraConfig) -> Any:
    from edge.sources import open_source
    return open_source(cfg)


# --------------------------------------------------------------------------
# The command.

def default_config_path() -> str:
    """$CONFIGURATION_DIRECTORY/config.yaml under systemd, else /etc/anpr-edge/config.yaml."""
    base = os.environ.get("CONFIGURATION_DIRECTORY", "").split(":")[0] or "/etc/anpr-edge"
    return os.path.join(base, "config.yaml")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help="run the daemon: camera -> plates -> outbox -> backend",
        description="Run the roadside daemon (what systemd starts). A video file or image "
                    "folder source ends the run when done (after delivering), unless --loop.")
    p.add_argument("--config", default=default_config_path(),
                   help="config file (default: %(default)s)")
    p.add_argument("--loop", action="store_true",
                   help="camera.source video/images: start again at the end (soak tests)")
    p.add_argument("--drain-timeout", type=float, default=5.0, metavar="S",
                   help="at stop, seconds to keep delivering the outbox (default: %(default)s)")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        from edge.check_config import MODEL_KEYS  # a missing model is a model error, as there
        model = any(f": {key}: " in str(exc) for key in MODEL_KEYS)
        sys.stderr.write(f"anpr-edge: error: {exc}\n")
        return EXIT_MODEL if model else EXIT_CONFIG
    verbose = getattr(args, "verbose", 0) or 0
    level = min(level_number(cfg.daemon.log_level),
                (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)])
    setup_logging(level)
    interval = watchdog_interval(cfg.daemon) if watchdog_pid_ok() else None
    notifier = SdNotifier.from_env()
    try:
        pipeline_factory = _hook(TEST_PIPELINE_ENV) or default_pipeline_factory
        source_factory = _hook(TEST_SOURCE_ENV) or default_source_factory
    except StartupError as exc:
        sys.stderr.write(f"anpr-edge: error: {exc}\n")
        return exc.code
    daemon = Daemon(cfg, args.config, pipeline_factory=pipeline_factory,
                    source_factory=source_factory, notifier=notifier, watchdog_s=interval,
                    loop=args.loop, drain_s=max(0.0, args.drain_timeout))
    previous = _install_signals(daemon)
    try:
        return daemon.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        notifier.close()


def _install_signals(daemon: Daemon) -> dict[int, Any]:
    def stop(signum: int, _frame: Any) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        daemon.request_stop()

    def hup(_signum: int, _frame: Any) -> None:
        daemon.request_reload()

    previous = {}
    for signum, handler in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, hup)):
        previous[signum] = signal.signal(signum, handler)
    return previous
