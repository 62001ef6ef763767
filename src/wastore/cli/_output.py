"""What the commands print for people: lines, tables and progress bars.

rich draws them when it is installed (``pip install 'wastore[cli]'``): tables
with a ruled header that fit the terminal, and transient progress bars on
stderr while a long command runs on a terminal. Without rich, ``wastore`` prints
the same tables as plain text columns and shows no progress bar; everything
else (``--json``, errors, exit codes) is the same either way. Cells and lines
are always text, never markup: names chosen by a peer cannot style or drive
the terminal (see :func:`._common.clean`).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

Justify = Literal["left", "right"]


@functools.cache
def have_rich() -> bool:
    """Whether rich can be imported (checked once per process)."""
    try:
        for module in ("rich.box", "rich.console", "rich.progress", "rich.table", "rich.text"):
            importlib.import_module(module)
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Column:
    name: str
    justify: Justify = "left"
    wrap: bool = True
    """False: the column never wraps (counts, times); the others fold on a narrow terminal."""
    fold: bool = False
    """Break a word that is longer than the column (JIDs) instead of cutting it."""
    bold: bool = False


@dataclass
class Table:
    """A table of text cells; a cell may hold several lines."""

    title: str | None = None
    header: bool = True
    ruled: bool = True
    """A line under the header (rich: its ``SIMPLE_HEAD`` box); False: no box at all."""
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def add_column(
        self,
        name: str,
        *,
        justify: Justify = "left",
        wrap: bool = True,
        fold: bool = False,
        bold: bool = False,
    ) -> None:
        self.columns.append(Column(name, justify, wrap, fold, bold))

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)


class Output:
    """stdout, for people."""

    def __init__(self) -> None:
        self._console: Any = None
        if have_rich():
            from rich.console import Console

            # A pipe or a file gets wide tables rather than rich's default of 80 columns.
            wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
            self._console = Console(highlight=False, width=160 if wide else None)

    def rich_console(self) -> Any:
        """The rich ``Console`` that draws, or None when rich is not installed."""
        return self._console

    def line(self, text: str = "") -> None:
        """Print ``text`` (wrapped at word boundaries on a narrow terminal when rich draws)."""
        if self._console is None:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            return
        from rich.text import Text

        self._console.print(Text(text))

    def table(self, table: Table) -> None:
        if self._console is None:
            sys.stdout.write("".join(line + "\n" for line in plain_lines(table)))
            sys.stdout.flush()
            return
        self._console.print(_rich_table(table))


def _rich_table(table: Table) -> Any:
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    out = RichTable(
        title=None if table.title is None else Text(table.title),
        box=box.SIMPLE_HEAD if table.ruled else None,
        show_header=table.header,
        title_justify="left",
        pad_edge=False,
        collapse_padding=True,
    )
    for c in table.columns:
        options: dict[str, Any] = {"justify": c.justify, "no_wrap": not c.wrap}
        if c.fold:
            options["overflow"] = "fold"
        if c.bold:
            options["style"] = "bold"
        out.add_column(c.name, **options)
    for row in table.rows:
        out.add_row(*(Text(value) for value in row))
    return out


def plain_lines(table: Table) -> list[str]:
    """The table as plain text: columns two spaces apart, a dashed line under the header
    (whose names sit on its last lines, as rich draws them) and a blank line after a
    ruled table."""
    grid: list[list[list[str]]] = []  # rows of cells of lines
    if table.header:
        names = [c.name.splitlines() or [""] for c in table.columns]
        height = max(map(len, names), default=0)
        grid.append([[""] * (height - len(lines)) + lines for lines in names])
    grid += [[value.splitlines() or [""] for value in row] for row in table.rows]
    widths = [0] * len(table.columns)
    for row in grid:
        for i, lines in enumerate(row):
            widths[i] = max([widths[i], *map(len, lines)])
    out = [table.title] if table.title is not None else []
    for n, row in enumerate(grid):
        for k in range(max(map(len, row), default=0)):
            parts = []
            for column, lines, width in zip(table.columns, row, widths, strict=True):
                text = lines[k] if k < len(lines) else ""
                parts.append(text.rjust(width) if column.justify == "right" else text.ljust(width))
            out.append("  ".join(parts).rstrip())
        if n == 0 and table.header and table.ruled:
            out.append("  ".join("-" * w for w in widths))
    if table.ruled:
        out.append("")
    return out


class Progress:
    """A transient progress bar on stderr: only with rich, on a terminal, and not for --json.

    Use as ``with Progress("copying", total=n, hidden=json) as bar: bar.advance()``.
    """

    def __init__(
        self, what: str, *, total: int | None, hidden: bool, description: str = ""
    ) -> None:
        self._what = what
        self._total = total
        self._description = description
        self._hidden = hidden or not have_rich()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self._hidden:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True, highlight=False)
        self._bar = RichProgress(
            TextColumn(self._what),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task(self._description, total=self._total)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)

    def describe(self, text: str) -> None:
        """What is being worked on (shown after the count)."""
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def set(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
