"""A throwaway PostgreSQL server for the benchmark (or the one named by
``WASTORE_BENCH_POSTGRES_URL``).

``initdb`` refuses to run as root, so when the harness runs as root the server
binaries run as the ``postgres`` user (``runuser -u postgres --``). The
cluster lives in a temporary folder (data directory and unix socket), listens
on 127.0.0.1 on a free port, and is removed at the end.

Server settings: ``fsync=off`` and ``full_page_writes=off`` — the benchmark
measures the cost of the client libraries and of the server's work, not of
this shared machine's disk (SQLite runs with ``synchronous=NORMAL``, which does
not fsync on commit either); ``shared_buffers=128MB`` so that every workload's
data fits in memory.
"""

from __future__ import annotations

from wastore.testing.pgcluster import PgCluster, db_url, find_bindir

ENV_URL = "WASTORE_BENCH_POSTGRES_URL"
SHARED_BUFFERS = "128MB"
"""Every workload's data fits in the server's memory."""

__all__ = ["ENV_URL", "SHARED_BUFFERS", "PgCluster", "db_url", "find_bindir"]
