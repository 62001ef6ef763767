"""PostgresEngine: how the SQL backend runs on one PostgreSQL database.

Design (measured on a 2-core machine, server on the same host; see
``benchmarks/pg_quick.py`` and ``docs/postgres.md``):

- **One small pool per Container** (:mod:`.pool`), shared by every account
  (``pool_size``, default 10, the lease connection included).
- **Statements** are the shared ones of :mod:`wastore.backends.sql.queries`
  and PostgreSQL's own batches and multi-key reads (:mod:`.statements`),
  prepared once per connection by asyncpg. A single statement runs in
  autocommit mode: no ``BEGIN``/``COMMIT`` round trips.
- **Retries** (:mod:`.errors`): while the server cannot be reached, a call is
  retried with backoff for ``retry_timeout`` seconds (default 5), then raised
  as :class:`~wastore.BackendUnavailableError`. A statement whose connection
  died after it was sent runs again only if running it twice is harmless
  (reads, upserts), never otherwise (``take_sent_message``, ``create_device``,
  deletes that return a count), and never inside a transaction, which the
  server then rolls back.
- **Timeouts**: one watchdog task per container closes the connection of any
  statement running longer than ``command_timeout`` (default 30 s); asyncpg's
  per-call timeout schedules a timer around every statement, 5 µs of a 30 µs
  read. Each connection attempt is bounded by ``connect_timeout``.
- **Transactions** begin in :meth:`PostgresEngine._begin_on` and commit in
  :meth:`PostgresEngine._commit_on` (``transaction()`` blocks and atomic
  calls alike). ``backend.transaction()`` holds one connection for the block;
  nested blocks and multi-statement calls inside it are savepoints. A
  statement that fails inside a block aborts the PostgreSQL transaction:
  later calls in the block raise :class:`~wastore.StoreError`, and the block
  rolls back and raises instead of committing (a nested block that raises
  rolls back to its savepoint, and the outer block can go on).
- **Per-account transactions**: ``backend.transaction()`` locks the account's
  lease row (``SELECT ... FOR NO KEY UPDATE``, created on first use) in the
  same round trip as its ``BEGIN``, so transactions of one account run one at
  a time in every process (READ COMMITTED alone let two read-modify-write
  transactions both read the old value) and those of different accounts never
  wait for each other. Transactions of one account in this process queue here
  first (without holding a connection); every wait lasts at most
  ``command_timeout`` and its error names the holder. A task started inside a
  transaction may read but not write while it is open (:mod:`wastore.backends._txn`).
- **Fencing**: when this container holds the account's lease, the same lock
  statement checks its epoch (a holder that lost the lease gets
  :class:`~wastore.AccountInUseError` before anything is written); atomic
  calls and batches of a leased account check it with ``FOR SHARE`` at their
  ``BEGIN``; single statements carry the check (:mod:`wastore.backends.sql.fence`).
- **Cancellation**: a single statement whose caller is cancelled keeps its
  connection (asyncpg finishes the cancellation before the connection's next
  statement), so cancellations do not cost reconnections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import asyncpg

from ...errors import BackendUnavailableError
from .. import _txn
from ..sql.engine import Args, Block, EngineBase, Rows, Statements
from ..sql.queries import Batch, KeyRead, Queries
from .connections import Op, PostgresOptions
from .errors import Conn, lost, message, reraise, retry_after_send
from .leases import PostgresLeases
from .pool import Pool
from .statements import dialect_queries
from .transactions import PostgresTransactions, _Txn

log = logging.getLogger("wastore.postgres")

T = TypeVar("T")


def status_count(status: str) -> int:
    """The row count of a command status (``"DELETE 3"``, ``"INSERT 0 1"``)."""
    try:
        return int(status.rsplit(" ", 1)[1])
    except (IndexError, ValueError):
        return 0


class PostgresEngine(PostgresTransactions, EngineBase):
    """A pool of connections to one database and how statements run on them."""

    def __init__(self, pool: Pool, options: PostgresOptions, where: str) -> None:
        super().__init__(pool, options, where)
        self.q = Queries("postgres", options.prefix)
        self.dq = dialect_queries(self.q)
        self.leases = PostgresLeases(self)

    # -- closing ---------------------------------------------------------------
    async def close(self) -> None:
        """Release the leases and close the pool's connections. Safe to call twice."""
        if self._closed:
            return
        await self.leases.close()
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        await self.pool.close()

    # -- the primitives ------------------------------------------------------
    async def one(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._call("fetchrow", sql, args, read=True)

    async def value(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._call("fetchval", sql, args, read=True)

    async def rows(self, sql: str, args: Sequence[Any], *, expect: int | None = 0) -> list[Any]:
        rows: list[Any] = await self._call("fetch", sql, args, read=True)
        return rows

    async def by_keys(self, stmt: KeyRead, head: tuple[Any, ...], keys: Sequence[Any]) -> list[Any]:
        rows: list[Any] = await self._call("fetch", stmt.sql, (*head, keys), read=True)
        return rows

    async def write(
        self, sql: str, args: Sequence[Any], *, idempotent: bool = True, account: int | None = None
    ) -> int:
        return status_count(await self._call("execute", sql, args, idempotent, account))

    async def write_returning(
        self, sql: str, args: Sequence[Any], *, account: int | None = None
    ) -> Any:
        return await self._call("fetchrow", sql, args, False, account)

    async def _write_batch(
        self, stmt: Batch, head: Args, rows: Sequence[Args], tail: Args, account: int | None
    ) -> None:
        if stmt.mode == "arrays":
            columns = [list(c) for c in zip(*rows, strict=True)]
            kind, args = "execute", (*head, *columns, *tail)
        elif stmt.mode == "each":
            # executemany: one round trip, one implicit transaction (atomic)
            kind, args = "executemany", ([(*head, *r, *tail) for r in rows],)
        else:
            raise ValueError(f"PostgreSQL runs no {stmt.mode!r} batch")
        if account is not None and self.leases.fence(account) is not None:
            # Leased: the epoch is checked at BEGIN, in the batch's own transaction.
            await self._atomic(
                lambda c: getattr(c, kind)(stmt.sql, *args), idempotent=True, account=account
            )
            return
        await self._call(kind, stmt.sql, args, True, account)

    async def _run_block(
        self, block: Block[T], items: int, idempotent: bool, account: int | None
    ) -> T:
        result: T = await self._atomic(
            lambda c: block(Tx(c)), idempotent=idempotent, account=account
        )
        return result

    async def read_snapshot(self, statements: Statements) -> list[Rows]:
        """The statements in one REPEATABLE READ read-only transaction."""
        self.check_open()

        async def run(conn: Conn) -> list[Rows]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [
                    [tuple(r) for r in await conn.fetch(sql, *args)] for sql, args in statements
                ]

        result: list[Rows] = await self.with_conn(run, True)
        return result

    def unique_violation(self, err: BaseException | None) -> bool:
        return isinstance(err, asyncpg.UniqueViolationError)

    # -- the execution core ------------------------------------------------
    async def _call(
        self,
        kind: str,
        sql: str,
        args: Sequence[Any],
        idempotent: bool = True,
        account: int | None = None,
        read: bool = False,
    ) -> Any:
        """One statement, ``conn.<kind>(sql, *args)`` (``kind``: fetch, fetchrow, fetchval,
        execute or executemany), in the task's transaction or on a pooled connection.

        ``idempotent``: running it twice is harmless, so it may run again when its
        connection died after it was sent. ``account``: the account it writes, whose
        transaction in another task of this process it waits for. ``read``: it only
        reads (a task started inside a transaction reads outside it).
        """
        st = _txn.current(self, read)
        if st is not None:
            return await self._in_txn(st.data, lambda c: getattr(c, kind)(sql, *args))
        if account is not None and self._accounts:
            await self._wait_account(account)
        conn = self.pool.take_nowait()
        if conn is None:
            return await self.with_conn(
                lambda c: getattr(c, kind)(sql, *args), idempotent, single=True
            )
        inflight = self._inflight  # timed(), inlined on the hot path
        inflight[conn] = time.monotonic()
        try:
            result = await getattr(conn, kind)(sql, *args)
        except BaseException as err:
            del inflight[conn]
            await self._put_back(conn, err, single=True)
            self.late(conn, err)
            if isinstance(err, Exception) and retry_after_send(err, idempotent):
                return await self.with_conn(
                    lambda c: getattr(c, kind)(sql, *args), idempotent, err, single=True
                )
            reraise(err, "statement", self.where)
        del inflight[conn]
        self.pool.give(conn)
        return result

    async def _atomic(self, fn: Op, *, idempotent: bool, account: int | None = None) -> Any:
        """Run ``fn(conn)`` (several statements) as one transaction, or as a savepoint
        inside the task's transaction (a failure then undoes only this call); fenced
        by ``account``'s lease when this container holds it."""
        st = _txn.current(self)
        if st is None:
            epoch = None if account is None else self.leases.fence(account)
            if account is not None and self._accounts:
                await self._wait_account(account)

            async def run(conn: Conn) -> Any:
                await self._begin_on(conn, account, epoch, "FOR SHARE")
                try:
                    result = await fn(conn)
                except BaseException:
                    if not conn.is_closed():  # else the server rolled back already
                        with contextlib.suppress(Exception):
                            await conn.execute("ROLLBACK")
                    raise
                try:
                    await self._commit_on(conn)
                except Exception as err:
                    if idempotent or not lost(err):
                        raise
                    raise BackendUnavailableError(
                        f"the connection to {self.where} was lost at COMMIT: the transaction "
                        f"may or may not have been committed ({message(err)})"
                    ) from err
                return result

            # Until COMMIT is sent nothing is committed: a block whose connection died
            # (or that a deadlock rolled back) runs again; a lost COMMIT is raised above.
            return await self.with_conn(run, True)
        tx: _Txn = st.data
        if account is not None:
            await self._lock_in_txn(st, account, shared=True)
        await self._in_txn(tx, lambda c: c.execute("SAVEPOINT wastore_call"))
        try:
            result = await self.timed(tx.conn, fn(tx.conn))
        except BaseException as err:
            await self._undo_savepoint(tx, "wastore_call")
            self.late(tx.conn, err)
            reraise(err, "write in a transaction", self.where)
        await self._in_txn(tx, lambda c: c.execute("RELEASE SAVEPOINT wastore_call"))
        return result


class Tx:
    """The statements of an atomic block, on its connection."""

    __slots__ = ("_c",)

    def __init__(self, conn: Conn) -> None:
        self._c = conn

    async def one(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._c.fetchrow(sql, *args)

    async def rows(self, sql: str, args: Sequence[Any]) -> list[Any]:
        rows: list[Any] = await self._c.fetch(sql, *args)
        return rows

    async def write(self, sql: str, args: Sequence[Any]) -> int:
        return status_count(await self._c.execute(sql, *args))

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._c.executemany(sql, rows)
