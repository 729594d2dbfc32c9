"""Security checks against the real server on loopback, asserted on the wire.

Every test talks to the server the way an attacker would: raw bytes over TCP or
TLS (``Wire``), or this project's client against a fake server. What is checked
is what is seen on the wire: the stream error condition, the closing
``</stream:stream>``, the closed connection, and what did (not) reach another
session. Waits are bounded with ``trio.fail_after``; ordering is established
with round trips (a ping's result comes after everything routed before it) and
``trio.testing.wait_all_tasks_blocked`` (see :func:`settle`), never with sleeps.

Bugs found are ``xfail(strict=True)`` tests whose reason names the fix; they are
listed in docs/security.md.

docs/security.md lists the security defaults and every limit with the test
that covers it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import itertools
import logging
import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from xml.etree.ElementTree import Element

import memory
import pytest
import trio
import trio.testing
import trustme
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_sansio.errors import RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.config import ServerConfig as SansioServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    NegotiationFailed,
    ResourceBound,
)
from xmpp_sansio.stream.login_options import LoginOptions
from xmpp_sansio.testing import make_credentials, seeded_rng
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.parser import StreamParser
from xmpp_sansio.xml.writer import serialize, stream_header
from xmpp_trio import _tls
from xmpp_trio.cli import main as cli_main
from xmpp_trio.client import ConnectionFailed, StreamError, open_client
from xmpp_trio.config import ConfigError, ServerConfig, load_config
from xmpp_trio.storage import AccountStore

WAIT = 10.0
"""Upper bound of every wait in this file (a bound, never a synchronisation)."""

STREAM_NS = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
HEADER_NO_DECL = f"<stream:stream to='localhost' version='1.0' {STREAM_NS}>".encode()
HEADER = b"<?xml version='1.0'?>" + HEADER_NO_DECL
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
FOOTER = b"</stream:stream>"
IQ = "{jabber:client}iq"

_ids = itertools.count(1)


# ---------------------------------------------------------------------------
# the raw wire


class Wire:
    """One connection to the server, seen as bytes.

    ``data`` is everything received. :meth:`read_until` and :meth:`read_to_end`
    return raw bytes; once :meth:`start_parsing` was called (a bound session),
    :meth:`request` and :meth:`sync` also parse what arrives into elements.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.data = bytearray()
        self.eof = False
        self._cursor = 0
        self._parser: StreamParser | None = None
        self._elements: list[Element] = []

    def start_parsing(self) -> None:
        self._parser = StreamParser(max_stanza_size=1 << 24, max_depth=1000)
        self._parser.feed(stream_header({}, ns.CLIENT, xml_declaration=False))
        self._parser.feed(bytes(self.data[self._cursor :]))

    async def send(self, data: bytes | Element) -> None:
        await settle()
        await self.stream.send_all(serialize(data) if isinstance(data, Element) else data)

    async def _fill(self) -> bool:
        try:
            chunk = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.data += chunk
        if self._parser is not None:
            self._parser.feed(chunk)
            while (event := self._parser.next_event()) is not None:
                if isinstance(event, Element):
                    self._elements.append(event)
        return True

    async def read_until(self, marker: bytes, *, timeout: float = WAIT) -> bytes:
        """The bytes from the last read position up to and including ``marker``."""
        scanned = self._cursor
        with trio.fail_after(timeout):
            while (end := self.data.find(marker, scanned)) < 0:
                scanned = max(self._cursor, len(self.data) - len(marker) + 1)
                if not await self._fill():
                    raise AssertionError(
                        f"connection closed before {marker!r}: {bytes(self.data[-600:])!r}"
                    )
        start, self._cursor = self._cursor, end + len(marker)
        return bytes(self.data[start : self._cursor])

    async def read_to_end(self, *, timeout: float = WAIT) -> bytes:
        """Everything from the last read position until the server closes the connection."""
        with trio.fail_after(timeout):
            while await self._fill():
                pass
        start, self._cursor = self._cursor, len(self.data)
        return bytes(self.data[start:])

    def take_elements(self) -> list[Element]:
        """The elements parsed and not yet handed out (a parsing wire only)."""
        elements, self._elements = self._elements, []
        return elements

    async def next_element(self) -> Element:
        assert self._parser is not None, "start_parsing() first"
        with trio.fail_after(WAIT):
            while not self._elements:
                if not await self._fill():
                    raise AssertionError(f"connection closed: {bytes(self.data[-600:])!r}")
        return self._elements.pop(0)

    async def request(self, iq: Element) -> Element:
        """Send an iq get/set and return the answer with its id (other stanzas
        that arrive first are skipped; they stay in ``data``)."""
        iq_id = iq.get("id") or f"req{next(_ids)}"
        iq.set("id", iq_id)
        await self.send(iq)
        while True:
            element = await self.next_element()
            if element.tag == IQ and element.get("id") == iq_id:
                return element

    async def sync(self) -> None:
        """A round trip: everything the server routed to this session before it has arrived."""
        ping = Element(IQ, {"type": "get", "to": "localhost"})
        ET.SubElement(ping, "{urn:xmpp:ping}ping")
        answer = await self.request(ping)
        assert answer.get("type") == "result"

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def settle() -> None:
    """Wait until every task (the server's included) is blocked.

    Sending is preceded by this so that the server's writer is never caught in
    the middle of a flush when a stream error arrives: the server loses the
    stream error then (see test_stream_error_reaches_a_client_whose_output_is_backed_up),
    which would make the other tests depend on timing.
    """
    await trio.testing.wait_all_tasks_blocked()


async def connect(port: int) -> Wire:
    return Wire(await trio.open_tcp_stream("127.0.0.1", port))


