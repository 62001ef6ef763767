"""Command definitions (typer).

The store commands live in :mod:`.commands`; this module builds the ``wastore``
application, its global options, ``demo`` and ``bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _bench, commands
from ._common import EXIT_CODES_HELP, Exit, error, state

app = typer.Typer(
    name="wastore",
    help="Inspect and manage wastore databases (SQLite or PostgreSQL).",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"wastore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="On errors, print the traceback; log what the library does."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Inspect and manage wastore databases (SQLite or PostgreSQL).

    URLs: sqlite:///relative.db, sqlite:////abs/path.db, postgresql://user:pass@host/db,
    or a path to an SQLite file. Passwords are never printed.
    """
    state.debug = debug


app.command()(commands.devices)
app.command()(commands.show)
app.command()(commands.export)
app.command("import")(commands.import_)
app.command()(commands.copy)
app.command()(commands.snapshot)
app.command()(commands.check)
app.command()(commands.migrate)


@app.command()
def demo(
    path: Annotated[
        Path,
        typer.Option(help="SQLite file the demo uses (run again to continue its conversation)."),
    ] = Path("demo-data/wastore-demo.db"),
) -> None:
    """Run the end-to-end demo: two accounts talk Signal, all state in wastore.

    Alice and Bob pair, exchange direct and group messages through python-axolotl
    (the store is restarted in the middle) and the report shows what is stored,
    private keys redacted. Run it again to continue the same conversation.
    """
    from ._common import out_console
    from ._common import run as run_command

    try:
        from ..interop.axolotl.demo import run as run_demo
    except ImportError as err:  # the message says what to install
        error(f"the demo cannot run: {err}")
        raise typer.Exit(Exit.USAGE) from None

    async def body() -> int:
        await run_demo(path, out_console())
        return Exit.OK

    run_command(body, debug=False)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmark harness of a wastore checkout, passing every argument on.

    The harness is in the repository's benchmarks/ folder, not in the installed
    package. Try: wastore bench --help, wastore bench --quick.
    """
    root = _bench.find_checkout()
    if root is None:
        error(_bench.NOT_HERE)
        raise typer.Exit(Exit.USAGE)
    raise typer.Exit(_bench.run_harness(root, list(ctx.args)))


def main() -> None:
    app(prog_name="wastore")
