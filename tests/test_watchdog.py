"""sd_notify and the watchdog feeder, without systemd: a fake $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.watchdog import SdNotifier, WatchdogFeeder, watchdog_pid_ok
from test_daemon import (DaemonProcess, NotifyListener, RecordingNotifier, daemons, notify,  # noqa: F401
                         write_config)


def test_notifier_sends_fields_as_one_datagram(notify: NotifyListener) -> None:
    n = SdNotifier(notify.path)
    assert n.enabled
    assert n.ready("running: 10 fps")
    assert n.watchdog()
    assert n.status("line one\nline two")  # STATUS must stay one line
    assert n.stopping()
    notify.wait_for("STOPPING=1")
    msgs = [m for _, m in notify.messages]
    assert msgs == ["READY=1\nSTATUS=running: 10 fps", "WATCHDOG=1", "STATUS=line one line two", "STOPPING=1"]
    n.close()


def test_notifier_abstract_socket() -> None:
    name = f"anpr-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        assert SdNotifier("@" + name).notify("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"


def test_notifier_without_systemd_is_a_quiet_no_op(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert not SdNotifier.from_env({}).notify("READY=1")
    assert not SdNotifier("relative/path").enabled
    gone = SdNotifier(str(tmp_path / "nobody-listens"))
    assert not gone.watchdog() and not gone.watchdog()  # never raises
    assert caplog.text.count("cannot notify systemd") == 1  # warned once, not per ping


def test_watchdog_pid() -> None:
    assert watchdog_pid_ok({})
    assert watchdog_pid_ok({"WATCHDOG_PID": str(os.getpid())})
    assert not watchdog_pid_ok({"WATCHDOG_PID": "1"}, pid=4242)


def test_feeder_pings_only_while_the_loop_makes_progress(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    rec = RecordingNotifier()
    feeder = WatchdogFeeder(rec, interval_s=1.0, clock=lambda: now[0])
    assert feeder.stall_s == 2.0
    now[0] += 50  # start-up (loading models): pinged regardless
    assert feeder.tick()
    feeder.watch_loop()
    for _ in range(5):  # the loop progresses
        now[0] += 1
        feeder.pet()
        assert feeder.tick()
    now[0] += 1.5
    assert feeder.tick()  # within stall_s of the last pet
    now[0] += 1.0
    assert not feeder.tick() and feeder.stalled  # 2.5 s without progress: stop feeding
    now[0] += 10
    assert not feeder.tick()
    assert caplog.text.count("no longer feeding the systemd watchdog") == 1
    assert any(s.startswith("STATUS=STALLED") for s in rec.fields("STATUS="))
    feeder.pet()  # progress again (e.g. the camera came back): feed again
    assert feeder.tick() and not feeder.stalled
    feeder.release()  # shutdown: bounded by TimeoutStopSec, pings regardless
    now[0] += 100
    assert feeder.tick()
    assert len(rec.fields("WATCHDOG=1")) == feeder.pings == 9


def test_feeder_thread_stops_pinging_when_the_loop_stalls(notify: NotifyListener) -> None:
    feeder = WatchdogFeeder(SdNotifier(notify.path), interval_s=0.1).start()  # stall after 0.2 s
    feeder.watch_loop()
    t_end = time.monotonic() + 0.5
    while time.monotonic() < t_end:  # a loop that progresses
        feeder.pet()
        time.sleep(0.01)
    assert len(notify.fields("WATCHDOG=1")) >= 5
    stalled_at = time.monotonic()  # the loop hangs from here
    time.sleep(1.0)
    feeder.stop()
    late = notify.fields("WATCHDOG=1", since=stalled_at + 0.5)  # stall_s plus slack for a busy CI
    assert late == []


# --------------------------------------------------------------------------
# The daemon process against a fake NOTIFY_SOCKET.

@pytest.mark.slow
def test_daemon_feeds_watchdog_while_frames_flow_and_stops_when_the_camera_stalls(
        tmp_path: Path, daemons: Callable[..., DaemonProcess], notify: NotifyListener) -> None:
    cfg_path = write_config(tmp_path, source="opencv")
    # WatchdogSec=0.8 s: ping every 0.4 s, stall after 0.8 s; the camera stalls after 60 frames
    d = daemons(cfg_path, tmp_path / "daemon.log", notify=notify, watchdog_usec=800_000,
                env={"ANPR_EDGE_TEST_SOURCE": "test_daemon:fake_source",
                     "ANPR_EDGE_FAKE_SOURCE": "period=0.02,stall_after=60"})
    notify.wait_for("READY=1", timeout=20)
    ready_at = notify.fields("READY=1")[0][0]
    d.wait_log("no longer feeding the systemd watchdog", timeout=20)
    stalled_log_at = time.monotonic()
    assert len(notify.fields("WATCHDOG=1", since=ready_at)) >= 2  # fed while frames flowed
    time.sleep(1.2)
    assert notify.fields("WATCHDOG=1", since=stalled_log_at + 0.3) == []  # systemd would now restart us
    assert any("STALLED" in s for _, s in notify.fields("STATUS="))
    assert d.proc.poll() is None  # hung, not crashed: systemd's watchdog is the remedy
    d.kill()
