"""One account's Signal store for synchronous callers: :class:`SyncSignal`.

See :mod:`wastore.interop.bridge` for the model.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from ...cache import IDENTITY, SENDER_KEY, SESSION, SignalCache
from ...contract import Backend
from ...manager import PersistenceManager
from .loop import LoopBridge

T = TypeVar("T")


class SyncSignal:
    """One account's Signal store for synchronous callers, served on their own thread
    when that needs no event loop.

    The sessions, identities, sender keys and pre-key consumption of a Signal
    library that calls its store synchronously go through here. When the
    account has a :class:`~wastore.cache.SignalCache`:

    - a read the cache holds (a hit, a known absence, a buffered write) is
      answered on the calling thread (:meth:`SignalCache.peek`);
    - a write is buffered on the calling thread (:meth:`SignalCache.buffer`),
      with exactly the cache's semantics: dirty, seen by every reader at once,
      durable once a flush commits it;
    - everything else — a miss, a write the cache must handle on its loop (the
      first write of the account, back-pressure at a bound), any call inside a
      :meth:`LoopBridge.held` block (a transaction), and :meth:`flush` — is one
      blocking :meth:`LoopBridge.call`.

    :meth:`flush` is the durability barrier, as ``await pm.flush()``: one hop
    to the loop that commits every buffered write, or none when nothing is
    pending (every write made before it was committed already, for instance by
    the cache's flusher). Without a cache every call is a hop and commits on
    its own, as the backend does.

    Calls from several threads at once are safe (the cache's state is guarded
    by its budget's lock; see :mod:`wastore.cache`). On the loop's own thread
    every method raises :class:`WrongThreadError`, hit or miss.

    Args:
        bridge: the bridge to the loop that runs the account.
        store: the account's :class:`~wastore.PersistenceManager` (its Signal
            store, through its cache when it has one; :meth:`flush` also saves
            the device row), a :class:`~wastore.cache.SignalCache`, or a backend
            (no cache: every call commits on its own).
    """

    __slots__ = ("_bridge", "_cache", "_pm", "_signal")

    def __init__(self, bridge: LoopBridge, store: PersistenceManager | SignalCache | Backend):
        self._bridge = bridge
        self._pm: PersistenceManager | None = None
        self._signal: SignalCache | Backend
        if isinstance(store, PersistenceManager):
            self._pm = store
            self._signal = store.signal
            self._cache = store.signal_cache
        else:
            self._signal = store
            self._cache = store if isinstance(store, SignalCache) else None

    def __repr__(self) -> str:
        through = "SignalCache" if self._cache is not None else "backend"
        return f"SyncSignal(device_id={self._signal.device_id}, through={through})"

    @property
    def bridge(self) -> LoopBridge:
        return self._bridge

    @property
    def signal(self) -> SignalCache | Backend:
        """The async Signal store behind it (use it through :meth:`call`)."""
        return self._signal

    @property
    def cache(self) -> SignalCache | None:
        return self._cache

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it (:meth:`LoopBridge.call`)."""
        return self._bridge.call(coro)

    def _here(self) -> SignalCache | None:
        """The cache, when this call may be served on the calling thread."""
        cache = self._cache
        if cache is not None and self._bridge.may_bypass():
            return cache
        return None

    def _get(self, kind: int, address: str) -> bytes | None:
        cache = self._here()
        if cache is not None:
            found, value = cache.peek(kind, address)
            if found:
                return value
        signal = self._signal
        if kind == SESSION:
            return self._bridge.call(signal.get_session(address))
        if kind == IDENTITY:
            return self._bridge.call(signal.load_identity(address))
        return self._bridge.call(signal.get_sender_key(address))

    def _put(self, kind: int, address: str, record: bytes | None) -> None:
        cache = self._here()
        if cache is not None and cache.buffer(kind, address, record):
            return
        signal = self._signal
        if kind == SESSION:
            coro = (
                signal.delete_session(address)
                if record is None
                else signal.put_session(address, record)
            )
        elif kind == IDENTITY:
            coro = (
                signal.delete_identity(address)
                if record is None
                else signal.put_identity(address, record)
            )
        else:
            coro = (
                signal.delete_sender_key(address)
                if record is None
                else signal.put_sender_key(address, record)
            )
        self._bridge.call(coro)

    # -- sessions ------------------------------------------------------------
    def get_session(self, address: str) -> bytes | None:
        """The session record of ``address``, or None."""
        return self._get(SESSION, address)

    def has_session(self, address: str) -> bool:
        return self._get(SESSION, address) is not None

    def put_session(self, address: str, record: bytes) -> None:
        self._put(SESSION, address, record)

    def delete_session(self, address: str) -> None:
        self._put(SESSION, address, None)

    # -- identities ------------------------------------------------------------
    def load_identity(self, address: str) -> bytes | None:
        """The 32-byte identity key of ``address``, or None."""
        return self._get(IDENTITY, address)

    def put_identity(self, address: str, key: bytes) -> None:
        self._put(IDENTITY, address, key)

    def delete_identity(self, address: str) -> None:
        self._put(IDENTITY, address, None)

    # -- sender keys ----------------------------------------------------------
    def get_sender_key(self, address: str) -> bytes | None:
        """The sender key record at ``"{group}::{sender}"``, or None."""
        return self._get(SENDER_KEY, address)

    def put_sender_key(self, address: str, record: bytes) -> None:
        self._put(SENDER_KEY, address, record)

    def delete_sender_key(self, address: str) -> None:
        self._put(SENDER_KEY, address, None)

    # -- pre-keys --------------------------------------------------------------
    def remove_prekey(self, id: int) -> None:
        """Consume a pre-key (through a cache: committed by the flush that commits the
        session built from it, never before)."""
        cache = self._here()
        if cache is not None and cache.consume_prekey(id):
            return
        self._bridge.call(self._signal.remove_prekey(id))

    # -- durability --------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """True while something waits for :meth:`flush`: buffered Signal writes, or the
        manager's device changes."""
        cache = self._cache
        if cache is not None and cache.pending:
            return True
        return self._pm is not None and self._pm.is_dirty

    def flush(self) -> None:
        """Commit every buffered write (and the manager's device row): the durability
        barrier before a message goes on the wire or is acknowledged.

        One hop to the loop, or none when nothing is pending. Inside a
        :meth:`LoopBridge.held` block it flushes into the block's transaction.
        """
        if self._bridge.may_bypass() and not self.pending:
            return
        self._bridge.call(self._flush())

    async def aflush(self) -> None:
        """:meth:`flush` for a coroutine on another event loop: it awaits the flush
        without blocking that loop."""
        if not self.pending:
            return
        await self._bridge.acall(self._flush())

    async def _flush(self) -> None:
        if self._pm is not None:
            await self._pm.flush()
        elif self._cache is not None:
            await self._cache.flush()
