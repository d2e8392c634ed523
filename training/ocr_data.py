"""Training data for the OCR: synthetic crops rendered in chunks, plus real crops.

Synthetic chunks are cached as .npz under the cache directory, keyed by seed,
size and a fingerprint of the drawing code, so a resumed run never re-renders,
a seed always gives the same data, and a changed renderer never trains on
crops its old version drew. Rendering uses every core; it happens before training starts.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import logging
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.preprocess import to_gray, to_model_input

log = logging.getLogger(__name__)

MAX_LABEL = 12
_BACKGROUNDS: list[np.ndarray] | None = None
# the code that draws a crop: any change to it makes new cache names
_TRAINING = Path(__file__).resolve().parent
RENDER_SOURCES = tuple(_TRAINING / n for n in ("plate_render.py", "degrade.py", "fonts.py", "ocr_data.py")) + (
    _TRAINING.parent / "edge" / "preprocess.py",)


@dataclass(frozen=True)
class RenderOptions:
    """Renderer settings the trainer chooses: each reaches the rendering workers and names the cache."""

    us_extra_faces: float = 0.0  # share of US serials in plate_render.US_EXTRA_FACES (0: retrain 11's data)
    narrow_wm: float = 0.0  # multiplies plate_render.NARROW_WM_P, plates with narrow W and M (0: retrain 22's)
    emboss: float = 0.0  # plate_render.EMBOSS_P, plates with embossed serials (0: retrain 42's)
    glyph_vary: float = 0.0  # plate_render.GLYPH_VARY_P, serials in another weight, condensed (0: retrain 42's)
    clean: float = 0.0  # degrade.CLEAN_P, crops from a close, clear view (0: retrain 48's)

    def apply(self) -> None:
        """Set them in this process's renderer (the workers' initializer calls this)."""
        from training import degrade, plate_render

        plate_render.US_EXTRA_FACE_P = self.us_extra_faces
        plate_render.NARROW_WM_SCALE = self.narrow_wm
        plate_render.EMBOSS_P = self.emboss
        plate_render.GLYPH_VARY_P = self.glyph_vary
        degrade.CLEAN_P = self.clean


def render_fingerprint(alphabet: str, bg_folder: str | None, options: RenderOptions = RenderOptions()) -> str:
    """8 hex digits naming what the crops depend on: drawing code, alphabet, backgrounds
    folder, renderer options."""
    h = hashlib.sha256()
    for src in RENDER_SOURCES:
        h.update(src.read_bytes())
    h.update(f"{alphabet}|{bg_folder or ''}|{options!r}".encode())
    return h.hexdigest()[:8]


def load_backgrounds(folder: str | None, limit: int = 400, seed: int = 0) -> list[np.ndarray]:
    """Gray street photos without plates (for plate surroundings and textures)."""
    if not folder or not os.path.isdir(folder):
        return []
    files = sorted(glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.png")))
    rng = np.random.default_rng(seed)
    if len(files) > limit:
        files = [files[i] for i in sorted(rng.choice(len(files), limit, replace=False))]
    out = []
    for f in files:
        im = cv2.imread(f, cv2.IMREAD_GRAYSCALE)
        if im is not None:
            out.append(im)
    return out


def _init_worker(bg_folder, options: RenderOptions):
    global _BACKGROUNDS

    _BACKGROUNDS = load_backgrounds(bg_folder)
    options.apply()


def encode_text(text: str, alphabet: str) -> np.ndarray:
    lab = np.full(MAX_LABEL, -1, np.int16)
    idx = [alphabet.index(c) for c in text[:MAX_LABEL]]
    lab[:len(idx)] = idx
    return lab


def render_chunk(seed: int, n: int, alphabet: str, size=(128, 32)) -> tuple[np.ndarray, np.ndarray]:
    """n synthetic crops for one seed: (images uint8 (n,H,W), labels int16 (n,MAX_LABEL))."""
    from training.degrade import degrade
    from training.plate_render import render_plate

    rng = np.random.default_rng(seed)
    imgs = np.empty((n, size[1], size[0]), np.uint8)
    labs = np.empty((n, MAX_LABEL), np.int16)
    for i in range(n):
        plate = render_plate(rng, backgrounds=_BACKGROUNDS)
        imgs[i] = degrade(plate, rng, out_size=size, backgrounds=_BACKGROUNDS)
        labs[i] = encode_text(plate.text, alphabet)
    return imgs, labs


def _chunk_job(args):
    seed, n, alphabet, size, path = args
    imgs, labs = render_chunk(seed, n, alphabet, size)
    tmp = path + ".tmp.npz"
    np.savez(tmp, images=imgs, labels=labs)
    os.replace(tmp, path)
    return path


def synthetic_set(cache_dir: str, n_total: int, chunk: int, base_seed: int, alphabet: str,
                  bg_folder: str | None, workers: int,
                  options: RenderOptions = RenderOptions(), size: tuple[int, int] = (128, 32)
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Render (or load from cache) n_total synthetic crops of `size` (width, height) in chunks."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    fp = render_fingerprint(alphabet, bg_folder, options)
    jobs, paths = [], []
    for k in range(0, n_total, chunk):
        n = min(chunk, n_total - k)
        seed = base_seed * 100003 + k // chunk
        path = os.path.join(cache_dir, f"ocr_s{seed}_n{n}_{size[0]}x{size[1]}_{fp}.npz")
        paths.append(path)
        if not os.path.exists(path):
            jobs.append((seed, n, alphabet, tuple(size), path))
    if jobs:
        log.info("rendering %d synthetic chunks (%d cached) with %d workers", len(jobs),
                 len(paths) - len(jobs), workers)
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(bg_folder, options)) as ex:
            for i, p in enumerate(ex.map(_chunk_job, jobs), 1):
                log.info("rendered chunk %d/%d: %s", i, len(jobs), os.path.basename(p))
    imgs, labs = [], []
    for p in paths:
        d = np.load(p)
        imgs.append(d["images"])
        labs.append(d["labels"])
    return np.concatenate(imgs), np.concatenate(labs)


def is_held_out(name: str) -> bool:
    """The fixed 10 % of real crops kept out of training (by file-name hash)."""
    return zlib.crc32(name.encode()) % 10 == 0


def add_held_out_crop_args(p: argparse.ArgumentParser) -> None:
    """--model and --crops, for the commands that tune the reader on the held-out real crops."""
    from edge.reader import DEFAULT_MODEL
    from training import SHARED

    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--crops", type=Path, default=SHARED / "train" / "br-crops",
                   help="real crops with labels.csv; only the held-out 10 %% are read")


def check_held_out_crop_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One argparse error line naming the option whose file is missing."""
    for path, what in ((args.model, "--model"), (args.crops / "labels.csv", "--crops")):
        if not path.is_file():
            p.error(f"{what}: {path} not found")


