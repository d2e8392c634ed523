"""Running the product's own evaluation commands from the training scripts.

Why: a model card's figures must be what `anpr-edge eval-ocr` / `eval-detect`
print for the shipped file, so the training commands call those commands
(in a subprocess, like a user would) rather than scoring models themselves.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path

from training import REPO

log = logging.getLogger(__name__)


def run_eval(command: str, name: str, shown: list[str], hidden: list[str], res: dict) -> None:
    """`anpr-edge COMMAND *shown *hidden`; its last-line JSON goes to res[name].

    `shown` is what the card prints as the command (what a user would type);
    `hidden` holds the model paths the training run passes on top.
    """
    cmd = [sys.executable, "-m", "edge", command, *shown, *hidden]
    log.info("evaluating: %s", shlex.join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        log.error("%s failed for %s: %s", command, name, (proc.stderr or proc.stdout).strip()[-500:])
        return
    print(proc.stdout)
    res[name] = {"command": f"anpr-edge {command} " + shlex.join(shown), "result": json.loads(lines[-1])}


def training_command(module: str, argv: list[str] | None) -> str:
    """The command line that ran this training, as a model card quotes it."""
    given = argv if argv is not None else sys.argv[1:]
    return f"python -m {module}" + (" " + shlex.join(given) if given else "")


def rewrite_figures(out: Path, evals: dict, figures: dict) -> None:
    (out / "training_figures.json").write_text(json.dumps({"figures": figures, "eval": evals}, indent=2) + "\n")
