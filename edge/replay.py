"""`anpr-edge replay VIDEO...`: recorded video through the daemon's pipeline.

Same config, models, pipeline and tracker as `anpr-edge run`; prints one
line per vehicle as the tracker emits it and a summary at the end. With a
backend (backend.url in the config, or --backend URL) the vehicles go
through the real outbox and sender, as the daemon's do, and replay waits
(--wait seconds at most) for their delivery, printing each verdict.

Frame times: a video's frames are at their position in the file plus a
base time, by default 2024-01-01T00:00:00Z (--start changes it: 'mtime' for
the file's modification time, 'now', or an ISO 8601 time). The tracker's
idempotency keys come from frame times and a fingerprint of the file's
content (size and first MiB), so replaying the same file gives the same
keys: a backend answers a second replay with duplicate=true. The daemon
(`run` with camera.source: video) keys a file the same way and starts its
clock at the file's mtime, so `replay --start mtime` gives its keys exactly. A folder of
images works too (image i at i / camera.fps seconds).

Exit codes: 0 done (and, with a backend, everything delivered); 2 bad
arguments or config; 3 model problem; 4 a video cannot be read or an output
cannot be written; 5 some vehicles were not delivered (backend unreachable,
rejected reads, outbox problem).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from edge.annotate import AnnotateError, Annotator, VideoWriter, save_png
from edge.check_config import DEFAULT_CONFIG, load_checked
from edge.config import Config, ConfigError
from edge.outbox import OutboxError, OutboxItem, iso_utc
from edge.pipeline import Pipeline, build_pipeline, process_stream
from edge.sources import FrameSource, ImageFolderSource, SourceError, VideoFileSource, file_fingerprint
from edge.tracker import Tracker
from edge.types import Frame, VehicleResult

__all__ = ["EXIT_DELIVERY", "EXIT_INPUT", "REPLAY_EPOCH", "add_parser", "file_fingerprint", "run"]

log = logging.getLogger(__name__)

REPLAY_EPOCH = 1_704_067_200.0  # 2024-01-01T00:00:00Z: the default time of a video's first frame
EXIT_INPUT = 4
EXIT_DELIVERY = 5
SNAPSHOT_PLATE_WIDTH = 0.14  # --snapshot's choice: plates about this fraction of the frame wide


class _Failure(Exception):
    """A one-line error with its exit code, raised inside run()."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------
# Inputs.

def _start_time(spec: str, path: Path) -> float:
    if spec == "epoch":
        return REPLAY_EPOCH
    if spec == "mtime":
        return float(int(path.stat().st_mtime))  # whole seconds, as the daemon starts a file
    if spec == "now":
        return time.time()
    try:
        stamp = dt.datetime.fromisoformat(spec.replace("Z", "+00:00"))
    except ValueError:
        raise _Failure(f"--start {spec!r}: expected epoch, mtime, now or an ISO 8601 time", 2) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


def _open(path: Path, cfg: Config, realtime: bool) -> tuple[FrameSource, int | None]:
    """The frame source for a video file or image folder, and its frame count if known."""
    if path.is_dir():
        images = ImageFolderSource(path, cfg.camera.id, fps=cfg.camera.fps)
        return images, len(images.files)
    video = VideoFileSource(path, cfg.camera.id, realtime=realtime)
    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    return video, count if count > 0 else None


def _shifted(frames: FrameSource, base: float) -> Iterator[Frame]:
    for f in frames:
        yield Frame(image=f.image, t=f.t + base, camera=f.camera, index=f.index)


# --------------------------------------------------------------------------
# Output: stdout lines, the progress bar on stderr, the JSONL file.

