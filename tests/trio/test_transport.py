"""The server's transport on the wire: stanzas written by the routing task in
per-read batches, and idle sessions whose parser is compacted."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import trio
from conftest import PASSWORDS, RunningServer

from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_trio.client import Client, _negotiate, open_client

WAIT = 15.0
BODY = "{jabber:client}body"


def chat(to: str, body: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"to": to, "type": "chat"})
    ET.SubElement(msg, BODY).text = body
    return msg


async def bodies(client: Client, count: int) -> list[str]:
    got: list[str] = []
    with trio.fail_after(WAIT):
        async for stanza in client:
            if stanza.tag == "{jabber:client}message":
                got.append(stanza.findtext(BODY) or "")
                if len(got) == count:
                    break
    return got


async def test_a_burst_in_one_write_is_delivered_complete_and_in_order(
    server: RunningServer,
) -> None:
    options = {"host": "127.0.0.1", "port": server.starttls_port}
    async with open_client(
        "juliet@localhost/balcony",
        PASSWORDS["juliet"],
        ssl_context=server.client_context(),
        **options,  # type: ignore[arg-type]
    ) as juliet:
        tcp = await trio.open_tcp_stream("127.0.0.1", server.starttls_port)
        conn = ClientConnection(
            ClientConfig(
                jid=JID.parse("romeo@localhost/orchard"),
                password=PASSWORDS["romeo"],
                stream_management=False,
            )
        )
        with trio.fail_after(WAIT):
            negotiated = await _negotiate(conn, tcp, server.client_context(), "localhost")
        burst = b"".join(
            f"<message to='juliet@localhost/balcony' type='chat'><body>{i}</body></message>".encode()
            for i in range(300)
        )
        await negotiated.stream.send_all(burst)  # one read on the server, most likely
        assert await bodies(juliet, 300) == [str(i) for i in range(300)]
        await trio.aclose_forcefully(negotiated.stream)


async def test_idle_session_is_compacted_and_routes_as_before(server: RunningServer) -> None:
    server.server.compact_after = 0.2
    common = {"host": "127.0.0.1", "port": server.starttls_port}
    async with (
        open_client(
            "juliet@localhost/balcony",
            PASSWORDS["juliet"],
            ssl_context=server.client_context(),
            **common,  # type: ignore[arg-type]
        ) as juliet,
        open_client(
            "romeo@localhost/orchard",
            PASSWORDS["romeo"],
            ssl_context=server.client_context(),
            **common,  # type: ignore[arg-type]
        ) as romeo,
    ):
        sessions = server.server.sessions

        def compacted() -> list[str]:
            return sorted(
                str(s.conn.jid)
                for s in sessions.values()
                if s.conn is not None and s.conn.jid is not None and s.conn.compacted
            )

        with trio.fail_after(WAIT):
            while compacted() != ["juliet@localhost/balcony", "romeo@localhost/orchard"]:
                await trio.sleep(0.05)
        await romeo.send(chat("juliet@localhost/balcony", "after a pause"))
        assert await bodies(juliet, 1) == ["after a pause"]
        await juliet.send(chat("romeo@localhost/orchard", "and back"))
        assert await bodies(romeo, 1) == ["and back"]
        # Input restored both parsers; quiet again, both compact again.
        with trio.fail_after(WAIT):
            while len(compacted()) != 2:
                await trio.sleep(0.05)
