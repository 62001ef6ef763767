"""PostgresStore: many accounts, many processes, one PostgreSQL database (``postgresql://``).

The package is the PostgreSQL engine of the one SQL backend
(:mod:`wastore.backends.sql`):

- ``engine``: the primitives of the SQL backend, and how a statement or an
  atomic call runs (on a pooled connection or in the task's transaction);
- ``transactions``: transaction blocks, savepoints, account locks and fencing;
- ``connections``: how a call gets, times (the ``command_timeout`` watchdog)
  and gives back a pooled connection, retried within its budget;
- ``pool``: wastore's own pool of asyncpg connections, or a given ``asyncpg.Pool``;
- ``statements``: PostgreSQL's forms of batches and multi-key reads (``unnest``);
- ``errors``: what is transient, what may run again, driver errors translated;
- ``leases``: the liveness of lease holders (one advisory lock per container);
- ``store``: :class:`PostgresStore`, the container (opening, snapshots);
- ``url``: ``postgresql://`` URLs and options.
"""

# The account class of the one SQL backend, under the name it had before it was shared.
from ..sql.account import SqlAccount as PostgresBackend
from .engine import PostgresEngine
from .errors import display_url
from .leases import holder_class, lock_class
from .statements import STATEMENTS
from .store import PostgresStore, read_schema_version
from .url import open_postgres, parse_postgres_url

__all__ = [
    "STATEMENTS",
    "PostgresBackend",
    "PostgresEngine",
    "PostgresStore",
    "display_url",
    "holder_class",
    "lock_class",
    "open_postgres",
    "parse_postgres_url",
    "read_schema_version",
]
