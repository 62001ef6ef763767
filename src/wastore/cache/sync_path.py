"""The caller's-thread path of a SignalCache: reads and buffered writes for a
synchronous caller on any thread, served without the event loop when none is
needed (see :mod:`wastore.cache` and :class:`wastore.interop.bridge.SyncSignal`).
"""

from __future__ import annotations

import asyncio

from .. import _validate as v
from ..backends import _txn
from ..errors import ValidationError
from .budget import _MISSING, IDENTITY, SENDER_KEY, SESSION, Key
from .entries import _Entries
from .txn import _TXNS


class _SyncPath(_Entries):
    """The caller's-thread part of SignalCache: nothing here awaits."""

    # -- the synchronous path: any thread, never awaits ------------------------
    def _sync_key(self, kind: int, address: str) -> Key:
        if kind == SENDER_KEY:
            return (self._slot, kind, v.address(address, "sender key address"))
        if kind != SESSION and kind != IDENTITY:
            raise ValidationError(f"unknown kind of cached record: {kind!r}")
        return (self._slot, kind, v.address(address))

    def peek(self, kind: int, address: str) -> tuple[bool, bytes | None]:
        """What the cache holds for ``address``, for a caller on any thread.

        Returns ``(True, record)`` when the cache holds the entry (``record`` None:
        known to be absent), and ``(False, None)`` when it must be loaded: then call
        the async method (:meth:`get_session`, :meth:`load_identity`,
        :meth:`get_sender_key`) on the event loop. A hit is marked recently used,
        as by the async methods. Never awaits; blocks only for the budget's lock.

        Inside a transaction of the running task it answers ``(False, None)``:
        the async methods see the transaction's writes, this does not.

        Args:
            kind: :data:`SESSION`, :data:`IDENTITY` or :data:`SENDER_KEY`.
            address: the signal address (for sender keys ``"{group}::{sender}"``).

        Raises:
            ValidationError: ``kind`` or ``address`` is not valid.
        """
        key = self._sync_key(kind, address)
        if _TXNS.get():
            return False, None
        with self._lock:
            value = self._hit(key)
        if value is _MISSING:
            return False, None
        return True, value

    def _can_buffer(self) -> bool:
        loop = self._loop
        return not (
            _TXNS.get()
            or _txn._CURRENT.get()
            or not self._account_checked
            or loop is None
            or loop.is_closed()
        )

    def _wake_any_thread(self) -> None:
        if asyncio._get_running_loop() is self._loop:
            self._wake.set()
        else:
            self._wake_from_thread()

    def buffer(self, kind: int, address: str, record: bytes | None) -> bool:
        """Buffer a write (``record`` None: a delete) for a caller on any thread.

        Returns True when the write was buffered — exactly what the async method
        (:meth:`put_session`, :meth:`delete_session`, :meth:`put_identity`, ...)
        would have done outside a transaction: dirty, seen by every reader at once,
        durable once a flush commits it. Returns False, having done nothing, when
        the event loop must act: the account's existence was not checked yet (the
        first write of a cache), a bound is reached (the async method flushes
        first), the cache never ran on an event loop, or the running task is
        inside a transaction; then call the async method on the event loop.
        Never awaits; blocks only for the budget's lock.

        Raises:
            ValidationError: ``kind``, ``address`` or ``record`` is not valid
                (nothing is buffered).
        """
        key = self._sync_key(kind, address)
        value: bytes | None = None
        if record is not None:
            if kind == IDENTITY:
                value = v.fixed(record, "identity key", 32)
            else:
                value = v.blob(record, "session record" if kind == SESSION else "sender key record")
        if not self._can_buffer():
            return False
        budget = self._budget
        with self._lock:
            if len(self._dirty) >= self._max or budget.used > budget._max:
                return False  # back-pressure: the async method flushes first
            wake = self._buffer(key, value)
        if wake:
            self._wake_any_thread()
        return True

    def consume_prekey(self, id: int) -> bool:
        """:meth:`remove_prekey` for a caller on any thread, when no event loop is needed.

        Returns True when the consumption was buffered (the pre-key goes in the flush
        that commits the session built from it), False when nothing was done and the
        async :meth:`remove_prekey` must run on the event loop (see :meth:`buffer`).

        Raises:
            ValidationError: ``id`` is not a valid pre-key id.
        """
        id = v.prekey_id(id)
        if not self._can_buffer():
            return False
        with self._lock:
            if len(self._dirty) >= self._max:
                return False
            self._seq += 1
            self._consumed_prekeys[id] = self._seq
            wake = not self._woken
            self._woken = True
        if wake:
            self._wake_any_thread()
        return True

    @property
    def pending(self) -> bool:
        """True while buffered writes (or pre-key consumptions) wait for a flush's commit.

        An entry stops being pending only once the commit that wrote it is done, so
        when this is False every write made before through the cache, outside a
        transaction, is durable.
        """
        return bool(self._dirty or self._consumed_prekeys)
