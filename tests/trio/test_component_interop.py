"""The sans-IO component streams (XEP-0114) against real third-party peers, over
loopback TCP: slixmpp's ``ComponentXMPP`` (PyPI, default settings) against our
server role, and our component role (the sans-IO connection, and
``xmpp_trio.open_component``) against Prosody 0.12's component port.

The Trio listener of the server (issue 20) does not exist yet: the server role
runs here under a few lines of Trio that feed bytes both ways. A missing peer
is skipped locally and fails when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
import trio

from xmpp_sansio.errors import RemoteProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import Iq, IqType, Message, MessageType, make_iq, make_message, parse_stanza
from xmpp_sansio.stream.component import ComponentClientConnection, ComponentServerConnection
from xmpp_sansio.stream.config import ComponentClientConfig, ComponentServerConfig
from xmpp_sansio.stream.events import (
    Authenticated,
    Event,
    StanzaReceived,
    StreamErrorReceived,
)
from xmpp_sansio.stream.features.handshake import HANDSHAKE
from xmpp_sansio.stream.state import State
from xmpp_sansio.testing import seeded_rng
from xmpp_sansio.xml import ns
from xmpp_trio import StreamError, open_component

pytestmark = pytest.mark.integration

PEER = Path(__file__).parent / "peers" / "slixmpp_component.py"
DOMAIN = "gw.localhost"
SECRET = "s3cr3t-component"
BUDGET = 30.0
"""Upper bound of one peer run (a bound, never a synchronisation)."""


def require_slixmpp() -> None:
    try:
        import slixmpp  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("slixmpp is not installed (pip install slixmpp)")
        pytest.skip("slixmpp is not installed")


def require(binary: str) -> str:
    """The program's path; skip locally, fail in CI when it is missing (as
    test_debian_clients.py, whose module cannot be imported from here when the
    sans-IO tests are collected first: both folders have a conftest)."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (apt-get install {binary})")
        pytest.skip(f"{binary} is not installed")
    return path


Conn = ComponentServerConnection | ComponentClientConnection


async def pump(stream: trio.SocketStream, conn: Conn) -> AsyncIterator[Event]:
    """Feed ``conn`` from ``stream`` and write its output, yielding its events
    until the stream ends or fails (then the error is raised)."""
    while True:
        out = conn.data_to_send()
        if out:
            await stream.send_all(out)
        while (event := conn.next_event()) is not None:
            yield event
            out = conn.data_to_send()
            if out:
                await stream.send_all(out)
        if conn.state in (State.CLOSED, State.ERROR):
            return
        data = await stream.receive_some(65536)
        if not data:
            conn.receive_eof()
        else:
            conn.receive_data(data)


# --- our server role, slixmpp's component ----------------------------------------------


Handler = Callable[[ComponentServerConnection, Event], None]


