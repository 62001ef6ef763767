"""KeyPair and Device: real Curve25519 keys, XEdDSA signatures, validation, redaction."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

# An independent Signal implementation. If it cannot be imported these tests must
# fail (not skip): the whole point is to check against a second implementation.
from axolotl.ecc.curve import Curve
from axolotl.ecc.djbec import DjbECPublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from wastore import JID, Device, KeyPair, ValidationError
from wastore.device import MAX_REGISTRATION_ID
from wastore.keys import sign_pre_key, xeddsa_sign, xeddsa_verify


def axolotl_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    return bool(Curve.verifySignature(DjbECPublicKey(public), message, signature))


def assert_secret_absent(text: str, secret: bytes) -> None:
    """``text`` shows ``secret`` in none of the usual encodings (nor an 8-byte prefix)."""
    assert secret.hex() not in text
    assert secret.hex().upper() not in text
    assert secret[:8].hex() not in text
    assert repr(secret) not in text
    assert repr(secret)[2:20] not in text
    assert base64.b64encode(secret).decode() not in text
    assert str(list(secret)) not in text


def x25519_public_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def new_kwargs(**overrides: Any) -> dict[str, Any]:
    """Constructor arguments of a valid device (taken from Device.new())."""
    d = Device.new()
    kw = {f.name: getattr(d, f.name) for f in dataclasses.fields(Device) if f.init}
    kw.update(overrides)
    return kw


# -- KeyPair -------------------------------------------------------------------


def test_keypair_generate_is_a_real_x25519_pair() -> None:
    kp = KeyPair.generate()
    assert len(kp.private) == 32
    assert len(kp.public) == 32
    assert x25519_public_of(kp.private) == kp.public


def test_keypair_generate_is_random() -> None:
    pairs = [KeyPair.generate() for _ in range(8)]
    assert len({p.private for p in pairs}) == 8
    assert len({p.public for p in pairs}) == 8


def test_keypair_is_frozen() -> None:
    kp = KeyPair.generate()
    with pytest.raises(dataclasses.FrozenInstanceError):
        kp.private = bytes(32)  # type: ignore[misc]


def test_keypair_accepts_bytearray_and_stores_bytes() -> None:
    kp = KeyPair.generate()
    copy = KeyPair(private=bytearray(kp.private), public=bytearray(kp.public))  # type: ignore[arg-type]
    assert type(copy.private) is bytes
    assert type(copy.public) is bytes
    assert copy == kp


@pytest.mark.parametrize(
    ("private", "public"),
    [
        (bytes(31), bytes(32)),
        (bytes(33), bytes(32)),
        (bytes(32), bytes(31)),
        (bytes(32), bytes(33)),
        (b"", bytes(32)),
        (bytes(32), b""),
        (bytes(32), b"\x05" + bytes(32)),  # serialized (type-prefixed) public key
        ("00" * 32, bytes(32)),
        (bytes(32), None),
        (None, bytes(32)),
        (list(bytes(32)), bytes(32)),
    ],
)
def test_keypair_rejects_wrong_lengths_and_types(private: Any, public: Any) -> None:
    with pytest.raises(ValidationError):
        KeyPair(private=private, public=public)


def test_keypair_repr_and_str_redact_the_private_key() -> None:
    kp = KeyPair.generate()
    for text in (repr(kp), str(kp), f"{kp}", f"{kp!r}", repr([kp]), repr({"k": kp})):
        assert_secret_absent(text, kp.private)
        assert kp.public.hex() in text
        assert "redacted" in text


@settings(deadline=None, max_examples=30)
@given(st.binary(max_size=200))
def test_keypair_sign_verifies_with_axolotl(message: bytes) -> None:
    kp = KeyPair.generate()
    sig = kp.sign(message)
    assert len(sig) == 64
    assert axolotl_verify(kp.public, message, sig)
    assert xeddsa_verify(kp.public, message, sig)
    other = KeyPair.generate()
    assert not axolotl_verify(other.public, message, sig)
    assert not axolotl_verify(kp.public, message + b"\x00", sig)


def test_xeddsa_sign_of_raw_private_matches_keypair_sign() -> None:
    kp = KeyPair.generate()
    msg = b"hello"
    assert axolotl_verify(kp.public, msg, xeddsa_sign(kp.private, msg))


def test_xeddsa_verify_rejects_bad_lengths() -> None:
    kp = KeyPair.generate()
    sig = kp.sign(b"m")
    assert not xeddsa_verify(kp.public[:31], b"m", sig)
    assert not xeddsa_verify(kp.public, b"m", sig[:63])


# -- Device.new() ---------------------------------------------------------------


def test_device_new_keys_are_real_curve25519_pairs() -> None:
    d = Device.new()
    for kp in (d.noise_key, d.identity_key, d.signed_pre_key):
        assert isinstance(kp, KeyPair)
        assert x25519_public_of(kp.private) == kp.public
    # Three independent key pairs.
    assert len({d.noise_key.private, d.identity_key.private, d.signed_pre_key.private}) == 3


def test_device_new_signed_pre_key_signature_verifies_with_axolotl() -> None:
    d = Device.new()
    assert d.signed_pre_key_id == 1
    assert len(d.signed_pre_key_signature) == 64
    message = b"\x05" + d.signed_pre_key.public
    assert axolotl_verify(d.identity_key.public, message, d.signed_pre_key_signature)
    assert sign_pre_key(d.identity_key, d.signed_pre_key) != bytes(64)


def test_device_new_signature_fails_for_tampered_message_or_signature() -> None:
    d = Device.new()
    message = b"\x05" + d.signed_pre_key.public
    sig = d.signed_pre_key_signature
    # Tampered message: one flipped bit in the signed pre-key, or the type byte missing.
    flipped = bytearray(message)
    flipped[10] ^= 0x01
    assert not axolotl_verify(d.identity_key.public, bytes(flipped), sig)
    assert not axolotl_verify(d.identity_key.public, d.signed_pre_key.public, sig)
    # Tampered signature: a flipped bit anywhere.
    for pos in (0, 31, 32, 63):
        bad = bytearray(sig)
        bad[pos] ^= 0x01
        assert not axolotl_verify(d.identity_key.public, message, bytes(bad))
    # Signed by the wrong key: the noise key is not the identity key.
    assert not axolotl_verify(d.noise_key.public, message, sig)


def test_device_new_signature_is_over_the_signed_pre_key_of_that_device() -> None:
    a, b = Device.new(), Device.new()
    assert not axolotl_verify(
        a.identity_key.public, b"\x05" + b.signed_pre_key.public, a.signed_pre_key_signature
    )


def test_device_new_registration_id_and_adv_secret() -> None:
    devices = [Device.new() for _ in range(20)]
    for d in devices:
        assert type(d.registration_id) is int
        assert 1 <= d.registration_id < 2**31
        assert type(d.adv_secret_key) is bytes
        assert len(d.adv_secret_key) == 32
    # Random: twenty devices do not share secrets or (with overwhelming probability) ids.
    assert len({d.adv_secret_key for d in devices}) == 20
    assert len({d.registration_id for d in devices}) > 1
    assert len({d.identity_key.public for d in devices}) == 20


def test_device_new_defaults() -> None:
    d = Device.new()
    assert d.pn is None
    assert d.lid is None
    assert d.account is None
    assert d.push_name == ""
    assert d.app_version == (0, 0, 0)
    assert d.next_pre_key_id == d.first_unupload_pre_key_id
    assert d.login_counter == 0
    assert d.server_cert_chain is None
    assert d.nct_salt is None
    assert d.last_signed_pre_key_rotation_ms > 0
    assert not d.is_frozen


# -- Device validation ------------------------------------------------------------


def test_device_constructor_accepts_valid_arguments() -> None:
    kw = new_kwargs(pn=JID.parse("15551234567:3@s.whatsapp.net"), push_name="bot")
    d = Device(**kw)
    assert d.pn == JID.parse("15551234567:3@s.whatsapp.net")
    assert d.registration_id == kw["registration_id"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"signed_pre_key_signature": bytes(63)},
        {"signed_pre_key_signature": bytes(65)},
        {"signed_pre_key_signature": b""},
        {"signed_pre_key_signature": "00" * 64},
        {"adv_secret_key": bytes(31)},
        {"adv_secret_key": bytes(33)},
        {"adv_secret_key": None},
        {"registration_id": -1},
        {"registration_id": MAX_REGISTRATION_ID + 1},
        {"registration_id": 2**31},
        {"registration_id": True},
        {"registration_id": 1.5},
        {"noise_key": (bytes(32), bytes(32))},
        {"identity_key": None},
        {"signed_pre_key": b"\x00" * 64},
        {"signed_pre_key_id": -1},
        {"signed_pre_key_id": 1 << 24},
        {"pn": "15551234567@s.whatsapp.net"},
        {"lid": 42},
        {"account": "not bytes"},
        {"push_name": None},
        {"push_name": "x" * 5000},
        {"app_version": [2, 3000, 1]},
        {"app_version": (2, 3000)},
        {"app_version": (2, -1, 1)},
        {"app_version_last_fetched_ms": -1},
        {"props_hash": 5},
        {"next_pre_key_id": -1},
        {"first_unupload_pre_key_id": 1 << 25},
        {"server_has_prekeys": 1},
        {"edge_routing_info": 123},
        {"nct_salt": "salt"},
        {"server_cert_chain": ["x"]},
        {"login_counter": -1},
        {"lid_migrated": None},
        {"read_receipts_disabled": "yes"},
        {"last_signed_pre_key_rotation_ms": -5},
    ],
)
def test_device_rejects_invalid_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Device(**new_kwargs(**overrides))


def test_device_keypair_with_wrong_key_length_cannot_be_built() -> None:
    # A bad key cannot even become a KeyPair, so a Device cannot hold one.
    with pytest.raises(ValidationError):
        Device(**new_kwargs(identity_key=KeyPair(private=bytes(31), public=bytes(32))))


def test_registration_id_bounds_are_inclusive() -> None:
    # 0 is a valid libsignal-node (Baileys) registration id; Device.new() never draws it
    assert Device(**new_kwargs(registration_id=0)).registration_id == 0
    top = Device(**new_kwargs(registration_id=2**31 - 1))
    assert top.registration_id == 2**31 - 1


def test_device_validate_catches_later_assignments() -> None:
    d = Device.new()
    d.adv_secret_key = bytes(5)
    with pytest.raises(ValidationError, match="adv_secret_key"):
        d.validate()


def test_device_validation_error_never_shows_the_bad_bytes() -> None:
    secret = bytes(range(100, 131))  # 31 bytes: wrong length
    with pytest.raises(ValidationError) as info:
        Device(**new_kwargs(adv_secret_key=secret))
    assert_secret_absent(str(info.value), secret)


# -- redaction -------------------------------------------------------------------


def test_device_repr_and_str_redact_every_secret() -> None:
    d = Device.new()
    d.nct_salt = bytes(range(7, 39))
    d.pn = JID.parse("15551234567:3@s.whatsapp.net")
    d.pairing_ephemeral_key = KeyPair.generate()
    d.client_data = {"someclient": bytes(range(40, 80))}
    d.validate()
    secrets_ = [
        d.noise_key.private,
        d.identity_key.private,
        d.signed_pre_key.private,
        d.adv_secret_key,
        d.nct_salt,
        d.pairing_ephemeral_key.private,
        bytes(range(40, 80)),
    ]
    for text in (repr(d), str(d), f"{d}", repr([d]), repr(d.frozen())):
        for secret in secrets_:
            assert_secret_absent(text, secret)
        assert "15551234567:3@s.whatsapp.net" in text
        assert str(d.registration_id) in text


# -- snapshots: frozen() and copy() ---------------------------------------------------


def test_frozen_device_rejects_assignment() -> None:
    d = Device.new().frozen()
    assert d.is_frozen
    before = d.push_name
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.push_name = "changed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.login_counter += 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        d._frozen = False
    assert d.push_name == before
    assert d.is_frozen


def test_frozen_device_rejects_deletion() -> None:
    d = Device.new()
    d.login_counter = 7
    d.frozen()
    with pytest.raises(dataclasses.FrozenInstanceError):
        del d.login_counter
    assert d.login_counter == 7


def test_copy_is_mutable_equal_and_independent() -> None:
    original = Device.new().frozen()
    c = original.copy()
    assert c == original
    assert c is not original
    assert not c.is_frozen
    c.push_name = "mutable"
    c.login_counter += 1
    assert c.push_name == "mutable"
    assert original.push_name == ""
    assert original.login_counter == 0
    assert c != original


def test_copy_revalidates() -> None:
    d = Device.new()
    d.registration_id = -1
    with pytest.raises(ValidationError):
        d.copy()


def test_equality_ignores_frozen_flag() -> None:
    d = Device.new()
    assert d.copy().frozen() == d.copy()


# -- consistency checks ------------------------------------------------------------------


def test_keypair_is_consistent() -> None:
    kp = KeyPair.generate()
    assert kp.is_consistent()
    other = KeyPair.generate()
    assert not KeyPair(private=kp.private, public=other.public).is_consistent()


def test_new_device_has_no_key_problems() -> None:
    assert Device.new().key_problems() == []


def test_key_problems_names_a_mismatched_key_pair() -> None:
    d = Device.new()
    d.noise_key = KeyPair(private=d.noise_key.private, public=KeyPair.generate().public)
    problems = d.key_problems()
    assert len(problems) == 1
    assert "noise_key" in problems[0]


def test_key_problems_agrees_with_axolotl_on_the_signature() -> None:
    d = Device.new()
    bad = bytearray(d.signed_pre_key_signature)
    bad[5] ^= 0x40
    d.signed_pre_key_signature = bytes(bad)
    message = b"\x05" + d.signed_pre_key.public
    assert not axolotl_verify(d.identity_key.public, message, d.signed_pre_key_signature)
    assert any("signature" in p for p in d.key_problems())
    # Rotating the signed pre-key without re-signing is caught as well.
    e = Device.new()
    e.signed_pre_key = KeyPair.generate()
    assert any("signature" in p for p in e.key_problems())
    for problem in d.key_problems() + e.key_problems():
        for secret in (d.identity_key.private, e.signed_pre_key.private):
            assert_secret_absent(problem, secret)


# -- fields for client credentials ------------------------------------------------------


def test_client_data_of_a_snapshot_cannot_be_changed() -> None:
    d = Device.new().with_client_data("baileys", b'{"accountSyncCounter":1}').frozen()
    with pytest.raises(TypeError):
        d.client_data["baileys"] = b"changed"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.client_data = {}
    assert d.client_data == {"baileys": b'{"accountSyncCounter":1}'}


def test_with_client_data_sets_and_removes_one_client() -> None:
    d = Device.new().with_client_data("a", b"1").with_client_data("b", b"")
    assert dict(d.client_data) == {"a": b"1", "b": b""}
    assert dict(d.with_client_data("a", None).client_data) == {"b": b""}
    assert d.with_client_data("zzz", None) == d


@pytest.mark.parametrize(
    "entries",
    [
        {"": b"x"},
        {"Upper": b"x"},
        {"has space": b"x"},
        {"-lead": b"x"},
        {"a" * 65: b"x"},
        {"ok": "text"},
        {"ok": b"x" * (1024 * 1024 + 1)},
        {f"c{i}": b"" for i in range(33)},
        [("ok", b"x")],
    ],
)
def test_client_data_is_validated(entries: Any) -> None:
    with pytest.raises(ValidationError, match="client_data"):
        Device(**new_kwargs(client_data=entries))


@pytest.mark.parametrize(
    "overrides",
    [
        {"platform": 5},
        {"platform": "x" * 65},
        {"business_name": b"bytes"},
        {"registered": 1},
        {"pairing_code": "x" * 65},
        {"pairing_ephemeral_key": b"\x01" * 64},
        {"app_state_key_id": b""},
        {"app_state_key_id": b"\x01" * 65},
        {"last_account_sync_timestamp": -1},
        {"unarchive_chats": "yes"},
        {"default_disappearing_expiration": -5},
        {"default_disappearing_timestamp": 1.5},
    ],
)
def test_credential_fields_are_validated(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Device(**new_kwargs(**overrides))


def test_device_survives_pickle_and_deepcopy_frozen_or_not() -> None:
    import copy
    import pickle

    d = Device.new().with_client_data("pyaileys", b"{}")
    d.pairing_ephemeral_key = KeyPair.generate()
    for original in (d, d.copy().frozen()):
        for clone in (copy.deepcopy(original), pickle.loads(pickle.dumps(original))):
            assert clone == original
            assert clone.is_frozen == original.is_frozen


def test_key_problems_checks_the_pairing_key_pair() -> None:
    d = Device.new()
    d.pairing_ephemeral_key = KeyPair.generate()
    assert d.key_problems() == []
    d.pairing_ephemeral_key = KeyPair(
        private=KeyPair.generate().private, public=d.pairing_ephemeral_key.public
    )
    assert any("pairing_ephemeral_key" in p for p in d.key_problems())
