"""Pictures of what the pipeline saw: boxes, readings, the vehicle's vote.

For people, not for the pipeline: replay's --annotate (a video) and
--snapshot (one PNG, e.g. the README's docs/annotated_frame.png). Colours:
green an accepted read, orange a box read but rejected (the reason is
written), gray a box rejected before reading (score, ROI). Above an accepted
box: the running vote of that vehicle's reads so far (what the tracker will
report if nothing changes); bottom left: the vehicles already reported.

Videos are H.264 through the ffmpeg program when there is one (small files
that play in browsers), else OpenCV's MPEG-4 part 2 writer.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from edge.pipeline import Candidate
from edge.tracker import vote
from edge.types import Box, Reading, VehicleResult

__all__ = ["AnnotateError", "Annotator", "VideoWriter", "save_png"]

log = logging.getLogger(__name__)

GREEN = (60, 200, 60)
ORANGE = (0, 150, 255)
GRAY = (150, 150, 150)
YELLOW = (0, 220, 255)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


class AnnotateError(Exception):
    """An annotated picture or video could not be written; one line naming the file."""


# --------------------------------------------------------------------------
# Drawing.

@dataclass
class _Vote:
    box: Box
    last_index: int
    reads: deque[Reading] = field(default_factory=lambda: deque(maxlen=32))


class Annotator:
    """Draws one frame at a time; keeps a running vote per plate and the reported vehicles.

    polygon: filters.roi_polygon (fractions); roi: the detector's ROI
    rectangle (fractions) when it does not look at the whole frame.
    """

    def __init__(self, polygon: Sequence[tuple[float, float]] | None = None,
                 roi: tuple[float, float, float, float] | None = None, *, keep_reported: int = 6,
                 forget_after_frames: int = 15) -> None:
        self.polygon = None if polygon is None else np.array(polygon, np.float64)
        self.roi = roi
        self.forget_after_frames = forget_after_frames
        self._votes: list[_Vote] = []
        self._reported: deque[tuple[VehicleResult, str | None]] = deque(maxlen=keep_reported)

    def note_results(self, results: Sequence[VehicleResult]) -> None:
        for r in results:
            self._reported.append((r, None))

    def note_verdict(self, key: str, vignette: str) -> None:
        """Show a backend verdict next to its vehicle, if it is still listed."""
        for i, (r, _) in enumerate(self._reported):
            if r.key == key:
                self._reported[i] = (r, vignette)

    def draw(self, image: np.ndarray, candidates: Sequence[Candidate], *, index: int = 0,
             offset_s: float | None = None, results: Sequence[VehicleResult] = ()) -> np.ndarray:
        """A copy of image (BGR) with the frame's candidates drawn on it."""
        self.note_results(results)
        out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = out.shape[:2]
        scale = max(0.45, h / 1000.0)
        thick = max(1, round(h / 360))
        self._draw_regions(out, w, h, thick)
        voted = self._update_votes(candidates, index)
        for cand, tally in zip(candidates, voted):
            self._draw_candidate(out, cand, tally, scale, thick)
        stamp = f"frame {index}" + (f"  t {offset_s:7.2f} s" if offset_s is not None else "")
        _label(out, stamp, (8, 8), WHITE, scale, thick, below=True)
        y = h - 8
        for r, verdict in reversed(self._reported):
            text = f"reported {r.plate} {r.confidence:.2f}" + (f" {r.format}" if r.format else "") \
                + (f"  vignette {verdict}" if verdict else "")
            y = _label(out, text, (8, y), GREEN if verdict != "invalid" else ORANGE, scale, thick)
        return out

    # ------------------------------------------------------------------

    def _draw_regions(self, out: np.ndarray, w: int, h: int, thick: int) -> None:
        if self.roi is not None and tuple(self.roi) != (0.0, 0.0, 1.0, 1.0):
            x0, y0, x1, y1 = self.roi
            cv2.rectangle(out, (round(x0 * w), round(y0 * h)), (round(x1 * w) - 1, round(y1 * h) - 1),
                          GRAY, thick)
        if self.polygon is not None:
            pts = np.round(self.polygon * [w, h]).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], True, YELLOW, thick)

    def _draw_candidate(self, out: np.ndarray, cand: Candidate, tally: tuple[str, float] | None,
                        scale: float, thick: int) -> None:
        b = cand.detection.box
        p0, p1 = (round(b.x0), round(b.y0)), (round(b.x1) - 1, round(b.y1) - 1)
        r = cand.reading
        if cand.accepted and r is not None:
            color, text = GREEN, f"{r.text} {r.confidence:.2f}"
        elif r is not None:
            color, text = ORANGE, f"{r.text or '-'} {r.confidence:.2f} ({cand.rejected})"
        else:
            color, text = GRAY, f"det {cand.detection.score:.2f} ({cand.rejected})"
        cv2.rectangle(out, p0, p1, color, thick + 1)
        y = _label(out, text, (p0[0], p0[1] - 2), color, scale, thick)
        if tally is not None and tally[0]:
            _label(out, f"vote {tally[0]} {tally[1]:.2f}", (p0[0], y), WHITE, scale, thick)

    def _update_votes(self, candidates: Sequence[Candidate], index: int) -> list[tuple[str, float] | None]:
        """Match accepted reads to recent plates (overlap or a short move) and vote each."""
        self._votes = [v for v in self._votes if index - v.last_index <= self.forget_after_frames]
        out: list[tuple[str, float] | None] = []
        for cand in candidates:
            r = cand.reading
            if not cand.accepted or r is None:
                out.append(None)
                continue
            box = cand.detection.box
            best = max(self._votes, key=lambda v: _closeness(v.box, box), default=None)
            if best is None or _closeness(best.box, box) <= 0:
                best = _Vote(box, index)
                self._votes.append(best)
            best.box, best.last_index = box, index
            best.reads.append(r)
            out.append(vote(list(best.reads)))
        return out


