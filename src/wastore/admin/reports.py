"""What the administrative commands report: values with ``as_dict()`` for ``--json``."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from ..backends.sql import schema
from ..errors import StoreError


class NotFoundError(StoreError, LookupError):
    """A database or account named on the command line does not exist."""


def fingerprint(public: bytes) -> str:
    """A short, stable name of a public key: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public).digest()[:8].hex()


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands.

    ``version``/``compat`` are None when the database has no wastore schema yet
    (opening it creates the latest schema in one step).
    """

    version: int | None
    compat: int | None
    latest: int
    pending: tuple[schema.Migration, ...]

    @property
    def initialised(self) -> bool:
        return self.version is not None

    @property
    def up_to_date(self) -> bool:
        return self.initialised and not self.pending

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "compat": self.compat,
            "latest": self.latest,
            "up_to_date": self.up_to_date,
            "pending": [{"version": m.version, "description": m.description} for m in self.pending],
        }


@dataclass(frozen=True)
class Lease:
    """An account lease: who serves the account, until when.

    The same on both SQL backends: a row of the lease table whose holder is
    the container that took it (``holder`` its description, ``pid`` and
    ``host`` the holder's process), valid until ``expires_at`` (Unix seconds:
    the holder's last renewal plus the lease's ttl; on PostgreSQL the
    server's clock). ``expires_at`` None is a lease that does not expire.
    """

    device_id: int
    holder: str
    host: str
    pid: int
    expires_at: float | None

    def active(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return True
        return self.expires_at > (time.time() if now is None else now)

    def describe(self) -> str:
        """Who holds it, for people."""
        if self.expires_at is None:
            return f"{self.holder or 'another process'} (pid {self.pid} on {self.host})"
        if f"pid {self.pid}" in self.holder:
            return self.holder
        return f"{self.holder} (pid {self.pid} on {self.host})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "holder": self.holder,
            "host": self.host,
            "pid": self.pid,
            "expires_at": self.expires_at,
            "active": self.active(),
        }


@dataclass(frozen=True)
class AccountOverview:
    """One account and how much it stores (``wastore devices``)."""

    device_id: int
    pn: str | None
    lid: str | None
    push_name: str
    sessions: int
    identities: int
    sender_keys: int
    prekeys: int
    prekeys_uploaded: int
    signed_prekeys: int
    app_state: dict[str, int]
    saved_at_ms: int
    lease: Lease | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "pn": self.pn,
            "lid": self.lid,
            "push_name": self.push_name,
            "sessions": self.sessions,
            "identities": self.identities,
            "sender_keys": self.sender_keys,
            "prekeys": {"total": self.prekeys, "uploaded": self.prekeys_uploaded},
            "signed_prekeys": self.signed_prekeys,
            "app_state": dict(self.app_state),
            "saved_at_ms": self.saved_at_ms,
            "lease": None if self.lease is None else self.lease.as_dict(),
        }


@dataclass(frozen=True)
class KeyInfo:
    """The public half of a key pair (the private half is never read out)."""

    public: bytes | None

    @property
    def fingerprint(self) -> str | None:
        return None if self.public is None else fingerprint(self.public)

    def as_dict(self) -> dict[str, Any]:
        return {
            "public": None if self.public is None else self.public.hex(),
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class AccountDetail:
    """One account in detail (``wastore show``): no private key, no secret, no record."""

    device_id: int
    fields: dict[str, Any]
    """The device row's non-secret fields (opaque blobs as their size in bytes)."""
    keys: dict[str, KeyInfo]
    """``identity_key``, ``noise_key``, ``signed_pre_key``: public halves."""
    rows: dict[str, int]
    """Rows per table."""
    prekeys_uploaded: int
    signed_prekey_ids: list[int]
    app_state: list[tuple[str, int, str]]
    """``(collection, version, fingerprint of the LTHash)``."""
    sync_keys: list[tuple[str, int]]
    """``(key id in hex, timestamp)``, newest first (key data is secret)."""
    lease: Lease | None
    problems: list[str]
    """What :func:`wastore.portable.row_problems` finds in this account."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            **self.fields,
            "keys": {k: v.as_dict() for k, v in self.keys.items()},
            "rows": dict(self.rows),
            "prekeys": {"total": self.rows.get("prekeys", 0), "uploaded": self.prekeys_uploaded},
            "signed_prekey_ids": list(self.signed_prekey_ids),
            "app_state": [
                {"name": n, "version": ver, "hash_fingerprint": fp} for n, ver, fp in self.app_state
            ],
            "sync_keys": [{"key_id": k, "timestamp": ts} for k, ts in self.sync_keys],
            "lease": None if self.lease is None else self.lease.as_dict(),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class OrphanRows:
    """Rows of ``table`` whose ``device_id`` has no device row."""

    table: str
    device_id: int
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "device_id": self.device_id, "rows": self.rows}


@dataclass
class CheckReport:
    """What :func:`check` found. ``ok`` only when there is nothing to report."""

    integrity: list[str] | None
    """``PRAGMA integrity_check`` lines (``["ok"]`` when sound); None where not applicable."""
    schema: SchemaStatus
    accounts: int = 0
    account_problems: dict[int, list[str]] = field(default_factory=dict)
    orphans: list[OrphanRows] = field(default_factory=list)
    leases: list[Lease] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out: list[str] = []
        if self.integrity is not None and self.integrity != ["ok"]:
            out += [f"integrity check: {line}" for line in self.integrity]
        if not self.schema.initialised:
            out.append("the database has no wastore schema: run `wastore migrate`")
        elif self.schema.pending:
            out.append(
                f"schema version {self.schema.version}, {len(self.schema.pending)} migration(s) "
                "pending: run `wastore migrate`"
            )
        for device_id, problems in sorted(self.account_problems.items()):
            out += [f"account {device_id}: {p}" for p in problems]
        out += [
            f"{o.rows} orphan row(s) in {o.table} for missing device id {o.device_id}"
            for o in self.orphans
        ]
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "integrity": self.integrity,
            "schema": self.schema.as_dict(),
            "accounts_checked": self.accounts,
            "account_problems": {str(k): v for k, v in sorted(self.account_problems.items())},
            "orphans": [o.as_dict() for o in self.orphans],
            "leases": [lease.as_dict() for lease in self.leases],
            "problems": self.problems,
        }
