"""Reference vignette-check backend for tests and demos (stdlib only)."""

from refbackend.server import (FAULT_MODES, Faults, RefBackend, VignetteDB,
                               load_paid_csv, normalise_plate, parse_paid,
                               read_token_file)

__all__ = ["FAULT_MODES", "Faults", "RefBackend", "VignetteDB", "load_paid_csv",
           "normalise_plate", "parse_paid", "read_token_file"]
