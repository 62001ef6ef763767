"""PostgresStore: many accounts, many processes, one PostgreSQL database (``postgresql://``).

Design (measured on a 2-core machine, server on the same host; see
``benchmarks/pg_quick.py`` and ``docs/postgres.md``):

- **One small pool per Container**, shared by every account (``pool_size``,
  default 10, the lease connection included). It is wastore's own pool of
  plain asyncpg connections, not ``asyncpg.Pool``: ``Pool.release()`` resets
  the session with a round trip (``RESET ALL``, ``pg_advisory_unlock_all()``,
  ...) and returns the connection through a shielded task; a primary-key read
  took ~60 µs on a connection and ~120 µs through ``asyncpg.Pool``. wastore
  never changes session state, so its pool hands connections out and takes
  them back without I/O. Connections open lazily; dead ones are replaced. An
  existing ``asyncpg.Pool`` given to :func:`wastore.open_store` is used as it
  is (and never closed here).
- **Statements** are the shared ones of :mod:`wastore.backends.sql.queries`,
  prepared once per connection by asyncpg. A single statement runs in
  autocommit mode: no ``BEGIN``/``COMMIT`` round trips. Only the multi-key
  statements of :data:`_PG_STATEMENTS` are PostgreSQL-specific.
- **Batches and multi-key reads are one statement.** Reads join the table to
  ``unnest($n::type[])``: one round trip for any number of keys, no parameter
  limit. (``= ANY($n)`` was measured first: its generic plan on a table not
  yet analyzed filters every row of the account against the array, 150 ms
  instead of 3 ms for 1,000 MACs among 10,000.) Batch writes of one kind of
  key are one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE``,
  chosen by measurement over ``executemany`` of the one-row upsert and over
  ``COPY`` into a temporary table plus one upsert: 500 mutation MACs took
  3.2-4.8 ms with ``unnest`` against 5.6-7.9 ms with ``executemany``; 1,024
  sessions of 1,200 bytes took 16-19 ms with all three (the server's work
  dominates), ``unnest`` never slower; ``COPY`` needs a temporary table and a
  transaction, and won nowhere. Batches whose duplicates must merge as
  sequential calls would (LID mappings, message secrets, device lists) use
  ``executemany`` of the shared statement: one round trip, one implicit
  transaction. Batch keys are sorted, so concurrent batches lock rows in the
  same order and cannot deadlock each other.
- **Retries**: "the server cannot be reached" (refused/reset connections,
  ``CannotConnectNowError`` while it starts or stops, a connection that died)
  is retried with backoff (at once, then 10 ms doubling to 0.5 s) for
  ``retry_timeout`` seconds (default 5), then raised as
  :class:`~wastore.BackendUnavailableError`. A statement whose connection
  died after it was sent has an unknown outcome: it runs again only if running
  it twice is harmless (reads, upserts), never otherwise (``take_sent_message``,
  ``create_device``, deletes that return a count), and never inside a
  transaction, which the server then rolls back.
- **Timeouts**: one watchdog task per container closes the connection of any
  statement running longer than ``command_timeout`` (default 30 s); asyncpg's
  per-call timeout schedules a timer around every statement, 5 µs of a 30 µs
  read. Each connection attempt is bounded by ``connect_timeout``.
- **Transactions**: ``backend.transaction()`` holds one connection for the
  block; nested blocks and multi-statement calls inside it are savepoints. A
  statement that fails inside a block aborts the PostgreSQL transaction: later
  calls in the block raise :class:`~wastore.StoreError`, and the block rolls
  back and raises instead of committing (a nested block that raises rolls back
  to its savepoint, and the outer block can go on).
- **Account leases**: session-level advisory locks,
  ``pg_try_advisory_lock(classid, objid)`` with classid a stable 31-bit hash of
  the table prefix and objid the device id, all held by ONE connection of the
  pool per container (taken at the first lease, given back after the last). A
  second holder gets :class:`~wastore.AccountInUseError` naming the
  ``application_name`` of the holding connection (``"wastore pid N on
  HOST"``). The lock goes with its connection: a crashed process frees its
  accounts at once. ``renew_lease`` checks the connection at most once a
  second for all accounts; after a server restart the locks are taken again
  on a new connection, and a lease is reported lost only if another session
  took it meanwhile. Device saves through a leased backend are fenced.
- **Migrations**: those of :mod:`wastore.backends.sql.schema`, each step in
  its own transaction under ``pg_advisory_xact_lock``, so processes opening
  one fresh database at once create the schema once.
- **Snapshots** (``snapshot_db``): that account as a portable export file
  (:mod:`wastore.portable`, mode 0600) in ``snapshot_dir`` (default: a
  ``wastore-snapshots`` folder in the current directory at open time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg

from .. import _validate as v
from .. import portable
from ..device import Device
from ..errors import (
    AccountInUseError,
    BackendUnavailableError,
    ConfigError,
    DeviceNotFoundError,
    SchemaError,
    StoreError,
    ValidationError,
)
from ..jid import JID, as_jid
from ..portable import AccountDump, Row
from ..registry import redact_url
from ..values import (
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
)
from . import _txn
from ._common import sanitize_snapshot_name, several_accounts, utc_stamp, write_private
from .sql import codec, dump, schema
from .sql.account import SqlAccount
from .sql.queries import Queries

log = logging.getLogger("wastore.postgres")

T = TypeVar("T")
Conn = Any  # asyncpg.Connection (or a pool proxy of one); asyncpg has no type stubs
Op = Callable[[Conn], Awaitable[Any]]

DEFAULT_POOL_SIZE: Final = 10
DEFAULT_RETRY_TIMEOUT: Final = 5.0
DEFAULT_COMMAND_TIMEOUT: Final = 30.0
DEFAULT_SNAPSHOT_DIR: Final = "wastore-snapshots"
STATEMENT_CACHE_SIZE: Final = 256
LEASE_CHECK_INTERVAL: Final = 1.0
"""Renewals within this many seconds of the last check of the lease connection trust it."""
_MAX_BACKOFF: Final = 0.5
_HOST: Final = socket.gethostname()
_MIGRATION_OBJID: Final = 0  # device ids start at 1

# PostgreSQL-only statements (multi-key reads and batch writes); everything
# else comes from the shared statements of queries.py.
_PG_STATEMENTS: Final[dict[str, str]] = {
    # Multi-key reads join the table to unnest(keys) rather than test "= ANY(keys)":
    # the generic plan of "= ANY" on a table not yet analyzed filters every row of
    # the account against the whole array (150 ms for 1,000 MACs among 10,000
    # instead of 3 ms); the join is looked up key by key in the index in any case.
    "get_sessions": "SELECT s.address, s.record FROM unnest($2::text[]) AS k(a) "
    "JOIN {p}sessions s ON s.device_id = $1 AND s.address = k.a",
    "load_prekeys": "SELECT p.id, p.record FROM unnest($2::bigint[]) AS k(i) "
    "JOIN {p}prekeys p ON p.device_id = $1 AND p.id = k.i",
    "get_mutation_macs": "SELECT m.index_mac, m.value_mac FROM unnest($3::bytea[]) AS k(i) "
    "JOIN {p}app_state_macs m ON m.device_id = $1 AND m.name = $2 AND m.index_mac = k.i",
    "mark_prekeys_uploaded": "UPDATE {p}prekeys p SET uploaded = TRUE "
    "FROM unnest($2::bigint[]) AS k(i) "
    "WHERE p.device_id = $1 AND p.id = k.i AND p.uploaded = FALSE",
    "delete_mutation_macs": "DELETE FROM {p}app_state_macs m USING unnest($3::bytea[]) AS k(i) "
    "WHERE m.device_id = $1 AND m.name = $2 AND m.index_mac = k.i",
    "delete_sender_key_device_rows": "DELETE FROM {p}sender_key_devices d "
    "USING unnest($2::text[]) AS k(j) WHERE d.device_id = $1 AND d.device_jid = k.j",
    # Batch writes: one INSERT ... SELECT FROM unnest(...) (keys unique and sorted).
    "put_sessions": "INSERT INTO {p}sessions (device_id, address, record) "
    "SELECT $1, a, r FROM unnest($2::text[], $3::bytea[]) AS t(a, r) "
    "ON CONFLICT (device_id, address) DO UPDATE SET record = excluded.record",
    "put_identities": "INSERT INTO {p}identities (device_id, address, key) "
    "SELECT $1, a, k FROM unnest($2::text[], $3::bytea[]) AS t(a, k) "
    "ON CONFLICT (device_id, address) DO UPDATE SET key = excluded.key",
    "put_sender_keys": "INSERT INTO {p}sender_keys (device_id, address, record) "
    "SELECT $1, a, r FROM unnest($2::text[], $3::bytea[]) AS t(a, r) "
    "ON CONFLICT (device_id, address) DO UPDATE SET record = excluded.record",
    "store_prekeys": "INSERT INTO {p}prekeys (device_id, id, record, uploaded) "
    "SELECT $1, i, r, $4 FROM unnest($2::bigint[], $3::bytea[]) AS t(i, r) "
    "ON CONFLICT (device_id, id) DO UPDATE SET record = excluded.record, "
    "uploaded = excluded.uploaded",
    "put_mutation_macs": "INSERT INTO {p}app_state_macs (device_id, name, index_mac, version, "
    "value_mac) SELECT $1, $2, i, $3, m FROM unnest($4::bytea[], $5::bytea[]) AS t(i, m) "
    "ON CONFLICT (device_id, name, index_mac) DO UPDATE SET version = excluded.version, "
    "value_mac = excluded.value_mac",
    "set_sender_key_status": "INSERT INTO {p}sender_key_devices (device_id, group_jid, "
    "device_jid, has_key) SELECT $1, $2, d, h FROM unnest($3::text[], $4::boolean[]) AS t(d, h) "
    "ON CONFLICT (device_id, group_jid, device_jid) DO UPDATE SET has_key = excluded.has_key",
    # An id given to backend(id).create() does not advance the identity
    # sequence: move it past that id so create_device() does not collide.
    "bump_device_ids": "SELECT setval(s, "
    "GREATEST($1::bigint, COALESCE(pg_sequence_last_value(s), 1))) "
    "FROM CAST(pg_get_serial_sequence('{p}device', 'id') AS regclass) AS s",
    # Leases: NULL when the account does not exist.
    "try_lease": "SELECT CASE WHEN EXISTS (SELECT 1 FROM {p}device WHERE id = $3) "
    "THEN pg_try_advisory_lock($1, $2) END",
    "lease_holder": "SELECT a.application_name, l.pid, host(a.client_addr) "
    "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid LIMIT 1",
    "held_leases": "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' "
    "AND pid = pg_backend_pid() AND granted AND objsubid = 2 AND classid = $1::bigint::oid",
    "unlock_lease": "SELECT pg_advisory_unlock($1, $2)",
}


def lock_class(prefix: str) -> int:
    """The advisory-lock class of a table prefix: a stable 31-bit hash."""
    digest = hashlib.sha256(b"wastore:" + schema.check_prefix(prefix).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _objid(device_id: int) -> int:
    """``device_id`` as the int4 key of an advisory lock (its low 32 bits, signed)."""
    low = device_id & 0xFFFFFFFF
    return low - (1 << 32) if low >= 1 << 31 else low


def _status_count(status: str) -> int:
    """The row count of a command status (``"DELETE 3"``, ``"INSERT 0 1"``)."""
    try:
        return int(status.rsplit(" ", 1)[1])
    except (IndexError, ValueError):
        return 0


# -- error classification ------------------------------------------------------
_LOST_ERRORS: Final = (
    OSError,
    asyncpg.PostgresConnectionError,  # class 08, incl. "closed in the middle of operation"
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def _unsent(err: BaseException) -> bool:
    """The statement was never sent: the connection was already closed, or the server
    had just ended the session (a FATAL error read while the connection was idle, e.g.
    ``pg_terminate_backend``, before the socket's end was seen)."""
    if isinstance(err, asyncpg.InterfaceError):
        return "connection is closed" in str(err)
    return isinstance(err, asyncpg.InternalClientError) and "cannot switch to state" in str(err)


def _lost(err: BaseException) -> bool:
    """The server is unreachable or the connection died (transient)."""
    return isinstance(err, _LOST_ERRORS) or _unsent(err)


def _connect_transient(err: BaseException) -> bool:
    return _lost(err) or isinstance(err, TimeoutError)


def _retry_after_send(err: BaseException, idempotent: bool) -> bool:
    """Whether a statement that failed with ``err`` outside a transaction may run again."""
    if _unsent(err) or isinstance(err, asyncpg.TransactionRollbackError):
        return True  # never ran, or rolled back whole (deadlock, serialization)
    return idempotent and _lost(err)


def _connection_ok(conn: Conn, err: BaseException) -> bool:
    """After ``err``, can ``conn`` go back to the pool? (Not after a cancellation or a
    timeout: the connection may still be busy with the statement.)"""
    return (
        isinstance(err, asyncpg.PostgresError | StoreError)
        and not _lost(err)
        and not conn.is_closed()
        and not conn.is_in_transaction()
    )


def _reraise(err: BaseException, action: str, where: str) -> NoReturn:
    """Raise ``err`` as a wastore error (chained), or as it is if it is one already."""
    if isinstance(err, StoreError) or not isinstance(err, Exception):
        raise err
    raise _translate(err, action, where) from err


def _message(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    text = text if len(text) <= 300 else text[:300] + "…"
    return f"{type(err).__name__}: {text}"


def _translate(err: BaseException, action: str, where: str) -> StoreError:
    """A driver error as the library's own (the caller chains it with ``from``)."""
    if isinstance(err, StoreError):
        return err
    if isinstance(err, asyncpg.ForeignKeyViolationError):
        return DeviceNotFoundError(0, "the account was deleted or never created")
    if _connect_transient(err):
        return BackendUnavailableError(
            f"PostgreSQL {action} failed: the connection to {where} could not be made or was "
            f"lost ({_message(err)})"
        )
    if isinstance(err, asyncpg.QueryCanceledError):
        return BackendUnavailableError(
            f"PostgreSQL {action} was cancelled at {where} (statement_timeout, or "
            f"pg_cancel_backend): {_message(err)}"
        )
    if isinstance(err, asyncpg.TransactionRollbackError):
        return BackendUnavailableError(
            f"PostgreSQL {action} conflicted with a concurrent transaction ({_message(err)}); "
            "run the transaction again"
        )
    if isinstance(err, asyncpg.InvalidAuthorizationSpecificationError):
        return ConfigError(f"PostgreSQL refused the login to {where}: {_message(err)}")
    if isinstance(err, asyncpg.InvalidCatalogNameError):
        return ConfigError(f"{where}: {_message(err)}; create the database first (createdb)")
    if isinstance(err, asyncpg.InsufficientPrivilegeError):
        return ConfigError(
            f"the PostgreSQL role lacks a privilege at {where}: {_message(err)}; grant it the "
            "rights on the wastore tables (or on the schema, to create them)"
        )
    if isinstance(err, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError):
        return SchemaError(
            f"the wastore tables at {where} are missing or different ({_message(err)}): "
            "they were changed outside wastore, or another table prefix is in use"
        )
    if isinstance(err, asyncpg.InsufficientResourcesError):
        hint = ""
        if "shared memory" in str(err):
            hint = (
                "; each leased account holds an advisory lock: raise the server's "
                "max_locks_per_transaction (see docs/postgres.md)"
            )
        return BackendUnavailableError(f"PostgreSQL {action} failed: {_message(err)}{hint}")
    return StoreError(f"PostgreSQL {action} failed: {_message(err)}")


def display_url(url: str) -> str:
    """``url`` without its password (also a ``password=`` query parameter)."""
    shown = redact_url(url)
    parts = urlsplit(shown)
    if parts.query and "password" in parts.query:
        query = [(k, "***" if k == "password" else x) for k, x in parse_qsl(parts.query, True)]
        shown = parts._replace(query=urlencode(query, safe="*")).geturl()
    return shown


# -- the connection pool ---------------------------------------------------------
class _PoolBusy(Exception):
    """No connection came free in time."""


class _OwnPool:
    """Up to ``size`` asyncpg connections, opened lazily, handed out without I/O.

    ``opened`` counts connections open or being opened. A waiter is handed a
    connection, or ``None`` meaning "a slot is yours: open a connection".
    """

    def __init__(self, connect: Callable[[float], Awaitable[Conn]], size: int) -> None:
        self._connect = connect
        self.size = size
        self.opened = 0
        self._idle: list[Conn] = []
        self._waiters: deque[asyncio.Future[Conn | None]] = deque()
        self._closed = False

    def take_nowait(self) -> Conn | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.is_closed():
                return conn
            self.opened -= 1  # died while idle (server restart)
        return None

    async def acquire(self, wait: float, connect_timeout: float) -> Conn:
        while True:
            conn = self.take_nowait()
            if conn is not None:
                return conn
            if self._closed:
                raise asyncpg.InterfaceError("connection is closed (the pool is closed)")
            if self.opened < self.size:
                self.opened += 1
            else:
                conn = await self._wait(wait)
                if conn is not None:
                    if not conn.is_closed():
                        return conn
                    self.discard(conn)
                    continue
            # This task owns a free slot.
            try:
                return await self._connect(connect_timeout)
            except BaseException:
                self._free_slot()
                raise

    async def _wait(self, wait: float) -> Conn | None:
        fut: asyncio.Future[Conn | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout(wait):
                return await fut
        except BaseException as err:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                got = fut.result()  # handed over as we gave up: pass it on
                if got is None:
                    self._free_slot()
                else:
                    self.give(got)
            else:
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            if isinstance(err, TimeoutError):
                raise _PoolBusy from None
            raise

    def _hand_over(self, conn: Conn | None) -> bool:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return True
        return False

    def give(self, conn: Conn) -> None:
        """Take back a healthy connection."""
        if self._closed or conn.is_closed() or conn.is_in_transaction():
            self.discard(conn)
        elif not self._hand_over(conn):
            self._idle.append(conn)

    async def release(self, conn: Conn) -> None:
        self.give(conn)

    def discard(self, conn: Conn) -> None:
        """Close a connection that must not be used again, freeing its slot."""
        if not conn.is_closed():
            conn.terminate()
        self._free_slot()

    def _free_slot(self) -> None:
        if not self._hand_over(None):
            self.opened -= 1

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(asyncpg.InterfaceError("connection is closed (pool closed)"))
        for conn in idle:
            self.opened -= 1
            try:
                await conn.close(timeout=2.0)
            except Exception:
                conn.terminate()


class _ForeignPool:
    """An ``asyncpg.Pool`` given by the application (used as it is, never closed here)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.size: int = pool.get_max_size()

    @property
    def opened(self) -> int:
        return int(self._pool.get_size())

    def take_nowait(self) -> Conn | None:
        return None

    async def acquire(self, wait: float, connect_timeout: float) -> Conn:
        try:
            return await self._pool.acquire(timeout=wait)
        except TimeoutError:
            raise _PoolBusy from None

    def give(self, conn: Conn) -> None:  # pragma: no cover - never handed out by take_nowait
        raise AssertionError("a foreign pool hands out no connection without I/O")

    async def release(self, conn: Conn) -> None:
        await self._pool.release(conn)

    def discard(self, conn: Conn) -> None:
        conn.terminate()  # asyncpg returns the holder to its pool

    async def close(self) -> None:
        pass


class _Budget:
    """The retry budget of one call: backoff 0, 10 ms, 20 ms, ... 0.5 s, for ``total`` seconds."""

    __slots__ = ("deadline", "delay", "total")

    def __init__(self, total: float) -> None:
        self.total = total
        self.deadline: float | None = None
        self.delay = 0.0

    def remaining(self) -> float:
        if self.deadline is None:
            return self.total
        return max(self.deadline - time.monotonic(), 0.001)

    async def failed(self, err: BaseException, what: str, where: str) -> None:
        """Wait before the next attempt, or raise once the budget is spent."""
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.total
        if now >= self.deadline:
            raise BackendUnavailableError(
                f"PostgreSQL at {where} stayed unreachable for {self.total:g}s while {what} "
                f"(last error: {_message(err)}); it is retried on the next call"
            ) from err
        if self.delay:
            await asyncio.sleep(min(self.delay, self.deadline - now))
        self.delay = min(max(self.delay * 2, 0.01), _MAX_BACKOFF)


class _Lease:
    """A lease held by this container: its token, holder, and expiry (monotonic)."""

    __slots__ = ("expires", "holder", "token")

    def __init__(self, token: str, holder: str, expires: float) -> None:
        self.token = token
        self.holder = holder
        self.expires = expires


class _Txn:
    """The connection of an open ``transaction()`` block and whether a call in it failed."""

    __slots__ = ("conn", "failed")

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.failed: BaseException | None = None


class _Options:
    __slots__ = (
        "application_name",
        "command_timeout",
        "connect_timeout",
        "migrate",
        "prefix",
        "retry_timeout",
        "snapshot_dir",
    )

    def __init__(
        self,
        *,
        prefix: str,
        retry_timeout: float,
        command_timeout: float,
        connect_timeout: float,
        snapshot_dir: Path,
        migrate: bool,
        application_name: str,
    ) -> None:
        self.prefix = prefix
        self.retry_timeout = retry_timeout
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.snapshot_dir = snapshot_dir
        self.migrate = migrate
        self.application_name = application_name


def default_application_name() -> str:
    return f"wastore pid {os.getpid()} on {_HOST}"[:63]


class PostgresStore:
    """A Container over one PostgreSQL database: one pool, many accounts.

    Open it with :func:`wastore.open_store` (``postgresql://user:pass@host/db``)
    or :meth:`open`.
    """

    def __init__(self, pool: _OwnPool | _ForeignPool, options: _Options, where: str) -> None:
        self._pool = pool
        self._opts = options
        self._where = where
        self.q = Queries("postgres", options.prefix)
        self.pq: dict[str, str] = {
            name: sql.format(p=options.prefix) for name, sql in _PG_STATEMENTS.items()
        }
        self.pq["insert_device_if_missing"] = self.q.insert_device + " ON CONFLICT (id) DO NOTHING"
        self._lock_class = lock_class(options.prefix)
        self._closed = False
        # command_timeout: the start time of every statement in flight, by connection;
        # a watchdog closes the connection of one that runs too long (see _watch).
        self._inflight: dict[Conn, float] = {}
        self._timed_out: set[Conn] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._dbname = "postgres"
        # leases: every lease of this container is a lock of one connection
        self._lease_lock = asyncio.Lock()
        self._lease_conn: Conn | None = None
        self._leases: dict[int, _Lease] = {}
        self._lease_checked = 0.0

    # -- opening -----------------------------------------------------------
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
                reached, before :class:`BackendUnavailableError` (default 5).
            command_timeout: seconds one statement (or a wait for a free
                connection) may take (default 30).
            connect_timeout: seconds one connection attempt may take (default:
                ``retry_timeout``).
            snapshot_dir: folder of ``snapshot_db`` files (default
                ``./wastore-snapshots``, resolved now).
            migrate: upgrade an older schema (else raise SchemaError).
            application_name: how the connections are named in
                ``pg_stat_activity`` and to a second lease holder (default
                ``"wastore pid N on HOST"``).

        Raises:
            ConfigError: a bad option, a refused login or a missing database.
            SchemaTooNewError: the database was written by a newer wastore.
            BackendUnavailableError: the server stayed unreachable.
        """
        foreign = not isinstance(dsn, str)
        if foreign and not isinstance(dsn, asyncpg.Pool):
            raise ConfigError(
                "PostgresStore needs a postgresql:// URL or an asyncpg.Pool, "
                f"not {type(dsn).__name__}"
            )
        retry = _check_positive(retry_timeout, "retry_timeout")
        size = _check_int(pool_size, "pool_size", 2)
        opts = _Options(
            prefix=schema.check_prefix(prefix),
            retry_timeout=retry,
            command_timeout=_check_positive(command_timeout, "command_timeout"),
            connect_timeout=retry
            if connect_timeout is None
            else _check_positive(connect_timeout, "connect_timeout"),
            snapshot_dir=_absolute(snapshot_dir or DEFAULT_SNAPSHOT_DIR),
            migrate=_check_flag(migrate, "migrate"),
            application_name=str(application_name or default_application_name())[:63],
        )
        pool: _OwnPool | _ForeignPool
        if foreign:
            pool = _ForeignPool(dsn)
            if pool.size < 2:
                raise ConfigError("the asyncpg pool needs max_size >= 2 (leases use a connection)")
            where = "the given asyncpg pool"
        else:
            url = str(dsn)
            where = display_url(url)

            async def connect(limit: float) -> Conn:
                return await asyncpg.connect(
                    url,
                    timeout=limit,
                    statement_cache_size=STATEMENT_CACHE_SIZE,
                    server_settings={"application_name": opts.application_name},
                )

            pool = _OwnPool(connect, size)
        store = cls(pool, opts, where)
        try:
            await store._start()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _start(self) -> None:
        budget = _Budget(self._opts.retry_timeout)
        while True:
            conn = await self._get_conn(budget)
            try:
                await self._migrate(conn)
                self._dbname = str(await conn.fetchval("SELECT current_database()"))
            except BaseException as err:
                self._pool.discard(conn)
                if isinstance(err, Exception) and _lost(err):
                    await budget.failed(err, "opening the store", self._where)
                    continue
                _reraise(err, "opening the store", self._where)
            await self._pool.release(conn)
            self._watchdog = asyncio.get_running_loop().create_task(
                self._watch(), name="wastore-postgres-watchdog"
            )
            return

    async def _watch(self) -> None:
        """Close the connection of any statement running longer than ``command_timeout``.

        One coarse timer for the whole store instead of asyncpg's per-call timeout,
        which schedules and cancels a timer around every statement (5 µs of a
        30 µs primary-key read). The call then fails with BackendUnavailableError.
        """
        limit = self._opts.command_timeout
        period = min(1.0, limit / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn, started in list(self._inflight.items()):
                if now - started > limit and conn not in self._timed_out:
                    self._timed_out.add(conn)
                    log.warning(
                        "a statement on %s ran longer than command_timeout (%gs): "
                        "closing its connection",
                        self._where,
                        limit,
                    )
                    conn.terminate()

    async def _timed(self, conn: Conn, aw: Awaitable[T]) -> T:
        """Await ``aw``, statements on ``conn``, under the command_timeout watchdog."""
        inflight = self._inflight
        inflight[conn] = time.monotonic()
        try:
            return await aw
        finally:
            inflight.pop(conn, None)

    def _late(self, conn: Conn, err: BaseException) -> None:
        """Raise BackendUnavailableError if ``conn`` failed because the watchdog closed it."""
        if conn in self._timed_out:
            self._timed_out.discard(conn)
            raise BackendUnavailableError(
                f"a statement on {self._where} ran longer than command_timeout "
                f"({self._opts.command_timeout:g}s): its connection was closed, and it may "
                "or may not have taken effect"
            ) from err

    # -- migrations --------------------------------------------------------
    async def _version_row(self, conn: Conn) -> tuple[int, int] | None:
        p = self._opts.prefix
        if await conn.fetchval("SELECT to_regclass($1)", f"{p}version") is None:
            return None
        rows = await conn.fetch(f"SELECT version, compat FROM {p}version")
        if len(rows) != 1:
            raise SchemaError(f"the table {p}version must hold exactly one row, found {len(rows)}")
        return int(rows[0][0]), int(rows[0][1])

    async def schema_status(self) -> tuple[int, int, list[schema.Migration]]:
        """``(version, compat, pending steps)`` of the database."""
        row = await self._with_conn(self._version_row, True)
        if row is None:
            raise SchemaError("the wastore tables are gone from the database")
        return row[0], row[1], schema.plan(*row)

    async def _migrate(self, conn: Conn) -> None:
        p = self._opts.prefix
        lock = "SELECT pg_advisory_xact_lock($1, $2)"
        async with conn.transaction():
            await conn.execute(lock, self._lock_class, _MIGRATION_OBJID)
            row = await self._version_row(conn)
            if row is None:
                others = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename LIKE $1",
                    p.replace("_", "\\_") + "%",
                )
                if others:
                    raise SchemaError(
                        f"tables with the prefix {p!r} exist but no {p}version table: this is "
                        "not a wastore database, or a different table prefix is in use"
                    )
                await conn.execute(";\n".join(schema.render(schema.latest_ddl(), "postgres", p)))
                await conn.execute(
                    f"INSERT INTO {p}version (version, compat) VALUES ($1, $2)",
                    schema.LATEST,
                    schema.LATEST_COMPAT,
                )
                log.info("created wastore schema version %d in %s", schema.LATEST, self._where)
                return
            steps = schema.plan(*row)
        if steps and not self._opts.migrate:
            raise SchemaError(
                f"the database is at schema version {row[0]}, this wastore needs {schema.LATEST}: "
                "run `wastore migrate URL` (or open it with migrate=True)"
            )
        for step in steps:
            async with conn.transaction():
                await conn.execute(lock, self._lock_class, _MIGRATION_OBJID)
                now = await self._version_row(conn)
                assert now is not None
                if now[0] >= step.version:  # another process got there first
                    continue
                await conn.execute(";\n".join(schema.render(step.ddl, "postgres", p)))
                await conn.execute(
                    f"UPDATE {p}version SET version = $1, compat = GREATEST(compat, $2)",
                    step.version,
                    step.compat,
                )
            log.info(
                "migrated %s to schema version %d: %s", self._where, step.version, step.description
            )

    # -- Container ---------------------------------------------------------
    async def create_device(self) -> int:
        row = codec.device_to_row(Device.new(), 0)
        for _ in range(100):
            try:
                return int(await self._call("fetchval", self.q.insert_device_auto, row, False))
            except StoreError as err:
                # An id taken by backend(id).create(): the sequence has moved past it now.
                if not isinstance(err.__cause__, asyncpg.UniqueViolationError):
                    raise
        raise StoreError("create_device() kept colliding with explicitly created device ids")

    async def devices(self) -> list[int]:
        return [int(r[0]) for r in await self._call("fetch", self.q.list_devices, ())]

    async def first_device(self) -> int:
        row = codec.device_to_row(Device.new(), 0)
        q = self.q
        # Two processes starting on an empty database must not create two accounts:
        # the check and the insert run under the transaction-scoped schema lock.
        key = (self._lock_class, _MIGRATION_OBJID)

        async def pick(c: Conn) -> list[int] | int:
            await c.execute("SELECT pg_advisory_xact_lock($1, $2)", *key)
            ids = [int(r[0]) for r in await c.fetch(q.first_devices)]
            if ids:
                return ids
            return int(await c.fetchval(q.insert_device_auto, *row))

        found: list[int] | int = await self._atomic(pick, idempotent=False)
        if isinstance(found, int):
            return found
        if len(found) > 1:
            raise several_accounts(found)
        return found[0]

    def backend(self, device_id: int) -> PostgresBackend:
        """The account's backend; no I/O (a missing account reads nothing, refuses writes)."""
        self._check_open()
        return PostgresBackend(self, v.integer(device_id, "device_id", 1))

    async def find_device(self, jid: JID | str) -> int | None:
        user = as_jid(jid).user
        if not user:
            raise ValidationError("find_device() needs a JID with a user part")
        found = await self._call("fetchval", self.q.find_device, (user,))
        return None if found is None else int(found)

    async def delete_device(self, device_id: int) -> None:
        """Remove the account: one statement, every table follows by ON DELETE CASCADE."""
        device_id = v.integer(device_id, "device_id", 1)
        status = await self._call("execute", self.q.delete_device, (device_id,), False)
        if _status_count(status) == 0:
            raise DeviceNotFoundError(device_id)

    async def close(self) -> None:
        """Release the leases and close the pool's connections. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        async with self._lease_lock:
            conn, self._lease_conn = self._lease_conn, None
            self._leases.clear()
            if conn is not None:
                if isinstance(self._pool, _ForeignPool) and not conn.is_closed():
                    try:
                        await conn.execute("SELECT pg_advisory_unlock_all()")
                        await self._pool.release(conn)
                    except Exception:
                        self._pool.discard(conn)
                else:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2.0)
                    self._pool.discard(conn)
        await self._pool.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r}, prefix={self._opts.prefix!r})"

    @property
    def pool_size(self) -> int:
        """The most connections this store opens (leases included)."""
        return self._pool.size

    @property
    def open_connections(self) -> int:
        """Connections open (or being opened) right now."""
        return self._pool.opened

    # -- the execution core ------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError(f"the PostgreSQL store {self._where} is closed")

    async def _get_conn(self, budget: _Budget) -> Conn:
        """A connection from the pool, retrying while the server is unreachable."""
        while True:
            self._check_open()
            try:
                return await self._pool.acquire(
                    self._opts.command_timeout, min(self._opts.connect_timeout, budget.remaining())
                )
            except _PoolBusy:
                raise BackendUnavailableError(
                    f"no connection of the pool ({self._pool.size}) came free within "
                    f"{self._opts.command_timeout:g}s (command_timeout): raise pool_size, or "
                    "look for long transactions"
                ) from None
            except Exception as err:
                if not _connect_transient(err):
                    raise _translate(err, "connect", self._where) from err
                await budget.failed(err, "connecting", self._where)

    async def _put_back(self, conn: Conn, err: BaseException) -> None:
        if _connection_ok(conn, err):
            await self._pool.release(conn)
        else:
            self._pool.discard(conn)

    async def _call(self, kind: str, sql: str, args: Sequence[Any], idempotent: bool = True) -> Any:
        """One statement, ``conn.<kind>(sql, *args)`` (``kind``: fetch, fetchrow, fetchval,
        execute or executemany), in the task's transaction or on a pooled connection.

        ``idempotent``: running it twice is harmless, so it may run again when its
        connection died after it was sent.
        """
        st = _txn.current(self)
        if st is not None:
            return await self._in_txn(st.data, lambda c: getattr(c, kind)(sql, *args))
        conn = self._pool.take_nowait()
        if conn is None:
            return await self._with_conn(lambda c: getattr(c, kind)(sql, *args), idempotent)
        inflight = self._inflight  # _timed(), inlined on the hot path
        inflight[conn] = time.monotonic()
        try:
            result = await getattr(conn, kind)(sql, *args)
        except BaseException as err:
            del inflight[conn]
            await self._put_back(conn, err)
            self._late(conn, err)
            if isinstance(err, Exception) and _retry_after_send(err, idempotent):
                return await self._with_conn(
                    lambda c: getattr(c, kind)(sql, *args), idempotent, err
                )
            _reraise(err, "statement", self._where)
        del inflight[conn]
        self._pool.give(conn)
        return result

    async def _with_conn(self, op: Op, idempotent: bool, first: BaseException | None = None) -> Any:
        """Run ``op(conn)`` on a pooled connection, retrying within the budget."""
        budget = _Budget(self._opts.retry_timeout)
        if first is not None:
            await budget.failed(first, "running a statement", self._where)
        while True:
            conn = await self._get_conn(budget)
            try:
                result = await self._timed(conn, op(conn))
            except BaseException as err:
                await self._put_back(conn, err)
                self._late(conn, err)
                if isinstance(err, Exception) and _retry_after_send(err, idempotent):
                    await budget.failed(err, "running a statement", self._where)
                    continue
                _reraise(err, "statement", self._where)
            await self._pool.release(conn)
            return result

    async def _in_txn(self, tx: _Txn, op: Op) -> Any:
        """A single statement inside the task's transaction: never retried; if it fails,
        the PostgreSQL transaction is aborted (see the module docstring)."""
        self._check_failed(tx)
        try:
            return await self._timed(tx.conn, op(tx.conn))
        except BaseException as err:
            tx.failed = err
            self._late(tx.conn, err)
            _reraise(err, "statement in a transaction", self._where)

    @staticmethod
    def _check_failed(tx: _Txn) -> None:
        if tx.failed is not None:
            raise StoreError(
                "the transaction was aborted by an earlier failed call "
                f"({_message(tx.failed)}); leave the transaction() block: it rolls back"
            ) from tx.failed

    async def _atomic(self, fn: Op, *, idempotent: bool = True) -> Any:
        """Run ``fn(conn)`` (several statements) as one transaction, or as a savepoint
        inside the task's transaction (a failure then undoes only this call)."""
        st = _txn.current(self)
        if st is None:

            async def run(conn: Conn) -> Any:
                async with conn.transaction():
                    return await fn(conn)

            return await self._with_conn(run, idempotent)
        tx: _Txn = st.data
        await self._in_txn(tx, lambda c: c.execute("SAVEPOINT wastore_call"))
        try:
            result = await self._timed(tx.conn, fn(tx.conn))
        except BaseException as err:
            await self._undo_savepoint(tx, "wastore_call")
            self._late(tx.conn, err)
            _reraise(err, "write in a transaction", self._where)
        await self._in_txn(tx, lambda c: c.execute("RELEASE SAVEPOINT wastore_call"))
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        st = _txn.current(self)
        if st is not None:
            async with self._savepoint(st):
                yield
            return
        tx = _Txn(await self._begin())
        state: _txn.TxnState[_Txn] = _txn.TxnState(self, tx)
        token = _txn.push(state)
        try:
            yield
        except BaseException:
            _txn.pop(token)
            await self._rollback(tx)
            raise
        _txn.pop(token)
        if tx.failed is not None:
            await self._rollback(tx)
            if _lost(tx.failed):
                raise BackendUnavailableError(
                    f"the connection to {self._where} was lost inside the transaction, "
                    f"which was rolled back ({_message(tx.failed)})"
                ) from tx.failed
            raise StoreError(
                f"the transaction was rolled back: a call inside it failed ({_message(tx.failed)})"
            ) from tx.failed
        await self._commit(tx)

    async def _begin(self) -> Conn:
        """A pooled connection with an open transaction (nothing has run yet: retried)."""
        budget = _Budget(self._opts.retry_timeout)
        while True:
            conn = await self._get_conn(budget)
            try:
                await self._timed(conn, conn.execute("BEGIN"))
            except BaseException as err:
                await self._put_back(conn, err)
                self._late(conn, err)
                if isinstance(err, Exception) and _lost(err):
                    await budget.failed(err, "starting a transaction", self._where)
                    continue
                _reraise(err, "begin", self._where)
            return conn

    async def _rollback(self, tx: _Txn) -> None:
        conn = tx.conn
        try:
            await self._timed(conn, conn.execute("ROLLBACK"))
        except Exception as err:  # the server rolls back when the connection goes
            log.info("rollback failed, dropping the connection: %s", _message(err))
            self._pool.discard(conn)
        except BaseException:
            self._pool.discard(conn)
            raise
        else:
            await self._pool.release(conn)

    async def _commit(self, tx: _Txn) -> None:
        conn = tx.conn
        try:
            await self._timed(conn, conn.execute("COMMIT"))
        except BaseException as err:
            self._pool.discard(conn)
            self._late(conn, err)
            if isinstance(err, Exception) and _lost(err):
                raise BackendUnavailableError(
                    f"the connection to {self._where} was lost at COMMIT: the transaction "
                    f"may or may not have been committed ({_message(err)})"
                ) from err
            _reraise(err, "commit", self._where)
        await self._pool.release(conn)

    @asynccontextmanager
    async def _savepoint(self, st: _txn.TxnState[_Txn]) -> AsyncIterator[None]:
        tx = st.data
        name = f"wastore_sp{st.depth}"
        await self._in_txn(tx, lambda c: c.execute(f"SAVEPOINT {name}"))
        st.depth += 1
        try:
            yield
        except BaseException:
            st.depth -= 1
            await self._undo_savepoint(tx, name)
            raise
        st.depth -= 1
        if tx.failed is not None:  # a call failed and the caller went on: undo the block
            failed = tx.failed
            await self._undo_savepoint(tx, name)
            raise StoreError(
                "the transaction block was rolled back: a call inside it failed "
                f"({_message(failed)})"
            ) from failed
        await self._in_txn(tx, lambda c: c.execute(f"RELEASE SAVEPOINT {name}"))

    async def _undo_savepoint(self, tx: _Txn, name: str) -> None:
        """Roll back to a savepoint: the transaction is usable again (unless the
        connection is gone)."""
        if tx.failed is not None and _lost(tx.failed):
            return
        try:
            await self._timed(
                tx.conn, tx.conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
            )
        except BaseException as err:
            tx.failed = err  # the outer block rolls back
            if not isinstance(err, Exception):
                raise
        else:
            tx.failed = None  # the failed call was inside this savepoint: undone with it

    # -- leases ------------------------------------------------------------
    # Every lease of this container is an advisory lock of ONE connection (taken
    # from the pool at the first lease, given back after the last). Lease calls
    # run to their end even if the caller is cancelled: that connection must never
    # be left in the middle of a statement.
    async def _lease_conn_get(self) -> Conn:
        """The live lease connection; a new one takes the held leases again."""
        conn = self._lease_conn
        if conn is not None and not conn.is_closed():
            return conn
        if conn is not None:
            self._lease_conn = None
            self._pool.discard(conn)
        budget = _Budget(self._opts.retry_timeout)
        try_lock = self.pq["try_lease"]
        while True:
            conn = await self._get_conn(budget)
            lost: list[int] = []
            try:
                if isinstance(self._pool, _ForeignPool):
                    await conn.execute(
                        "SELECT set_config('application_name', $1, false)",
                        self._opts.application_name,
                    )
                for device_id in sorted(self._leases):
                    got = await self._timed(
                        conn,
                        conn.fetchval(try_lock, self._lock_class, _objid(device_id), device_id),
                    )
                    if not got:
                        lost.append(device_id)
            except BaseException as err:
                self._pool.discard(conn)
                if isinstance(err, Exception) and _lost(err):
                    await budget.failed(err, "taking the lease connection", self._where)
                    continue
                _reraise(err, "lease", self._where)
            break
        for device_id in lost:
            del self._leases[device_id]
            log.error(
                "account %s: the lease was lost while the connection to %s was down "
                "(another session holds it now)",
                device_id,
                self._where,
            )
        self._lease_conn = conn
        self._lease_checked = time.monotonic()
        return conn

    async def _lease_run(self, op: Op) -> Any:
        """``op(lease connection)``, again on a new connection if that one died (a lock
        taken or dropped by a session that died went with it, so this is safe)."""
        budget = _Budget(self._opts.retry_timeout)
        while True:
            conn = await self._lease_conn_get()
            try:
                return await self._timed(conn, op(conn))
            except Exception as err:
                if not _lost(err):
                    _reraise(err, "lease", self._where)
                self._lease_conn = None
                self._pool.discard(conn)
                self._late(conn, err)
                await budget.failed(err, "using the lease connection", self._where)

    async def _lease_idle(self) -> None:
        """Give the lease connection back once it holds no lease."""
        conn = self._lease_conn
        if self._leases or conn is None:
            return
        self._lease_conn = None
        if conn.is_closed():
            self._pool.discard(conn)
        else:
            await self._pool.release(conn)  # an asyncpg.Pool's reset unlocks all, too

    async def acquire_lease(self, device_id: int, holder: str, ttl: float) -> str:
        self._check_open()
        try_args = (self._lock_class, _objid(device_id), device_id)
        holder_args = (self._lock_class, device_id & 0xFFFFFFFF)

        async def take() -> str:
            async with self._lease_lock:
                self._check_open()
                now = time.monotonic()
                mine = self._leases.get(device_id)
                if mine is not None:
                    if mine.expires > now:
                        raise AccountInUseError(device_id, mine.holder)
                    # Expired without renewal, in this process: take it over (the
                    # lock stays with the lease connection).
                    await self._lease_conn_get()
                    if device_id in self._leases:
                        log.info(
                            "account %s: taking over the expired lease of %s",
                            device_id,
                            mine.holder,
                        )
                        return self._new_lease(device_id, holder, ttl)
                try:
                    for _ in range(3):  # the holder may let go between the two queries
                        got = await self._lease_run(
                            lambda c: c.fetchval(self.pq["try_lease"], *try_args)
                        )
                        if got is None:
                            raise DeviceNotFoundError(device_id, "create() the account first")
                        if got:
                            return self._new_lease(device_id, holder, ttl)
                        row = await self._lease_run(
                            lambda c: c.fetchrow(self.pq["lease_holder"], *holder_args)
                        )
                        if row is not None:
                            raise AccountInUseError(
                                device_id,
                                row[0] or "a client without an application_name",
                                f"PostgreSQL backend pid {row[1]}"
                                + (f" from {row[2]}" if row[2] else ""),
                            )
                    raise AccountInUseError(device_id, "another PostgreSQL session")
                finally:
                    await self._lease_idle()

        task = asyncio.ensure_future(take())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                token = await task
                await self.release_lease(device_id, token)  # nobody will ever use it
            raise

    def _new_lease(self, device_id: int, holder: str, ttl: float) -> str:
        token = uuid.uuid4().hex
        self._leases[device_id] = _Lease(token, holder, time.monotonic() + ttl)
        return token

    async def renew_lease(self, device_id: int, token: str, ttl: float | None) -> bool:
        """Extend the lease by ``ttl`` (None: only check it); False if it is no longer
        this token's.

        Checks the lease connection at most once a second for all accounts: that
        it lives and still holds the locks (after a server restart the locks are
        taken again on a new connection; one that another session took meanwhile
        is lost).
        """
        self._check_open()

        async def check() -> bool:
            async with self._lease_lock:
                mine = self._leases.get(device_id)
                if mine is None or mine.token != token:
                    return False
                conn = self._lease_conn
                fresh = time.monotonic() - self._lease_checked < LEASE_CHECK_INTERVAL
                if conn is None or conn.is_closed() or not fresh:
                    held = await self._lease_run(
                        lambda c: c.fetch(self.pq["held_leases"], self._lock_class)
                    )
                    self._lease_checked = time.monotonic()
                    ids = {int(r[0]) for r in held}
                    for dev in [d for d in self._leases if d & 0xFFFFFFFF not in ids]:
                        del self._leases[dev]
                        log.error("account %s: the advisory lock of its lease is gone", dev)
                mine = self._leases.get(device_id)
                if mine is None or mine.token != token:
                    return False
                if ttl is not None:
                    mine.expires = time.monotonic() + ttl
                return True

        task = asyncio.ensure_future(check())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await task
            raise

    def lease_looks_held(self, device_id: int, token: str) -> bool:
        """Whether ``token`` holds the lease as far as this process knows, without I/O."""
        mine = self._leases.get(device_id)
        conn = self._lease_conn
        return (
            mine is not None and mine.token == token and conn is not None and not conn.is_closed()
        )

    async def release_lease(self, device_id: int, token: str) -> None:
        async def release() -> None:
            async with self._lease_lock:
                mine = self._leases.get(device_id)
                if mine is None or mine.token != token:
                    return
                del self._leases[device_id]
                conn = self._lease_conn
                if conn is not None and not conn.is_closed():
                    try:
                        await self._timed(
                            conn,
                            conn.fetchval(
                                self.pq["unlock_lease"], self._lock_class, _objid(device_id)
                            ),
                        )
                    except Exception as err:  # the lock went with the connection
                        log.info("unlocking the lease of account %s failed: %s", device_id, err)
                        self._lease_conn = None
                        self._pool.discard(conn)
                await self._lease_idle()

        if self._closed:
            return
        task = asyncio.ensure_future(release())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await task
            raise

    # -- export / import -----------------------------------------------------
    async def export_account(self, device_id: int) -> AccountDump:
        """Every row of one account, read in one REPEATABLE READ read-only transaction."""
        device_id = v.integer(device_id, "device_id", 1)
        prefix = self._opts.prefix

        async def read(conn: Conn) -> dict[str, list[Row]]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return {
                    t: dump.to_rows(
                        t, await conn.fetch(dump.select_sql(t, "postgres", prefix), device_id)
                    )
                    for t in dump.EXPORTED_TABLES
                }

        tables = await self._with_conn(read, True)
        if not tables["device"]:
            raise DeviceNotFoundError(device_id)
        return AccountDump(tables)

    async def import_account(self, account: AccountDump, *, replace: bool = False) -> int:
        """Insert an exported account as a new device id, in one transaction.

        Raises:
            ValidationError: the dump does not check out, or the account (same phone
                number or LID) exists and ``replace`` is false.
        """
        portable.check(account)
        prefix = self._opts.prefix
        users = dump.account_users(account)
        q = self.q

        async def write(c: Conn) -> int:
            existing = {await c.fetchval(q.find_device, u) for u in users} - {None}
            dump.refuse_existing(existing, replace)
            for old in existing:
                await c.execute(q.delete_device, old)
            insert = dump.insert_sql("device", "postgres", prefix)
            new_id = int(await c.fetchval(insert, *dump.to_params("device", account.device, None)))
            for sql, rows in dump.table_rows(account, "postgres", prefix, new_id):
                await c.executemany(sql, rows)
            return new_id

        result: int = await self._atomic(write, idempotent=False)
        return result

    # -- snapshots ---------------------------------------------------------
    async def snapshot(self, device_id: int, name: str, extra: bytes | None) -> str:
        """Write the account as a portable export file; return its path."""
        safe = sanitize_snapshot_name(name)
        extra = v.opt_blob(extra, "extra")
        data = portable.encode(await self.export_account(device_id))
        folder = self._opts.snapshot_dir
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


def _absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute against the current directory (now, not when used)."""
    return Path(os.path.abspath(path))


def _check_positive(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number of seconds, not {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{what} must be positive, not {value!r}")
    return number


def _check_flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, not {value!r}")
    return value


def _check_int(value: object, what: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{what} must be an integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{what} must be an integer, not {value!r}") from None
    if number < lo:
        raise ConfigError(f"{what} must be at least {lo}, not {number}")
    return number


class PostgresBackend(SqlAccount):
    """One account's view of a :class:`PostgresStore`."""

    __slots__ = ("_id", "_lease", "_pq", "_q", "_s")

    def __init__(self, store: PostgresStore, device_id: int) -> None:
        self._s = store
        self._id = device_id
        self._q = store.q
        self._pq = store.pq
        self._lease: str | None = None  # the token of a lease taken through this view

    def __repr__(self) -> str:
        return f"PostgresBackend(device_id={self._id}, {self._s!r})"

    @property
    def store(self) -> PostgresStore:
        return self._s

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._s.transaction()

    # -- plumbing ----------------------------------------------------------
    async def _write(self, sql: str, args: Sequence[Any], idempotent: bool = True) -> int:
        """One write statement; the number of rows it touched."""
        try:
            status = await self._s._call("execute", sql, args, idempotent)
        except DeviceNotFoundError as err:  # the id is this account's; keep the driver cause
            raise DeviceNotFoundError(self._id) from err.__cause__
        return _status_count(status)

    async def _atomic(self, fn: Op, *, idempotent: bool = True) -> Any:
        try:
            return await self._s._atomic(fn, idempotent=idempotent)
        except DeviceNotFoundError as err:  # the id is this account's; keep the driver cause
            raise DeviceNotFoundError(self._id) from err.__cause__

    async def _row(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._s._call("fetchrow", sql, args)

    async def _rows(self, sql: str, args: Sequence[Any]) -> list[Any]:
        rows: list[Any] = await self._s._call("fetch", sql, args)
        return rows

    async def _val(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._s._call("fetchval", sql, args)

    async def _blob(self, sql: str, key: Any, table: str) -> bytes | None:
        value = await self._s._call("fetchval", sql, (self._id, key))
        if value is None or type(value) is bytes:
            return value
        return codec.blob_or_none(value, table, key)

    # -- identities --------------------------------------------------------

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = sorted(v.address_keys(items, "identities").items())
        if checked:
            await self._write(
                self._pq["put_identities"],
                (self._id, [a for a, _ in checked], [k for _, k in checked]),
            )

    async def load_identity(self, address: str) -> bytes | None:
        address = v.address(address)
        value = await self._val(self._q.load_identity, (self._id, address))
        return codec.identity_key(value, address)

    # -- sessions ----------------------------------------------------------

    async def get_sessions(self, addresses: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(v.address_list(addresses)))
        if not wanted:
            return {}
        rows = await self._rows(self._pq["get_sessions"], (self._id, wanted))
        return {a: codec.blob(r, "sessions", a) for a, r in rows}

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = sorted(v.address_records(items, "sessions").items())
        if checked:
            await self._write(
                self._pq["put_sessions"],
                (self._id, [a for a, _ in checked], [r for _, r in checked]),
            )

    async def has_session(self, address: str) -> bool:
        return await self._val(self._q.has_session, (self._id, v.address(address))) is not None

    async def has_signal_state_for_user(self, user: str) -> bool:
        user = v.user(user)
        return bool(await self._val(self._q.has_user_state, (self._id, *self._user_ranges(user))))

    async def delete_signal_state_for_user(self, user: str) -> int:
        user = v.user(user)
        ranges = (self._id, *self._user_ranges(user))
        q = self._q

        async def run(c: Conn) -> int:
            n = _status_count(await c.execute(q.delete_user_sessions, *ranges))
            n += _status_count(await c.execute(q.delete_user_identities, *ranges))
            n += _status_count(
                await c.execute(q.delete_user_sender_keys, self._id, f"::{user}@", f"::{user}:")
            )
            return n

        result: int = await self._atomic(run, idempotent=False)
        return result

    # -- pre-keys ----------------------------------------------------------

    async def store_prekeys_batch(self, items: Sequence[tuple[int, bytes]], uploaded: bool) -> None:
        checked = sorted(v.prekey_records(items).items())
        up = v.boolean(uploaded, "uploaded")
        if checked:
            await self._write(
                self._pq["store_prekeys"],
                (self._id, [i for i, _ in checked], [r for _, r in checked], up),
            )

    async def load_prekeys_batch(self, ids: Sequence[int]) -> dict[int, bytes]:
        wanted = list(dict.fromkeys(v.prekey_ids(ids)))
        if not wanted:
            return {}
        rows = await self._rows(self._pq["load_prekeys"], (self._id, wanted))
        return {i: codec.blob(r, "prekeys", i) for i, r in rows}

    async def load_unuploaded_prekeys(self, limit: int) -> list[tuple[int, bytes]]:
        limit = v.integer(limit, "limit", 0, v.MAX_BATCH)
        rows = await self._rows(self._q.load_unuploaded_prekeys, (self._id, limit))
        return [(i, codec.blob(r, "prekeys", i)) for i, r in rows]

    async def mark_prekeys_uploaded(self, ids: Sequence[int]) -> None:
        wanted = sorted(set(v.prekey_ids(ids)))
        if wanted:
            await self._write(self._pq["mark_prekeys_uploaded"], (self._id, wanted))

    async def get_max_prekey_id(self) -> int:
        return int(await self._val(self._q.max_prekey_id, (self._id,)))

    # -- signed pre-keys ---------------------------------------------------

    # -- sender keys -------------------------------------------------------

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = sorted(v.address_records(items, "sender keys").items())
        if checked:
            await self._write(
                self._pq["put_sender_keys"],
                (self._id, [a for a, _ in checked], [r for _, r in checked]),
            )

    # -- app-state sync ----------------------------------------------------

    async def get_latest_sync_key_id(self) -> bytes | None:
        value = await self._val(self._q.latest_sync_key_id, (self._id,))
        return None if value is None else codec.blob(value, "sync_keys", "latest")

    async def get_version(self, name: str) -> HashState:
        name = v.collection_name(name)
        return codec.hash_state(await self._row(self._q.get_version, (self._id, name)), name)

    async def put_mutation_macs(self, name: str, version: int, macs: Sequence[MutationMAC]) -> None:
        name = v.collection_name(name)
        version = v.integer(version, "version", 0)
        items = v.instances(macs, MutationMAC, "macs")
        if not items:
            return
        latest = sorted({m.index_mac: m.value_mac for m in items}.items())  # last one wins
        await self._write(
            self._pq["put_mutation_macs"],
            (self._id, name, version, [i for i, _ in latest], [m for _, m in latest]),
        )

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        name = v.collection_name(name)
        index_mac = v.mac(index_mac, "index MAC")
        value = await self._val(self._q.get_mutation_mac, (self._id, name, index_mac))
        return None if value is None else codec.blob(value, "app_state_macs", index_mac.hex())

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        wanted = list(dict.fromkeys(v.mac_list(index_macs)))
        if not wanted:
            return {}
        rows = await self._rows(self._pq["get_mutation_macs"], (self._id, name, wanted))
        return {k: codec.blob(m, "app_state_macs", k.hex()) for k, m in rows}

    async def get_all_mutation_macs(self, name: str) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        rows = await self._rows(self._q.all_mutation_macs, (self._id, name))
        return {k: codec.blob(m, "app_state_macs", k.hex()) for k, m in rows}

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        name = v.collection_name(name)
        wanted = sorted(set(v.mac_list(index_macs)))
        if wanted:
            await self._write(self._pq["delete_mutation_macs"], (self._id, name, wanted))

    # -- sender-key distribution -------------------------------------------

    async def set_sender_key_status(self, group: str, items: Sequence[tuple[str, bool]]) -> None:
        group = v.address(group, "group")
        checked: dict[str, bool] = {}
        for item in v.sequence(items, "items"):
            d, has = v.pair(item, "items")
            checked[v.address(d, "device jid")] = v.boolean(has, "has_key")
        if checked:
            latest = sorted(checked.items())
            await self._write(
                self._pq["set_sender_key_status"],
                (self._id, group, [d for d, _ in latest], [h for _, h in latest]),
            )

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        wanted = sorted(set(v.address_list(device_jids, "device jids")))
        if wanted:
            await self._write(self._pq["delete_sender_key_device_rows"], (self._id, wanted))

    # -- LID <-> PN --------------------------------------------------------

    def _lid_row(self, e: LidPnMapping) -> tuple[Any, ...]:
        return (self._id, e.lid, e.phone_number, e.created_at, e.updated_at, e.learning_source)

    async def put_lid_mapping(self, entry: LidPnMapping) -> None:
        e = v.instance(entry, LidPnMapping, "entry")
        await self._write(self._q.put_lid_mapping, self._lid_row(e))

    async def put_lid_mappings(self, entries: Sequence[LidPnMapping]) -> None:
        items = v.instances(entries, LidPnMapping, "entries")
        # executemany: duplicates must merge as sequential puts do (the first created_at)
        rows = sorted((self._lid_row(e) for e in items), key=lambda r: r[1])  # stable
        if rows:
            await self._write_many(self._q.put_lid_mapping, rows)

    async def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``executemany``: one round trip, one implicit transaction (atomic)."""
        try:
            await self._s._call("executemany", sql, (rows,))
        except DeviceNotFoundError as err:  # the id is this account's; keep the driver cause
            raise DeviceNotFoundError(self._id) from err.__cause__

    async def get_all_lid_mappings(self) -> list[LidPnMapping]:
        rows = await self._rows(self._q.get_all_lid_mappings, (self._id,))
        return [codec.lid_mapping(r) for r in rows]

    # -- base keys ---------------------------------------------------------

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        address, message_id, key = v.address(address), v.message_id(message_id), v.base_key(key)
        value = await self._val(self._q.get_base_key, (self._id, address, message_id))
        if value is None:
            return False
        return codec.blob(value, "base_keys", (address, message_id)) == key

    # -- device registry ---------------------------------------------------

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        items = v.instances(records, DeviceListRecord, "records")
        rows = sorted((self._device_list_row(r) for r in items), key=lambda r: r[1])  # stable
        if rows:
            await self._write_many(self._q.update_device_list, rows)

    # -- tc tokens ---------------------------------------------------------

    async def get_all_tc_token_jids(self) -> list[str]:
        return [r[0] for r in await self._rows(self._q.all_tc_token_jids, (self._id,))]

    async def delete_expired_tc_tokens(self, token_cutoff: int, sender_cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_tc_tokens,
            (
                self._id,
                v.integer(token_cutoff, "token_cutoff"),
                v.integer(sender_cutoff, "sender_cutoff"),
            ),
            idempotent=False,
        )

    # -- sent messages -----------------------------------------------------

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        # DELETE ... RETURNING: of concurrent takers only the one that deletes the row gets it.
        chat, message_id = v.address(chat, "chat"), v.message_id(message_id)
        value = await self._s._call(
            "fetchval", self._q.take_sent_message, (self._id, chat, message_id), False
        )
        return None if value is None else codec.blob(value, "sent_messages", (chat, message_id))

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_sent_messages,
            (self._id, v.integer(cutoff, "cutoff")),
            idempotent=False,
        )

    # -- message secrets ---------------------------------------------------
    async def put_msg_secrets(self, secrets: Sequence[MsgSecret]) -> int:
        items = v.instances(secrets, MsgSecret, "secrets")
        rows = sorted(
            (
                (self._id, s.chat, s.sender, s.msg_id, s.secret, s.expires_at, s.message_ts)
                for s in items
            ),
            key=lambda r: r[1:4],  # stable: duplicates keep their order and merge in it
        )
        if rows:
            await self._write_many(self._q.put_msg_secret, rows)
        return len(items)

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_msg_secrets,
            (self._id, v.integer(cutoff, "cutoff")),
            idempotent=False,
        )

    # -- pending inbound ---------------------------------------------------

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        key = v.pending_key(chat, sender, message_id)
        value = await self._val(self._q.get_pending_inbound, (self._id, *key))
        return None if value is None else codec.blob(value, "pending_inbound", key)

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_pending_inbound,
            (self._id, v.integer(cutoff, "cutoff")),
            idempotent=False,
        )

    # -- group metadata ----------------------------------------------------

    # -- DeviceStore -------------------------------------------------------
    async def save(self, device: Device) -> None:
        """Write the device row; fenced by the lease when one was taken through this view
        (a holder that lost it never overwrites the new holder's row)."""
        d = v.instance(device, Device, "device")
        d.validate()
        row = codec.device_to_row(d, time.time_ns() // 1_000_000)
        token = self._lease
        if (
            token is not None
            and not self._s.lease_looks_held(self._id, token)
            and not await self._s.renew_lease(self._id, token, None)
        ):
            raise AccountInUseError(
                self._id, "another process", "this process lost the account lease"
            )
        if await self._write(self._q.update_device, (self._id, *row)) == 0:
            raise DeviceNotFoundError(self._id, "create() the device row before saving it")

    async def exists(self) -> bool:
        return await self._val(self._q.device_exists, (self._id,)) is not None

    async def create(self) -> int:
        row = codec.device_to_row(Device.new(), 0)
        if await self._write(self._pq["insert_device_if_missing"], (self._id, *row)):
            await self._val(self._pq["bump_device_ids"], (self._id,))
        return self._id

    async def snapshot_db(self, name: str, extra: bytes | None = None) -> str:
        """Write this account as a portable export file in the snapshot folder."""
        return await self._s.snapshot(self._id, name, extra)

    # -- LeaseStore --------------------------------------------------------
    async def acquire_lease(self, holder: str, ttl: float) -> str:
        """Take the account's advisory lock.

        Another process that holds it is named by its connection's
        ``application_name``; a holder in this process by ``holder``. Across
        processes the lease lasts as long as the holder's connection (its ``ttl``
        matters within this process only: an expired, unrenewed lease can be
        taken over here).
        """
        holder = v.text(holder, "holder", max_len=256, allow_empty=False)
        token = await self._s.acquire_lease(self._id, holder, _check_positive(ttl, "ttl"))
        self._lease = token
        return token

    async def renew_lease(self, token: str, ttl: float) -> bool:
        return await self._s.renew_lease(self._id, token, _check_positive(ttl, "ttl"))

    async def release_lease(self, token: str) -> None:
        await self._s.release_lease(self._id, token)
        if self._lease == token:
            self._lease = None


# -- opening from a URL ------------------------------------------------------
def _flag(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_OPTION_TYPES: Final[dict[str, Callable[[str], Any]]] = {
    "prefix": str,
    "pool_size": int,
    "retry_timeout": float,
    "command_timeout": float,
    "connect_timeout": float,
    "snapshot_dir": str,
    "migrate": _flag,
    "application_name": str,
}
# Connection parameters asyncpg understands in the URL; anything else in the query
# string would reach the server as a setting, so it is refused instead.
_LIBPQ_PARAMS: Final = frozenset(
    {
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "database",
        "passfile",
        "service",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
    }
)
_POOL_ONLY: Final = frozenset({"pool_size", "connect_timeout", "application_name"})
_SCHEME: Final = re.compile(r"^postgres(?:ql)?://", re.I)


def parse_postgres_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split ``url`` into the DSN for asyncpg and wastore's options (converted)."""
    if not _SCHEME.match(url):
        raise ConfigError(f"{display_url(url)!r} is not a postgresql:// or postgres:// URL")
    parts = urlsplit(url)
    keep: list[tuple[str, str]] = []
    options: dict[str, Any] = {}
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key in _OPTION_TYPES:
            try:
                options[key] = _OPTION_TYPES[key](raw)
            except ValueError:
                raise ConfigError(f"postgresql:// option {key}={raw!r} is not valid") from None
        elif key in _LIBPQ_PARAMS:
            keep.append((key, raw))
        else:
            raise ConfigError(
                f"unknown postgresql:// option {key!r}; wastore options: "
                f"{', '.join(sorted(_OPTION_TYPES))}; connection parameters: "
                f"{', '.join(sorted(_LIBPQ_PARAMS))}"
            )
    dsn = parts._replace(query=urlencode(keep)).geturl()
    return dsn, options


async def open_postgres(url: str | Any, **options: Any) -> PostgresStore:
    """Open ``postgresql://...`` (or wrap an ``asyncpg.Pool``) with URL and keyword options."""
    for key in options:
        if key not in _OPTION_TYPES:
            raise ConfigError(
                f"unknown postgresql option {key!r}; known: {', '.join(sorted(_OPTION_TYPES))}"
            )
    if not isinstance(url, str):
        misplaced = sorted(_POOL_ONLY & set(options))
        if misplaced:
            raise ConfigError(
                f"{', '.join(misplaced)} cannot be set on a store over an existing asyncpg pool "
                "(configure the pool instead)"
            )
        return await PostgresStore.open(url, **options)
    dsn, merged = parse_postgres_url(url)
    merged.update(options)
    return await PostgresStore.open(dsn, **merged)


__all__ = [
    "PostgresBackend",
    "PostgresStore",
    "open_postgres",
    "parse_postgres_url",
]
