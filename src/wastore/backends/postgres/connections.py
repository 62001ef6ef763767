"""How the PostgreSQL engine uses the connections of its pool.

A call takes a connection from the pool (:meth:`PostgresConnections.get_conn`,
retried while the server cannot be reached, within the call's budget), runs
its statements under the ``command_timeout`` watchdog
(:meth:`PostgresConnections.timed`), and gives the connection back, or
closes it when its state is unknown (:meth:`PostgresConnections._put_back`).
:meth:`PostgresConnections.with_conn` is that whole cycle for one operation,
run again while it may be.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

from ...errors import BackendUnavailableError
from ..options import StoreOptions
from ..retry import Budget
from .errors import Conn, connection_ok, reraise, retry_after_send
from .pool import Pool, PoolBusy, connect_error, connect_retryable, retry_budget, unreachable

log = logging.getLogger("wastore.postgres")

T = TypeVar("T")
Op = Callable[[Conn], Awaitable[Any]]

DEFAULT_POOL_SIZE: Final = 10
DEFAULT_RETRY_TIMEOUT: Final = 5.0
DEFAULT_COMMAND_TIMEOUT: Final = 30.0
STATEMENT_CACHE_SIZE: Final = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresOptions(StoreOptions):
    """The options of an open PostgreSQL store (checked by :meth:`PostgresStore.open`)."""

    retry_timeout: float
    command_timeout: float
    connect_timeout: float
    snapshot_dir: Path
    application_name: str


class PostgresConnections:
    """The pool of one store, and how a call gets, times and gives back a connection."""

    def __init__(self, pool: Pool, options: PostgresOptions, where: str) -> None:
        self.pool = pool
        self.opts = options
        self.where = where
        self._closed = False
        # command_timeout: the start time of every statement in flight, by connection;
        # a watchdog closes the connection of one that runs too long (see _watch).
        self._inflight: dict[Conn, float] = {}
        self._timed_out: set[Conn] = set()
        self._watchdog: asyncio.Task[None] | None = None

    # -- life ----------------------------------------------------------------
    def start_watchdog(self) -> None:
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch(), name="wastore-postgres-watchdog"
        )

    def check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError(f"the PostgreSQL store {self.where} is closed")

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the command_timeout watchdog ------------------------------------------
    async def _watch(self) -> None:
        """Close the connection of any statement running longer than ``command_timeout``.

        One coarse timer for the whole store instead of asyncpg's per-call timeout,
        which schedules and cancels a timer around every statement (5 µs of a
        30 µs primary-key read). The call then fails with BackendUnavailableError.
        """
        limit = self.opts.command_timeout
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
                        self.where,
                        limit,
                    )
                    conn.terminate()

    async def timed(self, conn: Conn, aw: Awaitable[T]) -> T:
        """Await ``aw``, statements on ``conn``, under the command_timeout watchdog."""
        inflight = self._inflight
        inflight[conn] = time.monotonic()
        try:
            return await aw
        finally:
            inflight.pop(conn, None)

    def late(self, conn: Conn, err: BaseException) -> None:
        """Raise BackendUnavailableError if ``conn`` failed because the watchdog closed it."""
        if conn in self._timed_out:
            self._timed_out.discard(conn)
            raise BackendUnavailableError(
                f"a statement on {self.where} ran longer than command_timeout "
                f"({self.opts.command_timeout:g}s): its connection was closed, and it may "
                "or may not have taken effect"
            ) from err

    # -- connections and retries -------------------------------------------------
    def budget(self) -> Budget:
        """The retry budget of one call."""
        return retry_budget(self.opts.retry_timeout, self.opts.connect_timeout)

    async def backoff(self, budget: Budget, err: BaseException, what: str) -> None:
        """Wait before the next attempt, or raise once the budget is spent (naming the
        call's first failure: see :func:`.pool.unreachable`)."""
        if not await budget.pause(err):
            raise unreachable(self.where, budget, what) from budget.first

    def reraise(self, err: BaseException, action: str) -> NoReturn:
        reraise(err, action, self.where)

    async def get_conn(self, budget: Budget) -> Conn:
        """A connection from the pool, retrying while the server is unreachable (each
        attempt bounded by ``connect_timeout`` and the budget; a refused login or a
        TLS failure is raised at once: see :mod:`.pool`)."""
        limit = self.opts.connect_timeout
        while True:
            self.check_open()
            try:
                conn = await self.pool.acquire(
                    self.opts.command_timeout, lambda: budget.attempt(limit)
                )
            except PoolBusy:
                raise BackendUnavailableError(
                    f"no connection of the pool ({self.pool.size}) came free within "
                    f"{self.opts.command_timeout:g}s (command_timeout): raise pool_size, or "
                    "look for long transactions"
                ) from None
            except Exception as err:
                if not connect_retryable(err):
                    raise connect_error(err, self.where) from err
                await self.backoff(budget, err, "connecting")
                continue
            budget.succeeded()
            return conn

    async def _put_back(self, conn: Conn, err: BaseException, single: bool = False) -> None:
        """Return ``conn`` to the pool after ``err``, or close it.

        ``single``: the call was one statement outside any transaction, so a
        cancelled one leaves the connection usable (asyncpg completes the
        cancellation before its next statement); after a cancelled ``BEGIN`` or
        block the connection's state is unknown, so it goes.
        """
        if connection_ok(conn, err) or (
            single
            and isinstance(err, asyncio.CancelledError)
            and not conn.is_closed()
            and not conn.is_in_transaction()
        ):
            await self.pool.release(conn)
        else:
            self.pool.discard(conn)

    async def with_conn(
        self, op: Op, idempotent: bool, first: BaseException | None = None, single: bool = False
    ) -> Any:
        """Run ``op(conn)`` on a pooled connection, retrying within the budget
        (``single``: ``op`` is one statement outside any transaction)."""
        budget = self.budget()
        if first is not None:
            await self.backoff(budget, first, "running a statement")
        while True:
            conn = await self.get_conn(budget)
            try:
                result = await self.timed(conn, op(conn))
            except BaseException as err:
                await self._put_back(conn, err, single)
                self.late(conn, err)
                if isinstance(err, Exception) and retry_after_send(err, idempotent):
                    await self.backoff(budget, err, "running a statement")
                    continue
                reraise(err, "statement", self.where)
            await self.pool.release(conn)
            return result
