"""Contract tests of :class:`wastore.ProtocolStore`."""

from __future__ import annotations

import asyncio

from ..contract import Backend
from ..values import DeviceInfo, DeviceListRecord, LidPnMapping, MsgSecret, TcToken
from ._support import FAR_PAST, far_future, key32, record

G1 = "120363000000000001@g.us"
G2 = "120363000000000002@g.us"
D1 = "4917011111111:1@s.whatsapp.net"
D2 = "4917022222222@s.whatsapp.net"
D3 = "81234567890123:7@lid"
CHAT = "4917012345678@s.whatsapp.net"
SENDER = "81234567890123:2@lid"


def _secret(msg_id: str, expires_at: int, message_ts: int, tag: object = 0) -> MsgSecret:
    return MsgSecret(
        chat=CHAT,
        sender=SENDER,
        msg_id=msg_id,
        secret=key32("secret", msg_id, tag),
        expires_at=expires_at,
        message_ts=message_ts,
    )


def _mapping(lid: str, phone: str, created: int, updated: int, source: str = "") -> LidPnMapping:
    return LidPnMapping(
        lid=lid, phone_number=phone, created_at=created, updated_at=updated, learning_source=source
    )


class ProtocolStoreContract:
    """Sender-key distribution, LID mappings, base keys, device lists, tokens, messages."""

    # -- sender-key distribution status --------------------------------------------
    async def test_sender_key_devices_ordered_by_device_jid(self, backend: Backend) -> None:
        assert await backend.get_sender_key_devices(G1) == []
        await backend.set_sender_key_status(G1, [(D3, True), (D1, False), (D2, True)])
        assert await backend.get_sender_key_devices(G1) == sorted(
            [(D1, False), (D2, True), (D3, True)]
        )
        assert await backend.get_sender_key_devices(G2) == []

    async def test_set_sender_key_status_upserts(self, backend: Backend) -> None:
        await backend.set_sender_key_status(G1, [(D1, False), (D2, False)])
        await backend.set_sender_key_status(G1, [(D1, True)])
        assert await backend.get_sender_key_devices(G1) == [(D1, True), (D2, False)]
        await backend.set_sender_key_status(G1, [(D2, True), (D2, False)])  # last one wins
        assert await backend.get_sender_key_devices(G1) == [(D1, True), (D2, False)]
        await backend.set_sender_key_status(G1, [])
        assert await backend.get_sender_key_devices(G1) == [(D1, True), (D2, False)]

    async def test_clear_sender_key_devices_clears_only_that_group(self, backend: Backend) -> None:
        await backend.set_sender_key_status(G1, [(D1, True), (D2, True)])
        await backend.set_sender_key_status(G2, [(D1, True)])
        await backend.clear_sender_key_devices(G1)
        assert await backend.get_sender_key_devices(G1) == []
        assert await backend.get_sender_key_devices(G2) == [(D1, True)]

    async def test_delete_sender_key_device_rows_across_all_groups(self, backend: Backend) -> None:
        await backend.set_sender_key_status(G1, [(D1, True), (D2, True)])
        await backend.set_sender_key_status(G2, [(D1, False), (D3, True)])
        await backend.delete_sender_key_device_rows([D1, "9999@s.whatsapp.net"])
        assert await backend.get_sender_key_devices(G1) == [(D2, True)]
        assert await backend.get_sender_key_devices(G2) == [(D3, True)]
        await backend.delete_sender_key_device_rows([])
        assert await backend.get_sender_key_devices(G2) == [(D3, True)]

    async def test_clear_all_sender_key_devices(self, backend: Backend) -> None:
        await backend.set_sender_key_status(G1, [(D1, True)])
        await backend.set_sender_key_status(G2, [(D2, False)])
        await backend.clear_all_sender_key_devices()
        assert await backend.get_sender_key_devices(G1) == []
        assert await backend.get_sender_key_devices(G2) == []

    # -- LID <-> phone number ------------------------------------------------------
    async def test_lid_mapping_by_lid_and_by_phone(self, backend: Backend) -> None:
        assert await backend.get_lid_mapping("81234567890123") is None
        assert await backend.get_pn_mapping("4917012345678") is None
        m = _mapping("81234567890123", "4917012345678", 1000, 1000, "usync")
        await backend.put_lid_mapping(m)
        assert await backend.get_lid_mapping("81234567890123") == m
        assert await backend.get_pn_mapping("4917012345678") == m
        assert await backend.get_lid_mapping("4917012345678") is None
        assert await backend.get_pn_mapping("81234567890123") is None

    async def test_put_lid_mapping_keeps_the_first_created_at(self, backend: Backend) -> None:
        await backend.put_lid_mapping(_mapping("555", "111", 100, 100, "first"))
        await backend.put_lid_mapping(_mapping("555", "112", 900, 300, "second"))
        assert await backend.get_lid_mapping("555") == _mapping("555", "112", 100, 300, "second")
        assert await backend.get_pn_mapping("112") == _mapping("555", "112", 100, 300, "second")
        assert await backend.get_pn_mapping("111") is None

    async def test_get_pn_mapping_returns_the_most_recently_updated(self, backend: Backend) -> None:
        await backend.put_lid_mapping(_mapping("555", "111", 10, 100))
        await backend.put_lid_mapping(_mapping("556", "111", 10, 300))
        await backend.put_lid_mapping(_mapping("557", "111", 10, 200))
        found = await backend.get_pn_mapping("111")
        assert found is not None
        assert found.lid == "556"
        await backend.put_lid_mapping(_mapping("555", "111", 10, 400))
        found = await backend.get_pn_mapping("111")
        assert found is not None
        assert found.lid == "555"

    async def test_put_lid_mappings_batch_and_get_all(self, backend: Backend) -> None:
        assert await backend.get_all_lid_mappings() == []
        batch = [_mapping(f"55{i}", f"11{i}", i, i, "batch") for i in range(5)]
        await backend.put_lid_mappings(batch)
        assert sorted(await backend.get_all_lid_mappings(), key=lambda m: m.lid) == batch
        await backend.put_lid_mappings([])
        assert len(await backend.get_all_lid_mappings()) == 5

    async def test_put_lid_mappings_with_duplicate_lids_keeps_the_last(
        self, backend: Backend
    ) -> None:
        await backend.put_lid_mappings(
            [_mapping("555", "111", 100, 100, "a"), _mapping("555", "112", 200, 200, "b")]
        )
        assert await backend.get_all_lid_mappings() == [_mapping("555", "112", 100, 200, "b")]

    # -- base keys -----------------------------------------------------------------
    async def test_has_same_base_key_is_false_when_absent(self, backend: Backend) -> None:
        assert await backend.has_same_base_key(CHAT, "MSG1", b"\x05" + bytes(32)) is False
        assert await backend.has_same_base_key(CHAT, "MSG1", bytes(32)) is False

    async def test_base_key_save_compare_delete(self, backend: Backend) -> None:
        k33 = b"\x05" + key32("base", 1)
        k32 = key32("base", 2)
        await backend.save_base_key(CHAT, "MSG1", k33)
        assert await backend.has_same_base_key(CHAT, "MSG1", k33) is True
        assert await backend.has_same_base_key(CHAT, "MSG1", b"\x05" + key32("other")) is False
        assert await backend.has_same_base_key(CHAT, "MSG1", k33[1:]) is False
        assert await backend.has_same_base_key(CHAT, "MSG2", k33) is False
        assert await backend.has_same_base_key(SENDER, "MSG1", k33) is False
        await backend.save_base_key(CHAT, "MSG1", k32)  # replaces
        assert await backend.has_same_base_key(CHAT, "MSG1", k32) is True
        assert await backend.has_same_base_key(CHAT, "MSG1", k33) is False
        await backend.delete_base_key(CHAT, "MSG1")
        assert await backend.has_same_base_key(CHAT, "MSG1", k32) is False
        await backend.delete_base_key(CHAT, "MSG1")
        assert await backend.has_same_base_key(CHAT, "MSG1", k32) is False

    # -- device registry -------------------------------------------------------------
    async def test_device_list_round_trips_exactly(self, backend: Backend) -> None:
        assert await backend.get_devices("4917012345678") is None
        rec = DeviceListRecord(
            user="4917012345678",
            devices=(
                DeviceInfo(device_id=0),
                DeviceInfo(device_id=12, key_index=3),
                DeviceInfo(device_id=99, key_index=0, is_hosted=True),
            ),
            timestamp=1_700_000_000,
            phash="2:abcdef",
            raw_id=12345,
        )
        await backend.update_device_list(rec)
        assert await backend.get_devices("4917012345678") == rec

    async def test_update_device_list_replaces_the_whole_record(self, backend: Backend) -> None:
        await backend.update_device_list(
            DeviceListRecord(
                user="111",
                devices=(DeviceInfo(0), DeviceInfo(1), DeviceInfo(2)),
                timestamp=100,
                phash="2:x",
                raw_id=7,
            )
        )
        newer = DeviceListRecord(user="111", devices=(DeviceInfo(0),), timestamp=200)
        await backend.update_device_list(newer)
        assert await backend.get_devices("111") == newer
        empty = DeviceListRecord(user="111", devices=(), timestamp=300)
        await backend.update_device_list(empty)
        assert await backend.get_devices("111") == empty

    async def test_update_device_lists_batch_and_delete_devices(self, backend: Backend) -> None:
        records = [
            DeviceListRecord(user=f"11{i}", devices=(DeviceInfo(i),), timestamp=i) for i in range(4)
        ]
        await backend.update_device_lists(records)
        for r in records:
            assert await backend.get_devices(r.user) == r
        await backend.delete_devices("111")
        assert await backend.get_devices("111") is None
        assert await backend.get_devices("112") == records[2]
        await backend.delete_devices("111")  # deleting what is absent is a no-op
        assert await backend.get_devices("111") is None

    # -- trusted-contact tokens ------------------------------------------------------
    async def test_tc_token_put_get_replace_delete(self, backend: Backend) -> None:
        assert await backend.get_tc_token(CHAT) is None
        assert await backend.get_all_tc_token_jids() == []
        first = TcToken(token=b"tok1", token_timestamp=100, sender_timestamp=150)
        await backend.put_tc_token(CHAT, first)
        assert await backend.get_tc_token(CHAT) == first
        second = TcToken(token=b"tok2", token_timestamp=200, sender_timestamp=None)
        await backend.put_tc_token(CHAT, second)  # replaces the entry, sender timestamp too
        assert await backend.get_tc_token(CHAT) == second
        await backend.put_tc_token(SENDER, TcToken(token=b"", token_timestamp=0))
        assert sorted(await backend.get_all_tc_token_jids()) == sorted([CHAT, SENDER])
        await backend.delete_tc_token(CHAT)
        assert await backend.get_tc_token(CHAT) is None
        assert await backend.get_all_tc_token_jids() == [SENDER]
        await backend.delete_tc_token(CHAT)
        assert await backend.get_all_tc_token_jids() == [SENDER]

    async def test_delete_expired_tc_tokens_needs_both_token_and_sender_expired(
        self, backend: Backend
    ) -> None:
        token_cutoff, sender_cutoff = 1000, 5000
        # jid -> (token, token_timestamp, sender_timestamp, expected to go)
        rows = {
            "old-token.old-sender@s.whatsapp.net": (b"t", 500, 4000, True),
            "old-token.null-sender@s.whatsapp.net": (b"t", 500, None, True),
            "old-token.new-sender@s.whatsapp.net": (b"t", 500, 6000, False),
            "new-token.old-sender@s.whatsapp.net": (b"t", 3000, 500, False),
            "new-token.null-sender@s.whatsapp.net": (b"t", 2000, None, False),
            "new-token.new-sender@s.whatsapp.net": (b"t", 2000, 6000, False),
            "empty-token.null-sender@s.whatsapp.net": (b"", 9000, None, True),
            "empty-token.old-sender@s.whatsapp.net": (b"", 9000, 4000, True),
            "empty-token.new-sender@s.whatsapp.net": (b"", 0, 6000, False),
            "token-at-cutoff@s.whatsapp.net": (b"t", token_cutoff, None, False),
            "sender-at-cutoff@s.whatsapp.net": (b"", 0, sender_cutoff, False),
        }
        for jid, (token, ts, sender_ts, _) in rows.items():
            await backend.put_tc_token(jid, TcToken(token, ts, sender_ts))
        removed = await backend.delete_expired_tc_tokens(token_cutoff, sender_cutoff)
        expected_kept = sorted(jid for jid, row in rows.items() if not row[3])
        assert sorted(await backend.get_all_tc_token_jids()) == expected_kept
        assert removed == len(rows) - len(expected_kept)
        assert await backend.delete_expired_tc_tokens(token_cutoff, sender_cutoff) == 0

    async def test_touch_tc_token_inserts_a_token_less_placeholder(self, backend: Backend) -> None:
        await backend.touch_tc_token_sender_timestamp(CHAT, 500)
        assert await backend.get_tc_token(CHAT) == TcToken(
            token=b"", token_timestamp=0, sender_timestamp=500
        )
        assert await backend.get_all_tc_token_jids() == [CHAT]

    async def test_touch_tc_token_only_moves_forward(self, backend: Backend) -> None:
        await backend.touch_tc_token_sender_timestamp(CHAT, 200)
        await backend.touch_tc_token_sender_timestamp(CHAT, 100)
        entry = await backend.get_tc_token(CHAT)
        assert entry is not None
        assert entry.sender_timestamp == 200
        await backend.touch_tc_token_sender_timestamp(CHAT, 300)
        entry = await backend.get_tc_token(CHAT)
        assert entry is not None
        assert entry.sender_timestamp == 300

    async def test_touch_tc_token_never_drops_the_token(self, backend: Backend) -> None:
        await backend.put_tc_token(CHAT, TcToken(token=b"tok", token_timestamp=50))
        await backend.touch_tc_token_sender_timestamp(CHAT, 200)
        assert await backend.get_tc_token(CHAT) == TcToken(b"tok", 50, 200)
        await backend.touch_tc_token_sender_timestamp(CHAT, 100)
        assert await backend.get_tc_token(CHAT) == TcToken(b"tok", 50, 200)

    async def test_store_received_tc_token_inserts(self, backend: Backend) -> None:
        await backend.store_received_tc_token(CHAT, b"tok", 100)
        assert await backend.get_tc_token(CHAT) == TcToken(b"tok", 100, None)

    async def test_store_received_tc_token_newer_wins(self, backend: Backend) -> None:
        await backend.store_received_tc_token(CHAT, b"first", 100)
        await backend.store_received_tc_token(CHAT, b"older", 50)
        assert await backend.get_tc_token(CHAT) == TcToken(b"first", 100, None)
        await backend.store_received_tc_token(CHAT, b"newer", 200)
        assert await backend.get_tc_token(CHAT) == TcToken(b"newer", 200, None)

    async def test_store_received_tc_token_keeps_the_sender_timestamp(
        self, backend: Backend
    ) -> None:
        await backend.touch_tc_token_sender_timestamp(CHAT, 500)
        await backend.store_received_tc_token(CHAT, b"tok", 100)
        assert await backend.get_tc_token(CHAT) == TcToken(b"tok", 100, 500)
        await backend.store_received_tc_token(CHAT, b"tok2", 700)
        assert await backend.get_tc_token(CHAT) == TcToken(b"tok2", 700, 500)

    async def test_concurrent_touch_and_store_received_keep_both_effects(
        self, backend: Backend
    ) -> None:
        jids = [f"49170{i:08d}@s.whatsapp.net" for i in range(20)]
        calls = []
        for i, jid in enumerate(jids):
            touch = backend.touch_tc_token_sender_timestamp(jid, 500)
            store = backend.store_received_tc_token(jid, f"tok{i}".encode(), 100)
            calls += [touch, store] if i % 2 else [store, touch]
        await asyncio.gather(*calls)
        for i, jid in enumerate(jids):
            assert await backend.get_tc_token(jid) == TcToken(f"tok{i}".encode(), 100, 500), jid

    async def test_concurrent_tc_token_updates_keep_the_newest(self, backend: Backend) -> None:
        order = [7, 3, 19, 1, 12, 20, 5, 14, 9, 2]
        await asyncio.gather(
            *(backend.touch_tc_token_sender_timestamp(CHAT, ts) for ts in order),
            *(backend.store_received_tc_token(CHAT, f"t{ts}".encode(), ts) for ts in order),
        )
        assert await backend.get_tc_token(CHAT) == TcToken(b"t20", 20, 20)

    # -- sent messages -----------------------------------------------------------------
    async def test_take_sent_message_returns_the_payload_once(self, backend: Backend) -> None:
        assert await backend.take_sent_message(CHAT, "MSG1") is None
        await backend.store_sent_message(CHAT, "MSG1", record("sent", 1))
        await backend.store_sent_message(CHAT, "MSG2", record("sent", 2))
        assert await backend.take_sent_message(CHAT, "MSG1") == record("sent", 1)
        assert await backend.take_sent_message(CHAT, "MSG1") is None
        assert await backend.take_sent_message(SENDER, "MSG2") is None
        assert await backend.take_sent_message(CHAT, "MSG2") == record("sent", 2)

    async def test_store_sent_message_replaces_the_payload(self, backend: Backend) -> None:
        await backend.store_sent_message(CHAT, "MSG1", record("old"))
        await backend.store_sent_message(CHAT, "MSG1", record("new"))
        assert await backend.take_sent_message(CHAT, "MSG1") == record("new")

    async def test_two_concurrent_takers_one_gets_the_payload(self, backend: Backend) -> None:
        await backend.store_sent_message(CHAT, "MSG1", record("sent"))
        results = await asyncio.gather(
            backend.take_sent_message(CHAT, "MSG1"), backend.take_sent_message(CHAT, "MSG1")
        )
        assert sorted(results, key=lambda r: r is None) == [record("sent"), None]

    async def test_many_concurrent_takers_one_gets_the_payload(self, backend: Backend) -> None:
        for i in range(5):
            await backend.store_sent_message(CHAT, f"MSG{i}", record("sent", i))
        results = await asyncio.gather(
            *(backend.take_sent_message(CHAT, f"MSG{i}") for _ in range(10) for i in range(5))
        )
        assert sorted(r for r in results if r is not None) == sorted(
            record("sent", i) for i in range(5)
        )
        assert results.count(None) == 45

    async def test_delete_expired_sent_messages(self, backend: Backend) -> None:
        await backend.store_sent_message(CHAT, "MSG1", record(1))
        await backend.store_sent_message(SENDER, "MSG2", record(2))
        assert await backend.delete_expired_sent_messages(FAR_PAST) == 0
        assert await backend.take_sent_message(CHAT, "MSG1") == record(1)
        await backend.store_sent_message(CHAT, "MSG1", record(1))
        assert await backend.delete_expired_sent_messages(far_future()) == 2
        assert await backend.take_sent_message(CHAT, "MSG1") is None
        assert await backend.take_sent_message(SENDER, "MSG2") is None
        assert await backend.delete_expired_sent_messages(far_future()) == 0

    # -- message secrets ---------------------------------------------------------------
    async def test_msg_secret_put_and_get(self, backend: Backend) -> None:
        assert await backend.get_msg_secret(CHAT, SENDER, "MSG1") is None
        s1, s2 = _secret("MSG1", 0, 100), _secret("MSG2", 2_000_000_000, 200)
        assert await backend.put_msg_secrets([s1, s2]) == 2
        assert await backend.get_msg_secret(CHAT, SENDER, "MSG1") == s1
        assert await backend.get_msg_secret(CHAT, SENDER, "MSG2") == s2
        assert await backend.get_msg_secret(SENDER, CHAT, "MSG1") is None
        assert await backend.get_msg_secret(CHAT, CHAT, "MSG1") is None
        assert await backend.put_msg_secrets([]) == 0

    async def test_msg_secret_conflict_rule(self, backend: Backend) -> None:
        # (stored expires_at, new expires_at, expected); message_ts is always the max
        cases = [(100, 200, 200), (200, 100, 200), (0, 100, 0), (100, 0, 0), (0, 0, 0)]
        for i, (old_exp, new_exp, want_exp) in enumerate(cases):
            msg_id = f"MSG{i}"
            old_ts, new_ts = (50, 30) if i % 2 else (30, 50)
            await backend.put_msg_secrets([_secret(msg_id, old_exp, old_ts)])
            assert await backend.put_msg_secrets([_secret(msg_id, new_exp, new_ts)]) == 1
            got = await backend.get_msg_secret(CHAT, SENDER, msg_id)
            assert got is not None
            assert (got.expires_at, got.message_ts) == (want_exp, 50), (old_exp, new_exp)

    async def test_delete_expired_msg_secrets_keeps_never_expiring(self, backend: Backend) -> None:
        cutoff = 1000
        await backend.put_msg_secrets(
            [
                _secret("never", 0, 1),
                _secret("expired", 100, 1),
                _secret("at-cutoff", cutoff, 1),
                _secret("later", 5000, 1),
            ]
        )
        assert await backend.delete_expired_msg_secrets(cutoff) == 1
        assert await backend.get_msg_secret(CHAT, SENDER, "expired") is None
        for kept in ("never", "at-cutoff", "later"):
            assert await backend.get_msg_secret(CHAT, SENDER, kept) is not None, kept
        assert await backend.delete_expired_msg_secrets(far_future()) == 2
        assert await backend.get_msg_secret(CHAT, SENDER, "never") is not None

    # -- pending inbound -----------------------------------------------------------------
    async def test_pending_inbound_store_get_replace_delete(self, backend: Backend) -> None:
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG1") is None
        await backend.store_pending_inbound(CHAT, SENDER, "MSG1", record("p", 1))
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG1") == record("p", 1)
        assert await backend.get_pending_inbound(CHAT, CHAT, "MSG1") is None
        assert await backend.get_pending_inbound(SENDER, SENDER, "MSG1") is None
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG2") is None
        await backend.store_pending_inbound(CHAT, SENDER, "MSG1", record("p", 2))
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG1") == record("p", 2)
        await backend.delete_pending_inbound(CHAT, SENDER, "MSG1")
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG1") is None
        await backend.delete_pending_inbound(CHAT, SENDER, "MSG1")
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG1") is None

    async def test_delete_expired_pending_inbound(self, backend: Backend) -> None:
        await backend.store_pending_inbound(CHAT, SENDER, "MSG1", record(1))
        await backend.store_pending_inbound(CHAT, SENDER, "MSG2", record(2))
        assert await backend.delete_expired_pending_inbound(FAR_PAST) == 0
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG1") == record(1)
        assert await backend.delete_expired_pending_inbound(far_future()) == 2
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG1") is None
        assert await backend.get_pending_inbound(CHAT, SENDER, "MSG2") is None

    # -- group metadata ------------------------------------------------------------------
    async def test_group_metadata_put_get_replace_delete(self, backend: Backend) -> None:
        assert await backend.get_group_metadata(G1) is None
        await backend.put_group_metadata(G1, record("meta", 1))
        assert await backend.get_group_metadata(G1) == record("meta", 1)
        assert await backend.get_group_metadata(G2) is None
        await backend.put_group_metadata(G1, record("meta", 2))
        assert await backend.get_group_metadata(G1) == record("meta", 2)
        await backend.delete_group_metadata(G1)
        assert await backend.get_group_metadata(G1) is None
        await backend.delete_group_metadata(G1)
        assert await backend.get_group_metadata(G1) is None
