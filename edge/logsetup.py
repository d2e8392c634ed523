"""Daemon logging: stderr, shaped for journald when systemd captures it.

Why: under systemd, stderr goes to the journal, which time-stamps every
line itself; a second timestamp only costs SD-card writes. Instead each line
starts with a "<N>" syslog priority, which journald strips and stores as the
entry's PRIORITY (SyslogLevelPrefix=, on by default), so
`journalctl -u anpr-edge -p warning` shows warnings and worse. Run by hand,
lines carry a timestamp and no prefix.

"Under journald" follows systemd's advice: $JOURNAL_STREAM holds the
device:inode of the stream it connected, and counts only if stderr still is
that stream (a shell started from a systemd session inherits the variable
with a terminal for stderr).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

__all__ = ["JournalFormatter", "level_number", "set_level", "setup_logging", "under_journald"]

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"

_SYSLOG_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
                    (logging.INFO, 6))


def under_journald(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> bool:
    """True if stream (default stderr) is the journal stream named in $JOURNAL_STREAM."""
    env = os.environ if env is None else env
    stream = sys.stderr if stream is None else stream
    value = env.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(part) for part in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class JournalFormatter(logging.Formatter):
    """No timestamp; every line (tracebacks too) starts with <syslog priority>."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prio = next((p for level, p in _SYSLOG_PRIORITY if record.levelno >= level), 7)
        text = super().format(record)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines() or [""])


def level_number(level: str | int) -> int:
    """'info' / 'DEBUG' / 20 -> a logging level number."""
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def setup_logging(level: str | int = "info", *, stream: TextIO | None = None,
                  env: Mapping[str, str] | None = None,
                  journal: bool | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one stderr handler; return it.

    journal=None detects journald (under_journald); the level applies to the
    root logger, so set_level() changes it at run time (SIGHUP).
    """
    stream = sys.stderr if stream is None else stream
    if journal is None:
        journal = under_journald(stream, env)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter() if journal else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_number(level))
    logging.captureWarnings(True)
    return handler


def set_level(level: str | int) -> None:
    logging.getLogger().setLevel(level_number(level))
