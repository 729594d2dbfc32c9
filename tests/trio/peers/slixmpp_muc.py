"""slixmpp (its xep_0045 plugin, default settings) as a MUC client driven
line by line, for the MUC wire tests.

Usage: slixmpp_muc.py JID PASSWORD HOST PORT CAFILE

Reads one JSON command per line on stdin and prints one JSON event per line:
``{"event": "session"}`` once logged in; for each command ``{"event": "ok",
"id": N, ...}`` or ``{"event": "fail", "id": N, "condition": ...}``; and, as
they come, ``groupchat`` messages and MUC ``presence``. Commands: ``join``
(room, nick), ``configure`` (room, fields: var -> value or list),
``affiliation`` (room, jid, affiliation), ``role`` (room, nick, role),
``members`` (room), ``say`` (room, body), ``archive`` (room: the room's
archive through the xep_0313 plugin's ``iterate``, pages of 2, both ways:
``forward`` and ``backward`` bodies, oldest first), ``archived`` (room: the
archive forward, each message as ``{body, sid, retracted, jid}``: ``jid``
the real JID the archive shows, if any), ``moderate``
(room, id, reason: the xep_0425 plugin's ``moderate``), ``retract`` (room,
id: the xep_0424 plugin's ``send_retraction`` to the room), ``features`` (jid:
its disco#info features), ``page_at`` (room, index, max: one page by RSM
``<index/>`` with the xep_0313 plugin's ``retrieve``: ``bodies``,
``first_index``, ``count``), ``block`` (jid: xep_0191), ``items`` (jid:
its disco#items as ``[jid, name]`` pairs), ``quit``. ``join``
takes ``history`` (maxstanzas, 0 if not given). Groupchat events carry the
room's ``sid``, ``delayed`` (history) and ``retracted`` (a XEP-0425
tombstone); a moderation notice is a ``moderated`` event (room, id).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import slixmpp
from peer_common import Commanded, emit, run_finishing
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

RETRACT = "urn:xmpp:message-retract:1"
MODERATE = "urn:xmpp:message-moderate:1"
MUC_USER = "http://jabber.org/protocol/muc#user"


def seen(msg: slixmpp.Message) -> dict[str, Any]:
    """A room message's body, the room's stanza id, whether it is delayed
    (history) or a XEP-0425 tombstone (``<retracted/>``)."""
    sid = msg.xml.find("{urn:xmpp:sid:0}stanza-id")
    item = msg.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}item")
    return {
        "jid": None if item is None else item.get("jid"),
        "body": msg["body"],
        "sid": None if sid is None else sid.get("id"),
        "delayed": msg.xml.find("{urn:xmpp:delay}delay") is not None,
        "retracted": msg.xml.find(f"{{{RETRACT}}}retracted") is not None,
    }


class MucUser(Commanded):
    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password)
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0313")
        self.register_plugin("xep_0425")
        self.register_plugin("xep_0424")
        self.register_plugin("xep_0191")
        self.add_event_handler("groupchat_message", self.on_groupchat)
        self.add_event_handler("moderated_message", self.on_moderated)
        # A tombstone in the history has no body: xep_0045 does not report it.
        self.register_handler(
            Callback(
                "tombstone",
                MatchXPath(f"{{{self.default_ns}}}message/{{{RETRACT}}}retracted"),
                self.on_groupchat,
            )
        )
        self.add_event_handler("groupchat_presence", self.on_presence)

    def on_groupchat(self, msg: slixmpp.Message) -> None:
        if msg["body"] or msg.xml.find(f"{{{RETRACT}}}retracted") is not None:
            emit(event="groupchat", room=msg["from"].bare, nick=msg["from"].resource, **seen(msg))

    def on_moderated(self, msg: slixmpp.Message) -> None:
        emit(
            event="moderated",
            room=msg["from"].bare,
            id=msg.xml.find(f"{{{RETRACT}}}retract").get("id"),
        )

    def on_presence(self, pres: slixmpp.Presence) -> None:
        item = pres["muc"]
        emit(
            event="presence",
            nick=pres["from"].resource,
            type=pres["type"],
            role=item["role"],
            affiliation=item["affiliation"],
            codes=sorted(int(c) for c in item["status_codes"]),
        )

    async def command(self, n: int, op: str, cmd: dict[str, Any]) -> None:
        muc = self.plugin["xep_0045"]
        if op == "join":
            pres, *_ = await muc.join_muc_wait(
                slixmpp.JID(cmd["room"]),
                cmd["nick"],
                maxstanzas=cmd.get("history", 0),
                timeout=15,
            )
            item = pres["muc"]
            emit(
                event="ok",
                id=n,
                role=item["role"],
                affiliation=item["affiliation"],
                codes=sorted(int(c) for c in item["status_codes"]),
            )
        elif op == "configure":
            form = await muc.get_room_config(cmd["room"])
            submit = form.get_fields()
            values = {var: f.get_value() for var, f in submit.items() if var}
            values.update(cmd["fields"])
            form = self.plugin["xep_0004"].make_form(ftype="submit")
            for var, value in values.items():
                form.add_field(var=var, value=value)
            await muc.set_room_config(cmd["room"], form)
            emit(event="ok", id=n)
        elif op == "affiliation":
            await muc.set_affiliation(cmd["room"], cmd["affiliation"], jid=cmd["jid"])
            emit(event="ok", id=n)
        elif op == "role":
            await muc.set_role(cmd["room"], cmd["nick"], cmd["role"])
            emit(event="ok", id=n)
        elif op == "members":
            jids = await muc.get_affiliation_list(cmd["room"], "member")
            emit(event="ok", id=n, jids=sorted(str(j) for j in jids))
        elif op == "archive":
            mam, room = self.plugin["xep_0313"], slixmpp.JID(cmd["room"])
            ways = {}
            for way, reverse in (("forward", False), ("backward", True)):
                pages = mam.iterate(jid=room, rsm={"max": 2}, reverse=reverse)
                ways[way] = [m["mam_result"]["forwarded"]["stanza"]["body"] async for m in pages]
            emit(event="ok", id=n, forward=ways["forward"], backward=ways["backward"][::-1])
        elif op == "archived":
            mam, room = self.plugin["xep_0313"], slixmpp.JID(cmd["room"])
            pages = mam.iterate(jid=room, rsm={"max": 2})
            found = [seen(m["mam_result"]["forwarded"]["stanza"]) async for m in pages]
            emit(event="ok", id=n, messages=found)
        elif op == "page_at":
            rsm = {"max": cmd["max"], "index": cmd["index"]}
            mam = self.plugin["xep_0313"]
            got = await mam.retrieve(jid=slixmpp.JID(cmd["room"]), rsm=rsm)
            fin = got["mam_fin"]["rsm"]
            emit(
                event="ok",
                id=n,
                bodies=[
                    m["mam_result"]["forwarded"]["stanza"]["body"] for m in got["mam"]["results"]
                ],
                first_index=fin["first_index"],
                count=fin["count"],
            )
        elif op == "block":
            await self.plugin["xep_0191"].block(cmd["jid"])
            emit(event="ok", id=n)
        elif op == "items":
            found = await self.plugin["xep_0030"].get_items(jid=cmd["jid"])
            emit(
                event="ok",
                id=n,
                items=[[str(i[0]), i[2]] for i in found["disco_items"]["items"]],
            )
        elif op == "features":
            info = await self.plugin["xep_0030"].get_info(jid=cmd["jid"])
            emit(event="ok", id=n, features=sorted(info["disco_info"]["features"]))
        elif op == "moderate":
            await self.plugin["xep_0425"].moderate(
                slixmpp.JID(cmd["room"]), cmd["id"], cmd.get("reason", "")
            )
            emit(event="ok", id=n)
        elif op == "retract":
            self.plugin["xep_0424"].send_retraction(
                slixmpp.JID(cmd["room"]), cmd["id"], mtype="groupchat"
            )
            emit(event="ok", id=n)
        elif op == "say":
            self.send_message(mto=cmd["room"], mbody=cmd["body"], mtype="groupchat")
            emit(event="ok", id=n)


async def main() -> None:
    jid, password, host, port, cafile = sys.argv[1:6]
    await run_finishing(MucUser(jid, password), host, port, cafile)


if __name__ == "__main__":
    asyncio.run(main())
