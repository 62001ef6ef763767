"""SqliteEngine: how the SQL backend runs on one SQLite database file.

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
  exponential backoff on the event loop (:mod:`wastore.backends.retry`), and
  after the budget (``busy_timeout`` seconds, default 5) it becomes
  :class:`BackendUnavailableError`.
- **Transactions** begin in :meth:`SqliteEngine._begin` and commit in
  :meth:`SqliteEngine._commit` (``transaction()`` blocks and atomic calls
  alike); a single write outside them commits as its own implicit
  transaction. A transaction holds the writer, so transactions of one
  container run one at a time (those of other processes wait for SQLite's
  write lock): a read-modify-write inside ``transaction()`` never loses an
  update. A wait for the writer lasts at most ``lock_timeout`` (30 s), then
  :class:`BackendUnavailableError` names the task holding it. A task started
  inside a transaction may read but not write while it is open
  (:mod:`wastore.backends._txn`).
- **Fencing**: a transaction or an atomic call on an account whose lease this
  container holds reads the lease epoch right after ``BEGIN IMMEDIATE``
  (:meth:`SqliteEngine._check_fence`); single-statement writes carry the check
  in the statement (:mod:`wastore.backends.sql.fence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from ...errors import BackendUnavailableError, ConfigError
from .. import _txn
from .._common import shielded
from ..options import StoreOptions
from ..retry import SQLITE_BUSY, Budget
from ..sql import migrate
from ..sql.engine import Args, Block, Rows, Statements, run_now
from ..sql.queries import Batch, KeyRead, Queries, to_sqlite
from ..sql.schema import Dialect, Migration
from .errors import is_busy, translate
from .leases import SqliteLeases
from .statements import dialect_queries, multi_row_sql, padded_chunks, row_chunks

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
FILE_MODE: Final = 0o600


@dataclass(frozen=True, slots=True, kw_only=True)
class SqliteOptions(StoreOptions):
    """The options of an open SQLite store (checked by :meth:`SqliteStore.open`)."""

    synchronous: Literal["NORMAL", "FULL"]
    busy_timeout: float
    snapshot_dir: Path | None


class SqliteEngine:
    """The connections of one database file and how statements run on them."""

    def __init__(self, path: Path, options: SqliteOptions) -> None:
        self.path = path
        self.opts = options
        self.q = Queries("sqlite", options.prefix)
        self.dq = dialect_queries(self.q)
        self.leases = SqliteLeases(self)
        self.lock_timeout = _txn.DEFAULT_LOCK_TIMEOUT
        self._w: Conn | None = None
        self._r: Conn | None = None
        self._bg: Conn | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wastore-sqlite")
        self._wlock = asyncio.Lock()
        # Who holds the writer: (task, account, since), for the error of a wait that times out.
        self._wholder: tuple[asyncio.Task[Any] | None, int | None, float] | None = None
        self._closed = False
        self._commits = 0
        self._checkpoint: asyncio.Future[Any] | None = None
        self._sql: dict[tuple[str, int], str] = {}  # IN-list and multi-row statements
        self._inline_commits = options.synchronous == "NORMAL"
        self._big_txn = False  # the open transaction wrote a batch on the worker

    # -- opening and closing ---------------------------------------------------
    async def open(self, create: bool) -> None:
        """Create (if ``create``) and open the file, then create or upgrade the schema."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._open_sync, create)
        except BaseException:
            self._close_sync()
            self._pool.shutdown(wait=False)
            raise

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
        budget_ms = int(self.opts.busy_timeout * 1000)
        try:
            self._w = self._connect(busy_ms=budget_ms)
            w = self._w
            # A journal-mode change fails at once with "database is locked" while another
            # connection holds a write lock on a file still in rollback mode (two processes
            # opening a fresh file together): SQLite calls no busy handler there.
            mode = self._busy_retry_sync(lambda: w.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            if str(mode).lower() != "wal":
                raise ConfigError(
                    f"SQLite refused WAL mode for {str(path)!r} (got {mode!r}); the file system "
                    "may not support shared memory (network drives do not)"
                )
            w.execute(f"PRAGMA synchronous={self.opts.synchronous}")
            w.execute("PRAGMA foreign_keys=ON")
            if w.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
                raise ConfigError("this SQLite build cannot enforce foreign keys")
            w.execute("PRAGMA wal_autocheckpoint=0")
            w.execute("PRAGMA journal_size_limit=67108864")
            run_now(
                migrate.migrate(
                    SchemaConn(w),
                    self.opts.prefix,
                    upgrade=self.opts.migrate,
                    where=str(path),
                    log=log,
                )
            )
            w.execute("PRAGMA busy_timeout=0")
            self._r = self._connect(busy_ms=0)
            self._r.execute("PRAGMA query_only=ON")
            self._bg = self._connect(busy_ms=budget_ms)
            self._bg.execute("PRAGMA query_only=ON")
        except sqlite3.Error as err:
            raise translate(err, f"opening {str(path)!r}") from err

    def _busy_retry_sync(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread, retrying busy errors within the busy budget."""
        budget = Budget(self.opts.busy_timeout, SQLITE_BUSY)
        while True:
            try:
                return fn()
            except sqlite3.Error as err:
                if not is_busy(err) or not budget.pause_sync():
                    raise

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

    def schema_status(self) -> tuple[int, int, list[Migration]]:
        """``(version, compat, pending steps)`` of the open database (inline)."""
        self.check_open()
        assert self._w is not None
        return run_now(migrate.status(SchemaConn(self._w), self.opts.prefix))

    @property
    def open_connections(self) -> int:
        return sum(c is not None for c in (self._w, self._r, self._bg))

    async def close(self) -> None:
        """Release the leases, wait for open transactions, checkpoint the WAL and close.
        Safe to call twice."""
        if self._closed:
            return
        await self.leases.close()
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

    def check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError(f"the SQLite store {str(self.path)!r} is closed")

    # -- reads -------------------------------------------------------------
    def _reader(self) -> Conn:
        """The connection a read of the running task uses.

        Inside the task's transaction: the writer (it sees the transaction's writes).
        Outside: the writer too when nobody holds it — a statement never suspends, so
        no transaction can open meanwhile, and the writer's page cache stays warm
        (a reader connection's cache is dropped whenever the writer commits) — else
        the reader, which never sees another task's uncommitted writes.
        """
        st = _txn.current(self, read=True)
        if st is not None:
            conn: Conn = st.data
            return conn
        if self._closed or self._r is None:
            self.check_open()
            raise BackendUnavailableError("the SQLite store is not open")
        if not self._wlock.locked():
            w = self._w
            assert w is not None
            return w
        return self._r

    async def one(self, sql: str, args: Sequence[Any]) -> Any:
        conn = self._reader()
        try:
            return conn.execute(sql, args).fetchone()
        except sqlite3.Error as err:
            # A retry picks its connection again: after the back-off the writer may be
            # inside another task's transaction.
            return await self._retry(err, lambda: self._reader().execute(sql, args).fetchone())

    async def value(self, sql: str, args: Sequence[Any]) -> Any:
        conn = self._reader()
        try:
            row = conn.execute(sql, args).fetchone()
        except sqlite3.Error as err:
            row = await self._retry(err, lambda: self._reader().execute(sql, args).fetchone())
        return None if row is None else row[0]

    async def rows(self, sql: str, args: Sequence[Any], *, expect: int | None = 0) -> list[Any]:
        if expect is not None and expect <= OFFLOAD_ITEMS:
            conn = self._reader()
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                return await self._retry(err, lambda: self._reader().execute(sql, args).fetchall())
        return await self._read_big(lambda c: c.execute(sql, args).fetchall())

    async def by_keys(self, stmt: KeyRead, head: tuple[Any, ...], keys: Sequence[Any]) -> list[Any]:
        """``stmt`` over ``keys`` in IN-list chunks of padded sizes (inline for a few keys,
        on the worker for many)."""

        def run(conn: Conn) -> list[Any]:
            rows: list[Any] = []
            for size, chunk in padded_chunks(keys):
                rows.extend(conn.execute(self._in_list(stmt, size), (*head, *chunk)))
            return rows

        if len(keys) <= OFFLOAD_ITEMS:
            try:
                return run(self._reader())
            except sqlite3.Error as err:
                return await self._retry(err, lambda: run(self._reader()))
        return await self._read_big(run)

    async def _read_big(self, fn: Callable[[Conn], T]) -> T:
        """A large read on the worker thread: in the task's transaction, or on the
        worker's reader."""
        st = _txn.current(self, read=True)
        self.check_open()
        conn: Conn | None = st.data if st is not None else self._bg
        assert conn is not None
        return await self._retrying_offload(lambda: fn(conn))

    async def read_snapshot(self, statements: Statements) -> list[Rows]:
        """The statements in one read transaction of the worker's reader."""
        self.check_open()

        def run() -> list[Rows]:
            bg = self._bg
            assert bg is not None
            bg.execute("BEGIN")
            try:
                return [bg.execute(sql, args).fetchall() for sql, args in statements]
            finally:
                bg.execute("COMMIT")

        return await self._retrying_offload(run)

    def _in_list(self, stmt: KeyRead, size: int) -> str:
        key = (stmt.sql, size)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = stmt.sql.replace("{inlist}", ",".join("?" * size))
        return sql

    # -- writes ------------------------------------------------------------
    async def write(
        self, sql: str, args: Sequence[Any], *, idempotent: bool = True, account: int | None = None
    ) -> int:
        st = _txn.current(self)
        if st is not None:
            return await self._in_txn(st.data, lambda c: c.execute(sql, args).rowcount)
        self.check_open()
        if self._wlock.locked() or not self._inline_commits:
            return await self._atomic(lambda c: c.execute(sql, args).rowcount)
        # Fast path: nobody holds the writer and a statement never suspends, so it
        # runs as its own implicit transaction without taking the lock.
        w = self._w
        assert w is not None
        try:
            n = w.execute(sql, args).rowcount
        except sqlite3.Error as err:
            if not is_busy(err):
                raise translate(err, "write") from err
            return await self._atomic(lambda c: c.execute(sql, args).rowcount)
        self._committed()
        return n

    async def write_returning(
        self, sql: str, args: Sequence[Any], *, account: int | None = None
    ) -> Any:
        return await self._atomic(lambda c: c.execute(sql, args).fetchone())

    async def batch(
        self,
        stmt: Batch,
        head: Args,
        rows: Sequence[Args],
        tail: Args = (),
        *,
        account: int | None = None,
    ) -> None:
        if not rows:
            return
        if stmt.mode == "rows":
            await self._atomic(
                lambda c: self._upsert_many(c, stmt.sql, head, rows, tail), len(rows), account
            )
        elif stmt.mode == "each":
            full = [(*head, *r, *tail) for r in rows]
            await self._atomic(lambda c: c.executemany(stmt.sql, full), len(rows), account)
        else:
            raise ValueError(f"SQLite runs no {stmt.mode!r} batch")

    def _upsert_many(
        self,
        conn: Conn,
        sql: str,
        head: tuple[Any, ...],
        rows: Sequence[tuple[Any, ...]],
        tail: tuple[Any, ...],
    ) -> None:
        """Write ``rows`` with the one-row upsert ``sql``, up to 64 rows per statement.

        Same effect as ``executemany`` in the given order, but the B-tree is walked in
        key order (about a third faster for 2,000 sessions), and a worker thread needs
        the GIL once per statement instead of once per row, so a batch written in the
        background (a SignalCache flush) slows the event loop down less.
        """
        for start, size in row_chunks(len(rows)):
            params = [x for r in rows[start : start + size] for x in (*head, *r, *tail)]
            key = (sql, -size)
            text = self._sql.get(key)
            if text is None:
                text = self._sql[key] = multi_row_sql(sql, size)
            conn.execute(text, params)

    async def atomic(
        self,
        block: Block[T],
        *,
        items: int = 1,
        idempotent: bool = False,
        account: int | None = None,
    ) -> T:
        return await self._atomic(lambda c: run_now(block(Tx(c))), items, account)

    def unique_violation(self, err: BaseException | None) -> bool:
        return isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err)

    # -- the execution core ------------------------------------------------
    async def _atomic(
        self, fn: Callable[[Conn], T], items: int = 1, account: int | None = None
    ) -> T:
        """Run ``fn(writer)`` as one transaction (a savepoint inside the task's
        transaction), fenced by ``account``'s lease if this container holds it."""
        st = _txn.current(self)
        if st is not None:
            return await self._in_txn(st.data, fn, items, account)
        self.check_open()
        offload = items > OFFLOAD_ITEMS or not self._inline_commits
        async with self._writer(account):
            self.check_open()
            w = self._w
            assert w is not None
            await self._begin(w)
            try:
                self._check_fence(w, account)
                result = await self._run(lambda: fn(w), offload)
            except BaseException as err:
                await self._rollback(w, offload)
                if isinstance(err, sqlite3.Error):
                    raise translate(err, "write") from err
                raise
            await self._commit(w, offload)
        return result

    async def _in_txn(
        self, conn: Conn, fn: Callable[[Conn], T], items: int = 1, account: int | None = None
    ) -> T:
        """Run ``fn`` inside the open transaction, undone on failure (a savepoint)."""
        offload = items > OFFLOAD_ITEMS
        if offload:
            self._big_txn = True
        self._check_fence(conn, account)

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
            raise translate(err, "write") from err

    async def _run(self, fn: Callable[[], T], offload: bool) -> T:
        if not offload:
            return fn()
        return await self.offload(fn)

    async def offload(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread; a cancelled caller still waits for it to finish
        (the connection it uses must not be touched by anyone else meanwhile)."""
        return await shielded(asyncio.get_running_loop().run_in_executor(self._pool, fn))

    async def _retrying_offload(self, fn: Callable[[], T]) -> T:
        try:
            return await self.offload(fn)
        except sqlite3.Error as err:
            return await self._retry(err, fn, offload=True)

    async def _retry(self, err: sqlite3.Error, fn: Callable[[], T], offload: bool = False) -> T:
        """Retry ``fn`` after a busy error, with backoff, within the busy budget."""
        if not is_busy(err):
            raise translate(err, "read") from err
        budget = Budget(self.opts.busy_timeout, SQLITE_BUSY)
        while True:
            if not await budget.pause():
                raise BackendUnavailableError(
                    f"the SQLite database {str(self.path)!r} stayed locked for "
                    f"{self.opts.busy_timeout:g}s (another process holds the write lock)"
                ) from err
            self.check_open()
            try:
                return await self.offload(fn) if offload else fn()
            except sqlite3.Error as again:
                if not is_busy(again):
                    raise translate(again, "read") from again
                err = again

    @asynccontextmanager
    async def _writer(self, account: int | None) -> AsyncIterator[None]:
        """Hold the writer (waiting at most ``lock_timeout`` for another task's transaction)."""
        lock = self._wlock
        if lock.locked():
            try:
                async with asyncio.timeout(self.lock_timeout):
                    await lock.acquire()
            except TimeoutError:
                held = self._wholder
                holder = "another task" if held is None else _txn.describe_holder(*held)
                raise _txn.wait_timeout(
                    f"the writer of the SQLite store {str(self.path)!r}", holder, self.lock_timeout
                ) from None
        else:
            await lock.acquire()
        self._wholder = (asyncio.current_task(), account, time.monotonic())
        try:
            yield
        finally:
            self._wholder = None
            lock.release()

    def _check_fence(self, conn: Conn, account: int | None) -> None:
        """Inside a write transaction: raise AccountInUseError if this container holds
        ``account``'s lease and another holder took it over (nothing written yet)."""
        if account is None:
            return
        epoch = self.leases.fence(account)
        if epoch is None:
            return
        try:
            row = conn.execute(self.leases.check_sql, (account,)).fetchone()
        except sqlite3.Error as err:
            raise translate(err, "lease check") from err
        self.leases.check_row(account, epoch, row)

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
                await self.offload(lambda: w.execute("COMMIT"))
        except sqlite3.Error as err:
            if w.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    w.execute("ROLLBACK")
            raise translate(err, "commit") from err
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
    async def transaction(self, account: int | None = None) -> AsyncIterator[None]:
        st = _txn.current(self)
        if st is not None:
            conn: Conn = st.data
            self._check_fence(conn, account)
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
        self.check_open()
        async with self._writer(account):
            self.check_open()
            w = self._w
            assert w is not None
            await self._begin(w)
            try:
                self._check_fence(w, account)
            except BaseException:
                await self._rollback(w, False)
                raise
            self._big_txn = False
            state: _txn.TxnState[Conn] = _txn.TxnState(self, w, account)
            token = _txn.push(state)
            try:
                yield
            except BaseException:
                _txn.pop(token, state)
                await self._rollback(w, self._big_txn)
                raise
            _txn.pop(token, state)
            await self._commit(w, self._big_txn)

    async def vacuum_into(self, target: Path) -> None:
        """``VACUUM INTO target`` on the worker's connection (a consistent copy of the
        database; ``target`` may be an empty file, whose mode it keeps)."""
        self.check_open()

        def run() -> None:
            bg = self._bg
            assert bg is not None
            bg.execute("PRAGMA query_only=OFF")  # VACUUM INTO writes the target file
            try:
                bg.execute("VACUUM INTO ?", (str(target),))
            finally:
                bg.execute("PRAGMA query_only=ON")

        try:
            await self.offload(run)
        except sqlite3.Error as err:
            raise translate(err, "snapshot") from err


class Tx:
    """The statements of an atomic block on the writer (synchronous: they never suspend)."""

    __slots__ = ("_c",)

    def __init__(self, conn: Conn) -> None:
        self._c = conn

    async def one(self, sql: str, args: Sequence[Any]) -> Any:
        return self._c.execute(sql, args).fetchone()

    async def rows(self, sql: str, args: Sequence[Any]) -> list[Any]:
        return self._c.execute(sql, args).fetchall()

    async def write(self, sql: str, args: Sequence[Any]) -> int:
        return self._c.execute(sql, args).rowcount

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._c.executemany(sql, rows)


class SchemaConn:
    """A connection as the migrations runner uses it (synchronous, never suspends)."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: Conn) -> None:
        self._c = conn

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return self._c.execute(to_sqlite(sql), args).fetchall()

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._c.execute(to_sqlite(sql), args)

    async def script(self, statements: Sequence[str]) -> None:
        for stmt in statements:
            self._c.execute(stmt)

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        conn = self._c
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
