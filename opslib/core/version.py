"""The opslib version, recorded in every evidence bundle."""

__version__ = "0.1.0"
