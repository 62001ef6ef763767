"""Fenced statements: an account's write that happens only while its lease epoch holds.

A write of a lease holder must not land once another holder took the account
over (see :mod:`wastore.backends.sql.leases`). A single-statement write
carries the check itself: :func:`fenced` rewrites it so that it touches rows
only if ``EXISTS (lease row of the account with my epoch)``, evaluated in the
same statement — one more indexed read, no extra round trip:

- ``INSERT ... VALUES (...) [ON CONFLICT ...]`` becomes ``INSERT ... SELECT ...
  WHERE <fence> [ON CONFLICT ...]`` (SQLite needs the ``WHERE`` to parse an
  upsert of a ``SELECT`` anyway);
- ``UPDATE``/``DELETE ... WHERE <cond>`` becomes ``... WHERE (<cond>) AND <fence>``.

On PostgreSQL the fence's read takes ``FOR SHARE`` on the lease row: a takeover
(which updates that row) waits for the write's commit, and a write waiting
behind a takeover re-reads the row and finds the new epoch. On SQLite the
statement is its own write transaction, which no other writer interleaves.

A fenced statement that touched no row either did nothing or was fenced off;
the caller then reads the epoch once to tell (:meth:`LeaseKeeper.verify`).
Multi-statement writes (batches, transactions) check the epoch once at their
start instead (:meth:`LeaseKeeper.check_sql`).
"""

from __future__ import annotations

import re
from typing import Final

from .queries import Queries

_PARAM: Final = re.compile(r"[$?](\d+)")


def _matching(sql: str, start: int) -> int:
    """The index of the parenthesis closing the one at ``sql[start]``."""
    depth = 0
    for i in range(start, len(sql)):
        c = sql[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced parentheses in {sql!r}")


def _top_level(sql: str, word: str) -> int:
    """The position of the last ``word`` (e.g. `` WHERE ``) outside parentheses, or -1."""
    depth = 0
    found = -1
    i = 0
    while i < len(sql):
        c = sql[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and sql.startswith(word, i):
            found = i
        i += 1
    return found


def fence_clause(q: Queries, param: int) -> str:
    """``EXISTS`` (the account's lease row still has the epoch in parameter ``param``)."""
    mark = "?" if q.dialect == "sqlite" else "$"
    lock = "" if q.dialect == "sqlite" else " FOR SHARE"
    return (
        f"EXISTS (SELECT 1 FROM {q.prefix}leases WHERE device_id = {mark}1 "
        f"AND epoch = {mark}{param}{lock})"
    )


def fenced(q: Queries, sql: str) -> str:
    """``sql`` (a one-account write whose ``$1`` is the device id) made conditional on
    the lease epoch, passed as one more parameter after its own.

    Raises:
        ValueError: a statement of a shape this rewriter does not know.
    """
    param = max((int(n) for n in _PARAM.findall(sql)), default=0) + 1
    fence = fence_clause(q, param)
    head = sql.lstrip()[:7].upper()
    if head.startswith("INSERT"):
        at = sql.find(" VALUES (")
        if at < 0:
            raise ValueError(f"cannot fence an INSERT without VALUES: {sql!r}")
        opening = at + len(" VALUES ")
        closing = _matching(sql, opening)
        values = sql[opening + 1 : closing]
        return f"{sql[:at]} SELECT {values} WHERE {fence}{sql[closing + 1 :]}"
    if head.startswith(("UPDATE", "DELETE")):
        where = _top_level(sql, " WHERE ")
        if where < 0:
            raise ValueError(f"cannot fence a statement without WHERE: {sql!r}")
        start = where + len(" WHERE ")
        ret = _top_level(sql, " RETURNING ")
        end = ret if ret > start else len(sql)
        return f"{sql[:start]}({sql[start:end]}) AND {fence}{sql[end:]}"
    raise ValueError(f"cannot fence {sql!r}")


# Writes that are not an account lease holder's: creating or deleting accounts, and
# the lease statements themselves.
_UNFENCED: Final = frozenset(
    {
        "insert_device",
        "insert_device_if_missing",
        "insert_device_auto",
        "delete_device",
    }
)


def fenced_statements(q: Queries) -> dict[str, str]:
    """Every one-account write statement of ``q`` -> its fenced form."""
    out: dict[str, str] = {}
    for name in q.statement_names():
        sql: str = getattr(q, name)
        if name in _UNFENCED or not sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            continue
        out[sql] = fenced(q, sql)
    return out
