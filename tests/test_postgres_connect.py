"""Connecting to PostgreSQL: each failure named for what it is, within the retry budget.

Every cause is produced for real: a closed port (refused), a name under
``.invalid`` (DNS), a listening socket that never speaks (timeout), the test
cluster with an unknown role, an unknown database, a wrong password (a
``scram-sha-256`` rule for one role in ``pg_hba.conf``) and ``sslmode=require``
(the cluster has no TLS), and a socket that accepts TLS and then sends garbage.
What retrying cannot fix (authentication, role, database, TLS) is raised at once
after one connection, counted by a forwarding socket in front of the server.
Durations are only checked against the budget they must stay within.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

import wastore
from pg_server import PgServer
from wastore import BackendUnavailableError, ConfigError, StoreError
from wastore.backends.postgres.store import read_schema_version
from wastore.testing.pgcluster import PgCluster, db_url

pytestmark = pytest.mark.postgres

PASSWORD = "Pw-never-shown-9f3e"  # must appear in no message, chain or output
SLACK = 1.5  # scheduling slack on a busy 2-core machine (seconds)


def _chain(err: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = err
    while seen is not None and seen not in out:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def assert_no_password(err: BaseException) -> None:
    for e in _chain(err):
        assert PASSWORD not in str(e), repr(e)
        assert PASSWORD not in repr(e), repr(e)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Listener:
    """A TCP server on 127.0.0.1 that records when it accepted each connection."""

    port: int = 0
    accepted: list[float] = field(default_factory=list)

    @property
    def connections(self) -> int:
        return len(self.accepted)


@contextlib.asynccontextmanager
async def serving(handle: object, record: Listener) -> AsyncIterator[Listener]:
    handlers: set[asyncio.Task[object]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record.accepted.append(time.monotonic())
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handle(reader, writer)  # type: ignore[operator]
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # cancelled: the test is over (see below)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    record.port = server.sockets[0].getsockname()[1]
    try:
        yield record
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def silent() -> AsyncIterator[Listener]:
    """Accepts TCP connections and never says a word (until the client gives up)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass

    async with serving(handle, Listener()) as listener:
        yield listener


async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy ``src`` to ``dst`` until ``src`` ends, then close ``dst``."""
    with contextlib.suppress(OSError):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    with contextlib.suppress(OSError):
        dst.close()


@contextlib.asynccontextmanager
async def forwarding(target_url: str) -> AsyncIterator[Listener]:
    """Forwards each connection to the server of ``target_url``, counting them."""
    target = urlsplit(target_url)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(target.hostname, target.port)
        try:
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        finally:
            up_w.close()
            with contextlib.suppress(OSError):
                await up_w.wait_closed()

    async with serving(handle, Listener()) as listener:
        yield listener


@contextlib.asynccontextmanager
async def garbage_tls() -> AsyncIterator[Listener]:
    """Says yes to the TLS request, then sends bytes that are no TLS handshake."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)  # the SSLRequest packet
        writer.write(b"S")
        await writer.drain()
        await reader.read(4096)  # the ClientHello
        writer.write(b"this is not a TLS record\r\n" * 8)
        await writer.drain()
        await reader.read(4096)

    async with serving(handle, Listener()) as listener:
        yield listener


def via(url: str, port: int, *, user: str | None = None, dbname: str | None = None) -> str:
    """``url`` pointed at 127.0.0.1:``port`` (optionally another user and database)."""
    parts = urlsplit(url)
    name = user if user is not None else parts.username or "postgres"
    auth = name if user is not None or parts.password is None else f"{name}:{parts.password}"
    path = f"/{dbname}" if dbname is not None else parts.path
    return parts._replace(netloc=f"{auth}@127.0.0.1:{port}", path=path).geturl()


@dataclass
class Failure:
    err: StoreError
    started: float
    ended: float

    @property
    def took(self) -> float:
        return self.ended - self.started


async def open_failing(url: str, **options: object) -> tuple[StoreError, float]:
    failure = await open_failure(url, **options)
    return failure.err, failure.took


async def open_failure(url: str, **options: object) -> Failure:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await wastore.open_store(url, **options)
    return Failure(caught.value, started, time.monotonic())


# -- retried within the budget, named for what it is ---------------------------------


