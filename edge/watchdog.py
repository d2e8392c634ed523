"""systemd readiness, status and watchdog over $NOTIFY_SOCKET (stdlib only).

Why stdlib: the sd_notify protocol is one datagram of "KEY=VALUE" lines to
the AF_UNIX socket named in $NOTIFY_SOCKET (a path, or "@name" for the
abstract namespace); python-systemd would be a C dependency for ten lines.
Without $NOTIFY_SOCKET (not under systemd, Type= not notify) every call is a
no-op, so the daemon runs the same by hand.

Why a feeder thread that the frame loop pets, instead of pinging from the
loop: the ping interval must not depend on the frame rate, and the pings
must STOP when the loop stops making progress (a hung camera driver, a
stalled stream, a model that never returns), which a separate thread pinging
blindly would hide. So the thread pings every `interval_s` only while the
loop called `pet()` within `stall_s`; then systemd's WatchdogSec= runs out
and it restarts the service. Start-up and shutdown are bounded by systemd's
TimeoutStartSec=/TimeoutStopSec= instead, so the feeder pings unconditionally
until `watch_loop()` and after `release()`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

__all__ = ["Notify", "SdNotifier", "WatchdogFeeder", "watchdog_pid_ok"]

log = logging.getLogger(__name__)

_MAX_STATUS = 200  # STATUS= is shown by `systemctl status`: keep it one short line


class Notify(Protocol):
    """Where service-manager notifications go (SdNotifier, or a test fake)."""

    def notify(self, *fields: str) -> bool: ...


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_STATUS else line[: _MAX_STATUS - 3] + "..."


class SdNotifier:
    """sd_notify(3) in Python: send "KEY=VALUE" fields to systemd.

    Never raises and never blocks for long (0.5 s send timeout): a lost
    notification is better than a stuck frame loop. Thread-safe (one
    datagram per call).
    """

    def __init__(self, address: str | None, *, timeout_s: float = 0.5) -> None:
        self.address = address or None
        self._sock: socket.socket | None = None
        self._target: str | bytes | None = None
        self._warned = False
        if self.address is None:
            return
        if self.address.startswith("@"):
            self._target = b"\0" + self.address[1:].encode()
        elif self.address.startswith("/"):
            self._target = self.address
        else:
            log.warning("NOTIFY_SOCKET=%r is neither a path nor @abstract; not notifying systemd",
                        self.address)
            self.address = None
            return
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.settimeout(timeout_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SdNotifier":
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *fields: str) -> bool:
        """Send fields (e.g. "READY=1", "STATUS=...") as one message; True if sent."""
        if self._sock is None or self._target is None or not fields:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode("utf-8", "replace"), self._target)
        except OSError as exc:
            if not self._warned:  # once: systemd gone or a full queue is not worth a flood
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._warned = True
            return False
        self._warned = False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_pid_ok(env: Mapping[str, str] | None = None, pid: int | None = None) -> bool:
    """False when $WATCHDOG_PID names another process (the watchdog is not ours)."""
    env = os.environ if env is None else env
    value = env.get("WATCHDOG_PID")
    if not value:
        return True
    return value.strip() == str(os.getpid() if pid is None else pid)


class WatchdogFeeder:
    """Pings WATCHDOG=1 every interval_s while the frame loop keeps calling pet().

    Phases: from start() until watch_loop() (start-up) and after release()
    (shutdown) it pings unconditionally; in between, only while the last
    pet() is at most stall_s old (default: two intervals, i.e. systemd's
    WatchdogSec= when the interval is half of it).
    """

    def __init__(self, notifier: Notify, interval_s: float, stall_s: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not interval_s > 0:
            raise ValueError(f"watchdog interval must be > 0, got {interval_s!r}")
        self.notifier = notifier
        self.interval_s = float(interval_s)
        self.stall_s = float(stall_s) if stall_s is not None else 2.0 * self.interval_s
        self._clock = clock
        self._last_pet = clock()
        self._gated = False
        self._starved = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0

    # -- called by the frame loop -----------------------------------------

    def pet(self) -> None:
        """The loop made progress (a frame processed, a deliberate retry)."""
        self._last_pet = self._clock()

    def watch_loop(self) -> None:
        """Start-up is over: from now on ping only while the loop pets."""
        self.pet()
        self._gated = True

    def release(self) -> None:
        """Shutdown (bounded by TimeoutStopSec=): ping unconditionally again."""
        self._gated = False

    @property
    def stalled(self) -> bool:
        return self._starved

    def stalled_for(self) -> float:
        """Seconds since the last pet()."""
        return self._clock() - self._last_pet

    # -- the pinging ------------------------------------------------------

    def tick(self) -> bool:
        """One ping decision; True if WATCHDOG=1 was sent. The thread calls this."""
        idle = self._clock() - self._last_pet
        if self._gated and idle > self.stall_s:
            if not self._starved:
                self._starved = True
                log.error("frame loop made no progress for %.1f s (stalled camera or hung model?): "
                          "no longer feeding the systemd watchdog, expect a restart", idle)
                self.notifier.notify(f"STATUS=STALLED: no frame processed for {idle:.0f} s; "
                                     "watchdog not fed")
            return False
        if self._starved:
            self._starved = False
            log.warning("frame loop is making progress again; feeding the watchdog")
        sent = self.notifier.notify("WATCHDOG=1")
        self.pings += sent
        return sent

    def start(self) -> "WatchdogFeeder":
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        self.tick()
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # never let a bug here kill the pings silently
                log.exception("watchdog tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.interval_s + 1)
