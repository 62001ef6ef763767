"""``WastoreAuthState``: the counterpart of pyaileys' ``MultiFileAuthState``."""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from typing import Any

from ...admin import NotFoundError
from ...contract import Container
from ...device import Device
from ...errors import CorruptRecordError, DeviceNotFoundError, ValidationError
from ...jid import JID
from ...keys import KeyPair
from ...manager import PersistenceManager
from ...registry import open_store
from ._compat import AuthenticationCreds, creds_from_dict
from ._creds import apply_creds, creds_as_dict, creds_dict
from ._keystore import WastoreKeyStore

_UPLOAD_BATCH = 1000


async def _account(container: Container, account: int | str | JID | None) -> int:
    if account is None:
        return await container.first_device()
    if type(account) is int:
        if account < 1 or not await container.backend(account).exists():
            raise DeviceNotFoundError(account)
        return account
    if isinstance(account, str | JID):
        jid = account if isinstance(account, JID) else JID.parse(account)
        found = await container.find_device(jid)
        if found is None:
            raise NotFoundError(f"no account with the phone number or LID of {str(jid)!r}")
        return found
    raise ValidationError(f"account must be a device id or a JID, not {type(account).__name__}")


async def sync_prekey_flags(manager: PersistenceManager) -> int:
    """Flag as uploaded every stored pre-key below the Device's
    ``first_unupload_pre_key_id`` (pyaileys advances that watermark past the
    keys it uploads and has no other "uploaded" call). Returns how many changed."""
    backend = manager.backend
    first = manager.get_device_snapshot().first_unupload_pre_key_id
    changed = 0
    while True:
        rows = await backend.load_unuploaded_prekeys(_UPLOAD_BATCH)
        ids = [key_id for key_id, _ in rows if key_id < first]
        if ids:
            await backend.mark_prekeys_uploaded(ids)
            changed += len(ids)
        if len(ids) < _UPLOAD_BATCH:
            return changed


def _creds_of(manager: PersistenceManager) -> AuthenticationCreds:
    try:
        return creds_from_dict(creds_dict(manager.get_device_snapshot()))
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptRecordError(
            f"account {manager.device_id}: the pyaileys credentials kept in its Device cannot "
            f"be loaded by pyaileys ({type(err).__name__})"
        ) from None


class WastoreAuthState:
    """pyaileys' authentication state (``.creds`` and ``.keys``) in a wastore account.

    Open it with :meth:`load`; hand ``.creds`` and ``.keys`` to pyaileys
    wherever it takes an ``AuthenticationState`` (or the object itself: it has
    both attributes); call :meth:`save_creds` whenever pyaileys emits
    ``creds.update``; :meth:`close` at the end.

    Attributes:
        creds: pyaileys' ``AuthenticationCreds``, built from the account's Device.
        keys: the account's :class:`WastoreKeyStore` (``get`` / ``set`` / ``clear``).
        manager: the account's :class:`~wastore.PersistenceManager` (it holds the
            account lease while the state is open).
    """

    def __init__(
        self,
        manager: PersistenceManager,
        creds: AuthenticationCreds,
        container: Container,
        *,
        owns_container: bool,
    ) -> None:
        self.manager = manager
        self.creds = creds
        self.keys = WastoreKeyStore(manager, container)
        self.container = container
        self._owns_container = owns_container
        self._closed = False

    @property
    def device_id(self) -> int:
        return self.manager.device_id

    def __repr__(self) -> str:
        return f"WastoreAuthState(device_id={self.device_id})"

    @classmethod
    async def load(
        cls,
        store: str | os.PathLike[str] | Container,
        *,
        account: int | str | JID | None = None,
        **options: Any,
    ) -> WastoreAuthState:
        """Open one account of a store as pyaileys' auth state.

        Args:
            store: a store URL (``sqlite:///wa.db``, ``postgresql://...``), a path to an
                SQLite file, or an open :class:`~wastore.Container` (then the caller
                closes it; otherwise :meth:`close` does).
            account: the account: a device id, or a phone-number or LID JID. None:
                the store's only account, a new one when the store is empty.
            options: keyword options of :func:`wastore.open_store` (with a URL or path).

        Raises:
            ConfigError: ``account`` is None and the store has several accounts.
            DeviceNotFoundError / NotFoundError: no such account.
            AccountInUseError: another process serves the account.
            CorruptRecordError: the account's device row cannot be decoded.
        """
        owns = isinstance(store, str | os.PathLike)
        if owns:
            container: Container = await open_store(store, **options)
        elif options:
            raise ValidationError("options are for a URL or path, not for an open container")
        else:
            container = store  # type: ignore[assignment]
        try:
            device_id = await _account(container, account)
            manager = await PersistenceManager.open(container.backend(device_id))
            try:
                if manager.get_device_snapshot().pairing_ephemeral_key is None:
                    # A device that pyaileys has not used yet: give it the key pair
                    # pyaileys' fresh credentials always have.
                    pairing = KeyPair.generate()

                    def add_pairing(d: Device) -> None:
                        if d.pairing_ephemeral_key is None:
                            d.pairing_ephemeral_key = pairing

                    await manager.modify_device(add_pairing)
                    await manager.flush()
                creds = _creds_of(manager)
                await sync_prekey_flags(manager)
            except BaseException:
                await manager.close()
                raise
        except BaseException:
            if owns:
                await container.close()
            raise
        return cls(manager, creds, container, owns_container=owns)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One atomic commit for everything written inside the block.

        pyaileys writes a decryption in several ``keys.set()`` calls (identity,
        session, used pre-key), each its own commit, and only then returns the
        plaintext. Wrap the decryption, and whatever the application does with
        the plaintext, in this block to commit them together — for example with
        the plaintext saved for at-least-once handling::

            async with state.transaction():
                plaintext = await repo.decrypt_message(jid, message_type=t, ciphertext=c)
                await state.manager.backend.store_pending_inbound(chat, jid, msg_id, plaintext)
            # acknowledge the message to the server now

        A crash inside the block leaves nothing of it behind: the redelivered
        message decrypts again. Other tasks' writes wait for the block to end.
        """
        return self.manager.backend.transaction()

    async def save_creds(self) -> None:
        """Save ``creds`` into the account's Device (through the PersistenceManager),
        committed before returning; then flag as uploaded the pre-keys below
        ``first_unuploaded_pre_key_id``.

        Raises:
            ValidationError: a credential no Device can hold (nothing is saved).
        """
        if self._closed:
            raise ValidationError("this WastoreAuthState is closed")
        creds = creds_as_dict(self.creds)
        await self.manager.modify_device(lambda d: apply_creds(d, creds))
        await self.manager.flush()
        await sync_prekey_flags(self.manager)

    async def close(self) -> None:
        """Release the account (final save of the Device, lease released) and close
        the store if :meth:`load` opened it. Unsaved changes to ``creds`` are not
        saved: call :meth:`save_creds` first, as with ``MultiFileAuthState``."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.manager.close()
        finally:
            if self._owns_container:
                await self.container.close()

    async def __aenter__(self) -> WastoreAuthState:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
