"""Publish-subscribe state survives a restart of the real server over its
SQLite file (issue 16, step 4), driven by the client helpers
(xmpp_trio.pubsub): PEP nick and bookmarks, a node at pubsub.localhost with
its configuration (round-tripped through the form), its items and a
subscription that still delivers after the restart."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_sansio.client.pubsub import NICK, Bookmark, parse_event
from xmpp_trio import pubsub
from xmpp_trio.client import Client, IqErrorResponse, open_client
from xmpp_trio.config import ServerConfig

HOST = "pubsub.localhost"
C = "{jabber:client}"


def connect(server: RunningServer, user: str) -> AbstractAsyncContextManager[Client]:
    return open_client(
        f"{user}@localhost/t",
        PASSWORDS[user],
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    )


async def first_run(server: RunningServer) -> None:
    async with connect(server, "romeo") as romeo, connect(server, "juliet") as juliet:
        await pubsub.set_nick(romeo, "Romeo")
        await pubsub.publish_bookmark(
            romeo, Bookmark("verona@conference.localhost", "Verona", True, "R")
        )
        await pubsub.publish(
            romeo,
            "news",
            ET.fromstring("<entry xmlns='urn:x'>first</entry>"),
            item_id="1",
            to=HOST,
        )
        config = await pubsub.get_config(romeo, "news", to=HOST)
        assert config["pubsub#max_items"] == ("10",)
        await pubsub.set_config(
            romeo, "news", {"max_items": "max", "title": "Verona news"}, to=HOST
        )
        assert await pubsub.subscribe(juliet, "news", to=HOST) == "subscribed"


async def second_run(server: RunningServer) -> None:
    async with connect(server, "romeo") as romeo, connect(server, "juliet") as juliet:
        (bookmark,) = await pubsub.get_bookmarks(romeo)
        assert bookmark == Bookmark("verona@conference.localhost", "Verona", True, "R")
        (nick,) = await pubsub.get_items(romeo, NICK)
        assert nick.payload is not None and nick.payload.text == "Romeo"
        config = await pubsub.get_config(romeo, "news", to=HOST)
        assert config["pubsub#max_items"] == ("max",)
        assert config["pubsub#title"] == ("Verona news",)
        (entry,) = await pubsub.get_items(juliet, "news", to=HOST)
        assert entry.payload is not None and entry.payload.text == "first"
        # juliet's subscription survived: the next item reaches her.
        await juliet.send(ET.Element(C + "presence"))
        await pubsub.publish(
            romeo, "news", ET.fromstring("<entry xmlns='urn:x'>second</entry>"), to=HOST
        )
        with trio.fail_after(10):
            async for stanza in juliet:
                event = parse_event(stanza)
                if event is not None and event.items:
                    assert event.node == "news" and event.sender == HOST
                    assert event.items[0].payload is not None
                    assert event.items[0].payload.text == "second"
                    break
        with pytest.raises(IqErrorResponse) as refused:
            await pubsub.get_items(juliet, "urn:xmpp:bookmarks:1", to="romeo@localhost")
        assert refused.value.error.condition.value == "not-allowed"


async def test_pubsub_and_pep_state_survive_a_restart(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await first_run(await start_running(server_config, ca, tmp_path, nursery))
            nursery.cancel_scope.cancel()
        async with trio.open_nursery() as nursery:
            await second_run(await start_running(server_config, ca, tmp_path, nursery))
            nursery.cancel_scope.cancel()
