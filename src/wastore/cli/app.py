"""The ``wastore`` command (click): the group, its global options, ``demo`` and ``bench``.

The store commands live in :mod:`.commands` and :mod:`.transfer`. The command
needs nothing beyond ``pip install wastore``: click is a dependency of wastore,
rich (tables and progress bars) is optional (see :mod:`._output`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from . import _bench, commands, transfer
from ._click import Group, fail
from ._common import EXIT_CODES_HELP, Exit, run, state

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        from .. import __version__

        click.echo(f"wastore {__version__}")
        ctx.exit(Exit.OK)


@click.group(cls=Group, context_settings=CONTEXT, epilog=EXIT_CODES_HELP)
@click.option(
    "--debug", is_flag=True, help="On errors, print the traceback; log what the library does."
)
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_version,
    help="Print the version and exit.",
)
def app(debug: bool) -> None:
    """Inspect and manage wastore databases (SQLite or PostgreSQL).

    URLs: sqlite:///relative.db, sqlite:////abs/path.db, postgresql://user:pass@host/db,
    or a path to an SQLite file. Passwords are never printed.
    """
    state.debug = debug


for command in (
    commands.devices,
    commands.show,
    transfer.export,
    transfer.import_,
    transfer.copy,
    commands.snapshot,
    commands.check,
    commands.migrate,
):
    app.add_command(command)

DEMO_NEEDS = (("axolotl", "python-axolotl"), ("rich", "rich"))


@app.command()
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    default=Path("demo-data/wastore-demo.db"),
    show_default=True,
    help="SQLite file the demo uses (run again to continue its conversation).",
)
def demo(path: Path) -> None:
    """Run the end-to-end demo: two accounts talk Signal, all state in wastore.

    Alice and Bob pair, exchange direct and group messages through python-axolotl
    (the store is restarted in the middle) and the report shows what is stored,
    private keys redacted. Run it again to continue the same conversation. It
    needs python-axolotl and rich: pip install 'wastore[demo]'.
    """
    missing = [name for module, name in DEMO_NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        fail(
            Exit.USAGE,
            f"the demo needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'wastore[demo]'",
        )
    try:
        from ..interop.axolotl.demo import run as run_demo
    except ImportError as err:  # e.g. protobuf loaded with the wrong implementation
        fail(Exit.USAGE, f"the demo cannot run: {err}")

    from rich.console import Console

    from ._output import Output

    async def body() -> int:
        console = Output().rich_console() or Console()
        await run_demo(path, console)
        return Exit.OK

    run(body, debug=False)


@app.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmark harness of a wastore checkout, passing every argument on.

    The harness is in the repository's benchmarks/ folder, not in the installed
    package (see docs/benchmarks.md in the repository). Try: wastore bench --help,
    wastore bench --quick.
    """
    root = _bench.find_checkout()
    if root is None:
        fail(Exit.USAGE, _bench.NOT_HERE)
    raise click.exceptions.Exit(_bench.run_harness(root, list(args)))


def main() -> None:
    """The ``wastore`` console script."""
    app.main(prog_name="wastore")
