"""A yowsup account moves into wastore and keeps talking.

yowsup 3.3.0 (with python-axolotl 0.2.2 and protobuf 3.20, in a virtualenv of
its own installed at test time) runs as a child process: its profile config is
saved by yowsup's ``ConfigManager`` and its ``axolotl.db`` written by
``LiteAxolotlStore`` through yowsup's ``AxolotlManager``. A python-axolotl
account over wastore (P) exchanges DMs and group messages with it, both ways,
with one DM and one group message held back. Then the profile is imported
and the account goes on with python-axolotl over wastore: it decrypts P's next
messages and the held-back ones and sends messages P decrypts, without a new
pre-key message or sender-key distribution.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore.formats import import_from
from wastore.interop.axolotl import SyncContainer

from _parties import Party, b64, new_party, pad, say, unb64, unpad  # isort: skip
from peers import install  # isort: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning"),
]

YOWSUP_REQUIREMENTS = ("yowsup==3.3.0", "python-axolotl==0.2.2", "protobuf==3.20.3")
PHONE = "15550000011"
YOWSUP = f"{PHONE}@s.whatsapp.net"
P_PHONE = "15550000012"
P = f"{P_PHONE}@s.whatsapp.net"
GROUP = "120363000000000002@g.us"
CHILD = Path(__file__).parent / "peers" / "yowsup_peer.py"


class YowsupPeer:
    def __init__(self, python: Path, home: Path) -> None:
        env = dict(os.environ, XDG_CONFIG_HOME=str(home))
        env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
        self.proc = subprocess.Popen(
            [str(python), str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def call(self, op: str, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **req}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the yowsup peer exited during {op!r}")
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"yowsup {op}: {reply['error']}")
        result: dict[str, Any] = reply["ok"]
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def yowsup_python() -> Path:
    try:
        return install.python_venv("yowsup", YOWSUP_REQUIREMENTS)
    except install.PeerUnavailable as err:
        install.unavailable(err)
        raise


def test_yowsup_account_moves_in(yowsup_python: Path, tmp_path: Path) -> None:
    peers = SyncContainer.open(tmp_path / "peers.db")
    child = YowsupPeer(yowsup_python, tmp_path / "home")
    try:
        p = new_party(peers, P)
        print("\n1. yowsup <-> python-axolotl")
        bundle = child.call("open", phone=PHONE, pushname="Yowie")
        p.start_session(YOWSUP, bundle)
        wire = p.send(YOWSUP, pad(b"hello yowsup"))
        r = child.call("decrypt", sender=P_PHONE, type=wire[0], ciphertext=b64(wire[1]))
        assert wire[0] == "pkmsg" and unb64(r["plaintext"]) == b"hello yowsup"
        say("P -> yowsup (pkmsg): hello yowsup")
        r = child.call("encrypt", recipient=P_PHONE, data=b64(b"hello P"))
        assert r["type"] == "msg"
        assert unpad(p.receive(YOWSUP, (r["type"], unb64(r["ciphertext"])))) == b"hello P"
        say("yowsup -> P (msg): hello P")
        held_dm = p.send(YOWSUP, pad(b"held back"))
        wire = p.send(YOWSUP, pad(b"after the held one"))
        r = child.call("decrypt", sender=P_PHONE, type=wire[0], ciphertext=b64(wire[1]))
        assert unb64(r["plaintext"]) == b"after the held one"
        say("P -> yowsup: one DM held back, the next decrypted")

        skdm = p.group_distribution(GROUP, P)
        child.call("group_session", group=GROUP, participant=P_PHONE, skdm=b64(skdm))
        g0 = p.group_send(GROUP, P, pad(b"group hello"))
        held_group = p.group_send(GROUP, P, pad(b"group held back"))
        g2 = p.group_send(GROUP, P, pad(b"group third"))
        for data, text in ((g0, b"group hello"), (g2, b"group third")):
            r = child.call("group_decrypt", group=GROUP, participant=P_PHONE, ciphertext=b64(data))
            assert unb64(r["plaintext"]) == text
        say("P -> group: 3 messages, yowsup decrypts #0 and #2 (#1 held back)")
        p.group_process(GROUP, YOWSUP, unb64(child.call("group_skmsg", group=GROUP)["skdm"]))
        data = unb64(
            child.call("group_encrypt", group=GROUP, data=b64(b"group from yowsup"))["ciphertext"]
        )
        assert unpad(p.group_receive(GROUP, YOWSUP, data)) == b"group from yowsup"
        say("yowsup -> group: P decrypts")
        child.close()

        print("2. imported into wastore, continued with python-axolotl")
        profile = tmp_path / "home" / "yowsup" / PHONE
        assert (profile / "axolotl.db").is_file() and (profile / "config.json").is_file()
        db = tmp_path / "wastore.db"

        async def do_import() -> int:
            async with await wastore.open_store(db) as c:
                [result] = await import_from(c, profile, "yowsup")
                assert result.device_id is not None and result.pn == YOWSUP
                say("imported:", json.dumps({"device_id": result.device_id, **result.counts}))
                assert result.counts["sessions"] == 1 and result.counts["sender_keys"] == 2
                assert (
                    result.counts["prekeys"] == 811
                )  # one went into the session and result.counts["identities"] == 1
                return result.device_id

        device_id = asyncio.run(do_import())
        moved = SyncContainer.open(db)
        try:
            account = moved.account(device_id)
            me = Party(account)
            d = account.device()
            assert d.push_name == "Yowie" and d.registration_id == bundle["registrationId"]
            assert d.edge_routing_info == b"\x08\x05\x08\x02"
            assert b"\x05" + d.identity_key.public == unb64(bundle["identity"])
            assert d.first_unupload_pre_key_id == 808 and d.next_pre_key_id == 813

            wire = p.send(YOWSUP, pad(b"P after the move"))
            assert wire[0] == "msg" and unpad(me.receive(P, wire)) == b"P after the move"
            assert unpad(me.receive(P, held_dm)) == b"held back"
            say("P -> moved account (msg), and the held-back DM: decrypted")
            wire = me.send(P, pad(b"moved account to P"))
            assert wire[0] == "msg" and unpad(p.receive(YOWSUP, wire)) == b"moved account to P"
            say("moved account -> P (msg): moved account to P")
            g3 = p.group_send(GROUP, P, pad(b"group after the move"))
            assert unpad(me.group_receive(GROUP, P, g3)) == b"group after the move"
            assert unpad(me.group_receive(GROUP, P, held_group)) == b"group held back"
            say("P -> group: the moved account decrypts the next and the held-back message")
            data = me.group_send(GROUP, YOWSUP, pad(b"group from the moved account"))
            assert unpad(p.group_receive(GROUP, YOWSUP, data)) == b"group from the moved account"
            say("moved account -> group: P decrypts with the sender key it had")
            account.close()
        finally:
            moved.close()
    finally:
        child.close()
        peers.close()
