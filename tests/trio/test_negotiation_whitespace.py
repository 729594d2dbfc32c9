"""Whitespace between top-level elements during negotiation, on the wire.

RFC 6120 §11.7 lets either side send whitespace between top-level elements.
Clients such as go-sendxmpp end every element with a newline, so the newline
after ``<starttls/>`` precedes the TLS handshake and the one after ``</auth>``
precedes the restarted stream's header. Whitespace-only leftovers are
discarded; anything else after ``<starttls/>`` is still refused as an
injection (CVE-2011-0411 style, see test_security.py).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Awaitable, Callable

import pytest
import test_security
import trio
import trio.testing
import trustme
from conftest import PASSWORDS, RunningServer
from test_security import (
    FAKE_HEADER,
    FOOTER,
    HEADER,
    HEADER_NO_DECL,
    STARTTLS,
    WAIT,
    Wire,
    connect,
    internal_errors,
    stream_error,
)

from xmpp_trio.client import ConnectionFailed, open_client

PROCEED = b'<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>'
STARTTLS_SENT = b'<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>'
TLS_FEATURES = (
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
    b"</starttls></stream:features>"
)
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = (
    b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    b"<resource>ws</resource></bind></iq>"
)

start_server = test_security.start_server  # the fixture, with limits changed


def plain_auth(local: str) -> bytes:
    credentials = base64.b64encode(b"\0" + local.encode() + b"\0" + PASSWORDS[local].encode())
    return f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>".encode() + credentials + b"</auth>"


async def tls_after_proceed(wire: Wire, server: RunningServer) -> None:
    await wire.read_until(PROCEED)
    tls = trio.SSLStream(wire.stream, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await tls.do_handshake()
    wire.stream = tls


async def direct_tls_wire(server: RunningServer) -> Wire:
    raw = await trio.open_tcp_stream("127.0.0.1", server.directtls_port)
    tls = trio.SSLStream(raw, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await tls.do_handshake()
    return Wire(tls)


async def login_and_bind(wire: Wire, auth_then_header: list[bytes], space: bytes) -> None:
    """Open the (TLS) stream, authenticate with PLAIN writing ``auth_then_header``
    (one write per item), bind with ``space`` around the iq: the bound JID comes back."""
    await wire.send(HEADER + space)
    await wire.read_until(b"</stream:features>")
    for data in auth_then_header:
        await wire.send(data)
    answer = await wire.read_until(b"</stream:features>")
    assert b"<success" in answer, answer
    assert stream_error(answer) is None, answer
    await wire.send(space + BIND + space)
    answer = await wire.read_until(b"</iq>")
    assert b"<jid>juliet@localhost/ws</jid>" in answer, answer


async def test_newline_after_starttls_in_the_same_write_then_login_succeeds(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """go-sendxmpp writes ``<starttls/>\\n``: the newline is discarded, TLS starts."""
    wire = await connect(server.starttls_port)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(STARTTLS + b"\n")
    await tls_after_proceed(wire, server)
    await login_and_bind(wire, [plain_auth("juliet") + b"\n" + HEADER], b"\n")
    assert internal_errors(caplog) == []


async def test_whitespace_after_starttls_in_its_own_write_then_login_succeeds(
    server: RunningServer,
) -> None:
    """The whitespace arrives after the server started the TLS handshake
    (``Wire.send`` waits until the server is blocked): it precedes the
    ClientHello on the socket and is discarded there."""
    wire = await connect(server.starttls_port)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(STARTTLS)
    await wire.send(b" \r\n\t")
    await tls_after_proceed(wire, server)
    await login_and_bind(wire, [plain_auth("juliet"), b"\r\n", HEADER], b" ")


async def test_newline_after_auth_and_header_in_one_write_logs_in_over_direct_tls(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``</auth>\\n`` and the restarted stream's header, with its XML
    declaration, in one write: the newline is the old stream's."""
    wire = await direct_tls_wire(server)
    await login_and_bind(wire, [plain_auth("juliet") + b"\n" + HEADER], b"\n")
    assert internal_errors(caplog) == []


