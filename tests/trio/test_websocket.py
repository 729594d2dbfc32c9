"""XMPP over WebSocket (RFC 7395) on the real listener (issue 18): the same
negotiation and SASL as TCP, parametrised over both; the handshake's
refusals; bad framing answered with its stream error or close code; the
``see-other-uri`` redirect. The XEP-0198 suite runs over both transports in
test_sm_integration.py; JavaScript clients in test_websocket_js.py."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from http_helpers import (
    RawWebSocket,
    exchange,
    get,
    open_stream,
    open_websocket,
    read_response,
    upgrade,
)

from xmpp_trio.client import AuthenticationError, open_client
from xmpp_trio.config import HTTPConfig, LimitsConfig, ListenerConfig, ServerConfig

WAIT = 15.0
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
OPEN = f'<open xmlns="{FRAMING}" to="localhost" version="1.0"/>'


@pytest.fixture(params=["tcp", "websocket"])
def server(server: RunningServer, request: pytest.FixtureRequest) -> RunningServer:
    return dataclasses.replace(server, transport=request.param)


def chat(to: str, body: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"to": to, "type": "chat"})
    ET.SubElement(msg, "{jabber:client}body").text = body
    return msg


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_each_mechanism_logs_in_and_messages_flow(
    server: RunningServer, mechanism: str
) -> None:
    """RFC 6120 §6 and §8 over either transport: SASL, bind, a message each way."""
    kw = server.client_options()
    async with (
        open_client(
            "juliet@localhost/balcony", PASSWORDS["juliet"], mechanisms=(mechanism,), **kw
        ) as juliet,
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **kw) as romeo,
    ):
        assert str(juliet.jid) == "juliet@localhost/balcony"
        await juliet.send(chat("romeo@localhost/orchard", "over " + server.transport))
        with trio.fail_after(WAIT):
            got = await romeo.receive()
        assert got.findtext("{jabber:client}body") == "over " + server.transport
        assert got.get("from") == "juliet@localhost/balcony"


async def test_wrong_password_is_not_authorized(server: RunningServer) -> None:
    with pytest.raises(AuthenticationError) as failed:
        async with open_client("juliet@localhost", "wrong", **server.client_options()):
            pass
    assert failed.value.condition == "not-authorized"


async def test_a_websocket_stream_offers_sasl_without_starttls_or_channel_binding(
    ws_server: RunningServer,
) -> None:
    """RFC 7395 §3.3: TLS belongs to the WebSocket (no STARTTLS); no channel
    binding is offered (a proxy may terminate the TLS)."""
    server = ws_server
    ws, response = await open_websocket(server.https_port or 0, server.client_context())
    assert response.status == 101
    assert response.headers["sec-websocket-protocol"] == "xmpp"
    await ws.send_text(OPEN)
    opened, features = await ws.receive(), await ws.receive()
    assert opened is not None and opened.startswith("<open ") and FRAMING in opened
    assert 'from="localhost"' in opened
    assert features is not None and "<stream:features" in features
    assert 'xmlns:stream="http://etherx.jabber.org/streams"' in features
    assert "starttls" not in features
    assert "<mechanism>SCRAM-SHA-256</mechanism>" in features
    assert "-PLUS" not in features
    await ws.send_text(f'<close xmlns="{FRAMING}"/>')
    assert re.fullmatch(f'<close xmlns="{FRAMING}" ?/>', (await ws.until("<close"))[-1])
    await ws.stream.aclose()


# -- bad input on the WebSocket: defined answers, nothing else disturbed ----------


@pytest.fixture
async def ws_server(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    request: pytest.FixtureRequest,
) -> RunningServer:
    """The real server with https and plain http listeners; ``[http]`` (and
    ``limits``) from the indirect parameter."""
    settings: dict[str, Any] = dict(getattr(request, "param", {}))
    limits = settings.pop("limits", {})
    config = dataclasses.replace(
        server_config,
        listeners=(*server_config.listeners, ListenerConfig("http", "127.0.0.1", 0)),
        http=HTTPConfig(**settings),
        limits=dataclasses.replace(LimitsConfig(), **limits),
    )
    return await start_running(config, ca, tmp_path, nursery)


async def logs_in(server: RunningServer) -> bool:
    """A good client still gets in: the bad input disturbed nothing."""
    options = dataclasses.replace(server, transport="websocket").client_options()
    async with open_client("romeo@localhost", PASSWORDS["romeo"], **options) as romeo:
        return str(romeo.jid).startswith("romeo@localhost/")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (upgrade(protocol=None), 400),
        (upgrade(protocol="chat, mqtt"), 400),
        (get("/xmpp-websocket"), 426),
        (upgrade().replace(b"Version: 13", b"Version: 8"), 426),
        (upgrade().replace(b"Sec-WebSocket-Key", b"X-Nothing"), 400),
        (b"POST /xmpp-websocket HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    ],
    ids=["no-subprotocol", "other-subprotocols", "no-upgrade", "version-8", "no-key", "post"],
)
async def test_bad_handshakes_get_their_http_status(
    ws_server: RunningServer, request_bytes: bytes, status: int
) -> None:
    response = await exchange(ws_server.https_port or 0, request_bytes, ws_server.client_context())
    assert response.status == status
    assert "sec-websocket-accept" not in response.headers
    assert await logs_in(ws_server)


@pytest.mark.parametrize(
    "ws_server", [{"allowed_origins": ("https://chat.example",)}], indirect=True
)
async def test_origins_not_allowed_get_403(ws_server: RunningServer) -> None:
    port, tls = ws_server.https_port or 0, ws_server.client_context()
    _ws, refused = await open_websocket(port, tls, origin="https://evil.example")
    assert refused.status == 403
    ws, accepted = await open_websocket(port, tls, origin="https://chat.example")
    assert accepted.status == 101
    await ws.stream.aclose()
    _ws, headless = await open_websocket(port, tls)  # no Origin: not a browser
    assert headless.status == 101


async def test_plain_http_refuses_websocket_unless_configured(ws_server: RunningServer) -> None:
    """RFC 7395 §9: wss. On plain http, only with websocket_on_plain_http."""
    _ws, refused = await open_websocket(ws_server.http_port or 0)
    assert refused.status == 403
    discovery = await exchange(ws_server.http_port or 0, get("/.well-known/host-meta"))
    assert discovery.status == 200


@pytest.mark.parametrize("ws_server", [{"websocket_on_plain_http": True}], indirect=True)
async def test_plain_http_websocket_when_configured_is_treated_as_secure(
    ws_server: RunningServer,
) -> None:
    ws, accepted = await open_websocket(ws_server.http_port or 0)
    assert accepted.status == 101
    await ws.send_text(OPEN)
    messages = await ws.until("</stream:features>")
    assert "<mechanism>PLAIN</mechanism>" in messages[-1]
    assert "starttls" not in messages[-1]


async def _opened(server: RunningServer) -> RawWebSocket:
    ws, response = await open_websocket(server.https_port or 0, server.client_context())
    assert response.status == 101
    await ws.send_text(OPEN)
    await ws.until("</stream:features>")
    return ws


@pytest.mark.parametrize(
    ("message", "condition"),
    [
        ("<message><body>unclosed</message>", "not-well-formed"),
        ("<a/><b/>", "not-well-formed"),
        ("plain text", "not-well-formed"),
        (
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>",
            "not-well-formed",
        ),
        ("<open xmlns='jabber:client' to='localhost'/>", "invalid-namespace"),
        ("<iq type='get' id='1'><q xmlns='x'>" + "a" * 20000 + "</q></iq>", "policy-violation"),
    ],
    ids=["unclosed", "two-elements", "text", "tcp-header", "open-namespace", "oversized"],
)
async def test_bad_framing_gets_its_stream_error_and_a_close(
    ws_server: RunningServer, message: str, condition: str
) -> None:
    """RFC 7395 §3.3.3: one complete element per message; otherwise the
    stream error (RFC 6120 §4.9.3), then ``<close/>`` (§3.6)."""
    ws = await _opened(ws_server)
    await ws.send_text(message)
    seen = await ws.until("<close")
    assert any(f"<{condition} " in m or f"<{condition}/" in m for m in seen), seen
    assert any("<stream:error" in m and "xmlns:stream=" in m for m in seen)
    assert await ws.receive() is None  # then the WebSocket closes
    assert await logs_in(ws_server)


async def test_binary_messages_close_the_websocket_with_1003(ws_server: RunningServer) -> None:
    ws = await _opened(ws_server)
    await ws.send_bytes(b"<presence/>")
    assert await ws.receive() is None
    assert ws.close_code == 1003  # RFC 6455 §7.4.1: a type it cannot accept
    assert await logs_in(ws_server)


async def test_a_client_close_is_answered_with_close(ws_server: RunningServer) -> None:
    ws = await _opened(ws_server)
    await ws.send_text(f'<close xmlns="{FRAMING}"/>')
    seen = await ws.until("<close")
    assert re.fullmatch(f'<close xmlns="{FRAMING}" ?/>', seen[-1])
    assert await ws.receive() is None  # the WebSocket closes after the stream


@pytest.mark.parametrize("ws_server", [{"limits": {"negotiation_timeout": 1.0}}], indirect=True)
async def test_silent_websocket_client_gets_connection_timeout(ws_server: RunningServer) -> None:
    ws, _ = await open_websocket(ws_server.https_port or 0, ws_server.client_context())
    await ws.send_text(OPEN)
    seen = await ws.until("<close")
    assert any("<connection-timeout" in m for m in seen)


@pytest.mark.parametrize(
    "ws_server", [{"see_other_uri": "wss://other.example/xmpp-websocket"}], indirect=True
)
async def test_see_other_uri_sends_the_client_elsewhere(ws_server: RunningServer) -> None:
    """RFC 7395 §3.6.1: ``<open/>`` then ``<close see-other-uri=.../>``."""
    ws, _ = await open_websocket(ws_server.https_port or 0, ws_server.client_context())
    await ws.send_text(OPEN)
    opened, closed = await ws.receive(), await ws.receive()
    assert opened is not None and opened.startswith("<open ")
    assert closed is not None and closed.startswith("<close ") and FRAMING in closed
    assert 'see-other-uri="wss://other.example/xmpp-websocket"' in closed
    assert await ws.receive() is None


async def test_the_websocket_upgrade_keeps_bytes_sent_with_the_handshake(
    ws_server: RunningServer,
) -> None:
    """Frames pipelined right behind the upgrade request are not lost."""
    from wsproto import ConnectionType
    from wsproto.connection import Connection
    from wsproto.events import TextMessage

    frames = Connection(ConnectionType.CLIENT).send(TextMessage(data=OPEN))
    stream = await open_stream(ws_server.https_port or 0, ws_server.client_context())
    await stream.send_all(upgrade() + frames)
    response = await read_response(stream)
    assert response.status == 101
    ws = RawWebSocket(stream, response.rest)
    assert "<stream:features" in (await ws.until("</stream:features>"))[-1]
    await stream.aclose()


@pytest.mark.parametrize("ws_server", [{"max_connections_per_ip": 2}], indirect=True)
async def test_upgraded_connections_leave_the_http_connection_limits(
    ws_server: RunningServer,
) -> None:
    """Once upgraded, a connection is an XMPP stream (the XMPP limits count
    it): more streams than the HTTP per-address limit, and HTTP still answers."""
    streams = [await _opened(ws_server) for _ in range(3)]
    port, tls = ws_server.https_port or 0, ws_server.client_context()
    assert (await exchange(port, get("/.well-known/host-meta"), tls)).status == 200
    for ws in streams:
        await ws.stream.aclose()


async def test_the_persistent_client_resumes_its_session_over_websocket(
    ws_server: RunningServer,
) -> None:
    """``open_persistent_client(..., transport="websocket", url=...)``: the
    connection breaks, the client reconnects over WebSocket and resumes the
    XEP-0198 session, with the message sent meanwhile."""
    from xmpp_trio.persistent import open_persistent_client

    options = dataclasses.replace(ws_server, transport="websocket").client_options()
    balcony = "juliet@localhost/balcony"
    async with (
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **options) as romeo,
        open_persistent_client(
            balcony, PASSWORDS["juliet"], backoff_base=0.05, backoff_cap=0.5, **options
        ) as pc,
    ):
        messages = pc.messages()
        with trio.fail_after(WAIT):
            await pc.wait_connected()
        old = pc.client
        await old.abort()  # no <close/>: the server keeps the session
        await romeo.send(chat(balcony, "while away"))
        with trio.fail_after(WAIT):
            await pc.wait_disconnected()
            await pc.wait_connected()
            assert pc.resumed and pc.client is not old
            got = await messages.__anext__()
        assert got.findtext("{jabber:client}body") == "while away"
