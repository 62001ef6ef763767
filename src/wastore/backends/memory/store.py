"""MemoryStore: the container of the in-memory backend (``memory://``).

It holds the accounts and runs transactions one at a time: the writes of
other tasks wait for an open one to end (at most :attr:`MemoryStore.lock_timeout`
seconds), and their reads see the state as last committed (the open
transaction's undo journal applied to copies).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from ... import _validate as v
from ...device import Device
from ...errors import BackendUnavailableError, DeviceNotFoundError
from ...jid import JID, as_jid
from .. import _txn
from .._common import several_accounts
from .account import MemoryBackend
from .journal import _MISSING, MemorySnapshot, _Account, _del, _journal, _set, _Undo


class MemoryStore:
    """A Container whose data lives in this process only (``memory://``)."""

    def __init__(self) -> None:
        self._accounts: dict[int, _Account] = {}
        self._next_id = 1
        self._lock = asyncio.Lock()
        self._holder: _txn.TxnState[list[_Undo]] | None = None
        self.lock_timeout = _txn.DEFAULT_LOCK_TIMEOUT
        self._closed = False
        self.snapshots: list[MemorySnapshot] = []

    # -- Container ---------------------------------------------------------
    async def create_device(self) -> int:
        self._check_open()
        return self._create(await self._wait_for_other_txn())

    def _create(self, st: _txn.TxnState[list[_Undo]] | None) -> int:
        device_id = self._next_id
        self._next_id += 1  # like a SQL sequence, never rolled back
        # Journalled: created inside a transaction, the account goes with its rollback.
        _set(_journal(st), self._accounts, device_id, _Account(device=Device.new().frozen()))
        return device_id

    async def devices(self) -> list[int]:
        self._check_open()
        return sorted(i for i, a in self._visible_accounts().items() if a.device is not None)

    def backend(self, device_id: int) -> MemoryBackend:
        self._check_open()
        v.integer(device_id, "device_id", 1)
        return MemoryBackend(self, device_id)

    async def first_device(self) -> int:
        self._check_open()
        # Waits for another task's transaction (which may be creating the first account),
        # then looks and creates without suspending: two first starts make one account.
        st = await self._wait_for_other_txn()
        ids = sorted(i for i, a in self._visible_accounts().items() if a.device is not None)
        if len(ids) > 1:
            raise several_accounts(ids)
        return ids[0] if ids else self._create(st)

    async def find_device(self, jid: JID | str) -> int | None:
        self._check_open()
        user = as_jid(jid).user
        accounts = self._visible_accounts()
        for device_id in sorted(accounts):
            dev = accounts[device_id].device
            if dev is None:
                continue
            if (dev.pn is not None and dev.pn.user == user) or (
                dev.lid is not None and dev.lid.user == user
            ):
                return device_id
        return None

    async def delete_device(self, device_id: int) -> None:
        self._check_open()
        v.integer(device_id, "device_id", 1)
        st = await self._wait_for_other_txn()
        # Journalled: deleted inside a transaction, the account comes back with its rollback.
        if not _del(_journal(st), self._accounts, device_id):
            raise DeviceNotFoundError(device_id)

    async def close(self) -> None:
        _txn.refuse_close_inside(self)
        self._closed = True

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"MemoryStore(accounts={len(self._accounts)})"

    # -- internals ---------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError("this MemoryStore is closed")

    async def _wait_for_other_txn(self) -> _txn.TxnState[list[_Undo]] | None:
        """Return the running task's own transaction, or wait until no other task has one open.

        Memory operations never suspend once they start, so after this returns the
        caller's reads and writes are atomic with respect to every other task.
        """
        st = _txn.current(self)
        if st is not None:
            return st
        if self._lock.locked():
            await self._acquire(release=True)
        return None

    def _reads_committed(self) -> bool:
        """Whether the running task reads the committed state: another task's transaction
        is open (a read never waits for a transaction)."""
        return self._holder is not None and _txn.current(self, read=True) is None

    def _visible_accounts(self) -> dict[int, _Account]:
        """Every account as the running task sees it (see :meth:`MemoryBackend._read`)."""
        if not self._reads_committed():
            return self._accounts
        return {i: self._committed_view(a) for i, a in self._committed_accounts().items()}

    def _committed_accounts(self) -> dict[int, _Account]:
        """The accounts without those the open transaction created or deleted."""
        holder = self._holder
        accounts = self._accounts
        touched = [] if holder is None else [e for e in holder.data if e[0] is accounts]
        if not touched:
            return accounts
        view = dict(accounts)
        for _, key, old in reversed(touched):
            if old is _MISSING:
                view.pop(key, None)
            else:
                view[key] = old
        return view

    def _committed_view(self, acct: _Account) -> _Account:
        """``acct`` without the writes of the open transaction (its undo journal applied
        to copies of what it changed)."""
        holder = self._holder
        journal = [] if holder is None else holder.data
        if not journal:
            return acct
        fields = {id(d): name for name, d in vars(acct).items() if isinstance(d, dict)}
        fields[id(vars(acct))] = ""
        touched = [entry for entry in journal if id(entry[0]) in fields]
        if not touched:
            return acct
        view = copy.copy(acct)
        copies: dict[str, dict[Any, Any]] = {"": vars(view)}
        for d, key, old in reversed(touched):
            name = fields[id(d)]
            target = copies.get(name)
            if target is None:
                target = copies[name] = dict(d)
                setattr(view, name, target)
            if old is _MISSING:
                target.pop(key, None)
            else:
                target[key] = old
        return view

    async def _acquire(self, release: bool = False) -> None:
        """Take the transaction lock (waiting at most ``lock_timeout``); ``release``: give
        it back at once (wait for the open transaction to end, without taking a turn
        that would hold others up)."""
        lock = self._lock
        while True:
            if lock.locked():
                holder = self._holder
                try:
                    async with asyncio.timeout(self.lock_timeout):
                        await lock.acquire()
                except TimeoutError:
                    text = "another task" if holder is None else holder.describe()
                    raise _txn.wait_timeout(
                        "a transaction of this MemoryStore", text, self.lock_timeout
                    ) from None
            else:
                await lock.acquire()
            if not release:
                return
            lock.release()
            if not lock.locked():
                return


async def open_memory(url: str = "memory://", **options: object) -> MemoryStore:
    """Open a fresh, empty ``memory://`` store (it takes no options)."""
    from ...errors import ConfigError
    from ..options import url_options

    unknown = set(url_options(url)) | set(options)
    if unknown:
        raise ConfigError(f"memory:// takes no options, got {sorted(unknown)}")
    return MemoryStore()
