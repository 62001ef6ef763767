"""Opening a store for a command, its schema status, and what its accounts hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from .. import portable
from ..backends.sql import schema
from ..contract import Container
from ..errors import ConfigError, DeviceNotFoundError, SchemaError, ValidationError
from ..jid import JID
from ..registry import open_store, redact_url, url_options
from ..values import AccountDump
from .access import as_int, export, lease_from_row, opt_str, plain, sql_store
from .reports import (
    AccountDetail,
    AccountOverview,
    KeyInfo,
    Lease,
    NotFoundError,
    SchemaStatus,
    fingerprint,
)


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
    row = await sql_store(container).schema_version()
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


async def leases(container: Container, device_id: int | None = None) -> list[Lease]:
    """The leases (held, and on SQLite expired ones) of every account, or of one."""
    sql = sql_store(container)
    (rows,) = await sql.read_snapshot([sql.lease_listing(device_id)])
    return [lease_from_row(r) for r in rows]


async def overviews(container: Container, device_id: int | None = None) -> list[AccountOverview]:
    """Every account (or one) with its row counts, read in one snapshot."""
    sql = sql_store(container)
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
        app_state.setdefault(int(dev), {})[str(name)] = as_int(version)
    held = {lease.device_id: lease for lease in map(lease_from_row, lease_rows)}
    return [
        AccountOverview(
            device_id=int(r[0]),
            pn=opt_str(r[1]),
            lid=opt_str(r[2]),
            push_name=str(r[3]),
            saved_at_ms=as_int(r[4]),
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
    return await export(container, device_id)


async def account_detail(container: Container, device_id: int) -> AccountDetail:
    """One account in detail, from one consistent export (private keys are not shown).

    Raises:
        DeviceNotFoundError: no such account.
    """
    dump = await export(container, device_id)
    row = dump.device
    fields: dict[str, Any] = {name: plain(row.get(name)) for name in _PLAIN_FIELDS}
    fields["app_version"] = ".".join(
        str(plain(row.get(f"app_version_{part}"))) for part in ("primary", "secondary", "tertiary")
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
    spk_ids = sorted(as_int(r.get("id")) for r in tables.get("signed_prekeys", []))
    app_state = sorted(
        (
            str(r.get("name")),
            as_int(r.get("version")),
            fingerprint(r["hash"]) if isinstance(r.get("hash"), bytes) else "?",
        )
        for r in tables.get("app_state_versions", [])
    )
    sync_keys = sorted(
        (
            (
                r["key_id"].hex() if isinstance(r.get("key_id"), bytes) else "?",
                as_int(r.get("timestamp")),
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
