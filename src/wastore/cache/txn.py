"""The transactions of the caches: which block's writes are where, and which task owns them.

A cache's :meth:`~wastore.cache.SignalCache.transaction` keeps the cached writes
of each (possibly nested) block in a :class:`_Frame` of its :class:`_Txn`, found
through a context variable, until the backend transaction commits (see
:mod:`wastore.cache`).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

from ..backends import _txn
from .budget import _MISSING, Dirty, Key

if TYPE_CHECKING:
    from .signal_cache import SignalCache


def backend_transaction_open() -> bool:
    """True if the running task is inside a transaction of a wastore backend."""
    stack = _txn._CURRENT.get()
    if not stack:
        return False
    task = asyncio.current_task()
    return any(st.task is task for st in stack)


class _Frame:
    """The cached writes of one (possibly nested) transaction block."""

    __slots__ = ("flushed", "flushed_prekeys", "prekeys", "writes")

    def __init__(self) -> None:
        self.writes: dict[Key, Dirty] = {}
        self.prekeys: dict[int, tuple[bool, int]] = {}  # id -> (consumed?, seq)
        # the shared dirty entries a flush wrote into the transaction in this block
        self.flushed: dict[Key, Dirty] = {}
        self.flushed_prekeys: dict[int, int] = {}

    def absorb(self, inner: _Frame) -> None:
        self.writes.update(inner.writes)
        self.prekeys.update(inner.prekeys)
        self.flushed.update(inner.flushed)
        self.flushed_prekeys.update(inner.flushed_prekeys)


class _Txn:
    """A transaction of one cache, owned by one task; ``frames`` is empty once it ended."""

    __slots__ = ("cache", "frames", "task")

    def __init__(self, cache: SignalCache) -> None:
        self.cache = cache
        self.task = asyncio.current_task()
        self.frames: list[_Frame] = [_Frame()]

    def lookup(self, key: Key) -> Any:
        for frame in reversed(self.frames):
            hit = frame.writes.get(key)
            if hit is not None:
                return hit[0]
        return _MISSING

    def prekey(self, id: int) -> bool | None:
        """True if consumed in the transaction, False if stored again, None if untouched."""
        for frame in reversed(self.frames):
            hit = frame.prekeys.get(id)
            if hit is not None:
                return hit[0]
        return None

    def writes(self) -> dict[Key, Dirty]:
        merged: dict[Key, Dirty] = {}
        for frame in self.frames:
            merged.update(frame.writes)
        return merged

    def prekeys(self) -> dict[int, tuple[bool, int]]:
        merged: dict[int, tuple[bool, int]] = {}
        for frame in self.frames:
            merged.update(frame.prekeys)
        return merged


# The cache transactions open in this context (a task sees those of the task that
# started it too; only its own count, see SignalCache._own_txn).
_TXNS: Final[ContextVar[tuple[_Txn, ...]]] = ContextVar("wastore_cache_txn", default=())
