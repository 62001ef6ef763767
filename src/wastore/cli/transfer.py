"""Moving accounts: export, import, copy.

``export`` and ``import`` speak the portable file of :mod:`wastore.portable`:
:func:`read_account` turns an input file into an :class:`~wastore.portable.AccountDump`
and :func:`write_account` writes one, so that another file format is one more
reader or writer there. ``copy`` moves accounts between two stores directly.
The words a command prints for what it did are the ``action`` values of its
``--json`` output (``created``, ``replaced``, ``unchanged``, ...), in the
table as in JSON.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from .. import admin, portable
from ..contract import Container
from ..errors import AccountInUseError, DeviceNotFoundError, ValidationError
from ._click import Argument, Command, debug_option, device_argument, json_option, url_argument
from ._common import (
    CliError,
    Exit,
    cell,
    clean,
    emit_json,
    run,
    shown,
    store_url,
    warn,
    write_private,
)
from ._output import Output, Progress, Table

PRIVATE_FILE_NOTE = (
    "{what} holds the account's private keys and Signal sessions: keep it as secret as "
    "the database (it is readable by you only, mode 0600)"
)


def _text(value: object) -> str | None:
    """A JID column for JSON (a damaged row may hold anything)."""
    return None if value is None else value if isinstance(value, str) else repr(value)


def who(device: dict[str, Any]) -> str:
    """The account's phone and LID JIDs for a message, or ``not paired``."""
    pn, lid = device.get("pn"), device.get("lid")
    if not pn and not lid:
        return "not paired"
    return ", ".join(clean(x) for x in (pn, lid) if x)


# -- account files ------------------------------------------------------------------


def read_account(file: Path) -> portable.AccountDump:
    """The account in ``file`` (the portable format), checked completely.

    Raises:
        CliError: the file is not a valid account file (exit 4, nothing imported).
        OSError: the file cannot be read.
    """
    data = file.read_bytes()
    try:
        return portable.decode(data)
    except ValidationError as err:
        raise CliError(Exit.REFUSED, f"{file}: {err}; nothing was imported") from err


def write_account(file: Path, dump: portable.AccountDump, *, force: bool) -> int:
    """Write ``dump`` to ``file`` in the portable format (mode 0600, atomically).

    Returns:
        The size of the file in bytes.
    """
    data = portable.encode(dump)
    write_private(file, data, force=force)
    return len(data)


# -- export ---------------------------------------------------------------------------


@click.command(cls=Command)
@url_argument()
@device_argument()
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="The file to write (mode 0600, written atomically).",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@json_option
@debug_option
def export(url: str, device: str, output: Path, force: bool, json_mode: bool, debug: bool) -> None:
    """Export one account to a portable JSON file (every row of every table).

    The file holds private keys: it is written with mode 0600. Exits with 1 (the
    file is written all the same) when rows of the account cannot be decoded: such
    a file is refused by `wastore import`.
    """
    url = store_url(url)

    async def body() -> int:
        async with await admin.open_url(url) as container:
            device_id = await admin.resolve_device(container, device)
            dump = await admin.account_dump(container, device_id)
        size = write_account(output, dump, force=force)
        warn(PRIVATE_FILE_NOTE.format(what=str(output)))
        problems = portable.row_problems(dump.tables)
        for problem in problems:
            warn(f"account {device_id}: {problem} (the file will not import until it is fixed)")
        counts = dump.count()
        if json_mode:
            emit_json(
                {
                    "device_id": device_id,
                    "pn": _text(dump.device.get("pn")),
                    "lid": _text(dump.device.get("lid")),
                    "file": str(output),
                    "bytes": size,
                    "rows": counts,
                    "problems": problems,
                }
            )
        else:
            Output().line(
                f"exported account {device_id} ({who(dump.device)}) to {output}: "
                f"{sum(counts.values())} rows, {size} bytes"
            )
        return Exit.PROBLEMS if problems else Exit.OK

    run(body, debug=debug)


# -- import ---------------------------------------------------------------------------


@click.command("import", cls=Command)
@url_argument()
@click.argument(
    "file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    cls=Argument,
    doc="An account file written by `wastore export`.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the account if the store already has it (same phone/LID).",
)
@json_option
@debug_option
def import_(url: str, file: Path, replace: bool, json_mode: bool, debug: bool) -> None:
    """Import an account file into a store (created if it is a new SQLite file).

    The file is checked completely first (checksum, format version, every key and
    row); the import is one transaction. An account that is already there (same
    phone number, LID or identity key) is refused unless --replace.
    """
    url = store_url(url)

    async def body() -> int:
        dump = read_account(file)
        async with await admin.open_url(url, create=True) as container:
            result = await admin.put_account(container, dump, replace=replace)
        if result.action == "conflict":
            ids = ", ".join(map(str, result.existing))
            same = " with identical content" if result.identical else ""
            raise CliError(
                Exit.REFUSED,
                f"the account ({who(dump.device)}) is already in {shown(url)} as device id "
                f"{ids}{same}: nothing was imported; use --replace to overwrite it",
            )
        if json_mode:
            emit_json(
                {
                    "device_id": result.device_id,
                    "action": result.action,
                    "replaced": list(result.existing),
                    "pn": dump.device.get("pn"),
                    "lid": dump.device.get("lid"),
                    "rows": dump.count(),
                }
            )
        else:
            replaced = (
                f", replacing device id {', '.join(map(str, result.existing))}"
                if result.existing
                else ""
            )
            Output().line(
                f"imported account ({who(dump.device)}) into {shown(url)} as device id "
                f"{result.device_id}{replaced}: {sum(dump.count().values())} rows"
            )
        return Exit.OK

    run(body, debug=debug)


