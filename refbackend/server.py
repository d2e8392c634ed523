"""Reference vignette-check server: the contract in api/openapi.yaml, stdlib only.

Why it exists: the edge daemon needs something real to talk to in tests and
demos, including a backend that misbehaves on purpose (see Faults).

A read is judged on the day it was seen (last_seen, UTC), not the day it
arrives, so reads delivered late after an outage get the right verdict.  Each
idempotency key is recorded once; a resend gets duplicate=true and the
verdict given the first time.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import hmac
import ipaddress
import json
import logging
import os
import socket
import sqlite3
import stat
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
FAULT_MODES = ("none", "500", "hang", "close", "malformed", "400")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vignettes (
    plate       TEXT PRIMARY KEY,
    valid_from  TEXT,
    valid_until TEXT
);
CREATE TABLE IF NOT EXISTS reads (
    key         TEXT PRIMARY KEY,
    plate       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at TEXT NOT NULL,
    verdict     TEXT NOT NULL
);
"""


def normalise_plate(plate: str) -> str:
    """'ab-123 c' -> 'AB123C': the registry and the reader agree on A-Z0-9."""
    return "".join(ch for ch in plate.upper() if ch.isascii() and ch.isalnum())


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def parse_paid(spec: str) -> tuple[str, dt.date | None]:
    """'PLATE' or 'PLATE:YYYY-MM-DD' -> (plate, valid_until)."""
    plate, _, until = spec.partition(":")
    norm = normalise_plate(plate)
    if not norm:
        raise ValueError(f"paid entry {spec!r}: empty plate")
    try:
        return norm, dt.date.fromisoformat(until) if until else None
    except ValueError:
        raise ValueError(f"paid entry {spec!r}: date must be YYYY-MM-DD") from None


