"""SQLite files and the errors of their file system (issue 14, point 6).

File modes, folders under any umask, a read-only file or mount, a permission,
the process's file-size limit, a damaged version row, and a writer of private
files killed in the middle.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import wastore
from wastore import BackendUnavailableError, SchemaError
from wastore.backends._common import write_private

ROOT = os.geteuid() == 0
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _drop_file_capabilities() -> None:
    """In a child about to exec: drop the capabilities that let root ignore file modes
    and ownership (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so that the
    program it runs meets modes as any user would."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_child(code: str, *, unprivileged: bool = False, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter (without root's power over file modes when
    asked); its stdout and stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_drop_file_capabilities if unprivileged and ROOT else None,
    )
    return proc.stdout + proc.stderr


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for files that a child without root's powers must meet as they are."""
    folder = tmp_path / "shared"
    folder.mkdir()
    try:
        yield folder
    finally:
        for p in (folder, *folder.rglob("*")):  # let pytest remove what was locked
            with contextlib.suppress(OSError):
                p.chmod(0o700 if p.is_dir() else 0o600)


async def make_db(path: Path) -> None:
    async with await wastore.open_store(path) as c:
        await c.create_device()


# -- modes -----------------------------------------------------------------------


async def test_an_existing_loose_database_is_tightened_with_its_wal_and_shm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "wa.db"
    await make_db(db)
    db.chmod(0o644)
    # A -wal and -shm left behind with loose modes (another tool, a copy).
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").write_bytes(b"")
        Path(f"{db}{suffix}").chmod(0o666)
    Path(f"{db}-wal").unlink()  # an empty -wal would not be valid: let SQLite create it
    async with await wastore.open_store(db) as c:
        await c.create_device()
        assert mode(db) == 0o600
        assert mode(Path(f"{db}-wal")) == 0o600
        assert mode(Path(f"{db}-shm")) == 0o600
    assert "changed to 0600" in caplog.text  # and logged


async def test_a_loose_database_of_another_user_is_refused(shared_dir: Path) -> None:
    if not ROOT:
        pytest.skip("needs root to give the file to another user")
    db = shared_dir / "theirs.db"
    await make_db(db)
    os.chown(db, NOBODY, NOBODY)
    db.chmod(0o666)
    # The child cannot change the mode of a file it does not own.
    out = run_child(
        f"""
        import asyncio, wastore
        async def main():
            try:
                await wastore.open_store({str(db)!r})
            except wastore.BackendUnavailableError as err:
                print("REFUSED", err)
        asyncio.run(main())
        """,
        unprivileged=True,
    )
    assert "REFUSED" in out and "mode 0666" in out and "chmod 600" in out, out


