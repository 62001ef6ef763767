"""The store commands: devices, show, export, import, copy, snapshot, check, migrate.

Each command parses its arguments, calls :mod:`wastore.admin` and the public
API, and prints the result: a rich table for people, JSON with ``--json``.
Errors become one line on stderr and an exit code (see :class:`._common.Exit`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from .. import admin, portable
from ..contract import Container
from ..errors import AccountInUseError, DeviceNotFoundError, ValidationError
from ._common import (
    CliError,
    DebugOpt,
    DeviceArg,
    Exit,
    JsonOpt,
    UrlArg,
    cell,
    clean,
    emit_json,
    err_console,
    out_console,
    run,
    shown,
    store_url,
    warn,
    when,
    when_s,
    write_private,
)

PRIVATE_FILE_NOTE = (
    "{what} holds the account's private keys and Signal sessions: keep it as secret as "
    "the database (it is readable by you only, mode 0600)"
)


def _progress(json_mode: bool, what: str) -> Progress:
    console = err_console()
    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=json_mode or not console.is_terminal,
    )


def _table(title: str | None = None, **options: Any) -> Table:
    """A table in the style every command uses."""
    style: dict[str, Any] = {
        "box": box.SIMPLE_HEAD,
        "title_justify": "left",
        "pad_edge": False,
        "collapse_padding": True,
    }
    style.update(options)
    return Table(title=None if title is None else Text(title), **style)


def _lease_text(lease: admin.Lease | None) -> str:
    if lease is None or not lease.active():
        return ""
    return f"{lease.describe()} until {_expiry(lease)}"


def _expiry(lease: admin.Lease) -> str:
    if lease.expires_at is None:
        return "its connection closes"
    return when_s(lease.expires_at) + " UTC"


# -- devices ----------------------------------------------------------------------


def devices(url: UrlArg, json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List the accounts of a store with what each one holds."""
    url = store_url(url)

    async def body() -> int:
        async with await admin.open_url(url) as container:
            rows = await admin.overviews(container)
        if json:
            emit_json([r.as_dict() for r in rows])
            return Exit.OK
        out = out_console()
        if not rows:
            out.print(Text(f"no accounts in {shown(url)}"))
            return Exit.OK
        table = _table(shown(url))
        # Counts and times never wrap; names and JIDs fold when the terminal is narrow.
        for name, justify, no_wrap in (
            ("id", "right", True),
            ("phone JID", "left", False),
            ("LID", "left", False),
            ("push name", "left", False),
            ("sessions", "right", True),
            ("identities", "right", True),
            ("sender\nkeys", "right", True),
            ("pre-keys\ntotal/up", "right", True),
            ("app state", "left", False),
            ("last saved (UTC)", "left", True),
        ):
            table.add_column(name, justify=justify, no_wrap=no_wrap, overflow="fold")  # type: ignore[arg-type]
        in_use = False
        for r in rows:
            app_state = "\n".join(f"{n} v{v}" for n, v in sorted(r.app_state.items()))
            lease = _lease_text(r.lease)
            in_use = in_use or bool(lease)
            table.add_row(
                str(r.device_id) + (" *" if lease else ""),
                cell(r.pn),
                cell(r.lid),
                cell(r.push_name),
                str(r.sessions),
                str(r.identities),
                str(r.sender_keys),
                f"{r.prekeys}/{r.prekeys_uploaded}",
                cell(app_state),
                when(r.saved_at_ms),
            )
        out.print(table)
        if in_use:
            out.print("* in use: a process holds the account's lease (see `wastore check`)")
        return Exit.OK

    run(body, debug=debug)


# -- show ----------------------------------------------------------------------


