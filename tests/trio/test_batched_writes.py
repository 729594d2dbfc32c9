"""Offline messages are written once per batch of input, and a XEP-0198
``<a h/>`` follows the write of what it counts (issue 11, storage at the edge).

The offline service returns ``Persist`` effects; the server commits those of
one read in one SQLite transaction before it writes that read's output, so the
client's ``<r/>`` is answered only once the messages it counts are committed.
``test_durability.py`` checks the same across a kill -9 of the real process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest
import trio
from conftest import PASSWORDS
from test_limits import WAIT, chat, config, start

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import OfflinePush, StoreOp
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_sansio.testing import seeded_rng
from xmpp_trio.client import _negotiate
from xmpp_trio.config import ServerConfig

__all__ = ["config"]

COUNT = 40


class LoggedTransport:
    """A server-side transport that logs what the server writes to it."""

    def __init__(self, transport: Any, log: list[tuple[str, int | bytes]]) -> None:
        self._transport = transport
        self._log = log

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        self._log.append(("write", bytes(data)))
        return int(self._transport.send_nowait(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def stored_rows(config: ServerConfig) -> int:
    """Offline messages committed to the database, seen over a new connection."""
    with sqlite3.connect(config.database_path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM offline_messages").fetchone()
    return int(count)


async def test_offline_messages_of_one_read_are_one_commit_made_before_the_ack(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = await start(nursery, config)
    services = started.server.services
    log: list[tuple[str, int | bytes]] = []  # what the server did, in order
    commit = services.commit

    def logged_commit(ops: Sequence[StoreOp]) -> None:
        commit(ops)
        # the offline messages among them (archiving, XEP-0313, adds its own ops)
        log.append(("commit", sum(type(op) is OfflinePush for op in ops)))

    monkeypatch.setattr(services, "commit", logged_commit)
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    conn = ClientConnection(
        ClientConfig(
            jid=JID.parse("romeo@localhost/out"),
            password=PASSWORDS["romeo"],
            stream_management=True,
            rng=seeded_rng(0),
        )
    )
    negotiated = await _negotiate(conn, stream, started.ctx, "localhost")
    sm = conn.sm
    assert sm is not None, "stream management was not enabled"
    (session,) = started.server.sessions.values()
    monkeypatch.setattr(session, "transport", LoggedTransport(session.transport, log))
    # Juliet is offline: every message is stored. One write, then <r/>.
    for i in range(COUNT):
        conn.send(chat("juliet@localhost", f"message {i}"))
    conn.request_ack()
    await negotiated.stream.send_all(conn.data_to_send())
    with trio.fail_after(WAIT):
        while sm.acked < COUNT:
            conn.receive_data(await negotiated.stream.receive_some(65536))
            while conn.next_event() is not None:
                pass
    assert stored_rows(config) == COUNT
    # The server wrote its <a h/> only after committing every message it counts...
    first_ack = next(i for i, (kind, data) in enumerate(log) if kind == "write" and b"<a " in data)
    committed = [n for kind, n in log[:first_ack] if kind == "commit"]
    assert sum(committed) == COUNT  # type: ignore[arg-type]
    # ...in far fewer transactions than messages (one per read of the server).
    assert len(committed) < COUNT // 4
    await negotiated.stream.aclose()


C = "{jabber:client}"

#: An iq set of each store's service, and the op type its write is.
REQUESTS = {
    "vcard": (
        "<iq type='set' id='w1'><vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard></iq>",
        "VCardPut",
    ),
    "private": (
        "<iq type='set' id='w1'><query xmlns='jabber:iq:private'>"
        "<exodus xmlns='exodus:prefs'><defaultnick>Romeo</defaultnick></exodus></query></iq>",
        "PrivatePut",
    ),
    "blocking": (
        "<iq type='set' id='w1'><block xmlns='urn:xmpp:blocking'>"
        "<item jid='tybalt@localhost'/></block></iq>",
        "BlockAdd",
    ),
    "roster": (
        "<iq type='set' id='w1'><query xmlns='jabber:iq:roster'>"
        "<item jid='nurse@localhost' name='Nurse'/></query></iq>",
        "RosterPut",
    ),
    "register": (
        "<iq type='set' id='w1'><query xmlns='jabber:iq:register'><remove/></query></iq>",
        "AccountDelete",
    ),
}


@pytest.mark.parametrize("store", sorted(REQUESTS))
async def test_a_set_is_answered_only_after_its_write_is_committed(
    store: str, config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = await start(nursery, config)
    services = started.server.services
    log: list[tuple[str, Any]] = []
    commit = services.commit

    def logged_commit(ops: Sequence[StoreOp]) -> None:
        commit(ops)
        log.append(("commit", [type(op).__name__ for op in ops]))

    monkeypatch.setattr(services, "commit", logged_commit)
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    conn = ClientConnection(
        ClientConfig(
            jid=JID.parse("romeo@localhost/out"), password=PASSWORDS["romeo"], rng=seeded_rng(0)
        )
    )
    negotiated = await _negotiate(conn, stream, started.ctx, "localhost")
    (session,) = started.server.sessions.values()
    monkeypatch.setattr(session, "transport", LoggedTransport(session.transport, log))
    request, op = REQUESTS[store]
    if store == "roster":  # an interested resource (RFC 6121 §2.1.6): it gets the push too
        await negotiated.stream.send_all(
            b"<iq type='get' id='g0'><query xmlns='jabber:iq:roster'/></iq>"
        )
        received = b""
        with trio.fail_after(WAIT):
            while b"g0" not in received:
                received += await negotiated.stream.receive_some(65536)
    await negotiated.stream.send_all(request.encode())
    received = b""
    with trio.fail_after(WAIT):
        while b"id='w1'" not in received and b'id="w1"' not in received:
            received += await negotiated.stream.receive_some(65536)
    answer = next(
        i
        for i, (kind, data) in enumerate(log)
        if kind == "write" and (b"id='w1'" in data or b'id="w1"' in data)
    )
    assert b"type='result'" in log[answer][1] or b'type="result"' in log[answer][1]
    assert any(kind == "commit" and op in ops for kind, ops in log[:answer])
    if store == "roster":
        with trio.fail_after(WAIT):
            while b"nurse@localhost" not in received:
                received += await negotiated.stream.receive_some(65536)
        push = next(
            i
            for i, (kind, data) in enumerate(log)
            if kind == "write" and b"nurse@localhost" in data
        )
        assert any(kind == "commit" and op in ops for kind, ops in log[:push])
    await negotiated.stream.aclose()
