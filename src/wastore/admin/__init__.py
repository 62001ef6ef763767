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
- :func:`put_account`, :func:`copy_account`, :func:`same_content`: move whole
  accounts between stores (``wastore import`` / ``copy``), idempotently.

Every function takes an open container. The SQL ones work on
:class:`~wastore.backends.sqlite.SqliteStore` and
:class:`~wastore.backends.postgres.PostgresStore` through the hooks of
:class:`~wastore.backends.sql.store.SqlStore` (statements read in one
snapshot, the lease listing); any other container raises
:class:`~wastore.ConfigError`. The SQL is written once with ``$n``
placeholders, which the store renders for its dialect.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from .. import portable
from ..backends.sql import schema
from ..backends.sql.store import SqlStore
from ..contract import Container, PortableContainer
from ..errors import (
    AccountInUseError,
    ConfigError,
    CorruptRecordError,
    DeviceNotFoundError,
    SchemaError,
    StoreError,
    ValidationError,
)
from ..jid import JID
from ..portable import AccountDump
from ..registry import open_store, redact_url, url_options

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
    "check",
    "copy_account",
    "fingerprint",
    "leases",
    "open_url",
    "orphan_rows",
    "overviews",
    "put_account",
    "resolve_device",
    "same_content",
    "schema_status",
    "schema_status_at",
    "verify_copy",
]

Dialect = schema.Dialect


class NotFoundError(StoreError, LookupError):
    """A database or account named on the command line does not exist."""


# -- values ---------------------------------------------------------------------


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

    SQLite: a row of the lease table (``pid`` of the holder's process on
    ``host``; ``expires_at`` in Unix seconds, unless renewed). PostgreSQL: an
    advisory lock, held as long as the holder's connection lives
    (``expires_at`` None; ``holder`` the connection's ``application_name``,
    ``pid`` the server process serving it, ``host`` the client address).
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
            return f"{self.holder or 'a PostgreSQL session'} (server pid {self.pid}, {self.host})"
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


# -- SQL access ---------------------------------------------------------------------


def _sql(container: object) -> SqlStore:
    if isinstance(container, SqlStore):
        return container
    raise ConfigError(
        f"this command needs an SQL store (sqlite:// or postgresql://), not "
        f"{type(container).__name__}"
    )


def _portable(container: object) -> PortableContainer:
    if isinstance(container, PortableContainer):
        return container
    raise ConfigError(
        f"{type(container).__name__} cannot export or import whole accounts "
        "(it has no export_account/import_account)"
    )


class _UnreadableRows(CorruptRecordError):
    def __init__(self, device_id: int, detail: str) -> None:
        super().__init__(f"rows of account {device_id} cannot be read: {detail}")
        self.detail = detail


async def _export(container: object, device_id: int) -> AccountDump:
    """``export_account``, with the account named when a row cannot be read."""
    try:
        return await _portable(container).export_account(device_id)
    except CorruptRecordError as err:
        raise _UnreadableRows(device_id, str(err)) from None


