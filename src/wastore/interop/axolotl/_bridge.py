"""Former home of the synchronous bridge, kept so that old imports keep working.

The bridge is not specific to python-axolotl: it lives in
:mod:`wastore.interop.bridge`, shared by every synchronous client adapter.
"""

from __future__ import annotations

from ..bridge import DEFAULT_TIMEOUT, EventLoopThread, LoopBridge, WrongThreadError

__all__ = ["DEFAULT_TIMEOUT", "EventLoopThread", "LoopBridge", "WrongThreadError"]