class _Console:
    """Result lines on stdout, a progress bar on stderr; thread-safe (the sender reports too)."""

    def __init__(self, progress: bool, jsonl: IO[str] | None) -> None:
        self.progress_on = progress
        self.jsonl = jsonl
        self._lock = threading.Lock()
        self._bar = ""
        self._last_draw = 0.0

    def line(self, text: str) -> None:
        with self._lock:
            self._erase()
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            self._draw(self._bar)

    def record(self, doc: dict[str, Any]) -> None:
        if self.jsonl is None:
            return
        with self._lock:
            self.jsonl.write(json.dumps(doc, separators=(",", ":")) + "\n")
            self.jsonl.flush()

    def progress(self, name: str, done: int, total: int | None, fps: float, vehicles: int, *,
                 force: bool = False) -> None:
        if not self.progress_on:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        if total:
            k = min(30, round(30 * done / total))
            bar = f"[{'#' * k}{'.' * (30 - k)}] {done}/{total}"
        else:
            bar = f"{done}"
        with self._lock:
            self._erase()
            self._bar = f"{name}: {bar} frames  {fps:5.1f} fps  {vehicles} vehicles"
            self._draw(self._bar)

    def end_progress(self) -> None:
        with self._lock:
            self._erase()
            self._bar = ""

    def _erase(self) -> None:
        if self.progress_on and self._bar:
            sys.stderr.write("\r" + " " * len(self._bar) + "\r")
            sys.stderr.flush()

    def _draw(self, bar: str) -> None:
        if self.progress_on and bar:
            sys.stderr.write(bar)
            sys.stderr.flush()


def _result_doc(r: VehicleResult, base: float, source: Path) -> dict[str, Any]:
    return {"plate": r.plate, "confidence": round(r.confidence, 4), "format": r.format,
            "first_seen": iso_utc(r.first_seen, "first_seen"), "last_seen": iso_utc(r.last_seen, "last_seen"),
            "first_s": round(r.first_seen - base, 3), "last_s": round(r.last_seen - base, 3),
            "frames": r.frames, "camera": r.camera, "key": r.key, "source": str(source)}


def _vehicle_line(doc: dict[str, Any]) -> str:
    return (f"vehicle {doc['plate']:<10} {doc['format'] or '-':<11} conf {doc['confidence']:.2f}  "
            f"frames {doc['frames']:>3}  seen {doc['first_s']:.2f}-{doc['last_s']:.2f} s  "
            f"key {doc['key'][:8]}  {Path(doc['source']).name}")


# --------------------------------------------------------------------------
# Delivery: the daemon's outbox and sender, in a state directory.

