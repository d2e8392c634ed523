"""One result per vehicle: group reads across frames, vote, emit once.

A vehicle is a track of sightings. An observation joins a track when its box
overlaps the track's last box (IoU >= iou_match; a bad read of the same
plate), or when its text is similar (>= text_similarity) and its box is near
(the centre moved at most max_shift_per_s plate widths per second). Matching
is greedy, best pair first, one observation per track per frame.

A track is emitted once: when unseen for max_gap_s (the vehicle left), or
max_delay_s after first_seen if it is still there (it then stays, silent,
until it leaves, so a parked car is reported once), or at flush(). Tracks
with too few frames or too low a voted confidence are dropped and counted.

Voting: reads of the majority length (lengths weighed by the reads' mean
character confidence) are aligned per position, and each position takes the
character with the most summed character confidence. A position's
confidence is the probability of the winner over its strongest rival with
frames as independent evidence: sigmoid(sum of logit(c) of the agreeing
reads - sum of the rival reads' positive logit(c)); scattered misreads do
not add up against the winner, a consistent confusion (B/8) does. The
plate's confidence is the product over positions, times the same odds for
the chosen length when reads disagreed on it. One read gives its own plate
confidence back; agreeing reads raise it, mediocre ones (c = 0.5) don't.

Idempotency key: sha256 of "camera, key_salt, first_seen (frame time, 6
decimals), track sequence number", hex, 32 characters. Frame time and the
sequence number (tracks created by this Tracker, in order) depend only on
the input, so replaying the same frames gives the same keys; the salt
separates runs that reuse frame times (e.g. the name of a replayed video
file, whose times start at 0).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.config import TrackerConfig
from edge.types import Box, Reading, VehicleResult

__all__ = ["Observation", "Tracker", "TrackerStats", "levenshtein", "similarity", "vote"]

log = logging.getLogger(__name__)

_MAX_READS = 64          # reads kept per track for voting (the most confident)
_BASE_SYMBOLS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_EPS = 1e-3


@dataclass(frozen=True, eq=False)
class Observation:
    """One read plate in one frame: where, what, and optionally its crop (BGR)."""

    box: Box
    reading: Reading
    det_score: float = 1.0
    crop: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TrackerStats:
    active: int
    tracks: int
    emitted: int
    dropped_few_frames: int
    dropped_low_confidence: int


@dataclass
class _Track:
    seq: int
    first_seen: float
    last_seen: float
    box: Box
    texts: list[Reading] = field(default_factory=list)
    frames: int = 0
    text: str = ""
    emitted: bool = False
    crop: np.ndarray | None = None
    crop_score: float = -1.0


class Tracker:
    """Per-camera vehicle tracker; feed it every processed frame in time order."""

    def __init__(self, cfg: TrackerConfig, camera: str, *, keep_crops: bool = False,
                 key_salt: str = "", jpeg_quality: int = 90) -> None:
        self.cfg = cfg
        self.camera = camera
        self.keep_crops = keep_crops
        self.key_salt = key_salt
        self._jpeg_params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        self._tracks: list[_Track] = []
        self._seq = 0
        self._last_t: float | None = None
        self._emitted = self._few = self._weak = 0

    def reconfigure(self, cfg: TrackerConfig) -> None:
        """Take new thresholds (SIGHUP); open tracks keep going."""
        self.cfg = cfg

    @property
    def stats(self) -> TrackerStats:
        return TrackerStats(active=len(self._tracks), tracks=self._seq, emitted=self._emitted,
                            dropped_few_frames=self._few, dropped_low_confidence=self._weak)

    def update(self, t: float, observations: Sequence[Observation]) -> list[VehicleResult]:
        """Add one frame's observations (possibly none); return results now due."""
        out: list[VehicleResult] = []
        if self._last_t is not None and t < self._last_t - self.cfg.max_gap_s:
            log.warning("tracker: time went back %.1f s; closing all tracks", self._last_t - t)
            out += self.flush()
        self._last_t = t if self._last_t is None else max(t, self._last_t)
        out += self._expire(t)
        self._assign(t, observations)
        for tr in self._tracks:
            if not tr.emitted and t - tr.first_seen >= self.cfg.max_delay_s:
                result = self._finish(tr, final=False)
                if result is not None:
                    out.append(result)
        return out

    def flush(self) -> list[VehicleResult]:
        """End of stream: emit every open track that qualifies, forget all."""
        out = [r for tr in self._tracks if not tr.emitted and (r := self._finish(tr, final=True))]
        self._tracks = []
        return out

    # ------------------------------------------------------------------

    def _expire(self, t: float) -> list[VehicleResult]:
        out: list[VehicleResult] = []
        keep: list[_Track] = []
        for tr in self._tracks:
            if t - tr.last_seen > self.cfg.max_gap_s:
                if not tr.emitted:
                    result = self._finish(tr, final=True)
                    if result is not None:
                        out.append(result)
            else:
                keep.append(tr)
        self._tracks = keep
        return out

    def _assign(self, t: float, observations: Sequence[Observation]) -> None:
        cfg = self.cfg
        pairs: list[tuple[float, int, int]] = []
        for ti, tr in enumerate(self._tracks):
            dt = max(t - tr.last_seen, 0.0)
            for oi, ob in enumerate(observations):
                iou = tr.box.iou(ob.box)
                shift = _centre_shift(tr.box, ob.box)
                text = ob.reading.text
                sim = max(similarity(text, tr.text), similarity(text, tr.texts[-1].text)) \
                    if text and tr.texts else 0.0
                near = shift <= max(1.0, cfg.max_shift_per_s * dt)
                if iou >= cfg.iou_match or (near and sim >= cfg.text_similarity):
                    pairs.append((sim + iou - 0.01 * shift, ti, oi))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        used_t: set[int] = set()
        used_o: set[int] = set()
        for _, ti, oi in pairs:
            if ti in used_t or oi in used_o:
                continue
            used_t.add(ti)
            used_o.add(oi)
            self._add(self._tracks[ti], t, observations[oi])
        for oi, ob in enumerate(observations):
            if oi not in used_o and ob.reading.text:
                tr = _Track(seq=self._seq, first_seen=t, last_seen=t, box=ob.box)
                self._seq += 1
                self._tracks.append(tr)
                self._add(tr, t, ob)

    def _add(self, tr: _Track, t: float, ob: Observation) -> None:
        tr.last_seen = t
        tr.box = ob.box
        if not ob.reading.text:
            return  # a sighting keeps the track alive; nothing to vote with
        tr.frames += 1
        if tr.emitted:
            tr.texts[-1:] = [ob.reading]  # only for matching the next frame
            return
        tr.texts.append(ob.reading)
        if len(tr.texts) > _MAX_READS:
            weakest = min(range(len(tr.texts) - 1), key=lambda i: tr.texts[i].confidence)
            del tr.texts[weakest]
        tr.text = vote(tr.texts)[0]
        score = ob.reading.confidence * ob.det_score
        if self.keep_crops and ob.crop is not None and score > tr.crop_score:
            tr.crop, tr.crop_score = ob.crop.copy(), score

    def _finish(self, tr: _Track, *, final: bool) -> VehicleResult | None:
        """The track's result if it qualifies; None (and counted, when final) if not."""
        plate, confidence = vote(tr.texts)
        if tr.frames < self.cfg.min_frames or confidence < self.cfg.min_confidence:
            if final:
                if tr.frames < self.cfg.min_frames:
                    self._few += 1
                else:
                    self._weak += 1
                log.debug("tracker: dropped track %d (%d frames, confidence %.2f)",
                          tr.seq, tr.frames, confidence)
            return None
        tr.emitted = True
        self._emitted += 1
        formats = [r.format for r in tr.texts if r.text == plate and r.format]
        crop_jpeg = None
        if tr.crop is not None:
            ok, buf = cv2.imencode(".jpg", tr.crop, self._jpeg_params)
            crop_jpeg = buf.tobytes() if ok else None
        result = VehicleResult(
            plate=plate, confidence=confidence, first_seen=tr.first_seen, last_seen=tr.last_seen,
            frames=tr.frames, camera=self.camera, key=self._key(tr),
            format=max(set(formats), key=formats.count) if formats else None, crop_jpeg=crop_jpeg)
        tr.texts = tr.texts[-1:]
        tr.crop = None
        return result

    def _key(self, tr: _Track) -> str:
        material = f"{self.camera}\x1f{self.key_salt}\x1f{tr.first_seen:.6f}\x1f{tr.seq}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------

