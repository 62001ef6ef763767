"""SqliteStore: the embedded default (``sqlite:///path.db``).

The package is the SQLite engine of the one SQL backend
(:mod:`wastore.backends.sql`):

- ``engine``: how statements run on the connections (inline on the event
  loop, large work on one worker thread, busy retries, transactions);
- ``connections``: the file (private modes, WAL, pragmas, migrations at
  open) and its three connections;
- ``checkpoints``: WAL checkpoints on the worker thread, which keep the WAL bounded;
- ``statements``: SQLite's forms of batches and multi-key reads;
- ``errors``: busy errors and the translation of driver errors;
- ``leases``: account leases as rows;
- ``store``: :class:`SqliteStore`, the container (opening, snapshots);
- ``url``: ``sqlite://`` URLs and options.
"""

# The account class of the one SQL backend, under the name it had before it was shared.
from ..sql.account import SqlAccount as SqliteBackend
from .connections import CACHE_KIB
from .engine import SqliteEngine
from .statements import (
    GET_MACS_IN,
    GET_SESSIONS_IN,
    LOAD_PREKEYS_IN,
    multi_row_sql,
    padded_chunks,
    render_in_list,
    row_chunks,
)
from .store import SqliteStore, read_schema_version
from .url import open_sqlite, parse_sqlite_url

__all__ = [
    "CACHE_KIB",
    "GET_MACS_IN",
    "GET_SESSIONS_IN",
    "LOAD_PREKEYS_IN",
    "SqliteBackend",
    "SqliteEngine",
    "SqliteStore",
    "multi_row_sql",
    "open_sqlite",
    "padded_chunks",
    "parse_sqlite_url",
    "read_schema_version",
    "render_in_list",
    "row_chunks",
]
