"""PostgreSQL schema: creation, upgrade from the first schema step, refusal of a newer
one, and processes that open one fresh database at the same time."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

import wastore
from wastore import PersistenceManager, SchemaError, SchemaTooNewError
from wastore.backends.postgres import PostgresStore
from wastore.backends.sql import codec, schema

pytestmark = pytest.mark.postgres

P = schema.DEFAULT_PREFIX
V1_TABLES = [t for t in schema.TABLES if f"{{p}}{t} (" in schema.MIGRATIONS[0].ddl]


def _value(table: str, column: str, kind: str, n: int) -> Any:
    if kind == "int":
        return 1000 + n
    if kind == "text":
        return f"{table}.{column}.{n}:1@s.whatsapp.net"
    if kind == "blob":
        return f"{table}/{column}/{n}".encode()
    if kind == "bool":
        return n % 2 == 0
    return 1.5 + n


async def _fill_v1(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Create the first schema step only and put rows in every one of its tables."""
    await conn.execute(";\n".join(schema.render(schema.MIGRATIONS[0].ddl, "postgres", P)))
    await conn.execute(f"INSERT INTO {P}version (version, compat) VALUES (1, 1)")
    columns = schema.columns()
    later = schema.added_columns()["device"]  # not there yet in a v1 database
    full = zip(codec.DEVICE_COLUMNS, codec.device_to_row(wastore.Device.new(), 123), strict=True)
    v1 = [(c, value) for c, value in full if c not in later]
    names = ", ".join(c for c, _ in v1)
    device = [value for _, value in v1]
    marks = ", ".join(f"${i}" for i in range(2, len(device) + 2))
    await conn.execute(f"INSERT INTO {P}device (id, {names}) VALUES ($1, {marks})", 7, *device)
    for table in V1_TABLES[1:]:
        cols = columns[table]
        for n in range(3):
            values = [7 if c == "device_id" else _value(table, c, k, n) for c, k in cols]
            if table == "identities":
                values[2] = bytes([n]) * 32
            if table == "device_lists":
                values[2] = "[[0,0,0],[3,1,1]]"
            marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
            await conn.execute(
                f"INSERT INTO {P}{table} ({', '.join(c for c, _ in cols)}) VALUES ({marks})",
                *values,
            )
    return {t: await _rows(conn, t) for t in V1_TABLES}


async def _rows(conn: Any, table: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(r) for r in await conn.fetch(f"SELECT * FROM {P}{table}")), key=repr)


async def _schema_of(conn: Any) -> dict[str, Sequence[Any]]:
    cols = await conn.fetch(
        "SELECT table_name, column_name, data_type, is_nullable, column_default, "
        "collation_name, ordinal_position FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY 1, 7"
    )
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1"
    )
    fks = await conn.fetch(
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2"
    )
    return {
        "columns": [tuple(r) for r in cols],
        "indexes": [tuple(r) for r in indexes],
        "constraints": [tuple(r) for r in fks],
    }


