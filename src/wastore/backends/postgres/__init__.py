"""PostgresStore: many accounts, many processes, one PostgreSQL database (``postgresql://``)."""

from .engine import (
    LEASE_CHECK_INTERVAL,
    PostgresBackend,
    PostgresStore,
    display_url,
    lock_class,
    open_postgres,
    parse_postgres_url,
)

__all__ = [
    "LEASE_CHECK_INTERVAL",
    "PostgresBackend",
    "PostgresStore",
    "display_url",
    "lock_class",
    "open_postgres",
    "parse_postgres_url",
]
