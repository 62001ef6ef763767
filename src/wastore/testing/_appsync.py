"""Contract tests of :class:`wastore.AppSyncStore`."""

from __future__ import annotations

from ..contract import Backend
from ..values import AppStateSyncKey, HashState, MutationMAC
from ._support import hash128, key32


def _sync_key(tag: object, timestamp: int) -> AppStateSyncKey:
    return AppStateSyncKey(
        key_data=key32("sync", tag), fingerprint=f"fp {tag}".encode(), timestamp=timestamp
    )


def _mac(collection: str, i: int) -> bytes:
    return key32("index mac", collection, i)


class AppSyncStoreContract:
    """Sync keys, collection versions and mutation MACs."""

    # -- sync keys -------------------------------------------------------------
    async def test_sync_key_set_and_get(self, backend: Backend) -> None:
        assert await backend.get_sync_key(b"\x00\x01") is None
        key = _sync_key("a", 1_700_000_000_000)
        await backend.set_sync_key(b"\x00\x01", key)
        assert await backend.get_sync_key(b"\x00\x01") == key
        assert await backend.get_sync_key(b"\x00\x02") is None

    async def test_sync_key_with_empty_fingerprint_round_trips(self, backend: Backend) -> None:
        key = AppStateSyncKey(key_data=key32("k"), fingerprint=b"", timestamp=0)
        await backend.set_sync_key(b"id", key)
        assert await backend.get_sync_key(b"id") == key

    async def test_set_sync_key_keeps_an_existing_key_with_a_newer_timestamp(
        self, backend: Backend
    ) -> None:
        newer = _sync_key("newer", 200)
        await backend.set_sync_key(b"id", newer)
        await backend.set_sync_key(b"id", _sync_key("older", 100))
        assert await backend.get_sync_key(b"id") == newer

    async def test_set_sync_key_replaces_an_older_or_same_age_key(self, backend: Backend) -> None:
        await backend.set_sync_key(b"id", _sync_key("first", 100))
        second = _sync_key("second", 200)
        await backend.set_sync_key(b"id", second)
        assert await backend.get_sync_key(b"id") == second
        third = _sync_key("third", 200)  # same timestamp: not newer, so replaced
        await backend.set_sync_key(b"id", third)
        assert await backend.get_sync_key(b"id") == third

    async def test_get_latest_sync_key_id_is_the_greatest_timestamp(self, backend: Backend) -> None:
        assert await backend.get_latest_sync_key_id() is None
        await backend.set_sync_key(b"\x00\x0a", _sync_key("a", 100))
        await backend.set_sync_key(b"\x00\x0b", _sync_key("b", 300))
        await backend.set_sync_key(b"\x00\x0c", _sync_key("c", 200))
        assert await backend.get_latest_sync_key_id() == b"\x00\x0b"
        await backend.set_sync_key(b"\x00\x01", _sync_key("d", 10**12))
        assert await backend.get_latest_sync_key_id() == b"\x00\x01"

    async def test_get_latest_sync_key_id_breaks_ties_by_greatest_id(
        self, backend: Backend
    ) -> None:
        await backend.set_sync_key(b"\x00\x02", _sync_key("a", 500))
        await backend.set_sync_key(b"\x00\x03", _sync_key("b", 500))
        await backend.set_sync_key(b"\x00\x01", _sync_key("c", 500))
        assert await backend.get_latest_sync_key_id() == b"\x00\x03"

    # -- collection versions -----------------------------------------------------
    async def test_get_version_of_an_absent_collection_is_version_zero_zero_hash(
        self, backend: Backend
    ) -> None:
        state = await backend.get_version("regular_high")
        assert state == HashState()
        assert state.version == 0
        assert state.hash == bytes(128)

    async def test_set_version_round_trips_and_replaces(self, backend: Backend) -> None:
        first = HashState(version=3, hash=hash128("v", 3))
        await backend.set_version("regular", first)
        assert await backend.get_version("regular") == first
        second = HashState(version=4, hash=hash128("v", 4))
        await backend.set_version("regular", second)
        assert await backend.get_version("regular") == second

    async def test_versions_are_kept_per_collection(self, backend: Backend) -> None:
        names = ("critical_block", "critical_unblock_low", "regular", "regular_high", "regular_low")
        for i, name in enumerate(names):
            await backend.set_version(name, HashState(version=i + 1, hash=hash128(name)))
        for i, name in enumerate(names):
            assert await backend.get_version(name) == HashState(version=i + 1, hash=hash128(name))

    async def test_any_collection_name_up_to_64_characters_is_valid(self, backend: Backend) -> None:
        for name in ("x", "n" * 64, "custom collection ñ"):
            state = HashState(version=1, hash=hash128(name))
            await backend.set_version(name, state)
            assert await backend.get_version(name) == state
            await backend.put_mutation_macs(name, 1, [MutationMAC(_mac(name, 0), key32(name))])
            assert await backend.get_mutation_mac(name, _mac(name, 0)) == key32(name)

    # -- mutation MACs -----------------------------------------------------------
    async def test_put_and_get_mutation_mac(self, backend: Backend) -> None:
        assert await backend.get_mutation_mac("regular", _mac("regular", 1)) is None
        await backend.put_mutation_macs(
            "regular",
            1,
            [
                MutationMAC(index_mac=_mac("regular", 1), value_mac=key32("value", 1)),
                MutationMAC(index_mac=_mac("regular", 2), value_mac=key32("value", 2)),
            ],
        )
        assert await backend.get_mutation_mac("regular", _mac("regular", 1)) == key32("value", 1)
        assert await backend.get_mutation_mac("regular", _mac("regular", 2)) == key32("value", 2)
        assert await backend.get_mutation_mac("regular", _mac("regular", 3)) is None
        assert await backend.get_mutation_mac("regular_low", _mac("regular", 1)) is None

    async def test_put_mutation_macs_upserts_on_collection_and_index_mac(
        self, backend: Backend
    ) -> None:
        m1, m2 = _mac("regular", 1), _mac("regular", 2)
        await backend.put_mutation_macs(
            "regular", 1, [MutationMAC(m1, key32("old", 1)), MutationMAC(m2, key32("old", 2))]
        )
        await backend.put_mutation_macs("regular", 2, [MutationMAC(m1, key32("new", 1))])
        assert await backend.get_mutation_mac("regular", m1) == key32("new", 1)
        assert await backend.get_mutation_mac("regular", m2) == key32("old", 2)
        await backend.put_mutation_macs(
            "regular", 3, [MutationMAC(m2, key32("dup", 1)), MutationMAC(m2, key32("dup", 2))]
        )
        assert await backend.get_mutation_mac("regular", m2) == key32("dup", 2)

    async def test_get_mutation_macs_returns_only_the_macs_found(self, backend: Backend) -> None:
        macs = [MutationMAC(_mac("regular", i), key32("value", i)) for i in range(3)]
        await backend.put_mutation_macs("regular", 1, macs)
        wanted = [_mac("regular", 0), _mac("regular", 2), _mac("regular", 9)]
        assert await backend.get_mutation_macs("regular", wanted) == {
            _mac("regular", 0): key32("value", 0),
            _mac("regular", 2): key32("value", 2),
        }
        assert await backend.get_mutation_macs("regular_high", wanted) == {}
        assert await backend.get_mutation_macs("regular", []) == {}

    async def test_get_mutation_macs_handles_thousands_of_macs_in_one_call(
        self, backend: Backend
    ) -> None:
        n = 2500
        macs = [MutationMAC(_mac("regular", i), key32("value", i)) for i in range(n)]
        await backend.put_mutation_macs("regular", 1, macs)
        unknown = [_mac("unknown", i) for i in range(10)]
        found = await backend.get_mutation_macs("regular", [m.index_mac for m in macs] + unknown)
        assert found == {m.index_mac: m.value_mac for m in macs}

    async def test_get_all_mutation_macs_returns_the_whole_collection(
        self, backend: Backend
    ) -> None:
        assert await backend.get_all_mutation_macs("regular") == {}
        macs = [MutationMAC(_mac("all", i), key32("value", i)) for i in range(700)]
        await backend.put_mutation_macs("regular", 1, macs[:400])
        await backend.put_mutation_macs("regular", 2, macs[400:])
        await backend.put_mutation_macs("regular_low", 1, macs[:3])
        # an upsert replaces a value MAC; the map holds the latest
        await backend.put_mutation_macs("regular", 3, [MutationMAC(_mac("all", 0), key32("new"))])
        expected = {m.index_mac: m.value_mac for m in macs}
        expected[_mac("all", 0)] = key32("new")
        assert await backend.get_all_mutation_macs("regular") == expected
        assert len(await backend.get_all_mutation_macs("regular_low")) == 3
        await backend.delete_mutation_macs("regular", [_mac("all", 1)])
        del expected[_mac("all", 1)]
        assert await backend.get_all_mutation_macs("regular") == expected

    async def test_delete_sync_key_removes_only_that_key(self, backend: Backend) -> None:
        older, newer = _sync_key("old", 1_000), _sync_key("new", 2_000)
        await backend.set_sync_key(b"\x01", older)
        await backend.set_sync_key(b"\x02", newer)
        await backend.delete_sync_key(b"\x02")
        assert await backend.get_sync_key(b"\x02") is None
        assert await backend.get_sync_key(b"\x01") == older
        assert await backend.get_latest_sync_key_id() == b"\x01"
        await backend.delete_sync_key(b"\x02")  # already gone: nothing happens
        await backend.delete_sync_key(b"\x01")
        assert await backend.get_latest_sync_key_id() is None

    async def test_delete_mutation_macs_removes_only_those_macs(self, backend: Backend) -> None:
        macs = [MutationMAC(_mac("any", i), key32("value", i)) for i in range(4)]
        await backend.put_mutation_macs("regular", 1, macs)
        await backend.put_mutation_macs("regular_low", 1, macs)
        await backend.delete_mutation_macs("regular", [_mac("any", 0), _mac("any", 2)])
        everything = [m.index_mac for m in macs]
        assert set(await backend.get_mutation_macs("regular", everything)) == {
            _mac("any", 1),
            _mac("any", 3),
        }
        assert len(await backend.get_mutation_macs("regular_low", everything)) == 4
        await backend.delete_mutation_macs("regular", [])
        await backend.delete_mutation_macs("regular", [_mac("any", 0)])  # already gone
        assert len(await backend.get_mutation_macs("regular", everything)) == 2

    async def test_clear_mutation_macs_clears_only_that_collection(self, backend: Backend) -> None:
        macs = [MutationMAC(_mac("any", i), key32("value", i)) for i in range(3)]
        await backend.put_mutation_macs("regular", 1, macs)
        await backend.put_mutation_macs("critical_block", 1, macs)
        await backend.clear_mutation_macs("regular")
        everything = [m.index_mac for m in macs]
        assert await backend.get_mutation_macs("regular", everything) == {}
        assert len(await backend.get_mutation_macs("critical_block", everything)) == 3
        await backend.clear_mutation_macs("regular")  # clearing an empty collection is fine
        assert await backend.get_mutation_macs("regular", everything) == {}
