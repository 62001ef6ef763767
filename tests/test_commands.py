"""DeviceCommand objects and apply_command (SPEC §3)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wastore
from wastore import (
    JID,
    ClearServerCertChain,
    Device,
    IncrementLoginCounter,
    KeyPair,
    SetAccount,
    SetAdvSecretKey,
    SetAppVersion,
    SetEdgeRoutingInfo,
    SetId,
    SetLid,
    SetLidMigrated,
    SetNctSalt,
    SetPreKeyWatermarks,
    SetPropsHash,
    SetPushName,
    SetReadReceiptsDisabled,
    SetServerCertChain,
    SetServerHasPrekeys,
    SetSignedPreKey,
    ValidationError,
    apply_command,
)
from wastore.commands import COMMAND_TYPES
from wastore.keys import sign_pre_key

PN = JID.parse("15551234567:3@s.whatsapp.net")
LID = JID.parse("100000000000001:3@lid")
ADV = bytes(range(100, 132))
SALT = bytes(range(1, 33))
SPK = KeyPair.generate()


def fields_of(d: Device) -> dict[str, Any]:
    return {f.name: getattr(d, f.name) for f in dataclasses.fields(Device) if f.compare}


def changes(command: Any, device: Device | None = None) -> tuple[Device, Device, dict[str, Any]]:
    """Apply ``command`` to a copy of ``device``; return (before, after, changed fields)."""
    before = (device or Device.new()).frozen()
    after = before.copy()
    apply_command(after, command)
    after.validate()
    old, new = fields_of(before), fields_of(after)
    return before, after, {k: new[k] for k in new if new[k] != old[k]}


# Each command with the exact field changes SPEC §3 describes (on a fresh device).
CASES: list[tuple[Any, dict[str, Any]]] = [
    (SetId(PN), {"pn": PN}),
    (SetLid(LID), {"lid": LID}),
    (SetPushName("My Bot"), {"push_name": "My Bot"}),
    (SetAccount(b"\x0a\x02hi"), {"account": b"\x0a\x02hi"}),
    (SetPropsHash("abc123"), {"props_hash": "abc123"}),
    (SetPreKeyWatermarks(101, 51), {"next_pre_key_id": 101, "first_unupload_pre_key_id": 51}),
    (SetAdvSecretKey(ADV), {"adv_secret_key": ADV}),
    (SetNctSalt(SALT), {"nct_salt": SALT}),
    (SetServerCertChain(b"chain"), {"server_cert_chain": b"chain"}),
    (IncrementLoginCounter(), {"login_counter": 1}),
    (SetLidMigrated(True), {"lid_migrated": True}),
    (SetReadReceiptsDisabled(True), {"read_receipts_disabled": True}),
    (SetEdgeRoutingInfo(b"\x08\x01"), {"edge_routing_info": b"\x08\x01"}),
    (SetServerHasPrekeys(True), {"server_has_prekeys": True}),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=lambda c: type(c).__name__)
def test_command_changes_exactly_its_fields(command: Any, expected: dict[str, Any]) -> None:
    _, _, changed = changes(command)
    assert changed == expected


def test_set_app_version_also_stamps_last_fetched() -> None:
    t0 = time.time_ns() // 1_000_000
    _, after, changed = changes(SetAppVersion(2, 3000, 1015901307))
    t1 = time.time_ns() // 1_000_000
    assert set(changed) == {"app_version", "app_version_last_fetched_ms"}
    assert after.app_version == (2, 3000, 1015901307)
    assert t0 <= after.app_version_last_fetched_ms <= t1


def test_set_signed_pre_key_sets_all_four() -> None:
    identity = KeyPair.generate()
    signature = sign_pre_key(identity, SPK)
    cmd = SetSignedPreKey(SPK, 7, signature, 1_700_000_000_000)
    _, _, changed = changes(cmd)
    assert changed == {
        "signed_pre_key": SPK,
        "signed_pre_key_id": 7,
        "signed_pre_key_signature": signature,
        "last_signed_pre_key_rotation_ms": 1_700_000_000_000,
    }


def test_clear_server_cert_chain() -> None:
    _, with_chain, _ = changes(SetServerCertChain(b"chain"))
    _, after, changed = changes(ClearServerCertChain(), with_chain)
    assert changed == {"server_cert_chain": None}
    assert after.server_cert_chain is None


def test_increment_login_counter_increments_from_current_value() -> None:
    d = Device.new()
    for _ in range(3):
        apply_command(d, IncrementLoginCounter())
    assert d.login_counter == 3


@pytest.mark.parametrize(
    ("setter", "field", "clear"),
    [
        (SetId, "pn", SetId(None)),
        (SetLid, "lid", SetLid(None)),
        (SetAccount, "account", SetAccount(None)),
        (SetPropsHash, "props_hash", SetPropsHash(None)),
        (SetNctSalt, "nct_salt", SetNctSalt(None)),
        (SetEdgeRoutingInfo, "edge_routing_info", SetEdgeRoutingInfo(None)),
    ],
)
def test_optional_fields_can_be_cleared(setter: Any, field: str, clear: Any) -> None:
    value = {"pn": PN, "lid": LID, "props_hash": "h"}.get(field, b"data")
    d = Device.new()
    apply_command(d, setter(value))
    assert getattr(d, field) == value
    apply_command(d, clear)
    assert getattr(d, field) is None


@pytest.mark.parametrize(
    "command",
    [SetLidMigrated(False), SetReadReceiptsDisabled(False), SetServerHasPrekeys(False)],
    ids=lambda c: type(c).__name__,
)
def test_boolean_commands_set_false(command: Any) -> None:
    d = Device.new()
    for f in ("lid_migrated", "read_receipts_disabled", "server_has_prekeys"):
        setattr(d, f, True)
    _, _, changed = changes(command, d)
    assert list(changed.values()) == [False]


def test_apply_command_rejects_non_commands() -> None:
    d = Device.new()
    snapshot = fields_of(d)
    for bogus in (None, "SetPushName", ("push_name", "x"), object(), SetPushName):
        with pytest.raises(ValidationError):
            apply_command(d, bogus)  # type: ignore[arg-type]
    assert fields_of(d) == snapshot


def test_apply_command_rejects_duck_typed_command() -> None:
    class Fake:
        def apply(self, device: Device) -> None:
            device.push_name = "sneaky"

    d = Device.new()
    with pytest.raises(ValidationError):
        apply_command(d, Fake())  # type: ignore[arg-type]
    assert d.push_name == ""


def test_apply_command_on_frozen_snapshot_is_refused() -> None:
    d = Device.new().frozen()
    with pytest.raises(dataclasses.FrozenInstanceError):
        apply_command(d, SetPushName("x"))
    assert d.push_name == ""


# -- every command: exported, frozen, validated, redacted ----------------------------


def all_commands() -> list[Any]:
    identity = KeyPair.generate()
    return [
        SetId(PN),
        SetLid(LID),
        SetPushName("n"),
        SetAccount(b"acct"),
        SetAppVersion(2, 3000, 1),
        SetPropsHash("p"),
        SetPreKeyWatermarks(2, 1),
        SetAdvSecretKey(ADV),
        SetNctSalt(SALT),
        SetServerCertChain(b"chain"),
        ClearServerCertChain(),
        IncrementLoginCounter(),
        SetLidMigrated(True),
        SetSignedPreKey(SPK, 2, sign_pre_key(identity, SPK), 5),
        SetReadReceiptsDisabled(True),
        SetEdgeRoutingInfo(b"edge"),
        SetServerHasPrekeys(True),
    ]


def test_every_command_type_is_covered_and_exported() -> None:
    assert {type(c) for c in all_commands()} == set(COMMAND_TYPES)
    assert len(COMMAND_TYPES) == 17
    for t in COMMAND_TYPES:
        assert getattr(wastore, t.__name__) is t
        assert t.__name__ in wastore.__all__


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: type(c).__name__)
def test_every_command_is_frozen(command: Any) -> None:
    fields = dataclasses.fields(command)
    name = fields[0].name if fields else "anything"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(command, name, None)
    assert command == dataclasses.replace(command)


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: type(c).__name__)
def test_every_command_changes_a_fresh_device(command: Any) -> None:
    start = Device.new()
    start.server_cert_chain = b"old chain"  # so that ClearServerCertChain has work to do
    _, after, changed = changes(command, start)
    assert changed
    after.validate()


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: type(c).__name__)
def test_every_command_repr_redacts_secrets(command: Any) -> None:
    secrets_ = [SPK.private, ADV, SALT]
    for text in (repr(command), str(command), repr([command])):
        for secret in secrets_:
            assert secret.hex() not in text
            assert secret[:8].hex() not in text
            assert repr(secret) not in text
            assert repr(secret)[2:20] not in text
    assert type(command).__name__ in repr(command)


BAD: list[tuple[Callable[[], Any], str]] = [
    (lambda: SetId("15551234567@s.whatsapp.net"), "SetId str"),
    (lambda: SetId(1), "SetId int"),
    (lambda: SetLid("1@lid"), "SetLid str"),
    (lambda: SetPushName(None), "SetPushName None"),
    (lambda: SetPushName(5), "SetPushName int"),
    (lambda: SetPushName("x" * 5000), "SetPushName too long"),
    (lambda: SetPushName("a\x00b"), "SetPushName NUL"),
    (lambda: SetAccount("acct"), "SetAccount str"),
    (lambda: SetAccount(bytes(2 * 1024 * 1024)), "SetAccount too large"),
    (lambda: SetAppVersion(-1, 0, 0), "SetAppVersion negative"),
    (lambda: SetAppVersion(0, 1 << 32, 0), "SetAppVersion > u32"),
    (lambda: SetAppVersion(0, 0, "1"), "SetAppVersion str"),
    (lambda: SetAppVersion(True, 0, 0), "SetAppVersion bool"),
    (lambda: SetPropsHash(1), "SetPropsHash int"),
    (lambda: SetPropsHash("x" * 257), "SetPropsHash too long"),
    (lambda: SetPreKeyWatermarks(-1, 1), "SetPreKeyWatermarks negative"),
    (lambda: SetPreKeyWatermarks(1, (1 << 24) + 1), "SetPreKeyWatermarks too big"),
    (lambda: SetPreKeyWatermarks("1", 1), "SetPreKeyWatermarks str"),
    (lambda: SetPreKeyWatermarks(1, None), "SetPreKeyWatermarks None"),
    (lambda: SetAdvSecretKey(bytes(31)), "SetAdvSecretKey short"),
    (lambda: SetAdvSecretKey(bytes(33)), "SetAdvSecretKey long"),
    (lambda: SetAdvSecretKey(None), "SetAdvSecretKey None"),
    (lambda: SetNctSalt("salt"), "SetNctSalt str"),
    (lambda: SetServerCertChain(None), "SetServerCertChain None"),
    (lambda: SetServerCertChain(b""), "SetServerCertChain empty"),
    (lambda: SetServerCertChain("chain"), "SetServerCertChain str"),
    (lambda: SetLidMigrated(1), "SetLidMigrated int"),
    (lambda: SetLidMigrated(None), "SetLidMigrated None"),
    (lambda: SetSignedPreKey((SPK.private, SPK.public), 1, bytes(64), 0), "SPK tuple"),
    (lambda: SetSignedPreKey(SPK, -1, bytes(64), 0), "SPK negative id"),
    (lambda: SetSignedPreKey(SPK, 1 << 24, bytes(64), 0), "SPK id too big"),
    (lambda: SetSignedPreKey(SPK, 1, bytes(63), 0), "SPK short signature"),
    (lambda: SetSignedPreKey(SPK, 1, bytes(65), 0), "SPK long signature"),
    (lambda: SetSignedPreKey(SPK, 1, bytes(64), -1), "SPK negative rotation"),
    (lambda: SetSignedPreKey(SPK, 1, bytes(64), 1.5), "SPK float rotation"),
    (lambda: SetReadReceiptsDisabled(0), "SetReadReceiptsDisabled int"),
    (lambda: SetEdgeRoutingInfo("edge"), "SetEdgeRoutingInfo str"),
    (lambda: SetServerHasPrekeys("true"), "SetServerHasPrekeys str"),
]


@pytest.mark.parametrize("build", [b for b, _ in BAD], ids=[i for _, i in BAD])
def test_commands_validate_when_built(build: Callable[[], Any]) -> None:
    with pytest.raises(ValidationError):
        build()


def test_bytes_like_arguments_are_stored_as_bytes() -> None:
    assert type(SetAdvSecretKey(bytearray(ADV)).key) is bytes  # type: ignore[arg-type]
    assert type(SetNctSalt(bytearray(b"s")).salt) is bytes  # type: ignore[arg-type]
    assert type(SetAccount(memoryview(b"a")).account) is bytes  # type: ignore[arg-type]


# -- property: a command that exists can always be applied ----------------------------

_ints = st.one_of(
    st.integers(-2, 2),
    st.integers(0, 1 << 25),
    st.sampled_from([(1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 32) - 1, 1 << 32, 1 << 63]),
)
_blobs = st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([bytes(32), bytes(64)]))
_texts = st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["x" * 256, "x" * 1024]))
_jids = st.one_of(st.none(), st.sampled_from([PN, LID]))

attempts = st.one_of(
    st.tuples(st.just(SetId), st.tuples(_jids)),
    st.tuples(st.just(SetLid), st.tuples(_jids)),
    st.tuples(st.just(SetPushName), st.tuples(_texts)),
    st.tuples(st.just(SetAccount), st.tuples(_blobs)),
    st.tuples(st.just(SetAppVersion), st.tuples(_ints, _ints, _ints)),
    st.tuples(st.just(SetPropsHash), st.tuples(_texts)),
    st.tuples(st.just(SetPreKeyWatermarks), st.tuples(_ints, _ints)),
    st.tuples(st.just(SetAdvSecretKey), st.tuples(_blobs)),
    st.tuples(st.just(SetNctSalt), st.tuples(_blobs)),
    st.tuples(st.just(SetServerCertChain), st.tuples(_blobs)),
    st.tuples(st.just(ClearServerCertChain), st.just(())),
    st.tuples(st.just(IncrementLoginCounter), st.just(())),
    st.tuples(st.just(SetLidMigrated), st.tuples(st.booleans())),
    st.tuples(st.just(SetSignedPreKey), st.tuples(st.just(SPK), _ints, _blobs, _ints)),
    st.tuples(st.just(SetReadReceiptsDisabled), st.tuples(st.booleans())),
    st.tuples(st.just(SetEdgeRoutingInfo), st.tuples(_blobs)),
    st.tuples(st.just(SetServerHasPrekeys), st.tuples(st.booleans())),
)


@settings(max_examples=200)
@given(st.lists(attempts, min_size=1, max_size=12))
def test_any_command_that_can_be_built_can_be_applied(
    steps: list[tuple[Callable[..., Any], tuple[Any, ...]]],
) -> None:
    d = Device.new()
    applied = 0
    for ctor, args in steps:
        try:
            command = ctor(*args)
        except ValidationError:
            continue  # rejected at construction: fine, it never reaches a device
        apply_command(d, command)
        d.validate()  # a command that could be built never makes the device invalid
        applied += 1
    assert d.copy() == d
