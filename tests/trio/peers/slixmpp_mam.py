"""slixmpp (its xep_0313 plugin, default settings) sends messages and reads
its archive back, for the MAM wire test.

Usage: slixmpp_mam.py JID PASSWORD HOST PORT CAFILE TO COUNT

Sends COUNT chat messages ``m0``... to TO, then prints one JSON line per
way of reading the archive: ``{"event": "iterate", "bodies": [...]}`` (the
plugin's ``iterate`` over pages of 5, oldest first), ``{"event":
"reverse", ...}`` (newest first) and ``{"event": "retrieve", "count": N,
"complete": ...}`` (one ``retrieve`` with ``with``), then ``{"event": "end"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import slixmpp


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


class Archivist(slixmpp.ClientXMPP):  # type: ignore[misc]
    def __init__(self, jid: str, password: str, to: str, count: int) -> None:
        super().__init__(jid, password)
        self.register_plugin("xep_0313")
        self.to, self.count = to, count
        self.done = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _e: self.finish("auth"))

    def finish(self, why: str) -> None:
        emit(event="end", why=why)
        if not self.done.done():
            self.done.set_result(None)

    async def on_start(self, _event: object) -> None:
        self.send_presence()
        for i in range(self.count):
            self.send_message(mto=self.to, mbody=f"m{i}", mtype="chat")
        bodies = [
            m["mam_result"]["forwarded"]["stanza"]["body"]
            async for m in self.plugin["xep_0313"].iterate(rsm={"max": 5})
        ]
        emit(event="iterate", bodies=bodies)
        bodies = [
            m["mam_result"]["forwarded"]["stanza"]["body"]
            async for m in self.plugin["xep_0313"].iterate(rsm={"max": 5}, reverse=True)
        ]
        emit(event="reverse", bodies=bodies)
        iq = await self.plugin["xep_0313"].retrieve(with_jid=slixmpp.JID(self.to))
        fin = iq["mam_fin"]
        emit(event="retrieve", count=int(fin["rsm"]["count"]), complete=fin["complete"])
        self.disconnect()
        self.finish("done")


async def main() -> None:
    jid, password, host, port, cafile, to, count = sys.argv[1:8]
    client = Archivist(jid, password, to, int(count))
    client.ca_certs = Path(cafile)
    client.connect(host=host, port=int(port))
    try:
        await asyncio.wait_for(client.done, 60)
    except TimeoutError:
        emit(event="end", why="timeout")


if __name__ == "__main__":
    asyncio.run(main())
