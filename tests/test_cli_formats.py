"""`wastore import --from FORMAT` and `wastore export --to baileys` through the command line.

The formats themselves are tested against their real clients in test_formats_*.py;
here an account goes out as a Baileys folder and comes back in through the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import wastore
from test_cli import cli, one_error, out_json
from wastore import JID, Device


async def _make_store(db: Path) -> Device:
    async with await wastore.open_store(db) as store:
        device_id = await store.create_device()
        backend = store.backend(device_id)
        device = await backend.load()
        assert device is not None
        device.pn = JID.parse("15550001234:5@s.whatsapp.net")
        device.lid = JID.parse("88877766655544:5@lid")
        device.push_name = "moving"
        device.platform = "android"
        await backend.save(device)
        await backend.put_identity("15550004321@s.whatsapp.net", bytes(range(32)))
        return device


async def _load(db: Path) -> tuple[list[int], Device | None, bytes | None]:
    async with await wastore.open_store(db) as store:
        ids = await store.devices()
        backend = store.backend(ids[0])
        return ids, await backend.load(), await backend.load_identity("15550004321@s.whatsapp.net")


def test_an_account_goes_out_as_a_baileys_folder_and_comes_back(tmp_path: Path) -> None:
    src, dst, folder = tmp_path / "src.db", tmp_path / "dst.db", tmp_path / "baileys-auth"
    original = asyncio.run(_make_store(src))

    out = out_json(cli("export", src, "1", "--to", "baileys", "-o", folder, "--json", cwd=tmp_path))
    assert out["format"] == "baileys" and out["files"] >= 2
    assert (folder / "creds.json").is_file()

    dry = out_json(
        cli("import", dst, folder, "--from", "baileys", "--dry-run", "--json", cwd=tmp_path)
    )
    assert dry["action"] == "dry-run" and dry["device_id"] is None
    assert dry["pn"] == "15550001234:5@s.whatsapp.net" and dry["rows"]["identities"] >= 1
    assert not dst.exists()  # a dry run writes nothing, not even an empty database

    done = out_json(cli("import", dst, folder, "--from", "baileys", "--json", cwd=tmp_path))
    assert (done["action"], done["device_id"], done["format"]) == ("created", 1, "baileys")
    ids, device, identity = asyncio.run(_load(dst))
    assert ids == [1] and device is not None
    assert device.identity_key == original.identity_key
    assert device.noise_key == original.noise_key
    assert (device.pn, device.lid, device.platform) == (original.pn, original.lid, "android")
    assert identity == bytes(range(32))

    again = out_json(cli("import", dst, folder, "--from", "baileys", "--json", cwd=tmp_path))
    assert (again["action"], again["device_id"]) == ("unchanged", 1)  # identical: as copy


def test_an_unreadable_source_is_refused_in_one_line_and_nothing_is_created(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "broken-auth"
    folder.mkdir()
    (folder / "creds.json").write_text('{"noiseKey": {"private": ')
    target = tmp_path / "never.db"
    line = one_error(cli("import", target, folder, "--from", "baileys", cwd=tmp_path), 4)
    assert "creds.json" in line and "nothing was imported" in line
    assert not target.exists()
    missing = one_error(
        cli("import", target, tmp_path / "nope", "--from", "baileys", cwd=tmp_path), 5
    )
    assert "no such file" in missing
    usage = one_error(cli("import", target, folder, "--from", "nosuchformat", cwd=tmp_path), 2)
    assert "nosuchformat" in usage
