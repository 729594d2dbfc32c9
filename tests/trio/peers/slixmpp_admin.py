"""A slixmpp client (default settings) for the admin commands' tests: logs in,
prints what the server does to it, and exits when disconnected.

Usage: slixmpp_admin.py JID PASSWORD HOST PORT CAFILE

Prints ``SESSION <full jid>`` once the session starts, ``MESSAGE <type>
<from> <body>`` for each message, ``STREAM_ERROR <condition> <text>`` for a
stream error and ``DISCONNECTED`` at the end. Exits after at most 30 s.
"""

from __future__ import annotations

import asyncio
import sys

import slixmpp
from peer_common import connect_and_wait, settle


async def main() -> None:
    jid, password, host, port, cafile = sys.argv[1:6]
    client = slixmpp.ClientXMPP(jid, password)
    done = asyncio.get_running_loop().create_future()

    def on_session(_event: object) -> None:
        client.send_presence()
        print("SESSION", client.boundjid.full, flush=True)

    def on_message(msg: slixmpp.Message) -> None:
        print("MESSAGE", msg["type"], msg["from"], msg["body"], flush=True)

    def on_stream_error(error: object) -> None:
        print("STREAM_ERROR", error["condition"], error["text"], flush=True)  # type: ignore[index]

    def on_disconnected(_event: object) -> None:
        print("DISCONNECTED", flush=True)
        settle(done)

    client.add_event_handler("session_start", on_session)
    client.add_event_handler("message", on_message)
    client.add_event_handler("stream_error", on_stream_error)
    client.add_event_handler("disconnected", on_disconnected)
    if not await connect_and_wait(client, host, port, cafile, 30, done):
        print("TIMEOUT", flush=True)
        client.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
