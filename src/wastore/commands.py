"""Typed, immutable device commands and :func:`apply_command`.

Every change to the device row goes through the
:class:`~wastore.PersistenceManager`, either as a function passed to
``modify_device`` or as one of these commands. A command validates its
arguments when it is built, so a command that exists can always be applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias, get_args

from . import _validate as v
from .device import ADV_SECRET_LEN, MAX_OPAQUE_LEN, Device, now_ms
from .errors import ValidationError
from .jid import JID
from .keys import SIGNATURE_LEN, KeyPair


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _opt_jid(value: object, what: str) -> JID | None:
    if value is not None and not isinstance(value, JID):
        raise ValidationError(f"{what} must be a JID or None, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class SetId:
    """Set (or clear) the phone-number JID of this device."""

    jid: JID | None

    def __post_init__(self) -> None:
        _opt_jid(self.jid, "SetId.jid")

    def apply(self, device: Device) -> None:
        device.pn = self.jid


@dataclass(frozen=True, slots=True)
class SetLid:
    """Set (or clear) the LID of this device."""

    jid: JID | None

    def __post_init__(self) -> None:
        _opt_jid(self.jid, "SetLid.jid")

    def apply(self, device: Device) -> None:
        device.lid = self.jid


@dataclass(frozen=True, slots=True)
class SetPushName:
    name: str

    def __post_init__(self) -> None:
        v.text(self.name, "push name")

    def apply(self, device: Device) -> None:
        device.push_name = self.name


@dataclass(frozen=True, slots=True, repr=False)
class SetAccount:
    """Set the serialized ADVSignedDeviceIdentity (opaque bytes) or clear it."""

    account: bytes | None

    def __post_init__(self) -> None:
        _set(self, "account", v.opt_blob(self.account, "account", max_len=MAX_OPAQUE_LEN))

    def apply(self, device: Device) -> None:
        device.account = self.account

    def __repr__(self) -> str:
        size = "None" if self.account is None else f"<{len(self.account)} bytes>"
        return f"SetAccount(account={size})"


@dataclass(frozen=True, slots=True)
class SetAppVersion:
    """Set the WhatsApp Web version; also stamps ``app_version_last_fetched_ms`` with now."""

    primary: int
    secondary: int
    tertiary: int

    def __post_init__(self) -> None:
        v.u32(self.primary, "app version primary")
        v.u32(self.secondary, "app version secondary")
        v.u32(self.tertiary, "app version tertiary")

    def apply(self, device: Device) -> None:
        device.app_version = (self.primary, self.secondary, self.tertiary)
        device.app_version_last_fetched_ms = now_ms()


@dataclass(frozen=True, slots=True)
class SetPropsHash:
    props_hash: str | None

    def __post_init__(self) -> None:
        v.opt_text(self.props_hash, "props hash", max_len=256)

    def apply(self, device: Device) -> None:
        device.props_hash = self.props_hash


@dataclass(frozen=True, slots=True)
class SetPreKeyWatermarks:
    """Set both pre-key watermarks at once (there is no single-field setter on purpose:
    the two move together or the client re-uploads or skips keys)."""

    next_pre_key_id: int
    first_unupload_pre_key_id: int

    def __post_init__(self) -> None:
        v.integer(self.next_pre_key_id, "next_pre_key_id", 0, v.MAX_PREKEY_ID + 1)
        v.integer(
            self.first_unupload_pre_key_id, "first_unupload_pre_key_id", 0, v.MAX_PREKEY_ID + 1
        )

    def apply(self, device: Device) -> None:
        device.next_pre_key_id = self.next_pre_key_id
        device.first_unupload_pre_key_id = self.first_unupload_pre_key_id


@dataclass(frozen=True, slots=True, repr=False)
class SetAdvSecretKey:
    key: bytes

    def __post_init__(self) -> None:
        _set(self, "key", v.fixed(self.key, "adv secret key", ADV_SECRET_LEN))

    def apply(self, device: Device) -> None:
        device.adv_secret_key = self.key

    def __repr__(self) -> str:
        return "SetAdvSecretKey(key=<redacted>)"


@dataclass(frozen=True, slots=True, repr=False)
class SetNctSalt:
    salt: bytes | None

    def __post_init__(self) -> None:
        _set(self, "salt", v.opt_blob(self.salt, "nct salt", max_len=MAX_OPAQUE_LEN))

    def apply(self, device: Device) -> None:
        device.nct_salt = self.salt

    def __repr__(self) -> str:
        return f"SetNctSalt(salt={'None' if self.salt is None else '<redacted>'})"


@dataclass(frozen=True, slots=True, repr=False)
class SetServerCertChain:
    chain: bytes

    def __post_init__(self) -> None:
        _set(self, "chain", v.blob(self.chain, "server cert chain", max_len=MAX_OPAQUE_LEN))

    def apply(self, device: Device) -> None:
        device.server_cert_chain = self.chain

    def __repr__(self) -> str:
        return f"SetServerCertChain(chain=<{len(self.chain)} bytes>)"


# No slots: on a field-less frozen slotted dataclass, CPython 3.11 raises a confusing
# TypeError instead of FrozenInstanceError on assignment.
@dataclass(frozen=True)
class ClearServerCertChain:
    def apply(self, device: Device) -> None:
        device.server_cert_chain = None


# No slots: on a field-less frozen slotted dataclass, CPython 3.11 raises a confusing
# TypeError instead of FrozenInstanceError on assignment.
@dataclass(frozen=True)
class IncrementLoginCounter:
    def apply(self, device: Device) -> None:
        device.login_counter += 1


@dataclass(frozen=True, slots=True)
class SetLidMigrated:
    migrated: bool

    def __post_init__(self) -> None:
        v.boolean(self.migrated, "lid migrated")

    def apply(self, device: Device) -> None:
        device.lid_migrated = self.migrated


@dataclass(frozen=True, slots=True, repr=False)
class SetSignedPreKey:
    """Rotate the signed pre-key: key pair, id, signature and rotation time move together."""

    key_pair: KeyPair
    id: int
    signature: bytes
    rotation_ms: int

    def __post_init__(self) -> None:
        if not isinstance(self.key_pair, KeyPair):
            raise ValidationError("SetSignedPreKey.key_pair must be a KeyPair")
        v.integer(self.id, "signed pre-key id", 0, v.MAX_PREKEY_ID)
        _set(self, "signature", v.fixed(self.signature, "signed pre-key signature", SIGNATURE_LEN))
        v.timestamp(self.rotation_ms, "rotation_ms")

    def apply(self, device: Device) -> None:
        device.signed_pre_key = self.key_pair
        device.signed_pre_key_id = self.id
        device.signed_pre_key_signature = self.signature
        device.last_signed_pre_key_rotation_ms = self.rotation_ms

    def __repr__(self) -> str:
        return (
            f"SetSignedPreKey(key_pair={self.key_pair!r}, id={self.id}, "
            f"signature={self.signature.hex()}, rotation_ms={self.rotation_ms})"
        )


@dataclass(frozen=True, slots=True)
class SetReadReceiptsDisabled:
    disabled: bool

    def __post_init__(self) -> None:
        v.boolean(self.disabled, "read receipts disabled")

    def apply(self, device: Device) -> None:
        device.read_receipts_disabled = self.disabled


@dataclass(frozen=True, slots=True, repr=False)
class SetEdgeRoutingInfo:
    info: bytes | None

    def __post_init__(self) -> None:
        _set(self, "info", v.opt_blob(self.info, "edge routing info", max_len=MAX_OPAQUE_LEN))

    def apply(self, device: Device) -> None:
        device.edge_routing_info = self.info

    def __repr__(self) -> str:
        size = "None" if self.info is None else f"<{len(self.info)} bytes>"
        return f"SetEdgeRoutingInfo(info={size})"


@dataclass(frozen=True, slots=True)
class SetServerHasPrekeys:
    has_prekeys: bool

    def __post_init__(self) -> None:
        v.boolean(self.has_prekeys, "server has pre-keys")

    def apply(self, device: Device) -> None:
        device.server_has_prekeys = self.has_prekeys


DeviceCommand: TypeAlias = (
    SetId
    | SetLid
    | SetPushName
    | SetAccount
    | SetAppVersion
    | SetPropsHash
    | SetPreKeyWatermarks
    | SetAdvSecretKey
    | SetNctSalt
    | SetServerCertChain
    | ClearServerCertChain
    | IncrementLoginCounter
    | SetLidMigrated
    | SetSignedPreKey
    | SetReadReceiptsDisabled
    | SetEdgeRoutingInfo
    | SetServerHasPrekeys
)

COMMAND_TYPES: tuple[type, ...] = get_args(DeviceCommand)


def apply_command(device: Device, command: DeviceCommand) -> None:
    """Apply ``command`` to ``device`` in place.

    Raises:
        ValidationError: ``command`` is not a DeviceCommand.
    """
    if not isinstance(command, COMMAND_TYPES):
        raise ValidationError(f"not a DeviceCommand: {type(command).__name__}")
    command.apply(device)
