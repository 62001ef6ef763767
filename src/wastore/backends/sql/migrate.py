"""The migrations runner, once for both dialects (and for ``wastore migrate``).

The steps are those of :mod:`~wastore.backends.sql.schema`; this module
applies them:

- a database without a wastore schema is created at :data:`schema.LATEST`
  directly (:func:`migrate`), unless tables of the prefix exist without a
  version table (another application's tables, or another prefix):
  :class:`~wastore.SchemaError`;
- an older one is upgraded one step at a time, each step in its own
  transaction, which reads the version again first: processes that open one
  database at once apply every step once;
- a database whose ``compat`` this code does not reach raises
  :class:`~wastore.SchemaTooNewError` (from :func:`schema.plan`).

Every transaction of the runner holds the database's schema lock
(:meth:`SchemaConn.locked`: ``BEGIN IMMEDIATE`` on SQLite, an advisory
transaction lock on PostgreSQL). The runner is written over
:class:`SchemaConn`; SQLite's connection never suspends, so SQLite runs it
synchronously with :func:`~wastore.backends.sql.engine.run_now`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Protocol

from ...errors import SchemaError
from . import schema
from .schema import Dialect, Migration

# (does the version table exist?, which tables carry the prefix?) per dialect
_CATALOG: Final[dict[Dialect, tuple[str, str]]] = {
    "sqlite": (
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE $1 ESCAPE '\\'",
    ),
    "postgres": (
        "SELECT 1 WHERE to_regclass($1) IS NOT NULL",
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename LIKE $1 ESCAPE '\\'",
    ),
}
_GREATEST: Final[dict[Dialect, str]] = {"sqlite": "max", "postgres": "GREATEST"}


class SchemaConn(Protocol):
    """One connection, as the runner uses it (statements with ``$n`` placeholders)."""

    @property
    def dialect(self) -> Dialect: ...

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None: ...

    async def script(self, statements: Sequence[str]) -> None:
        """Run DDL statements (no parameters)."""
        ...

    def locked(self) -> AbstractAsyncContextManager[None]:
        """A transaction holding the schema lock: committed at the end of the block,
        rolled back if it raises."""
        ...


async def read_version(conn: SchemaConn, prefix: str) -> tuple[int, int] | None:
    """``(version, compat)`` of the database, None when it has no wastore schema yet.

    Raises:
        SchemaError: tables of the prefix exist without a version table, or the
            version table does not hold exactly one row of two integers.
    """
    has_version, prefixed = _CATALOG[conn.dialect]
    if not await conn.fetch(has_version, (f"{prefix}version",)):
        if await conn.fetch(prefixed, (prefix.replace("_", "\\_") + "%",)):
            raise SchemaError(
                f"tables with the prefix {prefix!r} exist but no {prefix}version table: this is "
                "not a wastore database, or a different table prefix is in use (?prefix=...)"
            )
        return None
    rows = await conn.fetch(f"SELECT version, compat FROM {prefix}version")
    if len(rows) != 1:
        raise SchemaError(f"the table {prefix}version must hold exactly one row, found {len(rows)}")
    version, compat = rows[0][0], rows[0][1]
    if type(version) is not int or type(compat) is not int:
        raise SchemaError(
            f"the table {prefix}version holds ({_shown(version)}, {_shown(compat)}) where two "
            "integers belong: the database was damaged or edited by hand; restore a backup"
        )
    return version, compat


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


async def status(conn: SchemaConn, prefix: str) -> tuple[int, int, list[Migration]]:
    """``(version, compat, pending steps)`` of a database that has a wastore schema.

    Raises:
        SchemaError: the wastore tables are gone.
        SchemaTooNewError: the database was written by a newer wastore.
    """
    row = await read_version(conn, prefix)
    if row is None:
        raise SchemaError("the wastore tables are gone from the database")
    return row[0], row[1], schema.plan(*row)


async def migrate(
    conn: SchemaConn, prefix: str, *, upgrade: bool, where: str, log: logging.Logger
) -> None:
    """Create the schema, or bring it up to date.

    Args:
        conn: a connection outside any transaction.
        prefix: the table prefix.
        upgrade: apply pending steps (else an older schema raises SchemaError).
        where: the database, for log lines (no password).
        log: the backend's logger.

    Raises:
        SchemaError: not a wastore database, or an older schema and ``upgrade`` false.
        SchemaTooNewError: the database was written by a newer wastore.
    """
    dialect = conn.dialect
    async with conn.locked():
        row = await read_version(conn, prefix)
        if row is None:
            await conn.script(schema.render(schema.latest_ddl(), dialect, prefix))
            await conn.execute(
                f"INSERT INTO {prefix}version (version, compat) VALUES ($1, $2)",
                (schema.LATEST, schema.LATEST_COMPAT),
            )
            log.info("created wastore schema version %d in %s", schema.LATEST, where)
            return
        steps = schema.plan(*row)
    if steps and not upgrade:
        raise SchemaError(
            f"the database is at schema version {row[0]}, this wastore needs {schema.LATEST}: "
            "run `wastore migrate URL` (or open it with migrate=True)"
        )
    for step in steps:
        async with conn.locked():
            now = await read_version(conn, prefix)
            assert now is not None
            if now[0] >= step.version:  # another process got there first
                continue
            await conn.script(schema.render(step.ddl, dialect, prefix))
            if step.backfill is not None:
                await step.backfill(conn, prefix)
            await conn.execute(
                f"UPDATE {prefix}version SET version = $1, "
                f"compat = {_GREATEST[dialect]}(compat, $2)",
                (step.version, step.compat),
            )
        log.info("migrated %s to schema version %d: %s", where, step.version, step.description)
