"""SignalStores: pywhats' seven store facets over a wastore account.

pywhats' own ``SqliteStore`` is the oracle: the same calls on both must give
the same answers. Plus: atomic blocks, record encodings, corrupt records,
opening and closing.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import wastore
from wastore import AccountInUseError, ConfigError, CorruptRecordError, StoreError
from wastore.formats import pywhats as fmt
from wastore.interop.bridge import SyncContainer
from wastore.interop.pywhats import SignalStores

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pywhats.appstate.keys import AppStateSyncKey
    from pywhats.appstate.patches import HashState
    from pywhats.appstate.store import MutationMac
    from pywhats.signal.experimental.keys import generate_pre_key
    from pywhats.signal.experimental.ratchet import RatchetState
    from pywhats.signal.experimental.sender_key import create_sender_key_state
    from pywhats.signal.experimental.sqlite_store import SqliteStore

PEER = "15559990000:1@s.whatsapp.net"
PEER0 = "15559990000:0@s.whatsapp.net"
LID_PEER = "88887777:1@lid"
GROUP = "120363000000000000@g.us"


class Boom(Exception):
    pass


def ratchet() -> RatchetState:
    r = secrets.token_bytes
    return RatchetState(
        dhs_priv=r(32),
        dhs_pub=r(32),
        dhr=r(32),
        rk=r(32),
        cks=r(32),
        ckr=None,
        ns=3,
        nr=2,
        pn=1,
        mkskipped={(r(32), 4): r(32)},
    )


@pytest.fixture
def container(tmp_path: Path) -> Iterator[SyncContainer]:
    c = SyncContainer.open(f"sqlite:///{tmp_path / 'stores.db'}")
    yield c
    c.close()


@pytest.fixture
def pair(container: SyncContainer, tmp_path: Path) -> Iterator[tuple[SignalStores, SqliteStore]]:
    """SignalStores over a new account, and pywhats' own SqliteStore: the oracle."""
    ours = SignalStores(container, container.create_device())
    theirs = SqliteStore(tmp_path / "oracle.signal.db")
    yield ours, theirs
    ours.close()
    theirs.close()


