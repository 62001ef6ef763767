"""Opening a PostgreSQL store from a URL (``postgresql://user:pass@host:port/db``).

wastore's options (``pool_size``, ``retry_timeout``, ...) and the connection
parameters asyncpg understands (``sslmode``, ...) may both be in the query
string; anything else is refused rather than sent to the server as a setting.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from ...errors import ConfigError
from ..options import Converter, check_keywords, flag, query_options
from .errors import display_url
from .store import PostgresStore

OPTIONS: Final[dict[str, Converter]] = {
    "prefix": str,
    "pool_size": int,
    "retry_timeout": float,
    "command_timeout": float,
    "connect_timeout": float,
    "snapshot_dir": str,
    "migrate": flag,
    "application_name": str,
}
# Connection parameters asyncpg understands in the URL; anything else in the query
# string would reach the server as a setting, so it is refused instead.
LIBPQ_PARAMS: Final = frozenset(
    {
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "database",
        "passfile",
        "service",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
    }
)
_POOL_ONLY: Final = frozenset({"pool_size", "connect_timeout", "application_name"})
_SCHEME: Final = re.compile(r"^postgres(?:ql)?://", re.I)


def parse_postgres_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split ``url`` into the DSN for asyncpg and wastore's options (converted)."""
    if not _SCHEME.match(url):
        raise ConfigError(f"{display_url(url)!r} is not a postgresql:// or postgres:// URL")
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise ConfigError(f"{display_url(url)!r} is not a valid URL: {err}") from None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    options, keep = query_options("postgresql", pairs, OPTIONS, LIBPQ_PARAMS)
    dsn = parts._replace(query=urlencode(keep)).geturl()
    return dsn, options


async def open_postgres(url: str | Any, **options: Any) -> PostgresStore:
    """Open ``postgresql://...`` (or wrap an ``asyncpg.Pool``) with URL and keyword options."""
    check_keywords("postgresql", options, OPTIONS)
    if not isinstance(url, str):
        misplaced = sorted(_POOL_ONLY & set(options))
        if misplaced:
            raise ConfigError(
                f"{', '.join(misplaced)} cannot be set on a store over an existing asyncpg pool "
                "(configure the pool instead)"
            )
        return await PostgresStore.open(url, **options)
    dsn, merged = parse_postgres_url(url)
    merged.update(options)
    return await PostgresStore.open(dsn, **merged)
