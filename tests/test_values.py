"""Value types: validation when built, immutability, redacted reprs."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from wastore import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    TcToken,
    ValidationError,
)

KEY = bytes(range(32))
SECRET = bytes(range(50, 82))
TOKEN = bytes(range(200, 240))


def assert_bytes_absent(text: str, secret: bytes) -> None:
    assert secret.hex() not in text
    assert secret[:8].hex() not in text
    assert repr(secret) not in text
    assert repr(secret)[2:20] not in text


# -- AppStateSyncKey --------------------------------------------------------------


def test_sync_key_valid() -> None:
    k = AppStateSyncKey(key_data=bytearray(KEY), fingerprint=b"fp", timestamp=5)  # type: ignore[arg-type]
    assert k.key_data == KEY
    assert type(k.key_data) is bytes
    assert k.fingerprint == b"fp"
    assert k.timestamp == 5
    assert AppStateSyncKey(key_data=KEY, fingerprint=b"", timestamp=0).fingerprint == b""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_data": bytes(31), "fingerprint": b"", "timestamp": 0},
        {"key_data": bytes(33), "fingerprint": b"", "timestamp": 0},
        {"key_data": "k" * 32, "fingerprint": b"", "timestamp": 0},
        {"key_data": KEY, "fingerprint": "fp", "timestamp": 0},
        {"key_data": KEY, "fingerprint": None, "timestamp": 0},
        {"key_data": KEY, "fingerprint": bytes(4097), "timestamp": 0},
        {"key_data": KEY, "fingerprint": b"", "timestamp": "0"},
        {"key_data": KEY, "fingerprint": b"", "timestamp": 1.0},
        {"key_data": KEY, "fingerprint": b"", "timestamp": True},
    ],
)
def test_sync_key_invalid(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AppStateSyncKey(**kwargs)


def test_sync_key_repr_redacts_key_data() -> None:
    k = AppStateSyncKey(key_data=KEY, fingerprint=b"abc", timestamp=7)
    for text in (repr(k), str(k)):
        assert_bytes_absent(text, KEY)
        assert "redacted" in text
        assert "timestamp=7" in text


# -- HashState --------------------------------------------------------------------


def test_hash_state_defaults() -> None:
    h = HashState()
    assert h.version == 0
    assert h.hash == bytes(128)


def test_hash_state_valid() -> None:
    h = HashState(version=9, hash=bytearray(b"\x01" * 128))  # type: ignore[arg-type]
    assert h.version == 9
    assert h.hash == b"\x01" * 128
    assert type(h.hash) is bytes


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hash": bytes(127)},
        {"hash": bytes(129)},
        {"hash": bytes(32)},
        {"hash": None},
        {"version": -1},
        {"version": "1"},
        {"version": None},
    ],
)
def test_hash_state_invalid(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HashState(**kwargs)


# -- MutationMAC --------------------------------------------------------------------


def test_mutation_mac_valid() -> None:
    m = MutationMAC(index_mac=KEY, value_mac=bytearray(SECRET))  # type: ignore[arg-type]
    assert m.index_mac == KEY
    assert m.value_mac == SECRET
    assert type(m.value_mac) is bytes


@pytest.mark.parametrize(
    ("index_mac", "value_mac"),
    [
        (bytes(31), KEY),
        (bytes(33), KEY),
        (KEY, bytes(31)),
        (KEY, bytes(33)),
        (KEY, None),
        ("x" * 32, KEY),
    ],
)
def test_mutation_mac_invalid(index_mac: Any, value_mac: Any) -> None:
    with pytest.raises(ValidationError):
        MutationMAC(index_mac=index_mac, value_mac=value_mac)


# -- LidPnMapping -----------------------------------------------------------------


def test_lid_pn_mapping_valid() -> None:
    m = LidPnMapping(lid="100000000000001", phone_number="15551234567", created_at=1, updated_at=2)
    assert m.learning_source == ""
    assert (m.lid, m.phone_number, m.created_at, m.updated_at) == (
        "100000000000001",
        "15551234567",
        1,
        2,
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"lid": ""},
        {"lid": 1},
        {"lid": "x" * 129},
        {"phone_number": ""},
        {"phone_number": None},
        {"created_at": "1"},
        {"updated_at": None},
        {"learning_source": None},
        {"learning_source": "x" * 129},
        {"lid": "a\x00b"},
    ],
)
def test_lid_pn_mapping_invalid(overrides: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "lid": "1",
        "phone_number": "2",
        "created_at": 1,
        "updated_at": 1,
        "learning_source": "usync",
    }
    kwargs.update(overrides)
    with pytest.raises(ValidationError):
        LidPnMapping(**kwargs)


# -- DeviceInfo / DeviceListRecord ----------------------------------------------------


def test_device_info_valid_and_defaults() -> None:
    d = DeviceInfo(device_id=3)
    assert (d.device_id, d.key_index, d.is_hosted) == (3, None, False)
    assert DeviceInfo(device_id=65535, key_index=7, is_hosted=True).key_index == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"device_id": -1},
        {"device_id": 65536},
        {"device_id": "1"},
        {"device_id": True},
        {"device_id": 1, "key_index": -1},
        {"device_id": 1, "key_index": 1 << 32},
        {"device_id": 1, "is_hosted": 1},
    ],
)
def test_device_info_invalid(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DeviceInfo(**kwargs)


def test_device_list_record_converts_list_to_tuple() -> None:
    infos = [DeviceInfo(device_id=0), DeviceInfo(device_id=5, key_index=2)]
    r = DeviceListRecord(user="15551234567", devices=infos, timestamp=10)  # type: ignore[arg-type]
    assert isinstance(r.devices, tuple)
    assert r.devices == tuple(infos)
    infos.append(DeviceInfo(device_id=9))  # the record does not share the caller's list
    assert len(r.devices) == 2
    assert hash(r) == hash(
        DeviceListRecord(user="15551234567", devices=tuple(infos[:2]), timestamp=10)
    )


def test_device_list_record_defaults() -> None:
    r = DeviceListRecord(user="u")
    assert (r.devices, r.timestamp, r.phash, r.raw_id) == ((), 0, None, None)


@pytest.mark.parametrize(
    "overrides",
    [
        {"devices": [1, 2]},
        {"devices": [DeviceInfo(device_id=1), (2, None, False)]},
        {"devices": [{"device_id": 1}]},
        {"devices": DeviceInfo(device_id=1)},
        {"devices": "abc"},
        {"user": ""},
        {"user": None},
        {"timestamp": None},
        {"phash": 5},
        {"raw_id": -1},
    ],
)
def test_device_list_record_invalid(overrides: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"user": "u", "devices": (), "timestamp": 0}
    kwargs.update(overrides)
    with pytest.raises(ValidationError):
        DeviceListRecord(**kwargs)


# -- TcToken --------------------------------------------------------------------------


def test_tc_token_valid() -> None:
    t = TcToken(token=bytearray(TOKEN), token_timestamp=3)  # type: ignore[arg-type]
    assert t.token == TOKEN
    assert type(t.token) is bytes
    assert t.sender_timestamp is None
    assert TcToken(token=b"", token_timestamp=0, sender_timestamp=5).sender_timestamp == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": None, "token_timestamp": 0},
        {"token": "tok", "token_timestamp": 0},
        {"token": bytes(4097), "token_timestamp": 0},
        {"token": b"t", "token_timestamp": None},
        {"token": b"t", "token_timestamp": 0, "sender_timestamp": "1"},
    ],
)
def test_tc_token_invalid(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TcToken(**kwargs)


def test_tc_token_repr_redacts_token() -> None:
    t = TcToken(token=TOKEN, token_timestamp=3, sender_timestamp=4)
    for text in (repr(t), str(t)):
        assert_bytes_absent(text, TOKEN)
        assert f"<{len(TOKEN)} bytes>" in text


# -- MsgSecret -------------------------------------------------------------------------


def test_msg_secret_valid_and_defaults() -> None:
    s = MsgSecret(chat="1@g.us", sender="2@s.whatsapp.net", msg_id="ABC", secret=SECRET)
    assert (s.expires_at, s.message_ts) == (0, 0)
    assert s.secret == SECRET


@pytest.mark.parametrize(
    "overrides",
    [
        {"secret": bytes(31)},
        {"secret": bytes(33)},
        {"secret": None},
        {"chat": ""},
        {"chat": "x" * 513},
        {"sender": None},
        {"msg_id": ""},
        {"msg_id": "x" * 257},
        {"expires_at": -1},
        {"message_ts": -1},
        {"message_ts": "now"},
    ],
)
def test_msg_secret_invalid(overrides: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"chat": "c", "sender": "s", "msg_id": "m", "secret": SECRET}
    kwargs.update(overrides)
    with pytest.raises(ValidationError):
        MsgSecret(**kwargs)


def test_msg_secret_repr_redacts_secret() -> None:
    s = MsgSecret(chat="1@g.us", sender="2@s.whatsapp.net", msg_id="ABC", secret=SECRET)
    for text in (repr(s), str(s)):
        assert_bytes_absent(text, SECRET)
        assert "redacted" in text
        assert "'ABC'" in text


# -- all values ---------------------------------------------------------------------------

ALL_VALUES = [
    AppStateSyncKey(key_data=KEY, fingerprint=b"f", timestamp=1),
    HashState(),
    MutationMAC(index_mac=KEY, value_mac=KEY),
    LidPnMapping(lid="1", phone_number="2", created_at=1, updated_at=1),
    DeviceInfo(device_id=1),
    DeviceListRecord(user="u", devices=(DeviceInfo(device_id=1),)),
    TcToken(token=TOKEN, token_timestamp=1),
    MsgSecret(chat="c", sender="s", msg_id="m", secret=SECRET),
]


@pytest.mark.parametrize("value", ALL_VALUES, ids=lambda v: type(v).__name__)
def test_values_are_frozen(value: Any) -> None:
    name = dataclasses.fields(value)[0].name
    before = getattr(value, name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, before)
    assert getattr(value, name) == before
    assert value == dataclasses.replace(value)
