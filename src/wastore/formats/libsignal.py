"""libsignal-node (Baileys) Signal records <-> libsignal protobuf records.

Baileys keeps its Signal state with libsignal-node, which stores a session as
JSON (``SessionRecord.serialize()``, record version ``"v1"``) and Baileys'
own group code stores a sender key as JSON too. Every other libsignal
(Java, Go as in whatsmeow, python-axolotl, Rust) stores libsignal's protobuf
records (``RecordStructure``, ``SenderKeyRecordStructure``), which is what
wastore keeps (INTERFACES §5). This module converts both ways, exactly: a
session converted here continues in any libsignal client, and one converted
back continues in Baileys.

How libsignal-node's session maps to libsignal's ``SessionStructure``
------------------------------------------------------------------------

============================================  ==============================================
libsignal-node (one entry of ``_sessions``)   ``SessionStructure``
============================================  ==============================================
``registrationId``                            ``remoteRegistrationId``
``currentRatchet.rootKey``                    ``rootKey``
``currentRatchet.ephemeralKeyPair``           ``senderChain.senderRatchetKey`` (+ private)
``currentRatchet.previousCounter`` ``p``      ``previousCounter`` = max(p, 0)
``indexInfo.remoteIdentityKey``               ``remoteIdentityPublic``
``indexInfo.baseKey``                         ``aliceBaseKey`` (Alice's base key either way)
chain ``{counter: c, key: K}``                ``chainKey {index: c + 1, key: K}``: node counts
                                              the last key *used*, libsignal the next one
chain without ``key`` (closed)                ``chainKey`` without ``key``
the sending chain (``chainType`` 1)           ``senderChain``
receiving chains (``chainType`` 2)            ``receiverChains``, oldest first
``messageKeys[n]`` = seed                     ``messageKeys {index: n, cipherKey, macKey,
                                              iv, seed}`` (HKDF of the seed, "WhisperMessageKeys")
``pendingPreKey {signedKeyId, baseKey,        ``pendingPreKey {signedPreKeyId, baseKey,
preKeyId?}``                                  preKeyId?}``
the open session (``closed == -1``)           ``currentSession``
closed sessions, oldest first                 ``previousSessions``, newest first
(not kept by node)                            ``sessionVersion`` 3, ``localIdentityPublic``,
                                              ``localRegistrationId`` (from the account)
============================================  ==============================================

What libsignal's record has no field for -- ``indexInfo.created/used/closed``,
``baseKeyType``, a previous counter of -1 (nothing sent on the previous chain)
and the last remote ratchet key while no receiving chain exists (Alice before
Bob's first reply) -- is kept in ``SessionStructure`` field 1000 (see
:mod:`wastore.formats._protos`), which other libsignal clients ignore. The
ratchet-dependent values there are used on the way back only while the
session's sending ratchet key is still the one they were taken with; after a
libsignal client has stepped the ratchet they are derived from the record
(last receiving chain; libsignal's previous counter). A message key that a
libsignal client skipped after the import has no seed (libsignal keeps only
the derived keys) and cannot be carried back to libsignal-node, which keeps
only seeds: :func:`session_record_to_node` drops it and counts it.

Sender keys: Baileys' ``SenderKeyRecord`` keeps its states oldest first and
uses the last; libsignal keeps them newest first and uses the first, so the
order is reversed. Their fields are the same (``senderKeyId``,
``senderChainKey {iteration, seed}``, ``senderSigningKey {public, private}``,
``senderMessageKeys [{iteration, seed}]``); libsignal-node's message keys are
seeds, as libsignal's are.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ValidationError
from ._protos import DecodeError, message_class

__all__ = [
    "NODE_RECORD_VERSION",
    "SessionConversion",
    "buffer_bytes",
    "derive_message_keys",
    "node_buffer",
    "sender_key_record_from_node",
    "sender_key_record_to_node",
    "session_record_from_node",
    "session_record_to_node",
]

NODE_RECORD_VERSION: Final = "v1"
"""The libsignal-node session record version this module reads and writes."""

SENDING: Final = 1
RECEIVING: Final = 2
BASE_KEY_OURS: Final = 1
BASE_KEY_THEIRS: Final = 2
SESSION_VERSION: Final = 3
_MESSAGE_KEYS_INFO: Final = b"WhisperMessageKeys"
_U32: Final = (1 << 32) - 1

RecordStructure = message_class("RecordStructure")
SessionStructure = message_class("SessionStructure")
SenderKeyRecordStructure = message_class("SenderKeyRecordStructure")


class _Bad(ValidationError):
    pass


# -- small readers ----------------------------------------------------------------


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where}: expected an object, found {type(value).__name__}")
    return value


def _int(value: Any, where: str, lo: int = 0, hi: int = _U32) -> int:
    if type(value) is not int or not lo <= value <= hi:
        found = value if type(value) is int else _kind(value)
        raise _Bad(f"{where}: expected an integer in [{lo}, {hi}], found {found}")
    return value


def _b64(value: Any, where: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise _Bad(f"{where}: expected base64 text, found {type(value).__name__}")
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _Bad(f"{where}: invalid base64") from None
    if length is not None and len(data) != length:
        raise _Bad(f"{where}: expected {length} bytes, found {len(data)}")
    return data


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def buffer_bytes(value: Any, where: str) -> bytes:
    """The bytes of a Node ``Buffer`` as Baileys' JSON holds it.

    Accepted forms: ``{"type": "Buffer", "data": "<base64>"}`` (BufferJSON),
    ``{"type": "Buffer", "data": [0, 255, ...]}`` (``Buffer.toJSON``), Baileys
    6's ``{"buffer": true, "value": ...}``, an object with keys ``"0"``,
    ``"1"``, ... (a ``Uint8Array`` through ``JSON.stringify``) and plain base64
    text (a protobuf.js object through ``toJSON``).

    Raises:
        ValidationError: ``value`` is none of these.
    """
    if isinstance(value, str):
        return _b64(value, where)
    if isinstance(value, dict):
        if value.get("type") == "Buffer" or value.get("buffer") is True:
            data = value.get("data", value.get("value"))
            if isinstance(data, str):
                return _b64(data, where)
            if isinstance(data, list):
                return _int_list(data, where)
            if data is None:
                return b""
        elif value and all(k.isdigit() for k in value):
            ordered = [value[str(i)] for i in range(len(value))] if _dense(value) else None
            if ordered is not None:
                return _int_list(ordered, where)
    # the value itself stays out of the message: it may be key material
    raise _Bad(f"{where}: expected binary data (a Buffer), found {_kind(value)}")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)[:5]}"
    return f"a {type(value).__name__}"


def _dense(value: Mapping[str, Any]) -> bool:
    return all(str(i) in value for i in range(len(value)))


def _int_list(items: list[Any], where: str) -> bytes:
    if not all(type(b) is int and 0 <= b <= 255 for b in items):
        raise _Bad(f"{where}: a Buffer's data must be bytes 0..255")
    return bytes(items)


def node_buffer(data: bytes) -> dict[str, Any]:
    """``data`` as ``JSON.stringify`` writes a Node ``Buffer``.

    That is ``{"type": "Buffer", "data": [0, 255, ...]}``.
    """
    return {"type": "Buffer", "data": list(data)}


def derive_message_keys(seed: bytes) -> tuple[bytes, bytes, bytes]:
    """``(cipher_key, mac_key, iv)`` of a Signal message-key seed (HKDF, as every libsignal)."""
    out = HKDF(
        algorithm=hashes.SHA256(), length=80, salt=bytes(32), info=_MESSAGE_KEYS_INFO
    ).derive(seed)
    return out[:32], out[32:64], out[64:80]


# -- sessions: node -> protobuf ---------------------------------------------------


def _chain_to_proto(chain: Any, msg: Any, where: str) -> None:
    counter = _int(chain.get("counter"), f"{where}.chainKey.counter", -1, _U32 - 1)
    msg.chainKey.index = counter + 1
    if "key" in chain and chain["key"] is not None:
        msg.chainKey.key = _b64(chain["key"], f"{where}.chainKey.key", 32)


def _fill_chain(entry: Mapping[str, Any], msg: Any, where: str) -> None:
    _chain_to_proto(_obj(entry.get("chainKey"), f"{where}.chainKey"), msg, where)
    keys = _obj(entry.get("messageKeys", {}), f"{where}.messageKeys")
    for index_text, seed_text in sorted(keys.items(), key=lambda kv: _key_index(kv[0], where)):
        seed = _b64(seed_text, f"{where}.messageKeys[{index_text}]", 32)
        cipher_key, mac_key, iv = derive_message_keys(seed)
        mk = msg.messageKeys.add()
        mk.index = _key_index(index_text, where)
        mk.cipherKey, mk.macKey, mk.iv, mk.seed = cipher_key, mac_key, iv, seed


def _key_index(text: str, where: str) -> int:
    if not text.isdigit() or len(text) > 10 or int(text) > _U32 or str(int(text)) != text:
        raise _Bad(f"{where}.messageKeys: {text[:20]!r} is not a message counter")
    return int(text)


def _session_to_proto(
    key: str, entry: Any, local_identity: bytes, local_registration_id: int, where: str
) -> Any:
    e = _obj(entry, where)
    ratchet = _obj(e.get("currentRatchet"), f"{where}.currentRatchet")
    info = _obj(e.get("indexInfo"), f"{where}.indexInfo")
    pair = _obj(ratchet.get("ephemeralKeyPair"), f"{where}.currentRatchet.ephemeralKeyPair")
    s = SessionStructure()
    s.sessionVersion = SESSION_VERSION
    s.localIdentityPublic = local_identity
    s.localRegistrationId = local_registration_id
    if e.get("registrationId") is not None:
        s.remoteRegistrationId = _int(e["registrationId"], f"{where}.registrationId")
    s.rootKey = _b64(ratchet.get("rootKey"), f"{where}.currentRatchet.rootKey", 32)
    previous = _int(
        ratchet.get("previousCounter"), f"{where}.currentRatchet.previousCounter", -1, _U32
    )
    s.previousCounter = max(previous, 0)
    s.remoteIdentityPublic = _b64(
        info.get("remoteIdentityKey"), f"{where}.indexInfo.remoteIdentityKey", 33
    )
    base_key = _b64(info.get("baseKey"), f"{where}.indexInfo.baseKey", 33)
    if _enc(base_key) != key:
        raise _Bad(f"{where}: the session is filed under {key[:60]!r}, not under its base key")
    s.aliceBaseKey = base_key
    ours_public = _b64(pair.get("pubKey"), f"{where}.currentRatchet.ephemeralKeyPair.pubKey", 33)
    ours_private = _b64(pair.get("privKey"), f"{where}.currentRatchet.ephemeralKeyPair.privKey", 32)
    last_remote = _b64(
        ratchet.get("lastRemoteEphemeralKey"), f"{where}.currentRatchet.lastRemoteEphemeralKey", 33
    )
    s.senderChain.senderRatchetKey = ours_public
    s.senderChain.senderRatchetKeyPrivate = ours_private
    chains = _obj(e.get("_chains", {}), f"{where}._chains")
    for chain_key, chain in chains.items():
        cw = f"{where}._chains[{chain_key[:12]}…]"
        c = _obj(chain, cw)
        ratchet_key = _b64(chain_key, cw, 33)
        kind = c.get("chainType")
        if ratchet_key == ours_public:
            if kind != SENDING:
                raise _Bad(f"{cw}: the chain of our ratchet key has chain type {kind!r}, not 1")
            _fill_chain(c, s.senderChain, cw)
        elif kind == RECEIVING:
            rc = s.receiverChains.add()
            rc.senderRatchetKey = ratchet_key
            _fill_chain(c, rc, cw)
        else:
            raise _Bad(f"{cw}: chain type {kind!r} for a key that is not our ratchet key")
    if "pendingPreKey" in e and e["pendingPreKey"] is not None:
        p = _obj(e["pendingPreKey"], f"{where}.pendingPreKey")
        s.pendingPreKey.signedPreKeyId = _int(
            p.get("signedKeyId"), f"{where}.pendingPreKey.signedKeyId", 0, (1 << 31) - 1
        )
        s.pendingPreKey.baseKey = _b64(p.get("baseKey"), f"{where}.pendingPreKey.baseKey", 33)
        if p.get("preKeyId") is not None:
            s.pendingPreKey.preKeyId = _int(p["preKeyId"], f"{where}.pendingPreKey.preKeyId")
    node = s.nodeState
    ts_max = (1 << 63) - 1
    node.created = _int(info.get("created"), f"{where}.indexInfo.created", 0, ts_max)
    node.used = _int(info.get("used"), f"{where}.indexInfo.used", 0, ts_max)
    node.closed = _int(info.get("closed"), f"{where}.indexInfo.closed", -1, ts_max)
    node.baseKeyType = _int(
        info.get("baseKeyType"), f"{where}.indexInfo.baseKeyType", BASE_KEY_OURS, BASE_KEY_THEIRS
    )
    node.ratchetKey = ours_public
    if previous != s.previousCounter:
        node.previousCounter = previous
    if not s.receiverChains or s.receiverChains[-1].senderRatchetKey != last_remote:
        node.lastRemoteEphemeralKey = last_remote
    return s


def session_record_from_node(
    doc: Any, *, local_identity: bytes, local_registration_id: int
) -> bytes:
    """A libsignal ``RecordStructure`` from a libsignal-node session record.

    Args:
        doc: the parsed JSON of the record (``{"_sessions": {...}, "version": "v1"}``).
        local_identity: this account's identity public key, 33 bytes (``0x05 ‖ key``).
        local_registration_id: this account's registration id.

    Returns:
        The serialized record.

    Raises:
        ValidationError: the record is not a libsignal-node ``v1`` record, a value
            is missing or malformed, or it has more than one open session.
    """
    if len(local_identity) != 33:
        raise ValidationError("local_identity must be 33 bytes (0x05 ‖ public key)")
    record = _obj(doc, "the session record")
    version = record.get("version")
    sessions = _obj(record.get("_sessions", {}), "_sessions")
    if version is None:
        # libsignal-node's own migration to v1: the registration id moves into each session
        reg = record.get("registrationId")
        if reg is not None:
            for entry in sessions.values():
                if isinstance(entry, dict) and not entry.get("registrationId"):
                    entry["registrationId"] = reg
    elif version != NODE_RECORD_VERSION:
        raise _Bad(
            f"session record version {str(version)[:20]!r} is not one this wastore reads "
            f"(libsignal-node {NODE_RECORD_VERSION!r})"
        )
    converted = [
        _session_to_proto(
            key, entry, local_identity, local_registration_id, f"_sessions[{key[:12]}…]"
        )
        for key, entry in sessions.items()
    ]
    open_ = [s for s in converted if s.nodeState.closed == -1]
    if len(open_) > 1:
        raise _Bad(f"the record has {len(open_)} open sessions; libsignal-node keeps one")
    out = RecordStructure()
    if open_:
        out.currentSession.CopyFrom(open_[0])
    for s in reversed(converted):
        if s.nodeState.closed != -1:
            out.previousSessions.add().CopyFrom(s)
    return bytes(out.SerializeToString())


# -- sessions: protobuf -> node ---------------------------------------------------


class SessionConversion:
    """The result of :func:`session_record_to_node`: the JSON record and what was left out."""

    __slots__ = ("doc", "dropped_message_keys")

    def __init__(self, doc: dict[str, Any], dropped_message_keys: int) -> None:
        self.doc = doc
        self.dropped_message_keys = dropped_message_keys


def _chain_to_node(c: Any, chain_type: int) -> tuple[dict[str, Any], int]:
    counter = c.chainKey.index - 1
    chain_key: dict[str, Any] = {"counter": counter}
    if c.chainKey.HasField("key"):
        chain_key["key"] = _enc(c.chainKey.key)
    message_keys: dict[str, str] = {}
    dropped = 0
    for mk in sorted(c.messageKeys, key=lambda m: m.index):
        if mk.HasField("seed") and len(mk.seed) == 32:
            message_keys[str(mk.index)] = _enc(mk.seed)
        else:
            dropped += 1
    return {"chainKey": chain_key, "chainType": chain_type, "messageKeys": message_keys}, dropped


def _session_to_node(
    s: Any, *, current: bool, rank: int, now_ms: int
) -> tuple[str, dict[str, Any], int]:
    node = s.nodeState if s.HasField("nodeState") else None
    ours = s.senderChain.senderRatchetKey
    applies = node is not None and node.HasField("ratchetKey") and node.ratchetKey == ours
    previous = s.previousCounter
    if applies and node is not None and node.HasField("previousCounter"):
        previous = node.previousCounter
    if applies and node is not None and node.HasField("lastRemoteEphemeralKey"):
        last_remote = node.lastRemoteEphemeralKey
    elif len(s.receiverChains):
        last_remote = s.receiverChains[-1].senderRatchetKey
    else:
        # no receiving chain and nothing recorded: a key no chain has, so that
        # libsignal-node's next ratchet step closes nothing
        last_remote = s.remoteIdentityPublic
    base_key = s.aliceBaseKey if s.aliceBaseKey else (s.pendingPreKey.baseKey or ours)
    fallback = now_ms - rank
    if node is not None:
        created = node.created if node.HasField("created") else fallback
        used = node.used if node.HasField("used") else fallback
        base_key_type = node.baseKeyType if node.HasField("baseKeyType") else 0
    else:
        created = used = fallback
        base_key_type = 0
    if base_key_type not in (BASE_KEY_OURS, BASE_KEY_THEIRS):
        base_key_type = BASE_KEY_OURS if s.HasField("pendingPreKey") else BASE_KEY_THEIRS
    if current:
        closed = -1
    elif node is not None and node.HasField("closed") and node.closed != -1:
        closed = node.closed
    else:
        closed = used if node is not None and node.HasField("used") else fallback
    chains: dict[str, Any] = {}
    dropped = 0
    for rc in s.receiverChains:
        chains[_enc(rc.senderRatchetKey)], n = _chain_to_node(rc, RECEIVING)
        dropped += n
    if s.senderChain.HasField("chainKey"):
        chains[_enc(ours)], n = _chain_to_node(s.senderChain, SENDING)
        dropped += n
    entry: dict[str, Any] = {}
    if s.HasField("remoteRegistrationId"):
        entry["registrationId"] = s.remoteRegistrationId
    entry["currentRatchet"] = {
        "ephemeralKeyPair": {
            "pubKey": _enc(ours),
            "privKey": _enc(s.senderChain.senderRatchetKeyPrivate),
        },
        "lastRemoteEphemeralKey": _enc(last_remote),
        "previousCounter": previous,
        "rootKey": _enc(s.rootKey),
    }
    entry["indexInfo"] = {
        "baseKey": _enc(base_key),
        "baseKeyType": base_key_type,
        "closed": closed,
        "used": used,
        "created": created,
        "remoteIdentityKey": _enc(s.remoteIdentityPublic),
    }
    entry["_chains"] = chains
    if s.HasField("pendingPreKey"):
        p = s.pendingPreKey
        pending: dict[str, Any] = {"signedKeyId": p.signedPreKeyId, "baseKey": _enc(p.baseKey)}
        if p.HasField("preKeyId"):
            pending["preKeyId"] = p.preKeyId
        entry["pendingPreKey"] = pending
    return _enc(base_key), entry, dropped


def _usable(s: Any) -> bool:
    """A session state with keys (python-axolotl writes an empty current session
    when there is none)."""
    return bool(s.rootKey) and bool(s.senderChain.senderRatchetKey)


def session_record_to_node(record: bytes, *, now_ms: int) -> SessionConversion:
    """A libsignal-node session record (parsed JSON) from a libsignal ``RecordStructure``.

    Args:
        record: the serialized record.
        now_ms: the time (Unix ms) given to libsignal-node's bookkeeping
            timestamps the record does not hold (sessions created by another
            libsignal client).

    Returns:
        The record and the number of skipped message keys that could not be
        carried (see the module documentation).

    Raises:
        ValidationError: the bytes are not a session record, or a state lacks
            the keys every session has.
    """
    out = RecordStructure()
    try:
        out.ParseFromString(record)
    except DecodeError:
        raise _Bad("the session record is not a libsignal RecordStructure") from None
    states: list[tuple[Any, bool]] = [(s, False) for s in reversed(out.previousSessions)]
    if out.HasField("currentSession") and _usable(out.currentSession):
        states.append((out.currentSession, True))
    sessions: dict[str, Any] = {}
    dropped = 0
    for rank, (s, current) in enumerate(reversed(states)):
        if not _usable(s):
            continue
        for name, length in (("rootKey", 32), ("remoteIdentityPublic", 33)):
            if len(getattr(s, name)) != length:
                raise _Bad(f"a session state's {name} is {len(getattr(s, name))} bytes")
        key, entry, n = _session_to_node(s, current=current, rank=rank, now_ms=now_ms)
        sessions[key] = entry
        dropped += n
    ordered = dict(reversed(list(sessions.items())))
    return SessionConversion({"_sessions": ordered, "version": NODE_RECORD_VERSION}, dropped)


# -- sender keys -----------------------------------------------------------------


def sender_key_record_from_node(states: Any) -> bytes:
    """A libsignal ``SenderKeyRecordStructure`` from Baileys' sender-key states.

    Args:
        states: the parsed JSON: a list of states, oldest first, each
            ``{senderKeyId, senderChainKey, senderSigningKey, senderMessageKeys}``
            with Buffers in any form :func:`buffer_bytes` reads.

    Raises:
        ValidationError: not a list of sender-key states.
    """
    if not isinstance(states, list):
        raise _Bad(f"a sender-key record is a list of states, not {type(states).__name__}")
    out = SenderKeyRecordStructure()
    for n, state in reversed(list(enumerate(states))):
        where = f"state {n}"
        st = _obj(state, where)
        msg = out.senderKeyStates.add()
        msg.senderKeyId = _int(st.get("senderKeyId", 0), f"{where}.senderKeyId")
        chain = _obj(st.get("senderChainKey"), f"{where}.senderChainKey")
        msg.senderChainKey.iteration = _int(
            chain.get("iteration"), f"{where}.senderChainKey.iteration"
        )
        msg.senderChainKey.seed = buffer_bytes(chain.get("seed"), f"{where}.senderChainKey.seed")
        signing = _obj(st.get("senderSigningKey"), f"{where}.senderSigningKey")
        msg.senderSigningKey.public = buffer_bytes(
            signing.get("public"), f"{where}.senderSigningKey.public"
        )
        if signing.get("private") is not None:
            msg.senderSigningKey.private = buffer_bytes(
                signing["private"], f"{where}.senderSigningKey.private"
            )
        keys = st.get("senderMessageKeys") or []
        if not isinstance(keys, list):
            raise _Bad(f"{where}.senderMessageKeys: expected a list")
        for i, mk in enumerate(keys):
            m = _obj(mk, f"{where}.senderMessageKeys[{i}]")
            if "iteration" not in m and "seed" not in m:
                # Baileys 6 lost these fields when it serialized a skipped key;
                # such an entry can never be used, by Baileys or anyone else
                continue
            k = msg.senderMessageKeys.add()
            k.iteration = _int(m.get("iteration"), f"{where}.senderMessageKeys[{i}].iteration")
            k.seed = buffer_bytes(m.get("seed"), f"{where}.senderMessageKeys[{i}].seed")
    return bytes(out.SerializeToString())


def sender_key_record_to_node(record: bytes) -> list[dict[str, Any]]:
    """Baileys' sender-key states (oldest first; Buffers as ``Buffer.toJSON`` writes them)
    from a libsignal ``SenderKeyRecordStructure``.

    Raises:
        ValidationError: the bytes are not a sender-key record.
    """
    rec = SenderKeyRecordStructure()
    try:
        rec.ParseFromString(record)
    except DecodeError:
        raise _Bad("the sender-key record is not a libsignal SenderKeyRecordStructure") from None
    states: list[dict[str, Any]] = []
    for st in reversed(rec.senderKeyStates):
        signing = {"public": node_buffer(st.senderSigningKey.public)}
        if st.senderSigningKey.HasField("private"):
            # Baileys 7 writes an empty private key for another member's state,
            # Baileys 6 none at all: the record says which (both read either)
            signing["private"] = node_buffer(st.senderSigningKey.private)
        states.append(
            {
                "senderKeyId": st.senderKeyId,
                "senderChainKey": {
                    "iteration": st.senderChainKey.iteration,
                    "seed": node_buffer(st.senderChainKey.seed),
                },
                "senderSigningKey": signing,
                "senderMessageKeys": [
                    {"iteration": k.iteration, "seed": node_buffer(k.seed)}
                    for k in st.senderMessageKeys
                ],
            }
        )
    return states
