"""SqliteStore passes the whole backend contract suite, on a real file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

import wastore
from wastore.testing import BackendContractSuite


class TestSqliteContract(BackendContractSuite):
    @pytest_asyncio.fixture
    async def container(self, tmp_path: Path) -> AsyncIterator[wastore.Container]:
        c = await wastore.open_store(f"sqlite:///{tmp_path}/contract.db")
        yield c
        await c.close()


class TestSqliteFullSyncContract(BackendContractSuite):
    """The same with synchronous=FULL, where every commit runs on the worker thread."""

    @pytest_asyncio.fixture
    async def container(self, tmp_path: Path) -> AsyncIterator[wastore.Container]:
        c = await wastore.open_store(f"sqlite:///{tmp_path}/contract.db?synchronous=FULL")
        yield c
        await c.close()
