"""The whole backend contract suite, run through SignalCaches.

Every account's backend is wrapped in a :class:`wastore.cache.SignalCache` (one per
account, as a PersistenceManager holds it), so the suite checks that a client
reading and writing through the cache sees the contract: reads of its own writes,
batches, per-user deletes, transactions (commit, rollback, nested blocks,
isolation from other tasks) and validation. Nothing is flushed by the wrapper
while a test runs: whatever the suite reads back comes through the cache.

What the wrapper does on the application's behalf: closing the container closes
(flushes) the caches first, and deleting an account drops its cache, as an
application closes an account's manager before deleting the account.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import wastore
from wastore.cache import CacheBudget, SignalCache
from wastore.testing import BackendContractSuite


class CachedContainer:
    """A container whose ``backend()`` hands out one SignalCache per account."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.budget = CacheBudget()
        self.caches: dict[int, SignalCache] = {}

    def backend(self, device_id: int) -> SignalCache:
        cache = self.caches.get(device_id)
        if cache is None:
            inner = self.inner.backend(device_id)  # validates the id first
            cache = self.caches[device_id] = SignalCache(inner, budget=self.budget)
        return cache

    async def delete_device(self, device_id: int) -> None:
        await self.inner.delete_device(device_id)
        cache = self.caches.pop(device_id, None)
        if cache is not None:
            cache.drop()

    async def close(self) -> None:
        try:
            for cache in self.caches.values():
                await cache.close()
        finally:
            await self.inner.close()

    async def __aenter__(self) -> CachedContainer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TestMemoryThroughCache(BackendContractSuite):
    @pytest_asyncio.fixture
    async def container(self) -> AsyncIterator[Any]:
        c = CachedContainer(await wastore.open_store("memory://"))
        yield c
        await c.close()


class TestSqliteThroughCache(BackendContractSuite):
    @pytest_asyncio.fixture
    async def container(self, tmp_path: Path) -> AsyncIterator[Any]:
        c = CachedContainer(await wastore.open_store(f"sqlite:///{tmp_path}/contract.db"))
        yield c
        await c.close()


class TestTinySqliteCache(BackendContractSuite):
    """Caches of two entries: every test runs with constant eviction and back-pressure."""

    @pytest_asyncio.fixture
    async def container(self, tmp_path: Path) -> AsyncIterator[Any]:
        c = CachedContainer(await wastore.open_store(f"sqlite:///{tmp_path}/contract.db"))
        c.budget.max_bytes = 2_000  # a handful of entries across all accounts
        original = c.backend

        def tiny(device_id: int) -> SignalCache:
            cache = c.caches.get(device_id)
            if cache is None:
                inner = c.inner.backend(device_id)
                cache = c.caches[device_id] = SignalCache(inner, max_entries=2, budget=c.budget)
            return cache

        c.backend = tiny  # type: ignore[method-assign]
        yield c
        c.backend = original  # type: ignore[method-assign]
        await c.close()


@pytest.mark.postgres
class TestPostgresThroughCache(BackendContractSuite):
    @pytest_asyncio.fixture
    async def container(self, pg_url: str, tmp_path: Path) -> AsyncIterator[Any]:
        inner = await wastore.open_store(pg_url, pool_size=4, snapshot_dir=str(tmp_path))
        c = CachedContainer(inner)
        yield c
        await c.close()
