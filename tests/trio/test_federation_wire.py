"""Federation on the wire (issue 21): two of our servers, a.test and b.test,
on loopback with real TLS, exchanging messages and presence subscriptions
both ways; authenticated by SASL EXTERNAL with trusted certificates, and by
Server Dialback when one certificate is untrusted; bad input from a remote."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio
import trustme
from conftest import RunningServer, start_running
from dns_server import dns_server

from xmpp_trio.admin import request, socket_path
from xmpp_trio.cli import main
from xmpp_trio.client import Client, IqErrorResponse, open_client
from xmpp_trio.config import ListenerConfig, ServerConfig, TLSConfig
from xmpp_trio.federation_config import FederationConfig
from xmpp_trio.storage import AccountStore

WAIT = 20.0
C = "{jabber:client}"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
PASSWORD = "s3cr3t-federation"


async def start_domain(
    domain: str,
    ca: trustme.CA,
    trusted_ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    users: tuple[str, ...] = ("juliet", "romeo"),
    options: dict[str, object] | None = None,
    names: tuple[str, ...] = (),
    **federation: object,
) -> RunningServer:
    """A server for ``domain`` whose certificate comes from ``ca`` (naming
    ``domain`` and ``names``), trusting ``trusted_ca`` for its peers;
    federation on, its port chosen by the OS; one-way streams unless
    ``bidi=True`` is passed (XEP-0288 has tests of its own)."""
    home = tmp_path / domain
    home.mkdir()
    cert = ca.issue_cert(domain, *names)
    cert_path, key_path = home / "cert.pem", home / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    cafile = home / "peers-ca.pem"
    trusted_ca.cert_pem.write_to_path(str(cafile))
    config = ServerConfig(
        domains=(domain,),
        data_dir=home / "data",
        listeners=(
            ListenerConfig("c2s-starttls", "127.0.0.1", 0),
            ListenerConfig("c2s-directtls", "127.0.0.1", 0),
        ),
        tls=TLSConfig(cert=cert_path, key=key_path),
        scram_iterations=4096,
        federation=dataclasses.replace(
            FederationConfig(enabled=True, port=0, cafile=str(cafile), bidi=False), **federation
        ),
    )
    config = dataclasses.replace(config, **(options or {}))
    config.data_dir.mkdir(parents=True)
    with AccountStore.open(config.database_path) as store:
        for local in users:
            store.create(local, domain, PASSWORD, iterations=4096)
    ca_dir = home / "clients"
    ca_dir.mkdir()
    return await start_running(config, ca, ca_dir, nursery)


async def two_servers(
    tmp_path: Path,
    nursery: trio.Nursery,
    *,
    a_ca: trustme.CA,
    b_ca: trustme.CA,
    trusted: trustme.CA,
) -> tuple[RunningServer, RunningServer]:
    a = await start_domain("a.test", a_ca, trusted, tmp_path, nursery)
    b = await start_domain("b.test", b_ca, trusted, tmp_path, nursery)
    for me, other, domain in ((a, b, "b.test"), (b, a, "a.test")):
        assert me.server.federation is not None and other.server.federation is not None
        me.server.federation.hosts[domain] = ("127.0.0.1", other.server.federation.port)
    return a, b


def client(server: RunningServer, jid: str):  # type: ignore[no-untyped-def]
    return open_client(
        jid,
        PASSWORD,
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    )


async def next_stanza(who: Client, tag: str, **attrs: str) -> ET.Element:
    with trio.fail_after(WAIT):
        async for stanza in who:
            if stanza.tag == C + tag and all(stanza.get(k) == v for k, v in attrs.items()):
                return stanza
    raise AssertionError("the stream ended")


def chat(to: str, body: str) -> ET.Element:
    message = ET.Element(C + "message", {"to": to, "type": "chat"})
    ET.SubElement(message, C + "body").text = body
    return message


async def exchange(a: RunningServer, b: RunningServer) -> None:
    """Messages both ways, then a subscription with presence."""
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await exchange_between(juliet, "juliet@a.test", romeo, "romeo@b.test")


async def exchange_between(juliet: Client, juliet_jid: str, romeo: Client, romeo_jid: str) -> None:
    """Messages both ways, then juliet subscribes to romeo's presence and gets it."""
    await juliet.send(ET.Element(C + "presence"))
    await romeo.send(ET.Element(C + "presence"))
    await juliet.send(chat(romeo_jid, "wherefore art thou"))
    got = await next_stanza(romeo, "message")
    assert got.get("from", "").startswith(juliet_jid + "/")
    assert got.findtext(C + "body") == "wherefore art thou"
    await romeo.send(chat(juliet_jid, "here"))
    got = await next_stanza(juliet, "message")
    assert got.get("from", "").startswith(romeo_jid + "/")
    assert got.findtext(C + "body") == "here"
    await juliet.send(ET.Element(C + "presence", {"to": romeo_jid, "type": "subscribe"}))
    request = await next_stanza(romeo, "presence", type="subscribe")
    assert request.get("from") == juliet_jid
    await romeo.send(ET.Element(C + "presence", {"to": juliet_jid, "type": "subscribed"}))
    # RFC 6121 §3.1.5: once approved, romeo's server sends his presence.
    # (The approval itself may be delivered too, RFC 6121 §3.1.6, and Prosody
    # answers the request with the contact's unavailable presence: skip those.)
    available = await next_stanza(juliet, "presence")
    while available.get("type") is not None:
        available = await next_stanza(juliet, "presence")
    assert available.get("from", "").startswith(romeo_jid + "/")
    assert available.get("type") is None


