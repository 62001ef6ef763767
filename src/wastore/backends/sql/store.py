"""The container both SQL stores share: accounts, export and import, admin hooks.

:class:`SqlStore` implements :class:`~wastore.Container` and
:class:`~wastore.contract.PortableContainer` once over an
:class:`~wastore.backends.sql.engine.Engine`;
:class:`~wastore.backends.sqlite.SqliteStore` and
:class:`~wastore.backends.postgres.PostgresStore` add how they open, their
snapshots and their schema status.

Hooks for administration (``wastore devices``, ``check``, ...), documented
here so that :mod:`wastore.admin` needs no private attribute:
:attr:`SqlStore.dialect`, :attr:`SqlStore.prefix`, :meth:`SqlStore.read_snapshot`,
:meth:`SqlStore.lease_listing` and :meth:`SqlStore.schema_version`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

from ... import _validate as v
from ... import portable
from ...device import Device
from ...errors import DeviceNotFoundError, StoreError, ValidationError
from ...jid import JID, as_jid
from ...values import AccountDump
from .. import _txn
from .._common import several_accounts
from . import codec, dump, migrate
from .account import SqlAccount
from .engine import Engine, Rows, Tx
from .queries import KeyRead, Queries, to_sqlite
from .schema import Dialect


class SqlStore:
    """A Container over one SQL database: many accounts, one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        q = engine.q
        cols = ", ".join(codec.DEVICE_COLUMNS)
        if q.dialect == "sqlite":
            self._device_ids = KeyRead(f"SELECT id FROM {q.prefix}device WHERE id IN ({{inlist}})")
            self._devices = KeyRead(
                f"SELECT id, {cols} FROM {q.prefix}device WHERE id IN ({{inlist}})"
            )
        else:
            self._device_ids = KeyRead(f"SELECT id FROM {q.prefix}device WHERE id = ANY($1)")
            self._devices = KeyRead(
                f"SELECT id, {cols} FROM {q.prefix}device WHERE id = ANY($1::bigint[])"
            )

    @property
    def q(self) -> Queries:
        """The shared statements, rendered for this store's dialect and prefix."""
        return self.engine.q

    @property
    def dialect(self) -> Dialect:
        """``"sqlite"`` or ``"postgres"``."""
        return self.engine.q.dialect

    @property
    def prefix(self) -> str:
        """The table prefix."""
        return self.engine.q.prefix

    # -- Container ---------------------------------------------------------
    async def create_device(self) -> int:
        row = codec.device_row(Device.new(), 0)
        e = self.engine
        for _ in range(100):
            try:
                found = await e.write_returning(e.q.insert_device_auto, row)
            except StoreError as err:
                # An id taken by backend(id).create(): the sequence has moved past it now.
                if not e.unique_violation(err.__cause__):
                    raise
                continue
            return int(found[0])
        raise StoreError("create_device() kept colliding with explicitly created device ids")

    async def devices(self) -> list[int]:
        return [int(r[0]) for r in await self.engine.rows(self.q.list_devices, ())]

    async def first_device(self) -> int:
        row = codec.device_row(Device.new(), 0)
        q, lock = self.q, self.engine.dq.lock_accounts

        # One transaction: two processes starting on an empty database cannot both
        # see no account and create one each.
        async def pick(tx: Tx) -> list[int] | int:
            if lock is not None:
                await tx.one(lock, ())
            ids = [int(r[0]) for r in await tx.rows(q.first_devices, ())]
            if ids:
                return ids
            return int((await tx.one(q.insert_device_auto, row))[0])

        found = await self.engine.atomic(pick)
        if isinstance(found, int):
            return found
        if len(found) > 1:
            raise several_accounts(found)
        return found[0]

    def backend(self, device_id: int) -> SqlAccount:
        """The account's backend; no I/O (a missing account reads nothing, refuses writes)."""
        self.engine.check_open()
        return SqlAccount(self, v.integer(device_id, "device_id", 1))

    async def find_device(self, jid: JID | str) -> int | None:
        user = as_jid(jid).user
        if not user:
            raise ValidationError("find_device() needs a JID with a user part")
        found = await self.engine.value(self.q.find_device, (user,))
        return None if found is None else int(found)

    async def delete_device(self, device_id: int) -> None:
        """Remove the account: one statement, every table follows by ON DELETE CASCADE."""
        device_id = v.integer(device_id, "device_id", 1)
        if await self.engine.write(self.q.delete_device, (device_id,), idempotent=False) == 0:
            raise DeviceNotFoundError(device_id)

    async def open_accounts(
        self, device_ids: Sequence[int], *, lease: bool, holder: str, ttl: float
    ) -> list[tuple[Device, str | None]]:
        """What :meth:`wastore.PersistenceManager.open_many` needs, in batches: create the
        missing device rows, take the leases (a thousand per transaction; all or none),
        and load the devices. Returns ``(device, lease token)`` per id, in order.

        Raises:
            ValidationError: an id is not valid, or given twice.
            AccountInUseError: another holder has one of the leases (none is taken).
            CorruptRecordError: a device row cannot be decoded (the leases are released).
        """
        ids = [v.integer(i, "device_id", 1) for i in device_ids]
        if len(set(ids)) != len(ids):
            raise ValidationError("open_many() was given the same account more than once")
        holder = v.text(holder, "holder", max_len=256, allow_empty=False)
        e = self.engine
        found = {int(r[0]) for r in await e.by_keys(self._device_ids, (), ids)}
        for missing in (i for i in ids if i not in found):
            await self.backend(missing).create()
        tokens: dict[int, str] = {}
        if lease:
            tokens = await e.leases.acquire_many(ids, holder, ttl)
        try:
            rows = await e.by_keys(self._devices, (), ids)
            devices = {int(r[0]): codec.row_to_device(r[1:], int(r[0])) for r in rows}
            for i in ids:
                if i not in devices:
                    raise DeviceNotFoundError(i, "the account was deleted while it was opened")
        except BaseException:
            if tokens:
                await e.leases.release_many(tokens)
            raise
        return [(devices[i], tokens.get(i)) for i in ids]

    async def release_leases(self, tokens: dict[int, str]) -> None:
        """Release several leases of this container (device id -> token) in batches."""
        await self.engine.leases.release_many(tokens)

    async def snapshot(self, device_id: int, name: str, extra: bytes | None) -> str:
        """Write a debug snapshot for the account; return where it went."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close the store (safe to call twice).

        Raises:
            StoreError: inside a transaction of this store, or from a task started
                inside one (closing waits for the open transactions to end).
        """
        _txn.refuse_close_inside(self.engine)
        await self.engine.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- export / import -----------------------------------------------------
    async def export_account(self, device_id: int) -> AccountDump:
        """Every row of one account, read in one consistent snapshot."""
        device_id = v.integer(device_id, "device_id", 1)
        tables = dump.EXPORTED_TABLES
        results = await self.engine.read_snapshot(
            [(dump.select_sql(t, self.dialect, self.prefix), (device_id,)) for t in tables]
        )
        rows = {
            t: dump.to_rows(t, found, device_id) for t, found in zip(tables, results, strict=True)
        }
        if not rows["device"]:
            raise DeviceNotFoundError(device_id)
        return AccountDump(rows)

    async def import_account(self, account: AccountDump, *, replace: bool = False) -> int:
        """Insert an exported account, in one transaction; return its device id.

        The account already in the store is the one with the same identity key
        (its phone number or LID may have changed). With ``replace`` it is replaced
        in place: its rows are deleted and the dump's inserted under the same device
        id, in the same transaction (several rows with that key, left by an older
        wastore, become one, the lowest id). Otherwise the new account gets a new id.

        Raises:
            ValidationError: the dump does not check out; the account is there and
                ``replace`` is false; or another account (another identity key) has
                the dump's phone number or LID — refused with or without ``replace``:
                an import never deletes an account it is not.
        """
        portable.check(account)
        dialect, prefix, q = self.dialect, self.prefix, self.q
        find = dump.match_sql(prefix, len(dump.account_users(account)))
        if dialect == "sqlite":
            find = to_sqlite(find)
        params = dump.match_params(account)

        async def write(tx: Tx) -> int:
            found = dump.matches(await tx.rows(find, params), account)
            dump.refuse(found, replace)
            for old in found.same:
                await tx.write(q.delete_device, (old,))
            row = dump.to_params("device", account.device, None)
            if found.same:
                insert = dump.insert_sql("device", dialect, prefix, with_id=True)
                new = await tx.one(insert, (found.same[0], *row))
            else:
                new = await tx.one(dump.insert_sql("device", dialect, prefix), row)
            new_id = int(new[0])
            for sql, rows in dump.table_rows(account, dialect, prefix, new_id):
                await tx.write_many(sql, rows)
            return new_id

        items = sum(len(rows) for rows in account.tables.values())
        return await self.engine.atomic(write, items=items)

    # -- administration hooks --------------------------------------------------
    async def read_snapshot(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Rows]:
        """Run read-only statements written with ``$n`` placeholders in one consistent
        snapshot (off the event loop; retried like any read); their rows as tuples."""
        if self.dialect == "sqlite":
            statements = [(to_sqlite(sql), args) for sql, args in statements]
        return await self.engine.read_snapshot(statements)

    def lease_listing(self, device_id: int | None = None) -> tuple[str, tuple[Any, ...]]:
        """A statement for :meth:`read_snapshot` listing the leases of every account
        (or of one): rows ``(device_id, holder, host, pid, expires_at)``; on
        PostgreSQL the advisory locks held (``expires_at`` NULL)."""
        return self.engine.leases.listing(device_id)

    async def schema_version(self) -> tuple[int, int] | None:
        """``(version, compat)`` of the database now (None: no wastore schema any more).

        Raises:
            SchemaError: the version table does not hold exactly one row.
        """
        return await migrate.read_version(_SnapshotReads(self), self.prefix)


class _SnapshotReads:
    """The migrations runner's reads through :meth:`SqlStore.read_snapshot` (read-only)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    @property
    def dialect(self) -> Dialect:
        return self._store.dialect

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        (rows,) = await self._store.read_snapshot([(sql, args)])
        return list(rows)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        raise NotImplementedError("read-only")

    async def script(self, statements: Sequence[str]) -> None:
        raise NotImplementedError("read-only")

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        raise NotImplementedError("read-only")
        yield
