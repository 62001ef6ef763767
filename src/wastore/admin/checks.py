"""The integrity report (``wastore check``)."""

from __future__ import annotations

from collections.abc import Callable

from .. import portable
from ..backends.sql import dump, schema
from ..backends.sql.store import SqlStore
from ..contract import Container
from ..errors import CorruptRecordError, DeviceNotFoundError
from .access import UnreadableRows, export, portable_container, sql_store
from .inspect import leases, schema_status
from .reports import CheckReport, OrphanRows


async def integrity_check(container: Container) -> list[str] | None:
    """SQLite's ``PRAGMA integrity_check`` (``["ok"]`` when sound); None on PostgreSQL,
    whose storage has no such check (its checksums are verified on every read)."""
    sql = sql_store(container)
    if sql.dialect != "sqlite":
        return None
    (rows,) = await sql.read_snapshot([("PRAGMA integrity_check", ())])
    return [str(r[0]) for r in rows]


async def orphan_rows(container: Container) -> list[OrphanRows]:
    """Rows whose ``device_id`` has no device row (impossible while foreign keys are
    enforced; found when they were not, or the database was edited by hand)."""
    sql = sql_store(container)
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
    """What is wrong with one account's rows; None if it was deleted meanwhile.

    On an SQL store the rows are read with their checksums, so that every row that
    was changed behind the store's back is named (a read stops at the first)."""
    if not isinstance(container, SqlStore):
        try:
            account = await export(container, device_id)
        except DeviceNotFoundError:
            return None
        except UnreadableRows as err:
            return [f"rows cannot be read: {err.detail}"]
        except CorruptRecordError as err:
            return [str(err)]
        return portable.row_problems(account.tables)
    tables = dump.EXPORTED_TABLES
    try:
        results = await container.read_snapshot(
            [(dump.select_sql(t, "postgres", container.prefix), (device_id,)) for t in tables]
        )
    except CorruptRecordError as err:  # the database itself cannot be read
        return [str(err)]
    if not results[0]:
        return None
    mismatched: list[str] = []
    rows = {}
    for table, found in zip(tables, results, strict=True):
        try:
            rows[table] = dump.to_rows(table, found, device_id, mismatched)
        except CorruptRecordError as err:
            mismatched.append(str(err))
            rows[table] = []
    return mismatched + portable.row_problems(rows)


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
    portable_container(container)  # a container that cannot export fails here, not per account
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
