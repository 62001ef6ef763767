"""The row checksum's own rules (wastore.backends.sql.checksum)."""

from __future__ import annotations

import os
import sqlite3
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wastore.backends.sql import checksum as ck


@given(st.integers(1, 2**40), st.text(max_size=80), st.binary(max_size=3000))
def test_the_fast_paths_are_the_generic_checksum(device_id: int, key: str, blob: bytes) -> None:
    key = key.encode("utf-8", "replace").decode()  # what the store can hold
    assert ck.key_blob(device_id, key, blob) == ck.crc(device_id, (key, blob))
    n = abs(hash(key)) % 2**24
    assert ck.id_blob(device_id, n, blob) == ck.crc(device_id, (n, blob))


def test_the_crc_is_zlib_s_whichever_module_computes_it() -> None:
    # A database written with the speedups extra is read without it, and back.
    for size in (0, 1, 31, 1200, 70_000):
        data = os.urandom(size)
        assert ck.crc32(data, 12345) == zlib.crc32(data, 12345)


def test_lengths_keep_columns_apart() -> None:
    assert ck.crc(1, ("ab", b"c")) != ck.crc(1, ("a", b"bc"))
    assert ck.crc(1, (None, b"")) != ck.crc(1, (b"", b""))
    assert ck.crc(1, ("a", b"b")) != ck.crc(2, ("a", b"b"))  # another account


@pytest.mark.parametrize(
    "value", [None, 0, 1, -1, 2**31 - 1, 2**31, -(2**63), 2**63 - 1, 1_700_000_000_000]
)
def test_the_sql_term_is_the_python_term(value: int | None) -> None:
    conn = sqlite3.connect(":memory:")
    sql = ck.term_sql("?1", ck.W2)
    assert conn.execute(f"SELECT {sql}", (value,)).fetchone()[0] == ck.term(value, ck.W2)
    conn.close()
