"""``AxolotlStore``: python-axolotl's store interfaces over one wastore account."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

from ... import _validate as v
from ...cache import SignalCache
from ...commands import SetPreKeyWatermarks, SetServerHasPrekeys, SetSignedPreKey, apply_command
from ...contract import Backend
from ...device import Device, now_ms
from ...errors import CorruptRecordError, StoreError, ValidationError
from ...jid import JID, as_jid
from ...keys import KEY_LEN, KeyPair, sign_pre_key
from ...manager import PersistenceManager
from ..bridge import DEFAULT_TIMEOUT, LoopBridge, SyncSignal
from ._addresses import (
    device_of,
    identity_address,
    sender_key_address,
    signal_address,
    user_devices,
)
from ._compat import (
    AxolotlAddress,
    AxolotlStoreBase,
    Curve,
    DecodeError,
    DjbECPrivateKey,
    DjbECPublicKey,
    ECKeyPair,
    IdentityKey,
    IdentityKeyPair,
    InvalidKeyIdException,
    Medium,
    PreKeyBundle,
    PreKeyRecord,
    SenderKeyName,
    SenderKeyRecord,
    SenderKeyStore,
    SessionRecord,
    SignedPreKeyRecord,
)

T = TypeVar("T")

PRE_KEY_ID_SPAN: Final = Medium.MAX_VALUE - 1
"""python-axolotl's pre-key ids run over [1, 0xFFFFFE] and then wrap (``KeyHelper``)."""


def _clamp(private: bytes) -> bytes:
    # X25519 clamps the scalar itself, so agreements are unchanged; libsignal's
    # curve25519_sign (used by python-axolotl to sign) expects a clamped key.
    b = bytearray(private)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def ec_key_pair(key_pair: KeyPair) -> Any:
    """A wastore :class:`KeyPair` as a python-axolotl ``ECKeyPair`` (Curve25519, DJB type)."""
    return ECKeyPair(DjbECPublicKey(key_pair.public), DjbECPrivateKey(_clamp(key_pair.private)))


def public_key_bytes(key: Any, what: str = "identity key") -> bytes:
    """The 32 raw bytes of a python-axolotl ``IdentityKey`` or ``DjbECPublicKey``.

    python-axolotl serializes public keys with a type byte (``0x05 ‖ key``);
    wastore stores the 32-byte key without it.
    """
    public = key.getPublicKey() if isinstance(key, IdentityKey) else key
    try:
        key_type = public.getType()
        raw = public.getPublicKey()
    except AttributeError:
        raise ValidationError(
            f"{what} must be a python-axolotl IdentityKey or ECPublicKey, not {type(key).__name__}"
        ) from None
    if key_type != Curve.DJB_TYPE:
        raise ValidationError(f"{what} is not a Curve25519 (DJB) key: type {key_type}")
    raw = bytes(raw)
    if len(raw) != KEY_LEN:
        raise ValidationError(f"{what} must be {KEY_LEN} bytes, got {len(raw)}")
    return raw


def axolotl_address(jid: JID | str) -> Any:
    """The python-axolotl ``AxolotlAddress`` of a WhatsApp device JID.

    Its name is the device's full signal address and its device id 0 — as
    libsignal's ``ProtocolAddress`` in whatsapp-rust — so that identities,
    sessions and sender keys are stored per device under the addresses every
    wastore client uses.
    """
    return AxolotlAddress(as_jid(jid).signal_address(), 0)


def sender_key_name(group: JID | str, sender: JID | str) -> Any:
    """The python-axolotl ``SenderKeyName`` of ``sender``'s sender key in ``group``."""
    return SenderKeyName(str(as_jid(group, "group")), axolotl_address(sender))


def _decode(cls: Any, data: bytes, what: str, key: object) -> Any:
    try:
        return cls(serialized=data)
    except DecodeError as err:
        raise CorruptRecordError(
            f"the stored {what} {key!r} cannot be decoded as a python-axolotl record ({err}); "
            "it was left in place: take a debug snapshot, then delete it so that the protocol "
            "rebuilds it"
        ) from err