class _Delivery:
    """Outbox + sender thread; verdicts are printed (and recorded) as they arrive."""

    def __init__(self, cfg: Config, state_dir: Path, console: _Console,
                 verdicts: queue.SimpleQueue[Any]) -> None:
        from edge.backend import BackendClient, TokenError, load_token
        from edge.outbox import Outbox
        from edge.sender import Sender

        b = cfg.backend
        assert b.url is not None
        try:
            token = None
            if b.token_file is not None:
                token = load_token(b.token_file)
            elif b.token_env and os.environ.get(b.token_env) is not None:
                token = load_token(None, env_var=b.token_env)
            client = BackendClient(b.url, token, b.timeout_s, verify_tls=b.verify_tls, ca_file=b.ca_file)
        except (TokenError, ValueError) as exc:
            raise _Failure(f"backend: {exc}", 2) from None
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _Failure(f"state directory {state_dir}: {exc.strerror}", EXIT_DELIVERY) from None
        self.outbox = Outbox(state_dir / "outbox.sqlite", max_rows=cfg.outbox.max_rows,
                             keep_delivered_days=cfg.outbox.keep_delivered_days)
        self.url = b.url
        self.timeout_s = b.timeout_s
        self.console = console
        self.verdicts = verdicts
        self.pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.sender = Sender(self.outbox, client, b.backoff_initial_s, b.backoff_max_s,
                             on_verdict=self._on_verdict, plate_log_level=cfg.privacy.plate_log_level)
        self._stop = threading.Event()
        self._thread = self.sender.start(self._stop)

    def put(self, result: VehicleResult, doc: dict[str, Any]) -> None:
        with self._lock:
            self.pending[result.key] = doc
        try:
            self.outbox.put(result)
        except OutboxError as exc:
            log.error("%s", exc)

    def _on_verdict(self, item: OutboxItem, verdict: Any) -> None:
        with self._lock:
            doc = self.pending.pop(item.key, None)
        until = verdict.valid_until.isoformat() if verdict.valid_until else None
        if doc is None:  # left over from an earlier replay into the same state directory
            doc = {"plate": item.plate, "key": item.key}
        doc = {**doc, "delivery": "delivered", "vignette": verdict.vignette, "valid_until": until,
               "duplicate": verdict.duplicate}
        self.console.record(doc)
        self.console.line(f"verdict {doc['plate']:<10} vignette {verdict.vignette}"
                          + (f" until {until}" if until else "") + (" (duplicate)" if verdict.duplicate else "")
                          + f"  key {item.key[:8]}")
        self.verdicts.put((item.key, verdict.vignette))

    def stop(self) -> None:
        """Stop the sender thread (within one request); idempotent."""
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 5.0)

    def finish(self, wait_s: float) -> tuple[dict[str, int], int]:
        """Stop the thread, deliver what is left within wait_s; (sender metrics, undelivered)."""
        self.stop()
        try:
            self.sender.drain(wait_s)
        except OutboxError as exc:
            log.error("%s", exc)
        with self._lock:
            left = list(self.pending.values())
            self.pending.clear()
        for doc in left:
            self.console.record({**doc, "delivery": "undelivered", "vignette": None, "valid_until": None,
                                 "duplicate": None})
        try:
            stats = self.outbox.stats()
            undelivered = max(len(left), stats.pending)
        except OutboxError as exc:
            log.error("%s", exc)
            undelivered = len(left)
        self.outbox.close()
        return self.sender.metrics, undelivered


# --------------------------------------------------------------------------
# The command.

def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("replay", help="run recorded video through the pipeline and tracker",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files (or image folders)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH",
                   help=f"config file (default: $ANPR_EDGE_CONFIG or {DEFAULT_CONFIG})")
    p.add_argument("--jsonl", type=Path, metavar="OUT", help="write one JSON object per vehicle here")
    p.add_argument("--annotate", type=Path, metavar="OUT.mp4", help="write an annotated video (one VIDEO)")
    p.add_argument("--snapshot", type=Path, metavar="PNG",
                   help="save one annotated frame as PNG (one VIDEO): the most accepted plates, "
                        "of a size that shows the scene too")
    p.add_argument("--snapshot-frame", type=int, metavar="N", help="--snapshot saves frame N instead")
    p.add_argument("--realtime", action="store_true",
                   help="play at the file's frame rate, dropping frames the pipeline is too slow for")
    p.add_argument("--backend", metavar="URL", help="deliver to this backend (overrides backend.url)")
    p.add_argument("--state-dir", type=Path, metavar="DIR",
                   help="where the replay's outbox lives (default: replay/ beside the config's outbox)")
    p.add_argument("--wait", type=float, default=30.0, metavar="S",
                   help="at the end, wait at most S seconds for deliveries (default 30)")
    p.add_argument("--start", default="epoch", metavar="TIME",
                   help="time of each video's first frame: epoch (2024-01-01T00:00:00Z, default), "
                        "mtime, now, or an ISO 8601 time")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except _Failure as exc:
        sys.stderr.write(f"anpr-edge: error: {' '.join(str(exc).split())}\n")
        return exc.code


