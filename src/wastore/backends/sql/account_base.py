"""What every method of the SQL account stands on.

A write is fenced by the account's lease epoch while this container holds the
lease, and a write on a missing account raises
:class:`~wastore.DeviceNotFoundError` naming it; a read is checked against
its row checksum (:mod:`.checksum`), so that a damaged or altered row is a
:class:`~wastore.CorruptRecordError`, never "missing".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ...errors import CorruptRecordError, DeviceNotFoundError
from . import checksum as ck
from . import codec
from .engine import Args, Block
from .queries import Batch

if TYPE_CHECKING:
    from .store import SqlStore

T = TypeVar("T")


class AccountBase:
    """One account of an :class:`~wastore.backends.sql.store.SqlStore`: its id, its
    store and the store's engine, statements and leases."""

    __slots__ = ("_dq", "_e", "_id", "_leases", "_q", "_s")

    def __init__(self, store: SqlStore, device_id: int) -> None:
        self._s = store
        self._e = store.engine
        self._q = store.engine.q
        self._dq = store.engine.dq
        self._leases = store.engine.leases
        self._id = device_id

    # -- plumbing: writes are fenced, and name this account when it does not exist ----
    async def _write(self, sql: str, args: Sequence[Any], idempotent: bool = True) -> int:
        leases = self._leases
        epoch = leases.fence(self._id) if leases.held else None
        fenced = None if epoch is None else leases.fenced.get(sql)
        try:
            if fenced is None or epoch is None:  # no lease held here (or not a holder's write)
                return await self._e.write(sql, args, idempotent=idempotent, account=self._id)
            n = await self._e.write(fenced, (*args, epoch), idempotent=idempotent, account=self._id)
            if n == 0:
                await leases.verify(self._id, epoch)
            return n
        except DeviceNotFoundError as err:
            raise DeviceNotFoundError(self._id) from err.__cause__

    async def _batch(self, stmt: Batch, head: Args, rows: Sequence[Args], tail: Args = ()) -> None:
        try:
            await self._e.batch(stmt, head, rows, tail, account=self._id)
        except DeviceNotFoundError as err:
            raise DeviceNotFoundError(self._id) from err.__cause__

    async def _atomic(self, block: Block[T]) -> T:
        try:
            return await self._e.atomic(block, account=self._id)
        except DeviceNotFoundError as err:
            raise DeviceNotFoundError(self._id) from err.__cause__

    async def _blob(self, sql: str, key: str, table: str) -> bytes | None:
        """The opaque record of ``(self._id, key)`` (a text key), None when absent; corrupt
        if it is not bytes or does not match its checksum."""
        row = await self._e.one(sql, (self._id, key))
        if row is None:
            return None
        value, stored = row
        if type(value) is bytes and stored == ck.key_blob(self._id, key, value):
            return value
        raise self._bad(table, key, value)

    @staticmethod
    def _bad(table: str, key: object, value: Any) -> CorruptRecordError:
        if type(value) is not bytes:
            return codec.blob_error(value, table, key)
        return ck.corrupt(table, key)

    def _row(self, table: str, key: object, values: Sequence[Any], stored: Any) -> None:
        """Check a row read back (its columns in :data:`checksum.SPEC` order, then the
        merged ones) against its stored checksum."""
        cols, terms = ck.SPEC[table]
        c = ck.crc(self._id, values[: len(cols)])
        for (_, weight), value in zip(terms, values[len(cols) :], strict=True):
            c = (c + ck.term(value, weight)) % ck.P
        ck.check(table, key, stored, c)

    def _crc(self, table: str, values: Sequence[Any]) -> int:
        """The checksum of a row to write (values as for :meth:`_row`)."""
        cols, terms = ck.SPEC[table]
        c = ck.crc(self._id, values[: len(cols)])
        for (_, weight), value in zip(terms, values[len(cols) :], strict=True):
            c = (c + ck.term(value, weight)) % ck.P
        return c
