"""The backend contract suite over MemoryStore (the reference implementation)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

import wastore
from wastore.testing import BackendContractSuite


class TestMemoryStore(BackendContractSuite):
    """MemoryStore, opened from a ``memory://`` URL, passes the whole contract."""

    @pytest_asyncio.fixture
    async def container(self) -> AsyncIterator[wastore.Container]:
        c = await wastore.open_store("memory://")
        yield c
        await c.close()
