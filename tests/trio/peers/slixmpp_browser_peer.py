"""slixmpp (defaults apart from the test CA) as the desktop user a browser
user chats with (tests/trio/test_browser.py).

Usage: slixmpp_browser_peer.py JID PASSWORD HOST PORT CAFILE PEER_JID REPLY

Sends available presence, prints ``SESSION <full jid>``; for the first chat
message from PEER_JID prints ``GOT <json body>`` and answers REPLY; exits 60
seconds after starting at the latest.
"""

from __future__ import annotations

import asyncio
import json
import sys

import slixmpp
from peer_common import connect_and_wait, settle


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, peer: str, reply: str) -> None:
        super().__init__(jid, password)
        self.peer = slixmpp.JID(peer)
        self.reply = reply
        self.done = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)

    async def on_start(self, _event: object) -> None:
        self.send_presence(pstatus="in the orchard")
        await self.get_roster()
        print("SESSION", self.boundjid.full, flush=True)

    def on_message(self, msg: slixmpp.Message) -> None:
        if msg["type"] == "chat" and msg["from"].bare == self.peer.bare and msg["body"]:
            print("GOT", json.dumps(msg["body"]), flush=True)
            self.send_message(mto=msg["from"], mbody=self.reply, mtype="chat")
            settle(self.done)


async def main() -> None:
    jid, password, host, port, cafile, peer, reply = sys.argv[1:]
    client = Peer(jid, password, peer, reply)
    if await connect_and_wait(client, host, port, cafile, 60):
        await asyncio.sleep(5)  # the reply reaches the browser before we go offline
    else:
        print("TIMEOUT", flush=True)
    client.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