_FIELD_LABELS = (
    ("pn", "phone JID"),
    ("lid", "LID"),
    ("push_name", "push name"),
    ("registration_id", "registration id"),
    ("signed_pre_key_id", "signed pre-key id"),
    ("app_version", "app version"),
    ("props_hash", "props hash"),
    ("next_pre_key_id", "next pre-key id"),
    ("first_unupload_pre_key_id", "first pre-key id not uploaded"),
    ("server_has_prekeys", "server has pre-keys"),
    ("login_counter", "logins"),
    ("lid_migrated", "LID migrated"),
    ("read_receipts_disabled", "read receipts disabled"),
    ("account_bytes", "ADV device identity (bytes)"),
    ("server_cert_chain_bytes", "server certificate chain (bytes)"),
    ("edge_routing_info_bytes", "edge routing info (bytes)"),
)
_TIME_LABELS = (
    ("last_signed_pre_key_rotation_ms", "signed pre-key rotated (UTC)"),
    ("app_version_last_fetched_ms", "app version fetched (UTC)"),
    ("saved_at_ms", "last saved (UTC)"),
)


def show(url: UrlArg, device: DeviceArg, json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Show one account in detail (public keys and fingerprints only, never a private key).

    Exits with 1 when rows of the account cannot be decoded.
    """
    url = store_url(url)

    async def body() -> int:
        async with await admin.open_url(url) as container:
            device_id = await admin.resolve_device(container, device)
            detail = await admin.account_detail(container, device_id)
        code = Exit.PROBLEMS if detail.problems else Exit.OK
        if json:
            emit_json(detail.as_dict())
            return code
        out = out_console()
        info = _table(f"account {device_id} in {shown(url)}", show_header=False, box=None)
        info.add_column("field", style="bold")
        info.add_column("value")
        for key, label in _FIELD_LABELS:
            info.add_row(label, cell(detail.fields.get(key)))
        info.add_row("nct salt", "set" if detail.fields.get("nct_salt_bytes") else "-")
        for key, label in _TIME_LABELS:
            info.add_row(label, when(detail.fields.get(key)))
        for key_name, pair in detail.keys.items():
            label = key_name.replace("_", " ")
            info.add_row(f"{label} fingerprint", cell(pair.fingerprint))
            info.add_row(
                f"{label} (public)", cell(None if pair.public is None else pair.public.hex())
            )
        info.add_row(
            "pre-keys (total/uploaded)",
            f"{detail.rows.get('prekeys', 0)}/{detail.prekeys_uploaded}",
        )
        info.add_row("signed pre-key ids", cell(", ".join(map(str, detail.signed_prekey_ids))))
        info.add_row(
            "sync keys",
            cell(
                f"{len(detail.sync_keys)}, latest {detail.sync_keys[0][0]}"
                if detail.sync_keys
                else ""
            ),
        )
        info.add_row("in use by", cell(_lease_text(detail.lease)))
        out.print(info)
        out.print()
        if detail.app_state:
            states = _table("app-state collections")
            states.add_column("collection")
            states.add_column("version", justify="right")
            states.add_column("hash fingerprint")
            for name, version, fp in detail.app_state:
                states.add_row(cell(name), str(version), fp)
            out.print(states)
        counts = _table("rows")
        counts.add_column("table")
        counts.add_column("rows", justify="right")
        for table_name, n in detail.rows.items():
            counts.add_row(table_name, str(n))
        out.print(counts)
        for problem in detail.problems:
            warn(f"account {device_id}: {problem}")
        return code

    run(body, debug=debug)


# -- export / import --------------------------------------------------------------


def export(
    url: UrlArg,
    device: DeviceArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The file to write (mode 0600, written atomically).",
            show_default=False,
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the file if it exists.")
    ] = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
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
        data = portable.encode(dump)
        write_private(output, data, force=force)
        warn(PRIVATE_FILE_NOTE.format(what=str(output)))
        problems = portable.row_problems(dump.tables)
        for problem in problems:
            warn(f"account {device_id}: {problem} (the file will not import until it is fixed)")
        counts = dump.count()
        if json:
            emit_json(
                {
                    "device_id": device_id,
                    "pn": _text(dump.device.get("pn")),
                    "lid": _text(dump.device.get("lid")),
                    "file": str(output),
                    "bytes": len(data),
                    "rows": counts,
                    "problems": problems,
                }
            )
        else:
            out_console().print(
                Text(
                    f"exported account {device_id} ({_who(dump.device)}) to {output}: "
                    f"{sum(counts.values())} rows, {len(data)} bytes"
                )
            )
        return Exit.PROBLEMS if problems else Exit.OK

    run(body, debug=debug)


def _text(value: object) -> str | None:
    """A JID column for JSON (a damaged row may hold anything)."""
    return None if value is None else value if isinstance(value, str) else repr(value)


def _who(device: dict[str, Any]) -> str:
    pn, lid = device.get("pn"), device.get("lid")
    if not pn and not lid:
        return "not paired"
    return ", ".join(clean(x) for x in (pn, lid) if x)


def import_(
    url: UrlArg,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="An account file written by `wastore export`.")
    ],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Replace the account if the store already has it (same phone/LID)."
        ),
    ] = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Import an account file into a store (created if it is a new SQLite file).

    The file is checked completely first (checksum, format version, every key and
    row); the import is one transaction. An account that is already there (same
    phone number, LID or identity key) is refused unless --replace.
    """
    url = store_url(url)

    async def body() -> int:
        data = file.read_bytes()
        try:
            dump = portable.decode(data)
        except ValidationError as err:
            raise CliError(Exit.REFUSED, f"{file}: {err}; nothing was imported") from err
        async with await admin.open_url(url, create=True) as container:
            result = await admin.put_account(container, dump, replace=replace)
        if result.action == "conflict":
            ids = ", ".join(map(str, result.existing))
            same = " with identical content" if result.identical else ""
            raise CliError(
                Exit.REFUSED,
                f"the account ({_who(dump.device)}) is already in {shown(url)} as device id "
                f"{ids}{same}: nothing was imported; use --replace to overwrite it",
            )
        if json:
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
            out_console().print(
                Text(
                    f"imported account ({_who(dump.device)}) into {shown(url)} as device id "
                    f"{result.device_id}{replaced}: {sum(dump.count().values())} rows"
                )
            )
        return Exit.OK

    run(body, debug=debug)


# -- copy ----------------------------------------------------------------------


def copy(
    source: Annotated[str, typer.Argument(metavar="SRC_URL", help="The store to copy from.")],
    target: Annotated[
        str,
        typer.Argument(metavar="DST_URL", help="The store to copy to (a new SQLite file is made)."),
    ],
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            "-d",
            metavar="DEVICE",
            help="Copy this account only (device id in SRC, or JID); repeat for more. "
            "Default: every account.",
            show_default=False,
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace accounts that DST holds with other content."),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Afterwards, compare every row of every account copied."),
    ] = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Copy accounts between two stores (SQLite -> PostgreSQL and back), one by one.

    Each account is one transaction. Running it again is safe: an account already
    in DST with identical content is skipped; one with other content is reported
    (exit 1) and replaced only with --replace. Copy stopped accounts: an account
    that a process is serving changes while it is copied.
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
                results = await _copy_all(src, dst, ids, replace=replace, verify=verify, json=json)
        failed = [r for r in results if r.action in ("conflict", "invalid", "failed")]
        unverified = [r for r in results if r.verified is False]
        if json:
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
    src: Container, dst: Container, ids: list[int], *, replace: bool, verify: bool, json: bool
) -> list[admin.CopyResult]:
    results: list[admin.CopyResult] = []
    with _progress(json, "copying") as bar:
        task = bar.add_task("", total=len(ids))
        for device_id in ids:
            bar.update(task, description=f"account {device_id}")
            try:
                result = await admin.copy_account(src, dst, device_id, replace=replace)
            except (AccountInUseError, ValidationError, DeviceNotFoundError) as err:
                # this account only (in use, refused, deleted meanwhile): go on with the rest
                result = admin.CopyResult(device_id, "failed", None, None, None, str(err))
            results.append(result)
            bar.advance(task)
    if verify:
        with _progress(json, "verifying") as bar:
            task = bar.add_task("", total=len(results))
            for i, r in enumerate(results):
                if r.target_id is not None and r.action in ("created", "replaced", "unchanged"):
                    same = await admin.verify_copy(src, r.source_id, dst, r.target_id)
                    results[i] = dataclasses.replace(r, verified=same)
                bar.advance(task)
    return results


