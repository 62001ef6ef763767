"""A pywhats client on wastore that answers every 1:1 message twice: "echo: <text>", "again: <text>".

Two answers in a row use two keys of one sending chain: a client that lost the
first step would reuse its key, and the peer would refuse the second.

Run by test_pywhats_client.py as a child process that the test SIGKILLs in the middle
of the conversation: ``python _echo_client.py WS_URL STORE_URL DEVICE_ID``.
It prints "connected" once it is logged in, then runs until it is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from wastore.interop.pywhats import WastoreClient


async def main(ws_url: str, store: str, device_id: int) -> None:
    client = WastoreClient(store, account=device_id, ws_url=ws_url)
    connected = asyncio.Event()

    @client.on("connected")
    async def _connected() -> None:
        connected.set()

    replies: asyncio.Queue[tuple[object, str]] = asyncio.Queue()

    @client.on("message")
    async def _echo(message: Any) -> None:
        # Not sent from here: pywhats runs handlers on its receive loop, and a send
        # waits for the server's ack, which that loop has to read.
        if message.chat.server != "g.us":
            replies.put_nowait((message.sender, f"echo: {message.text}"))
            replies.put_nowait((message.sender, f"again: {message.text}"))

    async def sender() -> None:
        while True:
            to, text = await replies.get()
            await client.send_text(to, text)

    task = asyncio.create_task(sender())
    await client.connect()
    await connected.wait()
    print("connected", flush=True)
    await task  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
