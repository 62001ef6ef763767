"""Baileys ``useMultiFileAuthState`` folders (Baileys 6.x and 7.x), both ways.

A folder holds ``creds.json`` and one JSON file per key, named
``<category>-<id>.json`` with ``/`` in the id written ``__`` and ``:`` written
``-``. Values are JSON with Baileys' ``BufferJSON`` encoding
(``{"type": "Buffer", "data": "<base64>"}``). What each file becomes:

==========================================  =========================================
Baileys file                                wastore
==========================================  =========================================
``creds.json``                              the :class:`~wastore.Device` (see below)
``session-<user>[_<domain>].<device>``      ``sessions`` (libsignal-node JSON converted
                                            to a ``RecordStructure``:
                                            :mod:`wastore.formats.libsignal`)
``sender-key-<group>--<user>--<device>``    ``sender_keys`` under ``<group>::<address>``
``pre-key-<id>``                            ``prekeys``; uploaded when ``id <
                                            firstUnuploadedPreKeyId``
``identity-key-<address>``                  ``identities`` (32-byte key)
``app-state-sync-key-<key id>``             ``sync_keys`` (fingerprint as the serialized
                                            ``AppStateSyncKeyFingerprint``)
``app-state-sync-version-<name>``           ``app_state_versions`` + ``app_state_macs``
``lid-mapping-<pn user>`` (and ``_reverse``)  ``lid_pn_mappings``
``device-list-<user>``                      ``device_lists``
``tctoken-<jid>``                           ``tc_tokens`` (``tctoken-__index`` is derived)
``sender-key-memory-<group>``               ``sender_key_devices``
==========================================  =========================================

Signal addresses: Baileys names a device ``user.device`` with a domain suffix
for the non-phone-number servers (``user_1`` LID, ``user_128`` hosted,
``user_129`` hosted LID, as WhatsApp's own domain types); wastore names it
``user[:device]@server``. Baileys 6 had no suffix: its addresses are phone
numbers.

``creds.json``: the keys, registration id, ``advSecretKey``, ``me``
(``id`` -> ``pn``, ``lid``, ``name`` -> ``push_name``, ``verifiedName`` ->
``business_name``), ``account`` (serialized ``ADVSignedDeviceIdentity``),
``platform``, ``registered``, ``pairingCode``, ``pairingEphemeralKeyPair``,
``myAppStateKeyId``, ``lastAccountSyncTimestamp``, ``lastPropHash``,
``routingInfo``, ``accountSettings``, the pre-key counters and
``signedPreKey.timestampS`` are Device fields. Everything else Baileys keeps
there (``processedHistoryMessages``, ``accountSyncCounter``,
``signalIdentities``, ``additionalData``, other ``me`` fields, and the order of
the keys) is kept as Baileys' own bookkeeping in ``Device.client_data["baileys"]``
so that :func:`write` gives Baileys back the same ``creds.json``.
``signalIdentities`` (the phone's identity) also go to ``identities``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from ..backends.sql import codec
from ..device import Device, now_ms
from ..errors import ValidationError
from ..jid import (
    DEFAULT_USER_SERVER,
    HIDDEN_USER_SERVER,
    HOSTED_LID_SERVER,
    HOSTED_SERVER,
    JID,
)
from ..keys import KeyPair
from ..portable import AccountBuilder, AccountDump, Row
from ..values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MutationMAC,
    TcToken,
)
from . import libsignal
from ._protos import DecodeError, message_class

__all__ = ["CLIENT", "read", "write"]

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


# -- creds.json -------------------------------------------------------------------


def _account_bytes(value: Any, where: str) -> bytes:
    acct = _obj(value, where)
    msg = ADV()
    for field in ("details", "accountSignatureKey", "accountSignature", "deviceSignature"):
        if acct.get(field) is not None:
            setattr(msg, field, _buf(acct[field], f"{where}.{field}"))
    return bytes(msg.SerializeToString())


def _template(creds: Mapping[str, Any]) -> dict[str, Any]:
    """creds.json without the values that are Device fields (their places kept as null)."""
    out: dict[str, Any] = {}
    for key, value in creds.items():
        if key in _MAPPED:
            out[key] = None
        elif key == "me" and isinstance(value, dict):
            out[key] = {k: (None if k in _ME_MAPPED else v) for k, v in value.items()}
        elif key == "accountSettings" and isinstance(value, dict):
            settings: dict[str, Any] = {}
            for k, v in value.items():
                if k == "unarchiveChats":
                    settings[k] = None
                elif k == "defaultDisappearingMode" and isinstance(v, dict):
                    settings[k] = {m: (None if m in _MODE_MAPPED else x) for m, x in v.items()}
                else:
                    settings[k] = v
            out[key] = settings
        else:
            out[key] = value
    return out


def device_from_creds(creds: Any, where: str = "creds.json") -> Device:
    """The :class:`~wastore.Device` of a parsed Baileys ``creds.json``.

    Raises:
        ValidationError: a field is missing or malformed (the message names it).
    """
    c = _obj(creds, where)
    spk = _obj(c.get("signedPreKey"), f"{where} signedPreKey")
    me = c.get("me")
    me = _obj(me, f"{where} me") if me is not None else {}
    settings = _obj(c.get("accountSettings") or {}, f"{where} accountSettings")
    mode = _obj(settings.get("defaultDisappearingMode") or {}, f"{where} defaultDisappearingMode")
    adv_text = _str(c.get("advSecretKey"), f"{where} advSecretKey")
    app_key = c.get("myAppStateKeyId")
    fields: dict[str, Any] = {
        "noise_key": _key_pair(c.get("noiseKey"), f"{where} noiseKey"),
        "identity_key": _key_pair(c.get("signedIdentityKey"), f"{where} signedIdentityKey"),
        "signed_pre_key": _key_pair(spk.get("keyPair"), f"{where} signedPreKey.keyPair"),
        "signed_pre_key_signature": _buf(spk.get("signature"), f"{where} signedPreKey.signature"),
        "signed_pre_key_id": _int(spk.get("keyId"), f"{where} signedPreKey.keyId"),
        "registration_id": _int(c.get("registrationId"), f"{where} registrationId"),
        "adv_secret_key": libsignal.buffer_bytes(adv_text, f"{where} advSecretKey"),
        "next_pre_key_id": _int(c.get("nextPreKeyId", 1), f"{where} nextPreKeyId"),
        "first_unupload_pre_key_id": _int(
            c.get("firstUnuploadedPreKeyId", 1), f"{where} firstUnuploadedPreKeyId"
        ),
        "registered": _bool(c.get("registered", False), f"{where} registered"),
        "pairing_code": _opt_str(c.get("pairingCode"), f"{where} pairingCode"),
        "props_hash": _opt_str(c.get("lastPropHash"), f"{where} lastPropHash"),
        "platform": _opt_str(c.get("platform"), f"{where} platform"),
        "last_account_sync_timestamp": _opt_int(
            c.get("lastAccountSyncTimestamp"), f"{where} lastAccountSyncTimestamp"
        ),
        "unarchive_chats": _bool(
            settings.get("unarchiveChats", False), f"{where} accountSettings.unarchiveChats"
        ),
        "default_disappearing_expiration": _opt_int(
            mode.get("ephemeralExpiration"), f"{where} ephemeralExpiration"
        ),
        "default_disappearing_timestamp": _opt_int(
            mode.get("ephemeralSettingTimestamp"), f"{where} ephemeralSettingTimestamp"
        ),
        "push_name": _opt_str(me.get("name"), f"{where} me.name") or "",
        "business_name": _opt_str(me.get("verifiedName"), f"{where} me.verifiedName"),
    }
    if spk.get("timestampS") is not None:
        seconds = _int(spk["timestampS"], f"{where} signedPreKey.timestampS")
        fields["last_signed_pre_key_rotation_ms"] = seconds * 1000
    if c.get("pairingEphemeralKeyPair") is not None:
        fields["pairing_ephemeral_key"] = _key_pair(
            c["pairingEphemeralKeyPair"], f"{where} pairingEphemeralKeyPair"
        )
    if c.get("routingInfo") is not None:
        fields["edge_routing_info"] = _buf(c["routingInfo"], f"{where} routingInfo")
    if app_key is not None:
        fields["app_state_key_id"] = libsignal.buffer_bytes(app_key, f"{where} myAppStateKeyId")
    if c.get("account") is not None:
        fields["account"] = _account_bytes(c["account"], f"{where} account")
    if me.get("id") is not None:
        fields["pn"] = _jid(me["id"], f"{where} me.id")
    if me.get("lid") is not None:
        fields["lid"] = _jid(me["lid"], f"{where} me.lid")
    bookkeeping = json.dumps(
        {"creds": _template(c)}, separators=(",", ":"), ensure_ascii=False
    ).encode()
    fields["client_data"] = {CLIENT: bookkeeping}
    return _in(where, lambda: Device(**fields))


def _signal_identities(creds: Mapping[str, Any], where: str) -> list[tuple[str, bytes]]:
    out = []
    items = creds.get("signalIdentities") or []
    if not isinstance(items, list):
        raise _Bad(f"{where} signalIdentities: expected a list")
    for n, item in enumerate(items):
        w = f"{where} signalIdentities[{n}]"
        entry = _obj(item, w)
        ident = _obj(entry.get("identifier"), f"{w}.identifier")
        name = _str(ident.get("name"), f"{w}.identifier.name")
        device = _int(ident.get("deviceId", 0), f"{w}.identifier.deviceId", 0, 65535)
        jid = _jid(name, f"{w}.identifier.name") if "@" in name else None
        if jid is None:
            address = signal_address(f"{name}.{device}", w)
        else:
            address = jid.signal_address()
            if device and not jid.device:
                address = JID(user=jid.user, server=jid.server, device=device).signal_address()
        out.append((address, _public(entry.get("identifierKey"), f"{w}.identifierKey")))
    return out


# -- key files --------------------------------------------------------------------


class _Reader:
    def __init__(self, folder: Path, device: Device) -> None:
        self.folder = folder
        self.device = device
        self.b = AccountBuilder(device)
        self.local_identity = b"\x05" + device.identity_key.public
        self.lid_forward: dict[str, tuple[str, int]] = {}
        self.lid_reverse: dict[str, tuple[str, int]] = {}

    def mtime(self, path: Path) -> int:
        return int(path.stat().st_mtime)

    def session(self, path: Path, key_id: str) -> None:
        address = signal_address(key_id, path.name)
        record = _in(
            path.name,
            lambda: libsignal.session_record_from_node(
                _load(path),
                local_identity=self.local_identity,
                local_registration_id=self.device.registration_id,
            ),
        )
        self.b.put_session(address, record)

    def sender_key(self, path: Path, key_id: str) -> None:
        group, sep, rest = key_id.rpartition("--")
        group, sep2, user = group.rpartition("--")
        if not sep or not sep2:
            raise _Bad(f"{path.name}: not a sender-key name (group--user--device)")
        group_jid = _jid(group, path.name)
        address = signal_address(f"{user}.{rest}", path.name)
        value = _load(path)
        if isinstance(value, dict):  # Baileys 7: the record's JSON text as a Buffer
            text = _buf(value, path.name)
            try:
                value = json.loads(text)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise _Bad(f"{path.name}: the sender-key record is not JSON") from None
        record = _in(path.name, lambda: libsignal.sender_key_record_from_node(value))
        self.b.put_sender_key(f"{group_jid}::{address}", record)

    def pre_key(self, path: Path, key_id: str) -> None:
        pid = _int(key_id if key_id.isdigit() else None, f"{path.name}: pre-key id", 0)
        pair = _key_pair(_load(path), path.name)
        rec = PreKeyRecord(id=pid, publicKey=b"\x05" + pair.public, privateKey=pair.private)
        uploaded = pid < self.device.first_unupload_pre_key_id
        _in(path.name, lambda: self.b.store_prekey(pid, rec.SerializeToString(), uploaded))

    def identity(self, path: Path, key_id: str) -> None:
        address = signal_address(key_id, path.name)
        self.b.put_identity(address, _public(_load(path), path.name))

    def sync_key(self, path: Path, key_id: str) -> None:
        key_bytes = libsignal.buffer_bytes(key_id, f"{path.name}: key id")
        data = _obj(_load(path), path.name)
        fp = Fingerprint()
        if data.get("fingerprint") is not None:
            f = _obj(data["fingerprint"], f"{path.name} fingerprint")
            if f.get("rawId") is not None:
                fp.rawId = _int(f["rawId"], f"{path.name} rawId", 0, (1 << 32) - 1)
            if f.get("currentIndex") is not None:
                fp.currentIndex = _int(
                    f["currentIndex"], f"{path.name} currentIndex", 0, (1 << 32) - 1
                )
            for i in f.get("deviceIndexes") or []:
                fp.deviceIndexes.append(_int(i, f"{path.name} deviceIndexes", 0, (1 << 32) - 1))
        key = _in(
            path.name,
            lambda: AppStateSyncKey(
                key_data=_buf(data.get("keyData"), f"{path.name} keyData"),
                fingerprint=fp.SerializeToString(),
                timestamp=_int(data.get("timestamp", 0), f"{path.name} timestamp"),
            ),
        )
        _in(path.name, lambda: self.b.set_sync_key(key_bytes, key))

    def sync_version(self, path: Path, name: str) -> None:
        data = _obj(_load(path), path.name)
        version = _int(data.get("version"), f"{path.name} version")
        state = _in(
            path.name, lambda: HashState(version=version, hash=_buf(data.get("hash"), path.name))
        )
        macs = []
        for index, entry in _obj(data.get("indexValueMap") or {}, path.name).items():
            e = _obj(entry, f"{path.name} indexValueMap")
            index_mac = libsignal.buffer_bytes(index, f"{path.name} index MAC")
            value_mac = _buf(e.get("valueMac"), f"{path.name} valueMac")
            macs.append(_in(path.name, partial(MutationMAC, index_mac, value_mac)))
        _in(path.name, lambda: self.b.set_version(name, state))
        _in(path.name, lambda: self.b.put_mutation_macs(name, version, macs))

    def lid_mapping(self, path: Path, key_id: str) -> None:
        other = _str(_load(path), path.name)
        if key_id.endswith("_reverse"):
            self.lid_reverse[key_id[: -len("_reverse")]] = (other, self.mtime(path))
        else:
            self.lid_forward[key_id] = (other, self.mtime(path))

    def device_list(self, path: Path, user: str) -> None:
        items = _load(path)
        if not isinstance(items, list):
            raise _Bad(f"{path.name}: expected a list of device numbers")
        devices = tuple(
            DeviceInfo(device_id=_int(d, path.name, 0, 65535)) for d in dict.fromkeys(items)
        )
        record = _in(
            path.name,
            lambda: DeviceListRecord(user=user, devices=devices, timestamp=self.mtime(path)),
        )
        self.b.update_device_list(record)

    def tc_token(self, path: Path, jid: str) -> None:
        if jid == _INDEX_KEY:
            return  # Baileys' index of the tokens: rebuilt from them on export
        data = _obj(_load(path), path.name)
        token = _in(
            path.name,
            lambda: TcToken(
                token=_buf(data.get("token"), f"{path.name} token") if data.get("token") else b"",
                token_timestamp=_int(data.get("timestamp", 0), f"{path.name} timestamp"),
                sender_timestamp=_opt_int(
                    data.get("senderTimestamp"), f"{path.name} senderTimestamp"
                ),
            ),
        )
        _in(path.name, lambda: self.b.put_tc_token(jid, token))

    def sender_key_memory(self, path: Path, group: str) -> None:
        data = _obj(_load(path), path.name)
        items = [(jid, _bool(has, f"{path.name} {jid}")) for jid, has in data.items()]
        _in(path.name, lambda: self.b.set_sender_key_status(group, items))

    def finish_lid_mappings(self) -> None:
        pairs: dict[str, tuple[str, int]] = {}
        for pn, (lid, t) in self.lid_forward.items():
            pairs[lid] = (pn, t)
        for lid, (pn, t) in self.lid_reverse.items():
            pairs.setdefault(lid, (pn, t))
        for lid, (pn, t) in sorted(pairs.items()):
            entry = _in(
                f"lid-mapping-{pn}.json",
                partial(
                    LidPnMapping,
                    lid=lid,
                    phone_number=pn,
                    created_at=t,
                    updated_at=t,
                    learning_source=_LEARNING_SOURCE,
                ),
            )
            self.b.put_lid_mapping(entry)


# Longest prefix first: "sender-key-memory-" before "sender-key-".
_CATEGORIES: Final[tuple[tuple[str, str], ...]] = (
    ("sender-key-memory-", "sender_key_memory"),
    ("sender-key-", "sender_key"),
    ("session-", "session"),
    ("pre-key-", "pre_key"),
    ("identity-key-", "identity"),
    ("app-state-sync-key-", "sync_key"),
    ("app-state-sync-version-", "sync_version"),
    ("lid-mapping-", "lid_mapping"),
    ("device-list-", "device_list"),
    ("tctoken-", "tc_token"),
)


def read(source: Path, *, jid: str | None = None) -> list[AccountDump]:
    """The account of a Baileys ``useMultiFileAuthState`` folder.

    Args:
        source: the folder (``creds.json`` and the key files).
        jid: when given, the account is returned only if its phone number or LID
            is this JID's user.

    Raises:
        ValidationError: the folder or a file in it cannot be read (the message
            names the file); nothing is written anywhere.
    """
    folder = Path(source)
    if not folder.is_dir():
        raise _Bad(f"{folder}: not a Baileys auth folder (not a directory)")
    creds_path = folder / "creds.json"
    if not creds_path.is_file():
        raise _Bad(f"{folder}: not a Baileys auth folder (no creds.json)")
    creds = _load(creds_path)
    device = device_from_creds(creds, "creds.json")
    if jid is not None and not _matches(device, jid):
        return []
    r = _Reader(folder, device)
    for address, key in _signal_identities(creds, "creds.json"):
        r.b.put_identity(address, key)
    for path in sorted(folder.iterdir()):
        name = path.name
        if name == "creds.json" or not name.endswith(".json") or not path.is_file():
            continue
        for prefix, method in _CATEGORIES:
            if name.startswith(prefix):
                getattr(r, method)(path, _file_id(name, prefix))
                break
        else:
            raise _Bad(
                f"{path}: not a file Baileys writes (unknown category); move it out of the "
                "folder if it is not part of the account"
            )
    r.finish_lid_mappings()
    return [r.b.build()]


def _matches(device: Device, jid: str) -> bool:
    wanted = _jid(jid, "jid").user
    return any(j is not None and j.user == wanted for j in (device.pn, device.lid))


# -- writing ----------------------------------------------------------------------


def _bufjson(data: bytes) -> dict[str, str]:
    return {"type": "Buffer", "data": base64.b64encode(data).decode("ascii")}


def _pair_json(pair: KeyPair) -> dict[str, Any]:
    return {"private": _bufjson(pair.private), "public": _bufjson(pair.public)}


def _account_json(data: bytes) -> dict[str, str]:
    msg = ADV()
    try:
        msg.ParseFromString(data)
    except DecodeError:
        raise _Bad("the account's ADVSignedDeviceIdentity cannot be decoded") from None
    out = {}
    for field in ("details", "accountSignatureKey", "accountSignature", "deviceSignature"):
        if msg.HasField(field):
            out[field] = base64.b64encode(getattr(msg, field)).decode("ascii")
    return out


def creds_from_device(device: Device) -> dict[str, Any]:
    """Baileys' ``creds.json`` for ``device`` (with its Baileys bookkeeping, if any)."""
    template: dict[str, Any] = {}
    raw = device.client_data.get(CLIENT)
    if raw is not None:
        try:
            template = json.loads(raw)["creds"]
        except (ValueError, KeyError, TypeError):
            raise _Bad("the account's Baileys bookkeeping (client_data) is not readable") from None
    d = device
    mode_values = {
        "ephemeralExpiration": d.default_disappearing_expiration,
        "ephemeralSettingTimestamp": d.default_disappearing_timestamp,
    }
    settings: dict[str, Any] = dict(template.get("accountSettings") or {})
    settings["unarchiveChats"] = d.unarchive_chats
    mode = dict(settings.get("defaultDisappearingMode") or {})
    for k, value in mode_values.items():
        if value is not None:
            mode[k] = value
        else:
            mode.pop(k, None)
    if mode:
        settings["defaultDisappearingMode"] = mode
    else:
        settings.pop("defaultDisappearingMode", None)
    me: dict[str, Any] = dict(template.get("me") or {})
    me_values = {
        "id": None if d.pn is None else str(d.pn),
        "lid": None if d.lid is None else str(d.lid),
        "name": d.push_name if (d.push_name or "name" in me) else None,
        "verifiedName": d.business_name,
    }
    for k, text in me_values.items():
        if text is not None:
            me[k] = text
        else:
            me.pop(k, None)
    spk: dict[str, Any] = {
        "keyPair": _pair_json(d.signed_pre_key),
        "signature": _bufjson(d.signed_pre_key_signature),
        "keyId": d.signed_pre_key_id,
    }
    if d.last_signed_pre_key_rotation_ms:
        spk["timestampS"] = d.last_signed_pre_key_rotation_ms // 1000
    values: dict[str, Any] = {
        "noiseKey": _pair_json(d.noise_key),
        "pairingEphemeralKeyPair": (
            _pair_json(d.pairing_ephemeral_key)
            if d.pairing_ephemeral_key is not None
            else _pair_json(KeyPair.generate())  # Baileys expects one: a fresh, unused pair
        ),
        "signedIdentityKey": _pair_json(d.identity_key),
        "signedPreKey": spk,
        "registrationId": d.registration_id,
        "advSecretKey": base64.b64encode(d.adv_secret_key).decode("ascii"),
        "processedHistoryMessages": template.get("processedHistoryMessages", []),
        "nextPreKeyId": d.next_pre_key_id,
        "firstUnuploadedPreKeyId": d.first_unupload_pre_key_id,
        "accountSyncCounter": template.get("accountSyncCounter", 0),
        "accountSettings": settings,
        "registered": d.registered,
        "pairingCode": d.pairing_code,
        "lastPropHash": d.props_hash,
        "routingInfo": None if d.edge_routing_info is None else _bufjson(d.edge_routing_info),
        "me": me or None,
        "account": None if d.account is None else _account_json(d.account),
        "platform": d.platform,
        "myAppStateKeyId": (
            None
            if d.app_state_key_id is None
            else base64.b64encode(d.app_state_key_id).decode("ascii")
        ),
        "lastAccountSyncTimestamp": d.last_account_sync_timestamp,
    }
    out: dict[str, Any] = {}
    for key in list(template) + [k for k in _CREDS_ORDER if k not in template]:
        value = values[key] if key in values else template.get(key)
        if value is not None:
            out[key] = value
    return out