_ACTION_TEXT = {
    "created": "copied",
    "replaced": "replaced",
    "unchanged": "already there",
    "conflict": "NOT COPIED",
    "invalid": "NOT COPIED (damaged)",
    "failed": "NOT COPIED",
}


def _print_copy(results: list[admin.CopyResult], verify: bool) -> None:
    out = out_console()
    if not results:
        out.print("no accounts to copy")
        return
    table = _table()
    for name in ("source id", "account", "result", "target id", *(["verified"] if verify else [])):
        table.add_column(name)
    for r in results:
        unread = r.action in ("failed", "invalid") and not (r.pn or r.lid)
        who = "?" if unread else _who({"pn": r.pn, "lid": r.lid})
        row: list[str | Text] = [
            str(r.source_id),
            cell(who),
            cell(_ACTION_TEXT[r.action] + (f": {r.detail}" if r.detail else "")),
            cell(r.target_id),
        ]
        if verify:
            row.append({True: "identical", False: "DIFFERENT", None: "-"}[r.verified])
        table.add_row(*row)
    out.print(table)
    tally: dict[str, int] = {}
    for r in results:
        tally[_ACTION_TEXT[r.action]] = tally.get(_ACTION_TEXT[r.action], 0) + 1
    out.print(Text(", ".join(f"{n} {what}" for what, n in tally.items())))


