"""SqliteStore: the embedded default (``sqlite:///path.db``).

Design (chosen by measurement, see ``benchmarks/sqlite_designs.py`` and
``docs/sqlite.md``):

- **Point operations run inline on the event-loop thread.** In WAL mode with
  ``synchronous=NORMAL`` a primary-key read or a one-row commit costs a few
  microseconds; handing each call to a worker thread costs tens of
  microseconds and brought W1d down to a fifth of raw ``sqlite3``.
- **Anything that can take long runs on one worker thread**: batches and
  scans above a few dozen rows, WAL checkpoints (automatic checkpoints are off
  on the writer connection so that no commit ever pays for one), ``VACUUM
  INTO`` snapshots, migrations, and every commit when ``synchronous=FULL``
  (each of those is an fsync).
- **Connections**: one writer (used under an asyncio lock by whoever holds
  it: the loop thread, or the worker while a batch runs), one reader for
  inline reads (``query_only``), and one reader on the worker thread. Reads
  outside a transaction never see uncommitted writes; reads inside a
  transaction go to the writer and see that transaction's writes.
- **Busy**: connections never sleep inside SQLite on the loop thread
  (``busy_timeout=0``); "database is locked/busy" is retried with
  exponential backoff on the event loop, and after the budget
  (``busy_timeout`` seconds, default 5) it becomes
  :class:`BackendUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from .. import _validate as v
from .. import portable
from ..device import Device
from ..errors import (
    AccountInUseError,
    BackendUnavailableError,
    ConfigError,
    CorruptRecordError,
    DeviceNotFoundError,
    SchemaError,
    StoreError,
    ValidationError,
)
from ..jid import JID, as_jid
from ..portable import AccountDump, Row
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

log = logging.getLogger("wastore.sqlite")

T = TypeVar("T")
Conn = sqlite3.Connection

OFFLOAD_ITEMS: Final = 64
"""Batches and multi-key reads with more items than this run on the worker thread."""
CHECKPOINT_EVERY: Final = 1000
"""Commits between two background WAL checkpoints."""
CACHE_KIB: Final = 16384
"""Page cache of each connection (SQLite's default is 2 MiB). It fills only with pages
actually read; a bigger one keeps a single account's Signal tables in memory (2,000
sessions of 1.2 KB take 2.8 MB of pages) and halves the cost of a batch of writes."""
_IN_SIZES: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_HOST: Final = socket.gethostname()
FILE_MODE: Final = 0o600


def _is_busy(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    msg = str(err)
    return "locked" in msg or "busy" in msg


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as err:
        return err.errno != errno.ESRCH
    return True


# Multi-key reads: the IN list is filled in by render_in_list().
GET_SESSIONS_IN: Final = (
    "SELECT address, record FROM {p}sessions WHERE device_id = ? AND address IN ({inlist})"
)
LOAD_PREKEYS_IN: Final = (
    "SELECT id, record FROM {p}prekeys WHERE device_id = ? AND id IN ({inlist})"
)
GET_MACS_IN: Final = (
    "SELECT index_mac, value_mac FROM {p}app_state_macs "
    "WHERE device_id = ? AND name = ? AND index_mac IN ({inlist})"
)


def render_in_list(template: str, prefix: str, size: int) -> str:
    """``template`` with the table prefix and ``size`` placeholders in its IN list."""
    return template.format(p=prefix, inlist=",".join("?" * size))


ROWS_PER_STATEMENT: Final = 64
"""Most rows one multi-row upsert statement carries (192-320 parameters)."""
_VALUES: Final = re.compile(r"VALUES \((\?\d+(?:, \?\d+)*)\)")


def multi_row_sql(sql: str, rows: int) -> str:
    """The one-row ``INSERT ... VALUES (?1, ?2, ...) ...`` statement ``sql`` with ``rows``
    rows of anonymous placeholders in its VALUES list (the rest is unchanged)."""
    m = _VALUES.search(sql)
    if m is None or "?" in sql[m.end() :]:
        raise ValueError(f"not a one-row INSERT with placeholders only in VALUES: {sql!r}")
    one = "(" + ",".join("?" * (m.group(1).count("?"))) + ")"
    return sql[: m.start()] + "VALUES " + ",".join([one] * rows) + sql[m.end() :]


def row_chunks(n: int) -> list[tuple[int, int]]:
    """``(start, size)`` chunks covering ``n`` rows: full chunks of
    :data:`ROWS_PER_STATEMENT`, the rest in powers of two (so that seven statement
    shapes serve every batch size and no row is written twice)."""
    out = []
    start = 0
    while n - start >= ROWS_PER_STATEMENT:
        out.append((start, ROWS_PER_STATEMENT))
        start += ROWS_PER_STATEMENT
    size = ROWS_PER_STATEMENT // 2
    while start < n:
        if n - start >= size:
            out.append((start, size))
            start += size
        size //= 2
    return out


def padded_chunks(keys: Sequence[T]) -> list[tuple[int, list[T]]]:
    """``keys`` cut into IN-list chunks whose sizes are powers of two (at most 512),
    the last one padded by repeating its last key."""
    out: list[tuple[int, list[T]]] = []
    i, n = 0, len(keys)
    while i < n:
        left = n - i
        size = next((s for s in _IN_SIZES if s >= left), _IN_SIZES[-1])
        chunk = list(keys[i : i + size])
        if len(chunk) < size:
            chunk.extend([chunk[-1]] * (size - len(chunk)))
        out.append((size, chunk))
        i += size
    return out


class SqliteStore:
    """A Container over one SQLite database file (many accounts, one connection set).

    Open it with :func:`wastore.open_store` (``sqlite:///path.db``) or
    :meth:`open`.
    """

    def __init__(self, path: Path, options: _Options) -> None:
        self.path = path
        self._opts = options
        self.q = Queries("sqlite", options.prefix)
        self._w: Conn | None = None
        self._r: Conn | None = None
        self._bg: Conn | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wastore-sqlite")
        self._wlock = asyncio.Lock()
        self._closed = False
        self._commits = 0
        self._checkpoint: asyncio.Future[Any] | None = None
        self._in_sql: dict[tuple[str, int], str] = {}
        self._inline_commits = options.synchronous == "NORMAL"
        self._big_txn = False  # the open transaction wrote a batch on the worker

    # -- opening -----------------------------------------------------------
    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        prefix: str = schema.DEFAULT_PREFIX,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        snapshot_dir: str | os.PathLike[str] | None = None,
        migrate: bool = True,
        create: bool = True,
    ) -> SqliteStore:
        """Open (and create, and upgrade) the database at ``path``.

        Args:
            path: the database file; created with mode 0600 if missing.
            prefix: table prefix (default ``wastore_``).
            synchronous: ``NORMAL`` (default: a commit survives a process crash;
                the last commits may be lost on power failure, never corrupted)
                or ``FULL`` (every commit is fsynced).
            busy_timeout: seconds to keep retrying while another process holds
                the write lock, before :class:`BackendUnavailableError`.
            snapshot_dir: folder for debug snapshots (default: beside the file).
            migrate: upgrade an older schema on open (else raise SchemaError).
            create: create the file if it does not exist.
        """
        opts = _Options(
            prefix=schema.check_prefix(prefix),
            synchronous=_check_sync(synchronous),
            busy_timeout=_check_positive(busy_timeout, "busy_timeout"),
            snapshot_dir=None if snapshot_dir is None else Path(snapshot_dir),
            migrate=bool(migrate),
        )
        p = Path(path)
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise ConfigError(
                "SqliteStore needs a database file path (in-memory databases cannot hold a "
                "writer and readers apart; use memory:// for a store in memory)"
            )
        store = cls(p, opts)
        try:
            await asyncio.get_running_loop().run_in_executor(store._pool, store._open_sync, create)
        except BaseException:
            store._close_sync()
            store._pool.shutdown(wait=False)
            raise
        return store

    def _open_sync(self, create: bool) -> None:
        path = self.path
        if not path.exists():
            if not create:
                raise ConfigError(f"SQLite database {str(path)!r} does not exist")
            if path.parent and not path.parent.exists():
                path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
                os.close(fd)
            except FileExistsError:
                pass
            except OSError as err:
                raise ConfigError(
                    f"cannot create SQLite database {str(path)!r}: {err.strerror}"
                ) from err
        budget_ms = int(self._opts.busy_timeout * 1000)
        try:
            self._w = self._connect(busy_ms=budget_ms)
            w = self._w
            mode = w.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(
                    f"SQLite refused WAL mode for {str(path)!r} (got {mode!r}); the file system "
                    "may not support shared memory (network drives do not)"
                )
            w.execute(f"PRAGMA synchronous={self._opts.synchronous}")
            w.execute("PRAGMA foreign_keys=ON")
            if w.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
                raise ConfigError("this SQLite build cannot enforce foreign keys")
            w.execute("PRAGMA wal_autocheckpoint=0")
            w.execute("PRAGMA journal_size_limit=67108864")
            self._migrate_sync(w)
            w.execute("PRAGMA busy_timeout=0")
            self._r = self._connect(busy_ms=0)
            self._r.execute("PRAGMA query_only=ON")
            self._bg = self._connect(busy_ms=budget_ms)
            self._bg.execute("PRAGMA query_only=ON")
        except sqlite3.Error as err:
            raise _translate(err, f"opening {str(path)!r}") from err

    def _connect(self, *, busy_ms: int) -> Conn:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
            timeout=busy_ms / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        return conn

    # -- migrations --------------------------------------------------------
    def _version_row(self, conn: Conn) -> tuple[int, int] | None:
        p = self._opts.prefix
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (f"{p}version",)
        ).fetchone()
        if exists is None:
            return None
        row = conn.execute(f"SELECT version, compat FROM {p}version").fetchall()
        if len(row) != 1:
            raise SchemaError(f"the table {p}version must hold exactly one row, found {len(row)}")
        return int(row[0][0]), int(row[0][1])

    def schema_status(self) -> tuple[int, int, list[schema.Migration]]:
        """``(version, compat, pending steps)`` of the open database."""
        assert self._w is not None
        row = self._version_row(self._w)
        assert row is not None
        return row[0], row[1], schema.plan(*row)

    def _migrate_sync(self, conn: Conn) -> None:
        p = self._opts.prefix
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._version_row(conn)
            if row is None:
                others = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name LIKE ? ESCAPE '\\'",
                    (p.replace("_", "\\_") + "%",),
                ).fetchall()
                if others:
                    raise SchemaError(
                        f"tables with the prefix {p!r} exist but no {p}version table: this is not "
                        "a wastore database, or a different table prefix is in use"
                    )
                for stmt in schema.render(schema.latest_ddl(), "sqlite", p):
                    conn.execute(stmt)
                conn.execute(
                    f"INSERT INTO {p}version (version, compat) VALUES (?, ?)",
                    (schema.LATEST, schema.LATEST_COMPAT),
                )
                conn.execute("COMMIT")
                log.info("created wastore schema version %d in %s", schema.LATEST, self.path)
                return
            steps = schema.plan(*row)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if steps and not self._opts.migrate:
            raise SchemaError(
                f"the database is at schema version {row[0]}, this wastore needs {schema.LATEST}: "
                "run `wastore migrate URL` (or open it with migrate=True)"
            )
        for step in steps:
            self._apply_step(conn, step)

    def _apply_step(self, conn: Conn, step: schema.Migration) -> None:
        p = self._opts.prefix
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._version_row(conn)
            assert row is not None
            if row[0] >= step.version:  # another process got there first
                conn.execute("COMMIT")
                return
            for stmt in schema.render(step.ddl, "sqlite", p):
                conn.execute(stmt)
            conn.execute(
                f"UPDATE {p}version SET version = ?, compat = max(compat, ?)",
                (step.version, step.compat),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("migrated %s to schema version %d: %s", self.path, step.version, step.description)

    # -- Container ---------------------------------------------------------
    async def create_device(self) -> int:
        row = codec.device_to_row(Device.new(), 0)
        result = await self._atomic(lambda c: c.execute(self.q.insert_device_auto, row).fetchone())
        return int(result[0])

    async def devices(self) -> list[int]:
        return [r[0] for r in await self._fetchall(self.q.list_devices, ())]

    async def first_device(self) -> int:
        row = codec.device_to_row(Device.new(), 0)
        q = self.q

        # One write transaction (BEGIN IMMEDIATE): two processes starting on an empty
        # file cannot both see no account and create one each.
        def pick(c: Conn) -> list[int] | int:
            ids = [int(r[0]) for r in c.execute(q.first_devices).fetchall()]
            if ids:
                return ids
            return int(c.execute(q.insert_device_auto, row).fetchone()[0])

        found = await self._atomic(pick)
        if isinstance(found, int):
            return found
        if len(found) > 1:
            raise several_accounts(found)
        return found[0]

    def backend(self, device_id: int) -> SqliteBackend:
        self._check_open()
        return SqliteBackend(self, v.integer(device_id, "device_id", 1))

    async def find_device(self, jid: JID | str) -> int | None:
        user = as_jid(jid).user
        if not user:
            raise ValidationError("find_device() needs a JID with a user part")
        row = await self._fetchone(self.q.find_device, (user,))
        return None if row is None else int(row[0])

    async def delete_device(self, device_id: int) -> None:
        device_id = v.integer(device_id, "device_id", 1)
        n = await self._execute(self.q.delete_device, (device_id,))
        if n == 0:
            raise DeviceNotFoundError(device_id)

    async def close(self) -> None:
        """Wait for open transactions, checkpoint the WAL and close. Safe to call twice."""
        if self._closed:
            return
        async with self._wlock:
            self._closed = True
            if self._checkpoint is not None:
                with contextlib.suppress(Exception):
                    await self._checkpoint
            await asyncio.get_running_loop().run_in_executor(self._pool, self._close_sync)
        self._pool.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._bg is not None:
            with contextlib.suppress(sqlite3.Error):
                self._bg.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        for conn in (self._r, self._bg, self._w):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._r = self._bg = self._w = None

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, prefix={self._opts.prefix!r})"

    @property
    def open_connections(self) -> int:
        """SQLite connections this store holds open (three while open, for any account count)."""
        return sum(c is not None for c in (self._w, self._r, self._bg))

    # -- the execution core ------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError(f"the SQLite store {str(self.path)!r} is closed")

    def _reader(self) -> Conn:
        """The connection a read of the running task uses.

        Inside the task's transaction: the writer (it sees the transaction's writes).
        Outside: the writer too when nobody holds it — a statement never suspends, so
        no transaction can open meanwhile, and the writer's page cache stays warm
        (a reader connection's cache is dropped whenever the writer commits) — else
        the reader, which never sees another task's uncommitted writes.
        """
        st = _txn.current(self)
        if st is not None:
            conn: Conn = st.data
            return conn
        if self._closed or self._r is None:
            self._check_open()
            raise BackendUnavailableError("the SQLite store is not open")
        if not self._wlock.locked():
            w = self._w
            assert w is not None
            return w
        return self._r

    async def _fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        """A query returning at most one row, inline."""
        conn = self._reader()
        try:
            return conn.execute(sql, params).fetchone()
        except sqlite3.Error as err:
            # A retry picks its connection again: after the back-off the writer may be
            # inside another task's transaction.
            return await self._retry(err, lambda: self._reader().execute(sql, params).fetchone())

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        conn = self._reader()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            return await self._retry(err, lambda: self._reader().execute(sql, params).fetchall())

    async def _read_many(self, fn: Callable[[Conn], T], items: int) -> T:
        """A read touching ``items`` keys: inline when small, on the worker when large."""
        st = _txn.current(self)
        if items <= OFFLOAD_ITEMS:
            conn = self._reader()
            try:
                return fn(conn)
            except sqlite3.Error as err:
                return await self._retry(err, lambda: fn(self._reader()))
        self._check_open()
        big: Conn | None = st.data if st is not None else self._bg
        assert big is not None
        return await self._retrying_offload(lambda: fn(big))

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        """One write statement, committed on return (or part of the task's transaction)."""
        st = _txn.current(self)
        if st is not None:
            return await self._in_txn(st.data, lambda c: c.execute(sql, params).rowcount)
        self._check_open()
        if self._wlock.locked() or not self._inline_commits:
            return await self._atomic(lambda c: c.execute(sql, params).rowcount)
        # Fast path: nobody holds the writer and a statement never suspends, so it
        # runs as its own implicit transaction without taking the lock.
        w = self._w
        assert w is not None
        try:
            n = w.execute(sql, params).rowcount
        except sqlite3.Error as err:
            if not _is_busy(err):
                raise _translate(err, "write") from err
            return await self._atomic(lambda c: c.execute(sql, params).rowcount)
        self._committed()
        return n

    async def _execute_returning(self, sql: str, params: Sequence[Any]) -> Any:
        """One write statement with RETURNING (at most one row)."""
        return await self._atomic(lambda c: c.execute(sql, params).fetchone())

    async def _atomic(self, fn: Callable[[Conn], T], items: int = 1) -> T:
        """Run ``fn(writer)`` as one transaction (a savepoint inside the task's transaction)."""
        st = _txn.current(self)
        if st is not None:
            return await self._in_txn(st.data, fn, items)
        self._check_open()
        offload = items > OFFLOAD_ITEMS or not self._inline_commits
        async with self._wlock:
            self._check_open()
            w = self._w
            assert w is not None
            await self._begin(w)
            try:
                result = await self._run(lambda: fn(w), offload)
            except BaseException as err:
                await self._rollback(w, offload)
                if isinstance(err, sqlite3.Error):
                    raise _translate(err, "write") from err
                raise
            await self._commit(w, offload)
        return result

    async def _in_txn(self, conn: Conn, fn: Callable[[Conn], T], items: int = 1) -> T:
        """Run ``fn`` inside the open transaction, undone on failure (a savepoint)."""
        offload = items > OFFLOAD_ITEMS
        if offload:
            self._big_txn = True

        def body() -> T:
            conn.execute("SAVEPOINT wastore_call")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK TO wastore_call")
                conn.execute("RELEASE wastore_call")
                raise
            conn.execute("RELEASE wastore_call")
            return result

        try:
            return await self._run(body, offload)
        except sqlite3.Error as err:
            raise _translate(err, "write") from err

    async def _run(self, fn: Callable[[], T], offload: bool) -> T:
        if not offload:
            return fn()
        return await self._offload(fn)

    async def _offload(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread; a cancelled caller still waits for it to finish
        (the connection it uses must not be touched by anyone else meanwhile)."""
        fut = asyncio.get_running_loop().run_in_executor(self._pool, fn)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await fut
            raise

    async def _retrying_offload(self, fn: Callable[[], T]) -> T:
        try:
            return await self._offload(fn)
        except sqlite3.Error as err:
            return await self._retry(err, fn, offload=True)

    async def _retry(self, err: sqlite3.Error, fn: Callable[[], T], offload: bool = False) -> T:
        """Retry ``fn`` after a busy error, with backoff, within the busy budget."""
        if not _is_busy(err):
            raise _translate(err, "read") from err
        deadline = time.monotonic() + self._opts.busy_timeout
        delay = 0.001
        while True:
            if time.monotonic() >= deadline:
                raise BackendUnavailableError(
                    f"the SQLite database {str(self.path)!r} stayed locked for "
                    f"{self._opts.busy_timeout:g}s (another process holds the write lock)"
                ) from err
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            self._check_open()
            try:
                return await self._offload(fn) if offload else fn()
            except sqlite3.Error as again:
                if not _is_busy(again):
                    raise _translate(again, "read") from again
                err = again

    async def _begin(self, w: Conn) -> None:
        try:
            w.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            await self._retry(err, lambda: w.execute("BEGIN IMMEDIATE"))

    async def _commit(self, w: Conn, big: bool = False) -> None:
        """COMMIT: on the loop when it is quick, on the worker when it fsyncs
        (``synchronous=FULL``) or writes a batch's pages to the WAL (``big``: a
        2,000-row batch takes 15 ms to commit)."""
        try:
            if self._inline_commits and not big:
                w.execute("COMMIT")
            else:
                await self._offload(lambda: w.execute("COMMIT"))
        except sqlite3.Error as err:
            if w.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    w.execute("ROLLBACK")
            raise _translate(err, "commit") from err
        self._committed()

    async def _rollback(self, w: Conn, offload: bool) -> None:
        if not w.in_transaction:
            return
        try:
            await self._run(lambda: w.execute("ROLLBACK"), offload)
        except sqlite3.Error as err:  # the connection rolls back when closed anyway
            log.error("rollback failed: %s", err)

    def _committed(self) -> None:
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._commits = 0
            self._checkpoint = asyncio.get_running_loop().run_in_executor(
                self._pool, self._checkpoint_sync
            )

    def _checkpoint_sync(self) -> None:
        bg = self._bg
        if bg is None:
            return
        try:
            bg.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as err:
            log.warning("background WAL checkpoint failed: %s", err)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        st = _txn.current(self)
        if st is not None:
            conn: Conn = st.data
            name = f"wastore_sp{st.depth}"
            conn.execute(f"SAVEPOINT {name}")
            st.depth += 1
            try:
                yield
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            finally:
                st.depth -= 1
            return
        self._check_open()
        async with self._wlock:
            self._check_open()
            w = self._w
            assert w is not None
            await self._begin(w)
            self._big_txn = False
            state: _txn.TxnState[Conn] = _txn.TxnState(self, w)
            token = _txn.push(state)
            try:
                yield
            except BaseException:
                await self._rollback(w, self._big_txn)
                raise
            finally:
                _txn.pop(token)
            await self._commit(w, self._big_txn)

    # -- helpers for multi-key statements ----------------------------------
    def in_list_sql(self, name: str, template: str, size: int) -> str:
        """``template`` with ``{in}`` replaced by ``size`` placeholders (cached)."""
        key = (name, size)
        sql = self._in_sql.get(key)
        if sql is None:
            sql = render_in_list(template, self._opts.prefix, size)
            self._in_sql[key] = sql
        return sql

    def multi_row(self, name: str, sql: str, rows: int) -> str:
        """:func:`multi_row_sql` of ``sql`` for ``rows`` rows (cached)."""
        key = (name, -rows)
        text = self._in_sql.get(key)
        if text is None:
            text = self._in_sql[key] = multi_row_sql(sql, rows)
        return text

    def upsert_many(
        self, conn: Conn, name: str, sql: str, rows: Sequence[Sequence[Any]], key: int
    ) -> None:
        """Write ``rows`` with the one-row upsert ``sql``, up to 64 rows per statement,
        in the order of their column ``key`` (the primary key's varying part).

        Same effect as ``executemany`` in the given order (the sort is stable: of two
        rows with one key the later still wins), but the B-tree is walked in order
        (about a third faster for 2,000 sessions), and a worker thread needs the GIL
        once per statement instead of once per row, so a batch written in the
        background (a SignalCache flush) slows the event loop down less.
        """
        rows = sorted(rows, key=itemgetter(key))
        for start, size in row_chunks(len(rows)):
            params = [x for row in rows[start : start + size] for x in row]
            conn.execute(self.multi_row(name, sql, size), params)

    def select_in(
        self, conn: Conn, name: str, template: str, head: Sequence[Any], keys: Sequence[Any]
    ) -> list[Any]:
        """Run ``template`` over ``keys`` in IN-list chunks of padded sizes, so that a
        handful of cached statements serve every list length and no statement goes
        near SQLite's parameter limit."""
        rows: list[Any] = []
        for size, chunk in padded_chunks(keys):
            rows.extend(conn.execute(self.in_list_sql(name, template, size), (*head, *chunk)))
        return rows

    # -- export / import -----------------------------------------------------
    async def export_account(self, device_id: int) -> AccountDump:
        """Every row of one account, read in one consistent snapshot."""
        device_id = v.integer(device_id, "device_id", 1)
        self._check_open()
        prefix = self._opts.prefix

        def read() -> dict[str, list[Row]]:
            bg = self._bg
            assert bg is not None
            bg.execute("BEGIN")
            try:
                return {
                    t: dump.to_rows(
                        t, bg.execute(dump.select_sql(t, "sqlite", prefix), (device_id,)).fetchall()
                    )
                    for t in dump.EXPORTED_TABLES
                }
            finally:
                bg.execute("COMMIT")

        try:
            tables = await self._retrying_offload(read)
        except sqlite3.Error as err:
            raise _translate(err, "export") from err
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

        def write(c: Conn) -> int:
            existing = {r[0] for u in users for r in c.execute(q.find_device, (u,)).fetchall()}
            dump.refuse_existing(existing, replace)
            for old in existing:
                c.execute(q.delete_device, (old,))
            insert = dump.insert_sql("device", "sqlite", prefix)
            new_id = int(
                c.execute(insert, dump.to_params("device", account.device, None)).fetchone()[0]
            )
            for sql, rows in dump.table_rows(account, "sqlite", prefix, new_id):
                c.executemany(sql, rows)
            return new_id

        return await self._atomic(write, items=OFFLOAD_ITEMS + 1)

    # -- snapshots ---------------------------------------------------------
    async def snapshot(self, name: str, extra: bytes | None) -> str:
        safe = sanitize_snapshot_name(name)
        extra = v.opt_blob(extra, "extra")
        self._check_open()
        folder = self._opts.snapshot_dir or self.path.parent
        target = folder / f"{self.path.name}.snapshot-{utc_stamp()}-{safe}"

        def write() -> None:
            folder.mkdir(parents=True, mode=0o700, exist_ok=True)
            # VACUUM INTO accepts an empty existing file and keeps its mode.
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
            os.close(fd)
            bg = self._bg
            assert bg is not None
            try:
                bg.execute("PRAGMA query_only=OFF")  # VACUUM INTO writes the target file
                try:
                    bg.execute("VACUUM INTO ?", (str(target),))
                finally:
                    bg.execute("PRAGMA query_only=ON")
            except BaseException:
                with contextlib.suppress(OSError):
                    target.unlink()
                raise
            if extra is not None:
                write_private(target.with_name(target.name + ".extra"), extra)

        try:
            await self._offload(write)
        except sqlite3.Error as err:
            raise _translate(err, "snapshot") from err
        except OSError as err:
            raise StoreError(f"cannot write the snapshot {str(target)!r}: {err.strerror}") from err
        return str(target)


class _Options:
    __slots__ = ("busy_timeout", "migrate", "prefix", "snapshot_dir", "synchronous")

    def __init__(
        self,
        *,
        prefix: str,
        synchronous: Literal["NORMAL", "FULL"],
        busy_timeout: float,
        snapshot_dir: Path | None,
        migrate: bool,
    ) -> None:
        self.prefix = prefix
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.snapshot_dir = snapshot_dir
        self.migrate = migrate


def _check_sync(value: object) -> Literal["NORMAL", "FULL"]:
    text = str(value).upper()
    if text == "NORMAL":
        return "NORMAL"
    if text == "FULL":
        return "FULL"
    raise ConfigError(f"synchronous must be NORMAL or FULL, not {value!r}")


def _check_positive(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number of seconds, not {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{what} must be positive, not {value!r}")
    return number


def _translate(err: sqlite3.Error, action: str) -> StoreError:
    """Turn a driver error into the library's own (the caller chains it)."""
    code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF
    name = getattr(err, "sqlite_errorname", type(err).__name__)
    if isinstance(err, sqlite3.IntegrityError) and "FOREIGN KEY" in str(err):
        return DeviceNotFoundError(0, "the account was deleted or never created")
    if code in _BUSY_CODES:
        return BackendUnavailableError(f"SQLite {action} failed: database is locked ({name})")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return CorruptRecordError(
            f"the SQLite database is damaged ({name}): restore a backup or a snapshot; "
            "`wastore check` tells what is affected"
        )
    if code in (
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
    ):
        return BackendUnavailableError(f"SQLite {action} failed: {err} ({name})")
    return StoreError(f"SQLite {action} failed: {err} ({name})")


class SqliteBackend(SqlAccount):
    """One account's view of a :class:`SqliteStore`."""

    __slots__ = ("_id", "_lease", "_q", "_s")

    def __init__(self, store: SqliteStore, device_id: int) -> None:
        self._s = store
        self._id = device_id
        self._q = store.q
        self._lease: str | None = None

    def __repr__(self) -> str:
        return f"SqliteBackend(device_id={self._id}, path={str(self._s.path)!r})"

    @property
    def store(self) -> SqliteStore:
        return self._s

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._s.transaction()

    async def _write(self, sql: str, args: Any, idempotent: bool = True) -> int:
        try:
            return await self._s._execute(sql, args)
        except DeviceNotFoundError:
            raise DeviceNotFoundError(self._id) from None

    async def _row(self, sql: str, args: Any) -> Any:
        return await self._s._fetchone(sql, args)

    async def _rows(self, sql: str, args: Any) -> list[Any]:
        return await self._s._fetchall(sql, args)

    async def _atomic(self, fn: Callable[[Conn], T], items: int = 1) -> T:
        try:
            return await self._s._atomic(fn, items)
        except DeviceNotFoundError:
            raise DeviceNotFoundError(self._id) from None

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            await self._atomic(lambda c: c.executemany(sql, rows), len(rows))

    async def _upsert_many(
        self, name: str, sql: str, rows: list[tuple[Any, ...]], key: int = 1
    ) -> None:
        """A batch of the one-row upsert ``sql`` in multi-row statements."""
        if rows:
            s = self._s
            await self._atomic(lambda c: s.upsert_many(c, name, sql, rows, key), len(rows))

    async def _blob(self, sql: str, key: Any, table: str) -> bytes | None:
        row = await self._s._fetchone(sql, (self._id, key))
        if row is None:
            return None
        value = row[0]
        if type(value) is bytes:
            return value
        return codec.blob_or_none(value, table, key)

    # -- identities --------------------------------------------------------

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_keys(items, "identities")
        await self._upsert_many(
            "put_identity", self._q.put_identity, [(self._id, a, k) for a, k in checked.items()]
        )

    async def load_identity(self, address: str) -> bytes | None:
        address = v.address(address)
        row = await self._s._fetchone(self._q.load_identity, (self._id, address))
        return None if row is None else codec.identity_key(row[0], address)

    # -- sessions ----------------------------------------------------------

    async def get_sessions(self, addresses: Sequence[str]) -> dict[str, bytes]:
        wanted = v.address_list(addresses)
        if not wanted:
            return {}
        rows = await self._s._read_many(
            lambda c: self._s.select_in(c, "sessions", GET_SESSIONS_IN, (self._id,), wanted),
            len(wanted),
        )
        return {a: codec.blob(r, "sessions", a) for a, r in rows}

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_records(items, "sessions")
        await self._upsert_many(
            "put_session", self._q.put_session, [(self._id, a, r) for a, r in checked.items()]
        )

    async def has_session(self, address: str) -> bool:
        return (
            await self._s._fetchone(self._q.has_session, (self._id, v.address(address))) is not None
        )

    async def has_signal_state_for_user(self, user: str) -> bool:
        user = v.user(user)
        row = await self._s._fetchone(self._q.has_user_state, (self._id, *self._user_ranges(user)))
        return bool(row[0])

    async def delete_signal_state_for_user(self, user: str) -> int:
        user = v.user(user)
        ranges = (self._id, *self._user_ranges(user))
        q = self._q

        def run(c: Conn) -> int:
            n = c.execute(q.delete_user_sessions, ranges).rowcount
            n += c.execute(q.delete_user_identities, ranges).rowcount
            n += c.execute(
                q.delete_user_sender_keys, (self._id, f"::{user}@", f"::{user}:")
            ).rowcount
            return n

        return await self._atomic(run)

    # -- pre-keys ----------------------------------------------------------

    async def store_prekeys_batch(self, items: Sequence[tuple[int, bytes]], uploaded: bool) -> None:
        checked = v.prekey_records(items)
        up = v.boolean(uploaded, "uploaded")
        await self._upsert_many(
            "store_prekey", self._q.store_prekey, [(self._id, i, r, up) for i, r in checked.items()]
        )

    async def load_prekeys_batch(self, ids: Sequence[int]) -> dict[int, bytes]:
        wanted = v.prekey_ids(ids)
        if not wanted:
            return {}
        rows = await self._s._read_many(
            lambda c: self._s.select_in(c, "prekeys", LOAD_PREKEYS_IN, (self._id,), wanted),
            len(wanted),
        )
        return {i: codec.blob(r, "prekeys", i) for i, r in rows}

    async def load_unuploaded_prekeys(self, limit: int) -> list[tuple[int, bytes]]:
        limit = v.integer(limit, "limit", 0, v.MAX_BATCH)
        q = self._q.load_unuploaded_prekeys
        rows = await self._s._read_many(lambda c: c.execute(q, (self._id, limit)).fetchall(), limit)
        return [(i, codec.blob(r, "prekeys", i)) for i, r in rows]

    async def mark_prekeys_uploaded(self, ids: Sequence[int]) -> None:
        wanted = v.prekey_ids(ids)
        await self._many(self._q.mark_prekey_uploaded, [(self._id, i) for i in wanted])

    async def get_max_prekey_id(self) -> int:
        row = await self._s._fetchone(self._q.max_prekey_id, (self._id,))
        return int(row[0])

    # -- signed pre-keys ---------------------------------------------------

    # -- sender keys -------------------------------------------------------

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_records(items, "sender keys")
        await self._upsert_many(
            "put_sender_key",
            self._q.put_sender_key,
            [(self._id, a, r) for a, r in checked.items()],
        )

    # -- app-state sync ----------------------------------------------------

    async def get_latest_sync_key_id(self) -> bytes | None:
        row = await self._s._fetchone(self._q.latest_sync_key_id, (self._id,))
        return None if row is None else codec.blob(row[0], "sync_keys", "latest")

    async def get_version(self, name: str) -> HashState:
        name = v.collection_name(name)
        return codec.hash_state(
            await self._s._fetchone(self._q.get_version, (self._id, name)), name
        )

    async def put_mutation_macs(self, name: str, version: int, macs: Sequence[MutationMAC]) -> None:
        name = v.collection_name(name)
        version = v.integer(version, "version", 0)
        items = v.instances(macs, MutationMAC, "macs")
        await self._upsert_many(
            "put_mutation_mac",
            self._q.put_mutation_mac,
            [(self._id, name, m.index_mac, version, m.value_mac) for m in items],
            key=2,
        )

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        name = v.collection_name(name)
        index_mac = v.mac(index_mac, "index MAC")
        row = await self._s._fetchone(self._q.get_mutation_mac, (self._id, name, index_mac))
        return None if row is None else codec.blob(row[0], "app_state_macs", index_mac.hex())

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        wanted = v.mac_list(index_macs)
        if not wanted:
            return {}
        rows = await self._s._read_many(
            lambda c: self._s.select_in(c, "macs", GET_MACS_IN, (self._id, name), wanted),
            len(wanted),
        )
        return {k: codec.blob(m, "app_state_macs", k.hex()) for k, m in rows}

    async def get_all_mutation_macs(self, name: str) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        q = self._q.all_mutation_macs
        rows = await self._s._read_many(
            lambda c: c.execute(q, (self._id, name)).fetchall(), OFFLOAD_ITEMS + 1
        )
        return {k: codec.blob(m, "app_state_macs", k.hex()) for k, m in rows}

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        name = v.collection_name(name)
        wanted = v.mac_list(index_macs)
        await self._many(self._q.delete_mutation_mac, [(self._id, name, m) for m in wanted])

    # -- sender-key distribution -------------------------------------------

    async def set_sender_key_status(self, group: str, items: Sequence[tuple[str, bool]]) -> None:
        group = v.address(group, "group")
        checked: dict[str, bool] = {}
        for item in v.sequence(items, "items"):
            d, has = v.pair(item, "items")
            checked[v.address(d, "device jid")] = v.boolean(has, "has_key")
        await self._many(
            self._q.set_sender_key_status, [(self._id, group, d, h) for d, h in checked.items()]
        )

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        wanted = v.address_list(device_jids, "device jids")
        await self._many(self._q.delete_sender_key_device_rows, [(self._id, d) for d in wanted])

    # -- LID <-> PN --------------------------------------------------------

    async def put_lid_mapping(self, entry: LidPnMapping) -> None:
        e = v.instance(entry, LidPnMapping, "entry")
        await self._write(
            self._q.put_lid_mapping,
            (self._id, e.lid, e.phone_number, e.created_at, e.updated_at, e.learning_source),
        )

    async def put_lid_mappings(self, entries: Sequence[LidPnMapping]) -> None:
        items = v.instances(entries, LidPnMapping, "entries")
        await self._many(
            self._q.put_lid_mapping,
            [
                (self._id, e.lid, e.phone_number, e.created_at, e.updated_at, e.learning_source)
                for e in items
            ],
        )

    async def get_all_lid_mappings(self) -> list[LidPnMapping]:
        q = self._q.get_all_lid_mappings
        rows = await self._s._read_many(
            lambda c: c.execute(q, (self._id,)).fetchall(), OFFLOAD_ITEMS + 1
        )
        return [codec.lid_mapping(r) for r in rows]

    # -- base keys ---------------------------------------------------------

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        address, message_id, key = v.address(address), v.message_id(message_id), v.base_key(key)
        row = await self._s._fetchone(self._q.get_base_key, (self._id, address, message_id))
        if row is None:
            return False
        return codec.blob(row[0], "base_keys", (address, message_id)) == key

    # -- device registry ---------------------------------------------------

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        items = v.instances(records, DeviceListRecord, "records")
        await self._many(self._q.update_device_list, [self._device_list_row(r) for r in items])

    # -- tc tokens ---------------------------------------------------------

    async def get_all_tc_token_jids(self) -> list[str]:
        q = self._q.all_tc_token_jids
        rows = await self._s._read_many(
            lambda c: c.execute(q, (self._id,)).fetchall(), OFFLOAD_ITEMS + 1
        )
        return [r[0] for r in rows]

    async def delete_expired_tc_tokens(self, token_cutoff: int, sender_cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_tc_tokens,
            (
                self._id,
                v.integer(token_cutoff, "token_cutoff"),
                v.integer(sender_cutoff, "sender_cutoff"),
            ),
        )

    # -- sent messages -----------------------------------------------------

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        chat, message_id = v.address(chat, "chat"), v.message_id(message_id)
        q = self._q.take_sent_message
        row = await self._atomic(lambda c: c.execute(q, (self._id, chat, message_id)).fetchone())
        return None if row is None else codec.blob(row[0], "sent_messages", (chat, message_id))

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_sent_messages, (self._id, v.integer(cutoff, "cutoff"))
        )

    # -- message secrets ---------------------------------------------------
    async def put_msg_secrets(self, secrets: Sequence[MsgSecret]) -> int:
        items = v.instances(secrets, MsgSecret, "secrets")
        await self._many(
            self._q.put_msg_secret,
            [
                (self._id, s.chat, s.sender, s.msg_id, s.secret, s.expires_at, s.message_ts)
                for s in items
            ],
        )
        return len(items)

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_msg_secrets, (self._id, v.integer(cutoff, "cutoff"))
        )

    # -- pending inbound ---------------------------------------------------

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        key = v.pending_key(chat, sender, message_id)
        row = await self._s._fetchone(self._q.get_pending_inbound, (self._id, *key))
        return None if row is None else codec.blob(row[0], "pending_inbound", key)

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_pending_inbound, (self._id, v.integer(cutoff, "cutoff"))
        )

    # -- group metadata ----------------------------------------------------

    # -- DeviceStore -------------------------------------------------------
    async def save(self, device: Device) -> None:
        d = v.instance(device, Device, "device")
        d.validate()
        row = codec.device_to_row(d, time.time_ns() // 1_000_000)
        if self._lease is None:
            n = await self._write(self._q.update_device, (self._id, *row))
        else:  # fenced: only while this view still holds the account lease
            n = await self._write(self._q.update_device_fenced, (self._id, *row, self._lease))
        if n == 0:
            if self._lease is not None and await self.exists():
                raise AccountInUseError(
                    self._id, "another process", "this process lost the account lease"
                )
            raise DeviceNotFoundError(self._id, "create() the device row before saving it")

    async def exists(self) -> bool:
        return await self._s._fetchone(self._q.device_exists, (self._id,)) is not None

    async def create(self) -> int:
        row = codec.device_to_row(Device.new(), 0)
        q = self._q

        def insert(c: Conn) -> None:
            if c.execute(q.device_exists, (self._id,)).fetchone() is None:
                c.execute(q.insert_device, (self._id, *row))

        await self._atomic(insert)
        return self._id

    async def snapshot_db(self, name: str, extra: bytes | None = None) -> str:
        return await self._s.snapshot(name, extra)

    # -- LeaseStore --------------------------------------------------------
    async def acquire_lease(self, holder: str, ttl: float) -> str:
        holder = v.text(holder, "holder", max_len=256, allow_empty=False)
        ttl = _check_positive(ttl, "ttl")
        token = uuid.uuid4().hex
        q = self._q
        pid = os.getpid()

        def take(c: Conn) -> None:
            row = c.execute(q.get_lease, (self._id,)).fetchone()
            now = time.time()
            if row is not None:
                _, their_holder, host, their_pid, expires_at = row
                dead = host == _HOST and not _pid_alive(int(their_pid))
                if expires_at > now and not dead:
                    raise AccountInUseError(
                        self._id, str(their_holder), f"lease expires in {expires_at - now:.0f}s"
                    )
                log.info("account %s: taking over the expired lease of %s", self._id, their_holder)
            c.execute(q.put_lease, (self._id, token, holder, _HOST, pid, now + ttl))

        await self._atomic(take)
        self._lease = token
        return token

    async def renew_lease(self, token: str, ttl: float) -> bool:
        ttl = _check_positive(ttl, "ttl")
        return await self._write(self._q.renew_lease, (self._id, token, time.time() + ttl)) == 1

    async def release_lease(self, token: str) -> None:
        await self._write(self._q.release_lease, (self._id, token))
        if self._lease == token:
            self._lease = None


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    from ..registry import url_options

    rest = url.split("://", 1)[1] if "://" in url else url
    path, _, _query = rest.partition("?")
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise ConfigError(
            "sqlite:// URL without a path: use sqlite:///relative.db or sqlite:////abs/path.db"
        )
    return path, url_options(url) if "?" in rest else {}


_OPTION_TYPES: Final[dict[str, Callable[[str], Any]]] = {
    "prefix": str,
    "synchronous": str,
    "busy_timeout": float,
    "snapshot_dir": str,
    "migrate": lambda s: s.lower() in ("1", "true", "yes", "on"),
    "create": lambda s: s.lower() in ("1", "true", "yes", "on"),
}


async def open_sqlite(url: str | os.PathLike[str], **options: Any) -> SqliteStore:
    """Open ``sqlite:///path.db`` (or a plain path) with URL and keyword options."""
    if isinstance(url, str) and url.startswith("sqlite:"):
        path, query = parse_sqlite_url(url)
    else:
        path, query = os.fspath(url), {}
    merged: dict[str, Any] = {}
    for key, raw in query.items():
        conv = _OPTION_TYPES.get(key)
        if conv is None:
            raise ConfigError(
                f"unknown sqlite:// option {key!r}; known: {', '.join(sorted(_OPTION_TYPES))}"
            )
        try:
            merged[key] = conv(raw)
        except ValueError:
            raise ConfigError(f"sqlite:// option {key}={raw!r} is not valid") from None
    for key in options:
        if key not in _OPTION_TYPES:
            raise ConfigError(
                f"unknown sqlite option {key!r}; known: {', '.join(sorted(_OPTION_TYPES))}"
            )
    merged.update(options)
    return await SqliteStore.open(path, **merged)
