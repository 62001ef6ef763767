"""``SignalStores``: pywhats' seven store facets over one wastore account."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from ...cache import SignalCache
from ...contract import Backend
from ...errors import CorruptRecordError, DeviceNotFoundError, StoreError, ValidationError
from ...formats import pywhats as fmt
from ...jid import JID, as_jid
from ...manager import PersistenceManager
from ...values import AppStateSyncKey as WaSyncKey
from ...values import HashState as WaHashState
from ...values import LidPnMapping, MutationMAC
from ..bridge import DEFAULT_TIMEOUT, LoopBridge, SyncContainer, SyncSignal
from ._compat import (
    AppStateSyncKey,
    HashState,
    MutationMac,
    OneTimePreKey,
    RatchetState,
    SenderKeyState,
    deserialize_sender_key_state,
    deserialize_state,
    serialize_sender_key_state,
    serialize_state,
)

T = TypeVar("T")

StoreArg = str | os.PathLike[str] | SyncContainer
"""A store URL, an SQLite path, or an open :class:`~wastore.interop.bridge.SyncContainer`."""
AccountArg = int | JID | str | None
"""A device id, a JID of the account (phone number or LID), or None: the store's only account."""


def runtime_for(
    store: StoreArg, timeout: float | None, options: dict[str, Any]
) -> tuple[SyncContainer, bool]:
    """The container to use and whether the caller owns it (opened it here)."""
    if isinstance(store, SyncContainer):
        if options:
            raise ValidationError(
                "store options apply when the store is opened here; this SyncContainer is "
                f"open already: {', '.join(sorted(options))}"
            )
        if store.closed:
            raise StoreError("the SyncContainer given as the store is closed")
        return store, False
    if isinstance(store, str | os.PathLike):
        return SyncContainer.open(store, timeout=timeout, **options), True
    raise ValidationError(
        "store must be a store URL, an SQLite path or an open "
        f"wastore.interop.bridge.SyncContainer, not {type(store).__name__} (an async Container "
        "runs on the caller's event loop, which pywhats blocks while it calls its stores)"
    )


def resolve_account(runtime: SyncContainer, account: AccountArg) -> int:
    """The device id ``account`` names in ``runtime`` (see :data:`AccountArg`).

    Raises:
        DeviceNotFoundError: no such account.
        ConfigError: ``account`` is None and the store holds several accounts.
    """
    if account is None:
        return runtime.first_device()
    if isinstance(account, bool) or not isinstance(account, int | JID | str):
        raise ValidationError(
            f"account must be a device id, a JID or None, not {type(account).__name__}"
        )
    if isinstance(account, int):
        if account not in runtime.devices():
            raise DeviceNotFoundError(account, "pass the id of an existing account, or None")
        return account
    jid = as_jid(account, "account")
    found = runtime.find_device(jid)
    if found is None:
        raise StoreError(f"no account in this store has the JID {jid} (phone number or LID)")
    return found


def _decode_json(data: bytes, what: str, key: object) -> Any:
    try:
        value = json.loads(data)
    except ValueError as err:
        raise CorruptRecordError(
            f"the stored pywhats {what} {key!r} is not JSON ({err}); it was left in place: "
            "take a debug snapshot, then delete it so that the protocol rebuilds it"
        ) from err
    if not isinstance(value, dict):
        raise CorruptRecordError(f"the stored pywhats {what} {key!r} is not a JSON object")
    return value


class _Facet:
    __slots__ = ("_s",)

    def __init__(self, stores: SignalStores) -> None:
        self._s = stores

    @property
    def _b(self) -> Backend:
        """The backend: state the SignalCache does not hold (committed per call)."""
        return self._s.backend

    @property
    def _sig(self) -> SyncSignal:
        """Sessions, identities, sender keys: on the caller's thread when the cache can
        (raises :class:`~wastore.StoreError` once the stores are closed)."""
        return self._s.live_signal()

    @property
    def _signal(self) -> SignalCache | Backend:
        """The async Signal store (the cache when there is one), through ``call``."""
        return self._s.sync_signal.signal


class SessionFacet(_Facet):
    """pywhats' ``SessionStore``: ratchet sessions, keyed by pywhats session id."""

    __slots__ = ()

    def load(self, session_id: str) -> RatchetState | None:
        address = fmt.session_address(session_id)
        data = self._sig.get_session(address)
        if data is None:
            return None
        state = _decode_json(data, "session", address)
        try:
            return deserialize_state(state)
        except Exception as err:
            raise CorruptRecordError(
                f"the stored pywhats session {address!r} cannot be decoded ({err})"
            ) from err

    def save(self, session_id: str, state: RatchetState) -> None:
        # The bytes pywhats' own SqliteStore writes (its JSON, default separators).
        record = json.dumps(serialize_state(state)).encode()
        self._sig.put_session(fmt.session_address(session_id), record)

    def delete(self, session_id: str) -> None:
        self._sig.delete_session(fmt.session_address(session_id))


