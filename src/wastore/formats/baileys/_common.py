"""What the Baileys reader and writer share: names, values, addresses, file names."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from ...errors import ValidationError
from ...jid import (
    DEFAULT_USER_SERVER,
    HIDDEN_USER_SERVER,
    HOSTED_LID_SERVER,
    HOSTED_SERVER,
    JID,
)
from ...keys import KeyPair
from .. import libsignal
from .._protos import message_class

log = logging.getLogger(__name__)
T = TypeVar("T")


CLIENT: Final = "baileys"
"""The key of Baileys' bookkeeping in :attr:`wastore.Device.client_data`."""

_DOMAINS: Final = {
    "": DEFAULT_USER_SERVER,
    "0": DEFAULT_USER_SERVER,
    "1": HIDDEN_USER_SERVER,
    "128": HOSTED_SERVER,
    "129": HOSTED_LID_SERVER,
}
_SUFFIX: Final = {
    DEFAULT_USER_SERVER: "",
    HIDDEN_USER_SERVER: "_1",
    HOSTED_SERVER: "_128",
    HOSTED_LID_SERVER: "_129",
}
_INDEX_KEY: Final = "__index"
_LEARNING_SOURCE: Final = ""

ADV = message_class("ADVSignedDeviceIdentity")
Fingerprint = message_class("AppStateSyncKeyFingerprint")
PreKeyRecord = message_class("PreKeyRecordStructure")

# The top-level keys of a new Baileys creds.json, in the order Baileys writes them.
_CREDS_ORDER: Final = (
    "noiseKey",
    "pairingEphemeralKeyPair",
    "signedIdentityKey",
    "signedPreKey",
    "registrationId",
    "advSecretKey",
    "processedHistoryMessages",
    "nextPreKeyId",
    "firstUnuploadedPreKeyId",
    "accountSyncCounter",
    "accountSettings",
    "registered",
    "pairingCode",
    "lastPropHash",
    "routingInfo",
    "additionalData",
    "me",
    "account",
    "signalIdentities",
    "platform",
    "myAppStateKeyId",
    "lastAccountSyncTimestamp",
)
# Keys of creds.json whose values are Device fields (nested: me, accountSettings).
_MAPPED: Final = frozenset(
    {
        "noiseKey",
        "pairingEphemeralKeyPair",
        "signedIdentityKey",
        "signedPreKey",
        "registrationId",
        "advSecretKey",
        "nextPreKeyId",
        "firstUnuploadedPreKeyId",
        "registered",
        "pairingCode",
        "lastPropHash",
        "routingInfo",
        "account",
        "platform",
        "myAppStateKeyId",
        "lastAccountSyncTimestamp",
    }
)
_ME_MAPPED: Final = ("id", "lid", "name", "verifiedName")
_MODE_MAPPED: Final = ("ephemeralExpiration", "ephemeralSettingTimestamp")


class _Bad(ValidationError):
    pass


# -- reading helpers ----------------------------------------------------------------


def _load(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _Bad(f"{path}: cannot read: {err.strerror}") from None
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise _Bad(f"{path}: not UTF-8 text: the file is damaged") from None
    except json.JSONDecodeError as err:
        raise _Bad(
            f"{path}: invalid JSON at line {err.lineno} column {err.colno} ({err.msg}): "
            "the file is truncated or damaged"
        ) from None


def _in(where: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; a ValidationError it raises gets ``where`` in front."""
    try:
        return fn()
    except _Bad:
        raise
    except ValidationError as err:
        raise _Bad(f"{where}: {err}") from None


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where}: expected an object, found {type(value).__name__}")
    return value


def _int(value: Any, where: str, lo: int = 0, hi: int = (1 << 63) - 1) -> int:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)  # protobuf.js writes 64-bit integers as text
    if type(value) is not int or not lo <= value <= hi:
        found = value if type(value) is int else f"a {type(value).__name__}"
        raise _Bad(f"{where}: expected an integer in [{lo}, {hi}], found {found}")
    return value


def _opt_int(value: Any, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{where}: expected text, found {type(value).__name__}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _bool(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _Bad(f"{where}: expected true or false, found a {type(value).__name__}")
    return value


def _buf(value: Any, where: str) -> bytes:
    return libsignal.buffer_bytes(value, where)


def _public(value: Any, where: str) -> bytes:
    key = _buf(value, where)
    if len(key) == 33 and key[0] == 5:
        key = key[1:]
    if len(key) != 32:
        raise _Bad(f"{where}: expected a 32-byte Curve25519 public key, found {len(key)} bytes")
    return key


def _key_pair(value: Any, where: str) -> KeyPair:
    pair = _obj(value, where)
    return _in(
        where,
        lambda: KeyPair(
            private=_buf(pair.get("private"), f"{where}.private"),
            public=_public(pair.get("public"), f"{where}.public"),
        ),
    )


def _jid(value: Any, where: str) -> JID:
    return _in(where, lambda: JID.parse(_str(value, where)))


def signal_address(name: str, where: str = "address") -> str:
    """The wastore signal address of a Baileys/libsignal-node address ``user[_domain].device``.

    Raises:
        ValidationError: not such an address, or an unknown domain.
    """
    user_part, dot, device = name.rpartition(".")
    if not dot or not device.isdigit():
        raise _Bad(f"{where}: {name[:80]!r} is not a Signal address (user.device)")
    user, _, domain = user_part.partition("_")
    server = _DOMAINS.get(domain)
    if server is None:
        raise _Bad(f"{where}: unknown address domain {domain!r} in {name[:80]!r}")
    jid = _in(where, lambda: JID(user=user, server=server, device=int(device)))
    return str(jid.signal_address())


def baileys_address(address: str) -> str | None:
    """The Baileys address ``user[_domain].device`` of a wastore signal address
    (None when Baileys has no name for its server)."""
    try:
        jid = JID.parse(address)
    except ValidationError:
        return None
    suffix = _SUFFIX.get(jid.server)
    if suffix is None or not jid.user:
        return None
    return f"{jid.user}{suffix}.{jid.device}"


def _file_id(name: str, prefix: str) -> str:
    """The key id of file ``name`` (Baileys writes ``/`` as ``__``)."""
    return name[len(prefix) : -len(".json")].replace("__", "/")


def _file_name(category: str, key_id: str) -> str:
    return f"{category}-{key_id}.json".replace("/", "__").replace(":", "-")
