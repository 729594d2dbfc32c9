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
import sys

import slixmpp
from peer_common import Finishing, emit, run_finishing


class Archivist(Finishing):
    def __init__(self, jid: str, password: str, to: str, count: int) -> None:
        super().__init__(jid, password)
        self.register_plugin("xep_0313")
        self.to, self.count = to, count

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
    await run_finishing(Archivist(jid, password, to, int(count)), host, port, cafile)


if __name__ == "__main__":
    asyncio.run(main())
