"""The retry policy of the SQL backends: exponential backoff within a time budget.

A transient failure (SQLite: another process holds the write lock; PostgreSQL:
the server cannot be reached) is retried after a pause that doubles up to a
cap, until the budget of the call is spent; then the caller raises
:class:`~wastore.BackendUnavailableError`. What counts as transient, and what
may run again, is each backend's own rule (``sqlite/errors.py``,
``postgres/errors.py``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pauses between attempts: ``first``, then doubling from ``base`` up to ``cap`` seconds."""

    first: float
    base: float
    cap: float


SQLITE_BUSY: Final = Backoff(first=0.001, base=0.002, cap=0.05)
"""While another process holds the write lock: 1 ms, 2 ms, 4 ms, ... 50 ms."""
POSTGRES_UNREACHABLE: Final = Backoff(first=0.0, base=0.01, cap=0.5)
"""While the server cannot be reached: at once, then 10 ms, 20 ms, ... 0.5 s."""


class Budget:
    """The retry budget of one call: ``total`` seconds from its first failure."""

    __slots__ = ("backoff", "deadline", "delay", "total")

    def __init__(self, total: float, backoff: Backoff) -> None:
        self.total = total
        self.backoff = backoff
        self.deadline: float | None = None
        self.delay = backoff.first

    def remaining(self) -> float:
        """Seconds left (all of them before the first failure; never less than 1 ms)."""
        if self.deadline is None:
            return self.total
        return max(self.deadline - time.monotonic(), 0.001)

    def next_pause(self) -> float | None:
        """After a failure: how long to wait before the next attempt, or None when the
        budget is spent."""
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.total
        if now >= self.deadline:
            return None
        pause = min(self.delay, self.deadline - now)
        self.delay = min(max(self.delay * 2, self.backoff.base), self.backoff.cap)
        return pause

    async def pause(self) -> bool:
        """After a failure: wait before the next attempt; False when the budget is spent."""
        pause = self.next_pause()
        if pause is None:
            return False
        if pause > 0:
            await asyncio.sleep(pause)
        return True

    def pause_sync(self) -> bool:
        """:meth:`pause` for a worker thread."""
        pause = self.next_pause()
        if pause is None:
            return False
        if pause > 0:
            time.sleep(pause)
        return True
