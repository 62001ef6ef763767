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

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ENV_URL = "WASTORE_BENCH_POSTGRES_URL"


def find_bindir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl`` (``WASTORE_PG_BINDIR``, PATH, Debian's)."""
    candidates: list[str] = []
    if os.environ.get("WASTORE_PG_BINDIR"):
        candidates.append(os.environ["WASTORE_PG_BINDIR"])
    found = shutil.which("initdb")
    if found:
        candidates.append(os.path.dirname(found))

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgCluster:
    """``initdb`` + ``pg_ctl start`` in a temporary folder; :meth:`destroy` removes it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wastore-bench-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.running = False
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def version(self) -> str:
        out = subprocess.run(  # noqa: S603 -- the server binary found by find_bindir
            [str(self.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip()

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root needs `runuser` to start PostgreSQL")
            cmd = [runuser, "-u", "postgres", "--", *cmd]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        proc = subprocess.run(  # noqa: S603 -- fixed initdb / pg_ctl commands
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}"
            )

    def start(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c shared_buffers=128MB",
                "-c max_connections=100",
                "-c log_min_messages=warning",
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        self.running = True

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)


def db_url(server_url: str, dbname: str) -> str:
    """``server_url`` pointing at database ``dbname``."""
    return urlsplit(server_url)._replace(path="/" + dbname).geturl()
