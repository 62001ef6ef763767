"""How python-axolotl's addresses map to wastore's signal addresses.

python-axolotl names a Signal peer by ``(recipientId, deviceId)`` — a free-form
name and an integer — and a group sender by ``SenderKeyName(groupId,
AxolotlAddress(name, deviceId))``. wastore stores Signal state under the
addresses WhatsApp clients use (:meth:`wastore.JID.signal_address`):
``user[:device]@server``, device omitted when 0, and sender keys under
``"{group}::{sender signal address}"``. The mapping:

==========================================  ==========================================
python-axolotl                              wastore address
==========================================  ==========================================
``("15551234567", 0)``                      ``15551234567@s.whatsapp.net``
``("15551234567", 3)``                      ``15551234567:3@s.whatsapp.net``
``("15551234567@s.whatsapp.net", 3)``       ``15551234567:3@s.whatsapp.net``
``("15551234567:3@s.whatsapp.net", 0)``     ``15551234567:3@s.whatsapp.net``
``("98765@lid", 2)``                        ``98765:2@lid``
``SenderKeyName("1203630@g.us", A)``        ``1203630@g.us::`` + address of ``A``
``SenderKeyName("1203630", A)``             ``1203630@g.us::`` + address of ``A``
==========================================  ==========================================

- A name with ``@`` is a JID (:meth:`wastore.JID.parse`); a name without is the
  user part of a phone-number JID (server ``s.whatsapp.net``), as in yowsup.
- ``deviceId`` is the WhatsApp device number (0 = the primary phone). A name
  that already names a device (``user:3@server``) takes device id 0 or that
  same number; both mean that device. Any other combination is rejected.
- A group id with ``@`` is a group JID; one without is the user part of a
  ``g.us`` JID.
- Identities: python-axolotl's identity calls carry the name only, so the
  identity of ``name`` is stored under the address of ``(name, 0)``. Because
  every WhatsApp device has its own identity key, clients of WhatsApp
  multi-device should name each device by its full signal address with device
  id 0 (:func:`wastore.interop.axolotl.axolotl_address` does that) — exactly
  libsignal's ``ProtocolAddress(signal_address, 0)`` used by whatsapp-rust.
  Then sessions, identities and sender keys are per device, and the rows are
  the ones any other wastore client reads.

Nothing here imports python-axolotl: the address objects are duck-typed.
"""

from __future__ import annotations

from typing import Any, Final

from ...errors import ValidationError
from ...jid import DEFAULT_USER_SERVER, GROUP_SERVER, JID, MAX_DEVICE

SENDER_KEY_SEPARATOR: Final = "::"


def _name_jid(name: object) -> JID:
    if type(name) is not str:
        raise ValidationError(
            f"a python-axolotl recipient name must be a str, not {type(name).__name__}"
        )
    if "@" in name:
        jid = JID.parse(name)
        if not jid.user:
            raise ValidationError(f"the recipient name {name[:80]!r} has no user part")
        return jid
    return JID(user=name, server=DEFAULT_USER_SERVER)


def _device(device_id: object) -> int:
    if type(device_id) is not int or not 0 <= device_id <= MAX_DEVICE:
        raise ValidationError(
            f"a python-axolotl device id must be an int in [0, {MAX_DEVICE}], got {device_id!r}"
        )
    return device_id


def signal_address(name: str, device_id: int) -> str:
    """The wastore signal address of python-axolotl's ``(recipientId, deviceId)``.

    Raises:
        ValidationError: ``name`` is not a JID or a JID user, the device id is out
            of range, or the name names a different device than ``device_id``.
    """
    jid = _name_jid(name)
    device = _device(device_id)
    if jid.device and device not in (0, jid.device):
        raise ValidationError(
            f"the recipient name {name!r} names device {jid.device} but device id {device} "
            "was given: pass device id 0 with a name that includes the device"
        )
    return JID(user=jid.user, server=jid.server, device=jid.device or device).signal_address()


def identity_address(name: str) -> str:
    """Where the identity key of the python-axolotl recipient ``name`` is stored."""
    return signal_address(name, 0)


def user_devices(name: str) -> tuple[JID, str | None]:
    """What a python-axolotl name means for a question about all its devices: its
    JID, and the one address it names when it names a device (else None: every
    device number of its user)."""
    jid = _name_jid(name)
    return jid, (jid.signal_address() if jid.device else None)


def device_of(address: str, jid: JID) -> int | None:
    """The device number of ``address`` when it is a device of ``jid``'s user on
    ``jid``'s server (``user@server`` is device 0, ``user:N@server`` device N), else
    None (another server, or not a signal address)."""
    user, server = jid.user, jid.server
    if not address.startswith(user) or not address.endswith("@" + server):
        return None
    middle = address[len(user) : len(address) - len(server) - 1]
    if not middle:
        return 0
    digits = middle[1:]
    if middle[0] != ":" or not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return None
    device = int(digits)
    return device if device <= MAX_DEVICE else None


def device_candidates(name: str) -> list[tuple[int, str]]:
    """``[(python-axolotl device id, wastore address)]`` of every device ``name`` can mean.

    A name that names a device means that device only (device id 0); a bare
    name means every device number of its user.
    """
    jid = _name_jid(name)
    if jid.device:
        return [(0, jid.signal_address())]
    # The format of JID.signal_address(), spelled out: 65536 JIDs are slow to validate.
    user, server = jid.user, jid.server
    return [(0, f"{user}@{server}")] + [
        (d, f"{user}:{d}@{server}") for d in range(1, MAX_DEVICE + 1)
    ]


def group_jid(group_id: object) -> str:
    """The group JID (as text) of a python-axolotl group id."""
    if type(group_id) is not str:
        raise ValidationError(f"a group id must be a str, not {type(group_id).__name__}")
    if "@" in group_id:
        jid = JID.parse(group_id)
        if not jid.user:
            raise ValidationError(f"the group id {group_id[:80]!r} has no user part")
        return str(jid)
    if not group_id:
        raise ValidationError("a group id must not be empty")
    return str(JID(user=group_id, server=GROUP_SERVER))


def sender_key_address(sender_key_name: Any) -> str:
    """The wastore sender-key address of a python-axolotl ``SenderKeyName``:
    ``"{group jid}::{sender signal address}"``.

    Raises:
        ValidationError: not a ``SenderKeyName`` (python-axolotl's docstrings say
            ``str``, but its group classes pass ``SenderKeyName`` objects), or a
            part does not map (see :func:`signal_address`).
    """
    try:
        group = sender_key_name.getGroupId()
        sender = sender_key_name.getSender()
        name, device_id = sender.getName(), sender.getDeviceId()
    except AttributeError:
        raise ValidationError(
            "a sender key is named by a python-axolotl SenderKeyName(groupId, AxolotlAddress), "
            f"not {type(sender_key_name).__name__}"
        ) from None
    return f"{group_jid(group)}{SENDER_KEY_SEPARATOR}{signal_address(name, device_id)}"
