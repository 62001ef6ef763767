"""The statement sets are typed: every statement is a field, a misspelt one a type error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from mypy import api as mypy_api

from wastore.backends.sql.queries import DialectQueries, Queries


def test_a_misspelt_statement_is_a_type_error(tmp_path: Path) -> None:
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    program = (
        "from wastore.backends.sql.queries import Queries\n"
        "q = Queries('sqlite', 'wastore_')\n"
        "right: str = q.put_session\n"
        "wrong: str = q.put_sesion\n"
    )
    out, err, status = mypy_api.run(
        [
            f"--config-file={config}",
            f"--cache-dir={tmp_path / 'cache'}",
            "--strict",
            "--follow-imports=silent",
            "-c",
            program,
        ]
    )
    assert status == 1, out + err
    assert '<string>:4: error: "Queries" has no attribute "put_sesion"' in out, out
    assert "<string>:3" not in out, out


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_statement_is_rendered(dialect: str) -> None:
    q = Queries(dialect, "x_")  # type: ignore[arg-type]
    for field in dataclasses.fields(q)[2:]:
        sql = getattr(q, field.name)
        assert isinstance(sql, str) and "{" not in sql and "x_" in sql, field.name
        other = "$" if dialect == "sqlite" else "?"  # the other dialect's placeholders
        assert other not in sql, field.name


def test_both_dialects_fill_every_dialect_statement() -> None:
    from wastore.backends.sqlite.statements import dialect_queries as sqlite_set

    sets = [sqlite_set(Queries("sqlite", "x_"))]
    try:
        from wastore.backends.postgres.statements import dialect_queries as postgres_set
    except ImportError:  # pragma: no cover - asyncpg is part of the dev install
        pass
    else:
        sets.append(postgres_set(Queries("postgres", "x_")))
    assert len(sets) == 2
    for s in sets:
        assert isinstance(s, DialectQueries)
        for field in dataclasses.fields(s):
            value = getattr(s, field.name)
            text = value if isinstance(value, str) or value is None else value.sql
            assert text is None or "{p}" not in text, field.name
            if field.name != "lock_accounts" and text is not None:
                assert "x_" in text, field.name