# -- snapshot ---------------------------------------------------------------------


def _absolute(path: str) -> str:
    return os.path.abspath(path)


def snapshot(
    url: UrlArg,
    device: DeviceArg,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="A label for the snapshot (letters, digits and ._- are kept)."
        ),
    ],
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Write the snapshot into this folder (default: beside the SQLite file; "
            "for PostgreSQL ./wastore-snapshots).",
            show_default=False,
        ),
    ] = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a debug snapshot of an account and print where it went.

    SQLite: a consistent copy of the whole database file beside it; PostgreSQL: the
    account's export file in the store's snapshot folder. Both hold private keys.
    """
    url = store_url(url)

    async def body() -> int:
        options: dict[str, Any] = {} if folder is None else {"snapshot_dir": str(folder)}
        async with await admin.open_url(url, **options) as container:
            device_id = await admin.resolve_device(container, device)
            where = _absolute(await container.backend(device_id).snapshot_db(name))
        warn(PRIVATE_FILE_NOTE.format(what="the snapshot"))
        if json:
            emit_json({"device_id": device_id, "path": where})
        else:
            out_console().print(Text(f"snapshot of account {device_id} written to {where}"))
        return Exit.OK

    run(body, debug=debug)


# -- check ----------------------------------------------------------------------


def check(url: UrlArg, json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Check a store's integrity; exit 0 only when nothing is wrong.

    Checks: SQLite's integrity_check, the schema version, every row of every account
    (key lengths, key pairs, signed pre-key signatures, records the store could not
    decode), orphan rows. Lists the leases held.
    """
    url = store_url(url)

    async def body() -> int:
        status = await admin.schema_status_at(url)
        if status.up_to_date:
            async with await admin.open_url(url) as container:
                with _progress(json, "checking") as bar:
                    task = bar.add_task("accounts", total=None)

                    def tick(done: int, total: int) -> None:
                        bar.update(task, completed=done, total=total)

                    report = await admin.check(container, on_account=tick)
        else:  # the store cannot be opened without migrating it: report the schema only
            report = admin.CheckReport(integrity=None, schema=status)
        if json:
            emit_json({"url": shown(url), **report.as_dict()})
        else:
            _print_check(url, report)
        return Exit.OK if report.ok else Exit.PROBLEMS

    run(body, debug=debug)


