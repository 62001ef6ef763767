"""Backends: MemoryStore, SqliteStore (embedded default) and PostgresStore (scale)."""
