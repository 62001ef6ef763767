"""Writing a ``useMultiFileAuthState`` folder."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from ...backends.sql import codec
from ...device import Device, now_ms
from ...errors import ValidationError
from ...portable import AccountDump, Row
from .. import libsignal
from .._protos import DecodeError
from ._common import (
    _INDEX_KEY,
    CLIENT,
    Fingerprint,
    PreKeyRecord,
    _Bad,
    _file_name,
    _in,
    baileys_address,
)
from .creds import (
    SENDER_KEY_STATES,
    _bufjson,
    _signal_identities,
    creds_from_device,
    sender_key_form,
)

log = logging.getLogger(__name__)


def _decode_rows(dump: AccountDump) -> Device:
    row = dump.device
    return codec.row_to_device(tuple(row.get(c) for c in codec.DEVICE_COLUMNS), None)


def _write_json(folder: Path, name: str, value: Any) -> None:
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _buffers_as_bufferjson(value: Any) -> Any:
    """``value`` with every ``Buffer.toJSON`` form turned into Baileys' BufferJSON form."""
    if isinstance(value, list):
        return [_buffers_as_bufferjson(x) for x in value]
    if isinstance(value, dict):
        if value.get("type") == "Buffer" and isinstance(value.get("data"), list):
            return _bufjson(bytes(value["data"]))
        return {k: _buffers_as_bufferjson(x) for k, x in value.items()}
    return value


def _files(dump: AccountDump, device: Device) -> Iterable[tuple[str, Any]]:
    t = dump.tables
    yield "creds.json", creds_from_device(device)
    states_form = sender_key_form(device) == SENDER_KEY_STATES
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
        file_name = _file_name("sender-key", f"{group}::{user}::{device_no}")
        if states_form:
            # as Baileys up to 6.7.18 keeps them: the states themselves, Buffers as
            # BufferJSON (which it revives to the Buffers it needs)
            yield file_name, _buffers_as_bufferjson(states)
        else:
            text = json.dumps(states, separators=(",", ":")).encode()
            yield file_name, _bufjson(text)
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
    converted to libsignal-node JSON (:mod:`wastore.formats.libsignal`); sender
    keys are written as Baileys 7 and 6.7.19+ keep them, or, for an account
    read from a folder of Baileys up to 6.7.18, as that Baileys keeps them.
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