def labelled_crops(folder: str, alphabet: str) -> Iterator[tuple[str, np.ndarray, str]]:
    """(file name, gray crop as stored, text) for each usable row of folder/labels.csv (file,text; header allowed)."""
    labels = os.path.join(folder, "labels.csv")
    with open(labels, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 2 or row[0] == "file":
                continue
            text = "".join(c for c in row[-1].upper() if c in alphabet)
            im = cv2.imread(os.path.join(folder, row[0]))
            if im is None or not text or len(text) > MAX_LABEL:
                continue
            yield row[0], to_gray(im), text


def real_crops(folder: str, alphabet: str, size=(128, 32)) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real labelled crops as model inputs (see labelled_crops)."""
    imgs, labs, names = [], [], []
    for name, gray, text in labelled_crops(folder, alphabet):
        imgs.append(to_model_input(gray, size))
        labs.append(encode_text(text, alphabet))
        names.append(name)
    return np.stack(imgs), np.stack(labs), names


def recut(imgs: np.ndarray, rng: np.random.Generator, loose: float, tight: float | None = None) -> np.ndarray:
    """[N, H, W] crops each cut again from a box whose sides move out by up to
    `loose` or in by up to `tight` (default loose / 3) of the crop's size, the
    new border repeating the old edge. A detector's box wanders from frame to
    frame; the few real crops are otherwise seen at one framing only and learnt
    by heart. Inward moves stay small so no outer character is cut off. The cut
    is the daemon's own (edge.second_look.Recrop, then the reader's stretch)."""
    if loose <= 0:
        return imgs
    from edge.second_look import Recrop

    tight = loose / 3 if tight is None else tight
    n, h, w = imgs.shape
    cuts = rng.uniform(-loose, tight, (n, 4))  # per crop: left, top, right, bottom; < 0 pads that side
    return np.stack([to_model_input(Recrop(*c).apply(img), (w, h)) for img, c in zip(imgs, cuts)])
