"""Looking at and looking after a store: devices, show, snapshot, check, migrate.

Each command parses its arguments, calls :mod:`wastore.admin` and the public
API, and prints the result: a table for people, JSON with ``--json``. Errors
become one line on stderr and an exit code (see :class:`._common.Exit`). The
commands that move accounts (export, import, copy) are in :mod:`.transfer`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .. import admin
from ._click import Argument, Command, debug_option, device_argument, json_option, url_argument
from ._common import (
    Exit,
    cell,
    clean,
    emit_json,
    run,
    shown,
    store_url,
    warn,
    when,
    when_s,
)
from ._output import Output, Progress, Table
from .transfer import PRIVATE_FILE_NOTE


def _lease_text(lease: admin.Lease | None) -> str:
    if lease is None or not lease.active():
        return ""
    return f"{lease.describe()} until {_expiry(lease)}"


def _expiry(lease: admin.Lease) -> str:
    if lease.expires_at is None:
        return "its connection closes"
    return when_s(lease.expires_at) + " UTC"


# -- devices ----------------------------------------------------------------------


@click.command(cls=Command)
@url_argument()
@json_option
@debug_option
def devices(url: str, json_mode: bool, debug: bool) -> None:
    """List the accounts of a store with what each one holds."""
    url = store_url(url)

    async def body() -> int:
        async with await admin.open_url(url) as container:
            rows = await admin.overviews(container)
        if json_mode:
            emit_json([r.as_dict() for r in rows])
            return Exit.OK
        out = Output()
        if not rows:
            out.line(f"no accounts in {shown(url)}")
            return Exit.OK
        table = Table(shown(url))
        # Counts and times never wrap; names and JIDs fold when the terminal is narrow.
        for name, right, wrap in (
            ("id", True, False),
            ("phone JID", False, True),
            ("LID", False, True),
            ("push name", False, True),
            ("sessions", True, False),
            ("identities", True, False),
            ("sender\nkeys", True, False),
            ("pre-keys\ntotal/up", True, False),
            ("app state", False, True),
            ("last saved (UTC)", False, False),
        ):
            table.add_column(name, justify="right" if right else "left", wrap=wrap, fold=True)
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
        out.table(table)
        if in_use:
            out.line("* in use: a process holds the account's lease (see `wastore check`)")
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


@click.command(cls=Command)
@url_argument()
@device_argument()
@json_option
@debug_option
def show(url: str, device: str, json_mode: bool, debug: bool) -> None:
    """Show one account in detail (public keys and fingerprints only, never a private key).

    Exits with 1 when rows of the account cannot be decoded.
    """
    url = store_url(url)

    async def body() -> int:
        async with await admin.open_url(url) as container:
            device_id = await admin.resolve_device(container, device)
            detail = await admin.account_detail(container, device_id)
        code = Exit.PROBLEMS if detail.problems else Exit.OK
        if json_mode:
            emit_json(detail.as_dict())
            return code
        out = Output()
        info = Table(f"account {device_id} in {shown(url)}", header=False, ruled=False)
        info.add_column("field", bold=True)
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
        out.table(info)
        out.line()
        if detail.app_state:
            states = Table("app-state collections")
            states.add_column("collection")
            states.add_column("version", justify="right")
            states.add_column("hash fingerprint")
            for name, version, fp in detail.app_state:
                states.add_row(cell(name), str(version), fp)
            out.table(states)
        counts = Table("rows")
        counts.add_column("table")
        counts.add_column("rows", justify="right")
        for table_name, n in detail.rows.items():
            counts.add_row(table_name, str(n))
        out.table(counts)
        for problem in detail.problems:
            warn(f"account {device_id}: {problem}")
        return code

    run(body, debug=debug)


# -- snapshot ---------------------------------------------------------------------


def _absolute(path: str) -> str:
    return os.path.abspath(path)


@click.command(cls=Command)
@url_argument()
@device_argument()
@click.argument(
    "name",
    metavar="NAME",
    cls=Argument,
    doc="A label for the snapshot (letters, digits and ._- are kept).",
)
@click.option(
    "--dir",
    "folder",
    metavar="DIR",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the snapshot into this folder (default: beside the SQLite file; "
    "for PostgreSQL ./wastore-snapshots).",
)
@json_option
@debug_option
def snapshot(
    url: str, device: str, name: str, folder: Path | None, json_mode: bool, debug: bool
) -> None:
    """Write a debug snapshot of one account and print where it went.

    The snapshot holds that account only, never another one. SQLite: a database
    file beside the store (it opens as a store: `wastore show FILE DEVICE`);
    PostgreSQL: the account's export file in the store's snapshot folder. Both
    hold the account's private keys (mode 0600).
    """
    url = store_url(url)

    async def body() -> int:
        options: dict[str, Any] = {} if folder is None else {"snapshot_dir": str(folder)}
        async with await admin.open_url(url, **options) as container:
            device_id = await admin.resolve_device(container, device)
            where = _absolute(await container.backend(device_id).snapshot_db(name))
        warn(PRIVATE_FILE_NOTE.format(what="the snapshot"))
        if json_mode:
            emit_json({"device_id": device_id, "path": where})
        else:
            Output().line(f"snapshot of account {device_id} only written to {where}")
        return Exit.OK

    run(body, debug=debug)


# -- check ----------------------------------------------------------------------


@click.command(cls=Command)
@url_argument()
@json_option
@debug_option
def check(url: str, json_mode: bool, debug: bool) -> None:
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
                with Progress(
                    "checking", total=None, hidden=json_mode, description="accounts"
                ) as bar:
                    report = await admin.check(container, on_account=bar.set)
        else:  # the store cannot be opened without migrating it: report the schema only
            report = admin.CheckReport(integrity=None, schema=status)
        if json_mode:
            emit_json({"url": shown(url), **report.as_dict()})
        else:
            _print_check(url, report)
        return Exit.OK if report.ok else Exit.PROBLEMS

    run(body, debug=debug)


def _print_check(url: str, report: admin.CheckReport) -> None:
    out = Output()
    s = report.schema
    out.line(f"store:      {shown(url)}")
    if s.initialised:
        pending = f", {len(s.pending)} migration(s) pending" if s.pending else ""
        out.line(f"schema:     version {s.version} (this wastore: {s.latest}){pending}")
    else:
        out.line("schema:     none (run `wastore migrate`)")
    if report.integrity is not None:
        verdict = "ok" if report.integrity == ["ok"] else f"{len(report.integrity)} problem(s)"
        out.line(f"integrity:  {verdict}")
    elif s.up_to_date:
        out.line("integrity:  no file check on PostgreSQL (every row is checked below)")
    if s.up_to_date:
        damaged = len(report.account_problems)
        out.line(f"accounts:   {report.accounts} checked, {damaged} with problems")
        out.line(f"orphans:    {sum(o.rows for o in report.orphans)} row(s)")
    else:
        out.line("accounts:   not checked until the schema is migrated")
    active = [lease for lease in report.leases if lease.active()]
    out.line(f"leases:     {len(active)} held, {len(report.leases) - len(active)} expired")
    if report.leases:
        table = Table()
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
        out.table(table)
    problems = report.problems
    if problems:
        out.line(f"{len(problems)} problem(s):")
        for p in problems:
            out.line(f"  - {clean(p)}")
    else:
        out.line("no problems found")


# -- migrate ----------------------------------------------------------------------


@click.command(cls=Command)
@url_argument()
@click.option("--dry-run", is_flag=True, help="List the pending migrations; change nothing.")
@json_option
@debug_option
def migrate(url: str, dry_run: bool, json_mode: bool, debug: bool) -> None:
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
            if json_mode:
                emit_json({"dry_run": dry_run, **before.as_dict(), "steps": steps})
            elif before.up_to_date:
                Output().line(f"{shown(url)} is up to date (schema version {before.version})")
            else:
                out = Output()
                out.line(f"{shown(url)}: {len(steps)} step(s) to apply:")
                for step in steps:
                    out.line(f"  {step['version']}: {step['description']}")
            return Exit.OK
        container = await admin.open_url(url, migrate=True)
        await container.close()
        after = await admin.schema_status_at(url)
        if json_mode:
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
            out = Output()
            for step in steps:
                out.line(f"applied {step['version']}: {step['description']}")
            out.line(
                f"{shown(url)} is at schema version {after.version}"
                if before.initialised
                else f"{shown(url)}: created the schema at version {after.version}"
            )
        return Exit.OK

    run(body, debug=debug)
