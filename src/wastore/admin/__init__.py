"""Administration: what the ``wastore`` command line needs beyond the public API.

- :func:`open_url`: open a store for an administrative command (never creates a
  missing SQLite file unless asked; never migrates unless asked).
- :func:`schema_status_at`: the schema version of a database and its pending
  migrations, read from the version table directly (opens no store, migrates
  nothing); :func:`schema_status` the same for an open container.
- :func:`overviews`: every account with its row counts; :func:`account_detail`:
  one account in detail (public keys and fingerprints only, never a private key).
- :func:`check`: the integrity report (``PRAGMA integrity_check`` on SQLite, the
  schema version, every row decoded the way the store decodes it, orphan rows,
  leases).
- :func:`put_account`, :func:`plan_put`, :func:`copy_account`,
  :func:`same_content`: move whole accounts between stores (``wastore import`` /
  ``copy``), idempotently; an account is the same when its identity key is, and
  nothing ever replaces a different account (:func:`another_account` says why).

Every function takes an open container. The SQL ones work on
:class:`~wastore.backends.sqlite.SqliteStore` and
:class:`~wastore.backends.postgres.PostgresStore` through the hooks of
:class:`~wastore.backends.sql.store.SqlStore` (statements read in one
snapshot, the lease listing); any other container raises
:class:`~wastore.ConfigError`. The SQL is written once with ``$n``
placeholders, which the store renders for its dialect.
"""

from __future__ import annotations

from .checks import check, integrity_check, orphan_rows
from .inspect import (
    account_detail,
    account_dump,
    leases,
    open_url,
    overviews,
    resolve_device,
    schema_status,
    schema_status_at,
)
from .moving import (
    CopyResult,
    PutResult,
    another_account,
    copy_account,
    plan_put,
    put_account,
    same_content,
    verify_copy,
)
from .reports import (
    AccountDetail,
    AccountOverview,
    CheckReport,
    KeyInfo,
    Lease,
    NotFoundError,
    OrphanRows,
    SchemaStatus,
    fingerprint,
)

__all__ = [
    "AccountDetail",
    "AccountOverview",
    "CheckReport",
    "CopyResult",
    "KeyInfo",
    "Lease",
    "NotFoundError",
    "OrphanRows",
    "PutResult",
    "SchemaStatus",
    "account_detail",
    "account_dump",
    "another_account",
    "check",
    "copy_account",
    "fingerprint",
    "integrity_check",
    "leases",
    "open_url",
    "orphan_rows",
    "overviews",
    "plan_put",
    "put_account",
    "resolve_device",
    "same_content",
    "schema_status",
    "schema_status_at",
    "verify_copy",
]
