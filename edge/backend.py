"""HTTP client for the vignette-check backend (contract: api/openapi.yaml).

Every failure is sorted into one of two errors so the sender knows what to do
with the read: TransientError (try again later, forever) or PermanentError
(this read will never be accepted; set it aside).  AuthError is a
PermanentError the read is not to blame for (bad or rotated token): the sender
keeps such reads pending instead of setting them aside.

A 2xx answer means the backend has stored the read, whatever its body says.
So a 2xx with a malformed body is *delivered*: parse_response returns a
Verdict with vignette 'unknown' and malformed=True and logs a warning,
instead of resending a read the backend already has.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import requests

from edge import __version__

log = logging.getLogger(__name__)

VignetteStatus = Literal["valid", "invalid", "unknown"]
VIGNETTE_VALUES: frozenset[str] = frozenset({"valid", "invalid", "unknown"})

READS_PATH = "/v1/reads"
HEALTH_PATH = "/v1/health"
DEFAULT_TOKEN_ENV = "ANPR_EDGE_TOKEN"
DEFAULT_CREDENTIAL = "anpr-edge-token"

_MAX_ERROR_CHARS = 200
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: safe in a header


class BackendError(Exception):
    """Base of everything BackendClient.post and parse_response raise."""


class TransientError(BackendError):
    """Not delivered, but may be next time: 5xx, 408, 429, timeouts, network."""


class PermanentError(BackendError):
    """The backend refused this read (4xx); resending it will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AuthError(PermanentError):
    """401/403: our credentials are wrong, not the read; keep the read pending."""


class TokenError(ValueError):
    """The bearer token could not be loaded safely."""


@dataclass(frozen=True)
class Verdict:
    """The backend's answer for one read.

    malformed is True when a 2xx body could not be understood: the read was
    stored, but the vignette status is not known here.
    """

    plate: str
    vignette: VignetteStatus
    valid_until: dt.date | None = None
    duplicate: bool = False
    malformed: bool = False


def _clean(text: str, limit: int = _MAX_ERROR_CHARS) -> str:
    """One printable line, bounded: server text goes into logs and the DB."""
    line = "".join(ch if ch.isprintable() else " " for ch in text)
    return line[:limit]


def _error_text(body: bytes) -> str:
    """The {error} message from a 4xx/5xx body, or a short raw excerpt."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return _clean(body[:_MAX_ERROR_CHARS].decode("utf-8", "replace"))
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return _clean(doc["error"])
    return ""


def _malformed(plate: str, status: int, why: str) -> Verdict:
    log.warning("backend answered HTTP %d with a malformed body (%s); "
                "read counts as delivered, vignette unknown", status, why)
    return Verdict(plate=plate, vignette="unknown", malformed=True)


def _parse_verdict(status: int, body: bytes, plate: str) -> Verdict:
    """Read a 2xx body; never raises (the read is stored either way)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return _malformed(plate, status, f"not JSON: {type(exc).__name__}")
    if not isinstance(doc, dict):
        return _malformed(plate, status, f"JSON {type(doc).__name__}, not object")
    vignette = doc.get("vignette")
    if not isinstance(vignette, str) or vignette not in VIGNETTE_VALUES:
        return _malformed(plate, status, "missing or unknown 'vignette'")
    got_plate = doc.get("plate")
    valid_until: dt.date | None = None
    raw_until = doc.get("valid_until")
    if raw_until is not None:
        try:
            valid_until = dt.date.fromisoformat(raw_until)
        except (TypeError, ValueError):
            log.warning("backend sent unparseable valid_until %r; ignored",
                        _clean(str(raw_until), 40))
    duplicate = doc.get("duplicate", False)
    return Verdict(
        plate=got_plate if isinstance(got_plate, str) else plate,
        vignette=vignette,  # type: ignore[arg-type]  # checked above
        valid_until=valid_until,
        duplicate=duplicate if isinstance(duplicate, bool) else False,
    )


def parse_response(status: int, body: bytes, plate: str = "") -> Verdict:
    """Turn an HTTP status and body into a Verdict, or raise.

    Pure and total: whatever arrives, it returns a Verdict (2xx) or raises
    TransientError / PermanentError, nothing else.  plate fills the verdict
    when the body lacks one.
    """
    if 200 <= status <= 299:
        return _parse_verdict(status, body, plate)
    detail = _error_text(body)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        raise AuthError(f"backend refused our credentials: HTTP {status}{suffix}", status)
    if 400 <= status <= 499 and status not in (408, 429):
        raise PermanentError(f"backend rejected read: HTTP {status}{suffix}", status)
    # 5xx, 408, 429, and anything odd (1xx, 3xx redirects, out-of-range):
    # nothing says the read is bad, so try again later.
    raise TransientError(f"backend HTTP {status}{suffix}")


