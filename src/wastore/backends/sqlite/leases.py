"""Account leases on SQLite: a row per leased account (token, holder, host, pid, expiry).

A second opener gets :class:`~wastore.AccountInUseError` naming the holder
while the lease has not expired and its process lives; a lease whose process
died on this host is taken over at once, and an expired one by anybody.
Device saves through a leased backend are fenced: the UPDATE only happens
while the lease row still holds this token.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ...errors import AccountInUseError, DeviceNotFoundError
from ..sql.engine import Tx

if TYPE_CHECKING:
    from .engine import SqliteEngine

log = logging.getLogger("wastore.sqlite")

HOST: Final = socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with that id still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as err:
        return err.errno != errno.ESRCH
    return True


class SqliteLeases:
    """The lease rows of one database."""

    def __init__(self, engine: SqliteEngine) -> None:
        self._e = engine
        self._q = engine.q

    async def acquire(self, device_id: int, holder: str, ttl: float) -> str:
        token = uuid.uuid4().hex
        q = self._q
        pid = os.getpid()

        async def take(tx: Tx) -> None:
            row = await tx.one(q.get_lease, (device_id,))
            now = time.time()
            if row is not None:
                _, their_holder, host, their_pid, expires_at = row
                dead = host == HOST and not pid_alive(int(their_pid))
                if expires_at > now and not dead:
                    raise AccountInUseError(
                        device_id, str(their_holder), f"lease expires in {expires_at - now:.0f}s"
                    )
                log.info("account %s: taking over the expired lease of %s", device_id, their_holder)
            await tx.write(q.put_lease, (device_id, token, holder, HOST, pid, now + ttl))

        try:
            await self._e.atomic(take)
        except DeviceNotFoundError as err:  # the lease row's foreign key
            raise DeviceNotFoundError(device_id) from err.__cause__
        return token

    async def renew(self, device_id: int, token: str, ttl: float) -> bool:
        return await self._e.write(self._q.renew_lease, (device_id, token, time.time() + ttl)) == 1

    async def release(self, device_id: int, token: str) -> None:
        await self._e.write(self._q.release_lease, (device_id, token))

    async def save_device(self, device_id: int, token: str, row: Sequence[Any]) -> int:
        return await self._e.write(self._q.update_device_fenced, (device_id, *row, token))

    def listing(self, device_id: int | None) -> tuple[str, tuple[Any, ...]]:
        q = f"SELECT device_id, holder, host, pid, expires_at FROM {self._q.prefix}leases"
        if device_id is not None:
            return q + " WHERE device_id = $1", (device_id,)
        return q + " ORDER BY device_id", ()
