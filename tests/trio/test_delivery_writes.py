"""What a delivery costs on the receiver's connection (issue 24): the stanzas
routed from one read of the sender reach each receiver in one write, so one
TLS record and one system call, however many there are (within one time
slice of the routing task: ``_session._SLICE``, widened here so that a
loaded machine cannot split the read). Real server, STARTTLS over loopback TCP, trustme
certificates (``test_limits.start``)."""

from __future__ import annotations

from typing import Any

import trio
from conftest import PASSWORDS
from test_batched_writes import LoggedTransport
from test_limits import WAIT, chat, config, start

from xmpp_trio import _session
from xmpp_trio.client import open_client
from xmpp_trio.config import ServerConfig

__all__ = ["config"]

COUNT = 20  # 20 small messages: one TLS record from the sender (under 16 KiB)


async def test_the_messages_of_one_read_reach_their_receiver_in_one_write(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: Any
) -> None:
    monkeypatch.setattr(_session, "_SLICE", 60.0)
    started = await start(nursery, config)
    log: list[tuple[str, Any]] = []
    async with (
        open_client("juliet@localhost/in", PASSWORDS["juliet"], **started.options()) as juliet,
        open_client("romeo@localhost/out", PASSWORDS["romeo"], **started.options()) as romeo,
    ):
        session = next(
            s for s in started.server.sessions.values() if s.conn and s.conn.jid == juliet.jid
        )
        monkeypatch.setattr(session, "transport", LoggedTransport(session.transport, log))
        for i in range(COUNT):  # queued, then written at once: one record
            romeo._conn.send(chat("juliet@localhost/in", f"message {i}"))
        await romeo._flush()
        got = []
        with trio.fail_after(WAIT):
            async for stanza in juliet:
                if stanza.tag == "{jabber:client}message":
                    got.append(stanza.findtext("{jabber:client}body"))
                    if len(got) == COUNT:
                        break
    assert got == [f"message {i}" for i in range(COUNT)]
    writes = [data for kind, data in log if kind == "write" and b"<message" in data]
    assert len(writes) == 1, [data.count(b"<message") for data in writes]
    assert writes[0].count(b"<message") == COUNT


async def test_messages_two_readers_route_in_one_pass_reach_their_receiver_in_one_write(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: Any
) -> None:
    """Two senders' stanzas that arrive together are read in one pass of the
    scheduler; what they route to one receiver goes out at the end of that
    pass, in one write (one TLS record), not one write per sender."""
    started = await start(nursery, config)
    log: list[tuple[str, Any]] = []
    async with (
        open_client("juliet@localhost/in", PASSWORDS["juliet"], **started.options()) as juliet,
        open_client("romeo@localhost/a", PASSWORDS["romeo"], **started.options()) as first,
        open_client("romeo@localhost/b", PASSWORDS["romeo"], **started.options()) as second,
    ):
        session = next(
            s for s in started.server.sessions.values() if s.conn and s.conn.jid == juliet.jid
        )
        monkeypatch.setattr(session, "transport", LoggedTransport(session.transport, log))
        first._conn.send(chat("juliet@localhost/in", "from a"))
        second._conn.send(chat("juliet@localhost/in", "from b"))
        async with trio.open_nursery() as senders:  # both written in one pass
            senders.start_soon(first._flush)
            senders.start_soon(second._flush)
        got = []
        with trio.fail_after(WAIT):
            async for stanza in juliet:
                if stanza.tag == "{jabber:client}message":
                    got.append(stanza.findtext("{jabber:client}body"))
                    if len(got) == 2:
                        break
    assert sorted(got) == ["from a", "from b"]
    writes = [data for kind, data in log if kind == "write" and b"<message" in data]
    assert [data.count(b"<message") for data in writes] == [2]


async def test_a_reader_that_got_no_output_is_not_held_for_the_end_of_the_pass(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: Any
) -> None:
    """With one message in flight (issue 24, session 12) the sender's read
    routes its stanza elsewhere and leaves nothing for its own peer: its
    session is not held to be written at the end of the pass (a call that
    would write nothing); the receiver is, and gets the message."""
    started = await start(nursery, config)
    held: list[_session.Session] = []
    hold = _session._PassWrites.hold

    def logged_hold(session: _session.Session) -> None:
        held.append(session)
        hold(session)

    async with (
        open_client("juliet@localhost/in", PASSWORDS["juliet"], **started.options()) as juliet,
        open_client(
            "romeo@localhost/out",
            PASSWORDS["romeo"],
            stream_management=False,  # with it an <r/> may be due on any flush
            **started.options(),
        ) as romeo,
    ):
        sessions = started.server.sessions.values()
        sender = next(s for s in sessions if s.conn and s.conn.jid == romeo.jid)
        receiver = next(s for s in sessions if s.conn and s.conn.jid == juliet.jid)
        monkeypatch.setattr(_session._PassWrites, "hold", staticmethod(logged_hold))
        romeo._conn.send(chat("juliet@localhost/in", "one in flight"))
        await romeo._flush()
        with trio.fail_after(WAIT):
            async for stanza in juliet:
                if stanza.tag == "{jabber:client}message":
                    assert stanza.findtext("{jabber:client}body") == "one in flight"
                    break
    assert receiver in held
    assert sender not in held
