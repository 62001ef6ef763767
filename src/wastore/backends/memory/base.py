"""What every method of a MemoryBackend stands on.

A read sees the account as the running task does (with its own transaction's
writes, or as last committed while another task's transaction is open); a
write waits for another task's transaction, refuses a missing account, is
fenced by the lease taken through this view, and hands back the journal its
changes go to (None outside a transaction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import AccountInUseError, DeviceNotFoundError
from .. import _txn
from .journal import _Account, _Undo

if TYPE_CHECKING:
    from .store import MemoryStore


class AccountBase:
    """One account of a :class:`MemoryStore`: its id, its container, its lease token."""

    __slots__ = ("_c", "_id", "_token")

    def __init__(self, container: MemoryStore, device_id: int) -> None:
        self._c = container
        self._id = device_id
        self._token: str | None = None  # the lease taken through this view: fences its writes

    @property
    def device_id(self) -> int:
        return self._id

    # -- plumbing ----------------------------------------------------------
    async def _read(self) -> _Account:
        """The account as the running task sees it: with its own transaction's writes,
        or as last committed while another task's transaction is open (a read never
        waits for a transaction)."""
        c = self._c
        c._check_open()
        # MemoryStore._reads_committed(), inlined: every read passes here.
        if c._holder is not None and _txn.current(c, read=True) is None:
            return c._committed_view(c._committed_accounts().get(self._id) or _Account())
        return c._accounts.get(self._id) or _Account()

    async def _write(self) -> tuple[_Account, list[_Undo] | None]:
        self._c._check_open()
        st = await self._c._wait_for_other_txn()
        acct = self._c._accounts.get(self._id)
        if acct is None or acct.device is None:
            raise DeviceNotFoundError(self._id, "create the device row first (create())")
        self._check_lease(acct)
        return acct, (None if st is None else st.data)

    def _check_lease(self, acct: _Account | None) -> None:
        """Raise AccountInUseError if this view took the lease and lost it."""
        token = self._token
        if token is None:
            return
        lease = None if acct is None else acct.lease
        if lease is None or lease[0] != token:
            holder = "another holder" if lease is None else lease[1]
            raise AccountInUseError(self._id, holder, "this process lost the account lease")