async def test_a_refused_port_is_named_and_fails_within_the_budget() -> None:
    url = f"postgresql://wa:{PASSWORD}@127.0.0.1:{closed_port()}/wa"
    err, took = await open_failing(url, retry_timeout=1.0)
    assert isinstance(err, BackendUnavailableError)
    text = str(err)
    assert "connection refused" in text and "ConnectionRefusedError" in text, text
    assert "TimeoutError" not in text, text
    assert isinstance(err.__cause__, ConnectionRefusedError)
    assert took < 1.0 + SLACK, took
    assert_no_password(err)


async def test_an_unresolvable_host_is_named_as_dns() -> None:
    url = f"postgresql://wa:{PASSWORD}@no-such-host.invalid:5432/wa"
    err, took = await open_failing(url, retry_timeout=1.0)
    assert isinstance(err, BackendUnavailableError)
    assert "cannot be resolved (DNS)" in str(err), str(err)
    assert "TimeoutError" not in str(err)
    assert isinstance(err.__cause__, socket.gaierror)
    assert took < 1.0 + SLACK, took
    assert_no_password(err)


async def test_a_server_that_never_answers_times_out_within_the_budget() -> None:
    # connect_timeout defaults to retry_timeout: one attempt uses the whole budget,
    # and the budget counts from that attempt's start (not from its failure).
    async with silent() as server:
        url = f"postgresql://wa:{PASSWORD}@127.0.0.1:{server.port}/wa"
        err, took = await open_failing(url, retry_timeout=2.0)
    assert isinstance(err, BackendUnavailableError)
    assert "no answer within 2s" in str(err), str(err)
    assert took < 2.0 + SLACK, took
    assert server.connections == 1
    assert_no_password(err)


async def test_no_connection_attempt_is_cut_to_nothing_by_the_budget() -> None:
    async with silent() as server:
        url = f"postgresql://wa@127.0.0.1:{server.port}/wa"
        failed = await open_failure(url, retry_timeout=1.5, connect_timeout=0.6)
    assert isinstance(failed.err, BackendUnavailableError)
    assert "no answer within 0.6s" in str(failed.err), str(failed.err)
    assert failed.took < 1.5 + SLACK, failed.took
    assert server.connections >= 2
    # each attempt lasted until the next began (or the call failed): at least
    # MIN_CONNECT_ATTEMPT (0.25 s) each, never 1 ms
    ends = [*server.accepted[1:], failed.ended]
    spans = [end - start for start, end in zip(server.accepted, ends, strict=True)]
    assert min(spans) >= 0.24, spans


async def test_a_server_that_comes_up_within_the_budget_is_reached(pg_url: str) -> None:
    port = closed_port()
    target = urlsplit(pg_url)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(target.hostname, target.port)
        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def late_start() -> asyncio.Server:
        await asyncio.sleep(0.5)  # refused until then
        return await asyncio.start_server(relay, "127.0.0.1", port)

    starting = asyncio.create_task(late_start())
    started = time.monotonic()
    store = await wastore.open_store(via(pg_url, port), retry_timeout=5.0)
    server = await starting
    try:
        assert time.monotonic() - started >= 0.5  # it was refused, and retried
        assert await store.devices() == []
    finally:
        await store.close()
        server.close()
        await server.wait_closed()


# -- not retried: what another attempt cannot fix ---------------------------------------


async def test_an_unknown_role_is_refused_at_once(pg_server: PgServer) -> None:
    async with forwarding(pg_server.url) as proxy:
        url = via(pg_server.url, proxy.port, user="wastore_no_such_role")
        err, took = await open_failing(url, retry_timeout=5.0)
    assert isinstance(err, ConfigError)
    assert "the login was refused" in str(err) and "wastore_no_such_role" in str(err)
    assert proxy.connections == 1
    assert took < 5.0


async def test_an_unknown_database_is_refused_at_once(pg_server: PgServer) -> None:
    async with forwarding(pg_server.url) as proxy:
        url = via(pg_server.url, proxy.port, dbname="wastore_no_such_db")
        err, _ = await open_failing(url, retry_timeout=5.0)
    assert isinstance(err, ConfigError)
    assert "no such database" in str(err) and "wastore_no_such_db" in str(err)
    assert proxy.connections == 1


