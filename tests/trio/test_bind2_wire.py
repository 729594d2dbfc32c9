"""Bind 2 (XEP-0386) and XEP-0198 inline in SASL2, on the real server over
direct TLS with ``sasl2 = true``: one ``<authenticate/>`` logs in, binds
``tag/suffix``, enables stream management and carbons; carbons of another
session's message arrive; after a dropped connection a second
``<authenticate/>`` with ``<resume/>`` gets ``<resumed/>`` inside
``<success/>`` and the unacknowledged message again."""

from __future__ import annotations

import base64
import dataclasses
import re

import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from test_security import HEADER, WAIT, Wire

from xmpp_trio.config import ServerConfig

SASL2 = "urn:xmpp:sasl:2"
BIND_ALL = (
    "<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag>"
    "<enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"
)


def authenticate(user: str, extra: str) -> bytes:
    message = base64.b64encode(f"\x00{user}\x00{PASSWORDS[user]}".encode()).decode()
    return (
        f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'>"
        f"<initial-response>{message}</initial-response>"
        "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'>"
        f"<software>AwesomeXMPP</software></user-agent>{extra}</authenticate>"
    ).encode()


async def connect(server: RunningServer) -> tuple[Wire, bytes]:
    raw = await trio.open_tcp_stream("127.0.0.1", server.directtls_port)
    stream = trio.SSLStream(raw, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await stream.do_handshake()
    wire = Wire(stream)
    await wire.send(HEADER)
    return wire, await wire.read_until(b"</stream:features>")


async def login(server: RunningServer, user: str, extra: str) -> tuple[Wire, bytes]:
    wire, features = await connect(server)
    assert b"urn:xmpp:bind:0" in features
    await wire.send(authenticate(user, extra))
    return wire, await wire.read_until(b"</stream:features>")


async def test_bind2_binds_enables_sm_and_carbons_and_resumes_inline(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    config = dataclasses.replace(server_config, sasl2=True)
    server = await start_running(config, ca, tmp_path, nursery)  # type: ignore[arg-type]
    first, success = await login(server, "juliet", BIND_ALL)
    jid = re.search(rb"<authorization-identifier>([^<]+)</authorization-identifier>", success)
    assert jid and jid.group(1).startswith(b"juliet@localhost/AwesomeXMPP/"), success
    enabled = re.search(rb"<enabled [^>]*id=\"([^\"]+)\"", success)
    assert enabled and b'<bound xmlns="urn:xmpp:bind:0">' in success, success
    sm_id = enabled.group(1).decode()
    after = success[success.index(b"</success>") :]
    assert b"urn:ietf:params:xml:ns:xmpp-bind" not in after  # bound already

    # Another session of juliet sends a chat message: the first gets a <sent/> carbon.
    other, _ = await login(server, "juliet", "<bind xmlns='urn:xmpp:bind:0'/>")
    await other.send(
        b"<message type='chat' to='romeo@localhost' id='m1'><body>carbon me</body></message>"
    )
    carbon = await first.read_until(b"</message>")
    assert b'<sent xmlns="urn:xmpp:carbons:2"' in carbon and b"carbon me" in carbon, carbon
    await first.stream.aclose()  # dropped without acknowledging the carbon

    again, success = await login(
        server, "juliet", f"<resume xmlns='urn:xmpp:sm:3' previd='{sm_id}' h='0'/>" + BIND_ALL
    )
    assert re.search(rb"<resumed xmlns=\"urn:xmpp:sm:3\" [^>]*previd=\"" + sm_id.encode(), success)
    assert b"<bound" not in success, success
    assert b"carbon me" in await again.read_until(b"</message>", timeout=WAIT)