def test_every_facet_answers_as_pywhats_own_store(pair: tuple[SignalStores, SqliteStore]) -> None:
    ours, theirs = pair
    state, other = ratchet(), ratchet()
    sk_state = create_sender_key_state(key_id=9)
    opk, opk2 = generate_pre_key(5), generate_pre_key(17)
    key = AppStateSyncKey(key_id=b"\x00\x01", key_data=b"k" * 32, fingerprint=b"fp", timestamp=10)
    hash_state = HashState(version=7, hash=secrets.token_bytes(128))
    macs = [MutationMac(index_mac=secrets.token_bytes(32), value_mac=secrets.token_bytes(32))]
    later = [MutationMac(index_mac=macs[0].index_mac, value_mac=secrets.token_bytes(32))]

    def script(s: Any) -> list[Any]:
        seen: list[Any] = []
        seen += [s.sessions.load(PEER)]
        s.sessions.save(PEER, state)
        s.sessions.save(PEER0, other)
        s.sessions.save(PEER, other)
        seen += [s.sessions.load(PEER), s.sessions.load(PEER0)]
        s.sessions.delete(PEER0)
        s.sessions.delete("15550000000:0@s.whatsapp.net")  # absent: nothing happens
        seen += [s.sessions.load(PEER0)]
        s.identities.save(PEER, b"i" * 32)
        seen += [s.identities.load(PEER), s.identities.load(LID_PEER)]
        with pytest.raises(ValueError, match="32"):
            s.identities.save(PEER, b"short")
        s.identities.delete(PEER)
        seen += [s.identities.load(PEER)]
        s.lid_map.set("15559990000", "88887777")
        seen += [s.lid_map.get_lid("15559990000"), s.lid_map.get_pn("88887777")]
        seen += [s.lid_map.get_lid("1"), s.lid_map.get_pn("2")]
        seen += [s.prekeys.max_id(), s.prekeys.load(5)]
        s.prekeys.save(opk)
        s.prekeys.save(opk2)
        seen += [s.prekeys.load(5), s.prekeys.max_id()]
        s.prekeys.delete(17)
        seen += [s.prekeys.load(17), s.prekeys.max_id()]
        seen += [s.app_state_keys.get(b"\x00\x01")]
        s.app_state_keys.put(key)
        s.app_state_keys.put(AppStateSyncKey(b"\x00\x01", b"o" * 32, b"", 9))  # older: kept out
        s.app_state_keys.put(AppStateSyncKey(b"\x00\x01", b"e" * 32, b"", 10))  # same age: too
        seen += [s.app_state_keys.get(b"\x00\x01")]
        s.app_state_keys.put(AppStateSyncKey(b"\x00\x01", b"n" * 32, b"", 11))  # newer: wins
        seen += [s.app_state_keys.get(b"\x00\x01")]
        seen += [s.app_state.get_version("regular")]
        s.app_state.put_version("regular", hash_state)
        s.app_state.put_mutation_macs("regular", 7, macs)
        s.app_state.put_mutation_macs("regular", 8, later)
        s.app_state.put_mutation_macs("regular", 9, [])
        seen += [s.app_state.get_version("regular")]
        seen += [s.app_state.get_mutation_mac("regular", macs[0].index_mac)]
        seen += [s.app_state.get_mutation_mac("regular_low", macs[0].index_mac)]
        s.app_state.delete_mutation_macs("regular", [macs[0].index_mac])
        seen += [s.app_state.get_mutation_mac("regular", macs[0].index_mac)]
        s.app_state.put_mutation_macs("regular", 9, macs)
        s.app_state.delete_version("regular")
        seen += [s.app_state.get_version("regular")]
        seen += [s.app_state.get_mutation_mac("regular", macs[0].index_mac)]
        seen += [s.sender_keys.load(GROUP, PEER)]
        s.sender_keys.save(GROUP, PEER, sk_state)
        seen += [s.sender_keys.load(GROUP, PEER), s.sender_keys.load(GROUP, PEER0)]
        s.sender_keys.delete(GROUP, PEER)
        seen += [s.sender_keys.load(GROUP, PEER)]
        return seen

    assert script(ours) == script(theirs)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(["l1", "l2", "l3"])),
        max_size=8,
    )
)
def test_the_lid_map_is_pywhats_one_to_one_map(
    container: SyncContainer, tmp_path_factory: pytest.TempPathFactory, pairs: list[Any]
) -> None:
    """A phone number may get a new LID any number of times (a recycled number); a LID
    keeps its phone number (see the next test for a LID that moves)."""
    owner: dict[str, str] = {}
    for pn, lid in pairs:
        assume(owner.setdefault(lid, pn) == pn)
    ours = SignalStores(container, container.create_device())
    theirs = SqliteStore(tmp_path_factory.mktemp("lid") / "oracle.signal.db")
    try:
        for pn, lid in pairs:
            ours.lid_map.set(pn, lid)
            theirs.lid_map.set(pn, lid)
        for pn in ("p1", "p2", "p3"):
            assert ours.lid_map.get_lid(pn) == theirs.lid_map.get_lid(pn)
        for lid in ("l1", "l2", "l3"):
            assert ours.lid_map.get_pn(lid) == theirs.lid_map.get_pn(lid)
    finally:
        ours.close()
        theirs.close()


def test_a_lid_that_moves_to_another_phone_number(pair: tuple[SignalStores, SqliteStore]) -> None:
    """Where wastore's LID map differs from pywhats' own: it keeps each LID's last
    phone number, and has no way to delete a mapping, so when a LID moves from a
    phone number to another, the first number's earlier LID (which pywhats deleted
    when the number took the moving LID) answers again."""
    ours, theirs = pair
    for s in (ours, theirs):
        s.lid_map.set("p2", "l2")
        s.lid_map.set("p2", "l1")
        assert s.lid_map.get_lid("p2") == "l1"
        assert s.lid_map.get_pn("l2") is None
        s.lid_map.set("p1", "l1")  # l1 moves to p1
        assert s.lid_map.get_lid("p1") == "l1"
        assert s.lid_map.get_pn("l1") == "p1"
    assert theirs.lid_map.get_lid("p2") is None
    assert ours.lid_map.get_lid("p2") == "l2"  # the documented difference


