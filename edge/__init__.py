"""anpr-edge: a number-plate reader for a Raspberry Pi beside a road."""

__version__ = "0.1.0"
