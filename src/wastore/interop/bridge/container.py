"""A store driven from synchronous code: :class:`EventLoopThread` (an event loop on a
background thread) and :class:`SyncContainer` (a container opened on one).

See :mod:`wastore.interop.bridge` for the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from ...contract import Container
from ...errors import StoreError
from ...jid import JID
from ...manager import PersistenceManager
from ...registry import open_store
from .loop import DEFAULT_TIMEOUT, LoopBridge, WrongThreadError

T = TypeVar("T")

_CLEANUP_ROUNDS = 8
"""Rounds of cancelling what is left on a stopping loop before it is closed."""


class EventLoopThread:
    """An asyncio event loop running on a background thread until :meth:`stop`.

    The thread is a daemon, so a forgotten :meth:`stop` does not keep the
    interpreter alive — but anything not flushed by then is lost: close what
    runs on it first.
    """

    def __init__(self, name: str = "wastore-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop_lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                # Cancel until nothing is left: a call that another thread makes while
                # the cancelled tasks finish starts a task after the first snapshot.
                for _ in range(_CLEANUP_ROUNDS):
                    tasks = asyncio.all_tasks(loop)
                    if not tasks:
                        break
                    for task in tasks:
                        task.cancel()
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    def stop(self) -> None:
        """Stop the loop (cancelling what still runs on it) and join the thread.

        Safe to call twice. Raises :class:`WrongThreadError` on the loop's thread.
        """
        if threading.current_thread() is self._thread:
            raise WrongThreadError("an EventLoopThread cannot be stopped from its own thread")
        with self._stop_lock:  # one stop only: a second would cut the cleanup short
            first, self._stopping = not self._stopping, True
        if first and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EventLoopThread({self._thread.name!r}, {state})"


class _Closeable(Protocol):
    def close(self) -> None: ...


class SyncContainer:
    """A wastore :class:`~wastore.Container` driven from synchronous code.

    Open it with :meth:`open`: it starts an :class:`EventLoopThread`, opens the
    store on it and keeps it there until :meth:`close`. Its methods block the
    calling thread while that loop does the work, so they may be called from
    any thread but the loop's — including from inside another event loop, for
    the duration of one database round trip::

        with SyncContainer.open("sqlite:///wa.db") as container:
            device_id = container.first_device()
            manager = container.open_manager(device_id)

    Accounts opened through it (client adapters register theirs) are closed
    before the store when it is closed.
    """

    def __init__(
        self, thread: EventLoopThread, container: Container, timeout: float | None
    ) -> None:
        self._thread = thread
        self._container = container
        self._bridge = LoopBridge(thread.loop, timeout)
        self._timeout = timeout
        self._open: list[_Closeable] = []
        self._lock = threading.Lock()
        self._closed = False
        self._closer: threading.Thread | None = None  # the thread that runs close()
        self._closed_all = threading.Event()  # close() has finished

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> Self:
        """Open the store at ``url`` (see :func:`wastore.open_store`) on a new loop thread.

        Args:
            url: a store URL or an SQLite path.
            timeout: seconds one blocking call may take (None: no limit).
            options: passed to :func:`wastore.open_store`.

        Raises:
            ConfigError: a bad URL or option (see :func:`wastore.open_store`).
            BackendUnavailableError: the database cannot be reached.
        """
        thread = EventLoopThread()
        bridge = LoopBridge(thread.loop, timeout)
        try:
            container = bridge.call(open_store(url, **options))
        except BaseException:
            thread.stop()
            raise
        return cls(thread, container, timeout)

    @property
    def container(self) -> Container:
        """The async container (use it through :meth:`run`)."""
        return self._container

    @property
    def bridge(self) -> LoopBridge:
        """The bridge to the container's loop."""
        return self._bridge

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._thread.loop

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @property
    def closed(self) -> bool:
        return self._closed

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the container's loop and return its result."""
        if self._closed:
            coro.close()
            raise StoreError("this SyncContainer is closed")
        return self._bridge.call(coro)

    def create_device(self) -> int:
        """Create an account with fresh keys; return its device id."""
        return self.run(self._container.create_device())

    def devices(self) -> list[int]:
        return self.run(self._container.devices())

    def find_device(self, jid: JID | str) -> int | None:
        return self.run(self._container.find_device(jid))

    def first_device(self) -> int:
        """The store's only account; a new one in an empty store.

        Raises:
            ConfigError: the store holds several accounts (the message names them).
        """
        return self.run(self._container.first_device())

    def open_manager(
        self,
        device_id: int,
        *,
        signal_cache: bool = False,
        background_saver: float | None = None,
        **manager_options: Any,
    ) -> PersistenceManager:
        """Open one account's :class:`~wastore.PersistenceManager` on the container's loop.

        The manager lives on that loop: use it through :meth:`run`, and close
        it with ``run(manager.close())``.

        Args:
            device_id: the account.
            signal_cache: put a write-back SignalCache in front of its Signal store.
            background_saver: also run the manager's background saver with this
                interval in seconds (None: no saver).
            manager_options: passed to :meth:`wastore.PersistenceManager.open`
                (``lease``, ``lease_ttl``, ``holder``, ...).

        Raises:
            AccountInUseError: another live process (or holder) serves the account.
        """
        return self.run(
            self._open_manager(device_id, signal_cache, background_saver, manager_options)
        )

    async def _open_manager(
        self,
        device_id: int,
        signal_cache: bool,
        background_saver: float | None,
        options: dict[str, Any],
    ) -> PersistenceManager:
        pm = await PersistenceManager.open(
            self._container.backend(device_id), signal_cache=signal_cache, **options
        )
        if background_saver is not None:
            try:
                pm.run_background_saver(background_saver)
            except BaseException:
                await pm.close()
                raise
        return pm

    def track(self, account: _Closeable) -> None:
        """Close ``account`` (anything with a blocking ``close()``) before the store."""
        with self._lock:
            self._open.append(account)

    def forget(self, account: _Closeable) -> None:
        """Stop tracking ``account`` (it closed itself)."""
        with self._lock, contextlib.suppress(ValueError):
            self._open.remove(account)

    def close(self) -> None:
        """Close every tracked account (flushing it), then the store, then the loop thread.

        Safe to call twice, and from several threads at once: the others wait until
        the first has closed everything. Raises the first error met, after closing
        everything.

        Raises:
            WrongThreadError: called on the container's own loop thread.
            StoreError: called inside a :meth:`LoopBridge.held` block of this thread
                (closing waits for the block's transaction: it would wait for itself).
        """
        if self._bridge.on_loop_thread():
            raise WrongThreadError(
                "a SyncContainer cannot be closed from its own event loop (closing blocks "
                "until that loop has closed the store); close it from another thread"
            )
        if self._bridge._scope() is not None:
            raise StoreError(
                "a SyncContainer cannot be closed inside a transaction block (`with "
                "bridge.held(...)`); close it after the block"
            )
        with self._lock:
            closer = self._closer
            if closer is None:
                self._closer = threading.current_thread()
        if closer is not None:
            if closer is not threading.current_thread():  # not from inside close() itself
                self._closed_all.wait()
            return
        try:
            self._close_all()
        finally:
            self._closed_all.set()

    def _close_all(self) -> None:
        first: BaseException | None = None
        with self._lock:
            accounts = list(self._open)
        for account in accounts:
            try:
                account.close()
            except Exception as err:
                first = first or err
        self._closed = True
        try:
            self._bridge.call(self._container.close())
        except Exception as err:
            first = first or err
        finally:
            self._thread.stop()
        if first is not None:
            raise first

    def __enter__(self) -> SyncContainer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._open)} open accounts"
        return f"{type(self).__name__}({self._container!r}, {state})"