def test_records_are_pywhats_bytes_and_the_shared_encodings(
    pair: tuple[SignalStores, SqliteStore],
) -> None:
    ours, theirs = pair
    state = ratchet()
    sk_state = create_sender_key_state(key_id=3)
    opk = generate_pre_key(5)
    for s in (ours, theirs):
        s.sessions.save(PEER, state)
        s.sender_keys.save(GROUP, PEER, sk_state)
        s.identities.save(LID_PEER, b"i" * 32)
        s.prekeys.save(opk)
    backend = ours.backend
    # Sessions and sender keys: pywhats' own JSON, byte for byte, under wastore addresses.
    (their_session,) = theirs._conn.execute("SELECT state FROM sessions").fetchone()
    assert ours.call(backend.get_session("15559990000:1@s.whatsapp.net")) == their_session.encode()
    (their_sk,) = theirs._conn.execute("SELECT state FROM sender_keys").fetchone()
    address = "120363000000000000@g.us::15559990000:1@s.whatsapp.net"
    assert ours.call(backend.get_sender_key(address)) == their_sk.encode()
    # Identities: the 32-byte key; pre-keys: a libsignal PreKeyRecordStructure.
    assert ours.call(backend.load_identity("88887777:1@lid")) == b"i" * 32
    record = ours.call(backend.load_prekey(5))
    assert record is not None
    assert fmt.decode_prekey_record(record, 5) == (5, opk.private, opk.public)
    assert ours.call(backend.count_prekeys()) == (1, 1)  # pywhats uploads what it stores


def test_prekey_records_are_the_ones_python_axolotl_reads_and_writes() -> None:
    from wastore.interop.axolotl._compat import Curve, PreKeyRecord

    opk = generate_pre_key(4242)
    theirs = PreKeyRecord(serialized=fmt.encode_prekey_record(4242, opk.private, opk.public))
    assert theirs.getId() == 4242
    assert theirs.getKeyPair().getPublicKey().serialize() == b"\x05" + opk.public
    assert theirs.getKeyPair().getPrivateKey().serialize() == opk.private
    pair = Curve.generateKeyPair()
    made = PreKeyRecord(77, pair).serialize()
    _, private, public = fmt.decode_prekey_record(made, 77)
    assert public == pair.getPublicKey().serialize()[1:]
    assert private == pair.getPrivateKey().serialize()
    with pytest.raises(wastore.ValidationError, match="id 77"):
        fmt.decode_prekey_record(made, 78)
    for bad in (b"", b"\x08", b"\x08\x01\x12\x05abc", b"\x0f"):
        with pytest.raises(wastore.ValidationError):
            fmt.decode_prekey_record(bad)


def test_an_atomic_block_commits_together(pair: tuple[SignalStores, SqliteStore]) -> None:
    ours, _ = pair
    ours.prekeys.save(generate_pre_key(5))
    state = ratchet()
    with ours.transaction():
        ours.prekeys.delete(5)
        ours.sessions.save(PEER, state)
        assert ours.sessions.load(PEER) == state  # reads in the block see its writes
        ours.identities.save(PEER, b"i" * 32)
    assert ours.prekeys.load(5) is None
    assert ours.sessions.load(PEER) == state
    assert ours.identities.load(PEER) == b"i" * 32