class AxolotlStore(AxolotlStoreBase, SenderKeyStore):  # type: ignore[misc]
    """python-axolotl's ``AxolotlStore`` and ``SenderKeyStore`` over one wastore account.

    Pass it to python-axolotl wherever a store is expected (``SessionBuilder``,
    ``SessionCipher``, ``GroupSessionBuilder``, ``GroupCipher``). Every method
    is synchronous, as python-axolotl expects, and runs the account's async
    store on ``loop`` — the event loop that owns the manager — waiting for the
    result. So call it from any thread *except* that loop's (there it raises
    :class:`WrongThreadError`); see the package documentation for the model.

    The identity key pair, the registration id and the current signed pre-key
    are the account's :class:`~wastore.Device` (read from the manager's
    snapshot); everything else is in the Signal store: the
    :class:`~wastore.cache.SignalCache` when the manager has one (then
    :meth:`flush` is the durability barrier), else the backend (then every
    call commits on its own).

    Args:
        manager: the account's open :class:`~wastore.PersistenceManager`.
        loop: the event loop the manager runs on; default the running loop (so
            build the store inside a coroutine on that loop, or pass it).
        timeout: seconds one store call may take (None: no limit).
    """

    def __init__(
        self,
        manager: PersistenceManager,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        if not isinstance(manager, PersistenceManager):
            raise ValidationError(
                f"AxolotlStore needs a PersistenceManager, not {type(manager).__name__}"
            )
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise ValidationError(
                    "AxolotlStore(manager) without loop= must be created inside a coroutine "
                    "on the event loop that runs the manager; or pass loop="
                ) from None
        self._pm = manager
        self._bridge = LoopBridge(loop, timeout)
        # Sessions, identities, sender keys and pre-key consumption: served on the
        # calling thread when the SignalCache can (hits, buffered writes).
        self._sync = SyncSignal(self._bridge, manager)

    def __repr__(self) -> str:
        kind = "SignalCache" if self.uses_cache else "backend"
        return f"AxolotlStore(device_id={self.device_id}, through={kind})"

    # -- plumbing ---------------------------------------------------------------
    @property
    def manager(self) -> PersistenceManager:
        return self._pm

    @property
    def device_id(self) -> int:
        return self._pm.device_id

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._bridge.loop

    @property
    def uses_cache(self) -> bool:
        """True when Signal writes are buffered in a SignalCache until :meth:`flush`."""
        return self._pm.signal_cache is not None

    @property
    def _signal(self) -> SignalCache | Backend:
        return self._pm.signal

    def _device(self) -> Device:
        return self._pm.get_device_snapshot()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._bridge.call(coro)

    @property
    def sync_signal(self) -> SyncSignal:
        """The synchronous Signal store this store reads and writes through."""
        return self._sync

    def flush(self) -> None:
        """Commit the buffered Signal writes and the device row (the durability barrier).

        With a SignalCache, call it after encrypting and before sending, and
        after decrypting and before acknowledging the message: a session, the
        identity saved with it and the pre-key it consumed commit together. One
        round trip to the store's loop, none when nothing waits to be committed.
        """
        self._sync.flush()

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """From a coroutine on the store's loop: run a python-axolotl call in a worker thread.

        ``plaintext = await store.run_in_thread(cipher.decryptMsg, message)``
        """
        return await asyncio.to_thread(fn, *args)

    # -- IdentityKeyStore -------------------------------------------------------
    def getIdentityKeyPair(self) -> Any:
        """The account's identity key pair (the Device's ``identity_key``)."""
        d = self._device()
        return IdentityKeyPair(
            IdentityKey(DjbECPublicKey(d.identity_key.public)),
            DjbECPrivateKey(_clamp(d.identity_key.private)),
        )

    def getLocalRegistrationId(self) -> int:
        return self._device().registration_id

    def saveIdentity(self, recepientId: str, identityKey: Any) -> None:
        """Store the 32-byte identity key of ``recepientId`` (see the address mapping)."""
        address = identity_address(recepientId)
        self._sync.put_identity(address, public_key_bytes(identityKey))

    def isTrustedIdentity(self, recepientId: str, identityKey: Any) -> bool:
        """Trust on first use: True when no identity is stored for ``recepientId`` or the
        stored 32-byte key equals ``identityKey``; False when a different key is stored."""
        address = identity_address(recepientId)
        key = public_key_bytes(identityKey)
        stored = self._sync.load_identity(address)
        return stored is None or stored == key

    def forget_identity(self, recipient_id: str) -> None:
        """Delete the stored identity of ``recipient_id``, so that its next key is trusted.

        python-axolotl raises ``UntrustedIdentityException`` when a known peer
        shows a new identity key. WhatsApp clients accept the new key (and show
        "security code changed"): call this, then process the message again.
        """
        self._sync.delete_identity(identity_address(recipient_id))

    # -- PreKeyStore -------------------------------------------------------------
    def loadPreKey(self, preKeyId: int) -> Any:
        """The pre-key record; raises ``InvalidKeyIdException`` when there is none."""
        data = self._call(self._signal.load_prekey(preKeyId))
        if data is None:
            raise InvalidKeyIdException(f"No such prekeyRecord! {preKeyId}")
        return _decode(PreKeyRecord, data, "pre-key", preKeyId)

    def storePreKey(self, preKeyId: int, preKeyRecord: Any) -> None:
        """Store a pre-key, flagged as not uploaded yet."""
        if preKeyRecord.getId() != preKeyId:
            raise ValidationError(
                f"storePreKey({preKeyId}): the record's own id is {preKeyRecord.getId()}"
            )
        self._call(self._signal.store_prekey(preKeyId, preKeyRecord.serialize(), False))

    def containsPreKey(self, preKeyId: int) -> bool:
        return self._call(self._signal.load_prekey(preKeyId)) is not None

    def removePreKey(self, preKeyId: int) -> None:
        """Consume a pre-key. Through a SignalCache the removal is committed by the flush
        that commits the session built from it — never before."""
        self._sync.remove_prekey(preKeyId)

    # -- SignedPreKeyStore ---------------------------------------------------------
    @staticmethod
    def _current_signed_pre_key(d: Device) -> Any:
        return SignedPreKeyRecord(
            d.signed_pre_key_id,
            d.last_signed_pre_key_rotation_ms,
            ec_key_pair(d.signed_pre_key),
            d.signed_pre_key_signature,
        )

    def loadSignedPreKey(self, signedPreKeyId: int) -> Any:
        """The Device's signed pre-key when the id is current, else an archived one from
        the store; raises ``InvalidKeyIdException`` when there is none."""
        d = self._device()
        if signedPreKeyId == d.signed_pre_key_id:
            return self._current_signed_pre_key(d)
        data = self._call(self._signal.load_signed_prekey(signedPreKeyId))
        if data is None:
            raise InvalidKeyIdException(f"No such signedprekeyrecord! {signedPreKeyId}")
        return _decode(SignedPreKeyRecord, data, "signed pre-key", signedPreKeyId)

    def loadSignedPreKeys(self) -> list[Any]:
        """The current signed pre-key (from the Device) first, then the archived ones."""
        d = self._device()
        stored = self._call(self._signal.load_all_signed_prekeys())
        return [self._current_signed_pre_key(d)] + [
            _decode(SignedPreKeyRecord, data, "signed pre-key", i)
            for i, data in stored
            if i != d.signed_pre_key_id
        ]

    def storeSignedPreKey(self, signedPreKeyId: int, signedPreKeyRecord: Any) -> None:
        """Archive a signed pre-key under its id.

        The current signed pre-key is part of the Device; storing a different key
        under its id is refused — rotate with :meth:`rotate_signed_pre_key` (or the
        :class:`~wastore.SetSignedPreKey` command) instead.
        """
        d = self._device()
        if signedPreKeyId == d.signed_pre_key_id:
            public = public_key_bytes(
                signedPreKeyRecord.getKeyPair().getPublicKey(), "signed pre-key"
            )
            if public != d.signed_pre_key.public:
                raise ValidationError(
                    f"signed pre-key {signedPreKeyId} is the account's current one (in the "
                    "Device); rotate it with AxolotlStore.rotate_signed_pre_key() or the "
                    "SetSignedPreKey command instead of overwriting it"
                )
            return
        self._call(self._signal.store_signed_prekey(signedPreKeyId, signedPreKeyRecord.serialize()))

    def containsSignedPreKey(self, signedPreKeyId: int) -> bool:
        if signedPreKeyId == self._device().signed_pre_key_id:
            return True
        return self._call(self._signal.load_signed_prekey(signedPreKeyId)) is not None

    def removeSignedPreKey(self, signedPreKeyId: int) -> None:
        """Remove an archived signed pre-key (the current one cannot be removed)."""
        if signedPreKeyId == self._device().signed_pre_key_id:
            raise ValidationError(
                f"signed pre-key {signedPreKeyId} is the account's current one; rotate it "
                "first (AxolotlStore.rotate_signed_pre_key())"
            )
        self._call(self._signal.remove_signed_prekey(signedPreKeyId))

    # -- SessionStore ----------------------------------------------------------------
    def loadSession(self, recepientId: str, deviceId: int) -> Any:
        """The session record, or a fresh one when there is none (as python-axolotl expects)."""
        address = signal_address(recepientId, deviceId)
        data = self._sync.get_session(address)
        return SessionRecord() if data is None else _decode(SessionRecord, data, "session", address)

    def getSubDeviceSessions(self, recepientId: str) -> list[int]:
        """The device ids of ``recepientId`` that have a session, ascending.

        For a bare name, the devices of its user on its server: one indexed range
        query (``get_session_addresses``), with the SignalCache's buffered writes
        over it. A name that includes a device answers ``[0]`` or ``[]``.
        """
        jid, named = user_devices(recepientId)
        if named is not None:
            return [0] if self._sync.has_session(named) else []
        return sorted(self._devices(self._call(self._signal.get_session_addresses(jid.user)), jid))

    @staticmethod
    def _devices(addresses: Sequence[str], jid: JID) -> dict[int, str]:
        """``{device id: address}`` of the addresses that are devices of ``jid``'s user."""
        found = {}
        for address in addresses:
            device = device_of(address, jid)
            if device is not None:
                found[device] = address
        return found

    def storeSession(self, recepientId: str, deviceId: int, sessionRecord: Any) -> None:
        address = signal_address(recepientId, deviceId)
        data = sessionRecord.serialize()
        if not data:  # an empty record is the same as none
            self._sync.delete_session(address)
        else:
            self._sync.put_session(address, data)

    def containsSession(self, recepientId: str, deviceId: int) -> bool:
        return self._sync.has_session(signal_address(recepientId, deviceId))

    def deleteSession(self, recepientId: str, deviceId: int) -> None:
        self._sync.delete_session(signal_address(recepientId, deviceId))

    def deleteAllSessions(self, recepientId: str) -> None:
        """Delete the sessions of every device of ``recepientId`` (one commit)."""
        jid, named = user_devices(recepientId)
        if named is not None:
            self._sync.delete_session(named)
            return
        self._call(self._delete_sessions(jid))

    async def _delete_sessions(self, jid: JID) -> None:
        signal = self._signal
        async with signal.transaction():
            found = self._devices(await signal.get_session_addresses(jid.user), jid)
            for address in found.values():
                await signal.delete_session(address)

    # -- SenderKeyStore ----------------------------------------------------------------
    def storeSenderKey(self, senderKeyId: Any, senderKeyRecord: Any) -> None:
        """Store a sender key; ``senderKeyId`` is a ``SenderKeyName``."""
        address = sender_key_address(senderKeyId)
        data = senderKeyRecord.serialize()
        if not data:
            self._sync.delete_sender_key(address)
        else:
            self._sync.put_sender_key(address, data)

    def loadSenderKey(self, senderKeyId: Any) -> Any:
        """The sender key record, or an empty one when there is none."""
        address = sender_key_address(senderKeyId)
        data = self._sync.get_sender_key(address)
        if data is None:
            return SenderKeyRecord()
        return _decode(SenderKeyRecord, data, "sender key", address)

    # -- wastore extras: pre-key supply, bundles, rotation ----------------------------
    def generate_pre_keys(self, count: int) -> list[Any]:
        """Generate ``count`` one-time pre-keys, store them (not uploaded) and return them.

        Ids continue from the Device's ``next_pre_key_id`` and wrap as
        python-axolotl's ``KeyHelper.generatePreKeys`` does. The new watermark is
        saved *before* the keys are stored, so a crash can leave a gap of ids but
        never hands out an id twice.
        """
        count = v.integer(count, "count", 1, PRE_KEY_ID_SPAN)
        return self._call(self._generate_pre_keys(count))

    async def _generate_pre_keys(self, count: int) -> list[Any]:
        def reserve(d: Device) -> list[int]:
            start = d.next_pre_key_id if 1 <= d.next_pre_key_id <= PRE_KEY_ID_SPAN else 1
            ids = [(start - 1 + i) % PRE_KEY_ID_SPAN + 1 for i in range(count)]
            nxt = ids[-1] % PRE_KEY_ID_SPAN + 1
            apply_command(d, SetPreKeyWatermarks(nxt, d.first_unupload_pre_key_id))
            return ids

        ids = await self._pm.modify_device(reserve)
        await self._pm.flush()
        records = [PreKeyRecord(i, Curve.generateKeyPair()) for i in ids]
        await self._signal.store_prekeys_batch([(r.getId(), r.serialize()) for r in records], False)
        return records

    def pre_keys_to_upload(self, limit: int = 812) -> list[Any]:
        """Up to ``limit`` stored pre-keys not uploaded yet, lowest ids first.

        Send their ids and public keys to the server, then call
        :meth:`mark_pre_keys_uploaded`. (812 is what WhatsApp Web uploads at once.)
        """
        rows = self._call(self._signal.load_unuploaded_prekeys(limit))
        return [_decode(PreKeyRecord, data, "pre-key", i) for i, data in rows]

    def mark_pre_keys_uploaded(self, ids: Sequence[int]) -> None:
        """Record that the server has these pre-keys: flags them, advances the
        Device's ``first_unupload_pre_key_id`` past them and sets
        ``server_has_prekeys``; saved before returning."""
        wanted = v.prekey_ids(ids)
        if wanted:
            self._call(self._mark_uploaded(wanted))

    async def _mark_uploaded(self, ids: list[int]) -> None:
        await self._signal.mark_prekeys_uploaded(ids)
        top = max(ids) + 1

        def advance(d: Device) -> None:
            if top > d.first_unupload_pre_key_id:
                apply_command(d, SetPreKeyWatermarks(d.next_pre_key_id, top))
            apply_command(d, SetServerHasPrekeys(True))

        await self._pm.modify_device(advance)
        await self._pm.flush()

    def pre_key_bundle(self, pre_key_id: int | None = None, *, device_id: int = 0) -> Any:
        """The ``PreKeyBundle`` of this account, as the server hands it to a peer.

        Registration id, identity key and signed pre-key (id, public key,
        signature) come from the Device; the one-time pre-key ``pre_key_id`` (its
        public half) from the store — or none when ``pre_key_id`` is None.

        Raises:
            InvalidKeyIdException: there is no pre-key ``pre_key_id``.
        """
        d = self._device()
        pre_key_public = None
        if pre_key_id is not None:
            pre_key_public = self.loadPreKey(pre_key_id).getKeyPair().getPublicKey()
        return PreKeyBundle(
            d.registration_id,
            device_id,
            pre_key_id,
            pre_key_public,
            d.signed_pre_key_id,
            DjbECPublicKey(d.signed_pre_key.public),
            d.signed_pre_key_signature,
            IdentityKey(DjbECPublicKey(d.identity_key.public)),
        )

    def rotate_signed_pre_key(self) -> int:
        """Replace the signed pre-key with a new one; return the new id.

        The old key is archived in the store first (pre-key messages built on it
        may still be in flight; remove it later with ``removeSignedPreKey``), then
        the Device gets the new key pair, id, XEdDSA signature and rotation time
        (:class:`~wastore.SetSignedPreKey`), saved before returning.
        """
        return self._call(self._rotate_signed_pre_key())

    async def _rotate_signed_pre_key(self) -> int:
        old = self._device()
        await self._signal.store_signed_prekey(
            old.signed_pre_key_id, self._current_signed_pre_key(old).serialize()
        )
        new_id = old.signed_pre_key_id % v.MAX_PREKEY_ID + 1
        await self._signal.remove_signed_prekey(new_id)  # a stale archived key with that id
        key_pair = KeyPair.generate()
        signature = sign_pre_key(old.identity_key, key_pair)
        command = SetSignedPreKey(key_pair, new_id, signature, now_ms())

        def rotate(d: Device) -> None:
            if d.signed_pre_key_id != old.signed_pre_key_id:
                raise StoreError("the signed pre-key was rotated concurrently; try again")
            apply_command(d, command)

        await self._pm.modify_device(rotate)
        await self._pm.flush()
        return new_id
