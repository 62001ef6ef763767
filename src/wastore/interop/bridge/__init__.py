"""Calling wastore from synchronous code: the bridge every synchronous client adapter uses.

The package is being split along its seams; for now everything lives in
``loop`` (see its docstring).
"""

from .loop import (
    DEFAULT_TIMEOUT,
    EventLoopThread,
    LoopBridge,
    SyncContainer,
    SyncSignal,
    WrongThreadError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "EventLoopThread",
    "LoopBridge",
    "SyncContainer",
    "SyncSignal",
    "WrongThreadError",
]