async def test_fresh_database_is_created_at_the_latest_schema(pg_blank_url: str) -> None:
    async with await wastore.open_store(pg_blank_url) as c:
        assert isinstance(c, PostgresStore)
        assert await c.schema_status() == (schema.LATEST, schema.LATEST_COMPAT, [])
    conn = await asyncpg.connect(pg_blank_url)
    try:
        tables = {
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        assert tables == {f"{P}{t}" for t in (*schema.TABLES, *schema.OTHER_TABLES)}
        # every per-account table: device_id first in the key, cascading foreign key
        for table in schema.ACCOUNT_TABLES:
            key = await conn.fetchval(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = $1::regclass AND contype = 'p'",
                f"{P}{table}",
            )
            assert key.startswith("PRIMARY KEY (device_id"), (table, key)
            fk = await conn.fetchval(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = $1::regclass AND contype = 'f'",
                f"{P}{table}",
            )
            assert fk == f"FOREIGN KEY (device_id) REFERENCES {P}device(id) ON DELETE CASCADE"
    finally:
        await conn.close()


async def test_upgrade_from_v1_keeps_every_row(pg_blank_url: str, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_blank_url)
    try:
        before = await _fill_v1(conn)
        assert all(before[t] for t in V1_TABLES)
        assert "leases" not in V1_TABLES and "sessions" in V1_TABLES
    finally:
        await conn.close()

    async with await wastore.open_store(pg_blank_url) as c:
        assert isinstance(c, PostgresStore)
        assert await c.schema_status() == (schema.LATEST, schema.LATEST_COMPAT, [])
        b = c.backend(7)
        assert await b.get_session("sessions.address.0:1@s.whatsapp.net") == b"sessions/record/0"
        device = await b.load()
        assert device is not None
        # the tables added later work
        await b.put_group_metadata("g@g.us", b"meta")
        assert await b.get_group_metadata("g@g.us") == b"meta"
        pm = await PersistenceManager.open(b)
        await pm.process_command(wastore.SetPushName("upgraded"))
        await pm.close()

    conn = await asyncpg.connect(pg_blank_url)
    fresh = await asyncpg.connect(pg_url)
    try:
        for table, rows in before.items():
            after = await _rows(conn, table)
            if table == "device":  # the manager saved the device row since
                assert len(after) == 1
                continue
            assert after == rows, table
        assert await conn.fetch(f"SELECT version, compat FROM {P}version") == [
            (schema.LATEST, schema.LATEST_COMPAT)
        ]
        assert await _schema_of(conn) == await _schema_of(fresh)  # both paths, one schema
    finally:
        await conn.close()
        await fresh.close()


async def test_schema_too_new_is_refused(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"UPDATE {P}version SET version = $1, compat = $1", schema.LATEST + 1)
    finally:
        await conn.close()
    with pytest.raises(SchemaTooNewError, match="upgrade wastore"):
        await wastore.open_store(pg_url)


async def test_newer_but_compatible_schema_opens(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"UPDATE {P}version SET version = $1", schema.LATEST + 5)
    finally:
        await conn.close()
    async with await wastore.open_store(pg_url) as c:
        await c.create_device()
        assert (await c.schema_status())[0] == schema.LATEST + 5  # type: ignore[attr-defined]


async def test_old_schema_without_migrate_is_refused(pg_blank_url: str) -> None:
    conn = await asyncpg.connect(pg_blank_url)
    try:
        await _fill_v1(conn)
    finally:
        await conn.close()
    with pytest.raises(SchemaError, match="wastore migrate"):
        await wastore.open_store(pg_blank_url, migrate=False)
    async with await wastore.open_store(pg_blank_url) as c:  # and it still upgrades
        assert (await c.schema_status())[2] == []  # type: ignore[attr-defined]


async def test_foreign_tables_with_our_prefix_are_refused(pg_blank_url: str) -> None:
    conn = await asyncpg.connect(pg_blank_url)
    try:
        await conn.execute(f"CREATE TABLE {P}sessions (x int)")
    finally:
        await conn.close()
    with pytest.raises(SchemaError, match="not a wastore database"):
        await wastore.open_store(pg_blank_url)
    async with await wastore.open_store(pg_blank_url, prefix="other_"):  # another prefix is fine
        pass


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import wastore

    async def main(url):
        print("ready", flush=True)
        sys.stdin.readline()  # wait for "go", so that every child opens at once
        c = await wastore.open_store(url, pool_size=2)
        print("opened", (await c.schema_status())[0], flush=True)
        await c.close()

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_processes_opening_a_fresh_database_at_once(pg_blank_url: str) -> None:
    """Without the migration lock the second CREATE TABLE fails (or the version row
    doubles); with it, every process opens the same schema created once."""
    for _round in range(2):
        conn = await asyncpg.connect(pg_blank_url)
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await conn.close()
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, pg_blank_url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for child in children:  # every child has imported wastore
            assert child.stdout is not None
            assert (await asyncio.to_thread(child.stdout.readline)).strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, err = await asyncio.to_thread(child.communicate, timeout=60)
            assert child.returncode == 0, err
            assert out.split() == ["opened", str(schema.LATEST)]
        conn = await asyncpg.connect(pg_blank_url)
        try:
            assert await conn.fetch(f"SELECT version, compat FROM {P}version") == [
                (schema.LATEST, schema.LATEST_COMPAT)
            ]
        finally:
            await conn.close()
