"""A real third-party client (slixmpp) used as a peer in integration tests.

Usage: slixmpp_peer.py JID PASSWORD HOST PORT CAFILE PEER_JID MODE [MECH]

MODE "send": send one chat message to PEER_JID, then wait for a chat reply and
print ``GOT <body>``. MODE "echo": answer the first chat message with
``You sent: <body>``. Prints ``SESSION <full jid>`` when the session starts and
``FAILED <reason>`` on authentication failure. Exits after at most 20 s.
"""

from __future__ import annotations

import asyncio
import sys

import slixmpp
from peer_common import connect_and_wait, settle


class Peer(slixmpp.ClientXMPP):  # type: ignore[misc]
    def __init__(self, jid: str, password: str, peer: str, mode: str, mech: str | None) -> None:
        super().__init__(jid, password, sasl_mech=mech)
        self.peer = peer
        self.mode = mode
        self.done = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed)

    async def on_start(self, _event: object) -> None:
        print("SESSION", self.boundjid.full, flush=True)
        self.send_presence()
        if self.mode == "send":
            self.send_message(mto=self.peer, mbody="hello from slixmpp", mtype="chat")

    def on_failed(self, _event: object) -> None:
        print("FAILED auth", flush=True)
        settle(self.done)

    def on_message(self, msg: slixmpp.Message) -> None:
        if msg["type"] not in ("chat", "normal"):
            return
        print("GOT", msg["body"], "FROM", msg["from"].full, flush=True)
        if self.mode == "echo":
            msg.reply(f"You sent: {msg['body']}").send()
        settle(self.done)


async def main() -> None:
    jid, password, host, port, cafile, peer, mode = sys.argv[1:8]
    mech = sys.argv[8] if len(sys.argv) > 8 else None
    client = Peer(jid, password, peer, mode, mech)
    if not await connect_and_wait(client, host, port, cafile, 20):
        print("TIMEOUT", flush=True)
    await asyncio.sleep(0.2)
    client.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
