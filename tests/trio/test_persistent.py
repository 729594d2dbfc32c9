"""The persistent client: reconnection with backoff and the state it carries over.

Against the bundled server (restarted on a fixed port, as in test_bot.py), and
with a fake ``open_client`` under Trio's autojump clock for the timing: every
wait is bounded and nothing sleeps to synchronise.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import re
import socket
import ssl
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer

from xmpp_sansio.client_state import RosterCache
from xmpp_sansio.jid import JID
from xmpp_sansio.sm import SMState
from xmpp_sansio.stanza import (
    IqType,
    MessageType,
    PresenceShow,
    iq_result,
    make_iq,
    make_message,
    make_presence,
)
from xmpp_trio import persistent
from xmpp_trio.bot import backoff_delay
from xmpp_trio.client import (
    AuthenticationError,
    Client,
    ConnectionFailed,
    IqTimeoutError,
    StreamError,
    open_client,
)
from xmpp_trio.config import ListenerConfig, ServerConfig
from xmpp_trio.im import IMClient
from xmpp_trio.persistent import NotConnected, PersistentClient, open_persistent_client
from xmpp_trio.server import run_server

WAIT = 10
DOCS = Path(__file__).resolve().parents[2] / "docs" / "client.md"
JULIET = JID.parse("juliet@localhost")
BALCONY = JID.parse("juliet@localhost/balcony")
ROMEO = JID.parse("romeo@localhost/orchard")
BODY = "{jabber:client}body"


# --- helpers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def run_server_in(
    scope: trio.CancelScope,
    config: ServerConfig,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await run_server(config, task_status=task_status)


def options(port: int, ca_file: Path) -> dict[str, Any]:
    """``open_client`` keywords for the loopback server."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "ssl_context": ssl.create_default_context(cafile=str(ca_file)),
    }


@asynccontextmanager
async def romeo_im(connect: dict[str, Any]) -> AsyncIterator[IMClient]:
    """Romeo with a plain client: roster fetched, initial presence sent."""
    async with open_client(ROMEO, PASSWORDS["romeo"], **connect) as client, IMClient(client) as im:
        await im.get_roster()
        await im.send_presence()
        yield im


def chat(to: JID | str, body: str) -> ET.Element:
    return make_message(to, body, MessageType.CHAT)


async def next_body(messages: AsyncIterator[ET.Element]) -> str:
    with trio.fail_after(WAIT):
        message = await messages.__anext__()
    return message.findtext(BODY) or ""


async def body_from(im: IMClient, sender: JID) -> str:
    """The body of the next message from ``sender``'s account to ``im``."""
    with trio.fail_after(WAIT):
        async for stanza in im.stanzas():
            if stanza.tag == "{jabber:client}message" and (
                JID.parse(stanza.get("from", "")).bare == sender.bare
            ):
                return stanza.findtext(BODY) or ""
    raise AssertionError("the stream ended")


