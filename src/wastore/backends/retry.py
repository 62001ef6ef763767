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
    """The retry budget of one call: ``total`` seconds from its first failure, or from
    the start of its first connection attempt (:meth:`attempt`) when that came first.

    It keeps the first failure as well as the last: when the budget is spent, the
    first is what the call reports (a later attempt cut short by the end of the
    budget only says "timeout", which hides the cause). ``min_attempt``: no attempt
    is started with less than that many seconds of the budget left (an attempt with
    1 ms to go can only time out).
    """

    __slots__ = (
        "_attempt_at",
        "backoff",
        "deadline",
        "delay",
        "failures",
        "first",
        "last",
        "min_attempt",
        "total",
    )

    def __init__(self, total: float, backoff: Backoff, *, min_attempt: float = 0.0) -> None:
        self.total = total
        self.backoff = backoff
        self.min_attempt = min(min_attempt, total)
        self.deadline: float | None = None
        self.delay = backoff.first
        self.failures = 0
        self.first: BaseException | None = None
        self.last: BaseException | None = None
        self._attempt_at: float | None = None

    def remaining(self) -> float:
        """Seconds left (all of them before the budget starts; never less than 0)."""
        if self.deadline is None:
            return self.total
        return max(self.deadline - time.monotonic(), 0.0)

    def attempt(self, limit: float) -> float:
        """Before an attempt that may itself take long (a connection): its timeout.

        ``limit`` cut to what is left of the budget, never below ``min_attempt``
        (or ``limit`` if smaller). If this attempt fails first, the budget counts
        from its start, so that a server that never answers fails within
        ``total`` seconds, not ``limit + total``.
        """
        now = time.monotonic()
        if self.deadline is None:
            self._attempt_at = now
            return min(limit, self.total)
        return min(limit, max(self.deadline - now, self.min_attempt))

    def succeeded(self) -> None:
        """The attempt started with :meth:`attempt` succeeded: a later failure of the
        call starts the budget at that failure."""
        self._attempt_at = None

    def next_pause(self, err: BaseException | None = None) -> float | None:
        """After a failure (``err``): how long to wait before the next attempt, or None
        when the budget is spent (less than ``min_attempt`` seconds of it are left)."""
        if err is not None:
            self.failures += 1
            self.last = err
            if self.first is None:
                self.first = err
        now = time.monotonic()
        if self.deadline is None:
            start = now if self._attempt_at is None else self._attempt_at
            self.deadline = start + self.total
        left = self.deadline - now - self.min_attempt  # the next attempt needs that much
        if left < 0 or (left == 0 and self.min_attempt == 0):
            return None
        pause = min(self.delay, left)
        self.delay = min(max(self.delay * 2, self.backoff.base), self.backoff.cap)
        return pause

    async def pause(self, err: BaseException | None = None) -> bool:
        """After a failure: wait before the next attempt; False when the budget is spent."""
        pause = self.next_pause(err)
        if pause is None:
            return False
        if pause > 0:
            await asyncio.sleep(pause)
        return True

    def pause_sync(self, err: BaseException | None = None) -> bool:
        """:meth:`pause` for a worker thread."""
        pause = self.next_pause(err)
        if pause is None:
            return False
        if pause > 0:
            time.sleep(pause)
        return True

    def elapsed(self) -> float:
        """Seconds since the budget started (0 before)."""
        if self.deadline is None:
            return 0.0
        return max(time.monotonic() - (self.deadline - self.total), 0.0)