def _plain(value: Any) -> Any:
    """A column value as JSON can carry it (damaged rows may hold anything)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


# -- opening ---------------------------------------------------------------------


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def _sqlite_path(url: str) -> Path:
    from ..backends.sqlite import parse_sqlite_url

    return Path(parse_sqlite_url(url)[0])


async def open_url(
    url: str, *, create: bool = False, migrate: bool = False, **options: Any
) -> Container:
    """Open the store at ``url`` for an administrative command.

    Args:
        url: a store URL (see :func:`wastore.open_store`).
        create: create a missing SQLite file (else :class:`NotFoundError`).
        migrate: upgrade an older schema (else :class:`~wastore.SchemaError`
            saying to run ``wastore migrate``).
        options: passed on to :func:`wastore.open_store` (e.g. ``snapshot_dir``).

    Raises:
        ConfigError: ``memory://`` (nothing outlives the process), a bad URL or option.
        NotFoundError: the SQLite file does not exist and ``create`` is false.
    """
    scheme = _scheme(url)
    if scheme == "memory":
        raise ConfigError(
            "a memory:// store lives only inside the process that opened it: "
            "use a sqlite:// or postgresql:// URL"
        )
    if scheme == "sqlite":
        path = _sqlite_path(url)
        if not create and not path.exists():
            raise NotFoundError(f"the SQLite database {str(path)!r} does not exist")
        return await open_store(url, create=create, migrate=migrate, **options)
    if scheme in ("postgresql", "postgres"):
        return await open_store(url, migrate=migrate, **options)
    return await open_store(url, **options)


# -- schema ---------------------------------------------------------------------


def _status(row: tuple[int, int] | None) -> SchemaStatus:
    if row is None:
        return SchemaStatus(None, None, schema.LATEST, tuple(schema.MIGRATIONS))
    return SchemaStatus(row[0], row[1], schema.LATEST, tuple(schema.plan(*row)))


async def schema_status(container: Container) -> SchemaStatus:
    """The schema version of an open SQL store and the migrations it still needs.

    Raises:
        SchemaTooNewError: the database was written by a newer wastore.
    """
    row = await _sql(container).schema_version()
    if row is None:
        raise SchemaError("the wastore tables are gone from the database")
    return _status(row)


async def schema_status_at(url: str) -> SchemaStatus:
    """The schema status of the database at ``url``, read from its version table directly.

    Opens no store: nothing is created, migrated or locked (SQLite is opened
    read-only).

    Raises:
        NotFoundError: the SQLite file does not exist.
        SchemaError: tables of the prefix exist without a version table (not a
            wastore database, or another prefix), or the version row is invalid.
        SchemaTooNewError: the database was written by a newer wastore.
    """
    scheme = _scheme(url)
    options = url_options(url)
    prefix = schema.check_prefix(options.get("prefix", schema.DEFAULT_PREFIX))
    if scheme == "sqlite":
        from ..backends.sqlite import read_schema_version

        path = _sqlite_path(url)
        try:
            row = await read_schema_version(path, prefix)
        except FileNotFoundError:
            raise NotFoundError(f"the SQLite database {str(path)!r} does not exist") from None
    elif scheme in ("postgresql", "postgres"):
        row = await _postgres_version_row(url, prefix)
    else:
        raise ConfigError(
            f"schema status needs a sqlite:// or postgresql:// URL, not {redact_url(url)!r}"
        )
    return _status(row)


async def _postgres_version_row(url: str, prefix: str) -> tuple[int, int] | None:
    try:
        from ..backends.postgres import read_schema_version
    except ImportError as err:
        raise ConfigError(
            "the postgresql:// backend needs asyncpg, which is not installed: "
            "pip install 'wastore[postgres]'"
        ) from err
    return await read_schema_version(url, prefix)


# -- accounts ---------------------------------------------------------------------


async def resolve_device(container: Container, spec: str) -> int:
    """The device id that ``spec`` names: a device id (digits) or a phone-number or LID JID.

    Raises:
        DeviceNotFoundError / NotFoundError: no such account.
        ValidationError: ``spec`` is neither a number nor a JID.
    """
    text = spec.strip()
    if text.isdigit():
        device_id = int(text)
        if device_id < 1 or not await container.backend(device_id).exists():
            raise DeviceNotFoundError(device_id)
        return device_id
    if "@" not in text:
        raise ValidationError(
            f"{spec!r} names no account: give a device id (see `wastore devices`) or a JID "
            "such as 15551234567@s.whatsapp.net or 123456789@lid"
        )
    found = await container.find_device(JID.parse(text))
    if found is None:
        raise NotFoundError(f"no account with the phone number or LID of {text!r} in this store")
    return found


def _lease(row: Sequence[Any]) -> Lease:
    expires = None if row[4] is None else float(row[4])
    return Lease(int(row[0]), str(row[1]), str(row[2]), int(row[3]), expires)


async def leases(container: Container, device_id: int | None = None) -> list[Lease]:
    """The leases (held, and on SQLite expired ones) of every account, or of one."""
    sql = _sql(container)
    (rows,) = await sql.read_snapshot([sql.lease_listing(device_id)])
    return [_lease(r) for r in rows]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


async def overviews(container: Container, device_id: int | None = None) -> list[AccountOverview]:
    """Every account (or one) with its row counts, read in one snapshot."""
    sql = _sql(container)
    p = sql.prefix

    def count(table: str, extra: str = "") -> str:
        return f"(SELECT COUNT(*) FROM {p}{table} x WHERE x.device_id = d.id{extra})"

    where = " WHERE d.id = $1" if device_id is not None else ""
    params: tuple[Any, ...] = (device_id,) if device_id is not None else ()
    main = (
        f"SELECT d.id, d.pn, d.lid, d.push_name, d.saved_at_ms, {count('sessions')}, "
        f"{count('identities')}, {count('sender_keys')}, {count('prekeys')}, "
        f"{count('prekeys', ' AND x.uploaded = TRUE')}, {count('signed_prekeys')} "
        f"FROM {p}device d{where} ORDER BY d.id"
    )
    versions = f"SELECT device_id, name, version FROM {p}app_state_versions"
    if device_id is not None:
        versions += " WHERE device_id = $1"
    devices, version_rows, lease_rows = await sql.read_snapshot(
        [
            (main, params),
            (versions + " ORDER BY device_id, name", params),
            sql.lease_listing(device_id),
        ]
    )
    app_state: dict[int, dict[str, int]] = {}
    for dev, name, version in version_rows:
        app_state.setdefault(int(dev), {})[str(name)] = _int(version)
    held = {lease.device_id: lease for lease in map(_lease, lease_rows)}
    return [
        AccountOverview(
            device_id=int(r[0]),
            pn=_opt_str(r[1]),
            lid=_opt_str(r[2]),
            push_name=str(r[3]),
            saved_at_ms=_int(r[4]),
            sessions=int(r[5]),
            identities=int(r[6]),
            sender_keys=int(r[7]),
            prekeys=int(r[8]),
            prekeys_uploaded=int(r[9]),
            signed_prekeys=int(r[10]),
            app_state=app_state.get(int(r[0]), {}),
            lease=held.get(int(r[0])),
        )
        for r in devices
    ]


# Device columns shown as they are; opaque blobs are shown as their size only.
_PLAIN_FIELDS: Final = (
    "pn",
    "lid",
    "push_name",
    "registration_id",
    "signed_pre_key_id",
    "props_hash",
    "app_version_last_fetched_ms",
    "next_pre_key_id",
    "first_unupload_pre_key_id",
    "server_has_prekeys",
    "login_counter",
    "lid_migrated",
    "read_receipts_disabled",
    "last_signed_pre_key_rotation_ms",
    "saved_at_ms",
)
_SIZED_FIELDS: Final = ("account", "edge_routing_info", "server_cert_chain", "nct_salt")
_KEYS: Final = ("identity_key", "noise_key", "signed_pre_key")


async def account_dump(container: Container, device_id: int) -> AccountDump:
    """Every row of one account (``wastore export``), from one consistent snapshot.

    Raises:
        ConfigError: the container cannot export accounts.
        DeviceNotFoundError: no such account.
    """
    return await _export(container, device_id)


async def account_detail(container: Container, device_id: int) -> AccountDetail:
    """One account in detail, from one consistent export (private keys are not shown).

    Raises:
        DeviceNotFoundError: no such account.
    """
    dump = await _export(container, device_id)
    row = dump.device
    fields: dict[str, Any] = {name: _plain(row.get(name)) for name in _PLAIN_FIELDS}
    fields["app_version"] = ".".join(
        str(_plain(row.get(f"app_version_{part}"))) for part in ("primary", "secondary", "tertiary")
    )
    for name in _SIZED_FIELDS:
        value = row.get(name)
        fields[f"{name}_bytes"] = len(value) if isinstance(value, bytes) else None
    keys = {}
    for name in _KEYS:
        public = row.get(f"{name}_public")
        keys[name] = KeyInfo(public if isinstance(public, bytes) else None)
    tables = dump.tables
    uploaded = sum(1 for r in tables.get("prekeys", []) if r.get("uploaded"))
    spk_ids = sorted(_int(r.get("id")) for r in tables.get("signed_prekeys", []))
    app_state = sorted(
        (
            str(r.get("name")),
            _int(r.get("version")),
            fingerprint(r["hash"]) if isinstance(r.get("hash"), bytes) else "?",
        )
        for r in tables.get("app_state_versions", [])
    )
    sync_keys = sorted(
        (
            (
                r["key_id"].hex() if isinstance(r.get("key_id"), bytes) else "?",
                _int(r.get("timestamp")),
            )
            for r in tables.get("sync_keys", [])
        ),
        key=lambda k: (-k[1], k[0]),
    )
    try:
        lease_rows = await leases(container, device_id)
    except ConfigError:  # not an SQL store: no lease table to read
        lease_rows = []
    return AccountDetail(
        device_id=device_id,
        fields=fields,
        keys=keys,
        rows=dump.count(),
        prekeys_uploaded=uploaded,
        signed_prekey_ids=spk_ids,
        app_state=app_state,
        sync_keys=sync_keys,
        lease=lease_rows[0] if lease_rows else None,
        problems=portable.row_problems(tables),
    )


# -- checks ---------------------------------------------------------------------


async def integrity_check(container: Container) -> list[str] | None:
    """SQLite's ``PRAGMA integrity_check`` (``["ok"]`` when sound); None on PostgreSQL,
    whose storage has no such check (its checksums are verified on every read)."""
    sql = _sql(container)
    if sql.dialect != "sqlite":
        return None
    (rows,) = await sql.read_snapshot([("PRAGMA integrity_check", ())])
    return [str(r[0]) for r in rows]


async def orphan_rows(container: Container) -> list[OrphanRows]:
    """Rows whose ``device_id`` has no device row (impossible while foreign keys are
    enforced; found when they were not, or the database was edited by hand)."""
    sql = _sql(container)
    p = sql.prefix
    union = " UNION ALL ".join(
        f"SELECT '{t}', t.device_id, COUNT(*) FROM {p}{t} t WHERE NOT EXISTS "
        f"(SELECT 1 FROM {p}device d WHERE d.id = t.device_id) GROUP BY t.device_id"
        for t in schema.ACCOUNT_TABLES
    )
    (rows,) = await sql.read_snapshot([(union, ())])
    return sorted(
        (OrphanRows(str(t), int(d), int(n)) for t, d, n in rows),
        key=lambda o: (o.table, o.device_id),
    )


async def _account_problems(container: Container, device_id: int) -> list[str] | None:
    """What is wrong with one account's rows; None if it was deleted meanwhile."""
    try:
        dump = await _export(container, device_id)
    except DeviceNotFoundError:
        return None
    except _UnreadableRows as err:
        return [f"rows cannot be read: {err.detail}"]
    except CorruptRecordError as err:
        return [str(err)]
    return portable.row_problems(dump.tables)


