"""The Signal state of one user in a SignalCache: the questions and the deletion that
an identity change needs, answered over the buffered writes.
"""

from __future__ import annotations

from typing import Final

from .. import _validate as v
from ..errors import StoreError
from .budget import SENDER_KEY, SESSION, Key
from .flush import _Flushing
from .txn import _Txn, backend_transaction_open

_STABLE_TRIES: Final = 16  # reads of a merged answer before flushes are held off


class _PerUser(_Flushing):
    """The per-user part of SignalCache (whether a user has Signal state, their session
    addresses, and the deletion of their state), over the buffered writes."""

    # -- per-user state (identity change) -------------------------------------
    async def has_signal_state_for_user(self, user: str) -> bool:
        user = v.user(user)
        await self.flush()
        return await self._b.has_signal_state_for_user(user)

    async def get_session_addresses(self, user: str) -> list[str]:
        """The backend's answer with the buffered writes over it (no flush).

        The answer and the buffer must be of one moment: a dirty entry leaves the
        buffer only after a commit wrote it, so if none left while the backend was
        asked, the buffer over the answer is the state. Otherwise it asks again (a
        flush commits at most once per flush window); after a few tries it holds
        flushes off while it asks, unless that could wait for itself.
        """
        user = v.user(user)
        t = self._own_txn()
        for _ in range(_STABLE_TRIES):
            cleaned = self._cleaned
            stored = await self._b.get_session_addresses(user)
            if self._cleaned == cleaned:  # on the loop, with no await since the check
                return self._over(stored, user, t)
        if t is None and not backend_transaction_open() and not self._inside_other_txn():
            async with self._flush_lock:
                return self._over(await self._b.get_session_addresses(user), user, None)
        raise StoreError(  # pragma: no cover - a flush between every two reads, 16 times
            f"the sessions of {user!r} kept being flushed while they were read; try again"
        )

    def _over(self, stored: list[str], user: str, t: _Txn | None) -> list[str]:
        """``stored`` session addresses of ``user`` with the buffered writes applied."""
        from ..backends._common import user_matches

        found = set(stored)
        with self._lock:
            buffered = [
                (k[2], d[0])
                for k, d in self._dirty.items()
                if k[1] == SESSION and user_matches(k[2], user)
            ]
        if t is not None:
            buffered += [
                (k[2], d[0])
                for k, d in t.writes().items()
                if k[1] == SESSION and user_matches(k[2], user)
            ]
        for address, value in buffered:
            if value is None:
                found.discard(address)
            else:
                found.add(address)
        return sorted(found, key=lambda a: a.encode())

    async def delete_signal_state_for_user(self, user: str) -> int:
        """Flush, delete in the backend, and forget the user's cached entries."""
        from ..backends._common import sender_key_user_matches, user_matches

        user = v.user(user)

        def matches(k: Key) -> bool:
            if k[1] == SENDER_KEY:
                return sender_key_user_matches(k[2], user)
            return user_matches(k[2], user)

        t = self._own_txn()
        await self.flush()
        n = await self._b.delete_signal_state_for_user(user)
        if t is not None:
            # Deleted inside the transaction: tombstones in the innermost block, so that
            # this task sees them, a rollback of the block brings the entries back, and
            # the commit leaves them absent.
            frame = t.frames[-1]
            with self._lock:
                held = (*self._clean_keys, *self._dirty, *t.writes())
                for key in [k for k in held if matches(k)]:
                    self._seq += 1
                    frame.writes[key] = (None, self._seq)
            return n
        with self._lock:
            self._removals += 1
            for key in [k for k in self._clean_keys if matches(k)]:
                self._forget(key)
            if len(self._clean_keys) * 4 < self._keys_peak:
                self._compact()
        return n
