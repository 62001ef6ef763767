"""The entries of one SignalCache: the state every part of the class shares, what
the cache holds, and the operations on its entries.

The operations run with the budget's lock held, or take it for a few dictionary
operations (see :mod:`wastore.cache`); nothing here awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from typing import Any

from ..backends import _txn
from ..contract import Backend
from ..errors import StoreError
from .budget import _MISSING, CacheBudget, Dirty, Key, _cost
from .txn import _TXNS, _Txn, backend_transaction_open


class _Entries:
    """The state of a SignalCache and the operations on its entries: the base of the
    class, whose other parts (flushing, the caller's-thread path, the per-user
    state) build on it.

    The fields are set by :meth:`SignalCache.__init__`, which says what each holds.
    """

    _b: Backend
    _max: int
    _budget: CacheBudget
    _slot: int
    _lock: threading.Lock
    _loop: asyncio.AbstractEventLoop | None
    _clean: OrderedDict[Key, bytes | None]
    _clean_keys: set[Key]
    _keys_peak: int
    _dirty: dict[Key, Dirty]
    _consumed_prekeys: dict[int, int]
    _seq: int
    _removals: int
    _cleaned: int
    _account_checked: bool
    _wake: asyncio.Event
    _woken: bool

    # -- introspection -------------------------------------------------------
    @property
    def backend(self) -> Backend:
        return self._b

    @property
    def device_id(self) -> int:
        return self._b.device_id

    @property
    def budget(self) -> CacheBudget:
        """The memory budget this cache shares with the other caches of its container."""
        return self._budget

    @property
    def dirty_count(self) -> int:
        """Buffered writes not yet committed (entries plus consumed pre-keys)."""
        return len(self._dirty) + len(self._consumed_prekeys)

    def __len__(self) -> int:
        """Entries held, clean and dirty."""
        return len(self._clean_keys) + len(self._dirty)

    def is_dirty(self, kind: int, address: str) -> bool:
        return (self._slot, kind, address) in self._dirty

    @property
    def in_transaction(self) -> bool:
        """True if the running task is inside this cache's :meth:`transaction`."""
        return self._own_txn() is not None

    # -- the entries ---------------------------------------------------------
    def _hit(self, key: Key) -> Any:
        """The held value of ``key`` (marked recently used), or ``_MISSING``. Never awaits;
        the caller holds the lock."""
        value = self._clean.get(key, _MISSING)
        if value is not _MISSING:
            self._clean.move_to_end(key)
            return value
        dirty = self._dirty.get(key)
        return _MISSING if dirty is None else dirty[0]

    def _buffer(self, key: Key, value: bytes | None) -> bool:
        """Record a write outside any transaction: dirty, seen by every reader at once.

        The caller holds the lock. Returns whether the flusher must be woken (the
        caller wakes it: ``_wake.set()`` on the event loop's thread, else
        :meth:`_wake_from_thread`).
        """
        budget = self._budget
        old = self._clean.pop(key, _MISSING)
        if old is not _MISSING:  # it was clean: no longer evictable
            self._clean_keys.discard(key)
            budget.used -= _cost(key, old)
        else:
            prev = self._dirty.get(key)
            if prev is not None:
                budget.used -= _cost(key, prev[0])
        budget.used += _cost(key, value)
        self._seq = seq = self._seq + 1
        self._dirty[key] = (value, seq)
        if budget.used > budget._max or len(self._clean_keys) + len(self._dirty) > self._max:
            self._trim()
        if self._woken:
            return False
        self._woken = True
        return True

    def _wake_from_thread(self) -> None:
        """Wake the flusher from another thread (``asyncio.Event`` is not thread-safe)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing to wake
                loop.call_soon_threadsafe(self._wake.set)

    def _put_clean(self, key: Key, value: bytes | None) -> None:
        """Hold ``value`` as the committed value of a key that is not dirty (lock held)."""
        budget = self._budget
        old = self._clean.pop(key, _MISSING)
        if old is not _MISSING:
            budget.used -= _cost(key, old)
        self._clean[key] = value
        self._clean_keys.add(key)
        budget.used += _cost(key, value)

    def _compact(self) -> None:
        """Rebuild the set of clean keys once it shrank to a quarter of its peak: a set
        keeps its grown table when entries leave, and thousands of idle accounts
        would each keep one. O(1) amortized over the evictions that shrank it."""
        self._clean_keys = set(self._clean_keys)
        self._keys_peak = len(self._clean_keys)

    def _grew(self) -> None:
        if len(self._clean_keys) > self._keys_peak:
            self._keys_peak = len(self._clean_keys)

    def _forget(self, key: Key) -> None:
        """Drop a clean entry (lock held)."""
        self._budget.used -= _cost(key, self._clean.pop(key))
        self._clean_keys.discard(key)

    def _trim(self) -> None:
        """Keep the entries within ``max_entries`` (clean ones make room for dirty ones)
        and the budget; O(1) per entry evicted. The caller holds the lock."""
        keys = self._clean_keys
        room = self._max - len(self._dirty)
        if len(keys) > room:
            self._removals += 1
            budget = self._budget
            while keys and len(keys) > room:
                key = keys.pop()  # an arbitrary one: O(1), unlike finding the oldest
                budget.used -= _cost(key, self._clean.pop(key))
            if len(keys) * 4 < self._keys_peak:
                self._compact()
        if self._budget.used > self._budget._max:
            self._budget._evict()

    def _fill(self, key: Key, value: bytes | None, removals: int) -> bytes | None:
        """Cache a value loaded from the backend, unless the key was written meanwhile.

        ``removals`` is :attr:`_removals` as it was when the load started: if entries
        were dropped since (evicted after a flush, or deleted per user), the loaded
        value may be older than what the backend holds now, so it is not cached.
        """
        with self._lock:
            current = self._hit(key)
            if current is not _MISSING:  # a write (or another load) won the race
                cached: bytes | None = current
                return cached
            if removals != self._removals:
                return value
            self._put_clean(key, value)
            self._grew()
            self._trim()
            return value

    def _release(self) -> None:
        """Forget every clean entry (their bytes go back to the budget)."""
        with self._lock:
            for key in list(self._clean_keys):
                self._forget(key)
            self._compact()
            self._removals += 1

    # -- transactions: which one the running task is in ------------------------
    def _own_txn(self) -> _Txn | None:
        stack = _TXNS.get()
        if stack:
            task = asyncio.current_task()
            for t in stack:
                if t.cache is self and t.task is task and t.frames:
                    found: _Txn = t
                    return found
        return None

    def _inside_other_txn(self) -> bool:
        """The running task was started inside another task's transaction of this cache
        that is still open: that transaction holds the flush lock until it ends, and its
        task may be awaiting this one, so this task must not wait for the lock."""
        stack = _TXNS.get()
        if not stack:
            return False
        task = asyncio.current_task()
        return any(t.cache is self and t.task is not task and t.frames for t in stack)

    def _started_inside_error(self) -> StoreError:
        inside = _txn.started_inside_open()
        if inside is not None:
            return _txn.started_inside(inside)
        return StoreError(  # pragma: no cover - a cache's transaction holds its backend's
            f"this task was started inside a transaction of the SignalCache of account "
            f"{self.device_id}, which is still open: it cannot flush or open a transaction "
            "of that cache until the transaction ends"
        )

    def _refuse_foreign(self, what: str) -> None:
        if backend_transaction_open():
            raise StoreError(
                f"{what} through the SignalCache of account {self.device_id} inside a "
                "transaction opened on the backend directly: the cache cannot learn whether "
                "it commits. Open it through the cache instead: `async with "
                "pm.transaction():` (or `pm.signal.transaction()`)"
            )
