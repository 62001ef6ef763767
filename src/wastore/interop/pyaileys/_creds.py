"""pyaileys' ``AuthenticationCreds`` <-> the wastore :class:`~wastore.Device`.

Both directions work on the dictionary form of the credentials — what
``dataclasses.asdict(creds)`` gives and ``pyaileys.auth.serde.creds_from_dict``
reads, the content of pyaileys' ``creds.json`` — so that this module needs no
pyaileys import (the folder importer uses it too).

Fields WhatsApp defines become typed Device fields:

==================================  ==============================================
pyaileys creds                      Device
==================================  ==============================================
noise_key                           noise_key
pairing_ephemeral_key_pair          pairing_ephemeral_key
signed_identity_key                 identity_key
signed_pre_key (key_pair,           signed_pre_key, signed_pre_key_signature,
signature, key_id, timestamp_s)     signed_pre_key_id, last_signed_pre_key_rotation_ms
registration_id                     registration_id
adv_secret_key (base64)             adv_secret_key (32 bytes)
me.id / me.lid / me.name            pn / lid / push_name
account                             account
my_app_state_key_id (base64)        app_state_key_id
next_pre_key_id,                    next_pre_key_id,
first_unuploaded_pre_key_id         first_unupload_pre_key_id
last_account_sync_timestamp         last_account_sync_timestamp
platform                            platform
account_settings.unarchive_chats    unarchive_chats
account_settings                    default_disappearing_expiration,
.default_disappearing_mode          default_disappearing_timestamp
registered                          registered
pairing_code                        pairing_code
last_prop_hash                      props_hash
routing_info                        edge_routing_info
==================================  ==============================================

pyaileys' own bookkeeping — ``processed_history_messages``,
``account_sync_counter``, ``additional_data`` and ``signal_identities`` (the
primary device's account-signature key as pyaileys records it at pairing) —
is kept in ``Device.client_data["pyaileys"]`` as compact Buffer-JSON. So is,
under ``"exact"``, the original value of any field the typed mapping cannot
give back unchanged (an empty push name that is not ``None``, a
disappearing-mode object of another shape, a JID wastore cannot parse, ...):
the credentials pyaileys saved are the credentials it loads, always.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from ... import _validate as v
from ...device import Device
from ...errors import CorruptRecordError, ValidationError
from ...jid import JID
from ...keys import KeyPair
from . import _bufferjson as bufferjson

CLIENT: Final = "pyaileys"
"""The key of pyaileys' bookkeeping in ``Device.client_data``."""

BOOKKEEPING: Final = (
    "processed_history_messages",
    "account_sync_counter",
    "additional_data",
    "signal_identities",
)
_EXACT: Final = "exact"
_DISAPPEARING_KEYS: Final = ("ephemeralExpiration", "ephemeralSettingTimestamp")

Creds = dict[str, Any]


def _bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise ValidationError(f"creds.{what} must be bytes, not {type(value).__name__}")


def _key_pair(value: object, what: str) -> KeyPair:
    if not isinstance(value, Mapping):
        raise ValidationError(f"creds.{what} must be a key pair, not {type(value).__name__}")
    try:
        return KeyPair(
            private=_bytes(value.get("private"), f"{what}.private"),
            public=_bytes(value.get("public"), f"{what}.public"),
        )
    except ValidationError as err:
        raise ValidationError(f"creds.{what}: {err}") from None


def _key_pair_dict(pair: KeyPair) -> dict[str, bytes]:
    return {"public": pair.public, "private": pair.private}


def _b64(value: object, what: str) -> bytes:
    """Canonical standard base64 (what pyaileys writes) to bytes."""
    if type(value) is not str:
        raise ValidationError(f"creds.{what} must be a base64 str, not {type(value).__name__}")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"creds.{what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValidationError(f"creds.{what} is not canonical base64")
    return raw


