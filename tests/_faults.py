"""Failure injection for manager tests: a backend whose ``save()`` can be made to fail.

``FailingBackend`` wraps a real backend and delegates every attribute to it,
except ``save()``, which raises :class:`wastore.BackendUnavailableError` for the
next ``fail_next`` calls, while ``failing`` is set, or when ``fail_when(attempt)``
is true; ``gate`` holds a save in the middle to provoke races.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import wastore


class FailingBackend:
    """Delegates to ``inner``; ``save()`` fails on demand and counts its calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failing = False
        self.fail_next = 0
        self.fail_when: Callable[[int], bool] | None = None
        self.save_attempts = 0
        self.save_failures = 0
        self.save_successes = 0
        self.gate: asyncio.Event | None = None  # if given, save() waits for it first
        self.save_started = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found on the wrapper itself.
        return getattr(self.inner, name)

    async def save(self, device: wastore.Device) -> None:
        self.save_attempts += 1
        self.save_started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self._should_fail():
            self.save_failures += 1
            raise wastore.BackendUnavailableError(
                f"injected save failure #{self.save_failures} (test fault)"
            )
        await self.inner.save(device)
        self.save_successes += 1

    def _should_fail(self) -> bool:
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return self.failing or (self.fail_when is not None and self.fail_when(self.save_attempts))


async def wait_until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll ``predicate`` until it is true; fail the test if ``limit`` seconds pass first.

    The limit is a liveness bound (a hung saver fails the test instead of hanging
    it), not a speed assertion: conditions are normally met within milliseconds.
    """
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {limit}s")
        await asyncio.sleep(0.002)
