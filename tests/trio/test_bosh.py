"""BOSH (XEP-0124/0206) at ``/http-bind`` on the real https listener (issue
19): a raw BOSH client logs in (the same SASL and bind as TCP) and chats
with a TCP client; rids, holds, waits, pauses, restarts, terminate and
inactivity as seen on the wire; bad input gets its terminal condition and
disturbs nothing else."""

from __future__ import annotations

import base64
import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from http_helpers import Response, exchange

from xmpp_trio.client import open_client
from xmpp_trio.config import HTTPConfig, LimitsConfig, ListenerConfig, ServerConfig

WAIT = 15.0
HTTPBIND = "http://jabber.org/protocol/httpbind"
XBOSH = "urn:xmpp:xbosh"


@pytest.fixture
async def bosh_server(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    request: pytest.FixtureRequest,
) -> RunningServer:
    """https and plain http listeners; ``[http]`` from the indirect parameter."""
    settings: dict[str, Any] = dict(getattr(request, "param", {}))
    limits = settings.pop("limits", {})
    config = dataclasses.replace(
        server_config,
        listeners=(*server_config.listeners, ListenerConfig("http", "127.0.0.1", 0)),
        http=HTTPConfig(**settings),
        limits=dataclasses.replace(LimitsConfig(), **limits),
    )
    return await start_running(config, ca, tmp_path, nursery)


def post(body: str, *, path: str = "/http-bind", method: str = "POST") -> bytes:
    data = body.encode()
    return (
        f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def send(server: RunningServer, body: str) -> ET.Element:
    """One request on its own connection; the response's ``<body/>``."""
    with trio.fail_after(WAIT + 70):
        response = await exchange(server.https_port or 0, post(body), server.client_context())
    assert response.status == 200, response
    assert response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.body)


class Bosh:
    """A BOSH client written for the tests: one request at a time."""

    def __init__(self, server: RunningServer, rid: int = 1000) -> None:
        self.server = server
        self.rid = rid
        self.sid = ""
        self.received: list[ET.Element] = []  # every child of every response
        self.arrived = trio.Event()  # set when a response came

    def body(self, inner: str = "", **attrs: str) -> str:
        self.rid += 1
        extra = "".join(f" {k.replace('_', ':')}='{v}'" for k, v in attrs.items())
        sid = f" sid='{self.sid}'" if self.sid else ""
        return f"<body xmlns='{HTTPBIND}' xmlns:xmpp='{XBOSH}' rid='{self.rid}'{sid}{extra}>{inner}</body>"

    async def create(self, **attrs: str) -> ET.Element:
        defaults = {"to": "localhost", "wait": "60", "hold": "1", "xmpp_version": "1.0"}
        got = await send(self.server, self.body(**(defaults | attrs)))
        self.sid = got.get("sid", "")
        return got

    async def request(self, inner: str = "", **attrs: str) -> ET.Element:
        got = await send(self.server, self.body(inner, **attrs))
        self.received += list(got)
        self.arrived.set()
        self.arrived = trio.Event()
        return got

    async def until(self, tag: str, polls: trio.Nursery) -> ET.Element:
        """Poll (one request held at a time) until a child named ``tag`` has
        arrived in any response."""
        with trio.fail_after(WAIT):
            while True:
                for child in self.received:
                    if child.tag.endswith("}" + tag):
                        self.received.remove(child)
                        return child
                arrived = self.arrived
                polls.start_soon(self.request)  # stays held: answered by later requests
                await arrived.wait()

    async def login(self, user: str = "juliet", resource: str = "web") -> str:
        created = await self.create()
        assert created.find("{http://etherx.jabber.org/streams}features") is not None
        token = base64.b64encode(f"\0{user}\0{PASSWORDS[user]}".encode()).decode()
        auth = f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        got = await self.request(auth)
        assert got[0].tag == "{urn:ietf:params:xml:ns:xmpp-sasl}success", ET.tostring(got)
        restarted = await self.request(xmpp_restart="true", to="localhost")
        assert restarted.find("{http://etherx.jabber.org/streams}features") is not None
        bind = (
            "<iq xmlns='jabber:client' type='set' id='b1'>"
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        )
        got = await self.request(bind)
        jid = got.findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid")
        assert jid is not None
        return jid


def chat(to: str, body: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"to": to, "type": "chat"})
    ET.SubElement(msg, "{jabber:client}body").text = body
    return msg


