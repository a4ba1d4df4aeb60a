"""Printable hand-calculation worksheets for transformer math, with exact worked answer keys."""

__version__ = "0.1.0"
