"""Load .tflite models once, with clear errors, and describe their tensors.

The runtime is `ai_edge_litert` (works with numpy 2, XNNPACK int8 kernels on
x86 and aarch64). `tflite_runtime` is only a fallback: tflite-runtime 2.14 is
the last release, needs numpy<2 and lacks XNNPACK's fast int8 path on x86.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8


class ModelError(Exception):
    """A model file (or the runtime for it) is missing or unusable; one line."""


def check_tflite_file(path: str | Path) -> Path:
    """Fail fast, naming the file, before the runtime sees a bad model."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: model file not found")
    if not p.is_file():
        raise ModelError(f"{p}: model path is not a file")
    try:
        with p.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelError(f"{p}: cannot read model file ({e.strerror})") from None
    if not head:
        raise ModelError(f"{p}: model file is empty")
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{p}: not a TFLite model (no 'TFL3' identifier)")
    return p


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]
        log.info("ai_edge_litert missing; using tflite_runtime")
        return Interpreter
    except ImportError:
        raise ModelError("no TFLite runtime: pip install ai-edge-litert") from None


def load_interpreter(path: str | Path, num_threads: int) -> Any:
    """Load and allocate a model; the caller keeps it for the process's life."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    p = check_tflite_file(path)
    cls = _interpreter_class()
    try:
        interp = cls(model_path=str(p), num_threads=num_threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"{p}: cannot load model ({reason})") from None
    log.debug("loaded %s with %d thread(s)\n%s", p, num_threads, describe(interp))
    return interp


@dataclass(frozen=True)
class TensorInfo:
    """The parts of a tensor's details that callers need; scale 0 = float."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @classmethod
    def from_details(cls, d: dict[str, Any]) -> "TensorInfo":
        scale, zero_point = d.get("quantization", (0.0, 0))
        return cls(name=str(d["name"]), index=int(d["index"]),
                   shape=tuple(int(s) for s in d["shape"]),
                   dtype=np.dtype(d["dtype"]), scale=float(scale),
                   zero_point=int(zero_point))

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def __str__(self) -> str:
        q = f" q=({self.scale:.6g}, {self.zero_point})" if self.quantized else ""
        return f"{self.name} {self.dtype} {list(self.shape)}{q}"


def input_infos(interp: Any) -> tuple[TensorInfo, ...]:
    return tuple(TensorInfo.from_details(d) for d in interp.get_input_details())


def output_infos(interp: Any) -> tuple[TensorInfo, ...]:
    return tuple(TensorInfo.from_details(d) for d in interp.get_output_details())


def describe(interp: Any) -> str:
    """Multi-line summary of a model's inputs and outputs, for logs and errors."""
    lines = [f"input {i}: {t}" for i, t in enumerate(input_infos(interp))]
    lines += [f"output {i}: {t}" for i, t in enumerate(output_infos(interp))]
    return "\n".join(lines)


def dequantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Quantized ints -> float32 real values; float tensors pass through."""
    if not info.quantized:
        return values.astype(np.float32, copy=False)
    return (values.astype(np.float32) - np.float32(info.zero_point)) * np.float32(info.scale)


def quantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Real values -> the tensor's dtype (rounded, clipped); floats are cast."""
    if not info.quantized:
        return np.asarray(values, dtype=info.dtype)
    q = np.rint(np.asarray(values, np.float32) / np.float32(info.scale)) + info.zero_point
    lim = np.iinfo(info.dtype)
    return np.clip(q, lim.min, lim.max).astype(info.dtype)
