"""Frames for the daemon's loop, whatever happens to the source.

Why: a roadside camera comes and goes; the loop should see one stream of
events, not open/close/backoff logic. Live sources (cameras, streams,
realtime video) run behind edge.sources.LatestFrameGrabber, so frames that
arrive while the pipeline is busy are skipped, not queued. A source that
errors or ends is reopened with backoff (camera.reconnect_initial_s doubling
to reconnect_max_s, reset by a frame). A video file or image folder ends
(END) unless looping. File frame times are the file's mtime plus the
position in it, and the tracker key salt is a fingerprint of its content
(as `anpr-edge replay` uses), so the same file gives the same idempotency
keys every time it is played, and `replay --start mtime` gives them too.
"""

from __future__ import annotations

import enum
import logging
import math
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from edge.config import CameraConfig
from edge.sources import file_fingerprint
from edge.types import Frame

__all__ = ["FILE_SOURCES", "FeedEvent", "FrameFeed", "SourceFactory", "Tick"]

log = logging.getLogger(__name__)

FILE_SOURCES = ("video", "images")

SourceFactory = Callable[[CameraConfig], Any]  # -> edge.sources.FrameSource


class FeedEvent(enum.Enum):
    FRAME = "frame"    # a frame to process
    IDLE = "idle"      # no frame within the timeout (not progress)
    RETRY = "retry"    # the source is being (re)opened; deliberate, counts as progress
    RESET = "reset"    # a file source restarted after an error: start a fresh tracker
    END = "end"        # a file source is done


@dataclass(frozen=True)
class Tick:
    event: FeedEvent
    frame: Frame | None = None
    t: float = 0.0  # the frame's time for the tracker (Unix seconds)


class FrameFeed:
    """Frames for the loop from the configured source, whatever happens to it."""

    def __init__(self, cfg: CameraConfig, factory: SourceFactory, stop: threading.Event, *,
                 loop: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.factory = factory
        self.stop = stop
        self.loop = loop
        self.is_file = cfg.source in FILE_SOURCES
        self._clock = clock
        self._source: Any = None
        self._grabber: Any = None
        self._it: Iterator[Frame] | None = None
        self._delay = cfg.reconnect_initial_s
        self._reopen_at = -math.inf
        self._reset_next = False
        self._offset = 0.0
        self._last_raw_t: float | None = None
        self._dropped_before = 0
        self.opens = 0
        self.failures = 0
        self.base = 0.0
        # Tracker key salt: the file's content fingerprint (replays give the
        # same keys), or per run for live sources (wall-clock times are unique;
        # a Pi without RTC may repeat them after a reboot, the salt keeps keys apart).
        self.key_salt = secrets.token_hex(4)
        if self.is_file and cfg.path is not None:
            try:
                self.key_salt = file_fingerprint(cfg.path)
                self.base = float(int(cfg.path.stat().st_mtime))
            except OSError:  # unreadable now: opening it reports why, with backoff
                self.key_salt, self.base = cfg.path.name, 0.0

    @property
    def description(self) -> str:
        source = self._source
        return getattr(source, "description", None) or f"{self.cfg.source} source"

    @property
    def dropped(self) -> int:
        return self._dropped_before + self._current_dropped()

    @property
    def reconnecting(self) -> bool:
        return self._source is None

    def _current_dropped(self) -> int:
        n = 0
        if self._grabber is not None:
            n += int(getattr(self._grabber, "dropped", 0))
        if self._source is not None:
            n += int(getattr(self._source, "dropped", 0) or 0)
        return n

    def open_first(self) -> None:
        """Open at start-up; a file source that cannot be read raises SourceError."""
        from edge.sources import SourceError
        try:
            self._open()
        except SourceError:
            if self.is_file:
                raise
            self._failed("cannot open", sys.exc_info()[1])

    def _open(self) -> None:
        source = self.factory(self.cfg)
        self.opens += 1
        self._source = source
        if getattr(source, "live", False):
            from edge.sources import LatestFrameGrabber
            self._grabber = LatestFrameGrabber(source)
            self._it = None
        else:
            self._grabber = None
            self._it = iter(source)
        log.info("source open: %s", self.description)

    def _close(self) -> None:
        self._dropped_before += self._current_dropped()
        closer = self._grabber if self._grabber is not None else self._source
        self._grabber = self._source = self._it = None
        if closer is not None:
            try:
                closer.close()
            except Exception as exc:
                log.warning("closing the source: %s", exc)

    def _failed(self, what: str, exc: BaseException | None) -> None:
        self.failures += 1
        self._close()
        self._reopen_at = self._clock() + self._delay
        detail = f": {' '.join(str(exc).split()) or type(exc).__name__}" if exc else ""
        log.warning("source %s%s; reopening in %.1f s", what, detail, self._delay)
        self._delay = min(self._delay * 2, self.cfg.reconnect_max_s)
        if self.is_file:
            self._reset_next = True

    def _attempt(self, doing: str, failure: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, fn()) or, when the source fails, (False, None) with the failure
        logged and the reopen backed off. A SourceError is the expected one-line
        kind; anything else is a bug somewhere and gets its traceback."""
        from edge.sources import SourceError
        try:
            return True, fn()
        except SourceError as exc:
            self._failed(failure, exc)
        except Exception as exc:
            log.exception("%s the source failed unexpectedly", doing)
            self._failed(failure, exc)
        return False, None

    def next(self, timeout: float = 0.5) -> Tick:
        """The next event; waits at most about `timeout` seconds (not counting a frame's decode)."""
        if self._source is None:
            remaining = self._reopen_at - self._clock()
            if remaining > 0:
                self.stop.wait(min(timeout, remaining))
                return Tick(FeedEvent.RETRY)
            opened, _ = self._attempt("opening", "cannot open", self._open)
            if opened and self._reset_next:
                self._reset_next = False
                return Tick(FeedEvent.RESET)
            return Tick(FeedEvent.RETRY)
        read, got = self._attempt("reading", "failed", lambda: self._read(timeout))
        if not read:
            return Tick(FeedEvent.RETRY)
        frame, ended = got
        if frame is not None:
            self._delay = self.cfg.reconnect_initial_s
            return Tick(FeedEvent.FRAME, frame, self._time(frame))
        if not ended:
            return Tick(FeedEvent.IDLE)
        if not self.is_file:
            self._failed("ended", None)
            return Tick(FeedEvent.RETRY)
        if self.loop:
            period = 1.0 / (getattr(self._source, "fps", None) or 25.0)
            self._offset += (self._last_raw_t or 0.0) + period
            self._last_raw_t = None
            self._close()
            log.info("source ended; --loop: starting it again")
            self._reopen_at = -math.inf
            return Tick(FeedEvent.RETRY)
        self._close()
        return Tick(FeedEvent.END)

    def _read(self, timeout: float) -> tuple[Frame | None, bool]:
        if self._grabber is not None:
            frame = self._grabber.get(timeout)
            return frame, frame is None and self._grabber.finished
        assert self._it is not None
        frame = next(self._it, None)
        return frame, frame is None

    def _time(self, frame: Frame) -> float:
        if not self.is_file:
            return frame.t
        self._last_raw_t = frame.t
        return self.base + self._offset + frame.t

    def close(self) -> None:
        self._close()
