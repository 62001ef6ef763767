"""The backend contract test suite, for wastore's backends and for yours.

Subclass :class:`BackendContractSuite` in a test module and give it a
``container`` fixture that yields a :class:`wastore.Container`; pytest then runs
every contract test against your backend::

    import pytest_asyncio
    from wastore.testing import BackendContractSuite

    class TestMyBackend(BackendContractSuite):
        @pytest_asyncio.fixture
        async def container(self):
            c = await open_my_container()
            yield c
            await c.close()

The ``container`` fixture must give each test its own open container (function
scope: one test closes it, and ``close()`` must be idempotent). It may hold
other accounts: each test creates its own with ``container.create_device()``
(fixtures ``backend`` and ``other_backend``). The tests are marked
``pytest.mark.asyncio`` and work in pytest-asyncio's strict and auto modes.

Needs the ``testing`` extra: ``pip install 'wastore[testing]'`` (pytest,
pytest-asyncio, hypothesis).

What the suite holds a backend to, beyond the docstrings of
:mod:`wastore.contract`:

- Argument checks: a wrong type (``bool`` is not an ``int``), an empty or
  over-long string (addresses at most 512 characters, collection names 64), an
  empty record, a key of the wrong length, a pre-key id outside ``[0, 2**24)``,
  a non-list where a list is expected (a lone ``str`` or ``bytes`` included), or
  a list holding one bad item raises :class:`wastore.ValidationError` - never
  another exception - and nothing is written.
- A batch with the same key twice behaves like the calls one after the other
  (the last item wins).
- User matching (``delete_signal_state_for_user``, ``get_session_addresses``)
  takes the user literally: ``_`` and ``%`` are not wildcards;
  ``get_session_addresses`` lists addresses in ascending order of their bytes.
- ``set_sync_key`` replaces a key of the same timestamp (only a *newer* stored
  key is kept). "Older than" a cutoff means strictly older.
- A task outside a transaction never sees its uncommitted writes (it may wait
  for the commit), and its own writes are not undone by that transaction's
  rollback.
- Transactions of one account run one at a time: 20 coroutines doing 10
  read-modify-write increments each, every one inside ``transaction()``, end
  at 200.
- A task started inside a transaction (``asyncio.gather``, ``create_task``)
  may read while it is open (the committed state, never the transaction's
  writes), but its writes raise :class:`wastore.StoreError` at once — never a
  hang, and nothing it tried survives the transaction's rollback. Once the
  transaction has ended it is an ordinary task.
- ``LeaseStore`` is optional; a backend that has it excludes a second holder
  (:class:`wastore.AccountInUseError` naming the first) until the lease is
  released or its ``ttl`` runs out — unless the store renews its leases itself
  (:class:`wastore.contract.KeptLeaseStore`, with ``lease_held``): then until it
  is released.
- A take of a sent message on a deleted account may find nothing or raise
  :class:`wastore.DeviceNotFoundError`; every insert or update on a deleted
  account raises :class:`wastore.DeviceNotFoundError`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .suite import BackendContractSuite

with contextlib.suppress(ImportError):  # without pytest only pgcluster is usable
    import pytest

    # Rewrite the asserts of the test modules (before any of them is imported),
    # so that failures show the compared values.
    pytest.register_assert_rewrite(
        "wastore.testing._appsync",
        "wastore.testing._device",
        "wastore.testing._protocol",
        "wastore.testing._signal",
        "wastore.testing._support",
        "wastore.testing._transactions",
        "wastore.testing._validation",
    )

__all__ = ["BackendContractSuite"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that wastore.testing.pgcluster (used by the
    # benchmark harness too) does not need pytest.
    if name == "BackendContractSuite":
        from .suite import BackendContractSuite

        return BackendContractSuite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
