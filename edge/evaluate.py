"""OCR accuracy and speed on labelled plate crops: the `eval-ocr` command.

Reads every crop with the TFLite reader, with Tesseract, and scores the
combination that the daemon runs (Tesseract only for doubtful TFLite reads).
The combined reader's decisions come from CombinedReader itself, replayed on
the two readers' results, so each crop is read once per engine and the
combined time is the time of the engines it actually called.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.argtypes import fraction, positive_int
from edge.cli import out
from edge.plates import PlateFormat, get_formats, normalise
from edge.preprocess import crop_box
from edge.reader import DEFAULT_MODEL, CombinedReader, Reader, Scorer
from edge.second_look import DEFAULT_BELOW
from edge.types import Reading

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
READERS = ("tflite", "tesseract", "combined")
DEFAULT_FALLBACK_BELOW = 0.6


class DataError(Exception):
    """Evaluation input (crops, labels, boxes) missing or unusable; one line."""


@dataclass(frozen=True, eq=False)
class Sample:
    name: str
    image: np.ndarray  # gray uint8 plate crop
    truth: str         # A-Z0-9


@dataclass(frozen=True)
class Scored:
    truth: str
    reading: Reading
    ms: float


@dataclass(frozen=True)
class Summary:
    n: int
    exact: float
    exact_o0: float  # exact, counting O and 0 as one (some labels write O for 0)
    cer: float       # total edit distance / total truth length
    ms_per_crop: float  # median
    ms_mean: float = 0.0  # mean: second looks and fallbacks show here, not in the median


# ---------------------------------------------------------------- loading

def read_image(path: Path, flags: int = cv2.IMREAD_GRAYSCALE) -> np.ndarray | None:
    """The decoded image, or None (with a warning naming it) when it cannot be read."""
    img = cv2.imread(str(path), flags)
    if img is None or img.size == 0:
        log.warning("%s: unreadable image, skipped", path)
        return None
    return img


def photo_for(label: Path, named: str | None = None) -> Path | None:
    """The photo a label file describes: NAME.<image ext> beside NAME.txt/.xml
    (any case), else the file the label itself names, else None."""
    for ext in IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS):
        p = label.with_suffix(ext)
        if p.is_file():
            return p
    if named:
        p = label.parent / Path(named).name
        if p.is_file():
            return p
    return None


def _require_dir(path: Path) -> None:
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")


def find_labels(crops_dir: Path) -> Path:
    """The single .csv in the crops directory."""
    found = sorted(crops_dir.glob("*.csv"))
    if len(found) != 1:
        what = "no .csv" if not found else f"{len(found)} .csv files"
        raise DataError(f"{crops_dir}: {what} in the directory; pass --labels CSV")
    return found[0]


def load_crops(crops_dir: Path, labels: Path | None = None) -> list[Sample]:
    """Crops named by a CSV of `file,...,TEXT` rows (last column is the text).

    A first row whose file does not exist is a header and skipped; later
    rows naming missing or unreadable files are skipped with a warning.
    """
    _require_dir(crops_dir)
    labels = labels if labels is not None else find_labels(crops_dir)
    try:
        with labels.open(newline="", encoding="utf-8-sig") as f:
            rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{labels}: cannot read labels ({e})") from None
    samples: list[Sample] = []
    for k, (line, row) in enumerate(rows):
        if len(row) < 2:
            raise DataError(f"{labels}:{line}: expected file,...,TEXT")
        path = crops_dir / row[0].strip()
        if not path.is_file():
            if k > 0:
                log.warning("%s:%d: %s not found, skipped", labels, line, path)
            continue
        truth = normalise(row[-1])
        if not truth:
            log.warning("%s:%d: no A-Z0-9 text, skipped", labels, line)
            continue
        img = read_image(path)
        if img is not None:
            samples.append(Sample(row[0].strip(), img, truth))
    if not samples:
        raise DataError(f"{crops_dir}: no readable labelled images (labels {labels})")
    return samples


def _parse_box_line(txt: Path, line_no: int, line: str) -> tuple[str, tuple[float, ...], str]:
    fields = line.split("\t") if "\t" in line else line.split()
    try:
        name, x, y, w, h = fields[0].strip(), *(float(v) for v in fields[1:5])
        text = normalise("".join(fields[5:]))
    except (ValueError, IndexError):
        raise DataError(f"{txt}:{line_no}: expected NAME x y w h TEXT") from None
    if not text:
        raise DataError(f"{txt}:{line_no}: expected NAME x y w h TEXT")
    return name, (x, y, x + w, y + h), text


def load_boxes(images_dir: Path, margin: float = 0.0) -> list[Sample]:
    """Crops cut from OpenALPR-style NAME.jpg + NAME.txt (`NAME x y w h TEXT`).

    A .txt with no photo beside it and none named by a parsable first line
    (a README, notes) is not a label and is passed over.
    """
    _require_dir(images_dir)
    label_files = sorted(p for p in images_dir.glob("*.txt") if p.is_file())
    if not label_files:
        raise DataError(f"{images_dir}: no NAME.txt box labels")
    samples: list[Sample] = []
    for txt in label_files:
        try:
            lines = [(n, line) for n, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1)
                     if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{txt}: cannot read ({e})") from None
        path = photo_for(txt)
        if path is None:
            if not lines:
                continue
            try:
                named = _parse_box_line(txt, *lines[0])[0]
            except DataError:
                log.debug("%s: not a box label (no photo beside it), skipped", txt)
                continue
            path = photo_for(txt, named)
            if path is None:
                log.warning("%s: image %s not found, skipped", txt, images_dir / named)
                continue
        image = read_image(path)
        if image is None:
            continue
        for line_no, line in lines:
            _, box, text = _parse_box_line(txt, line_no, line)
            try:
                crop = crop_box(image, *box, margin=margin)
            except ValueError as e:
                log.warning("%s:%d: %s, skipped", txt, line_no, e)
                continue
            samples.append(Sample(f"{path.name}#{line_no}" if line_no > 1 else path.name, crop, text))
    if not samples:
        raise DataError(f"{images_dir}: no readable labelled images")
    return samples


# ---------------------------------------------------------------- scoring

def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (plates are short: a plain one-row DP)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def time_reader(reader: Reader, samples: Sequence[Sample]) -> list[Scored]:
    """Read every sample, timing the read call only."""
    scored = []
    for s in samples:
        t0 = time.perf_counter()
        reading = reader.read(s.image)
        scored.append(Scored(s.truth, reading, (time.perf_counter() - t0) * 1e3))
    return scored


class _Replay:
    """A reader that already read the current crop: replays its result, and
    scores texts with `scorer` (timed) if it is given one."""

    def __init__(self, scored: Sequence[Scored], scorer: Scorer | None = None) -> None:
        self.scored, self.index, self.called = scored, 0, False
        self.score_ms = 0.0
        if scorer is not None:
            self._scorer = scorer
            self.likelihoods = self._likelihoods

    def read(self, gray_crop: np.ndarray) -> Reading:
        self.called = True
        return self.scored[self.index].reading

    def _likelihoods(self, gray_crop: np.ndarray, texts: Iterable[str]) -> tuple[float, ...]:
        t0 = time.perf_counter()
        out = self._scorer.likelihoods(gray_crop, texts)
        self.score_ms += (time.perf_counter() - t0) * 1e3
        return out


def combine(samples: Sequence[Sample], primary: Sequence[Scored], fallback: Sequence[Scored],
            fallback_below: float, scorer: Scorer | None = None) -> tuple[list[Scored], float]:
    """CombinedReader's results and the fraction of crops it sent to the fallback;
    `scorer` is the primary reader itself when it can score texts (edge.reader.Scorer)."""
    a, b = _Replay(primary, scorer), _Replay(fallback)
    combined = CombinedReader(a, b, fallback_below)
    out, calls = [], 0
    for i, s in enumerate(samples):
        a.index = b.index = i
        a.called = b.called = False
        a.score_ms = 0.0
        reading = combined.read(s.image)
        ms = (primary[i].ms if a.called else 0.0) + (fallback[i].ms if b.called else 0.0) + a.score_ms
        calls += b.called
        out.append(Scored(s.truth, reading, ms))
    return out, calls / max(1, len(samples))


def fallback_changes(samples: Sequence[Sample], primary: Sequence[Scored],
                     combined: Sequence[Scored]) -> list[tuple[bool, str]]:
    """(gained, line) for each crop the fallback turned right or wrong: what
    the combined row's lead over the TFLite row is made of."""
    changes = []
    for s, p, c in zip(samples, primary, combined):
        if is_exact(p) != is_exact(c):
            gained = is_exact(c)
            changes.append((gained, f"fallback {'gained' if gained else 'lost'} {s.name}: truth {s.truth}, "
                                    f"tflite {p.reading.text or '-'} ({p.reading.confidence:.2f}), "
                                    f"kept {c.reading.text or '-'} ({c.reading.confidence:.2f}, {c.reading.engine})"))
    return changes


