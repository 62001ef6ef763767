"""``SyncContainer`` and ``SyncAccount``: wastore for synchronous programs.

The container, its connections and every account's manager live on one
:class:`~wastore.interop.bridge.EventLoopThread`; the methods here block the
calling thread while that loop does the work (see :mod:`wastore.interop.bridge`).
"""

from __future__ import annotations

from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ...device import Device
from ...manager import PersistenceManager
from .. import bridge
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
        self._owner.forget(self)
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


class SyncContainer(bridge.SyncContainer):
    """A wastore :class:`~wastore.Container` driven from synchronous code, with
    python-axolotl accounts.

    The store, the event-loop thread and the blocking methods are those of
    :class:`wastore.interop.bridge.SyncContainer`; this class adds
    :meth:`account`. Open it with :meth:`open`::

        with SyncContainer.open("sqlite:///wa.db") as container:
            account = container.account(container.create_device())
            cipher = SessionCipher(account.store, account.store, account.store,
                                   account.store, name, 0)
    """

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
        pm = self.open_manager(
            device_id,
            signal_cache=signal_cache,
            background_saver=background_saver,
            **manager_options,
        )
        account = SyncAccount(self, pm, AxolotlStore(pm, loop=self.loop, timeout=self.timeout))
        self.track(account)
        return account