async def test_newline_after_auth_in_its_own_write_logs_in_over_direct_tls(
    server: RunningServer,
) -> None:
    wire = await direct_tls_wire(server)
    await login_and_bind(wire, [plain_auth("juliet"), b"\n", b"\t" + HEADER], b"\r\n")


async def test_whitespace_keepalives_between_every_negotiation_element_change_nothing(
    server: RunningServer,
) -> None:
    space = b" \n\r\n\t "
    wire = await connect(server.starttls_port)
    await wire.send(HEADER + space)
    await wire.read_until(b"</stream:features>")
    await wire.send(space)
    await wire.send(space + STARTTLS + space)
    await tls_after_proceed(wire, server)
    await wire.send(space)
    await login_and_bind(wire, [space + plain_auth("juliet") + space + HEADER_NO_DECL], space)


async def test_text_after_whitespace_after_starttls_is_still_refused_as_injection(
    server: RunningServer,
) -> None:
    wire = await connect(server.starttls_port)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(STARTTLS + b"\n " + plain_auth("juliet"))
    data = await wire.read_to_end()
    assert stream_error(data) == "policy-violation"
    assert data.endswith(FOOTER)
    assert b"<success" not in data and b"<failure" not in data


async def test_whitespace_flood_after_starttls_closes_without_a_handshake(
    start_server: Callable[..., Awaitable[RunningServer]], caplog: pytest.LogCaptureFixture
) -> None:
    """More whitespace than ``max_stanza_size_preauth`` ahead of the ClientHello:
    the connection is closed (nothing can be said: the client waits for TLS)."""
    server = await start_server(max_stanza_size_preauth=1024)
    wire = await connect(server.starttls_port)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(STARTTLS)
    await wire.read_until(PROCEED)
    await wire.send(b"\n" * 4096)
    assert await wire.read_to_end() == b""
    assert wire.eof
    assert internal_errors(caplog) == []


async def test_whitespace_flood_before_the_restarted_header_is_policy_violation(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await start_server(max_stanza_size=10000)
    wire = await direct_tls_wire(server)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(plain_auth("juliet") + b"\n" * 20000)
    data = await wire.read_to_end()
    assert b"<success" in data
    assert stream_error(data) == "policy-violation"
    assert data.endswith(FOOTER)


@pytest.mark.parametrize("same_write", [True, False], ids=["same-write", "own-write"])
async def test_client_drops_whitespace_a_server_sends_after_proceed(
    nursery: trio.Nursery, ca: trustme.CA, same_write: bool
) -> None:
    """The mirror case: a server writes ``<proceed/>\\n``. In its own write the
    newline reaches the client after it sent its ClientHello (the server waits
    until the client is blocked): it must not be read as the server's first TLS
    record. The client then opens the restarted stream inside TLS."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    restarted = bytearray()
    done = trio.Event()

    async def fake_server(stream: trio.SocketStream) -> None:
        wire = Wire(stream)
        try:
            await wire.read_until(b">")  # the client's header
            await stream.send_all(FAKE_HEADER + TLS_FEATURES)
            await wire.read_until(STARTTLS_SENT)
            if same_write:
                await stream.send_all(PROCEED + b"\n")
            else:
                await stream.send_all(PROCEED)
                await trio.testing.wait_all_tasks_blocked()
                await stream.send_all(b"\r\n")
            tls = trio.SSLStream(stream, server_ctx, server_side=True)
            await tls.do_handshake()
            while b">" not in restarted and (chunk := await tls.receive_some(65536)):
                restarted.extend(chunk)
        finally:
            done.set()
            await trio.aclose_forcefully(stream)

    listeners = await nursery.start(trio.serve_tcp, fake_server, 0)
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(WAIT), pytest.raises(ConnectionFailed):
        async with open_client(
            "juliet@localhost", "x", host="127.0.0.1", port=port, ssl_context=client_ctx
        ):
            pass
    with trio.fail_after(WAIT):
        await done.wait()
    assert restarted.startswith(b"<?xml version='1.0'?><stream:stream"), bytes(restarted)
    assert b'to="localhost"' in restarted
