"""100,000 writes buffered through a SignalCache never block the event loop for long.

A client writes sessions through the cache while a monitor task measures how long
the event loop went without running it. The stall is measured in CPU time of the
loop's thread (``time.thread_time()`` between two runs of the monitor): that is
the time callbacks held the loop, and it does not count the time this process
waited for a core on a busy machine. Wall-clock lag is recorded too (as a
property of the test), not asserted.

Before writes were O(1), every write above ~10,000 dirty entries scanned the
whole cache: 20,000 sessions held the loop for seconds.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore.cache import DEFAULT_MAX_ENTRIES

pytestmark = pytest.mark.slow

WRITES = 100_000
MAX_STALL = 0.050
GIVE_UP = 1.0  # a stall this long fails at once, instead of running the rest for minutes


class LoopMonitor:
    """Runs every few milliseconds; records the longest time the loop kept it waiting."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.max_cpu = 0.0
        self.max_wall = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        while True:
            await asyncio.sleep(self.period)
            now_cpu, now_wall = time.thread_time(), time.perf_counter()
            self.max_cpu = max(self.max_cpu, now_cpu - cpu)
            self.max_wall = max(self.max_wall, now_wall - wall - self.period)
            self.ticks += 1
            cpu, wall = now_cpu, now_wall

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _single_writes(cache: Any, record: bytes) -> Callable[[int], Any]:
    async def write(start: int) -> None:  # 100 messages' worth, then the loop runs
        for i in range(start, start + 100):
            await cache.put_session(f"{i}@s.whatsapp.net", record)

    return write


def _batches(cache: Any, record: bytes) -> Callable[[int], Any]:
    async def write(start: int) -> None:  # a fan-out to 100 devices
        await cache.put_sessions_batch(
            [(f"{i}@s.whatsapp.net", record) for i in range(start, start + 100)]
        )

    return write


@pytest.mark.parametrize("shape", [_single_writes, _batches], ids=["put_session", "batches"])
async def test_100k_buffered_writes_never_stall_the_loop(
    tmp_path: Path, record_property: Callable[[str, object], None], shape: Any
) -> None:
    # Objects that exist before the workload (pytest's, hypothesis') are moved out of
    # the collector's sight: the stalls measured are the workload's own.
    gc.collect()
    gc.freeze()
    try:
        async with await wastore.open_store(f"sqlite:///{tmp_path}/scale.db") as store:
            backend = store.backend(await store.create_device())
            pm = await wastore.PersistenceManager.open(backend, signal_cache=True)
            pm.run_background_saver(interval=30.0)
            cache = pm.signal_cache
            assert cache is not None
            write = shape(pm.signal, os.urandom(1_200))
            monitor = LoopMonitor()
            monitor.start()
            most_dirty = 0
            try:
                for start in range(0, WRITES, 100):
                    await write(start)
                    most_dirty = max(most_dirty, cache.dirty_count)
                    await asyncio.sleep(0)
                    assert monitor.max_cpu < GIVE_UP, f"the loop stalled {monitor.max_cpu:.1f}s"
                await pm.flush()
            finally:
                await monitor.stop()
            record_property("max_loop_stall_cpu_ms", round(monitor.max_cpu * 1000, 1))
            record_property("max_loop_lag_wall_ms", round(monitor.max_wall * 1000, 1))
            assert monitor.ticks > 20
            assert monitor.max_cpu < MAX_STALL, f"the loop was held {monitor.max_cpu * 1000:.0f} ms"
            assert most_dirty <= DEFAULT_MAX_ENTRIES + 100  # buffered writes stay bounded
            assert cache.budget.used <= cache.budget.max_bytes
            await pm.close()
            for start in range(0, WRITES, 5_000):  # every write is durable
                wanted = [f"{i}@s.whatsapp.net" for i in range(start, start + 5_000)]
                assert len(await backend.get_sessions(wanted)) == 5_000
    finally:
        gc.unfreeze()
