"""MemoryStore: the whole contract in process memory (``memory://``).

For tests, examples and short-lived tools. Nothing survives the process. It
follows the contract to the letter — transactions (with savepoints), account
isolation, leases between managers of one process — so code tested on it
behaves the same on SQLite and PostgreSQL.

Transactions run one at a time in a store (so a read-modify-write inside one
never loses an update); the writes of other tasks wait for an open one to
end, at most :attr:`MemoryStore.lock_timeout` seconds (then
:class:`~wastore.BackendUnavailableError` names the holder), and their reads
see the state as last committed (the open transaction's undo journal applied
to copies). The container's writes (``create_device``, ``delete_device``,
``backend(id).create()``) made by the task inside its transaction join it, as
on SQL, and its rollback undoes them. A task started inside a transaction may
read but not write while it is open (:mod:`wastore.backends._txn`). A lease
taken through a view fences the writes of that view: once another holder took
the lease over (after its ttl), they raise :class:`~wastore.AccountInUseError`
and change nothing.

The package:

- ``store``: :class:`MemoryStore`, the container (accounts, the transaction
  lock, the committed view other tasks read);
- ``account``: :class:`MemoryBackend`, one account's view (transactions, the
  device row, leases), over ``base`` (reads, journalled and fenced writes);
- ``signal``, ``appsync``, ``protocol``: the methods of each domain protocol;
- ``journal``: the data of an account, and the undo journal of a transaction.
"""

from .account import MemoryBackend
from .journal import MemorySnapshot
from .store import MemoryStore, open_memory

__all__ = ["MemoryBackend", "MemorySnapshot", "MemoryStore", "open_memory"]
