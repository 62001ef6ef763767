"""SignalCache: a write-back cache for sessions, identities and sender keys.

A client touches the Signal store on every message; through the cache those
touches are dictionary operations, and the database sees one transaction per
flush instead of one per message.

The durability model:

- Reads are served from memory after the first load; absent records are
  cached too (negative entries). A read that hits the cache never awaits
  anything.
- Writes and deletes go to memory (a delete leaves a tombstone) and are seen
  by reads at once. They are **not durable** until a flush commits them.
- :meth:`SignalCache.flush` writes every dirty entry in one transaction of the
  backend (a batch per kind, in chunks of at most :data:`FLUSH_CHUNK` records and
  :data:`FLUSH_CHUNK_BYTES` bytes so that no single
  call holds the event loop for long), and clears an entry's dirtiness only
  after the commit — and only if it was not written again meanwhile. A failed
  flush keeps everything dirty, so a later flush retries it.
- The flusher task (started by :meth:`SignalCache.start_flusher`, which the
  PersistenceManager's saver does) flushes ~25 ms after the first write of a
  burst, coalescing everything written in the window into one commit.
- ``await cache.flush()`` is the durability barrier: a client awaits it after
  encrypting and before it puts the ciphertext on the wire, and after
  decrypting and before it acknowledges the message to the server. Then a
  crash can never leave a ratchet advanced on the wire but not on disk.
- Pre-keys consumed through the cache (:meth:`SignalCache.remove_prekey`) are
  removed in the same transaction that stores the session built from them, so
  a pre-key disappears only together with (never before) that session.

Transactions (:meth:`SignalCache.transaction`, also reached as
``pm.transaction()`` or ``pm.signal.transaction()``) open the backend's
transaction, and the cached writes made inside the block belong to it:

- They are seen at once by the task that owns the transaction, and by no
  other task before the commit.
- When the outermost block exits normally they are written into the backend
  transaction just before it commits, so they are durable together with the
  block's other writes (the decrypt path: the advanced session and
  ``store_pending_inbound`` in one commit). If the commit fails, nothing of the
  block is kept, in the database or in the cache.
- A block that raises drops its cached writes; a nested block that raises drops
  only its own (it is a savepoint of the backend transaction).
- ``flush()`` inside a transaction writes everything buffered (the block's
  writes and the writes made before it) into the transaction; those entries are
  marked clean only when the outermost block commits. If it rolls back they stay
  dirty, and a later flush writes them.
- Transactions of one cache and its flushes run one at a time (a flush waits
  for an open transaction, and the other way round), so a flush never writes
  an older value over a committed transaction.
- A cache refuses (:class:`~wastore.StoreError`) writes, flushes and
  ``transaction()`` inside a transaction of a wastore backend that the running
  task opened directly (``backend.transaction()``) rather than through the
  cache: the cache cannot learn whether that transaction commits, so its
  buffered writes could neither be dropped on rollback nor marked clean on
  commit. Open the transaction through the cache instead. (This check sees the
  transactions of wastore's own backends; the transactions of a third-party
  backend are invisible to it.)
- A task started inside a transaction (``asyncio.create_task``, ``gather``, and
  ``wait_for`` on Python 3.11) is another task: it neither sees the block's
  writes nor takes part in it, as with the backends. If the block awaits such
  a task while it flushes or opens a transaction of the same cache, the two
  wait for each other.

Bounds (every write and every eviction costs O(1), whatever the number of
entries, dirty or clean):

- ``max_entries`` (per cache, default 10,000): a write that finds that many
  dirty entries buffered flushes first (back-pressure), so the dirty entries of
  a cache stay bounded; and a cache holds at most that many entries, clean
  ones making room for dirty ones (an arbitrary clean entry of that cache goes:
  O(1), where finding its least recently used one would not be).
- A memory budget (:class:`CacheBudget`) shared by all the caches of one
  container bounds the bytes they hold together: when it is exceeded, the least
  recently used clean entries of any account go first; dirty entries are never
  evicted — a write that finds the budget exceeded flushes its own cache
  instead, and the flusher flushes within ~25 ms of a write anyway. A cache
  finds its container's budget through the backend's ``store`` attribute (the
  container, on the SQL backends); a backend without one shares the
  process-wide :meth:`CacheBudget.default` budget. Writes inside an open
  transaction are counted only once it has committed.

Synchronous callers (the caller's-thread path). A client whose Signal library
calls its store synchronously from another thread (python-axolotl, pywhats,
through :class:`wastore.interop.bridge.SyncSignal`) is served on its own thread
when no event loop is needed: :meth:`SignalCache.peek` answers a hit and
:meth:`SignalCache.buffer` buffers a write exactly as the async methods do, and
both return "not here" when the event loop has to act (a miss, the first write
of an account, a bound reached), so that the caller takes the async path. The
durability model is the same: such writes are dirty until a flush commits them.

Thread safety: the state of the caches of one budget (their entries, dirty
writes, consumed pre-keys, counters and the budget's shared list) is guarded by
one lock per :class:`CacheBudget`. It is held for dictionary operations only,
never across an ``await`` and never while waiting for anything else, by the
event loop (reads, writes, flushes, transactions, evictions) and by the
synchronous callers alike. The event loop is never blocked for longer than the
few dictionary operations another thread does under it. Transactions stay on
the event loop: a synchronous caller inside a transaction takes the async path.

The package, from the bottom (:class:`SignalCache` is one class, assembled from
the parts that build on ``entries``):

- ``budget``: what an entry is (kind, key) and costs, and :class:`CacheBudget`;
- ``txn``: the cached writes of each transaction block, and which task owns them;
- ``entries``: the state of a cache and the operations on its entries;
- ``flush``: the commit of the buffered writes, and the flusher task;
- ``sync_path``: :meth:`SignalCache.peek`, :meth:`SignalCache.buffer` and the
  rest of the caller's-thread path;
- ``per_user``: a user's Signal state over the buffered writes;
- ``signal_cache``: :class:`SignalCache` itself (sessions, identities, sender
  keys, pre-keys, transactions, its life cycle).
"""

from .budget import (
    DEFAULT_BUDGET_BYTES,
    ENTRY_OVERHEAD,
    IDENTITY,
    SENDER_KEY,
    SESSION,
    CacheBudget,
    Dirty,
    Key,
)
from .flush import DEFAULT_FLUSH_WINDOW, FLUSH_CHUNK, FLUSH_CHUNK_BYTES
from .signal_cache import DEFAULT_MAX_ENTRIES, SignalCache
from .txn import backend_transaction_open

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "DEFAULT_FLUSH_WINDOW",
    "DEFAULT_MAX_ENTRIES",
    "ENTRY_OVERHEAD",
    "FLUSH_CHUNK",
    "FLUSH_CHUNK_BYTES",
    "IDENTITY",
    "SENDER_KEY",
    "SESSION",
    "CacheBudget",
    "Dirty",
    "Key",
    "SignalCache",
    "backend_transaction_open",
]
