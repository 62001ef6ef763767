"""Moving accounts: export, import, copy.

``export`` and ``import`` speak the portable file of :mod:`wastore.portable`:
:func:`read_accounts` turns an input file into an :class:`~wastore.portable.AccountDump`
and :func:`write_account` writes one, so that another file format is one more
reader or writer there. ``copy`` moves accounts between two stores directly.
The words a command prints for what it did are the ``action`` values of its
``--json`` output (``created``, ``replaced``, ``unchanged``, ...), in the
table as in JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .. import admin, formats, portable
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


def read_accounts(source: Path | str, fmt: str, jid: str | None) -> list[portable.AccountDump]:
    """The accounts in ``source`` (a portable file, or another store's files with
    ``fmt``), each checked completely.

    Raises:
        CliError: the source cannot be read or is not valid (exit 4, nothing imported);
            it does not exist (exit 5).
    """
    if isinstance(source, Path) and not source.exists():
        raise CliError(Exit.NOT_FOUND, f"{source}: no such file or folder")
    shown_source = source if isinstance(source, Path) else shown(source)
    try:
        return formats.read(source, fmt, jid=jid)
    except ValidationError as err:
        text = str(err)
        where = "" if text.startswith(str(shown_source)) else f"{shown_source}: "
        raise CliError(Exit.REFUSED, f"{where}{text}; nothing was imported") from err


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
@click.option(
    "--to",
    "to",
    type=click.Choice(["wastore", *formats.WRITABLE]),
    default="wastore",
    show_default=True,
    help="What to write: the portable file, or a folder another client loads "
    "(baileys: a useMultiFileAuthState folder; -o names the folder, new or empty).",
)
@json_option
@debug_option
def export(
    url: str, device: str, output: Path, force: bool, to: str, json_mode: bool, debug: bool
) -> None:
    """Export one account to a portable JSON file (every row of every table), or to
    another client's format (--to baileys).

    The file holds private keys: it is written with mode 0600. Exits with 1 (the
    file is written all the same) when rows of the account cannot be decoded: such
    a file is refused by `wastore import`.
    """
    url = store_url(url)

    async def body() -> int:
        async with await admin.open_url(url) as container:
            device_id = await admin.resolve_device(container, device)
            dump = await admin.account_dump(container, device_id)
        if to != "wastore":
            return _export_folder(dump, device_id, to, output, json_mode)
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


def _export_folder(
    dump: portable.AccountDump, device_id: int, fmt: str, folder: Path, json_mode: bool
) -> int:
    """``export --to FORMAT``: write the account as another client's folder."""
    try:
        formats.writer(fmt)(dump, folder)
    except ValidationError as err:
        raise CliError(Exit.REFUSED, f"{err}; nothing was written") from err
    warn(PRIVATE_FILE_NOTE.format(what=str(folder)))
    files = sorted(p.name for p in folder.iterdir())
    if json_mode:
        emit_json(
            {
                "device_id": device_id,
                "pn": _text(dump.device.get("pn")),
                "lid": _text(dump.device.get("lid")),
                "format": fmt,
                "folder": str(folder),
                "files": len(files),
            }
        )
    else:
        Output().line(
            f"exported account {device_id} ({who(dump.device)}) as a {fmt} folder to "
            f"{folder}: {len(files)} files"
        )
    return Exit.OK


@click.command("import", cls=Command)
@url_argument()
@click.argument(
    "source",
    metavar="SOURCE",
    cls=Argument,
    doc="An account file written by `wastore export`, or with --from another "
    "client's folder or database (whatsmeow: also a postgresql:// URL).",
)
@click.option(
    "--from",
    "from_",
    type=click.Choice(list(formats.FORMATS)),
    default="wastore",
    show_default=True,
    help="What SOURCE is: "
    + "; ".join(f"{name}: {what}" for name, what in formats.FORMATS.items())
    + ".",
)
@click.option(
    "--jid",
    metavar="JID",
    help="Import only this account of a SOURCE that holds several (a whatsmeow database).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the account if the store already has it with other content (same "
    "identity key); it keeps its device id. Never replaces a different account.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and check SOURCE, say what would be imported, write nothing.",
)
@json_option
@debug_option
def import_(
    url: str,
    source: str,
    from_: str,
    jid: str | None,
    replace: bool,
    dry_run: bool,
    json_mode: bool,
    debug: bool,
) -> None:
    """Import accounts into a store (created if it is a new SQLite file): an account
    file, or with --from an account of Baileys, pyaileys, pywhats, yowsup or whatsmeow.

    SOURCE is read and checked completely first (every key and row); nothing is
    written if anything in it cannot be read. Each account is one transaction. An
    account that is already there (same identity key) with identical content is
    left as it is (unchanged); with other content it is refused unless --replace,
    which replaces it in place (same device id). An account of the store that has
    the phone number or LID of an imported one but another identity key is a
    different account: the import is refused, with or without --replace. With
    --json: one object per account (an object with "accounts" when SOURCE holds
    several).
    """
    url = store_url(url)
    # a database URL (whatsmeow on PostgreSQL) stays a URL, its password never shown
    src: Path | str = store_url(source) if "://" in source else Path(source)

    async def body() -> int:
        dumps = read_accounts(src, from_, jid)
        if dry_run:
            return _report([(d, None) for d in dumps], url, from_, json_mode)
        new_file = _new_sqlite_file(url)
        try:
            async with await admin.open_url(url, create=True) as container:
                if len(dumps) > 1:  # refuse before writing anything
                    for dump in dumps:
                        plan = await admin.plan_put(
                            container, dump, replace=replace, skip_identical=True
                        )
                        _refuse(dump, plan, url)
                done = []
                for dump in dumps:
                    result = await admin.put_account(
                        container, dump, replace=replace, skip_identical=True
                    )
                    _refuse(dump, result, url)
                    done.append((dump, result))
        except BaseException:
            if new_file is not None:  # nothing was imported: leave no empty database behind
                _remove_database(new_file)
            raise
        return _report(done, url, from_, json_mode)

    run(body, debug=debug)