def _print_check(url: str, report: admin.CheckReport) -> None:
    out = out_console()
    s = report.schema
    out.print(Text(f"store:      {shown(url)}"))
    if s.initialised:
        pending = f", {len(s.pending)} migration(s) pending" if s.pending else ""
        out.print(Text(f"schema:     version {s.version} (this wastore: {s.latest}){pending}"))
    else:
        out.print("schema:     none (run `wastore migrate`)")
    if report.integrity is not None:
        verdict = "ok" if report.integrity == ["ok"] else f"{len(report.integrity)} problem(s)"
        out.print(f"integrity:  {verdict}")
    elif s.up_to_date:
        out.print("integrity:  no file check on PostgreSQL (every row is checked below)")
    if s.up_to_date:
        damaged = len(report.account_problems)
        out.print(f"accounts:   {report.accounts} checked, {damaged} with problems")
        out.print(f"orphans:    {sum(o.rows for o in report.orphans)} row(s)")
    else:
        out.print("accounts:   not checked until the schema is migrated")
    active = [lease for lease in report.leases if lease.active()]
    out.print(f"leases:     {len(active)} held, {len(report.leases) - len(active)} expired")
    if report.leases:
        table = _table()
        for col in ("device id", "holder", "host", "pid", "until", "state"):
            table.add_column(col)
        for lease in report.leases:
            table.add_row(
                str(lease.device_id),
                cell(lease.holder),
                cell(lease.host),
                str(lease.pid),
                _expiry(lease),
                "held" if lease.active() else "expired",
            )
        out.print(table)
    problems = report.problems
    if problems:
        out.print(Text(f"{len(problems)} problem(s):"))
        for p in problems:
            out.print(Text(f"  - {clean(p)}"))
    else:
        out.print("no problems found")


# -- migrate ----------------------------------------------------------------------


def migrate(
    url: UrlArg,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List the pending migrations; change nothing."),
    ] = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Apply pending schema migrations, printing each.

    Each step is its own transaction. A database without a wastore schema gets the
    latest one in one step. --dry-run only reads the version table.
    """
    url = store_url(url)

    async def body() -> int:
        before = await admin.schema_status_at(url)
        steps = [{"version": m.version, "description": m.description} for m in before.pending]
        if not before.initialised:
            steps = [{"version": before.latest, "description": "create the schema (all tables)"}]
        if dry_run or before.up_to_date:
            if json:
                emit_json({"dry_run": dry_run, **before.as_dict(), "steps": steps})
            elif before.up_to_date:
                out_console().print(
                    Text(f"{shown(url)} is up to date (schema version {before.version})")
                )
            else:
                out = out_console()
                out.print(Text(f"{shown(url)}: {len(steps)} step(s) to apply:"))
                for step in steps:
                    out.print(Text(f"  {step['version']}: {step['description']}"))
            return Exit.OK
        container = await admin.open_url(url, migrate=True)
        await container.close()
        after = await admin.schema_status_at(url)
        if json:
            emit_json(
                {
                    "dry_run": False,
                    "from": before.version,
                    "to": after.version,
                    "applied": steps,
                    **{k: v for k, v in after.as_dict().items() if k != "version"},
                    "version": after.version,
                }
            )
        else:
            out = out_console()
            for step in steps:
                out.print(Text(f"applied {step['version']}: {step['description']}"))
            out.print(
                Text(f"{shown(url)} is at schema version {after.version}")
                if before.initialised
                else Text(f"{shown(url)}: created the schema at version {after.version}")
            )
        return Exit.OK

    run(body, debug=debug)
