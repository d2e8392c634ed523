"""Daemon configuration: typed frozen dataclasses, loaded and validated once.

The dataclasses below are the schema. `load_config` walks their fields and
type hints generically (nested dataclasses, bool, int, float, str, Path,
Optional/unions, Literal enums, tuples for YAML lists), so adding a key is
adding a field; ranges, file checks and small custom checks sit in the
field's metadata. Every problem becomes one `ConfigError` whose text is one
line naming the file and the key path, e.g.

    config.yaml: detector.score_threshold: expected a number between 0 and 1, got 'high'

Relative paths resolve against the config file's directory, never the
working directory, so the daemon behaves the same wherever it is started.

Hot reload (SIGHUP): only the keys in `HOT_RELOAD_KEYS` (thresholds and
filters, read afresh per frame or per track) may change in a running daemon;
see `reload_thresholds`. Everything else (camera, models, threads, detector
mode/roi, backend, outbox, privacy storage, watchdog) needs a restart.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import math
import os
import types
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

__all__ = [
    "BackendConfig", "CameraConfig", "Config", "ConfigError", "DaemonConfig",
    "DetectorConfig", "FiltersConfig", "HOT_RELOAD_KEYS", "OutboxConfig",
    "PrivacyConfig", "ReaderConfig", "SecondLookConfig", "TesseractConfig", "TrackerConfig",
    "load_config", "parse_config", "reload_thresholds", "state_dir", "watchdog_interval",
]

Point = tuple[float, float]


class ConfigError(Exception):
    """A configuration problem, as one printable line: 'file: key.path: problem'."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class _Invalid(Exception):
    """Raised inside validation; `path` is relative to the object being built."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _one_line(text: str) -> str:
    # Escape every non-printable character (newlines, tabs, U+2028...) so a
    # hostile key or value can never split the message over lines.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# --------------------------------------------------------------------------
# Field helpers: the schema's metadata vocabulary.

def _opt(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None,
         ge: float | None = None, gt: float | None = None, le: float | None = None,
         exists: Literal["file", "dir", "any"] | None = None,
         check: Callable[[Any], str | None] | None = None) -> Any:
    """A dataclass field with validation metadata.

    ge/gt/le bound numbers (also every number inside a list); exists names a
    path that must exist when files are checked; check returns an error text
    or None for anything else about the single value.
    """
    meta = {"ge": ge, "gt": gt, "le": le, "exists": exists, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _nonempty(value: Any) -> str | None:
    return "must not be empty" if isinstance(value, str) and not value.strip() else None


def _odd_or_zero(value: int) -> str | None:
    return None if value <= 1 or value % 2 == 1 else f"expected 0 or 1 (off) or an odd integer, got {value}"


def _url(value: str | None) -> str | None:
    if value is None or "://" in value:
        return None
    return f"expected a URL like http://host/path, got {value!r}"


# --------------------------------------------------------------------------
# The schema.

@dataclass(frozen=True)
class CameraConfig:
    """Where frames come from (see edge.sources.open_source)."""

    id: str = _opt("cam0", check=_nonempty)
    source: Literal["picamera2", "opencv", "video", "images"] = "picamera2"
    device: int | str = 0
    url: str | None = _opt(None, check=_url)
    path: Path | None = _opt(None, exists="any")
    width: int = _opt(1280, ge=16, le=8192)
    height: int = _opt(720, ge=16, le=8192)
    fps: float = _opt(10.0, gt=0, le=240)
    realtime: bool = False
    reconnect_initial_s: float = _opt(1.0, gt=0, le=3600)
    reconnect_max_s: float = _opt(30.0, gt=0, le=3600)

    def _check(self) -> None:
        if self.source in ("video", "images") and self.path is None:
            raise _Invalid(("path",), f"required when camera.source is {self.source!r}")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise _Invalid(("reconnect_initial_s",), "must not exceed camera.reconnect_max_s "
                           f"({self.reconnect_max_s:g}), got {self.reconnect_initial_s:g}")


@dataclass(frozen=True)
class DetectorConfig:
    """SSD plate detector and where in the frame it looks."""

    model: Path = _opt(Path("tflite_graphs/plates/detect.tflite"), exists="file")
    labels: Path | None = _opt(None, exists="file")
    threads: int = _opt(1, ge=1, le=64)
    score_threshold: float = _opt(0.35, ge=0, le=1)
    tile_score_threshold: float = _opt(0.4, ge=0, le=1)
    mode: Literal["auto", "full", "roi", "tiles"] = "auto"
    roi: tuple[float, float, float, float] = _opt((0.0, 0.0, 1.0, 1.0), ge=0, le=1)
    tiles: tuple[int, int] = _opt((2, 2), ge=1, le=8)
    tile_overlap: float = _opt(0.2, ge=0, le=0.9)
    merge_iou: float = _opt(0.5, ge=0, le=1)
    max_detections: int = _opt(10, ge=1, le=1000)
    min_plate_width_px: int = _opt(40, ge=1, le=8192)

    def _check(self) -> None:
        x0, y0, x1, y1 = self.roi
        if x0 >= x1 or y0 >= y1:
            raise _Invalid(("roi",), f"expected [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {list(self.roi)}")


@dataclass(frozen=True)
class TesseractConfig:
    """Tesseract fallback for crops the TFLite OCR is unsure about.

    Mirrors edge.tesseract_reader.TesseractConfig (tessdata -> tessdata_dir).
    """

    _files_when = "enabled"

    enabled: bool = True
    fallback_below: float = _opt(0.6, ge=0, le=1)
    tessdata: Path | None = _opt(None, exists="dir")
    lang: str | None = _opt(None, check=_nonempty)
    blur_kernel: int = _opt(3, ge=0, le=31, check=_odd_or_zero)
    line_height: int = _opt(60, ge=8, le=512)
    border: float = _opt(0.3, ge=0, le=5)
    psm: int = _opt(7, ge=0, le=13)


@dataclass(frozen=True)
class SecondLookConfig:
    """Re-read doubtful crops trimmed and padded (see edge.second_look, whose defaults these are).

    recrops: [left, top, right, bottom] fractions to cut off (negative: pad).
    """

    below: float = _opt(0.8, ge=0, le=1)
    recrops: tuple[tuple[float, float, float, float], ...] = _opt(
        ((-0.06, -0.06, -0.06, -0.06), (0.06, 0, 0, 0), (0, 0, 0.06, 0), (0.06, 0, 0.06, 0),
         (0, 0.1, 0, 0.1), (0.06, 0.08, 0.06, 0.08)), ge=-0.5, le=0.45)

    def _check(self) -> None:
        for i, (left, top, right, bottom) in enumerate(self.recrops):
            if left + right >= 0.9 or top + bottom >= 0.9:
                raise _Invalid(("recrops", i), "cuts off 90 % of the crop's width or height or more, "
                               f"got {[left, top, right, bottom]}")


@dataclass(frozen=True)
class ReaderConfig:
    """OCR of each detected plate crop."""

    ocr_model: Path = _opt(Path("tflite_graphs/ocr/ocr.tflite"), exists="file")
    alphabet: Path = _opt(Path("tflite_graphs/ocr/alphabet.txt"), exists="file")
    threads: int = _opt(1, ge=1, le=64)
    min_confidence: float = _opt(0.5, ge=0, le=1)
    min_fix_prob: float = _opt(0.02, ge=0, le=1)
    crop_margin: float = _opt(0.05, ge=0, le=1)
    second_look: SecondLookConfig = _opt(factory=SecondLookConfig)
    tesseract: TesseractConfig = _opt(factory=TesseractConfig)


@dataclass(frozen=True)
class FiltersConfig:
    """Which reads count as plates at all."""

    min_length: int = _opt(4, ge=1, le=20)
    max_length: int = _opt(10, ge=1, le=20)
    formats: tuple[str, ...] = _opt((), check=_nonempty)
    require_format: bool = False
    roi_polygon: tuple[Point, ...] | None = _opt(None, ge=0, le=1)

    def _check(self) -> None:
        if self.min_length > self.max_length:
            raise _Invalid(("min_length",), "must not exceed filters.max_length "
                           f"({self.max_length}), got {self.min_length}")
        if self.roi_polygon is not None and len(self.roi_polygon) < 3:
            raise _Invalid(("roi_polygon",), f"expected at least 3 [x, y] points, got {len(self.roi_polygon)}")


@dataclass(frozen=True)
class TrackerConfig:
    """Grouping reads of one vehicle across frames (edge.tracker)."""

    max_gap_s: float = _opt(1.0, gt=0, le=600)
    max_delay_s: float = _opt(10.0, gt=0, le=3600)
    iou_match: float = _opt(0.2, ge=0, le=1)
    text_similarity: float = _opt(0.6, ge=0, le=1)
    max_shift_per_s: float = _opt(30.0, ge=0, le=10000)
    min_frames: int = _opt(3, ge=1, le=1000)
    min_confidence: float = _opt(0.6, ge=0, le=1)


@dataclass(frozen=True)
class BackendConfig:
    """The vignette backend results are POSTed to (null url: none)."""

    _files_when = "url"

    url: str | None = _opt(None, check=_url)
    token_file: Path | None = _opt(None, exists="file")
    token_env: str | None = "ANPR_TOKEN"
    timeout_s: float = _opt(10.0, gt=0, le=600)
    verify_tls: bool = True
    ca_file: Path | None = _opt(None, exists="file")
    backoff_initial_s: float = _opt(2.0, gt=0, le=86400)
    backoff_max_s: float = _opt(300.0, gt=0, le=86400)

    def _check(self) -> None:
        if self.backoff_initial_s > self.backoff_max_s:
            raise _Invalid(("backoff_initial_s",), "must not exceed backend.backoff_max_s "
                           f"({self.backoff_max_s:g}), got {self.backoff_initial_s:g}")


@dataclass(frozen=True)
class OutboxConfig:
    """SQLite outbox between the tracker and the backend.

    path is never None after load_config: null becomes state_dir()/outbox.sqlite.
    """

    path: Path | None = None
    max_rows: int = _opt(50_000, ge=1)
    keep_delivered_days: float = _opt(7.0, ge=0, le=3650)


@dataclass(frozen=True)
class PrivacyConfig:
    """Plate images and texts are personal data: off or quiet by default.

    crops_dir is never None after load_config: null becomes state_dir()/crops.
    """

    save_crops: bool = False
    crops_dir: Path | None = None
    keep_days: float = _opt(7.0, ge=0, le=3650)
    max_mb: float = _opt(500.0, gt=0)
    log_plates: bool | Literal["debug", "info", "warning"] = "debug"

    @property
    def plate_log_level(self) -> int | None:
        """The logging level plate texts may be logged at; None: never."""
        if self.log_plates is False:
            return None
        if self.log_plates is True:
            return logging.INFO
        return logging.getLevelName(self.log_plates.upper())


@dataclass(frozen=True)
class DaemonConfig:
    """Process-level settings."""

    watchdog_s: float | Literal["auto"] = _opt("auto", ge=0, le=3600)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    stats_interval_s: float = _opt(60.0, gt=0, le=86400)


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = _opt(factory=CameraConfig)
    detector: DetectorConfig = _opt(factory=DetectorConfig)
    reader: ReaderConfig = _opt(factory=ReaderConfig)
    filters: FiltersConfig = _opt(factory=FiltersConfig)
    tracker: TrackerConfig = _opt(factory=TrackerConfig)
    backend: BackendConfig = _opt(factory=BackendConfig)
    outbox: OutboxConfig = _opt(factory=OutboxConfig)
    privacy: PrivacyConfig = _opt(factory=PrivacyConfig)
    daemon: DaemonConfig = _opt(factory=DaemonConfig)


# Keys (or whole sections) a running daemon may take from a reloaded file.
HOT_RELOAD_KEYS: frozenset[str] = frozenset({
    "detector.score_threshold",
    "detector.tile_score_threshold",
    "detector.max_detections",
    "detector.min_plate_width_px",
    "reader.min_confidence",
    "reader.second_look.below",
    "reader.tesseract.fallback_below",
    "filters",
    "tracker",
    "privacy.log_plates",
    "daemon.log_level",
    "daemon.stats_interval_s",
})


# --------------------------------------------------------------------------
# Loading.

def load_config(path: str | os.PathLike[str], *, check_files: bool = True,
                env: Mapping[str, str] | None = None,
                known_formats: Collection[str] | None = None) -> Config:
    """Read, validate and resolve the config file; raise ConfigError on any problem.

    check_files=False skips the existence checks (models may not exist yet in
    tests); known_formats is the set of names filters.formats may use
    (default: edge.plates' formats and "all"; case-insensitive); env
    (default os.environ) supplies $STATE_DIRECTORY.
    """
    name = os.fspath(path)
    file = Path(name)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return parse_config(text, name=name, base_dir=file.resolve().parent, check_files=check_files,
                        env=env, known_formats=known_formats)


def parse_config(text: str, *, name: str = "config.yaml", base_dir: str | os.PathLike[str] = ".",
                 check_files: bool = True, env: Mapping[str, str] | None = None,
                 known_formats: Collection[str] | None = None) -> Config:
    """load_config on text already read; name prefixes errors, base_dir anchors paths."""
    env = os.environ if env is None else env
    raw = _parse_yaml(name, text)
    base = Path(base_dir).resolve()
    try:
        if raw is not None and not isinstance(raw, dict):
            raise _Invalid((), f"expected a mapping of sections at the top level, got {_show(raw)}")
        cfg = _build(Config, raw, (), _Ctx(base))
        cfg = _resolve_state_paths(cfg, base, env)
        _check_formats(cfg.filters.formats, _plate_formats() if known_formats is None else known_formats)
        if check_files:
            _check_files(cfg, ())
    except _Invalid as exc:
        where = _key_path(exc.path)
        raise ConfigError(f"{name}: {where + ': ' if where else ''}{exc.message}") from None
    return cfg


def state_dir(base_dir: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Path:
    """Where mutable state lives: $STATE_DIRECTORY under systemd, else <config dir>/state.

    systemd's StateDirectory= sets $STATE_DIRECTORY (to /var/lib/anpr-edge);
    with several directories it is colon-separated and the first one is used.
    """
    env = os.environ if env is None else env
    first = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(first) if first else Path(base_dir) / "state"


def watchdog_interval(cfg: DaemonConfig, env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings, or None for no watchdog.

    "auto" pings at half of systemd's WatchdogSec= ($WATCHDOG_USEC) when
    systemd asked for one; a number is the interval itself; 0 turns it off.
    """
    env = os.environ if env is None else env
    if cfg.watchdog_s == "auto":
        try:
            usec = int(env.get("WATCHDOG_USEC", "0"))
        except ValueError:
            return None
        return usec / 2e6 if usec > 0 else None
    return float(cfg.watchdog_s) or None


def reload_thresholds(old: Config, new: Config) -> tuple[Config, tuple[str, ...]]:
    """Merge a reloaded config into the running one for SIGHUP.

    Returns the config to run with (hot keys from new, the rest from old) and
    the key paths that changed but need a restart, for the caller to log.
    """
    ignored: list[str] = []
    merged = _merge(old, new, (), ignored)
    return merged, tuple(ignored)


def _merge(old: Any, new: Any, path: tuple[str, ...], ignored: list[str]) -> Any:
    dotted = ".".join(path)
    if path and any(dotted == k or dotted.startswith(k + ".") for k in HOT_RELOAD_KEYS):
        return new
    if dataclasses.is_dataclass(old) and not isinstance(old, type):
        changes = {f.name: _merge(getattr(old, f.name), getattr(new, f.name), path + (f.name,), ignored)
                   for f in dataclasses.fields(old)}
        return dataclasses.replace(old, **changes)
    if old != new:
        ignored.append(dotted)
    return old


# --------------------------------------------------------------------------
# The generic validator.

@dataclass(frozen=True)
class _Ctx:
    base: Path


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "unhashable key", key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_SafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(name: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_SafeLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{name}: {where}YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: YAML error: {exc}") from None
    except Exception as exc:  # any parser failure on odd input is a config error
        raise ConfigError(f"{name}: YAML error: {type(exc).__name__}: {exc}") from None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _build(cls: type, value: Any, path: tuple[str | int, ...], ctx: _Ctx) -> Any:
    """One dataclass from one YAML mapping (null: all defaults)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _Invalid(path, f"expected a mapping of keys, got {_show(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            raise _Invalid(path + (_key_name(key),), _unknown_key(key, fields))
    hints = _hints(cls)
    kwargs = {key: _convert(raw, hints[key], path + (key,), fields[key].metadata, ctx)
              for key, raw in value.items()}
    for key in fields.keys() - kwargs.keys():  # absent sections still get their paths resolved
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _build(hints[key], None, path + (key,), ctx)
    obj = cls(**kwargs)
    obj = _resolve_paths(obj, ctx.base)
    check = getattr(obj, "_check", None)
    if check is not None:
        try:
            check()
        except _Invalid as exc:
            raise _Invalid(path + exc.path, exc.message) from None
    return obj


def _convert(value: Any, tp: Any, path: tuple[str | int, ...], meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    out = _convert_type(value, tp, path, meta, ctx)
    check = meta.get("check")
    # Lists are checked item by item, as each item passes through here.
    if check is not None and out is not None and not isinstance(out, tuple):
        problem = check(out)
        if problem:
            raise _Invalid(path, problem)
    return out


def _convert_type(value: Any, tp: Any, path: tuple[str | int, ...], meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, path, ctx)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert_type(value, options[0], path, meta, ctx)
        for option in options:
            try:
                return _convert_type(value, option, path, meta, ctx)
            except _Invalid:
                continue
        raise _Invalid(path, _expected(tp, meta, value))
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in get_args(tp)):
            return value
        return _fail(path, tp, meta, value, choices=[a for a in get_args(tp) if isinstance(a, str)])
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list):
            return _fail(path, tp, meta, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], path + (i,), meta, ctx) for i, v in enumerate(value))
        if len(value) != len(args):
            return _fail(path, tp, meta, value)
        return tuple(_convert(v, a, path + (i,), meta, ctx) for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        return value if type(value) is bool else _fail(path, tp, meta, value)
    if tp is int:
        if type(value) is not int:
            return _fail(path, tp, meta, value)
        return _in_range(value, path, tp, meta)
    if tp is float:
        if type(value) not in (int, float):
            return _fail(path, tp, meta, value)
        try:
            number = float(value)
        except OverflowError:
            return _fail(path, tp, meta, value)
        if not math.isfinite(number):
            return _fail(path, tp, meta, value)
        return _in_range(number, path, tp, meta, raw=value)
    if tp is str:
        return value if isinstance(value, str) else _fail(path, tp, meta, value)
    if tp is Path:
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            return _fail(path, tp, meta, value)
        return Path(os.path.expandvars(os.path.expanduser(value)))
    raise TypeError(f"config schema uses unsupported type {tp!r} at {_key_path(path)}")


def _in_range(value: float, path: tuple[str | int, ...], tp: Any, meta: Mapping[str, Any],
              raw: Any = None) -> Any:
    ge, gt, le = meta.get("ge"), meta.get("gt"), meta.get("le")
    if (ge is not None and value < ge) or (gt is not None and value <= gt) or (le is not None and value > le):
        _fail(path, tp, meta, value if raw is None else raw)
    return value


def _fail(path: tuple[str | int, ...], tp: Any, meta: Mapping[str, Any], value: Any,
          choices: list[str] | None = None) -> Any:
    message = _expected(tp, meta, value)
    if choices and isinstance(value, str):
        close = difflib.get_close_matches(value, choices, n=1)
        if close:
            message += f" (did you mean {close[0]}?)"
    raise _Invalid(path, message)


def _expected(tp: Any, meta: Mapping[str, Any], value: Any) -> str:
    return f"expected {_describe(tp, meta)}, got {_show(value)}"


def _describe(tp: Any, meta: Mapping[str, Any]) -> str:
    """Plain-words description of what a type (with its bounds) accepts."""
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a, meta) for a in get_args(tp))
    if origin is Literal:
        names = ", ".join(repr(a) for a in get_args(tp))
        return names if len(get_args(tp)) == 1 else f"one of {names}"
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return "a list"
        if len(set(args)) == 1 and args[0] in (int, float):
            noun = "integers" if args[0] is int else "numbers"
            return f"a list of {len(args)} {noun}{_bounds(meta)}"
        return f"a list of {len(args)} items"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer" + _bounds(meta)
    if tp is float:
        return "a number" + _bounds(meta)
    if tp is str:
        return "a string"
    if tp is Path:
        return "a path"
    if dataclasses.is_dataclass(tp):
        return "a mapping of keys"
    return str(tp)


def _bounds(meta: Mapping[str, Any]) -> str:
    ge, gt, le = meta.get("ge"), meta.get("gt"), meta.get("le")
    if ge is not None and le is not None:
        return f" between {ge:g} and {le:g}"
    parts = [f"{op} {bound:g}" for op, bound in ((">=", ge), (">", gt), ("<=", le)) if bound is not None]
    return " " + " and ".join(parts) if parts else ""


def _show(value: Any) -> str:
    """A short one-line rendering of a YAML value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _key_name(key: Any) -> str:
    return key if isinstance(key, str) else _show(key)


def _key_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _unknown_key(key: Any, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(key), list(fields), n=1) if isinstance(key, str) else []
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key (expected one of: {', '.join(fields)})"


def _resolve_paths(obj: Any, base: Path) -> Any:
    """Make this dataclass's relative Path fields absolute, against base."""
    changes = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Path) and not value.is_absolute():
            changes[f.name] = base / value
    return dataclasses.replace(obj, **changes) if changes else obj


def _resolve_state_paths(cfg: Config, base: Path, env: Mapping[str, str]) -> Config:
    state = state_dir(base, env)
    outbox, privacy = cfg.outbox, cfg.privacy
    if outbox.path is None:
        outbox = dataclasses.replace(outbox, path=state / "outbox.sqlite")
    if privacy.crops_dir is None:
        privacy = dataclasses.replace(privacy, crops_dir=state / "crops")
    return dataclasses.replace(cfg, outbox=outbox, privacy=privacy)


def _plate_formats() -> frozenset[str]:
    from edge.plates import FORMATS  # the registry the reader uses

    return frozenset(FORMATS) | {"ALL"}


def _check_formats(formats: tuple[str, ...], known: Collection[str]) -> None:
    upper = {k.upper() for k in known}
    for i, name in enumerate(formats):
        if name.strip().upper() not in upper:
            close = difflib.get_close_matches(name.strip().upper(), sorted(upper), n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(upper))}"
            raise _Invalid(("filters", "formats", i), f"unknown plate format {name!r} ({hint})")


def _check_files(obj: Any, path: tuple[str, ...]) -> None:
    """Existence of every path field marked `exists`, in enabled sections only."""
    gate = getattr(type(obj), "_files_when", None)
    if gate is not None and not getattr(obj, gate):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_files(value, path + (f.name,))
            continue
        kind = f.metadata.get("exists")
        if kind is None or value is None:
            continue
        try:
            ok = {"file": value.is_file, "dir": value.is_dir, "any": value.exists}[kind]()
        except OSError:
            ok = False
        if not ok:
            what = {"file": "file", "dir": "directory", "any": "path"}[kind]
            raise _Invalid(path + (f.name,), f"{what} not found: {value}")