def _int(value: object, what: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise ValidationError(f"creds.{what} must be an int in [{lo}, {hi}], got {value!r}"[:160])
    return value


# -- creds -> Device ------------------------------------------------------------
def _me(value: object) -> dict[str, Any]:
    if value is None:
        return {"pn": None, "lid": None, "push_name": ""}
    if not isinstance(value, Mapping):
        raise ValidationError("creds.me must be a contact")
    jid, lid, name = value.get("id"), value.get("lid"), value.get("name")
    return {
        "pn": JID.parse(jid) if isinstance(jid, str) else None,
        "lid": JID.parse(lid) if isinstance(lid, str) else None,
        "push_name": name if isinstance(name, str) and len(name) <= v.MAX_TEXT_LEN else "",
    }


def _settings(value: object) -> dict[str, Any]:
    out: dict[str, Any] = {
        "unarchive_chats": False,
        "default_disappearing_expiration": None,
        "default_disappearing_timestamp": None,
    }
    if not isinstance(value, Mapping):
        return out
    unarchive = value.get("unarchive_chats")
    if isinstance(unarchive, bool):
        out["unarchive_chats"] = unarchive
    mode = value.get("default_disappearing_mode")
    if isinstance(mode, Mapping) and set(mode) <= set(_DISAPPEARING_KEYS):
        expiration, stamp = (mode.get(k) for k in _DISAPPEARING_KEYS)
        if isinstance(expiration, int) and not isinstance(expiration, bool):
            out["default_disappearing_expiration"] = expiration
        if isinstance(stamp, int) and not isinstance(stamp, bool):
            out["default_disappearing_timestamp"] = stamp
    return out


def _optional(fn: Any, value: object, fallback: dict[str, Any]) -> dict[str, Any]:
    """The typed fields of an optional creds field; where they cannot hold it, the
    fallback (the exact value then goes to the bookkeeping)."""
    try:
        result: dict[str, Any] = fn(value)
        return result
    except ValidationError:
        return fallback


def _opt_str(value: object, max_len: int) -> str | None:
    return value if isinstance(value, str) and len(value) <= max_len else None


def _opt_bytes(value: object) -> bytes | None:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None


def _opt_b64(value: object) -> bytes | None:
    try:
        return None if value is None else v.sync_key_id(_b64(value, "my_app_state_key_id"))
    except ValidationError:
        return None


def _opt_int(value: object) -> int | None:
    return value if type(value) is int and 0 <= value < 1 << 63 else None


def device_fields(creds: Mapping[str, Any]) -> dict[str, Any]:
    """The Device fields that the credentials define (see the module docstring).

    Raises:
        ValidationError: key material, registration id, ADV secret or pre-key
            counters that no Device can hold, naming the field.
    """
    spk = creds.get("signed_pre_key")
    if not isinstance(spk, Mapping):
        raise ValidationError("creds.signed_pre_key must be a signed key pair")
    stamp = spk.get("timestamp_s")
    key_id = spk.get("key_id")
    if type(key_id) is not int:
        raise ValidationError("creds.signed_pre_key.key_id must be an int")
    adv = _b64(creds.get("adv_secret_key"), "adv_secret_key")
    fields: dict[str, Any] = {
        "noise_key": _key_pair(creds.get("noise_key"), "noise_key"),
        "pairing_ephemeral_key": _key_pair(
            creds.get("pairing_ephemeral_key_pair"), "pairing_ephemeral_key_pair"
        ),
        "identity_key": _key_pair(creds.get("signed_identity_key"), "signed_identity_key"),
        "signed_pre_key": _key_pair(spk.get("key_pair"), "signed_pre_key.key_pair"),
        "signed_pre_key_signature": _bytes(spk.get("signature"), "signed_pre_key.signature"),
        "signed_pre_key_id": key_id,
        "last_signed_pre_key_rotation_ms": (
            stamp * 1000 if type(stamp) is int and 0 <= stamp < (1 << 63) // 1000 else 0
        ),
        "registration_id": _int(creds.get("registration_id"), "registration_id", 0, (1 << 31) - 1),
        "adv_secret_key": adv,
        "account": _opt_bytes(creds.get("account")),
        "app_state_key_id": _opt_b64(creds.get("my_app_state_key_id")),
        # pyaileys' loader reads a missing counter as 1
        "next_pre_key_id": _int(creds.get("next_pre_key_id", 1), "next_pre_key_id", 0, 1 << 24),
        "first_unupload_pre_key_id": _int(
            creds.get("first_unuploaded_pre_key_id", 1), "first_unuploaded_pre_key_id", 0, 1 << 24
        ),
        "last_account_sync_timestamp": _opt_int(creds.get("last_account_sync_timestamp")),
        "platform": _opt_str(creds.get("platform"), v.MAX_NAME_LEN),
        "registered": creds.get("registered") is True,
        "pairing_code": _opt_str(creds.get("pairing_code"), v.MAX_NAME_LEN),
        "props_hash": _opt_str(creds.get("last_prop_hash"), 256),
        "edge_routing_info": _opt_bytes(creds.get("routing_info")),
    }
    fields.update(_optional(_me, creds.get("me"), _me(None)))
    fields.update(_settings(creds.get("account_settings")))
    return fields


# -- Device -> creds ----------------------------------------------------------------
def _creds_of(device: Device, pairing: KeyPair, book: Mapping[str, Any]) -> Creds:
    d = device
    me = None
    if d.pn is not None:
        me = {
            "id": str(d.pn),
            "name": d.push_name or None,
            "lid": None if d.lid is None else str(d.lid),
        }
    mode: dict[str, int] | None = None
    if (
        d.default_disappearing_expiration is not None
        or d.default_disappearing_timestamp is not None
    ):
        mode = {}
        if d.default_disappearing_expiration is not None:
            mode["ephemeralExpiration"] = d.default_disappearing_expiration
        if d.default_disappearing_timestamp is not None:
            mode["ephemeralSettingTimestamp"] = d.default_disappearing_timestamp
    rotation = d.last_signed_pre_key_rotation_ms
    return {
        "noise_key": _key_pair_dict(d.noise_key),
        "pairing_ephemeral_key_pair": _key_pair_dict(pairing),
        "signed_identity_key": _key_pair_dict(d.identity_key),
        "signed_pre_key": {
            "key_pair": _key_pair_dict(d.signed_pre_key),
            "signature": d.signed_pre_key_signature,
            "key_id": d.signed_pre_key_id,
            "timestamp_s": rotation // 1000 if rotation else None,
        },
        "registration_id": d.registration_id,
        "adv_secret_key": base64.b64encode(d.adv_secret_key).decode("ascii"),
        "me": me,
        "account": d.account,
        "signal_identities": book.get("signal_identities"),
        "my_app_state_key_id": (
            None
            if d.app_state_key_id is None
            else base64.b64encode(d.app_state_key_id).decode("ascii")
        ),
        "first_unuploaded_pre_key_id": d.first_unupload_pre_key_id,
        "next_pre_key_id": d.next_pre_key_id,
        "last_account_sync_timestamp": d.last_account_sync_timestamp,
        "platform": d.platform,
        "processed_history_messages": list(book.get("processed_history_messages") or []),
        "account_sync_counter": book.get("account_sync_counter", 0),
        "account_settings": {
            "unarchive_chats": d.unarchive_chats,
            "default_disappearing_mode": mode,
        },
        "registered": d.registered,
        "pairing_code": d.pairing_code,
        "last_prop_hash": d.props_hash,
        "routing_info": d.edge_routing_info,
        "additional_data": book.get("additional_data"),
    }


def _bookkeeping(device: Device) -> dict[str, Any]:
    blob = device.client_data.get(CLIENT)
    if blob is None:
        return {}
    try:
        book = bufferjson.loads(blob)
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptRecordError(
            f"Device.client_data[{CLIENT!r}] of this account is not the JSON wastore writes ({err})"
        ) from None
    if not isinstance(book, dict):
        raise CorruptRecordError(f"Device.client_data[{CLIENT!r}] is not a JSON object")
    return book


def creds_dict(device: Device, *, pairing_key: KeyPair | None = None) -> Creds:
    """The credentials (dictionary form) that ``device`` holds.

    Args:
        device: the account's device.
        pairing_key: the pairing ephemeral key pair to use when the device has
            none (a device created by wastore or another client).

    Raises:
        CorruptRecordError: the pyaileys bookkeeping in ``client_data`` is unreadable.
        ValidationError: the device has no pairing ephemeral key and none was given.
    """
    book = _bookkeeping(device)
    pairing = device.pairing_ephemeral_key or pairing_key
    if pairing is None:
        raise ValidationError("the device has no pairing ephemeral key pair; pass pairing_key=")
    creds = _creds_of(device, pairing, book)
    creds.update(book.get(_EXACT) or {})
    return creds


def _jsonable(value: Any) -> Any:
    # The JSON form of a value as it comes back from the bookkeeping blob (tuples
    # become lists, bytearrays bytes), to compare it with what the mapping gives.
    return bufferjson.loads(bufferjson.dumps(value))


def apply_creds(device: Device, creds: Mapping[str, Any]) -> None:
    """Write the credentials into ``device`` (a mutable copy): the typed fields and the
    pyaileys bookkeeping. Fields pyaileys does not know (app version, login counter,
    ...) keep their values.

    Raises:
        ValidationError: a field no Device can hold, or bookkeeping that is not
            JSON-serializable, naming it.
    """
    fields = device_fields(creds)
    rotation = fields["last_signed_pre_key_rotation_ms"]
    if rotation and device.last_signed_pre_key_rotation_ms // 1000 == rotation // 1000:
        # timestamp_s has whole seconds: keep the milliseconds another client recorded
        fields["last_signed_pre_key_rotation_ms"] = device.last_signed_pre_key_rotation_ms
    book: dict[str, Any] = {}
    for name in BOOKKEEPING:
        if name in creds:
            book[name] = creds[name]
    try:
        book = _jsonable(book)
    except (TypeError, ValueError) as err:
        raise ValidationError(
            f"the pyaileys bookkeeping in creds cannot be stored: {err}"
        ) from None
    for name, value in fields.items():
        setattr(device, name, value)
    device.server_has_prekeys = device.server_has_prekeys or device.first_unupload_pre_key_id > 1
    # What the typed fields and the bookkeeping give back; any field that differs
    # from the credentials is kept as it was, in "exact".
    rebuilt = _creds_of(device, fields["pairing_ephemeral_key"], book)
    try:
        wanted = _jsonable(dict(creds))
    except (TypeError, ValueError) as err:
        raise ValidationError(f"the pyaileys credentials cannot be stored: {err}") from None
    exact = {k: v for k, v in wanted.items() if k not in rebuilt or _jsonable(rebuilt[k]) != v}
    if exact:
        book[_EXACT] = exact
    client_data = dict(device.client_data)
    client_data[CLIENT] = bufferjson.dumps(book).encode("utf-8")
    device.client_data = client_data
    device.validate()


def creds_as_dict(creds: Any) -> Creds:
    """``dataclasses.asdict`` of pyaileys' ``AuthenticationCreds`` (or a mapping as is)."""
    if isinstance(creds, Mapping):
        return dict(creds)
    if dataclasses.is_dataclass(creds) and not isinstance(creds, type):
        return dataclasses.asdict(creds)
    raise ValidationError(
        f"creds must be pyaileys' AuthenticationCreds, not {type(creds).__name__}"
    )