async def test_tls_required_by_the_client_but_not_offered_is_refused_at_once(
    pg_server: PgServer,
) -> None:
    async with forwarding(pg_server.url) as proxy:
        url = via(pg_server.url, proxy.port) + "?sslmode=require"
        err, _ = await open_failing(url, retry_timeout=5.0)
    assert isinstance(err, ConfigError)
    assert "TLS failed" in str(err) and "rejected SSL upgrade" in str(err), str(err)
    assert proxy.connections == 1


async def test_a_broken_tls_handshake_is_refused_at_once() -> None:
    async with garbage_tls() as server:
        url = f"postgresql://wa:{PASSWORD}@127.0.0.1:{server.port}/wa?sslmode=require"
        err, _ = await open_failing(url, retry_timeout=5.0)
    assert isinstance(err, ConfigError)
    assert "TLS failed" in str(err) and "SSL" in str(err), str(err)
    assert server.connections == 1
    assert_no_password(err)


PW_ROLE = "wastore_pw_role"


@pytest.fixture
def password_cluster(request: pytest.FixtureRequest, pg_server: PgServer) -> Iterator[str]:
    """The admin URL of a cluster where ``PW_ROLE`` must log in with a password
    (a ``scram-sha-256`` rule for that role only, ahead of the ``trust`` rules)."""
    cluster: PgCluster | None = pg_server.cluster
    if cluster is None:  # an outside server: use a private cluster instead
        cluster = request.getfixturevalue("pg_cluster")
    assert cluster is not None
    hba = Path(cluster.data) / "pg_hba.conf"
    original = hba.read_text()
    rule = f"host all {PW_ROLE} 127.0.0.1/32 scram-sha-256\n"
    admin = cluster.url

    async def setup() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f"DROP ROLE IF EXISTS {PW_ROLE}")
            await conn.execute("SET password_encryption = 'scram-sha-256'")
            await conn.execute(f"CREATE ROLE {PW_ROLE} LOGIN PASSWORD 'the-right-one'")
            with hba.open("w") as f:  # in place: keeps the file's owner and mode
                f.write(rule + original)
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    async def teardown() -> None:
        with hba.open("w") as f:
            f.write(original)
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute("SELECT pg_reload_conf()")
            await conn.execute(f"DROP ROLE IF EXISTS {PW_ROLE}")
        finally:
            await conn.close()

    asyncio.run(setup())
    try:
        yield admin
    finally:
        asyncio.run(teardown())


async def test_a_wrong_password_is_refused_at_once_and_never_shown(password_cluster: str) -> None:
    parts = urlsplit(password_cluster)
    right = db_url(
        parts._replace(netloc=f"{PW_ROLE}:the-right-one@{parts.hostname}:{parts.port}").geturl(),
        "postgres",
    )
    conn = await asyncpg.connect(right)  # the rule is in force: the right password works
    await conn.close()
    async with forwarding(password_cluster) as proxy:
        wrong = via(right, proxy.port).replace("the-right-one", PASSWORD)
        err, took = await open_failing(wrong, retry_timeout=5.0)
        schema_err: BaseException | None = None
        try:
            await read_schema_version(wrong, "wastore_")
        except StoreError as e:
            schema_err = e
    assert isinstance(err, ConfigError)
    assert "authentication failed (wrong password)" in str(err), str(err)
    assert isinstance(err.__cause__, asyncpg.InvalidPasswordError)
    assert proxy.connections == 2  # one for the store, one for read_schema_version
    assert took < 5.0
    assert_no_password(err)
    assert isinstance(schema_err, ConfigError)
    assert_no_password(schema_err)


# -- the command line -----------------------------------------------------------------


def test_the_cli_names_a_refused_port_on_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://wa:{PASSWORD}@127.0.0.1:{closed_port()}/wa?retry_timeout=1"
    for extra in ([], ["--debug"]):
        proc = subprocess.run(
            [sys.executable, "-m", "wastore.cli", "devices", url, *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 3, proc.stderr
        assert "connection refused" in proc.stderr, proc.stderr
        assert PASSWORD not in proc.stdout + proc.stderr
        if not extra:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, proc.stderr
