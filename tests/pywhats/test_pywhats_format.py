"""wastore.formats.pywhats: pywhats' JIDs, its device JSON as a Device (exactly), and
reading a pywhats session (device JSON + .signal.db) for ``wastore import``."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wastore
from wastore import JID, ValidationError
from wastore.formats import import_from
from wastore.formats import pywhats as fmt
from wastore.interop.bridge import SyncContainer
from wastore.interop.pywhats import SignalStores

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pywhats.appstate.keys import AppStateSyncKey
    from pywhats.appstate.patches import HashState
    from pywhats.appstate.store import MutationMac
    from pywhats.pairing import make_fresh_device
    from pywhats.signal.experimental.keys import generate_pre_key
    from pywhats.signal.experimental.ratchet import RatchetState
    from pywhats.signal.experimental.sender_key import create_sender_key_state
    from pywhats.signal.experimental.sqlite_store import SqliteStore
    from pywhats.store import DeviceStore, JIDTuple, save_device_store

PEER = "15559990000:1@s.whatsapp.net"
GROUP = "120363000000000000@g.us"


# -- JIDs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # pywhats' own LID at login: user.agent.device (its str() of user "X.0", device 1)
        ("111111111111111.0.1@lid", JID("111111111111111", "lid", agent=0, device=1)),
        ("111111111111111.0:1@lid", JID("111111111111111", "lid", agent=0, device=1)),
        ("111111111111111.2.7@lid", JID("111111111111111", "lid", agent=2, device=7)),
        ("15551230000.3@s.whatsapp.net", JID("15551230000", "s.whatsapp.net", device=3)),
        ("15551230000:3@s.whatsapp.net", JID("15551230000", "s.whatsapp.net", device=3)),
        ("15551230000:0@s.whatsapp.net", JID("15551230000", "s.whatsapp.net")),
        ("15551230000@s.whatsapp.net", JID("15551230000", "s.whatsapp.net")),
        ("120363000000000000@g.us", JID("120363000000000000", "g.us")),
    ],
)
def test_pywhats_jids(text: str, expected: JID) -> None:
    assert fmt.jid_from_pywhats(text) == expected
    # Written back in pywhats' form, pywhats' own parser reads the same device.
    from pywhats.binary.jid import parse_jid

    back = parse_jid(fmt.jid_to_pywhats(expected))
    assert (back.device, back.server) == (expected.device, expected.server)


def test_wastore_jid_parser_is_not_loosened() -> None:
    with pytest.raises(ValidationError):
        JID.parse("111111111111111.0.1@lid")


@pytest.mark.parametrize(
    "text", ["", "no-at", "@lid", "a.b.c@lid", "1:x@s.whatsapp.net", "1.123456@lid", "1@Bad"]
)
def test_bad_pywhats_jids(text: str) -> None:
    with pytest.raises(ValidationError):
        fmt.jid_from_pywhats(text)


def test_session_and_sender_key_addresses() -> None:
    assert fmt.session_address("15559990000:0@s.whatsapp.net") == "15559990000@s.whatsapp.net"
    assert fmt.session_address(PEER) == PEER
    assert fmt.session_address("88887777:2@lid") == "88887777:2@lid"
    assert fmt.sender_key_address(GROUP, PEER) == f"{GROUP}::{PEER}"


# -- the device ----------------------------------------------------------------------


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


jid_users = st.sampled_from(["15551230000", "15551230000.0", "15551230000.7"])
lids = st.none() | st.sampled_from(
    ["111111111111111.0.1@lid", "111111111111111.0:1@lid", "5@lid", "5.2@lid", "5:3@lid"]
)


@settings(max_examples=60, deadline=None)
@given(
    jid=st.none() | st.tuples(jid_users, st.integers(0, 20)),
    device_id=st.none() | st.integers(0, 20),
    same_device_id=st.booleans(),
    push_name=st.none() | st.sampled_from(["", "Tester", "Zoë 🙂"]),
    lid=lids,
    adv=st.booleans(),
    created_at=st.floats(0, 2e9, allow_nan=False) | st.integers(0, 2_000_000_000),
    version=st.sampled_from(["", "pywhats", "0.2.0"]),
)
def test_a_pywhats_device_round_trips_exactly(
    jid: Any,
    device_id: int | None,
    same_device_id: bool,
    push_name: str | None,
    lid: str | None,
    adv: bool,
    created_at: float,
    version: str,
) -> None:
    d = make_fresh_device()
    d.jid = None if jid is None else JIDTuple(user=jid[0], server="s.whatsapp.net", device=jid[1])
    d.device_id = jid[1] if (same_device_id and jid is not None) else device_id
    d.push_name, d.lid = push_name, lid
    d.adv_signed_device_identity = secrets.token_bytes(90) if adv else None
    d.created_at, d.pywhats_version = created_at, version
    data = d.to_json()
    device = fmt.device_from_pywhats(data)
    assert fmt.device_to_pywhats(device) == data
    assert DeviceStore.from_json(fmt.device_to_pywhats(device)) == d
    # The mapping: what WhatsApp defines is in Device fields, the rest in client_data.
    assert device.noise_key.private == d.noise_private
    assert device.identity_key.public == d.identity_public
    assert device.signed_pre_key_signature == d.signed_pre_key_signature
    assert device.registration_id == d.registration_id
    assert device.push_name == (push_name or "")
    assert device.account == d.adv_signed_device_identity
    assert (device.pn is None) == (jid is None)
    assert device.key_problems() == []
    blob = json.loads(device.client_data["pywhats"])
    assert blob["created_at"] == created_at
    assert blob["pywhats_version"] == version


def test_the_device_keeps_what_pywhats_does_not_know() -> None:
    d = make_fresh_device()
    base = wastore.Device.new()
    base = dataclasses.replace(
        base, app_version=(2, 3000, 1), platform="android", client_data={"baileys": b"{}"}
    )
    device = fmt.device_from_pywhats(d.to_json(), base)
    assert device.app_version == (2, 3000, 1)
    assert device.platform == "android"
    assert device.adv_secret_key == base.adv_secret_key
    assert device.client_data["baileys"] == b"{}"
    assert device.identity_key.private == d.identity_private


def test_bookkeeping_for_a_field_someone_else_changed_is_not_applied() -> None:
    d = make_fresh_device()
    d.lid = "111111111111111.0.1@lid"
    device = fmt.device_from_pywhats(d.to_json())
    assert fmt.device_to_pywhats(device)["lid"] == "111111111111111.0.1@lid"
    moved = dataclasses.replace(device, lid=JID("222", "lid", device=4))  # e.g. another client
    assert fmt.device_to_pywhats(moved)["lid"] == "222.4@lid"
    assert fmt.device_to_pywhats(dataclasses.replace(moved, lid=device.lid))["lid"] == d.lid


def test_a_device_pywhats_never_wrote() -> None:
    data = fmt.device_to_pywhats(wastore.Device.new())
    restored = DeviceStore.from_json(data)
    assert restored.jid is None
    assert restored.push_name is None
    assert restored.pywhats_version == ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"noise_private": None}, "noise_private must be a base64 string"),
        ({"identity_public": "not base64!"}, "identity_public is not valid base64"),
        ({"identity_public": _b64(31)}, "identity: public key must be exactly 32 bytes"),
        ({"registration_id": 1 << 31}, "registration_id"),
        ({"registration_id": "1"}, "registration_id must be an integer"),
        ({"lid": "a.b.c@lid"}, "lid"),
        ({"jid": {"user": "1"}}, "jid lacks 'server'"),
        ({"push_name": 5}, "push_name"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"signed_pre_key": "x"}, "signed_pre_key must be an object"),
    ],
)
def test_a_bad_device_is_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    data = {**make_fresh_device().to_json(), **change}
    with pytest.raises(ValidationError, match=message) as err:
        fmt.device_from_pywhats(data)
    for secret in ("noise_private", "identity_private"):
        value = data.get(secret)
        if isinstance(value, str) and len(value) > 8:
            assert value not in str(err.value)


def test_a_missing_field_is_named() -> None:
    data = make_fresh_device().to_json()
    del data["noise_public"]
    with pytest.raises(ValidationError, match="noise_public"):
        fmt.device_from_pywhats(data)


# -- reading a session ---------------------------------------------------------------------


def _ratchet() -> RatchetState:
    r = secrets.token_bytes
    return RatchetState(
        dhs_priv=r(32), dhs_pub=r(32), dhr=None, rk=r(32), cks=r(32), ckr=None, ns=1, nr=0, pn=0
    )


def _session(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A pywhats session written by pywhats' own stores, with rows in every table."""
    path = str(tmp_path / "acct.session")
    d = make_fresh_device()
    d.jid = JIDTuple(user="15551230000", server="s.whatsapp.net", device=3)
    d.device_id, d.push_name, d.lid = 3, "Tester", "111111111111111.0.1@lid"
    save_device_store(d, path)
    s = SqliteStore(f"{path}.signal.db")
    made: dict[str, Any] = {"device": d, "opk": generate_pre_key(7)}
    made["session"] = _ratchet()
    s.sessions.save(PEER, made["session"])
    s.sessions.save("15559990000:0@s.whatsapp.net", _ratchet())
    s.identities.save(PEER, b"i" * 32)
    s.lid_map.set("15559990000", "88887777")
    s.prekeys.save(made["opk"])
    s.prekeys.save(generate_pre_key(8))
    s.app_state_keys.put(AppStateSyncKey(b"\x00\x01", b"k" * 32, b"fp", 100))
    s.app_state.put_version("regular", HashState(version=3, hash=b"h" * 128))
    mac = secrets.token_bytes(32)
    made["mac"] = mac
    s.app_state.put_mutation_macs("regular", 2, [MutationMac(mac, b"o" * 32)])
    s.app_state.put_mutation_macs("regular", 3, [MutationMac(mac, b"n" * 32)])
    made["sender_key"] = create_sender_key_state(key_id=4)
    s.sender_keys.save(GROUP, PEER, made["sender_key"])
    s.close()
    return path, made


