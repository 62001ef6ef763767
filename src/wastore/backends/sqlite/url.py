"""Opening a SQLite store from a URL (``sqlite:///relative.db``, ``sqlite:////abs.db``)."""

from __future__ import annotations

import os
from typing import Any, Final

from ...errors import ConfigError
from ..options import Converter, check_keywords, flag, query_options, url_pairs
from .store import SqliteStore

OPTIONS: Final[dict[str, Converter]] = {
    "prefix": str,
    "synchronous": str,
    "busy_timeout": float,
    "snapshot_dir": str,
    "migrate": flag,
    "create": flag,
}


def parse_sqlite_url(url: str) -> tuple[str, dict[str, Any]]:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs.db`` -> ``/abs.db``;
    and the URL's options, converted.

    Raises:
        ConfigError: no path, an unknown option, or a value that is not valid.
    """
    rest = url.split("://", 1)[1] if "://" in url else url
    path, _, _query = rest.partition("?")
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise ConfigError(
            "sqlite:// URL without a path: use sqlite:///relative.db or sqlite:////abs/path.db"
        )
    options, _ = query_options("sqlite", url_pairs(url) if "?" in rest else [], OPTIONS)
    return path, options


async def open_sqlite(url: str | os.PathLike[str], **options: Any) -> SqliteStore:
    """Open ``sqlite:///path.db`` (or a plain path) with URL and keyword options."""
    if isinstance(url, str) and url.startswith("sqlite:"):
        path, merged = parse_sqlite_url(url)
    else:
        path, merged = os.fspath(url), {}
    check_keywords("sqlite", options, OPTIONS)
    merged.update(options)
    return await SqliteStore.open(path, **merged)
