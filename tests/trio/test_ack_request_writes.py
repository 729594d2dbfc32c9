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

from xmpp_trio.client import open_client
from xmpp_trio.config import ServerConfig

__all__ = ["config"]

COUNT = 23
ACK_REQUEST = b'<r xmlns="urn:xmpp:sm:3"/>'


async def test_an_ack_request_shares_the_write_of_the_stanzas_it_follows(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = await start(nursery, config)
    log: list[tuple[str, Any]] = []
    async with (
        open_client(
            "juliet@localhost/in", PASSWORDS["juliet"], stream_management=True, **started.options()
        ) as juliet,
        open_client("romeo@localhost/out", PASSWORDS["romeo"], **started.options()) as romeo,
    ):
        session = next(
            s for s in started.server.sessions.values() if s.conn and s.conn.jid == juliet.jid
        )
        monkeypatch.setattr(session, "transport", LoggedTransport(session.transport, log))
        for i in range(COUNT):
            await romeo.send(chat("juliet@localhost/in", f"message {i}"))
        got = 0
        with trio.fail_after(WAIT):
            async for stanza in juliet:  # the client answers each <r/> with <a h/>
                got += stanza.tag == "{jabber:client}message"
                if got == COUNT:
                    break
    writes = [data for kind, data in log if kind == "write"]
    with_request = [data for data in writes if ACK_REQUEST in data]
    assert with_request, "the server asked for no ack"
    for data in with_request:
        assert b"<message" in data, data
