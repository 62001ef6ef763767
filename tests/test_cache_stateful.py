"""A stateful property test of the SignalCache over a real SQLite file.

Hypothesis drives random puts, deletes, reads, per-user deletes, pre-key
consumption, flushes, injected flush failures, transactions (nested blocks that
commit or roll back, flushes inside them, commits that fail), reads by another
task, traffic of a second account sharing the memory budget, evictions
(``max_entries`` and the budget are tiny, so the dirty bound flushes too) and
crashes (the cache is dropped unflushed and the database reopened), and checks
against a plain model:

- reads always equal the model (inside a transaction: the model with the
  transaction's writes over it; in another task: the model without them);
- after a successful flush the database equals the model (inside a
  transaction, as the transaction sees it);
- after a crash the database (and so the new cache) equals the model as of the
  last commit of a flush or a transaction;
- no dirty entry is ever evicted, and the budget counts exactly what the caches
  hold.

Every cache operation runs in one driver task, because a transaction belongs to
the task that opened it. CI runs a bounded number of examples; a longer run:
``WASTORE_STATEFUL_EXAMPLES=1000 pytest tests/test_cache_stateful.py``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import wastore
from wastore.cache import ENTRY_OVERHEAD, IDENTITY, SENDER_KEY, SESSION, CacheBudget, SignalCache

EXAMPLES = int(os.environ.get("WASTORE_STATEFUL_EXAMPLES", "100"))
KINDS = (SESSION, IDENTITY, SENDER_KEY)
ADDRESSES = [f"{u}@s.whatsapp.net" for u in ("1", "12", "2", "3:4", "5")]
SENDER_ADDRESSES = [f"g@g.us::{a}" for a in ADDRESSES[:3]]
USERS = ("1", "3")
MAX_ENTRIES = 4
BUDGET = 3 * (ENTRY_OVERHEAD + 40)  # about three entries for both accounts together
GET = {SESSION: "get_session", IDENTITY: "load_identity", SENDER_KEY: "get_sender_key"}
PUT = {SESSION: "put_session", IDENTITY: "put_identity", SENDER_KEY: "put_sender_key"}
DELETE = {SESSION: "delete_session", IDENTITY: "delete_identity", SENDER_KEY: "delete_sender_key"}

Key = tuple[int, str]
State = dict[Key, bytes | None]


def addresses(kind: int) -> list[str]:
    return SENDER_ADDRESSES if kind == SENDER_KEY else ADDRESSES


def of_user(key: Key, user: str) -> bool:
    address = key[1].split("::", 1)[1] if key[0] == SENDER_KEY else key[1]
    return address.split("@")[0].split(":")[0] == user


class Abort(Exception):
    pass


class Flaky:
    """The real backend, whose batch writes fail while ``failing`` is set."""

    def __init__(self, backend: Any) -> None:
        self.inner = backend
        self.failing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _check(self) -> None:
        if self.failing:
            raise wastore.BackendUnavailableError("injected failure")

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        await self.inner.put_sessions_batch(items)
        self._check()  # fail after writing: the transaction must undo it

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        self._check()
        await self.inner.put_identities_batch(items)

    # A flush of one entry commits it with the single-row method (its own commit):
    # these fail before writing anything.
    async def put_session(self, address: str, record: bytes) -> None:
        self._check()
        await self.inner.put_session(address, record)

    async def put_identity(self, address: str, key: bytes) -> None:
        self._check()
        await self.inner.put_identity(address, key)

    async def remove_prekey(self, id: int) -> None:
        await self.inner.remove_prekey(id)
        self._check()


class Driver:
    """One task that runs the machine's operations, inside nested transactions on demand."""

    def __init__(self, loop: asyncio.AbstractEventLoop, machine: CacheMachine) -> None:
        self.loop = loop
        self.machine = machine
        self.queue: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]]] = asyncio.Queue()
        self.task = loop.create_task(self._level())

    def send(self, op: str, arg: Any = None) -> Any:
        fut: asyncio.Future[Any] = self.loop.create_future()
        self.queue.put_nowait((op, arg, fut))
        return self.loop.run_until_complete(fut)

    async def _level(self) -> tuple[str, asyncio.Future[Any]]:
        """Serve operations until told to end this block ("commit" or "rollback")."""
        while True:
            op, arg, fut = await self.queue.get()
            if op == "call":
                try:
                    fut.set_result(await arg())
                except Exception as err:
                    fut.set_exception(err)
            elif op == "begin":
                await self._block(fut)
            else:
                return op, fut

    async def _block(self, started: asyncio.Future[Any]) -> None:
        end: asyncio.Future[Any] | None = None
        try:
            async with self.machine.cache.transaction():
                started.set_result(None)
                how, end = await self._level()
                if how == "rollback":
                    raise Abort
        except Abort:
            assert end is not None
            end.set_result("rolled back")
        except Exception as err:
            if end is None:
                started.set_exception(err)
            else:
                end.set_exception(err)
        else:
            assert end is not None
            end.set_result("committed")


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp(prefix="wastore-cache-")
        self.path = os.path.join(self.dir, "cache.db")
        self.container: Any = self.loop.run_until_complete(
            wastore.open_store(f"sqlite:///{self.path}")
        )
        self.device_id = self.loop.run_until_complete(self.container.create_device())
        self.other_id = self.loop.run_until_complete(self.container.create_device())
        self.budget = CacheBudget(BUDGET)
        self.driver = Driver(self.loop, self)
        self.open_caches()
        self.model: State = {}  # what the cache shows outside any transaction
        self.durable: State = {}  # what the database holds
        self.frames: list[State] = []  # the writes of each open transaction block
        self.frame_flushed: list[bool] = []  # a flush succeeded inside that block
        self.frame_prekeys: list[set[int]] = []  # pre-keys consumed in that block
        self.prekeys = {1, 2, 3}
        self.durable_prekeys = {1, 2, 3}
        self.other_model: dict[str, bytes] = {}
        self.run(self.flaky.inner.store_prekeys_batch([(i, b"pk") for i in (1, 2, 3)], False))
        self.counter = 0

    def open_caches(self) -> None:
        self.flaky = Flaky(self.container.backend(self.device_id))
        self.cache = SignalCache(self.flaky, max_entries=MAX_ENTRIES, budget=self.budget)  # type: ignore[arg-type]
        other = self.container.backend(self.other_id)
        self.other = SignalCache(other, max_entries=MAX_ENTRIES, budget=self.budget)

    def run(self, make: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> Any:
        """Run an operation in the driver task (a coroutine, or a function making one)."""
        if not callable(make):
            coro = make

            async def once() -> Any:
                return await coro

            return self.driver.send("call", once)
        return self.driver.send("call", make)

    def teardown(self) -> None:
        while self.frames:
            self.driver.send("rollback")
            self.frames.pop()
        self.driver.task.cancel()
        self.loop.run_until_complete(asyncio.gather(self.driver.task, return_exceptions=True))
        self.loop.run_until_complete(self.container.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model ---------------------------------------------------------
    def view(self) -> State:
        """What the driver task sees: the model with the open blocks' writes over it."""
        seen = dict(self.model)
        for frame in self.frames:
            seen.update(frame)
        return seen

    def prekeys_seen(self) -> set[int]:
        gone = set().union(*self.frame_prekeys) if self.frame_prekeys else set()
        return self.prekeys - gone

    def value(self, kind: int) -> bytes:
        self.counter += 1
        size = 32 if kind == IDENTITY else 5
        return self.counter.to_bytes(4, "big").rjust(size, b"\x01")

    def write(self, key: Key, value: bytes | None, call: Callable[[], Awaitable[Any]]) -> None:
        flushes = self.cache.flushes
        self.run(call)
        if self.frames:
            self.frames[-1][key] = value
            return
        if self.cache.flushes != flushes:  # the dirty bound or the budget made it flush first
            self.durable = dict(self.model)
            self.durable_prekeys = set(self.prekeys)
        self.model[key] = value

    # -- rules: writes and reads -------------------------------------------
    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 4))
    def put(self, kind: int, i: int) -> None:
        a = addresses(kind)[i % len(addresses(kind))]
        data = self.value(kind)
        self.write((kind, a), data, lambda: getattr(self.cache, PUT[kind])(a, data))

    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 4))
    def delete(self, kind: int, i: int) -> None:
        a = addresses(kind)[i % len(addresses(kind))]
        self.write((kind, a), None, lambda: getattr(self.cache, DELETE[kind])(a))

    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 4))
    def read(self, kind: int, i: int) -> None:
        a = addresses(kind)[i % len(addresses(kind))]
        got = self.run(lambda: getattr(self.cache, GET[kind])(a))
        assert got == self.view().get((kind, a))

    @rule()
    def read_many(self) -> None:
        got = self.run(lambda: self.cache.get_sessions(ADDRESSES))
        want = {a: v for (k, a), v in self.view().items() if k == SESSION and v is not None}
        assert got == want

    @rule(user=st.sampled_from((*USERS, "12")), elsewhere=st.booleans())
    def session_addresses(self, user: str, elsewhere: bool) -> None:
        """The sessions of a user: the database's range query with the buffer over it."""

        async def ask() -> list[str]:
            if elsewhere:  # another task: outside the open transaction
                return await asyncio.create_task(self.cache.get_session_addresses(user))
            return await self.cache.get_session_addresses(user)

        state = self.model if elsewhere else self.view()
        want = sorted(
            (a for (k, a), v in state.items() if k == SESSION and v and of_user((k, a), user)),
            key=str.encode,
        )
        assert self.run(ask) == want

    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 4))
    def read_from_another_task(self, kind: int, i: int) -> None:
        a = addresses(kind)[i % len(addresses(kind))]

        async def elsewhere() -> Any:
            return await asyncio.create_task(getattr(self.cache, GET[kind])(a))

        assert self.run(elsewhere) == self.model.get((kind, a))

    @rule(i=st.sampled_from([1, 2, 3]))
    def consume_prekey(self, i: int) -> None:
        flushes = self.cache.flushes
        self.run(lambda: self.cache.remove_prekey(i))
        if self.frames:
            self.frame_prekeys[-1].add(i)
        else:
            if self.cache.flushes != flushes:
                self.durable = dict(self.model)
                self.durable_prekeys = set(self.prekeys)
            self.prekeys.discard(i)
        assert self.run(lambda: self.cache.load_prekey(i)) is None

    @rule(user=st.sampled_from(USERS))
    def delete_user(self, user: str) -> None:
        self.run(lambda: self.cache.delete_signal_state_for_user(user))
        keys = [(k, a) for k in KINDS for a in addresses(k) if of_user((k, a), user)]
        if self.frames:  # flushed into the transaction, then deleted in it
            self.frame_flushed[-1] = True
            self.frames[-1].update(dict.fromkeys(keys))
            self.check_database(self.view(), self.prekeys_seen())
            return
        self.model.update(dict.fromkeys(keys))
        self.durable = dict(self.model)
        self.durable_prekeys = set(self.prekeys)
        self.check_database(self.durable, self.durable_prekeys)

    # -- rules: flushes ------------------------------------------------------
    @rule()
    def flush(self) -> None:
        self.run(self.cache.flush)
        if self.frames:
            self.frame_flushed[-1] = True
            self.check_database(self.view(), self.prekeys_seen())
            return
        self.durable = dict(self.model)
        self.durable_prekeys = set(self.prekeys)
        self.check_database(self.model, self.prekeys)

    @rule()
    def failing_flush(self) -> None:
        self.flaky.failing = True
        try:
            failed = False
            try:
                self.run(self.cache.flush)
            except wastore.BackendUnavailableError:
                failed = True
            dirty = self.cache.dirty_count > 0
        finally:
            self.flaky.failing = False
        if self.frames:
            if not failed:  # it found nothing the fault could hit
                self.frame_flushed[-1] = True
            return
        if failed:  # nothing of it may have reached the database
            self.check_database(self.durable, self.durable_prekeys)
        else:  # it had nothing to write that the fault could hit
            assert not dirty
            self.durable = dict(self.model)
            self.durable_prekeys = set(self.prekeys)

    # -- rules: transactions -------------------------------------------------
    @precondition(lambda self: len(self.frames) < 3)
    @rule()
    def begin(self) -> None:
        self.driver.send("begin")
        self.frames.append({})
        self.frame_flushed.append(False)
        self.frame_prekeys.append(set())

    @precondition(lambda self: self.frames)
    @rule()
    def rollback(self) -> None:
        assert self.driver.send("rollback") == "rolled back"
        self.frames.pop()
        self.frame_flushed.pop()
        self.frame_prekeys.pop()
        if not self.frames:
            self.check_database(self.durable, self.durable_prekeys)

    @precondition(lambda self: self.frames)
    @rule(failing=st.booleans())
    def commit(self, failing: bool) -> None:
        outermost = len(self.frames) == 1
        self.flaky.failing = failing and outermost
        try:
            outcome = self.driver.send("commit")
        except wastore.BackendUnavailableError:
            outcome = "failed"
        finally:
            self.flaky.failing = False
        frame = self.frames.pop()
        flushed = self.frame_flushed.pop()
        consumed = self.frame_prekeys.pop()
        if outcome == "failed":  # the whole transaction is gone, as if rolled back
            assert outermost and failing
            self.check_database(self.durable, self.durable_prekeys)
            return
        assert outcome == "committed"
        if not outermost:  # joins the enclosing block
            self.frames[-1].update(frame)
            self.frame_flushed[-1] |= flushed
            self.frame_prekeys[-1] |= consumed
            return
        if failing:  # it succeeded: the fault found nothing to hit
            assert not any(v is not None for (k, _), v in frame.items() if k in (SESSION, IDENTITY))
            assert not consumed
        if flushed:  # the flush put the buffered writes of before into this commit
            self.durable = dict(self.model)
            self.durable_prekeys = set(self.prekeys)
        self.model.update(frame)
        self.durable.update(frame)
        self.prekeys -= consumed
        self.durable_prekeys -= consumed
        self.check_database(self.durable, self.durable_prekeys)

    # -- rules: another account, crashes --------------------------------------
    @rule(i=st.integers(0, 4))
    def other_account(self, i: int) -> None:
        a = ADDRESSES[i]
        data = self.value(SESSION)

        async def traffic() -> None:
            for b in ADDRESSES:  # reads fill the shared budget: the first cache's clean go
                assert await self.other.get_session(b) == self.other_model.get(b)
            await self.other.put_session(a, data)
            await self.other.flush()

        if self.frames:
            return  # the other account's writes would be refused inside this transaction
        self.run(traffic)
        self.other_model[a] = data

    @precondition(lambda self: not self.frames)
    @rule(reopen=st.booleans())
    def crash(self, reopen: bool) -> None:
        self.cache.drop()
        self.other.drop()
        if reopen:
            self.run(self.container.close())
            self.container = self.run(wastore.open_store(f"sqlite:///{self.path}"))
        self.open_caches()
        self.model = dict(self.durable)
        self.prekeys = set(self.durable_prekeys)
        self.check_database(self.durable, self.durable_prekeys)

    # -- invariants ---------------------------------------------------------
    @invariant()
    def dirty_entries_are_never_evicted(self) -> None:
        for key, value in self.model.items():
            if self.durable.get(key) != value:
                assert self.cache.is_dirty(*key), key
                assert self.cache._hit((self.cache._slot, *key)) == value

    @invariant()
    def bounded_by_dirty_entries(self) -> None:
        assert len(self.cache) <= max(MAX_ENTRIES, len(self.cache._dirty))

    @invariant()
    def the_budget_counts_what_the_caches_hold(self) -> None:
        held = 0
        for c in (self.cache, self.other):
            assert not c._clean_keys & c._dirty.keys()  # an entry is clean or dirty
            for key in c._clean_keys:
                held += ENTRY_OVERHEAD + len(key[2]) + len(self.budget._clean[key] or b"")
            for key, (v, _) in c._dirty.items():
                held += ENTRY_OVERHEAD + len(key[2]) + len(v or b"")
        assert self.budget.used == held
        clean = len(self.cache._clean_keys) + len(self.other._clean_keys)
        assert len(self.budget._clean) == clean
        if self.budget.over:  # only dirty entries may keep it over
            assert clean == 0

    def check_database(self, want: State, prekeys: set[int]) -> None:
        b = self.flaky.inner

        async def read() -> None:
            for kind in KINDS:
                for a in addresses(kind):
                    if kind == SESSION:
                        got = await b.get_session(a)
                    elif kind == IDENTITY:
                        got = await b.load_identity(a)
                    else:
                        got = await b.get_sender_key(a)
                    assert got == want.get((kind, a)), (kind, a)
            assert set(await b.load_prekeys_batch([1, 2, 3])) == prekeys

        self.run(read)


TestCacheMachine = CacheMachine.TestCase
TestCacheMachine.settings = settings(max_examples=EXAMPLES, stateful_step_count=40, deadline=None)
