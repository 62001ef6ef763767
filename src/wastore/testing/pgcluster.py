"""A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary folder.

wastore's own tests and benchmarks start their server with it, and a third
party testing a backend (or an application) against a real server can too::

    from wastore.testing.pgcluster import start_cluster

    cluster = start_cluster()          # None when the server binaries are missing
    try:
        url = cluster.url              # postgresql://postgres@127.0.0.1:PORT/postgres
        ...
    finally:
        cluster.destroy()

``initdb`` refuses to run as root, so as root the binaries run as the
``postgres`` user. The binaries are looked up in ``WASTORE_PG_BINDIR``, on
``PATH`` and in ``/usr/lib/postgresql/*/bin``. The cluster listens on
127.0.0.1 on a free port (and on a unix socket in its folder) and runs with
``fsync=off`` unless asked otherwise: a crash of the server *process* still
loses nothing committed (the WAL reaches the operating system at commit);
only a power failure would.
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


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None."""
    candidates: list[str] = []
    if os.environ.get("WASTORE_PG_BINDIR"):
        candidates.append(os.environ["WASTORE_PG_BINDIR"])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.dirname(on_path))

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgCluster:
    """A PostgreSQL cluster in a temporary folder, on 127.0.0.1 and a free port.

    Tuned for a small machine: ``fsync=off`` by default, small shared buffers,
    ``max_connections=100``. :meth:`init`, :meth:`start`, :meth:`stop` (a
    crash with ``mode="immediate"``), :meth:`destroy`.
    """

    def __init__(
        self, bindir: Path, *, max_connections: int = 100, shared_buffers: str = "32MB"
    ) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.max_connections = max_connections
        self.shared_buffers = shared_buffers
        self._as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="wastore-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.running = False
        if self._as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def version(self) -> str:
        """What ``postgres --version`` prints."""
        out = subprocess.run(  # noqa: S603 -- the server binary found by find_bindir
            [str(self.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip()

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            runuser = shutil.which("runuser")
            if runuser:
                cmd = [runuser, "-u", "postgres", "--", *cmd]
            else:
                cmd = ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(cmd)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        proc = subprocess.run(  # noqa: S603 -- fixed initdb / pg_ctl commands
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n{log}"
            )

    def init(self) -> None:
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

    def start(self, *, fsync: bool = False) -> None:
        sync = "on" if fsync else "off"
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                f"-c fsync={sync}",
                f"-c full_page_writes={sync}",
                f"-c shared_buffers={self.shared_buffers}",
                f"-c max_connections={self.max_connections}",
                "-c log_min_messages=warning",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode`` (``immediate`` kills the server: a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(*, fsync: bool = False, shared_buffers: str = "32MB") -> PgCluster | None:
    """A running cluster, or None when there are no server binaries (or, as root,
    no ``postgres`` user to run them as)."""
    bindir = find_bindir()
    if bindir is None:
        return None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None
    cluster = PgCluster(bindir, shared_buffers=shared_buffers)
    try:
        cluster.init()
        cluster.start(fsync=fsync)
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def db_url(server_url: str, dbname: str) -> str:
    """``server_url`` pointing at database ``dbname`` (query options kept)."""
    return urlsplit(server_url)._replace(path="/" + dbname).geturl()
