"""Account leases on SQLite: the shared lease table, this host's clock, pids.

Everything but liveness is :class:`~wastore.backends.sql.leases.LeaseKeeper`'s.
Every process that shares a database file runs on one host, so expiries use
this host's clock. A holder whose lease has not expired is known to be gone
only when it ran on this kernel, in this PID namespace
(:func:`~wastore.backends.sql.leases.node_identity`), and its pid no longer
exists: then its leases are taken over at once instead of after their ttl. A
holder in another PID namespace (a container, ``unshare --pid``) is never
judged by its pid: its pid means nothing here, so its leases wait for their
expiry.

The renewal is one commit per interval for all of a container's accounts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ..sql.engine import Tx
from ..sql.leases import HOST, STALE_HOLDER, LeaseKeeper, LeaseRow, in_list, pid_alive
from ..sql.queries import to_sqlite

if TYPE_CHECKING:
    from .engine import SqliteEngine

IDS_PER_STATEMENT: Final = 500
"""Ids bound in one statement (far below SQLite's parameter limit)."""


class SqliteLeases(LeaseKeeper):
    """The leases of one SQLite container."""

    def __init__(self, engine: SqliteEngine) -> None:
        super().__init__(engine, engine.q)
        p = engine.q.prefix
        self._register_sql = to_sqlite(
            f"INSERT INTO {p}lease_holders (token, host, pid, node, lock_key, renewed_at) "
            "VALUES ($1, $2, $3, $4, 0, $5)"
        )
        self._renew_sql = to_sqlite(f"UPDATE {p}lease_holders SET renewed_at = $2 WHERE token = $1")
        self._cleanup_sql = to_sqlite(
            f"DELETE FROM {p}lease_holders WHERE renewed_at < $1 AND NOT EXISTS "
            f"(SELECT 1 FROM {p}leases l WHERE l.token = {p}lease_holders.token)"
        )

    async def _now(self, tx: Tx) -> float:
        return time.time()

    def _id_statements(self, template: str, ids: Sequence[int]) -> list[tuple[str, list[Any]]]:
        out = []
        for start in range(0, len(ids), IDS_PER_STATEMENT):
            chunk = list(ids[start : start + IDS_PER_STATEMENT])
            out.append((template.replace("{ids}", in_list(chunk)), chunk))
        return out

    async def _gone(self, tx: Tx, rows: Sequence[LeaseRow]) -> set[str]:
        node = self.node
        if not node:
            return set()
        return {
            r.token
            for r in rows
            if r.holder_token is not None and r.node == node and not pid_alive(r.pid)
        }

    async def _register(self) -> None:
        now = time.time()
        await self._e.write(self._cleanup_sql, (now - STALE_HOLDER,))
        await self._e.write(self._register_sql, (self.token, HOST, self.pid, self.node, now))

    async def _renew(self) -> int:
        return await self._e.write(self._renew_sql, (self.token, time.time()))
