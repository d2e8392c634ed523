"""Frame sources: Pi camera, OpenCV device or stream, video file, image folder.

Each source is an iterator of `Frame`s with a `close()`; `open_source` picks
one from the camera config. Live sources (cameras, realtime video) produce
frames at their own pace, so the daemon wraps them in `LatestFrameGrabber`,
which keeps only the newest frame: while the pipeline is busy, frames are
skipped and counted, never queued without bound.

Every failure that stops a source is a `SourceError` with a one-line message
naming the device or file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from edge.config import CameraConfig
from edge.types import Frame

__all__ = [
    "FrameSource", "ImageFolderSource", "LatestFrameGrabber", "OpenCVCaptureSource",
    "Picamera2Source", "SourceError", "VideoFileSource", "file_fingerprint", "open_source",
]

log = logging.getLogger(__name__)

_FINGERPRINT_BYTES = 1 << 20


def file_fingerprint(path: Path) -> str:
    """Size and hash of the first MiB: the same content gives the same keys, wherever it lies."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.iterdir()):
            if p.is_file():
                h.update(f"{p.name}\0{p.stat().st_size}\0".encode())
        return h.hexdigest()[:16]
    with open(path, "rb") as fh:
        h.update(fh.read(_FINGERPRINT_BYTES))
    return f"{path.stat().st_size}:{h.hexdigest()[:16]}"


class SourceError(RuntimeError):
    """A source cannot deliver frames; the message is one line naming it."""


@runtime_checkable
class FrameSource(Protocol):
    """Iterator of frames. `live` sources run at their own pace (see LatestFrameGrabber)."""

    description: str
    live: bool

    @property
    def fps(self) -> float | None: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class _Closing:
    """Context-manager support shared by the sources."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------
# Raspberry Pi camera.

class Picamera2Source(_Closing):
    """The Pi camera through picamera2 (libcamera).

    picamera2 comes from Debian's python3-picamera2 (it needs the system's
    libcamera bindings), so the virtualenv must see system packages.
    Frames are BGR: picamera2's "RGB888" format is B, G, R in memory.
    """

    live = True

    def __init__(self, camera_id: str = "cam0", width: int = 1280, height: int = 720,
                 fps: float = 10.0) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SourceError(
                f"picamera2 is not importable ({exc}): install it with 'sudo apt install "
                "python3-picamera2' and create the virtualenv with "
                "'python3 -m venv --system-site-packages .venv'") from None
        self.camera_id = camera_id
        self.description = f"picamera2 {width}x{height}@{fps:g}"
        self._fps = fps
        self._closed = threading.Event()
        self._lock = threading.Lock()
        try:
            self._cam = Picamera2()
            config = self._cam.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"},
                controls={"FrameRate": float(fps)})
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:  # libcamera raises many types
            raise SourceError(f"cannot start the Pi camera: {_short(exc)}") from None

    @property
    def fps(self) -> float | None:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while not self._closed.is_set():
            with self._lock:
                if self._closed.is_set():
                    return
                try:
                    request = self._cam.capture_request()
                except Exception as exc:
                    raise SourceError(f"Pi camera capture failed: {_short(exc)}") from None
                try:
                    image = request.make_array("main")
                    meta = request.get_metadata()
                finally:
                    request.release()
            yield Frame(image=image, t=_sensor_wall_time(meta.get("SensorTimestamp")),
                        camera=self.camera_id, index=index)
            index += 1

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception as exc:
                log.debug("closing the Pi camera: %s", exc)


def _sensor_wall_time(sensor_ns: int | None) -> float:
    """Wall-clock time of a sensor timestamp (CLOCK_BOOTTIME ns), else now."""
    now = time.time()
    if not sensor_ns or not hasattr(time, "CLOCK_BOOTTIME"):
        return now
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - sensor_ns / 1e9
    return now - age if 0 <= age < 5 else now


# --------------------------------------------------------------------------
# OpenCV device or network stream.

class OpenCVCaptureSource(_Closing):
    """A USB camera (/dev/videoN or an index) or an RTSP/HTTP stream.

    Read failures (unplugged camera, dropped stream) close the capture and
    reopen it after an exponential backoff, forever, until close(). Frame
    time is the wall clock at capture.
    """

    live = True

    def __init__(self, device: int | str, camera_id: str = "cam0", *, width: int | None = None,
                 height: int | None = None, fps: float | None = None,
                 backoff_initial_s: float = 1.0, backoff_max_s: float = 30.0,
                 capture_factory: Callable[..., Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.device = _device_arg(device)
        self.camera_id = camera_id
        self.description = f"opencv {_redact(str(device))}"
        self._size = (width, height)
        self._req_fps = fps
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._factory = capture_factory or _open_capture
        self._clock = clock
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._cap: Any = None
        self._fps: float | None = fps
        self.reconnects = 0

    @property
    def fps(self) -> float | None:
        return self._fps

    def _open(self) -> bool:
        try:
            cap = self._factory(self.device)
        except Exception as exc:  # cv2.error and friends: retried
            log.debug("%s: open raised %s", self.description, exc)
            return False
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return False
        if isinstance(self.device, int) or str(self.device).startswith("/dev/"):
            w, h = self._size
            if w and h:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            if self._req_fps:
                cap.set(cv2.CAP_PROP_FPS, self._req_fps)
        reported = cap.get(cv2.CAP_PROP_FPS)
        if reported and 0 < reported < 1000:
            self._fps = float(reported)
        with self._lock:
            if self._closed.is_set():
                cap.release()
                return False
            self._cap = cap
        return True

    def _read(self) -> np.ndarray | None:
        with self._lock:
            if self._cap is None:
                return None
            ok, image = self._cap.read()
        return image if ok and image is not None and image.size else None

    def _drop(self) -> None:
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        delay = self._backoff[0]
        try:
            while not self._closed.is_set():
                if self._cap is None and not self._open():
                    log.warning("%s: cannot open; retrying in %.1f s", self.description, delay)
                    self._wait(delay)
                    delay = min(delay * 2, self._backoff[1])
                    continue
                image = self._read()
                if image is None:
                    if self._closed.is_set():
                        break
                    self._drop()
                    self.reconnects += 1
                    log.warning("%s: read failed; reconnecting in %.1f s", self.description, delay)
                    self._wait(delay)
                    delay = min(delay * 2, self._backoff[1])
                    continue
                delay = self._backoff[0]
                yield Frame(image=image, t=self._clock(), camera=self.camera_id, index=index)
                index += 1
        finally:
            self._drop()

    def _wait(self, seconds: float) -> None:
        self._closed.wait(seconds)

    def close(self) -> None:
        """Stop (thread-safe: interrupts a backoff wait, waits out a read in progress)."""
        self._closed.set()
        self._drop()


def _device_arg(device: int | str) -> int | str:
    if isinstance(device, str) and device.strip().isdigit():
        return int(device)
    return device


def _open_capture(device: int | str) -> Any:
    if isinstance(device, str) and "://" in device:
        # Bounded network waits, so a dead stream fails a read instead of hanging.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10_000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 10_000]
        return cv2.VideoCapture(device, cv2.CAP_FFMPEG, params)
    if isinstance(device, str) and device.startswith("/dev/") and hasattr(cv2, "CAP_V4L2"):
        return cv2.VideoCapture(device, cv2.CAP_V4L2)
    return cv2.VideoCapture(device)


def _redact(text: str) -> str:
    """Hide the password of a user:password@ URL in logs."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", text)


