"""Message retraction (XEP-0424) on the wire with offline storage (XEP-0160)
and carbons (XEP-0280): slixmpp 1.17 (xep_0424, xep_0280, xep_0313, default
settings) over TLS, the server on a real SQLite file.

* A message still stored offline when its sender retracts it is dropped
  from the queue: the recipient, logging in, gets only the retraction;
  the retracted body is in no offline row, and the archive has the
  tombstone (``<retracted id stamp/>``, ``id`` naming the retraction).
* With carbons on, the sender's other device gets the retraction as a
  sent carbon and both of the recipient's devices get it; each archive
  holds the tombstone and the retraction once (no copy per carbon)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from peer_support import Peer
from test_retract_clients import PEER, archive, by_origin, told

from xmpp_sansio.server.mam.service import MamLimits
from xmpp_trio.config import ServerConfig

pytestmark = pytest.mark.integration

TOMBSTONE = "urn:xmpp:message-retract:1#tombstone"


async def device(nursery: trio.Nursery, user: str, server: RunningServer, resource: str) -> Peer:
    return await Peer.start(nursery, PEER, user, PASSWORDS[user], server, resource=resource)


@asynccontextmanager
async def mam_server(
    config: ServerConfig, ca: trustme.CA, tmp_path: Path, budget: float
) -> AsyncIterator[tuple[trio.Nursery, RunningServer]]:
    """The server with archives on, in a nursery cancelled at the end; the
    whole run within ``budget`` seconds."""
    config = dataclasses.replace(config, mam=MamLimits(enabled=True))
    with trio.fail_after(budget):
        async with trio.open_nursery() as nursery:
            yield nursery, await start_running(config, ca, tmp_path, nursery)
            nursery.cancel_scope.cancel()


async def quit_all(*peers: Peer) -> None:
    for peer in peers:
        await peer.quit()


def offline_rows(config: ServerConfig) -> list[bytes]:
    with sqlite3.connect(config.database_path) as db:
        return [bytes(r[0]) for r in db.execute("SELECT stanza FROM offline_messages ORDER BY id")]


def tombstone_names_its_retraction(messages: list[dict[str, Any]], origin: str) -> None:
    """The tombstone of ``origin`` has no body and names the archived
    retraction of ``origin`` by that message's id."""
    dead = by_origin(messages)[origin]
    assert dead["body"] == "" and dead["retracted"], dead
    (retraction,) = [m for m in messages if m["retract"] == origin]
    assert dead["retracted_id"] and dead["retracted_id"] == retraction["id"], (dead, retraction)


async def test_a_message_retracted_while_stored_offline_never_reaches_the_recipient(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    async with mam_server(server_config, ca, tmp_path, 90) as (nursery, server):
        config = server.config
        romeo = await device(nursery, "romeo", server, "phone")
        info = await romeo.do("features", jid="romeo@localhost")
        assert TOMBSTONE in info["features"], info  # XEP-0424 "Tombstones": MUST
        await romeo.do("chat", to="juliet@localhost", body="secret", origin="o-gone")
        await romeo.do("chat", to="juliet@localhost", body="still here", origin="o-kept")
        # both stored offline (disco round trips as the barrier, within a budget)
        with trio.fail_after(10):
            while len(offline_rows(config)) < 2:
                await romeo.do("features", jid="romeo@localhost")
        await romeo.do("retract", to="juliet@localhost", id="o-gone")
        with trio.fail_after(10):
            while any(b"secret" in row for row in offline_rows(config)):
                await romeo.do("features", jid="romeo@localhost")
        rows = offline_rows(config)
        assert len(rows) == 2 and b"still here" in rows[0] and b"o-gone" in rows[1]
        juliet = await device(nursery, "juliet", server, "balcony")
        await told(juliet, "retract", id="o-gone")
        await told(juliet, "chat", body="still here")
        assert not any(e.get("body") == "secret" for e in juliet.seen), juliet.seen
        for peer in (romeo, juliet):
            messages = await archive(peer)
            tombstone_names_its_retraction(messages, "o-gone")
            assert by_origin(messages)["o-kept"]["body"] == "still here"
        await quit_all(romeo, juliet)


async def test_carbons_carry_the_retraction_to_every_device_and_archives_hold_it_once(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    async with mam_server(server_config, ca, tmp_path, 90) as (nursery, server):
        phone = await device(nursery, "romeo", server, "phone")
        laptop = await device(nursery, "romeo", server, "laptop")
        balcony = await device(nursery, "juliet", server, "balcony")
        chamber = await device(nursery, "juliet", server, "chamber")
        for peer in (phone, laptop, balcony, chamber):
            assert (await peer.do("carbons"))["event"] == "ok"
        await phone.do("chat", to="juliet@localhost", body="secret", origin="o1")
        await laptop.expect(lambda e: e["event"] == "carbon" and e["body"] == "secret")
        await phone.do("retract", to="juliet@localhost", id="o1")
        # the sender's other device: a sent carbon of the retraction
        sent = await laptop.expect(lambda e: e["event"] == "carbon" and e["retract"] == "o1")
        assert sent["dir"] == "sent" and sent["to"] == "juliet@localhost", sent
        # the recipient's devices: each gets it (itself or as a received carbon)
        for peer in (balcony, chamber):

            def got(e: dict[str, Any]) -> bool:
                return (e["event"] == "retract" and e["id"] == "o1") or (
                    e["event"] == "carbon" and e["retract"] == "o1"
                )

            event = next((e for e in peer.seen if got(e)), None) or await peer.expect(got)
            assert event["from"].startswith("romeo@localhost/phone"), event
        for peer in (phone, balcony):
            messages = await archive(peer)
            tombstone_names_its_retraction(messages, "o1")
            assert [m["origin"] for m in messages].count("o1") == 1, messages
            assert [m["retract"] for m in messages].count("o1") == 1, messages
            assert len(messages) == 2, messages
        await quit_all(phone, laptop, balcony, chamber)
