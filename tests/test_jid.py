"""JID parsing, formatting and signal / protocol addresses."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wastore
from wastore import JID, ValidationError
from wastore.jid import (
    BOT_SERVER,
    BROADCAST_SERVER,
    CALL_SERVER,
    DEFAULT_USER_SERVER,
    GROUP_SERVER,
    HIDDEN_USER_SERVER,
    HOSTED_LID_SERVER,
    HOSTED_SERVER,
    INTEROP_SERVER,
    KNOWN_SERVERS,
    LEGACY_USER_SERVER,
    MAX_AGENT,
    MAX_DEVICE,
    MAX_USER_LEN,
    MESSENGER_SERVER,
    NEWSLETTER_SERVER,
    as_jid,
)

ALL_SERVERS = sorted(KNOWN_SERVERS)


def test_limits() -> None:
    assert (MAX_AGENT, MAX_DEVICE, MAX_USER_LEN) == (255, 65535, 128)


def test_known_servers_are_the_documented_ones() -> None:
    assert {
        "s.whatsapp.net",
        "c.us",
        "lid",
        "g.us",
        "broadcast",
        "newsletter",
        "hosted",
        "hosted.lid",
        "call",
        "bot",
        "msgr",
        "interop",
    } == set(KNOWN_SERVERS)
    assert {
        DEFAULT_USER_SERVER,
        LEGACY_USER_SERVER,
        HIDDEN_USER_SERVER,
        GROUP_SERVER,
        BROADCAST_SERVER,
        NEWSLETTER_SERVER,
        HOSTED_SERVER,
        HOSTED_LID_SERVER,
        CALL_SERVER,
        BOT_SERVER,
        MESSENGER_SERVER,
        INTEROP_SERVER,
    } == set(KNOWN_SERVERS)


@pytest.mark.parametrize("server", ALL_SERVERS)
def test_parse_plain_user_on_every_server(server: str) -> None:
    j = JID.parse(f"15551234567@{server}")
    assert (j.user, j.agent, j.device, j.server) == ("15551234567", 0, 0, server)
    assert str(j) == f"15551234567@{server}"
    assert j.is_known_server


@pytest.mark.parametrize("server", ALL_SERVERS)
def test_parse_agent_and_device_on_every_server(server: str) -> None:
    j = JID.parse(f"15551234567.1:42@{server}")
    assert (j.user, j.agent, j.device, j.server) == ("15551234567", 1, 42, server)
    assert str(j) == f"15551234567.1:42@{server}"


@pytest.mark.parametrize(
    ("text", "user", "agent", "device", "server"),
    [
        ("15551234567@s.whatsapp.net", "15551234567", 0, 0, "s.whatsapp.net"),
        ("15551234567:3@s.whatsapp.net", "15551234567", 0, 3, "s.whatsapp.net"),
        ("15551234567.2@s.whatsapp.net", "15551234567", 2, 0, "s.whatsapp.net"),
        ("15551234567.2:3@s.whatsapp.net", "15551234567", 2, 3, "s.whatsapp.net"),
        ("100000000000001:7@lid", "100000000000001", 0, 7, "lid"),
        ("120363025246125486@g.us", "120363025246125486", 0, 0, "g.us"),
        ("15551234567-1600000000@g.us", "15551234567-1600000000", 0, 0, "g.us"),
        ("status@broadcast", "status", 0, 0, "broadcast"),
        ("120363144038483540@newsletter", "120363144038483540", 0, 0, "newsletter"),
        ("15551234567:99@hosted", "15551234567", 0, 99, "hosted"),
        ("100000000000001:99@hosted.lid", "100000000000001", 0, 99, "hosted.lid"),
        ("15551234567@c.us", "15551234567", 0, 0, "c.us"),
        ("a_b+c-d@s.whatsapp.net", "a_b+c-d", 0, 0, "s.whatsapp.net"),
        ("1.255:65535@lid", "1", 255, 65535, "lid"),
        # Unknown but well-formed servers are accepted (forward compatibility).
        ("15551234567@future.example", "15551234567", 0, 0, "future.example"),
    ],
)
def test_parse_fields(text: str, user: str, agent: int, device: int, server: str) -> None:
    j = JID.parse(text)
    assert (j.user, j.agent, j.device, j.server) == (user, agent, device, server)
    assert j == JID(user=user, server=server, agent=agent, device=device)
    assert str(j) == text


def test_unknown_server_is_flagged() -> None:
    assert not JID.parse("1@future.example").is_known_server


def test_non_canonical_numbers_format_canonically() -> None:
    # Zero parts are omitted and leading zeros dropped when formatting.
    assert str(JID.parse("123:0@s.whatsapp.net")) == "123@s.whatsapp.net"
    assert str(JID.parse("123.0:0@s.whatsapp.net")) == "123@s.whatsapp.net"
    assert str(JID.parse("123.01:007@s.whatsapp.net")) == "123.1:7@s.whatsapp.net"


@pytest.mark.parametrize("server", ALL_SERVERS)
def test_bare_server_jid(server: str) -> None:
    j = JID.parse(server)
    assert j == JID(user="", server=server)
    assert (j.user, j.agent, j.device) == ("", 0, 0)
    assert str(j) == server


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("15551234567@s.whatsapp.net", "15551234567@s.whatsapp.net"),
        ("15551234567:5@s.whatsapp.net", "15551234567:5@s.whatsapp.net"),
        # The agent is never part of a signal address.
        ("15551234567.1:5@s.whatsapp.net", "15551234567:5@s.whatsapp.net"),
        ("15551234567.1@s.whatsapp.net", "15551234567@s.whatsapp.net"),
        ("100000000000001:12@lid", "100000000000001:12@lid"),
        ("100000000000001:99@hosted.lid", "100000000000001:99@hosted.lid"),
        ("15551234567:99@hosted", "15551234567:99@hosted"),
        ("120363025246125486@g.us", "120363025246125486@g.us"),
    ],
)
def test_signal_address(text: str, signal: str) -> None:
    assert JID.parse(text).signal_address() == signal


@pytest.mark.parametrize(
    ("text", "protocol"),
    [
        ("15551234567@s.whatsapp.net", "15551234567@s.whatsapp.net.0"),
        ("15551234567.1:5@s.whatsapp.net", "15551234567:5@s.whatsapp.net.0"),
        ("100000000000001:12@lid", "100000000000001:12@lid.0"),
        ("100000000000001:99@hosted.lid", "100000000000001:99@hosted.lid.0"),
    ],
)
def test_protocol_address(text: str, protocol: str) -> None:
    assert JID.parse(text).protocol_address() == protocol


def test_device_zero_is_omitted_from_signal_address() -> None:
    j = JID(user="123", server="lid", agent=0, device=0)
    assert j.signal_address() == "123@lid"
    assert JID(user="123", server="lid", device=1).signal_address() == "123:1@lid"


def test_to_non_ad_drops_agent_and_device() -> None:
    assert JID.parse("123.4:5@s.whatsapp.net").to_non_ad() == JID.parse("123@s.whatsapp.net")


def test_jid_is_frozen_and_hashable() -> None:
    j = JID.parse("123:5@s.whatsapp.net")
    with pytest.raises(dataclasses.FrozenInstanceError):
        j.device = 6  # type: ignore[misc]
    assert {j: 1}[JID.parse("123:5@s.whatsapp.net")] == 1
    assert j != JID.parse("123:6@s.whatsapp.net")


def test_repr_shows_the_jid() -> None:
    assert repr(JID.parse("123:5@lid")) == "JID('123:5@lid')"


def test_as_jid() -> None:
    j = JID.parse("1@lid")
    assert as_jid(j) is j
    assert as_jid("1@lid") == j
    with pytest.raises(ValidationError):
        as_jid(42)


INVALID = [
    "",  # empty
    "@x",  # empty user
    "@s.whatsapp.net",
    "a@",  # empty server
    "a:b@s.whatsapp.net",  # non-numeric device
    "a:@s.whatsapp.net",  # empty device
    "a.@s.whatsapp.net",  # empty agent
    "a.x@s.whatsapp.net",  # non-numeric agent
    "a.1.2@s.whatsapp.net",  # two agents
    "a:1:2@s.whatsapp.net",  # two devices
    "a:1.2@s.whatsapp.net",  # agent after device
    ":1@s.whatsapp.net",  # device without user
    ".1@s.whatsapp.net",  # agent without user
    "a:65536@s.whatsapp.net",  # device > 65535
    "a:123456@s.whatsapp.net",  # too many digits
    "a:-1@s.whatsapp.net",
    "a.256@s.whatsapp.net",  # agent > 255
    "a@b@s.whatsapp.net",  # two '@'
    "a@@s.whatsapp.net",
    "a b@s.whatsapp.net",  # spaces
    " a@s.whatsapp.net",
    "a@s.whatsapp.net ",
    "a@s.whats app.net",
    "a@S.WHATSAPP.NET",  # upper-case server
    "a@Lid",
    "a@s..whatsapp.net",  # empty label
    "a@.lid",
    "a@lid.",
    "a@-lid",
    "a@s_whatsapp.net",
    "a@s.whatsapp.net\n",
    "a\n@s.whatsapp.net",
    "a/b@s.whatsapp.net",
    "a\x00@s.whatsapp.net",
    "ä@s.whatsapp.net",
    "\u0661\u0662\u0663@s.whatsapp.net",  # non-ASCII (Arabic-Indic) digits
    "a:\u0661@s.whatsapp.net",
    "x" * (MAX_USER_LEN + 1) + "@s.whatsapp.net",  # user too long
    "S.WHATSAPP.NET",  # bare upper-case server
    "has space",  # bare invalid server
    "a:1",  # no '@' and not a server name
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_jids_raise_validation_error(text: str) -> None:
    with pytest.raises(ValidationError):
        JID.parse(text)


def test_validation_error_is_a_value_error_and_store_error() -> None:
    with pytest.raises(ValueError, match="JID"):
        JID.parse("a:b@s.whatsapp.net")
    with pytest.raises(wastore.StoreError):
        JID.parse("")


@pytest.mark.parametrize("value", [None, 123, b"a@lid", ["a@lid"]])
def test_parse_rejects_non_str(value: object) -> None:
    with pytest.raises(ValidationError):
        JID.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user": "a", "server": "lid", "device": 65536},
        {"user": "a", "server": "lid", "device": -1},
        {"user": "a", "server": "lid", "agent": 256},
        {"user": "a", "server": "lid", "agent": -1},
        {"user": "a", "server": "lid", "device": True},  # bool is not an int here
        {"user": "a", "server": "lid", "device": 1.0},
        {"user": "a", "server": "lid", "agent": "1"},
        {"user": 1, "server": "lid"},
        {"user": "a", "server": None},
        {"user": "a", "server": ""},
        {"user": "a", "server": "LID"},
        {"user": "a b", "server": "lid"},
        {"user": "a:1", "server": "lid"},
        {"user": "a.1", "server": "lid"},
        {"user": "a@b", "server": "lid"},
        {"user": "", "server": "lid", "device": 1},  # bare server with a device
        {"user": "", "server": "lid", "agent": 1},
    ],
)
def test_constructor_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JID(**kwargs)  # type: ignore[arg-type]


def test_long_user_error_message_is_truncated() -> None:
    with pytest.raises(ValidationError) as info:
        JID.parse("y" * 5000 + "@s.whatsapp.net")
    assert len(str(info.value)) < 300


# -- property-based round trips ----------------------------------------------

users = st.from_regex(r"[A-Za-z0-9_+\-]{1,128}", fullmatch=True)
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9\-]{0,10}[a-z0-9])?", fullmatch=True)
# A bare number is rejected (it is a phone number missing its server), so a
# generated server name is never all digits.
servers = st.sampled_from(ALL_SERVERS) | st.lists(_label, min_size=1, max_size=4).map(
    ".".join
).filter(lambda s: not s.isdigit())
agents = st.integers(0, MAX_AGENT)
devices = st.integers(0, MAX_DEVICE)


@st.composite
def jids(draw: st.DrawFn) -> JID:
    server = draw(servers)
    if draw(st.integers(0, 9)) == 0:  # sometimes a bare server JID
        return JID(user="", server=server)
    return JID(user=draw(users), server=server, agent=draw(agents), device=draw(devices))


@given(jids())
def test_roundtrip_jid_to_str_to_jid(j: JID) -> None:
    assert JID.parse(str(j)) == j


@st.composite
def canonical_strings(draw: st.DrawFn) -> str:
    server = draw(servers)
    if draw(st.integers(0, 9)) == 0:
        return server
    text = draw(users)
    agent = draw(agents)
    device = draw(devices)
    if agent:
        text += f".{agent}"
    if device:
        text += f":{device}"
    return f"{text}@{server}"


@given(canonical_strings())
def test_roundtrip_str_to_jid_to_str(text: str) -> None:
    assert str(JID.parse(text)) == text


@given(jids())
def test_signal_address_properties(j: JID) -> None:
    if not j.user:
        return
    addr = j.signal_address()
    assert addr.endswith(f"@{j.server}")
    assert addr.startswith(j.user)
    assert (f":{j.device}@" in addr) == (j.device != 0)
    assert "." not in addr.removesuffix(f"@{j.server}")  # no agent part
    assert j.protocol_address() == addr + ".0"
    # The signal address is itself a valid JID naming the same device without agent.
    assert JID.parse(addr) == JID(user=j.user, server=j.server, device=j.device)


@given(st.text(max_size=40))
def test_parse_never_raises_anything_but_validation_error(text: str) -> None:
    try:
        j = JID.parse(text)
    except ValidationError:
        return
    # Whatever parses formats to something that parses to the same JID.
    assert JID.parse(str(j)) == j


def test_a_bare_number_is_not_taken_for_a_server() -> None:
    with pytest.raises(ValidationError, match="is a number, not a JID"):
        JID.parse("15551234567")


def test_a_server_jid_has_no_signal_address() -> None:
    with pytest.raises(ValidationError, match="no Signal address"):
        JID.parse("s.whatsapp.net").signal_address()
    with pytest.raises(ValidationError):
        JID.parse("g.us").protocol_address()
