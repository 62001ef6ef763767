"""A throwaway PostgreSQL server for the tests, and per-test databases.

Fixtures (import them into a test module with
``from pg_server import pg_server, pg_url  # noqa: F401``):

- ``pg_server`` (session): a running server. With ``WASTORE_TEST_POSTGRES_URL``
  set, that server is used (the role needs CREATEDB); otherwise a cluster is
  created with ``initdb`` in a temporary folder and started with ``pg_ctl``
  (as the ``postgres`` user when the tests run as root: ``initdb`` refuses
  root). The binaries are looked up in ``WASTORE_PG_BINDIR``, on ``PATH`` and in
  ``/usr/lib/postgresql/*/bin`` (``.ci/pg.sh`` installs them on CI). Once per
  session a template database is created and migrated to the latest schema.
- ``pg_url`` (function): the URL of a fresh database copied from that template
  (``CREATE DATABASE ... TEMPLATE``: about as fast as a schema, fully isolated),
  dropped after the test.
- ``pg_blank_url`` (function): the URL of a fresh, empty database.
- ``pg_cluster`` (module): a private cluster that a test may stop and start
  (fault tests); needs the server binaries.

Without a server the tests are skipped with the reason — unless ``CI`` is set,
where a missing server fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio

from wastore.registry import redact_url
from wastore.testing.pgcluster import PgCluster, db_url, start_cluster

ENV_URL = "WASTORE_TEST_POSTGRES_URL"
TEMPLATE = "wastore_test_template"
_counter = itertools.count(1)


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def no_server(reason: str) -> None:
    """Skip the test (fail it under CI) because there is no PostgreSQL server."""
    message = (
        f"no PostgreSQL server for the tests: {reason}. Set {ENV_URL} to a server URL "
        "(a role with CREATEDB), or install the server binaries (.ci/pg.sh)"
    )
    if _ci():
        pytest.fail(message + " [CI is set: a missing server fails the run]", pytrace=False)
    pytest.skip(message)


class PgServer:
    """A reachable server: its admin URL and, when the tests started it, its cluster."""

    def __init__(self, url: str, cluster: PgCluster | None) -> None:
        self.url = url
        self.cluster = cluster

    def url_for(self, dbname: str) -> str:
        return db_url(self.url, dbname)

    async def create_database(self, template: str = TEMPLATE) -> str:
        name = f"wastore_t{os.getpid()}_{next(_counter)}"
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _check_reachable(server: PgServer) -> None:
    conn = await asyncpg.connect(server.url, timeout=10)
    await conn.close()


async def _make_template(server: PgServer) -> None:
    from wastore.backends.postgres import PostgresStore

    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
    finally:
        await conn.close()
    store = await PostgresStore.open(server.url_for(TEMPLATE), pool_size=2)
    await store.close()


_shared: PgServer | None = None
_users = 0


def _acquire_server() -> PgServer:
    """The server of this test session, started at the first use.

    Shared by reference count: a test module that imports the fixtures gets
    its own fixture definition, and all of them must share one server.
    """
    global _shared, _users
    if _shared is None:
        url = os.environ.get(ENV_URL, "").strip()
        cluster: PgCluster | None = None
        if not url:
            cluster = start_cluster()
            if cluster is None:
                no_server(f"{ENV_URL} is not set and no initdb/pg_ctl binaries were found")
            assert cluster is not None
            url = cluster.url
        server = PgServer(url, cluster)
        try:
            asyncio.run(_check_reachable(server))
        except (OSError, asyncpg.PostgresError) as err:
            if cluster is not None:
                cluster.destroy()
            no_server(f"cannot connect to {redact_url(server.url)}: {err}")
        try:  # an error here is a real failure, never a skip
            asyncio.run(_make_template(server))
        except BaseException:
            if cluster is not None:
                cluster.destroy()
            raise
        _shared = server
    _users += 1
    return _shared


def _release_server() -> None:
    global _shared, _users
    _users -= 1
    if _users > 0 or _shared is None:
        return
    server, _shared = _shared, None
    with contextlib.suppress(Exception):
        asyncio.run(server.drop_database(TEMPLATE))
    if server.cluster is not None:
        server.cluster.destroy()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server with a migrated template database."""
    server = _acquire_server()
    try:
        yield server
    finally:
        _release_server()


@pytest_asyncio.fixture
async def pg_url(pg_server: PgServer) -> AsyncIterator[str]:
    """The URL of a fresh database at the latest wastore schema (dropped afterwards)."""
    name = await pg_server.create_database()
    try:
        yield pg_server.url_for(name)
    finally:
        await pg_server.drop_database(name)


@pytest_asyncio.fixture
async def pg_blank_url(pg_server: PgServer) -> AsyncIterator[str]:
    """The URL of a fresh, empty database (dropped afterwards)."""
    name = await pg_server.create_database("template0")
    try:
        yield pg_server.url_for(name)
    finally:
        await pg_server.drop_database(name)


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    """A private cluster that the test may stop (``pg_ctl stop -m immediate``) and start."""
    cluster = start_cluster()
    if cluster is None:
        no_server("the fault tests need the server binaries (initdb, pg_ctl) to stop a server")
        return
    try:
        yield cluster
    finally:
        cluster.destroy()


if __name__ == "__main__":  # a server for manual experiments: python tests/pg_server.py
    c = start_cluster()
    if c is None:
        sys.exit("no PostgreSQL binaries found")
    print(c.url, flush=True)
    try:
        input("press Enter to stop and remove the cluster\n")
    finally:
        c.destroy()
