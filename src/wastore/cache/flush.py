"""Flushing a SignalCache: the commit of its buffered writes, and the flusher task
that coalesces a burst of writes into one commit (see :mod:`wastore.cache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterable, Iterator
from typing import Final

from .budget import IDENTITY, SENDER_KEY, SESSION, Dirty, Key
from .entries import _Entries
from .txn import _Txn

log = logging.getLogger("wastore.cache")

DEFAULT_FLUSH_WINDOW: Final = 0.025
FLUSH_CHUNK: Final = 500
"""Most records per batch call of a flush (one transaction holds them all): a call
validates and encodes its batch on the event loop, so a bounded batch keeps the
loop responsive while thousands of entries are flushed."""
FLUSH_CHUNK_BYTES: Final = 192 * 1024
"""Most bytes (records and addresses) per batch call of a flush. Encoding is per byte
as much as per record: 160 sessions of 1.2 KB take ~0.5 ms of the event loop on
PostgreSQL (asyncpg encodes the parameters on the loop), 500 took ~2 ms."""
_YIELD_EVERY: Final = 256  # single-row calls between two yields to the event loop
_CLEAN_STEP: Final = 500  # entries marked clean (and evicted) between two yields


def _chunks(items: list[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    """``items`` in batches of at most FLUSH_CHUNK records and FLUSH_CHUNK_BYTES bytes."""
    start, size = 0, 0
    for i, (address, record) in enumerate(items):
        n = len(address) + len(record)
        if i > start and (i - start >= FLUSH_CHUNK or size + n > FLUSH_CHUNK_BYTES):
            yield items[start:i]
            start, size = i, 0
        size += n
    if start < len(items):
        yield items[start:]


class _Flushing(_Entries):
    """The flushing part of SignalCache (its fields are set by ``SignalCache.__init__``)."""

    _window: float
    _flush_lock: asyncio.Lock
    _flusher: asyncio.Task[None] | None
    _stopping: bool
    flushes: int
    failed_flushes: int

    # -- flushing -------------------------------------------------------------
    async def _write_entries(
        self, entries: Iterable[tuple[Key, Dirty]], consumed: Iterable[int]
    ) -> None:
        """Write entries and pre-key removals into the backend transaction that is open."""
        puts: tuple[list[tuple[str, bytes]], ...] = ([], [], [])
        deletes: tuple[list[str], ...] = ([], [], [])
        for (_, kind, address), (value, _) in entries:
            if value is None:
                deletes[kind].append(address)
            else:
                puts[kind].append((address, value))
        b = self._b
        for kind, batch in (
            (SESSION, b.put_sessions_batch),
            (IDENTITY, b.put_identities_batch),
            (SENDER_KEY, b.put_sender_keys_batch),
        ):
            for n, chunk in enumerate(_chunks(puts[kind])):
                if n:
                    await asyncio.sleep(0)
                await batch(chunk)
        n = 0
        for kind, delete in (
            (SESSION, b.delete_session),
            (IDENTITY, b.delete_identity),
            (SENDER_KEY, b.delete_sender_key),
        ):
            for a in deletes[kind]:
                await delete(a)
                n += 1
                if n % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        for i in consumed:
            await b.remove_prekey(i)
            n += 1
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _write_one(self, key: Key, value: bytes | None) -> None:
        """Write one entry with the backend's single-row method (its own commit)."""
        _, kind, address = key
        b = self._b
        if kind == SESSION:
            await (b.delete_session(address) if value is None else b.put_session(address, value))
        elif kind == IDENTITY:
            await (b.delete_identity(address) if value is None else b.put_identity(address, value))
        elif value is None:
            await b.delete_sender_key(address)
        else:
            await b.put_sender_key(address, value)

    async def flush(self) -> None:
        """Commit every buffered write in one backend transaction.

        Inside this cache's :meth:`transaction` it writes them into that transaction
        instead, and they are marked clean when the outermost block commits.

        Raises:
            StoreError: inside a transaction opened on a backend directly.
            Exception: the backend's error; then nothing is marked clean and the next
                flush retries everything.
        """
        t = self._own_txn()
        if t is not None:
            await self._flush_into(t)
            return
        self._refuse_foreign("a flush")
        if self._inside_other_txn():
            with self._lock:
                if not self._dirty and not self._consumed_prekeys:
                    return  # nothing to commit: a read after it sees the committed state
            raise self._started_inside_error()
        async with self._flush_lock:
            with self._lock:
                if not self._dirty and not self._consumed_prekeys:
                    return
                taken = dict(self._dirty)
                consumed = dict(self._consumed_prekeys)
            try:
                if len(taken) == 1 and not consumed:
                    # One write is one transaction already: commit it as such (a
                    # single statement on SQLite, one round trip on PostgreSQL).
                    [(key, (value, _))] = taken.items()
                    await self._write_one(key, value)
                else:
                    async with self._b.transaction():
                        await self._write_entries(taken.items(), consumed)
            except BaseException:
                self.failed_flushes += 1
                raise
            # Committed: clean what was not written again while we flushed. Readers see
            # the same values either way, so a long pass lets the loop run between steps
            # (and releases the lock between steps, for the other threads).
            with self._lock:
                for i, seq in consumed.items():
                    if self._consumed_prekeys.get(i) == seq:
                        del self._consumed_prekeys[i]
            clean = self._clean
            done = list(taken.items())
            for start in range(0, len(done), _CLEAN_STEP):
                if start:
                    with self._lock:
                        self._trim()
                    await asyncio.sleep(0)
                with self._lock:
                    self._cleaned += 1
                    dirty = self._dirty
                    clean_keys = self._clean_keys  # _trim() may have rebuilt it
                    for key, written in done[start : start + _CLEAN_STEP]:
                        if dirty.get(key) is written:
                            del dirty[key]
                            clean[key] = written[0]
                            clean_keys.add(key)
                    self._grew()
            with self._lock:
                if len(self._dirty) * 4 < len(taken):  # as for the set: drop the grown table
                    self._dirty = dict(self._dirty)
                self.flushes += 1
                self._trim()

    async def _flush_into(self, t: _Txn) -> None:
        """Flush inside the task's own transaction (a savepoint of it)."""
        writes = t.writes()
        prekeys = t.prekeys()
        with self._lock:
            taken = {k: d for k, d in self._dirty.items() if k not in writes}
            consumed = {i: seq for i, seq in self._consumed_prekeys.items() if i not in prekeys}
        gone = [*consumed, *(i for i, (is_gone, _) in prekeys.items() if is_gone)]
        async with self._b.transaction():
            await self._write_entries([*taken.items(), *writes.items()], gone)
        frame = t.frames[-1]
        frame.flushed.update(taken)
        frame.flushed_prekeys.update(consumed)

    def _notify(self) -> None:
        """Wake the flusher (on the event loop's thread)."""
        with self._lock:
            if self._woken:
                return
            self._woken = True
        self._wake.set()

    def start_flusher(self) -> None:
        """Start the coalescing flusher task (idempotent)."""
        if self._flusher is not None and not self._flusher.done():
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        # In a context of its own: the flusher belongs to no transaction of the task
        # that starts it.
        self._flusher = asyncio.create_task(
            self._flusher_loop(),
            name=f"wastore-cache-flusher-{self.device_id}",
            context=contextvars.Context(),
        )

    async def stop_flusher(self) -> None:
        """Stop the flusher (it does not flush on the way out; call :meth:`flush`)."""
        self._stopping = True
        self._wake.set()
        task, self._flusher = self._flusher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def flusher_running(self) -> bool:
        return self._flusher is not None and not self._flusher.done()

    async def _flusher_loop(self) -> None:
        failures = 0
        while not self._stopping:
            await self._wake.wait()
            if self._stopping:
                return
            if self._window:
                await asyncio.sleep(self._window)  # coalesce the burst
            with self._lock:  # a write made from now on wakes the flusher again
                self._woken = False
                self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as err:
                failures += 1
                delay = min(5.0, 0.05 * 2 ** min(failures, 7))
                log.warning(
                    "account %s: cache flush failed (%d in a row), retrying in %.2fs: %s: %s",
                    self.device_id,
                    failures,
                    delay,
                    type(err).__name__,
                    err,
                )
                self._notify()
                await asyncio.sleep(delay)
