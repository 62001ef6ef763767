"""``WastoreClient``: a ``pywhats.Client`` that keeps all of its state in one wastore account."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from ...device import Device
from ...errors import StoreError, ValidationError
from ...formats import pywhats as fmt
from ...manager import PersistenceManager
from ..bridge import DEFAULT_TIMEOUT, SyncContainer
from ._compat import Client, DeviceStore
from ._stores import AccountArg, SignalStores, StoreArg, resolve_account, runtime_for

_DEVICE_FIELDS = tuple(f.name for f in dataclasses.fields(Device) if f.init)


def _assign(draft: Device, new: Device) -> None:
    for name in _DEVICE_FIELDS:
        setattr(draft, name, getattr(new, name))


FLUSHER_INTERVAL = 30.0
"""Seconds between the account's background saves (its SignalCache's flusher commits
buffered writes ~25 ms after they are made, whatever this interval)."""


class _FlushBeforeSend:
    """pywhats' transport, with the durability barrier in front of it: before a frame
    goes to the server, every Signal write buffered so far is committed.

    A message's ciphertext, the receipt of a decrypted message and the retry
    receipt of a failed one all leave through ``send``; so no frame can tell the
    server (or a peer) about a ratchet step that is not on disk yet. The commit is
    awaited, so pywhats' event loop keeps running meanwhile; when nothing waits to
    be committed ``send`` costs nothing more.
    """

    def __init__(self, transport: Any, client: WastoreClient) -> None:
        self._transport = transport
        self._client = client

    async def send(self, data: bytes) -> None:
        stores = self._client._signal_store
        if isinstance(stores, SignalStores) and stores.pending:
            await stores.aflush()
        await self._transport.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Release:
    """What a shared SyncContainer closes before itself: the client's account."""

    def __init__(self, client: WastoreClient) -> None:
        self._client = client

    def close(self) -> None:
        self._client._release_account()


