"""Contract tests of :class:`wastore.SignalStore`."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..contract import Backend
from ._support import key32, record

_PROPERTY = settings(
    max_examples=25,
    deadline=None,
    # Every backend's subclass runs these same test functions; the state under test
    # comes from the backend fixture, not from the test class.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)
# Addresses are opaque strings: any UTF-8 text of 1 to 512 characters without NUL.
_ADDRESS = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=512
)
_RECORD = st.binary(min_size=1, max_size=4096)
_PREKEY_ID = st.integers(min_value=0, max_value=(1 << 24) - 1)

A = "4917012345678@s.whatsapp.net"
A_DEV = "4917012345678:12@s.whatsapp.net"
B = "4917099999999@s.whatsapp.net"
C = "81234567890123:4@lid"


class SignalStoreContract:
    """Identities, sessions, pre-keys, signed pre-keys and sender keys."""

    # -- identities ----------------------------------------------------------
    async def test_identity_put_load_replace_delete(self, backend: Backend) -> None:
        assert await backend.load_identity(A) is None
        await backend.put_identity(A, key32("id", 1))
        assert await backend.load_identity(A) == key32("id", 1)
        await backend.put_identity(A, key32("id", 2))
        assert await backend.load_identity(A) == key32("id", 2)
        await backend.delete_identity(A)
        assert await backend.load_identity(A) is None
        await backend.delete_identity(A)  # deleting what is absent is a no-op
        assert await backend.load_identity(A) is None

    async def test_identities_are_keyed_by_exact_address(self, backend: Backend) -> None:
        await backend.put_identity(A, key32("a"))
        await backend.put_identity(A_DEV, key32("a-dev"))
        assert await backend.load_identity(A) == key32("a")
        assert await backend.load_identity(A_DEV) == key32("a-dev")
        assert await backend.load_identity(B) is None

    async def test_put_identities_batch_stores_every_item(self, backend: Backend) -> None:
        await backend.put_identities_batch([(A, key32(1)), (B, key32(2)), (C, key32(3))])
        assert await backend.load_identity(A) == key32(1)
        assert await backend.load_identity(B) == key32(2)
        assert await backend.load_identity(C) == key32(3)
        await backend.put_identities_batch([])  # an empty batch is fine
        assert await backend.load_identity(A) == key32(1)

    # -- sessions ------------------------------------------------------------
    async def test_session_put_get_replace_delete(self, backend: Backend) -> None:
        assert await backend.get_session(A) is None
        assert await backend.has_session(A) is False
        await backend.put_session(A, record("s", 1))
        assert await backend.get_session(A) == record("s", 1)
        assert await backend.has_session(A) is True
        await backend.put_session(A, record("s", 2))
        assert await backend.get_session(A) == record("s", 2)
        await backend.delete_session(A)
        assert await backend.get_session(A) is None
        assert await backend.has_session(A) is False
        await backend.delete_session(A)
        assert await backend.has_session(A) is False

    async def test_get_sessions_returns_only_the_sessions_found(self, backend: Backend) -> None:
        await backend.put_session(A, record("a"))
        await backend.put_session(C, record("c"))
        assert await backend.get_sessions([A, B, C]) == {A: record("a"), C: record("c")}
        assert await backend.get_sessions([B]) == {}
        assert await backend.get_sessions([]) == {}

    async def test_put_sessions_batch_stores_every_item(self, backend: Backend) -> None:
        await backend.put_sessions_batch([(A, record(1)), (A_DEV, record(2)), (C, record(3))])
        assert await backend.get_sessions([A, A_DEV, B, C]) == {
            A: record(1),
            A_DEV: record(2),
            C: record(3),
        }

    async def test_session_records_are_opaque_bytes(self, backend: Backend) -> None:
        every_byte = bytes(range(256)) * 4
        big = bytes(i % 251 for i in range(1 << 20))  # 1 MiB
        await backend.put_session(A, every_byte)
        await backend.put_session(B, big)
        await backend.put_session(C, b"\x00")
        assert await backend.get_session(A) == every_byte
        assert await backend.get_session(B) == big
        assert await backend.get_session(C) == b"\x00"

    # -- all signal state of one user ------------------------------------------
    async def _seed_users(self, backend: Backend) -> None:
        await backend.put_session("123@s.whatsapp.net", record(1))
        await backend.put_session("123:5@s.whatsapp.net", record(2))
        await backend.put_identity("123@s.whatsapp.net", key32(1))
        await backend.put_identity("123:7@s.whatsapp.net", key32(2))
        await backend.put_sender_key("120363@g.us::123:5@s.whatsapp.net", record(3))
        await backend.put_sender_key("120364@g.us::123@s.whatsapp.net", record(4))
        # similar but other users, and a group id that starts with the user
        await backend.put_session("1234@s.whatsapp.net", record(5))
        await backend.put_session("x123@s.whatsapp.net", record(6))
        await backend.put_session("1234:5@s.whatsapp.net", record(7))
        await backend.put_identity("12@s.whatsapp.net", key32(3))
        await backend.put_sender_key("120363@g.us::1234@s.whatsapp.net", record(8))
        await backend.put_sender_key("123@g.us::999@s.whatsapp.net", record(9))

    async def test_delete_signal_state_for_user_removes_every_device_of_that_user(
        self, backend: Backend
    ) -> None:
        await self._seed_users(backend)
        assert await backend.delete_signal_state_for_user("123") == 6
        gone = ["123@s.whatsapp.net", "123:5@s.whatsapp.net"]
        assert await backend.get_sessions(gone) == {}
        assert await backend.load_identity("123@s.whatsapp.net") is None
        assert await backend.load_identity("123:7@s.whatsapp.net") is None
        assert await backend.get_sender_key("120363@g.us::123:5@s.whatsapp.net") is None
        assert await backend.get_sender_key("120364@g.us::123@s.whatsapp.net") is None
        assert await backend.has_signal_state_for_user("123") is False
        assert await backend.delete_signal_state_for_user("123") == 0

    async def test_delete_signal_state_for_user_keeps_other_users(self, backend: Backend) -> None:
        await self._seed_users(backend)
        await backend.delete_signal_state_for_user("123")
        kept = ["1234@s.whatsapp.net", "x123@s.whatsapp.net", "1234:5@s.whatsapp.net"]
        assert set(await backend.get_sessions(kept)) == set(kept)
        assert await backend.load_identity("12@s.whatsapp.net") == key32(3)
        assert await backend.get_sender_key("120363@g.us::1234@s.whatsapp.net") == record(8)
        assert await backend.get_sender_key("123@g.us::999@s.whatsapp.net") == record(9)

    async def test_user_matching_takes_the_user_literally(self, backend: Backend) -> None:
        # "_" and "%" are SQL LIKE wildcards; a user is matched as plain text.
        await backend.put_session("1x3@s.whatsapp.net", record(1))
        await backend.put_identity("12345@lid", key32(1))
        await backend.put_sender_key("120363@g.us::1x3:2@s.whatsapp.net", record(2))
        for user in ("1_3", "1%", "%", "_x3", "1x3%"):
            assert await backend.has_signal_state_for_user(user) is False, user
            assert await backend.delete_signal_state_for_user(user) == 0, user
        assert await backend.get_session("1x3@s.whatsapp.net") == record(1)
        assert await backend.load_identity("12345@lid") == key32(1)
        assert await backend.get_sender_key("120363@g.us::1x3:2@s.whatsapp.net") == record(2)

    async def test_has_signal_state_for_user_sees_sessions_and_identities(
        self, backend: Backend
    ) -> None:
        assert await backend.has_signal_state_for_user("123") is False
        await backend.put_session("123:5@s.whatsapp.net", record(1))
        assert await backend.has_signal_state_for_user("123") is True
        assert await backend.has_signal_state_for_user("12") is False
        assert await backend.has_signal_state_for_user("1234") is False
        await backend.delete_session("123:5@s.whatsapp.net")
        assert await backend.has_signal_state_for_user("123") is False
        await backend.put_identity("123@lid", key32(1))
        assert await backend.has_signal_state_for_user("123") is True

    async def test_get_session_addresses_lists_every_device_of_that_user(
        self, backend: Backend
    ) -> None:
        assert await backend.get_session_addresses("123") == []
        await self._seed_users(backend)
        await backend.put_session("123:12@lid", record(10))
        # Ascending bytes: ':' (0x3a) sorts before '@' (0x40), "12" before "5".
        assert await backend.get_session_addresses("123") == [
            "123:12@lid",
            "123:5@s.whatsapp.net",
            "123@s.whatsapp.net",
        ]
        # Other users, identities and sender keys are not sessions of "123" / "12".
        assert await backend.get_session_addresses("12") == []
        assert await backend.get_session_addresses("1234") == [
            "1234:5@s.whatsapp.net",
            "1234@s.whatsapp.net",
        ]
        await backend.delete_session("123:5@s.whatsapp.net")
        await backend.put_session("123:7@s.whatsapp.net", record(11))
        assert await backend.get_session_addresses("123") == [
            "123:12@lid",
            "123:7@s.whatsapp.net",
            "123@s.whatsapp.net",
        ]
        await backend.delete_signal_state_for_user("123")
        assert await backend.get_session_addresses("123") == []

    async def test_get_session_addresses_takes_the_user_literally(self, backend: Backend) -> None:
        await backend.put_session("1x3@s.whatsapp.net", record(1))
        await backend.put_session("1x3:4@s.whatsapp.net", record(2))
        for user in ("1_3", "1%", "%", "_x3", "1x3%", "1x", "x3"):
            assert await backend.get_session_addresses(user) == [], user
        assert await backend.get_session_addresses("1x3") == [
            "1x3:4@s.whatsapp.net",
            "1x3@s.whatsapp.net",
        ]

    async def test_has_signal_state_for_user_ignores_sender_keys(self, backend: Backend) -> None:
        await backend.put_sender_key("120363@g.us::123@s.whatsapp.net", record(1))
        assert await backend.has_signal_state_for_user("123") is False

    # -- pre-keys ------------------------------------------------------------
    async def test_prekey_store_load_remove(self, backend: Backend) -> None:
        assert await backend.load_prekey(5) is None
        await backend.store_prekey(5, record("pk", 5), False)
        assert await backend.load_prekey(5) == record("pk", 5)
        await backend.remove_prekey(5)
        assert await backend.load_prekey(5) is None
        await backend.remove_prekey(5)  # removing what is absent is a no-op
        assert await backend.count_prekeys() == (0, 0)

    async def test_prekey_ids_cover_zero_to_two_pow_24_minus_one(self, backend: Backend) -> None:
        top = (1 << 24) - 1
        await backend.store_prekey(0, record("pk", 0), False)
        await backend.store_prekey(top, record("pk", top), True)
        assert await backend.load_prekey(0) == record("pk", 0)
        assert await backend.load_prekey(top) == record("pk", top)
        assert await backend.get_max_prekey_id() == top

    async def test_load_prekeys_batch_returns_only_the_keys_found(self, backend: Backend) -> None:
        await backend.store_prekeys_batch([(1, record(1)), (2, record(2))], False)
        await backend.store_prekey(9, record(9), True)
        assert await backend.load_prekeys_batch([1, 2, 3, 9]) == {
            1: record(1),
            2: record(2),
            9: record(9),
        }
        assert await backend.load_prekeys_batch([4]) == {}
        assert await backend.load_prekeys_batch([]) == {}

    async def test_store_prekeys_batch_applies_the_uploaded_flag_to_all(
        self, backend: Backend
    ) -> None:
        await backend.store_prekeys_batch([(1, record(1)), (2, record(2))], True)
        await backend.store_prekeys_batch([(3, record(3)), (4, record(4))], False)
        assert await backend.count_prekeys() == (4, 2)
        assert await backend.load_unuploaded_prekeys(10) == [(3, record(3)), (4, record(4))]

    async def test_load_unuploaded_prekeys_lowest_ids_first_with_limit(
        self, backend: Backend
    ) -> None:
        # numeric order, not text order: 9 < 10 < 100
        for i in (100, 9, 1000, 10, 2):
            await backend.store_prekey(i, record(i), False)
        for i in (1, 5, 50):
            await backend.store_prekey(i, record(i), True)
        assert await backend.load_unuploaded_prekeys(3) == [
            (2, record(2)),
            (9, record(9)),
            (10, record(10)),
        ]
        assert [i for i, _ in await backend.load_unuploaded_prekeys(100)] == [2, 9, 10, 100, 1000]
        assert await backend.load_unuploaded_prekeys(0) == []

    async def test_mark_prekeys_uploaded_flags_only_those_keys(self, backend: Backend) -> None:
        await backend.store_prekeys_batch([(i, record(i)) for i in range(1, 6)], False)
        await backend.mark_prekeys_uploaded([2, 4])
        assert await backend.count_prekeys() == (5, 2)
        assert [i for i, _ in await backend.load_unuploaded_prekeys(10)] == [1, 3, 5]
        await backend.mark_prekeys_uploaded([2])  # already uploaded: no change
        assert await backend.count_prekeys() == (5, 2)
        assert await backend.load_prekey(2) == record(2)  # the record is untouched

    async def test_mark_prekeys_uploaded_never_resurrects_a_removed_key(
        self, backend: Backend
    ) -> None:
        await backend.store_prekeys_batch([(1, record(1)), (2, record(2))], False)
        await backend.remove_prekey(1)
        await backend.mark_prekeys_uploaded([1, 2])
        assert await backend.load_prekey(1) is None
        assert await backend.load_prekeys_batch([1, 2]) == {2: record(2)}
        assert await backend.count_prekeys() == (1, 1)
        assert await backend.get_max_prekey_id() == 2

    async def test_mark_prekeys_uploaded_ignores_unknown_ids(self, backend: Backend) -> None:
        await backend.mark_prekeys_uploaded([7, 8])
        assert await backend.load_prekeys_batch([7, 8]) == {}
        assert await backend.count_prekeys() == (0, 0)
        assert await backend.get_max_prekey_id() == 0

    async def test_get_max_prekey_id(self, backend: Backend) -> None:
        assert await backend.get_max_prekey_id() == 0
        for i in (5, 70000, 7):
            await backend.store_prekey(i, record(i), i == 7)
        assert await backend.get_max_prekey_id() == 70000
        await backend.remove_prekey(70000)
        assert await backend.get_max_prekey_id() == 7

    async def test_count_prekeys_counts_total_and_uploaded(self, backend: Backend) -> None:
        assert await backend.count_prekeys() == (0, 0)
        await backend.store_prekeys_batch([(i, record(i)) for i in range(1, 4)], False)
        await backend.store_prekey(10, record(10), True)
        assert await backend.count_prekeys() == (4, 1)
        await backend.mark_prekeys_uploaded([1])
        assert await backend.count_prekeys() == (4, 2)
        await backend.remove_prekey(10)
        assert await backend.count_prekeys() == (3, 1)

    # -- signed pre-keys -------------------------------------------------------
    async def test_signed_prekey_store_load_remove(self, backend: Backend) -> None:
        assert await backend.load_signed_prekey(1) is None
        await backend.store_signed_prekey(1, record("spk", 1))
        assert await backend.load_signed_prekey(1) == record("spk", 1)
        await backend.store_signed_prekey(1, record("spk", 1, "new"))
        assert await backend.load_signed_prekey(1) == record("spk", 1, "new")
        await backend.remove_signed_prekey(1)
        assert await backend.load_signed_prekey(1) is None
        await backend.remove_signed_prekey(1)
        assert await backend.load_all_signed_prekeys() == []

    async def test_load_all_signed_prekeys_by_ascending_id(self, backend: Backend) -> None:
        assert await backend.load_all_signed_prekeys() == []
        for i in (30, 4, 200, 0):
            await backend.store_signed_prekey(i, record("spk", i))
        assert await backend.load_all_signed_prekeys() == [
            (0, record("spk", 0)),
            (4, record("spk", 4)),
            (30, record("spk", 30)),
            (200, record("spk", 200)),
        ]
        await backend.remove_signed_prekey(4)
        assert [i for i, _ in await backend.load_all_signed_prekeys()] == [0, 30, 200]

    # -- sender keys -----------------------------------------------------------
    async def test_sender_key_put_get_replace_delete(self, backend: Backend) -> None:
        address = "120363@g.us::4917012345678:3@s.whatsapp.net"
        assert await backend.get_sender_key(address) is None
        await backend.put_sender_key(address, record("sk", 1))
        assert await backend.get_sender_key(address) == record("sk", 1)
        await backend.put_sender_key(address, record("sk", 2))
        assert await backend.get_sender_key(address) == record("sk", 2)
        await backend.delete_sender_key(address)
        assert await backend.get_sender_key(address) is None
        await backend.delete_sender_key(address)
        assert await backend.get_sender_key(address) is None

    async def test_put_sender_keys_batch_stores_every_item(self, backend: Backend) -> None:
        items = [(f"12036{i}@g.us::{A}", record("sk", i)) for i in range(5)]
        await backend.put_sender_keys_batch(items)
        for address, rec in items:
            assert await backend.get_sender_key(address) == rec
        assert await backend.get_sender_key(f"120369@g.us::{A}") is None

    # -- a later duplicate in one batch wins, like sequential calls ------------
    async def test_batches_with_duplicate_keys_keep_the_last_item(self, backend: Backend) -> None:
        await backend.put_sessions_batch([(A, record(1)), (B, record(2)), (A, record(3))])
        await backend.put_identities_batch([(A, key32(1)), (A, key32(2))])
        await backend.put_sender_keys_batch(
            [(f"g@g.us::{A}", record(4)), (f"g@g.us::{A}", record(5))]
        )
        await backend.store_prekeys_batch([(1, record(6)), (1, record(7))], False)
        assert await backend.get_session(A) == record(3)
        assert await backend.get_session(B) == record(2)
        assert await backend.load_identity(A) == key32(2)
        assert await backend.get_sender_key(f"g@g.us::{A}") == record(5)
        assert await backend.load_prekey(1) == record(7)
        assert await backend.count_prekeys() == (1, 0)

    # -- store then load returns the same bytes (property based) ---------------
    @_PROPERTY
    @given(address=_ADDRESS, rec=_RECORD)
    async def test_session_round_trip_property(
        self, backend: Backend, address: str, rec: bytes
    ) -> None:
        await backend.put_session(address, rec)
        assert await backend.get_session(address) == rec
        assert await backend.get_sessions([address]) == {address: rec}
        assert await backend.has_session(address) is True

    @_PROPERTY
    @given(address=_ADDRESS, key=st.binary(min_size=32, max_size=32))
    async def test_identity_round_trip_property(
        self, backend: Backend, address: str, key: bytes
    ) -> None:
        await backend.put_identity(address, key)
        assert await backend.load_identity(address) == key

    @_PROPERTY
    @given(prekey_id=_PREKEY_ID, rec=_RECORD, uploaded=st.booleans())
    async def test_prekey_round_trip_property(
        self, backend: Backend, prekey_id: int, rec: bytes, uploaded: bool
    ) -> None:
        await backend.store_prekey(prekey_id, rec, uploaded)
        assert await backend.load_prekey(prekey_id) == rec
        assert await backend.load_prekeys_batch([prekey_id]) == {prekey_id: rec}
        unuploaded = dict(await backend.load_unuploaded_prekeys(1000))
        assert (prekey_id in unuploaded) is not uploaded

    @_PROPERTY
    @given(items=st.dictionaries(_PREKEY_ID, _RECORD, min_size=1, max_size=20))
    async def test_prekey_batch_round_trip_property(
        self, backend: Backend, items: dict[int, bytes]
    ) -> None:
        await backend.store_prekeys_batch(list(items.items()), False)
        assert await backend.load_prekeys_batch(list(items)) == items

    @_PROPERTY
    @given(address=_ADDRESS, rec=_RECORD)
    async def test_sender_key_round_trip_property(
        self, backend: Backend, address: str, rec: bytes
    ) -> None:
        await backend.put_sender_key(address, rec)
        assert await backend.get_sender_key(address) == rec
