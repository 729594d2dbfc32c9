"""Stream management (XEP-0198) and client state indication (XEP-0352) end to end:
the bundled server on loopback with real TLS, and our own client.

A client "loses its network" with :meth:`Client.abort`: the TCP connection is
dropped without ``</stream:stream>``, so the server keeps the session for
resumption. Every wait is bounded; the only time that passes on purpose is the
resumption timeout, which is the behaviour under test.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import memory
import pytest
import trio
import trio.testing
from conftest import PASSWORDS, RunningServer

from xmpp_sansio.jid import JID
from xmpp_sansio.sm import SMState
from xmpp_trio.client import Client, open_client
from xmpp_trio.config import LimitsConfig, ServerConfig

WAIT = 15.0
BODY = "{jabber:client}body"


@dataclasses.dataclass(frozen=True, slots=True)
class _SMLimits(LimitsConfig):
    """``LimitsConfig`` with the stream management keys, until it has them."""

    resume_timeout: float = 300.0
    max_unacked: int = 1000


@pytest.fixture
def server_config(server_config: ServerConfig, request: pytest.FixtureRequest) -> ServerConfig:
    """Limits from the test's indirect parameter (a dict), if it has one."""
    changes = getattr(request, "param", None)
    if changes is None:
        return server_config
    limits = server_config.limits
    values = {f.name: getattr(limits, f.name) for f in dataclasses.fields(limits)}
    values.update(changes)
    if set(changes) <= {f.name for f in dataclasses.fields(LimitsConfig)}:
        new_limits: LimitsConfig = LimitsConfig(**values)
    else:
        new_limits = _SMLimits(**values)
    return dataclasses.replace(server_config, limits=new_limits)


@pytest.fixture(params=["tcp", "websocket"])
def server(server: RunningServer, request: pytest.FixtureRequest) -> RunningServer:
    """Every test on the real server runs over TCP and over WebSocket (RFC 7395)."""
    return dataclasses.replace(server, transport=request.param)


def options(server: RunningServer) -> dict[str, Any]:
    return server.client_options()


def chat(to: str, body: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"to": to, "type": "chat"})
    ET.SubElement(msg, BODY).text = body
    return msg


def presence(
    to: str | None = None, status: str | None = None, priority: int | None = None
) -> ET.Element:
    pres = ET.Element("{jabber:client}presence", {"to": to} if to else {})
    if status is not None:
        ET.SubElement(pres, "{jabber:client}status").text = status
    if priority is not None:
        ET.SubElement(pres, "{jabber:client}priority").text = str(priority)
    return pres


async def next_stanza(client: Client) -> ET.Element:
    with trio.fail_after(WAIT):
        return await client.receive()


async def next_message(client: Client) -> str:
    while True:
        stanza = await next_stanza(client)
        if stanza.tag == "{jabber:client}message":
            return stanza.findtext(BODY) or ""


async def messages_until(client: Client, marker: str) -> list[str]:
    """Message bodies up to (not including) ``marker``."""
    bodies: list[str] = []
    while (body := await next_message(client)) != marker:
        bodies.append(body)
    return bodies


async def become_available(client: Client, priority: int | None = None) -> None:
    """Send initial presence and wait for its reflection (RFC 6121 §4.2.2)."""
    await client.send(presence(priority=priority))
    while True:
        stanza = await next_stanza(client)
        if stanza.tag == "{jabber:client}presence" and stanza.get("from") == str(client.jid):
            return


async def ping_server(client: Client) -> None:
    """An IQ round trip: everything sent before it has been processed."""
    iq = ET.Element("{jabber:client}iq", {"type": "get", "id": "p", "to": "localhost"})
    ET.SubElement(iq, "{urn:xmpp:ping}ping")
    await client.request(iq, timeout=WAIT)


def buffered_messages(client: Client) -> Iterator[str]:
    """Messages a closed client had already received (and acknowledged as handled)."""
    while True:
        try:
            stanza = client._incoming.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return
        if stanza.tag == "{jabber:client}message":
            yield stanza.findtext(BODY) or ""