async def test_a_bosh_client_logs_in_and_chats_with_a_tcp_client(
    bosh_server: RunningServer,
) -> None:
    """XEP-0206 §5-§6: the session creation response carries the stream's
    features; SASL, restart and bind as on TCP; messages both ways."""
    bosh = Bosh(bosh_server)
    created = await bosh.create()
    assert created.get("wait") == "60" and created.get("hold") == "1"
    assert created.get("requests") == "2" and created.get("ver") == "1.11"
    assert created.get("from") == "localhost" and created.get("authid")
    assert created.get(f"{{{XBOSH}}}version") == "1.0"
    features = ET.tostring(created).decode()
    assert "SCRAM-SHA-256" in features and "starttls" not in features
    bosh = Bosh(bosh_server, rid=bosh.rid + 10)
    jid = await bosh.login()
    assert jid == "juliet@localhost/web"
    options = bosh_server.client_options()
    async with (
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **options) as romeo,
        trio.open_nursery() as nursery,
    ):
        message = (
            "<message xmlns='jabber:client' to='romeo@localhost/orchard' type='chat'>"
            "<body>from the web</body></message>"
        )
        # held (hold=1) until the next request comes: §7
        sent = trio.Event()

        async def send_message() -> None:
            await bosh.request(message)
            sent.set()

        nursery.start_soon(send_message)
        with trio.fail_after(WAIT):
            got = await romeo.receive()
        assert got.findtext("{jabber:client}body") == "from the web"
        assert got.get("from") == jid
        nursery.start_soon(bosh.request)  # the next poll: the message request is answered
        with trio.fail_after(WAIT):
            await sent.wait()
        await romeo.send(chat(jid, "to the web"))
        received = await bosh.until("message", nursery)
        assert received.findtext("{jabber:client}body") == "to the web"
        ended = await bosh.request(type="terminate")  # §13: held polls end with it
        assert ended.get("type") == "terminate"


async def test_a_repeated_rid_gets_its_cached_answer_and_a_gap_is_waited_for(
    bosh_server: RunningServer,
) -> None:
    """XEP-0124 §14.3: a rid ahead of a gap waits for it; a retransmitted
    rid gets the same response."""
    bosh = Bosh(bosh_server)
    created = await bosh.create()
    bosh.rid -= 1  # the creation request's rid again
    again = await bosh.request(to="localhost", wait="60", hold="1")
    assert ET.tostring(again) == ET.tostring(created)
    # rid+2 arrives before rid+1: held until the gap is filled, then answered in order
    async with trio.open_nursery() as nursery:
        ahead = Bosh(bosh_server, rid=bosh.rid + 1)
        ahead.sid = bosh.sid
        nursery.start_soon(ahead.request)  # rid+2
        await trio.sleep(0)
        gap = await bosh.request()  # rid+1: answered once rid+2 is held (hold=1)
        assert len(gap) == 0 and gap.get("type") is None
        nursery.cancel_scope.cancel()


async def test_unknown_sid_and_rid_out_of_window_terminate_with_item_not_found(
    bosh_server: RunningServer,
) -> None:
    """XEP-0124 §17.2 (item-not-found); a good client still gets in."""
    stray = Bosh(bosh_server)
    stray.sid = "no-such-session"
    got = await stray.request()
    assert got.get("type") == "terminate" and got.get("condition") == "item-not-found"
    bosh = Bosh(bosh_server)
    await bosh.create()
    bosh.rid += 5  # far beyond requests=2
    got = await bosh.request()
    assert got.get("type") == "terminate" and got.get("condition") == "item-not-found"
    got = await bosh.request()  # the session is gone
    assert got.get("condition") == "item-not-found"
    other = Bosh(bosh_server, rid=77)
    assert await other.login("romeo") == "romeo@localhost/web"


async def test_overlong_wait_and_hold_are_lowered_and_overactivity_is_a_policy_violation(
    bosh_server: RunningServer,
) -> None:
    """§7: the connection manager lowers ``wait`` and ``hold``; §11: empty
    polls with hold=0 faster than ``polling`` end the session."""
    bosh = Bosh(bosh_server)
    created = await bosh.create(wait="86400", hold="9")
    assert created.get("wait") == "60" and created.get("hold") == "1"
    poller = Bosh(bosh_server, rid=5000)
    created = await poller.create(hold="0")
    assert created.get("hold") == "0" and created.get("polling") == "2"
    first = await poller.request()
    assert first.get("type") is None
    second = await poller.request()
    assert second.get("type") == "terminate" and second.get("condition") == "policy-violation"


