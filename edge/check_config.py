"""`anpr-edge check-config`: is this config (and are its models) good to run?

Validates the file like the daemon does and loads each model once, so a bad
deployment fails here, on one line, instead of at 3 a.m. in the journal:

    OK config.yaml: camera cam0 (picamera2), detector detect.tflite 320x320 mode auto, ...

Exit codes: 0 good; 2 the config is wrong (YAML, keys, values, a missing
token or CA file); 3 a model or the OCR language data is missing or cannot be
loaded. The error is one line naming the file and the key or model.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from edge.config import Config, ConfigError, load_config
from edge.runtime import ModelError

__all__ = ["DEFAULT_CONFIG", "MODEL_KEYS", "add_parser", "load_checked", "run", "summary"]

DEFAULT_CONFIG = Path(os.environ.get("ANPR_EDGE_CONFIG", "config.yaml"))

# Config keys naming model files: missing ones are model errors (exit 3), not config errors.
MODEL_KEYS: tuple[str, ...] = ("detector.model", "detector.labels", "reader.ocr_model", "reader.alphabet",
                               "reader.tesseract.tessdata")


def load_checked(path: str | os.PathLike[str], build: Callable[[Config], object]) -> tuple[Config, object]:
    """The config and what `build` makes of it (e.g. edge.pipeline.build_pipeline).

    ConfigError for the file's own problems; ModelError when a model file is
    missing (load_config's message, which names the key) or will not load.
    """
    cfg = load_config(path, check_files=False)
    try:
        load_config(path)
    except ConfigError as exc:
        if any(f": {key}: " in str(exc) for key in MODEL_KEYS):
            raise ModelError(str(exc)) from None
        raise
    return cfg, build(cfg)


def summary(path: str | os.PathLike[str], cfg: Config, pipeline: object) -> str:
    """One line describing what the config will run."""
    cam = cfg.camera
    source = cam.source + (f" {cam.path}" if cam.source in ("video", "images") else "")
    det = getattr(pipeline, "detector", None)
    size = getattr(det, "input_size", None)
    det_text = f"detector {cfg.detector.model.name}" + (f" {size[0]}x{size[1]}" if size else "") \
        + f" mode {cfg.detector.mode}"
    from edge.pipeline import reader_chain

    reader = getattr(pipeline, "reader", None)
    # the model's reader sits under the fallback and the second look
    model = next((r for r in reader_chain(reader) if hasattr(r, "alphabet")), None)
    alphabet, equalize = getattr(model, "alphabet", None), getattr(model, "equalize", "none")
    ocr_text = f"OCR {cfg.reader.ocr_model.name}" + (f" ({len(alphabet)} characters)" if alphabet else "") \
        + (f" (input equalised: {equalize})" if equalize != "none" else "")
    fallback = getattr(reader, "fallback", None)
    if fallback is not None:
        ocr_text += f" + tesseract {getattr(fallback, 'lang', '')}".rstrip()
    formats = ",".join(cfg.filters.formats) or "any"
    backend = cfg.backend.url or "none"
    return (f"OK {path}: camera {cam.id} ({source}), {det_text}, {ocr_text}, formats {formats}, "
            f"backend {backend}, outbox {cfg.outbox.path}")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("check-config", help="validate the config and load its models once",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH",
                   help=f"config file (default: $ANPR_EDGE_CONFIG or {DEFAULT_CONFIG})")
    return p


def run(args: argparse.Namespace) -> int:
    from edge.backend import TokenError, load_token
    from edge.cli import out
    from edge.pipeline import build_pipeline

    cfg, pipeline = load_checked(args.config, build_pipeline)
    b = cfg.backend
    if b.url and b.token_file is not None:
        try:
            load_token(b.token_file)
        except TokenError as exc:
            raise ConfigError(f"{args.config}: backend.token_file: {exc}") from None
    out(summary(args.config, cfg, pipeline))
    return 0
