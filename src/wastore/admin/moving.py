"""Moving whole accounts between stores (``wastore import`` / ``copy``), idempotently.

An account is the same as one in the target store when it has the same identity
key; a target account that has its phone number or LID but another identity key
is a different account (the phone was linked again) and is never replaced.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Literal

from .. import portable
from ..backends.sql.dump import Matches, account_users, match_params, match_sql, matches
from ..backends.sql.dump import another_account as another_account
from ..contract import Container
from ..errors import AccountInUseError, CorruptRecordError, DeviceNotFoundError
from ..values import AccountDump
from .access import export, opt_str, portable_container, sql_store
from .inspect import leases


def same_content(a: AccountDump, b: AccountDump) -> bool:
    """Whether two dumps hold the same rows (their documents are byte for byte equal)."""
    return portable.encode(a) == portable.encode(b)


PutAction = Literal["created", "replaced", "unchanged", "conflict", "taken"]


@dataclass(frozen=True)
class PutResult:
    """What :func:`put_account` did (or, from :func:`plan_put`, would do).

    ``device_id`` is the account's id in the target store: the new one for
    ``created``; for ``replaced``, ``unchanged`` and ``conflict`` the id the
    account has there (a replaced account keeps it); None for ``taken``.
    ``existing`` are the ids that matched before: the same account (same
    identity key), or for ``taken`` the other accounts (another identity key)
    that have its phone number or LID, which nothing replaces. ``identical``
    tells whether the one match held exactly the same rows.
    """

    action: PutAction
    device_id: int | None
    existing: tuple[int, ...]
    identical: bool
    others: tuple[tuple[int, str | None, str | None], ...] = ()


async def _matches(container: Container, dump: AccountDump) -> Matches:
    """The accounts of ``container`` that ``dump`` meets: the same account (same
    identity key), and other accounts with its phone-number or LID user."""
    sql = sql_store(container)
    find = match_sql(sql.prefix, len(account_users(dump)))
    (rows,) = await sql.read_snapshot([(find, match_params(dump))])
    return matches(rows, dump)


async def plan_put(
    container: Container,
    dump: AccountDump,
    *,
    replace: bool = False,
    skip_identical: bool = False,
) -> PutResult:
    """What :func:`put_account` would do with ``dump``, writing nothing.

    Raises:
        ValidationError: the dump does not check out.
    """
    portable.check(dump)
    found = await _matches(container, dump)
    if found.others:
        ids = tuple(i for i, _, _ in found.others)
        return PutResult("taken", None, ids, False, found.others)
    existing = found.same
    identical = False
    if len(existing) == 1:
        try:
            identical = same_content(await export(container, existing[0]), dump)
        except DeviceNotFoundError:
            existing = ()
        except CorruptRecordError:
            identical = False
    if existing and skip_identical and identical:
        return PutResult("unchanged", existing[0], existing, True)
    if existing and not replace:
        return PutResult("conflict", existing[0], existing, identical)
    if existing:
        return PutResult("replaced", existing[0], existing, identical)
    return PutResult("created", None, (), False)


async def put_account(
    container: Container,
    dump: AccountDump,
    *,
    replace: bool = False,
    skip_identical: bool = False,
) -> PutResult:
    """Import ``dump`` into ``container`` unless that account is already there.

    The account is "already there" when a device row has the same identity key
    (its phone number and LID may have changed). Then, with ``skip_identical``
    and exactly the same rows, nothing is written (``unchanged``); otherwise it
    is replaced in place when ``replace`` is true (``replaced``: the same device
    id, its old rows deleted and the new ones inserted in one transaction) and
    left alone when not (``conflict``). A device row with the dump's phone-number
    or LID user but another identity key is a different account (the phone was
    linked again): nothing is written, whatever ``replace`` says (``taken``); an
    import never deletes an account that it is not.

    Raises:
        ValidationError: the dump does not check out (nothing written).
        AccountInUseError: the account to replace is served by a live process.
    """
    target = portable_container(container)
    plan = await plan_put(container, dump, replace=replace, skip_identical=skip_identical)
    if plan.action in ("unchanged", "conflict", "taken"):
        return plan
    now = time.time()
    for device_id in plan.existing:
        for lease in await leases(container, device_id):
            if lease.active(now):
                raise AccountInUseError(
                    device_id,
                    lease.describe(),
                    "the account cannot be replaced while it is served",
                )
    # The store checks again in the import's own transaction (the account, or another
    # one with its number, may have come meanwhile): it refuses rather than guess.
    new_id = await target.import_account(dump, replace=plan.action == "replaced")
    return dataclasses.replace(plan, device_id=new_id)


CopyAction = Literal["created", "replaced", "unchanged", "conflict", "taken", "invalid", "failed"]


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
    elif result.action == "taken":
        detail = f"in the target, {another_account(result.others, option='--replace')}"
    return CopyResult(device_id, result.action, result.device_id, pn, lid, detail)


async def verify_copy(source: Container, source_id: int, target: Container, target_id: int) -> bool:
    """Whether the account holds exactly the same rows on both sides (export both, compare)."""
    try:
        a = await export(source, source_id)
        b = await export(target, target_id)
    except (DeviceNotFoundError, CorruptRecordError):
        return False
    return same_content(a, b)
