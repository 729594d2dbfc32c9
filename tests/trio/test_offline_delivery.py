"""Offline messages are never lost on the way out (issue 10, item 8), on the wire.

A stored message (XEP-0160) is deleted only once it has been handed over:
written to a client without XEP-0198, acknowledged by one with it. The flush
goes in bounded pages, and ``max_output_buffer`` cuts only a client that
stopped reading (``output_stall_timeout``), so a queue bigger than the output
bound reaches a client that reads.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import memory
import pytest
import trio
import trio.testing
from conftest import PASSWORDS
from test_limits import (
    BODY,
    WAIT,
    Started,
    chat,
    config,
    silent_client,
    start,
    wait_for,
    with_limits,
)

from xmpp_trio.client import Client, open_client
from xmpp_trio.config import ConfigError, ServerConfig, load_config

__all__ = ["config"]


def stored(config: ServerConfig) -> list[str]:
    """The bodies of the offline messages in the real database, oldest first."""
    with sqlite3.connect(config.database_path) as db:
        rows = db.execute("SELECT stanza FROM offline_messages ORDER BY id").fetchall()
    return [bytes(stanza).split(b"<body>")[1].split(b"</body>")[0].decode() for (stanza,) in rows]


async def store_for_juliet(started: Started, bodies: list[str]) -> None:
    async with open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo:
        for body in bodies:
            await romeo.send(chat("juliet@localhost", body))
        await romeo.request(_ping())  # a round trip: everything before it was routed


def _ping() -> ET.Element:
    iq = ET.Element("{jabber:client}iq", {"type": "get", "to": "localhost"})
    ET.SubElement(iq, "{urn:xmpp:ping}ping")
    return iq


async def receive_bodies(client: Client, count: int) -> list[str]:
    bodies: list[str] = []
    with trio.fail_after(WAIT * 2):
        async for stanza in client:
            body = stanza.findtext(BODY)
            if body is not None:
                bodies.append(body)
                if len(bodies) == count:
                    break
    return bodies


async def go_online(client: Client) -> None:
    await client.send(ET.Element("{jabber:client}presence"))


async def test_a_reading_client_gets_every_offline_message_behind_a_megabyte_of_junk(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """1.2 MB stored for an offline user, more than ``max_output_buffer``
    (1 MiB by default), used to get its reader disconnected and every stored
    message deleted unwritten."""
    started = await start(nursery, config)
    junk = "j" * 120_000
    bodies = [f"legit {i}" for i in range(5)] + [f"{i} {junk}" for i in range(10)]
    await store_for_juliet(started, bodies)
    assert len(stored(config)) == 15
    async with open_client("juliet@localhost", PASSWORDS["juliet"], **started.options()) as jul:
        await go_online(jul)
        received = await receive_bodies(jul, len(bodies))
        assert received == bodies
        await wait_for(lambda: stored(config) == [])


async def test_offline_messages_stay_stored_until_acknowledged(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """With XEP-0198 on, a message written but not acknowledged is still in
    the database (a kill -9 now loses nothing); when the session ends it is
    neither lost nor stored twice, and the next login gets each message once."""
    started = await start(nursery, with_limits(config, resume_timeout=0))
    bodies = [f"keep {i}" for i in range(5)]
    await store_for_juliet(started, bodies)
    server = started.server
    async with silent_client(started, "juliet", sm=True, rcvbuf=1 << 20) as (conn, stream):
        assert conn.sm_enabled
        conn.send(_presence())
        await stream.send_all(conn.data_to_send())
        session = next(s for s in server.sessions.values() if s.conn and s.conn.jid == conn.jid)
        # Written to the socket, not acknowledged (the client never reads).
        await wait_for(lambda: session.conn is not None and len(session.conn.sm.queue) >= 5)
        assert stored(config) == bodies
    await wait_for(lambda: not server.sessions)
    assert stored(config) == bodies  # not lost, not routed back in a second time
    async with open_client("juliet@localhost", PASSWORDS["juliet"], **started.options()) as jul:
        await go_online(jul)
        assert await receive_bodies(jul, len(bodies)) == bodies
        await wait_for(lambda: stored(config) == [])


def _presence() -> ET.Element:
    return ET.Element("{jabber:client}presence")


async def test_a_reading_client_resumes_with_more_unacked_than_the_output_bound(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """A resumption retransmits every unacknowledged stanza at once (XEP-0198
    §5); a client that reads them is not cut off for exceeding
    ``max_output_buffer`` (it used to be detached again at every resume)."""
    bound = 65536
    started = await start(nursery, with_limits(config, max_output_buffer=bound))
    server = started.server
    body = "r" * 4000
    count = 50  # 200 KB: three times the bound
    async with silent_client(started, "juliet", sm=True, rcvbuf=1 << 20) as (conn, _stream):
        state = conn.sm
        assert state is not None and state.resume
        async with open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as rom:
            for i in range(count):
                await rom.send(chat(str(conn.jid), f"{i} {body}"))
            session = next(s for s in server.sessions.values() if s.conn and s.conn.jid == conn.jid)
            await wait_for(lambda: session.conn is not None and len(session.conn.sm.queue) == count)
    await wait_for(lambda: len(server.manager.detached()) == 1)
    async with open_client(
        "juliet@localhost/silent", PASSWORDS["juliet"], resume=state, **started.options()
    ) as jul:
        assert jul.resumed
        received = [b.split(" ", 1)[0] for b in await receive_bodies(jul, count)]
        assert received == [str(i) for i in range(count)]
        assert not server.manager.detached()
        assert any(s.conn and s.conn.jid == jul.jid for s in server.sessions.values())


async def test_a_client_that_stops_reading_is_cut_after_the_stall_time(
    config: ServerConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Over ``max_output_buffer`` but under four times it, a client that takes
    no byte for ``output_stall_timeout`` seconds is closed (the output bound
    still holds for a peer that stopped reading). In memory under the mock
    clock, with a 4 KiB buffer between server and client as a socket's."""
    bound = 65536
    limits = with_limits(
        config, max_output_buffer=bound, output_stall_timeout=0.5, max_read_rate=10_000_000
    )
    async with memory.serving(limits) as server:
        conn, _stream = await memory.negotiated(
            server,
            "juliet@localhost/silent",
            PASSWORDS["juliet"],
            stream_management=False,
            capacity=4096,
        )
        victim = next(s for s in server.sessions.values() if s.conn and s.conn.jid == conn.jid)
        async with memory.memory_client(server, "romeo@localhost", PASSWORDS["romeo"]) as rom:
            sent = 0
            with trio.fail_after(WAIT):
                while len(victim.pending) <= bound:  # fill the socket, then the bound
                    await rom.send(chat(str(conn.jid), f"{sent} {'s' * 8000}"))
                    await rom.request(_ping())
                    sent += 1
            assert len(victim.pending) < 4 * bound and not victim.overflowed
            # Nothing more is sent: the writer alone notices the stall.
            await wait_for(lambda: victim.overflowed)
        errors = server.metrics.stream_errors.labels(condition="policy-violation")
        assert errors._value.get() == 1


@pytest.mark.parametrize(("text", "expected"), [("0", 0.0), ("2.5", 2.5), (None, 10.0)])
def test_output_stall_timeout_loads_from_toml(
    tmp_path: Path, text: str | None, expected: float
) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text("" if text is None else f"[limits]\noutput_stall_timeout = {text}\n")
    assert load_config(path).limits.output_stall_timeout == expected


@pytest.mark.parametrize("text", ["-1", "true", '"10"'])
def test_output_stall_timeout_must_be_a_non_negative_number(tmp_path: Path, text: str) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text(f"[limits]\noutput_stall_timeout = {text}\n")
    with pytest.raises(ConfigError, match=r"limits\.output_stall_timeout"):
        load_config(path)
