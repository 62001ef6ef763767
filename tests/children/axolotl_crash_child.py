"""Child process of the axolotl crash test: decrypt a pre-key message, then wait to be killed.

Usage: axolotl_crash_child.py STORE_URL BOB_DEVICE_ID PKMSG_HEX flush|no-flush

Bob's account is opened with a SignalCache and no background saver, so
nothing of the decryption reaches the database unless this process flushes
(mode ``flush``). It prints ``decrypted <plaintext>`` (after the flush, in that
mode) and then blocks until the parent kills it with SIGKILL.
"""

from __future__ import annotations

import sys
import time

from wastore import JID
from wastore.interop.axolotl import SyncContainer, axolotl_address

from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage  # isort: skip
from axolotl.sessioncipher import SessionCipher  # isort: skip

ALICE = JID.parse("15550000001@s.whatsapp.net")


def main(url: str, bob_id: int, pkmsg: bytes, mode: str) -> None:
    container = SyncContainer.open(url)
    bob = container.account(bob_id, signal_cache=True)
    s = bob.store
    cipher = SessionCipher(s, s, s, s, axolotl_address(ALICE).getName(), 0)
    plaintext = cipher.decryptPkmsg(PreKeyWhisperMessage(serialized=pkmsg))
    if mode == "flush":
        bob.flush()
    print(f"decrypted {plaintext.decode()}", flush=True)
    while True:  # wait for SIGKILL; never close (that would flush)
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), sys.argv[4])
