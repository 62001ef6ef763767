"""``python -m wastore.cli``: the same as the ``wastore`` command."""

from __future__ import annotations

from .app import main

if __name__ == "__main__":
    main()