async def test_resumed_session_gets_every_message_exactly_once(server: RunningServer) -> None:
    kw = options(server)
    balcony = JID.parse("juliet@localhost/balcony")
    async with open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **kw) as romeo:
        async with open_client(str(balcony), PASSWORDS["juliet"], **kw) as juliet:
            state = juliet.sm_state
            assert state is not None and state.resume and state.id
            for i in range(3):
                await romeo.send(chat(str(balcony), f"before-{i}"))
            received = [await next_message(juliet) for _ in range(3)]
            await juliet.send(chat("romeo@localhost/orchard", "from-juliet"))
            await juliet.abort()  # the network goes away: no </stream:stream>
            # In flight: sent while the server still writes to the dead transport,
            # or keeps the detached session; either way never acknowledged.
            for i in range(5):
                await romeo.send(chat(str(balcony), f"after-{i}"))
            received += buffered_messages(juliet)
        assert server.router.session_by_jid(balcony) is not None  # kept for resumption

        # Another account cannot take over the session, even knowing its SM-ID (XEP-0198 §10).
        forged = SMState(id=state.id, resume=True, jid=JID.parse("romeo@localhost/thief"))
        async with open_client(
            "romeo@localhost/thief", PASSWORDS["romeo"], resume=forged, **kw
        ) as thief:
            assert not thief.resumed and str(thief.jid) == "romeo@localhost/thief"

        async with open_client(str(balcony), PASSWORDS["juliet"], resume=state, **kw) as juliet:
            assert juliet.resumed and juliet.jid == balcony
            assert juliet.sm_state is state
            await romeo.send(chat(str(balcony), "end"))
            received += await messages_until(juliet, "end")
            expected = [f"before-{i}" for i in range(3)] + [f"after-{i}" for i in range(5)]
            assert received == expected  # all of them, once each, in order
            await juliet.send(chat("romeo@localhost/orchard", "juliet-end"))
            from_juliet = await messages_until(romeo, "juliet-end")
            assert from_juliet == ["from-juliet"]  # sent before the break: not duplicated
            assert not juliet.unacked_from_previous
        # A clean close (</stream:stream>) ends the session: nothing to resume.
        async with open_client(str(balcony), PASSWORDS["juliet"], resume=state, **kw) as juliet:
            assert not juliet.resumed


@pytest.mark.parametrize(
    "server_config",
    [{"resume_timeout": 1.0}, {"max_unacked": 3}],
    indirect=True,
    ids=["resume_timeout=1s", "max_unacked=3"],
)
async def test_session_not_resumed_in_time_has_its_messages_stored_offline(
    server_config: ServerConfig, ca: Any, autojump_clock: trio.testing.MockClock
) -> None:
    """Not resumed within ``resume_timeout``, or more stanzas for the detached
    session than ``max_unacked``: the session ends and its messages are kept.
    In memory under the mock clock: the resumption time passes virtually."""
    ca.cert_pem.write_to_path(str(server_config.data_dir.parent / "ca.pem"))
    balcony = "juliet@localhost/balcony"
    async with memory.serving(server_config) as server:

        def open_client(jid: str, password: str) -> Any:
            return memory.memory_client(server, jid, password)

        async with (
            open_client("romeo@localhost/orchard", PASSWORDS["romeo"]) as romeo,
            # A second resource with negative priority: it sees its own account's
            # presence, but is never sent chat messages (RFC 6121 §8.5.2.1.1).
            open_client("juliet@localhost/watcher", PASSWORDS["juliet"]) as watcher,
        ):
            await become_available(watcher, priority=-1)
            async with open_client(balcony, PASSWORDS["juliet"]) as juliet:
                await become_available(juliet)
                await juliet.abort()
            for i in range(3):
                await romeo.send(chat(balcony, f"full-{i}"))
            await romeo.send(chat("juliet@localhost", "bare"))
            # The session is kept for resume_timeout, then ended: its unavailable
            # presence is what the other resource observes.
            with trio.fail_after(WAIT):
                while True:
                    stanza = await watcher.receive()
                    if stanza.get("from") == balcony and stanza.get("type") == "unavailable":
                        break
            async with open_client(balcony, PASSWORDS["juliet"]) as juliet:
                assert not juliet.resumed
                await juliet.send(presence())  # XEP-0160: stored messages come now
                await ping_server(juliet)
                await romeo.send(chat(balcony, "end"))
                assert await messages_until(juliet, "end") == [
                    "full-0",
                    "full-1",
                    "full-2",
                    "bare",
                ]