def test_read_a_session_made_by_pywhats(tmp_path: Path) -> None:
    path, made = _session(tmp_path)
    [dump] = fmt.read(Path(path))
    counts = dump.count()
    assert counts["sessions"] == 2
    assert counts["identities"] == 1
    assert counts["prekeys"] == 2
    assert counts["sync_keys"] == 1
    assert counts["app_state_macs"] == 1  # the newest version of the index MAC
    assert counts["sender_keys"] == 1
    # Imported, the account answers pywhats' calls as pywhats' own store did.
    c = SyncContainer.open(tmp_path / "wastore.db")
    try:
        [result] = c.run(import_from(c.container, path, "pywhats"))
        assert result.device_id is not None
        assert result.pn == "15551230000:3@s.whatsapp.net"
        with SignalStores(c, result.device_id) as s:
            assert s.sessions.load(PEER) == made["session"]
            assert s.identities.load(PEER) == b"i" * 32
            assert s.lid_map.get_lid("15559990000") == "88887777"
            assert s.prekeys.load(7) == made["opk"]
            assert s.prekeys.max_id() == 8
            assert s.app_state_keys.get(b"\x00\x01") == AppStateSyncKey(
                b"\x00\x01", b"k" * 32, b"fp", 100
            )
            assert s.app_state.get_version("regular") == HashState(3, b"h" * 128)
            assert s.app_state.get_mutation_mac("regular", made["mac"]) == b"n" * 32
            assert s.sender_keys.load(GROUP, PEER) == made["sender_key"]
        device = c.run(c.container.backend(result.device_id).load())
        assert device is not None
        assert DeviceStore.from_json(fmt.device_to_pywhats(device)) == made["device"]
        assert c.find_device("111111111111111@lid") == result.device_id
    finally:
        c.close()


