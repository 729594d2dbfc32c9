"""Multi-user chat with real third-party clients over loopback TLS (issue
14's "done when"): a room created from slixmpp (its xep_0045 plugin,
default settings), configured members-only and moderated, behaves per
XEP-0045 for aioxmpp and a second slixmpp client, and keeps its
configuration and affiliations across a server restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running
from peer_support import Peer, require_aioxmpp

from xmpp_trio.config import ServerConfig
from xmpp_trio.storage import AccountStore

pytestmark = pytest.mark.integration

ROOM = "verona@conference.localhost"
TYBALT = "pr1nce-0f-cats"


def with_tybalt(config: ServerConfig) -> ServerConfig:
    with AccountStore.open(config.database_path) as store:
        store.create("tybalt", "localhost", TYBALT, iterations=4096)
    return config


async def test_a_slixmpp_room_members_only_and_moderated_with_aioxmpp_survives_a_restart(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    require_aioxmpp()
    config = with_tybalt(server_config)
    with trio.fail_after(120):  # the time budget of the whole exchange
        await run_scenario(config, ca, tmp_path)


async def run_scenario(config: ServerConfig, ca: trustme.CA, tmp_path: Path) -> None:
    async with trio.open_nursery() as outer:
        # -- first run: the room is made and used ---------------------------------------
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            created = await romeo.do("join", room=ROOM, nick="romeo")
            assert created["event"] == "ok" and {110, 201} <= set(created["codes"])
            assert created["affiliation"] == "owner" and created["role"] == "moderator"
            configured = await romeo.do(
                "configure",
                room=ROOM,
                fields={
                    "muc#roomconfig_membersonly": "1",
                    "muc#roomconfig_moderatedroom": "1",
                    "muc#roomconfig_persistentroom": "1",
                },
            )
            assert configured["event"] == "ok"
            tybalt = await Peer.start(nursery, "slixmpp_muc.py", "tybalt", TYBALT, server)
            refused = await tybalt.do("join", room=ROOM, nick="tybalt")
            assert refused == {"event": "fail", "id": 1, "condition": "registration-required"}
            assert (
                await romeo.do(
                    "affiliation", room=ROOM, jid="juliet@localhost", affiliation="member"
                )
            )["event"] == "ok"

            juliet = await Peer.start(
                nursery, "aioxmpp_muc.py", "juliet", PASSWORDS["juliet"], server
            )
            joined = await juliet.do("join", room=ROOM, nick="juliet")
            assert joined == {
                "event": "ok",
                "id": 1,
                "role": "participant",
                "affiliation": "member",
            }
            seen = await romeo.expect(lambda e: e["event"] == "presence" and e["nick"] == "juliet")
            assert (seen["role"], seen["affiliation"]) == ("participant", "member")

            assert (await juliet.do("say", room=ROOM, body="Romeo, Romeo"))["event"] == "ok"
            heard = await romeo.expect(
                lambda e: e["event"] == "groupchat" and e["nick"] == "juliet"
            )
            assert heard["body"] == "Romeo, Romeo"

            # Moderated: the owner takes juliet's voice; the room refuses her message.
            assert (await romeo.do("role", room=ROOM, nick="juliet", role="visitor"))[
                "event"
            ] == "ok"
            await juliet.expect(
                lambda e: e == {"event": "role", "nick": "juliet", "role": "visitor"}
            )
            silenced = await juliet.do("say", room=ROOM, body="Wherefore?")
            assert (silenced["event"], silenced["condition"]) == ("fail", "forbidden")
            for peer in (romeo, tybalt, juliet):
                await peer.quit()
            nursery.cancel_scope.cancel()

        # -- second run over the same data: the room and its affiliations are back --------
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            juliet = await Peer.start(
                nursery, "aioxmpp_muc.py", "juliet", PASSWORDS["juliet"], server
            )
            back = await juliet.do("join", room=ROOM, nick="juliet")
            assert back == {"event": "ok", "id": 1, "role": "participant", "affiliation": "member"}
            tybalt = await Peer.start(nursery, "slixmpp_muc.py", "tybalt", TYBALT, server)
            assert (await tybalt.do("join", room=ROOM, nick="tybalt"))[
                "condition"
            ] == "registration-required"
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            owner = await romeo.do("join", room=ROOM, nick="romeo")
            assert owner["affiliation"] == "owner" and 201 not in owner["codes"]
            assert (await romeo.do("members", room=ROOM))["jids"] == ["juliet@localhost"]
            for peer in (romeo, tybalt, juliet):
                await peer.quit()
            nursery.cancel_scope.cancel()
        outer.cancel_scope.cancel()
