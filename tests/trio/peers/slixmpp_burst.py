"""slixmpp with Stream Management (its xep_0198 plugin, default settings:
acks every ``<r/>``) receives large single bursts: its roster, then one MAM
page of everything it sent, for the XEP-0198 burst wire test.

Usage: slixmpp_burst.py JID PASSWORD HOST PORT CAFILE TO COUNT SIZE

Prints JSON lines: ``{"event": "sm", "enabled": true}`` once XEP-0198 is on,
``{"event": "roster", "items": N}``, ``{"event": "page", "bodies": N}``
(one ``retrieve`` of up to COUNT archived messages of SIZE bytes to TO),
``{"event": "pong"}`` (the stream is still there), then ``{"event": "end",
"why": ...}`` (``done``, ``disconnected`` if the server closed the stream).
"""

from __future__ import annotations

import asyncio
import sys

import slixmpp
from peer_common import Finishing, emit, run_finishing


class Receiver(Finishing):
    def __init__(self, jid: str, password: str, to: str, count: int, size: int) -> None:
        super().__init__(jid, password)
        self.register_plugin("xep_0198")
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0313")
        self.to, self.count, self.size = to, count, size
        self.add_event_handler("sm_enabled", lambda _e: emit(event="sm", enabled=True))
        self.add_event_handler("disconnected", lambda _e: self.finish("disconnected"))
        self.add_event_handler("stream_error", lambda e: emit(event="error", text=str(e)))

    async def on_start(self, _event: object) -> None:
        roster = await self.get_roster()
        emit(event="roster", items=len(roster["roster"]["items"]))
        self.send_presence()
        body = "x" * self.size
        for i in range(self.count):
            self.send_message(mto=self.to, mbody=f"{i} {body}", mtype="chat")
        iq = await self.plugin["xep_0313"].retrieve(
            with_jid=slixmpp.JID(self.to), rsm={"max": self.count}
        )
        emit(event="page", bodies=len(iq["mam"]["results"]))
        await self.plugin["xep_0199"].ping(self.boundjid.domain, timeout=20)
        emit(event="pong")
        self.finish("done")
        self.disconnect()


async def main() -> None:
    jid, password, host, port, cafile, to, count, size = sys.argv[1:9]
    await run_finishing(Receiver(jid, password, to, int(count), int(size)), host, port, cafile)


if __name__ == "__main__":
    asyncio.run(main())
