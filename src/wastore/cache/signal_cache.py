"""SignalCache: the write-back cache of one account (the model: :mod:`wastore.cache`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final

from .. import _validate as v
from ..backends import _txn
from ..contract import Backend
from ..errors import DeviceNotFoundError, ValidationError
from .budget import (
    _MISSING,
    ENTRY_OVERHEAD,
    IDENTITY,
    SENDER_KEY,
    SESSION,
    CacheBudget,
    Dirty,
    Key,
    _cost,
)
from .flush import DEFAULT_FLUSH_WINDOW, _Flushing
from .per_user import _PerUser
from .sync_path import _SyncPath
from .txn import _TXNS, _Frame, _Txn, backend_transaction_open

DEFAULT_MAX_ENTRIES: Final = 10_000


class SignalCache(_PerUser, _Flushing, _SyncPath):
    """Write-back cache over one account's backend (see :mod:`wastore.cache`).

    Methods not about sessions, identities, sender keys or pre-key consumption
    are passed to the backend (after a flush where their answer depends on
    buffered writes).

    Args:
        backend: the account's backend.
        max_entries: dirty entries buffered before a write flushes first, and
            entries held at most (clean ones make room for dirty ones).
        flush_window: seconds the flusher waits after a write to coalesce a burst.
        budget: the memory budget to share; default: the budget of the backend's
            container (:meth:`CacheBudget.for_backend`).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        flush_window: float = DEFAULT_FLUSH_WINDOW,
        budget: CacheBudget | None = None,
    ) -> None:
        self._b = backend
        self._max = v.integer(max_entries, "max_entries", 1)
        if not flush_window >= 0:
            raise ValidationError("flush_window must be >= 0 seconds")
        if budget is not None and not isinstance(budget, CacheBudget):
            raise ValidationError("budget must be a CacheBudget")
        self._window = float(flush_window)
        self._budget = budget if budget is not None else CacheBudget.for_backend(backend)
        self._slot = self._budget._join(self)
        self._lock = self._budget._lock
        # The event loop that runs the flusher and the async methods: a synchronous
        # caller on another thread wakes the flusher through it.
        self._loop: asyncio.AbstractEventLoop | None = asyncio._get_running_loop()
        # The clean entries (record, or None for "known absent") live in the budget's
        # list, shared with the other caches; this set says which are this cache's.
        self._clean = self._budget._clean
        self._clean_keys: set[Key] = set()
        self._keys_peak = 0  # most clean keys held since the set was last rebuilt
        # Writes not committed yet (a None value is a tombstone). Never evicted.
        self._dirty: dict[Key, Dirty] = {}
        self._consumed_prekeys: dict[int, int] = {}
        self._seq = 0
        # Counts the times entries were dropped (eviction, per-user delete, drop):
        # a load that was in flight meanwhile must not cache what it read.
        self._removals = 0
        # Counts the times dirty entries left the buffer (committed, or dropped): a
        # read that merges the backend's answer with the buffer checks that none did
        # while it waited for the backend.
        self._cleaned = 0
        self._account_checked = False  # the account is known to exist
        # Held by a flush and by a whole transaction: they run one at a time.
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._woken = False  # _wake was set since the flusher last cleared it
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False
        self.flushes = 0
        self.failed_flushes = 0

    def __repr__(self) -> str:
        return (
            f"SignalCache(device_id={self._b.device_id}, entries={len(self)}, "
            f"dirty={self.dirty_count})"
        )

    async def _before_write(self) -> _Txn | None:
        """Checks before a buffered write: the transaction it belongs to (or None), the
        account's existence (once), and back-pressure when a bound is reached."""
        t = self._own_txn()
        if t is None:
            inside = _txn.started_inside_open()
            if inside is not None:  # a write that would escape the transaction's rollback
                raise _txn.started_inside(inside)
            self._refuse_foreign("a write")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if not self._account_checked:
            if not await self._b.exists():
                raise DeviceNotFoundError(self.device_id, "create the device row first (create())")
            self._account_checked = True
        if t is None and (len(self._dirty) >= self._max or self._budget.used > self._budget._max):
            await self._relieve()
        return t

    async def _relieve(self) -> None:
        """Make room: evict clean entries, and flush this cache if its dirty entries
        reached ``max_entries`` or the budget cannot be met by eviction alone."""
        budget = self._budget
        budget.evict()
        if len(self._dirty) >= self._max or (budget.used > budget._max and self.dirty_count):
            await self.flush()

    def _write_now(self, key: Key, value: bytes | None, t: _Txn | None) -> None:
        """Buffer one write (on the event loop): in the transaction ``t``, or dirty."""
        with self._lock:
            if t is not None:
                self._seq += 1
                t.frames[-1].writes[key] = (value, self._seq)
                return
            wake = self._buffer(key, value)
        if wake:
            self._wake.set()

    def _write_many(self, items: Iterable[tuple[Key, bytes | None]], t: _Txn | None) -> None:
        """:meth:`_write_now` for several writes, under the lock once."""
        wake = False
        with self._lock:
            if t is not None:
                writes = t.frames[-1].writes
                for key, value in items:
                    self._seq += 1
                    writes[key] = (value, self._seq)
                return
            for key, value in items:
                wake = self._buffer(key, value) or wake
        if wake:
            self._wake.set()

    def _slow_path(self) -> bool:
        """Whether a write needs :meth:`_before_write` (anything but a plain buffered write)."""
        return bool(
            _TXNS.get()
            or _txn._CURRENT.get()
            or not self._account_checked
            or len(self._dirty) >= self._max
            or self._budget.used > self._budget._max
        )

    # -- reads ---------------------------------------------------------------
    async def _get(self, key: Key) -> bytes | None:
        if _TXNS.get():
            t = self._own_txn()
            if t is not None:
                value = t.lookup(key)
                if value is not _MISSING:
                    found: bytes | None = value
                    return found
        with self._lock:
            value = self._hit(key)
        if value is not _MISSING:
            cached: bytes | None = value
            return cached
        return await self._load(key)

    async def _load(self, key: Key) -> bytes | None:
        _, kind, address = key
        removals = self._removals
        if kind == SESSION:
            value = await self._b.get_session(address)
        elif kind == IDENTITY:
            value = await self._b.load_identity(address)
        else:
            value = await self._b.get_sender_key(address)
        if self._in_any_txn():
            return value  # may be uncommitted: not for the shared entries
        return self._fill(key, value, removals)

    def _in_any_txn(self) -> bool:
        return self._own_txn() is not None or backend_transaction_open()

    # -- sessions -------------------------------------------------------------
    async def get_session(self, address: str) -> bytes | None:
        key = (self._slot, SESSION, v.address(address))
        if not _TXNS.get():  # _get() and _hit(), inlined: the hottest read
            with self._lock:
                clean = self._clean
                value = clean.get(key, _MISSING)
                if value is not _MISSING:
                    clean.move_to_end(key)
                    cached: bytes | None = value
                    return cached
                dirty = self._dirty.get(key)
            if dirty is not None:
                return dirty[0]
            return await self._load(key)
        return await self._get(key)

    async def get_sessions(self, addresses: Sequence[str]) -> dict[str, bytes]:
        wanted = v.address_list(addresses)
        t = self._own_txn() if _TXNS.get() else None
        slot = self._slot
        out: dict[str, bytes] = {}
        missing: list[str] = []
        with self._lock:
            for a in wanted:
                key = (slot, SESSION, a)
                value = t.lookup(key) if t is not None else _MISSING
                if value is _MISSING:
                    value = self._hit(key)
                if value is _MISSING:
                    missing.append(a)
                elif value is not None:
                    out[a] = value
        if missing:
            removals = self._removals
            loaded = await self._b.get_sessions(missing)
            if self._in_any_txn():
                out.update(loaded)
            else:
                for a in missing:
                    got = self._fill((slot, SESSION, a), loaded.get(a), removals)
                    if got is not None:
                        out[a] = got
        return out

    async def put_session(self, address: str, record: bytes) -> None:
        address = v.address(address)
        value = v.blob(record, "session record")
        key = (self._slot, SESSION, address)
        # _buffer(), inlined with its checks: the hottest write.
        budget = self._budget
        if (
            _TXNS.get()
            or _txn._CURRENT.get()
            or not self._account_checked
            or len(self._dirty) >= self._max
            or budget.used > budget._max
        ):
            self._write_now(key, value, await self._before_write())
            return
        with self._lock:
            dirty = self._dirty
            old = self._clean.pop(key, _MISSING)
            if old is not _MISSING:
                self._clean_keys.discard(key)
                budget.used += len(value) - (len(old) if old is not None else 0)
            else:
                prev = dirty.get(key)
                if prev is None:
                    budget.used += ENTRY_OVERHEAD + len(address) + len(value)
                else:
                    budget.used += len(value) - (len(prev[0]) if prev[0] is not None else 0)
            self._seq = seq = self._seq + 1
            dirty[key] = (value, seq)
            if budget.used > budget._max or len(self._clean_keys) + len(dirty) > self._max:
                self._trim()
            if self._woken:
                return
            self._woken = True
        self._wake.set()

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_records(items, "sessions")
        t = await self._before_write()
        slot = self._slot
        self._write_many((((slot, SESSION, a), r) for a, r in checked.items()), t)

    async def delete_session(self, address: str) -> None:
        key = (self._slot, SESSION, v.address(address))
        self._write_now(key, None, await self._before_write())

    async def has_session(self, address: str) -> bool:
        return await self.get_session(address) is not None

    # -- identities -------------------------------------------------------------
    async def load_identity(self, address: str) -> bytes | None:
        key = (self._slot, IDENTITY, v.address(address))
        if not _TXNS.get():  # _get() and _hit(), inlined
            with self._lock:
                clean = self._clean
                value = clean.get(key, _MISSING)
                if value is not _MISSING:
                    clean.move_to_end(key)
                    cached: bytes | None = value
                    return cached
                dirty = self._dirty.get(key)
            if dirty is not None:
                return dirty[0]
            return await self._load(key)
        return await self._get(key)

    async def put_identity(self, address: str, key: bytes) -> None:
        k = (self._slot, IDENTITY, v.address(address))
        value = v.fixed(key, "identity key", 32)
        if self._slow_path():
            self._write_now(k, value, await self._before_write())
        else:
            self._write_now(k, value, None)

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_keys(items, "identities")
        t = await self._before_write()
        slot = self._slot
        self._write_many((((slot, IDENTITY, a), k) for a, k in checked.items()), t)

    async def delete_identity(self, address: str) -> None:
        key = (self._slot, IDENTITY, v.address(address))
        self._write_now(key, None, await self._before_write())

    # -- sender keys ------------------------------------------------------------
    async def get_sender_key(self, address: str) -> bytes | None:
        return await self._get((self._slot, SENDER_KEY, v.address(address, "sender key address")))

    async def put_sender_key(self, address: str, record: bytes) -> None:
        key = (self._slot, SENDER_KEY, v.address(address, "sender key address"))
        value = v.blob(record, "sender key record")
        self._write_now(key, value, await self._before_write())

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_records(items, "sender keys")
        t = await self._before_write()
        slot = self._slot
        self._write_many((((slot, SENDER_KEY, a), r) for a, r in checked.items()), t)

    async def delete_sender_key(self, address: str) -> None:
        key = (self._slot, SENDER_KEY, v.address(address, "sender key address"))
        self._write_now(key, None, await self._before_write())

    # -- pre-keys: consumption is buffered with the sessions ------------------
    async def remove_prekey(self, id: int) -> None:
        """Consume a pre-key: it goes in the flush that stores the session built from it."""
        id = v.prekey_id(id)
        t = await self._before_write()
        with self._lock:
            self._seq += 1
            if t is not None:
                t.frames[-1].prekeys[id] = (True, self._seq)
                return
            self._consumed_prekeys[id] = self._seq
        self._notify()

    def _consumed(self, id: int) -> bool:
        t = self._own_txn() if _TXNS.get() else None
        if t is not None:
            state = t.prekey(id)
            if state is not None:
                return state
        return id in self._consumed_prekeys

    async def load_prekey(self, id: int) -> bytes | None:
        id = v.prekey_id(id)
        if self._consumed(id):
            return None
        return await self._b.load_prekey(id)

    async def load_prekeys_batch(self, ids: Sequence[int]) -> dict[int, bytes]:
        wanted = [i for i in v.prekey_ids(ids) if not self._consumed(i)]
        return await self._b.load_prekeys_batch(wanted) if wanted else {}

    def _restored(self, ids: Iterable[int], t: _Txn | None) -> None:
        """Pre-keys stored again: no longer consumed."""
        with self._lock:
            if t is None:
                for i in ids:
                    self._consumed_prekeys.pop(i, None)
                return
            frame = t.frames[-1]
            for i in ids:
                self._seq += 1
                frame.prekeys[i] = (False, self._seq)

    async def store_prekey(self, id: int, record: bytes, uploaded: bool) -> None:
        id = v.prekey_id(id)
        t = self._own_txn()
        if t is None:
            self._refuse_foreign("storing a pre-key")
        await self._b.store_prekey(id, record, uploaded)
        self._restored((id,), t)

    async def store_prekeys_batch(self, items: Sequence[tuple[int, bytes]], uploaded: bool) -> None:
        checked = v.prekey_records(items)
        t = self._own_txn()
        if t is None:
            self._refuse_foreign("storing pre-keys")
        await self._b.store_prekeys_batch(list(checked.items()), uploaded)
        self._restored(checked, t)

    async def load_unuploaded_prekeys(self, limit: int) -> list[tuple[int, bytes]]:
        await self.flush()
        return await self._b.load_unuploaded_prekeys(limit)

    async def mark_prekeys_uploaded(self, ids: Sequence[int]) -> None:
        await self._b.mark_prekeys_uploaded(ids)

    async def get_max_prekey_id(self) -> int:
        await self.flush()
        return await self._b.get_max_prekey_id()

    async def count_prekeys(self) -> tuple[int, int]:
        await self.flush()
        return await self._b.count_prekeys()

    # -- signed pre-keys: rare, written through --------------------------------
    async def store_signed_prekey(self, id: int, record: bytes) -> None:
        await self._b.store_signed_prekey(id, record)

    async def load_signed_prekey(self, id: int) -> bytes | None:
        return await self._b.load_signed_prekey(id)

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        return await self._b.load_all_signed_prekeys()

    async def remove_signed_prekey(self, id: int) -> None:
        await self._b.remove_signed_prekey(id)

    async def snapshot_db(self, name: str, extra: bytes | None = None) -> str:
        """Flush, then the backend's debug snapshot (so that it holds the buffered writes)."""
        await self.flush()
        return await self._b.snapshot_db(name, extra)

    # -- transactions -----------------------------------------------------------
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Open the backend's transaction; the cached writes of the block belong to it.

        See :mod:`wastore.cache`: they are written into the backend transaction when
        the outermost block exits normally, and dropped if it (or, for a nested
        block, that block) raises.

        Raises:
            StoreError: the running task is inside a transaction opened on a backend
                directly.
        """
        t = self._own_txn()
        if t is not None:  # nested: a savepoint of the backend transaction
            frame = _Frame()
            t.frames.append(frame)
            try:
                async with self._b.transaction():
                    yield
            except BaseException:
                t.frames.remove(frame)
                raise
            t.frames.remove(frame)
            t.frames[-1].absorb(frame)
            return
        self._refuse_foreign("a transaction")
        if self._inside_other_txn():
            raise self._started_inside_error()
        async with self._flush_lock:
            t = _Txn(self)
            token = _TXNS.set((*_TXNS.get(), t))
            try:
                async with self._b.transaction():
                    yield
                    # The block is done: its cached writes go into the same commit.
                    consumed = [i for i, (gone, _) in t.prekeys().items() if gone]
                    await self._write_entries(t.writes().items(), consumed)
            finally:
                frame = t.frames[0]
                t.frames.clear()
                _TXNS.reset(token)
            self._install(frame)

    def _install(self, frame: _Frame) -> None:
        """After the commit of an outermost transaction: its writes are the committed
        values (unless another task wrote a key again since), and what flushes inside
        it wrote is clean. Synchronous and under the lock, so that readers (on any
        thread) see the whole commit at once."""
        with self._lock:
            self._install_locked(frame)

    def _install_locked(self, frame: _Frame) -> None:
        # A load that ran beside the transaction may have read what it replaced.
        self._removals += 1
        self._cleaned += 1
        dirty = self._dirty
        budget = self._budget
        for key, (value, seq) in frame.writes.items():
            newer = dirty.get(key)
            if newer is not None:
                if newer[1] > seq:
                    continue  # written again outside the transaction: that stays dirty
                del dirty[key]
                budget.used -= _cost(key, newer[0])
            self._put_clean(key, value)
        for key, written in frame.flushed.items():
            if dirty.get(key) is written:
                del dirty[key]
                self._clean[key] = written[0]
                self._clean_keys.add(key)
        consumed = self._consumed_prekeys
        for i, (_, seq) in frame.prekeys.items():
            if consumed.get(i, seq) < seq:
                del consumed[i]
        for i, seq in frame.flushed_prekeys.items():
            if consumed.get(i) == seq:
                del consumed[i]
        self._grew()
        self._trim()

    async def close(self) -> None:
        """Stop the flusher, flush, and give the clean entries' memory back to the budget.

        Raises the flush's error (then the entries stay, dirty, for a later flush).
        """
        await self.stop_flusher()
        await self.flush()
        self._release()

    def drop(self) -> None:
        """Forget everything, flushed or not (what a crash does; for tests, resets and
        deleted accounts)."""
        self._release()
        budget = self._budget
        with self._lock:
            for key, (value, _) in self._dirty.items():
                budget.used -= _cost(key, value)
            self._dirty.clear()
            self._cleaned += 1
            self._consumed_prekeys.clear()
            self._account_checked = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        # Everything else of the Backend (app state, protocol, device) goes straight
        # to the backend.
        return getattr(self._b, name)