def _new_sqlite_file(url: str) -> Path | None:
    """The file of an ``sqlite:`` URL when it does not exist yet (the import creates it)."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///") :].partition("?")[0])
    return None if path.exists() else path


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _refuse(dump: portable.AccountDump, result: admin.PutResult, url: str) -> None:
    """Raise (exit 4, nothing imported) when ``result`` says the account cannot go in."""
    if result.action == "conflict":
        ids = ", ".join(map(str, result.existing))
        raise CliError(
            Exit.REFUSED,
            f"the account ({who(dump.device)}) is already in {shown(url)} as device id "
            f"{ids} with other content: nothing was imported; use --replace to overwrite "
            "it (it keeps its device id)",
        )
    if result.action == "taken":
        ids = ", ".join(map(str, result.existing))
        text = admin.another_account(result.others, option="--replace")
        raise CliError(
            Exit.REFUSED,
            f"cannot import the account ({who(dump.device)}) into {shown(url)}: {text}; "
            f"nothing was imported (delete device id {ids} first if it is no longer wanted)",
        )


def _report(
    done: Sequence[tuple[portable.AccountDump, admin.PutResult | None]],
    url: str,
    fmt: str,
    json_mode: bool,
) -> int:
    """Print what ``import`` did (or, for a dry run, would do)."""
    if json_mode:
        objects = [
            {
                "device_id": None if r is None else r.device_id,
                "action": "dry-run" if r is None else r.action,
                "replaced": list(r.existing) if r is not None and r.action == "replaced" else [],
                "pn": d.device.get("pn"),
                "lid": d.device.get("lid"),
                "format": fmt,
                "rows": d.count(),
            }
            for d, r in done
        ]
        emit_json(objects[0] if len(objects) == 1 else {"accounts": objects})
        return Exit.OK
    out = Output()
    for d, r in done:
        rows = sum(d.count().values())
        origin = "" if fmt == "wastore" else f" from {fmt}"
        if r is None:
            out.line(f"would import account ({who(d.device)}){origin}: {rows} rows ({_counts(d)})")
            continue
        if r.action == "unchanged":
            out.line(
                f"unchanged: account ({who(d.device)}){origin} is in {shown(url)} as device "
                f"id {r.device_id} with identical content; nothing was written"
            )
            continue
        kept = " (its rows replaced, same id)" if r.action == "replaced" else ""
        out.line(
            f"{r.action}: account ({who(d.device)}){origin} imported into {shown(url)} as "
            f"device id {r.device_id}{kept}: {rows} rows"
        )
    return Exit.OK


def _counts(dump: portable.AccountDump) -> str:
    return ", ".join(f"{n} {t}" for t, n in dump.count().items() if n and t != "device")


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
@click.option(
    "--replace",
    is_flag=True,
    help="Replace accounts that DST holds with other content (same identity key; they "
    "keep their device ids). Never replaces a different account.",
)
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
    in DST (same identity key) with identical content is left as it is
    (unchanged); one with other content is reported (conflict, exit 1) and
    replaced in place, keeping its device id, only with --replace. An account of
    DST with the phone number or LID of a copied one but another identity key is a
    different account: reported (taken, exit 1), never replaced. Copy stopped
    accounts: an account that a process is serving changes while it is copied.
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
        failed = [r for r in results if r.action in ("conflict", "taken", "invalid", "failed")]
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
