"""The ``wastore`` command: a thin shell over the library."""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
