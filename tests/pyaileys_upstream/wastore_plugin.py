"""pytest plugin: pyaileys' own test suite with wastore accounts as its key stores.

Loaded with ``-p wastore_plugin`` into a pytest run of the ``tests/`` folder of
pyaileys' sdist (see ``tests/test_pyaileys_upstream.py``), never into
wastore's own runs. ``WASTORE_PYAILEYS_STORE`` is the store URL (an SQLite
file or a PostgreSQL database) for the whole run. Nothing of pyaileys' files is
changed: after collection, the plugin rebinds two names in the collected test
modules.

- ``MemoryKeyStore`` (each test module defines its own key store) becomes
  :class:`WastoreKeys`: every instance is a new account of the store, opened
  as a :class:`~wastore.interop.pyaileys.WastoreAuthState` on the test's event
  loop the first time pyaileys awaits it.
- ``MultiFileAuthState`` (in the test modules and in ``pyaileys.client``, whose
  ``WhatsAppClient.from_auth_folder`` uses it) becomes
  :class:`WastoreFolderAuthState`: ``load(folder)``
  opens the account kept for that folder (a new one the first time). Loading a
  folder again is a restart: the earlier state of that folder is closed first
  (a wastore account is served by one holder at a time).

Every test records how many wastore accounts it opened (the ``wastore_accounts``
property in the JUnit report), so the runner can tell a test that really ran on
wastore from one that never touched its key store.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from wastore import ValidationError, open_store
from wastore.contract import Container
from wastore.interop.pyaileys import WastoreAuthState, WastoreKeyStore

STORE = os.environ.get("WASTORE_PYAILEYS_STORE", "")

# Tests that cannot pass on wastore, by design, and the error they must raise instead.
EXPECTED_FAILURES: dict[str, tuple[type[BaseException], str]] = {
    "test_multifile_keystore_set_get": (
        ValidationError,
        "stores {'some': 'value'} as the 'session' of id 'abc': wastore keeps sessions as "
        "libsignal records under Signal addresses, never opaque objects under free-form ids",
    ),
}


class _Run:
    """The store and the states one test opened (closed after the test)."""

    def __init__(self) -> None:
        self.container: Container | None = None
        self.states: list[WastoreAuthState] = []
        self.folders: dict[str, WastoreAuthState] = {}

    async def store(self) -> Container:
        if self.container is None:
            self.container = await open_store(STORE)
        return self.container

    async def open(self, device_id: int | None = None) -> WastoreAuthState:
        container = await self.store()
        if device_id is None:
            device_id = await container.create_device()
        state = await WastoreAuthState.load(container, account=device_id)
        self.states.append(state)
        return state

    async def close(self) -> None:
        for state in reversed(self.states):
            await state.close()
        if self.container is not None:
            await self.container.close()


_current: _Run | None = None


def _run() -> _Run:
    if _current is None:
        raise RuntimeError("a wastore key store was used outside a test")
    return _current


class WastoreKeys:
    """Stands in for a test module's ``MemoryKeyStore``: a new wastore account."""

    def __init__(self) -> None:
        self._keys: WastoreKeyStore | None = None

    async def _store(self) -> WastoreKeyStore:
        if self._keys is None:
            self._keys = (await _run().open()).keys
        return self._keys

    async def get(self, key_type: str, ids: list[str]) -> dict[str, Any]:
        return await (await self._store()).get(key_type, ids)

    async def set(self, data: Mapping[str, Mapping[str, Any | None]]) -> None:
        await (await self._store()).set(data)

    async def clear(self) -> None:
        await (await self._store()).clear()


class WastoreFolderAuthState:
    """Stands in for ``MultiFileAuthState``: one wastore account per folder."""

    @classmethod
    async def load(cls, folder: str | Path) -> WastoreAuthState:
        run = _run()
        key = str(Path(folder).expanduser().resolve())
        previous = run.folders.get(key)
        device_id = None
        if previous is not None:
            device_id = previous.device_id
            await previous.close()
        state = await run.open(device_id)
        run.folders[key] = state
        return state


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not STORE:
        raise pytest.UsageError("wastore_plugin needs WASTORE_PYAILEYS_STORE (a store URL)")
    import pyaileys.client

    pyaileys.client.MultiFileAuthState = WastoreFolderAuthState  # type: ignore[assignment,misc]
    for item in items:
        module = getattr(item, "module", None)
        if module is None:
            continue
        if hasattr(module, "MemoryKeyStore"):
            module.MemoryKeyStore = WastoreKeys
        if hasattr(module, "MultiFileAuthState"):
            module.MultiFileAuthState = WastoreFolderAuthState
        expected = EXPECTED_FAILURES.get(item.name)
        if expected is not None:
            item.add_marker(pytest.mark.xfail(raises=expected[0], reason=expected[1], strict=True))


@pytest_asyncio.fixture(autouse=True)
async def _wastore_run(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    global _current
    _current = run = _Run()
    try:
        yield
    finally:
        _current = None
        accounts = {state.device_id for state in run.states}
        request.node.user_properties.append(("wastore_accounts", str(len(accounts))))
        await run.close()
