"""How pyaileys names Signal peers, and the wastore addresses they map to.

pyaileys keys its Signal state the way Baileys (libsignal-node) does:

- a session or identity by ``"{name}.{device}"`` — libsignal's
  ``ProtocolAddress.toString()`` — where ``name`` is the user part of the JID,
  followed by ``_{domain}`` when the JID is not a phone-number JID
  (``_1`` for ``@lid``, ``_128`` for ``@hosted``, ``_129`` for ``@hosted.lid``);
- a sender key by ``"{group}::{name}::{device}"``.

wastore stores Signal state under the addresses every WhatsApp client uses
(:meth:`wastore.JID.signal_address`: ``user[:device]@server``, device left
out when 0) and sender keys under ``"{group}::{sender signal address}"``:

==================================  ==========================================
pyaileys                            wastore
==================================  ==========================================
``15551234567.0``                   ``15551234567@s.whatsapp.net``
``15551234567.3``                   ``15551234567:3@s.whatsapp.net``
``98765_1.2``                       ``98765:2@lid``
``98765_128.0``                     ``98765@hosted``
``1203630@g.us::15551234567::3``    ``1203630@g.us::15551234567:3@s.whatsapp.net``
==================================  ==========================================

These are the rows :mod:`wastore.interop.axolotl` reads and writes for the
same peers, so a session or sender key written by one client is continued by
the other. Only the canonical forms pyaileys produces are accepted (a device
number without leading zeros, a known domain): two spellings of one peer
would otherwise name two rows.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from ...errors import ValidationError
from ...jid import (
    DEFAULT_USER_SERVER,
    HIDDEN_USER_SERVER,
    HOSTED_LID_SERVER,
    HOSTED_SERVER,
    JID,
    MAX_DEVICE,
)

SENDER_KEY_SEPARATOR: Final = "::"

# pyaileys' WAJIDDomains: the domain type of a JID's server (0 needs no suffix).
_DOMAIN_SERVER: Final = {1: HIDDEN_USER_SERVER, 128: HOSTED_SERVER, 129: HOSTED_LID_SERVER}
_SERVER_DOMAIN: Final = {server: domain for domain, server in _DOMAIN_SERVER.items()}
_SERVER_DOMAIN[DEFAULT_USER_SERVER] = 0

_NAME_RE: Final = re.compile(r"([A-Za-z0-9+\-]+)(?:_(1|128|129))?")
_DEVICE_RE: Final = re.compile(r"0|[1-9][0-9]{0,4}")


def _short(text: object) -> str:
    return repr(text)[:80]


def _jid(name: str, device: str, what: str) -> JID:
    m = _NAME_RE.fullmatch(name)
    if m is None or _DEVICE_RE.fullmatch(device) is None or int(device) > MAX_DEVICE:
        raise ValidationError(
            f"{what} {_short(name + '.' + device)} is not a pyaileys Signal address "
            "('{user}[_{domain}].{device}', as pyaileys' jid_to_signal_address writes it)"
        )
    user, domain = m.group(1), m.group(2)
    server = _DOMAIN_SERVER[int(domain)] if domain else DEFAULT_USER_SERVER
    return JID(user=user, server=server, device=int(device))


def signal_address(address: object) -> str:
    """The wastore address of a pyaileys session / identity id (``"15551234567.3"``).

    Raises:
        ValidationError: not of the form pyaileys writes.
    """
    if type(address) is not str:
        raise ValidationError(
            f"a pyaileys Signal address must be a str, not {type(address).__name__}"
        )
    return _signal_address(address)


@lru_cache(maxsize=8192)  # pyaileys names the same few peers over and over
def _signal_address(address: str) -> str:
    name, dot, device = address.rpartition(".")
    if not dot:
        raise ValidationError(
            f"{_short(address)} is not a pyaileys Signal address "
            "('{user}[_{domain}].{device}')"
        )
    return _jid(name, device, "the Signal address").signal_address()


def _name_of(jid: JID) -> str:
    domain = _SERVER_DOMAIN.get(jid.server)
    if domain is None or jid.agent:
        raise ValidationError(
            f"{str(jid)!r} has no pyaileys Signal address (pyaileys names phone-number, "
            "LID and hosted devices)"
        )
    return jid.user if domain == 0 else f"{jid.user}_{domain}"


def pyaileys_address(address: str | JID) -> str:
    """The pyaileys id of a wastore signal address or device JID (the inverse of
    :func:`signal_address`)."""
    jid = address if isinstance(address, JID) else JID.parse(address)
    return f"{_name_of(jid)}.{jid.device}"


def _group(group: str, what: str) -> str:
    jid = JID.parse(group)
    if not jid.user or str(jid) != group:
        raise ValidationError(f"{what} {_short(group)} does not start with a group JID")
    return group


def sender_key_address(name: object) -> str:
    """The wastore sender-key address of a pyaileys sender-key id
    (``"{group}::{user}[_{domain}]::{device}"``).

    Raises:
        ValidationError: not of the form pyaileys' ``SenderKeyName.serialize()`` writes.
    """
    if type(name) is not str:
        raise ValidationError(
            f"a pyaileys sender-key name must be a str, not {type(name).__name__}"
        )
    return _sender_key_address(name)


@lru_cache(maxsize=8192)
def _sender_key_address(name: str) -> str:
    parts = name.rsplit(SENDER_KEY_SEPARATOR, 2)
    if len(parts) != 3:
        raise ValidationError(
            f"{_short(name)} is not a pyaileys sender-key name ('{{group}}::{{user}}::{{device}}')"
        )
    group, user, device = parts
    sender = _jid(user, device, "the sender of sender-key name")
    return f"{_group(group, 'the sender-key name')}{SENDER_KEY_SEPARATOR}{sender.signal_address()}"


def pyaileys_sender_key_name(address: str) -> str:
    """The pyaileys sender-key id of a wastore sender-key address (the inverse of
    :func:`sender_key_address`)."""
    group, sep, sender = address.partition(SENDER_KEY_SEPARATOR)
    if not sep:
        raise ValidationError(f"{_short(address)} is not a wastore sender-key address")
    jid = JID.parse(sender)
    return f"{group}{SENDER_KEY_SEPARATOR}{_name_of(jid)}{SENDER_KEY_SEPARATOR}{jid.device}"
