"""A server that stops takes its rooms' occupants out first: each gets its
own unavailable presence from the room with status 332 (XEP-0045 §7.14),
then the stream error ``system-shutdown`` (RFC 6120 §4.9.3.22)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import trio
from conftest import PASSWORDS, RunningServer

from xmpp_trio.client import open_client

MUC = "http://jabber.org/protocol/muc"
MUC_USER = "http://jabber.org/protocol/muc#user"
ROOM = "lobby@conference.localhost"


async def test_occupants_leave_with_332_when_the_server_stops(server: RunningServer) -> None:
    seen: list[ET.Element] = []
    with trio.fail_after(30):
        async with open_client(
            "romeo@localhost/hall", PASSWORDS["romeo"], **server.client_options()
        ) as romeo:
            join = ET.Element("{jabber:client}presence", {"to": f"{ROOM}/romeo"})
            ET.SubElement(join, f"{{{MUC}}}x")
            await romeo.send(join)
            async for stanza in romeo:
                if (
                    stanza.tag == "{jabber:client}presence"
                    and stanza.get("from") == f"{ROOM}/romeo"
                ):
                    break  # joined (the room was created: 201, 110)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.server.shutdown)
                async for stanza in romeo:
                    seen.append(stanza)
    left = [
        s
        for s in seen
        if s.tag == "{jabber:client}presence"
        and s.get("from") == f"{ROOM}/romeo"
        and s.get("type") == "unavailable"
    ]
    assert len(left) == 1
    codes = {c.get("code") for c in left[0].iter(f"{{{MUC_USER}}}status")}
    assert {"110", "332"} <= codes
