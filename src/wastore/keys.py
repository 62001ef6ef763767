"""Curve25519 key pairs and the XEdDSA signature of the signed pre-key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import xeddsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import _validate as v

KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64
DJB_TYPE: Final = b"\x05"
"""The type byte libsignal puts in front of a serialized Curve25519 public key."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A Curve25519 key pair (32-byte private and public keys).

    The private key never appears in ``repr``/``str``.
    """

    private: bytes
    public: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "private", v.fixed(self.private, "private key", KEY_LEN))
        object.__setattr__(self, "public", v.fixed(self.public, "public key", KEY_LEN))

    @classmethod
    def generate(cls) -> KeyPair:
        priv = X25519PrivateKey.generate()
        private = priv.private_bytes_raw()
        public = priv.public_key().public_bytes_raw()
        return cls(private=private, public=public)

    def is_consistent(self) -> bool:
        """True if ``public`` is the Curve25519 public key of ``private``."""
        derived = X25519PrivateKey.from_private_bytes(self.private).public_key().public_bytes_raw()
        return derived == self.public

    def sign(self, message: bytes) -> bytes:
        """An XEdDSA signature of ``message`` (verifiable with the public key)."""
        return xeddsa_sign(self.private, message)

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public.hex()}, private=<redacted>)"

    __str__ = __repr__


def _clamp(private: bytes) -> bytes:
    b = bytearray(private)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def xeddsa_sign(private: bytes, message: bytes) -> bytes:
    """Sign ``message`` with a Curve25519 private key (XEdDSA, sign bit forced to 0).

    A signature made this way verifies against the Montgomery public key in
    libsignal (``Curve.verifySignature``) and in WhatsApp.
    """
    priv = xeddsa.priv_force_sign(_clamp(private), False)
    return bytes(xeddsa.ed25519_priv_sign(priv, message))


def xeddsa_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Verify an XEdDSA signature against a 32-byte Curve25519 public key."""
    if len(public) != KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    sig = bytearray(signature)
    sign_bit = bool(sig[63] & 0x80)
    sig[63] &= 0x7F
    try:
        ed_pub = xeddsa.curve25519_pub_to_ed25519_pub(public, sign_bit)
        return bool(xeddsa.ed25519_verify(bytes(sig), ed_pub, message))
    except xeddsa.XEdDSAException:
        return False


def sign_pre_key(identity: KeyPair, signed_pre_key: KeyPair) -> bytes:
    """The signature WhatsApp expects over ``0x05 ‖ signed_pre_key.public``."""
    return xeddsa_sign(identity.private, DJB_TYPE + signed_pre_key.public)
