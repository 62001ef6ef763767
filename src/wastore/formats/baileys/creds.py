"""``creds.json`` <-> :class:`~wastore.Device`, both ways."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from ...device import Device
from ...jid import (
    JID,
)
from ...keys import KeyPair
from .. import libsignal
from .._protos import DecodeError
from ._common import (
    _CREDS_ORDER,
    _MAPPED,
    _ME_MAPPED,
    _MODE_MAPPED,
    ADV,
    CLIENT,
    _Bad,
    _bool,
    _buf,
    _in,
    _int,
    _jid,
    _key_pair,
    _obj,
    _opt_int,
    _opt_str,
    _public,
    _str,
    signal_address,
)

log = logging.getLogger(__name__)

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


SENDER_KEY_STATES = "states"
"""The sender-key form of Baileys up to 6.7.18: each file holds the list of states."""


def _bookkeeping(device: Device) -> dict[str, Any]:
    raw = device.client_data.get(CLIENT)
    if raw is None:
        return {}
    try:
        book = json.loads(raw)
    except ValueError:
        book = None
    if not isinstance(book, dict):
        raise _Bad("the account's Baileys bookkeeping (client_data) is not readable")
    return book


def with_sender_key_form(device: Device, form: str) -> Device:
    """``device`` with the sender-key form its Baileys folder used kept in its bookkeeping."""
    book = _bookkeeping(device)
    book["senderKeys"] = form
    text = json.dumps(book, separators=(",", ":"), ensure_ascii=False).encode()
    return device.with_client_data(CLIENT, text)


def sender_key_form(device: Device) -> str | None:
    """The sender-key form kept by :func:`with_sender_key_form` (None: Baileys 7's)."""
    form = _bookkeeping(device).get("senderKeys")
    return form if isinstance(form, str) else None


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
            # Pairing names the phone's identity by our own device's JID (its phone
            # number in Baileys 6, its LID in Baileys 7) with deviceId 0: the key is
            # the account's, the phone's, so it belongs to the user's device 0
            address = JID(user=jid.user, server=jid.server, device=device).signal_address()
        out.append((address, _public(entry.get("identifierKey"), f"{w}.identifierKey")))
    return out


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
