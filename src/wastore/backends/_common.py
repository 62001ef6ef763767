"""Rules shared by every backend, written once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Final, TypeVar

from ..errors import ConfigError
from ..values import MsgSecret

T = TypeVar("T")

MAX_SNAPSHOT_NAME: Final = 100
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


def sanitize_snapshot_name(name: object) -> str:
    """Letters, digits and ``._-`` only, at most 100 characters, never a path.

    Anything else becomes ``_``; leading dots are dropped so the result is never
    ``.``/``..`` or a hidden file; an empty result becomes ``snapshot``.
    """
    text = name if isinstance(name, str) else str(name)
    safe = _UNSAFE.sub("_", text)[:MAX_SNAPSHOT_NAME].lstrip(".")
    return safe or "snapshot"


def utc_stamp() -> str:
    """A UTC timestamp for file names: ``20261126T093012.123456Z``."""
    now = time.time()
    frac = int((now % 1) * 1_000_000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{frac:06d}Z"


def several_accounts(ids: list[int]) -> ConfigError:
    """The error of ``first_device()`` on a store holding more than one account."""
    shown = ", ".join(str(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
    return ConfigError(
        f"the store holds several accounts (device ids {shown}): open one by id "
        "(container.backend(device_id)) or by JID (container.find_device(jid))"
    )


def now_s() -> int:
    return int(time.time())


def user_matches(address: str, user: str) -> bool:
    """Whether a signal address ``user[:device]@server`` belongs to ``user``."""
    return address.startswith(user) and address[len(user) : len(user) + 1] in ("@", ":")


def sender_key_user_matches(address: str, user: str) -> bool:
    """Whether a sender-key address ``group::sender`` has a sender of ``user``."""
    _, sep, sender = address.partition("::")
    return bool(sep) and user_matches(sender, user)


def merge_msg_secret(old: MsgSecret, new: MsgSecret) -> MsgSecret:
    """Conflict rule: ``expires_at`` 0 (never) wins, else the later; ``message_ts`` is the max."""
    if old.expires_at == 0 or new.expires_at == 0:
        expires = 0
    else:
        expires = max(old.expires_at, new.expires_at)
    return MsgSecret(
        chat=new.chat,
        sender=new.sender,
        msg_id=new.msg_id,
        secret=new.secret,
        expires_at=expires,
        message_ts=max(old.message_ts, new.message_ts),
    )


PRIVATE_MODE: Final = 0o600
PRIVATE_DIR_MODE: Final = 0o700


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents with mode 0700, whatever the umask
    (``Path.mkdir(parents=True)`` gives the parents the umask's mode: 0777 under
    umask 000). Existing folders are left as they are."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, PRIVATE_DIR_MODE)  # the umask may have taken bits away


_TMP_PREFIX: Final = ".wastore-tmp-"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (mode 0600).

    The data is written, fsynced and renamed over ``path``, then the folder is
    fsynced: a crash leaves the old file or the new one, never half of one. Used
    for snapshots and exports, which hold private keys, so no copy of the data may
    outlive a killed writer: on Linux the data goes into an unnamed file
    (``O_TMPFILE``) that gets a name only for the instant of the rename; elsewhere,
    and for that instant, the temporary name carries the writer's process id, and
    every write removes the leftovers of writers that no longer run.
    """
    folder = path.parent if str(path.parent) else Path(".")
    remove_dead_leftovers(folder)
    tmp = folder / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}"
    fd, named = _open_unnamed(folder)
    if fd is None:
        fd, named = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_MODE), True
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), PRIVATE_MODE)  # whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if not named:
                _link_unnamed(f.fileno(), tmp)
                named = True
        os.replace(tmp, path)
    except BaseException:
        if named:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # not every platform can open a directory
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _open_unnamed(folder: Path) -> tuple[int | None, bool]:
    """An unnamed file in ``folder`` (``O_TMPFILE``: it vanishes with the process unless
    linked), or None where the platform or the file system has none."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None, False
    try:
        return os.open(folder, flag | os.O_WRONLY, PRIVATE_MODE), False
    except OSError:  # EOPNOTSUPP / EISDIR / EINVAL: no O_TMPFILE on this file system
        return None, False


def _link_unnamed(fd: int, name: Path) -> None:
    """Give the unnamed file ``fd`` the name ``name`` (``linkat`` through ``/proc``;
    a directory fd makes Python call ``linkat`` with ``AT_SYMLINK_FOLLOW`` rather than
    ``link``, which would link the ``/proc`` symlink itself)."""
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"self/fd/{fd}", name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def remove_dead_leftovers(folder: Path) -> None:
    """Remove the temporary files of :func:`write_private` calls whose process is gone
    (a writer killed at the instant of its rename, or on a platform without
    ``O_TMPFILE``)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(_TMP_PREFIX)]
    except OSError:
        return
    for name in names:
        pid_text = name[len(_TMP_PREFIX) :].partition("-")[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(folder / name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


async def shielded(work: Awaitable[T]) -> T:
    """Await ``work`` (a task or future), which runs to its end even if the caller is
    cancelled: the caller then waits for it before the cancellation goes on (a
    connection in the middle of a statement must not be handed to anyone else)."""
    fut = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await fut
        raise
