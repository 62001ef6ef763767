"""whatsmeow databases: the schema as neonize writes it, real keys and sessions, import.

neonize 0.5.2 (whatsmeow inside, in a virtualenv of its own installed at test
time) creates the database: its schema is exactly what whatsmeow writes
(version 15, compatible with 8). The rows are filled per that schema with a
real account: a python-axolotl account over wastore (W) first talks with a peer
(P) — DMs and a group, both ways, one DM and one group message held back —
and W's keys, sessions and sender keys are written as whatsmeow rows, with
app-state keys, versions and MACs, the LID map, privacy tokens, message
secrets, the NCT salt and the retry buffer. A second device shares the
database. The import reads both (or one, by JID), and W goes on with P.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

import wastore
from wastore import ValidationError
from wastore.formats import import_from, read
from wastore.interop.axolotl import SyncContainer

from _parties import Party, new_party, say  # isort: skip
from peers import install  # isort: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning"),
]

NEONIZE = ("neonize==0.5.2",)
W = "15550000021:5@s.whatsapp.net"
W_LID = "333333333:5@lid"
P = "15550000022@s.whatsapp.net"
OTHER = "15550000031:2@s.whatsapp.net"
GROUP = "120363000000000003@g.us"


@pytest.fixture(scope="module")
def neonize_python() -> Path:
    try:
        return install.python_venv("neonize", NEONIZE)
    except install.PeerUnavailable as err:
        install.unavailable(err)
        raise


def neonize_database(python: Path, path: Path) -> None:
    """An empty whatsmeow database, created by whatsmeow itself (through neonize)."""
    script = "import sys\nfrom neonize.client import ClientFactory\n"
    script += "ClientFactory.get_all_devices_from_db(sys.argv[1])\n"
    env = dict(os.environ)
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    subprocess.run(
        [str(python), "-c", script, str(path)],
        check=True,
        capture_output=True,
        timeout=300,
        env=env,
    )


def whatsmeow_rows(db: Path, w: Party, jid: str, lid: str | None, prekey_ids: list[int]) -> None:
    """Write the account of ``w`` into a whatsmeow database, as whatsmeow's sqlstore would."""
    d = w.account.device()
    backend = w.account.manager.backend

    async def signal() -> tuple[bytes, bytes, bytes, bytes, dict[int, bytes]]:
        session = await backend.get_session(P)
        identity = await backend.load_identity(P)
        theirs = await backend.get_sender_key(f"{GROUP}::{P}")
        ours = await backend.get_sender_key(f"{GROUP}::{jid}")
        prekeys = await backend.load_prekeys_batch(prekey_ids)
        assert session and identity and theirs and ours
        return session, identity, theirs, ours, prekeys

    session, identity, theirs, ours, prekeys = w.account.run(signal())
    from axolotl.state.prekeyrecord import PreKeyRecord  # isort: skip

    with closing(sqlite3.connect(db)) as c, c:
        c.execute(
            "INSERT INTO whatsmeow_device (jid, lid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig, platform, business_name,"
            " push_name, facebook_uuid, lid_migration_ts, companion_meta_nonce)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                jid, lid, d.registration_id, d.noise_key.private, d.identity_key.private,
                d.signed_pre_key.private, d.signed_pre_key_id, d.signed_pre_key_signature,
                d.adv_secret_key, b"\x08\x01\x10\x05", os.urandom(64), os.urandom(32),
                os.urandom(64), "android", "Acme", "Meow", None, 1700000300, "nonce-1",
            ),
        )  # fmt: skip
        c.execute("INSERT INTO whatsmeow_nct_salt VALUES (?, ?)", (jid, b"salt" * 8))
        for pid, record in prekeys.items():
            private = PreKeyRecord(serialized=record).getKeyPair().getPrivateKey().serialize()
            c.execute(
                "INSERT INTO whatsmeow_pre_keys VALUES (?, ?, ?, ?)",
                (jid, pid, bytes(private), pid < prekey_ids[-1]),
            )
        c.execute(
            "INSERT INTO whatsmeow_identity_keys VALUES (?, ?, ?)", (jid, "15550000022.0", identity)
        )
        c.execute(
            "INSERT INTO whatsmeow_sessions VALUES (?, ?, ?)", (jid, "15550000022.0", session)
        )
        c.execute(
            "INSERT INTO whatsmeow_sender_keys VALUES (?, ?, ?, ?)",
            (jid, GROUP, "15550000022.0", theirs),
        )
        own_sender = f"{jid.split(':')[0]}.{jid.split(':')[1].split('@')[0]}"
        c.execute(
            "INSERT INTO whatsmeow_sender_keys VALUES (?, ?, ?, ?)", (jid, GROUP, own_sender, ours)
        )
        fingerprint = bytes.fromhex("0805100118001807")
        c.execute(
            "INSERT INTO whatsmeow_app_state_sync_keys VALUES (?, ?, ?, ?, ?)",
            (jid, b"\x00\x00\x00\x01\x0f\xfe", b"k" * 32, 1700000000000, fingerprint),
        )
        c.execute(
            "INSERT INTO whatsmeow_app_state_version VALUES (?, ?, ?, ?)",
            (jid, "regular", 2, bytes(128)),
        )
        c.executemany(
            "INSERT INTO whatsmeow_app_state_mutation_macs VALUES (?, ?, ?, ?, ?)",
            [
                (jid, "regular", 1, b"i" * 32, b"old" + bytes(29)),
                (jid, "regular", 2, b"i" * 32, b"new" + bytes(29)),
                (jid, "regular", 1, b"j" * 32, b"v" * 32),
            ],
        )
        c.execute(
            "INSERT INTO whatsmeow_privacy_tokens VALUES (?, ?, ?, ?, ?)",
            (jid, "98765@lid", b"token", 1700000000, 1700000005),
        )
        c.execute(
            "INSERT INTO whatsmeow_message_secrets VALUES (?, ?, ?, ?, ?)",
            (jid, GROUP, P, "3EB0AAAA", b"s" * 32),
        )
        c.executemany(
            "INSERT INTO whatsmeow_retry_buffer VALUES (?, ?, ?, ?, ?, ?)",
            [
                (jid, P, "3EB0BBBB", "wa", b"\x0a\x05hello", 1700000000),
                (jid, P, "3EB0CCCC", "fb", b"\x0a\x05other", 1700000001),
            ],
        )
        c.execute(
            "INSERT INTO whatsmeow_contacts (our_jid, their_jid, push_name) VALUES (?, ?, ?)",
            (jid, P, "Peter"),
        )


