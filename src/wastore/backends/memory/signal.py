"""The SignalStore methods of a MemoryBackend: identities, sessions, pre-keys,
signed pre-keys and sender keys."""

from __future__ import annotations

from collections.abc import Sequence

from ... import _validate as v
from .._common import sender_key_user_matches, user_matches
from .base import AccountBase
from .journal import _del, _del_where, _set


class SignalMethods(AccountBase):
    """:class:`~wastore.SignalStore` over the account's dicts."""

    __slots__ = ()

    # -- SignalStore: identities -------------------------------------------
    async def put_identity(self, address: str, key: bytes) -> None:
        address = v.address(address)
        key = v.fixed(key, "identity key", 32)
        acct, j = await self._write()
        _set(j, acct.identities, address, key)

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_keys(items, "identities")
        acct, j = await self._write()
        for a, k in checked.items():
            _set(j, acct.identities, a, k)

    async def load_identity(self, address: str) -> bytes | None:
        address = v.address(address)
        return (await self._read()).identities.get(address)

    async def delete_identity(self, address: str) -> None:
        address = v.address(address)
        acct, j = await self._write()
        _del(j, acct.identities, address)

    # -- sessions ----------------------------------------------------------
    async def get_session(self, address: str) -> bytes | None:
        address = v.address(address)
        return (await self._read()).sessions.get(address)

    async def get_sessions(self, addresses: Sequence[str]) -> dict[str, bytes]:
        wanted = v.address_list(addresses)
        sessions = (await self._read()).sessions
        return {a: sessions[a] for a in wanted if a in sessions}

    async def put_session(self, address: str, record: bytes) -> None:
        address = v.address(address)
        record = v.blob(record, "session record")
        acct, j = await self._write()
        _set(j, acct.sessions, address, record)

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_records(items, "sessions")
        acct, j = await self._write()
        for a, r in checked.items():
            _set(j, acct.sessions, a, r)

    async def delete_session(self, address: str) -> None:
        address = v.address(address)
        acct, j = await self._write()
        _del(j, acct.sessions, address)

    async def has_session(self, address: str) -> bool:
        address = v.address(address)
        return address in (await self._read()).sessions

    async def has_signal_state_for_user(self, user: str) -> bool:
        user = v.user(user)
        acct = await self._read()
        return any(user_matches(a, user) for a in acct.sessions) or any(
            user_matches(a, user) for a in acct.identities
        )

    async def get_session_addresses(self, user: str) -> list[str]:
        user = v.user(user)
        acct = await self._read()
        found = [a for a in acct.sessions if user_matches(a, user)]
        return sorted(found, key=lambda a: a.encode())

    async def delete_signal_state_for_user(self, user: str) -> int:
        user = v.user(user)
        acct, j = await self._write()
        n = _del_where(j, acct.sessions, lambda a, _: user_matches(a, user))
        n += _del_where(j, acct.identities, lambda a, _: user_matches(a, user))
        n += _del_where(j, acct.sender_keys, lambda a, _: sender_key_user_matches(a, user))
        return n

    # -- pre-keys ----------------------------------------------------------
    async def store_prekey(self, id: int, record: bytes, uploaded: bool) -> None:
        id = v.prekey_id(id)
        record = v.blob(record, "pre-key record")
        uploaded = v.boolean(uploaded, "uploaded")
        acct, j = await self._write()
        _set(j, acct.prekeys, id, (record, uploaded))

    async def store_prekeys_batch(self, items: Sequence[tuple[int, bytes]], uploaded: bool) -> None:
        checked = v.prekey_records(items)
        uploaded = v.boolean(uploaded, "uploaded")
        acct, j = await self._write()
        for i, r in checked.items():
            _set(j, acct.prekeys, i, (r, uploaded))

    async def load_prekey(self, id: int) -> bytes | None:
        id = v.prekey_id(id)
        entry = (await self._read()).prekeys.get(id)
        return None if entry is None else entry[0]

    async def load_prekeys_batch(self, ids: Sequence[int]) -> dict[int, bytes]:
        wanted = v.prekey_ids(ids)
        prekeys = (await self._read()).prekeys
        return {i: prekeys[i][0] for i in wanted if i in prekeys}

    async def load_unuploaded_prekeys(self, limit: int) -> list[tuple[int, bytes]]:
        limit = v.integer(limit, "limit", 0, v.MAX_BATCH)
        prekeys = (await self._read()).prekeys
        ids = sorted(i for i, (_, up) in prekeys.items() if not up)[:limit]
        return [(i, prekeys[i][0]) for i in ids]

    async def mark_prekeys_uploaded(self, ids: Sequence[int]) -> None:
        wanted = v.prekey_ids(ids)
        acct, j = await self._write()
        for i in wanted:
            entry = acct.prekeys.get(i)
            if entry is not None and not entry[1]:
                _set(j, acct.prekeys, i, (entry[0], True))

    async def remove_prekey(self, id: int) -> None:
        id = v.prekey_id(id)
        acct, j = await self._write()
        _del(j, acct.prekeys, id)

    async def get_max_prekey_id(self) -> int:
        return max((await self._read()).prekeys, default=0)

    async def count_prekeys(self) -> tuple[int, int]:
        prekeys = (await self._read()).prekeys
        return len(prekeys), sum(1 for _, up in prekeys.values() if up)

    # -- signed pre-keys ---------------------------------------------------
    async def store_signed_prekey(self, id: int, record: bytes) -> None:
        id = v.prekey_id(id, "signed pre-key id")
        record = v.blob(record, "signed pre-key record")
        acct, j = await self._write()
        _set(j, acct.signed_prekeys, id, record)

    async def load_signed_prekey(self, id: int) -> bytes | None:
        id = v.prekey_id(id, "signed pre-key id")
        return (await self._read()).signed_prekeys.get(id)

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        return sorted((await self._read()).signed_prekeys.items())

    async def remove_signed_prekey(self, id: int) -> None:
        id = v.prekey_id(id, "signed pre-key id")
        acct, j = await self._write()
        _del(j, acct.signed_prekeys, id)

    # -- sender keys -------------------------------------------------------
    async def put_sender_key(self, address: str, record: bytes) -> None:
        address = v.address(address, "sender key address")
        record = v.blob(record, "sender key record")
        acct, j = await self._write()
        _set(j, acct.sender_keys, address, record)

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = v.address_records(items, "sender keys")
        acct, j = await self._write()
        for a, r in checked.items():
            _set(j, acct.sender_keys, a, r)

    async def get_sender_key(self, address: str) -> bytes | None:
        address = v.address(address, "sender key address")
        return (await self._read()).sender_keys.get(address)

    async def delete_sender_key(self, address: str) -> None:
        address = v.address(address, "sender key address")
        acct, j = await self._write()
        _del(j, acct.sender_keys, address)