async def test_two_servers_with_trusted_certificates_federate_both_ways(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    await exchange(a, b)
    for server, remote, local in ((a, "b.test", "a.test"), (b, "a.test", "b.test")):
        assert server.server.federation is not None
        assert server.server.federation.failures == 0
        assert server.server.federation.methods == {(remote, local): "EXTERNAL"}


async def test_an_untrusted_certificate_falls_back_to_dialback(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    ca, other = trustme.CA(), trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=other, b_ca=ca, trusted=ca)
    await exchange(a, b)
    assert a.server.federation is not None and b.server.federation is not None
    # b does not trust a's certificate: a proved a.test by dialback (XEP-0220).
    # b cannot verify a either, so its stream to a falls back the same way.
    assert b.server.federation.methods == {("a.test", "b.test"): "dialback"}
    assert a.server.federation.methods == {("b.test", "a.test"): "dialback"}


async def test_an_unreachable_domain_bounces_with_remote_server_not_found(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    ca = trustme.CA()
    a = await start_domain("a.test", ca, ca, tmp_path, nursery)
    assert a.server.federation is not None
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    a.server.federation.hosts["gone.test"] = ("127.0.0.1", closed_port)
    async with client(a, "juliet@a.test") as juliet:
        await juliet.send(chat("romeo@gone.test", "anyone?"))
        error = await next_stanza(juliet, "message", type="error")
        assert (
            error.find(
                "{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}remote-server-not-found"
            )
            is not None
        )


async def test_a_spoofed_from_on_an_authenticated_stream_is_invalid_from(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """RFC 6120 §4.9.3.9: a stanza whose from is not the stream's authenticated
    domain closes the stream with invalid-from; nothing reaches the user."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    assert a.server.federation is not None
    async with client(b, "romeo@b.test") as romeo:
        await romeo.send(ET.Element(C + "presence"))
        link = await a.server.federation._open("a.test", "b.test")  # an authenticated stream
        await link.stream.send_all(
            b"<message from='mallory@evil.test' to='romeo@b.test' type='chat'>"
            b"<body>spoofed</body></message>"
        )
        received = b""
        with trio.fail_after(WAIT):
            while b"</stream:stream>" not in received:
                data = await link.stream.receive_some(65536)
                if not data:
                    break
                received += data
        assert b"<invalid-from" in received
        # The genuine domain still gets through on a new stream.
        await a.server.federation._close(link)
        async with client(a, "juliet@a.test") as juliet:
            await juliet.send(chat("romeo@b.test", "genuine"))
            got = await next_stanza(romeo, "message")
        assert got.findtext(C + "body") == "genuine"


async def test_a_wrong_dialback_key_closes_the_stream_and_nothing_is_delivered(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0220 §2.4: an impostor claiming b.test (untrusted certificate, a
    different secret) offers a key that the real b.test calls invalid: a.test
    answers ``type='invalid'``, closes the stream with ``not-authorized``, and
    the impostor's message never reaches juliet; the real b.test still does."""
    ca, rogue = trustme.CA(), trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    (tmp_path / "impostor").mkdir()
    impostor = await start_domain("b.test", rogue, ca, tmp_path / "impostor", nursery)
    assert a.server.federation is not None and impostor.server.federation is not None
    impostor.server.federation.hosts["a.test"] = ("127.0.0.1", a.server.federation.port)
    async with (
        client(a, "juliet@a.test") as juliet,
        client(impostor, "romeo@b.test") as mallory,
        client(b, "romeo@b.test") as romeo,
    ):
        await juliet.send(ET.Element(C + "presence"))
        await mallory.send(chat("juliet@a.test", "spoofed"))
        error = await next_stanza(mallory, "message", type="error")
        assert error.find(f"{C}error/{STANZAS}remote-server-not-found") is not None
        assert ("b.test", "a.test") not in a.server.federation.methods
        await romeo.send(chat("juliet@a.test", "genuine"))
        got = await next_stanza(juliet, "message")
        assert got.findtext(C + "body") == "genuine"
        assert a.server.federation.methods == {("b.test", "a.test"): "EXTERNAL"}


async def test_status_sessions_and_metrics_list_the_s2s_streams(
    tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    """Operations (issue 21): each s2s stream with its remote domain,
    direction, authentication method, queue and failures, on the admin
    socket, the command line and the metrics endpoint."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    assert a.server.federation is not None
    a.server.federation.hosts["gone.test"] = ("127.0.0.1", await closed_port())
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await exchange_between(juliet, "juliet@a.test", romeo, "romeo@b.test")
        await juliet.send(chat("romeo@gone.test", "anyone?"))
        await next_stanza(juliet, "message", type="error")
        path = socket_path(a.config)
        status = await trio.to_thread.run_sync(request, path, "status")
        sessions = await trio.to_thread.run_sync(request, path, "sessions")
        metrics = a.server.metrics.render().decode()
        config = tmp_path / "a.toml"
        config.write_text(f'domains = ["a.test"]\ndata_dir = "{a.config.data_dir}"\n')
        capsys.readouterr()
        code = await trio.to_thread.run_sync(main, ["status", "--config", str(config)])
        out = capsys.readouterr().out
    assert code == 0 and "s2s: 1 out, 1 in, 0 queued, 1 failures; b.test" in out
    assert status["s2s"] == {
        "outbound": 1,
        "inbound": 1,
        "domains": ["b.test"],
        "queued": 0,
        "failures": 1,
    }
    s2s = {(s["direction"], s["remote"]): s for s in sessions if s["sm"].startswith("s2s")}
    assert set(s2s) == {("out", "b.test"), ("in", "b.test")}
    for entry in s2s.values():
        assert entry["local"] == "a.test" and entry["method"] == "EXTERNAL"
        assert entry["tls"] in ("TLSv1.2", "TLSv1.3") and entry["address"].startswith("127.0.0.1")
        assert entry["queued"] == 0 and entry["failures"] == 0
    assert 'xmpp_s2s_streams{direction="out",method="EXTERNAL",remote="b.test"} 1.0' in metrics
    assert 'xmpp_s2s_streams{direction="in",method="EXTERNAL",remote="b.test"} 1.0' in metrics
    assert 'xmpp_s2s_failures_total{remote="gone.test"} 1.0' in metrics


async def closed_port() -> int:
    """A loopback port nobody listens on."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_direct_tls_from_an_xmpps_server_srv_record(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0368: b.test publishes only ``_xmpps-server._tcp`` pointing at its
    ``s2s-directtls`` listener; a.test finds it through DNS, opens TLS first
    (ALPN ``xmpp-server``) and authenticates with EXTERNAL, no STARTTLS."""
    ca = trustme.CA()
    direct_port = await closed_port()
    listeners = (
        ListenerConfig("c2s-starttls", "127.0.0.1", 0),
        ListenerConfig("c2s-directtls", "127.0.0.1", 0),
        ListenerConfig("s2s-directtls", "127.0.0.1", direct_port),
    )
    a = await start_domain("a.test", ca, ca, tmp_path, nursery)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery, options={"listeners": listeners})
    assert a.server.federation is not None and b.server.federation is not None
    b.server.federation.hosts["a.test"] = ("127.0.0.1", a.server.federation.port)
    records = {"_xmpps-server._tcp.b.test": [(0, 0, direct_port, "b.test")]}
    async with dns_server(records, {"b.test": "127.0.0.1"}) as nameserver:
        a.server.federation.nameservers = [nameserver]
        async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
            await exchange_between(juliet, "juliet@a.test", romeo, "romeo@b.test")
            (inbound,) = [s for s in b.server.federation.inbound if s.domain == "a.test"]
            assert isinstance(inbound.stream, trio.SSLStream)
            assert inbound.stream.selected_alpn_protocol() == "xmpp-server"
    assert b.server.federation.methods[("a.test", "b.test")] == "EXTERNAL"
    assert a.server.federation.failures == 0


MUC = "http://jabber.org/protocol/muc"


async def test_a_remote_user_takes_part_in_a_room_across_the_link(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0045 across domains: romeo@b.test joins a room at
    conference.a.test; the room's presence and messages reach him over the
    s2s link (the room's own domain authenticated by dialback, b.test asking
    a.test's server about conference.a.test), and his message reaches juliet."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    assert a.server.federation is not None and b.server.federation is not None
    b.server.federation.hosts["conference.a.test"] = ("127.0.0.1", a.server.federation.port)
    room = "room@conference.a.test"
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await juliet.send(muc_join(f"{room}/juliet"))
        await next_stanza(juliet, "presence", **{"from": f"{room}/juliet"})
        owner = ET.Element(C + "iq", {"type": "set", "to": room})
        query = ET.SubElement(owner, f"{{{MUC}#owner}}query")
        ET.SubElement(query, "{jabber:x:data}x", {"type": "submit"})  # an instant room
        await juliet.request(owner)
        await romeo.send(muc_join(f"{room}/romeo"))
        mine = await next_stanza(romeo, "presence", **{"from": f"{room}/romeo"})
        assert mine.get("type") is None
        await next_stanza(juliet, "presence", **{"from": f"{room}/romeo"})
        said = ET.Element(C + "message", {"to": room, "type": "groupchat"})
        ET.SubElement(said, C + "body").text = "hello from b"
        await romeo.send(said)
        got = await next_stanza(juliet, "message", **{"from": f"{room}/romeo"})
        assert got.findtext(C + "body") == "hello from b"
        said = ET.Element(C + "message", {"to": room, "type": "groupchat"})
        ET.SubElement(said, C + "body").text = "hello from a"
        await juliet.send(said)
        got = await next_stanza(romeo, "message", **{"from": f"{room}/juliet"})
        assert got.findtext(C + "body") == "hello from a"
    assert b.server.federation.methods[("conference.a.test", "b.test")] == "dialback"


def muc_join(occupant: str) -> ET.Element:
    presence = ET.Element(C + "presence", {"to": occupant})
    ET.SubElement(presence, f"{{{MUC}}}x")
    return presence


async def test_a_blocked_remote_jid_gets_an_error_and_nothing_is_delivered(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0191 across domains: juliet blocks romeo@b.test; his message comes
    back to him as an error over the link and never reaches her; the block
    is per JID, so another user of b.test still gets through."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    async with (
        client(a, "juliet@a.test") as juliet,
        client(b, "romeo@b.test") as romeo,
        client(b, "juliet@b.test") as other,
    ):
        await juliet.send(ET.Element(C + "presence"))
        block = ET.Element(C + "iq", {"type": "set"})
        items = ET.SubElement(block, "{urn:xmpp:blocking}block")
        ET.SubElement(items, "{urn:xmpp:blocking}item", {"jid": "romeo@b.test"})
        await juliet.request(block)
        await romeo.send(chat("juliet@a.test", "blocked?"))
        error = await next_stanza(romeo, "message", type="error")
        assert error.get("from") == "juliet@a.test"
        assert error.find(f"{C}error/{STANZAS}service-unavailable") is not None  # §3.5
        await other.send(chat("juliet@a.test", "not blocked"))
        got = await next_stanza(juliet, "message")
        assert got.findtext(C + "body") == "not blocked"


async def test_carbons_copy_messages_to_and_from_a_remote_contact(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0280 across domains: juliet's second resource, with carbons on,
    gets a copy of what her first sends to romeo@b.test (sent) and of what
    he sends to her first resource over the link (received)."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    carbons = "{urn:xmpp:carbons:2}"
    async with (
        client(a, "juliet@a.test") as first,
        client(a, "juliet@a.test") as second,
        client(b, "romeo@b.test") as romeo,
    ):
        enable = ET.Element(C + "iq", {"type": "set"})
        ET.SubElement(enable, carbons + "enable")
        await second.request(enable)
        for who in (first, second, romeo):
            await who.send(ET.Element(C + "presence"))
        await first.send(chat("romeo@b.test", "to b"))
        assert (await next_stanza(romeo, "message")).findtext(C + "body") == "to b"
        copy = await next_stanza(second, "message")
        assert copy.find(f"{carbons}sent") is not None
        assert "to b" in ET.tostring(copy, encoding="unicode")
        await romeo.send(chat(str(first.jid), "to a"))
        assert (await next_stanza(first, "message")).findtext(C + "body") == "to a"
        copy = await next_stanza(second, "message")
        assert copy.find(f"{carbons}received") is not None
        assert "to a" in ET.tostring(copy, encoding="unicode")


PUBSUB = "{http://jabber.org/protocol/pubsub}"
EVENT = "{http://jabber.org/protocol/pubsub#event}"
TUNE = "http://jabber.org/protocol/tune"


def pep_publish(title: str) -> ET.Element:
    stanza = ET.Element(C + "iq", {"type": "set"})
    publish = ET.SubElement(ET.SubElement(stanza, PUBSUB + "pubsub"), PUBSUB + "publish")
    publish.set("node", TUNE)
    item = ET.SubElement(publish, PUBSUB + "item", {"id": "current"})
    ET.SubElement(ET.SubElement(item, f"{{{TUNE}}}tune"), f"{{{TUNE}}}title").text = title
    return stanza


def pep_subscribe(owner: str, jid: str) -> ET.Element:
    stanza = ET.Element(C + "iq", {"type": "set", "to": owner})
    sub = ET.SubElement(ET.SubElement(stanza, PUBSUB + "pubsub"), PUBSUB + "subscribe")
    sub.set("node", TUNE)
    sub.set("jid", jid)
    return stanza


async def test_a_remote_contact_subscribed_to_a_pep_node_gets_the_publishes(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0163 across domains: romeo@b.test, who has juliet's presence,
    subscribes to her tune node (XEP-0060 §6.1, presence access model) over
    the link and gets the event of her next publish; juliet@b.test, without
    her presence, is refused (XEP-0060 §6.1.3.2)."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    async with (
        client(a, "juliet@a.test") as juliet,
        client(b, "romeo@b.test") as romeo,
        client(b, "juliet@b.test") as stranger,
    ):
        # romeo subscribes to juliet's presence and she approves.
        await exchange_between(romeo, "romeo@b.test", juliet, "juliet@a.test")
        await juliet.request(pep_publish("first"))
        answer = await romeo.request(pep_subscribe("juliet@a.test", "romeo@b.test"))
        assert answer.get("type") == "result" and answer.get("from") == "juliet@a.test"
        # The last item on subscribing (XEP-0060 §6.1.7, with a delay), then the new one.
        for title in ("first", "Gloria"):
            if title == "Gloria":
                await juliet.request(pep_publish("Gloria"))
            event = await next_stanza(romeo, "message", **{"from": "juliet@a.test"})
            items = event.find(f"{EVENT}event/{EVENT}items")
            assert items is not None and items.get("node") == TUNE
            got = items.findtext(f"{EVENT}item/{{{TUNE}}}tune/{{{TUNE}}}title")
            assert got == title
            assert (event.find("{urn:xmpp:delay}delay") is not None) == (title == "first")
        with pytest.raises(IqErrorResponse) as refused:
            await stranger.request(pep_subscribe("juliet@a.test", "juliet@b.test"))
        # XEP-0060 §6.1.3.2: not-authorized with <presence-subscription-required/>
        assert refused.value.element.get("from") == "juliet@a.test"
        assert refused.value.element.find(f"{C}error/{STANZAS}not-authorized") is not None
