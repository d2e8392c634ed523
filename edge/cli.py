"""`anpr-edge` command line: a thin dispatcher over command modules.

Each command lives in its own module listed in COMMANDS and exposes
`add_parser(subparsers) -> argparse.ArgumentParser` and `run(args) -> int`.
Errors the user can fix are mapped to one line and an exit code here, and
only here (see exit_code_for); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

import edge
from edge import __version__

# Modules providing subcommands, in --help order. Add new ones here.
COMMANDS: tuple[str, ...] = (
    "edge.daemon",
    "edge.evaluate",
    "edge.eval_detect",
    "edge.replay",
    "edge.check_config",
    "edge.bench",
)

EXIT_OK = 0
EXIT_USAGE = 2        # bad arguments or configuration (argparse also uses 2)
EXIT_MODEL = 3        # model or OCR language data missing or unusable
EXIT_INPUT = 4        # input data (images, labels) missing or unreadable
EXIT_INTERRUPTED = 130


def out(line: str = "") -> None:
    """Command output to stdout (logs go to stderr)."""
    sys.stdout.write(line + "\n")


def exit_code_for(exc: BaseException) -> int | None:
    """Exit code for an error the user can fix; None for a bug."""
    from edge.config import ConfigError
    from edge.evaluate import DataError
    from edge.runtime import ModelError
    table: tuple[tuple[type[BaseException], int], ...] = (
        (ConfigError, EXIT_USAGE),
        (ModelError, EXIT_MODEL),
        (DataError, EXIT_INPUT),
    )
    return next((code for cls, code in table if isinstance(exc, cls)), None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anpr-edge", description=edge.__doc__)
    parser.add_argument("--version", action="version", version=f"anpr-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log detail on stderr (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(name)
        module.add_parser(subparsers).set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract's threads: explicit
    try:
        return int(args._run(args) or EXIT_OK)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = exit_code_for(exc)
        if code is None:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"anpr-edge: error: {message}\n")
        return code


if __name__ == "__main__":
    sys.exit(main())