async def test_a_pause_over_maxpause_is_a_policy_violation(bosh_server: RunningServer) -> None:
    bosh = Bosh(bosh_server)
    created = await bosh.create()
    assert created.get("maxpause") == "120"
    got = await bosh.request(pause="121")
    assert got.get("type") == "terminate" and got.get("condition") == "policy-violation"


@pytest.mark.parametrize("bosh_server", [{"bosh_max_wait": 1}], indirect=True)
async def test_an_empty_poll_is_answered_empty_after_wait(bosh_server: RunningServer) -> None:
    """§7 ``wait``: with nothing to say, the held request is answered after
    at most ``wait`` seconds, empty."""
    bosh = Bosh(bosh_server)
    created = await bosh.create()
    assert created.get("wait") == "1"
    start = trio.current_time()
    got = await bosh.request()
    assert len(got) == 0 and got.get("type") is None
    assert trio.current_time() - start < 5


@pytest.mark.parametrize("bosh_server", [{"bosh_inactivity": 1}], indirect=True)
async def test_an_inactive_session_ends(bosh_server: RunningServer) -> None:
    """§7 ``inactivity``: no request held for that long ends the session
    (its resource is unbound) and its sid is unknown from then on."""
    from xmpp_sansio.jid import JID

    bosh = Bosh(bosh_server)
    jid = await bosh.login()
    router = bosh_server.router
    assert router.sessions_of(JID.parse("juliet@localhost"))
    with trio.fail_after(WAIT):
        while router.sessions_of(JID.parse("juliet@localhost")):
            await trio.sleep(0.05)  # waiting for the server's timer, not timing it
    got = await bosh.request()
    assert got.get("condition") == "item-not-found", jid


async def test_bad_bodies_and_methods_get_defined_answers(bosh_server: RunningServer) -> None:
    port, context = bosh_server.https_port or 0, bosh_server.client_context()
    got = await exchange(port, post("not xml"), context)
    assert got.status == 200 and b"condition='bad-request'" in got.body
    got = await exchange(port, post(f"<iq xmlns='{HTTPBIND}'/>"), context)
    assert b"condition='bad-request'" in got.body
    got = await exchange(port, post(f"<body xmlns='{HTTPBIND}' rid='1'/>"), context)
    assert b"condition='bad-request'" in got.body  # no 'to'
    got = await exchange(port, post("", method="GET"), context)
    assert got.status == 405
    plain: Response = await exchange(bosh_server.http_port or 0, post("<body/>"))
    assert plain.status == 403
    assert await Bosh(bosh_server).login() == "juliet@localhost/web"


async def test_a_stanza_over_the_size_limit_ends_with_remote_stream_error(
    bosh_server: RunningServer,
) -> None:
    """The XMPP limits apply (max_stanza_size): XEP-0206 §8 carries the
    stream error in a terminate body."""
    bosh = Bosh(bosh_server)
    await bosh.login()
    size = bosh_server.config.limits.max_stanza_size
    big = f"<message xmlns='jabber:client' to='romeo@localhost'><body>{'x' * size}</body></message>"
    got = await bosh.request(big)
    assert got.get("type") == "terminate"
    assert got.get("condition") == "remote-stream-error"
    assert re.search("policy-violation", ET.tostring(got).decode())


@pytest.mark.parametrize(
    "bosh_server",
    [{"max_body_size": 4096, "limits": {"max_output_buffer": 8192}}],
    indirect=True,
)
async def test_a_client_that_stops_polling_is_cut_at_the_output_buffer_limit(
    bosh_server: RunningServer,
) -> None:
    """Output waits for requests up to a body's size; beyond it the
    session's ``max_output_buffer`` applies as on TCP: the stream ends."""
    from xmpp_sansio.jid import JID

    bosh = Bosh(bosh_server)
    jid = await bosh.login()
    juliet = JID.parse("juliet@localhost")
    options = bosh_server.client_options()
    async with open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **options) as romeo:
        with trio.fail_after(WAIT):
            for n in range(200):
                if not bosh_server.router.sessions_of(juliet):
                    break
                await romeo.send(chat(jid, f"{n} " + "x" * 500))
                await trio.sleep(0.01)  # let the server route it
        assert not bosh_server.router.sessions_of(juliet)
    got = await bosh.request()
    assert got.get("type") == "terminate"