class IdentityFacet(_Facet):
    """pywhats' ``IdentityStore``: each peer device's 32-byte identity key."""

    __slots__ = ()

    def load(self, session_id: str) -> bytes | None:
        return self._sig.load_identity(fmt.session_address(session_id))

    def save(self, session_id: str, identity_public: bytes) -> None:
        self._sig.put_identity(fmt.session_address(session_id), identity_public)

    def delete(self, session_id: str) -> None:
        self._sig.delete_identity(fmt.session_address(session_id))


class LidMapFacet(_Facet):
    """pywhats' ``LidMap``: a one-to-one map of phone-number users and LID users.

    wastore keeps every LID's phone number (``lid_pn_mappings``); a pair
    belongs to pywhats' map while each side's newest mapping is the other
    side, which gives pywhats' semantics (setting a pair drops the older
    pairs of both sides) without deleting wastore's history.
    """

    __slots__ = ()

    async def _lid_of(self, pn_user: str) -> str | None:
        m = await self._b.get_pn_mapping(pn_user)
        if m is None:
            return None
        back = await self._b.get_lid_mapping(m.lid)
        return m.lid if back is not None and back.phone_number == pn_user else None

    async def _pn_of(self, lid_user: str) -> str | None:
        m = await self._b.get_lid_mapping(lid_user)
        if m is None:
            return None
        newest = await self._b.get_pn_mapping(m.phone_number)
        return m.phone_number if newest is not None and newest.lid == lid_user else None

    async def _set(self, pn_user: str, lid_user: str) -> None:
        async with self._b.transaction():
            if await self._lid_of(pn_user) == lid_user:
                return  # already the pair (pywhats sets it on every message that carries it)
            now = int(time.time())
            current = await self._b.get_pn_mapping(pn_user)
            # The newest mapping of a phone number wins: make this one strictly newest.
            updated = now if current is None else max(now, current.updated_at + 1)
            await self._b.put_lid_mapping(
                LidPnMapping(
                    lid=lid_user,
                    phone_number=pn_user,
                    created_at=now,
                    updated_at=updated,
                    learning_source=fmt.LEARNING_SOURCE,
                )
            )

    def get_lid(self, pn_user: str) -> str | None:
        return self._s.call(self._lid_of(pn_user))

    def get_pn(self, lid_user: str) -> str | None:
        return self._s.call(self._pn_of(lid_user))

    def set(self, pn_user: str, lid_user: str) -> None:
        self._s.call(self._set(pn_user, lid_user))


class PreKeyFacet(_Facet):
    """pywhats' ``PreKeyStore``: our one-time pre-keys, as libsignal pre-key records.

    pywhats uploads every pre-key right after storing it, so they are stored
    as uploaded.
    """

    __slots__ = ()

    def load(self, key_id: int) -> OneTimePreKey | None:
        data = self._s.call(self._signal.load_prekey(key_id))
        if data is None:
            return None
        try:
            _, private, public = fmt.decode_prekey_record(data, key_id)
        except ValidationError as err:
            raise CorruptRecordError(f"the stored {err}") from err
        return OneTimePreKey(key_id=key_id, private=private, public=public)

    def save(self, opk: OneTimePreKey) -> None:
        record = fmt.encode_prekey_record(opk.key_id, opk.private, opk.public)
        self._s.call(self._signal.store_prekey(opk.key_id, record, True))

    def delete(self, key_id: int) -> None:
        """Consume a pre-key (through the SignalCache: with the session built from it)."""
        self._sig.remove_prekey(key_id)

    def max_id(self) -> int:
        return self._s.call(self._signal.get_max_prekey_id())


class AppStateKeyFacet(_Facet):
    """pywhats' ``AppStateKeyStore``: app-state sync keys (a stored key is replaced
    only by a strictly newer one, as in pywhats and whatsmeow)."""

    __slots__ = ()

    async def _put(self, key: AppStateSyncKey) -> None:
        value = WaSyncKey(
            key_data=key.key_data, fingerprint=key.fingerprint, timestamp=key.timestamp
        )
        async with self._b.transaction():
            existing = await self._b.get_sync_key(key.key_id)
            if existing is None or key.timestamp > existing.timestamp:
                await self._b.set_sync_key(key.key_id, value)

    def get(self, key_id: bytes) -> AppStateSyncKey | None:
        key = self._s.call(self._b.get_sync_key(key_id))
        if key is None:
            return None
        return AppStateSyncKey(
            key_id=key_id,
            key_data=key.key_data,
            fingerprint=key.fingerprint,
            timestamp=key.timestamp,
        )

    def put(self, key: AppStateSyncKey) -> None:
        self._s.call(self._put(key))


