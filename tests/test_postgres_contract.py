"""PostgresStore passes the whole backend contract suite, on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import wastore
from wastore.testing import BackendContractSuite

pytestmark = pytest.mark.postgres


class TestPostgresContract(BackendContractSuite):
    @pytest_asyncio.fixture
    async def container(self, pg_url: str, tmp_path: Path) -> AsyncIterator[wastore.Container]:
        c = await wastore.open_store(pg_url, pool_size=4, snapshot_dir=str(tmp_path))
        yield c
        await c.close()
