"""How ``wastore`` uses click: one-line usage errors, documented arguments, shared options.

click prints a usage error as a usage line, a hint and the message (three lines
and more); ``wastore`` promises one line on stderr for every error, so the
group reports usage errors itself: ``wastore: error: <what> (usage: ...; see
``wastore CMD --help``)`` and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from ._common import Exit, error

F = TypeVar("F", bound=Callable[..., Any])

URL_HELP = (
    "Store URL: sqlite:///relative.db, sqlite:////abs/path.db, "
    "postgresql://user:password@host:port/db, or a path to an SQLite file."
)
DEVICE_HELP = (
    "The account: its device id (see `wastore devices`) or a phone-number or "
    "LID JID such as 15551234567@s.whatsapp.net."
)


class Argument(click.Argument):
    """A positional argument with a line of help (shown under "Arguments")."""

    def __init__(self, *args: Any, doc: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.doc = doc


class Command(click.Command):
    """A command whose help lists its arguments with their help, then its options."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            # Some parser errors come without their context; the message needs its usage.
            err.ctx = err.ctx or ctx
            raise

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        rows = [
            (param.human_readable_name, param.doc)
            for param in self.get_params(ctx)
            if isinstance(param, Argument)
        ]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)


class Group(click.Group):
    """The ``wastore`` group: help when called without a command, one-line usage errors."""

    command_class = Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added, not sorted

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Each command's whole first sentence, wrapped (click cuts it to the terminal's width).
        rows = [(name, cmd.get_short_help_str(limit=200)) for name, cmd in self.commands.items()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:  # `wastore` alone: the help, as a usage error (exit 2)
            click.echo(ctx.get_help())
            ctx.exit(Exit.USAGE)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            err.ctx = err.ctx or ctx
            raise

    def main(  # one signature for click's two overloads
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code: Any
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as err:
            error(usage_message(err))
            code = Exit.USAGE
        except click.ClickException as err:
            error(err.format_message())
            code = err.exit_code
        except click.Abort:
            error("interrupted")
            code = Exit.INTERRUPTED
        code = code if isinstance(code, int) else Exit.OK
        if standalone_mode:
            sys.exit(code)
        return code


def usage_message(err: click.UsageError) -> str:
    """One line: click's message, the command's usage and where its help is."""
    message = " ".join(err.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    if err.ctx is None:
        return message
    usage = " ".join(err.ctx.get_usage().split()).removeprefix("Usage: ")
    return f"{message} (usage: {usage}; see `{err.ctx.command_path} --help`)"


def fail(code: Exit, message: str) -> NoReturn:
    """Print the error line and exit with ``code`` (for errors found before a command runs)."""
    error(message)
    raise click.exceptions.Exit(int(code))


# -- what the commands share ----------------------------------------------------------


def url_argument(name: str = "url", metavar: str = "URL", doc: str = URL_HELP) -> Callable[[F], F]:
    return click.argument(name, metavar=metavar, cls=Argument, doc=doc)


def device_argument() -> Callable[[F], F]:
    return click.argument("device", metavar="DEVICE", cls=Argument, doc=DEVICE_HELP)


def json_option(fn: F) -> F:
    return click.option(
        "--json",
        "json_mode",
        is_flag=True,
        help="Print the result as JSON on stdout (for scripts).",
    )(fn)


def debug_option(fn: F) -> F:
    return click.option(
        "--debug",
        is_flag=True,
        help="On errors, print the traceback; log what the library does.",
    )(fn)
