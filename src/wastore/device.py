"""The device: this client's own identity, keys and account settings."""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from . import _validate as v
from .errors import ValidationError
from .jid import JID
from .keys import DJB_TYPE, KEY_LEN, SIGNATURE_LEN, KeyPair, sign_pre_key, xeddsa_verify

MAX_REGISTRATION_ID: Final = (1 << 31) - 1
MAX_OPAQUE_LEN: Final = 1024 * 1024
ADV_SECRET_LEN: Final = KEY_LEN
MAX_CLIENTS: Final = 32
"""At most this many entries in :attr:`Device.client_data`."""
_CLIENT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(eq=True, repr=False)
class Device:
    """Everything the client knows about itself.

    A ``Device`` is validated when it is built and again whenever the
    :class:`~wastore.PersistenceManager` publishes a modified copy. Snapshots
    handed out by the manager are *frozen*: assigning to one raises
    :class:`dataclasses.FrozenInstanceError`. Use :meth:`copy` for a mutable copy.
    Private keys and secrets never appear in ``repr``/``str``.
    """

    noise_key: KeyPair
    identity_key: KeyPair
    signed_pre_key: KeyPair
    signed_pre_key_signature: bytes
    adv_secret_key: bytes
    registration_id: int
    signed_pre_key_id: int = 1
    pn: JID | None = None
    lid: JID | None = None
    account: bytes | None = None
    push_name: str = ""
    app_version: tuple[int, int, int] = (0, 0, 0)
    app_version_last_fetched_ms: int = 0
    props_hash: str | None = None
    next_pre_key_id: int = 1
    first_unupload_pre_key_id: int = 1
    server_has_prekeys: bool = False
    edge_routing_info: bytes | None = None
    nct_salt: bytes | None = None
    server_cert_chain: bytes | None = None
    login_counter: int = 0
    lid_migrated: bool = False
    read_receipts_disabled: bool = False
    last_signed_pre_key_rotation_ms: int = 0
    # What WhatsApp defines for a linked device beyond the above, as clients keep it
    # (Baileys' creds names in brackets): the primary phone's platform [platform], the
    # verified business name [me.verifiedName], registration done [registered], the
    # phone-number pairing code and its ephemeral key pair [pairingCode,
    # pairingEphemeralKeyPair], the app-state sync key this device encrypts its own
    # mutations with [myAppStateKeyId], the last account sync [lastAccountSyncTimestamp]
    # and the account settings [accountSettings].
    platform: str | None = None
    business_name: str | None = None
    registered: bool = False
    pairing_code: str | None = None
    pairing_ephemeral_key: KeyPair | None = None
    app_state_key_id: bytes | None = None
    last_account_sync_timestamp: int | None = None
    unarchive_chats: bool = False
    default_disappearing_expiration: int | None = None
    default_disappearing_timestamp: int | None = None
    # One client's own bookkeeping, which WhatsApp does not define (history-sync
    # progress, counters, versions, ...): opaque bytes per client name, never
    # interpreted by wastore, so that a client's credentials round-trip exactly.
    client_data: Mapping[str, bytes] = field(default_factory=dict)
    _frozen: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise dataclasses.FrozenInstanceError(
                f"cannot assign to field {name!r}: this Device is a read-only snapshot; "
                "change it with PersistenceManager.modify_device() or process_command()"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        # Without this, ``del snapshot.field`` would silently expose the class default.
        if self._frozen:
            raise dataclasses.FrozenInstanceError(
                f"cannot delete field {name!r}: this Device is a read-only snapshot"
            )
        object.__delattr__(self, name)

    @classmethod
    def new(cls) -> Device:
        """A fresh, unpaired device with newly generated keys."""
        identity = KeyPair.generate()
        spk = KeyPair.generate()
        return cls(
            noise_key=KeyPair.generate(),
            identity_key=identity,
            signed_pre_key=spk,
            signed_pre_key_id=1,
            signed_pre_key_signature=sign_pre_key(identity, spk),
            adv_secret_key=secrets.token_bytes(ADV_SECRET_LEN),
            registration_id=secrets.randbelow(MAX_REGISTRATION_ID) + 1,
            last_signed_pre_key_rotation_ms=now_ms(),
        )

    def validate(self) -> None:
        """Check every field; raise :class:`ValidationError` naming the first bad one."""
        for name in ("noise_key", "identity_key", "signed_pre_key"):
            if not isinstance(getattr(self, name), KeyPair):
                raise ValidationError(f"Device.{name} must be a KeyPair")
        object.__setattr__(
            self,
            "signed_pre_key_signature",
            v.fixed(self.signed_pre_key_signature, "signed_pre_key_signature", SIGNATURE_LEN),
        )
        object.__setattr__(
            self, "adv_secret_key", v.fixed(self.adv_secret_key, "adv_secret_key", ADV_SECRET_LEN)
        )
        # Device.new() draws from [1, 2^31); 0 is accepted because libsignal-node (and so
        # Baileys) draws from [0, 16384): an imported device keeps the id it registered with.
        v.integer(self.registration_id, "registration_id", 0, MAX_REGISTRATION_ID)
        v.integer(self.signed_pre_key_id, "signed_pre_key_id", 0, v.MAX_PREKEY_ID)
        for name in ("pn", "lid"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, JID):
                raise ValidationError(f"Device.{name} must be a JID or None")
        for name in ("account", "edge_routing_info", "nct_salt", "server_cert_chain"):
            object.__setattr__(
                self, name, v.opt_blob(getattr(self, name), name, max_len=MAX_OPAQUE_LEN)
            )
        v.text(self.push_name, "push_name", max_len=v.MAX_TEXT_LEN)
        av = self.app_version
        if not isinstance(av, tuple) or len(av) != 3:
            raise ValidationError("app_version must be a tuple of three ints")
        for part in av:
            v.u32(part, "app_version part")
        v.timestamp(self.app_version_last_fetched_ms, "app_version_last_fetched_ms")
        v.opt_text(self.props_hash, "props_hash", max_len=256)
        v.integer(self.next_pre_key_id, "next_pre_key_id", 0, v.MAX_PREKEY_ID + 1)
        v.integer(
            self.first_unupload_pre_key_id, "first_unupload_pre_key_id", 0, v.MAX_PREKEY_ID + 1
        )
        v.boolean(self.server_has_prekeys, "server_has_prekeys")
        v.integer(self.login_counter, "login_counter", 0)
        v.boolean(self.lid_migrated, "lid_migrated")
        v.boolean(self.read_receipts_disabled, "read_receipts_disabled")
        v.timestamp(self.last_signed_pre_key_rotation_ms, "last_signed_pre_key_rotation_ms")
        v.opt_text(self.platform, "platform", max_len=v.MAX_NAME_LEN)
        v.opt_text(self.business_name, "business_name")
        v.boolean(self.registered, "registered")
        v.opt_text(self.pairing_code, "pairing_code", max_len=v.MAX_NAME_LEN)
        if self.pairing_ephemeral_key is not None and not isinstance(
            self.pairing_ephemeral_key, KeyPair
        ):
            raise ValidationError("Device.pairing_ephemeral_key must be a KeyPair or None")
        if self.app_state_key_id is not None:
            object.__setattr__(self, "app_state_key_id", v.sync_key_id(self.app_state_key_id))
        v.opt_integer(self.last_account_sync_timestamp, "last_account_sync_timestamp", 0)
        v.boolean(self.unarchive_chats, "unarchive_chats")
        v.opt_integer(self.default_disappearing_expiration, "default_disappearing_expiration", 0)
        v.opt_integer(self.default_disappearing_timestamp, "default_disappearing_timestamp", 0)
        object.__setattr__(self, "client_data", _client_data(self.client_data))

    def with_client_data(self, client: str, data: bytes | None) -> Device:
        """A copy whose :attr:`client_data` entry ``client`` is ``data`` (None removes it)."""
        entries = dict(self.client_data)
        if data is None:
            entries.pop(client, None)
        else:
            entries[client] = data
        return dataclasses.replace(self, client_data=entries)

    def key_problems(self) -> list[str]:
        """What is wrong with the keys (empty when sound): each public key must derive
        from its private key, and the signed pre-key signature must verify."""
        problems = [
            f"{name}: the public key does not match the private key"
            for name in ("noise_key", "identity_key", "signed_pre_key", "pairing_ephemeral_key")
            if getattr(self, name) is not None and not getattr(self, name).is_consistent()
        ]
        if not xeddsa_verify(
            self.identity_key.public,
            DJB_TYPE + self.signed_pre_key.public,
            self.signed_pre_key_signature,
        ):
            problems.append("signed_pre_key_signature does not verify with identity_key")
        return problems

    def copy(self) -> Device:
        """A mutable copy (validated)."""
        return dataclasses.replace(self)

    def frozen(self) -> Device:
        """Make this instance read-only and return it."""
        object.__setattr__(self, "_frozen", True)
        return self

    @property
    def is_frozen(self) -> bool:
        return self._frozen

    def __repr__(self) -> str:
        return (
            f"Device(pn={self.pn!s}, lid={self.lid!s}, registration_id={self.registration_id}, "
            f"identity_key={self.identity_key!r}, signed_pre_key_id={self.signed_pre_key_id}, "
            f"push_name={self.push_name!r}, next_pre_key_id={self.next_pre_key_id}, "
            f"first_unupload_pre_key_id={self.first_unupload_pre_key_id}, "
            f"platform={self.platform!r}, registered={self.registered}, "
            f"client_data=<{len(self.client_data)} client(s), redacted>, "
            "noise_key=<redacted>, signed_pre_key=<redacted>, adv_secret_key=<redacted>)"
        )

    __str__ = __repr__


class ClientData(dict[str, bytes]):
    """The read-only dict of :attr:`Device.client_data`: a snapshot's entries cannot
    change behind the manager's back. Replace the whole field (or use
    :meth:`Device.with_client_data`) to change it."""

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(
            "Device.client_data is read-only: assign a new mapping to the field, or use "
            "Device.with_client_data(), inside PersistenceManager.modify_device()"
        )

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (ClientData, (dict(self),))

    def __copy__(self) -> ClientData:
        return self

    def __deepcopy__(self, memo: object) -> ClientData:
        return self  # bytes values: nothing mutable inside


def _client_data(value: object) -> Mapping[str, bytes]:
    """``client_data`` checked and made read-only."""
    if not isinstance(value, Mapping):
        raise ValidationError("Device.client_data must be a mapping of client name -> bytes")
    if len(value) > MAX_CLIENTS:
        raise ValidationError(f"Device.client_data holds at most {MAX_CLIENTS} clients")
    out: dict[str, bytes] = {}
    for name in sorted(value, key=str):
        if not isinstance(name, str) or not _CLIENT_NAME.fullmatch(name):
            raise ValidationError(
                f"Device.client_data key {name!r} is not a client name "
                "(1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)"
            )
        blob = v.blob(
            value[name], f"client_data[{name!r}]", max_len=MAX_OPAQUE_LEN, allow_empty=True
        )
        out[name] = blob
    return ClientData(out)