def _decode_rows(dump: AccountDump) -> Device:
    row = dump.device
    return codec.row_to_device(tuple(row.get(c) for c in codec.DEVICE_COLUMNS), None)


def _write_json(folder: Path, name: str, value: Any) -> None:
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _files(dump: AccountDump, device: Device) -> Iterable[tuple[str, Any]]:
    t = dump.tables
    yield "creds.json", creds_from_device(device)
    dropped = unnamed = 0
    now = now_ms()
    for row in t.get("sessions", []):
        name = baileys_address(row["address"])
        if name is None:
            unnamed += 1
            continue
        conv = _in(
            f"session {row['address']}",
            partial(libsignal.session_record_to_node, row["record"], now_ms=now),
        )
        dropped += conv.dropped_message_keys
        yield _file_name("session", name), conv.doc
    for row in t.get("sender_keys", []):
        group, sep, address = row["address"].partition("::")
        name = baileys_address(address)
        if not sep or name is None:
            unnamed += 1
            continue
        user, _, device_no = name.rpartition(".")
        states = _in(
            f"sender key {row['address']}",
            partial(libsignal.sender_key_record_to_node, row["record"]),
        )
        text = json.dumps(states, separators=(",", ":")).encode()
        yield _file_name("sender-key", f"{group}::{user}::{device_no}"), _bufjson(text)
    for row in t.get("prekeys", []):
        rec = PreKeyRecord()
        try:
            rec.ParseFromString(row["record"])
        except DecodeError:
            raise _Bad(f"pre-key {row['id']}: not a libsignal PreKeyRecordStructure") from None
        public = rec.publicKey[1:] if len(rec.publicKey) == 33 else rec.publicKey
        yield (
            _file_name("pre-key", str(row["id"])),
            {"private": _bufjson(rec.privateKey), "public": _bufjson(public)},
        )
    own = set(_own_identities(device))
    for row in t.get("identities", []):
        name = baileys_address(row["address"])
        if name is None:
            unnamed += 1
            continue
        if (row["address"], row["key"]) in own:
            continue  # the phone's identity: in creds.signalIdentities already
        yield _file_name("identity-key", name), _bufjson(b"\x05" + row["key"])
    for row in t.get("sync_keys", []):
        yield (
            _file_name("app-state-sync-key", base64.b64encode(row["key_id"]).decode()),
            (_sync_key_json(row)),
        )
    macs: dict[str, dict[str, Any]] = {}
    for row in t.get("app_state_macs", []):
        index = base64.b64encode(row["index_mac"]).decode("ascii")
        macs.setdefault(row["name"], {})[index] = {"valueMac": _bufjson(row["value_mac"])}
    for row in t.get("app_state_versions", []):
        yield (
            _file_name("app-state-sync-version", row["name"]),
            {
                "version": row["version"],
                "hash": _bufjson(row["hash"]),
                "indexValueMap": macs.get(row["name"], {}),
            },
        )
    for row in t.get("lid_pn_mappings", []):
        yield _file_name("lid-mapping", row["phone_number"]), row["lid"]
        yield _file_name("lid-mapping", f"{row['lid']}_reverse"), row["phone_number"]
    for row in t.get("device_lists", []):
        record = codec.device_list(
            (row["devices"], row["timestamp"], row["phash"], row["raw_id"]), row["user_id"]
        )
        yield _file_name("device-list", record.user), [str(x.device_id) for x in record.devices]
    jids = []
    for row in t.get("tc_tokens", []):
        entry: dict[str, Any] = {"token": _bufjson(row["token"])}
        if row["token"] or row["token_timestamp"]:
            entry["timestamp"] = str(row["token_timestamp"])
        if row["sender_timestamp"] is not None:
            entry["senderTimestamp"] = row["sender_timestamp"]
        jids.append(row["jid"])
        yield _file_name("tctoken", row["jid"]), entry
    if jids:
        yield _file_name("tctoken", _INDEX_KEY), {"token": _bufjson(json.dumps(jids).encode())}
    memory: dict[str, dict[str, bool]] = {}
    for row in t.get("sender_key_devices", []):
        memory.setdefault(row["group_jid"], {})[row["device_jid"]] = bool(row["has_key"])
    for group, entries in memory.items():
        yield _file_name("sender-key-memory", group), entries
    if dropped:
        log.warning(
            "%d skipped message key(s) had no seed (made by another libsignal client) and "
            "were left out: messages still missing from before the export cannot be decrypted",
            dropped,
        )
    if unnamed:
        log.warning(
            "%d Signal record(s) under addresses Baileys cannot name were left out", unnamed
        )


