"""One account's view of an SQL store: the whole :class:`~wastore.Backend`, once.

Every method validates its arguments, runs its statements through the
store's :class:`~wastore.backends.sql.engine.Engine`, and decodes what it
read with :mod:`~wastore.backends.sql.codec` (stored records through
:meth:`SqlAccount._blob`): a value that cannot be decoded is a
:class:`~wastore.CorruptRecordError`, never "missing". How a statement runs
(inline on SQLite's event loop, on a pooled PostgreSQL connection, retried or
not) is the engine's business; which form a batch or a multi-key read takes
is the dialect's (:class:`~wastore.backends.sql.queries.DialectQueries`).

The methods of each domain protocol live in their own modules
(:mod:`.account_signal`, :mod:`.account_appsync`, :mod:`.account_protocol`),
as mixins over :class:`~wastore.backends.sql.account_base.AccountBase`;
:class:`SqlAccount` brings them together with transactions, the device row and
the lease.

Batches are sorted by key: concurrent batches then lock rows in the same order
(no deadlock on PostgreSQL) and walk the B-tree in order (SQLite). Batches
whose rows may repeat a key keep their order (the sort is stable), so that the
rows merge as sequential calls would.

Fencing: while this container holds the account's lease
(:mod:`wastore.backends.sql.leases`), every write is fenced by its epoch — a
single statement in its fenced form (:mod:`wastore.backends.sql.fence`), a
batch, an atomic call or a transaction by a check at its start — so a holder
that lost the lease writes nothing and gets :class:`~wastore.AccountInUseError`.
That holds for every view of the account in this container, and so for a
SignalCache's flush, which is a transaction of the backend.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from ... import _validate as v
from ...device import Device
from ...errors import DeviceNotFoundError
from ..options import check_positive
from . import checksum as ck
from . import codec
from .account_appsync import AppSyncMethods
from .account_protocol import ProtocolMethods
from .account_signal import SignalMethods

if TYPE_CHECKING:
    from .store import SqlStore


class SqlAccount(SignalMethods, AppSyncMethods, ProtocolMethods):
    """One account's view of an SQL store (no I/O until a method is called)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SqlAccount(device_id={self._id}, {self._s!r})"

    @property
    def device_id(self) -> int:
        return self._id

    @property
    def store(self) -> SqlStore:
        """The container this view belongs to."""
        return self._s

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One transaction for the account's writes; transactions of one account run one
        at a time (read-modify-write inside one never loses an update)."""
        return self._e.transaction(self._id)

    # -- DeviceStore -------------------------------------------------------
    async def save(self, device: Device) -> None:
        """Write the device row; fenced by the lease while this container holds it (a
        holder that lost it never overwrites the new holder's row)."""
        d = v.instance(device, Device, "device")
        d.validate()
        row = codec.device_row(d, time.time_ns() // 1_000_000)
        if await self._write(self._q.update_device, (self._id, *row)) == 0:
            raise DeviceNotFoundError(self._id, "create() the device row before saving it")

    async def load(self) -> Device | None:
        row = await self._e.one(self._q.load_device, (self._id,))
        if row is None:
            return None
        device = codec.row_to_device(row, self._id)
        ck.check("device", self._id, row[-1], ck.device(row[:-1]))
        return device

    async def exists(self) -> bool:
        return await self._e.value(self._q.device_exists, (self._id,)) is not None

    async def create(self) -> int:
        row = codec.device_row(Device.new(), 0)
        if await self._write(self._q.insert_device_if_missing, (self._id, *row)):
            bump = self._dq.after_explicit_device_id
            if bump is not None:
                await self._e.value(bump, (self._id,))
        return self._id

    async def snapshot_db(self, name: str, extra: bytes | None = None) -> str:
        return await self._s.snapshot(self._id, name, extra)

    # -- LeaseStore --------------------------------------------------------
    async def acquire_lease(self, holder: str, ttl: float) -> str:
        """Take the account's lease; the container renews it (one statement per interval
        for all its leases) until it is released or the container closes."""
        holder = v.text(holder, "holder", max_len=256, allow_empty=False)
        return await self._leases.acquire(self._id, holder, check_positive(ttl, "ttl"))

    async def renew_lease(self, token: str, ttl: float) -> bool:
        """Whether ``token`` still holds the lease (the container renews it itself)."""
        check_positive(ttl, "ttl")
        return await self._leases.renew(self._id, token, ttl)

    async def release_lease(self, token: str) -> None:
        await self._leases.release(self._id, token)

    def lease_held(self, token: str) -> bool:
        """Whether ``token`` still holds the lease, as this container knows it (no I/O;
        the container renews its leases and notices a takeover at its next renewal, a
        fenced write at once)."""
        return self._leases.holds(self._id, token)
