"""PersistenceManager: the gatekeeper of the device row.

The manager keeps the device in memory, hands out read-only snapshots, applies
changes under a write lock and marks the state dirty; a background saver
writes dirty state to the backend. It is the only writer of the device row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, TypeVar

from .cache import SignalCache, backend_transaction_open
from .commands import DeviceCommand, apply_command
from .contract import Backend, KeptLeaseStore, LeaseStore
from .device import Device
from .errors import AccountInUseError, CorruptRecordError, StoreError, ValidationError

log = logging.getLogger("wastore.manager")

R = TypeVar("R")

MAX_CONSECUTIVE_FAILURES: Final = 10
DEFAULT_SAVE_INTERVAL: Final = 30.0
DEFAULT_LEASE_TTL: Final = 30.0
_FIRST_RETRY_DELAY: Final = 0.05


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def default_holder() -> str:
    """How this process names itself as a lease holder."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


class PersistenceManager:
    """Keeps one account's device state and saves it.

    Open it with :meth:`open`, never with the constructor. Typical use::

        pm = await PersistenceManager.open(container.backend(device_id))
        pm.run_background_saver(interval=30.0)
        ...
        await pm.close()   # final flush, stops the saver, releases the lease
    """

    def __init__(
        self,
        backend: Backend,
        device: Device,
        *,
        debug_snapshots: bool,
        lease_token: str | None,
        lease_ttl: float,
        cache: SignalCache | None = None,
    ) -> None:
        self._backend = backend
        self._cache = cache
        self._snapshot = device.frozen()
        self._dirty = False
        self._saving = False
        self._write_lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._close_event = asyncio.Event()
        self._debug_snapshots = debug_snapshots
        self._failures = 0
        self._halted = False
        self._last_error: BaseException | None = None
        self._saver: asyncio.Task[None] | None = None
        self._saver_interval = DEFAULT_SAVE_INTERVAL
        self._closing = False
        self._closed = False
        self._lease_token = lease_token
        self._lease_ttl = lease_ttl
        self._lease_lost = False
        self._release_pending = False
        self._lease_task: asyncio.Task[None] | None = None
        # A store that renews its leases itself (the SQL stores: one statement per
        # interval for a whole container) needs no task per account.
        self._lease_kept = lease_token is not None and isinstance(backend, KeptLeaseStore)
        if lease_token is not None and not self._lease_kept:
            self._lease_task = asyncio.create_task(self._renew_lease_loop(), name="wastore-lease")

    # -- opening -----------------------------------------------------------
    @classmethod
    async def open(
        cls,
        backend: Backend,
        *,
        debug_snapshots: bool | None = None,
        lease: bool = True,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        holder: str | None = None,
        signal_cache: bool | SignalCache = False,
    ) -> PersistenceManager:
        """Open the account behind ``backend``.

        Creates the device row with fresh keys if it does not exist, takes the
        account lease (when the backend supports leases and ``lease`` is true),
        and loads the device.

        Args:
            backend: one account's backend (``container.backend(device_id)``).
            debug_snapshots: allow :meth:`create_snapshot`; default from the
                ``WASTORE_DEBUG_SNAPSHOTS`` environment variable.
            lease: take the account lease so that no other process serves it.
            lease_ttl: seconds a lease lives without renewal (renewed every ttl/3).
            holder: how this process is named to a second opener.
            signal_cache: put a write-back :class:`SignalCache` in front of the
                signal store (True, or a cache you built); see :attr:`signal`.

        Raises:
            AccountInUseError: another live process serves this account.
            CorruptRecordError: the device row cannot be decoded.
        """
        if lease_ttl <= 0:
            raise ValidationError("lease_ttl must be positive")
        if not await backend.exists():
            await backend.create()
        token: str | None = None
        if lease and isinstance(backend, LeaseStore):
            token = await backend.acquire_lease(holder or default_holder(), lease_ttl)
        try:
            device = await backend.load()
            if device is None:
                raise CorruptRecordError(
                    f"the device row of account {backend.device_id} vanished while opening it"
                )
        except BaseException:
            if token is not None:
                with contextlib.suppress(Exception):
                    await backend.release_lease(token)  # type: ignore[attr-defined]
            raise
        if debug_snapshots is None:
            debug_snapshots = _env_flag("WASTORE_DEBUG_SNAPSHOTS")
        if signal_cache is True:
            cache: SignalCache | None = SignalCache(backend)
        elif isinstance(signal_cache, SignalCache):
            if signal_cache.backend is not backend:
                raise ValidationError("the SignalCache must wrap the same backend")
            cache = signal_cache
        else:
            cache = None
        if cache is not None:
            cache._account_checked = True  # exists() above
        return cls(
            backend,
            device,
            debug_snapshots=debug_snapshots,
            lease_token=token,
            lease_ttl=lease_ttl,
            cache=cache,
        )

    @classmethod
    async def open_many(
        cls,
        backends: Sequence[Backend],
        *,
        debug_snapshots: bool | None = None,
        lease: bool = True,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        holder: str | None = None,
        signal_cache: bool = False,
    ) -> list[PersistenceManager]:
        """Open many accounts at once: what :meth:`open` does for each, in batches.

        With the accounts of one SQL container (``container.backend(id)`` for each)
        the device rows, leases and devices are read and written a thousand at a
        time (50,000 accounts open in seconds; see docs/postgres.md); any other
        backends are opened one :meth:`open` each, concurrently. All or nothing:
        if one account cannot be opened, none stays open (the leases taken are
        released) and the error is raised.

        Args:
            backends: one backend per account (each account once).
            debug_snapshots, lease, lease_ttl, holder: as for :meth:`open`.
            signal_cache: give each manager its own :class:`SignalCache`.

        Returns:
            The managers, in the order of ``backends``.

        Raises:
            AccountInUseError: another live process serves one of the accounts.
            CorruptRecordError: a device row cannot be decoded.
            ValidationError: an account is given twice, or a bad option.
        """
        if lease_ttl <= 0:
            raise ValidationError("lease_ttl must be positive")
        items = list(backends)
        if not items:
            return []
        if len({id(b) for b in items}) != len(items):
            raise ValidationError("open_many() was given the same backend more than once")
        if debug_snapshots is None:
            debug_snapshots = _env_flag("WASTORE_DEBUG_SNAPSHOTS")
        store = getattr(items[0], "store", None)
        opener = getattr(store, "open_accounts", None)
        if opener is None or any(getattr(b, "store", None) is not store for b in items):
            return await cls._open_each(
                items,
                debug_snapshots=debug_snapshots,
                lease=lease,
                lease_ttl=lease_ttl,
                holder=holder,
                signal_cache=signal_cache,
            )
        opened: list[tuple[Device, str | None]] = await opener(
            [b.device_id for b in items],
            lease=lease and isinstance(items[0], LeaseStore),
            holder=holder or default_holder(),
            ttl=lease_ttl,
        )
        return [
            cls(
                b,
                device,
                debug_snapshots=debug_snapshots,
                lease_token=token,
                lease_ttl=lease_ttl,
                cache=SignalCache(b) if signal_cache else None,
            )
            for b, (device, token) in zip(items, opened, strict=True)
        ]

    @classmethod
    async def _open_each(cls, items: list[Backend], **options: Any) -> list[PersistenceManager]:
        results = await asyncio.gather(
            *(cls.open(b, **options) for b in items), return_exceptions=True
        )
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is None:
            return [r for r in results if isinstance(r, PersistenceManager)]
        for r in results:
            if isinstance(r, PersistenceManager):
                with contextlib.suppress(Exception):
                    await r.close()
        raise failed

    # -- reading -----------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """The account's backend (protocol bookkeeping, signal store, transactions)."""
        return self._backend

    @property
    def device_id(self) -> int:
        return self._backend.device_id

    @property
    def signal(self) -> SignalCache | Backend:
        """Where the client reads and writes Signal state: the SignalCache when one is
        in use, else the backend. With a cache, ``await pm.flush()`` (or
        ``pm.signal.flush()``) is the durability barrier before sending, and
        :meth:`transaction` groups cached writes with the backend's."""
        return self._cache if self._cache is not None else self._backend

    @property
    def signal_cache(self) -> SignalCache | None:
        return self._cache

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """``async with pm.transaction():`` groups the account's writes into one commit.

        Use it, not ``pm.backend.transaction()``, when a SignalCache is in use: the
        cached Signal writes made in the block then belong to the transaction (written
        into its commit, dropped if it raises; see :mod:`wastore.cache`). Without a
        cache it is the backend's transaction. Inside it, :meth:`flush` writes into the
        transaction.
        """
        if self._cache is not None:
            return self._cache.transaction()
        return self._backend.transaction()

    def _in_transaction(self) -> bool:
        if self._cache is not None and self._cache.in_transaction:
            return True
        return backend_transaction_open()

    def get_device_snapshot(self) -> Device:
        """The current device state, read-only (assigning to it raises). No copy is made."""
        return self._snapshot

    @property
    def is_dirty(self) -> bool:
        """True while a change has not been saved yet (also while a save is in flight)."""
        return self._dirty or self._saving

    def is_saver_halted(self) -> bool:
        """True once the background saver stopped after consecutive failures."""
        return self._halted

    @property
    def last_save_error(self) -> BaseException | None:
        return self._last_error

    # -- writing -----------------------------------------------------------
    async def modify_device(self, fn: Callable[[Device], R]) -> R:
        """Run ``fn(device)`` on a mutable copy under the write lock and publish the result.

        The state is marked dirty before the new snapshot is published and the
        saver is woken. If ``fn`` raises, or leaves the device invalid
        (:class:`ValidationError`), nothing changes.
        """
        self._check_usable()
        async with self._write_lock:
            draft = self._snapshot.copy()
            result = fn(draft)
            if asyncio.iscoroutine(result):
                result.close()
                raise ValidationError(
                    "modify_device() takes a plain function, not a coroutine function"
                )
            draft.validate()
            self._dirty = True
            self._snapshot = draft.frozen()
            self._wake.set()
            return result

    async def process_command(self, command: DeviceCommand) -> None:
        """Apply one :class:`DeviceCommand` (see :func:`apply_command`)."""
        await self.modify_device(lambda d: apply_command(d, command))

    async def process_commands(self, commands: Sequence[DeviceCommand]) -> None:
        """Apply several commands as one change (one snapshot, one save)."""
        cmds = list(commands)

        def apply_all(d: Device) -> None:
            for c in cmds:
                apply_command(d, c)

        await self.modify_device(apply_all)

    async def flush(self) -> None:
        """Save now: the SignalCache's buffered writes (if any), then the device row if
        dirty. On failure the state stays dirty and the error is raised.

        Inside a transaction (:meth:`transaction`) both are written into it: they
        commit with it, and count as saved only once it has committed (the device
        stays dirty, and the saver saves it again after the transaction).

        A success resets the saver's failure count and restarts a halted saver.

        Raises:
            StoreError: a SignalCache is in use and the transaction was opened on the
                backend directly (use :meth:`transaction`).
        """
        if self._in_transaction():
            if self._cache is not None:
                await self._cache.flush()
            await self._save_into_transaction()
            return
        if self._cache is not None:
            await self._cache.flush()
        await self._save()
        if self._halted and not self._closing:
            self._halted = False
            log.info("account %s: save succeeded, restarting the background saver", self.device_id)
            self.run_background_saver(self._saver_interval)

    async def _save(self) -> None:
        async with self._save_lock:
            if not self._dirty:
                return
            if self.lease_lost:
                raise AccountInUseError(
                    self.device_id, "another process", "this process lost the account lease"
                )
            snapshot = self._snapshot
            # Cleared before the await, so that a change made while the save runs
            # sets it again and is saved next time; _saving keeps is_dirty honest.
            self._dirty = False
            self._saving = True
            try:
                await self._backend.save(snapshot)
            except BaseException as err:
                self._dirty = True
                if isinstance(err, Exception):
                    self._last_error = err
                raise
            finally:
                self._saving = False
            self._failures = 0
            self._last_error = None

    async def _save_into_transaction(self) -> None:
        """Write the device row into the running task's transaction.

        Without the save lock: a save by the saver task may be waiting for this very
        transaction to end. The state stays dirty, so that the row is saved again
        after the transaction, whether it commits or not.
        """
        if not (self._dirty or self._saving):
            return
        if self._lease_lost:
            raise AccountInUseError(
                self.device_id, "another process", "this process lost the account lease"
            )
        await self._backend.save(self._snapshot)
        self._dirty = True
        self._wake.set()

    # -- background saver --------------------------------------------------
    def run_background_saver(self, interval: float = DEFAULT_SAVE_INTERVAL) -> None:
        """Start the saver: it wakes on every change (or after ``interval`` seconds),
        saves if dirty, retries with backoff, and halts after 10 consecutive failures.
        Calling it again while it runs only changes the interval."""
        self._check_usable()
        if interval <= 0:
            raise ValidationError("interval must be positive")
        self._saver_interval = interval
        if self._saver is not None and not self._saver.done():
            return
        self._halted = False
        self._saver = asyncio.create_task(
            self._saver_loop(), name=f"wastore-saver-{self.device_id}"
        )
        if self._cache is not None:
            self._cache.start_flusher()

    async def _saver_loop(self) -> None:
        retry_delay: float | None = None
        while not self._closing:
            if retry_delay is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._saver_interval)
                self._wake.clear()
            else:  # back off, but wake at once for close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._close_event.wait(), timeout=retry_delay)
            if self._closing:
                return
            if not self._dirty:
                retry_delay = None
                continue
            try:
                await self._save()
            except Exception as err:
                self._failures += 1
                if self._failures >= MAX_CONSECUTIVE_FAILURES:
                    self._halted = True
                    log.error(
                        "account %s: background saver halted after %d consecutive failures; "
                        "the unsaved state stays in memory, flush() can still save it: %s",
                        self.device_id,
                        self._failures,
                        _describe(err),
                    )
                    return
                retry_delay = min(
                    self._saver_interval, _FIRST_RETRY_DELAY * 2 ** (self._failures - 1)
                )
                log.warning(
                    "account %s: save failed (%d in a row), retrying in %.2fs: %s",
                    self.device_id,
                    self._failures,
                    retry_delay,
                    _describe(err),
                )
            else:
                retry_delay = None

    # -- snapshots ---------------------------------------------------------
    async def create_snapshot(self, name: str, extra: bytes | None = None) -> str | None:
        """Flush, then write a debug snapshot of the store (see ``snapshot_db``).

        Off unless enabled with ``debug_snapshots=True`` or
        ``WASTORE_DEBUG_SNAPSHOTS=1``; when off it logs a warning and returns None.
        """
        self._check_usable()
        if not self._debug_snapshots:
            log.warning(
                "create_snapshot(%r) ignored: debug snapshots are off "
                "(enable with debug_snapshots=True or WASTORE_DEBUG_SNAPSHOTS=1)",
                name,
            )
            return None
        await self.flush()
        return await self._backend.snapshot_db(name, extra)

    # -- lease -------------------------------------------------------------
    async def _renew_lease_loop(self) -> None:
        assert self._lease_token is not None
        backend: Any = self._backend
        period = self._lease_ttl / 3
        while True:
            await asyncio.sleep(period)
            try:
                still_ours = await backend.renew_lease(self._lease_token, self._lease_ttl)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "account %s: lease renewal failed, will retry: %s",
                    self.device_id,
                    _describe(err),
                )
                continue
            if not still_ours:
                self._lease_lost = True
                log.error(
                    "account %s: the account lease was lost (it expired and another process "
                    "took it); this manager will not save any more",
                    self.device_id,
                )
                return

    @property
    def lease_lost(self) -> bool:
        """True once this manager's account lease was lost (another holder took it over
        after this process stopped renewing it): it saves nothing any more."""
        if not self._lease_lost and self._lease_kept and not self._closed:
            token = self._lease_token
            assert token is not None
            if not self._backend.lease_held(token):  # type: ignore[attr-defined]
                self._lease_lost = True
        return self._lease_lost

    # -- pass-throughs for protocol bookkeeping ----------------------------
    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        return await self._backend.get_sender_key_devices(group)

    async def set_sender_key_status(self, group: str, items: Sequence[tuple[str, bool]]) -> None:
        await self._backend.set_sender_key_status(group, items)

    async def clear_sender_key_devices(self, group: str) -> None:
        await self._backend.clear_sender_key_devices(group)

    # -- closing -----------------------------------------------------------
    def _check_usable(self) -> None:
        if self._closing or self._closed:
            raise StoreError(f"the PersistenceManager of account {self.device_id} is closed")

    async def close(self) -> None:
        """Stop the saver, do a final flush, release the lease. Safe to call twice.

        Raises the final flush's error, if any (after stopping everything).
        """
        try:
            await self._close()
        finally:
            if self._release_pending:
                self._release_pending = False
                await self._release_lease()

    @classmethod
    async def close_many(cls, managers: Sequence[PersistenceManager]) -> None:
        """Close many managers: each one's final flush, then their leases released in
        batches (on the SQL stores a thousand per transaction, not one statement each).

        Raises:
            StoreError: the first final flush that failed (every manager is closed,
                and every lease released, all the same).
        """
        failed: BaseException | None = None
        by_store: dict[int, tuple[Any, dict[int, str]]] = {}
        for pm in managers:
            try:
                await pm._close()
            except Exception as err:
                failed = failed or err
            if not pm._release_pending:
                continue
            pm._release_pending = False
            store = getattr(pm._backend, "store", None)
            release = getattr(store, "release_leases", None)
            if release is None or pm._lease_token is None:
                await pm._release_lease()
                continue
            by_store.setdefault(id(store), (release, {}))[1][pm.device_id] = pm._lease_token
        for release, tokens in by_store.values():
            try:
                await release(tokens)
            except Exception as err:  # the leases expire on their own
                log.warning("could not release %d lease(s): %s", len(tokens), _describe(err))
        if failed is not None:
            raise failed

    async def _close(self) -> None:
        """Stop everything and do the final flush (raising its error, the manager closed
        all the same); ``_release_pending`` then says whether the lease is to be released."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        self._close_event.set()
        saver, self._saver = self._saver, None
        if saver is not None:
            # The loop returns on its own at the next wake-up; cancel covers a slow save.
            try:
                await asyncio.wait_for(asyncio.shield(saver), timeout=5.0)
            except TimeoutError:
                saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saver
        try:
            if self._cache is not None:
                await self._cache.close()
            await self._save()
        finally:
            lost = self.lease_lost
            self._closed = True
            if self._lease_task is not None:
                self._lease_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._lease_task
            self._release_pending = self._lease_token is not None and not lost

    async def _release_lease(self) -> None:
        try:
            await self._backend.release_lease(self._lease_token)  # type: ignore[attr-defined]
        except Exception as err:  # the lease expires on its own
            log.warning(
                "account %s: could not release the lease: %s", self.device_id, _describe(err)
            )

    async def __aenter__(self) -> PersistenceManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("dirty" if self._dirty else "clean")
        return f"PersistenceManager(device_id={self.device_id}, {state})"


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"
