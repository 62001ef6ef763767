"""libsignal-node records <-> libsignal protobuf records, and what an import refuses.

Property: libsignal-node JSON -> protobuf -> libsignal-node JSON gives the same
JSON text, for session records and Baileys sender-key records of every shape
libsignal-node writes (generated here; the Baileys test checks the records a
real Baileys writes). The protobuf side is what python-axolotl reads.

Refusals: a Baileys folder with a truncated file or a session record of an
unknown libsignal-node version is refused with one line naming the file, and
nothing is written to the store.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wastore
from wastore import ValidationError
from wastore.formats import baileys, import_from, libsignal

# python-axolotl after wastore (through wastore.interop.axolotl it imports quietly)
import wastore.interop.axolotl  # isort: skip
from axolotl.groups.state.senderkeyrecord import SenderKeyRecord  # isort: skip
from axolotl.state.sessionrecord import SessionRecord  # isort: skip

LOCAL_IDENTITY = b"\x05" + bytes(range(32))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


key32 = st.binary(min_size=32, max_size=32).map(b64)
pub33 = st.binary(min_size=32, max_size=32).map(lambda b: b64(b"\x05" + b))
timestamps = st.integers(min_value=0, max_value=(1 << 53))
u31 = st.integers(min_value=0, max_value=(1 << 31) - 1)


@st.composite
def chains(draw: Any, chain_type: int) -> dict[str, Any]:
    counter = draw(st.integers(min_value=-1, max_value=5000))
    chain_key: dict[str, Any] = {"counter": counter}
    if draw(st.booleans()) or chain_type == 1:
        chain_key["key"] = draw(key32)
    indexes = draw(st.lists(st.integers(0, max(counter, 0)), max_size=4, unique=True))
    keys = {str(i): draw(key32) for i in sorted(indexes)}
    return {"chainKey": chain_key, "chainType": chain_type, "messageKeys": keys}


@st.composite
def session_entries(draw: Any, *, open_: bool) -> tuple[str, dict[str, Any]]:
    base_key = draw(pub33)
    ours = draw(pub33)
    receiving = draw(st.lists(pub33, max_size=3, unique=True).filter(lambda k: ours not in k))
    chain_map: dict[str, Any] = {k: draw(chains(2)) for k in receiving}
    if draw(st.booleans()) or open_:
        chain_map[ours] = draw(chains(1))
    last_remote = draw(st.sampled_from(receiving)) if receiving and draw(st.booleans()) else None
    entry: dict[str, Any] = {}
    if draw(st.booleans()):
        entry["registrationId"] = draw(u31)
    entry["currentRatchet"] = {
        "ephemeralKeyPair": {"pubKey": ours, "privKey": draw(key32)},
        "lastRemoteEphemeralKey": last_remote if last_remote else draw(pub33),
        "previousCounter": draw(st.integers(min_value=-1, max_value=100000)),
        "rootKey": draw(key32),
    }
    entry["indexInfo"] = {
        "baseKey": base_key,
        "baseKeyType": draw(st.sampled_from([1, 2])),
        "closed": -1 if open_ else draw(timestamps),
        "used": draw(timestamps),
        "created": draw(timestamps),
        "remoteIdentityKey": draw(pub33),
    }
    entry["_chains"] = chain_map
    if draw(st.booleans()):
        pending: dict[str, Any] = {"signedKeyId": draw(u31), "baseKey": draw(pub33)}
        if draw(st.booleans()):
            pending["preKeyId"] = draw(st.integers(1, (1 << 24) - 1))
        entry["pendingPreKey"] = pending
    return base_key, entry


@st.composite
def session_records(draw: Any) -> dict[str, Any]:
    closed = draw(st.lists(session_entries(open_=False), max_size=3))
    sessions = dict(closed)
    if draw(st.booleans()) or not sessions:
        key, entry = draw(session_entries(open_=True))
        sessions.pop(key, None)
        sessions[key] = entry
    return {"_sessions": sessions, "version": "v1"}


def buffer_json(data: bytes) -> dict[str, Any]:
    return {"type": "Buffer", "data": list(data)}


@st.composite
def sender_key_states(draw: Any) -> list[dict[str, Any]]:
    states = []
    for _ in range(draw(st.integers(1, 5))):
        signing = {"public": buffer_json(b"\x05" + draw(st.binary(min_size=32, max_size=32)))}
        # our own state has the private key; another member's state has an empty one
        # (Baileys 7) or none (Baileys 6)
        kind = draw(st.sampled_from(["own", "other-baileys7", "other-baileys6"]))
        if kind == "own":
            signing["private"] = buffer_json(draw(st.binary(min_size=32, max_size=32)))
        elif kind == "other-baileys7":
            signing["private"] = buffer_json(b"")
        states.append(
            {
                "senderKeyId": draw(st.integers(0, (1 << 31) - 1)),
                "senderChainKey": {
                    "iteration": draw(st.integers(0, 1 << 20)),
                    "seed": buffer_json(draw(st.binary(min_size=32, max_size=32))),
                },
                "senderSigningKey": signing,
                "senderMessageKeys": [
                    {"iteration": i, "seed": buffer_json(draw(st.binary(min_size=32, max_size=32)))}
                    for i in draw(st.lists(st.integers(0, 1 << 20), max_size=4, unique=True))
                ],
            }
        )
    return states


def text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session_records())
def test_session_json_protobuf_json_is_identity(record: dict[str, Any]) -> None:
    original = text(record)
    proto = libsignal.session_record_from_node(
        json.loads(original), local_identity=LOCAL_IDENTITY, local_registration_id=7
    )
    back = libsignal.session_record_to_node(proto, now_ms=0)
    assert back.dropped_message_keys == 0
    assert text(back.doc) == original
    # and python-axolotl reads the protobuf record: the open session is its current one
    axolotl = SessionRecord(serialized=proto)
    open_ = [e for e in record["_sessions"].values() if e["indexInfo"]["closed"] == -1]
    assert len(axolotl.getPreviousSessionStates()) == len(record["_sessions"]) - len(open_)
    if open_:
        state = axolotl.getSessionState()
        assert state.getSessionVersion() == 3
        assert bytes(state.getLocalIdentityKey().serialize()) == LOCAL_IDENTITY
        expected = base64.b64decode(open_[0]["currentRatchet"]["rootKey"])
        assert bytes(state.getRootKey().getKeyBytes()) == expected


@settings(max_examples=150, deadline=None)
@given(sender_key_states())
def test_sender_key_json_protobuf_json_is_identity(states: list[dict[str, Any]]) -> None:
    original = text(states)
    proto = libsignal.sender_key_record_from_node(json.loads(original))
    assert text(libsignal.sender_key_record_to_node(proto)) == original
    # libsignal keeps the newest state first; Baileys keeps it last
    newest = SenderKeyRecord(serialized=proto).senderKeyStates[0]
    assert newest.getKeyId() == states[-1]["senderKeyId"]


def test_message_keys_derive_as_libsignal_does() -> None:
    seed = bytes(range(32))
    record = {
        "_sessions": {},
        "version": "v1",
    }
    key, entry = (
        b64(b"\x05" + bytes(32)),
        {
            "registrationId": 1,
            "currentRatchet": {
                "ephemeralKeyPair": {
                    "pubKey": b64(b"\x05" + bytes([1] * 32)),
                    "privKey": b64(bytes(32)),
                },
                "lastRemoteEphemeralKey": b64(b"\x05" + bytes([2] * 32)),
                "previousCounter": 0,
                "rootKey": b64(bytes(32)),
            },
            "indexInfo": {
                "baseKey": b64(b"\x05" + bytes(32)),
                "baseKeyType": 2,
                "closed": -1,
                "used": 1,
                "created": 1,
                "remoteIdentityKey": b64(b"\x05" + bytes([3] * 32)),
            },
            "_chains": {
                b64(b"\x05" + bytes([2] * 32)): {
                    "chainKey": {"counter": 4, "key": b64(bytes(32))},
                    "chainType": 2,
                    "messageKeys": {"3": b64(seed)},
                }
            },
        },
    )
    record["_sessions"] = {key: entry}
    proto = libsignal.session_record_from_node(
        record, local_identity=LOCAL_IDENTITY, local_registration_id=7
    )
    state = SessionRecord(serialized=proto).getSessionState()
    [chain] = state.getStructure().receiverChains
    assert chain.chainKey.index == 5  # libsignal counts the next key, node the last used
    [mk] = chain.messageKeys
    assert mk.index == 3
    assert (bytes(mk.cipherKey), bytes(mk.macKey), bytes(mk.iv)) == libsignal.derive_message_keys(
        seed
    )


# -- refusals ----------------------------------------------------------------------


def baileys_folder(path: Path) -> Path:
    """A Baileys folder (creds.json as Baileys' initAuthCreds writes it, and one session)."""
    d = wastore.Device.new()
    pairing = wastore.KeyPair.generate()
    path.mkdir()

    def buf(b: bytes) -> dict[str, str]:
        return {"type": "Buffer", "data": b64(b)}

    creds = {
        "noiseKey": {"private": buf(d.noise_key.private), "public": buf(d.noise_key.public)},
        "pairingEphemeralKeyPair": {"private": buf(pairing.private), "public": buf(pairing.public)},
        "signedIdentityKey": {
            "private": buf(d.identity_key.private),
            "public": buf(d.identity_key.public),
        },
        "signedPreKey": {
            "keyPair": {
                "private": buf(d.signed_pre_key.private),
                "public": buf(d.signed_pre_key.public),
            },
            "signature": buf(d.signed_pre_key_signature),
            "keyId": 1,
        },
        "registrationId": 1234,
        "advSecretKey": b64(d.adv_secret_key),
        "processedHistoryMessages": [],
        "nextPreKeyId": 1,
        "firstUnuploadedPreKeyId": 1,
        "accountSyncCounter": 0,
        "accountSettings": {"unarchiveChats": False},
        "registered": False,
        "me": {"id": "15550000051:3@s.whatsapp.net", "name": "x"},
    }
    (path / "creds.json").write_text(json.dumps(creds))
    return path


def refused(source: Path, match: str, tmp_path: Path) -> None:
    db = tmp_path / "target.db"

    async def attempt() -> None:
        async with await wastore.open_store(db) as c:
            with pytest.raises(ValidationError, match=match) as info:
                await import_from(c, source, "baileys")
            assert "\n" not in str(info.value)
            assert await c.devices() == []

    asyncio.run(attempt())


def test_baileys_folder_imports(tmp_path: Path) -> None:
    folder = baileys_folder(tmp_path / "auth")
    [dump] = baileys.read(folder)
    assert dump.device["pn"] == "15550000051:3@s.whatsapp.net"
    assert dump.device["registration_id"] == 1234


def test_the_phones_identity_goes_under_the_phones_address(tmp_path: Path) -> None:
    # pairing names the phone's identity by our own device's JID, deviceId 0: its
    # phone number in Baileys 6, its LID in Baileys 7
    folder = baileys_folder(tmp_path / "auth")
    creds = json.loads((folder / "creds.json").read_text())
    pn_key, lid_key = bytes(range(32)), bytes(range(32, 64))
    creds["signalIdentities"] = [
        {
            "identifier": {"name": name, "deviceId": 0},
            "identifierKey": {"type": "Buffer", "data": b64(b"\x05" + key)},
        }
        for name, key in (("15550000051:3@s.whatsapp.net", pn_key), ("98765:3@lid", lid_key))
    ]
    (folder / "creds.json").write_text(json.dumps(creds))
    [dump] = baileys.read(folder)
    identities = {row["address"]: row["key"] for row in dump.tables["identities"]}
    assert identities == {"15550000051@s.whatsapp.net": pn_key, "98765@lid": lid_key}
    # and they go back out in creds.json only, not as identity-key files
    baileys.write(dump, tmp_path / "out")
    assert not list((tmp_path / "out").glob("identity-key-*"))
    back = json.loads((tmp_path / "out" / "creds.json").read_text())
    assert back["signalIdentities"] == creds["signalIdentities"]


def test_sender_keys_go_back_out_in_the_form_the_folder_kept(tmp_path: Path) -> None:
    # Baileys up to 6.7.18 keeps the list of states (protobuf.js writes their bytes as
    # base64 text, a skipped key as {}); 6.7.19+ and 7 the list's JSON text as a Buffer,
    # and read both forms: a folder with any file in that form is theirs
    seed, public = bytes(range(32)), b"\x05" + bytes(range(1, 33))
    states = [
        {
            "senderKeyId": 7,
            "senderChainKey": {"iteration": 2, "seed": b64(seed)},
            "senderSigningKey": {"public": b64(public)},
            "senderMessageKeys": [{}],
        }
    ]
    as_buffer_json = [
        {
            "senderKeyId": 7,
            "senderChainKey": {"iteration": 2, "seed": buffer_json(seed)},
            "senderSigningKey": {"public": buffer_json(public)},
            "senderMessageKeys": [],
        }
    ]
    buffered = {"type": "Buffer", "data": b64(text(as_buffer_json).encode())}
    for n, (values, form) in enumerate(
        [([states, states], list), ([states, buffered], dict), ([buffered], dict)]
    ):
        folder = baileys_folder(tmp_path / f"auth{n}")
        for i, value in enumerate(values):
            name = f"sender-key-120363000000000001@g.us--1555000000{i}--0.json"
            (folder / name).write_text(text(value))
        [dump] = baileys.read(folder)
        baileys.write(dump, tmp_path / f"out{n}")
        written = sorted((tmp_path / f"out{n}").glob("sender-key-*"))
        assert [type(json.loads(path.read_text())) for path in written] == [form] * len(values)
        [again] = baileys.read(tmp_path / f"out{n}")
        assert again.tables["sender_keys"] == dump.tables["sender_keys"]
        if form is list:
            # BufferJSON, which that Baileys revives to the Buffers it needs
            assert json.loads(written[0].read_text()) == [
                {
                    "senderKeyId": 7,
                    "senderChainKey": {
                        "iteration": 2,
                        "seed": {"type": "Buffer", "data": b64(seed)},
                    },
                    "senderSigningKey": {"public": {"type": "Buffer", "data": b64(public)}},
                    "senderMessageKeys": [],
                }
            ]


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    folder = baileys_folder(tmp_path / "auth")
    (folder / "pre-key-1.json").write_text('{"private":{"type":"Buffer","data":"AAAA')
    refused(folder, r"pre-key-1\.json: invalid JSON .* truncated or damaged", tmp_path)


def test_truncated_creds_are_refused(tmp_path: Path) -> None:
    folder = baileys_folder(tmp_path / "auth")
    creds = (folder / "creds.json").read_text()
    (folder / "creds.json").write_text(creds[: len(creds) // 2])
    refused(folder, r"creds\.json: invalid JSON", tmp_path)


def test_unknown_libsignal_node_version_is_refused(tmp_path: Path) -> None:
    folder = baileys_folder(tmp_path / "auth")
    (folder / "session-15550000052.0.json").write_text(
        json.dumps({"_sessions": {}, "version": "v2"})
    )
    refused(folder, r"session-15550000052\.0\.json: session record version 'v2'", tmp_path)


def test_unknown_file_is_refused(tmp_path: Path) -> None:
    folder = baileys_folder(tmp_path / "auth")
    (folder / "mystery-1.json").write_text("{}")
    refused(folder, r"mystery-1\.json: not a file Baileys writes", tmp_path)


def test_export_refuses_a_folder_in_use(tmp_path: Path) -> None:
    folder = baileys_folder(tmp_path / "auth")
    [dump] = baileys.read(folder)
    with pytest.raises(ValidationError, match="not empty"):
        baileys.write(dump, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["creds.json"]


def test_a_malformed_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    folder = baileys_folder(tmp_path / "auth")
    creds = json.loads((folder / "creds.json").read_text())
    secret = list(range(200, 232))
    creds["signedIdentityKey"]["private"] = {"data": secret}  # not a Buffer
    (folder / "creds.json").write_text(json.dumps(creds))
    with pytest.raises(ValidationError, match=r"signedIdentityKey\.private") as info:
        baileys.read(folder)
    assert "200" not in str(info.value) and "231" not in str(info.value)
