"""How python-axolotl's (name, device id) and SenderKeyName map to wastore addresses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wastore import JID, ValidationError
from wastore.interop.axolotl import (
    axolotl_address,
    device_candidates,
    group_jid,
    identity_address,
    sender_key_address,
    sender_key_name,
    signal_address,
)
from wastore.interop.axolotl._addresses import device_of, user_devices
from wastore.jid import MAX_DEVICE

from axolotl.axolotladdress import AxolotlAddress  # isort: skip
from axolotl.groups.senderkeyname import SenderKeyName  # isort: skip


@pytest.mark.parametrize(
    ("name", "device", "address"),
    [
        ("15551234567", 0, "15551234567@s.whatsapp.net"),
        ("15551234567", 3, "15551234567:3@s.whatsapp.net"),
        ("15551234567@s.whatsapp.net", 0, "15551234567@s.whatsapp.net"),
        ("15551234567@s.whatsapp.net", 3, "15551234567:3@s.whatsapp.net"),
        ("15551234567:3@s.whatsapp.net", 0, "15551234567:3@s.whatsapp.net"),
        ("15551234567:3@s.whatsapp.net", 3, "15551234567:3@s.whatsapp.net"),
        ("98765@lid", 2, "98765:2@lid"),
        ("98765:2@lid", 0, "98765:2@lid"),
        ("15551234567.1:2@s.whatsapp.net", 0, "15551234567:2@s.whatsapp.net"),
    ],
)
def test_signal_address(name: str, device: int, address: str) -> None:
    assert signal_address(name, device) == address


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("15551234567:3@s.whatsapp.net", 4),  # the name names another device
        ("15551234567", -1),
        ("15551234567", 65536),
        ("15551234567", True),
        ("", 0),
        ("has space", 0),
        ("@s.whatsapp.net", 0),
        ("s.whatsapp.net@", 0),
        (15551234567, 0),
    ],
)
def test_bad_names_and_devices_are_rejected(name: object, device: object) -> None:
    with pytest.raises(ValidationError):
        signal_address(name, device)  # type: ignore[arg-type]


def test_identities_are_per_name_at_device_zero() -> None:
    assert identity_address("15551234567") == "15551234567@s.whatsapp.net"
    assert identity_address("15551234567:5@s.whatsapp.net") == "15551234567:5@s.whatsapp.net"


def test_sender_key_addresses() -> None:
    alice = AxolotlAddress("15550000001", 0)
    assert (
        sender_key_address(SenderKeyName("120363@g.us", alice))
        == "120363@g.us::15550000001@s.whatsapp.net"
    )
    assert (
        sender_key_address(SenderKeyName("120363", AxolotlAddress("15550000001", 4)))
        == "120363@g.us::15550000001:4@s.whatsapp.net"
    )
    assert (
        sender_key_address(SenderKeyName("status@broadcast", alice))
        == "status@broadcast::15550000001@s.whatsapp.net"
    )
    for bad in ("120363@g.us::15550000001::0", None, alice):
        with pytest.raises(ValidationError):
            sender_key_address(bad)
    with pytest.raises(ValidationError):
        sender_key_address(SenderKeyName("", alice))
    assert group_jid("120363") == "120363@g.us"


def test_helpers_build_what_whatsapp_clients_use() -> None:
    jid = JID.parse("15550000001:7@s.whatsapp.net")
    address = axolotl_address(jid)
    assert (address.getName(), address.getDeviceId()) == ("15550000001:7@s.whatsapp.net", 0)
    name = sender_key_name("120363@g.us", jid)
    assert sender_key_address(name) == "120363@g.us::15550000001:7@s.whatsapp.net"


def test_device_candidates() -> None:
    every = device_candidates("15550000001")
    assert len(every) == 65536
    assert every[0] == (0, "15550000001@s.whatsapp.net")
    assert every[7] == (7, "15550000001:7@s.whatsapp.net")
    assert device_candidates("15550000001:7@s.whatsapp.net") == [
        (0, "15550000001:7@s.whatsapp.net")
    ]


users = st.from_regex(r"[0-9]{1,15}|[a-z][a-z0-9_\-]{0,10}", fullmatch=True)
servers = st.sampled_from(["s.whatsapp.net", "lid", "hosted", "hosted.lid"])
devices = st.integers(0, 65535)


@given(users, servers, devices)
def test_every_spelling_of_a_device_is_one_address(user: str, server: str, device: int) -> None:
    jid = JID(user=user, server=server, device=device)
    expected = jid.signal_address()
    spellings = [(f"{user}@{server}", device), (jid.signal_address(), 0)]
    if server == "s.whatsapp.net":
        spellings.append((user, device))
    assert {signal_address(n, d) for n, d in spellings} == {expected}
    a = axolotl_address(jid)
    assert signal_address(a.getName(), a.getDeviceId()) == expected
    assert (device, expected) in device_candidates(f"{user}@{server}")


def test_device_of_an_address() -> None:
    user = JID.parse("15550000001@s.whatsapp.net")
    assert device_of("15550000001@s.whatsapp.net", user) == 0
    assert device_of("15550000001:7@s.whatsapp.net", user) == 7
    assert device_of(f"15550000001:{MAX_DEVICE}@s.whatsapp.net", user) == MAX_DEVICE
    for other in (
        "15550000001:7@lid",  # another server
        "155500000012@s.whatsapp.net",  # another user with the same prefix
        "15550000001:07@s.whatsapp.net",  # not how a signal address spells a device
        "15550000001:@s.whatsapp.net",
        "15550000001:x@s.whatsapp.net",
        f"15550000001:{MAX_DEVICE + 1}@s.whatsapp.net",
        "15550000001:\u0664@s.whatsapp.net",  # a non-ASCII digit
    ):
        assert device_of(other, user) is None, other
    assert user_devices("15550000001") == (user, None)
    assert user_devices("15550000001:3@s.whatsapp.net") == (
        JID.parse("15550000001:3@s.whatsapp.net"),
        "15550000001:3@s.whatsapp.net",
    )