def is_exact(s: Scored) -> bool:
    return normalise(s.reading.text) == s.truth


def summarise(scored: Sequence[Scored]) -> Summary:
    if not scored:
        return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    texts = [normalise(s.reading.text) for s in scored]
    exact = sum(t == s.truth for t, s in zip(texts, scored))
    o0 = sum(t.replace("O", "0") == s.truth.replace("O", "0") for t, s in zip(texts, scored))
    errors = sum(edit_distance(t, s.truth) for t, s in zip(texts, scored))
    chars = sum(len(s.truth) for s in scored)
    n = len(scored)
    return Summary(n=n, exact=round(exact / n, 4), exact_o0=round(o0 / n, 4),
                   cer=round(errors / max(1, chars), 4),
                   ms_per_crop=round(float(np.median([s.ms for s in scored])), 3),
                   ms_mean=round(float(np.mean([s.ms for s in scored])), 3))


def table(summaries: Mapping[str, Summary]) -> list[str]:
    lines = [f"{'reader':<10} {'n':>6} {'exact':>7} {'exact_o0':>9} {'cer':>7} {'ms/crop':>8} {'ms mean':>8}"]
    lines += [f"{name:<10} {s.n:>6} {s.exact:>7.3f} {s.exact_o0:>9.3f} {s.cer:>7.3f} {s.ms_per_crop:>8.2f}"
              f" {s.ms_mean:>8.2f}" for name, s in summaries.items()]
    return lines


