"""Message retraction (XEP-0424) in the archives on the wire: slixmpp 1.17
(its xep_0424, xep_0359 and xep_0313 plugins, default settings) over TLS,
the server on a real SQLite file. The sender's retraction turns both
archived copies of a chat message into tombstones (no body, ``<retracted
stamp/>``, the same XEP-0359 ids, in place), the retraction is delivered
and archived, another user's retraction changes nothing, and a restart
keeps it all; in a room, an occupant retracts their own message from the
room's archive, and not another's."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from peer_support import Peer, persistent_room_talk

from xmpp_sansio.server.mam.service import MamLimits
from xmpp_trio.config import ServerConfig

pytestmark = pytest.mark.integration

PEER = "slixmpp_retract.py"
RETRACT = "urn:xmpp:message-retract:1"


async def archive(peer: Peer) -> list[dict[str, Any]]:
    answer = await peer.do("archived")
    assert answer["event"] == "ok", answer
    messages: list[dict[str, Any]] = answer["messages"]
    return messages


def by_origin(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["origin"]: m for m in messages if m["origin"]}


async def told(peer: Peer, event: str, **fields: str) -> dict[str, Any]:
    """The ``event`` with ``fields`` the peer printed, already or next."""

    def matches(e: dict[str, Any]) -> bool:
        return e["event"] == event and all(e.get(k) == v for k, v in fields.items())

    for seen in peer.seen:
        if matches(seen):
            return seen
    return await peer.expect(matches)


async def start_peer(nursery: trio.Nursery, user: str, server: RunningServer) -> Peer:
    return await Peer.start(nursery, PEER, user, PASSWORDS[user], server)


async def test_a_retraction_leaves_tombstones_in_both_archives_only_for_the_sender(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    config = dataclasses.replace(server_config, mam=MamLimits(enabled=True))
    with trio.fail_after(120):  # the time budget of both runs
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            romeo = await start_peer(nursery, "romeo", server)
            juliet = await start_peer(nursery, "juliet", server)
            # XEP-0424 §2: the account says the server keeps retractions
            info = await romeo.do("features", jid="romeo@localhost")
            assert RETRACT in info["features"], info
            await romeo.do("chat", to="juliet@localhost", body="secret", origin="o-romeo")
            await juliet.do("chat", to="romeo@localhost", body="hers", origin="o-juliet")
            await told(juliet, "chat", body="secret")
            await told(romeo, "chat", body="hers")
            listed = await archive(juliet)
            before = by_origin(listed)
            assert before["o-romeo"]["body"] == "secret" and before["o-juliet"]["body"] == "hers"
            # neither the other party nor the sender of another message may retract it
            await juliet.do("retract", to="romeo@localhost", id="o-romeo")
            await romeo.do("retract", to="juliet@localhost", id="o-juliet")
            await romeo.do("retract", to="juliet@localhost", id="o-unknown")
            # delivered: each was settled (with its archive reads) before it went out
            await told(romeo, "retract", id="o-romeo")
            await told(juliet, "retract", id="o-unknown")
            for peer in (romeo, juliet):
                kept = by_origin(await archive(peer))
                assert kept["o-romeo"]["body"] == "secret", kept
                assert kept["o-juliet"]["body"] == "hers", kept
            # the sender retracts: delivered, and both copies become tombstones
            await romeo.do("retract", to="juliet@localhost", id="o-romeo")
            juliet.seen.clear()  # the retraction from romeo, not hers
            notice = await told(juliet, "retract", id="o-romeo")
            assert notice["from"].startswith("romeo@localhost/")
            after = {}
            for peer in (romeo, juliet):
                messages = await archive(peer)
                found = by_origin(messages)
                dead = found["o-romeo"]
                assert dead["body"] == "" and dead["retracted"], dead
                assert found["o-juliet"]["body"] == "hers"
                # the retraction is archived too (with its fallback body)
                retractions = [(m["from"], m["retract"]) for m in messages if m["retract"]]
                assert sorted(retractions) == [
                    ("juliet@localhost", "o-romeo"),
                    ("romeo@localhost", "o-juliet"),
                    ("romeo@localhost", "o-romeo"),
                    ("romeo@localhost", "o-unknown"),
                ]
                after[peer.name] = messages
            # the same id, in the same place
            place = [m["origin"] for m in listed].index("o-romeo")
            assert after["juliet"][place]["sid"] == before["o-romeo"]["sid"]
            assert after["juliet"][place]["origin"] == "o-romeo"
            await romeo.quit()
            await juliet.quit()
            nursery.cancel_scope.cancel()

        # -- after a restart: the tombstones are on disk ------------------------------------
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            for user in ("romeo", "juliet"):
                peer = await start_peer(nursery, user, server)
                assert await archive(peer) == after[user]
                await peer.quit()
            nursery.cancel_scope.cancel()


ROOM = "verona@conference.localhost"


async def test_an_occupant_retracts_their_own_message_from_the_rooms_archive(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    config = dataclasses.replace(server_config, mam=MamLimits(enabled=True))
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            romeo, juliet, sids = await persistent_room_talk(
                nursery, server, PASSWORDS, ROOM, ("oops", "fine")
            )
            # romeo (the owner, but not through XEP-0425) cannot retract juliet's message
            assert (await romeo.do("retract", room=ROOM, id=sids["fine"]))["event"] == "ok"
            await juliet.expect(lambda e: e["event"] == "groupchat" and e["nick"] == "romeo")
            assert (await juliet.do("retract", room=ROOM, id=sids["oops"]))["event"] == "ok"
            await romeo.expect(lambda e: e["event"] == "groupchat" and e["nick"] == "juliet")
            archived = (await romeo.do("archived", room=ROOM))["messages"]
            kept = [(m["sid"], m["body"], m["retracted"]) for m in archived][:2]
            assert kept == [(sids["oops"], "", True), (sids["fine"], "fine", False)]
            # both retractions are archived (with their fallback bodies)
            assert len(archived) == 4 and not any(m["retracted"] for m in archived[2:])
            for peer in (romeo, juliet):
                await peer.quit()
            nursery.cancel_scope.cancel()