async def check(
    container: Container, on_account: Callable[[int, int], None] | None = None
) -> CheckReport:
    """Check an open SQL store: integrity, schema, every row of every account
    (:func:`wastore.portable.row_problems`), orphan rows; list the leases.

    ``on_account(done, total)`` is called after each account (for progress bars).
    """
    report = CheckReport(
        integrity=await integrity_check(container), schema=await schema_status(container)
    )
    ids = await container.devices()
    _portable(container)  # a container that cannot export fails here, not per account
    for n, device_id in enumerate(ids, start=1):
        problems = await _account_problems(container, device_id)
        if problems is not None:
            report.accounts += 1
            if problems:
                report.account_problems[device_id] = problems
        if on_account is not None:
            on_account(n, len(ids))
    report.orphans = await orphan_rows(container)
    report.leases = await leases(container)
    return report


# -- moving accounts ---------------------------------------------------------------


def same_content(a: AccountDump, b: AccountDump) -> bool:
    """Whether two dumps hold the same rows (their documents are byte for byte equal)."""
    return portable.encode(a) == portable.encode(b)


PutAction = Literal["created", "replaced", "unchanged", "conflict"]


@dataclass(frozen=True)
class PutResult:
    """What :func:`put_account` did.

    ``device_id`` is the account's id in the target store (the existing one for
    ``unchanged`` and ``conflict``, the new one otherwise). ``existing`` are the
    ids that matched before (same phone number, LID or identity key);
    ``identical`` tells whether the one match held exactly the same rows.
    """

    action: PutAction
    device_id: int | None
    existing: tuple[int, ...]
    identical: bool


