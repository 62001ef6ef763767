"""A damaged SQLite file is never read as different data (issue 14, point 4).

The experiment: one account written through the public API into every table,
the file closed (every page in the database file), then 200 times: a copy of
the file with one random byte replaced by another, opened, every row read back
through the public API, and ``wastore check`` run on it. A read either returns
what was written, or finds nothing where the flipped byte was part of the row's
key (the row now sits under another key, where its checksum no longer
matches), or raises a :class:`~wastore.StoreError` — never different data, and
never an exception of another kind. ``wastore check`` finds every flip that a
read could not see (a key moved, an index or a free page damaged).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore import admin
from wastore.values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
)

SEED = 20261127
FLIPS = 200

Read = Callable[[Any], Awaitable[Any]]


async def write_account(path: Path) -> tuple[int, list[tuple[str, Read, Any]]]:
    """An account with rows in every table; the reads that must give them back."""
    rnd = random.Random(SEED)

    def rb(n: int) -> bytes:
        return rnd.randbytes(n)

    reads: list[tuple[str, Read, Any]] = []
    async with await wastore.open_store(path) as c:
        device_id = await c.create_device()
        b = c.backend(device_id)
        dev = await b.load()
        assert dev is not None
        dev.pn = wastore.JID.parse("15551230000:3@s.whatsapp.net")
        dev.push_name = "flip test"
        dev = dev.with_client_data("aclient", rb(40))
        await b.save(dev)
        saved = await b.load()
        reads.append(("device", lambda b: b.load(), saved))
        for n in range(40):
            a = f"1555000{n:04d}@s.whatsapp.net"
            rec, key = rb(1200), rb(32)
            await b.put_session(a, rec)
            await b.put_identity(a, key)
            reads.append((f"session {n}", lambda b, a=a: b.get_session(a), rec))
            reads.append((f"identity {n}", lambda b, a=a: b.load_identity(a), key))
        prekeys = [(i, rb(72)) for i in range(1, 31)]
        await b.store_prekeys_batch(prekeys, False)
        await b.mark_prekeys_uploaded([i for i, _ in prekeys[:10]])
        for i, rec in prekeys:
            reads.append((f"prekey {i}", lambda b, i=i: b.load_prekey(i), rec))
        for i in (1, 2):
            rec = rb(200)
            await b.store_signed_prekey(i, rec)
            reads.append((f"signed prekey {i}", lambda b, i=i: b.load_signed_prekey(i), rec))
        for n in range(5):
            a = f"120363{n:05d}@g.us::1555000{n:04d}@s.whatsapp.net"
            rec = rb(500)
            await b.put_sender_key(a, rec)
            reads.append((f"sender key {n}", lambda b, a=a: b.get_sender_key(a), rec))
        for n in range(3):
            kid = rb(6)
            key = AppStateSyncKey(rb(32), rb(20), 1000 + n)
            await b.set_sync_key(kid, key)
            reads.append((f"sync key {n}", lambda b, k=kid: b.get_sync_key(k), key))
        state = HashState(7, rb(128))
        await b.set_version("regular", state)
        reads.append(("version", lambda b: b.get_version("regular"), state))
        macs = [MutationMAC(rb(32), rb(32)) for _ in range(20)]
        await b.put_mutation_macs("regular", 3, macs)
        for n, m in enumerate(macs):
            reads.append(
                (f"mac {n}", lambda b, i=m.index_mac: b.get_mutation_mac("regular", i), m.value_mac)
            )
        group = "120363000001@g.us"
        status = [(f"1555000{n:04d}@s.whatsapp.net", n % 2 == 0) for n in range(8)]
        await b.set_sender_key_status(group, status)
        reads.append(("sender key devices", lambda b: b.get_sender_key_devices(group), status))
        for n in range(4):
            m = LidPnMapping(f"9{n:08d}", f"1555000{n:04d}", 100 + n, 200 + n, "usync")
            await b.put_lid_mapping(m)
            reads.append((f"lid {n}", lambda b, lid=m.lid: b.get_lid_mapping(lid), m))
        for n in range(4):
            key = rb(32)
            await b.save_base_key(f"1555000{n:04d}@s.whatsapp.net", f"MSG{n}", key)
            reads.append(
                (
                    f"base key {n}",
                    lambda b, n=n, k=key: b.has_same_base_key(
                        f"1555000{n:04d}@s.whatsapp.net", f"MSG{n}", k
                    ),
                    True,
                )
            )
        for n in range(4):
            rec = DeviceListRecord(f"1555000{n:04d}", (DeviceInfo(0), DeviceInfo(3, 1)), 500 + n)
            await b.update_device_list(rec)
            reads.append((f"device list {n}", lambda b, u=rec.user: b.get_devices(u), rec))
        for n in range(4):
            jid = f"1555000{n:04d}@s.whatsapp.net"
            await b.store_received_tc_token(jid, rb(24), 300 + n)
            await b.touch_tc_token_sender_timestamp(jid, 400 + n)
            token = await b.get_tc_token(jid)
            reads.append((f"tc token {n}", lambda b, j=jid: b.get_tc_token(j), token))
        for n in range(4):
            secret = MsgSecret(group, f"1555000{n:04d}@s.whatsapp.net", f"M{n}", rb(32), 0, 9 + n)
            await b.put_msg_secrets([secret])
            reads.append(
                (
                    f"msg secret {n}",
                    lambda b, s=secret: b.get_msg_secret(s.chat, s.sender, s.msg_id),
                    secret,
                )
            )
        for n in range(4):
            payload = rb(300)
            await b.store_pending_inbound(group, f"s{n}@s.whatsapp.net", f"P{n}", payload)
            reads.append(
                (
                    f"pending {n}",
                    lambda b, n=n: b.get_pending_inbound(group, f"s{n}@s.whatsapp.net", f"P{n}"),
                    payload,
                )
            )
        meta = rb(700)
        await b.put_group_metadata(group, meta)
        reads.append(("group metadata", lambda b: b.get_group_metadata(group), meta))
        # Sent messages are read by taking them: the check of each flip takes them last.
        for n in range(3):
            payload = rb(400)
            await b.store_sent_message(group, f"S{n}", payload)
            reads.append((f"sent {n}", lambda b, n=n: b.take_sent_message(group, f"S{n}"), payload))
        for name, read, expected in reads:
            assert await read(b) == expected, name
            if name.startswith("sent"):  # taken: put it back
                await b.store_sent_message(group, f"S{name[-1]}", expected)
    return device_id, reads


def absent(value: Any) -> bool:
    """What a read returns for a row that is not there."""
    return value is None or value is False or value == HashState() or value == []


async def run_flip(
    pristine: bytes, path: Path, offset: int, new: int, device_id: int, reads: list[Any]
) -> dict[str, Any]:
    data = bytearray(pristine)
    data[offset] = new
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(bytes(data))
    out: dict[str, Any] = {"errors": 0, "absent": 0, "wrong": [], "raw": [], "check": None}
    try:
        container = await wastore.open_store(path)
    except wastore.StoreError:
        out["open"] = "error"
    except Exception as err:
        out["open"] = "raw"
        out["raw"].append(f"open: {type(err).__name__}: {err}")
    else:
        out["open"] = "ok"
        async with container:
            b = container.backend(device_id)
            for name, read, expected in reads:
                try:
                    got = await read(b)
                except wastore.StoreError:
                    out["errors"] += 1
                    continue
                except Exception as err:
                    out["raw"].append(f"{name}: {type(err).__name__}: {err}")
                    continue
                if got == expected:
                    continue
                if absent(got) and not absent(expected):
                    out["absent"] += 1
                else:
                    out["wrong"].append(f"{name}: {got!r} != {expected!r}")
            try:
                report = await admin.check(container)
                out["check"] = not report.ok
            except wastore.StoreError:
                out["check"] = True  # the check could not even read the database
            except Exception as err:
                out["raw"].append(f"check: {type(err).__name__}: {err}")
    return out


async def test_200_random_byte_flips_never_read_as_different_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "pristine.db"
    device_id, reads = await write_account(src)
    assert not Path(f"{src}-wal").exists()  # closed: everything is in the file
    pristine = src.read_bytes()
    rnd = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    checked: Counter[str] = Counter()
    wrong: list[str] = []
    raw: list[str] = []
    for _ in range(FLIPS):
        offset = rnd.randrange(len(pristine))
        new = rnd.choice([x for x in range(256) if x != pristine[offset]])
        r = await run_flip(pristine, tmp_path / "flipped.db", offset, new, device_id, reads)
        wrong += [f"offset {offset}: {w}" for w in r["wrong"]]
        raw += [f"offset {offset}: {x}" for x in r["raw"]]
        if r["open"] == "error":
            kind = "refused at open"
        elif r["raw"]:
            kind = "a raw exception"
        elif r["wrong"]:
            kind = "DIFFERENT DATA"
        elif r["errors"]:
            kind = "read error"
        elif r["absent"]:
            kind = "read as absent"
        else:
            kind = "harmless to reads"
        outcomes[kind] += 1
        if r["check"] is not None:
            checked[f"{kind}, check {'finds it' if r['check'] else 'clean'}"] += 1
        if kind in ("read error", "read as absent"):
            assert r["check"], f"offset {offset}: reads saw a damaged row, check did not"
    with capsys.disabled():
        print(f"\n{FLIPS} random byte flips in a {len(pristine):,}-byte SQLite file:")
        for kind, n in sorted(outcomes.items()):
            print(f"  {kind:22} {n:4}")
        for kind, n in sorted(checked.items()):
            print(f"    {kind:40} {n:4}")
        print(f"  reads of different data without an error: {len(wrong)}")
        print(f"  exceptions that are not a StoreError:     {len(raw)}")
    assert wrong == [], wrong[:10]
    assert raw == [], raw[:10]
    assert sum(outcomes.values()) == FLIPS


async def test_a_flip_in_the_schema_text_is_a_store_error(tmp_path: Path) -> None:
    src = tmp_path / "pristine.db"
    async with await wastore.open_store(src) as c:
        await c.backend(await c.create_device()).put_session("1@s.whatsapp.net", b"x")
    pristine = src.read_bytes()
    starts = [i for i in range(len(pristine)) if pristine.startswith(b"CREATE TABLE", i)]
    assert len(starts) > 10
    kinds: Counter[str] = Counter()
    flipped = tmp_path / "flipped.db"
    for start in starts:
        for off in (20, 40, 55):  # inside the column definitions: not UTF-8 any more
            data = bytearray(pristine)
            data[start + off] = 0xFF
            for suffix in ("", "-wal", "-shm"):
                Path(f"{flipped}{suffix}").unlink(missing_ok=True)
            flipped.write_bytes(bytes(data))
            try:
                async with await wastore.open_store(flipped) as c:
                    await c.devices()
                kinds["opens"] += 1
            except wastore.StoreError as err:
                kinds[type(err).__name__] += 1
    assert set(kinds) <= {"opens", "CorruptRecordError", "SchemaError", "StoreError"}, kinds
    assert kinds["CorruptRecordError"] > 0


async def test_check_finds_a_row_whose_key_byte_flipped(tmp_path: Path) -> None:
    db = tmp_path / "wa.db"
    async with await wastore.open_store(db) as c:
        b = c.backend(await c.create_device())
        await b.put_session("15550001111@s.whatsapp.net", os.urandom(1200))
    # Another address, in the row and in its index entry alike (so that SQLite's own
    # integrity check sees nothing wrong): only the row's checksum can tell.
    data = db.read_bytes().replace(b"15550001111@s.whatsapp.net", b"15590001111@s.whatsapp.net")
    db.write_bytes(data)
    async with await wastore.open_store(db) as c:
        b = c.backend(1)
        assert await b.get_session("15550001111@s.whatsapp.net") is None  # reads as absent
        with pytest.raises(wastore.CorruptRecordError, match="checksum"):
            await b.get_session("15590001111@s.whatsapp.net")
        report = await admin.check(c)
    assert not report.ok
    text = "\n".join(report.problems)
    assert "sessions row '15590001111@s.whatsapp.net'" in text and "checksum" in text
