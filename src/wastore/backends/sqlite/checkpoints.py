"""WAL checkpoints of one SQLite database, off the event loop.

The writer never checkpoints on commit (wal_autocheckpoint=0): a checkpoint
copies pages into the database file and fsyncs it. Every CHECKPOINT_EVERY
commits (a batch counts as BATCH_COMMIT_WEIGHT) a PASSIVE checkpoint runs on the
worker thread, without the writer: it copies what the WAL holds at its start,
while this process goes on appending. It reports how much the WAL holds; above
WAL_CHECKPOINT_AT the next write transaction first runs one more PASSIVE
checkpoint on the worker while it holds the writer (so nothing of this process
can be appended meanwhile): that one completes (short of another process's
reader still using old pages), and the commit after it starts the WAL over.
So does a write made when AHEAD_OF_CHECKPOINT commits were made while a
background checkpoint still runs (a busy disk or CPU slows it down, never the
appends). The checks read a concurrent future, so a writer that never yields to
the event loop is held back all the same.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from concurrent.futures import Future
from pathlib import Path
from typing import Final

from .connections import WAL_LIMIT, SqliteConnections, SqliteOptions

log = logging.getLogger("wastore.sqlite")

CHECKPOINT_EVERY: Final = 500
"""Commits between two background WAL checkpoints."""
BATCH_COMMIT_WEIGHT: Final = 100
"""What the commit of a batch (written on the worker thread) counts for toward the next
checkpoint: a batch of 2,000 sessions adds about 3 MiB to the WAL, a point write a page."""
AHEAD_OF_CHECKPOINT: Final = 1000
"""Commits this process may make while a background checkpoint still runs; the next
write then waits for it and completes one. (Only one-row commits run meanwhile: a
batch waits on the worker thread behind the checkpoint.) Without it, a checkpoint
slowed by a busy disk or CPU let the WAL grow by ~100 MiB a second of it."""
WAL_CHECKPOINT_AT: Final = 16 * 1024 * 1024
"""WAL content above which the next write transaction first completes a checkpoint
(off the event loop, holding the writer) so that the WAL starts over."""


class WalCheckpoints(SqliteConnections):
    """The checkpoint policy: the engine calls :meth:`_committed` after every commit,
    and :meth:`_complete_checkpoint` before a write transaction when ``_wal_over``."""

    def __init__(self, path: Path, options: SqliteOptions) -> None:
        super().__init__(path, options)
        self._commits = 0
        self._checkpoint: Future[int] | None = None  # the background checkpoint
        self._wal_over = False  # the next write transaction first completes a checkpoint

    def _committed(self, big: bool = False) -> None:
        self._commits += BATCH_COMMIT_WEIGHT if big else 1
        if self._commits < CHECKPOINT_EVERY:
            return
        running = self._checkpoint
        if running is not None:
            if not running.done():
                if self._commits >= AHEAD_OF_CHECKPOINT:
                    self._wal_over = True
                return
            frames = running.result()
            if frames * self._page_size >= WAL_CHECKPOINT_AT:
                self._wal_over = True
        self._commits = 0
        if not self._closed:
            self._checkpoint = self._pool.submit(self._checkpoint_sync)

    def _checkpoint_sync(self) -> int:
        """A PASSIVE checkpoint on the worker's reader; the frames the WAL holds."""
        return self._passive()[0]

    def _passive(self) -> tuple[int, int]:
        """A PASSIVE checkpoint: ``(frames in the WAL, frames copied)``."""
        bg = self._bg
        if bg is None:
            return 0, 0
        try:
            _busy, frames, done = bg.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as err:
            log.warning("background WAL checkpoint failed: %s", err)
            return 0, 0
        return max(int(frames or 0), 0), max(int(done or 0), 0)

    async def _complete_checkpoint(self) -> None:
        """The checkpoint a write transaction runs first when the WAL is too large
        (the caller holds the writer: nothing of this process appends meanwhile)."""
        self._wal_over = False
        frames, done = await self.offload(self._passive)
        if frames > done and frames * self._page_size >= WAL_LIMIT:
            log.warning(
                "the WAL of %r holds %d MiB that a reader of another process keeps from "
                "being checkpointed",
                str(self.path),
                frames * self._page_size >> 20,
            )

    @property
    def wal_bytes(self) -> int:
        """The size of the ``-wal`` file now (0 when there is none)."""
        try:
            return os.stat(f"{self.path}-wal").st_size
        except OSError:
            return 0
