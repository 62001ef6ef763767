"""How pywhats' state maps onto a wastore account: pywhats' JID forms, Signal
addresses, pre-key records, and the device JSON <-> :class:`~wastore.Device`
(see the package's docstring for the whole mapping)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

from ... import _validate as v
from ...device import ADV_SECRET_LEN, Device
from ...errors import CorruptRecordError, ValidationError
from ...jid import JID, as_jid
from ...keys import KEY_LEN, KeyPair

__all__ = [
    "CLIENT",
    "DEVICE_SCHEMA_VERSION",
    "LEARNING_SOURCE",
    "decode_prekey_record",
    "device_from_pywhats",
    "device_to_pywhats",
    "encode_prekey_record",
    "jid_from_pywhats",
    "jid_to_pywhats",
    "sender_key_address",
    "session_address",
]

CLIENT: Final = "pywhats"
"""The key of pywhats' bookkeeping in :attr:`wastore.Device.client_data`."""
LEARNING_SOURCE: Final = "pywhats"
"""The ``learning_source`` of the LID mappings pywhats records."""
DEVICE_SCHEMA_VERSION: Final = 1
"""The version of pywhats' device JSON this module reads and writes."""
SIGNAL_DB_SUFFIX: Final = ".signal.db"
_DJB_TYPE: Final = b"\x05"


# -- JIDs ---------------------------------------------------------------------


