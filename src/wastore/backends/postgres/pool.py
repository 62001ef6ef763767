"""The connection pools of a PostgresStore.

wastore's own pool of plain asyncpg connections (:class:`OwnPool`), not
``asyncpg.Pool``: ``Pool.release()`` resets the session with a round trip
(``RESET ALL``, ``pg_advisory_unlock_all()``, ...) and returns the connection
through a shielded task; a primary-key read took ~60 µs on a connection and
~120 µs through ``asyncpg.Pool``. wastore never changes session state, so its
pool hands connections out and takes them back without I/O. Connections open
lazily; dead ones are replaced. An existing ``asyncpg.Pool`` given to
:func:`wastore.open_store` is used as it is (:class:`ForeignPool`, never
closed here).

Connection attempts (:func:`connect_retryable`, :func:`connect_error`,
:func:`unreachable`): a failure that retrying may fix (refused, DNS, timeout,
reset, a server starting up or full) is retried within the call's budget; one
that it cannot fix (authentication, an unknown role or database, a missing
privilege, TLS) is raised at once as :class:`~wastore.ConfigError`. Either way
the message names the cause in words and the first failure of the call, not a
later attempt cut short by the end of the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg

from ...errors import BackendUnavailableError, ConfigError, StoreError
from ..retry import POSTGRES_UNREACHABLE, Budget
from .errors import Conn, lost, message, translate

MIN_CONNECT_ATTEMPT: Final = 0.25
"""Seconds: no connection attempt starts with less of the retry budget left (less
only when ``connect_timeout``, or a quarter of ``retry_timeout``, is smaller)."""


def retry_budget(retry_timeout: float, connect_timeout: float) -> Budget:
    """The retry budget of one call (see :data:`MIN_CONNECT_ATTEMPT`)."""
    least = min(connect_timeout, MIN_CONNECT_ATTEMPT, retry_timeout / 4)
    return Budget(retry_timeout, POSTGRES_UNREACHABLE, min_attempt=least)


class PoolBusy(Exception):
    """No connection came free in time."""


class ConnectTimeout(TimeoutError):
    """A connection attempt got no answer within its timeout."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        super().__init__(f"no answer within {limit:.3g}s")


Limit = Callable[[], float]
"""Called just before a connection attempt: that attempt's timeout in seconds
(:meth:`wastore.backends.retry.Budget.attempt`)."""


class OwnPool:
    """Up to ``size`` asyncpg connections, opened lazily, handed out without I/O.

    ``opened`` counts connections open or being opened. A waiter is handed a
    connection, or ``None`` meaning "a slot is yours: open a connection".
    """

    def __init__(self, connect: Callable[[float], Awaitable[Conn]], size: int) -> None:
        """``connect(timeout)`` opens one connection (raising :class:`ConnectTimeout`
        when it gets no answer in time)."""
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

    async def acquire(self, wait: float, limit: Limit) -> Conn:
        """A connection: an idle one, else a new one (``limit()``: its timeout), else
        the next one given back within ``wait`` seconds (else :class:`PoolBusy`)."""
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
                return await self._connect(limit())
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
                raise PoolBusy from None
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


