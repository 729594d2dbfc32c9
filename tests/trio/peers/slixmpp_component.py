"""Run slixmpp's external component (XEP-0114) with default settings and report.

Usage: slixmpp_component.py DOMAIN SECRET HOST PORT

Connects ``slixmpp.ComponentXMPP`` to HOST:PORT. Prints ``VERSION <slixmpp
version>``; ``SESSION`` once the handshake succeeded, then sends a chat
message from ``bot@DOMAIN/x`` to ``juliet@localhost`` with the body ``hello
from slixmpp``; ``GOT <from> <body>`` for each message received, and exits
after the first; ``DISCONNECTED`` if the stream ends first. Exits after at
most 20 s.
"""

from __future__ import annotations

import asyncio
import sys

import slixmpp


async def main() -> None:
    domain, secret, host, port = sys.argv[1:5]
    component = slixmpp.ComponentXMPP(domain, secret, host, int(port))
    done = asyncio.get_running_loop().create_future()
    print("VERSION", slixmpp.__version__, flush=True)

    def on_session(_event: object) -> None:
        print("SESSION", flush=True)
        component.send_message(
            mto="juliet@localhost",
            mbody="hello from slixmpp",
            mtype="chat",
            mfrom=f"bot@{domain}/x",
        )

    def on_message(message: slixmpp.Message) -> None:
        print("GOT", message["from"], message["body"], flush=True)
        if not done.done():
            done.set_result(None)

    def on_disconnected(_event: object) -> None:
        print("DISCONNECTED", flush=True)
        if not done.done():
            done.set_result(None)

    component.add_event_handler("session_start", on_session)
    component.add_event_handler("message", on_message)
    component.add_event_handler("disconnected", on_disconnected)
    component.connect()
    try:
        await asyncio.wait_for(done, 20)
    finally:
        component.disconnect()


asyncio.run(main())
