"""slixmpp (its xep_0424, xep_0359, xep_0313 and xep_0280 plugins, default settings)
as a chat user driven line by line, for the XEP-0424 wire tests.

Usage: slixmpp_retract.py JID PASSWORD HOST PORT CAFILE

Reads one JSON command per line on stdin and prints one JSON event per
line: ``{"event": "session"}`` once logged in; for each command ``{"event":
"ok", "id": N, ...}`` or ``{"event": "fail", "id": N, "condition": ...}``;
and ``chat`` (from, body) and ``retract`` (from, id) events as messages
and retractions arrive, ``carbon`` (dir: received or sent, to, from, body,
retract) as XEP-0280 copies arrive. Commands: ``chat``
(to, body, origin: a chat message with that XEP-0359 origin id), ``retract``
(to, id: the xep_0424 plugin's ``send_retraction``), ``archived`` (the
account's archive through the xep_0313 plugin's ``iterate``, pages of 2,
each message as ``{from, id, body, origin, retracted, retracted_id, retract, sid}``),
``features`` (jid: its disco#info features), ``carbons`` (the xep_0280
plugin's ``enable``), ``quit``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import slixmpp
from peer_common import Commanded, emit, run_finishing

RETRACT = "urn:xmpp:message-retract:1"
SID = "urn:xmpp:sid:0"


def seen(msg: slixmpp.Message) -> dict[str, Any]:
    """An archived message as the tests compare it."""
    origin = msg.xml.find(f"{{{SID}}}origin-id")
    sid = msg.xml.find(f"{{{SID}}}stanza-id")
    retracted = msg.xml.find(f"{{{RETRACT}}}retracted")
    retract = msg.xml.find(f"{{{RETRACT}}}retract")
    return {
        "from": str(msg["from"].bare),
        "id": msg["id"],
        "body": msg["body"],
        "origin": None if origin is None else origin.get("id"),
        "sid": None if sid is None else sid.get("id"),
        "retracted": None if retracted is None else retracted.get("stamp"),
        "retracted_id": None if retracted is None else retracted.get("id"),
        "retract": None if retract is None else retract.get("id"),
    }


class Retractor(Commanded):
    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password)
        for plugin in ("xep_0030", "xep_0280", "xep_0313", "xep_0359", "xep_0424"):
            self.register_plugin(plugin)
        self.add_event_handler("carbon_received", lambda m: self.on_carbon("received", m))
        self.add_event_handler("carbon_sent", lambda m: self.on_carbon("sent", m))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler(
            "message_retract",
            lambda m: emit(event="retract", id=m["retract"]["id"], **{"from": str(m["from"])}),
        )

    def on_message(self, msg: slixmpp.Message) -> None:
        if msg["type"] == "chat" and msg["body"] and msg.xml.find(f"{{{RETRACT}}}retract") is None:
            emit(event="chat", body=msg["body"], **{"from": str(msg["from"])})

    def on_carbon(self, direction: str, msg: slixmpp.Message) -> None:
        inner = msg[f"carbon_{direction}"]
        retract = inner.xml.find(f"{{{RETRACT}}}retract")
        emit(
            event="carbon",
            dir=direction,
            to=str(inner["to"]),
            body=inner["body"],
            retract=None if retract is None else retract.get("id"),
            **{"from": str(inner["from"])},
        )

    async def command(self, n: int, op: str, cmd: dict[str, Any]) -> None:
        if op == "chat":
            msg = self.make_message(mto=cmd["to"], mbody=cmd["body"], mtype="chat")
            msg["id"] = msg["origin_id"]["id"] = cmd["origin"]
            msg.send()
            emit(event="ok", id=n)
        elif op == "retract":
            self.plugin["xep_0424"].send_retraction(slixmpp.JID(cmd["to"]), cmd["id"])
            emit(event="ok", id=n)
        elif op == "archived":
            pages = self.plugin["xep_0313"].iterate(rsm={"max": 2})
            found = [seen(m["mam_result"]["forwarded"]["stanza"]) async for m in pages]
            emit(event="ok", id=n, messages=found)
        elif op == "carbons":
            await self.plugin["xep_0280"].enable()
            emit(event="ok", id=n)
        elif op == "features":
            info = await self.plugin["xep_0030"].get_info(jid=cmd["jid"])
            emit(event="ok", id=n, features=sorted(info["disco_info"]["features"]))


async def main() -> None:
    jid, password, host, port, cafile = sys.argv[1:6]
    await run_finishing(Retractor(jid, password), host, port, cafile)


if __name__ == "__main__":
    asyncio.run(main())
