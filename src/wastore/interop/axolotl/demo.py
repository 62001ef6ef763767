"""``wastore demo``: two WhatsApp accounts talk Signal through python-axolotl, all state in wastore.

Alice and Bob live in one embedded SQLite file. They pair (Alice builds a
Signal session from Bob's pre-key bundle), exchange direct messages and group
messages (sender keys) with python-axolotl — every key, session and counter
read from and written to wastore — and the store is closed and reopened in the
middle. The report then shows what is stored, with private keys redacted.

Running it again continues the same conversation from the database: the
sessions are reused (no new pre-key message), message numbers and sender-key
iterations go on. This is also the asyncio way to use
:mod:`wastore.interop.axolotl`: the accounts run on the program's event loop
and each python-axolotl call runs in a worker thread (``asyncio.to_thread``).

It lives beside the adapter it shows, not in wastore's core: it needs
python-axolotl and rich (``pip install 'wastore[demo]'``), and nothing imports
it but ``wastore demo``.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rich import box
from rich.console import Console
from rich.table import Table

from ... import (
    JID,
    Container,
    Device,
    IncrementLoginCounter,
    PersistenceManager,
    SetId,
    SetPushName,
    open_store,
)
from . import AxolotlStore, axolotl_address, sender_key_name
from ._compat import (
    GroupCipher,
    GroupSessionBuilder,
    PreKeyWhisperMessage,
    SenderKeyDistributionMessage,
    SenderKeyMessage,
    SessionBuilder,
    SessionCipher,
    WhisperMessage,
)

DEFAULT_PATH: Final = Path("demo-data/wastore-demo.db")
GROUP: Final = JID(user="120363000000000001", server="g.us")
PRE_KEYS: Final = 10
PREKEY_TYPE: Final = 3

PEOPLE: Final = (
    ("Alice", JID(user="15550000001", server="s.whatsapp.net")),
    ("Bob", JID(user="15550000002", server="s.whatsapp.net")),
)
# What is said: the first run starts the session, later runs continue it.
FIRST_RUN_LINES: Final = (
    "Hi Bob! Is this end-to-end encrypted?",
    "It is: your first message started our Signal session.",
    "Did our session survive the restart?",
    "Yes: every ratchet step is in the database.",
)
LATER_RUN_LINES: Final = (
    "Back again (run {run}). Same session as before?",
    "Same session, loaded from the database: no new pre-key.",
    "And after another restart?",
    "Still the same session; the counters go on.",
)
GROUP_LINES: Final = (
    "Group message one of run {run}.",
    "Group message two: delivered before one.",
    "Both arrived, out of order, and both decrypted.",
)
DIRECT_PER_RUN: Final = len(FIRST_RUN_LINES)
GROUP_PER_RUN: Final = len(GROUP_LINES)


def fingerprint(public: bytes) -> str:
    """A short name of a public key: the first 8 bytes of its SHA-256 (as ``wastore show``)."""
    return hashlib.sha256(public).digest()[:8].hex()


@dataclass
class Account:
    """One demo account: its JID, manager and python-axolotl store."""

    name: str
    jid: JID
    pm: PersistenceManager
    store: AxolotlStore

    @property
    def address(self) -> str:
        return self.jid.signal_address()

    @property
    def device(self) -> Device:
        return self.pm.get_device_snapshot()


@dataclass
class Row:
    number: str
    direction: str
    kind: str
    text: str


@dataclass
class Report:
    created: bool = False
    notes: list[str] = field(default_factory=list)
    direct: list[Row | None] = field(default_factory=list)  # None marks the restart
    group_notes: list[str] = field(default_factory=list)
    group: list[Row] = field(default_factory=list)


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title_justify="left",
        title_style="bold",
    )
    for column in columns:
        table.add_column(column, overflow="fold")  # wrap long addresses, never elide them
    return table


def _file_sizes(path: Path) -> tuple[int, int]:
    """Sizes of the database file and of its write-ahead log (0 when there is none)."""
    wal = Path(f"{path}-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


async def _to_thread(fn: Any, *args: Any) -> Any:
    # python-axolotl is synchronous and its store blocks until the event loop has done
    # the database work, so it must not run on the loop's thread: run it in a worker.
    return await asyncio.to_thread(fn, *args)


class Demo:
    def __init__(self, path: Path, console: Console) -> None:
        self.path = path
        self.console = console
        self.container: Container | None = None
        self.accounts: dict[str, Account] = {}
        self.report = Report()

    # -- opening and restarting ---------------------------------------------------
    async def open(self, *, login: bool) -> None:
        self.container = await open_store(self.path)
        for name, jid in PEOPLE:
            device_id = await self.container.find_device(jid)
            created = device_id is None
            if device_id is None:
                device_id = await self.container.create_device()
            pm = await PersistenceManager.open(self.container.backend(device_id), signal_cache=True)
            account = Account(name, jid, pm, AxolotlStore(pm))
            self.accounts[name] = account
            if created:
                await self.create(account)
        if login:  # only once both accounts are open: a run that cannot start is no login
            for account in self.accounts.values():
                await account.pm.process_command(IncrementLoginCounter())
                await account.pm.flush()

    async def create(self, account: Account) -> None:
        await account.pm.process_commands([SetId(account.jid), SetPushName(account.name)])
        await account.pm.flush()
        await _to_thread(account.store.generate_pre_keys, PRE_KEYS)
        # A real client uploads these to the WhatsApp server; the demo's "server" is the
        # other account reading them from the store, so uploading is only the bookkeeping.
        records = await _to_thread(account.store.pre_keys_to_upload)
        await _to_thread(account.store.mark_pre_keys_uploaded, [r.getId() for r in records])
        self.report.created = True
        self.report.notes.append(
            f"Created {account.name} (device {account.pm.device_id}, {account.jid}): fresh "
            f"Curve25519 keys, and {PRE_KEYS} one-time pre-keys generated and uploaded."
        )

    async def close(self) -> None:
        """Close whatever is open (also after a failed open); raise the first error."""
        accounts, self.accounts = list(self.accounts.values()), {}
        container, self.container = self.container, None
        errors: list[Exception] = []
        for account in accounts:
            try:
                await account.pm.close()  # final flush of the cache and the device row
            except Exception as err:
                errors.append(err)
        if container is not None:
            await container.close()
        if errors:
            raise errors[0]

    async def restart(self) -> None:
        await self.close()
        await self.open(login=False)

    # -- messaging ------------------------------------------------------------------
    def cipher(self, owner: Account, peer: Account) -> Any:
        s = owner.store
        return SessionCipher(s, s, s, s, axolotl_address(peer.jid).getName(), 0)

    async def ensure_session(self, sender: Account, recipient: Account) -> None:
        name = axolotl_address(recipient.jid).getName()
        if await _to_thread(sender.store.containsSession, name, 0):
            self.report.notes.append(
                f"{sender.name} already has a session with {recipient.name}, stored by an "
                "earlier run: no pre-key bundle is fetched, no pre-key is used."
            )
            return
        pre_key_id = await self.server_hands_out(recipient)
        bundle = await _to_thread(recipient.store.pre_key_bundle, pre_key_id)
        s = sender.store
        builder = SessionBuilder(s, s, s, s, name, 0)
        await _to_thread(builder.processPreKeyBundle, bundle)
        await sender.pm.flush()
        one_time = "no one-time pre-key left" if pre_key_id is None else f"#{pre_key_id}"
        self.report.notes.append(
            f"{sender.name} had no session with {recipient.name}: she fetched "
            f"{recipient.name}'s pre-key bundle (identity key, signed pre-key "
            f"#{bundle.getSignedPreKeyId()}, one-time pre-key {one_time}) and built one."
        )

    async def server_hands_out(self, account: Account) -> int | None:
        """The WhatsApp server gives each uploaded one-time pre-key out once, lowest first."""
        uploaded = range(1, account.device.first_unupload_pre_key_id)
        left = await account.pm.signal.load_prekeys_batch(list(uploaded))
        return min(left) if left else None

    async def send(self, sender: Account, recipient: Account, payload: bytes) -> tuple[int, bytes]:
        message = await _to_thread(self.cipher(sender, recipient).encrypt, payload)
        await sender.pm.flush()  # the ratchet step is durable before the message leaves
        return message.getType(), message.serialize()

    async def receive(self, recipient: Account, sender: Account, wire: tuple[int, bytes]) -> bytes:
        kind, data = wire
        cipher = self.cipher(recipient, sender)
        if kind == PREKEY_TYPE:
            plaintext = await _to_thread(cipher.decryptPkmsg, PreKeyWhisperMessage(serialized=data))
        else:
            plaintext = await _to_thread(cipher.decryptMsg, WhisperMessage(serialized=data))
        await recipient.pm.flush()  # durable before the message is acknowledged
        return bytes(plaintext)

    async def direct(
        self, sender: Account, recipient: Account, run: int, step: int, number: int
    ) -> Row:
        lines = FIRST_RUN_LINES if run == 1 else LATER_RUN_LINES
        text = lines[step].format(run=run)
        wire = await self.send(sender, recipient, text.encode())
        decrypted = (await self.receive(recipient, sender, wire)).decode()
        assert decrypted == text
        kind = "pre-key message (starts the session)" if wire[0] == PREKEY_TYPE else "message"
        return Row(f"#{number}", f"{sender.name} → {recipient.name}", kind, decrypted)

    async def distribute(self, sender: Account, recipient: Account) -> Row | None:
        """Send ``sender``'s group sender key to ``recipient`` unless it already has it."""
        group = str(GROUP)
        status = dict(await sender.pm.get_sender_key_devices(group))
        if status.get(recipient.address):
            return None
        skn = sender_key_name(GROUP, sender.jid)
        skdm = await _to_thread(GroupSessionBuilder(sender.store).create, skn)
        wire = await self.send(sender, recipient, skdm.serialize())
        received = SenderKeyDistributionMessage(
            serialized=await self.receive(recipient, sender, wire)
        )
        await _to_thread(GroupSessionBuilder(recipient.store).process, skn, received)
        await recipient.pm.flush()
        await sender.pm.set_sender_key_status(group, [(recipient.address, True)])
        return Row(
            "",
            f"{sender.name} → {recipient.name}",
            "sender-key distribution (in a message)",
            f"{sender.name}'s sender key for the group",
        )

    async def group_send(
        self, sender: Account, run: int, step: int, number: int
    ) -> tuple[int, bytes]:
        text = GROUP_LINES[step].format(run=run)
        cipher = GroupCipher(sender.store, sender_key_name(GROUP, sender.jid))
        data: bytes = await _to_thread(cipher.encrypt, text.encode())
        await sender.pm.flush()
        return number, data

    async def group_receive(
        self, recipient: Account, sender: Account, sent: tuple[int, bytes], note: str = ""
    ) -> Row:
        number, data = sent
        cipher = GroupCipher(recipient.store, sender_key_name(GROUP, sender.jid))
        plaintext = (await _to_thread(cipher.decrypt, data)).decode()
        await recipient.pm.flush()
        iteration = SenderKeyMessage(serialized=data).getIteration()
        kind = f"group message, iteration {iteration}{note}"
        return Row(f"#{number}", f"{sender.name} → group", kind, plaintext)

    # -- the story ----------------------------------------------------------------------
    async def conversation(self) -> int:
        alice, bob = self.accounts["Alice"], self.accounts["Bob"]
        run = alice.device.login_counter
        first_direct = (run - 1) * DIRECT_PER_RUN + 1
        first_group = (run - 1) * GROUP_PER_RUN + 1

        await self.ensure_session(alice, bob)
        rows = self.report.direct
        rows.append(await self.direct(alice, bob, run, 0, first_direct))
        rows.append(await self.direct(bob, alice, run, 1, first_direct + 1))
        rows.append(None)
        await self.restart()  # close everything; what follows comes from the database
        alice, bob = self.accounts["Alice"], self.accounts["Bob"]
        rows.append(await self.direct(alice, bob, run, 2, first_direct + 2))
        rows.append(await self.direct(bob, alice, run, 3, first_direct + 3))

        for sender, recipient in ((alice, bob), (bob, alice)):
            row = await self.distribute(sender, recipient)
            if row is not None:
                self.report.group.append(row)
            else:
                self.report.group_notes.append(
                    f"{recipient.name} already has {sender.name}'s sender key (wastore's "
                    "sender-key status says so): no distribution message this time."
                )
        one = await self.group_send(alice, run, 0, first_group)
        two = await self.group_send(alice, run, 1, first_group + 1)
        self.report.group.append(await self.group_receive(bob, alice, two, " (arrived first)"))
        self.report.group.append(await self.group_receive(bob, alice, one, " (arrived late)"))
        three = await self.group_send(bob, run, 2, first_group + 2)
        self.report.group.append(await self.group_receive(alice, bob, three))
        return run

    # -- the report -----------------------------------------------------------------------
    def section(self, title: str, explanation: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{title}")
        self.console.print(explanation, style="dim", highlight=False)

    def print_conversation(self, run: int) -> None:
        c = self.console
        self.section(
            "1. Accounts",
            "Each account is a wastore device: an identity key, a registration id and a signed "
            "pre-key (real Curve25519 keys), plus one-time pre-keys that a peer uses to start a "
            "session.",
        )
        if not self.report.created:
            c.print(
                f"Found Alice and Bob in {self.path} (by their phone-number JIDs): this is run "
                f"#{run}, continuing from the stored state.",
                highlight=False,
            )
        for note in self.report.notes[:2] if self.report.created else []:
            c.print(note, highlight=False)

        self.section(
            "2. Direct conversation",
            "python-axolotl encrypts and decrypts; every session, identity and pre-key it "
            "touches is read from and written to wastore, and flushed before a message is "
            "sent or acknowledged. A new session starts with a pre-key message, which uses "
            "up one of the recipient's one-time pre-keys.",
        )
        for note in self.report.notes[2:] if self.report.created else self.report.notes:
            c.print(note, highlight=False)
        table = _table("#", "from → to", "sent as", "decrypted by the recipient")
        for row in self.report.direct:
            if row is None:
                table.add_row(
                    "",
                    "[bold]⟳ restart[/]",
                    "store closed, reopened",
                    "the rest is from the database",
                )
                continue
            table.add_row(row.number, row.direction, row.kind, row.text)
        c.print(table)

        self.section(
            "3. Group conversation (sender keys)",
            "In a group each member encrypts once with its own sender key. A sender key reaches "
            "each member once, inside a normal message; wastore stores the keys under "
            "'{group}::{sender}' and remembers who already has whose key. Messages may arrive "
            "out of order: the skipped key waits in the stored sender-key state.",
        )
        c.print(f"Group: {GROUP} (Alice and Bob)", highlight=False)
        for note in self.report.group_notes:
            c.print(note, highlight=False)
        table = _table("#", "from → to", "sent as", "decrypted by the others")
        for row in self.report.group:
            table.add_row(row.number, row.direction, row.kind, row.text)
        c.print(table)

    async def print_state(self) -> None:
        """Read everything back from the database (the store is reopened for this)."""
        container = await open_store(self.path)
        try:
            states = [await self.read_account(container, name, jid) for name, jid in PEOPLE]
        finally:
            await container.close()

        self.section(
            "4. What wastore stores for each account",
            "Read back from the database after the run. Sessions and identities are keyed by "
            "the peer's signal address (user[:device]@server); identities are the peers' "
            "32-byte public identity keys.",
        )
        for state in states:
            self.console.print()
            table = _table("what", "stored", title=f"{state['name']} (device {state['device_id']})")
            for label, key in (
                ("sessions", "sessions"),
                ("peer identities", "identities"),
                ("one-time pre-keys", "prekeys"),
                ("signed pre-keys", "signed"),
                ("sender keys", "sender_keys"),
                ("sender key sent to", "distribution"),
            ):
                table.add_row(label, str(state[key]))
            self.console.print(table)

        self.section(
            "5. The device rows",
            "The account's own identity and settings, kept by the PersistenceManager. Keys "
            "are shown as fingerprints of their public halves (first 8 bytes of SHA-256); "
            "private keys and secrets are never printed.",
        )
        table = _table("field", *(state["name"] for state in states))
        for label, key in (
            ("device id", "device_id"),
            ("JID", "jid"),
            ("push name", "push_name"),
            ("registration id", "registration_id"),
            ("identity key", "identity"),
            ("signed pre-key", "signed_pre_key"),
            ("its signature", "signature"),
            ("noise key", "noise"),
            ("private keys", "secrets"),
            ("next pre-key id", "next_pre_key_id"),
            ("first not uploaded", "first_unupload"),
            ("server has pre-keys", "server_has_prekeys"),
            ("logins (= demo runs)", "logins"),
        ):
            table.add_row(label, *(str(s[key]) for s in states))
        self.console.print(table)

        size, wal_size = await asyncio.to_thread(_file_sizes, self.path)
        self.section(
            "6. Database",
            "One SQLite file holds every account (WAL mode; created with mode 0600).",
        )
        self.console.print(
            f"{self.path}: {size / 1024:.1f} KiB"
            + (f" (+ {wal_size / 1024:.1f} KiB write-ahead log)" if wal_size else ""),
            highlight=False,
        )
        default = self.path == DEFAULT_PATH
        again = "wastore demo" if default else f"wastore demo --path {self.path}"
        # Only the demo's own folder is safe to suggest deleting as a whole.
        remove = f"{self.path.parent}/" if default else f"{self.path} (and its -wal, -shm files)"
        self.console.print(
            f"Run `{again}` again: Alice and Bob continue this conversation from the database "
            "(no new pre-key message; message numbers and sender-key iterations go on). "
            f"Inspect it with `wastore show {self.path} {PEOPLE[0][1]}`; start over by "
            f"deleting {remove}.",
            highlight=False,
        )

    async def read_account(self, container: Container, name: str, jid: JID) -> dict[str, Any]:
        device_id = await container.find_device(jid)
        assert device_id is not None
        backend = container.backend(device_id)
        device = await backend.load()
        assert device is not None
        peers = [p for _, p in PEOPLE if p != jid]
        addresses = [p.signal_address() for p in peers]
        sessions = await backend.get_sessions(addresses)
        identities = {a: await backend.load_identity(a) for a in addresses}
        total, uploaded = await backend.count_prekeys()
        used = device.next_pre_key_id - 1 - total
        archived = await backend.load_all_signed_prekeys()
        sender_keys = {}
        for _, person in PEOPLE:
            address = f"{GROUP}::{person.signal_address()}"
            record = await backend.get_sender_key(address)
            if record is not None:
                sender_keys[address] = record
        distribution = [d for d, has in await backend.get_sender_key_devices(str(GROUP)) if has]
        return {
            "name": name,
            "sessions": "\n".join(f"{a} ({len(r)} bytes)" for a, r in sessions.items()) or "-",
            "identities": "\n".join(
                f"{a} = {fingerprint(k)}" for a, k in identities.items() if k is not None
            )
            or "-",
            "prekeys": f"{total} left ({uploaded} of them uploaded), {used} used",
            "signed": f"#{device.signed_pre_key_id} (current), {len(archived)} archived",
            "sender_keys": "\n".join(sender_keys) or "-",
            "distribution": "\n".join(distribution) or "-",
            "device_id": device_id,
            "jid": str(device.pn),
            "push_name": device.push_name,
            "registration_id": device.registration_id,
            "identity": fingerprint(device.identity_key.public),
            "signed_pre_key": (
                f"#{device.signed_pre_key_id} {fingerprint(device.signed_pre_key.public)}"
            ),
            "signature": "verifies" if not device.key_problems() else "DOES NOT VERIFY",
            "noise": fingerprint(device.noise_key.public),
            "secrets": "never shown",
            "next_pre_key_id": device.next_pre_key_id,
            "first_unupload": device.first_unupload_pre_key_id,
            "server_has_prekeys": "yes" if device.server_has_prekeys else "no",
            "logins": device.login_counter,
        }


async def run(path: Path = DEFAULT_PATH, console: Console | None = None) -> None:
    """Run the demo on the SQLite file ``path`` (created with its folder if missing)."""
    console = console or Console()
    path = Path(path)
    console.print(
        "[bold]wastore demo[/]: two WhatsApp accounts, Alice and Bob, talk Signal through "
        "python-axolotl; every key, session and counter lives in wastore.",
        highlight=False,
    )
    console.print(f"Database: {path} (embedded SQLite)", highlight=False)
    demo = Demo(path, console)
    try:
        await demo.open(login=True)
        run_number = await demo.conversation()
    finally:
        await demo.close()
    demo.print_conversation(run_number)
    await demo.print_state()