async def run_against_our_server(
    argv: Callable[[int], list[str]], on_event: Handler
) -> tuple[list[Event], str, ComponentServerConnection]:
    """Serve one component connection with our server role while the peer
    program ``argv(port)`` runs; ``on_event`` may answer each event."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    server = ComponentServerConnection(
        ComponentServerConfig(secrets={DOMAIN: SECRET}, rng=seeded_rng(7))
    )
    events: list[Event] = []
    output: list[bytes] = []

    async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        stream = await listeners[0].accept()
        try:
            async for event in pump(stream, server):
                events.append(event)
                on_event(server, event)
        except RemoteProtocolError:
            await stream.send_all(server.data_to_send())
        finally:
            await stream.aclose()

    with trio.fail_after(BUDGET):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve)
            result = await trio.run_process(
                argv(port), capture_stdout=True, capture_stderr=True, check=False
            )
            output.append(result.stdout + result.stderr)
            nursery.cancel_scope.cancel()
    for listener in listeners:
        await listener.aclose()
    return events, b"".join(output).decode(errors="replace"), server


def answer_the_component(server: ComponentServerConnection, event: Event) -> None:
    """Answer the component's message: slixmpp's peer exits on the first it gets."""
    if isinstance(event, StanzaReceived):
        reply = make_message(
            f"bot@{DOMAIN}/x", "hello from xmpp_sansio", from_="juliet@localhost/balcony"
        )
        server.send(reply)


async def run_slixmpp_against_our_server(
    secret: str,
) -> tuple[list[Event], str, ComponentServerConnection]:
    return await run_against_our_server(
        lambda port: [sys.executable, str(PEER), DOMAIN, secret, "127.0.0.1", str(port)],
        answer_the_component,
    )


async def test_slixmpp_component_handshakes_and_exchanges_messages_with_our_server() -> None:
    require_slixmpp()
    events, output, server = await run_slixmpp_against_our_server(SECRET)
    assert "SESSION" in output, output
    assert Authenticated(JID.parse(DOMAIN), HANDSHAKE) in events
    stanzas = [e.element for e in events if isinstance(e, StanzaReceived)]
    assert stanzas, output
    message = parse_stanza(stanzas[0])
    assert message.body == "hello from slixmpp"
    assert str(message.from_) == f"bot@{DOMAIN}/x"
    assert str(message.to) == "juliet@localhost"
    assert "GOT juliet@localhost/balcony hello from xmpp_sansio" in output, output
    assert server.state in (State.READY, State.CLOSED)  # slixmpp hung up when done


async def test_slixmpp_component_with_a_wrong_secret_gets_not_authorized() -> None:
    require_slixmpp()
    events, output, server = await run_slixmpp_against_our_server("wrong")
    assert "SESSION" not in output and "DISCONNECTED" in output, output
    assert server.state is State.ERROR
    assert not any(isinstance(e, (Authenticated, StanzaReceived)) for e in events)


# --- our component role, Prosody's component port ------------------------------------------

PROSODY_CONFIG = """\
-- Generated by tests/trio/test_component_interop.py.
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = {{ info = "{dir}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ {component} }}
component_interface = "127.0.0.1"
modules_enabled = {{ "disco"; "ping"; }}
modules_disabled = {{ "s2s"; }}
authentication = "internal_hashed"
storage = "internal"

VirtualHost "localhost"

Component "{domain}"
    component_secret = "{secret}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def prosody(tmp_path: Path) -> Iterator[int]:
    """Prosody 0.12 with one component, in the foreground; yields its component port."""
    binary = require("prosody")
    component = free_port()
    (tmp_path / "data").mkdir()
    config = tmp_path / "prosody.cfg.lua"
    config.write_text(
        PROSODY_CONFIG.format(
            dir=tmp_path, c2s=free_port(), component=component, domain=DOMAIN, secret=SECRET
        )
    )
    proc = subprocess.Popen(
        [binary, "--config", str(config), "-F"],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # Prosody starts in well under a second; a bound of 20 s
            if proc.poll() is not None:
                log = (tmp_path / "prosody.log").read_text(errors="replace")
                pytest.fail(f"prosody exited: {log}")
            try:
                socket.create_connection(("127.0.0.1", component), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)  # waiting for the port to open, bounded; not a timing assumption
        else:
            pytest.fail("prosody did not listen on its component port")
        yield component
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def run_component(port: int, secret: str, ask: bool) -> tuple[list[Event], Conn]:
    conn = ComponentClientConnection(ComponentClientConfig(domain=DOMAIN, secret=secret))
    conn.start()
    events: list[Event] = []
    with trio.fail_after(BUDGET):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            async for event in pump(stream, conn):
                events.append(event)
                if isinstance(event, Authenticated) and ask:
                    # XEP-0199 ping to the server's host, from the component.
                    ping = Element(f"{{{ns.PING}}}ping")
                    conn.send(make_iq(IqType.GET, "p1", ping, "localhost", f"bot@{DOMAIN}"))
                if isinstance(event, StanzaReceived):
                    conn.close()
        except RemoteProtocolError:
            pass
        finally:
            await stream.aclose()
    return events, conn


async def test_our_component_handshakes_with_prosody_and_gets_its_ping_answered(
    prosody: int,
) -> None:
    events, conn = await run_component(prosody, SECRET, ask=True)
    assert conn.state is State.CLOSED  # we closed after the answer; Prosody closed too
    assert Authenticated(JID.parse(DOMAIN), HANDSHAKE) in events
    (answer,) = [parse_stanza(e.element) for e in events if isinstance(e, StanzaReceived)]
    assert answer.type is IqType.RESULT and answer.id == "p1"
    assert str(answer.from_) == "localhost" and str(answer.to) == f"bot@{DOMAIN}"


async def test_prosody_refuses_our_component_with_a_wrong_secret(prosody: int) -> None:
    events, conn = await run_component(prosody, "wrong", ask=False)
    errors = [e for e in events if isinstance(e, StreamErrorReceived)]
    assert errors and errors[0].condition is StreamErrorCondition.NOT_AUTHORIZED
    assert not any(isinstance(e, Authenticated) for e in events)
    assert conn.state is State.CLOSED


# --- open_component (xmpp_trio) against Prosody ----------------------------------------------


async def test_open_component_pings_prosody_and_closes(prosody: int) -> None:
    async with open_component(DOMAIN, SECRET, host="127.0.0.1", port=prosody) as gw:
        assert gw.domain == DOMAIN
        ping = Element(f"{{{ns.PING}}}ping")
        await gw.send(make_iq(IqType.GET, "p2", ping, "localhost", f"echo@{DOMAIN}"))
        with trio.fail_after(BUDGET):
            answer = parse_stanza(await gw.receive())
        assert answer.type is IqType.RESULT and answer.id == "p2"
        assert str(answer.to) == f"echo@{DOMAIN}"
    assert gw.closed.is_set() and gw.error is None


async def test_open_component_with_a_wrong_secret_raises_not_authorized(prosody: int) -> None:
    with pytest.raises(StreamError) as info:
        async with open_component(DOMAIN, "wrong", host="127.0.0.1", port=prosody):
            raise AssertionError("the handshake must not succeed")
    assert info.value.condition is StreamErrorCondition.NOT_AUTHORIZED


async def test_open_component_for_a_domain_prosody_does_not_serve_raises_host_unknown(
    prosody: int,
) -> None:
    with pytest.raises(StreamError) as info:
        async with open_component("nope.localhost", SECRET, host="127.0.0.1", port=prosody):
            raise AssertionError("the handshake must not succeed")
    assert info.value.condition is StreamErrorCondition.HOST_UNKNOWN


# --- examples/echo_component.py against our server role -------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo_component.py"


async def test_the_echo_component_example_answers_messages_and_refuses_iqs() -> None:
    """The seed's echo bot as a component: "You sent: ..." from the address the
    message went to; an iq request gets service-unavailable; it exits when the
    server closes the stream."""

    def talk(server: ComponentServerConnection, event: Event) -> None:
        if isinstance(event, Authenticated):
            hello = make_message(f"echo@{DOMAIN}", "hi", MessageType.CHAT, "juliet@localhost/b")
            server.send(hello)
            ping = Element(f"{{{ns.PING}}}ping")
            server.send(make_iq(IqType.GET, "q1", ping, DOMAIN, "juliet@localhost/b"))
        elif isinstance(event, StanzaReceived) and event.element.tag == ns.IQ_TAG:
            server.close()  # both answers are in: the example stops

    env_argv = [sys.executable, str(EXAMPLE), DOMAIN, "--secret", SECRET, "--host", "127.0.0.1"]
    events, output, _server = await run_against_our_server(
        lambda port: [*env_argv, "--port", str(port)], talk
    )
    answers = [parse_stanza(e.element) for e in events if isinstance(e, StanzaReceived)]
    assert len(answers) == 2, output
    message, iq = answers
    assert isinstance(message, Message) and message.body == "You sent: hi", output
    assert str(message.from_) == f"echo@{DOMAIN}" and str(message.to) == "juliet@localhost/b"
    assert isinstance(iq, Iq) and iq.type is IqType.ERROR and iq.id == "q1"
    assert iq.error is not None
    assert iq.error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE
