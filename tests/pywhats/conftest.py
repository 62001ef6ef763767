"""Fixtures of the pywhats tests: pywhats' fake server (from its sdist) and a store per backend."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from wastore.testing import pywhats_sdist


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def fake() -> ModuleType:
    """pywhats' fake WhatsApp server package, from the sdist (downloaded on first use)."""
    try:
        return pywhats_sdist.load_fakeserver()
    except pywhats_sdist.SdistUnavailableError as err:
        if _ci():
            pytest.fail(f"{err} [CI is set: these tests must run]", pytrace=False)
        pytest.skip(str(err))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pywhats.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
