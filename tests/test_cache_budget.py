"""The memory budget shared by the SignalCaches of one container."""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore.cache import DEFAULT_BUDGET_BYTES, ENTRY_OVERHEAD, CacheBudget, SignalCache

RECORD = 1_200


def address(i: int) -> str:
    return f"{i}@s.whatsapp.net"


def cost(i: int, size: int = RECORD) -> int:
    return ENTRY_OVERHEAD + len(address(i)) + size


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    async with await wastore.open_store(f"sqlite:///{tmp_path}/budget.db") as c:
        yield c


async def test_the_caches_of_one_container_share_its_budget(store: Any, tmp_path: Path) -> None:
    one = await wastore.PersistenceManager.open(
        store.backend(await store.create_device()), signal_cache=True
    )
    two = await wastore.PersistenceManager.open(
        store.backend(await store.create_device()), signal_cache=True
    )
    async with await wastore.open_store(f"sqlite:///{tmp_path}/other.db") as other_store:
        elsewhere = SignalCache(other_store.backend(await other_store.create_device()))
        assert one.signal_cache is not None and two.signal_cache is not None
        assert one.signal_cache.budget is two.signal_cache.budget is CacheBudget.of(store)
        assert elsewhere.budget is CacheBudget.of(other_store)
        assert elsewhere.budget is not one.signal_cache.budget
        assert one.signal_cache.budget.max_bytes == DEFAULT_BUDGET_BYTES
    async with await wastore.open_store("memory://") as memory:
        # A backend that does not name its container shares the process-wide budget.
        cache = SignalCache(memory.backend(await memory.create_device()))
        assert cache.budget is CacheBudget.default()
    await one.close()
    await two.close()


async def test_least_recently_used_clean_entries_go_first_across_accounts(store: Any) -> None:
    budget = CacheBudget(max_bytes=cost(0) * 4)
    a = SignalCache(store.backend(await store.create_device()), budget=budget)
    b = SignalCache(store.backend(await store.create_device()), budget=budget)
    for i in range(2):
        await a.put_session(address(i), os.urandom(RECORD))
        await b.put_session(address(i), os.urandom(RECORD))
    await a.flush()
    await b.flush()
    assert len(a) + len(b) == 4  # exactly full
    await a.get_session(address(0))  # a:0 is now the most recently used
    await b.put_session(address(2), os.urandom(RECORD))  # over: the oldest clean entry goes
    assert (len(a), len(b)) == (1, 3)  # a:1 was the least recently used: it went
    assert a._clean_keys == {(a._slot, 0, address(0))}
    assert budget.used <= budget.max_bytes
    assert budget.evictions == 1


async def test_dirty_entries_are_never_evicted_they_are_flushed(store: Any) -> None:
    budget = CacheBudget(max_bytes=cost(0) * 3)
    writer = SignalCache(store.backend(await store.create_device()), budget=budget)
    reader_backend = store.backend(await store.create_device())
    reader = SignalCache(reader_backend, budget=budget)
    for i in range(4):  # the fourth dirty entry takes the caches over the budget
        await writer.put_session(address(i), os.urandom(RECORD))
    assert budget.over and writer.flushes == 0
    for i in range(10):  # the reader's fills cannot push the writer's dirty entries out
        await reader_backend.put_session(address(i), os.urandom(RECORD))
        assert await reader.get_session(address(i)) is not None
    assert writer.dirty_count == 4 and len(writer) == 4
    assert len(reader) == 0  # over the budget on dirty entries alone: nothing clean is kept
    # The next write of the writer finds the budget exceeded: it flushes first.
    await writer.put_session(address(4), os.urandom(RECORD))
    assert writer.flushes == 1
    assert writer.dirty_count == 1
    assert budget.used <= budget.max_bytes
    assert len(await writer.backend.get_sessions([address(i) for i in range(4)])) == 4


async def test_lowering_the_budget_evicts_at_once_and_closing_gives_memory_back(
    store: Any,
) -> None:
    budget = CacheBudget()
    cache = SignalCache(store.backend(await store.create_device()), budget=budget)
    await cache.put_sessions_batch([(address(i), os.urandom(RECORD)) for i in range(50)])
    await cache.flush()
    assert budget.used == sum(cost(i) for i in range(50))
    budget.max_bytes = sum(cost(i) for i in range(40, 50))  # the ten most recent
    assert len(cache) == 10
    assert budget.used <= budget.max_bytes
    await cache.put_session(address(99), b"dirty")
    await cache.close()  # flushes, then forgets every (now clean) entry
    assert budget.used == 0 and len(cache) == 0
    assert await cache.get_session(address(99)) == b"dirty"  # still usable: reloads


async def test_a_dropped_cache_does_not_leak_through_its_budget(store: Any) -> None:
    budget = CacheBudget()
    cache = SignalCache(store.backend(await store.create_device()), budget=budget)
    for i in range(20):
        await cache.get_session(address(i))
    used = budget.used
    del cache
    gc.collect()
    assert not budget._caches  # the budget did not keep the cache alive
    budget.max_bytes = 0  # its entries' costs are still counted until evicted
    assert used > 0 and budget.used == 0


@pytest.mark.slow
async def test_100_accounts_of_1000_sessions_stay_under_the_budget(
    store: Any, record_property: Callable[[str, object], None]
) -> None:
    budget = CacheBudget.of(store)
    budget.max_bytes = 16 * 1024 * 1024  # a tenth of what the sessions take
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        managers = []
        for _ in range(100):
            backend = store.backend(await store.create_device())
            pm = await wastore.PersistenceManager.open(backend, signal_cache=True, lease=False)
            managers.append(pm)
            for i in range(1_000):  # a record object each, as a client's would be
                await pm.signal.put_session(address(i), os.urandom(RECORD))
                assert budget.used <= budget.max_bytes + cost(i)
            await pm.flush()
            for i in range(0, 1_000, 7):  # reads fill the cache again
                assert len(await pm.signal.get_session(address(i)) or b"") == RECORD
            assert budget.used <= budget.max_bytes
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # Everything this process allocated for 100 accounts: the cached entries (at most
    # the budget) and 100 managers with their caches, tasks and backends (~11 KB each).
    record_property("traced_bytes", held)
    record_property("budget_bytes", budget.max_bytes)
    assert held < budget.max_bytes + 100 * 16 * 1024, held
    assert sum(len(pm.signal_cache) for pm in managers) * cost(999) <= budget.max_bytes
    for pm in managers:
        await pm.close()
    assert budget.used == 0
    last = managers[-1].backend
    assert len(await last.get_sessions([address(i) for i in range(1_000)])) == 1_000
