"""XEP-0191 in rooms and a room's occupants in its disco#items (XEP-0045
§6.5) on the wire: slixmpp 1.17 (xep_0191, xep_0030, xep_0045; default
settings) over TLS against the real server."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running
from test_muc_clients import Peer

from xmpp_trio.config import ServerConfig

pytestmark = pytest.mark.integration

ROOM = "balcony@conference.localhost"


async def test_a_blocked_senders_room_messages_do_not_reach_the_blocker(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            server = await start_running(server_config, ca, tmp_path, nursery)
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            assert (await romeo.do("join", room=ROOM, nick="romeo"))["event"] == "ok"
            anyone = {"muc#roomconfig_whois": "anyone"}
            assert (await romeo.do("configure", room=ROOM, fields=anyone))["event"] == "ok"
            juliet = await Peer.start(
                nursery, "slixmpp_muc.py", "juliet", PASSWORDS["juliet"], server
            )
            assert (await juliet.do("join", room=ROOM, nick="juliet"))["event"] == "ok"
            # §6.5: a non-anonymous room lists who is in it.
            listed = sorted((await juliet.do("items", jid=ROOM))["items"])
            assert listed == [[f"{ROOM}/juliet", "juliet"], [f"{ROOM}/romeo", "romeo"]]
            assert (await juliet.do("block", jid="romeo@localhost"))["event"] == "ok"
            assert (await romeo.do("say", room=ROOM, body="But soft!"))["event"] == "ok"
            await romeo.expect(lambda e: e.get("body") == "But soft!")  # fanned out by now
            # Juliet's own message comes after romeo's in her session's stream.
            assert (await juliet.do("say", room=ROOM, body="marker"))["event"] == "ok"
            await juliet.expect(lambda e: e.get("body") == "marker")
            assert [e["body"] for e in juliet.seen if e["event"] == "groupchat"] == ["marker"]
            heard = await romeo.expect(lambda e: e.get("body") == "marker")
            assert heard["nick"] == "juliet"  # blocking is one way
            for peer in (romeo, juliet):
                await peer.quit()
            nursery.cancel_scope.cancel()
