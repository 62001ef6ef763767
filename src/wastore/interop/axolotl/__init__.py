"""python-axolotl store classes over a wastore account (``pip install 'wastore[axolotl]'``).

python-axolotl is the Python Signal implementation that is wire-compatible
with WhatsApp's libsignal. :class:`AxolotlStore` implements its store
interfaces — ``IdentityKeyStore``, ``PreKeyStore``, ``SignedPreKeyStore``,
``SessionStore`` (together python-axolotl's ``AxolotlStore``) and
``SenderKeyStore`` — with python-axolotl's own method names and signatures,
over one account's :class:`~wastore.PersistenceManager`:

- identity key pair, registration id and the current signed pre-key are the
  account's :class:`~wastore.Device` (Curve25519 keys converted to
  python-axolotl's DJB keys: public keys gain their ``0x05`` type byte, private
  keys are clamped);
- identities (32-byte keys, trust on first use), sessions, pre-keys, archived
  signed pre-keys and sender keys are in the Signal store, through the
  :class:`~wastore.cache.SignalCache` when the manager has one. Records are
  python-axolotl's serialized bytes, stored under the signal addresses every
  WhatsApp client uses (see :mod:`wastore.interop.axolotl._addresses` and
  docs/axolotl.md for the mapping).

The sync/async model
--------------------

python-axolotl calls its store synchronously; wastore is asyncio. The account
lives on an event loop, and python-axolotl must run on a thread other than
that loop's. Through a SignalCache, the session, identity and sender-key
calls python-axolotl makes for every message are served on its own thread
when the cache can (a hit, a buffered write:
:class:`~wastore.interop.bridge.SyncSignal`), and a message then costs one
round trip to the loop per :meth:`AxolotlStore.flush`; every other call (and
every call without a cache) blocks its caller while a coroutine runs on the
loop (:meth:`~wastore.interop.bridge.LoopBridge.call`):

- **Synchronous programs** use :class:`SyncContainer`: it starts an
  :class:`EventLoopThread`, opens the store there and hands out
  :class:`SyncAccount` objects whose ``store`` is an :class:`AxolotlStore`::

      with SyncContainer.open("sqlite:///wa.db") as container:
          with container.account(device_id) as account:
              cipher = SessionCipher(*[account.store] * 4, name, 0)
              ciphertext = cipher.encrypt(b"hello")
              account.flush()          # durable before it goes on the wire

  An asyncio application can use it as well (the store then has a loop and
  thread of its own; a call blocks the caller only for the database round
  trip).

- **asyncio programs** that already run the account on their loop build the
  store on that loop, ``AxolotlStore(pm)``, and run each python-axolotl call
  in a worker thread: ``await asyncio.to_thread(cipher.encrypt, b"hello")``
  (or ``await store.run_in_thread(...)``).

A store method called on the loop's own thread would wait for a loop that
cannot run until it returns — a deadlock. It raises :class:`WrongThreadError`
instead. Calls from several threads at once are fine (the cache is
thread-safe; each round trip is one coroutine on the loop). Each call waits at
most ``timeout`` seconds (default 60).

Durability
----------

Without a SignalCache every store call commits on its own. With one (the
default of :meth:`SyncContainer.account`), writes are buffered and
:meth:`AxolotlStore.flush` is the barrier: flush after encrypting and before
sending, after decrypting and before acknowledging. A decrypted pre-key
message's session, the identity saved with it and the removal of the
one-time pre-key it used then commit in one transaction — a crash before the
flush leaves the pre-key in place, so the redelivered message decrypts again.
"""

from __future__ import annotations

from ..bridge import DEFAULT_TIMEOUT, EventLoopThread, LoopBridge, WrongThreadError
from ._addresses import (
    device_candidates,
    group_jid,
    identity_address,
    sender_key_address,
    signal_address,
)
from ._store import (
    AxolotlStore,
    axolotl_address,
    ec_key_pair,
    public_key_bytes,
    sender_key_name,
)
from ._sync import SyncAccount, SyncContainer

__all__ = [
    "DEFAULT_TIMEOUT",
    "AxolotlStore",
    "EventLoopThread",
    "LoopBridge",
    "SyncAccount",
    "SyncContainer",
    "WrongThreadError",
    "axolotl_address",
    "device_candidates",
    "ec_key_pair",
    "group_jid",
    "identity_address",
    "public_key_bytes",
    "sender_key_address",
    "sender_key_name",
    "signal_address",
]
