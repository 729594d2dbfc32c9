"""The readiness dispatcher for parked readers (issue 24, ``xmpp_trio/_ready.py``)
on the wire: real server, STARTTLS over loopback TCP, trustme certificates
(``test_limits.start``). Every test first waits until the sender's reader is
parked, so what follows goes through ``Session._step`` run by the dispatcher,
not through the reader task's own read."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from conftest import PASSWORDS
from test_limits import (
    BODY,
    WAIT,
    Started,
    chat,
    config,
    read_until,
    silent_client,
    start,
    wait_for,
    with_limits,
)

from xmpp_sansio.jid import JID
from xmpp_trio import _session
from xmpp_trio._ready import Resume
from xmpp_trio._session import Session
from xmpp_trio._transport import SocketTransport
from xmpp_trio.client import Client, open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.server import XMPPServer

__all__ = ["config"]

pytestmark = pytest.mark.skipif(not hasattr(__import__("select"), "epoll"), reason="epoll only")

JULIET = "juliet@localhost/in"
NO_SM = {"stream_management": False}  # else <enable/> after binding is a read of its own


def session_of(server: XMPPServer, jid: str) -> Session:
    return next(s for s in server.sessions.values() if s.conn and str(s.conn.jid) == jid)


def parked(server: XMPPServer, session: Session) -> bool:
    ready = server.ready
    transport = session.transport
    assert ready is not None and isinstance(transport, SocketTransport)
    return ready.parked(transport)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Session, Resume | None]]:
    """Every step the dispatcher ran, with what it handed back (None: stayed parked)."""
    log: list[tuple[Session, Resume | None]] = []
    step = Session._step

    def logged(self: Session, transport: SocketTransport) -> Resume | None:
        resume = step(self, transport)
        log.append((self, resume))
        return resume

    monkeypatch.setattr(Session, "_step", logged)
    return log


@asynccontextmanager
async def parked_pair(started: Started) -> AsyncIterator[tuple[Client, Client, Session]]:
    """juliet (the receiver) and romeo without XEP-0198 (the sender), once
    romeo's reader is parked: ``(juliet, romeo, romeo's session)``."""
    async with (
        open_client(JULIET, PASSWORDS["juliet"], **started.options()) as juliet,
        open_client(
            "romeo@localhost/out", PASSWORDS["romeo"], **NO_SM, **started.options()
        ) as romeo,
    ):
        sender = session_of(started.server, str(romeo.jid))
        await wait_for(lambda: parked(started.server, sender))
        yield juliet, romeo, sender


@asynccontextmanager
async def parked_silent(started: Started) -> AsyncIterator[tuple[Client, Any, Session]]:
    """juliet (the receiver) and a raw romeo stream without XEP-0198 (the
    sender, written byte for byte), once romeo's reader is parked:
    ``(juliet, romeo's stream, romeo's session)``."""
    async with (
        open_client(JULIET, PASSWORDS["juliet"], **started.options()) as juliet,
        silent_client(started, "romeo", sm=False, rcvbuf=65536) as (conn, stream),
    ):
        sender = session_of(started.server, str(conn.jid))
        await wait_for(lambda: parked(started.server, sender))
        yield juliet, stream, sender


async def bodies(client: Client, count: int) -> list[str]:
    got: list[str] = []
    with trio.fail_after(WAIT):
        async for stanza in client:
            if stanza.tag == "{jabber:client}message":
                got.append(stanza.findtext(BODY, ""))
                if len(got) == count:
                    break
    return got


def raw_chat(body: str) -> bytes:
    return f"<message to='{JULIET}' type='chat'><body>{body}</body></message>".encode()


async def test_a_parked_reader_routes_a_message_sent_after_it_parked(
    config: ServerConfig, nursery: trio.Nursery, steps: list[tuple[Session, Resume | None]]
) -> None:
    started = await start(nursery, config)
    server = started.server
    async with parked_pair(started) as (juliet, romeo, sender):
        for i in range(3):  # one in flight: each a wake-up of the parked reader
            await romeo.send(chat(JULIET, f"message {i}"))
            assert await bodies(juliet, 1) == [f"message {i}"]
        assert sum(s is sender for s, _ in steps) >= 3
        assert all(resume is None for s, resume in steps if s is sender)  # never handed back
        assert parked(server, sender)


async def test_records_openssl_holds_past_max_bytes_are_read_without_more_input(
    config: ServerConfig, nursery: trio.Nursery, steps: list[tuple[Session, Resume | None]]
) -> None:
    """A step that stops at ``max_bytes`` leaves the rest of the record inside
    OpenSSL, where the epoll set cannot see it: the session is run again
    without waiting, or the messages behind would wait for more input."""
    started = await start(nursery, config)
    server = started.server
    count = 12
    async with parked_pair(started) as (juliet, romeo, sender):
        sender._read_size = 200  # a read stops well inside the one record sent
        for i in range(count):
            romeo._conn.send(chat(JULIET, f"message {i}"))
        await romeo._flush()  # one write, one TLS record of ~1.4 kB; nothing after it
        assert await bodies(juliet, count) == [f"message {i}" for i in range(count)]
        assert sum(s is sender for s, _ in steps) >= 5
        await wait_for(lambda: parked(server, sender))


async def test_an_event_other_than_a_stanza_is_handled_in_order_by_the_task(
    config: ServerConfig, nursery: trio.Nursery, steps: list[tuple[Session, Resume | None]]
) -> None:
    """A stanza, XEP-0198's ``<enable/>`` and a stanza in one read of a parked
    reader: the first stanza is routed by the step, the event handed to the
    reader task unhandled (it tells the session manager), then the second
    stanza; the reader parks again."""
    started = await start(nursery, config)
    server = started.server
    async with parked_silent(started) as (juliet, stream, sender):
        enable = b"<enable xmlns='urn:xmpp:sm:3'/>"
        await stream.send_all(raw_chat("one") + enable + raw_chat("two"))
        assert await bodies(juliet, 2) == ["one", "two"]
        assert b"<enabled" in await read_until(stream, b"<enabled")
        handed = [resume for s, resume in steps if s is sender and resume is not None]
        assert handed and handed[0].event is not None
        assert type(handed[0].event).__name__ == "StreamManagementEnabled"
        assert server.manager._table[sender.id].sm is not None  # the task told the manager
        await wait_for(lambda: parked(server, sender))


async def test_a_close_after_a_stanza_in_one_read_ends_the_parked_session(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    started = await start(nursery, config)
    server = started.server
    async with parked_silent(started) as (juliet, stream, sender):
        await stream.send_all(raw_chat("last") + b"</stream:stream>")
        assert await bodies(juliet, 1) == ["last"]
        assert (await read_until(stream, b"</stream:stream>")).endswith(b"</stream:stream>")
        await wait_for(lambda: sender not in server.sessions.values())
        assert sender.transport.closed
        assert server.ready is not None and len(server.ready) == 1  # juliet's only


@pytest.mark.parametrize("how", ["kick", "replace"])
async def test_a_session_ended_while_parked_leaves_the_epoll_set(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Kicked (``end_sessions``) or replaced by a new login of its resource,
    a parked session whose peer says nothing more is closed once its close
    grace is over: the transport's close hands the reader back (its socket
    leaves the dispatcher's set first) and the session ends."""
    monkeypatch.setattr(_session, "CLOSE_GRACE", 0.2)
    started = await start(nursery, config)
    server = started.server
    ready = server.ready
    assert ready is not None
    async with silent_client(started, "romeo", sm=False, rcvbuf=65536) as (conn, stream):
        victim = session_of(server, str(conn.jid))
        await wait_for(lambda: parked(server, victim))
        fd = victim.transport.fileno()  # type: ignore[attr-defined]
        if how == "kick":
            server.end_sessions(JID.parse("romeo@localhost"))
            condition = b"policy-violation"
        else:
            condition = b"conflict"
        async with open_client(str(conn.jid), PASSWORDS["romeo"], **started.options()) as again:
            assert (await read_until(stream, condition)).find(condition) > 0
            await wait_for(lambda: victim not in server.sessions.values())
            assert victim.transport.closed
            assert fd not in ready._parked or ready._parked[fd].session is not victim
            if how == "replace":
                assert session_of(server, str(again.jid)) is not victim


