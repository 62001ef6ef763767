"""open_store(), the URL scheme registry and password redaction."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore import ConfigError, MemoryStore, open_store, register_backend, registry
from wastore.backends.sqlite import SqliteStore
from wastore.registry import known_schemes, redact_url, url_options

PASSWORD = "s3cret-Pa55"


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Schemes registered by a test do not leak into the next one."""
    monkeypatch.setattr(registry, "_REGISTERED", {})


async def test_memory_url_opens_a_memory_store() -> None:
    container = await open_store("memory://")
    try:
        assert isinstance(container, MemoryStore)
        assert isinstance(container, wastore.Container)
        assert await container.devices() == []
    finally:
        await container.close()


async def test_memory_stores_are_independent() -> None:
    a, b = await open_store("memory://"), await open_store("MEMORY://")
    await a.create_device()
    assert await a.devices() == [1]
    assert await b.devices() == []
    await a.close()
    await b.close()


@pytest.mark.parametrize(
    ("url", "options"),
    [("memory://?pool_size=3", {}), ("memory://", {"pool_size": 3}), ("memory://?x", {})],
)
async def test_memory_with_options_is_a_config_error(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"pool_size|x"):
        await open_store(url, **options)


@pytest.mark.parametrize(
    "url",
    ["foo://host/db", "redis://localhost:6379/0", "mysql://u@h/db", "sqlite3:///x.db"],
)
async def test_unknown_scheme_names_the_known_schemes(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        await open_store(url)
    message = str(info.value)
    scheme = url.split("://")[0]
    assert repr(scheme) in message
    for known in ("memory", "sqlite", "postgresql", "postgres"):
        assert known in message
    assert "register_backend" in message


@pytest.mark.parametrize(
    "url",
    [
        f"foo://user:{PASSWORD}@host/db",
        f"foo://user:{PASSWORD}@host:5432/db?sslmode=require",
        f"redis://:{PASSWORD}@localhost:6379/0",
        # Mistyped URLs that are not store URLs at all.
        f"postgresql:/user:{PASSWORD}@host/db",
        f"postgresql:user:{PASSWORD}@host/db",
        f"user:{PASSWORD}@host/db",
        f"//user:{PASSWORD}@host/db",
    ],
)
async def test_password_never_appears_in_errors(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        await open_store(url)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)
    assert PASSWORD not in caplog.text


async def test_a_bare_path_opens_an_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for path in ("wa.db", str(tmp_path / "sub" / "abs.db")):
        container = await open_store(path)
        try:
            assert isinstance(container, SqliteStore)
            device_id = await container.create_device()
        finally:
            await container.close()
        assert Path(path).is_file()
        async with await open_store(f"sqlite:///{path}" if path == "wa.db" else path) as again:
            assert await again.devices() == [device_id]


@pytest.mark.parametrize(
    "url", [f"postgres:/alice:{PASSWORD}@db/x", f"postgresql:alice:{PASSWORD}@db", "sqlite:wa.db"]
)
async def test_a_url_missing_its_slashes_is_an_error_not_a_file_name(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"memory://\.\.\.") as info:
        await open_store(url)
    assert "sqlite://" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing was created


@pytest.mark.parametrize("value", [123, None, b"memory://", object()])
async def test_open_store_rejects_other_types(value: Any) -> None:
    with pytest.raises(ConfigError):
        await open_store(value)


async def test_register_backend_makes_a_custom_scheme_work() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    made = MemoryStore()

    async def opener(url: str, **options: Any) -> MemoryStore:
        calls.append((url, options))
        return made

    register_backend("myfake", opener)
    assert "myfake" in known_schemes()
    container = await open_store("myfake://host/db?size=2", retries=3)
    assert container is made
    assert calls == [("myfake://host/db?size=2", {"retries": 3})]
    # Scheme matching is case-insensitive.
    assert await open_store("MyFake://x") is made
    # Unknown-scheme errors now name it too.
    with pytest.raises(ConfigError, match="myfake"):
        await open_store("nope://x")


async def test_register_backend_can_override_a_builtin_scheme() -> None:
    made = MemoryStore()

    async def opener(url: str, **options: Any) -> MemoryStore:
        return made

    register_backend("memory", opener)
    assert await open_store("memory://") is made


@pytest.mark.parametrize("scheme", ["", "my scheme", "a/b", "x:y", "bäd", "foo://"])
def test_register_backend_rejects_invalid_schemes(scheme: str) -> None:
    async def opener(url: str, **options: Any) -> MemoryStore:
        return MemoryStore()

    with pytest.raises(ConfigError):
        register_backend(scheme, opener)
    assert scheme not in known_schemes()


async def test_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry._BUILTIN, "fakedb", ("wastore_test_no_such_module", "open_fakedb", "fakedb")
    )
    with pytest.raises(ConfigError) as info:
        await open_store(f"fakedb://user:{PASSWORD}@host/db")
    message = str(info.value)
    assert "pip install 'wastore[fakedb]'" in message
    assert "wastore_test_no_such_module" in message
    assert PASSWORD not in message
    assert isinstance(info.value.__cause__, ImportError)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://user:pw@host:5432/db", "postgresql://user:***@host:5432/db"),
        ("postgres://u:p%40ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("sqlite:///wa.db", "sqlite:///wa.db"),
        ("sqlite:///data/me@home.db", "sqlite:///data/me@home.db"),
        ("postgresql:/user:pw@host/db", "postgresql:/user:***@host/db"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://user:{PASSWORD}@host/db",
        f"postgresql://user:{PASSWORD}@[::1]:5432/db",
        f"postgresql:/user:{PASSWORD}@host/db",
        f"user:{PASSWORD}@host",
        f"postgresql://user:{PASSWORD}@host:notaport/db",
        f"postgresql://user:{PASSWORD}/x@host/db",  # unescaped '/' in the password
        f"postgresql://host/db?password={PASSWORD}",
        f"postgresql://host/db?sslmode=require&sslpassword={PASSWORD}&x=1",
        f"postgres:user:{PASSWORD}@host",
        f"postgresql://user:P@W{PASSWORD}@host/db",  # unescaped '@' in the password
    ],
)
def test_redact_url_never_keeps_the_password(url: str) -> None:
    assert PASSWORD not in redact_url(url)


