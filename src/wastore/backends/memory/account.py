"""MemoryBackend: one account's view of a MemoryStore.

The domain methods come from the mixins of :mod:`.signal`, :mod:`.appsync` and
:mod:`.protocol`; here are transactions (a nested block is a mark in the undo
journal), the device row and the account lease.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ... import _validate as v
from ...device import Device
from ...errors import AccountInUseError
from .. import _txn
from .._common import sanitize_snapshot_name, utc_stamp
from .appsync import AppSyncMethods
from .journal import MemorySnapshot, _Account, _journal, _rollback, _set, _Undo
from .protocol import ProtocolMethods
from .signal import SignalMethods


class MemoryBackend(SignalMethods, AppSyncMethods, ProtocolMethods):
    """One account's view of a :class:`MemoryStore`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"MemoryBackend(device_id={self._id})"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        c = self._c
        c._check_open()
        st = _txn.current(c)
        if st is not None:  # nested: a savepoint
            mark = len(st.data)
            st.depth += 1
            try:
                yield
            except BaseException:
                _rollback(st.data, mark)
                raise
            finally:
                st.depth -= 1
            return
        await c._acquire()
        try:
            state: _txn.TxnState[list[_Undo]] = _txn.TxnState(c, [], self._id)
            c._holder = state
            self._check_lease(c._accounts.get(self._id))  # a view that lost its lease
            token = _txn.push(state)
            try:
                yield
            except BaseException:
                _rollback(state.data, 0)
                raise
            finally:
                _txn.pop(token, state)
        finally:
            c._holder = None
            c._lock.release()

    # -- DeviceStore -------------------------------------------------------
    async def save(self, device: Device) -> None:
        v.instance(device, Device, "device")
        stored = device.copy().frozen()  # copy() validates
        acct, j = await self._write()
        # Journalled like any other write, so a rolled-back transaction restores the row.
        _set(j, vars(acct), "device", stored)

    async def load(self) -> Device | None:
        dev = (await self._read()).device
        return None if dev is None else dev.copy()

    async def exists(self) -> bool:
        return (await self._read()).device is not None

    async def create(self) -> int:
        c = self._c
        c._check_open()
        st = await c._wait_for_other_txn()
        acct = c._accounts.get(self._id)
        if acct is None or acct.device is None:
            _set(_journal(st), c._accounts, self._id, _Account(device=Device.new().frozen()))
            c._next_id = max(c._next_id, self._id + 1)
        return self._id

    async def snapshot_db(self, name: str, extra: bytes | None = None) -> str:
        safe = sanitize_snapshot_name(name)
        extra = v.opt_blob(extra, "extra")
        acct = await self._read()
        location = f"memory://snapshot-{utc_stamp()}-{safe}"
        self._c.snapshots.append(MemorySnapshot(safe, location, copy.deepcopy(acct), extra))
        return location

    # -- LeaseStore --------------------------------------------------------
    async def acquire_lease(self, holder: str, ttl: float) -> str:
        holder = v.text(holder, "holder", max_len=256, allow_empty=False)
        _txn.refuse_lease_inside(self._c)
        self._token = None
        acct, _ = await self._write()
        now = time.monotonic()
        if acct.lease is not None and acct.lease[2] > now:
            raise AccountInUseError(self._id, acct.lease[1])
        token = uuid.uuid4().hex
        acct.lease = (token, holder, now + float(ttl))
        self._token = token
        return token

    async def renew_lease(self, token: str, ttl: float) -> bool:
        self._c._check_open()
        acct = self._c._accounts.get(self._id) or _Account()
        if acct.lease is None or acct.lease[0] != token:
            return False
        acct.lease = (token, acct.lease[1], time.monotonic() + float(ttl))
        return True

    async def release_lease(self, token: str) -> None:
        self._c._check_open()
        _txn.refuse_lease_inside(self._c)
        acct = self._c._accounts.get(self._id) or _Account()
        if acct.lease is not None and acct.lease[0] == token:
            acct.lease = None
        if self._token == token:
            self._token = None