def test_an_atomic_block_with_a_fault_in_the_middle_leaves_nothing(
    pair: tuple[SignalStores, SqliteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, _ = pair
    opk = generate_pre_key(5)
    ours.prekeys.save(opk)
    ours.lid_map.set("15559990000", "88887777")
    kind = type(ours.backend)

    async def failing(self: Any, address: str, key: bytes) -> None:
        raise wastore.BackendUnavailableError("injected fault in the middle of the block")

    monkeypatch.setattr(kind, "put_identity", failing)

    def block() -> None:
        with ours.transaction():
            ours.prekeys.delete(5)
            ours.sessions.save(PEER, ratchet())
            ours.lid_map.set("15559990000", "99990000")
            ours.identities.save(PEER, b"i" * 32)  # the fault
            ours.sender_keys.save(GROUP, PEER, create_sender_key_state(key_id=1))

    with pytest.raises(wastore.BackendUnavailableError, match="injected fault"):
        block()
    monkeypatch.undo()
    assert ours.prekeys.load(5) == opk
    assert ours.sessions.load(PEER) is None
    assert ours.lid_map.get_lid("15559990000") == "88887777"
    assert ours.identities.load(PEER) is None
    assert ours.sender_keys.load(GROUP, PEER) is None

    # An exception of the block's own code rolls back the same way.
    def raising() -> None:
        with ours.transaction():
            ours.sessions.save(PEER, ratchet())
            raise Boom

    with pytest.raises(Boom):
        raising()
    assert ours.sessions.load(PEER) is None


def test_a_record_that_cannot_be_read_is_an_error_not_missing(
    pair: tuple[SignalStores, SqliteStore],
) -> None:
    ours, _ = pair
    b = ours.backend
    ours.call(b.put_session("15559990000:1@s.whatsapp.net", b"\xff not json"))
    with pytest.raises(CorruptRecordError, match="not JSON"):
        ours.sessions.load(PEER)
    ours.call(b.put_session("15559990000:1@s.whatsapp.net", b'{"schema": 99}'))
    with pytest.raises(CorruptRecordError, match="cannot be decoded"):
        ours.sessions.load(PEER)
    ours.call(b.store_prekey(5, b"\x08\x05", True))
    with pytest.raises(CorruptRecordError, match="pre-key record 5"):
        ours.prekeys.load(5)
    ours.call(b.put_sender_key(f"{GROUP}::15559990000:1@s.whatsapp.net", b"[]"))
    with pytest.raises(CorruptRecordError, match="not a JSON object"):
        ours.sender_keys.load(GROUP, PEER)


def test_opening_an_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'open.db'}"
    with SignalStores(url) as first:  # an empty store: a new account
        device_id = first.device_id
        with pytest.raises(AccountInUseError):  # the lease is held
            SignalStores(url)
        with SignalStores(url, device_id, lease=False) as reader:
            first.prekeys.save(generate_pre_key(3))
            assert reader.prekeys.max_id() == 3
    assert first.closed
    with pytest.raises(StoreError, match="closed"):
        first.prekeys.max_id()
    first.close()  # twice is fine
    c = SyncContainer.open(url)
    try:
        pywhats_device = fmt.device_from_pywhats(
            {
                **fmt.device_to_pywhats(c.run(c.container.backend(device_id).load())),
                "lid": "5.0.2@lid",
            }
        )
        c.run(c.container.backend(device_id).save(pywhats_device))
        other = c.create_device()
        with pytest.raises(ConfigError, match=f"{device_id}.*{other}"):
            SignalStores(c)
        with SignalStores(c, "5@lid") as by_jid:
            assert by_jid.device_id == device_id
        with pytest.raises(StoreError, match="no account"):
            SignalStores(c, "6@lid")
        with pytest.raises(wastore.DeviceNotFoundError):
            SignalStores(c, 999)
        with pytest.raises(wastore.ValidationError, match="account"):
            SignalStores(c, 1.5)  # type: ignore[arg-type]
        with pytest.raises(wastore.ValidationError, match="options"):
            SignalStores(c, other, pool_size=3)
        s = SignalStores(c, other)
    finally:
        c.close()  # closes the stores still open on it, releasing the lease
    assert s.closed
    with SignalStores(url, other):
        pass
    assert os.path.exists(tmp_path / "open.db")