def write_report(report_dir: Path, samples: Sequence[Sample],
                 results: Mapping[str, Sequence[Scored]]) -> Path:
    """index.html listing every crop some reader misread, with each reading."""
    crops = report_dir / "crops"
    crops.mkdir(parents=True, exist_ok=True)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in results)
    rows = []
    for i, s in enumerate(samples):
        scored = {n: r[i] for n, r in results.items()}
        if all(is_exact(x) for x in scored.values()):
            continue
        png = f"crops/{i:05d}.png"
        cv2.imwrite(str(report_dir / png), s.image)
        cells = "".join(
            f'<td class="{"ok" if is_exact(x) else "bad"}">{html.escape(x.reading.text) or "&empty;"}'
            f"<br><small>{x.reading.confidence:.2f}{' ' + html.escape(x.reading.format) if x.reading.format else ''}"
            f"</small></td>" for x in scored.values())
        rows.append(f'<tr><td><img src="{png}"></td><td>{html.escape(s.name)}</td>'
                    f"<td><b>{html.escape(s.truth)}</b></td>{cells}</tr>")
    summary = "\n".join(table({n: summarise(r) for n, r in results.items()}))
    page = (
        "<!doctype html><meta charset=utf-8><title>anpr-edge eval-ocr misreads</title>"
        "<style>body{font-family:sans-serif}td{padding:4px 8px;border-bottom:1px solid #ddd}"
        "img{max-height:64px}.ok{color:#080}.bad{color:#c00}</style>"
        f"<h1>eval-ocr: {len(rows)} of {len(samples)} crops misread by some reader</h1>"
        f"<pre>{html.escape(summary)}</pre>"
        f"<table><tr><th>crop</th><th>file</th><th>truth</th>{head}</tr>{''.join(rows)}</table>")
    index = report_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


# ---------------------------------------------------------------- command

def tflite_reader(model: Path, alphabet: Path, *, threads: int = 1, formats: Sequence[PlateFormat] = (),
                  second_look_below: float) -> Reader:
    """The TFLite reader as the daemon runs it by default: with its second look unless second_look_below is 0."""
    from edge.reader import TfliteReader
    from edge.second_look import SecondLookReader
    reader = TfliteReader(model, alphabet, num_threads=threads, formats=formats)
    return SecondLookReader(reader, below=second_look_below) if second_look_below > 0 else reader


