"""Transactions of the PostgreSQL engine: blocks, savepoints, account locks, fencing.

``backend.transaction()`` holds one pooled connection for the block
(:meth:`PostgresTransactions.transaction`); a nested block is a savepoint, and
so is a multi-statement call inside a block. Every transaction of the engine
begins in :meth:`PostgresTransactions._begin_on`, which locks the account's
lease row in the same round trip as ``BEGIN`` (or only checks its epoch, for
an atomic call), and commits in :meth:`PostgresTransactions._commit_on`. A
statement that fails inside a block aborts the PostgreSQL transaction: the
block remembers it (:class:`_Txn`) and rolls back instead of committing (see
:mod:`.engine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

from ...errors import BackendUnavailableError, StoreError
from .. import _txn
from ..sql.queries import Queries
from .connections import Op, PostgresConnections, PostgresOptions
from .errors import Conn, lost, message, reraise
from .pool import Pool

if TYPE_CHECKING:
    from .leases import PostgresLeases

log = logging.getLogger("wastore.postgres")


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


class PostgresTransactions(PostgresConnections):
    """The transactions of one store: blocks, savepoints, and the accounts they lock."""

    # Set by PostgresEngine, whose lease keeper needs the whole engine.
    q: Queries
    leases: PostgresLeases
    one: Callable[[str, Sequence[Any]], Awaitable[Any]]

    def __init__(self, pool: Pool, options: PostgresOptions, where: str) -> None:
        super().__init__(pool, options, where)
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

    # -- transaction blocks --------------------------------------------------------
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

    # -- statements inside a block -------------------------------------------------
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
