"""No secret leaves in text (issue 14, point 3).

Every failure path we can reach — the command line's one-line errors, its
``--debug`` tracebacks, the library's log records, the exceptions and their
chains, and the log of the PostgreSQL server the tests start — is searched for
the test account's private keys and secrets in every form they could take in
text (hex, upper-case hex, base64, URL-safe base64, Python's bytes repr, and
prefixes of each), and for the passwords of the URLs used.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

import wastore
from pg_server import pg_cluster  # noqa: F401
from wastore import portable
from wastore.backends.options import redact_url, url_secrets
from wastore.testing.pgcluster import PgCluster, db_url
from wastore.values import AccountDump

PASSWORD = "Pw-s3cr3t-9dKq"
SECRET_CLIENT = os.urandom(48)  # per-client bookkeeping a client may keep secret


def forms(secret: bytes) -> list[str]:
    """Every way ``secret`` (or a telling prefix of it) could be written in text."""
    out = []
    for part in (secret, secret[:8]):
        out += [
            part.hex(),
            part.hex().upper(),
            base64.b64encode(part).decode().rstrip("="),
            base64.urlsafe_b64encode(part).decode().rstrip("="),
        ]
        text = repr(part)[2:-1]
        if len(text) >= 20:
            out.append(text)
    return out


class Secrets:
    """The secrets of the test account, and a search through texts for any of them."""

    def __init__(self, dump: AccountDump) -> None:
        dev = dump.device
        self.values: dict[str, bytes] = {
            name: dev[name]
            for name in (
                "noise_key_private",
                "identity_key_private",
                "signed_pre_key_private",
                "adv_secret_key",
            )
        }
        for n, row in enumerate(dump.tables["prekeys"]):
            self.values[f"prekey {n}"] = row["record"]
        for n, row in enumerate(dump.tables["sessions"]):
            self.values[f"session {n}"] = row["record"]
        for n, row in enumerate(dump.tables["sync_keys"]):
            self.values[f"sync key {n}"] = row["key_data"]
        self.values["client data"] = SECRET_CLIENT
        self.texts = {name: forms(v) for name, v in self.values.items()}
        self.texts["password"] = [PASSWORD]

    def found(self, text: str) -> list[str]:
        return [
            f"{name} as {form[:12]}…"
            for name, fs in self.texts.items()
            for form in fs
            if form in text
        ]

    def assert_clean(self, where: str, text: str) -> None:
        leaks = self.found(text)
        assert not leaks, f"{where} shows {leaks}:\n{text[-3000:]}"


def chain_text(err: BaseException) -> str:
    """An exception as every reader could see it: its traceback with the whole chain,
    and the str and repr of every exception in the chain (and their attributes)."""
    parts = ["".join(traceback.format_exception(err))]
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        parts += [repr(v) for v in vars(current).values()] if hasattr(current, "__dict__") else []
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WASTORE_DEBUG", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "wastore.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli_both(secrets: Secrets, tmp: Path, *args: object, code: int | None = None) -> str:
    """Run a failing command with and without --debug; check both outputs; the error."""
    plain = cli(*args, cwd=tmp)
    debug = cli("--debug", *args, cwd=tmp)
    for name, proc in (("the error", plain), ("--debug", debug)):
        assert proc.returncode != 0, (args, proc.stdout)
        if code is not None:
            assert proc.returncode == code, (args, proc.stderr)
        secrets.assert_clean(
            f"wastore {' '.join(map(str, args))} ({name})", proc.stdout + proc.stderr
        )
    assert "Traceback" in debug.stderr or debug.stderr.count("\n") >= 1
    return plain.stderr


# -- the account ------------------------------------------------------------------


async def make_account(path: Path) -> AccountDump:
    """An account with every kind of secret, in an SQLite store; its export."""
    async with await wastore.open_store(path) as c:
        device_id = await c.create_device()
        b = c.backend(device_id)
        dev = await b.load()
        assert dev is not None
        dev = dev.with_client_data("someclient", SECRET_CLIENT)
        dev.pn = wastore.JID.parse("15551230000:3@s.whatsapp.net")
        await b.save(dev)
        await b.store_prekeys_batch([(i, os.urandom(72)) for i in range(1, 4)], False)
        await b.put_session("15559990000@s.whatsapp.net", os.urandom(300))
        await b.set_sync_key(
            b"\x00\x01\x02\x03\x04\x05", wastore.AppStateSyncKey(os.urandom(32), b"fp", 5)
        )
        return await c.export_account(device_id)


def refused_file(dump: AccountDump, path: Path) -> Path:
    """The account as a file whose checksum is right but whose pn_user is another
    number (refused by validation before anything is written)."""
    tables = {t: [dict(r) for r in rows] for t, rows in dump.tables.items()}
    tables["device"][0]["pn_user"] = "15550000000"
    path.write_bytes(portable.encode(AccountDump(tables)))
    return path


@pytest_asyncio.fixture
async def account(tmp_path: Path) -> tuple[AccountDump, Secrets]:
    dump = await make_account(tmp_path / "source.db")
    secrets = Secrets(dump)
    # The test would prove nothing if its own forms did not find the secrets.
    assert secrets.found(json.dumps(dump.device, default=lambda b: b.hex()))
    assert secrets.found(portable.encode(dump).decode())
    assert secrets.found(repr(dump.device["noise_key_private"]))
    return dump, secrets


# -- URLs ---------------------------------------------------------------------------

URL_SHAPES = [
    f"postgresql://user:{PASSWORD}@127.0.0.1:1/db",
    f"postgres:/user:{PASSWORD}@host/db",
    f"postgresql:/user:{PASSWORD}@host/db",
    f"user:{PASSWORD}@host/db",
    f"postgresql://user:{PASSWORD}",
    f"postgresql://user:{PASSWORD}@",
    f"postgresql://:{PASSWORD}@127.0.0.1:1/db",
    f"postgresql://user:{PASSWORD}@h1:1,h2:2/db",
    f"postgresql://user:{PASSWORD}@[::1/db",
    f"postgresql://user@127.0.0.1:1/db?password={PASSWORD}",
    f"postgresql://user@127.0.0.1:1/db?sslpassword={PASSWORD}&sslmode=disable",
    f"host=127.0.0.1 port=1 password={PASSWORD} dbname=x",
    f"host=127.0.0.1 password='{PASSWORD} x' dbname=x",
    f"postgresql://user:{PASSWORD}@127.0.0.1:1/db#frag",
    f"postgresql://user:{PASSWORD[:4]}@{PASSWORD[4:]}@127.0.0.1:1/db",
    f"postgresql://user:{PASSWORD[:4]}/{PASSWORD[4:]}@127.0.0.1:1/db",
    f"postgresql://user:{PASSWORD[:4]}?{PASSWORD[4:]}@127.0.0.1:1/db",
    f"postgresql://user:{PASSWORD[:4]}#{PASSWORD[4:]}@127.0.0.1:1/db",
    "postgresql://user:" + PASSWORD.replace("-", "%2D") + "@127.0.0.1:1/db",
    f"POSTGRESQL://USER:{PASSWORD}@127.0.0.1:1/DB",
    f"postgresql://user:{PASSWORD}@127.0.0.1:notaport/db",
]


def _pieces(text: str) -> list[str]:
    """The password, and the pieces of it a URL shape splits it into."""
    return [p for p in (PASSWORD, PASSWORD[:4], PASSWORD[4:], PASSWORD.replace("-", "%2D")) if p]


@pytest.mark.parametrize("url", URL_SHAPES)
def test_redact_url_hides_the_password_of_every_shape(url: str) -> None:
    shown = redact_url(url)
    for piece in _pieces(url):
        if piece in url:
            assert piece not in shown, (url, shown)
    # and the CLI learns it, to scrub it from whatever a driver may say
    tail = PASSWORD[4:].replace("-", "%2D") if "%2D" in url else PASSWORD[4:]
    assert any(tail in x for x in url_secrets(url)), url_secrets(url)


@pytest.mark.parametrize("url", URL_SHAPES)
async def test_opening_any_url_shape_never_shows_its_password(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    options: dict[str, Any] = {}
    if "://" in url and url.lower().startswith("postgres"):
        options["connect_timeout"] = 2
    elif ":" not in url:
        options["create"] = False  # a libpq keyword string reads as a file name
    try:
        store = await wastore.open_store(url, **options)
    except Exception as err:
        raised: BaseException = err
    else:
        await store.close()
        raise AssertionError(f"{url!r} opened")
    assert isinstance(raised, wastore.StoreError), chain_text(raised)
    text = chain_text(raised) + caplog.text
    assert PASSWORD not in text and PASSWORD[4:] not in text, text


@pytest.mark.parametrize(
    "url",
    [u for u in URL_SHAPES if "%2D" not in u],
)
def test_the_cli_never_shows_a_password_of_any_url_shape(url: str, tmp_path: Path) -> None:
    # --debug prints the traceback of the whole chain and then the one-line error.
    proc = cli("--debug", "devices", url, cwd=tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert proc.stderr.splitlines()[-1].startswith("wastore: error: "), proc.stderr
    out = proc.stdout + proc.stderr
    assert PASSWORD not in out and PASSWORD[4:] not in out, out


# -- SQLite ---------------------------------------------------------------------------


async def test_a_damaged_text_column_never_shows_its_text(
    tmp_path: Path, account: tuple[AccountDump, Secrets], caplog: pytest.LogCaptureFixture
) -> None:
    _dump, secrets = account
    db = tmp_path / "source.db"
    # One flipped byte in client_data (JSON of base64 secrets) makes it invalid UTF-8.
    conn = sqlite3.connect(db, isolation_level=None)
    (text,) = conn.execute("SELECT client_data FROM wastore_device").fetchone()
    raw = bytearray(text.encode())
    raw[len(raw) // 2] = 0xFF
    conn.execute("UPDATE wastore_device SET client_data = CAST(? AS TEXT)", (bytes(raw),))
    conn.close()
    caplog.set_level(logging.DEBUG)
    async with await wastore.open_store(db) as c:
        with pytest.raises(wastore.CorruptRecordError) as info:
            await c.backend(1).load()
        secrets.assert_clean("load() of a damaged device row", chain_text(info.value) + caplog.text)
        with pytest.raises(wastore.CorruptRecordError) as info:
            await c.export_account(1)
        secrets.assert_clean("export of a damaged device row", chain_text(info.value))
    cli_both(secrets, tmp_path, "export", db, "1", "-o", tmp_path / "out.json")
    cli_both(secrets, tmp_path, "show", db, "1")
    proc = cli("check", db, cwd=tmp_path)
    secrets.assert_clean("wastore check", proc.stdout + proc.stderr)
    assert proc.returncode == 1


async def test_a_refused_import_into_sqlite_shows_no_secret(
    tmp_path: Path, account: tuple[AccountDump, Secrets], caplog: pytest.LogCaptureFixture
) -> None:
    dump, secrets = account
    bad = refused_file(dump, tmp_path / "bad.json")
    target = tmp_path / "target.db"
    caplog.set_level(logging.DEBUG)
    async with await wastore.open_store(target) as c:
        with pytest.raises(wastore.ValidationError) as info:
            await c.import_account(portable.decode(bad.read_bytes()))
    secrets.assert_clean("import_account", chain_text(info.value) + caplog.text)
    line = cli_both(secrets, tmp_path, "import", target, bad, code=4)
    assert "pn_user" in line


# -- PostgreSQL -------------------------------------------------------------------------


@pytest_asyncio.fixture
async def pg_db(pg_cluster: PgCluster) -> AsyncIterator[str]:  # noqa: F811
    """A fresh database on the private cluster (whose server log the tests read)."""
    name = f"secrets_{os.getpid()}_{os.urandom(3).hex()}"
    conn = await asyncpg.connect(pg_cluster.url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await conn.close()
    url = db_url(pg_cluster.url, name)
    store = await wastore.open_store(url)
    await store.close()
    yield url


@pytest.fixture
def server_log(pg_cluster: PgCluster) -> Path:  # noqa: F811
    return pg_cluster.log


async def _pg_paths(
    url: str, tmp: Path, dump: AccountDump, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    """Every failure of an import into PostgreSQL that wastore's own schema can give."""
    good = tmp / "good.json"
    good.write_bytes(portable.encode(dump))
    bad = refused_file(dump, tmp / "bad.json")
    caplog.set_level(logging.DEBUG)
    # A refused file, in process and on the command line.
    async with await wastore.open_store(url) as c:
        with pytest.raises(wastore.ValidationError) as info:
            await c.import_account(portable.decode(bad.read_bytes()))
        secrets.assert_clean("import_account (refused)", chain_text(info.value) + caplog.text)
    cli_both(secrets, tmp, "import", url, bad, code=4)
    # The account imported, then again with other content: refused (it is there).
    ok = cli("import", url, good, cwd=tmp)
    assert ok.returncode == 0, ok.stderr
    secrets.assert_clean("a successful import", ok.stdout + ok.stderr)
    tables = {t: [dict(r) for r in rows] for t, rows in dump.tables.items()}
    tables["sessions"][0]["record"] = bytes(reversed(tables["sessions"][0]["record"]))
    other = tmp / "other.json"
    other.write_bytes(portable.encode(AccountDump(tables)))
    cli_both(secrets, tmp, "import", url, other, code=4)
    # An unreachable server, with a password in the URL.
    dead = f"postgresql://user:{PASSWORD}@127.0.0.1:1/db?connect_timeout=2"
    cli_both(secrets, tmp, "import", dead, good)


