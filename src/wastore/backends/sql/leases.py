"""Account leases with epochs, once for both SQL dialects.

One process serves an account at a time: :meth:`LeaseKeeper.acquire` (what
``PersistenceManager.open`` calls) takes the account's lease, and a second
holder gets :class:`~wastore.AccountInUseError` naming the first. The design
(measured, see ``docs/postgres.md`` and ``docs/sqlite.md``):

- **One holder row per container** (``lease_holders``: a random token, host,
  pid, kernel and PID namespace, renewal time). Every lease row of the
  container names that token, so renewing all of a container's leases is one
  ``UPDATE`` of one row per interval, whatever the number of accounts; a lease
  expires ``ttl`` seconds after its holder's last renewal.
- **An epoch per account** (``leases.epoch``), raised by every acquisition
  and kept when the lease is released. Every write of a holder is fenced by
  it: a single statement carries the check (:mod:`.fence`), a batch or a
  transaction checks it once at its start, inside the same transaction; so a
  holder that lost the lease (it was paused past its ttl, or its connection
  died, and another holder took over) writes nothing and gets
  :class:`~wastore.AccountInUseError` before anything is written.
- **Liveness**: a lease is taken over once it has expired, or at once when
  its holder is known to be gone. Only the dialect can know that:
  PostgreSQL, through one advisory lock per container held by its lease
  connection (the server drops it with the connection); SQLite, through the
  holder's pid, but only for a holder on the same kernel *and* in the same PID
  namespace (a pid from another namespace means nothing here), so a pid check
  can shorten a wait, never take over a live holder's lease.
- **Batches**: :meth:`LeaseKeeper.acquire_many` takes a thousand leases per
  transaction (a few statements), so a container opens 50,000 accounts in
  seconds.

Times: SQLite uses this host's clock (its holders share the host); PostgreSQL
the server's, so that hosts with skewed clocks agree on expiries.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ...errors import AccountInUseError, DeviceNotFoundError
from .. import _txn
from .engine import Tx
from .fence import fenced_statements
from .queries import Queries, to_sqlite

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("wastore.leases")

HOST: Final = socket.gethostname()
CHUNK: Final = 1000
"""Accounts whose leases are taken in one transaction."""
DEFAULT_INTERVAL: Final = 10.0
"""Seconds between two renewals while no lease is held."""
STALE_HOLDER: Final = 86_400.0
"""Holder rows with no lease, unrenewed for this long, are removed when a container
registers (those of crashed processes)."""


def pid_alive(pid: int) -> bool:
    """Whether a process of this kernel and PID namespace has that id."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as err:
        return err.errno != errno.ESRCH
    return True


def node_identity() -> str:
    """This process's kernel instance and PID namespace (``""`` if unknown).

    Two holders with the same identity see the same pids; any other pair must
    not judge each other by pid (another host, another boot, or a container
    with its own PID namespace on this host).
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    if not boot or not namespace:
        return ""
    return f"{HOST}/{boot}/{namespace}"


class Held:
    """A lease this container holds."""

    __slots__ = ("device_id", "epoch", "holder", "lost", "token", "ttl")

    def __init__(self, device_id: int, epoch: int, holder: str, ttl: float, token: str) -> None:
        self.device_id = device_id
        self.epoch = epoch
        self.holder = holder
        self.ttl = ttl
        self.token = token
        self.lost = False


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """A lease row read for an acquisition, with its holder's row (if any)."""

    device_id: int
    token: str
    holder: str
    host: str
    pid: int
    expires_at: float
    epoch: int
    ttl: float
    holder_token: str | None
    renewed_at: float | None
    node: str | None
    lock_key: int | None


