"""slixmpp as a chat user talking to a bot, for integration tests.

Usage: slixmpp_chat.py JID PASSWORD HOST PORT CAFILE PEER_JID BODY [BODY ...]

Sends each BODY as a chat message to PEER_JID and waits for one chat reply
from PEER_JID before sending the next. Prints ``SESSION <full jid>`` when the
session starts, ``GOT <json-encoded body>`` for every reply, ``FAILED auth``
on authentication failure and ``TIMEOUT`` when a reply takes more than 15 s.
"""

from __future__ import annotations

import asyncio
import json
import sys

import slixmpp
from peer_common import connect_and_wait, settle


class ChatUser(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, peer: str, bodies: list[str]) -> None:
        super().__init__(jid, password)
        self.peer = slixmpp.JID(peer)
        self.bodies = bodies
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self.done = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed)

    async def on_start(self, _event: object) -> None:
        print("SESSION", self.boundjid.full, flush=True)
        self.send_presence()
        try:
            for body in self.bodies:
                self.send_message(mto=self.peer, mbody=body, mtype="chat")
                reply = await asyncio.wait_for(self.replies.get(), 15)
                print("GOT", json.dumps(reply), flush=True)
        except TimeoutError:
            print("TIMEOUT", flush=True)
        settle(self.done)

    def on_failed(self, _event: object) -> None:
        print("FAILED auth", flush=True)
        settle(self.done)

    def on_message(self, msg: slixmpp.Message) -> None:
        if msg["type"] == "chat" and msg["from"].bare == self.peer.bare:
            self.replies.put_nowait(msg["body"])


async def main() -> None:
    jid, password, host, port, cafile, peer, *bodies = sys.argv[1:]
    client = ChatUser(jid, password, peer, bodies)
    if not await connect_and_wait(client, host, port, cafile, 15 * len(bodies) + 10):
        print("TIMEOUT", flush=True)
    client.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