# -- copy -----------------------------------------------------------------------------


@click.command(cls=Command)
@url_argument("source", "SRC_URL", "The store to copy from.")
@url_argument("target", "DST_URL", "The store to copy to (a new SQLite file is made).")
@click.option(
    "--device",
    "-d",
    "device",
    multiple=True,
    metavar="DEVICE",
    help="Copy this account only (device id in SRC, or JID); repeat for more. "
    "Default: every account.",
)
@click.option("--replace", is_flag=True, help="Replace accounts that DST holds with other content.")
@click.option(
    "--verify", is_flag=True, help="Afterwards, compare every row of every account copied."
)
@json_option
@debug_option
def copy(
    source: str,
    target: str,
    device: tuple[str, ...],
    replace: bool,
    verify: bool,
    json_mode: bool,
    debug: bool,
) -> None:
    """Copy accounts between two stores (SQLite -> PostgreSQL and back), one by one.

    Each account is one transaction. Running it again is safe: an account already
    in DST with identical content is left as it is (unchanged); one with other
    content is reported (conflict, exit 1) and replaced only with --replace. Copy
    stopped accounts: an account that a process is serving changes while it is
    copied.
    """
    src_url, dst_url = store_url(source), store_url(target)

    async def body() -> int:
        async with await admin.open_url(src_url) as src:
            ids = (
                [await admin.resolve_device(src, d) for d in device]
                if device
                else await src.devices()
            )
            ids = list(dict.fromkeys(ids))
            async with await admin.open_url(dst_url, create=True) as dst:
                results = await _copy_all(
                    src, dst, ids, replace=replace, verify=verify, json_mode=json_mode
                )
        failed = [r for r in results if r.action in ("conflict", "invalid", "failed")]
        unverified = [r for r in results if r.verified is False]
        if json_mode:
            emit_json(
                {
                    "source": shown(src_url),
                    "target": shown(dst_url),
                    "accounts": [r.as_dict() for r in results],
                    "ok": not failed and not unverified,
                }
            )
        else:
            _print_copy(results, verify)
        return Exit.PROBLEMS if failed or unverified else Exit.OK

    run(body, debug=debug)


async def _copy_all(
    src: Container,
    dst: Container,
    ids: list[int],
    *,
    replace: bool,
    verify: bool,
    json_mode: bool,
) -> list[admin.CopyResult]:
    results: list[admin.CopyResult] = []
    with Progress("copying", total=len(ids), hidden=json_mode) as bar:
        for device_id in ids:
            bar.describe(f"account {device_id}")
            try:
                result = await admin.copy_account(src, dst, device_id, replace=replace)
            except (AccountInUseError, ValidationError, DeviceNotFoundError) as err:
                # this account only (in use, refused, deleted meanwhile): go on with the rest
                result = admin.CopyResult(device_id, "failed", None, None, None, str(err))
            results.append(result)
            bar.advance()
    if verify:
        with Progress("verifying", total=len(results), hidden=json_mode) as bar:
            for i, r in enumerate(results):
                if r.target_id is not None and r.action in ("created", "replaced", "unchanged"):
                    same = await admin.verify_copy(src, r.source_id, dst, r.target_id)
                    results[i] = dataclasses.replace(r, verified=same)
                bar.advance()
    return results


VERIFIED_TEXT = {True: "identical", False: "DIFFERENT", None: "-"}


def _print_copy(results: list[admin.CopyResult], verify: bool) -> None:
    out = Output()
    if not results:
        out.line("no accounts to copy")
        return
    table = Table()
    for name in ("source id", "account", "result", "target id", *(["verified"] if verify else [])):
        table.add_column(name)
    for r in results:
        unread = r.action in ("failed", "invalid") and not (r.pn or r.lid)
        account = "?" if unread else who({"pn": r.pn, "lid": r.lid})
        row = [
            str(r.source_id),
            cell(account),
            cell(r.action + (f": {r.detail}" if r.detail else "")),
            cell(r.target_id),
        ]
        if verify:
            row.append(VERIFIED_TEXT[r.verified])
        table.add_row(*row)
    out.table(table)
    tally: dict[str, int] = {}
    for r in results:
        tally[r.action] = tally.get(r.action, 0) + 1
    out.line(", ".join(f"{n} {action}" for action, n in tally.items()))