@pytest.mark.parametrize(
    "server_config", [{"max_unacked_bytes": 65536}], indirect=True, ids=["max_unacked_bytes=64K"]
)
async def test_detached_session_over_max_unacked_bytes_ends_and_keeps_its_messages(
    server: RunningServer,
) -> None:
    """A few large stanzas for a detached session: past ``max_unacked_bytes``
    it ends at once (before ``resume_timeout``) and its messages are stored."""
    kw = options(server)
    balcony = "juliet@localhost/balcony"
    big = "b" * 30000
    async with (
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **kw) as romeo,
        open_client("juliet@localhost/watcher", PASSWORDS["juliet"], **kw) as watcher,
    ):
        await become_available(watcher, priority=-1)
        async with open_client(balcony, PASSWORDS["juliet"], **kw) as juliet:
            await become_available(juliet)
            await juliet.abort()
        for i in range(3):
            await romeo.send(chat(balcony, f"big-{i} {big}"))
        with trio.fail_after(WAIT):  # resume_timeout is 300 s: the bound ended it
            while True:
                stanza = await watcher.receive()
                if stanza.get("from") == balcony and stanza.get("type") == "unavailable":
                    break
        # Without XEP-0198: the burst of stored messages is over the bound too.
        async with open_client(
            balcony, PASSWORDS["juliet"], stream_management=False, **kw
        ) as juliet:
            await juliet.send(presence())  # XEP-0160: stored messages come now
            await ping_server(juliet)
            await romeo.send(chat(balcony, "end"))
            got = await messages_until(juliet, "end")
            assert [body.split(" ")[0] for body in got] == ["big-0", "big-1", "big-2"]


async def test_resume_after_the_server_noticed_nothing_replaces_the_old_stream(
    server: RunningServer,
) -> None:
    """The old connection is still open on the server side (a half-open TCP
    connection): resuming closes it with ``conflict`` (XEP-0198 §5)."""
    kw = options(server)
    balcony = "juliet@localhost/balcony"
    async with (
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **kw) as romeo,
        open_client(balcony, PASSWORDS["juliet"], **kw) as old,
    ):
        await romeo.send(chat(balcony, "one"))
        assert await next_message(old) == "one"
        state = old.sm_state
        assert state is not None
        async with open_client(balcony, PASSWORDS["juliet"], resume=state, **kw) as new:
            assert new.resumed
            with trio.fail_after(WAIT):
                await old.closed.wait()
            assert old.error is not None and "conflict" in str(old.error)
            await romeo.send(chat(balcony, "two"))
            assert await next_message(new) == "two"


async def test_inactive_client_gets_messages_at_once_and_presence_later(
    server: RunningServer,
) -> None:
    kw = options(server)
    balcony = "juliet@localhost/balcony"
    async with (
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **kw) as romeo,
        open_client(balcony, PASSWORDS["juliet"], **kw) as juliet,
    ):
        assert juliet.csi_offered
        await become_available(juliet)
        await juliet.set_active(False)
        await ping_server(juliet)  # the server has processed <inactive/>
        await romeo.send(presence(balcony, "one"))
        await romeo.send(presence(balcony, "two"))
        await romeo.send(chat(balcony, "hello"))
        first = await next_stanza(juliet)
        assert first.tag == "{jabber:client}message"  # not held behind the presence
        assert first.findtext(BODY) == "hello"
        await juliet.set_active(True)
        await ping_server(juliet)
        await romeo.send(chat(balcony, "end"))
        seen: list[str] = []
        while True:
            stanza = await next_stanza(juliet)
            if stanza.tag == "{jabber:client}presence":
                seen.append(stanza.findtext("{jabber:client}status") or "")
            elif stanza.findtext(BODY) == "end":
                break
        assert seen == ["two"]  # only the latest, once active again


async def test_ending_an_accounts_sessions_kicks_live_ones_and_ends_detached_ones(
    server_config: ServerConfig, ca: Any, autojump_clock: trio.testing.MockClock
) -> None:
    """The administrator's kick (XMPPServer.end_sessions): a live stream gets
    the stream error, a detached session ends at once (its unavailable
    presence goes out) instead of waiting for its resumption time."""
    ca.cert_pem.write_to_path(str(server_config.data_dir.parent / "ca.pem"))
    async with (
        memory.serving(server_config) as server,
        memory.memory_client(server, "romeo@localhost/orchard", PASSWORDS["romeo"]) as romeo,
    ):
        async with memory.memory_client(
            server, "juliet@localhost/balcony", PASSWORDS["juliet"]
        ) as balcony:
            await become_available(balcony)
            await balcony.abort()
        _conn, chamber = await memory.negotiated(
            server, "juliet@localhost/chamber", PASSWORDS["juliet"]
        )
        assert server.manager.detached()
        server.end_sessions(JID.parse("juliet@localhost"))
        assert not server.manager.detached()
        assert server.router.resources(JID.parse("juliet@localhost")) == []
        received = b""
        with trio.fail_after(WAIT):
            while b"</stream:stream>" not in received:
                chunk = await chamber.receive_some(65536)
                if not chunk:
                    break
                received += chunk
        assert b"<policy-violation" in received
        await ping_server(romeo)  # the server goes on