def _centre_shift(a: Box, b: Box) -> float:
    """Distance between box centres, in plate widths."""
    dx = (a.x0 + a.x1 - b.x0 - b.x1) / 2
    dy = (a.y0 + a.y1 - b.y0 - b.y1) / 2
    return math.hypot(dx, dy) / max(a.w, b.w, 1e-6)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def similarity(a: str, b: str) -> float:
    """1 - edit distance / longer length; 1.0 for equal texts, 0.0 if either is empty."""
    if not a or not b:
        return 0.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def vote(readings: Sequence[Reading]) -> tuple[str, float]:
    """Confidence-weighted per-character vote over reads of the majority length.

    Returns (text, confidence); ("", 0.0) when there is nothing to vote on.
    """
    reads = [r for r in readings if r.text]
    if not reads:
        return "", 0.0
    # Each read's mean character confidence weighs its length.
    per_read = [_char_confidences(r) for r in reads]
    by_length: dict[int, list[float]] = {}
    for r, cc in zip(reads, per_read):
        by_length.setdefault(len(r.text), []).append(math.prod(cc) ** (1 / len(cc)))
    ranked = sorted(by_length, key=lambda n: (sum(by_length[n]), n), reverse=True)
    length = ranked[0]
    length_conf = 1.0
    if len(ranked) > 1:
        length_conf = _odds(np.array(by_length[length]), np.array(by_length[ranked[1]]))

    same = [i for i, r in enumerate(reads) if len(r.text) == length]
    symbols = sorted(set(_BASE_SYMBOLS).union(*(reads[i].text for i in same)))
    index = {s: k for k, s in enumerate(symbols)}
    codes = np.array([[index[c] for c in reads[i].text] for i in same])           # (n, L)
    conf = np.clip(np.array([per_read[i] for i in same]), _EPS, 1 - _EPS)       # (n, L)
    votes = ((codes[..., None] == np.arange(len(symbols))) * conf[..., None]).sum(axis=0)  # (L, K)
    order = np.argsort(-votes, axis=1, kind="stable")
    best, rival = order[:, 0], order[:, 1]
    logit = np.log(conf) - np.log1p(-conf)
    # Log-odds of the winner over its strongest rival, frames independent;
    # a rival read only counts when it was more sure than not.
    evidence = (np.where(codes == best, logit, 0.0).sum(axis=0)
                - np.where((codes == rival) & (votes[np.arange(length), rival] > 0), np.maximum(logit, 0.0), 0.0)
                .sum(axis=0))
    text = "".join(symbols[k] for k in best)
    return text, float(np.prod(_sigmoid(evidence)) * length_conf)


def _odds(win: np.ndarray, rival: np.ndarray) -> float:
    """Winner-over-rival probability from two groups of confidences (see vote)."""
    win = np.clip(win, _EPS, 1 - _EPS)
    rival = np.clip(rival, _EPS, 1 - _EPS)
    evidence = np.sum(np.log(win) - np.log1p(-win)) - np.sum(np.maximum(np.log(rival) - np.log1p(-rival), 0.0))
    return float(_sigmoid(evidence))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def _char_confidences(r: Reading) -> list[float]:
    if len(r.char_confidences) == len(r.text):
        return list(r.char_confidences)
    # Product-style plate confidence: the geometric mean per character.
    per_char = max(r.confidence, 0.0) ** (1.0 / len(r.text))
    return [per_char] * len(r.text)
