"""Message retraction (XEP-0424) over federation: two of our servers, a.test
and b.test, on loopback with real TLS and SQLite files, slixmpp 1.17
clients (xep_0424, xep_0313, default settings) on each. A remote sender's
retraction, arriving over s2s, turns the local recipient's archived copy
into a tombstone only when it comes from the original's bare JID; a
message still stored offline when its remote sender retracts it is
dropped, so the recipient gets only the retraction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
import trustme
from conftest import RunningServer
from peer_support import Peer
from test_federation_wire import PASSWORD, start_domain
from test_retract_clients import PEER, archive, by_origin, told
from test_retract_offline_carbons import tombstone_names_its_retraction

from xmpp_sansio.server.mam.service import MamLimits

pytestmark = pytest.mark.integration

MAM = {"mam": MamLimits(enabled=True)}


async def user(nursery: trio.Nursery, local: str, server: RunningServer) -> Peer:
    domain = server.config.domains[0]
    return await Peer.start(nursery, PEER, local, PASSWORD, server, domain=domain)


def stored(server: RunningServer) -> list[bytes]:
    with sqlite3.connect(server.config.database_path) as db:
        return [bytes(r[0]) for r in db.execute("SELECT stanza FROM offline_messages ORDER BY id")]


def settled(rows: list[bytes]) -> bool:
    retraction = any(b"message-retract:1" in row for row in rows)
    return retraction and not any(b"secret two" in row for row in rows)


async def test_a_remote_senders_retraction_reaches_the_archive_and_the_offline_queue(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            a = await start_domain("a.test", ca, ca, tmp_path, nursery, options=MAM)
            b = await start_domain(
                "b.test", ca, ca, tmp_path, nursery, users=("romeo", "mercutio"), options=MAM
            )
            for me, other, domain in ((a, b, "b.test"), (b, a, "a.test")):
                assert me.server.federation is not None and other.server.federation is not None
                me.server.federation.hosts[domain] = ("127.0.0.1", other.server.federation.port)
            juliet = await user(nursery, "juliet", a)
            romeo = await user(nursery, "romeo", b)
            mercutio = await user(nursery, "mercutio", b)
            await romeo.do("chat", to="juliet@a.test", body="secret", origin="o-far")
            await told(juliet, "chat", body="secret")
            # another account of the same server names romeo's message: delivered,
            # archived, and nothing else changes (XEP-0424: same bare JID only)
            await mercutio.do("retract", to="juliet@a.test", id="o-far")
            notice = await told(juliet, "retract", id="o-far")
            assert notice["from"].startswith("mercutio@b.test/")
            assert by_origin(await archive(juliet))["o-far"]["body"] == "secret"
            # the sender's own retraction, over s2s: a tombstone in juliet's archive
            juliet.seen.clear()
            await romeo.do("retract", to="juliet@a.test", id="o-far")
            notice = await told(juliet, "retract", id="o-far")
            assert notice["from"].startswith("romeo@b.test/")
            messages = await archive(juliet)
            dead = by_origin(messages)["o-far"]
            assert dead["body"] == "" and dead["retracted"] and dead["from"] == "romeo@b.test"
            assert [m["retract"] for m in messages] == [None, "o-far", "o-far"], messages
            tombstone_names_its_retraction(await archive(romeo), "o-far")  # his own copy

            # -- juliet offline: the original is dropped from her queue ------------------
            await juliet.quit()
            await romeo.do("chat", to="juliet@a.test", body="secret two", origin="o-off")
            await romeo.do("chat", to="juliet@a.test", body="kept", origin="o-kept")
            with trio.fail_after(20):
                while len(stored(a)) < 2:
                    await romeo.do("features", jid="romeo@b.test")
            await romeo.do("retract", to="juliet@a.test", id="o-off")
            with trio.fail_after(20):  # the retraction stored, the original dropped
                while not settled(stored(a)):
                    await romeo.do("features", jid="romeo@b.test")
            rows = stored(a)
            assert len(rows) == 2 and b"kept" in rows[0] and b"o-off" in rows[1], rows
            juliet = await user(nursery, "juliet", a)
            await told(juliet, "retract", id="o-off")
            await told(juliet, "chat", body="kept")
            assert not any(e.get("body") == "secret two" for e in juliet.seen), juliet.seen
            messages = await archive(juliet)
            tombstone_names_its_retraction(messages, "o-off")
            assert by_origin(messages)["o-kept"]["body"] == "kept"
            for peer in (juliet, romeo, mercutio):
                await peer.quit()
            nursery.cancel_scope.cancel()