async def starttls_wire(server: RunningServer) -> Wire:
    """A plaintext connection taken through STARTTLS by hand: the new TLS stream
    is open and nothing has been sent on it yet."""
    wire = await connect(server.starttls_port)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(STARTTLS)
    await wire.read_until(b'<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>')
    tls = trio.SSLStream(wire.stream, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await tls.do_handshake()
    wire.stream = tls
    return wire


async def login_wire(server: RunningServer, jid: str, *, bind: bool = True) -> Wire:
    """Log in over direct TLS with the sans-IO client, then hand over the raw wire.

    With ``bind`` the resource is bound and the wire parses what arrives; without
    it, the wire stops right after SASL success, with the restarted stream's
    header sent (the server's answer is still to be read).
    """
    account = JID.parse(jid)
    assert account.local is not None
    raw = await trio.open_tcp_stream("127.0.0.1", server.directtls_port)
    stream = trio.SSLStream(raw, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await stream.do_handshake()
        conn = ClientConnection(
            ClientConfig(
                rng=seeded_rng(0),
                jid=account,
                password=PASSWORDS[account.local],
                login=LoginOptions(sasl2=bind),  # no SASL2 when the test stops before binding
            ),
            tls_active=True,
            tls_info=_tls.client_tls_info(stream),
        )
        conn.start()
        await stream.send_all(conn.data_to_send())
        bound = False
        while not bound:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise AssertionError("the server closed the connection during login")
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not None:
                if isinstance(event, Authenticated) and not bind:
                    await stream.send_all(conn.data_to_send())  # the restarted stream's header
                    return Wire(stream)
                if isinstance(event, ResourceBound):
                    bound = True  # what the connection queues now (<enable/>) is not sent
                    break
                if isinstance(event, (AuthenticationFailed, NegotiationFailed)):
                    raise AssertionError(f"login failed: {event}")
            if not bound:
                await stream.send_all(conn.data_to_send())
    wire = Wire(stream)
    wire.start_parsing()
    return wire


def stream_error(data: bytes) -> str | None:
    """The stream error condition in bytes the server sent (None: no stream error)."""
    found = re.search(
        rb'<stream:error><([a-z-]+) xmlns="urn:ietf:params:xml:ns:xmpp-streams"', data
    )
    return found.group(1).decode() if found else None


async def expect_stream_error(wire: Wire, condition: str) -> bytes:
    """The server answers with ``condition``, closes its stream and the connection."""
    data = await wire.read_to_end()
    assert stream_error(data) == condition, data[-800:]
    assert data.endswith(FOOTER), data[-200:]  # nothing after the closing tag
    assert wire.eof
    return data


async def assert_still_serving(server: RunningServer) -> None:
    """Another client can log in and get an answer."""
    with trio.fail_after(WAIT):
        async with open_client(
            "romeo@localhost",
            PASSWORDS["romeo"],
            host="127.0.0.1",
            port=server.starttls_port,
            ssl_context=server.client_context(),
        ) as romeo:
            ping = Element(IQ, {"type": "get", "to": "localhost"})
            ET.SubElement(ping, "{urn:xmpp:ping}ping")
            assert (await romeo.request(ping, timeout=WAIT)).get("type") == "result"


def internal_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("xmpp_trio") and r.levelno >= logging.ERROR
    ]


def iq(type_: str, payload: str, to: str | None = None) -> Element:
    element = Element(IQ, {"type": type_, "id": f"q{next(_ids)}"})
    if to is not None:
        element.set("to", to)
    element.append(ET.fromstring(payload))
    return element


def error_condition(answer: Element) -> str | None:
    error = answer.find("{jabber:client}error")
    if answer.get("type") != "error" or error is None:
        return None
    for child in error:
        uri, _, local = child.tag[1:].partition("}")
        if uri == ns.STANZA_ERRORS and local != "text":
            return local
    return None


@pytest.fixture
def start_server(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> Callable[..., Awaitable[RunningServer]]:
    """Start a server like the ``server`` fixture, with some limits changed.

    A limit named ``optional_<name>`` is set only if this version of
    ``LimitsConfig`` has ``<name>`` (for limits being added concurrently).
    """

    async def start(**limits: object) -> RunningServer:
        known = {f.name for f in dataclasses.fields(server_config.limits)}
        changes: dict[str, object] = {}
        for name, value in limits.items():
            if name.startswith("optional_"):
                name = name.removeprefix("optional_")
                if name not in known:
                    continue
            changes[name] = value
        config = dataclasses.replace(
            server_config, limits=dataclasses.replace(server_config.limits, **changes)
        )
        return await start_running(config, ca, tmp_path, nursery)

    return start


# ---------------------------------------------------------------------------
# from spoofing (RFC 6120 §8.1.2.1)


@pytest.mark.parametrize(
    "spoofed",
    ["romeo@localhost", "romeo@localhost/orchard", "localhost"],
    ids=["other-bare-jid", "other-full-jid", "server-domain"],
)
async def test_spoofed_from_is_invalid_from_and_the_victim_receives_nothing(
    server: RunningServer, spoofed: str
) -> None:
    romeo = await login_wire(server, "romeo@localhost/orchard")
    await romeo.send(b"<presence/>")
    await romeo.sync()
    juliet = await login_wire(server, "juliet@localhost/balcony")
    await juliet.send(
        f"<message from='{spoofed}' to='romeo@localhost/orchard' type='chat'>"
        "<body>spoofed-body</body></message>".encode()
    )
    await expect_stream_error(juliet, "invalid-from")
    # A later message from a fresh session is the first thing Romeo gets.
    again = await login_wire(server, "juliet@localhost/balcony")
    await again.send(
        b"<message to='romeo@localhost/orchard' type='chat'><body>marker</body></message>"
    )
    received = await romeo.read_until(b"marker")
    assert b"spoofed-body" not in romeo.data
    assert b'from="juliet@localhost/balcony"' in received


async def test_own_bare_and_full_from_are_accepted_and_stamped(server: RunningServer) -> None:
    romeo = await login_wire(server, "romeo@localhost/orchard")
    juliet = await login_wire(server, "juliet@localhost/balcony")
    for sender in ("juliet@localhost", "juliet@localhost/balcony"):
        await juliet.send(
            f"<message from='{sender}' to='romeo@localhost/orchard'><body>b-{sender}</body>"
            "</message>".encode()
        )
    await romeo.read_until(b"b-juliet@localhost/balcony")
    froms = re.findall(rb'<message [^>]*from="([^"]+)"', romeo.data)
    assert froms == [b"juliet@localhost/balcony"] * 2


# ---------------------------------------------------------------------------
# another user's data


async def test_roster_of_another_user_cannot_be_read_or_changed(server: RunningServer) -> None:
    romeo = await login_wire(server, "romeo@localhost/orchard")
    answer = await romeo.request(
        iq(
            "set",
            "<query xmlns='jabber:iq:roster'><item jid='nurse@localhost' name='Nurse'/></query>",
        )
    )
    assert answer.get("type") == "result"
    juliet = await login_wire(server, "juliet@localhost/balcony")
    got = await juliet.request(iq("get", "<query xmlns='jabber:iq:roster'/>", to="romeo@localhost"))
    assert error_condition(got) in ("forbidden", "service-unavailable")  # RFC 6121 §2.1.5
    assert got.find("{jabber:iq:roster}query/{jabber:iq:roster}item") is None
    spy = "<query xmlns='jabber:iq:roster'><item jid='spy@localhost' name='Spy'/></query>"
    got = await juliet.request(iq("set", spy, to="romeo@localhost"))
    assert error_condition(got) in ("forbidden", "service-unavailable")
    own = await juliet.request(iq("get", "<query xmlns='jabber:iq:roster'/>"))
    assert own.get("type") == "result"
    assert b"nurse@localhost" not in juliet.data
    romeo_roster = await romeo.request(iq("get", "<query xmlns='jabber:iq:roster'/>"))
    items = romeo_roster.findall("{jabber:iq:roster}query/{jabber:iq:roster}item")
    assert [item.get("jid") for item in items] == ["nurse@localhost"]
    assert b"spy@localhost" not in romeo.data  # no push of Juliet's attempt either


async def test_vcard_of_another_user_cannot_be_set(server: RunningServer) -> None:
    romeo = await login_wire(server, "romeo@localhost/orchard")
    mine = "<vCard xmlns='vcard-temp'><FN>Romeo Montague</FN></vCard>"
    assert (await romeo.request(iq("set", mine))).get("type") == "result"
    juliet = await login_wire(server, "juliet@localhost/balcony")
    forged = "<vCard xmlns='vcard-temp'><FN>Forged by Juliet</FN></vCard>"
    got = await juliet.request(iq("set", forged, to="romeo@localhost"))
    assert error_condition(got) == "service-unavailable"  # as for a missing account
    stored = await romeo.request(iq("get", "<vCard xmlns='vcard-temp'/>"))
    assert stored.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Romeo Montague"
    # vCards are public by design (XEP-0054 §3.3): reading Romeo's is allowed.
    public = await juliet.request(iq("get", "<vCard xmlns='vcard-temp'/>", to="romeo@localhost"))
    assert public.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Romeo Montague"


async def test_private_storage_of_another_user_is_forbidden(server: RunningServer) -> None:
    secret = (
        "<query xmlns='jabber:iq:private'><secret xmlns='urn:example:secret'>{}</secret></query>"
    )
    romeo = await login_wire(server, "romeo@localhost/orchard")
    assert (await romeo.request(iq("set", secret.format("romeo-note")))).get("type") == "result"
    juliet = await login_wire(server, "juliet@localhost/balcony")
    got = await juliet.request(iq("get", secret.format(""), to="romeo@localhost"))
    assert error_condition(got) == "service-unavailable"  # XEP-0049 §3, as a missing account
    got = await juliet.request(iq("set", secret.format("overwritten"), to="romeo@localhost"))
    assert error_condition(got) == "service-unavailable"
    own = await juliet.request(iq("get", secret.format("")))
    assert own.get("type") == "result"
    assert own.findtext("{jabber:iq:private}query/{urn:example:secret}secret") in (None, "")
    assert b"romeo-note" not in juliet.data
    kept = await romeo.request(iq("get", secret.format("")))
    assert kept.findtext("{jabber:iq:private}query/{urn:example:secret}secret") == "romeo-note"


async def test_blocklist_of_another_user_cannot_be_read_or_changed(server: RunningServer) -> None:
    romeo = await login_wire(server, "romeo@localhost/orchard")
    block = "<block xmlns='urn:xmpp:blocking'><item jid='{}'/></block>"
    assert (await romeo.request(iq("set", block.format("nurse@localhost")))).get("type") == "result"
    juliet = await login_wire(server, "juliet@localhost/balcony")
    got = await juliet.request(
        iq("get", "<blocklist xmlns='urn:xmpp:blocking'/>", to="romeo@localhost")
    )
    assert error_condition(got) in ("forbidden", "service-unavailable")
    got = await juliet.request(iq("set", block.format("tybalt@localhost"), to="romeo@localhost"))
    assert error_condition(got) in ("forbidden", "service-unavailable")
    own = await juliet.request(iq("get", "<blocklist xmlns='urn:xmpp:blocking'/>"))
    assert own.find("{urn:xmpp:blocking}blocklist/{urn:xmpp:blocking}item") is None
    assert b"nurse@localhost" not in juliet.data
    romeo_list = await romeo.request(iq("get", "<blocklist xmlns='urn:xmpp:blocking'/>"))
    items = romeo_list.findall("{urn:xmpp:blocking}blocklist/{urn:xmpp:blocking}item")
    assert [item.get("jid") for item in items] == ["nurse@localhost"]


async def test_offline_messages_for_juliet_never_reach_romeos_sessions(
    server: RunningServer,
) -> None:
    romeo = await login_wire(server, "romeo@localhost/orchard")
    await romeo.send(b"<presence/>")
    for n, to in enumerate(["juliet@localhost", "juliet@localhost/gone", "juliet@localhost"]):
        await romeo.send(
            f"<message to='{to}' type='chat'><body>for-juliet-{n}</body></message>".encode()
        )
    await romeo.sync()
    second = await login_wire(server, "romeo@localhost/second")
    await second.send(b"<presence/>")  # what would flush an offline queue
    await second.sync()
    await romeo.sync()
    assert b"for-juliet" not in romeo.data
    assert b"for-juliet" not in second.data
    juliet = await login_wire(server, "juliet@localhost/balcony")
    await juliet.send(b"<presence/>")
    await juliet.sync()
    bodies = re.findall(rb"<body>(for-juliet-\d)</body>", juliet.data)
    assert bodies == [b"for-juliet-0", b"for-juliet-1", b"for-juliet-2"]


async def test_password_and_account_of_another_user_cannot_be_changed(
    server: RunningServer,
) -> None:
    """XEP-0077 §3.2, §3.3 for another account: a password change naming Romeo, a
    change or removal addressed to him; all refused, his password still works."""
    juliet = await login_wire(server, "juliet@localhost/balcony")
    change = (
        "<query xmlns='jabber:iq:register'><username>{}</username><password>{}</password></query>"
    )
    got = await juliet.request(iq("set", change.format("romeo", "hijacked-Passw0rd")))
    assert error_condition(got) == "bad-request"  # "the username is not the account's"
    got = await juliet.request(
        iq("set", change.format("romeo", "hijacked-Passw0rd"), to="romeo@localhost")
    )
    assert error_condition(got) == "service-unavailable"  # accounts offer no registration
    got = await juliet.request(
        iq("set", "<query xmlns='jabber:iq:register'><remove/></query>", to="romeo@localhost")
    )
    assert error_condition(got) == "service-unavailable"
    romeo = await login_wire(server, "romeo@localhost/orchard")  # his password still works
    await romeo.sync()
    await juliet.sync()  # and Juliet's own session was not ended


async def test_presence_and_last_activity_of_an_unsubscribed_user_do_not_leak(
    server: RunningServer,
) -> None:
    """RFC 6121 §4.3 (probes) and XEP-0012 §3, §8: without a subscription, Juliet
    learns neither Romeo's presence nor when he was last active."""
    romeo = await login_wire(server, "romeo@localhost/orchard")
    await romeo.send(b"<presence><status>romeo-secret-status</status></presence>")
    await romeo.sync()
    juliet = await login_wire(server, "juliet@localhost/balcony")
    await juliet.send(b"<presence type='probe' to='romeo@localhost'/>")
    await juliet.send(b"<presence to='romeo@localhost' type='subscribe'/>")  # only asking
    last = await juliet.request(iq("get", "<query xmlns='jabber:iq:last'/>", to="romeo@localhost"))
    assert error_condition(last) == "service-unavailable"  # as for a missing account
    assert last.find("{jabber:iq:last}query") is None
    await juliet.sync()
    assert b"romeo-secret-status" not in juliet.data
    assert b'from="romeo@localhost/orchard"' not in juliet.data


# ---------------------------------------------------------------------------
# resource binding race


async def test_concurrent_binds_of_one_full_jid_leave_exactly_one_session(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Two sessions bind the same full JID at the same time: both get their bind
    result, the router keeps exactly one (RFC 6120 §7.7.2.2, the newer one), stanzas
    for the full JID reach only that one, it keeps working, and nothing crashes.
    Repeated so that several interleavings run.

    That the replaced session is told ``conflict`` is checked deterministically by
    test_replaced_session_with_backed_up_output_still_gets_conflict and, on the
    client side, by test_client_reports_a_stream_error_that_arrives_with_the_bind_result.
    """
    jid = "romeo@localhost/orchard"
    juliet = await login_wire(server, "juliet@localhost/balcony")
    for round_ in range(3):
        wires: list[Wire] = []

        async def bind(wires: list[Wire] = wires) -> None:
            wires.append(await login_wire(server, jid))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bind)
            nursery.start_soon(bind)
        assert len(wires) == 2  # both got a bind result for the same full JID
        assert len(server.router.sessions_of(JID.parse(jid))) == 1
        marker = f"race-marker-{round_}".encode()
        await juliet.send(
            b"<message to='romeo@localhost/orchard' type='chat'><body>"
            + marker
            + b"</body></message>"
        )
        survivor = await first_to_receive(wires, marker)
        (loser,) = [w for w in wires if w is not survivor]
        assert marker not in loser.data
        await survivor.sync()
        for wire in wires:
            await wire.aclose()
    assert internal_errors(caplog) == []


async def first_to_receive(wires: list[Wire], marker: bytes) -> Wire:
    """The wire that receives ``marker`` (the others stop waiting)."""
    first: list[Wire] = []
    async with trio.open_nursery() as nursery:
        for wire in wires:

            async def watch(wire: Wire = wire) -> None:
                try:
                    await wire.read_until(marker)
                except AssertionError:  # closed without it: not the recipient
                    return
                first.append(wire)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
    assert len(first) == 1
    return first[0]


async def test_replaced_session_with_backed_up_output_still_gets_conflict(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    """The session being replaced has 18 MB of answers it has not read, more than
    the socket buffers hold, so the server's writer for it is blocked in the
    middle of a send when the new session binds. The conflict and the closing tag
    queued meanwhile must still be written (at c529d42 the writer returned after
    that send and dropped them; the flush loop that drains until empty, added
    with the output buffer bound, fixes it)."""
    server = await start_server(optional_max_output_buffer=1 << 30)
    juliet = await login_wire(server, "juliet@localhost/balcony")
    slow = await login_wire(server, "romeo@localhost/orchard")
    note = "x" * 60000
    stored = await slow.request(iq("set", f"<vCard xmlns='vcard-temp'><NOTE>{note}</NOTE></vCard>"))
    assert stored.get("type") == "result"
    gets = b"".join(serialize(iq("get", "<vCard xmlns='vcard-temp'/>")) for _ in range(300))
    await slow.send(
        gets + b"<message to='juliet@localhost/balcony'><body>all-asked</body></message>"
    )
    await juliet.read_until(b"all-asked")  # every get was answered (into the queue)
    replacement = await login_wire(server, "romeo@localhost/orchard")
    tail = await slow.read_until(FOOTER, timeout=3)
    assert stream_error(tail[-1000:]) == "conflict"
    assert_intact_vcard_answers(slow, note)
    await slow.send(FOOTER)
    await slow.read_to_end(timeout=5)
    assert slow.eof
    await replacement.sync()


async def test_client_reports_a_stream_error_that_arrives_with_the_bind_result(
    nursery: trio.Nursery,
) -> None:
    """A server that replaces the session right after binding it (what the real
    server does to the older of two racing sessions) sends the bind result, the
    ``conflict`` stream error and its closing tag in one write. The client must
    report the conflict, from open_client or as Client.error, not lose it."""

    async def replacing_server(stream: trio.SocketStream) -> None:
        conn = ServerConnection(
            SansioServerConfig(
                rng=seeded_rng(0),
                domains=frozenset({"localhost"}),
                tls_available=False,
                require_tls=False,
            )
        )
        lookup = make_credentials(PASSWORDS, iterations=4096)
        try:
            while not conn.should_close:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                with contextlib.suppress(RemoteProtocolError):
                    while (event := conn.next_event()) is not None:
                        if isinstance(event, CredentialsRequested):
                            conn.provide_credentials(lookup(event.username, event.hash_name))
                        elif isinstance(event, ResourceBound):
                            conn.close(StreamErrorCondition.CONFLICT)
                await stream.send_all(conn.data_to_send())
                if not data:
                    break
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await nursery.start(trio.serve_tcp, replacing_server, 0)
    port = listeners[0].socket.getsockname()[1]
    error: Exception | None = None
    with trio.fail_after(WAIT):
        try:
            async with open_client(
                "romeo@localhost/orchard",
                PASSWORDS["romeo"],
                host="127.0.0.1",
                port=port,
                require_tls=False,
                mechanisms=("SCRAM-SHA-256",),
            ) as romeo:
                await romeo.closed.wait()
                error = romeo.error
        except StreamError as exc:  # reported by open_client itself
            error = exc
    assert isinstance(error, StreamError)
    assert error.condition is StreamErrorCondition.CONFLICT


# ---------------------------------------------------------------------------
# XML attacks (RFC 6120 §11, §13.12)


def billion_laughs() -> bytes:
    entities = "<!ENTITY lol0 'lol'>" + "".join(
        f"<!ENTITY lol{i} '{f'&lol{i - 1};' * 10}'>" for i in range(1, 10)
    )
    return (
        f"<?xml version='1.0'?><!DOCTYPE stream:stream [{entities}]>".encode()
        + HEADER_NO_DECL
        + b"<message><body>&lol9;</body></message>"
    )


def quadratic_blowup() -> bytes:
    return (
        b"<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY a '"
        + b"a" * 8000
        + b"'>]>"
        + HEADER_NO_DECL
        + b"<message><body>"
        + b"&a;" * 2000
        + b"</body></message>"
    )


def nested(depth: int) -> bytes:
    return b"<message>" + b"<a>" * depth + b"</a>" * depth + b"</message>"


def big_attribute(size: int) -> bytes:
    return b"<message to='juliet@localhost'><body a='" + b"x" * size + b"'/></message>"


PREAUTH_ATTACKS = {
    # (bytes sent on a fresh plaintext connection, the stream error expected)
    "billion-laughs": (billion_laughs(), "restricted-xml"),
    "quadratic-blowup": (quadratic_blowup(), "restricted-xml"),
    "doctype-without-declaration": (
        b"<!DOCTYPE stream:stream [<!ENTITY a 'b'>]>" + HEADER_NO_DECL,
        "restricted-xml",
    ),
    "external-entity": (
        b"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
        + HEADER_NO_DECL
        + b"<message><body>&xxe;</body></message>",
        "restricted-xml",
    ),
    "entity-references-without-dtd": (
        HEADER + b"<message><body>" + b"&a;" * 2000 + b"</body></message>",
        "restricted-xml",
    ),
    "doctype-inside-the-stream": (
        HEADER + b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
        "not-well-formed",
    ),
    "deep-nesting": (HEADER + nested(100), "policy-violation"),
    "huge-attribute-before-auth": (HEADER + big_attribute(20000), "policy-violation"),
    "unterminated-header": (b"<stream:stream to='" + b"a" * 20000, "policy-violation"),
    "whitespace-flood-before-header": (b" " * 20000, "policy-violation"),
    "invalid-utf8-in-text": (
        HEADER + b"<message><body>\xff\xfe</body></message>",
        "not-well-formed",
    ),
    "invalid-utf8-overlong": (
        HEADER + b"<message><body>\xc0\xaf</body></message>",
        "not-well-formed",
    ),
    "invalid-utf8-surrogate": (HEADER + b"<message a='\xed\xa0\x80'/>", "not-well-formed"),
    "invalid-utf8-in-header": (HEADER.replace(b"localhost", b"local\xffhost"), "not-well-formed"),
    "nul-byte": (HEADER + b"<message><body>a\x00b</body></message>", "not-well-formed"),
    "nul-character-reference": (
        HEADER + b"<message><body>&#0;</body></message>",
        "not-well-formed",
    ),
    "utf16-declaration": (
        b"<?xml version='1.0' encoding='UTF-16'?>" + HEADER_NO_DECL,
        "unsupported-encoding",
    ),
    "comment-before-header": (b"<!-- hello -->" + HEADER, "restricted-xml"),
    "comment-after-header": (HEADER + b"<!-- hello -->", "restricted-xml"),
    "comment-inside-a-stanza": (HEADER + b"<message><!-- hello --></message>", "restricted-xml"),
    "processing-instruction-before-header": (
        b"<?xml-stylesheet href='x'?>" + HEADER_NO_DECL,
        "restricted-xml",
    ),
    "processing-instruction-after-header": (HEADER + b"<?evil data?>", "restricted-xml"),
    "processing-instruction-inside-a-stanza": (
        HEADER + b"<message><?evil data?></message>",
        "restricted-xml",
    ),
    "message-before-authentication": (
        HEADER + b"<message to='romeo@localhost'><body>hi</body></message>",
        "not-authorized",
    ),
    "presence-before-authentication": (HEADER + b"<presence/>", "not-authorized"),
    "iq-before-authentication": (
        HEADER + b"<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
        "not-authorized",
    ),
}


@pytest.mark.parametrize(("attack", "condition"), PREAUTH_ATTACKS.values(), ids=PREAUTH_ATTACKS)
async def test_xml_attack_before_authentication_gets_its_stream_error(
    server: RunningServer, caplog: pytest.LogCaptureFixture, attack: bytes, condition: str
) -> None:
    wire = await connect(server.starttls_port)
    await wire.send(attack)
    data = await expect_stream_error(wire, condition)
    assert b"<message" not in data and b"&lol" not in data  # nothing echoed or expanded
    await assert_still_serving(server)
    assert internal_errors(caplog) == []


POSTAUTH_ATTACKS = {
    "unknown-top-level-element": (b"<foo xmlns='urn:example:evil'/>", "unsupported-stanza-type"),
    "stanza-in-another-namespace": (
        b"<message xmlns='jabber:server' to='romeo@localhost'/>",
        "invalid-namespace",
    ),
    "deep-nesting": (nested(100), "policy-violation"),
    "entity-reference": (b"<message><body>&lol9;</body></message>", "restricted-xml"),
    "doctype": (b"<!DOCTYPE x [<!ENTITY a 'b'>]>", "not-well-formed"),
    "comment": (b"<message><!-- hi --></message>", "restricted-xml"),
    "processing-instruction": (b"<?evil data?>", "restricted-xml"),
    "invalid-utf8": (b"<message><body>\xff\xfe</body></message>", "not-well-formed"),
    "nul-byte": (b"<message><body>\x00</body></message>", "not-well-formed"),
}


@pytest.mark.parametrize(("attack", "condition"), POSTAUTH_ATTACKS.values(), ids=POSTAUTH_ATTACKS)
async def test_xml_attack_after_authentication_gets_its_stream_error(
    server: RunningServer, caplog: pytest.LogCaptureFixture, attack: bytes, condition: str
) -> None:
    wire = await login_wire(server, "juliet@localhost/balcony")
    async with trio.open_nursery() as nursery:
        # Sent while reading: the server may close before it has read it all.
        nursery.start_soon(send_ignoring_close, wire, attack)
        await expect_stream_error(wire, condition)
    await assert_still_serving(server)
    assert internal_errors(caplog) == []


async def send_ignoring_close(wire: Wire, data: bytes) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await wire.send(data)


async def test_stanza_over_max_stanza_size_after_authentication_is_policy_violation(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    """max_stanza_size, after authentication. The server runs with the smallest
    allowed limit, so that the stanza arrives in one read (one TLS record): at the
    default (262144) it takes several reads, and the server's close race (see
    test_stream_error_reaches_a_client_whose_output_is_backed_up) can eat the
    stream error. The default limit itself is checked without I/O in
    tests/sansio/test_security_sansio.py."""
    server = await start_server(max_stanza_size=10000, max_stanza_size_preauth=1024)
    wire = await login_wire(server, "juliet@localhost/balcony")
    await wire.send(b"<presence/>")
    within = big_attribute(9000).replace(b"'juliet@localhost'", b"'juliet@localhost/balcony'")
    await wire.send(within)
    await wire.sync()
    assert b"x" * 9000 in wire.data
    await wire.send(big_attribute(12000))
    await expect_stream_error(wire, "policy-violation")
    assert wire.data.count(b"x" * 9000) == 1  # the big one was not delivered
    await assert_still_serving(server)


async def test_stanza_over_preauth_limit_is_accepted_after_authentication(
    server: RunningServer,
) -> None:
    """The 20 000-byte stanza refused before authentication (huge-attribute-before-auth)
    is within max_stanza_size once authenticated, and is delivered."""
    wire = await login_wire(server, "juliet@localhost/balcony")
    await wire.send(b"<presence/>")
    stanza = big_attribute(20000).replace(
        b"to='juliet@localhost'", b"to='juliet@localhost/balcony'"
    )
    assert len(stanza) > server.config.limits.max_stanza_size_preauth
    await wire.send(stanza)
    await wire.sync()
    assert b"x" * 20000 in wire.data


async def test_stanza_before_binding_is_not_authorized(server: RunningServer) -> None:
    wire = await login_wire(server, "juliet@localhost", bind=False)
    await wire.read_until(b"</stream:features>")
    await wire.send(b"<message to='romeo@localhost'><body>hi</body></message>")
    await expect_stream_error(wire, "not-authorized")


async def test_stanza_after_tls_before_sasl_is_not_authorized(server: RunningServer) -> None:
    wire = await starttls_wire(server)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(b"<message to='romeo@localhost'><body>hi</body></message>")
    await expect_stream_error(wire, "not-authorized")


async def test_doctype_in_the_stream_restarted_after_starttls_is_restricted_xml(
    server: RunningServer,
) -> None:
    wire = await starttls_wire(server)
    await wire.send(billion_laughs())
    await expect_stream_error(wire, "restricted-xml")


async def test_plaintext_injected_after_starttls_is_not_processed(server: RunningServer) -> None:
    """Bytes pipelined after <starttls/> (what a man in the middle would inject,
    CVE-2011-0411 style) are refused; the injected <auth/> is never answered."""
    credentials = base64.b64encode(b"\0juliet\0" + PASSWORDS["juliet"].encode())
    wire = await connect(server.starttls_port)
    await wire.send(
        HEADER
        + STARTTLS
        + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
        + credentials
        + b"</auth>"
    )
    data = await wire.read_until(FOOTER)
    assert stream_error(data) == "policy-violation"
    assert b"<success" not in data and b"<failure" not in data and b"<challenge" not in data


async def test_stream_closed_for_injection_after_starttls_is_not_upgraded_to_tls(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    wire = await connect(server.starttls_port)
    await wire.send(HEADER + STARTTLS + b"<iq type='get' id='injected'/>")
    data = await wire.read_until(FOOTER)
    assert stream_error(data) == "policy-violation"
    tls = trio.SSLStream(wire.stream, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT), pytest.raises(trio.BrokenResourceError):
        await tls.do_handshake()  # the server closed the connection instead
    assert internal_errors(caplog) == []


async def test_starttls_handshake_is_bounded_by_the_negotiation_timeout(
    server_config: ServerConfig, autojump_clock: trio.testing.MockClock
) -> None:
    limits = dataclasses.replace(server_config.limits, negotiation_timeout=0.5)
    async with memory.serving(dataclasses.replace(server_config, limits=limits)) as server:
        wire = Wire(memory.connect(server))
        await wire.send(HEADER + STARTTLS)
        await wire.read_until(b"<proceed")
        await wire.read_to_end(timeout=2)  # no ClientHello: closed once the deadline passes
        assert wire.eof


async def test_garbage_instead_of_a_tls_handshake_is_not_an_internal_error(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    wire = await connect(server.starttls_port)
    await wire.send(HEADER + STARTTLS)
    await wire.read_until(b"<proceed")
    await wire.send(b"this is not a TLS ClientHello\r\n" * 4)
    await wire.read_to_end()
    assert wire.eof
    assert internal_errors(caplog) == []


async def test_repeated_failed_sasl_attempts_end_the_stream_with_policy_violation(
    server: RunningServer,
) -> None:
    """Limits.max_auth_attempts (3, not settable in TOML): the third failure ends
    the stream (RFC 6120 §6.4.5)."""
    wire = await starttls_wire(server)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    wrong = base64.b64encode(b"\0juliet\0not her password")
    auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + wrong + b"</auth>"
    for _ in range(2):
        await wire.send(auth)
        answer = await wire.read_until(b"</failure>")
        assert b"<not-authorized/>" in answer and stream_error(answer) is None
    await wire.send(auth)
    data = await expect_stream_error(wire, "policy-violation")
    assert b"<not-authorized/>" in data
    assert b"<success" not in wire.data


async def test_stream_error_reaches_a_client_whose_output_is_backed_up(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    """As above, the writer is blocked in a send (18 MB unread) when the stream
    error comes. (An output buffer bound, if the server has one, is lifted so that
    this checks the close path, not the bound.)"""
    server = await start_server(optional_max_output_buffer=1 << 30)
    juliet = await login_wire(server, "juliet@localhost/balcony")
    slow = await login_wire(server, "romeo@localhost/orchard")
    note = "x" * 60000
    stored = await slow.request(iq("set", f"<vCard xmlns='vcard-temp'><NOTE>{note}</NOTE></vCard>"))
    assert stored.get("type") == "result"
    gets = b"".join(serialize(iq("get", "<vCard xmlns='vcard-temp'/>")) for _ in range(300))
    await slow.send(
        gets + b"<message to='juliet@localhost/balcony'><body>all-asked</body></message>"
    )
    await juliet.read_until(b"all-asked")  # 18 MB of answers wait for Romeo
    await slow.send(b"<!-- a comment: restricted-xml -->")
    tail = await slow.read_until(FOOTER, timeout=3)
    assert stream_error(tail[-1000:]) == "restricted-xml"
    assert_intact_vcard_answers(slow, note)


def assert_intact_vcard_answers(wire: Wire, note: str) -> None:
    """Whatever answers arrived before the stream error arrived whole: the server
    may drop queued stanzas when it closes a stream, never send part of one."""
    answers = [e for e in wire.take_elements() if e.tag == IQ]
    assert answers, "no answer arrived"
    for answer in answers:
        assert answer.findtext("{vcard-temp}vCard/{vcard-temp}NOTE") == note


# ---------------------------------------------------------------------------
# STARTTLS stripping: this project's client against a fake server


FAKE_HEADER = (
    f"<?xml version='1.0'?><stream:stream from='localhost' id='fake' version='1.0' {STREAM_NS}>"
).encode()


def features(*mechanisms: str) -> bytes:
    names = "".join(f"<mechanism>{m}</mechanism>" for m in mechanisms)
    return (
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        + names.encode()
        + b"</mechanisms></stream:features>"
    )


@pytest.mark.parametrize(
    ("offered", "client_kw", "reason"),
    [
        (features("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"), {}, "STARTTLS stripping"),
        (features("PLAIN"), {"require_tls": False}, "no acceptable SASL mechanism"),
        (
            features("PLAIN"),
            {"require_tls": False, "mechanisms": ("SCRAM-SHA-256", "SCRAM-SHA-1")},
            "no acceptable SASL mechanism",
        ),
    ],
    ids=["starttls-stripped", "plain-only-in-clear", "scram-only-client-plain-only-server"],
)
async def test_client_refuses_a_server_without_starttls_and_sends_no_credentials(
    nursery: trio.Nursery, offered: bytes, client_kw: dict[str, object], reason: str
) -> None:
    received = bytearray()
    done = trio.Event()

    async def fake_server(stream: trio.SocketStream) -> None:
        try:
            await stream.send_all(FAKE_HEADER + offered)
            while chunk := await stream.receive_some(65536):
                received.extend(chunk)
        except trio.BrokenResourceError:
            pass
        finally:
            done.set()
            await trio.aclose_forcefully(stream)

    listeners = await nursery.start(trio.serve_tcp, fake_server, 0)
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(WAIT), pytest.raises(ConnectionFailed, match=reason):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=port,
            **client_kw,  # type: ignore[arg-type]
        ):
            pass
    with trio.fail_after(WAIT):
        await done.wait()
    password = PASSWORDS["juliet"].encode()
    assert received.startswith(b"<?xml") and b"<stream:stream" in received
    assert b"<auth" not in received
    assert password not in received
    assert base64.b64encode(b"\0juliet\0" + password) not in received
    assert b"juliet@localhost" not in received  # RFC 6120 §4.7.1: no 'from' before TLS
    assert received.endswith(FOOTER)  # the client closed its stream


# ---------------------------------------------------------------------------
# passwords at rest and in the logs


def files_under(directory: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def password_forms(password: str) -> list[bytes]:
    raw = password.encode()
    return [raw, password.encode("utf-16-le"), base64.b64encode(raw), raw.hex().encode()]


def test_database_never_holds_a_plaintext_password(tmp_path: Path) -> None:
    """Accounts created and changed through the CLI and AccountStore: no file in
    the data directory (the database, its WAL and shared memory) holds a password
    in any plain encoding; the database file is private to its owner."""
    config = tmp_path / "xmpp.toml"
    config.write_text(
        f'domains = ["localhost"]\ndata_dir = "{tmp_path / "data"}"\nscram_iterations = 4096\n'
    )
    passwords = {
        "cli-created": "Cli-Created-Pa55word",
        "cli-changed": "Cli-Changed-Pa55word",
        "store-created": "Store-Created-Pa55word",
        "store-changed": "Store-Changed-Pa55word",
    }
    base = ["mercutio@localhost", "--config", str(config), "--password"]
    assert cli_main(["adduser", *base, passwords["cli-created"]]) == 0
    assert cli_main(["passwd", *base, passwords["cli-changed"]]) == 0
    database = tmp_path / "data" / "xmpp.sqlite3"
    with AccountStore.open(database) as store:
        store.create("benvolio", "localhost", passwords["store-created"], iterations=4096)
        store.set_password("benvolio", "localhost", passwords["store-changed"], iterations=4096)
        stored = files_under(tmp_path / "data")
        assert database in stored and len(stored[database]) > 0
        for password in passwords.values():
            for form in password_forms(password):
                for path, data in stored.items():
                    assert form not in data, f"{form!r} found in {path}"
    assert stat.S_IMODE(os.stat(database).st_mode) & 0o077 == 0


async def test_logs_never_hold_passwords_or_sasl_payloads(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A PLAIN login over TLS, a failed one, a SCRAM login and a password change
    (XEP-0077) with the server logging at debug level: no log record holds a
    password or a SASL payload."""
    caplog.set_level(logging.DEBUG)
    password = PASSWORDS["juliet"]
    wrong = "Juli3t-typed-this-wrong"
    new = "N3w-Juliet-Passw0rd"
    common = {
        "host": "127.0.0.1",
        "port": server.starttls_port,
        "ssl_context": server.client_context(),
    }
    async with open_client("juliet@localhost", password, mechanisms=("PLAIN",), **common) as c:  # type: ignore[arg-type]
        change = iq(
            "set",
            "<query xmlns='jabber:iq:register'><username>juliet</username>"
            f"<password>{new}</password></query>",
        )
        assert (await c.request(change, timeout=WAIT)).get("type") == "result"
    with pytest.raises(Exception, match="not-authorized"):
        async with open_client("juliet@localhost", wrong, mechanisms=("PLAIN",), **common):  # type: ignore[arg-type]
            pass
    async with open_client("juliet@localhost", new, mechanisms=("SCRAM-SHA-256",), **common):  # type: ignore[arg-type]
        pass
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    assert "authenticated juliet@localhost with PLAIN" in text  # the log is being captured
    for secret in (password, wrong, new):
        assert secret not in text
        for form in password_forms(secret):
            assert form.decode() not in text
        for user in ("juliet", ""):
            payload = f"\0{user}\0{secret}".encode()
            assert base64.b64encode(payload).decode() not in text


# ---------------------------------------------------------------------------
# per-account limits on the wire


async def test_roster_beyond_max_roster_items_is_not_allowed(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await start_server(max_roster_items=2)
    juliet = await login_wire(server, "juliet@localhost/balcony")
    add = "<query xmlns='jabber:iq:roster'><item jid='{}'/></query>"
    for contact in ("romeo@localhost", "nurse@localhost"):
        assert (await juliet.request(iq("set", add.format(contact)))).get("type") == "result"
    refused = await juliet.request(iq("set", add.format("tybalt@localhost")))
    assert error_condition(refused) == "not-allowed"
    roster = await juliet.request(iq("get", "<query xmlns='jabber:iq:roster'/>"))
    items = roster.findall("{jabber:iq:roster}query/{jabber:iq:roster}item")
    assert sorted(item.get("jid") or "" for item in items) == ["nurse@localhost", "romeo@localhost"]


async def test_offline_queue_beyond_max_offline_messages_bounces(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await start_server(max_offline_messages=2)
    romeo = await login_wire(server, "romeo@localhost/orchard")
    for n in range(3):
        await romeo.send(
            f"<message to='juliet@localhost' type='chat' id='m{n}'><body>offline-{n}</body>"
            "</message>".encode()
        )
    await romeo.sync()
    bounces = re.findall(rb'<message [^>]*type="error"[^>]*>', romeo.data)
    assert len(bounces) == 1 and b'id="m2"' in bounces[0]
    assert b"<service-unavailable" in romeo.data
    juliet = await login_wire(server, "juliet@localhost/balcony")
    await juliet.send(b"<presence/>")
    await juliet.sync()
    assert re.findall(rb"<body>(offline-\d)</body>", juliet.data) == [b"offline-0", b"offline-1"]


async def test_vcard_over_max_vcard_size_is_not_acceptable(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await start_server(max_vcard_size=1024)
    juliet = await login_wire(server, "juliet@localhost/balcony")
    small = "<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>"
    assert (await juliet.request(iq("set", small))).get("type") == "result"
    big = f"<vCard xmlns='vcard-temp'><NOTE>{'n' * 2000}</NOTE></vCard>"
    assert error_condition(await juliet.request(iq("set", big))) == "not-acceptable"
    stored = await juliet.request(iq("get", "<vCard xmlns='vcard-temp'/>"))
    assert stored.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Juliet"


async def test_private_item_over_max_private_size_is_not_acceptable(
    start_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await start_server(max_private_size=1024)
    juliet = await login_wire(server, "juliet@localhost/balcony")
    item = "<query xmlns='jabber:iq:private'><note xmlns='urn:example:notes'>{}</note></query>"
    assert (await juliet.request(iq("set", item.format("short")))).get("type") == "result"
    refused = await juliet.request(iq("set", item.format("n" * 2000)))
    assert error_condition(refused) == "not-acceptable"
    kept = await juliet.request(iq("get", item.format("")))
    assert kept.findtext("{jabber:iq:private}query/{urn:example:notes}note") == "short"


async def test_sasl_authzid_of_another_user_is_refused(server: RunningServer) -> None:
    """Juliet's own password, asking to be authorized as Romeo (RFC 6120 §6.4.6)."""
    wire = await starttls_wire(server)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    payload = base64.b64encode(b"romeo@localhost\0juliet\0" + PASSWORDS["juliet"].encode())
    await wire.send(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + payload + b"</auth>"
    )
    answer = await wire.read_until(b"</failure>")
    assert b"<invalid-authzid/>" in answer
    assert b"<success" not in wire.data


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("scram_iterations = 4095", "scram_iterations"),
        ("[limits]\nmax_stanza_size = 9999", "limits.max_stanza_size"),
        ("[limits]\nmax_stanza_size_preauth = 1023", "limits.max_stanza_size_preauth"),
        (
            "[limits]\nmax_stanza_size = 20000\nmax_stanza_size_preauth = 20001",
            "limits.max_stanza_size_preauth",
        ),
        ("[limits]\nmax_depth = 3", "limits.max_depth"),
        ("[limits]\nnegotiation_timeout = 0", "limits.negotiation_timeout"),
        ("[limits]\nmax_vcard_size = 1023", "limits.max_vcard_size"),
        ("[limits]\nmax_private_size = 1023", "limits.max_private_size"),
        ("[limits]\nmax_roster_items = 0", "limits.max_roster_items"),
    ],
)
def test_configuration_refuses_weak_iterations_and_unsafe_limits(
    tmp_path: Path, toml: str, key: str
) -> None:
    """The "allowed" column of docs/security.md: out-of-range values are refused
    when the configuration is loaded, naming the key."""
    path = tmp_path / "xmpp.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