def load_paid_csv(path: str | os.PathLike[str]
                  ) -> list[tuple[str, dt.date | None, dt.date | None]]:
    """CSV rows plate[,valid_until[,valid_from]]; '#' comments and a header ok."""
    rows: list[tuple[str, dt.date | None, dt.date | None]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for lineno, cells in enumerate(csv.reader(fh), start=1):
            cells = [c.strip() for c in cells]
            if not cells or not cells[0] or cells[0].startswith("#"):
                continue
            if lineno == 1 and cells[0].lower() == "plate":
                continue
            plate = normalise_plate(cells[0])
            try:
                until = dt.date.fromisoformat(cells[1]) if len(cells) > 1 and cells[1] \
                    else None
                since = dt.date.fromisoformat(cells[2]) if len(cells) > 2 and cells[2] \
                    else None
            except ValueError:
                raise ValueError(f"{path}:{lineno}: dates must be YYYY-MM-DD") from None
            if not plate:
                raise ValueError(f"{path}:{lineno}: empty plate")
            rows.append((plate, until, since))
    return rows


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The server's bearer token; refuses files open to group/others."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"token file {path} is accessible by group/others "
                         f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it")
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


class VignetteDB:
    """The registry of paid plates and the log of received reads."""

    def __init__(self, path: str | os.PathLike[str], min_confidence: float = 0.0) -> None:
        self.path = str(path)
        self.min_confidence = min_confidence
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)

    def add_paid(self, plate: str, valid_until: dt.date | None = None,
                 valid_from: dt.date | None = None) -> None:
        norm = normalise_plate(plate)
        if not norm:
            raise ValueError(f"plate {plate!r} has no letters or digits")
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO vignettes (plate, valid_from, valid_until) "
                "VALUES (?, ?, ?)",
                (norm, valid_from and valid_from.isoformat(),
                 valid_until and valid_until.isoformat()))

    def _judge(self, plate: str, confidence: float, seen: dt.date) -> dict[str, Any]:
        norm = normalise_plate(plate)
        row = self._conn.execute("SELECT valid_from, valid_until FROM vignettes "
                                 "WHERE plate = ?", (norm,)).fetchone()
        until = row[1] if row else None
        if confidence < self.min_confidence:
            status = "unknown"
        elif row is None:
            status = "invalid"
        else:
            since_ok = row[0] is None or dt.date.fromisoformat(row[0]) <= seen
            until_ok = row[1] is None or seen <= dt.date.fromisoformat(row[1])
            status = "valid" if since_ok and until_ok else "invalid"
        return {"plate": plate, "vignette": status, "valid_until": until}

    def record(self, read: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a validated read once per key -> (verdict, duplicate)."""
        seen = dt.datetime.fromisoformat(read["last_seen"]).astimezone(dt.timezone.utc)
        with self._lock, self._conn:
            row = self._conn.execute("SELECT verdict FROM reads WHERE key = ?",
                                     (read["key"],)).fetchone()
            if row is not None:
                return json.loads(row[0]), True
            verdict = self._judge(read["plate"], read["confidence"], seen.date())
            self._conn.execute(
                "INSERT INTO reads (key, plate, payload, received_at, verdict) "
                "VALUES (?, ?, ?, ?, ?)",
                (read["key"], read["plate"], json.dumps(read), _utc_now(),
                 json.dumps(verdict)))
            return verdict, False

    def reads(self) -> list[dict[str, Any]]:
        """Every stored read, oldest first; crops replaced by has_crop."""
        with self._lock:
            rows = self._conn.execute("SELECT key, plate, payload, received_at, verdict "
                                      "FROM reads ORDER BY rowid").fetchall()
        out = []
        for key, plate, payload, received_at, verdict in rows:
            doc = json.loads(payload)
            doc["has_crop"] = bool(doc.pop("crop_jpeg_b64", None))
            out.append({"key": key, "plate": plate, "received_at": received_at,
                        "verdict": json.loads(verdict), "payload": doc})
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass(frozen=True)
class Fault:
    mode: str
    hang_s: float


class Faults:
    """Misbehaviour for the next `count` POST /v1/reads (count < 0: until reset).

    500 and 400 answer without storing; hang waits hang_s, then drops the
    connection without storing; close STORES the read and drops the
    connection (the answer is lost on the way back); malformed STORES the
    read and answers 200 with a truncated JSON body.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mode = "none"
        self._count = 0
        self._hang_s = 5.0

    def set(self, mode: str, count: int = 1, hang_s: float | None = None) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"fault mode {mode!r} is not one of {', '.join(FAULT_MODES)}")
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"fault count must be an integer, got {count!r}")
        if hang_s is not None and not (isinstance(hang_s, (int, float)) and hang_s >= 0):
            raise ValueError(f"fault hang_s must be a number >= 0, got {hang_s!r}")
        with self._lock:
            self._mode, self._count = mode, count
            if hang_s is not None:
                self._hang_s = float(hang_s)

    def take(self) -> Fault | None:
        with self._lock:
            if self._mode == "none" or self._count == 0:
                return None
            if self._count > 0:
                self._count -= 1
            return Fault(self._mode, self._hang_s)