class AppStateFacet(_Facet):
    """pywhats' ``AppStateStore``: each collection's version and LT-hash, and mutation MACs.

    wastore keeps one value MAC per (collection, index MAC): the last one
    stored, which is the newest version's as pywhats stores versions in order.
    """

    __slots__ = ()

    async def _delete_version(self, name: str) -> None:
        async with self._b.transaction():
            await self._b.set_version(name, WaHashState())
            await self._b.clear_mutation_macs(name)

    def get_version(self, name: str) -> HashState:
        state = self._s.call(self._b.get_version(name))
        return HashState(version=state.version, hash=state.hash)

    def put_version(self, name: str, state: HashState) -> None:
        value = WaHashState(version=state.version, hash=state.hash)
        self._s.call(self._b.set_version(name, value))

    def delete_version(self, name: str) -> None:
        """Forget the collection: version 0 with the zero hash, no mutation MACs."""
        self._s.call(self._delete_version(name))

    def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        return self._s.call(self._b.get_mutation_mac(name, index_mac))

    def put_mutation_macs(self, name: str, version: int, macs: Sequence[MutationMac]) -> None:
        if not macs:
            return
        values = [MutationMAC(index_mac=m.index_mac, value_mac=m.value_mac) for m in macs]
        self._s.call(self._b.put_mutation_macs(name, version, values))

    def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        if not index_macs:
            return
        self._s.call(self._b.delete_mutation_macs(name, list(index_macs)))


class SenderKeyFacet(_Facet):
    """pywhats' ``SenderKeyStore``: group sender keys, keyed by (group, sender session id)."""

    __slots__ = ()

    def load(self, group_id: str, sender_id: str) -> SenderKeyState | None:
        address = fmt.sender_key_address(group_id, sender_id)
        data = self._sig.get_sender_key(address)
        if data is None:
            return None
        state = _decode_json(data, "sender key", address)
        try:
            return deserialize_sender_key_state(state)
        except Exception as err:
            raise CorruptRecordError(
                f"the stored pywhats sender key {address!r} cannot be decoded ({err!r})"
            ) from err

    def save(self, group_id: str, sender_id: str, state: SenderKeyState) -> None:
        record = json.dumps(serialize_sender_key_state(state)).encode()
        self._sig.put_sender_key(fmt.sender_key_address(group_id, sender_id), record)

    def delete(self, group_id: str, sender_id: str) -> None:
        self._sig.delete_sender_key(fmt.sender_key_address(group_id, sender_id))


