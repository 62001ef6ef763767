"""Account leases on PostgreSQL: the shared lease table, the server's clock, and one
advisory lock per container.

Everything but liveness and time is
:class:`~wastore.backends.sql.leases.LeaseKeeper`'s. Why a table and not an
advisory lock per account (what wastore did first; measured in
``docs/postgres.md``): the server scans every lock a session holds on each of
its statements, so a connection holding 50,000 account locks made every
statement on it cost 10 ms and opening 50,000 accounts 214 s, and the locks
needed ``max_locks_per_transaction`` raised (only 12,400 fit by default). The
lease table needs no lock-table space, renews all of a container's leases
with one statement per interval, and gives the epoch that fences every write.

Liveness: a container's lease connection (one of its pool) holds ONE
session-level advisory lock, ``pg_try_advisory_lock(holder_class, lock_key)``,
with ``lock_key`` random and stored in the container's holder row. The server
drops it when that connection goes (a killed or crashed process), and an
acquirer that can take the lock itself (``pg_try_advisory_xact_lock``, released
at its commit) knows the holder is gone and takes its leases over at once,
without waiting for their expiry. A holder that merely stalls (SIGSTOP, a
long pause) keeps its lock; its leases are taken over when they expire, and
its epoch fences whatever it writes when it resumes. After its lease
connection died and came back (a server restart, a network cut), a container
takes its lock again; the accounts taken over meanwhile are fenced off.

The schema lock of migrations is the advisory lock ``(lock_class, 0)``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ..sql import schema
from ..sql.engine import Tx
from ..sql.leases import HOST, STALE_HOLDER, LeaseKeeper, LeaseRow
from .errors import Conn, lost
from .pool import ForeignPool

if TYPE_CHECKING:
    from .engine import PostgresEngine

log = logging.getLogger("wastore.postgres")

MIGRATION_OBJID: Final = 0  # the schema lock's objid
NOW: Final = "EXTRACT(EPOCH FROM clock_timestamp())::float8"


def lock_class(prefix: str) -> int:
    """The advisory-lock class of a table prefix (the schema lock): a stable 31-bit hash."""
    digest = hashlib.sha256(b"wastore:" + schema.check_prefix(prefix).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def holder_class(prefix: str) -> int:
    """The advisory-lock class of the lease holders of a table prefix."""
    digest = hashlib.sha256(b"wastore-holders:" + schema.check_prefix(prefix).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class PostgresLeases(LeaseKeeper):
    """The leases of one PostgreSQL container, and its lease connection."""

    lock_rows = " FOR NO KEY UPDATE OF l"

    def __init__(self, engine: PostgresEngine) -> None:
        super().__init__(engine, engine.q)
        self._pg = engine
        self.lock_class = lock_class(engine.q.prefix)
        self.holder_class = holder_class(engine.q.prefix)
        self._conn: Conn | None = None
        p = engine.q.prefix
        self._sql = {
            "register": f"INSERT INTO {p}lease_holders (token, host, pid, node, lock_key, "
            f"renewed_at) VALUES ($1, $2, $3, $4, $5, {NOW})",
            "relock": f"UPDATE {p}lease_holders SET lock_key = $2 WHERE token = $1",
            "renew": f"UPDATE {p}lease_holders SET renewed_at = {NOW} WHERE token = $1",
            "cleanup": f"DELETE FROM {p}lease_holders WHERE renewed_at < {NOW} - $1 "
            f"AND NOT EXISTS (SELECT 1 FROM {p}leases l WHERE l.token = {p}lease_holders.token)",
            "gone": "SELECT k FROM unnest($2::bigint[]) AS k WHERE pg_try_advisory_xact_lock($1, "
            "k::int)",
            "try_lock": "SELECT pg_try_advisory_lock($1, $2)",
            # The leases of wastore before schema 5: one advisory lock per account,
            # (lock_class, low 32 bits of the id), held by a process still running.
            "old_leases": "SELECT l.objid::bigint, COALESCE(a.application_name, '') "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = $1::bigint::oid AND l.objid::bigint = ANY($2::bigint[])",
            "unlock": "SELECT pg_advisory_unlock($1, $2)",
            "now": f"SELECT {NOW}",
        }

    async def _now(self, tx: Tx) -> float:
        return float((await tx.one(self._sql["now"], ()))[0])

    def _id_statements(self, template: str, ids: Sequence[int]) -> list[tuple[str, list[Any]]]:
        return [(template.replace("{ids}", "= ANY($1::bigint[])"), [list(ids)])]

    async def _gone(self, tx: Tx, rows: Sequence[LeaseRow]) -> set[str]:
        keys = {int(r.lock_key): r.token for r in rows if r.lock_key}
        if not keys:
            return set()
        free = await tx.rows(self._sql["gone"], (self.holder_class, sorted(keys)))
        return {keys[int(r[0])] for r in free}

    async def _held_elsewhere(self, tx: Tx, ids: Sequence[int]) -> dict[int, str]:
        low = {i & 0xFFFFFFFF: i for i in ids}
        rows = await tx.rows(self._sql["old_leases"], (self.lock_class, sorted(low)))
        return {low[int(objid)]: str(name) or "an older wastore" for objid, name in rows}

    # -- the lease connection ------------------------------------------------------------
    async def _lock_conn(self) -> Conn:
        """A connection holding this container's advisory lock (a new one after the
        last died), with ``self.lock_key`` set."""
        e = self._pg
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        if conn is not None:
            self._conn = None
            e.pool.discard(conn)
        budget = e.budget()
        while True:
            conn = await e.get_conn(budget)
            try:
                if isinstance(e.pool, ForeignPool):
                    await conn.execute(
                        "SELECT set_config('application_name', $1, false)",
                        e.opts.application_name,
                    )
                key = self.lock_key or _new_key()
                while not await e.timed(
                    conn, conn.fetchval(self._sql["try_lock"], self.holder_class, key)
                ):
                    key = _new_key()  # another live container drew the same key
            except BaseException as err:
                e.pool.discard(conn)
                if isinstance(err, Exception) and lost(err):
                    await e.backoff(budget, err, "taking the lease connection")
                    continue
                e.reraise(err, "lease")
            break
        if self.lock_key and key != self.lock_key:
            log.warning("the lease lock of this container was taken by another session: new key")
        changed = self._registered and key != self.lock_key
        self.lock_key = key
        self._conn = conn
        if changed:
            await e.write(self._sql["relock"], (self.token, key))
        return conn

    async def _register(self) -> None:
        e = self._pg
        await self._lock_conn()
        await e.write(self._sql["cleanup"], (STALE_HOLDER,))
        await e.write(self._sql["register"], (self.token, HOST, self.pid, self.node, self.lock_key))

    async def _renew(self) -> int:
        conn = self._conn
        if conn is None or conn.is_closed():
            log.warning(
                "the lease connection of this container to %s was lost: taking its lock "
                "again (accounts taken over meanwhile are fenced off)",
                self._pg.where,
            )
            await self._lock_conn()
        else:
            try:  # a connection the server ended while idle is seen only when used
                await self._pg.timed(conn, conn.fetchval("SELECT 1"))
            except Exception as err:
                if not lost(err):
                    raise
                await self._lock_conn()
        return await self._pg.write(self._sql["renew"], (self.token,))

    async def _unregister(self) -> None:
        e = self._pg
        try:
            await super()._unregister()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                if isinstance(e.pool, ForeignPool) and not conn.is_closed():
                    try:
                        await conn.execute("SELECT pg_advisory_unlock_all()")
                        await e.pool.release(conn)
                    except Exception:
                        e.pool.discard(conn)
                else:
                    try:
                        await conn.close(timeout=2.0)
                    except Exception:
                        conn.terminate()
                    e.pool.discard(conn)

    @property
    def connection(self) -> Conn | None:
        """The lease connection (holding the container's advisory lock), if any."""
        return self._conn


def _new_key() -> int:
    return 1 + secrets.randbelow(0x7FFFFFFE)
