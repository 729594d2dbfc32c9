"""SASL2 (XEP-0388) on the real server over direct TLS with ``sasl2 = true``:
``<authenticate/>`` with PLAIN logs in without a stream restart, the
post-authentication features follow ``<success/>`` at once, and resource
binding and a ping work on the same stream; off by default."""

from __future__ import annotations

import base64
import dataclasses
import re
from xml.etree.ElementTree import Element, SubElement

import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from test_auth_counters import tls_wire
from test_security import HEADER, WAIT, Wire

from xmpp_trio.config import ServerConfig

SASL2 = "urn:xmpp:sasl:2"


def authenticate(mechanism: str, message: bytes) -> bytes:
    return (
        f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'>"
        f"<initial-response>{base64.b64encode(message).decode()}</initial-response>"
        "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'>"
        "<software>AwesomeXMPP</software></user-agent></authenticate>"
    ).encode()


async def test_sasl2_is_offered_by_default_beside_rfc6120_sasl(server: RunningServer) -> None:
    wire = await tls_wire(server)  # reads the pre-authentication features
    assert b'<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">' in wire.data
    assert b'<authentication xmlns="urn:xmpp:sasl:2">' in wire.data


async def test_sasl2_false_offers_only_rfc6120_sasl(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    config = dataclasses.replace(server_config, sasl2=False)
    server = await start_running(config, ca, tmp_path, nursery)  # type: ignore[arg-type]
    wire = await tls_wire(server)
    assert b"<mechanism>PLAIN</mechanism>" in wire.data
    assert b"urn:xmpp:sasl:2" not in wire.data


async def test_plain_over_sasl2_logs_in_binds_and_pings_without_a_restart(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    config = dataclasses.replace(server_config, sasl2=True)
    server = await start_running(config, ca, tmp_path, nursery)  # type: ignore[arg-type]
    raw = await trio.open_tcp_stream("127.0.0.1", server.directtls_port)
    stream = trio.SSLStream(raw, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await stream.do_handshake()
    wire = Wire(stream)
    await wire.send(HEADER)
    features = await wire.read_until(b"</stream:features>")
    assert b"urn:xmpp:sasl:2" in features and b"<mechanism>PLAIN</mechanism>" in features
    await wire.send(authenticate("PLAIN", f"\x00juliet\x00{PASSWORDS['juliet']}".encode()))
    data = await wire.read_until(b"</stream:features>")
    assert re.search(
        rb"<success xmlns=.urn:xmpp:sasl:2.>\s*<authorization-identifier>juliet@localhost"
        rb"</authorization-identifier>\s*</success>",
        data,
    ), data
    after = data[data.index(b"</success>") :]
    assert b"<stream:stream" not in after and b"urn:ietf:params:xml:ns:xmpp-bind" in after
    await wire.send(
        b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<resource>balcony</resource></bind></iq>"
    )
    bound = await wire.read_until(b"</iq>")
    assert b"<jid>juliet@localhost/balcony</jid>" in bound, bound
    wire.start_parsing()
    ping = Element("{jabber:client}iq", {"type": "get", "to": "localhost"})
    SubElement(ping, "{urn:xmpp:ping}ping")
    assert (await wire.request(ping)).get("type") == "result"


async def test_a_wrong_password_over_sasl2_fails_and_keeps_the_stream(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    config = dataclasses.replace(server_config, sasl2=True)
    server = await start_running(config, ca, tmp_path, nursery)  # type: ignore[arg-type]
    wire = await tls_wire(server)
    await wire.send(authenticate("PLAIN", b"\x00juliet\x00wrong"))
    data = await wire.read_until(b"</failure>")
    assert b"urn:xmpp:sasl:2" in data and b"<not-authorized" in data, data
    await wire.send(authenticate("PLAIN", f"\x00juliet\x00{PASSWORDS['juliet']}".encode()))
    assert b"juliet@localhost" in await wire.read_until(b"</success>")
