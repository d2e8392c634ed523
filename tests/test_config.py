"""Config loading: defaults, messages, paths, hot reload, and fuzzed mutations."""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import (
    Config,
    ConfigError,
    DaemonConfig,
    TrackerConfig,
    load_config,
    parse_config,
    reload_thresholds,
    state_dir,
    watchdog_interval,
)
from edge.plates import FORMATS

REPO = Path(__file__).resolve().parents[1]
CONFIG_YAML = REPO / "config.yaml"
BASE = Path("/srv/anpr")
NO_STATE: dict[str, str] = {}

fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(text: str, **kw: Any) -> Config:
    kw.setdefault("check_files", False)
    kw.setdefault("env", NO_STATE)
    return parse_config(text, name="config.yaml", base_dir=BASE, **kw)


def error(text: str, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, **kw)
    message = str(info.value)
    assert "\n" not in message and message.isprintable()
    return message


# ---------------------------------------------------------------- the shipped file

def shipped() -> dict[str, Any]:
    return yaml.safe_load(CONFIG_YAML.read_text())


def test_shipped_config_equals_the_defaults() -> None:
    """config.yaml shows the defaults, so reading it changes nothing."""
    assert parse(CONFIG_YAML.read_text()) == parse("")


def test_shipped_score_thresholds_are_the_ones_the_detectors_training_chose() -> None:
    """The detector's card figures are at the threshold its training chose on
    validation frames; the daemon must run at that threshold too."""
    import json

    figures = json.loads((REPO / "tflite_graphs" / "plates" / "training_figures.json").read_text())["figures"]
    assert shipped()["detector"]["score_threshold"] == figures["score_threshold"]
    assert shipped()["detector"]["tile_score_threshold"] == figures["tile_score_threshold"]


