"""Frame sources on small generated videos and images, and the latest-frame grabber."""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import CameraConfig
from edge.sources import (
    FrameSource, ImageFolderSource, LatestFrameGrabber, OpenCVCaptureSource, Picamera2Source,
    SourceError, VideoFileSource, open_source,
)
from edge.types import Frame

W, H = 64, 48


def write_video(path: Path, n: int = 12, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((H, W, 3), i * 20, np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "cars.mp4")


def one_line_error(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(SourceError) as info:
        fn(*args, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- video files

def test_video_file_yields_every_frame_with_file_times(video: Path) -> None:
    src = VideoFileSource(video, "gate")
    assert isinstance(src, FrameSource) and src.fps == 10.0 and not src.live
    frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert [f.t for f in frames] == pytest.approx([i / 10 for i in range(12)], abs=1e-6)
    assert all(f.camera == "gate" and f.image.shape == (H, W, 3) for f in frames)
    means = [float(f.image.mean()) for f in frames]
    assert means == sorted(means) and means[-1] > means[0] + 150


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept += s
        self.now += s


def test_realtime_video_is_paced_when_the_consumer_keeps_up(video: Path) -> None:
    clock = FakeClock()
    frames = list(VideoFileSource(video, realtime=True, clock=clock, sleep=clock.sleep))
    assert len(frames) == 12
    assert clock.slept == pytest.approx(1.1, abs=1e-6)


def test_realtime_video_drops_frames_a_slow_consumer_misses(video: Path) -> None:
    clock = FakeClock()
    src = VideoFileSource(video, realtime=True, clock=clock, sleep=clock.sleep)
    assert src.live
    taken = []
    for frame in src:
        taken.append(frame.index)
        clock.now += 0.25  # the pipeline needs 250 ms a frame at 10 fps
    assert taken[0] == 0 and len(taken) < 12
    assert src.dropped == 12 - len(taken)
    assert all(b - a >= 2 for a, b in zip(taken, taken[1:]))


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 50])
def test_unreadable_video_is_one_line_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    message = one_line_error(VideoFileSource, path)
    assert str(path) in message and "cannot read video" in message


def test_missing_video(tmp_path: Path) -> None:
    assert one_line_error(VideoFileSource, tmp_path / "nope.mp4") == f"video file not found: {tmp_path / 'nope.mp4'}"


def test_video_close_stops_iteration(video: Path) -> None:
    src = VideoFileSource(video)
    it = iter(src)
    next(it)
    src.close()
    assert list(it) == []


# ---------------------------------------------------------------- image folders

def test_image_folder_natural_order_and_skips_non_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((H, W, 3), i, np.uint8))
    (tmp_path / "notes.bin").write_text("not an image")
    (tmp_path / "img1.txt").write_text("img1.png 1 2 3 4 AB123")  # a label file beside its image
    (tmp_path / ".hidden").write_text("ignored")
    with caplog.at_level(logging.WARNING, logger="edge.sources"):
        src = ImageFolderSource(tmp_path, "cam1", fps=4.0)
    assert "notes.bin" in caplog.text and ".hidden" not in caplog.text
    assert "img1.txt" not in caplog.text  # label files are expected, not warned about
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.t for f in frames] == [0.0, 0.25, 0.5]
    assert {f.camera for f in frames} == {"cam1"}


def test_image_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("# nothing")
    assert one_line_error(ImageFolderSource, tmp_path) == f"no images in folder {tmp_path}"
    assert "image folder not found" in one_line_error(ImageFolderSource, tmp_path / "missing")


def test_image_folder_skips_corrupt_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((H, W, 3), np.uint8))
    good = (tmp_path / "a.png").read_bytes()
    (tmp_path / "b.png").write_bytes(good[:40])  # a PNG header, then nothing
    with caplog.at_level(logging.WARNING, logger="edge.sources"):
        frames = list(ImageFolderSource(tmp_path))
    assert len(frames) == 1


# ---------------------------------------------------------------- factory

def test_open_source(video: Path, tmp_path: Path) -> None:
    src = open_source(CameraConfig(id="v", source="video", path=video, realtime=True))
    assert isinstance(src, VideoFileSource) and src.realtime and src.camera_id == "v"
    src.close()
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((H, W, 3), np.uint8))
    assert isinstance(open_source(CameraConfig(source="images", path=tmp_path)), ImageFolderSource)
    cam = open_source(CameraConfig(source="opencv", url="rtsp://u:secret@cam/stream"))
    assert isinstance(cam, OpenCVCaptureSource) and "secret" not in cam.description
    with pytest.raises(SourceError, match="camera.path is required"):
        open_source(CameraConfig(source="video"))


def test_picamera2_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    message = one_line_error(open_source, CameraConfig(source="picamera2"))
    assert "python3-picamera2" in message and "--system-site-packages" in message


