"""The server's transport on the wire: stanzas written by the routing task in
per-read batches, and idle sessions whose parser is compacted."""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import xml.etree.ElementTree as ET

import memory
import trio
import trio.testing
import trustme
from conftest import PASSWORDS, RunningServer

from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_sansio.testing import seeded_rng
from xmpp_trio.client import Client, _negotiate, open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.server import BoundListener, run_server

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


async def raw_client(
    port: int, ctx: ssl.SSLContext, jid: str, *, rcvbuf: int | None = None
) -> trio.abc.Stream:
    """A client negotiated by our ClientConnection whose stream the test then
    reads and writes as raw bytes (no acks, no parsing)."""
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    if rcvbuf is not None:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    conn = ClientConnection(
        ClientConfig(
            rng=seeded_rng(0),
            jid=JID.parse(jid),
            password=PASSWORDS[jid.split("@")[0]],
            stream_management=False,
        )
    )
    with trio.fail_after(WAIT):
        negotiated = await _negotiate(conn, tcp, ctx, "localhost")
    return negotiated.stream


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
        romeo = await raw_client(
            server.starttls_port, server.client_context(), "romeo@localhost/orchard"
        )
        burst = b"".join(
            f"<message to='juliet@localhost/balcony' type='chat'><body>{i}</body></message>".encode()
            for i in range(300)
        )
        await romeo.send_all(burst)  # one read on the server, most likely
        assert await bodies(juliet, 300) == [str(i) for i in range(300)]
        await trio.aclose_forcefully(romeo)


async def test_idle_session_is_compacted_and_routes_as_before(
    server_config: ServerConfig, ca: trustme.CA, autojump_clock: trio.testing.MockClock
) -> None:
    """In memory under the mock clock: the quiet time passes virtually."""
    ca.cert_pem.write_to_path(str(server_config.data_dir.parent / "ca.pem"))
    async with memory.serving(server_config) as server:
        server.compact_after = 0.2
        async with (
            memory.memory_client(server, "juliet@localhost/balcony", PASSWORDS["juliet"]) as juliet,
            memory.memory_client(server, "romeo@localhost/orchard", PASSWORDS["romeo"]) as romeo,
        ):
            sessions = server.sessions

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


async def test_a_reader_that_pauses_gets_everything_in_order_once_it_reads(
    server_config: ServerConfig, ca: trustme.CA, nursery: trio.Nursery
) -> None:
    """Output the peer's socket does not take waits in the session's buffer,
    flushed by a writer task as the peer reads: nothing lost or reordered."""
    config = dataclasses.replace(
        server_config,
        limits=dataclasses.replace(server_config.limits, max_read_rate=50_000_000),
    )
    bound: list[BoundListener] = await nursery.start(run_server, config)
    port = next(b.port for b in bound if b.kind == "c2s-starttls")
    server = bound[0].server
    assert server is not None
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    juliet = await raw_client(port, ctx, "juliet@localhost/slow", rcvbuf=32768)
    count, padding = 600, "x" * 1000  # 600 KB: more than the socket buffers hold
    async with open_client(
        "romeo@localhost/orchard", PASSWORDS["romeo"], host="127.0.0.1", port=port, ssl_context=ctx
    ) as romeo:
        for i in range(count):
            await romeo.send(chat("juliet@localhost/slow", f"m{i}: {padding}"))
        # Everything is routed (an IQ round trip), and juliet has read nothing.
        ping = ET.Element("{jabber:client}iq", {"type": "get", "to": "localhost"})
        ET.SubElement(ping, "{urn:xmpp:ping}ping")
        await romeo.request(ping, timeout=WAIT)
        session = next(
            s
            for s in server.sessions.values()
            if s.conn is not None and s.conn.jid is not None and s.conn.jid.resource == "slow"
        )
        assert len(session.pending) > 0  # the rest waits for juliet
        received = b""
        with trio.fail_after(WAIT):
            while f"m{count - 1}:".encode() not in received:
                chunk = await juliet.receive_some(65536)
                assert chunk
                received += chunk
    found = [int(n) for n in re.findall(rb"<body>m(\d+):", received)]
    assert found == list(range(count))
    await trio.aclose_forcefully(juliet)
