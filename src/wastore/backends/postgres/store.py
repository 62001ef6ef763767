"""PostgresStore: the container over one PostgreSQL database (``postgresql://``).

Many accounts, many processes, one database: one small pool per container
(:mod:`.pool`) serves every account. Opening creates or upgrades the schema
with the shared runner (:mod:`wastore.backends.sql.migrate`), each step in its
own transaction under the schema's advisory lock, so processes opening one
fresh database at once create the schema once. Snapshots
(``snapshot_db``) write that account as a portable export file
(:mod:`wastore.portable`, mode 0600) in ``snapshot_dir`` (default: a
``wastore-snapshots`` folder in the current directory at open time).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import asyncpg

from ... import _validate as v
from ... import portable
from ...errors import ConfigError, StoreError
from .._common import sanitize_snapshot_name, utc_stamp, write_private
from ..options import check_flag, check_int, check_positive
from ..sql import migrate, schema
from ..sql.schema import Dialect, Migration
from ..sql.store import SqlStore
from .connections import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_POOL_SIZE,
    DEFAULT_RETRY_TIMEOUT,
    STATEMENT_CACHE_SIZE,
    PostgresOptions,
)
from .engine import PostgresEngine, log
from .errors import Conn, display_url, lost, translate
from .leases import MIGRATION_OBJID
from .pool import (
    ConnectTimeout,
    ForeignPool,
    OwnPool,
    Pool,
    connect_error,
    connect_retryable,
    retry_budget,
    unreachable,
)

DEFAULT_SNAPSHOT_DIR: Final = "wastore-snapshots"
_HOST: Final = socket.gethostname()


def default_application_name() -> str:
    return f"wastore pid {os.getpid()} on {_HOST}"[:63]


class PostgresStore(SqlStore):
    """A Container over one PostgreSQL database: one pool, many accounts.

    Open it with :func:`wastore.open_store` (``postgresql://user:pass@host/db``)
    or :meth:`open`.
    """

    engine: PostgresEngine

    def __init__(self, engine: PostgresEngine) -> None:
        super().__init__(engine)
        self._dbname = "postgres"

    @classmethod
    async def open(
        cls,
        dsn: str | Any,
        *,
        prefix: str = schema.DEFAULT_PREFIX,
        pool_size: int = DEFAULT_POOL_SIZE,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        connect_timeout: float | None = None,
        snapshot_dir: str | os.PathLike[str] | None = None,
        migrate: bool = True,
        application_name: str | None = None,
    ) -> PostgresStore:
        """Connect, create or upgrade the schema, and return the store.

        Args:
            dsn: a ``postgresql://`` URL (libpq parameters such as ``sslmode``
                may be in its query string), or an existing ``asyncpg.Pool``.
            prefix: table prefix (default ``wastore_``).
            pool_size: connections of the pool, at least 2 (default 10); the
                account leases use one of them.
            retry_timeout: seconds to keep retrying while the server cannot be
                reached (refused, DNS, no answer, starting up), before
                :class:`BackendUnavailableError` naming the first failure (default 5),
                counted from the first connection attempt.
            command_timeout: seconds one statement (or a wait for a free
                connection) may take (default 30).
            connect_timeout: seconds one connection attempt may take (default:
                ``retry_timeout``; cut to what is left of the budget, never below
                0.25 s).
            snapshot_dir: folder of ``snapshot_db`` files (default
                ``./wastore-snapshots``, resolved now).
            migrate: upgrade an older schema (else raise SchemaError).
            application_name: how the connections are named in
                ``pg_stat_activity`` and to a second lease holder (default
                ``"wastore pid N on HOST"``).

        Raises:
            ConfigError: a bad option, a refused login (password, role, pg_hba), a
                missing database or a TLS failure: raised at once, never retried.
            SchemaTooNewError: the database was written by a newer wastore.
            BackendUnavailableError: the server stayed unreachable.
        """
        foreign = not isinstance(dsn, str)
        if foreign and not isinstance(dsn, asyncpg.Pool):
            raise ConfigError(
                "PostgresStore needs a postgresql:// URL or an asyncpg.Pool, "
                f"not {type(dsn).__name__}"
            )
        retry = check_positive(retry_timeout, "retry_timeout")
        size = check_int(pool_size, "pool_size", 2)
        opts = PostgresOptions(
            prefix=schema.check_prefix(prefix),
            retry_timeout=retry,
            command_timeout=check_positive(command_timeout, "command_timeout"),
            connect_timeout=retry
            if connect_timeout is None
            else check_positive(connect_timeout, "connect_timeout"),
            snapshot_dir=_absolute(snapshot_dir or DEFAULT_SNAPSHOT_DIR),
            migrate=check_flag(migrate, "migrate"),
            application_name=str(application_name or default_application_name())[:63],
        )
        pool: Pool
        if foreign:
            pool = ForeignPool(dsn)
            if pool.size < 2:
                raise ConfigError("the asyncpg pool needs max_size >= 2 (leases use a connection)")
            where = "the given asyncpg pool"
        else:
            url = str(dsn)
            where = display_url(url)

            async def connect(limit: float) -> Conn:
                return await connect_once(
                    url,
                    limit,
                    statement_cache_size=STATEMENT_CACHE_SIZE,
                    server_settings={"application_name": opts.application_name},
                )

            pool = OwnPool(connect, size)
        engine = PostgresEngine(pool, opts, where)
        store = cls(engine)
        try:
            await store._start()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _start(self) -> None:
        e = self.engine
        budget = e.budget()
        while True:
            conn = await e.get_conn(budget)
            try:
                await migrate.migrate(
                    SchemaConn(conn, e.leases.lock_class),
                    self.prefix,
                    upgrade=e.opts.migrate,
                    where=e.where,
                    log=log,
                )
                self._dbname = str(await conn.fetchval("SELECT current_database()"))
            except BaseException as err:
                e.pool.discard(conn)
                if isinstance(err, Exception) and lost(err):
                    await e.backoff(budget, err, "opening the store")
                    continue
                e.reraise(err, "opening the store")
            await e.pool.release(conn)
            e.start_watchdog()
            return

    def __repr__(self) -> str:
        return f"PostgresStore({self.engine.where!r}, prefix={self.prefix!r})"

    @property
    def pool_size(self) -> int:
        """The most connections this store opens (leases included)."""
        return self.engine.pool.size

    @property
    def open_connections(self) -> int:
        """Connections open (or being opened) right now."""
        return self.engine.pool.opened

    async def schema_status(self) -> tuple[int, int, list[Migration]]:
        """``(version, compat, pending steps)`` of the database."""

        async def read(conn: Conn) -> tuple[int, int, list[Migration]]:
            return await migrate.status(SchemaConn(conn, None), self.prefix)

        result: tuple[int, int, list[Migration]] = await self.engine.with_conn(read, True)
        return result

    async def snapshot(self, device_id: int, name: str, extra: bytes | None) -> str:
        """Write the account as a portable export file; return its path."""
        safe = sanitize_snapshot_name(name)
        extra = v.opt_blob(extra, "extra")
        data = portable.encode(await self.export_account(device_id))
        folder = self.engine.opts.snapshot_dir
        db = sanitize_snapshot_name(self._dbname)
        target = folder / f"{db}-account{device_id}.snapshot-{utc_stamp()}-{safe}.json"

        def write() -> None:
            folder.mkdir(parents=True, mode=0o700, exist_ok=True)
            write_private(target, data)
            if extra is not None:
                write_private(target.with_name(target.name + ".extra"), extra)

        try:
            await asyncio.to_thread(write)
        except OSError as err:
            raise StoreError(f"cannot write the snapshot {str(target)!r}: {err.strerror}") from err
        return str(target)


async def connect_once(dsn: str, limit: float, **kwargs: Any) -> Conn:
    """One connection attempt of at most ``limit`` seconds (:class:`ConnectTimeout`
    when the server does not answer in time)."""
    try:
        return await asyncpg.connect(dsn, timeout=limit, **kwargs)
    except TimeoutError as err:
        raise ConnectTimeout(limit) from err


def _absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute against the current directory (now, not when used)."""
    return Path(os.path.abspath(path))


