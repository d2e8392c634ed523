"""CLI: python -m refbackend --db PATH [--port 0] [--paid PLATE[:YYYY-MM-DD]] ...

Prints the bound port on stdout (one line) so scripts can use --port 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from refbackend.server import (FAULT_MODES, RefBackend, load_paid_csv, parse_paid,
                               read_token_file)

log = logging.getLogger("refbackend")


def _fault(spec: str) -> tuple[str, int]:
    mode, _, count = spec.partition(":")
    if mode not in FAULT_MODES:
        raise argparse.ArgumentTypeError(
            f"fault {spec!r}: mode must be one of {', '.join(FAULT_MODES)}")
    try:
        return mode, int(count) if count else -1
    except ValueError:
        raise argparse.ArgumentTypeError(f"fault {spec!r}: COUNT must be an integer") \
            from None


def _paid(spec: str) -> tuple[str, object]:
    try:
        return parse_paid(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m refbackend", description=__doc__)
    p.add_argument("--db", required=True, help="SQLite file (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback default)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", help="also write the bound port here (atomically)")
    p.add_argument("--paid", action="append", default=[], type=_paid,
                   metavar="PLATE[:YYYY-MM-DD]", help="a plate with a vignette")
    p.add_argument("--paid-file", help="CSV: plate[,valid_until[,valid_from]]")
    p.add_argument("--token-file", help="require this bearer token (file mode 600)")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="reads below this confidence get vignette 'unknown'")
    p.add_argument("--admin", action="store_true",
                   help="enable POST /admin/faults")
    p.add_argument("--fault", type=_fault, metavar="MODE[:COUNT]",
                   help=f"start with a fault ({'|'.join(FAULT_MODES)}); "
                        f"COUNT omitted = every request")
    p.add_argument("--log-level", default="INFO")
    return p


def _write_port_file(path: str, port: int) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=".port-")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, target)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        token = read_token_file(args.token_file) if args.token_file else None
        paid = list(args.paid)
        extra = load_paid_csv(args.paid_file) if args.paid_file else []
        backend = RefBackend(args.db, args.host, args.port, token=token,
                             admin=args.admin, min_confidence=args.min_confidence,
                             paid=paid)
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    for plate, until, since in extra:
        backend.db.add_paid(plate, until, since)
    if args.fault:
        backend.faults.set(args.fault[0], args.fault[1])
    signal.signal(signal.SIGTERM, _stop)
    if args.port_file:  # before stdout, so a reader of either sees both
        _write_port_file(args.port_file, backend.port)
    sys.stdout.write(f"{backend.port}\n")
    sys.stdout.flush()
    log.info("refbackend on %s (db %s, %d paid plates, token %s, admin %s)",
             backend.url, args.db, len(paid) + len(extra),
             "required" if token else "off", "on" if args.admin else "off")
    try:
        backend.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
