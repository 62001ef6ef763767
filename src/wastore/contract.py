"""The backend contract: four domain protocols, ``Backend`` and ``Container``.

Any class that has every method of the four protocols is a backend — there
is nothing to inherit from. The contract test suite in :mod:`wastore.testing`
checks the semantics written here against any implementation.

Common rules for every method:

- Every method is ``async`` and validates its arguments first: a bad argument
  raises :class:`~wastore.ValidationError` and nothing is written.
- Addresses are strings (see :meth:`wastore.JID.signal_address`), opaque to the
  store except where a method names a *user*. Records are non-empty ``bytes``,
  opaque.
- Batch methods are one transaction: all or nothing.
- A stored value that cannot be decoded raises
  :class:`~wastore.CorruptRecordError`; it is never reported as missing.
- ``Container.backend(device_id)`` does no I/O. On an account that does not
  exist, reads find nothing and writes raise
  :class:`~wastore.DeviceNotFoundError`.
- Timestamps are Unix seconds unless a name ends in ``_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from .device import Device
from .jid import JID
from .values import (
    AccountDump,
    AppStateSyncKey,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    TcToken,
)

__all__ = [
    "AppSyncStore",
    "Backend",
    "Container",
    "DeviceStore",
    "KeptLeaseStore",
    "LeaseStore",
    "PortableContainer",
    "ProtocolStore",
    "SignalStore",
]


@runtime_checkable
class SignalStore(Protocol):
    """Signal protocol state: identities, sessions, pre-keys, signed pre-keys, sender keys."""

    # -- identities --------------------------------------------------------
    async def put_identity(self, address: str, key: bytes) -> None:
        """Store the 32-byte identity key of ``address`` (replacing any)."""
        ...

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store many identity keys in one transaction."""
        ...

    async def load_identity(self, address: str) -> bytes | None:
        """The identity key of ``address``, or None."""
        ...

    async def delete_identity(self, address: str) -> None: ...

    # -- sessions ----------------------------------------------------------
    async def get_session(self, address: str) -> bytes | None: ...

    async def get_sessions(self, addresses: Sequence[str]) -> dict[str, bytes]:
        """The sessions found among ``addresses`` (missing ones are left out), in one round trip."""
        ...

    async def put_session(self, address: str, record: bytes) -> None: ...

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None: ...

    async def delete_session(self, address: str) -> None: ...

    async def has_session(self, address: str) -> bool: ...

    async def has_signal_state_for_user(self, user: str) -> bool:
        """True if a session or identity exists whose address is ``user@…`` or ``user:…``."""
        ...

    async def delete_signal_state_for_user(self, user: str) -> int:
        """Remove the sessions, identities and sender keys of every device of ``user``.

        Sender keys match on the sender part of their address
        (``"{group}::{user}[:device]@server"``). Returns the number of rows removed.
        """
        ...

    async def get_session_addresses(self, user: str) -> list[str]:
        """The addresses of the sessions of every device of ``user``, ascending.

        These are the stored session addresses ``user@…`` and ``user:…`` (every
        device and every server, as for :meth:`has_signal_state_for_user`; ``user``
        is taken literally), in ascending order of their UTF-8 bytes. It answers
        "which devices of this user do I have a session with" (libsignal's
        ``getSubDeviceSessions``) in one query of an index range, where asking for
        every possible device address would be 65,536 lookups.
        """
        ...

    # -- pre-keys (ids in [0, 2^24)) ----------------------------------------
    async def store_prekey(self, id: int, record: bytes, uploaded: bool) -> None: ...

    async def store_prekeys_batch(
        self, items: Sequence[tuple[int, bytes]], uploaded: bool
    ) -> None: ...

    async def load_prekey(self, id: int) -> bytes | None: ...

    async def load_prekeys_batch(self, ids: Sequence[int]) -> dict[int, bytes]: ...

    async def load_unuploaded_prekeys(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` pre-keys not yet uploaded, lowest ids first."""
        ...

    async def mark_prekeys_uploaded(self, ids: Sequence[int]) -> None:
        """Flag these pre-keys as uploaded.

        An UPDATE only: a key removed meanwhile stays removed.
        """
        ...

    async def remove_prekey(self, id: int) -> None: ...

    async def get_max_prekey_id(self) -> int:
        """The greatest stored pre-key id, 0 when there is none."""
        ...

    async def count_prekeys(self) -> tuple[int, int]:
        """``(total, uploaded)``."""
        ...

    # -- signed pre-keys ---------------------------------------------------
    async def store_signed_prekey(self, id: int, record: bytes) -> None: ...

    async def load_signed_prekey(self, id: int) -> bytes | None: ...

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        """Every signed pre-key, by ascending id."""
        ...

    async def remove_signed_prekey(self, id: int) -> None: ...

    # -- sender keys (address = "{group}::{sender signal address}") ---------
    async def put_sender_key(self, address: str, record: bytes) -> None: ...

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None: ...

    async def get_sender_key(self, address: str) -> bytes | None: ...

    async def delete_sender_key(self, address: str) -> None: ...


@runtime_checkable
class AppSyncStore(Protocol):
    """App-state sync: sync keys, collection versions and mutation MACs."""

    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None: ...

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        """Store a sync key; an existing key with a newer timestamp is kept."""
        ...

    async def delete_sync_key(self, key_id: bytes) -> None:
        """Forget a sync key (nothing happens when it is not stored)."""
        ...

    async def get_latest_sync_key_id(self) -> bytes | None:
        """The id of the key with the greatest timestamp (ties: the greatest id), or None."""
        ...

    async def get_version(self, name: str) -> HashState:
        """The collection's state; version 0 and a zero hash when absent."""
        ...

    async def set_version(self, name: str, state: HashState) -> None: ...

    async def put_mutation_macs(self, name: str, version: int, macs: Sequence[MutationMAC]) -> None:
        """Upsert on ``(name, index_mac)``, in one transaction."""
        ...

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None: ...

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        """The value MACs found, by index MAC (one round trip, any number of MACs)."""
        ...

    async def get_all_mutation_macs(self, name: str) -> dict[bytes, bytes]:
        """Every value MAC of the collection, by index MAC (a client rebuilding its
        index -> value map after a restart reads it in one call)."""
        ...

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None: ...

    async def clear_mutation_macs(self, name: str) -> None: ...


@runtime_checkable
class ProtocolStore(Protocol):
    """WhatsApp Web protocol bookkeeping."""

    # -- sender-key distribution status per group --------------------------
    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        """``[(device_jid, has_key)]`` for the group, ordered by device JID."""
        ...

    async def set_sender_key_status(
        self, group: str, items: Sequence[tuple[str, bool]]
    ) -> None: ...

    async def clear_sender_key_devices(self, group: str) -> None: ...

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        """Forget these devices in every group."""
        ...

    async def clear_all_sender_key_devices(self) -> None: ...

    # -- LID <-> phone number ---------------------------------------------
    async def get_lid_mapping(self, lid: str) -> LidPnMapping | None: ...

    async def get_pn_mapping(self, phone: str) -> LidPnMapping | None:
        """The most recently updated mapping of this phone number."""
        ...

    async def put_lid_mapping(self, entry: LidPnMapping) -> None:
        """Upsert by LID; the first ``created_at`` is kept."""
        ...

    async def put_lid_mappings(self, entries: Sequence[LidPnMapping]) -> None: ...

    async def get_all_lid_mappings(self) -> list[LidPnMapping]: ...

    # -- base keys (retry collision detection) -----------------------------
    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None: ...

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        """True if the saved key equals ``key``; False when none is saved."""
        ...

    async def delete_base_key(self, address: str, message_id: str) -> None: ...

    # -- device registry ---------------------------------------------------
    async def update_device_list(self, record: DeviceListRecord) -> None: ...

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None: ...

    async def get_devices(self, user: str) -> DeviceListRecord | None: ...

    async def delete_devices(self, user: str) -> None: ...

    # -- trusted-contact privacy tokens ------------------------------------
    async def get_tc_token(self, jid: str) -> TcToken | None: ...

    async def put_tc_token(self, jid: str, entry: TcToken) -> None:
        """Replace the entry of ``jid``."""
        ...

    async def delete_tc_token(self, jid: str) -> None: ...

    async def get_all_tc_token_jids(self) -> list[str]: ...

    async def delete_expired_tc_tokens(self, token_cutoff: int, sender_cutoff: int) -> int:
        """Delete rows whose token is empty or older than ``token_cutoff`` AND whose
        sender timestamp is null or older than ``sender_cutoff``; returns how many."""
        ...

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        """Move the sender timestamp forward to ``ts`` (never back). Inserts a token-less
        placeholder when there is no row; never drops token bytes. Atomic."""
        ...

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        """Store a token received at ``ts`` unless a newer one is stored; keeps the
        sender timestamp. Atomic."""
        ...

    # -- sent messages (retry receipts) -------------------------------------
    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None: ...

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        """Atomic read-and-delete: of two concurrent takers only one gets the payload."""
        ...

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        """Delete sent messages stored before ``cutoff``; returns how many."""
        ...

    # -- message secrets ---------------------------------------------------
    async def put_msg_secrets(self, secrets: Sequence[MsgSecret]) -> int:
        """Upsert on (chat, sender, msg_id). On conflict ``expires_at`` 0 (never) wins,
        else the later; ``message_ts`` is the max. Returns the number of items stored."""
        ...

    async def get_msg_secret(self, chat: str, sender: str, msg_id: str) -> MsgSecret | None: ...

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        """Delete secrets with ``0 < expires_at < cutoff``; returns how many."""
        ...

    # -- pending inbound (at-least-once decrypt) ---------------------------
    async def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, payload: bytes
    ) -> None: ...

    async def get_pending_inbound(
        self, chat: str, sender: str, message_id: str
    ) -> bytes | None: ...

    async def delete_pending_inbound(self, chat: str, sender: str, message_id: str) -> None: ...

    async def delete_expired_pending_inbound(self, cutoff: int) -> int: ...

    # -- group metadata cache ----------------------------------------------
    async def get_group_metadata(self, group: str) -> bytes | None: ...

    async def put_group_metadata(self, group: str, blob: bytes) -> None: ...

    async def delete_group_metadata(self, group: str) -> None: ...


@runtime_checkable
class DeviceStore(Protocol):
    """The device row of one account, and debug snapshots."""

    @property
    def device_id(self) -> int: ...

    async def save(self, device: Device) -> None: ...

    async def load(self) -> Device | None: ...

    async def exists(self) -> bool: ...

    async def create(self) -> int:
        """Create this account's device row with fresh keys if it is missing; return the id."""
        ...

    async def snapshot_db(self, name: str, extra: bytes | None = None) -> str:
        """Write a debug snapshot of this account only (never another account's rows),
        labelled ``name``; return where it went."""
        ...


@runtime_checkable
class Backend(SignalStore, AppSyncStore, ProtocolStore, DeviceStore, Protocol):
    """One account's view of a store: all four domain protocols and transactions."""

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Group writes of this account into one atomic commit.

        Reads inside the block see its writes; other tasks never see them before
        the commit. A nested block joins the outer transaction as a savepoint: if
        it raises, its own writes are undone and the exception propagates. If the
        outermost block raises, nothing of it is left behind. The container's writes
        made by the same task inside the block (``create_device``, ``delete_device``,
        ``backend(id).create()``) join it too.
        """
        ...


@runtime_checkable
class LeaseStore(Protocol):
    """Optional: an account lease, so one account is served by one process at a time.

    :meth:`wastore.PersistenceManager.open` takes the lease when the backend has
    these methods.
    """

    async def acquire_lease(self, holder: str, ttl: float) -> str:
        """Take the lease for ``ttl`` seconds; return a token.

        Raises:
            AccountInUseError: another holder has it.
            StoreError: called inside a transaction of this store. A lease is not a
                write of a transaction: a rollback would undo the lease row while the
                caller went on as its holder. Take it before the transaction.
        """
        ...

    async def renew_lease(self, token: str, ttl: float) -> bool:
        """Extend the lease; False if it was lost (expired and taken by another holder)."""
        ...

    async def release_lease(self, token: str) -> None:
        """Give the lease up. Raises StoreError inside a transaction of this store (a
        rollback would bring the lease back with nobody holding its token)."""
        ...


@runtime_checkable
class KeptLeaseStore(LeaseStore, Protocol):
    """Optional: a LeaseStore that renews its leases itself (wastore's SQL stores: one
    statement per interval for all the leases of a container), so that
    :class:`wastore.PersistenceManager` runs no renewal task per account. Such a
    lease lasts until it is released, its container closes, or its process stops
    renewing it for ``ttl`` seconds (then another holder may take it over)."""

    def lease_held(self, token: str) -> bool:
        """Whether ``token`` still holds the lease, as far as this process knows (no I/O)."""
        ...


@runtime_checkable
class PortableContainer(Protocol):
    """Optional: a container that can export and import whole accounts
    (``wastore export`` / ``import`` / ``copy``; see :mod:`wastore.portable`)."""

    async def export_account(self, device_id: int) -> AccountDump:
        """Every row of one account, from one consistent snapshot."""
        ...

    async def import_account(self, account: AccountDump, *, replace: bool = False) -> int:
        """Insert an account in one transaction; return its device id.

        A new account gets a new id. The account the store already has (same
        identity key) is refused unless ``replace``, which replaces its rows under
        the same id. Another account with the same phone number or LID (another
        identity key) is refused either way: an import never deletes an account
        that it is not.
        """
        ...


@runtime_checkable
class Container(Protocol):
    """One database: hands out per-account backends."""

    async def create_device(self) -> int:
        """Create an account with fresh keys; return its device id."""
        ...

    async def devices(self) -> list[int]:
        """Every account's device id, ascending."""
        ...

    async def first_device(self) -> int:
        """The store's only account, to reopen it on every start.

        In an empty store a new account is created (fresh keys) and its id returned.
        Two first starts at once make one account: a call waits for another task's or
        process's transaction that is creating one. A start-up call: not meant for use
        inside a transaction.

        Raises:
            ConfigError: the store holds several accounts (the message names them): pick
                one with :meth:`find_device` or by id.
        """
        ...

    def backend(self, device_id: int) -> Backend: ...

    async def find_device(self, jid: JID | str) -> int | None:
        """The account whose phone-number or LID user matches ``jid``'s user."""
        ...

    async def delete_device(self, device_id: int) -> None:
        """Remove every row of that account, in one transaction."""
        ...

    async def close(self) -> None:
        """Release the leases and close (safe to call twice); waits for the open
        transactions to end. Raises StoreError inside a transaction of this store, or
        from a task started inside one: it would wait for itself."""
        ...

    async def __aenter__(self) -> Container: ...

    async def __aexit__(self, *exc: object) -> None: ...
