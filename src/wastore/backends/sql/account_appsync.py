"""The AppSyncStore methods of the SQL account: app-state sync keys, collection
versions and mutation MACs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import _validate as v
from ...values import AppStateSyncKey, HashState, MutationMAC
from . import checksum as ck
from . import codec
from .account_base import AccountBase


class AppSyncMethods(AccountBase):
    """:class:`~wastore.AppSyncStore` over the store's engine."""

    __slots__ = ()

    # -- app-state sync ----------------------------------------------------
    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        key_id = v.sync_key_id(key_id)
        row = await self._e.one(self._q.get_sync_key, (self._id, key_id))
        if row is None:
            return None
        key = codec.sync_key(row, key_id)
        self._row("sync_keys", key_id, (key_id, *row[:3]), row[3])
        return key

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        key_id = v.sync_key_id(key_id)
        v.instance(key, AppStateSyncKey, "key")
        values = (key_id, key.key_data, key.fingerprint, key.timestamp)
        await self._write(self._q.set_sync_key, (self._id, *values, self._crc("sync_keys", values)))

    async def delete_sync_key(self, key_id: bytes) -> None:
        await self._write(self._q.delete_sync_key, (self._id, v.sync_key_id(key_id)))

    async def get_latest_sync_key_id(self) -> bytes | None:
        row = await self._e.one(self._q.latest_sync_key_id, (self._id,))
        if row is None:
            return None
        key_id = codec.blob(row[0], "sync_keys", "latest")
        codec.sync_key(row[1:4], key_id)
        self._row("sync_keys", key_id, row[:4], row[4])
        return key_id

    async def get_version(self, name: str) -> HashState:
        name = v.collection_name(name)
        row = await self._e.one(self._q.get_version, (self._id, name))
        state = codec.hash_state(row, name)
        if row is not None:
            self._row("app_state_versions", name, (name, *row[:2]), row[2])
        return state

    async def set_version(self, name: str, state: HashState) -> None:
        name = v.collection_name(name)
        v.instance(state, HashState, "state")
        values = (name, state.version, state.hash)
        await self._write(
            self._q.set_version, (self._id, *values, self._crc("app_state_versions", values))
        )

    async def put_mutation_macs(self, name: str, version: int, macs: Sequence[MutationMAC]) -> None:
        name = v.collection_name(name)
        version = v.integer(version, "version", 0)
        items = v.instances(macs, MutationMAC, "macs")
        latest = sorted({m.index_mac: m.value_mac for m in items}.items())  # last one wins
        crc = ck.crc
        i = self._id
        rows = [(k, m, crc(i, (name, k, version, m))) for k, m in latest]
        await self._batch(self._dq.put_mutation_macs, (i, name, version), rows)

    def _mac(self, name: str, index_mac: Any, version: Any, value: Any, stored: Any) -> bytes:
        key = index_mac.hex() if type(index_mac) is bytes else index_mac
        self._row("app_state_macs", key, (name, index_mac, version, value), stored)
        return codec.blob(value, "app_state_macs", key)

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        name = v.collection_name(name)
        index_mac = v.mac(index_mac, "index MAC")
        row = await self._e.one(self._q.get_mutation_mac, (self._id, name, index_mac))
        return None if row is None else self._mac(name, index_mac, *row)

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        wanted = list(dict.fromkeys(v.mac_list(index_macs)))
        if not wanted:
            return {}
        rows = await self._e.by_keys(self._dq.get_mutation_macs, (self._id, name), wanted)
        return {k: self._mac(name, k, ver, m, c) for k, ver, m, c in rows}

    async def get_all_mutation_macs(self, name: str) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        rows = await self._e.rows(self._q.all_mutation_macs, (self._id, name), expect=None)
        return {k: self._mac(name, k, ver, m, c) for k, ver, m, c in rows}

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        name = v.collection_name(name)
        wanted = sorted(set(v.mac_list(index_macs)))
        await self._batch(self._dq.delete_mutation_macs, (self._id, name), [(m,) for m in wanted])

    async def clear_mutation_macs(self, name: str) -> None:
        await self._write(self._q.clear_mutation_macs, (self._id, v.collection_name(name)))
