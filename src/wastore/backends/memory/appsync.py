"""The AppSyncStore methods of a MemoryBackend: app-state sync keys, collection
versions and mutation MACs."""

from __future__ import annotations

from collections.abc import Sequence

from ... import _validate as v
from ...values import AppStateSyncKey, HashState, MutationMAC
from .base import AccountBase
from .journal import _del, _del_where, _set


class AppSyncMethods(AccountBase):
    """:class:`~wastore.AppSyncStore` over the account's dicts."""

    __slots__ = ()

    # -- AppSyncStore ------------------------------------------------------
    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        key_id = v.sync_key_id(key_id)
        return (await self._read()).sync_keys.get(key_id)

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        key_id = v.sync_key_id(key_id)
        v.instance(key, AppStateSyncKey, "key")
        acct, j = await self._write()
        old = acct.sync_keys.get(key_id)
        if old is None or old.timestamp <= key.timestamp:
            _set(j, acct.sync_keys, key_id, key)

    async def delete_sync_key(self, key_id: bytes) -> None:
        key_id = v.sync_key_id(key_id)
        acct, j = await self._write()
        _del(j, acct.sync_keys, key_id)

    async def get_latest_sync_key_id(self) -> bytes | None:
        keys = (await self._read()).sync_keys
        if not keys:
            return None
        return max(keys.items(), key=lambda kv: (kv[1].timestamp, kv[0]))[0]

    async def get_version(self, name: str) -> HashState:
        name = v.collection_name(name)
        return (await self._read()).versions.get(name) or HashState()

    async def set_version(self, name: str, state: HashState) -> None:
        name = v.collection_name(name)
        v.instance(state, HashState, "state")
        acct, j = await self._write()
        _set(j, acct.versions, name, state)

    async def put_mutation_macs(self, name: str, version: int, macs: Sequence[MutationMAC]) -> None:
        name = v.collection_name(name)
        version = v.integer(version, "version", 0)
        items = v.instances(macs, MutationMAC, "macs")
        acct, j = await self._write()
        for m in items:
            _set(j, acct.macs, (name, m.index_mac), (version, m.value_mac))

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        name = v.collection_name(name)
        index_mac = v.mac(index_mac, "index MAC")
        entry = (await self._read()).macs.get((name, index_mac))
        return None if entry is None else entry[1]

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        wanted = v.mac_list(index_macs)
        macs = (await self._read()).macs
        out: dict[bytes, bytes] = {}
        for m in wanted:
            entry = macs.get((name, m))
            if entry is not None:
                out[m] = entry[1]
        return out

    async def get_all_mutation_macs(self, name: str) -> dict[bytes, bytes]:
        name = v.collection_name(name)
        macs = (await self._read()).macs
        return {k[1]: entry[1] for k, entry in macs.items() if k[0] == name}

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        name = v.collection_name(name)
        wanted = v.mac_list(index_macs)
        acct, j = await self._write()
        for m in wanted:
            _del(j, acct.macs, (name, m))

    async def clear_mutation_macs(self, name: str) -> None:
        name = v.collection_name(name)
        acct, j = await self._write()
        _del_where(j, acct.macs, lambda k, _: k[0] == name)