class SignalStores:
    """pywhats' seven store facets over one wastore account.

    The counterpart of pywhats' ``SqliteStore``, with the same attributes —
    :attr:`sessions`, :attr:`identities`, :attr:`lid_map`, :attr:`prekeys`,
    :attr:`app_state_keys`, :attr:`app_state`, :attr:`sender_keys` — plus
    :meth:`transaction` (pywhats' ``atomic`` block), :meth:`flush` and
    :meth:`close`. Every method is synchronous, called from any thread but the
    store loop's (see :mod:`wastore.interop.bridge`).

    Without a SignalCache (the default here) every method commits before it
    returns, as pywhats' own store does; each is a blocking call into the
    store's event loop. With one (``signal_cache=True``; what
    :class:`WastoreClient` uses) sessions, identities, sender keys and the
    consumption of pre-keys are served and buffered on the caller's thread
    (:class:`~wastore.interop.bridge.SyncSignal`), and :meth:`flush` is the
    barrier that commits them; everything else still commits per call.

    Args:
        store: a store URL or SQLite path (opened here, on a loop thread of
            its own, and closed by :meth:`close`), or an open
            :class:`~wastore.interop.bridge.SyncContainer` (shared; left open).
        account: the account — a device id, one of its JIDs, or None for the
            store's only account (a new one in an empty store).
        lease: take the account lease, so that no other process serves the
            account meanwhile (released by :meth:`close`). Tools that read an
            account while a client serves it pass ``lease=False``.
        signal_cache: buffer Signal writes in a SignalCache until :meth:`flush`
            (needs ``lease``: only the lease holder may cache the account).
        timeout: seconds one call may take (None: no limit).
        options: store options, when ``store`` is a URL (see
            :func:`wastore.open_store`).

    Raises:
        AccountInUseError: ``lease`` is true and another holder serves the account.
        DeviceNotFoundError: ``account`` names no account.
        ConfigError: ``account`` is None and the store holds several accounts.
    """

    def __init__(
        self,
        store: StoreArg,
        account: AccountArg = None,
        *,
        lease: bool = True,
        signal_cache: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> None:
        if signal_cache and not lease:
            raise ValidationError(
                "signal_cache=True needs lease=True: a cache is only safe for the process "
                "that holds the account"
            )
        runtime, owned = runtime_for(store, timeout, options)
        try:
            device_id = resolve_account(runtime, account)
            pm = runtime.open_manager(device_id, signal_cache=signal_cache) if lease else None
        except BaseException:
            if owned:
                runtime.close()
            raise
        source: PersistenceManager | Backend = (
            pm if pm is not None else runtime.container.backend(device_id)
        )
        self._setup(runtime, source, owned_runtime=owned, manager=pm, on_close=None)
        if not owned:
            runtime.track(self)

    @classmethod
    def attach(
        cls,
        runtime: SyncContainer,
        account: PersistenceManager | Backend,
        *,
        on_close: Any = None,
    ) -> SignalStores:
        """Facets over an account someone else opened (a client): its manager (its
        SignalCache, if it has one, is used) or its backend; ``close()`` calls
        ``on_close`` and leaves the manager to its owner."""
        self = cls.__new__(cls)
        self._setup(runtime, account, owned_runtime=False, manager=None, on_close=on_close)
        return self

    def _setup(
        self,
        runtime: SyncContainer,
        account: PersistenceManager | Backend,
        *,
        owned_runtime: bool,
        manager: PersistenceManager | None,
        on_close: Any,
    ) -> None:
        self._runtime = runtime
        self._bridge: LoopBridge = runtime.bridge
        self._backend = account.backend if isinstance(account, PersistenceManager) else account
        self._sync = SyncSignal(self._bridge, account)
        self._owned_runtime = owned_runtime
        self._pm = manager
        self._on_close = on_close
        self._closed = False
        self._close_lock = threading.Lock()
        self.sessions = SessionFacet(self)
        self.identities = IdentityFacet(self)
        self.lid_map = LidMapFacet(self)
        self.prekeys = PreKeyFacet(self)
        self.app_state_keys = AppStateKeyFacet(self)
        self.app_state = AppStateFacet(self)
        self.sender_keys = SenderKeyFacet(self)

    # -- plumbing ---------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """The account's backend (async: use it through :meth:`call`)."""
        return self._backend

    @property
    def device_id(self) -> int:
        return self._backend.device_id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sync_signal(self) -> SyncSignal:
        """The account's Signal store for synchronous callers (the facets' fast path)."""
        return self._sync

    def live_signal(self) -> SyncSignal:
        """:attr:`sync_signal`, or :class:`~wastore.StoreError` once closed."""
        if self._closed:
            raise StoreError(f"the pywhats stores of account {self.device_id} are closed")
        return self._sync

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the store's loop and wait for it: the path every facet
        call takes into the store, unless the SignalCache answers it on the caller's
        thread."""
        if self._closed:
            coro.close()
            raise StoreError(f"the pywhats stores of account {self.device_id} are closed")
        return self._bridge.call(coro)

    @property
    def pending(self) -> bool:
        """True while buffered writes wait for :meth:`flush`."""
        return self._sync.pending

    def flush(self) -> None:
        """Commit the buffered Signal writes (with a SignalCache; without one every call
        has committed already and this does nothing): one round trip to the store's
        loop, none when nothing is pending."""
        self.live_signal().flush()

    async def aflush(self) -> None:
        """:meth:`flush` from a coroutine on another event loop (pywhats' loop): it
        awaits the commit without blocking that loop."""
        await self.live_signal().aflush()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """pywhats' ``atomic`` block: every facet write in the block commits together,
        or none does if the block raises (the exception propagates).

        The block is one transaction of the account's backend (through the
        SignalCache when there is one: its buffered writes of the block go
        into the commit), held open in a task on the store's loop while the
        block runs (see :meth:`wastore.interop.bridge.LoopBridge.held`); a
        nested block is a savepoint. Every facet call in the block is a round
        trip to that task. Other threads' calls are not part of it.
        """
        signal = self.live_signal().signal
        with self._bridge.held(signal.transaction()):
            yield

    def close(self) -> None:
        """Release the account: what this object opened is closed — the account's
        manager (releasing the lease) and the store. Safe to call twice."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self._on_close is not None:
                self._on_close()
            if self._pm is not None:
                self._runtime.run(self._pm.close())
        finally:
            if self._owned_runtime:
                self._runtime.close()
            else:
                self._runtime.forget(self)

    def __enter__(self) -> SignalStores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SignalStores(device_id={self.device_id}{', closed' if self._closed else ''})"
