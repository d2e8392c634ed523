"""Reference server: contract, idempotency, auth, faults, CLI."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml

from edge.outbox import to_payload
from edge.types import VehicleResult
from refbackend import RefBackend, load_paid_csv, parse_paid
from refbackend.server import _check_read

REPO = Path(__file__).resolve().parents[1]
TOKEN = "ref-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _read(key: str = "k1", plate: str = "AB123", last_seen: str = "2024-05-01T12:00:01Z",
          **kw: Any) -> dict[str, Any]:
    doc = {"key": key, "plate": plate, "confidence": 0.9, "format": None,
           "first_seen": "2024-05-01T12:00:00Z", "last_seen": last_seen, "frames": 4,
           "camera": "cam0"}
    doc.update(kw)
    return doc


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RefBackend]:
    with RefBackend(tmp_path / "ref.sqlite", token=TOKEN, admin=True, min_confidence=0.5,
                    paid=[("AB123", dt.date(2024, 6, 30)), ("FOREVER1", None)]) as srv:
        yield srv


def _post(server: RefBackend, doc: Any, headers: dict[str, str] | None = None,
          path: str = "/v1/reads") -> requests.Response:
    if headers is None:
        headers = {**AUTH, "Idempotency-Key": doc["key"]}
    return requests.post(server.url + path, json=doc, headers=headers, timeout=2)


def test_verdicts_and_duplicates(server: RefBackend) -> None:
    first = _post(server, _read())
    assert first.status_code == 201
    assert first.json() == {"plate": "AB123", "vignette": "valid",
                            "valid_until": "2024-06-30", "duplicate": False}
    again = _post(server, _read(plate="CHANGED"))
    assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
    assert _post(server, _read("k2", "ZZ999")).json()["vignette"] == "invalid"
    assert _post(server, _read("k3", "FOREVER1")).json()["vignette"] == "valid"
    assert _post(server, _read("k4", "AB123", confidence=0.2)).json()["vignette"] == \
        "unknown"
    listing = requests.get(server.url + "/v1/reads", headers=AUTH, timeout=2).json()
    assert [r["key"] for r in listing["reads"]] == ["k1", "k2", "k3", "k4"]


def test_judged_on_the_day_seen_not_received(server: RefBackend) -> None:
    # Seen on the last valid day (UTC), delivered any time later: still valid.
    late = _post(server, _read("k1", last_seen="2024-06-30T23:59:59Z"))
    assert late.json()["vignette"] == "valid"
    # 01:00+02:00 is the previous day in UTC.
    local = _post(server, _read("k2", last_seen="2024-07-01T01:00:00+02:00"))
    assert local.json()["vignette"] == "valid"
    expired = _post(server, _read("k3", last_seen="2024-07-01T00:00:00Z"))
    assert expired.json() == {"plate": "AB123", "vignette": "invalid",
                              "valid_until": "2024-06-30", "duplicate": False}


def test_auth(server: RefBackend) -> None:
    assert requests.get(server.url + "/v1/health", timeout=2).json() == {"status": "ok"}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        r = _post(server, _read(), {**headers, "Idempotency-Key": "k1"})
        assert r.status_code == 401 and "token" in r.json()["error"]
    assert requests.get(server.url + "/v1/reads", timeout=2).status_code == 401
    assert server.db.reads() == []


@pytest.mark.parametrize("doc,headers,needle", [
    (_read(), {**AUTH}, "Idempotency-Key"),
    (_read(), {**AUTH, "Idempotency-Key": "other"}, "Idempotency-Key"),
    ([1, 2], {**AUTH, "Idempotency-Key": "k1"}, "JSON object"),
    (_read(plate=""), None, "plate"),
    (_read(confidence=2), None, "confidence"),
    (_read(frames=0), None, "frames"),
    (_read(last_seen="2024-05-01T12:00:00"), None, "last_seen"),
    (_read(first_seen="yesterday"), None, "first_seen"),
    (_read(crop_jpeg_b64="***"), None, "crop_jpeg_b64"),
])
def test_bad_requests_are_400_naming_the_field(server: RefBackend, doc: Any,
                                               headers: dict[str, str] | None,
                                               needle: str) -> None:
    r = _post(server, doc, headers)
    assert r.status_code == 400 and needle in r.json()["error"]


def test_not_json_and_unknown_paths(server: RefBackend) -> None:
    r = requests.post(server.url + "/v1/reads", data=b"{nope",
                      headers={**AUTH, "Idempotency-Key": "k1"}, timeout=2)
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert requests.get(server.url + "/nope", timeout=2).status_code == 404


def test_admin_faults(server: RefBackend, tmp_path: Path) -> None:
    r = _post(server, {"mode": 500, "count": 1}, AUTH, "/admin/faults")
    assert r.json() == {"mode": "500", "count": 1}
    assert _post(server, _read()).status_code == 500
    assert _post(server, _read()).status_code == 201
    bad = _post(server, {"mode": "explode"}, AUTH, "/admin/faults")
    assert bad.status_code == 400 and "explode" in bad.json()["error"]
    assert _post(server, {"mode": "none"}, {}, "/admin/faults").status_code == 401
    with RefBackend(tmp_path / "other.sqlite") as plain:  # admin off by default
        assert _post(plain, {"mode": "500"}, {}, "/admin/faults").status_code == 404


def test_edge_payload_matches_contract_and_server() -> None:
    spec = yaml.safe_load((REPO / "api" / "openapi.yaml").read_text())
    schema = spec["components"]["schemas"]["Read"]
    result = VehicleResult("AB123", 0.9, 1_714_564_800.0, 1_714_564_801.0, 3, "cam0",
                           "key-1", "AT", b"\xff\xd8")
    payload = to_payload(result)
    assert set(payload) <= set(schema["properties"])
    assert set(schema["required"]) <= set(payload)
    assert _check_read(payload) is None
    verdict = spec["components"]["schemas"]["Verdict"]
    assert verdict["properties"]["vignette"]["enum"] == ["valid", "invalid", "unknown"]


def test_paid_parsing(tmp_path: Path) -> None:
    assert parse_paid("ab-123") == ("AB123", None)
    assert parse_paid("AB123:2025-01-31") == ("AB123", dt.date(2025, 1, 31))
    with pytest.raises(ValueError, match="AB123:31.01.2025"):
        parse_paid("AB123:31.01.2025")
    csv_path = tmp_path / "paid.csv"
    csv_path.write_text("plate,valid_until,valid_from\n# comment\nab 1,2025-01-31,\n"
                        "CD2,,2024-01-01\n")
    assert load_paid_csv(csv_path) == [("AB1", dt.date(2025, 1, 31), None),
                                       ("CD2", None, dt.date(2024, 1, 1))]
    csv_path.write_text("EF3,soon\n")
    with pytest.raises(ValueError, match=r"paid\.csv:1"):
        load_paid_csv(csv_path)


def test_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    os.chmod(token, 0o600)
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "refbackend", "--db", str(tmp_path / "cli.sqlite"),
         "--port", "0", "--port-file", str(port_file), "--paid", "AB123:2099-01-01",
         "--token-file", str(token), "--log-level", "WARNING"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert int(port_file.read_text()) == port
        url = f"http://127.0.0.1:{port}"
        r = requests.post(url + "/v1/reads", json=_read(),
                          headers={**AUTH, "Idempotency-Key": "k1"}, timeout=2)
        assert r.status_code == 201 and r.json()["vignette"] == "valid"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_refuses_open_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    os.chmod(token, 0o644)
    proc = subprocess.run(
        [sys.executable, "-m", "refbackend", "--db", str(tmp_path / "x.sqlite"),
         "--token-file", str(token)], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "group/others" in proc.stderr
    assert TOKEN not in proc.stderr