def test_shipped_config_lists_every_key() -> None:
    def keys(obj: Any, prefix: str = "") -> set[str]:
        out = set()
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            out |= keys(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else {prefix + f.name}
        return out

    def yaml_keys(d: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out |= yaml_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    assert yaml_keys(shipped()) == keys(Config())


def test_shipped_config_comments_every_key() -> None:
    """Each key has a comment above it (or above the group of keys it is in)."""
    lines = CONFIG_YAML.read_text().splitlines()
    leaf = re.compile(r"^\s+\w+:\s*\S")
    for i, line in enumerate(lines):
        if leaf.match(line):
            j = i - 1
            while leaf.match(lines[j]):
                j -= 1
            assert lines[j].strip().startswith("#"), f"config.yaml line {i + 1} has no comment: {line.strip()}"


def test_defaults_are_sane() -> None:
    cfg = parse("")
    assert cfg.detector.threads == 1 and cfg.reader.threads == 1
    assert cfg.privacy.save_crops is False
    assert cfg.backend.url is None and cfg.backend.verify_tls is True
    assert cfg.detector.model == BASE / "tflite_graphs/plates/detect.tflite"
    assert cfg.reader.ocr_model == BASE / "tflite_graphs/ocr/ocr.tflite"
    assert cfg.reader.alphabet == BASE / "tflite_graphs/ocr/alphabet.txt"
    assert cfg.reader.tesseract.tessdata is None and cfg.reader.tesseract.lang is None
    assert cfg.outbox.path == BASE / "state" / "outbox.sqlite"
    assert cfg.privacy.crops_dir == BASE / "state" / "crops"


def test_config_is_frozen() -> None:
    cfg = parse("")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.tracker.max_gap_s = 3  # type: ignore[misc]


# ---------------------------------------------------------------- messages

@pytest.mark.parametrize("text, message", [
    ("detector:\n  score_threshold: high\n",
     "config.yaml: detector.score_threshold: expected a number between 0 and 1, got 'high'"),
    ("reader:\n  ocr_modle: x.tflite\n",
     "config.yaml: reader.ocr_modle: unknown key (did you mean ocr_model?)"),
    ("detector:\n  score_threshold: 1.5\n",
     "config.yaml: detector.score_threshold: expected a number between 0 and 1, got 1.5"),

    ("detector:\n  threads: 0\n",
     "config.yaml: detector.threads: expected an integer between 1 and 64, got 0"),
    ("detector:\n  threads: 2.5\n",
     "config.yaml: detector.threads: expected an integer between 1 and 64, got 2.5"),
    ("detector:\n  mode: tile\n",
     "config.yaml: detector.mode: expected one of 'auto', 'full', 'roi', 'tiles', got 'tile' (did you mean tiles?)"),
    ("detector:\n  roi: [0.5, 0, 0.4, 1]\n",
     "config.yaml: detector.roi: expected [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got [0.5, 0.0, 0.4, 1.0]"),
    ("detector:\n  roi: [0, 0, 1]\n",
     "config.yaml: detector.roi: expected a list of 4 numbers between 0 and 1, got [0, 0, 1]"),
    ("camera:\n  realtime: yes please\n",
     "config.yaml: camera.realtime: expected true or false, got 'yes please'"),
    ("camera:\n  source: video\n",
     "config.yaml: camera.path: required when camera.source is 'video'"),
    ("camera:\n  reconnect_initial_s: 60\n",
     "config.yaml: camera.reconnect_initial_s: must not exceed camera.reconnect_max_s (30), got 60"),
    ("filters:\n  min_length: 9\n  max_length: 5\n",
     "config.yaml: filters.min_length: must not exceed filters.max_length (5), got 9"),
    ("filters:\n  roi_polygon: [[0, 0], [1, 0], [1, 2]]\n",
     "config.yaml: filters.roi_polygon[2][1]: expected a number between 0 and 1, got 2"),
    ("filters:\n  roi_polygon: [[0, 0], [1, 0]]\n",
     "config.yaml: filters.roi_polygon: expected at least 3 [x, y] points, got 2"),
    ("filters:\n  formats: CZ\n", "config.yaml: filters.formats: expected a list, got 'CZ'"),
    ("filters:\n  formats: [CZ, 7]\n", "config.yaml: filters.formats[1]: expected a string, got 7"),
    ("reader:\n  tesseract:\n    blur_kernel: 4\n",
     "config.yaml: reader.tesseract.blur_kernel: expected 0 or 1 (off) or an odd integer, got 4"),
    ("reader:\n  second_look:\n    recrops: [[0.1, 0, 0.1, 0], [0.5, 0, 0, 0]]\n",
     "config.yaml: reader.second_look.recrops[1][0]: expected a number between -0.5 and 0.45, got 0.5"),
    ("reader:\n  second_look:\n    recrops: [[0.45, 0, 0.45, 0]]\n",
     "config.yaml: reader.second_look.recrops[0]: cuts off 90 % of the crop's width or height or more, "
     "got [0.45, 0.0, 0.45, 0.0]"),
    ("reader:\n  second_look:\n    recrops: [[0.1, 0.1]]\n",
     "config.yaml: reader.second_look.recrops[0]: expected a list of 4 numbers between -0.5 and 0.45, got [0.1, 0.1]"),
    ("backend:\n  url: example.org\n",
     "config.yaml: backend.url: expected a URL like http://host/path, got 'example.org'"),
    ("daemon:\n  watchdog_s: soon\n",
     "config.yaml: daemon.watchdog_s: expected a number between 0 and 3600 or 'auto', got 'soon'"),
    ("tracker:\n  max_gap_s: .nan\n",
     "config.yaml: tracker.max_gap_s: expected a number > 0 and <= 600, got nan"),
    ("tracker: 5\n", "config.yaml: tracker: expected a mapping of keys, got 5"),
    ("- camera\n", "config.yaml: expected a mapping of sections at the top level, got ['camera']"),
    ("camra:\n  id: x\n", "config.yaml: camra: unknown key (did you mean camera?)"),
])
def test_messages(text: str, message: str) -> None:
    assert error(text) == message


def test_unknown_key_without_a_close_match_lists_the_keys() -> None:
    assert error("daemon:\n  zzz: 1\n") == (
        "config.yaml: daemon.zzz: unknown key (expected one of: watchdog_s, log_level, stats_interval_s)")


def test_yaml_syntax_error_names_the_line() -> None:
    message = error("camera:\n  id: cam0\n  width: [1280\ndetector: {}\n")
    assert message.startswith("config.yaml: line ") and "YAML syntax error" in message


def test_duplicate_keys_are_errors() -> None:
    assert error("tracker:\n  max_gap_s: 1\n  max_gap_s: 2\n") == (
        "config.yaml: line 3, column 3: YAML syntax error: duplicate key 'max_gap_s'")


def test_unsafe_tags_are_errors() -> None:
    assert "YAML syntax error" in error("camera: !!python/object/apply:os.system ['true']\n")


def test_empty_sections_take_defaults() -> None:
    assert parse("camera:\ntracker: {}\n") == parse("")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"camera:\n  id: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"not UTF-8"):
        load_config(path, check_files=False)


def test_formats_default_to_the_plate_registry_case_insensitively() -> None:
    names = [n.lower() for n in FORMATS] + ["all"]
    assert parse(f"filters:\n  formats: [{', '.join(names)}]\n").filters.formats == tuple(names)
    known = ", ".join(sorted({*FORMATS, "ALL"}))
    assert error("filters:\n  formats: [CZ, XX]\n") == (
        f"config.yaml: filters.formats[1]: unknown plate format 'XX' (known: {known})")


def test_known_formats() -> None:
    known = {"CZ", "SK", "DE"}
    assert parse("filters:\n  formats: [CZ, DE]\n", known_formats=known).filters.formats == ("CZ", "DE")
    assert error("filters:\n  formats: [CZ, skk]\n", known_formats=known) == (
        "config.yaml: filters.formats[1]: unknown plate format 'skk' (did you mean SK?)")


# ---------------------------------------------------------------- files and paths

MODEL_FILES = ("tflite_graphs/plates/detect.tflite", "tflite_graphs/ocr/ocr.tflite",
               "tflite_graphs/ocr/alphabet.txt")


def make_models(root: Path) -> None:
    for rel in MODEL_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_models(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text("camera:\n  source: images\n  path: frames\n")
    (tmp_path / "frames").mkdir()
    monkeypatch.chdir("/")
    cfg = load_config(path, env={})
    assert cfg.camera.path == tmp_path / "frames"
    assert cfg.detector.model == tmp_path / "tflite_graphs/plates/detect.tflite"
    assert cfg.outbox.path == tmp_path / "state" / "outbox.sqlite"


def test_missing_model_file(tmp_path: Path) -> None:
    make_models(tmp_path)
    (tmp_path / "tflite_graphs/ocr/ocr.tflite").unlink()
    path = tmp_path / "config.yaml"
    path.write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: reader.ocr_model: file not found: {tmp_path / 'tflite_graphs/ocr/ocr.tflite'}")
    load_config(path, check_files=False)


def test_file_checks_skip_disabled_sections(tmp_path: Path) -> None:
    make_models(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text("reader:\n  tesseract:\n    tessdata: td\n")
    with pytest.raises(ConfigError, match=r"reader\.tesseract\.tessdata: directory not found: "):
        load_config(path)
    path.write_text("reader:\n  tesseract:\n    enabled: false\n    tessdata: td\nbackend:\n  token_file: missing\n")
    load_config(path)  # no tessdata needed, no backend configured
    path.write_text("backend:\n  url: https://example.invalid/api\n  token_file: missing\n"
                    "reader:\n  tesseract:\n    enabled: false\n")
    with pytest.raises(ConfigError, match=r"backend\.token_file: file not found: "):
        load_config(path)


def test_state_dir() -> None:
    assert state_dir(BASE, {}) == BASE / "state"
    assert state_dir(BASE, {"STATE_DIRECTORY": "/var/lib/anpr-edge"}) == Path("/var/lib/anpr-edge")
    assert state_dir(BASE, {"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}) == Path("/var/lib/a")
    cfg = parse("", env={"STATE_DIRECTORY": "/var/lib/anpr-edge"})
    assert cfg.outbox.path == Path("/var/lib/anpr-edge/outbox.sqlite")
    assert cfg.privacy.crops_dir == Path("/var/lib/anpr-edge/crops")
    assert parse("outbox:\n  path: /tmp/o.sqlite\n", env={"STATE_DIRECTORY": "/x"}).outbox.path == Path("/tmp/o.sqlite")


def test_watchdog_interval() -> None:
    auto = DaemonConfig()
    assert watchdog_interval(auto, {}) is None
    assert watchdog_interval(auto, {"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval(DaemonConfig(watchdog_s=5), {"WATCHDOG_USEC": "30000000"}) == 5.0
    assert watchdog_interval(DaemonConfig(watchdog_s=0), {}) is None


def test_plate_log_level() -> None:
    assert parse("privacy:\n  log_plates: false\n").privacy.plate_log_level is None
    assert parse("privacy:\n  log_plates: true\n").privacy.plate_log_level == logging.INFO
    assert parse("").privacy.plate_log_level == logging.DEBUG


def test_reload_thresholds() -> None:
    old = parse("")
    new = parse("tracker:\n  max_gap_s: 2\ndetector:\n  score_threshold: 0.7\n  threads: 2\n"
                "camera:\n  fps: 5\n")
    merged, ignored = reload_thresholds(old, new)
    assert merged.tracker == TrackerConfig(max_gap_s=2.0)
    assert merged.detector.score_threshold == 0.7
    assert merged.detector.threads == 1 and merged.camera.fps == 10.0
    assert ignored == ("camera.fps", "detector.threads")
    assert reload_thresholds(old, old) == (old, ())


# ---------------------------------------------------------------- fuzzing

def leaves(d: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for k, v in d.items():
        out += leaves(v, prefix + (k,)) if isinstance(v, dict) else [prefix + (k,)]
    return out


def sections(d: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for k, v in d.items():
        if isinstance(v, dict):
            out += sections(v, prefix + (k,))
    return out


VALID = shipped()
LEAVES = leaves(VALID)
SECTIONS = sections(VALID)


def mutated(path: tuple[str, ...], value: Any) -> str:
    d = copy.deepcopy(VALID)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return yaml.safe_dump(d, sort_keys=False)


scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12)
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
never_a_leaf = st.dictionaries(st.text(min_size=1, max_size=6), anything, min_size=1, max_size=3) \
    | st.lists(st.dictionaries(st.text(max_size=4), scalars, min_size=1), min_size=1, max_size=2)
identifier = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


def numeric_leaf(path: tuple[str, ...]) -> bool:
    node: Any = VALID
    for k in path:
        node = node[k]
    return type(node) in (int, float) and path != ("camera", "device")


@fuzz
@given(path=st.sampled_from(LEAVES), value=never_a_leaf)
def test_wrong_type_always_names_the_key(path: tuple[str, ...], value: Any) -> None:
    assert error(mutated(path, value)).startswith(f"config.yaml: {'.'.join(path)}")


@fuzz
@given(path=st.sampled_from([p for p in LEAVES if numeric_leaf(p)]),
       value=st.text(max_size=10) | st.booleans() | st.lists(st.integers(), max_size=2))
def test_non_number_for_a_number_names_the_key(path: tuple[str, ...], value: Any) -> None:
    assert error(mutated(path, value)).startswith(f"config.yaml: {'.'.join(path)}: expected ")


@fuzz
@given(path=st.sampled_from(LEAVES), value=anything)
def test_any_value_gives_a_config_or_a_config_error_naming_the_key(path: tuple[str, ...], value: Any) -> None:
    try:
        parse(mutated(path, value))
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.isprintable()
        assert ".".join(path) in message


@fuzz
@given(section=st.sampled_from(SECTIONS), key=identifier, value=anything)
def test_unknown_keys_are_named(section: tuple[str, ...], key: str, value: Any) -> None:
    d = copy.deepcopy(VALID)
    node = d
    for k in section:
        node = node[k]
    if key in node:
        return
    node[key] = value
    message = error(yaml.safe_dump(d, sort_keys=False))
    assert message.startswith(f"config.yaml: {'.'.join(section + (key,))}: unknown key")


@fuzz
@given(text=st.text(max_size=200))
def test_garbage_yaml_never_raises_anything_else(text: str) -> None:
    try:
        parse(text)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("config.yaml: ")


@fuzz
@given(data=st.data())
def test_edited_yaml_never_raises_anything_else(data: st.DataObject) -> None:
    text = CONFIG_YAML.read_text()
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.sampled_from(["", ":", "- ", "[", "{", "\n", "  ", "'", "#", "&a ", "*a", "!!", "\t"])
                           | st.text(max_size=4))
        text = text[:at] + insert + text[at + cut:]
    try:
        parse(text)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("config.yaml: ")