def other_device(db: Path) -> None:
    """A second, freshly paired device in the same database (keys only)."""
    d = wastore.Device.new()
    with closing(sqlite3.connect(db)) as c, c:
        c.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                OTHER, d.registration_id, d.noise_key.private, d.identity_key.private,
                d.signed_pre_key.private, d.signed_pre_key_id, d.signed_pre_key_signature,
                d.adv_secret_key, b"", bytes(64), bytes(32), bytes(64),
            ),
        )  # fmt: skip
        c.execute("INSERT INTO whatsmeow_lid_map VALUES (?, ?)", ("444444444", "15550000041"))


def test_whatsmeow_database_imports_and_sessions_continue(
    neonize_python: Path, tmp_path: Path
) -> None:
    meow = tmp_path / "whatsmeow.db"
    neonize_database(neonize_python, meow)
    with closing(sqlite3.connect(meow)) as c:
        assert list(c.execute("SELECT version, compat FROM whatsmeow_version")) == [(15, 8)]
    say("neonize created the whatsmeow schema: version 15, compat 8")

    peers = SyncContainer.open(tmp_path / "before.db")
    try:
        w, p = new_party(peers, W), new_party(peers, P)
        prekey_ids = [r.getId() for r in w.store.generate_pre_keys(4)]
        w.store.mark_pre_keys_uploaded(prekey_ids[:-1])
        bundle = w.bundle()
        p.start_session(W, bundle)
        wire = p.send(W, b"hello W")
        assert wire[0] == "pkmsg" and w.receive(P, wire) == b"hello W"
        wire = w.send(P, b"hello P")
        assert p.receive(W, wire) == b"hello P"
        held_dm = p.send(W, b"held back")
        w.group_process(GROUP, P, p.group_distribution(GROUP, P))
        p.group_process(GROUP, W, w.group_distribution(GROUP, W))
        g0 = p.group_send(GROUP, P, b"group hello")
        held_group = p.group_send(GROUP, P, b"group held back")
        assert w.group_receive(GROUP, P, g0) == b"group hello"
        assert p.group_receive(GROUP, W, w.group_send(GROUP, W, b"group from W")) == b"group from W"
        say("W <-> P: DMs and group both ways, one DM and one group message held back")
        whatsmeow_rows(meow, w, W, W_LID, prekey_ids)
        other_device(meow)
        w.account.close()

        dumps = read(meow, "whatsmeow")
        assert sorted(str(d.device["pn"]) for d in dumps) == [W, OTHER]
        [only] = read(meow, "whatsmeow", jid="333333333@lid")
        assert only.device["pn"] == W
        assert read(meow, "whatsmeow", jid="15550000031@s.whatsapp.net")[0].device["pn"] == OTHER

        db = tmp_path / "wastore.db"

        async def do_import() -> dict[str, int]:
            async with await wastore.open_store(db) as c:
                dry = await import_from(c, meow, "whatsmeow", dry_run=True)
                assert [r.device_id for r in dry] == [None, None] and await c.devices() == []
                results = await import_from(c, meow, "whatsmeow")
                assert len(results) == 2 and len(await c.devices()) == 2
                ids = {}
                for r in results:
                    assert r.device_id is not None and r.pn is not None
                    say("imported:", json.dumps({"pn": r.pn, "device_id": r.device_id, **r.counts}))
                    ids[r.pn] = r.device_id
                return ids

        ids = asyncio.run(do_import())
        moved = SyncContainer.open(db)
        try:
            account = moved.account(ids[W])
            me = Party(account)
            d = account.device()
            assert str(d.lid) == W_LID and d.push_name == "Meow" and d.business_name == "Acme"
            assert d.platform == "android" and d.nct_salt == b"salt" * 8 and d.lid_migrated
            assert json.loads(d.client_data["whatsmeow"])["companion_meta_nonce"] == "nonce-1"
            assert d.first_unupload_pre_key_id == prekey_ids[-1]

            async def bookkeeping(b: wastore.Backend) -> None:
                assert await b.get_mutation_mac("regular", b"i" * 32) == b"new" + bytes(29)
                assert await b.get_mutation_mac("regular", b"j" * 32) == b"v" * 32
                assert (await b.get_version("regular")).version == 2
                key = await b.get_sync_key(b"\x00\x00\x00\x01\x0f\xfe")
                assert key is not None and key.timestamp == 1700000000000
                token = await b.get_tc_token("98765@lid")
                assert token is not None and token.sender_timestamp == 1700000005
                secret = await b.get_msg_secret(GROUP, P, "3EB0AAAA")
                assert secret is not None and secret.secret == b"s" * 32
                assert await b.take_sent_message(P, "3EB0BBBB") == b"\x0a\x05hello"
                assert await b.take_sent_message(P, "3EB0CCCC") is None
                m = await b.get_lid_mapping("444444444")
                assert m is not None and m.phone_number == "15550000041"
                assert await b.count_prekeys() == (4, 3)

            account.run(bookkeeping(account.manager.backend))
            wire = p.send(W, b"P after the move")
            assert wire[0] == "msg" and me.receive(P, wire) == b"P after the move"
            assert me.receive(P, held_dm) == b"held back"
            wire = me.send(P, b"W after the move")
            assert wire[0] == "msg" and p.receive(W, wire) == b"W after the move"
            say("P <-> imported W: DMs both ways (msg), the held-back DM decrypts")
            g2 = p.group_send(GROUP, P, b"group after the move")
            assert me.group_receive(GROUP, P, g2) == b"group after the move"
            assert me.group_receive(GROUP, P, held_group) == b"group held back"
            data = me.group_send(GROUP, W, b"group from the moved W")
            assert p.group_receive(GROUP, W, data) == b"group from the moved W"
            say("group both ways after the move, the held-back message decrypts")
            account.close()
        finally:
            moved.close()
    finally:
        peers.close()