async def test_shutdown_ends_parked_sessions_and_the_dispatcher(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    started = await start(nursery, config)
    server = started.server
    ready = server.ready
    assert ready is not None
    async with silent_client(started, "romeo", sm=False, rcvbuf=65536) as (conn, stream):
        victim = session_of(server, str(conn.jid))
        await wait_for(lambda: parked(server, victim))
        nursery.start_soon(server.shutdown)
        assert b"system-shutdown" in await read_until(stream, b"system-shutdown")
        await stream.send_all(b"</stream:stream>")
        await wait_for(lambda: not server.sessions)
        assert len(ready) == 0
    nursery.cancel_scope.cancel()


async def test_the_read_rate_holds_for_a_parked_reader(
    config: ServerConfig, nursery: trio.Nursery, steps: list[tuple[Session, Resume | None]]
) -> None:
    """The step charges each read to the bucket; a delay due hands the
    session back to its task, which sleeps it (``test_limits``' flood, from
    a parked reader)."""
    rate = 20_000
    started = await start(nursery, with_limits(config, max_read_rate=rate))
    count, body = 60, "x" * 1000
    async with parked_pair(started) as (juliet, romeo, sender):
        before = sender.bucket.consumed
        start_time = trio.current_time()
        for i in range(count):
            await romeo.send(chat(JULIET, f"{i} {body}"))
        got = await bodies(juliet, count)
        elapsed = trio.current_time() - start_time
    assert [text.split()[0] for text in got] == [str(i) for i in range(count)]
    sent = sender.bucket.consumed - before
    expected = (sent - 2 * rate) / rate
    assert expected > 0.5
    assert any(s is sender and r is not None and r.delay > 0 for s, r in steps)
    assert elapsed >= expected * 0.9


async def test_an_exception_in_a_step_ends_that_session_only(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = await start(nursery, config)
    server = started.server
    route: Callable[..., Any] = server.router.route

    def failing(session_id: int, element: Any, **kw: Any) -> Any:
        if element.findtext(BODY) == "boom":
            raise RuntimeError("a bug in routing")
        return route(session_id, element, **kw)

    monkeypatch.setattr(server.router, "route", failing)
    async with (
        open_client(JULIET, PASSWORDS["juliet"], **started.options()) as juliet,
        open_client("romeo@localhost/b", PASSWORDS["romeo"], **started.options()) as other,
        silent_client(started, "romeo", sm=False, rcvbuf=65536) as (conn, stream),
    ):
        victim = session_of(server, str(conn.jid))
        await wait_for(lambda: parked(server, victim))
        await stream.send_all(raw_chat("boom"))
        said = await read_until(stream, b"</stream:stream>")
        assert re.search(rb"<internal-server-error", said)
        await wait_for(lambda: victim not in server.sessions.values())
        assert server.ready is not None and server.ready.running
        await wait_for(lambda: parked(server, session_of(server, str(other.jid))))
        await other.send(chat(JULIET, "still here"))
        assert await bodies(juliet, 1) == ["still here"]


class _Batching:
    """The server's side of a round (``_ready.Batching``), recorded."""

    def __init__(self) -> None:
        self.batch: set[object] | None = None
        self.ended: list[tuple[set[object], list[str]]] = []
        self.log: list[str] = []

    def end_batch(self, batch: set[object]) -> None:
        self.ended.append((batch, list(self.log)))
        self.log.append("end")
        self.batch = None


class _Socket:
    """What the dispatcher needs of a transport: a real socket's descriptor."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._on_close: Callable[[], None] | None = None
        self.would_wait = True

    def fileno(self) -> int:
        return int(self.sock.fileno())


async def test_one_round_of_parked_reads_is_one_batch_ended_after_its_last_step(
    nursery: trio.Nursery,
) -> None:
    """Every socket one poll reports is stepped inside one batch of the
    server's, ended (committed, then written) once, after the round's last
    step: the round's writes cost one commit, and none of its output leaves
    before it."""
    import socket

    from xmpp_trio._ready import Ready

    batching = _Batching()
    ready = Ready.start(nursery, batching)
    assert ready is not None
    await trio.testing.wait_all_tasks_blocked()
    pairs = [socket.socketpair() for _ in range(3)]
    seen: list[object] = []

    async def reader(index: int) -> None:
        ours, _ = pairs[index]

        def step(transport: Any) -> Resume | None:
            ours.recv(100)
            seen.append(batching.batch)
            batching.log.append(f"step {index}")
            return None

        await ready.park(step, _Socket(ours))  # type: ignore[arg-type]

    async with trio.open_nursery() as readers:
        for index in range(3):
            readers.start_soon(reader, index)
        await trio.testing.wait_all_tasks_blocked()
        for _, theirs in pairs:  # readable at once: one poll reports all three
            theirs.send(b"x")
        await trio.testing.wait_all_tasks_blocked()
        readers.cancel_scope.cancel()
    assert len(seen) == 3 and seen[0] is not None and all(b is seen[0] for b in seen)
    assert len(batching.ended) == 1
    batch, before = batching.ended[0]
    assert batch is seen[0] and sorted(before) == ["step 0", "step 1", "step 2"]
    assert batching.batch is None
    for ours, theirs in pairs:
        ours.close()
        theirs.close()


def roster_set(jid: str, ident: str) -> bytes:
    return (
        f"<iq type='set' id='{ident}'><query xmlns='jabber:iq:roster'>"
        f"<item jid='{jid}' name='{ident}'/></query></iq>"
    ).encode()


async def test_roster_sets_of_parked_readers_are_answered_after_their_commit(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two parked readers each send a roster set (a write the server commits):
    each gets its result, and no byte of a result is written before a commit
    that came after the set was routed (the round's commit, at its end)."""
    started = await start(nursery, config)
    server = started.server
    marks: list[str] = []
    commit, send = server.commit, Session._send

    def committing() -> None:
        commit()
        marks.append("commit")

    def sending(self: Session, conn: Any, data: bytes) -> bool:
        marks.extend(f"result {i}" for i in ("r1", "j1") if f'id="{i}"'.encode() in data)
        return send(self, conn, data)

    route = server.router.route

    def routing(session_id: int, element: Any, **kw: Any) -> Any:
        if element.get("id") in ("r1", "j1"):
            marks.append(f"routed {element.get('id')}")
        return route(session_id, element, **kw)

    monkeypatch.setattr(server, "commit", committing)
    monkeypatch.setattr(Session, "_send", sending)
    monkeypatch.setattr(server.router, "route", routing)
    async with (
        silent_client(started, "romeo", sm=False, rcvbuf=65536) as (rconn, rstream),
        silent_client(started, "juliet", sm=False, rcvbuf=65536) as (jconn, jstream),
    ):
        for conn in (rconn, jconn):
            await wait_for(lambda conn=conn: parked(server, session_of(server, str(conn.jid))))
        await rstream.send_all(roster_set("nurse@localhost", "r1"))
        await jstream.send_all(roster_set("benvolio@localhost", "j1"))
        for stream, ident in ((rstream, b"r1"), (jstream, b"j1")):
            said = await read_until(stream, b'id="' + ident + b'"')
            assert re.search(rb"<iq[^>]*type=\"result\"[^>]*id=\"" + ident, said) or re.search(
                rb"<iq[^>]*id=\"" + ident + rb"\"[^>]*type=\"result\"", said
            )
    for ident in ("r1", "j1"):
        routed, result = marks.index(f"routed {ident}"), marks.index(f"result {ident}")
        assert "commit" in marks[routed:result]
