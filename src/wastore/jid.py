"""WhatsApp JIDs: ``user[.agent][:device]@server``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .errors import ValidationError

DEFAULT_USER_SERVER: Final = "s.whatsapp.net"
LEGACY_USER_SERVER: Final = "c.us"
HIDDEN_USER_SERVER: Final = "lid"
GROUP_SERVER: Final = "g.us"
BROADCAST_SERVER: Final = "broadcast"
NEWSLETTER_SERVER: Final = "newsletter"
HOSTED_SERVER: Final = "hosted"
HOSTED_LID_SERVER: Final = "hosted.lid"
CALL_SERVER: Final = "call"
BOT_SERVER: Final = "bot"
MESSENGER_SERVER: Final = "msgr"
INTEROP_SERVER: Final = "interop"

KNOWN_SERVERS: Final = frozenset(
    {
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
    }
)

MAX_AGENT: Final = 255
MAX_DEVICE: Final = 65535
MAX_USER_LEN: Final = 128

# A user part never contains the separators of the JID grammar; a server is a
# lower-case dotted name. Unknown but well-formed servers are accepted so that
# a new server introduced by WhatsApp does not make stored data unreadable.
_USER_RE: Final = re.compile(r"[A-Za-z0-9_+\-]+")
_SERVER_RE: Final = re.compile(
    r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*"
)
_NUM_RE: Final = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True, slots=True)
class JID:
    """A WhatsApp address.

    ``user`` is empty for a bare server JID (``s.whatsapp.net``); ``agent`` and
    ``device`` are 0 unless the JID names one device of a user.
    """

    user: str
    server: str
    agent: int = 0
    device: int = 0

    def __post_init__(self) -> None:
        if type(self.user) is not str or type(self.server) is not str:
            raise ValidationError("JID user and server must be str")
        if type(self.agent) is not int or not 0 <= self.agent <= MAX_AGENT:
            raise ValidationError(f"JID agent must be an int in [0, {MAX_AGENT}]")
        if type(self.device) is not int or not 0 <= self.device <= MAX_DEVICE:
            raise ValidationError(f"JID device must be an int in [0, {MAX_DEVICE}]")
        if not _SERVER_RE.fullmatch(self.server):
            raise ValidationError(f"JID server {self.server!r} is not a valid server name")
        if self.user:
            if len(self.user) > MAX_USER_LEN or not _USER_RE.fullmatch(self.user):
                raise ValidationError(f"JID user {self.user[:40]!r} has invalid characters")
        elif self.agent or self.device:
            raise ValidationError("a JID without a user cannot name an agent or a device")

    @classmethod
    def parse(cls, text: str) -> JID:
        """Parse ``user[.agent][:device]@server`` (or a bare ``server``)."""
        if type(text) is not str:
            raise ValidationError(f"a JID must be parsed from a str, not {type(text).__name__}")
        if not text:
            raise ValidationError("an empty string is not a JID")
        if "@" not in text:
            if text.isdigit():
                raise ValidationError(
                    f"{text[:40]!r} is a number, not a JID: write it as "
                    f"'{text[:40]}@s.whatsapp.net' (phone number) or '@lid'"
                )
            return cls(user="", server=text)
        user_part, _, server = text.partition("@")
        if not user_part:
            raise ValidationError(f"JID {text[:80]!r} has an empty user before '@'")
        if "@" in server:
            raise ValidationError(f"JID {text[:80]!r} has more than one '@'")
        agent = device = 0
        if ":" in user_part:
            user_part, _, dev = user_part.partition(":")
            if not _NUM_RE.fullmatch(dev):
                raise ValidationError(f"JID {text[:80]!r} has an invalid device number")
            device = int(dev)
        if "." in user_part:
            user_part, _, ag = user_part.partition(".")
            if not _NUM_RE.fullmatch(ag):
                raise ValidationError(f"JID {text[:80]!r} has an invalid agent number")
            agent = int(ag)
        if not user_part:
            raise ValidationError(f"JID {text[:80]!r} has an empty user")
        return cls(user=user_part, server=server, agent=agent, device=device)

    def __str__(self) -> str:
        if not self.user:
            return self.server
        user = self.user
        if self.agent:
            user = f"{user}.{self.agent}"
        if self.device:
            user = f"{user}:{self.device}"
        return f"{user}@{self.server}"

    def __repr__(self) -> str:
        return f"JID({str(self)!r})"

    def signal_address(self) -> str:
        """The Signal session address: ``user[:device]@server`` (device omitted when 0)."""
        if not self.user:
            raise ValidationError(f"the server JID {self.server!r} has no Signal address")
        if self.device:
            return f"{self.user}:{self.device}@{self.server}"
        return f"{self.user}@{self.server}"

    def protocol_address(self) -> str:
        """The libsignal protocol address string: the signal address plus ``".0"``."""
        return self.signal_address() + ".0"

    def to_non_ad(self) -> JID:
        """The same user without agent and device (the account, not one of its devices)."""
        return JID(user=self.user, server=self.server)

    @property
    def is_known_server(self) -> bool:
        return self.server in KNOWN_SERVERS


def as_jid(value: object, what: str = "jid") -> JID:
    """Accept a :class:`JID` or its string form."""
    if isinstance(value, JID):
        return value
    if isinstance(value, str):
        return JID.parse(value)
    raise ValidationError(f"{what} must be a JID or str, not {type(value).__name__}")