def _check_mode(path: Path, fd: int) -> None:
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise TokenError(f"token file {path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenError(
            f"token file {path} is accessible by group/others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}")


def _read_token_file(path: Path, check_mode: bool) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise TokenError(f"token file {path}: {exc.strerror}") from None
    try:
        if check_mode:
            _check_mode(path, fd)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(4097)
    finally:
        os.close(fd)
    if len(raw) > 4096:
        raise TokenError(f"token file {path} is larger than 4096 bytes")
    return _validate_token(raw.decode("utf-8", "replace").strip(), str(path))


def _validate_token(token: str, where: str) -> str:
    if not token:
        raise TokenError(f"token from {where} is empty")
    if not _TOKEN_RE.fullmatch(token):
        raise TokenError(f"token from {where} has whitespace or non-ASCII characters")
    return token


def load_token(token_file: str | os.PathLike[str] | None = None,
               env_var: str = DEFAULT_TOKEN_ENV,
               credential: str = DEFAULT_CREDENTIAL) -> str:
    """Find the bearer token: token_file, then systemd credential, then env.

    A token_file must be private (no group/other bits): a world-readable
    token is treated as leaked.  Files under $CREDENTIALS_DIRECTORY are
    trusted as they are, because systemd restricts them to the service user.
    """
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if token_file is not None:
        path = Path(token_file)
        in_creds = bool(cred_dir) and cred_dir is not None and \
            path.resolve().is_relative_to(Path(cred_dir).resolve())
        return _read_token_file(path, check_mode=not in_creds)
    if cred_dir:
        cred = Path(cred_dir) / credential
        if cred.exists():
            return _read_token_file(cred, check_mode=False)
    value = os.environ.get(env_var)
    if value is not None:
        return _validate_token(value.strip(), f"${env_var}")
    raise TokenError(
        f"no backend token: set token_file, systemd credential '{credential}', "
        f"or ${env_var}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BackendClient:
    """POSTs reads to the backend over one keep-alive requests.Session.

    The token is only put in the Authorization header; it is kept out of
    repr() and logs.  device, when set, is added to payloads lacking one.
    """

    def __init__(self, url: str, token: str | None, timeout_s: float,
                 verify_tls: bool = True, ca_file: str | os.PathLike[str] | None = None,
                 session: requests.Session | None = None,
                 device: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"backend url {url!r} must be http(s)://host[:port][/prefix]")
        if not timeout_s > 0:
            raise ValueError(f"backend timeout_s must be > 0, got {timeout_s!r}")
        if ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"backend ca_file {ca_file} does not exist")
        if token is not None:
            _validate_token(token, "BackendClient(token=...)")
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.device = device
        self._token = token
        self._session = session if session is not None else requests.Session()
        self._session.verify = str(ca_file) if ca_file is not None else verify_tls
        self._session.headers["User-Agent"] = f"anpr-edge/{__version__}"
        if not verify_tls and ca_file is None and parts.scheme == "https":
            log.warning("TLS certificate verification is OFF for %s", self.url)
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            log.warning("backend %s is plain http: the token and plates travel "
                        "unencrypted", self.url)

    def __repr__(self) -> str:
        return (f"BackendClient(url={self.url!r}, timeout_s={self.timeout_s}, "
                f"token={'<set>' if self._token else None})")

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def post(self, payload: Mapping[str, Any]) -> Verdict:
        """Send one read; return the verdict or raise a BackendError."""
        key = payload.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError(f"payload key must be a non-empty string, got {key!r}")
        body = dict(payload)
        if self.device is not None:
            body.setdefault("device", self.device)
        try:
            data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload {key}: not JSON-serialisable: {exc}") from None
        headers = self._headers({"Content-Type": "application/json",
                                 "Idempotency-Key": key})
        try:
            resp = self._session.post(self.url + READS_PATH, data=data, headers=headers,
                                      timeout=self.timeout_s, allow_redirects=False)
            content = resp.content
        except requests.Timeout as exc:
            raise TransientError(f"backend timeout after {self.timeout_s}s: "
                                 f"{type(exc).__name__}") from None
        except requests.RequestException as exc:
            # Connection refused/reset/closed, TLS, DNS, broken chunking.
            raise TransientError(f"backend unreachable: {type(exc).__name__}: "
                                 f"{_clean(str(exc))}") from None
        plate = payload.get("plate")
        return parse_response(resp.status_code, content,
                              plate if isinstance(plate, str) else "")

    def health(self) -> bool:
        """True when GET /v1/health answers 2xx; never raises."""
        try:
            resp = self._session.get(self.url + HEALTH_PATH, headers=self._headers(),
                                     timeout=self.timeout_s, allow_redirects=False)
        except requests.RequestException:
            return False
        return 200 <= resp.status_code <= 299

    def close(self) -> None:
        self._session.close()