class LeaseKeeper:
    """The leases of one container: acquisition, renewal, fencing, release.

    The dialects (:mod:`wastore.backends.sqlite.leases`,
    :mod:`wastore.backends.postgres.leases`) say how time is read, how a list
    of ids is bound, which holders are gone, and how the holder registers.
    """

    lock_rows = ""
    """Appended to the read of an acquisition (PostgreSQL locks the lease rows)."""

    def __init__(self, engine: Engine, q: Queries) -> None:
        self._e = engine
        self.q = q
        p = q.prefix
        self.prefix = p
        self.token = uuid.uuid4().hex
        self.pid = os.getpid()
        self.node = node_identity()
        self.held: dict[int, Held] = {}
        self.fenced: dict[str, str] = fenced_statements(q)
        self._lock = asyncio.Lock()  # registration, renewal and closing (never the hot path)
        self._registered = False
        self._closed = False
        self._renewer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._min_ttl: float | None = None
        self.lock_key = 0
        self._s = {
            name: sql.replace("{p}", p)
            for name, sql in {
                "ensure": "INSERT INTO {p}leases (device_id, token, holder, host, pid, "
                "expires_at, epoch, ttl) SELECT id, '', '', '', 0, 0, 0, 0 FROM {p}device "
                "WHERE id {ids} ON CONFLICT (device_id) DO NOTHING",
                "read": "SELECT l.device_id, l.token, l.holder, l.host, l.pid, l.expires_at, "
                "l.epoch, l.ttl, h.token, h.renewed_at, h.node, h.lock_key FROM {p}leases l "
                "LEFT JOIN {p}lease_holders h ON h.token = l.token WHERE l.device_id {ids}",
                "take": "UPDATE {p}leases SET token = $1, holder = $2, host = $3, pid = $4, "
                "expires_at = $5, epoch = $6, ttl = $7 WHERE device_id = $8",
                "count": "SELECT count(*) FROM {p}leases WHERE token = $1",
                "mine": "SELECT device_id, epoch FROM {p}leases WHERE token = $1",
                "check": "SELECT epoch, token, holder FROM {p}leases WHERE device_id = $1",
                "release": "UPDATE {p}leases SET token = '', holder = '' "
                "WHERE device_id = $1 AND token = $2 AND epoch = $3",
                "release_all": "UPDATE {p}leases SET token = '', holder = '' WHERE token = $1",
                "unregister": "DELETE FROM {p}lease_holders WHERE token = $1",
                "device_exists": "SELECT 1 FROM {p}device WHERE id = $1",
            }.items()
        }
        if q.dialect == "sqlite":
            self._s = {k: to_sqlite(v) for k, v in self._s.items()}

    # -- what a dialect provides -------------------------------------------------
    async def _now(self, tx: Tx) -> float:
        """The time that expiries are measured in (Unix seconds)."""
        raise NotImplementedError

    def _id_statements(self, template: str, ids: Sequence[int]) -> list[tuple[str, list[Any]]]:
        """``template`` (``{ids}``: a list of device ids) bound to ``ids``."""
        raise NotImplementedError

    async def _gone(self, tx: Tx, rows: Sequence[LeaseRow]) -> set[str]:
        """The holder tokens of ``rows`` whose holders are known to be gone."""
        raise NotImplementedError

    async def _held_elsewhere(self, tx: Tx, ids: Sequence[int]) -> dict[int, str]:
        """Accounts whose lease is held outside the lease table (by an older wastore
        still running): id -> its holder."""
        return {}

    async def _register(self) -> None:
        """Insert this container's holder row (and whatever proves it alive)."""
        raise NotImplementedError

    async def _renew(self) -> int:
        """Renew the holder row; how many rows it touched (0: it is gone)."""
        raise NotImplementedError

    async def _unregister(self) -> None:
        """Release everything and remove the holder row (the store is closing)."""
        await self._e.write(self._s["release_all"], (self.token,))
        await self._e.write(self._s["unregister"], (self.token,))

    # -- the hot path: fencing -------------------------------------------------------
    def fence(self, device_id: int) -> int | None:
        """The epoch that fences this container's writes of ``device_id`` (None: no
        lease of it held here).

        Raises:
            AccountInUseError: the lease is known to be lost.
        """
        h = self.held.get(device_id)
        if h is None:
            return None
        if h.lost:
            raise lost_error(device_id, None)
        return h.epoch

    def check_row(self, device_id: int, epoch: int, row: Sequence[Any] | None) -> None:
        """Check the lease row read at the start of a fenced transaction (``check``'s
        columns) against ``epoch``.

        Raises:
            AccountInUseError: the lease was lost (the row names another holder).
            DeviceNotFoundError: the account was deleted.
        """
        if row is not None and int(row[0]) == epoch and row[1] == self.token:
            return
        if row is None:
            raise DeviceNotFoundError(device_id, "the account was deleted while leased")
        self._mark_lost(device_id, epoch)
        raise lost_error(device_id, str(row[2]) or None)

    @property
    def check_sql(self) -> str:
        """``SELECT epoch, token, holder`` of an account's lease row (``$1``: the id)."""
        return self._s["check"]

    async def verify(self, device_id: int, epoch: int) -> None:
        """After a fenced statement touched no row: was it fenced off?

        Raises:
            AccountInUseError: the lease was lost; nothing was written.
            DeviceNotFoundError: the account was deleted.
        """
        row = await self._e.one(self._s["check"], (device_id,))
        if row is None and await self._e.one(self._s["device_exists"], (device_id,)) is not None:
            row = (0, "", "")  # a device without its lease row: not ours any more
        self.check_row(device_id, epoch, row)

    def _mark_lost(self, device_id: int, epoch: int | None = None) -> None:
        h = self.held.get(device_id)
        if h is not None and not h.lost and (epoch is None or h.epoch == epoch):
            h.lost = True
            log.error(
                "account %s: this process lost the account lease (another holder took it "
                "over); its writes of the account are refused from now on",
                device_id,
            )

    # -- acquisition ---------------------------------------------------------------
    async def acquire(self, device_id: int, holder: str, ttl: float) -> str:
        """Take one account's lease for ``ttl`` seconds; its token.

        Raises:
            AccountInUseError: another holder has it.
            DeviceNotFoundError: the account does not exist.
        """
        return (await self.acquire_many([device_id], holder, ttl))[device_id]

    async def acquire_many(
        self, device_ids: Sequence[int], holder: str, ttl: float
    ) -> dict[int, str]:
        """Take the leases of ``device_ids`` (all or none), a thousand per transaction.

        Raises:
            AccountInUseError: another holder has one of them (the first is named);
                no lease was taken.
            DeviceNotFoundError: one of them does not exist.
        """
        self._e.check_open()
        _txn.refuse_lease_inside(self._e)
        ids = sorted(set(device_ids))
        if not ids:
            return {}
        await self._ensure_registered()
        tokens: dict[int, str] = {}
        try:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                epochs = await self._take_chunk(chunk, holder, ttl)
                for device_id, epoch in epochs.items():
                    token = f"{epoch}.{self.token}"
                    self.held[device_id] = Held(device_id, epoch, holder, ttl, token)
                    tokens[device_id] = token
                self._note_ttl(ttl)
        except BaseException:
            if tokens:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.release_many(tokens))
            raise
        return tokens

    async def _take_chunk(self, ids: list[int], holder: str, ttl: float) -> dict[int, int]:
        s = self._s
        mine = self.token
        host, pid = HOST, self.pid

        async def take(tx: Tx) -> dict[int, int]:
            for sql, args in self._id_statements(s["ensure"], ids):
                await tx.write(sql, args)
            rows: list[LeaseRow] = []
            for sql, args in self._id_statements(s["read"] + self.lock_rows, ids):
                rows.extend(LeaseRow(*r) for r in await tx.rows(sql, args))
            now = await self._now(tx)
            found = {r.device_id for r in rows}
            for device_id in ids:
                if device_id not in found:
                    raise DeviceNotFoundError(device_id, "create() the account first")
            suspects = [r for r in rows if self._live_if_unexpired(r, now)]
            gone = await self._gone(tx, suspects) if suspects else set()
            for device_id, holder_name in (await self._held_elsewhere(tx, ids)).items():
                raise AccountInUseError(device_id, holder_name, "a lease of an older wastore")
            taken: list[tuple[Any, ...]] = []
            epochs: dict[int, int] = {}
            now_ms = int(now * 1000)
            for r in rows:
                if r.token:
                    busy = self._busy(r, now, gone)
                    if busy is not None:
                        raise busy
                    log.info(
                        "account %s: taking over the lease of %s (%s)",
                        r.device_id,
                        r.holder or "an unnamed holder",
                        "expired" if r.token not in gone else "its process is gone",
                    )
                epoch = max(r.epoch + 1, now_ms)
                epochs[r.device_id] = epoch
                taken.append((mine, holder, host, pid, now + ttl, epoch, ttl, r.device_id))
            await tx.write_many(s["take"], taken)
            return epochs

        return await self._e.atomic(take, items=len(ids) * 3)

    def _live_if_unexpired(self, r: LeaseRow, now: float) -> bool:
        """A row held by another registered holder whose lease has not expired yet: only
        the dialect's liveness check can free it before its expiry."""
        return (
            bool(r.token)
            and r.token != self.token
            and r.holder_token is not None
            and (r.renewed_at or 0.0) + r.ttl > now
        )

    def _busy(self, r: LeaseRow, now: float, gone: set[str]) -> AccountInUseError | None:
        """The error for a row that may not be taken now, or None."""
        name = r.holder or "an unnamed holder"
        if r.token == self.token:
            if r.device_id not in self.held:
                return None  # a row this container failed to release: its own to take
            return AccountInUseError(r.device_id, name, "held by this process")
        if r.holder_token is None:  # a row of an older wastore: its own expiry
            if r.expires_at <= now:
                return None
            return AccountInUseError(
                r.device_id,
                name,
                f"pid {r.pid} on {r.host}, lease expires in {r.expires_at - now:.0f}s",
            )
        left = (r.renewed_at or 0.0) + r.ttl - now
        if left <= 0 or r.token in gone:
            return None
        return AccountInUseError(
            r.device_id, name, f"pid {r.pid} on {r.host}, lease renewed, expires in {left:.0f}s"
        )

    def _note_ttl(self, ttl: float) -> None:
        before = self._min_ttl
        if before is None or ttl < before:
            self._min_ttl = ttl
            self._wake.set()  # the renewal loop may be sleeping for a longer interval

    # -- what the manager calls ----------------------------------------------------------
    def holds(self, device_id: int, token: str) -> bool:
        """Whether ``token`` still holds the lease, as this container knows (no I/O)."""
        h = self.held.get(device_id)
        return h is not None and h.token == token and not h.lost

    async def renew(self, device_id: int, token: str, ttl: float) -> bool:
        """The container renews its leases itself; this only tells whether ``token``
        still holds the lease (False once it was lost)."""
        return self.holds(device_id, token)

    async def release(self, device_id: int, token: str) -> None:
        """Give the lease up (its epoch stays, for the next holder to raise)."""
        _txn.refuse_lease_inside(self._e)
        h = self.held.get(device_id)
        if h is None or h.token != token:
            return
        del self.held[device_id]
        if self._closed:
            return
        if not h.lost:
            await self._e.write(self._s["release"], (device_id, self.token, h.epoch))

    async def release_many(self, tokens: dict[int, str]) -> None:
        """Give up several leases (one transaction)."""
        _txn.refuse_lease_inside(self._e)
        rows: list[tuple[Any, ...]] = []
        for device_id, token in tokens.items():
            h = self.held.get(device_id)
            if h is None or h.token != token:
                continue
            del self.held[device_id]
            if not h.lost:
                rows.append((device_id, self.token, h.epoch))
        if not rows or self._closed:
            return
        sql = self._s["release"]
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]

            async def run(tx: Tx, chunk: list[tuple[Any, ...]] = chunk) -> None:
                await tx.write_many(sql, chunk)

            await self._e.atomic(run, items=len(chunk), idempotent=True)

    # -- the holder row and its renewal ----------------------------------------------------
    async def _ensure_registered(self) -> None:
        if self._registered:
            return
        async with self._lock:
            if self._registered:
                return
            self._e.check_open()
            await self._register()
            self._registered = True
            self._renewer = self._start_renewer()

    def _start_renewer(self) -> asyncio.Task[None]:
        # A fresh context: the renewals belong to no caller's transaction.
        return asyncio.get_running_loop().create_task(
            self._renew_loop(), name="wastore-leases", context=contextvars.Context()
        )

    def _interval(self) -> float:
        if not self.held or self._min_ttl is None:
            return DEFAULT_INTERVAL
        return self._min_ttl / 3

    async def _renew_loop(self) -> None:
        while True:
            interval = self._interval()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            if self._wake.is_set():
                # A shorter ttl arrived: sleep its interval from now (the leases renewed
                # last time are still covered: they go at most two intervals unrenewed).
                self._wake.clear()
                continue
            if not self.held:
                self._min_ttl = None
            try:
                async with self._lock:
                    if self._closed:
                        return
                    await self.renew_now()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "renewing the leases of %d account(s) failed, will retry: %s: %s",
                    len(self.held),
                    type(err).__name__,
                    err,
                )

    async def renew_now(self) -> None:
        """Renew the holder row, and find the leases that another holder took over."""
        if await self._renew() == 0:
            log.warning("the lease holder row of this container vanished: registering again")
            await self._register()
        expected = sum(1 for h in self.held.values() if not h.lost)
        # (a read of up to one row per lease: off the event loop on SQLite)
        [(count,)] = await self._e.rows(self._s["count"], (self.token,), expect=None)
        count = int(count or 0)
        if count == expected:
            return
        rows = await self._e.rows(self._s["mine"], (self.token,), expect=None)
        present = {int(d): int(e) for d, e in rows}
        for h in list(self.held.values()):
            if not h.lost and present.get(h.device_id) != h.epoch:
                self._mark_lost(h.device_id, h.epoch)

    async def close(self) -> None:
        """Stop renewing, release every lease, remove the holder row."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            renewer, self._renewer = self._renewer, None
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
            held, self.held = self.held, {}
            if not self._registered:
                return
            try:
                await self._unregister()
            except Exception as err:  # the leases expire on their own
                log.warning(
                    "releasing the %d lease(s) of this container failed: %s", len(held), err
                )

    # -- administration ---------------------------------------------------------------------
    def listing(self, device_id: int | None) -> tuple[str, tuple[Any, ...]]:
        """A read-only statement (``$n`` placeholders) listing the held leases of every
        account, or of one: rows ``(device_id, holder, host, pid, expires_at)``."""
        p = self.prefix
        q = (
            "SELECT l.device_id, l.holder, COALESCE(h.host, l.host), COALESCE(h.pid, l.pid), "
            "CASE WHEN h.token IS NULL THEN l.expires_at ELSE h.renewed_at + l.ttl END "
            f"FROM {p}leases l LEFT JOIN {p}lease_holders h ON h.token = l.token "
            "WHERE l.token <> ''"
        )
        if device_id is not None:
            return q + " AND l.device_id = $1", (device_id,)
        return q + " ORDER BY l.device_id", ()


def lost_error(device_id: int, holder: str | None) -> AccountInUseError:
    return AccountInUseError(
        device_id, holder or "another process", "this process lost the account lease"
    )


def in_list(ids: Iterable[int]) -> str:
    """``IN (?, ?, ...)`` for SQLite."""
    return "IN (" + ", ".join("?" for _ in ids) + ")"
