"""A stateful property test of the SignalCache over a real SQLite file.

Hypothesis drives random puts, deletes, reads, flushes, injected flush
failures, evictions (``max_entries`` is tiny) and crashes (the cache is dropped
unflushed and the database reopened), and checks against a plain model:

- reads always equal the model;
- after a successful flush the database equals the model;
- after a crash the database (and so the new cache) equals the model as of the
  last successful flush;
- no dirty entry is ever evicted.

CI runs a bounded number of examples; a longer run:
``WASTORE_STATEFUL_EXAMPLES=1000 pytest tests/test_cache_stateful.py``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import wastore
from wastore.cache import IDENTITY, SENDER_KEY, SESSION, SignalCache

EXAMPLES = int(os.environ.get("WASTORE_STATEFUL_EXAMPLES", "40"))
KINDS = (SESSION, IDENTITY, SENDER_KEY)
ADDRESSES = [f"{u}@s.whatsapp.net" for u in ("1", "12", "2", "3:4", "5")]
SENDER_ADDRESSES = [f"g@g.us::{a}" for a in ADDRESSES[:3]]


def addresses(kind: int) -> list[str]:
    return SENDER_ADDRESSES if kind == SENDER_KEY else ADDRESSES


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

    async def remove_prekey(self, id: int) -> None:
        await self.inner.remove_prekey(id)
        self._check()


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp(prefix="wastore-cache-")
        self.path = os.path.join(self.dir, "cache.db")
        self.container: Any = self.run(wastore.open_store(f"sqlite:///{self.path}"))
        self.device_id = self.run(self.container.create_device())
        self.flaky = Flaky(self.container.backend(self.device_id))
        self.cache = SignalCache(self.flaky, max_entries=4)  # type: ignore[arg-type]
        self.model: dict[tuple[int, str], bytes | None] = {}
        self.durable: dict[tuple[int, str], bytes | None] = {}
        self.prekeys = {1, 2, 3}
        self.durable_prekeys = {1, 2, 3}
        self.run(self.flaky.inner.store_prekeys_batch([(i, b"pk") for i in (1, 2, 3)], False))
        self.counter = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.container.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def value(self, kind: int) -> bytes:
        self.counter += 1
        size = 32 if kind == IDENTITY else 5
        return self.counter.to_bytes(4, "big").rjust(size, b"\x01")

    # -- rules --------------------------------------------------------------
    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 4))
    def put(self, kind: int, i: int) -> None:
        a = addresses(kind)[i % len(addresses(kind))]
        data = self.value(kind)
        method = {SESSION: "put_session", IDENTITY: "put_identity", SENDER_KEY: "put_sender_key"}
        self.run(getattr(self.cache, method[kind])(a, data))
        self.model[(kind, a)] = data

    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 4))
    def delete(self, kind: int, i: int) -> None:
        a = addresses(kind)[i % len(addresses(kind))]
        method = {
            SESSION: "delete_session",
            IDENTITY: "delete_identity",
            SENDER_KEY: "delete_sender_key",
        }
        self.run(getattr(self.cache, method[kind])(a))
        self.model[(kind, a)] = None

    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 4))
    def read(self, kind: int, i: int) -> None:
        a = addresses(kind)[i % len(addresses(kind))]
        method = {SESSION: "get_session", IDENTITY: "load_identity", SENDER_KEY: "get_sender_key"}
        got = self.run(getattr(self.cache, method[kind])(a))
        assert got == self.model.get((kind, a))

    @rule()
    def read_many(self) -> None:
        got = self.run(self.cache.get_sessions(ADDRESSES))
        want = {a: v for (k, a), v in self.model.items() if k == SESSION and v is not None}
        assert got == want

    @rule(i=st.sampled_from([1, 2, 3]))
    def consume_prekey(self, i: int) -> None:
        self.run(self.cache.remove_prekey(i))
        self.prekeys.discard(i)
        assert self.run(self.cache.load_prekey(i)) is None

    @rule()
    def flush(self) -> None:
        self.run(self.cache.flush())
        self.durable = dict(self.model)
        self.durable_prekeys = set(self.prekeys)
        self.check_database(self.model, self.prekeys)

    @rule()
    def failing_flush(self) -> None:
        self.flaky.failing = True
        try:
            failed = False
            try:
                self.run(self.cache.flush())
            except wastore.BackendUnavailableError:
                failed = True
            dirty = self.cache.dirty_count > 0
        finally:
            self.flaky.failing = False
        if failed:  # nothing of it may have reached the database
            self.check_database(self.durable, self.durable_prekeys)
        else:  # it had nothing to write that the fault could hit
            assert not dirty
            self.durable = dict(self.model)
            self.durable_prekeys = set(self.prekeys)

    @rule(reopen=st.booleans())
    def crash(self, reopen: bool) -> None:
        self.cache.drop()
        if reopen:
            self.run(self.container.close())
            self.container = self.run(wastore.open_store(f"sqlite:///{self.path}"))
            self.flaky = Flaky(self.container.backend(self.device_id))
        self.cache = SignalCache(self.flaky, max_entries=4)  # type: ignore[arg-type]
        self.model = dict(self.durable)
        self.prekeys = set(self.durable_prekeys)
        self.check_database(self.durable, self.durable_prekeys)

    # -- invariants ---------------------------------------------------------
    @invariant()
    def dirty_entries_are_never_evicted(self) -> None:
        for key, value in self.model.items():
            if self.durable.get(key) != value:
                assert self.cache.is_dirty(*key), key
                assert self.cache._entries[key] == value

    @invariant()
    def bounded_by_dirty_entries(self) -> None:
        assert len(self.cache) <= max(4, len(self.cache._dirty))

    def check_database(self, want: dict[tuple[int, str], bytes | None], prekeys: set[int]) -> None:
        b = self.flaky.inner
        for kind in KINDS:
            for a in addresses(kind):
                if kind == SESSION:
                    got = self.run(b.get_session(a))
                elif kind == IDENTITY:
                    got = self.run(b.load_identity(a))
                else:
                    got = self.run(b.get_sender_key(a))
                assert got == want.get((kind, a)), (kind, a)
        assert set(self.run(b.load_prekeys_batch([1, 2, 3]))) == prekeys


TestCacheMachine = CacheMachine.TestCase
TestCacheMachine.settings = settings(max_examples=EXAMPLES, stateful_step_count=30, deadline=None)
