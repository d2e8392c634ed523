"""Plate crops: private files, pruned by age and size, saved only when asked to."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import cv2
import numpy as np

from edge.config import load_config
from edge.crops import CropStore, crop_name
from edge.daemon import Daemon
from edge.types import Frame, VehicleResult
from test_daemon import FakePipeline, RecordingNotifier, make_video, outbox_rows, write_config

T0 = 1_714_564_800.0


def _jpeg(size: int = 40) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(size).integers(0, 255, (size, size, 3), np.uint8))
    assert ok
    return buf.tobytes()


def _result(n: int, crop: bytes | None) -> VehicleResult:
    return VehicleResult(f"AB{n:04d}", 0.9, T0 + n, T0 + n + 1, 3, "cam 0/x", f"key{n}", crop_jpeg=crop)


def test_save_is_private_and_names_carry_no_plate(tmp_path: Path) -> None:
    store = CropStore(tmp_path / "crops", keep_days=7, max_mb=1)
    path = store.save(_result(1, _jpeg()))
    assert path is not None and path.read_bytes() == _jpeg()
    assert path.name == "20240501T120001Z_cam_0_x_key1.jpg" == crop_name(_result(1, None))
    assert "AB0001" not in path.name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.save(_result(2, None)) is None  # no crop, nothing written
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_prune_by_age_then_size_oldest_first(tmp_path: Path) -> None:
    now = [time.time()]
    store = CropStore(tmp_path, keep_days=1, max_mb=0.01, clock=lambda: now[0])  # ~10 kB
    paths = []
    for i in range(6):
        p = tmp_path / f"2024050{i}_cam0_k{i}.jpg"
        p.write_bytes(b"x" * 3000)
        os.utime(p, (now[0] - 3600 * (10 - i),) * 2)  # i=0 oldest
        paths.append(p)
    old = tmp_path / "old_cam0_k.jpg"
    old.write_bytes(b"x")
    os.utime(old, (now[0] - 2 * 86400,) * 2)
    stale_tmp = tmp_path / ".tmp-x.jpg"
    stale_tmp.write_bytes(b"x")
    os.utime(stale_tmp, (now[0] - 7200,) * 2)
    other = tmp_path / "notes.txt"
    other.write_text("not a crop")
    result = store.prune()
    assert not old.exists() and not stale_tmp.exists() and other.exists()
    assert [p.exists() for p in paths] == [False, False, False, True, True, True]  # 9 kB left
    assert result.kept == 3 and result.kept_bytes == 9000


def test_save_prunes_when_over_max(tmp_path: Path) -> None:
    store = CropStore(tmp_path, keep_days=7, max_mb=5000 / 1024 / 1024)
    crop = b"x" * 2000
    for i in range(5):
        store.save(_result(i, crop))
        time.sleep(0.01)
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 5000


def test_unwritable_dir_is_logged_never_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    store = CropStore(blocker / "crops", keep_days=7, max_mb=1)
    assert store.save(_result(1, _jpeg())) is None and store.errors == 1


class _CropPipeline(FakePipeline):
    def process(self, frame: Frame) -> list:
        return [o.__class__(o.box, o.reading, o.det_score, np.full((12, 40, 3), 128, np.uint8))
                for o in super().process(frame)]


def _run(tmp_path: Path, save: bool) -> Path:
    video = make_video(tmp_path / "road.avi", 30)
    cfg_path = write_config(tmp_path, video=video, privacy={"save_crops": save})
    from edge.sources import open_source
    cfg = load_config(cfg_path)
    pipeline = _CropPipeline()
    assert Daemon(cfg, cfg_path, pipeline_factory=lambda c: pipeline, source_factory=open_source,
                  notifier=RecordingNotifier()).run() == 0
    return cfg_path


def test_daemon_saves_crops_only_when_configured(tmp_path: Path) -> None:
    off = tmp_path / "off"
    off.mkdir()
    _run(off, save=False)
    assert not (off / "state" / "crops").exists()
    on = tmp_path / "on"
    on.mkdir()
    cfg_path = _run(on, save=True)
    crops = sorted((on / "state" / "crops").iterdir())
    keys = [k for k, _, _ in outbox_rows(cfg_path)]
    assert len(crops) == len(keys) == 3
    assert all(any(k in c.name for c in crops) for k in keys)
