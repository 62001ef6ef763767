"""Calling wastore from synchronous code: the bridge every synchronous client adapter uses.

Signal libraries and clients such as python-axolotl and pywhats call their
stores synchronously — pywhats even from inside its own event loop — while
wastore is asyncio. The model is the one ``sqlite3`` offers an asyncio
program: the store lives on an event loop of its own, in another thread, and
each store call blocks the calling thread until that loop has done the work.

- :class:`LoopBridge` runs a coroutine on the loop that owns the store
  (``asyncio.run_coroutine_threadsafe(...).result()``) and waits for it. Every
  blocking store call of every adapter goes through :meth:`LoopBridge.call`.
  Called on the loop's own thread it would wait for a loop that cannot run,
  forever; it raises :class:`WrongThreadError` instead.
- :meth:`LoopBridge.held` keeps an async context manager — a backend
  transaction — open across several blocking calls: it is entered in a task
  of its own, the calls the thread makes meanwhile run inside that task (a
  backend ties a transaction to the task that opened it), and it is left with
  the outcome of the ``with`` block: commit, or roll back on an exception.
- :class:`SyncSignal` is one account's Signal store for synchronous callers,
  with a fast path: when the account has a
  :class:`~wastore.cache.SignalCache`, hits are answered and writes buffered on
  the caller's own thread, with no hop to the loop (the cache is thread-safe,
  see :mod:`wastore.cache`); a miss, a write the cache cannot take there, and
  a flush go through :meth:`LoopBridge.call` — one hop per flush, none when
  nothing waits to be flushed. The python-axolotl and pywhats adapters both
  use it.
- :class:`EventLoopThread` is an event loop on a background thread.
- :class:`SyncContainer` is a :class:`~wastore.Container` opened on an
  :class:`EventLoopThread`, with blocking methods; it opens accounts
  (:meth:`SyncContainer.open_manager`) and closes what is still open when it
  is closed. The python-axolotl adapter adds ``account()``; the pywhats
  client takes one as its store.

The package: ``loop`` holds :class:`LoopBridge` (and :class:`WrongThreadError`),
``sync_signal`` :class:`SyncSignal`, ``container`` :class:`EventLoopThread` and
:class:`SyncContainer`. Nothing here needs an optional extra.
"""

from .container import EventLoopThread, SyncContainer
from .loop import DEFAULT_TIMEOUT, LoopBridge, WrongThreadError
from .sync_signal import SyncSignal

__all__ = [
    "DEFAULT_TIMEOUT",
    "EventLoopThread",
    "LoopBridge",
    "SyncContainer",
    "SyncSignal",
    "WrongThreadError",
]
