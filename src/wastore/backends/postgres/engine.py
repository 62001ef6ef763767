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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from ...errors import BackendUnavailableError, StoreError
from .. import _txn
from ..sql.engine import Args, Block, Rows, Statements
from ..sql.queries import Batch, KeyRead, Queries
from .connections import Op, PostgresConnections, PostgresOptions
from .errors import Conn, lost, message, reraise, retry_after_send
from .leases import PostgresLeases
from .pool import Pool
from .statements import dialect_queries

log = logging.getLogger("wastore.postgres")

T = TypeVar("T")


def status_count(status: str) -> int:
    """The row count of a command status (``"DELETE 3"``, ``"INSERT 0 1"``)."""
    try:
        return int(status.rsplit(" ", 1)[1])
    except (IndexError, ValueError):
        return 0


class _Txn:
    """The connection of an open ``transaction()`` block, whether a call in it failed,
    and the accounts it locked or whose lease epoch it checked."""

    __slots__ = ("checked", "conn", "ended", "failed", "locked")

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.failed: BaseException | None = None
        self.locked: set[int] = set()
        self.checked: set[int] = set()
        self.ended = asyncio.Event()


class PostgresEngine(PostgresConnections):
    """A pool of connections to one database and how statements run on them."""

    def __init__(self, pool: Pool, options: PostgresOptions, where: str) -> None:
        super().__init__(pool, options, where)
        self.q = Queries("postgres", options.prefix)
        self.dq = dialect_queries(self.q)
        self.leases = PostgresLeases(self)
        # The open transactions of this process, by the accounts they locked.
        self._accounts: dict[int, _txn.TxnState[_Txn]] = {}
        p = options.prefix
        self._lock_sql = {
            "create": f"INSERT INTO {p}leases (device_id, token, holder, host, pid, expires_at, "
            "epoch, ttl) SELECT id, '', '', '', 0, 0, 0, 0 FROM "
            f"{p}device WHERE id = $1 ON CONFLICT (device_id) DO NOTHING",
            "lock": f"SELECT 1 FROM {p}leases WHERE device_id = $1 FOR NO KEY UPDATE",
            "fenced": f"SELECT 1 FROM {p}leases WHERE device_id = $1 AND epoch = $2 "
            "FOR NO KEY UPDATE",
            "shared": f"SELECT 1 FROM {p}leases WHERE device_id = $1 AND epoch = $2 FOR SHARE",
        }

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

    async def atomic(
        self,
        block: Block[T],
        *,
        items: int = 1,
        idempotent: bool = False,
        account: int | None = None,
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

    async def _in_txn(self, tx: _Txn, op: Op) -> Any:
        """A single statement inside the task's transaction: never retried; if it fails,
        the PostgreSQL transaction is aborted (see the module docstring)."""
        self._check_failed(tx)
        try:
            return await self.timed(tx.conn, op(tx.conn))
        except BaseException as err:
            tx.failed = err
            self.late(tx.conn, err)
            if isinstance(err, asyncpg.LockNotAvailableError):
                # lock_timeout (set to command_timeout at BEGIN) ended a wait for a lock.
                tx.failed = BackendUnavailableError(
                    f"a statement in a transaction on {self.where} waited longer than "
                    f"command_timeout ({self.opts.command_timeout:g}s) for a lock held by "
                    f"another transaction ({message(err)})"
                )
                raise tx.failed from err
            reraise(err, "statement in a transaction", self.where)

    @staticmethod
    def _check_failed(tx: _Txn) -> None:
        if tx.failed is not None:
            raise StoreError(
                "the transaction was aborted by an earlier failed call "
                f"({message(tx.failed)}); leave the transaction() block: it rolls back"
            ) from tx.failed

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

    # -- account locks and fencing ---------------------------------------------------
    def _begin_sql(self, account: int | None, epoch: int | None, mode: str) -> str:
        """``BEGIN``, and for an account the lock of its lease row in the same round trip
        (simple-query protocol: the values are integers, formatted here)."""
        if account is None or (epoch is None and mode == "FOR SHARE"):
            return "BEGIN"
        p = self.q.prefix
        fence = "" if epoch is None else f" AND epoch = {int(epoch)}"
        wait_ms = max(1, int(self.opts.command_timeout * 1000))
        return (
            f"BEGIN; SET LOCAL lock_timeout = {wait_ms}; "
            f"SELECT 1 FROM {p}leases WHERE device_id = {int(account)}{fence} {mode}"
        )

    async def _begin_on(
        self, conn: Conn, account: int | None = None, epoch: int | None = None, mode: str = ""
    ) -> None:
        """Open a transaction on ``conn`` (every transaction of this engine begins here):
        ``mode`` ``FOR NO KEY UPDATE`` locks ``account`` for the transaction (its
        lease row, created on first use), ``FOR SHARE`` only checks the epoch.

        Raises:
            AccountInUseError: ``epoch`` is not the lease's any more (rolled back).
            BackendUnavailableError: another session held the account longer than
                ``command_timeout`` (rolled back).
        """
        sql = self._begin_sql(account, epoch, mode)
        try:
            status = await conn.execute(sql)
        except asyncpg.LockNotAvailableError as err:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise await self._lock_timeout(account, err) from err
        if account is None or sql == "BEGIN" or status == "SELECT 1":
            return
        try:  # the lease row is missing (first transaction of the account), or the epoch moved
            await self._lock_slow(conn, account, epoch, mode)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise

    async def _lock_slow(self, conn: Conn, account: int, epoch: int | None, mode: str) -> None:
        s = self._lock_sql
        if epoch is None:
            await conn.execute(s["create"], account)
            await conn.fetchval(s["lock"], account)  # no row: no such account, nothing to lock
            return
        row = await conn.fetchrow(self.leases.check_sql, account)
        self.leases.check_row(account, epoch, row)  # raises unless it matches now
        await conn.fetchval(
            s["fenced" if mode == "FOR NO KEY UPDATE" else "shared"], account, epoch
        )

    async def _lock_timeout(self, account: int | None, err: BaseException) -> StoreError:
        holder = ""
        with contextlib.suppress(Exception):
            row = await self.one(self.leases.check_sql, (account,))
            if row is not None and row[2]:
                holder = f" (its lease holder: {row[2]})"
        return BackendUnavailableError(
            f"waited {self.opts.command_timeout:g}s (command_timeout) for account {account}, "
            f"locked by a transaction of another session{holder}: {message(err)}"
        )

    async def _wait_account(self, account: int, mine: _txn.TxnState[_Txn] | None = None) -> None:
        """Wait (at most ``command_timeout``) until no other task of this process has a
        transaction that locked ``account``."""
        other = self._accounts.get(account)
        if other is None or other is mine:
            return
        limit = self.opts.command_timeout
        try:
            async with asyncio.timeout(limit):
                while other is not None and other is not mine:
                    await other.data.ended.wait()
                    other = self._accounts.get(account)
        except TimeoutError:
            assert other is not None
            raise _txn.wait_timeout(f"account {account}", other.describe(), limit) from None

    async def _lock_in_txn(self, st: _txn.TxnState[_Txn], account: int, shared: bool) -> None:
        """Inside the task's transaction: lock ``account`` (``shared``: only check its
        lease epoch, if this container holds the lease) the first time it is used."""
        tx = st.data
        if account in tx.locked or (shared and account in tx.checked):
            return
        epoch = self.leases.fence(account)
        if shared and epoch is None:
            return
        if not shared:
            await self._wait_account(account, st)
            self._accounts[account] = st
            tx.locked.add(account)
        tx.checked.add(account)
        self._check_failed(tx)
        mode = "FOR SHARE" if shared else "FOR NO KEY UPDATE"
        sql = (
            self._lock_sql["lock"]
            if epoch is None
            else self._lock_sql["shared" if shared else "fenced"]
        )
        args = (account,) if epoch is None else (account, epoch)
        try:
            found = await self.timed(tx.conn, tx.conn.fetchval(sql, *args))
            if found is None:
                await self.timed(tx.conn, self._lock_slow(tx.conn, account, epoch, mode))
        except BaseException as err:
            tx.failed = err
            self.late(tx.conn, err)
            if isinstance(err, asyncpg.LockNotAvailableError):
                raise await self._lock_timeout(account, err) from err
            reraise(err, "lock in a transaction", self.where)

    async def _commit_on(self, conn: Conn) -> None:
        """Commit the transaction of ``conn`` (every transaction of this engine ends here)."""
        await conn.execute("COMMIT")

    @asynccontextmanager
    async def transaction(self, account: int | None = None) -> AsyncIterator[None]:
        st = _txn.current(self)
        if st is not None:
            if account is not None:
                await self._lock_in_txn(st, account, shared=False)
            async with self._savepoint(st):
                yield
            return
        self.check_open()
        tx = _Txn(None)
        state: _txn.TxnState[_Txn] = _txn.TxnState(self, tx, account)
        if account is not None:
            await self._wait_account(account)
            self._accounts[account] = state
            tx.locked.add(account)
            tx.checked.add(account)
        try:
            tx.conn = await self._begin(account)
        except BaseException:
            self._end(state)
            raise
        token = _txn.push(state)
        try:
            yield
        except BaseException:
            _txn.pop(token, state)
            try:
                await self._rollback(tx)
            finally:
                self._end(state)
            raise
        _txn.pop(token, state)
        try:
            if tx.failed is not None:
                await self._rollback(tx)
                if lost(tx.failed):
                    raise BackendUnavailableError(
                        f"the connection to {self.where} was lost inside the transaction, "
                        f"which was rolled back ({message(tx.failed)})"
                    ) from tx.failed
                if isinstance(tx.failed, BackendUnavailableError):
                    raise BackendUnavailableError(
                        f"the transaction was rolled back: {tx.failed}"
                    ) from tx.failed
                raise StoreError(
                    "the transaction was rolled back: a call inside it failed "
                    f"({message(tx.failed)})"
                ) from tx.failed
            await self._commit(tx)
        finally:
            self._end(state)

    def _end(self, state: _txn.TxnState[_Txn]) -> None:
        """The transaction ended: free its accounts for the tasks waiting for them."""
        state.open = False
        tx = state.data
        for account in tx.locked:
            if self._accounts.get(account) is state:
                del self._accounts[account]
        tx.ended.set()

    async def _begin(self, account: int | None = None) -> Conn:
        """A pooled connection with an open transaction, ``account`` locked (nothing has
        run yet: retried)."""
        budget = self.budget()
        epoch = None if account is None else self.leases.fence(account)
        while True:
            conn = await self.get_conn(budget)
            try:
                await self.timed(conn, self._begin_on(conn, account, epoch, "FOR NO KEY UPDATE"))
            except BaseException as err:
                await self._put_back(conn, err)
                self.late(conn, err)
                if isinstance(err, Exception) and lost(err):
                    await self.backoff(budget, err, "starting a transaction")
                    continue
                reraise(err, "begin", self.where)
            return conn

    async def _rollback(self, tx: _Txn) -> None:
        conn = tx.conn
        try:
            await self.timed(conn, conn.execute("ROLLBACK"))
        except Exception as err:  # the server rolls back when the connection goes
            log.info("rollback failed, dropping the connection: %s", message(err))
            self.pool.discard(conn)
        except BaseException:
            self.pool.discard(conn)
            raise
        else:
            await self.pool.release(conn)

    async def _commit(self, tx: _Txn) -> None:
        conn = tx.conn
        try:
            await self.timed(conn, self._commit_on(conn))
        except BaseException as err:
            self.pool.discard(conn)
            self.late(conn, err)
            if isinstance(err, Exception) and lost(err):
                raise BackendUnavailableError(
                    f"the connection to {self.where} was lost at COMMIT: the transaction "
                    f"may or may not have been committed ({message(err)})"
                ) from err
            reraise(err, "commit", self.where)
        await self.pool.release(conn)

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
                f"({message(failed)})"
            ) from failed
        await self._in_txn(tx, lambda c: c.execute(f"RELEASE SAVEPOINT {name}"))

    async def _undo_savepoint(self, tx: _Txn, name: str) -> None:
        """Roll back to a savepoint: the transaction is usable again (unless the
        connection is gone)."""
        if tx.failed is not None and lost(tx.failed):
            return
        try:
            await self.timed(
                tx.conn, tx.conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
            )
        except BaseException as err:
            tx.failed = err  # the outer block rolls back
            if not isinstance(err, Exception):
                raise
        else:
            tx.failed = None  # the failed call was inside this savepoint: undone with it


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
