"""Account leases on PostgreSQL: session-level advisory locks.

``pg_try_advisory_lock(classid, objid)`` with classid a stable 31-bit hash of
the table prefix (:func:`lock_class`) and objid the device id, all held by ONE
connection of the pool per container (taken at the first lease, given back
after the last). A second holder gets :class:`~wastore.AccountInUseError`
naming the ``application_name`` of the holding connection (``"wastore pid N
on HOST"``). The lock goes with its connection: a crashed process frees its
accounts at once. :meth:`PostgresLeases.renew` checks the connection at most
once a second for all accounts; after a server restart the locks are taken
again on a new connection, and a lease is reported lost only if another
session took it meanwhile. Device saves through a leased backend are fenced.
Lease calls run to their end even if the caller is cancelled: the lease
connection must never be left in the middle of a statement.

The schema lock of migrations is the advisory lock ``(lock_class, 0)``
(device ids start at 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from ...errors import AccountInUseError, DeviceNotFoundError
from .._common import shielded
from ..sql import schema
from .errors import Conn, lost
from .pool import ForeignPool

if TYPE_CHECKING:
    from .engine import PostgresEngine

log = logging.getLogger("wastore.postgres")

Op = Callable[[Conn], Awaitable[Any]]

LEASE_CHECK_INTERVAL: Final = 1.0
"""Renewals within this many seconds of the last check of the lease connection trust it."""
MIGRATION_OBJID: Final = 0  # device ids start at 1

_STATEMENTS: Final[dict[str, str]] = {
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


class _Lease:
    """A lease held by this container: its token, holder, and expiry (monotonic)."""

    __slots__ = ("expires", "holder", "token")

    def __init__(self, token: str, holder: str, expires: float) -> None:
        self.token = token
        self.holder = holder
        self.expires = expires


class PostgresLeases:
    """The leases of one container: advisory locks of one connection."""

    def __init__(self, engine: PostgresEngine) -> None:
        self._e = engine
        self.lock_class = lock_class(engine.q.prefix)
        self._s = {name: sql.format(p=engine.q.prefix) for name, sql in _STATEMENTS.items()}
        self._lock = asyncio.Lock()
        self._conn: Conn | None = None
        self._held: dict[int, _Lease] = {}
        self._checked = 0.0

    async def _get_conn(self) -> Conn:
        """The live lease connection; a new one takes the held leases again."""
        e = self._e
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        if conn is not None:
            self._conn = None
            e.pool.discard(conn)
        budget = e.budget()
        try_lock = self._s["try_lease"]
        while True:
            conn = await e.get_conn(budget)
            gone: list[int] = []
            try:
                if isinstance(e.pool, ForeignPool):
                    await conn.execute(
                        "SELECT set_config('application_name', $1, false)",
                        e.opts.application_name,
                    )
                for device_id in sorted(self._held):
                    got = await e.timed(
                        conn,
                        conn.fetchval(try_lock, self.lock_class, _objid(device_id), device_id),
                    )
                    if not got:
                        gone.append(device_id)
            except BaseException as err:
                e.pool.discard(conn)
                if isinstance(err, Exception) and lost(err):
                    await e.backoff(budget, err, "taking the lease connection")
                    continue
                e.reraise(err, "lease")
            break
        for device_id in gone:
            del self._held[device_id]
            log.error(
                "account %s: the lease was lost while the connection to %s was down "
                "(another session holds it now)",
                device_id,
                e.where,
            )
        self._conn = conn
        self._checked = time.monotonic()
        return conn

    async def _run(self, op: Op) -> Any:
        """``op(lease connection)``, again on a new connection if that one died (a lock
        taken or dropped by a session that died went with it, so this is safe)."""
        e = self._e
        budget = e.budget()
        while True:
            conn = await self._get_conn()
            try:
                return await e.timed(conn, op(conn))
            except Exception as err:
                if not lost(err):
                    e.reraise(err, "lease")
                self._conn = None
                e.pool.discard(conn)
                e.late(conn, err)
                await e.backoff(budget, err, "using the lease connection")

    async def _idle(self) -> None:
        """Give the lease connection back once it holds no lease."""
        e = self._e
        conn = self._conn
        if self._held or conn is None:
            return
        self._conn = None
        if conn.is_closed():
            e.pool.discard(conn)
        else:
            await e.pool.release(conn)  # an asyncpg.Pool's reset unlocks all, too

    async def acquire(self, device_id: int, holder: str, ttl: float) -> str:
        e = self._e
        e.check_open()
        try_args = (self.lock_class, _objid(device_id), device_id)
        holder_args = (self.lock_class, device_id & 0xFFFFFFFF)

        async def take() -> str:
            async with self._lock:
                e.check_open()
                now = time.monotonic()
                mine = self._held.get(device_id)
                if mine is not None:
                    if mine.expires > now:
                        raise AccountInUseError(device_id, mine.holder)
                    # Expired without renewal, in this process: take it over (the
                    # lock stays with the lease connection).
                    await self._get_conn()
                    if device_id in self._held:
                        log.info(
                            "account %s: taking over the expired lease of %s",
                            device_id,
                            mine.holder,
                        )
                        return self._new(device_id, holder, ttl)
                try:
                    for _ in range(3):  # the holder may let go between the two queries
                        got = await self._run(lambda c: c.fetchval(self._s["try_lease"], *try_args))
                        if got is None:
                            raise DeviceNotFoundError(device_id, "create() the account first")
                        if got:
                            return self._new(device_id, holder, ttl)
                        row = await self._run(
                            lambda c: c.fetchrow(self._s["lease_holder"], *holder_args)
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
                    await self._idle()

        task = asyncio.ensure_future(take())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                token = await task
                await self.release(device_id, token)  # nobody will ever use it
            raise

    def _new(self, device_id: int, holder: str, ttl: float) -> str:
        token = uuid.uuid4().hex
        self._held[device_id] = _Lease(token, holder, time.monotonic() + ttl)
        return token

    async def renew(self, device_id: int, token: str, ttl: float | None) -> bool:
        """Extend the lease by ``ttl`` (None: only check it); False if it is no longer
        this token's.

        Checks the lease connection at most once a second for all accounts: that
        it lives and still holds the locks (after a server restart the locks are
        taken again on a new connection; one that another session took meanwhile
        is lost).
        """
        e = self._e
        e.check_open()

        async def check() -> bool:
            async with self._lock:
                mine = self._held.get(device_id)
                if mine is None or mine.token != token:
                    return False
                conn = self._conn
                fresh = time.monotonic() - self._checked < LEASE_CHECK_INTERVAL
                if conn is None or conn.is_closed() or not fresh:
                    held = await self._run(
                        lambda c: c.fetch(self._s["held_leases"], self.lock_class)
                    )
                    self._checked = time.monotonic()
                    ids = {int(r[0]) for r in held}
                    for dev in [d for d in self._held if d & 0xFFFFFFFF not in ids]:
                        del self._held[dev]
                        log.error("account %s: the advisory lock of its lease is gone", dev)
                mine = self._held.get(device_id)
                if mine is None or mine.token != token:
                    return False
                if ttl is not None:
                    mine.expires = time.monotonic() + ttl
                return True

        return await shielded(check())

    def looks_held(self, device_id: int, token: str) -> bool:
        """Whether ``token`` holds the lease as far as this process knows, without I/O."""
        mine = self._held.get(device_id)
        conn = self._conn
        return (
            mine is not None and mine.token == token and conn is not None and not conn.is_closed()
        )

    async def release(self, device_id: int, token: str) -> None:
        e = self._e

        async def release() -> None:
            async with self._lock:
                mine = self._held.get(device_id)
                if mine is None or mine.token != token:
                    return
                del self._held[device_id]
                conn = self._conn
                if conn is not None and not conn.is_closed():
                    try:
                        await e.timed(
                            conn,
                            conn.fetchval(
                                self._s["unlock_lease"], self.lock_class, _objid(device_id)
                            ),
                        )
                    except Exception as err:  # the lock went with the connection
                        log.info("unlocking the lease of account %s failed: %s", device_id, err)
                        self._conn = None
                        e.pool.discard(conn)
                await self._idle()

        if e.closed:
            return
        await shielded(release())

    async def save_device(self, device_id: int, token: str, row: Sequence[Any]) -> int:
        """The device row, written only while this process holds the lease (a holder
        that lost it never overwrites the new holder's row)."""
        if not self.looks_held(device_id, token) and not await self.renew(device_id, token, None):
            raise AccountInUseError(
                device_id, "another process", "this process lost the account lease"
            )
        return await self._e.write(self._e.q.update_device, (device_id, *row))

    def listing(self, device_id: int | None) -> tuple[str, tuple[Any, ...]]:
        """The advisory locks of this table prefix held in this database."""
        q = (
            "SELECT l.objid::bigint, COALESCE(a.application_name, ''), "
            "COALESCE(host(a.client_addr), 'local'), l.pid, NULL::float8 "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = $1::bigint::oid"
        )
        if device_id is not None:
            return q + " AND l.objid = $2::bigint::oid", (self.lock_class, device_id & 0xFFFFFFFF)
        return q + " ORDER BY 1", (self.lock_class,)

    async def close(self) -> None:
        """Give every lease up: the lease connection goes (a given pool gets it back
        unlocked)."""
        e = self._e
        async with self._lock:
            conn, self._conn = self._conn, None
            self._held.clear()
            if conn is None:
                return
            if isinstance(e.pool, ForeignPool) and not conn.is_closed():
                try:
                    await conn.execute("SELECT pg_advisory_unlock_all()")
                    await e.pool.release(conn)
                except Exception:
                    e.pool.discard(conn)
            else:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2.0)
                e.pool.discard(conn)