def build_tflite_reader(args: argparse.Namespace) -> Reader:
    alphabet = args.alphabet if args.alphabet is not None else args.model.parent / "alphabet.txt"
    return tflite_reader(args.model, alphabet, threads=args.threads, formats=args.formats,
                         second_look_below=args.second_look_below)


def build_tesseract_reader(args: argparse.Namespace) -> Reader:
    from edge.tesseract_reader import TesseractReader
    return TesseractReader(formats=args.formats)




def _formats(text: str) -> tuple[PlateFormat, ...]:
    try:
        return get_formats(text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _readers(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in READERS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown reader {','.join(bad)!r} (choose from {','.join(READERS)})")
    return names


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval-ocr", help="OCR accuracy and speed on labelled plate crops",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--crops", type=Path, required=True, metavar="DIR",
                   help="plate crops (or, with --boxes, photos with NAME.txt boxes)")
    p.add_argument("--labels", type=Path, metavar="CSV",
                   help="rows file,...,TEXT (default: the one .csv in DIR)")
    p.add_argument("--boxes", action="store_true",
                   help="DIR holds NAME.jpg + NAME.txt 'NAME x y w h TEXT'; crop the boxes")
    p.add_argument("--report", type=Path, metavar="DIR", help="write an HTML page of misreads here")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, metavar="PATH")
    p.add_argument("--alphabet", type=Path, metavar="PATH", help="default: alphabet.txt beside the model")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N", help="TFLite threads")
    p.add_argument("--formats", type=_formats, default=(), metavar="LIST",
                   help="plate formats to fit readings to, e.g. CZ,SK or US or all "
                        "(default: none; foreign formats hurt: pick the data's)")
    p.add_argument("--fallback-below", type=fraction, default=DEFAULT_FALLBACK_BELOW, metavar="P",
                   help="combined: ask Tesseract when TFLite confidence is below P")
    p.add_argument("--second-look-below", type=fraction, default=DEFAULT_BELOW, metavar="P",
                   help="tflite: re-read crops below confidence P trimmed and padded "
                        f"(reader.second_look; default {DEFAULT_BELOW}, 0: one read per crop)")
    p.add_argument("--readers", type=_readers, default=READERS, metavar="LIST",
                   help=f"which to report (default: {','.join(READERS)})")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N crops")
    return p


def run(args: argparse.Namespace) -> int:
    samples = load_boxes(args.crops) if args.boxes else load_crops(args.crops, args.labels)
    samples = samples[: args.limit] if args.limit else samples
    wanted = set(args.readers) | ({"tflite", "tesseract"} if "combined" in args.readers else set())
    results: dict[str, list[Scored]] = {}
    extra: dict[str, dict[str, float]] = {}
    if "tflite" in wanted:
        tflite = build_tflite_reader(args)
        results["tflite"] = time_reader(tflite, samples)
        looks = getattr(tflite, "looks", 0)
        extra["tflite"] = {"second_look_rate": round(looks / max(1, len(samples)), 4),
                           "second_look_below": args.second_look_below}
    if "tesseract" in wanted:
        results["tesseract"] = time_reader(build_tesseract_reader(args), samples)
    if "combined" in wanted:
        results["combined"], rate = combine(samples, results["tflite"], results["tesseract"],
                                            args.fallback_below, tflite if isinstance(tflite, Scorer) else None)
        changed = fallback_changes(samples, results["tflite"], results["combined"])
        extra["combined"] = {"fallback_rate": round(rate, 4), "fallback_below": args.fallback_below,
                             "fallback_gained": sum(g for g, _ in changed), "fallback_lost": sum(not g for g, _ in changed)}
        for _, line in changed:
            out(line)
    results = {n: results[n] for n in READERS if n in args.readers}
    summaries = {n: summarise(r) for n, r in results.items()}
    if args.report is not None:
        out(f"report: {write_report(args.report, samples, results)}")
    for line in table(summaries):
        out(line)
    headline = summaries["combined" if "combined" in summaries else next(reversed(summaries))]
    payload: dict[str, object] = {"n": len(samples)}
    payload.update({n: {**asdict(s), **extra.get(n, {})} for n, s in summaries.items()})
    payload.update({k: v for k, v in asdict(headline).items() if k != "n"})
    out(json.dumps(payload))
    return 0