# --------------------------------------------------------------------------
# Video file.

class VideoFileSource(_Closing):
    """Frames of a video file; frame time is the position in the file (s).

    realtime=False yields every frame, as fast as the consumer takes them.
    realtime=True plays the file at its own frame rate and skips frames the
    consumer was too slow for (counted in `dropped`), as a camera would, so
    a recording tests the pipeline under live timing.
    """

    def __init__(self, path: str | os.PathLike[str], camera_id: str = "cam0", *,
                 realtime: bool = False, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        self.camera_id = camera_id
        self.realtime = realtime
        self.live = realtime
        self.description = f"video {self.path}"
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._closed = False
        self.dropped = 0
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self._cap: Any = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened() or not self._cap.grab():
            self._cap.release()
            raise SourceError(f"cannot read video {self.path}: empty, corrupt or unsupported format")
        self._pending = True  # the frame grabbed above is next
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if fps and 0 < fps < 1000 else None

    @property
    def fps(self) -> float | None:
        return self._fps

    def _grab(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._pending:
                self._pending = False
                return True
            return bool(self._cap.grab())

    def _retrieve(self) -> np.ndarray | None:
        with self._lock:
            if self._closed:
                return None
            ok, image = self._cap.retrieve()
        return image if ok and image is not None and image.size else None

    def __iter__(self) -> Iterator[Frame]:
        index = decoded = 0
        last_t = -1.0
        period = 1.0 / (self._fps or 25.0)
        start = self._clock()
        try:
            while self._grab():
                # The container's timestamp, unless missing or not increasing.
                t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if index > 0 and not t > last_t:
                    t = last_t + period
                last_t = t
                index += 1
                if self.realtime:
                    lag = (self._clock() - start) - t
                    if lag > period:  # the next frame is already due: this one is gone
                        self.dropped += 1
                        continue
                    if lag < 0:
                        self._sleep(-lag)
                image = self._retrieve()
                if image is None:
                    if not self._closed:
                        log.warning("%s: undecodable frame %d skipped", self.description, index - 1)
                    continue
                decoded += 1
                yield Frame(image=image, t=t, camera=self.camera_id, index=index - 1)
            if decoded == 0 and not self._closed:
                raise SourceError(f"cannot read video {self.path}: no decodable frames")
        finally:
            self.close()

    def close(self) -> None:
        """Stop and release the file (thread-safe)."""
        with self._lock:
            self._closed = True
            self._cap.release()


# --------------------------------------------------------------------------
# Image folder.

_SIDECARS = frozenset({".txt", ".xml", ".csv", ".json", ".md"})


class ImageFolderSource(_Closing):
    """The images of a folder in natural name order (img2 before img10).

    Image i is at t = i / fps, so tracking timings work as for a camera.
    Files OpenCV cannot read are skipped with a warning.
    """

    live = False

    def __init__(self, path: str | os.PathLike[str], camera_id: str = "cam0", *,
                 fps: float = 10.0) -> None:
        self.path = Path(path)
        self.camera_id = camera_id
        self.description = f"images {self.path}"
        self._fps = fps
        if not self.path.is_dir():
            raise SourceError(f"image folder not found: {self.path}")
        files = sorted((p for p in self.path.iterdir() if p.is_file() and not p.name.startswith(".")),
                       key=lambda p: _natural_key(p.name))
        self.files: list[Path] = []
        for p in files:
            if cv2.haveImageReader(str(p)):
                self.files.append(p)
            elif p.suffix.lower() in _SIDECARS:  # label files next to images: expected
                log.debug("%s: label file skipped: %s", self.description, p.name)
            else:
                log.warning("%s: not an image, skipped: %s", self.description, p.name)
        if not self.files:
            raise SourceError(f"no images in folder {self.path}")
        self._closed = False

    @property
    def fps(self) -> float | None:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for p in self.files:
            if self._closed:
                return
            image = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("%s: unreadable image, skipped: %s", self.description, p.name)
                continue
            yield Frame(image=image, t=index / self._fps, camera=self.camera_id, index=index)
            index += 1

    def close(self) -> None:
        self._closed = True


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part.lower())
            for part in re.split(r"(\d+)", name) if part]


