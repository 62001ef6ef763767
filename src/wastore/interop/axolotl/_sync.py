"""``SyncContainer`` and ``SyncAccount``: wastore for synchronous programs.

The container, its connections and every account's manager live on one
:class:`EventLoopThread`; the methods here block the calling thread while that
loop does the work.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ...contract import Container
from ...device import Device
from ...jid import JID
from ...manager import PersistenceManager
from ...registry import open_store
from ._bridge import DEFAULT_TIMEOUT, EventLoopThread, LoopBridge
from ._store import AxolotlStore

T = TypeVar("T")


class SyncAccount:
    """One account opened by a :class:`SyncContainer`: its manager and its python-axolotl store.

    Use :attr:`store` with python-axolotl; :meth:`flush` is the durability
    barrier; :meth:`close` flushes and releases the account.
    """

    def __init__(self, owner: SyncContainer, manager: PersistenceManager, store: AxolotlStore):
        self._owner = owner
        self._pm = manager
        self._store = store
        self._closed = False

    @property
    def store(self) -> AxolotlStore:
        """The python-axolotl store of this account."""
        return self._store

    @property
    def manager(self) -> PersistenceManager:
        """The account's manager (async: use it through :meth:`run`)."""
        return self._pm

    @property
    def device_id(self) -> int:
        return self._pm.device_id

    @property
    def closed(self) -> bool:
        return self._closed

    def device(self) -> Device:
        """The account's device (a read-only snapshot)."""
        return self._pm.get_device_snapshot()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the container's loop, e.g.
        ``account.run(account.manager.process_command(wastore.SetPushName("bot")))``."""
        return self._owner.run(coro)

    def flush(self) -> None:
        """Commit buffered Signal writes and the device row."""
        self._store.flush()

    def close(self) -> None:
        """Flush, stop the saver and release the account lease. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._owner._forget(self)
        self._owner.run(self._pm.close())

    def __enter__(self) -> SyncAccount:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncAccount(device_id={self.device_id}{', closed' if self._closed else ''})"


class SyncContainer:
    """A wastore :class:`~wastore.Container` driven from synchronous code.

    Open it with :meth:`open`; it starts an event-loop thread, opens the store
    on it and keeps it there until :meth:`close`::

        with SyncContainer.open("sqlite:///wa.db") as container:
            account = container.account(container.create_device())
            cipher = SessionCipher(account.store, account.store, account.store,
                                   account.store, name, 0)
    """

    def __init__(
        self, thread: EventLoopThread, container: Container, timeout: float | None
    ) -> None:
        self._thread = thread
        self._container = container
        self._bridge = LoopBridge(thread.loop, timeout)
        self._timeout = timeout
        self._accounts: list[SyncAccount] = []
        self._closed = False

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> SyncContainer:
        """Open the store at ``url`` (see :func:`wastore.open_store`) on a new loop thread.

        Args:
            url: a store URL or an SQLite path.
            timeout: seconds one blocking call may take (None: no limit).
            options: passed to :func:`wastore.open_store`.
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
    def closed(self) -> bool:
        return self._closed

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the container's loop and return its result."""
        return self._bridge.call(coro)

    def create_device(self) -> int:
        """Create an account with fresh keys; return its device id."""
        return self.run(self._container.create_device())

    def devices(self) -> list[int]:
        return self.run(self._container.devices())

    def find_device(self, jid: JID | str) -> int | None:
        return self.run(self._container.find_device(jid))

    def account(
        self,
        device_id: int,
        *,
        signal_cache: bool = True,
        background_saver: float | None = None,
        **manager_options: Any,
    ) -> SyncAccount:
        """Open one account: its :class:`~wastore.PersistenceManager` and python-axolotl store.

        Args:
            device_id: the account.
            signal_cache: buffer Signal writes in a SignalCache until
                ``flush()`` (True, the default), or commit each write on its own.
            background_saver: also run the manager's background saver with this
                interval in seconds (it also starts the cache's flusher, which
                commits buffered writes ~25 ms after they are made). Default:
                none; the application calls ``flush()``.
            manager_options: passed to :meth:`wastore.PersistenceManager.open`
                (``lease``, ``lease_ttl``, ``holder``, ...).
        """
        pm = self.run(
            self._open_manager(device_id, signal_cache, background_saver, manager_options)
        )
        account = SyncAccount(
            self, pm, AxolotlStore(pm, loop=self._thread.loop, timeout=self._timeout)
        )
        self._accounts.append(account)
        return account

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

    def _forget(self, account: SyncAccount) -> None:
        with contextlib.suppress(ValueError):
            self._accounts.remove(account)

    def close(self) -> None:
        """Close every open account (flushing it), then the store, then the loop thread.

        Safe to call twice. Raises the first error met, after closing everything.
        """
        if self._closed:
            return
        self._closed = True
        first: BaseException | None = None
        for account in list(self._accounts):
            try:
                account.close()
            except Exception as err:
                first = first or err
        try:
            self.run(self._container.close())
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
        state = "closed" if self._closed else f"{len(self._accounts)} open accounts"
        return f"SyncContainer({self._container!r}, {state})"