def test_newer_whatsmeow_schema_is_refused(neonize_python: Path, tmp_path: Path) -> None:
    meow = tmp_path / "whatsmeow.db"
    neonize_database(neonize_python, meow)
    other_device(meow)
    with closing(sqlite3.connect(meow)) as c, c:
        c.execute("UPDATE whatsmeow_version SET version = 16")
    db = tmp_path / "wastore.db"

    async def attempt() -> None:
        async with await wastore.open_store(db) as c:
            with pytest.raises(ValidationError, match=r"schema version 16 .* reads version 15"):
                await import_from(c, meow, "whatsmeow")
            assert await c.devices() == []

    asyncio.run(attempt())


_PG_TYPES = {"BLOB": "bytea", "BYTEA": "bytea", "INTEGER": "bigint", "BIGINT": "bigint",
             "BOOLEAN": "boolean", "UUID": "uuid", "TEXT": "text"}  # fmt: skip


async def _copy_to_postgres(meow: Path, url: str) -> None:
    """The whatsmeow tables of an SQLite database, created and filled in PostgreSQL with
    whatsmeow's PostgreSQL column types (the same tables and columns in both dialects)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        with closing(sqlite3.connect(meow)) as src:
            tables = [
                r[0]
                for r in src.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'whatsmeow_%'"
                )
            ]
            for table in tables:
                info = list(src.execute(f"PRAGMA table_info({table})"))
                types = [_PG_TYPES.get(t.upper().split("(")[0], "text") for _, _, t, *_ in info]
                cols = ", ".join(f"{c[1]} {t}" for c, t in zip(info, types, strict=True))
                await conn.execute(f"CREATE TABLE {table} ({cols})")
                rows = [
                    tuple(
                        bool(v) if t == "boolean" and v is not None else v
                        for v, t in zip(row, types, strict=True)
                    )
                    for row in src.execute(f"SELECT * FROM {table}")
                ]
                if rows:
                    marks = ", ".join(f"${i + 1}" for i in range(len(info)))
                    await conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    finally:
        await conn.close()


@pytest.mark.postgres
def test_a_whatsmeow_postgresql_database_reads_as_its_sqlite_twin(
    neonize_python: Path, tmp_path: Path, pg_blank_url: str
) -> None:
    meow = tmp_path / "whatsmeow.db"
    neonize_database(neonize_python, meow)
    other_device(meow)
    with closing(sqlite3.connect(meow)) as c, c:
        c.execute(
            "INSERT INTO whatsmeow_pre_keys VALUES (?, ?, ?, ?)",
            (OTHER, 7, wastore.KeyPair.generate().private, True),
        )
    asyncio.run(_copy_to_postgres(meow, pg_blank_url))
    from_pg, from_sqlite = read(pg_blank_url, "whatsmeow"), read(meow, "whatsmeow")
    assert [d.tables for d in from_pg] == [d.tables for d in from_sqlite]
    assert from_pg[0].count()["prekeys"] == 1 and from_pg[0].count()["lid_pn_mappings"] == 1
    with pytest.raises(ValidationError, match="cannot read the whatsmeow database"):
        read(pg_blank_url.rsplit("/", 1)[0] + "/no_such_database", "whatsmeow")