def test_picamera2_with_a_fake_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Request:
        def make_array(self, name: str) -> np.ndarray:
            return np.zeros((H, W, 3), np.uint8)

        def get_metadata(self) -> dict[str, Any]:
            return {"SensorTimestamp": time.clock_gettime_ns(time.CLOCK_BOOTTIME)}

        def release(self) -> None:
            calls.append("release")

    class Picamera2:
        def create_video_configuration(self, **kw: Any) -> dict[str, Any]:
            assert kw["main"] == {"size": (320, 240), "format": "RGB888"}
            return kw

        def configure(self, cfg: Any) -> None: calls.append("configure")
        def start(self) -> None: calls.append("start")
        def stop(self) -> None: calls.append("stop")
        def close(self) -> None: calls.append("close")
        def capture_request(self) -> Request: return Request()

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    src = Picamera2Source("pi", 320, 240, 5)
    frames = list(itertools.islice(src, 3))
    src.close()
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].camera == "pi"
    assert abs(frames[0].t - time.time()) < 1.0
    assert calls.count("release") == 3 and calls[-2:] == ["stop", "close"]


# ---------------------------------------------------------------- OpenCV capture

class FakeCapture:
    """Reads `good` frames, then fails (an unplugged camera)."""

    def __init__(self, good: int) -> None:
        self.good = good
        self.released = False

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.good <= 0:
            return False, None
        self.good -= 1
        return True, np.zeros((H, W, 3), np.uint8)

    def release(self) -> None:
        self.released = True


def test_opencv_reconnects_with_exponential_backoff() -> None:
    plan = [FakeCapture(2), None, None, None, FakeCapture(1), FakeCapture(3)]
    opened: list[Any] = []

    def factory(device: Any) -> Any:
        cap = plan.pop(0)
        opened.append(cap)
        return cap

    src = OpenCVCaptureSource("/dev/video0", "usb", backoff_initial_s=1, backoff_max_s=4,
                              capture_factory=factory, clock=iter(range(100)).__next__)
    waits: list[float] = []
    src._wait = waits.append  # type: ignore[method-assign]
    frames = list(itertools.islice(src, 6))
    src.close()
    assert [f.index for f in frames] == list(range(6))
    assert [f.t for f in frames] == [0, 1, 2, 3, 4, 5]
    # read fail, 3 failed opens (doubling, capped), read fail after success (reset).
    assert waits == [1, 2, 4, 4, 1]
    assert src.reconnects == 2
    assert all(c is None or c.released for c in opened[:-1])


def test_opencv_close_interrupts_the_backoff() -> None:
    src = OpenCVCaptureSource(0, capture_factory=lambda d: None, backoff_initial_s=60, backoff_max_s=60)
    done = threading.Event()

    def consume() -> None:
        list(src)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.1)
    src.close()
    assert done.wait(2.0)


def test_opencv_reads_a_real_capture(video: Path) -> None:
    src = OpenCVCaptureSource(str(video), "file")
    frames = list(itertools.islice(src, 3))
    src.close()
    assert len(frames) == 3 and frames[0].image.shape == (H, W, 3)


# ---------------------------------------------------------------- grabber

class ListSource:
    """A source of n frames, produced as fast as possible, optionally failing at the end."""

    description = "list"
    live = True
    fps = 10.0

    def __init__(self, n: int, error: Exception | None = None) -> None:
        self.n, self.error, self.closed = n, error, False

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            yield Frame(np.zeros((2, 2, 3), np.uint8), t=i / 10, index=i)
        if self.error:
            raise self.error

    def close(self) -> None:
        self.closed = True


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_grabber_keeps_only_the_newest_frame() -> None:
    grabber = LatestFrameGrabber(ListSource(5))
    wait_for(lambda: grabber.received == 5)
    frame = grabber.get(timeout=1)
    assert frame is not None and frame.index == 4
    assert grabber.dropped == 4
    assert grabber.get(timeout=1) is None and grabber.finished
    grabber.close()


def test_grabber_iterates_until_the_source_ends() -> None:
    grabber = LatestFrameGrabber(ListSource(50))
    taken = [f.index for f in grabber]
    assert taken[-1] == 49 and taken == sorted(taken)
    assert len(taken) + grabber.dropped == 50


def test_grabber_raises_the_source_error_after_its_frames() -> None:
    grabber = LatestFrameGrabber(ListSource(1, SourceError("camera gone")))
    wait_for(lambda: grabber.received == 1)
    time.sleep(0.05)
    assert grabber.get(timeout=1) is not None
    with pytest.raises(SourceError, match="camera gone"):
        grabber.get(timeout=1)


def test_grabber_close_stops_a_live_source() -> None:
    cam = OpenCVCaptureSource(0, capture_factory=lambda d: FakeCapture(10**9))
    grabber = LatestFrameGrabber(cam)
    wait_for(lambda: grabber.received > 3)
    grabber.close(timeout=2.0)
    assert not grabber._thread.is_alive()