def _check_read(doc: Any) -> str | None:
    """None if doc is a valid POST /v1/reads body, else what is wrong."""
    if not isinstance(doc, dict):
        return "body must be a JSON object"
    for name in ("key", "plate", "camera"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            return f"'{name}' must be a non-empty string"
    conf = doc.get("confidence")
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 <= conf <= 1:
        return "'confidence' must be a number in [0, 1]"
    frames = doc.get("frames")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        return "'frames' must be an integer >= 1"
    for name in ("first_seen", "last_seen"):
        try:
            stamp = dt.datetime.fromisoformat(doc.get(name))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return f"'{name}' must be an ISO-8601 date-time"
        if stamp.tzinfo is None:
            return f"'{name}' must carry a UTC offset (e.g. Z)"
    for name in ("format", "device", "crop_jpeg_b64"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            return f"'{name}' must be a string or null"
    if doc.get("crop_jpeg_b64"):
        try:
            base64.b64decode(doc["crop_jpeg_b64"], validate=True)
        except (binascii.Error, ValueError):
            return "'crop_jpeg_b64' is not valid base64"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: "_HTTPServer"
    server_version = "anpr-refbackend/0.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    # -- helpers ----------------------------------------------------------

    def _json(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        token = self.server.app.token
        if token is None:
            return True
        got = self.headers.get("Authorization", "")
        ok = hmac.compare_digest(got.encode(), f"Bearer {token}".encode())
        if not ok:
            self._json(401, {"error": "missing or invalid bearer token"})
        return ok

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._json(411, {"error": "Content-Length required"})
            return None
        if int(length) > MAX_BODY_BYTES:
            self._json(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return None
        data = self.rfile.read(int(length))
        if len(data) != int(length):
            self._json(400, {"error": "body shorter than Content-Length"})
            return None
        return data

    # -- routes -----------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/v1/health":
            self._json(200, {"status": "ok"})
        elif path == "/v1/reads":
            if self._authorised():
                self._json(200, {"reads": self.server.app.db.reads()})
        else:
            self._json(404, {"error": f"no such path {path}"})

    def do_POST(self) -> None:  # noqa: N802
        try:
            self._route_post()
        except Exception:
            log.exception("refbackend: POST %s failed", self.path)
            self._json(500, {"error": "internal error"})

    def _route_post(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/v1/reads", "/admin/faults") or \
                (path == "/admin/faults" and not self.server.app.admin):
            self._json(404, {"error": f"no such path {path}"})
            return
        # Read the body before answering anything: closing a socket with
        # unread data makes the kernel send RST, which can hide the answer.
        data = self._body()
        if data is None or not self._authorised():
            return
        if path == "/v1/reads":
            self._post_read(data)
        else:
            self._post_faults(data)

    @staticmethod
    def _parse(data: bytes) -> tuple[Any, bool]:
        try:
            return json.loads(data), True
        except (ValueError, RecursionError):
            return None, False

    def _post_read(self, data: bytes) -> None:
        app = self.server.app
        fault = app.faults.take()
        if fault and fault.mode == "hang":
            app.stopping.wait(fault.hang_s)
            self.close_connection = True
            return
        if fault and fault.mode in ("500", "400"):
            self._json(int(fault.mode), {"error": f"injected fault {fault.mode}"})
            return
        doc, ok = self._parse(data)
        if not ok:
            self._json(400, {"error": "body is not valid JSON"})
            return
        problem = _check_read(doc)
        if problem:
            self._json(400, {"error": problem})
            return
        if self.headers.get("Idempotency-Key") != doc["key"]:
            self._json(400, {"error": "Idempotency-Key header must equal body 'key'"})
            return
        verdict, duplicate = app.db.record(doc)
        if fault and fault.mode == "close":
            self.close_connection = True
            return
        if fault and fault.mode == "malformed":
            body = b'{"plate": "' + doc["plate"].encode()[:3]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._json(200 if duplicate else 201, {**verdict, "duplicate": duplicate})

    def _post_faults(self, data: bytes) -> None:
        doc, _ = self._parse(data)
        if not isinstance(doc, dict):
            self._json(400, {"error": "body must be a JSON object"})
            return
        mode, count = doc.get("mode", "none"), doc.get("count", 1)
        if isinstance(mode, int) and not isinstance(mode, bool):
            mode = str(mode)  # {"mode": 500} means "500"
        try:
            self.server.app.faults.set(mode, count, doc.get("hang_s"))
        except ValueError as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(200, {"mode": mode, "count": count})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hung fault handler must not block shutdown

    def __init__(self, address: tuple[str, int], app: "RefBackend") -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, _Handler)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RefBackend:
    """The reference server; use as a context manager to run it in a thread."""

    def __init__(self, db_path: str | os.PathLike[str], host: str = "127.0.0.1",
                 port: int = 0, token: str | None = None, admin: bool = False,
                 min_confidence: float = 0.0,
                 paid: Iterable[tuple[str, dt.date | None]] = ()) -> None:
        if not _is_loopback(host):
            log.warning("refbackend listening on non-loopback %s%s", host,
                        "" if token else " WITHOUT a token")
        self.token = token
        self.admin = admin
        self.faults = Faults()
        self.stopping = threading.Event()
        self.db = VignetteDB(db_path, min_confidence)
        for plate, until in paid:
            self.db.add_paid(plate, until)
        self._httpd = _HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.1)

    def start(self) -> "RefBackend":
        self._thread = threading.Thread(target=self.serve_forever,
                                        name="refbackend", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()
        self.db.close()

    def __enter__(self) -> "RefBackend":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