class SchemaConn:
    """A connection as the migrations runner uses it."""

    dialect: Dialect = "postgres"

    def __init__(self, conn: Conn, lock: int | None) -> None:
        self._c = conn
        self._lock = lock

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = await self._c.fetch(sql, *args)
        return rows

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        await self._c.execute(sql, *args)

    async def script(self, statements: Sequence[str]) -> None:
        await self._c.execute(";\n".join(statements))  # one round trip

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        assert self._lock is not None
        async with self._c.transaction():
            await self._c.execute(
                "SELECT pg_advisory_xact_lock($1, $2)", self._lock, MIGRATION_OBJID
            )
            yield


async def read_schema_version(url: str, prefix: str) -> tuple[int, int] | None:
    """``(version, compat)`` of the database at ``url``, None when it has no wastore
    schema. One plain connection: nothing is created, migrated or locked.

    Raises:
        ConfigError: a refused login or a missing database.
        SchemaError: tables of the prefix exist without a version table.
        BackendUnavailableError: the server cannot be reached.
    """
    from .url import parse_postgres_url  # the URL module opens stores: imported late

    dsn, options = parse_postgres_url(url)
    where = display_url(url)
    retry = float(options.get("retry_timeout", DEFAULT_RETRY_TIMEOUT))
    limit = float(options.get("connect_timeout", retry))
    budget = retry_budget(retry, limit)
    while True:
        try:
            conn = await connect_once(dsn, budget.attempt(limit))
            break
        except Exception as err:
            if not connect_retryable(err):
                raise connect_error(err, where) from err
            if not await budget.pause(err):
                raise unreachable(where, budget, "connecting") from budget.first
    try:
        return await migrate.read_version(SchemaConn(conn, None), schema.check_prefix(prefix))
    except StoreError:
        raise
    except Exception as err:
        raise translate(err, "reading the schema version", where) from err
    finally:
        await conn.close()
