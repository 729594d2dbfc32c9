"""Room archives (XEP-0313 §5.1.2) on the wire: slixmpp's xep_0313 plugin
(default settings) pages a room's archive both ways, and a Trio bot reads
the room's history with ``xmpp_trio.mam.catch_up(room=...)``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running
from test_im_client import im_session
from test_muc_clients import Peer

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.xml import ns
from xmpp_trio.config import ServerConfig
from xmpp_trio.mam import catch_up

pytestmark = pytest.mark.integration

ROOM = "lobby@conference.localhost"


async def test_slixmpp_pages_a_rooms_archive_and_a_bot_catches_up_on_it(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    said = [f"line {i}" for i in range(5)]
    with trio.fail_after(90):  # the time budget of the whole exchange
        async with trio.open_nursery() as nursery:
            archiving = dataclasses.replace(server_config, mam=MamLimits(enabled=True))
            server = await start_running(archiving, ca, tmp_path, nursery)
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            assert (await romeo.do("join", room=ROOM, nick="romeo"))["event"] == "ok"
            assert (await romeo.do("configure", room=ROOM, fields={}))["event"] == "ok"
            for line in said:
                assert (await romeo.do("say", room=ROOM, body=line))["event"] == "ok"
                await romeo.expect(lambda e, line=line: e.get("body") == line)  # the echo
            pages = await romeo.do("archive", room=ROOM)
            assert pages["event"] == "ok", pages
            assert pages["forward"] == said and pages["backward"] == said
            # XEP-0059 §2.5: a page by position (an index) with the set's count.
            at = await romeo.do("page_at", room=ROOM, index=1, max=2)
            assert (at["bodies"], at["first_index"], at["count"]) == (said[1:3], "1", "5")
            past = await romeo.do("page_at", room=ROOM, index=9, max=2)
            assert (past["bodies"], past["count"]) == ([], "5")
            # A bot (not in the room) reads what it missed, from an id on.
            async with im_session(server, "juliet@localhost/bot") as juliet:
                history = await catch_up(juliet.im, None, room=JID.parse(ROOM), page=2)
                bodies = [r.message.findtext(f"{{{ns.CLIENT}}}body") for r in history]
                assert bodies == said
                assert all(r.message.get("from") == f"{ROOM}/romeo" for r in history)
                rest = await catch_up(juliet.im, history[2].id, room=JID.parse(ROOM))
                assert [r.message.findtext(f"{{{ns.CLIENT}}}body") for r in rest] == said[3:]
            await romeo.quit()
            nursery.cancel_scope.cancel()