class ForeignPool:
    """An ``asyncpg.Pool`` given by the application (used as it is, never closed here)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.size: int = pool.get_max_size()

    @property
    def opened(self) -> int:
        return int(self._pool.get_size())

    def take_nowait(self) -> Conn | None:
        return None

    async def acquire(self, wait: float, limit: Limit) -> Conn:
        try:
            return await self._pool.acquire(timeout=wait)
        except TimeoutError:
            raise PoolBusy from None

    def give(self, conn: Conn) -> None:  # pragma: no cover - never handed out by take_nowait
        raise AssertionError("a foreign pool hands out no connection without I/O")

    async def release(self, conn: Conn) -> None:
        await self._pool.release(conn)

    def discard(self, conn: Conn) -> None:
        conn.terminate()  # asyncpg returns the holder to its pool

    async def close(self) -> None:
        pass


Pool = OwnPool | ForeignPool


# -- why a connection attempt failed ---------------------------------------------------

_TLS_CLOSED: Final = (ssl.SSLEOFError, ssl.SSLZeroReturnError)  # the peer went away
_NOT_RETRIED: Final = (
    asyncpg.InvalidAuthorizationSpecificationError,  # 28xxx: unknown role, password, pg_hba
    asyncpg.InvalidCatalogNameError,  # 3D000: no such database
    asyncpg.InsufficientPrivilegeError,  # 42501: e.g. no CONNECT on the database
    asyncpg.ClientConfigurationError,  # e.g. sslrootcert missing
)


def _tls_refused(err: BaseException) -> bool:
    """A TLS failure that the next attempt would meet again (certificate, protocol,
    a server without TLS under ``sslmode=require``)."""
    if isinstance(err, ssl.SSLError):
        return not isinstance(err, _TLS_CLOSED)
    return isinstance(err, ConnectionError) and "rejected SSL upgrade" in str(err)


def connect_retryable(err: BaseException) -> bool:
    """Whether another connection attempt may succeed where this one failed with ``err``
    (the server is down, restarting, unreachable or full; never a refused login)."""
    if isinstance(err, _NOT_RETRIED) or _tls_refused(err):
        return False
    return lost(err) or isinstance(err, TimeoutError)


def connect_cause(err: BaseException) -> str:
    """What a failed connection attempt means, in words."""
    if isinstance(err, ConnectTimeout):
        return (
            f"no answer within {err.limit:.3g}s (connect_timeout): the host drops the "
            "packets, or what listens there does not answer as PostgreSQL does"
        )
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused: no server listens at that host and port"
    if isinstance(err, socket.gaierror):
        return "the host name cannot be resolved (DNS)"
    if _tls_refused(err) or isinstance(err, ssl.SSLError):
        return "TLS failed: check sslmode, sslrootcert and the server's certificate"
    if isinstance(err, asyncpg.InvalidPasswordError):
        return "authentication failed (wrong password)"
    if isinstance(err, asyncpg.InvalidAuthorizationSpecificationError):
        return "the login was refused (an unknown role, or a pg_hba.conf rule)"
    if isinstance(err, asyncpg.InvalidCatalogNameError):
        return "no such database (create it first: createdb)"
    if isinstance(err, asyncpg.InsufficientPrivilegeError):
        return "the role may not connect to that database"
    if isinstance(err, asyncpg.ClientConfigurationError):
        return "the connection settings cannot be used"
    if isinstance(err, asyncpg.CannotConnectNowError):
        return "the server is starting up or shutting down"
    if isinstance(err, asyncpg.TooManyConnectionsError):
        return "the server has no connection slot free (max_connections)"
    if isinstance(err, asyncpg.AdminShutdownError | asyncpg.CrashShutdownError):
        return "the server shut down"
    if isinstance(err, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return "the connection was lost"
    if isinstance(err, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "the connection was closed by the other side"
    if isinstance(err, OSError) and err.strerror:
        return f"network error: {err.strerror}"
    return "the connection failed"


def describe(err: BaseException) -> str:
    """``cause (Type: driver message)``."""
    return f"{connect_cause(err)} ({message(err)})"


def connect_error(err: BaseException, where: str) -> StoreError:
    """The error to raise at once for a connection attempt that retrying cannot fix
    (the caller chains ``err``)."""
    if isinstance(err, _NOT_RETRIED) or _tls_refused(err):
        return ConfigError(f"cannot connect to PostgreSQL at {where}: {describe(err)}")
    return translate(err, "connect", where)


def unreachable(where: str, budget: Budget, what: str) -> BackendUnavailableError:
    """The error to raise when the budget is spent while ``what`` (the caller chains
    ``budget.first``): the first failure named, and the last if it was another."""
    first, last = budget.first, budget.last
    text = "no attempt was made" if first is None else describe(first)
    if last is not None and first is not None and connect_cause(last) != connect_cause(first):
        text += f"; the last attempt: {describe(last)}"
    tries = budget.failures
    return BackendUnavailableError(
        f"PostgreSQL at {where} stayed unreachable while {what}: {text}; {tries} attempt"
        f"{'' if tries == 1 else 's'} in {budget.elapsed():.1f}s (retry_timeout "
        f"{budget.total:g}s); the next call tries again"
    )