class RecordingRoster(RosterCache):
    """A roster cache that records the ``ver`` of each fetch and whether the
    result was a full roster (``True``) or empty, "unchanged" (``False``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_versions: list[str | None] = []
        self.full_results: list[bool] = []

    def start_fetch(self, *, versioning: bool = True) -> ET.Element:
        query = super().start_fetch(versioning=versioning)
        self.sent_versions.append(query.get("ver"))
        return query

    def apply_result(self, query: ET.Element | None) -> None:
        self.full_results.append(query is not None)
        super().apply_result(query)


def count_attempts(
    monkeypatch: pytest.MonkeyPatch,
    opener: Callable[..., AbstractAsyncContextManager[Any]] = open_client,
) -> list[float]:
    """Make the persistent client connect through ``opener``; the returned
    list gets the (Trio) time of every connection attempt."""
    attempts: list[float] = []

    def counting(*args: Any, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
        attempts.append(trio.current_time())
        return opener(*args, **kwargs)

    monkeypatch.setattr(persistent, "open_client", counting)
    return attempts


# --- against the bundled server -------------------------------------------------------


async def test_the_session_survives_a_server_restart(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    port = free_port()
    config = dataclasses.replace(
        server_config, listeners=(ListenerConfig("c2s-starttls", "127.0.0.1", port),)
    )
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    first = trio.CancelScope()
    await nursery.start(run_server_in, first, config)
    connect = options(port, ca_file)
    roster = RecordingRoster()
    sessions: list[JID] = []

    async def on_connected(im: IMClient) -> None:
        sessions.append(im.jid)

    async with open_persistent_client(
        BALCONY,
        PASSWORDS["juliet"],
        roster_cache=roster,
        on_connected=on_connected,
        backoff_base=0.05,
        backoff_cap=0.5,
        rng=random.Random(1),
        **connect,
    ) as pc:
        messages = pc.messages()
        # Set before the first connection: it goes out with it.
        await pc.set_presence(show=PresenceShow.AWAY, status="In the garden", priority=5)
        with trio.fail_after(WAIT):
            await pc.wait_connected()
        assert (pc.reconnects, sessions, pc.jid) == (0, [BALCONY], BALCONY)

        # Romeo asks to see Juliet's presence and she approves: he is in her
        # roster now, and sees her presence.
        async with romeo_im(connect) as romeo:
            await romeo.subscribe(JULIET)
            with trio.fail_after(WAIT):
                request = await pc.im.subscription_requests().receive()
                await pc.im.approve(request.jid)
                await pc.im.wait_until(lambda: ROMEO.bare in pc.roster.items)
                await pc.im.wait_until(lambda: pc.presence.is_available(BALCONY))
                await romeo.wait_until(lambda: romeo.presence.get(BALCONY) is not None)
            await romeo.send(chat(BALCONY, "before the restart"))
            assert await next_body(messages) == "before the restart"
        version = pc.roster.version
        assert version

        first.cancel()
        with trio.fail_after(WAIT):
            await pc.wait_disconnected()
        assert not pc.connected
        with pytest.raises(NotConnected):
            await pc.send(chat(ROMEO, "too late"), timeout=0)

        async with trio.open_nursery() as sends:
            # Sent while disconnected: waits for the next connection.
            sends.start_soon(pc.send, chat(ROMEO.bare, "written while offline"))
            await nursery.start(run_server_in, trio.CancelScope(), config)  # same port
            with trio.fail_after(WAIT):
                await pc.wait_connected()
        assert pc.reconnects == 1
        assert not pc.resumed  # the restarted server had no session to resume
        assert sessions == [BALCONY, BALCONY]

        # The second roster get carried the cached version and got an empty
        # result: the cache (with Romeo) is still the roster.
        assert roster.sent_versions == ["", version]
        assert roster.full_results == [True, False]
        assert pc.roster is roster and ROMEO.bare in roster.items

        async with romeo_im(connect) as romeo:
            # The new server knows Juliet's presence only because it was re-sent.
            with trio.fail_after(WAIT):
                await romeo.wait_until(lambda: romeo.presence.get(BALCONY) is not None)
            seen = romeo.presence.get(BALCONY)
            assert seen is not None
            assert (seen.show, seen.status, seen.priority) == (
                PresenceShow.AWAY,
                "In the garden",
                5,
            )
            assert await body_from(romeo, JULIET) == "written while offline"
            await romeo.send(chat(BALCONY, "after the restart"))
            assert await next_body(messages) == "after the restart"  # the same iterator


def docs_example() -> str:
    """The python block of the "Staying online" section of docs/client.md."""
    text = DOCS.read_text()
    section = text[text.index("## Staying online") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the section has no python example"
    return match.group(1)


async def test_the_docs_example_runs(
    server: RunningServer, tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(docs_example(), str(DOCS), "exec"), namespace)
    connect = options(server.starttls_port, server.ca_file)
    cache_file = tmp_path / "roster.json"
    done = trio.Event()

    async def run() -> None:
        await namespace["answering_machine"](
            "juliet@localhost/desk", PASSWORDS["juliet"], cache_file, **connect
        )
        done.set()

    nursery.start_soon(run)
    async with romeo_im(connect) as romeo:
        with trio.fail_after(WAIT):
            # Whether she is online yet or not: the server keeps it until she is.
            await romeo.send(chat("juliet@localhost/desk", "hello"))
            assert await body_from(romeo, JULIET) == "Noted: hello"
            await romeo.send(chat("juliet@localhost/desk", "bye"))
            await done.wait()
    assert "online as juliet@localhost/desk with 0 contact(s)" in capsys.readouterr().out
    assert RosterCache.from_dict(json.loads(cache_file.read_text())).version is not None


async def test_a_broken_connection_resumes_the_session(server: RunningServer) -> None:
    connect = options(server.starttls_port, server.ca_file)
    sessions: list[JID] = []

    async def on_connected(im: IMClient) -> None:
        sessions.append(im.jid)

    async with (
        open_client(ROMEO, PASSWORDS["romeo"], **connect) as romeo,
        open_persistent_client(
            BALCONY,
            PASSWORDS["juliet"],
            on_connected=on_connected,
            backoff_base=0.05,
            backoff_cap=0.5,
            **connect,
        ) as pc,
    ):
        messages = pc.messages()
        await pc.set_presence(status="here")
        with trio.fail_after(WAIT):
            await pc.wait_connected()
        await romeo.send(chat(BALCONY, "one"))
        assert await next_body(messages) == "one"
        old = pc.client
        await old.abort()  # the network goes away: no </stream:stream>
        await romeo.send(chat(BALCONY, "two"))  # the server keeps it for the session
        with trio.fail_after(WAIT):
            await pc.wait_disconnected()
            await pc.wait_connected()
        assert pc.client is not old
        assert pc.resumed and pc.reconnects == 1 and pc.jid == BALCONY
        assert sessions == [BALCONY]  # the session carried on: no on_connected
        await romeo.send(chat(BALCONY, "three"))
        assert [await next_body(messages) for _ in range(2)] == ["two", "three"]
        ping = make_iq(IqType.GET, "", ET.Element("{urn:xmpp:ping}ping"), to="localhost")
        result = await pc.request(ping, timeout=WAIT)
        assert (result.get("type"), result.get("from")) == ("result", "localhost")


async def test_a_refused_password_is_raised_without_retrying(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = count_attempts(monkeypatch)
    with pytest.raises(AuthenticationError) as info, trio.fail_after(WAIT):
        async with open_persistent_client(
            BALCONY,
            "wrong",
            backoff_base=0.01,
            backoff_cap=0.01,
            **options(server.starttls_port, server.ca_file),
        ) as pc:
            await pc.wait_connected()
            raise AssertionError("connected with a wrong password")
    assert info.value.condition == "not-authorized"
    assert len(attempts) == 1


async def test_another_client_taking_the_resource_is_not_fought(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = count_attempts(monkeypatch)
    connect = options(server.starttls_port, server.ca_file)
    with pytest.raises(StreamError) as info, trio.fail_after(WAIT):
        async with open_persistent_client(
            BALCONY, PASSWORDS["juliet"], backoff_base=0.01, backoff_cap=0.01, **connect
        ) as pc:
            await pc.wait_connected()
            async with open_client(BALCONY, PASSWORDS["juliet"], **connect):
                await trio.sleep_forever()  # until the persistent client gives up
    assert info.value.condition == "conflict"
    assert len(attempts) == 1


async def test_the_blocks_own_exception_comes_out_unchanged(server: RunningServer) -> None:
    class Oops(Exception):
        pass

    with pytest.raises(Oops), trio.fail_after(WAIT):
        async with open_persistent_client(
            BALCONY, PASSWORDS["juliet"], **options(server.starttls_port, server.ca_file)
        ) as pc:
            await pc.wait_connected()
            raise Oops


# --- timing, with a fake open_client ----------------------------------------------------


async def test_backoff_follows_the_jittered_exponential_sequence_up_to_the_cap(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    enough = trio.Event()

    @asynccontextmanager
    async def refusing(*args: Any, **kwargs: Any) -> AsyncIterator[Client]:
        if len(attempts) >= 9:
            enough.set()
        raise ConnectionFailed("connection refused")
        yield  # pragma: no cover

    attempts = count_attempts(monkeypatch, refusing)
    async with open_persistent_client(
        BALCONY, "pw", backoff_base=1.0, backoff_cap=10.0, rng=random.Random(7)
    ) as pc:
        with trio.fail_after(1000):
            await enough.wait()
        assert not pc.connected
        assert isinstance(pc.last_error, ConnectionFailed)
        # While disconnected, send waits up to its timeout, then gives up.
        start = trio.current_time()
        with pytest.raises(NotConnected):
            await pc.send(chat(ROMEO, "hello"), timeout=3)
        assert trio.current_time() - start == pytest.approx(3)
    expected_rng = random.Random(7)
    expected = [backoff_delay(i, base=1.0, cap=10.0, rng=expected_rng) for i in range(8)]
    delays = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert delays[:8] == pytest.approx(expected)
    assert all(0.5 <= d <= 10.0 for d in delays)
    assert all(d >= 5.0 for d in delays[4:8])  # 2**4 > 10: capped, jitter in [cap/2, cap]


class FakeClient:
    """Enough of :class:`~xmpp_trio.client.Client` for the persistent client."""

    def __init__(self, answers_pings: bool) -> None:
        self.jid = BALCONY
        self.answers_pings = answers_pings
        self.closed = trio.Event()
        self.error: Exception | None = None
        self.sm_state: SMState | None = None
        self.resumed = False
        self.unacked_from_previous = ()
        self.aborted = False
        self.sent: list[ET.Element] = []
        self._send, self._incoming = trio.open_memory_channel[ET.Element](10)

    async def send(self, stanza: ET.Element) -> None:
        self.sent.append(stanza)

    async def request(self, iq: ET.Element, *, timeout: float = 30.0) -> ET.Element:
        if iq.find("{urn:xmpp:ping}ping") is not None and not self.answers_pings:
            await trio.sleep(timeout)
            raise IqTimeoutError("no answer")
        return iq_result(iq)  # an empty roster result: "unchanged"

    def __aiter__(self) -> AsyncIterator[ET.Element]:
        return self._incoming.__aiter__()

    async def deliver(self, stanza: ET.Element) -> None:
        await self._send.send(stanza)

    async def abort(self) -> None:
        self.aborted = True
        self.closed.set()
        await self._send.aclose()


def handing_out(clients: list[FakeClient]) -> Callable[..., AbstractAsyncContextManager[Any]]:
    """An ``open_client`` that yields ``clients`` one after the other."""
    handed_out = iter(clients)

    @asynccontextmanager
    async def fake_open(*args: Any, **kwargs: Any) -> AsyncIterator[FakeClient]:
        yield next(handed_out)

    return fake_open


async def test_a_server_that_stops_answering_pings_is_left_for_a_new_connection(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = [FakeClient(answers_pings=False), FakeClient(answers_pings=True)]
    attempts = count_attempts(monkeypatch, handing_out(clients))
    async with open_persistent_client(BALCONY, "pw", keepalive=30.0) as pc:
        await pc.set_presence(status="awake")
        with trio.fail_after(1000):
            await pc.wait_connected()
            await clients[0].deliver(make_presence(from_=ROMEO, to=BALCONY, status="hi"))
            await pc.im.wait_until(lambda: pc.presence.is_available(ROMEO))
            await pc.wait_disconnected()
            assert pc.presence.available() == []  # unknown until a new session learns it
            await pc.wait_connected()
        assert clients[0].aborted and not clients[1].aborted
        assert pc.reconnects == 1
        assert isinstance(pc.last_error, ConnectionFailed)
        assert "ping" in str(pc.last_error)
        # The ping went unanswered for its timeout, half the interval.
        assert attempts[1] - attempts[0] >= 30.0 + 15.0
        # The presence was sent on both connections.
        for client in clients:
            statuses = [s.findtext("{jabber:client}status") for s in client.sent]
            assert statuses == ["awake"]


async def test_a_connection_lost_during_on_connected_cancels_it_and_reconnects(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = [FakeClient(answers_pings=True), FakeClient(answers_pings=True)]
    count_attempts(monkeypatch, handing_out(clients))
    calls: list[JID] = []

    async def on_connected(im: IMClient) -> None:
        calls.append(im.jid)
        if len(calls) == 1:
            await clients[0].abort()  # the network goes while the callback is busy
            await trio.sleep_forever()
        await pc.send(chat(ROMEO, "back"))  # not connected yet: goes out all the same

    async with open_persistent_client(BALCONY, "pw", on_connected=on_connected) as pc:
        with trio.fail_after(100):
            await pc.wait_connected()
        assert pc.reconnects == 1 and len(calls) == 2
        assert pc.client is cast(Client, clients[1])
        assert [m.findtext(BODY) for m in clients[1].sent] == ["back"]


async def test_an_exception_of_on_connected_is_raised_not_retried(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = count_attempts(monkeypatch, handing_out([FakeClient(answers_pings=True)]))

    async def on_connected(im: IMClient) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError), trio.fail_after(100):
        async with open_persistent_client(BALCONY, "pw", on_connected=on_connected) as pc:
            await pc.wait_connected()
    assert len(attempts) == 1


async def test_a_resumable_session_is_resumed_even_after_failed_attempts(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = SMState(id="sm-1", resume=True, jid=BALCONY)
    first, second = FakeClient(answers_pings=True), FakeClient(answers_pings=True)
    first.sm_state = second.sm_state = state
    second.resumed = True
    resumes: list[SMState | None] = []

    @asynccontextmanager
    async def network(*args: Any, resume: SMState | None = None, **kwargs: Any) -> Any:
        resumes.append(resume)
        if len(resumes) == 1:
            yield first
        elif len(resumes) < 4:
            raise ConnectionFailed("the network is down")
        else:
            yield second

    count_attempts(monkeypatch, network)
    calls: list[JID] = []

    async def on_connected(im: IMClient) -> None:
        calls.append(im.jid)

    async with open_persistent_client(BALCONY, "pw", on_connected=on_connected) as pc:
        await pc.set_presence(status="here")
        with trio.fail_after(100):
            await pc.wait_connected()
            await first.deliver(make_presence(from_=ROMEO, to=BALCONY))
            await pc.im.wait_until(lambda: pc.presence.is_available(ROMEO))
            await first.abort()
            await pc.wait_disconnected()
            assert pc.presence.is_available(ROMEO)  # kept while a resumption is pending
            await pc.wait_connected()
        assert resumes == [None, state, state, state]
        assert pc.resumed and pc.reconnects == 1
        assert pc.presence.is_available(ROMEO)  # still valid: the session went on
        assert calls == [BALCONY]  # not called again for a resumed session
        assert second.sent == []  # the server still has our presence


def test_invalid_arguments_are_refused_early() -> None:
    with pytest.raises(ValueError):
        PersistentClient(BALCONY, "pw", backoff_base=0)
    with pytest.raises(ValueError):
        PersistentClient(BALCONY, "pw", backoff_base=10, backoff_cap=1)
    with pytest.raises(TypeError):
        PersistentClient(BALCONY, "pw", connect_options={"resume": None})
    with pytest.raises(TypeError):
        PersistentClient(BALCONY, "pw", im_options={"roster_cache": RosterCache()})
