"""pywhats' source distribution, fetched from PyPI at test time, and its fake WhatsApp server.

pywhats' sdist ships a fake WhatsApp server (``tests/fakeserver``: a real
Noise XX responder, binary framing, a Signal peer) and the tests that drive a
real ``pywhats.Client`` against it. wastore's tests and its W6-pywhats
benchmark use both. They are third-party code: never copied into the
repository, but downloaded by pip from the package index (pinned by version
and sha256), unpacked into a git-ignored cache folder and used from there::

    from wastore.testing.pywhats_sdist import load_fakeserver, pywhats_sdist

    root = pywhats_sdist()                 # .../pywhats-0.2.0 (downloaded once)
    fake = load_fakeserver()               # the sdist's tests/fakeserver package
    async with fake.FakeWhatsAppServer(peer=fake.SignalPeer(jid=...)) as server:
        ...

The cache folder is ``$WASTORE_THIRD_PARTY_CACHE`` or ``.cache/third-party`` in
the current directory (the checkout when tests and benchmarks run).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Final

PYWHATS_VERSION: Final = "0.2.0"
SDIST_SHA256: Final = "d5ae7dbdb024921b38aa47c5db79dfdeed1d2fe9a06a4551c7c91a79742b96bb"
CACHE_ENV: Final = "WASTORE_THIRD_PARTY_CACHE"
FAKESERVER_MODULE: Final = "pywhats_fakeserver"


class SdistUnavailableError(RuntimeError):
    """The sdist could not be downloaded (no package index reachable) or is not the pinned one."""


def cache_dir() -> Path:
    """The git-ignored folder third-party code is cached in."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    return Path(configured) if configured else Path.cwd() / ".cache" / "third-party"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test processes download once
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _download(into: Path) -> Path:
    requirement = into / "requirement.txt"
    requirement.write_text(f"pywhats=={PYWHATS_VERSION} --hash=sha256:{SDIST_SHA256}\n")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--require-hashes",
        "--quiet",
        "--dest",
        str(into),
        "-r",
        str(requirement),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    archive = into / f"pywhats-{PYWHATS_VERSION}.tar.gz"
    if done.returncode != 0 or not archive.exists():
        raise SdistUnavailableError(
            f"pip could not download pywhats=={PYWHATS_VERSION} (sdist) from the package index: "
            + (done.stderr.strip().splitlines() or ["no output"])[-1]
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:  # pip checked it already; this guards the cache
        raise SdistUnavailableError(f"{archive} has sha256 {digest}, not the pinned {SDIST_SHA256}")
    return archive


def pywhats_sdist() -> Path:
    """The unpacked pywhats sdist (downloaded and unpacked on first use)."""
    root = cache_dir()
    target = root / f"pywhats-{PYWHATS_VERSION}"
    marker = target / ".complete"
    if marker.exists():
        return target
    with _locked(root):
        if marker.exists():
            return target
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            archive = _download(Path(tmp))
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            unpacked = Path(tmp) / f"pywhats-{PYWHATS_VERSION}"
            (unpacked / ".complete").write_text(SDIST_SHA256 + "\n")
            if target.exists():
                shutil.rmtree(target)
            unpacked.rename(target)
    return target


def load_fakeserver() -> ModuleType:
    """The sdist's ``tests/fakeserver`` package, imported as ``pywhats_fakeserver``.

    It is imported under that name (not as ``tests.fakeserver``) so that it
    cannot collide with anyone's ``tests`` package.
    """
    loaded = sys.modules.get(FAKESERVER_MODULE)
    if loaded is not None:
        return loaded
    package = pywhats_sdist() / "tests" / "fakeserver"
    spec = importlib.util.spec_from_file_location(
        FAKESERVER_MODULE, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[FAKESERVER_MODULE] = module
    try:
        with warnings.catch_warnings():  # pywhats.signal.experimental warns at import
            warnings.simplefilter("ignore", DeprecationWarning)
            spec.loader.exec_module(module)
            importlib.import_module(f"{FAKESERVER_MODULE}.factories")
    except BaseException:
        sys.modules.pop(FAKESERVER_MODULE, None)
        raise
    return module
