"""Blocking (XEP-0191) on the real server with its SQLite store, while the
router skips blocking's filters as long as nobody blocks anyone (issue 24,
``BlockingService.idle``; docs/architecture.md): a block applies from the
very next stanza, an unblock lifts it, and lists stored before a start
apply from the first stanza after it. Asserted on the wire."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
import trio
import trustme
from conftest import start_running
from test_security import Wire, iq, login_wire

from xmpp_trio.config import ServerConfig

pytestmark = pytest.mark.trio

BLOCK = "<block xmlns='urn:xmpp:blocking'><item jid='juliet@localhost'/></block>"
UNBLOCK = "<unblock xmlns='urn:xmpp:blocking'><item jid='juliet@localhost'/></unblock>"


def chat(body: str) -> Element:
    message = Element("{jabber:client}message", {"to": "romeo@localhost", "type": "chat"})
    message.append(Element("{jabber:client}body"))
    message[0].text = body
    return message


async def bounced(juliet: Wire, body: str) -> bool:
    """Send ``body`` to Romeo; whether it came back as the error a blocked
    sender gets (XEP-0191 §3.3: ``service-unavailable``, as if offline)."""
    seen = len(juliet.data)
    message = chat(body)
    message.set("id", body.replace(" ", "-"))
    await juliet.send(message)
    await juliet.sync()  # the answer to the message, if any, came before the ping's
    answer = bytes(juliet.data[seen:])
    if f'id="{message.get("id")}"'.encode() not in answer:
        return False
    assert b"service-unavailable" in answer
    return True


async def test_a_block_applies_from_the_next_stanza_and_an_unblock_lifts_it(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start_running(server_config, ca, tmp_path, nursery)
    romeo = await login_wire(server, "romeo@localhost/orchard")
    await romeo.send(b"<presence/>")  # available: a chat to the bare JID reaches it
    juliet = await login_wire(server, "juliet@localhost/balcony")
    assert not await bounced(juliet, "before")  # nobody blocks: delivered
    await romeo.sync()
    assert b"before" in romeo.data
    answer = await romeo.request(iq("set", BLOCK))
    assert answer.get("type") == "result"
    assert await bounced(juliet, "while blocked")
    await romeo.sync()
    assert b"while blocked" not in romeo.data
    assert (await romeo.request(iq("set", UNBLOCK))).get("type") == "result"
    assert not await bounced(juliet, "after")
    await romeo.sync()
    assert b"after" in romeo.data


async def test_a_list_stored_before_a_start_applies_from_the_first_stanza(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    async with trio.open_nursery() as first:
        server = await start_running(server_config, ca, tmp_path, first)
        romeo = await login_wire(server, "romeo@localhost/orchard")
        assert (await romeo.request(iq("set", BLOCK))).get("type") == "result"
        await romeo.aclose()
        first.cancel_scope.cancel()
    async with trio.open_nursery() as second:
        server = await start_running(server_config, ca, tmp_path, second)
        romeo = await login_wire(server, "romeo@localhost/orchard")
        await romeo.send(b"<presence/>")
        juliet = await login_wire(server, "juliet@localhost/balcony")
        assert await bounced(juliet, "after the restart")
        await romeo.sync()
        assert b"after the restart" not in romeo.data
        second.cancel_scope.cancel()