async def _matches(container: Container, device: portable.Row) -> list[int]:
    """Accounts that are the same as ``device``: same phone-number user, LID user or
    identity key (an account not paired yet has only its keys to be known by)."""
    sql = _sql(container)
    users = [u for u in (device.get("pn_user"), device.get("lid_user")) if u]
    conds = ["identity_key_public = $1"]
    params: list[Any] = [device.get("identity_key_public")]
    for user in users:
        params.append(user)
        conds.append(f"pn_user = ${len(params)} OR lid_user = ${len(params)}")
    q = f"SELECT id FROM {sql.prefix}device WHERE {' OR '.join(conds)} ORDER BY id"
    (rows,) = await sql.read_snapshot([(q, params)])
    return [int(r[0]) for r in rows]


async def put_account(
    container: Container,
    dump: AccountDump,
    *,
    replace: bool = False,
    skip_identical: bool = False,
) -> PutResult:
    """Import ``dump`` into ``container`` unless that account is already there.

    The account is "already there" when a device row has the same phone-number
    user, LID user or identity key. Then, with ``skip_identical`` and exactly
    the same rows, nothing is written (``unchanged``); otherwise it is replaced
    when ``replace`` is true (``replaced``; the import and the removal of the
    pn/LID matches are one transaction; an account matched only by its identity
    key is removed right after the import commits, so a crash between the two
    leaves a duplicate, never a loss) and left alone when not (``conflict``).

    Raises:
        ValidationError: the dump does not check out (nothing written).
        AccountInUseError: an account to replace is served by a live process.
    """
    target = _portable(container)
    portable.check(dump)
    existing = await _matches(container, dump.device)
    identical = False
    if len(existing) == 1:
        try:
            identical = same_content(await _export(container, existing[0]), dump)
        except DeviceNotFoundError:
            existing = []
        except CorruptRecordError:
            identical = False
    if existing and skip_identical and identical:
        return PutResult("unchanged", existing[0], tuple(existing), True)
    if existing and not replace:
        return PutResult("conflict", existing[0], tuple(existing), identical)
    now = time.time()
    for device_id in existing:
        for lease in await leases(container, device_id):
            if lease.active(now):
                raise AccountInUseError(
                    device_id,
                    lease.describe(),
                    "the account cannot be replaced while it is served",
                )
    new_id = await target.import_account(dump, replace=bool(existing))
    for device_id in existing:
        if await container.backend(device_id).exists():
            await container.delete_device(device_id)
    return PutResult("replaced" if existing else "created", new_id, tuple(existing), identical)


