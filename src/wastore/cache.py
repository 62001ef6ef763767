"""SignalCache: a write-back cache for sessions, identities and sender keys.

A client touches the Signal store on every message; through the cache those
touches are dictionary operations, and the database sees one transaction per
flush instead of one per message.

The durability model:

- Reads are served from memory after the first load; absent records are
  cached too (negative entries).
- Writes and deletes go to memory (a delete leaves a tombstone) and are seen
  by reads at once. They are **not durable** until a flush commits them.
- :meth:`SignalCache.flush` writes every dirty entry in one transaction of the
  backend (one batch per kind), and clears an entry's dirtiness only after the
  commit — and only if it was not written again meanwhile. A failed flush
  keeps everything dirty, so a later flush retries it.
- The flusher task (started by :meth:`start_flusher`, which the
  PersistenceManager's saver does) flushes ~25 ms after the first write of a
  burst, coalescing everything written in the window into one commit.
- ``await cache.flush()`` is the durability barrier: a client awaits it after
  encrypting and before it puts the ciphertext on the wire, and after
  decrypting and before it acknowledges the message to the server. Then a
  crash can never leave a ratchet advanced on the wire but not on disk.
- Pre-keys consumed through the cache (:meth:`remove_prekey`) are removed in
  the same transaction that stores the session built from them, so a pre-key
  disappears only together with (never before) that session.
- Eviction (above ``max_entries``) drops the least recently used *clean*
  entries only; a dirty entry stays until it is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from . import _validate as v
from .contract import Backend
from .errors import ValidationError

log = logging.getLogger("wastore.cache")

SESSION: Final = 0
IDENTITY: Final = 1
SENDER_KEY: Final = 2
_KIND_NAMES: Final = ("session", "identity", "sender key")

Key = tuple[int, str]

DEFAULT_MAX_ENTRIES: Final = 10_000
DEFAULT_FLUSH_WINDOW: Final = 0.025
_MISSING: Final[Any] = object()


class SignalCache:
    """Write-back cache over one account's backend (see the module docstring).

    Methods not about sessions, identities, sender keys or pre-key consumption
    are passed to the backend (after a flush where their answer depends on
    buffered writes).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        flush_window: float = DEFAULT_FLUSH_WINDOW,
    ) -> None:
        self._b = backend
        self._max = v.integer(max_entries, "max_entries", 1)
        if not flush_window >= 0:
            raise ValidationError("flush_window must be >= 0 seconds")
        self._window = float(flush_window)
        # (kind, address) -> record, or None for "known absent" / tombstone
        self._entries: OrderedDict[Key, bytes | None] = OrderedDict()
        # dirty keys -> write sequence number of their latest write
        self._dirty: dict[Key, int] = {}
        self._consumed_prekeys: dict[int, int] = {}
        self._seq = 0
        # Counts the times entries were dropped (eviction, per-user delete, drop):
        # a load that was in flight meanwhile must not cache what it read.
        self._removals = 0
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._woken = False  # _wake was set since the flusher last cleared it
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False
        self.flushes = 0
        self.failed_flushes = 0

    def __repr__(self) -> str:
        return (
            f"SignalCache(device_id={self._b.device_id}, entries={len(self._entries)}, "
            f"dirty={len(self._dirty) + len(self._consumed_prekeys)})"
        )

    # -- introspection -------------------------------------------------------
    @property
    def backend(self) -> Backend:
        return self._b

    @property
    def device_id(self) -> int:
        return self._b.device_id

    @property
    def dirty_count(self) -> int:
        """Buffered writes not yet committed (entries plus consumed pre-keys)."""
        return len(self._dirty) + len(self._consumed_prekeys)

    def __len__(self) -> int:
        return len(self._entries)

    def is_dirty(self, kind: int, address: str) -> bool:
        return (kind, address) in self._dirty

    # -- core ----------------------------------------------------------------
    # These run on every Signal operation of the client: one dictionary probe per
    # read, no method call that can be avoided.
    def _touch(self, key: Key) -> bool:
        """True (and mark recently used) if ``key`` is cached."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return True
        return False

    def _notify(self) -> None:
        if not self._woken:
            self._woken = True
            self._wake.set()

    def _write(self, key: Key, value: bytes | None) -> None:
        self._seq = seq = self._seq + 1
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        self._dirty[key] = seq
        if not self._woken:
            self._woken = True
            self._wake.set()
        if len(entries) > self._max:
            self._evict()

    def _fill(self, key: Key, value: bytes | None, removals: int) -> bytes | None:
        """Cache a value loaded from the backend, unless the key was written meanwhile.

        ``removals`` is :attr:`_removals` as it was when the load started: if entries
        were dropped since (evicted after a flush, or deleted per user), the loaded
        value may be older than what the backend holds now, so it is not cached.
        """
        if key in self._entries:  # a write (or another load) won the race
            return self._entries[key]
        if removals != self._removals:
            return value
        self._entries[key] = value
        if len(self._entries) > self._max:
            self._evict()
        return value

    def _evict(self) -> None:
        excess = len(self._entries) - self._max
        if excess <= 0:
            return
        doomed = []
        for key in self._entries:
            if key not in self._dirty:
                doomed.append(key)
                if len(doomed) >= excess:
                    break
        if doomed:
            self._removals += 1
        for key in doomed:
            del self._entries[key]

    async def _get(self, kind: int, address: str) -> bytes | None:
        key = (kind, address)
        entries = self._entries
        value = entries.get(key, _MISSING)
        if value is not _MISSING:
            entries.move_to_end(key)
            cached: bytes | None = value
            return cached
        return await self._load(key)

    async def _load(self, key: Key) -> bytes | None:
        kind, address = key
        removals = self._removals
        if kind == SESSION:
            value = await self._b.get_session(address)
        elif kind == IDENTITY:
            value = await self._b.load_identity(address)
        else:
            value = await self._b.get_sender_key(address)
        return self._fill(key, value, removals)

    # -- sessions -------------------------------------------------------------
    async def get_session(self, address: str) -> bytes | None:
        key = (SESSION, v.address(address))
        entries = self._entries
        value = entries.get(key, _MISSING)  # _get(), inlined: the hottest read
        if value is not _MISSING:
            entries.move_to_end(key)
            cached: bytes | None = value
            return cached
        return await self._load(key)

    async def get_sessions(self, addresses: Sequence[str]) -> dict[str, bytes]:
        wanted = v.address_list(addresses)
        out: dict[str, bytes] = {}
        missing: list[str] = []
        for a in wanted:
            key = (SESSION, a)
            if self._touch(key):
                value = self._entries[key]
                if value is not None:
                    out[a] = value
            else:
                missing.append(a)
        if missing:
            removals = self._removals
            loaded = await self._b.get_sessions(missing)
            for a in missing:
                value = self._fill((SESSION, a), loaded.get(a), removals)
                if value is not None:
                    out[a] = value
        return out

    async def put_session(self, address: str, record: bytes) -> None:
        key = (SESSION, v.address(address))
        value = v.blob(record, "session record")
        self._seq = seq = self._seq + 1  # _write(), inlined: the hottest write
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        self._dirty[key] = seq
        if not self._woken:
            self._woken = True
            self._wake.set()
        if len(entries) > self._max:
            self._evict()

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        for a, r in v.address_records(items, "sessions").items():
            self._write((SESSION, a), r)

    async def delete_session(self, address: str) -> None:
        self._write((SESSION, v.address(address)), None)

    async def has_session(self, address: str) -> bool:
        return await self.get_session(address) is not None

    # -- identities -------------------------------------------------------------
    async def load_identity(self, address: str) -> bytes | None:
        key = (IDENTITY, v.address(address))
        entries = self._entries
        value = entries.get(key, _MISSING)  # _get(), inlined
        if value is not _MISSING:
            entries.move_to_end(key)
            cached: bytes | None = value
            return cached
        return await self._load(key)

    async def put_identity(self, address: str, key: bytes) -> None:
        self._write((IDENTITY, v.address(address)), v.fixed(key, "identity key", 32))

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        for a, k in v.address_keys(items, "identities").items():
            self._write((IDENTITY, a), k)

    async def delete_identity(self, address: str) -> None:
        self._write((IDENTITY, v.address(address)), None)

    # -- sender keys ------------------------------------------------------------
    async def get_sender_key(self, address: str) -> bytes | None:
        return await self._get(SENDER_KEY, v.address(address, "sender key address"))

    async def put_sender_key(self, address: str, record: bytes) -> None:
        self._write(
            (SENDER_KEY, v.address(address, "sender key address")),
            v.blob(record, "sender key record"),
        )

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        for a, r in v.address_records(items, "sender keys").items():
            self._write((SENDER_KEY, a), r)

    async def delete_sender_key(self, address: str) -> None:
        self._write((SENDER_KEY, v.address(address, "sender key address")), None)

    # -- per-user state (identity change) -------------------------------------
    async def has_signal_state_for_user(self, user: str) -> bool:
        user = v.user(user)
        await self.flush()
        return await self._b.has_signal_state_for_user(user)

    async def delete_signal_state_for_user(self, user: str) -> int:
        """Flush, delete in the backend, and forget the user's cached entries."""
        from .backends._common import sender_key_user_matches, user_matches

        user = v.user(user)
        await self.flush()
        n = await self._b.delete_signal_state_for_user(user)
        self._removals += 1
        for key in [
            k
            for k in self._entries
            if k not in self._dirty
            and (
                sender_key_user_matches(k[1], user)
                if k[0] == SENDER_KEY
                else user_matches(k[1], user)
            )
        ]:
            del self._entries[key]
        return n

    # -- pre-keys: consumption is buffered with the sessions ------------------
    async def remove_prekey(self, id: int) -> None:
        """Consume a pre-key: it goes in the flush that stores the session built from it."""
        id = v.prekey_id(id)
        self._seq += 1
        self._consumed_prekeys[id] = self._seq
        self._notify()

    async def load_prekey(self, id: int) -> bytes | None:
        id = v.prekey_id(id)
        if id in self._consumed_prekeys:
            return None
        return await self._b.load_prekey(id)

    async def load_prekeys_batch(self, ids: Sequence[int]) -> dict[int, bytes]:
        wanted = [i for i in v.prekey_ids(ids) if i not in self._consumed_prekeys]
        return await self._b.load_prekeys_batch(wanted) if wanted else {}

    async def store_prekey(self, id: int, record: bytes, uploaded: bool) -> None:
        id = v.prekey_id(id)
        await self._b.store_prekey(id, record, uploaded)
        self._consumed_prekeys.pop(id, None)

    async def store_prekeys_batch(self, items: Sequence[tuple[int, bytes]], uploaded: bool) -> None:
        checked = v.prekey_records(items)
        await self._b.store_prekeys_batch(list(checked.items()), uploaded)
        for i in checked:
            self._consumed_prekeys.pop(i, None)

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

    # -- flushing -------------------------------------------------------------
    async def flush(self) -> None:
        """Commit every buffered write in one backend transaction.

        Raises the backend's error on failure; then nothing is marked clean and
        the next flush retries everything.
        """
        async with self._flush_lock:
            if not self._dirty and not self._consumed_prekeys:
                return
            taken = dict(self._dirty)
            consumed = dict(self._consumed_prekeys)
            puts: tuple[list[tuple[str, bytes]], ...] = ([], [], [])
            deletes: tuple[list[str], ...] = ([], [], [])
            for key in taken:
                value = self._entries.get(key)
                if value is None:
                    deletes[key[0]].append(key[1])
                else:
                    puts[key[0]].append((key[1], value))
            b = self._b
            try:
                async with b.transaction():
                    if puts[SESSION]:
                        await b.put_sessions_batch(puts[SESSION])
                    if puts[IDENTITY]:
                        await b.put_identities_batch(puts[IDENTITY])
                    if puts[SENDER_KEY]:
                        await b.put_sender_keys_batch(puts[SENDER_KEY])
                    for a in deletes[SESSION]:
                        await b.delete_session(a)
                    for a in deletes[IDENTITY]:
                        await b.delete_identity(a)
                    for a in deletes[SENDER_KEY]:
                        await b.delete_sender_key(a)
                    for i in consumed:
                        await b.remove_prekey(i)
            except BaseException:
                self.failed_flushes += 1
                raise
            # Committed: clean what was not written again while we flushed.
            for key, seq in taken.items():
                if self._dirty.get(key) == seq:
                    del self._dirty[key]
            for i, seq in consumed.items():
                if self._consumed_prekeys.get(i) == seq:
                    del self._consumed_prekeys[i]
            self.flushes += 1
            if len(self._entries) > self._max:
                self._evict()

    def start_flusher(self) -> None:
        """Start the coalescing flusher task (idempotent)."""
        if self._flusher is not None and not self._flusher.done():
            return
        self._stopping = False
        self._flusher = asyncio.create_task(
            self._flusher_loop(), name=f"wastore-cache-flusher-{self.device_id}"
        )

    async def stop_flusher(self) -> None:
        """Stop the flusher (it does not flush on the way out; call :meth:`flush`)."""
        self._stopping = True
        self._wake.set()
        task, self._flusher = self._flusher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def flusher_running(self) -> bool:
        return self._flusher is not None and not self._flusher.done()

    async def _flusher_loop(self) -> None:
        failures = 0
        while not self._stopping:
            await self._wake.wait()
            if self._stopping:
                return
            if self._window:
                await asyncio.sleep(self._window)  # coalesce the burst
            self._woken = False
            self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as err:
                failures += 1
                delay = min(5.0, 0.05 * 2 ** min(failures, 7))
                log.warning(
                    "account %s: cache flush failed (%d in a row), retrying in %.2fs: %s: %s",
                    self.device_id,
                    failures,
                    delay,
                    type(err).__name__,
                    err,
                )
                self._notify()
                await asyncio.sleep(delay)

    async def close(self) -> None:
        """Stop the flusher and flush."""
        await self.stop_flusher()
        await self.flush()

    def drop(self) -> None:
        """Forget everything, flushed or not (what a crash does; for tests and resets)."""
        self._removals += 1
        self._entries.clear()
        self._dirty.clear()
        self._consumed_prekeys.clear()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        # Everything else of the Backend (app state, protocol, device, transaction)
        # goes straight to the backend.
        return getattr(self._b, name)
