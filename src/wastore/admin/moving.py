"""Moving whole accounts between stores (``wastore import`` / ``copy``), idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from .. import portable
from ..contract import Container
from ..errors import AccountInUseError, CorruptRecordError, DeviceNotFoundError
from ..values import AccountDump
from .access import export, opt_str, portable_container, sql_store
from .inspect import leases


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
    sql = sql_store(container)
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
    target = portable_container(container)
    portable.check(dump)
    existing = await _matches(container, dump.device)
    identical = False
    if len(existing) == 1:
        try:
            identical = same_content(await export(container, existing[0]), dump)
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
        dump = await export(source, device_id)
    except CorruptRecordError as err:
        return CopyResult(device_id, "invalid", None, None, None, str(err))
    pn, lid = opt_str(dump.device.get("pn")), opt_str(dump.device.get("lid"))
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
        a = await export(source, source_id)
        b = await export(target, target_id)
    except (DeviceNotFoundError, CorruptRecordError):
        return False
    return same_content(a, b)