def test_read_a_session_that_never_connected(tmp_path: Path) -> None:
    path = tmp_path / "new.session"
    save_device_store(make_fresh_device(), path)
    [dump] = fmt.read(path)
    assert {t: n for t, n in dump.count().items() if n} == {"device": 1}


def test_the_jid_option_checks_the_account(tmp_path: Path) -> None:
    path, _ = _session(tmp_path)
    assert fmt.read(Path(path), jid="15551230000@s.whatsapp.net")
    assert fmt.read(Path(path), jid="111111111111111@lid")
    with pytest.raises(ValidationError, match=r"not 15550000000@s\.whatsapp\.net"):
        fmt.read(Path(path), jid="15550000000@s.whatsapp.net")


def _corrupt(db: str, sql: str, *args: Any) -> None:
    conn = sqlite3.connect(db)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("sql", "args", "message"),
    [
        ("UPDATE sessions SET state = ? WHERE rowid = 1", ("{not json",), "sessions row 1"),
        ("UPDATE sessions SET state = ? WHERE rowid = 2", ('{"schema": 2}',), "sessions row 2"),
        ("UPDATE sessions SET session_id = ? WHERE rowid = 1", ("x.y.z@q",), "sessions row 1"),
        ("UPDATE identities SET identity = ?", (b"short",), "identities row 1.*32"),
        ("UPDATE prekeys SET private = ? WHERE key_id = 8", ("text",), "prekeys row 8"),
        ("UPDATE prekeys SET key_id = ? WHERE key_id = 8", (1 << 24,), "prekeys row 16777216"),
        ("UPDATE app_state_version SET hash = ?", (b"h",), "app_state_version row 1"),
        ("UPDATE app_state_mutation_macs SET value_mac = ?", (b"v",), "mutation_macs row 1"),
        ("UPDATE app_state_sync_keys SET timestamp = ?", ("soon",), "app_state_sync_keys row"),
        ("UPDATE sender_keys SET state = ?", ("[]",), "sender_keys row 1"),
        ("INSERT INTO sessions VALUES (?, '{}')", (PEER.replace(":1", ".1"),), "sessions row 3"),
    ],
)
def test_an_unreadable_row_is_refused_and_nothing_is_written(
    tmp_path: Path, sql: str, args: tuple[Any, ...], message: str
) -> None:
    path, _ = _session(tmp_path)
    db = f"{path}.signal.db"
    _corrupt(db, sql, *args)
    with pytest.raises(ValidationError, match=message) as err:
        fmt.read(Path(path))
    assert str(err.value).startswith(db)
    c = SyncContainer.open(tmp_path / "wastore.db")
    try:
        with pytest.raises(ValidationError):
            c.run(import_from(c.container, path, "pywhats"))
        assert c.devices() == []
    finally:
        c.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), (b"\xff", "not a pywhats device JSON"), (b"[]", "must be an object")],
)
def test_an_unreadable_device_file_is_refused(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "acct.session"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValidationError, match=message) as err:
        fmt.read(path)
    assert str(err.value).startswith(str(path))


def test_a_signal_db_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "acct.session"
    save_device_store(make_fresh_device(), path)
    Path(f"{path}.signal.db").write_bytes(b"not a database" * 100)
    with pytest.raises(ValidationError, match=r"signal\.db"):
        fmt.read(path)