def _closeness(a: Box, b: Box) -> float:
    """> 0 when b is plausibly a in a later frame: overlapping or within 1.5 plate widths."""
    iou = a.iou(b)
    if iou > 0:
        return 1.0 + iou
    dx = (a.x0 + a.x1 - b.x0 - b.x1) / 2
    dy = (a.y0 + a.y1 - b.y0 - b.y1) / 2
    shift = float(np.hypot(dx, dy)) / max(a.w, b.w, 1e-6)
    return 1.5 - shift


def _label(img: np.ndarray, text: str, at: tuple[int, int], color: tuple[int, int, int], scale: float,
           thick: int, *, below: bool = False) -> int:
    """Text on a dark band whose bottom-left is `at` (top-left if below); returns the band's far edge."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    x, y = at
    h, w = img.shape[:2]
    top = y if below else y - th - base - 4
    top = int(np.clip(top, 0, max(0, h - th - base - 4)))
    x = int(np.clip(x, 0, max(0, w - tw - 6)))
    bottom = top + th + base + 4
    band = img[top:bottom, x:x + tw + 6]
    band[...] = (band * 0.35).astype(np.uint8)  # darken, keep a hint of the scene
    cv2.putText(img, text, (x + 3, top + th + 2), FONT, scale, color, thick, cv2.LINE_AA)
    return bottom if below else top


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an annotated frame as PNG (AnnotateError naming the file on failure)."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise AnnotateError(f"{p}: cannot encode PNG")
        p.write_bytes(buf.tobytes())
    except OSError as exc:
        raise AnnotateError(f"{p}: cannot write ({exc.strerror})") from None
    return p


# --------------------------------------------------------------------------
# Video output.

class VideoWriter:
    """BGR frames -> MP4. Opens on the first frame (its size is the video's).

    With the ffmpeg program: libx264, yuv420p, +faststart, fed raw frames
    through a pipe. Without it: OpenCV's 'mp4v' writer.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, *, crf: int = 23, preset: str = "medium",
                 ffmpeg: str | None = "auto", extra_args: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 15.0
        self.crf = int(crf)
        self.preset = preset
        self.ffmpeg = shutil.which("ffmpeg") if ffmpeg == "auto" else ffmpeg
        self.extra_args = tuple(extra_args)
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None
        self._cv: cv2.VideoWriter | None = None

    def _open(self, w: int, h: int) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AnnotateError(f"{self.path}: cannot create its directory ({exc.strerror})") from None
        self._size = (w, h)
        if self.ffmpeg:
            cmd = [self.ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                   "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{self.fps:g}", "-i", "-",
                   "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", self.preset,
                   "-crf", str(self.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                   *self.extra_args, str(self.path)]
            self._errors = tempfile.TemporaryFile()
            try:
                self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                              stderr=self._errors)
            except OSError as exc:
                raise AnnotateError(f"{self.path}: cannot start {self.ffmpeg} ({exc.strerror})") from None
            return
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not writer.isOpened():
            raise AnnotateError(f"{self.path}: OpenCV cannot write this video (no ffmpeg program either)")
        self._cv = writer

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._size is None:
            self._open(w, h)
        elif self._size != (w, h):
            was = f"{self._size[0]}x{self._size[1]}"
            raise AnnotateError(f"{self.path}: frame size changed from {was} to {w}x{h}")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self._proc is not None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(np.ascontiguousarray(image).tobytes())
            except (BrokenPipeError, OSError):
                self._proc.wait()
                raise AnnotateError(f"{self.path}: ffmpeg failed: {self._error_text()}") from None
        elif self._cv is not None:
            self._cv.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file (AnnotateError if the encoder failed)."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            rc = proc.wait()
            if rc != 0:
                raise AnnotateError(f"{self.path}: ffmpeg exited with {rc}: {self._error_text()}")
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        if self._errors is not None:
            self._errors.close()
            self._errors = None

    def _error_text(self) -> str:
        if self._errors is None:
            return "unknown error"
        self._errors.seek(0)
        lines = self._errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "no message"

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