def test_url_options() -> None:
    assert url_options("postgresql://h/db?pool_size=5&prefix=wa_&flag=") == {
        "pool_size": "5",
        "prefix": "wa_",
        "flag": "",
    }
    assert url_options("memory://") == {}


# -- one strictness for URL options on every SQL backend (issue 16) -----------------


@pytest.mark.parametrize("query", ["migrate=maybe", "migrate=", "busy_timeout=soon", "colour=blue"])
async def test_sqlite_url_options_are_checked(tmp_path: Path, query: str) -> None:
    db = tmp_path / "a.db"
    with pytest.raises(ConfigError, match=r"not valid|unknown"):
        await open_store(f"sqlite:///{db}?{query}")
    assert not db.exists()  # refused before anything was created


@pytest.mark.parametrize("flag", ["migrate", "create"])
async def test_sqlite_flag_keywords_must_be_booleans(tmp_path: Path, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        await open_store(f"sqlite:///{tmp_path}/a.db", **{flag: "maybe"})


async def test_sqlite_url_flags_take_the_usual_spellings(tmp_path: Path) -> None:
    async with await open_store(f"sqlite:///{tmp_path}/a.db?migrate=OFF&create=yes") as c:
        assert await c.devices() == []
    with pytest.raises(ConfigError, match="does not exist"):  # create=no is honoured
        await open_store(f"sqlite:///{tmp_path}/b.db?create=no")


@pytest.mark.parametrize(
    "url",
    ["sqlite:///x.db?migrate=maybe", "postgresql://u@localhost/db?migrate=maybe"],
)
def test_both_sql_backends_refuse_the_same_malformed_flag(url: str) -> None:
    if url.startswith("sqlite"):
        from wastore.backends.sqlite import parse_sqlite_url as parse
    else:
        from wastore.backends.postgres import parse_postgres_url as parse
    with pytest.raises(ConfigError, match=r"migrate='maybe' is not valid"):
        parse(url)
