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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from .errors import Conn


class PoolBusy(Exception):
    """No connection came free in time."""


class OwnPool:
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

    async def acquire(self, wait: float, connect_timeout: float) -> Conn:
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
