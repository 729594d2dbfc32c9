"""The hosts table on the wire: the echo service host answers at
``echo.localhost`` (issue 11's toy service), and an anonymous-only host
``anon.localhost`` lets slixmpp log in with SASL ANONYMOUS and nothing else
(issue 10 item 4), beside ``localhost`` with its passwords."""

from __future__ import annotations

import dataclasses
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from test_sasl_interop import run_login
from test_security import HEADER, Wire

from xmpp_trio.client import open_client
from xmpp_trio.config import ServerConfig, TLSConfig

WAIT = 15.0
C = "{jabber:client}"


@pytest.fixture
async def hosts_server(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[RunningServer]:
    """The usual test server, also hosting anon.localhost (anonymous only) and
    the echo service, with a certificate for both account hosts."""
    cert = ca.issue_cert("localhost", "anon.localhost", "127.0.0.1")
    cert_path, key_path = tmp_path / "hosts-cert.pem", tmp_path / "hosts-key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    config = dataclasses.replace(
        server_config,
        anonymous_domains=("anon.localhost",),
        echo_service=True,
        tls=TLSConfig(cert=cert_path, key=key_path),
    )
    yield await start_running(config, ca, tmp_path, nursery)


async def test_the_echo_service_answers_at_its_subdomain(hosts_server: RunningServer) -> None:
    async with open_client(
        "romeo@localhost",
        PASSWORDS["romeo"],
        host="127.0.0.1",
        port=hosts_server.starttls_port,
        ssl_context=hosts_server.client_context(),
    ) as romeo:
        message = ET.Element(C + "message", {"to": "echo.localhost", "type": "chat"})
        ET.SubElement(message, C + "body").text = "wherefore art thou"
        await romeo.send(message)
        with trio.fail_after(WAIT):
            async for stanza in romeo:
                if stanza.tag == C + "message":
                    break
        assert stanza.get("from") == "echo.localhost"
        assert stanza.findtext(C + "body") == "wherefore art thou"
        items = ET.Element(C + "iq", {"type": "get", "to": "localhost"})
        ET.SubElement(items, "{http://jabber.org/protocol/disco#items}query")
        answer = await romeo.request(items)
        jids = [
            item.get("jid") for item in answer.iter("{http://jabber.org/protocol/disco#items}item")
        ]
        assert "echo.localhost" in jids


@pytest.mark.parametrize(
    ("domain", "anonymous_only"), [("anon.localhost", True), ("localhost", False)]
)
async def test_an_anonymous_host_offers_only_anonymous(
    hosts_server: RunningServer, domain: str, anonymous_only: bool
) -> None:
    raw = await trio.open_tcp_stream("127.0.0.1", hosts_server.directtls_port)
    stream = trio.SSLStream(raw, hosts_server.client_context(), server_hostname=domain)
    with trio.fail_after(WAIT):
        await stream.do_handshake()
    wire = Wire(stream)
    await wire.send(HEADER.replace(b"to='localhost'", f"to='{domain}'".encode()))
    features = await wire.read_until(b"</stream:features>")
    mechanisms = re.findall(rb"<mechanism>([^<]+)</mechanism>", features)
    if anonymous_only:
        assert set(mechanisms) == {b"ANONYMOUS"}  # RFC 6120's list and SASL2's
    else:
        assert b"ANONYMOUS" not in mechanisms and b"SCRAM-SHA-256" in mechanisms
    await wire.aclose()


async def test_slixmpp_logs_in_anonymously_on_the_anonymous_host(
    hosts_server: RunningServer,
) -> None:
    """slixmpp (PyPI) with default settings, a JID without localpart and no
    password: it picks ANONYMOUS and gets a fresh JID at anon.localhost."""
    output = await run_login(hosts_server, sys.executable, "anon.localhost", "")
    session = re.search(r"SESSION (\S+) MECH (\S+)", output)
    assert session is not None, output
    jid, mechanism = session.groups()
    assert mechanism == "ANONYMOUS"
    assert jid.split("/")[0].endswith("@anon.localhost")
    assert "FAILED" not in output
