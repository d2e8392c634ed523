"""Optional plate-crop JPEGs on disk, pruned by age and total size.

Why so guarded: a plate image is personal data. Nothing is written unless
privacy.save_crops is true; files are private (0600 in a 0700 directory);
crops older than keep_days go, then the oldest until the directory is under
max_mb. The daemon prunes an existing directory even with saving turned off,
so switching crops off also clears what is left within keep_days.

Crops are a convenience, never a reason to lose or delay a read: every disk
error here is logged and swallowed, and the daemon saves a crop only after
the read is committed to the outbox.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.types import VehicleResult

__all__ = ["CropStore", "PruneResult", "crop_name"]

log = logging.getLogger(__name__)

_SUFFIX = ".jpg"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PruneResult:
    removed: int
    kept: int
    kept_bytes: int


def crop_name(result: VehicleResult) -> str:
    """<UTC first_seen>_<camera>_<key>.jpg: sorts by time, unique by key, no plate text."""
    try:
        stamp = dt.datetime.fromtimestamp(result.first_seen, tz=dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    except (OverflowError, OSError, ValueError):
        stamp = "unknown-time"
    camera = _UNSAFE.sub("_", result.camera)[:40] or "cam"
    key = _UNSAFE.sub("_", result.key)[:64] or "nokey"
    return f"{stamp}_{camera}_{key}{_SUFFIX}"


class CropStore:
    """A directory of crop JPEGs kept within keep_days and max_mb."""

    def __init__(self, directory: str | os.PathLike[str], keep_days: float, max_mb: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.keep_s = float(keep_days) * 86400.0
        self.max_bytes = int(float(max_mb) * 1024 * 1024)
        self._clock = clock
        self._bytes = 0  # approximate total, so save() knows when to prune
        self.saved = 0
        self.errors = 0

    def ensure_dir(self) -> bool:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            self.errors += 1
            log.error("crops: cannot create %s: %s", self.directory, exc.strerror or exc)
            return False
        return True

    def save(self, result: VehicleResult) -> Path | None:
        """Write the result's crop (if it has one); the path, or None."""
        if not result.crop_jpeg or not self.ensure_dir():
            return None
        target = self.directory / crop_name(result)
        tmp = self.directory / f"{_TMP_PREFIX}{target.name}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                with os.fdopen(fd, "wb", closefd=False) as fh:
                    fh.write(result.crop_jpeg)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except OSError as exc:
            self.errors += 1
            log.error("crops: cannot save the crop of read %s in %s: %s", result.key,
                      self.directory, exc.strerror or exc)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            return None
        self.saved += 1
        self._bytes += len(result.crop_jpeg)
        if self._bytes > self.max_bytes:
            self.prune()
        return target

    def prune(self) -> PruneResult:
        """Delete crops older than keep_days, then the oldest beyond max_mb."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            self._bytes = 0
            return PruneResult(0, 0, 0)
        except OSError as exc:
            self.errors += 1
            log.error("crops: cannot list %s: %s", self.directory, exc.strerror or exc)
            return PruneResult(0, 0, self._bytes)
        now = self._clock()
        files: list[tuple[float, int, str]] = []
        removed = 0
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            stale_tmp = entry.name.startswith(_TMP_PREFIX) and now - st.st_mtime > _STALE_TMP_S
            if stale_tmp or (entry.name.endswith(_SUFFIX) and now - st.st_mtime > self.keep_s):
                removed += self._unlink(entry.path)
            elif entry.name.endswith(_SUFFIX):
                files.append((st.st_mtime, st.st_size, entry.path))
        files.sort()
        total = sum(size for _, size, _ in files)
        while files and total > self.max_bytes:
            _, size, path = files.pop(0)
            if self._unlink(path):
                removed += 1
                total -= size
        self._bytes = total
        if removed:
            log.info("crops: pruned %d file(s) from %s; %d kept (%.1f MB)", removed,
                     self.directory, len(files), total / 1e6)
        return PruneResult(removed, len(files), total)

    def _unlink(self, path: str) -> int:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            self.errors += 1
            log.error("crops: cannot delete %s: %s", path, exc.strerror or exc)
            return 0
        return 1
