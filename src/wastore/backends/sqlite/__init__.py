"""SqliteStore: the embedded default (``sqlite:///path.db``)."""

from .engine import (
    CACHE_KIB,
    GET_MACS_IN,
    GET_SESSIONS_IN,
    SqliteBackend,
    SqliteStore,
    multi_row_sql,
    open_sqlite,
    padded_chunks,
    parse_sqlite_url,
    render_in_list,
    row_chunks,
)

__all__ = [
    "CACHE_KIB",
    "GET_MACS_IN",
    "GET_SESSIONS_IN",
    "SqliteBackend",
    "SqliteStore",
    "multi_row_sql",
    "open_sqlite",
    "padded_chunks",
    "parse_sqlite_url",
    "render_in_list",
    "row_chunks",
]
