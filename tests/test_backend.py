"""BackendClient: response classification, token handling, real HTTP faults."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.backend import (AuthError, BackendClient, PermanentError, TokenError,
                          TransientError, Verdict, load_token, parse_response)
from refbackend import RefBackend

TOKEN = "s3cret-token-value"


def _payload(key: str = "k1", plate: str = "W12345X") -> dict[str, Any]:
    return {"key": key, "plate": plate, "confidence": 0.9, "format": None,
            "first_seen": "2024-05-01T12:00:00.000Z",
            "last_seen": "2024-05-01T12:00:01.000Z", "frames": 5, "camera": "cam0"}


# -- parse_response -------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=4),
    max_leaves=10)
verdictish = st.fixed_dictionaries(
    {}, optional={"plate": json_values | st.text(max_size=10),
                  "vignette": st.sampled_from(["valid", "invalid", "unknown", "paid", 1]),
                  "valid_until": st.sampled_from(["2024-12-31", "2024-13-01", 5, None]),
                  "duplicate": json_values, "error": json_values})
bodies = (st.binary(max_size=200)
          | json_values.map(lambda v: json.dumps(v).encode())
          | verdictish.map(lambda v: json.dumps(v).encode())
          | st.integers(1, 5000).map(lambda n: b"[" * n))  # nesting bombs


@settings(max_examples=300, deadline=None)
@given(status=st.integers(-5, 1000), body=bodies)
def test_parse_response_only_raises_declared_errors(status: int, body: bytes) -> None:
    try:
        verdict = parse_response(status, body, plate="P1")
    except PermanentError:
        assert 400 <= status <= 499 and status not in (408, 429)
    except TransientError:
        assert not 200 <= status <= 299
        assert not (400 <= status <= 499 and status not in (408, 429))
    else:
        assert 200 <= status <= 299  # a 2xx is always delivered
        assert isinstance(verdict, Verdict)
        assert verdict.vignette in ("valid", "invalid", "unknown")
        assert isinstance(verdict.plate, str) and isinstance(verdict.duplicate, bool)
        assert verdict.valid_until is None or isinstance(verdict.valid_until, dt.date)


def test_parse_response_cases() -> None:
    ok = parse_response(201, b'{"plate":"AB1","vignette":"valid",'
                             b'"valid_until":"2024-12-31","duplicate":false}')
    assert ok == Verdict("AB1", "valid", dt.date(2024, 12, 31), False)
    dup = parse_response(200, b'{"plate":"AB1","vignette":"invalid","duplicate":true}')
    assert dup.duplicate and dup.vignette == "invalid"
    bad = parse_response(200, b'{"plate": "AB', plate="AB1")
    assert bad == Verdict("AB1", "unknown", None, False, malformed=True)
    with pytest.raises(AuthError):
        parse_response(401, b'{"error":"bad token"}')
    with pytest.raises(PermanentError, match="HTTP 422: plate too long"):
        parse_response(422, b'{"error":"plate too long"}')
    for status in (408, 429, 500, 503, 302):
        with pytest.raises(TransientError):
            parse_response(status, b"")


# -- token ----------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("ANPR_EDGE_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return monkeypatch


def _token_file(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "token"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_token_file_private_ok(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    assert load_token(_token_file(tmp_path, TOKEN + "\n", 0o600)) == TOKEN


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_token_file_open_to_others_refused(tmp_path: Path, mode: int,
                                           clean_env: pytest.MonkeyPatch) -> None:
    path = _token_file(tmp_path, TOKEN, mode)
    with pytest.raises(TokenError, match=f"{path}.*group/others.*chmod 600") as info:
        load_token(path)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("text", ["", "  \n", "two words", "tab\there"])
def test_token_file_bad_content(tmp_path: Path, text: str,
                                clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(TokenError, match="token"):
        load_token(_token_file(tmp_path, text, 0o600))


def test_token_sources_and_precedence(tmp_path: Path, clean_env: pytest.MonkeyPatch
                                      ) -> None:
    with pytest.raises(TokenError, match="ANPR_EDGE_TOKEN"):
        load_token()
    clean_env.setenv("ANPR_EDGE_TOKEN", "from-env")
    assert load_token() == "from-env"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "anpr-edge-token").write_text("from-systemd\n")
    clean_env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_token() == "from-systemd"
    assert load_token(_token_file(tmp_path, "from-file", 0o600)) == "from-file"
    with pytest.raises(TokenError, match="missing"):
        load_token(tmp_path / "missing")
    # systemd guards its credentials directory; group bits there are fine.
    shared = creds / "token"
    shared.write_text("via-config-path")
    os.chmod(shared, 0o440)
    assert load_token(shared) == "via-config-path"


def test_client_validates_config_and_hides_token() -> None:
    with pytest.raises(ValueError, match="ftp://x"):
        BackendClient("ftp://x", TOKEN, 1.0)
    with pytest.raises(ValueError, match="timeout_s"):
        BackendClient("http://127.0.0.1:1", TOKEN, 0)
    client = BackendClient("http://127.0.0.1:1", TOKEN, 1.0)
    assert TOKEN not in repr(client) and "<set>" in repr(client)


# -- against the reference server ----------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[RefBackend]:
    with RefBackend(tmp_path / "ref.sqlite", token=TOKEN, admin=True,
                    paid=[("W12345X", dt.date(2099, 12, 31))]) as srv:
        yield srv


@pytest.fixture
def client(server: RefBackend) -> Iterator[BackendClient]:
    c = BackendClient(server.url, TOKEN, timeout_s=0.5, device="pi-7")
    yield c
    c.close()


def test_delivered_with_verdict(server: RefBackend, client: BackendClient,
                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        verdict = client.post(_payload())
        assert verdict == Verdict("W12345X", "valid", dt.date(2099, 12, 31), False)
        assert client.post(_payload()).duplicate
        assert client.post(_payload("k2", "UNPAID1")).vignette == "invalid"
        assert client.health()
    assert TOKEN not in caplog.text
    reads = server.db.reads()
    assert [r["key"] for r in reads] == ["k1", "k2"]
    assert reads[0]["payload"]["device"] == "pi-7"


@pytest.mark.parametrize("mode,error,stored", [
    ("500", TransientError, 0), ("hang", TransientError, 0),
    ("close", TransientError, 1), ("400", PermanentError, 0),
])
def test_fault_modes_are_not_delivered(server: RefBackend, client: BackendClient,
                                       mode: str, error: type, stored: int) -> None:
    server.faults.set(mode, count=1, hang_s=3)
    with pytest.raises(error):
        client.post(_payload())
    assert len(server.db.reads()) == stored
    retry = client.post(_payload())  # fault spent: the resend goes through once
    assert retry.vignette == "valid" and retry.duplicate == bool(stored)
    assert len(server.db.reads()) == 1


def test_malformed_2xx_counts_as_delivered(server: RefBackend, client: BackendClient
                                           ) -> None:
    server.faults.set("malformed")
    verdict = client.post(_payload())
    assert verdict.malformed and verdict.vignette == "unknown"
    assert len(server.db.reads()) == 1


def test_wrong_token_is_auth_error(server: RefBackend) -> None:
    with pytest.raises(AuthError, match="401"):
        BackendClient(server.url, "wrong-token", 0.5).post(_payload())
    with pytest.raises(AuthError):
        BackendClient(server.url, None, 0.5).post(_payload())
    assert server.db.reads() == []


def test_nobody_listening_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        client = BackendClient(f"http://127.0.0.1:{port}", TOKEN, 0.5)
        with pytest.raises(TransientError, match="unreachable"):
            client.post(_payload())
        assert not client.health()
