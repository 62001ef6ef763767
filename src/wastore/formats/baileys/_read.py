"""Reading a ``useMultiFileAuthState`` folder."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any, Final

from ...device import Device
from ...portable import AccountBuilder, AccountDump
from ...values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MutationMAC,
    TcToken,
)
from .. import libsignal
from ._common import (
    _INDEX_KEY,
    _LEARNING_SOURCE,
    Fingerprint,
    PreKeyRecord,
    _Bad,
    _bool,
    _buf,
    _file_id,
    _in,
    _int,
    _jid,
    _key_pair,
    _load,
    _obj,
    _opt_int,
    _public,
    _str,
    signal_address,
)
from .creds import (
    SENDER_KEY_STATES,
    _signal_identities,
    device_from_creds,
    with_sender_key_form,
)

log = logging.getLogger(__name__)

# -- key files --------------------------------------------------------------------


class _Reader:
    def __init__(self, folder: Path, device: Device, loaded: dict[str, Any]) -> None:
        self.folder = folder
        self.device = device
        self.loaded = loaded  # the sender-key files read already, by name
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
        value = self.loaded.pop(path.name) if path.name in self.loaded else _load(path)
        # Baileys 7 and 6.7.19+ keep the record's JSON text as a Buffer; Baileys up to
        # 6.7.18 kept the list of states itself
        if isinstance(value, dict):
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
    loaded = {
        path.name: _load(path)
        for path in folder.glob("sender-key-*.json")
        if not path.name.startswith("sender-key-memory-") and path.is_file()
    }
    if loaded and all(isinstance(value, list) for value in loaded.values()):
        # Written by a Baileys up to 6.7.18, which reads no other form: an export
        # of this account writes its sender keys back in that form
        device = _in("creds.json", lambda: with_sender_key_form(device, SENDER_KEY_STATES))
    r = _Reader(folder, device, loaded)
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
