"""Command definitions (typer)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="wastore",
    help="Inspect and manage wastore databases (SQLite or PostgreSQL).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Inspect and manage wastore databases (SQLite or PostgreSQL)."""


@app.command()
def demo(
    path: Annotated[Path, typer.Option(help="SQLite file the demo uses.")] = Path(
        "demo-data/wastore-demo.db"
    ),
) -> None:
    """Run the end-to-end demo on the embedded SQLite store."""
    from ..demo import run

    asyncio.run(run(path))


def main() -> None:
    app()
