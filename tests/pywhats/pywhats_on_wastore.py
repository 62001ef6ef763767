"""pytest plugin: pywhats' own fake-server tests, with pywhats' state in wastore.

Loaded into a pytest run of pywhats' sdist tests (``-p pywhats_on_wastore``,
see ``test_pywhats_fakeserver_suite.py``), it changes nothing in their files. Each test
gets a store of its own from ``$WASTORE_PYWHATS_STORE`` (an SQLite URL: a file
per test beside it; a PostgreSQL URL: tables of their own in that database,
``prefix=pw<n>_``) — the tests all use the same phone number, which one store
holds once — and the plugin puts in the test module's namespace:

- ``Client(session_path=None, **kwargs)`` -> ``WastoreClient(store, account=A,
  **kwargs)``. Without a session path, ``A`` is a new account (pywhats then
  uses fresh in-memory stores). With one, ``A`` is the account of that session
  path: the first time the path is named, the pywhats session found there (the
  device JSON the test saved) is imported with ``wastore.formats.import_from``
  — the ``wastore import --from pywhats`` path — or, with nothing there, a new
  account is created.
- ``SqliteStore("{session_path}.signal.db")`` -> ``SignalStores(store, A,
  lease=False)`` over the same account (the tests read the store while the
  client that holds the account is connected).

And it makes sure nothing escapes: constructing a plain ``pywhats.Client`` or
opening pywhats' own ``SqliteStore`` fails the test. Each test's substitutions
are written to ``$WASTORE_PYWHATS_REPORT`` (JSON lines) for the driver to check.
"""

from __future__ import annotations

import itertools
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wastore.formats import import_from
from wastore.interop.bridge import SyncContainer
from wastore.interop.pywhats import SignalStores, WastoreClient

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pywhats.client
    from pywhats.signal.experimental import sqlite_store

STORE_ENV = "WASTORE_PYWHATS_STORE"
REPORT_ENV = "WASTORE_PYWHATS_REPORT"
SIGNAL_DB = ".signal.db"
_numbers = itertools.count(1)


def store_url(base: str, n: int) -> str:
    """The store of the ``n``-th test: its own SQLite file, or its own tables."""
    if base.startswith("sqlite:///"):
        stem, dot, suffix = base.rpartition(".")
        return f"{stem}-{n}.{suffix}" if dot else f"{base}-{n}"
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}prefix=pw{n}_"


class Substitution:
    """One test's store, and the accounts its session paths name."""

    def __init__(self, container: SyncContainer) -> None:
        self.container = container
        self.accounts: dict[str, int] = {}
        self.clients = 0
        self.stores = 0
        self.imported = 0

    def account_for(self, session_path: str) -> int:
        key = os.path.abspath(session_path)
        if key not in self.accounts:
            if os.path.exists(key):
                [result] = self.container.run(import_from(self.container.container, key, "pywhats"))
                assert result.device_id is not None
                self.accounts[key] = result.device_id
                self.imported += 1
            else:
                self.accounts[key] = self.container.create_device()
        return self.accounts[key]

    def client(self, session_path: str | None = None, **kwargs: Any) -> WastoreClient:
        if session_path is None:
            account = self.container.create_device()
        else:
            account = self.account_for(session_path)
        self.clients += 1
        return WastoreClient(self.container, account=account, **kwargs)

    def sqlite_store(self, path: str | os.PathLike[str]) -> SignalStores:
        path = os.fspath(path)
        assert path.endswith(SIGNAL_DB), f"not a pywhats signal database path: {path}"
        self.stores += 1
        return SignalStores(self.container, self.account_for(path[: -len(SIGNAL_DB)]), lease=False)


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(STORE_ENV):
        raise pytest.UsageError(f"set {STORE_ENV} to the wastore store the tests use")
    real_init = pywhats.client.Client.__init__

    def guarded_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(self, WastoreClient):
            raise AssertionError("a plain pywhats.Client was built: the substitution missed it")
        real_init(self, *args, **kwargs)

    def refused(self: Any, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("pywhats' own SqliteStore was opened: the substitution missed it")

    pywhats.client.Client.__init__ = guarded_init
    sqlite_store.SqliteStore.__init__ = refused


@pytest.fixture(autouse=True)
def _pywhats_on_wastore(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Substitution]:
    container = SyncContainer.open(store_url(os.environ[STORE_ENV], next(_numbers)))
    sub = Substitution(container)
    module = request.module
    if hasattr(module, "Client"):
        monkeypatch.setattr(module, "Client", sub.client)
    if hasattr(module, "SqliteStore"):
        monkeypatch.setattr(module, "SqliteStore", sub.sqlite_store)
    try:
        yield sub
    finally:
        container.close()  # releases the accounts of clients the test left connected
        report = os.environ.get(REPORT_ENV)
        if report:
            line = {
                "nodeid": request.node.nodeid,
                "clients": sub.clients,
                "stores": sub.stores,
                "imported": sub.imported,
                "accounts": sorted(sub.accounts.values()),
            }
            with Path(report).open("a") as fh:
                fh.write(json.dumps(line) + "\n")
