"""The ``wastore`` command: a thin shell over the library.

``app`` is the click group; ``main`` is the console script. Importing
:mod:`wastore` never imports this package.
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
