"""The SignalStore methods of the SQL account: identities, sessions, pre-keys,
signed pre-keys and sender keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import _validate as v
from . import checksum as ck
from . import codec
from .account_base import AccountBase
from .engine import Tx


class SignalMethods(AccountBase):
    """:class:`~wastore.SignalStore` over the store's engine."""

    __slots__ = ()

    # -- identities --------------------------------------------------------
    async def put_identity(self, address: str, key: bytes) -> None:
        address, key = v.address(address), v.fixed(key, "identity key", 32)
        await self._write(
            self._q.put_identity, (self._id, address, key, ck.key_blob(self._id, address, key))
        )

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        i = self._id
        checked = sorted(v.address_keys(items, "identities").items())
        rows = [(a, k, ck.key_blob(i, a, k)) for a, k in checked]
        await self._batch(self._dq.put_identities, (i,), rows)

    async def load_identity(self, address: str) -> bytes | None:
        address = v.address(address)
        row = await self._e.one(self._q.load_identity, (self._id, address))
        if row is None:
            return None
        key = codec.identity_key(row[0], address)
        if row[1] != ck.key_blob(self._id, address, key):  # type: ignore[arg-type]
            raise ck.corrupt("identities", address)
        return key

    async def delete_identity(self, address: str) -> None:
        await self._write(self._q.delete_identity, (self._id, v.address(address)))

    # -- sessions ----------------------------------------------------------
    async def get_session(self, address: str) -> bytes | None:
        return await self._blob(self._q.get_session, v.address(address), "sessions")

    async def get_sessions(self, addresses: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(v.address_list(addresses)))
        if not wanted:
            return {}
        i = self._id
        rows = await self._e.by_keys(self._dq.get_sessions, (i,), wanted)
        out = {}
        for a, r, stored in rows:
            if type(r) is not bytes or stored != ck.key_blob(i, a, r):
                raise self._bad("sessions", a, r)
            out[a] = r
        return out

    async def put_session(self, address: str, record: bytes) -> None:
        address, record = v.address(address), v.blob(record, "session record")
        await self._write(
            self._q.put_session, (self._id, address, record, ck.key_blob(self._id, address, record))
        )

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        i = self._id
        checked = sorted(v.address_records(items, "sessions").items())
        rows = [(a, r, ck.key_blob(i, a, r)) for a, r in checked]
        await self._batch(self._dq.put_sessions, (i,), rows)

    async def delete_session(self, address: str) -> None:
        await self._write(self._q.delete_session, (self._id, v.address(address)))

    async def has_session(self, address: str) -> bool:
        found = await self._e.value(self._q.has_session, (self._id, v.address(address)))
        return found is not None

    @staticmethod
    def _user_ranges(user: str) -> tuple[str, str, str, str]:
        return user + "@", user + "A", user + ":", user + ";"

    async def has_signal_state_for_user(self, user: str) -> bool:
        ranges = self._user_ranges(v.user(user))
        return bool(await self._e.value(self._q.has_user_state, (self._id, *ranges)))

    async def get_session_addresses(self, user: str) -> list[str]:
        ranges = self._user_ranges(v.user(user))
        rows = await self._e.rows(self._q.user_session_addresses, (self._id, *ranges))
        return [a for (a,) in rows]

    async def delete_signal_state_for_user(self, user: str) -> int:
        user = v.user(user)
        ranges = (self._id, *self._user_ranges(user))
        q = self._q

        async def run(tx: Tx) -> int:
            n = await tx.write(q.delete_user_sessions, ranges)
            n += await tx.write(q.delete_user_identities, ranges)
            n += await tx.write(q.delete_user_sender_keys, (self._id, f"::{user}@", f"::{user}:"))
            return n

        return await self._atomic(run)

    # -- pre-keys ----------------------------------------------------------
    def _prekey_crc(self, pid: int, record: bytes, uploaded: Any) -> int:
        return (ck.id_blob(self._id, pid, record) + ck.term(uploaded, ck.W1)) % ck.P

    def _prekey(self, pid: int, record: Any, uploaded: Any, stored: Any) -> bytes:
        if type(record) is not bytes or stored != self._prekey_crc(pid, record, uploaded):
            raise self._bad("prekeys", pid, record)
        return record

    async def store_prekey(self, id: int, record: bytes, uploaded: bool) -> None:
        pid, record = v.prekey_id(id), v.blob(record, "pre-key record")
        up = v.boolean(uploaded, "uploaded")
        await self._write(
            self._q.store_prekey,
            (self._id, pid, record, self._prekey_crc(pid, record, up), up),
        )

    async def store_prekeys_batch(self, items: Sequence[tuple[int, bytes]], uploaded: bool) -> None:
        checked = sorted(v.prekey_records(items).items())
        up = v.boolean(uploaded, "uploaded")
        rows = [(p, r, self._prekey_crc(p, r, up)) for p, r in checked]
        await self._batch(self._dq.store_prekeys, (self._id,), rows, (up,))

    async def load_prekey(self, id: int) -> bytes | None:
        pid = v.prekey_id(id)
        row = await self._e.one(self._q.load_prekey, (self._id, pid))
        return None if row is None else self._prekey(pid, *row)

    async def load_prekeys_batch(self, ids: Sequence[int]) -> dict[int, bytes]:
        wanted = list(dict.fromkeys(v.prekey_ids(ids)))
        if not wanted:
            return {}
        rows = await self._e.by_keys(self._dq.load_prekeys, (self._id,), wanted)
        return {i: self._prekey(i, r, up, c) for i, r, up, c in rows}

    async def load_unuploaded_prekeys(self, limit: int) -> list[tuple[int, bytes]]:
        limit = v.integer(limit, "limit", 0, v.MAX_BATCH)
        rows = await self._e.rows(self._q.load_unuploaded_prekeys, (self._id, limit), expect=limit)
        return [(i, self._prekey(i, r, up, c)) for i, r, up, c in rows]

    async def mark_prekeys_uploaded(self, ids: Sequence[int]) -> None:
        wanted = sorted(set(v.prekey_ids(ids)))
        await self._batch(self._dq.mark_prekeys_uploaded, (self._id,), [(i,) for i in wanted])

    async def remove_prekey(self, id: int) -> None:
        await self._write(self._q.remove_prekey, (self._id, v.prekey_id(id)))

    async def get_max_prekey_id(self) -> int:
        return int(await self._e.value(self._q.max_prekey_id, (self._id,)))

    async def count_prekeys(self) -> tuple[int, int]:
        row = await self._e.one(self._q.count_prekeys, (self._id,))
        return int(row[0]), int(row[1])

    # -- signed pre-keys ---------------------------------------------------
    def _signed(self, pid: int, record: Any, stored: Any) -> bytes:
        if type(record) is not bytes or stored != ck.id_blob(self._id, pid, record):
            raise self._bad("signed_prekeys", pid, record)
        return record

    async def store_signed_prekey(self, id: int, record: bytes) -> None:
        pid = v.prekey_id(id, "signed pre-key id")
        record = v.blob(record, "signed pre-key record")
        await self._write(
            self._q.store_signed_prekey, (self._id, pid, record, ck.id_blob(self._id, pid, record))
        )

    async def load_signed_prekey(self, id: int) -> bytes | None:
        pid = v.prekey_id(id, "signed pre-key id")
        row = await self._e.one(self._q.load_signed_prekey, (self._id, pid))
        return None if row is None else self._signed(pid, *row)

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        rows = await self._e.rows(self._q.load_all_signed_prekeys, (self._id,))
        return [(i, self._signed(i, r, c)) for i, r, c in rows]

    async def remove_signed_prekey(self, id: int) -> None:
        await self._write(
            self._q.remove_signed_prekey, (self._id, v.prekey_id(id, "signed pre-key id"))
        )

    # -- sender keys -------------------------------------------------------
    async def put_sender_key(self, address: str, record: bytes) -> None:
        address = v.address(address, "sender key address")
        record = v.blob(record, "sender key record")
        await self._write(
            self._q.put_sender_key,
            (self._id, address, record, ck.key_blob(self._id, address, record)),
        )

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        i = self._id
        checked = sorted(v.address_records(items, "sender keys").items())
        rows = [(a, r, ck.key_blob(i, a, r)) for a, r in checked]
        await self._batch(self._dq.put_sender_keys, (i,), rows)

    async def get_sender_key(self, address: str) -> bytes | None:
        return await self._blob(
            self._q.get_sender_key, v.address(address, "sender key address"), "sender_keys"
        )

    async def delete_sender_key(self, address: str) -> None:
        await self._write(
            self._q.delete_sender_key, (self._id, v.address(address, "sender key address"))
        )