def _run(args: argparse.Namespace) -> int:
    if (args.annotate or args.snapshot) and len(args.videos) != 1:
        raise _Failure("--annotate and --snapshot take exactly one VIDEO", 2)
    if not args.wait >= 0:
        raise _Failure(f"--wait: expected seconds >= 0, got {args.wait}", 2)
    for path in args.videos:
        if not path.exists():
            raise _Failure(f"{path}: no such video file or folder", EXIT_INPUT)
    starts = {path: _start_time(args.start, path) for path in args.videos}
    cfg, pipeline = load_checked(args.config, build_pipeline)
    assert isinstance(pipeline, Pipeline)
    if args.backend:
        if "://" not in args.backend:
            raise ConfigError(f"--backend: expected a URL like http://host:port, got {args.backend!r}")
        cfg = dataclasses.replace(cfg, backend=dataclasses.replace(cfg.backend, url=args.backend))

    jsonl = _open_output(args.jsonl)
    console = _Console(not args.no_progress and sys.stderr.isatty(), jsonl)
    verdicts: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    delivery = None
    try:
        if cfg.backend.url:
            assert cfg.outbox.path is not None
            state = args.state_dir or cfg.outbox.path.parent / "replay"
            try:
                delivery = _Delivery(cfg, state, console, verdicts)
            except OutboxError as exc:
                raise _Failure(str(exc), EXIT_DELIVERY) from None
        t0 = time.monotonic()
        totals = _replay_all(args, cfg, pipeline, console, delivery, verdicts, starts)
        wall = time.monotonic() - t0
        metrics, undelivered = delivery.finish(args.wait) if delivery is not None else ({}, 0)
    finally:
        if delivery is not None:
            delivery.stop()
        console.end_progress()
        if jsonl is not None:
            jsonl.close()
    _summary(console, pipeline, totals, wall, metrics if delivery else None, undelivered)
    if delivery is not None and (undelivered or metrics.get("rejected")):
        sys.stderr.write(f"anpr-edge: error: {undelivered} vehicle(s) not delivered to {delivery.url}, "
                         f"{metrics.get('rejected', 0)} rejected\n")
        return EXIT_DELIVERY
    return 0