async def test_postgres_import_failures_show_no_secret_anywhere(
    pg_db: str,
    server_log: Path,
    tmp_path: Path,
    account: tuple[AccountDump, Secrets],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dump, secrets = account
    await _pg_paths(pg_db, tmp_path, dump, secrets, caplog)
    secrets.assert_clean("the PostgreSQL server log", server_log.read_text(errors="replace"))


async def test_a_constraint_added_by_hand_fails_without_showing_the_row(
    pg_db: str,
    tmp_path: Path,
    account: tuple[AccountDump, Secrets],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A constraint wastore does not know of (added by an administrator) fails a write
    that carries private keys: the server's error quotes the failing row, and wastore
    must show none of it (the server's own log is the administrator's to configure:
    docs/postgres.md)."""
    dump, secrets = account
    conn = await asyncpg.connect(pg_db)
    try:
        await conn.execute("ALTER TABLE wastore_device ADD CONSTRAINT no_pn CHECK (pn IS NULL)")
    finally:
        await conn.close()
    caplog.set_level(logging.DEBUG)
    async with await wastore.open_store(pg_db) as c:
        with pytest.raises(wastore.StoreError) as info:
            await c.import_account(dump)
        text = chain_text(info.value)
        assert "no_pn" in text  # the error is the constraint's
        secrets.assert_clean("import_account (constraint)", text + caplog.text)
        device_id = await c.create_device()
        b = c.backend(device_id)
        dev = await b.load()
        assert dev is not None
        dev.pn = wastore.JID.parse("15551230000:3@s.whatsapp.net")
        with pytest.raises(wastore.StoreError) as info:
            await b.save(dev)
        keys = Secrets(await c.export_account(device_id))
        keys.assert_clean("save() (constraint)", chain_text(info.value) + caplog.text)
    good = tmp_path / "good.json"
    good.write_bytes(portable.encode(dump))
    line = cli_both(secrets, tmp_path, "import", pg_db, good, code=3)
    assert "no_pn" in line and "values not shown" in line


async def test_a_memory_snapshot_shows_no_key_in_its_repr() -> None:
    """``MemoryStore.snapshots`` is public: its repr names the snapshots, never the
    account's keys or records."""
    store = await wastore.open_store("memory://")
    device_id = await store.create_device()
    b = store.backend(device_id)
    device = await b.load()
    assert device is not None
    session = os.urandom(64)
    await b.put_session("15550000001.0", session)
    await b.snapshot_db("before-bug", extra=SECRET_CLIENT)
    text = repr(store.snapshots)
    assert "before-bug" in text
    for secret in (device.noise_key.private, device.identity_key.private, session, SECRET_CLIENT):
        assert not any(form in text for form in forms(secret)), text
    await store.close()


def test_scrubbing_reaches_every_text_of_an_error_chain() -> None:
    """A driver error may quote a URL's password in its arguments, in attributes of its
    own (asyncpg's ``detail``, ``hint``), in an ``OSError``'s file name or in a note; none
    of it survives in the chain."""
    from wastore.backends.options import scrub_secrets

    class DriverError(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.detail = f"connection to u:{PASSWORD}@h refused"
            self.hint = None

    cause = OSError(2, "no such file", f"/tmp/{PASSWORD}")
    err = DriverError(f"bad password {PASSWORD}")
    err.add_note(f"while opening postgresql://u:{PASSWORD}@h/db")
    err.__cause__ = cause
    scrub_secrets(err, {PASSWORD})
    shown = "".join(traceback.format_exception(err))
    shown += repr(vars(err)) + repr(cause.filename)
    assert PASSWORD not in shown
    assert "***" in err.args[0] and "***" in err.detail and "***" in err.__notes__[0]