def _sync_key_json(row: Row) -> dict[str, Any]:
    fp = Fingerprint()
    try:
        fp.ParseFromString(row["fingerprint"])
    except DecodeError:
        raise _Bad("an app-state sync key's fingerprint cannot be decoded") from None
    fingerprint: dict[str, Any] = {}
    if fp.HasField("rawId"):
        fingerprint["rawId"] = fp.rawId
    if fp.HasField("currentIndex"):
        fingerprint["currentIndex"] = fp.currentIndex
    if len(fp.deviceIndexes):
        fingerprint["deviceIndexes"] = list(fp.deviceIndexes)
    return {
        "keyData": base64.b64encode(row["key_data"]).decode("ascii"),
        "fingerprint": fingerprint,
        "timestamp": str(row["timestamp"]),
    }


def _own_identities(device: Device) -> list[tuple[str, bytes]]:
    raw = device.client_data.get(CLIENT)
    if raw is None:
        return []
    try:
        creds = json.loads(raw)["creds"]
        return _signal_identities(creds, "client_data")
    except (ValueError, KeyError, TypeError, ValidationError):
        return []


def write(dump: AccountDump, folder: Path) -> None:
    """Write ``dump`` as a Baileys ``useMultiFileAuthState`` folder.

    The folder must not exist or be empty. Files are written into a new folder
    beside it, then moved into place, so a failure leaves no half-written
    account; files are private (mode 0600). Sessions and sender keys are
    converted to libsignal-node JSON (:mod:`wastore.formats.libsignal`).
    What Baileys has no place for (archived signed pre-keys, base keys, sent
    messages, message secrets, pending messages, group metadata, records under
    addresses Baileys cannot name) is left out.

    Raises:
        ValidationError: the folder is not empty, or a record cannot be converted.
    """
    target = Path(folder)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise _Bad(f"{target}: the folder exists and is not empty; choose a new folder")
    device = _decode_rows(dump)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        written: set[str] = set()
        for name, value in _files(dump, device):
            if name in written:
                raise _Bad(f"two records map to the same Baileys file {name}")
            written.add(name)
            _write_json(staging, name, value)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