def _number(text: str, what: str, original: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        raise ValidationError(f"pywhats JID {original[:80]!r} has an invalid {what} {text[:10]!r}")
    return int(text)


def jid_from_pywhats(text: str, what: str = "JID") -> JID:
    """A JID written by pywhats, as a wastore :class:`~wastore.JID`.

    pywhats writes ``user[.device]@server`` and its session ids as
    ``user:device@server``; the user part may carry an agent
    (``user.agent``). So ``111111111111111.0.1@lid`` and
    ``111111111111111.0:1@lid`` are user ``111111111111111``, agent 0, device
    1, and ``15551230000.3@s.whatsapp.net`` is device 3 — pywhats reads the
    last dot-separated number as the device, and so does this function.

    Raises:
        ValidationError: ``text`` is not a JID in any of pywhats' forms.
    """
    if not isinstance(text, str):
        raise ValidationError(f"pywhats {what} must be a str, not {type(text).__name__}")
    user_part, at, server = text.partition("@")
    if not at or not user_part:
        raise ValidationError(f"pywhats {what} {text[:80]!r} is not a JID (user@server)")
    device = 0
    if ":" in user_part:
        user_part, _, dev = user_part.rpartition(":")
        device = _number(dev, "device", text)
    elif "." in user_part:
        user_part, _, dev = user_part.rpartition(".")
        device = _number(dev, "device", text)
    agent = 0
    if "." in user_part:
        user_part, _, ag = user_part.partition(".")
        agent = _number(ag, "agent", text)
    try:
        return JID(user=user_part, server=server, agent=agent, device=device)
    except ValidationError as err:
        raise ValidationError(f"pywhats {what} {text[:80]!r}: {err}") from None


def jid_to_pywhats(jid: JID | str) -> str:
    """A JID in pywhats' own form: ``user[.agent][.device]@server`` (device omitted when 0)."""
    j = as_jid(jid)
    if not j.user:
        return j.server
    user = f"{j.user}.{j.agent}" if j.agent else j.user
    return f"{user}.{j.device}@{j.server}" if j.device else f"{user}@{j.server}"


def session_address(session_id: str) -> str:
    """The wastore signal address of a pywhats session id (``user:device@server``).

    Sessions, identities and sender keys are keyed by it, like every wastore
    client's (``user[:device]@server``, device omitted when 0).
    """
    return jid_from_pywhats(session_id, "session id").signal_address()


def sender_key_address(group_id: str, sender_id: str) -> str:
    """The wastore sender-key address of pywhats' ``(group, sender session id)`` pair."""
    group = jid_from_pywhats(group_id, "group id")
    return f"{group}::{session_address(sender_id)}"


# -- pre-key records: libsignal's PreKeyRecordStructure -------------------------
# message PreKeyRecordStructure { uint32 id = 1; bytes publicKey = 2; bytes privateKey = 3; }
# publicKey is libsignal's serialized Curve25519 key (0x05 type byte + 32 bytes).


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_prekey_record(key_id: int, private: bytes, public: bytes) -> bytes:
    """A one-time pre-key as a serialized libsignal ``PreKeyRecordStructure``.

    Raises:
        ValidationError: a key is not 32 bytes, or the id is not a pre-key id.
    """
    key_id = v.prekey_id(key_id)
    private = v.fixed(private, "pre-key private key", KEY_LEN)
    public = _DJB_TYPE + v.fixed(public, "pre-key public key", KEY_LEN)
    return (
        b"\x08"
        + _varint(key_id)
        + b"\x12"
        + _varint(len(public))
        + public
        + b"\x1a"
        + _varint(len(private))
        + private
    )


def _fields(data: bytes, what: str) -> Iterator[tuple[int, int | bytes]]:
    i, n = 0, len(data)

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            if i >= n or shift > 63:
                raise ValidationError(f"{what}: truncated or overlong varint")
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while i < n:
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            length = varint()
            if i + length > n:
                raise ValidationError(f"{what}: a field runs past the end of the record")
            yield number, data[i : i + length]
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > n:
                raise ValidationError(f"{what}: a field runs past the end of the record")
            i += size
        else:
            raise ValidationError(f"{what}: unsupported protobuf wire type {wire}")


def decode_prekey_record(data: bytes, key_id: int | None = None) -> tuple[int, bytes, bytes]:
    """``(id, private, public)`` of a serialized ``PreKeyRecordStructure`` (raw 32-byte keys).

    Raises:
        ValidationError: the record is not a pre-key record, or holds another id.
    """
    what = "pre-key record" if key_id is None else f"pre-key record {key_id}"
    found: dict[int, int | bytes] = {}
    for number, value in _fields(bytes(data), what):
        found[number] = value
    rid, public, private = found.get(1), found.get(2), found.get(3)
    if not isinstance(rid, int) or not isinstance(public, bytes) or not isinstance(private, bytes):
        raise ValidationError(f"{what}: not a PreKeyRecordStructure (id and both keys needed)")
    if key_id is not None and rid != key_id:
        raise ValidationError(f"{what} holds the key of id {rid}")
    if len(public) == KEY_LEN + 1 and public[:1] == _DJB_TYPE:
        public = public[1:]
    if len(public) != KEY_LEN or len(private) != KEY_LEN:
        raise ValidationError(f"{what}: the keys are not Curve25519 keys of {KEY_LEN} bytes")
    return rid, private, public


# -- the device -----------------------------------------------------------------


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValidationError(f"pywhats device field {what} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValidationError(f"pywhats device field {what} is not valid base64") from None


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key_pair(private: object, public: object, what: str) -> KeyPair:
    try:
        return KeyPair(
            private=_b64(private, f"{what}_private"), public=_b64(public, f"{what}_public")
        )
    except ValidationError as err:
        raise ValidationError(f"pywhats device field {what}: {err}") from None


def _int(value: object, what: str) -> int:
    if type(value) is not int:
        raise ValidationError(f"pywhats device field {what} must be an integer")
    return value


def _jid_tuple(value: object) -> JID | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError("pywhats device field jid must be an object or null")
    try:
        user, server, device = value["user"], value["server"], value["device"]
    except KeyError as err:
        raise ValidationError(f"pywhats device field jid lacks {err.args[0]!r}") from None
    if not isinstance(user, str) or not isinstance(server, str):
        raise ValidationError("pywhats device field jid: user and server must be strings")
    device = _int(device, "jid.device")
    agent = 0
    if "." in user:
        user, _, ag = user.partition(".")
        agent = _number(ag, "agent", value["user"])
    try:
        return JID(user=user, server=server, agent=agent, device=device)
    except ValidationError as err:
        raise ValidationError(f"pywhats device field jid: {err}") from None


def _natural(device: Device) -> dict[str, Any]:
    """The device JSON a :class:`Device` maps to, before pywhats' own bookkeeping."""
    pn = device.pn
    jid = None
    if pn is not None:
        user = f"{pn.user}.{pn.agent}" if pn.agent else pn.user
        jid = {"user": user, "server": pn.server, "device": pn.device}
    return {
        "noise_private": _b64e(device.noise_key.private),
        "noise_public": _b64e(device.noise_key.public),
        "identity_private": _b64e(device.identity_key.private),
        "identity_public": _b64e(device.identity_key.public),
        "registration_id": device.registration_id,
        "signed_pre_key": {
            "id": device.signed_pre_key_id,
            "private": _b64e(device.signed_pre_key.private),
            "public": _b64e(device.signed_pre_key.public),
            "signature": _b64e(device.signed_pre_key_signature),
        },
        "jid": jid,
        "device_id": None if pn is None else pn.device,
        "adv_signed_device_identity": None if device.account is None else _b64e(device.account),
        "push_name": device.push_name or None,
        "lid": None if device.lid is None else jid_to_pywhats(device.lid),
    }


# The device JSON fields that a Device cannot always hold as pywhats wrote them
# (pywhats' JID spellings, a device id the server reported apart from the JID,
# an empty rather than absent push name). client_data keeps the original value
# with the Device value it belongs to, so that it is used only while that Device
# value is unchanged.
_EXACT: Final = ("jid", "device_id", "push_name", "lid")


def _anchor(device: Device, key: str) -> Any:
    if key in ("jid", "device_id"):
        return None if device.pn is None else str(device.pn)
    if key == "push_name":
        return device.push_name
    return None if device.lid is None else str(device.lid)


def _client_blob(data: Mapping[str, Any], device: Device) -> bytes:
    created_at = data.get("created_at", time.time())
    if type(created_at) not in (int, float) or not math.isfinite(created_at):
        raise ValidationError("pywhats device field created_at must be a number")
    pywhats_version = data.get("pywhats_version", "")
    if not isinstance(pywhats_version, str):
        raise ValidationError("pywhats device field pywhats_version must be a string")
    schema_version = _int(data.get("schema_version", DEVICE_SCHEMA_VERSION), "schema_version")
    blob: dict[str, Any] = {
        "created_at": created_at,
        "pywhats_version": pywhats_version,
        "schema_version": schema_version,
    }
    natural = _natural(device)
    exact = {
        key: [_anchor(device, key), data.get(key)]
        for key in _EXACT
        if data.get(key) != natural[key]
    }
    if exact:
        blob["exact"] = exact
    return json.dumps(blob, sort_keys=True, separators=(",", ":")).encode()


def device_from_pywhats(data: Mapping[str, Any], base: Device | None = None) -> Device:
    """The :class:`~wastore.Device` of pywhats' device JSON (``DeviceStore.to_json()``).

    Mapping: ``noise_*`` -> ``noise_key``; ``identity_*`` -> ``identity_key``;
    ``signed_pre_key`` -> ``signed_pre_key``, ``signed_pre_key_id``,
    ``signed_pre_key_signature``; ``registration_id``; ``jid`` -> ``pn``;
    ``lid`` (pywhats' JID form, see :func:`jid_from_pywhats`) -> ``lid``;
    ``adv_signed_device_identity`` -> ``account``; ``push_name`` (None -> "").
    ``created_at``, ``pywhats_version``, ``schema_version``, and — only when
    the fields above cannot reproduce them — the original ``jid``, ``lid``,
    ``push_name`` and ``device_id`` go to ``client_data["pywhats"]`` (compact
    JSON), so that :func:`device_to_pywhats` gives back ``data`` exactly.

    Args:
        data: the device JSON as a dict.
        base: the account's current device: fields pywhats does not keep
            (``adv_secret_key``, app version, pre-key watermarks, other
            clients' ``client_data``, ...) are taken from it. Without it they
            are new (a random ``adv_secret_key``) or defaults.

    Raises:
        ValidationError: a field is missing, of the wrong type or out of range
            (the message names it; key material never appears in it).
    """
    if not isinstance(data, Mapping):
        raise ValidationError("the pywhats device JSON must be an object")
    version = data.get("version")
    if version != DEVICE_SCHEMA_VERSION:
        raise ValidationError(
            f"pywhats device JSON version {version!r} is not supported "
            f"(this wastore reads version {DEVICE_SCHEMA_VERSION})"
        )
    try:
        spk = data["signed_pre_key"]
        if not isinstance(spk, Mapping):
            raise ValidationError("pywhats device field signed_pre_key must be an object")
        fields: dict[str, Any] = {
            "noise_key": _key_pair(data["noise_private"], data["noise_public"], "noise"),
            "identity_key": _key_pair(
                data["identity_private"], data["identity_public"], "identity"
            ),
            "signed_pre_key": _key_pair(spk["private"], spk["public"], "signed_pre_key"),
            "signed_pre_key_id": _int(spk["id"], "signed_pre_key.id"),
            "signed_pre_key_signature": _b64(spk["signature"], "signed_pre_key.signature"),
            "registration_id": _int(data["registration_id"], "registration_id"),
        }
    except KeyError as err:
        raise ValidationError(f"the pywhats device JSON lacks the field {err.args[0]!r}") from None
    fields["pn"] = _jid_tuple(data.get("jid"))
    lid = data.get("lid")
    fields["lid"] = None if lid is None else jid_from_pywhats(lid, "device field lid")
    adv = data.get("adv_signed_device_identity")
    fields["account"] = None if adv is None else _b64(adv, "adv_signed_device_identity")
    push_name = data.get("push_name")
    if push_name is not None and not isinstance(push_name, str):
        raise ValidationError("pywhats device field push_name must be a string or null")
    fields["push_name"] = push_name or ""
    device_id = data.get("device_id")
    if device_id is not None:
        _int(device_id, "device_id")
    try:
        if base is None:
            device = Device(adv_secret_key=secrets.token_bytes(ADV_SECRET_LEN), **fields)
        else:
            device = dataclasses.replace(base, **fields)
        blob = _client_blob(data, device)
        return dataclasses.replace(device, client_data={**device.client_data, CLIENT: blob})
    except ValidationError as err:
        raise ValidationError(f"pywhats device: {err}") from None


def device_to_pywhats(device: Device) -> dict[str, Any]:
    """pywhats' device JSON (what ``DeviceStore.from_json`` reads) of a :class:`~wastore.Device`.

    The inverse of :func:`device_from_pywhats`. A device that pywhats never
    wrote (created by wastore or imported from another client) gets a
    ``created_at`` of now and an empty ``pywhats_version``.

    Raises:
        CorruptRecordError: ``client_data["pywhats"]`` is not what this module writes.
    """
    out = _natural(device)
    raw = device.client_data.get(CLIENT)
    blob: dict[str, Any] = {}
    if raw is not None:
        try:
            blob = json.loads(raw)
            if not isinstance(blob, dict):
                raise ValueError("not an object")
        except ValueError as err:
            raise CorruptRecordError(
                f'client_data["{CLIENT}"] of this device is not pywhats bookkeeping ({err})'
            ) from None
    for key, pair in dict(blob.get("exact") or {}).items():
        if key in _EXACT and isinstance(pair, list) and len(pair) == 2:
            anchor, original = pair
            if anchor == _anchor(device, key):
                out[key] = original
    schema_version = blob.get("schema_version", DEVICE_SCHEMA_VERSION)
    return {
        "version": DEVICE_SCHEMA_VERSION,
        "schema_version": schema_version,
        "pywhats_version": blob.get("pywhats_version", ""),
        "created_at": blob.get("created_at", time.time()),
        **out,
    }