async def test_new_folders_are_private_under_umask_000(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "c" / "wa.db"
    old = os.umask(0)
    try:
        await make_db(db)
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert mode(folder) == 0o700, folder
    assert mode(db) == 0o600


async def test_snapshot_folders_are_private_under_umask_000(tmp_path: Path) -> None:
    db = tmp_path / "wa.db"
    snaps = tmp_path / "s1" / "s2"
    async with await wastore.open_store(db, snapshot_dir=str(snaps)) as c:
        backend = c.backend(await c.create_device())
        old = os.umask(0)
        try:
            where = await backend.snapshot_db("x")
        finally:
            os.umask(old)
    assert mode(tmp_path / "s1") == 0o700 and mode(snaps) == 0o700
    assert mode(Path(where)) == 0o600


# -- what a failure says ---------------------------------------------------------------


def open_unprivileged(db: Path) -> str:
    """Open ``db`` in a child without root's power over file modes; what its
    ``StoreError`` says (type and message)."""
    return run_child(
        f"""
        import asyncio, wastore
        async def main():
            try:
                await wastore.open_store({str(db)!r})
            except wastore.StoreError as err:
                print(type(err).__name__, err)
        asyncio.run(main())
        """,
        unprivileged=True,
    )


async def test_a_read_only_file_says_so(shared_dir: Path) -> None:
    db = shared_dir / "ro.db"
    await make_db(db)
    db.chmod(0o444)
    if ROOT:
        os.chown(db, 0, 0)
    out = open_unprivileged(db)
    assert "BackendUnavailableError" in out, out
    assert "permission denied" in out and "mode 0444" in out, out
    assert "unable to open database file" not in out


async def test_a_folder_without_write_permission_says_so(shared_dir: Path) -> None:
    folder = shared_dir / "locked"
    folder.mkdir()
    db = folder / "wa.db"
    await make_db(db)  # closed: its -wal and -shm are gone
    db.chmod(0o666)
    folder.chmod(0o555)
    out = open_unprivileged(db)
    assert "BackendUnavailableError" in out, out
    assert "folder" in out and "not writable" in out and "-wal" in out, out


@pytest.fixture
def ro_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding a database, remounted read-only (needs the right to mount)."""
    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


async def test_a_read_only_mount_says_so(ro_mount: Path) -> None:
    db = ro_mount / "wa.db"
    await make_db(db)
    subprocess.run(["mount", "-o", "remount,ro", str(ro_mount)], check=True)
    with pytest.raises(BackendUnavailableError, match="read-only file system"):
        await wastore.open_store(db)


def test_the_file_size_limit_says_so(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    out = run_child(
        f"""
        import asyncio, os, resource, wastore
        async def main():
            async with await wastore.open_store({str(db)!r}) as c:
                b = c.backend(await c.create_device())
                resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
                try:
                    for i in range(10_000):
                        await b.put_session(f"{{i}}@s.whatsapp.net", os.urandom(1200))
                except wastore.StoreError as err:
                    print(type(err).__name__, err)
        asyncio.run(main())
        """
    )
    assert "BackendUnavailableError" in out, out
    assert "file-size limit" in out and "RLIMIT_FSIZE" in out, out


async def test_a_text_version_row_is_a_schema_error(tmp_path: Path) -> None:
    db = tmp_path / "wa.db"
    await make_db(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE wastore_version SET version = 'four'")
    conn.close()
    with pytest.raises(SchemaError, match="two integers"):
        await wastore.open_store(db)


def test_a_text_version_row_is_exit_6_in_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "wa.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE wastore_version (version INTEGER NOT NULL, compat INTEGER)")
    conn.execute("INSERT INTO wastore_version VALUES ('x', 1)")
    conn.close()
    proc = subprocess.run(
        [sys.executable, "-m", "wastore.cli", "devices", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 6, proc.stderr
    assert "two integers" in proc.stderr


# -- private files of a writer that is killed -----------------------------------------------


def _kill_mid_write(folder: Path, target: str, fallback: bool) -> None:
    """Start a child writing 300 MB with write_private() and SIGKILL it in the middle."""
    code = f"""
        import os, sys
        from pathlib import Path
        from wastore.backends import _common
        if {fallback!r}:
            _common._open_unnamed = lambda folder: (None, False)
        print("start", flush=True)
        _common.write_private(Path({str(folder / target)!r}), os.urandom(1 << 20) * 300)
        """
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "start"
            deadline = time.monotonic() + 60
            # In the middle: the child has a file open in the folder, partly written.
            while time.monotonic() < deadline:
                if _writing(proc.pid, folder):
                    break
                time.sleep(0.005)
            else:
                raise AssertionError("the child never started writing")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _writing(pid: int, folder: Path) -> bool:
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith(str(folder)) and os.stat(f"/proc/{pid}/fd/{fd}").st_size > 1 << 20:
                return True
    return False


def test_a_killed_export_writer_leaves_no_file(tmp_path: Path) -> None:
    _kill_mid_write(tmp_path, "account.json", fallback=False)
    assert sorted(os.listdir(tmp_path)) == []


def test_the_leftover_of_a_killed_writer_is_removed_by_the_next_write(tmp_path: Path) -> None:
    # Without O_TMPFILE the data is written under a temporary name: a kill leaves it...
    _kill_mid_write(tmp_path, "account.json", fallback=True)
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith(".wastore-tmp-")
    assert mode(tmp_path / left[0]) == 0o600
    # ... until the next private write into that folder removes it.
    write_private(tmp_path / "other.json", b"{}")
    assert sorted(os.listdir(tmp_path)) == ["other.json"]


def test_write_private_keeps_the_leftovers_of_live_writers(tmp_path: Path) -> None:
    live = tmp_path / f".wastore-tmp-{os.getpid()}-abcd1234-x.json"
    live.write_bytes(b"in progress")
    write_private(tmp_path / "y.json", b"{}")
    assert live.exists() and (tmp_path / "y.json").read_bytes() == b"{}"
    assert mode(tmp_path / "y.json") == 0o600
