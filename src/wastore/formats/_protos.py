"""The protobuf messages the foreign-format readers need, built at run time.

The message classes come from the ``protobuf`` package (``pip install
'wastore[formats]'``), built from a descriptor defined here rather than from
generated code, so that no ``protoc`` output is kept in the repository and any
protobuf runtime (4.x and later, C or pure-Python) loads them. They live in a
private descriptor pool: they never clash with the generated modules of
python-axolotl or of a WhatsApp client in the same process.

The Signal messages are libsignal's storage records (``LocalStorageProtocol``,
proto2, field numbers as in every libsignal), so the bytes they produce are
the records every libsignal client reads (docs: INTERFACES §5 of wastore's
signal record encodings). Two additions, both ignored by other libsignal
clients, which skip fields they do not know:

- ``SessionStructure.Chain.MessageKey.seed`` (field 5), as current libsignal
  defines it: the 32-byte message-key seed from which ``cipherKey``, ``macKey``
  and ``iv`` derive. libsignal-node (Baileys) keeps only the seed, so the
  converter stores both the derived keys (which python-axolotl, Java and Go
  libsignal read) and the seed (which a conversion back needs).
- ``SessionStructure.nodeState`` (field 1000, :data:`NODE_STATE_FIELD`): what
  libsignal-node keeps about a session that libsignal's record has no place
  for (timestamps, which side started it, its previous-counter sentinel, the
  last remote ratchet key before any reply), so that libsignal-node JSON ->
  protobuf -> libsignal-node JSON is exact. See :mod:`wastore.formats.libsignal`.

Importing this module selects protobuf's pure-Python implementation when
protobuf is not loaded yet, as :mod:`wastore.interop.axolotl` does: python-
axolotl's generated code runs only there, and a process picks one
implementation for good at the first protobuf import.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Final

if "google.protobuf" not in sys.modules:
    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.message import DecodeError, Message
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"wastore.formats needs the protobuf package, which is not installed ({err}): "
        "pip install 'wastore[formats]'"
    ) from err

__all__ = [
    "NODE_STATE_FIELD",
    "DecodeError",
    "Message",
    "message_class",
]

NODE_STATE_FIELD: Final = 1000
"""Field number of the libsignal-node bookkeeping in ``SessionStructure``."""

_PACKAGE: Final = "wastore.formats.wire"

_F = descriptor_pb2.FieldDescriptorProto
_TYPES: Final = {
    "bytes": _F.TYPE_BYTES,
    "string": _F.TYPE_STRING,
    "uint32": _F.TYPE_UINT32,
    "int32": _F.TYPE_INT32,
    "uint64": _F.TYPE_UINT64,
    "int64": _F.TYPE_INT64,
    "sint64": _F.TYPE_SINT64,
    "fixed64": _F.TYPE_FIXED64,
    "bool": _F.TYPE_BOOL,
}

# (name, number, type or ".Message.Path", label) -- label "?" optional, "*" repeated,
# "*p" repeated packed.
_Field = tuple[str, int, str, str]
_MESSAGES: Final[dict[str, list[_Field] | dict[str, Any]]] = {
    # -- libsignal storage records ------------------------------------------------
    "SessionStructure": {
        "fields": [
            ("sessionVersion", 1, "uint32", "?"),
            ("localIdentityPublic", 2, "bytes", "?"),
            ("remoteIdentityPublic", 3, "bytes", "?"),
            ("rootKey", 4, "bytes", "?"),
            ("previousCounter", 5, "uint32", "?"),
            ("senderChain", 6, ".SessionStructure.Chain", "?"),
            ("receiverChains", 7, ".SessionStructure.Chain", "*"),
            ("pendingPreKey", 9, ".SessionStructure.PendingPreKey", "?"),
            ("remoteRegistrationId", 10, "uint32", "?"),
            ("localRegistrationId", 11, "uint32", "?"),
            ("needsRefresh", 12, "bool", "?"),
            ("aliceBaseKey", 13, "bytes", "?"),
            ("nodeState", NODE_STATE_FIELD, ".SessionStructure.NodeState", "?"),
        ],
        "nested": {
            "Chain": {
                "fields": [
                    ("senderRatchetKey", 1, "bytes", "?"),
                    ("senderRatchetKeyPrivate", 2, "bytes", "?"),
                    ("chainKey", 3, ".SessionStructure.Chain.ChainKey", "?"),
                    ("messageKeys", 4, ".SessionStructure.Chain.MessageKey", "*"),
                ],
                "nested": {
                    "ChainKey": [("index", 1, "uint32", "?"), ("key", 2, "bytes", "?")],
                    "MessageKey": [
                        ("index", 1, "uint32", "?"),
                        ("cipherKey", 2, "bytes", "?"),
                        ("macKey", 3, "bytes", "?"),
                        ("iv", 4, "bytes", "?"),
                        ("seed", 5, "bytes", "?"),
                    ],
                },
            },
            "PendingPreKey": [
                ("preKeyId", 1, "uint32", "?"),
                ("baseKey", 2, "bytes", "?"),
                ("signedPreKeyId", 3, "int32", "?"),
            ],
            # libsignal-node's own view of a session (see the module docstring).
            "NodeState": [
                ("created", 1, "int64", "?"),
                ("used", 2, "int64", "?"),
                ("closed", 3, "int64", "?"),
                ("baseKeyType", 4, "uint32", "?"),
                # the sender ratchet key the two values below belong to: once a
                # libsignal client has stepped the ratchet they no longer apply
                ("ratchetKey", 5, "bytes", "?"),
                ("previousCounter", 6, "sint64", "?"),
                ("lastRemoteEphemeralKey", 7, "bytes", "?"),
                # where the open session stood among the record's sessions, when
                # that was not last (libsignal-node keeps them in creation order)
                ("position", 8, "uint32", "?"),
            ],
        },
    },
    "RecordStructure": [
        ("currentSession", 1, ".SessionStructure", "?"),
        ("previousSessions", 2, ".SessionStructure", "*"),
    ],
    "PreKeyRecordStructure": [
        ("id", 1, "uint32", "?"),
        ("publicKey", 2, "bytes", "?"),
        ("privateKey", 3, "bytes", "?"),
    ],
    "SignedPreKeyRecordStructure": [
        ("id", 1, "uint32", "?"),
        ("publicKey", 2, "bytes", "?"),
        ("privateKey", 3, "bytes", "?"),
        ("signature", 4, "bytes", "?"),
        ("timestamp", 5, "fixed64", "?"),
    ],
    "SenderKeyStateStructure": {
        "fields": [
            ("senderKeyId", 1, "uint32", "?"),
            ("senderChainKey", 2, ".SenderKeyStateStructure.SenderChainKey", "?"),
            ("senderSigningKey", 3, ".SenderKeyStateStructure.SenderSigningKey", "?"),
            ("senderMessageKeys", 4, ".SenderKeyStateStructure.SenderMessageKey", "*"),
        ],
        "nested": {
            "SenderChainKey": [("iteration", 1, "uint32", "?"), ("seed", 2, "bytes", "?")],
            "SenderMessageKey": [("iteration", 1, "uint32", "?"), ("seed", 2, "bytes", "?")],
            "SenderSigningKey": [("public", 1, "bytes", "?"), ("private", 2, "bytes", "?")],
        },
    },
    "SenderKeyRecordStructure": [
        ("senderKeyStates", 1, ".SenderKeyStateStructure", "*"),
    ],
    # -- WhatsApp messages kept in account state ---------------------------------
    "ADVSignedDeviceIdentity": [
        ("details", 1, "bytes", "?"),
        ("accountSignatureKey", 2, "bytes", "?"),
        ("accountSignature", 3, "bytes", "?"),
        ("deviceSignature", 4, "bytes", "?"),
    ],
    "AppStateSyncKeyFingerprint": [
        ("rawId", 1, "uint32", "?"),
        ("currentIndex", 2, "uint32", "?"),
        ("deviceIndexes", 3, "uint32", "*p"),
    ],
}


def _message(name: str, spec: list[_Field] | dict[str, Any]) -> descriptor_pb2.DescriptorProto:
    msg = descriptor_pb2.DescriptorProto(name=name.rsplit(".", 1)[-1])
    fields: list[_Field] = spec["fields"] if isinstance(spec, dict) else spec
    nested: dict[str, Any] = spec.get("nested", {}) if isinstance(spec, dict) else {}
    for field_name, number, kind, label in fields:
        f = msg.field.add(name=field_name, number=number, json_name=field_name)
        f.label = _F.LABEL_REPEATED if label.startswith("*") else _F.LABEL_OPTIONAL
        if label == "*p":
            f.options.packed = True
        if kind.startswith("."):
            f.type = _F.TYPE_MESSAGE
            f.type_name = f".{_PACKAGE}{kind}"
        else:
            f.type = _TYPES[kind]
    for nested_name, nested_spec in nested.items():
        msg.nested_type.append(_message(nested_name, nested_spec))
    return msg


def _build() -> dict[str, type[Message]]:
    fd = descriptor_pb2.FileDescriptorProto(
        name="wastore/formats/wire.proto", package=_PACKAGE, syntax="proto2"
    )
    for name, spec in _MESSAGES.items():
        fd.message_type.append(_message(name, spec))
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fd.SerializeToString())
    classes: dict[str, type[Message]] = {}

    def register(prefix: str, spec: list[_Field] | dict[str, Any]) -> None:
        desc = pool.FindMessageTypeByName(f"{_PACKAGE}.{prefix}")
        classes[prefix] = message_factory.GetMessageClass(desc)
        if isinstance(spec, dict):
            for nested_name, nested_spec in spec.get("nested", {}).items():
                register(f"{prefix}.{nested_name}", nested_spec)

    for name, spec in _MESSAGES.items():
        register(name, spec)
    return classes


_CLASSES: Final = _build()


def message_class(name: str) -> type[Message]:
    """The message class ``name`` (``"RecordStructure"``, ``"SessionStructure.Chain"``, ...)."""
    return _CLASSES[name]