# --------------------------------------------------------------------------

def open_source(cfg: CameraConfig) -> FrameSource:
    """The frame source the camera config describes (not yet wrapped in a grabber)."""
    if cfg.source == "picamera2":
        return Picamera2Source(cfg.id, cfg.width, cfg.height, cfg.fps)
    if cfg.source == "opencv":
        return OpenCVCaptureSource(cfg.url or cfg.device, cfg.id, width=cfg.width, height=cfg.height,
                                   fps=cfg.fps, backoff_initial_s=cfg.reconnect_initial_s,
                                   backoff_max_s=cfg.reconnect_max_s)
    if cfg.path is None:
        raise SourceError(f"camera.path is required for camera.source {cfg.source!r}")
    if cfg.source == "video":
        return VideoFileSource(cfg.path, cfg.id, realtime=cfg.realtime)
    return ImageFolderSource(cfg.path, cfg.id, fps=cfg.fps)


class LatestFrameGrabber(_Closing):
    """Runs a source in a thread and hands out only its newest frame.

    A frame replaced before the consumer took it counts in `dropped`. Errors
    of the source are raised to the consumer; the end of the source ends the
    iteration once the last frame was taken.
    """

    live = True

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.description = f"latest of {source.description}"
        self.received = 0
        self.dropped = 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._error: BaseException | None = None
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()

    @property
    def fps(self) -> float | None:
        return self.source.fps

    def _run(self) -> None:
        try:
            for frame in self.source:
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = frame
                    self.received += 1
                    self._cond.notify_all()
                if self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken; None on timeout or at the end.

        Raises the source's error, once its frames are taken.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._done, timeout)
            frame, self._latest = self._latest, None
            if frame is None and self._error is not None:
                error, self._error = self._error, None
                raise error
            return frame

    @property
    def finished(self) -> bool:
        """True when the source has ended and its last frame was taken."""
        with self._cond:
            return self._done and self._latest is None and self._error is None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame

    def close(self, timeout: float = 5.0) -> None:
        """Stop the source and the thread."""
        self._stop.set()
        self.source.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: reader thread did not stop within %.0f s", self.description, timeout)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
