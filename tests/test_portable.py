"""The portable account format: AccountBuilder and reading older documents."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from wastore import (
    JID,
    AppStateSyncKey,
    Device,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    TcToken,
    ValidationError,
    open_store,
    portable,
)
from wastore.portable import AccountBuilder


def _device() -> Device:
    d = Device.new()
    d.pn = JID.parse("15550001111:2@s.whatsapp.net")
    d.lid = JID.parse("99887766554433:2@lid")
    d.platform = "android"
    d.client_data = {"someclient": b'{"n":1}'}
    d.validate()
    return d


def _k(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


def _full_builder(device: Device) -> AccountBuilder:
    b = AccountBuilder(device, created_at=1_700_000_000)
    b.put_identity("15550002222@s.whatsapp.net", _k(1))
    b.put_session("15550002222@s.whatsapp.net", b"old session")
    b.put_session("15550002222@s.whatsapp.net", b"new session")  # upsert
    b.store_prekey(5, b"pre-key 5", True)
    b.store_prekey(6, b"pre-key 6", False)
    b.store_signed_prekey(1, b"signed pre-key 1")
    b.put_sender_key("123-456@g.us::15550002222@s.whatsapp.net", b"sender key")
    b.set_sync_key(b"\x00\x01", AppStateSyncKey(key_data=_k(2), fingerprint=b"fp", timestamp=20))
    b.set_sync_key(b"\x00\x01", AppStateSyncKey(key_data=_k(3), fingerprint=b"fp", timestamp=10))
    b.set_version("regular", HashState(version=7, hash=bytes(128)))
    b.put_mutation_macs("regular", 7, [MutationMAC(_k(4), _k(5)), MutationMAC(_k(6), _k(7))])
    b.set_sender_key_status("123-456@g.us", [("15550002222@s.whatsapp.net", True)])
    b.put_lid_mapping(LidPnMapping("1111", "15550002222", 100, 100, "usync"))
    b.put_lid_mapping(LidPnMapping("1111", "15550002222", 200, 300, "peer"))
    b.save_base_key("15550002222@s.whatsapp.net", "MSG1", _k(8))
    b.update_device_list(
        DeviceListRecord(user="15550002222", devices=(DeviceInfo(0, 0),), timestamp=5)
    )
    b.put_tc_token("15550002222@s.whatsapp.net", TcToken(b"token", 50, None))
    b.store_sent_message("15550002222@s.whatsapp.net", "MSG2", b"payload")
    b.put_msg_secrets([MsgSecret("c@g.us", "s@s.whatsapp.net", "M3", _k(9), 0, 5)])
    b.store_pending_inbound("c@g.us", "s@s.whatsapp.net", "M4", b"inbound")
    b.put_group_metadata("123-456@g.us", b"metadata")
    return b


async def test_a_built_account_imports_and_reads_back_through_the_api(tmp_path: Path) -> None:
    device = _device()
    dump = _full_builder(device).build()
    assert all(n > 0 for n in dump.count().values()), dump.count()
    async with await open_store(tmp_path / "wa.db") as store:
        device_id = await store.import_account(dump)
        b = store.backend(device_id)
        assert await b.load() == device
        addr = "15550002222@s.whatsapp.net"
        assert await b.load_identity(addr) == _k(1)
        assert await b.get_session(addr) == b"new session"
        assert await b.count_prekeys() == (2, 1)
        assert await b.load_signed_prekey(1) == b"signed pre-key 1"
        assert await b.get_sender_key(f"123-456@g.us::{addr}") == b"sender key"
        key = await b.get_sync_key(b"\x00\x01")
        assert key is not None and key.key_data == _k(2)  # the newer key was kept
        assert await b.get_version("regular") == HashState(version=7, hash=bytes(128))
        assert await b.get_all_mutation_macs("regular") == {_k(4): _k(5), _k(6): _k(7)}
        assert await b.get_sender_key_devices("123-456@g.us") == [(addr, True)]
        mapping = await b.get_lid_mapping("1111")
        assert mapping == LidPnMapping("1111", "15550002222", 100, 300, "peer")  # first created_at
        assert await b.has_same_base_key(addr, "MSG1", _k(8))
        assert await b.get_devices("15550002222") is not None
        assert await b.get_tc_token(addr) == TcToken(b"token", 50, None)
        assert await b.take_sent_message(addr, "MSG2") == b"payload"
        assert await b.get_msg_secret("c@g.us", "s@s.whatsapp.net", "M3") is not None
        assert await b.get_pending_inbound("c@g.us", "s@s.whatsapp.net", "M4") == b"inbound"
        assert await b.get_group_metadata("123-456@g.us") == b"metadata"


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("put_identity", ("a@s.whatsapp.net", b"\x01" * 31)),
        ("put_session", ("", b"record")),
        ("put_session", ("a@s.whatsapp.net", b"")),
        ("store_prekey", (1 << 24, b"record", False)),
        ("put_sender_key", ("x\x00y", b"record")),
        ("set_version", ("", HashState())),
        ("save_base_key", ("a@s.whatsapp.net", "m", b"short")),
        ("put_mutation_macs", ("regular", -1, [])),
    ],
)
def test_the_builder_validates_like_the_api(call: str, args: tuple[object, ...]) -> None:
    b = AccountBuilder(_device())
    with pytest.raises(ValidationError):
        getattr(b, call)(*args)


def _v1_document(dump: portable.AccountDump) -> bytes:
    """``dump`` as a format-1 file: written before the device table had the v4 columns."""
    doc = json.loads(portable.encode(dump))
    added = [c for c in portable.schema.added_columns()["device"] if c != "crc"]
    for row in doc["tables"]["device"]:
        for column in added:
            del row[column]
    doc["format_version"] = 1
    doc["sha256"] = hashlib.sha256(portable._canonical(doc["tables"])).hexdigest()
    return json.dumps(doc).encode()


def test_a_format_1_file_is_read_with_the_new_device_columns_at_their_defaults() -> None:
    device = Device.new()
    dump = AccountBuilder(device).build()
    decoded = portable.decode(_v1_document(dump))
    row = decoded.device
    assert row["platform"] is None and row["registered"] is False and row["client_data"] is None
    assert decoded.tables["device"][0]["identity_key_private"] == device.identity_key.private


def test_a_current_file_missing_a_column_is_refused() -> None:
    doc = json.loads(portable.encode(AccountBuilder(Device.new()).build()))
    del doc["tables"]["device"][0]["platform"]
    doc["sha256"] = hashlib.sha256(portable._canonical(doc["tables"])).hexdigest()
    with pytest.raises(ValidationError, match="columns do not match"):
        portable.decode(json.dumps(doc).encode())


# -- hostile files: refused with a clear ValidationError, never another exception --------


def _resign(doc: dict[str, object]) -> bytes:
    """The document with its checksum recomputed: the checksum guards against damage, not
    against someone who edits the file on purpose."""
    doc["sha256"] = hashlib.sha256(portable._canonical(doc["tables"])).hexdigest()  # type: ignore[arg-type]
    return json.dumps(doc).encode()


def _doc() -> dict[str, object]:
    return json.loads(portable.encode(_full_builder(_device()).build()))  # type: ignore[no-any-return]


def _edit(table: str, column: str, value: object) -> bytes:
    doc = _doc()
    doc["tables"][table][0][column] = value  # type: ignore[index]
    return _resign(doc)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (lambda: _edit("sessions", "address", "a\x00b@s.whatsapp.net"), "NUL"),
        (lambda: _edit("sessions", "address", "a" * 10_000), "characters long"),
        (lambda: _edit("sent_messages", "message_id", "m" * 100_000), "message id"),
        (lambda: _edit("group_metadata", "group_jid", "g\x00@g.us"), "NUL"),
        (lambda: _edit("sessions", "address", "\ud800@s.whatsapp.net"), "Unicode"),
        (lambda: _edit("device", "pn_user", "15559999999"), "pn_user does not match pn"),
        (lambda: _edit("device", "lid_user", None), "lid_user does not match lid"),
        (lambda: _edit("device", "saved_at_ms", None), "saved_at_ms"),
        (lambda: _edit("prekeys", "id", 2**70), "64 bits"),
        (lambda: _edit("sync_keys", "timestamp", -(2**64)), "64 bits"),
        (lambda: _edit("identities", "key", "AAAA"), "identity key"),
        (lambda: b'{"format": "wastore-account", "format": "x"}', "repeats the key 'format'"),
        (lambda: b"[" * 100_000 + b"]" * 100_000, "nested"),
        (lambda: b'{"n": ' + b"9" * 5000 + b"}", "not a wastore account file"),
    ],
)
def test_a_crafted_file_is_refused_like_the_api_would_refuse_it(data: object, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        portable.decode(data())  # type: ignore[operator]


def test_duplicate_rows_are_refused() -> None:
    doc = _doc()
    sessions = doc["tables"]["sessions"]  # type: ignore[index]
    sessions.append(dict(sessions[0], record="AQID"))
    with pytest.raises(ValidationError, match="appears twice"):
        portable.decode(_resign(doc))


def test_read_file_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes to it: reading it would block forever
    for path, words in (
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (tmp_path, "not a regular file"),
        (tmp_path / "missing.json", "cannot open"),
    ):
        with pytest.raises(ValidationError, match=words):
            portable.read_file(path)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    with pytest.raises(ValidationError, match="more than the 1,024"):
        portable.read_file(big, max_bytes=1024)
    assert portable.read_file(big, max_bytes=4096) == b" " * 2048


def test_the_repr_of_an_account_dump_shows_no_key_material() -> None:
    device = _device()
    dump = _full_builder(device).build()
    text = repr(dump) + str(dump) + f"{[dump]}"
    for secret in (
        device.noise_key.private,
        device.identity_key.private,
        device.signed_pre_key.private,
        device.adv_secret_key,
        b'{"n":1}',
    ):
        for form in (secret.hex(), repr(secret)[2:-1], secret[:8].hex()):
            assert form not in text
    assert "15550001111:2@s.whatsapp.net" in text and "'sessions': 1" in text
