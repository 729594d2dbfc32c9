"""A XEP-0198 ``<r/>`` goes out in the same write (the same TLS record) as the
stanzas it follows, never as a small write of its own (issue 24: every write
is a system call and a TLS record on the receiver's connection)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from conftest import PASSWORDS
from test_batched_writes import LoggedTransport
from test_limits import WAIT, chat, config, start

from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_sansio.testing import seeded_rng
from xmpp_trio.client import _negotiate, open_client
from xmpp_trio.config import ServerConfig

__all__ = ["config"]

COUNT = 23
ACK_REQUEST = b'<r xmlns="urn:xmpp:sm:3"/>'


async def test_an_ack_request_shares_the_write_of_the_stanzas_it_follows(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = await start(nursery, config)
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    conn = ClientConnection(
        ClientConfig(
            jid=JID.parse("juliet@localhost/in"),
            password=PASSWORDS["juliet"],
            stream_management=True,
            rng=seeded_rng(0),
        )
    )
    negotiated = await _negotiate(conn, stream, started.ctx, "localhost")
    assert conn.sm is not None, "stream management was not enabled"
    (session,) = started.server.sessions.values()
    log: list[tuple[str, Any]] = []
    monkeypatch.setattr(session, "transport", LoggedTransport(session.transport, log))
    async with open_client("romeo@localhost/out", PASSWORDS["romeo"], **started.options()) as romeo:
        for i in range(COUNT):
            await romeo.send(chat("juliet@localhost/in", f"message {i}"))
        got = 0
        with trio.fail_after(WAIT):
            while got < COUNT:
                conn.receive_data(await negotiated.stream.receive_some(65536))
                while (event := conn.next_event()) is not None:
                    got += type(event).__name__ == "StanzaReceived"
                await negotiated.stream.send_all(conn.data_to_send())  # <a h/> answers
    writes = [data for kind, data in log if kind == "write"]
    with_request = [data for data in writes if ACK_REQUEST in data]
    assert with_request, "the server asked for no ack"
    for data in with_request:
        assert b"<message" in data, data
    await negotiated.stream.aclose()
