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
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from ...errors import BackendUnavailableError
from .. import _txn
from ..retry import SQLITE_BUSY, Budget
from ..sql.engine import Args, Block, EngineBase, Rows, Statements, run_now
from ..sql.queries import Batch, KeyRead, Queries
from .checkpoints import WalCheckpoints
from .connections import Conn, SqliteOptions
from .errors import DRIVER_ERRORS, DriverError, is_busy, translate
from .leases import SqliteLeases
from .statements import dialect_queries, multi_row_sql, padded_chunks, row_chunks

log = logging.getLogger("wastore.sqlite")

T = TypeVar("T")

OFFLOAD_ITEMS: Final = 64
"""Batches and multi-key reads with more items than this run on the worker thread."""


class SqliteEngine(WalCheckpoints, EngineBase):
    """How statements run on the connections of one database file."""

    def __init__(self, path: Path, options: SqliteOptions) -> None:
        super().__init__(path, options)
        self.q = Queries("sqlite", options.prefix)
        self.dq = dialect_queries(self.q)
        self.leases = SqliteLeases(self)
        self.lock_timeout = _txn.DEFAULT_LOCK_TIMEOUT
        self._wlock = asyncio.Lock()
        # Who holds the writer: (task, account, since), for the error of a wait that times out.
        self._wholder: tuple[asyncio.Task[Any] | None, int | None, float] | None = None
        self._sql: dict[tuple[str, int], str] = {}  # IN-list and multi-row statements
        self._inline_commits = options.synchronous == "NORMAL"
        self._big_txn = False  # the open transaction wrote a batch on the worker

    # -- closing ---------------------------------------------------------------
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
                    await asyncio.wrap_future(self._checkpoint)
            await asyncio.get_running_loop().run_in_executor(self._pool, self._close_sync)
        self._pool.shutdown(wait=True)

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
        except DRIVER_ERRORS as err:
            # A retry picks its connection again: after the back-off the writer may be
            # inside another task's transaction.
            return await self._retry(err, lambda: self._reader().execute(sql, args).fetchone())

    async def value(self, sql: str, args: Sequence[Any]) -> Any:
        conn = self._reader()
        try:
            row = conn.execute(sql, args).fetchone()
        except DRIVER_ERRORS as err:
            row = await self._retry(err, lambda: self._reader().execute(sql, args).fetchone())
        return None if row is None else row[0]

    async def rows(self, sql: str, args: Sequence[Any], *, expect: int | None = 0) -> list[Any]:
        if expect is not None and expect <= OFFLOAD_ITEMS:
            conn = self._reader()
            try:
                return conn.execute(sql, args).fetchall()
            except DRIVER_ERRORS as err:
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
            except DRIVER_ERRORS as err:
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
        if self._wlock.locked() or not self._inline_commits or self._wal_over:
            return await self._atomic(lambda c: c.execute(sql, args).rowcount)
        # Fast path: nobody holds the writer and a statement never suspends, so it
        # runs as its own implicit transaction without taking the lock.
        w = self._w
        assert w is not None
        try:
            n = w.execute(sql, args).rowcount
        except sqlite3.Error as err:
            if not is_busy(err):
                raise translate(err, "write", self.path) from err
            return await self._atomic(lambda c: c.execute(sql, args).rowcount)
        self._committed()
        return n

    async def write_returning(
        self, sql: str, args: Sequence[Any], *, account: int | None = None
    ) -> Any:
        return await self._atomic(lambda c: c.execute(sql, args).fetchone())

    async def _write_batch(
        self, stmt: Batch, head: Args, rows: Sequence[Args], tail: Args, account: int | None
    ) -> None:
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

    async def _run_block(
        self, block: Block[T], items: int, idempotent: bool, account: int | None
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
            w = await self._begin()
            try:
                self._check_fence(w, account)
                result = await self._run(lambda: fn(w), offload)
            except BaseException as err:
                await self._rollback(w, offload)
                if isinstance(err, sqlite3.Error):
                    raise translate(err, "write", self.path) from err
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
            raise translate(err, "write", self.path) from err

    async def _run(self, fn: Callable[[], T], offload: bool) -> T:
        if not offload:
            return fn()
        return await self.offload(fn)

    async def _retrying_offload(self, fn: Callable[[], T]) -> T:
        try:
            return await self.offload(fn)
        except DRIVER_ERRORS as err:
            return await self._retry(err, fn, offload=True)

    async def _retry(self, err: DriverError, fn: Callable[[], T], offload: bool = False) -> T:
        """Retry ``fn`` after a busy error, with backoff, within the busy budget."""
        if not is_busy(err):
            raise translate(err, "read", self.path) from err
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
            except DRIVER_ERRORS as again:
                if not is_busy(again):
                    raise translate(again, "read", self.path) from again
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

    async def _begin(self) -> Conn:
        """``BEGIN IMMEDIATE`` on the writer, which the caller holds; returns the writer."""
        self.check_open()
        w = self._w
        assert w is not None
        if self._wal_over:
            await self._complete_checkpoint()
        try:
            w.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            await self._retry(err, lambda: w.execute("BEGIN IMMEDIATE"))
        return w

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
            raise translate(err, "commit", self.path) from err
        self._committed(big)

    async def _rollback(self, w: Conn, offload: bool) -> None:
        if not w.in_transaction:
            return
        try:
            await self._run(lambda: w.execute("ROLLBACK"), offload)
        except sqlite3.Error as err:  # the connection rolls back when closed anyway
            log.error("rollback failed: %s", err)

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
            w = await self._begin()
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
