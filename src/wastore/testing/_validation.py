"""Contract tests of argument validation: bad input raises ValidationError and writes nothing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..contract import Backend
from ..device import Device
from ..errors import ValidationError
from ..values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    TcToken,
)
from ._support import (
    ADDRESSES,
    BASE_KEYS,
    COLLECTIONS,
    GROUPS,
    INDEX_MACS,
    LIDS,
    MESSAGE_IDS,
    PHONES,
    PREKEY_IDS,
    SENDER_KEY_ADDRESSES,
    SYNC_KEY_IDS,
    USERS,
    hash128,
    key32,
    populate,
    record,
    state_summary,
)

A0, A1 = ADDRESSES
SK0, SK1 = SENDER_KEY_ADDRESSES
LONG_TEXT: Final = "x" * 513


def _lid(lid: str, phone: str) -> LidPnMapping:
    return LidPnMapping(
        lid=lid, phone_number=phone, created_at=500, updated_at=500, learning_source="new"
    )


def _secret(chat: str, sender: str) -> MsgSecret:
    return MsgSecret(
        chat=chat, sender=sender, msg_id=MESSAGE_IDS[0], secret=key32("new"), message_ts=500
    )


# A batch of valid items whose last item is bad: a backend that writes item by item
# would have written the good ones before it met the bad one.
_BAD_BATCHES: Final[list[Any]] = [
    *(
        pytest.param(
            "put_identities_batch",
            ([(A0, key32("new", 0)), (A1, key32("new", 1)), bad],),
            id=f"put_identities_batch-{name}",
        )
        for name, bad in [
            ("short-key", (A0, bytes(31))),
            ("long-key", (A1, bytes(33))),
            ("key-not-bytes", (A0, "k" * 32)),
            ("empty-address", ("", key32(0))),
            ("long-address", (LONG_TEXT, key32(0))),
            ("address-not-str", (None, key32(0))),
            ("not-a-pair", "not a pair"),
            ("triple", (A0, key32(0), key32(1))),
        ]
    ),
    *(
        pytest.param(
            "put_sessions_batch",
            ([(A0, record("new", 0)), (A1, record("new", 1)), bad],),
            id=f"put_sessions_batch-{name}",
        )
        for name, bad in [
            ("empty-record", (A0, b"")),
            ("record-not-bytes", (A0, "record")),
            ("record-none", (A1, None)),
            ("empty-address", ("", record(0))),
            ("address-bytes", (A0.encode(), record(0))),
            ("not-a-pair", None),
        ]
    ),
    *(
        pytest.param(
            "put_sender_keys_batch",
            ([(SK0, record("new", 0)), (SK1, record("new", 1)), bad],),
            id=f"put_sender_keys_batch-{name}",
        )
        for name, bad in [
            ("empty-address", ("", record(0))),
            ("record-not-bytes", (SK0, 123)),
            ("single", (SK0,)),
        ]
    ),
    *(
        pytest.param(
            "store_prekeys_batch",
            ([(PREKEY_IDS[0], record("new", 0)), (PREKEY_IDS[1], record("new", 1)), bad], True),
            id=f"store_prekeys_batch-{name}",
        )
        for name, bad in [
            ("id-2pow24", (1 << 24, record(0))),
            ("id-negative", (-1, record(0))),
            ("id-bool", (True, record(0))),
            ("id-str", ("3", record(0))),
            ("empty-record", (PREKEY_IDS[2], b"")),
        ]
    ),
    *(
        pytest.param(
            "put_mutation_macs",
            (
                COLLECTIONS[0],
                50,
                [
                    MutationMAC(INDEX_MACS[0], key32("new", 0)),
                    MutationMAC(INDEX_MACS[1], key32(1)),
                    bad,
                ],
            ),
            id=f"put_mutation_macs-{name}",
        )
        for name, bad in [
            ("none", None),
            ("tuple", (INDEX_MACS[0], key32("tuple"))),
            ("other-value-type", HashState()),
        ]
    ),
    *(
        pytest.param(
            "set_sender_key_status",
            (GROUPS[0], [(A0, False), (A1, False), bad]),
            id=f"set_sender_key_status-{name}",
        )
        for name, bad in [
            ("int-flag", (A0, 1)),
            ("none-flag", (A1, None)),
            ("empty-jid", ("", True)),
            ("jid-none", (None, True)),
            ("not-a-pair", "x"),
        ]
    ),
    *(
        pytest.param(
            "put_lid_mappings",
            ([_lid(LIDS[0], PHONES[1]), _lid(LIDS[1], PHONES[0]), bad],),
            id=f"put_lid_mappings-{name}",
        )
        for name, bad in [
            ("none", None),
            ("tuple", (LIDS[0], PHONES[0], 1, 1, "")),
            ("other-value-type", TcToken(b"", 0)),
        ]
    ),
    *(
        pytest.param(
            "update_device_lists",
            (
                [
                    DeviceListRecord(user=USERS[0], devices=(DeviceInfo(9),), timestamp=500),
                    DeviceListRecord(user=USERS[1], devices=(DeviceInfo(9),), timestamp=500),
                    bad,
                ],
            ),
            id=f"update_device_lists-{name}",
        )
        for name, bad in [("none", None), ("user-str", USERS[0]), ("other-value-type", HashState())]
    ),
    *(
        pytest.param(
            "put_msg_secrets",
            ([_secret(A0, A1), _secret(A1, A0), bad],),
            id=f"put_msg_secrets-{name}",
        )
        for name, bad in [("none", None), ("tuple", (A0, A0, "m", key32(0), 0, 0))]
    ),
]


# -- strategies for the bad-input property -------------------------------------------
@dataclass(frozen=True)
class _Arg:
    """How to draw one argument of a method: a valid value (from the key pools) or a bad one."""

    good: st.SearchStrategy[Any]
    bad: st.SearchStrategy[Any]


_NOT_STR = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
)
_NOT_BYTES = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    st.text(max_size=40),
    st.lists(st.integers(0, 255), max_size=4),
)
_NOT_INT = st.one_of(
    st.none(), st.booleans(), st.floats(), st.text(max_size=5), st.binary(max_size=4)
)
_BAD_TEXT = st.one_of(
    _NOT_STR, st.just(""), st.just("\ud800@s.whatsapp.net"), st.text(min_size=513, max_size=600)
)
_SAMPLE_VALUES: Final = (
    AppStateSyncKey(key_data=key32(0), fingerprint=b"", timestamp=0),
    HashState(),
    MutationMAC(index_mac=INDEX_MACS[0], value_mac=key32(0)),
    LidPnMapping(lid=LIDS[0], phone_number=PHONES[0], created_at=0, updated_at=0),
    DeviceListRecord(user=USERS[0]),
    TcToken(token=b"", token_timestamp=0),
    MsgSecret(chat=A0, sender=A0, msg_id=MESSAGE_IDS[0], secret=key32(0)),
)


def _text(pool: tuple[str, ...]) -> _Arg:
    return _Arg(st.sampled_from(pool), _BAD_TEXT)


def _fixed(length: int, pool: st.SearchStrategy[bytes]) -> _Arg:
    wrong = st.binary(max_size=2 * length + 8).filter(lambda b: len(b) != length)
    return _Arg(pool, st.one_of(_NOT_BYTES, wrong))


def _int(lo: int, hi: int, good: st.SearchStrategy[int]) -> _Arg:
    return _Arg(
        good, st.one_of(_NOT_INT, st.integers(max_value=lo - 1), st.integers(min_value=hi + 1))
    )


def _value(kind: type, good: st.SearchStrategy[Any]) -> _Arg:
    others = [v for v in _SAMPLE_VALUES if not isinstance(v, kind)]
    bad = st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=5),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.sampled_from(others),
    )
    return _Arg(good, bad)


def _pair(first: _Arg, second: _Arg) -> _Arg:
    bad = st.one_of(
        st.tuples(first.bad, second.good),
        st.tuples(first.good, second.bad),
        st.tuples(first.good),
        st.tuples(first.good, second.good, second.good),
        st.none(),
        st.integers(),
    )
    return _Arg(st.tuples(first.good, second.good), bad)


def _insert(parts: tuple[list[Any], Any, int]) -> list[Any]:
    items, bad, at = parts
    return [*items[: at % (len(items) + 1)], bad, *items[at % (len(items) + 1) :]]


def _seq(item: _Arg) -> _Arg:
    good = st.lists(item.good, max_size=3)
    one_bad_item = st.tuples(good, item.bad, st.integers(0, 3)).map(_insert)
    not_a_sequence = st.one_of(
        st.none(),
        st.integers(),
        st.booleans(),
        st.text(max_size=20),
        st.binary(max_size=40),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
    return _Arg(good, st.one_of(one_bad_item, not_a_sequence))


_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
ADDRESS = _text(ADDRESSES)
SK_ADDRESS = _text(SENDER_KEY_ADDRESSES)
GROUP = _text(GROUPS)
USER = _text(USERS)
LID = _text(LIDS)
PHONE = _text(PHONES)
MSG_ID = _text(MESSAGE_IDS)
COLLECTION = _Arg(
    st.sampled_from(COLLECTIONS), st.one_of(_BAD_TEXT, st.text(min_size=65, max_size=80))
)
RECORD = _Arg(st.binary(min_size=1, max_size=16), st.one_of(_NOT_BYTES, st.just(b"")))
TOKEN = _Arg(st.binary(min_size=1, max_size=16), _NOT_BYTES)
KEY32 = _fixed(32, st.binary(min_size=32, max_size=32))
INDEX_MAC = _fixed(32, st.sampled_from(INDEX_MACS))
BASE_KEY = _Arg(
    st.sampled_from(BASE_KEYS),
    st.one_of(_NOT_BYTES, st.binary(max_size=70).filter(lambda b: len(b) not in (32, 33))),
)
SYNC_KEY_ID = _Arg(st.sampled_from(SYNC_KEY_IDS), _NOT_BYTES)
PREKEY_ID = _int(0, (1 << 24) - 1, st.sampled_from(PREKEY_IDS))
LIMIT = _Arg(st.integers(0, 10), st.one_of(_NOT_INT, st.integers(max_value=-1)))
FLAG = _Arg(st.booleans(), st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats()))
TIMESTAMP = _int(_I64_MIN, _I64_MAX, st.integers(0, 1 << 40))
VERSION = _int(0, _I64_MAX, st.integers(0, 100))
SYNC_KEY = _value(
    AppStateSyncKey,
    st.builds(
        AppStateSyncKey,
        key_data=st.binary(min_size=32, max_size=32),
        fingerprint=st.binary(max_size=8),
        timestamp=st.integers(0, 1 << 40),
    ),
)
HASH_STATE = _value(
    HashState,
    st.builds(HashState, version=st.integers(0, 100), hash=st.binary(min_size=128, max_size=128)),
)
MUTATION_MAC = _value(
    MutationMAC,
    st.builds(
        MutationMAC,
        index_mac=st.sampled_from(INDEX_MACS),
        value_mac=st.binary(min_size=32, max_size=32),
    ),
)
LID_MAPPING = _value(
    LidPnMapping,
    st.builds(
        LidPnMapping,
        lid=st.sampled_from(LIDS),
        phone_number=st.sampled_from(PHONES),
        created_at=st.integers(0, 1 << 40),
        updated_at=st.integers(0, 1 << 40),
        learning_source=st.text(max_size=8).filter(lambda s: "\x00" not in s),
    ),
)
DEVICE_LIST = _value(
    DeviceListRecord,
    st.builds(
        DeviceListRecord,
        user=st.sampled_from(USERS),
        devices=st.lists(st.builds(DeviceInfo, device_id=st.integers(0, 99)), max_size=3).map(
            tuple
        ),
        timestamp=st.integers(0, 1 << 40),
    ),
)
TC_TOKEN = _value(
    TcToken,
    st.builds(
        TcToken,
        token=st.binary(max_size=8),
        token_timestamp=st.integers(0, 1 << 40),
        sender_timestamp=st.none() | st.integers(0, 1 << 40),
    ),
)
MSG_SECRET = _value(
    MsgSecret,
    st.builds(
        MsgSecret,
        chat=st.sampled_from(ADDRESSES),
        sender=st.sampled_from(ADDRESSES),
        msg_id=st.sampled_from(MESSAGE_IDS),
        secret=st.binary(min_size=32, max_size=32),
        expires_at=st.integers(0, 1 << 40),
        message_ts=st.integers(0, 1 << 40),
    ),
)
# save() has one argument, so it is always drawn bad: no valid device is needed.
DEVICE = _value(Device, st.nothing())

# Every method that takes arguments, with how to draw each argument.
BAD_INPUT_METHODS: Final[dict[str, tuple[_Arg, ...]]] = {
    # SignalStore
    "put_identity": (ADDRESS, KEY32),
    "put_identities_batch": (_seq(_pair(ADDRESS, KEY32)),),
    "load_identity": (ADDRESS,),
    "delete_identity": (ADDRESS,),
    "get_session": (ADDRESS,),
    "get_sessions": (_seq(ADDRESS),),
    "put_session": (ADDRESS, RECORD),
    "put_sessions_batch": (_seq(_pair(ADDRESS, RECORD)),),
    "delete_session": (ADDRESS,),
    "has_session": (ADDRESS,),
    "has_signal_state_for_user": (USER,),
    "delete_signal_state_for_user": (USER,),
    "get_session_addresses": (USER,),
    "store_prekey": (PREKEY_ID, RECORD, FLAG),
    "store_prekeys_batch": (_seq(_pair(PREKEY_ID, RECORD)), FLAG),
    "load_prekey": (PREKEY_ID,),
    "load_prekeys_batch": (_seq(PREKEY_ID),),
    "load_unuploaded_prekeys": (LIMIT,),
    "mark_prekeys_uploaded": (_seq(PREKEY_ID),),
    "remove_prekey": (PREKEY_ID,),
    "store_signed_prekey": (PREKEY_ID, RECORD),
    "load_signed_prekey": (PREKEY_ID,),
    "remove_signed_prekey": (PREKEY_ID,),
    "put_sender_key": (SK_ADDRESS, RECORD),
    "put_sender_keys_batch": (_seq(_pair(SK_ADDRESS, RECORD)),),
    "get_sender_key": (SK_ADDRESS,),
    "delete_sender_key": (SK_ADDRESS,),
    # AppSyncStore
    "get_sync_key": (SYNC_KEY_ID,),
    "set_sync_key": (SYNC_KEY_ID, SYNC_KEY),
    "delete_sync_key": (SYNC_KEY_ID,),
    "get_version": (COLLECTION,),
    "set_version": (COLLECTION, HASH_STATE),
    "put_mutation_macs": (COLLECTION, VERSION, _seq(MUTATION_MAC)),
    "get_mutation_mac": (COLLECTION, INDEX_MAC),
    "get_mutation_macs": (COLLECTION, _seq(INDEX_MAC)),
    "get_all_mutation_macs": (COLLECTION,),
    "delete_mutation_macs": (COLLECTION, _seq(INDEX_MAC)),
    "clear_mutation_macs": (COLLECTION,),
    # ProtocolStore
    "get_sender_key_devices": (GROUP,),
    "set_sender_key_status": (GROUP, _seq(_pair(ADDRESS, FLAG))),
    "clear_sender_key_devices": (GROUP,),
    "delete_sender_key_device_rows": (_seq(ADDRESS),),
    "get_lid_mapping": (LID,),
    "get_pn_mapping": (PHONE,),
    "put_lid_mapping": (LID_MAPPING,),
    "put_lid_mappings": (_seq(LID_MAPPING),),
    "save_base_key": (ADDRESS, MSG_ID, BASE_KEY),
    "has_same_base_key": (ADDRESS, MSG_ID, BASE_KEY),
    "delete_base_key": (ADDRESS, MSG_ID),
    "update_device_list": (DEVICE_LIST,),
    "update_device_lists": (_seq(DEVICE_LIST),),
    "get_devices": (USER,),
    "delete_devices": (USER,),
    "get_tc_token": (ADDRESS,),
    "put_tc_token": (ADDRESS, TC_TOKEN),
    "delete_tc_token": (ADDRESS,),
    "delete_expired_tc_tokens": (TIMESTAMP, TIMESTAMP),
    "touch_tc_token_sender_timestamp": (ADDRESS, TIMESTAMP),
    "store_received_tc_token": (ADDRESS, TOKEN, TIMESTAMP),
    "store_sent_message": (ADDRESS, MSG_ID, RECORD),
    "take_sent_message": (ADDRESS, MSG_ID),
    "delete_expired_sent_messages": (TIMESTAMP,),
    "put_msg_secrets": (_seq(MSG_SECRET),),
    "get_msg_secret": (ADDRESS, ADDRESS, MSG_ID),
    "delete_expired_msg_secrets": (TIMESTAMP,),
    "store_pending_inbound": (ADDRESS, ADDRESS, MSG_ID, RECORD),
    "get_pending_inbound": (ADDRESS, ADDRESS, MSG_ID),
    "delete_pending_inbound": (ADDRESS, ADDRESS, MSG_ID),
    "delete_expired_pending_inbound": (TIMESTAMP,),
    "get_group_metadata": (GROUP,),
    "put_group_metadata": (GROUP, RECORD),
    "delete_group_metadata": (GROUP,),
    # DeviceStore
    "save": (DEVICE,),
}


class ValidationContract:
    """Rejected arguments raise ValidationError, and a rejected call writes nothing."""

    @pytest_asyncio.fixture
    async def seeded_backend(self, backend: Backend) -> tuple[Backend, dict[str, Any]]:
        """The account with data under every pool key, and its state summary."""
        await populate(backend)
        return backend, await state_summary(backend)

    @pytest.mark.parametrize(("method", "args"), _BAD_BATCHES)
    async def test_batch_with_one_bad_item_raises_and_writes_nothing(
        self, seeded_backend: tuple[Backend, dict[str, Any]], method: str, args: tuple[Any, ...]
    ) -> None:
        backend, before = seeded_backend
        with pytest.raises(ValidationError):
            await getattr(backend, method)(*args)
        assert await state_summary(backend) == before

    async def test_identity_key_must_be_32_bytes(self, backend: Backend) -> None:
        for n in (0, 31, 33, 64):
            with pytest.raises(ValidationError):
                await backend.put_identity(A0, bytes(n))
        assert await backend.load_identity(A0) is None

    async def test_mutation_macs_must_be_32_bytes(self, backend: Backend) -> None:
        await backend.put_mutation_macs(COLLECTIONS[0], 1, [MutationMAC(INDEX_MACS[0], key32(1))])
        for n in (31, 33):
            with pytest.raises(ValidationError):
                await backend.put_mutation_macs(
                    COLLECTIONS[0], 2, [MutationMAC(INDEX_MACS[0], bytes(n))]
                )
            with pytest.raises(ValidationError):
                await backend.put_mutation_macs(
                    COLLECTIONS[0], 2, [MutationMAC(bytes(n), key32(2))]
                )
            with pytest.raises(ValidationError):
                await backend.get_mutation_mac(COLLECTIONS[0], bytes(n))
            with pytest.raises(ValidationError):
                await backend.get_mutation_macs(COLLECTIONS[0], [INDEX_MACS[0], bytes(n)])
            with pytest.raises(ValidationError):
                await backend.delete_mutation_macs(COLLECTIONS[0], [INDEX_MACS[0], bytes(n)])
        assert await backend.get_mutation_mac(COLLECTIONS[0], INDEX_MACS[0]) == key32(1)

    async def test_collection_hash_must_be_128_bytes(self, backend: Backend) -> None:
        state = HashState(version=3, hash=hash128(3))
        await backend.set_version(COLLECTIONS[0], state)
        for n in (0, 32, 127, 129):
            with pytest.raises(ValidationError):
                await backend.set_version(COLLECTIONS[0], HashState(version=4, hash=bytes(n)))
        assert await backend.get_version(COLLECTIONS[0]) == state

    async def test_message_secret_must_be_32_bytes(self, backend: Backend) -> None:
        for n in (0, 31, 33):
            with pytest.raises(ValidationError):
                await backend.put_msg_secrets(
                    [MsgSecret(chat=A0, sender=A1, msg_id="M", secret=bytes(n))]
                )
        assert await backend.get_msg_secret(A0, A1, "M") is None

    async def test_sync_key_data_must_be_32_bytes(self, backend: Backend) -> None:
        for n in (0, 31, 33):
            with pytest.raises(ValidationError):
                await backend.set_sync_key(
                    SYNC_KEY_IDS[0],
                    AppStateSyncKey(key_data=bytes(n), fingerprint=b"", timestamp=1),
                )
        assert await backend.get_sync_key(SYNC_KEY_IDS[0]) is None
        assert await backend.get_latest_sync_key_id() is None

    async def test_base_key_must_be_32_or_33_bytes(self, backend: Backend) -> None:
        for n in (0, 31, 34):
            with pytest.raises(ValidationError):
                await backend.save_base_key(A0, "M", bytes(n))
            with pytest.raises(ValidationError):
                await backend.has_same_base_key(A0, "M", bytes(n))
        assert await backend.has_same_base_key(A0, "M", bytes(32)) is False

    async def test_prekey_ids_outside_0_to_2pow24_are_rejected(self, backend: Backend) -> None:
        for bad in (-1, 1 << 24, 1 << 40, True, 1.0, "1", None):
            with pytest.raises(ValidationError):
                await backend.store_prekey(bad, record(1), False)  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await backend.store_signed_prekey(bad, record(1))  # type: ignore[arg-type]
        assert await backend.count_prekeys() == (0, 0)
        assert await backend.load_all_signed_prekeys() == []

    async def test_save_rejects_an_invalid_device(self, backend: Backend) -> None:
        device = await backend.load()
        assert device is not None
        for bad in (None, "device", dataclasses.asdict(device)):
            with pytest.raises(ValidationError):
                await backend.save(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await backend.save(dataclasses.replace(device, adv_secret_key=bytes(31)))
        assert await backend.load() == device

    @pytest.mark.parametrize("method", sorted(BAD_INPUT_METHODS))
    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    async def test_bad_arguments_raise_only_validation_error(
        self, seeded_backend: tuple[Backend, dict[str, Any]], method: str, data: st.DataObject
    ) -> None:
        # hypothesis runs every example against the same seeded account
        backend, expected = seeded_backend
        params = BAD_INPUT_METHODS[method]
        surely_bad = data.draw(st.integers(0, len(params) - 1), label="surely bad argument")
        args = [
            data.draw(
                p.bad
                if i == surely_bad or data.draw(st.booleans(), label=f"arg {i} bad")
                else p.good,
                label=f"arg {i}",
            )
            for i, p in enumerate(params)
        ]
        with pytest.raises(ValidationError):
            await getattr(backend, method)(*args)
        assert await state_summary(backend) == expected
