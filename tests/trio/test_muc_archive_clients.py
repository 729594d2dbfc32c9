"""XEP-0425 moderation in the room archive on the wire: slixmpp 1.17 (its
xep_0425 and xep_0313 plugins, default settings) over TLS, the server on a
real SQLite file. A moderator's retraction leaves a tombstone in the room's
archive and in the history a client gets on join, also after a restart; a
participant cannot moderate; an unknown id is ``item-not-found``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running
from peer_support import Peer, persistent_room_talk

from xmpp_sansio.server.mam.service import MamLimits
from xmpp_trio.config import ServerConfig

pytestmark = pytest.mark.integration

ROOM = "council@conference.localhost"


async def test_a_moderated_message_is_a_tombstone_in_the_archive_and_the_history(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    config = dataclasses.replace(server_config, mam=MamLimits(enabled=True))
    with trio.fail_after(120):  # the time budget of both runs
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            romeo, juliet, sids = await persistent_room_talk(
                nursery, server, PASSWORDS, ROOM, ("free potions", "fine")
            )
            refused = await juliet.do("moderate", room=ROOM, id=sids["free potions"])
            assert (refused["event"], refused["condition"]) == ("fail", "forbidden")
            done = await romeo.do("moderate", room=ROOM, id=sids["free potions"], reason="spam")
            assert done["event"] == "ok"
            told = await juliet.expect(lambda e: e["event"] == "moderated")
            assert told["id"] == sids["free potions"]
            unknown = await romeo.do("moderate", room=ROOM, id="no-such-id")
            assert (unknown["event"], unknown["condition"]) == ("fail", "item-not-found")
            archived = (await romeo.do("archived", room=ROOM))["messages"]
            assert [(m["sid"], m["body"], m["retracted"]) for m in archived] == [
                (sids["free potions"], "", True),
                (sids["fine"], "fine", False),
            ]
            # XEP-0313 §5.1.2: the owner (a moderator) sees who wrote it, in this
            # semi-anonymous room; a participant does not.
            assert archived[1]["jid"] == "juliet@localhost/slixmpp"
            theirs = (await juliet.do("archived", room=ROOM))["messages"]
            assert [(m["body"], m["jid"]) for m in theirs] == [("", None), ("fine", None)]
            for peer in (romeo, juliet):
                await peer.quit()
            nursery.cancel_scope.cancel()

        # -- after a restart: the history on join comes from the archive --------------------
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            juliet = await Peer.start(
                nursery, "slixmpp_muc.py", "juliet", PASSWORDS["juliet"], server
            )
            assert (await juliet.do("join", room=ROOM, nick="juliet", history=10))["event"] == "ok"

            def history() -> list[dict[str, object]]:
                return [e for e in juliet.seen if e["event"] == "groupchat" and e["delayed"]]

            while len(history()) < 2:  # the history may come after the join's answer
                await juliet.expect(lambda e: e["event"] == "groupchat")
            assert [(m["sid"], m["body"], m["retracted"]) for m in history()] == [
                (sids["free potions"], "", True),
                (sids["fine"], "fine", False),
            ]
            await juliet.quit()
            nursery.cancel_scope.cancel()


async def test_a_room_whose_owner_turns_archiving_off_keeps_nothing_new(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    config = dataclasses.replace(server_config, mam=MamLimits(enabled=True))
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            assert (await romeo.do("join", room=ROOM, nick="romeo"))["event"] == "ok"
            assert (await romeo.do("configure", room=ROOM, fields={}))["event"] == "ok"
            assert "urn:xmpp:mam:2" in (await romeo.do("features", jid=ROOM))["features"]
            assert (await romeo.do("say", room=ROOM, body="on the record"))["event"] == "ok"
            await romeo.expect(lambda e: e.get("body") == "on the record")
            off = {"muc#roomconfig_enablearchiving": "0"}
            assert (await romeo.do("configure", room=ROOM, fields=off))["event"] == "ok"
            assert "urn:xmpp:mam:2" not in (await romeo.do("features", jid=ROOM))["features"]
            assert (await romeo.do("say", room=ROOM, body="off the record"))["event"] == "ok"
            await romeo.expect(lambda e: e.get("body") == "off the record")
            archived = (await romeo.do("archived", room=ROOM))["messages"]
            assert [m["body"] for m in archived] == ["on the record"]
            await romeo.quit()
            nursery.cancel_scope.cancel()