CopyAction = Literal["created", "replaced", "unchanged", "conflict", "invalid", "failed"]


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_account` did with one account (``failed``: set by the caller
    when the account could not be copied, ``detail`` saying why)."""

    source_id: int
    action: CopyAction
    target_id: int | None
    pn: str | None
    lid: str | None
    detail: str = ""
    verified: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "action": self.action,
            "target_id": self.target_id,
            "pn": self.pn,
            "lid": self.lid,
            "detail": self.detail,
            "verified": self.verified,
        }


async def copy_account(
    source: Container, target: Container, device_id: int, *, replace: bool = False
) -> CopyResult:
    """Copy one account from ``source`` to ``target`` (idempotent: an identical
    account already in the target is left as it is; a different one is replaced
    only with ``replace``)."""
    try:
        dump = await _export(source, device_id)
    except CorruptRecordError as err:
        return CopyResult(device_id, "invalid", None, None, None, str(err))
    pn, lid = _opt_str(dump.device.get("pn")), _opt_str(dump.device.get("lid"))
    problems = portable.row_problems(dump.tables)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return CopyResult(device_id, "invalid", None, pn, lid, f"{problems[0]}{more}")
    result = await put_account(target, dump, replace=replace, skip_identical=True)
    detail = ""
    if result.action == "conflict":
        ids = ", ".join(map(str, result.existing))
        detail = f"a different copy is in the target as device id {ids} (use --replace)"
    return CopyResult(device_id, result.action, result.device_id, pn, lid, detail)


async def verify_copy(source: Container, source_id: int, target: Container, target_id: int) -> bool:
    """Whether the account holds exactly the same rows on both sides (export both, compare)."""
    try:
        a = await _export(source, source_id)
        b = await _export(target, target_id)
    except (DeviceNotFoundError, CorruptRecordError):
        return False
    return same_content(a, b)