class WastoreClient(Client):  # type: ignore[misc]
    """A ``pywhats.Client`` whose every piece of state lives in one wastore account.

    It takes pywhats' keyword arguments (``ws_url``, ``media_http_get``,
    ``media_http_post``) and behaves like a ``Client`` with a session path,
    except that the device credentials are the account's
    :class:`~wastore.Device` and the Signal and app-state stores are the
    account's tables (:class:`SignalStores`), on SQLite or PostgreSQL.

    The account is opened — its lease taken, so that no other process serves
    it — when the client is built, and released by :meth:`disconnect` (after a
    final flush) and :meth:`close`; ``connect()`` takes it again.

    pywhats calls its stores synchronously from its event loop. The account
    has a :class:`~wastore.cache.SignalCache`: sessions, identities and sender
    keys are read and buffered on pywhats' own thread, without a round trip
    (:class:`~wastore.interop.bridge.SyncSignal`), and committed before any
    frame goes to the server — the ciphertext of a message, the receipt of a
    decrypted one — by a flush that pywhats' loop awaits without being blocked
    (and ~25 ms after they were made anyway, by the cache's flusher). pywhats'
    ``atomic`` blocks (a pre-key message's session, identity and consumed
    pre-key) are one transaction each. Everything else pywhats stores (LID
    mappings, pre-keys, app-state keys and versions) commits before the call
    returns, one round trip to the store's own loop on a thread of its own
    (see :mod:`wastore.interop.bridge`).

    Args:
        store: a store URL (``sqlite:///…``, ``postgresql://…``) or an SQLite
            path — opened here and closed by :meth:`close` — or an open
            :class:`~wastore.interop.bridge.SyncContainer`, shared (several
            clients, one pool) and left open.
        account: a device id, one of the account's JIDs, or None: the store's
            only account, a new one in an empty store (with fresh keys: the
            client then pairs), and a :class:`~wastore.ConfigError` naming the
            accounts when there are several.
        holder: how this process names itself to a second opener of the account.
        timeout: seconds one store call may take (None: no limit).
        store_options: options of :func:`wastore.open_store` when ``store`` is
            a URL or path.
        client_kwargs: passed to ``pywhats.Client`` (not ``session_path``: the
            account replaces it; bring a pywhats session over with
            ``wastore import URL SESSION_PATH --from pywhats``).

    Raises:
        AccountInUseError: another process (or client) serves the account.
        DeviceNotFoundError: ``account`` names no account.
        ConfigError: a bad store URL or option, or several accounts and no ``account``.
    """

    def __init__(
        self,
        store: StoreArg,
        *,
        account: AccountArg = None,
        holder: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        store_options: Mapping[str, Any] | None = None,
        **client_kwargs: Any,
    ) -> None:
        if "session_path" in client_kwargs:
            raise ValidationError(
                "WastoreClient keeps the session in the store, not at a session_path; "
                "bring an existing pywhats session over with "
                "`wastore import URL SESSION_PATH --from pywhats`"
            )
        super().__init__(None, **client_kwargs)
        runtime, owned = runtime_for(store, timeout, dict(store_options or {}))
        self._wa_runtime = runtime
        self._wa_owned = owned
        self._wa_holder = holder
        self._wa_pm: PersistenceManager | None = None
        self._wa_lock = threading.Lock()
        self._wa_closed = False
        self._wa_release = _Release(self)
        try:
            self._wa_device_id = resolve_account(runtime, account)
            pm = self._open_account()
            snapshot = pm.get_device_snapshot()
            self._device = DeviceStore.from_json(fmt.device_to_pywhats(snapshot))
            if fmt.CLIENT not in snapshot.client_data:
                # Keep the created_at pywhats would have written with the credentials.
                self._store_device(self._device)
        except BaseException:
            self._release_account()
            if owned:
                runtime.close()
            raise
        if not owned:
            runtime.track(self._wa_release)

    # -- the account -------------------------------------------------------------
    @property
    def device_id(self) -> int:
        """The account's device id in the store."""
        return self._wa_device_id

    @property
    def container(self) -> SyncContainer:
        """The store (shared with the caller when one was given)."""
        return self._wa_runtime

    @property
    def manager(self) -> PersistenceManager | None:
        """The account's manager while the account is open (use it through
        ``container.run(...)``), else None."""
        return self._wa_pm

    def _open_account(self) -> PersistenceManager:
        with self._wa_lock:
            if self._wa_closed:
                raise StoreError("this WastoreClient is closed")
            if self._wa_pm is None:
                self._wa_pm = self._wa_runtime.open_manager(
                    self._wa_device_id,
                    holder=self._wa_holder,
                    signal_cache=True,
                    background_saver=FLUSHER_INTERVAL,
                )
            return self._wa_pm

    def _release_account(self) -> None:
        """Flush and release the account (its lease). Safe to call when not open."""
        with self._wa_lock:
            pm, self._wa_pm = self._wa_pm, None
        if pm is not None:
            self._wa_runtime.run(pm.close())

    def _store_device(self, device: DeviceStore) -> None:
        data = device.to_json()
        pm = self._open_account()

        async def persist() -> None:
            await pm.modify_device(lambda d: _assign(d, fmt.device_from_pywhats(data, d)))
            await pm.flush()

        self._wa_runtime.run(persist())

    # -- pywhats' seams --------------------------------------------------------------
    def _save_device(self) -> None:
        """pywhats persists its credentials: they become the account's device (committed)."""
        if self._device is not None:
            self._store_device(self._device)

    def _open_signal_stores(self) -> tuple[Any, Any, Any, Any, Any, Any, Any, Any]:
        """pywhats' stores on connect: the account's, with the credentials in use saved."""
        pm = self._open_account()
        if self._device is not None and self._device.to_json() != fmt.device_to_pywhats(
            pm.get_device_snapshot()
        ):
            # Credentials given to the client directly (``client._device = ...``).
            self._store_device(self._device)
        stores = SignalStores.attach(self._wa_runtime, pm, on_close=self._release_account)
        self._signal_store = stores
        return (
            stores.sessions,
            stores.identities,
            stores.lid_map,
            stores.prekeys,
            stores.app_state_keys,
            stores.app_state,
            stores.sender_keys,
            stores.transaction,
        )

    def _install_messaging(self, transport: Any) -> None:
        """pywhats wires its sender, receiver, pre-key uploader, ... to the transport:
        give them (and the client's own stanzas) the transport that flushes before it
        sends."""
        guarded = _FlushBeforeSend(transport, self)
        if getattr(self, "_transport", None) is transport:
            self._transport = guarded
        super()._install_messaging(guarded)

    # -- closing -----------------------------------------------------------------
    async def disconnect(self) -> None:
        """Close the connection (as pywhats does), then flush and release the account."""
        try:
            await super().disconnect()
        finally:
            self._release_account()

    async def close(self) -> None:
        """Disconnect, release the account, and close the store if this client opened it.

        Safe to call twice; the client cannot connect again afterwards.
        """
        try:
            await self.disconnect()
        finally:
            with self._wa_lock:
                already, self._wa_closed = self._wa_closed, True
            if not already:
                if self._wa_owned:
                    self._wa_runtime.close()
                else:
                    self._wa_runtime.forget(self._wa_release)

    async def __aenter__(self) -> WastoreClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._wa_closed else ("open" if self._wa_pm else "released")
        return f"WastoreClient(device_id={self._wa_device_id}, account {state})"