def _open_output(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise _Failure(f"{path}: cannot write ({exc.strerror})", EXIT_INPUT) from None


@dataclasses.dataclass
class _Totals:
    frames: int = 0
    vehicles: int = 0
    dropped_frames: int = 0
    few_frames: int = 0
    low_confidence: int = 0


def _replay_all(args: argparse.Namespace, cfg: Config, pipeline: Pipeline, console: _Console,
                delivery: _Delivery | None, verdicts: queue.SimpleQueue[tuple[str, str]],
                starts: dict[Path, float]) -> _Totals:
    totals = _Totals()
    writer = VideoWriter(args.annotate, 15.0) if args.annotate else None
    annotator = None
    if args.annotate or args.snapshot:
        roi = cfg.detector.roi if cfg.detector.mode != "full" else None
        annotator = Annotator(cfg.filters.roi_polygon, roi)
    best: tuple[tuple[float, ...], np.ndarray] | None = None
    try:
        for path in args.videos:
            base = starts[path]
            try:
                source, total = _open(path, cfg, args.realtime)
            except SourceError as exc:
                raise _Failure(str(exc), EXIT_INPUT) from None
            if writer is not None and source.fps:
                writer.fps = source.fps
            tracker = Tracker(cfg.tracker, cfg.camera.id, keep_crops=cfg.privacy.save_crops,
                              key_salt=file_fingerprint(path))
            started = time.monotonic()
            done = 0

            def on_result(r: VehicleResult, path: Path = path, base: float = base) -> None:
                doc = _result_doc(r, base, path)
                totals.vehicles += 1
                console.line(_vehicle_line(doc))
                if delivery is not None:
                    delivery.put(r, doc)
                else:
                    console.record(doc)

            def on_frame(frame: Frame, obs: Any, results: Any, path: Path = path, base: float = base,
                         total: int | None = total, started: float = started) -> None:
                nonlocal done, best
                done += 1
                elapsed = time.monotonic() - started
                console.progress(path.name, done, total, done / elapsed if elapsed > 0 else 0.0, totals.vehicles)
                if annotator is None:
                    return
                while not verdicts.empty():
                    annotator.note_verdict(*verdicts.get())
                image = annotator.draw(frame.image, pipeline.last_candidates, index=frame.index,
                                       offset_s=frame.t - base, results=results)
                if writer is not None:
                    writer.write(image)
                if args.snapshot:
                    score = _snapshot_score(frame, pipeline, args.snapshot_frame, totals.vehicles)
                    if score is not None and (best is None or score > best[0]):
                        best = (score, image)

            try:
                process_stream(_shifted(source, base), pipeline, tracker, on_result, on_frame=on_frame)
            except SourceError as exc:
                raise _Failure(str(exc), EXIT_INPUT) from None
            finally:
                source.close()
            console.progress(path.name, done, total, done / max(time.monotonic() - started, 1e-9),
                             totals.vehicles, force=True)
            totals.frames += done
            totals.dropped_frames += getattr(source, "dropped", 0)
            st = tracker.stats
            totals.few_frames += st.dropped_few_frames
            totals.low_confidence += st.dropped_low_confidence
        if writer is not None:
            writer.close()
            console.line(f"annotated video: {args.annotate} ({writer.frames} frames)")
        if args.snapshot:
            if best is None:
                raise _Failure(f"{args.snapshot}: not written: no frame "
                               + (f"{args.snapshot_frame}" if args.snapshot_frame is not None
                                  else "with an accepted plate"), EXIT_INPUT)
            else:
                console.line(f"snapshot: {save_png(args.snapshot, best[1])}")
    except AnnotateError as exc:
        raise _Failure(str(exc), EXIT_INPUT) from None
    finally:
        if writer is not None:  # idempotent; ends ffmpeg after an error too
            try:
                writer.close()
            except AnnotateError:
                pass
    return totals


def _snapshot_score(frame: Frame, pipeline: Pipeline, wanted: int | None,
                    reported: int) -> tuple[float, ...] | None:
    """How good a README picture this frame makes (higher is better); None: not a candidate.

    The frame asked for; else the most accepted plates, then a couple of
    vehicles already reported (their lines are drawn), then plates about
    SNAPSHOT_PLATE_WIDTH of the frame wide: readable, with the scene around them.
    """
    if wanted is not None:
        return (1.0,) if frame.index == wanted else None
    widths = [c.detection.box.w for c in pipeline.last_candidates if c.accepted]
    if not widths:
        return None
    target = SNAPSHOT_PLATE_WIDTH * frame.image.shape[1]
    return float(len(widths)), float(min(reported, 2)), -min(abs(w - target) for w in widths)


def _summary(console: _Console, pipeline: Pipeline, totals: _Totals, wall: float,
             metrics: dict[str, int] | None, undelivered: int) -> None:
    ms = pipeline.times.per_frame_ms()
    fps = totals.frames / wall if wall > 0 else 0.0
    console.line(f"summary: {totals.frames} frames in {wall:.1f} s ({fps:.1f} fps), {totals.vehicles} vehicles")
    console.line(f"  per frame: detect {ms['detect']:.1f} ms, crop+gray {ms['preprocess']:.1f} ms, "
                 f"read {ms['read']:.1f} ms ({pipeline.times.reads} reads)")
    rejected = ", ".join(f"{k} {v}" for k, v in pipeline.rejected.items())
    console.line(f"  rejected boxes: {rejected}")
    console.line(f"  dropped: frames {totals.dropped_frames} (realtime), tracks with too few frames "
                 f"{totals.few_frames}, with too low confidence {totals.low_confidence}")
    if metrics is not None:
        m = metrics
        console.line(f"  delivery: {m.get('delivered', 0)} delivered (valid {m.get('vignette_valid', 0)}, "
                     f"invalid {m.get('vignette_invalid', 0)}, unknown {m.get('vignette_unknown', 0)}), "
                     f"{undelivered} undelivered, {metrics.get('rejected', 0)} rejected")
