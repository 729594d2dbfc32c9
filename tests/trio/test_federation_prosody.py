"""Federation with Prosody 0.12 (Debian, issue 21's Done-when): our server
at a.example and Prosody at c.example, found through SRV records served by a local
DNS server, exchange messages, subscriptions and presence both ways over
TLS authenticated with certificates (the test CA in Prosody's cafile)."""

from __future__ import annotations

import ssl
import xml.etree.ElementTree as ET
from pathlib import Path

import trio
import trustme
from dns_server import dns_server
from prosody_peer import free_port, prosody, require_prosody
from test_federation_wire import PASSWORD, client, exchange_between, start_domain

from xmpp_trio.client import Client, open_client
from xmpp_trio.config import ListenerConfig

C = "{jabber:client}"


def trustme_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_our_server_and_prosody_federate_both_ways(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    require_prosody()
    ca = trustme.CA()
    a = await start_domain("a.example", ca, ca, tmp_path, nursery)
    assert a.server.federation is not None
    ours = a.server.federation.port
    records: dict[str, list[tuple[int, int, int, str]]] = {
        "_xmpp-server._tcp.a.example": [(0, 0, ours, "a.example")],
    }
    addresses = {"a.example": "127.0.0.1", "c.example": "127.0.0.1"}
    with trio.fail_after(60):
        async with dns_server(records, addresses) as dns:
            a.server.federation.nameservers = [dns]
            async with prosody("c.example", ca, tmp_path / "prosody", dns, {"romeo": PASSWORD}) as (
                c2s,
                s2s,
            ):
                records["_xmpp-server._tcp.c.example"] = [(0, 0, s2s, "c.example")]
                romeo_client = open_client(
                    "romeo@c.example",
                    PASSWORD,
                    host="127.0.0.1",
                    port=c2s,
                    ssl_context=a.client_context(),
                )
                async with client(a, "juliet@a.example") as juliet, romeo_client as romeo:
                    # ours -> Prosody and back, then the subscriptions both ways.
                    await exchange_between(juliet, "juliet@a.example", romeo, "romeo@c.example")
                    await exchange_between(romeo, "romeo@c.example", juliet, "juliet@a.example")
    # Prosody (s2s_secure_auth) and we authenticated each other by certificate.
    assert a.server.federation.methods == {("c.example", "a.example"): "EXTERNAL"}
    assert a.server.federation.failures == 0


DISCO_INFO = "{http://jabber.org/protocol/disco#info}query"
VCARD = "{vcard-temp}vCard"


def iq(kind: str, to: str | None, child: str) -> ET.Element:
    stanza = ET.Element(C + "iq", {"type": kind})
    if to is not None:
        stanza.set("to", to)
    ET.SubElement(stanza, child)
    return stanza


async def set_vcard(who: Client, name: str) -> None:
    stanza = iq("set", None, VCARD)
    vcard = stanza.find(VCARD)
    assert vcard is not None
    ET.SubElement(vcard, "{vcard-temp}FN").text = name
    await who.request(stanza)


async def test_prosody_over_dialback_with_an_untrusted_certificate_and_cross_domain_iqs(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Prosody (without s2s_secure_auth) does not trust our certificate, so
    our stream to it is authenticated by Server Dialback (XEP-0220); disco#info
    (XEP-0030) to the other server and vCards (XEP-0054 §3.3) of the other
    domain's users are answered across the link both ways."""
    require_prosody()
    ca, untrusted = trustme.CA(), trustme.CA()
    a = await start_domain("a.example", untrusted, ca, tmp_path, nursery)
    assert a.server.federation is not None
    records: dict[str, list[tuple[int, int, int, str]]] = {
        "_xmpp-server._tcp.a.example": [(0, 0, a.server.federation.port, "a.example")],
    }
    addresses = {"a.example": "127.0.0.1", "c.example": "127.0.0.1"}
    with trio.fail_after(60):
        async with dns_server(records, addresses) as dns:
            a.server.federation.nameservers = [dns]
            async with prosody(
                "c.example", ca, tmp_path / "prosody", dns, {"romeo": PASSWORD}, secure=False
            ) as (c2s, s2s):
                records["_xmpp-server._tcp.c.example"] = [(0, 0, s2s, "c.example")]
                romeo_client = open_client(
                    "romeo@c.example",
                    PASSWORD,
                    host="127.0.0.1",
                    port=c2s,
                    ssl_context=trustme_context(ca),
                )
                async with client(a, "juliet@a.example") as juliet, romeo_client as romeo:
                    await exchange_between(juliet, "juliet@a.example", romeo, "romeo@c.example")
                    await exchange_between(romeo, "romeo@c.example", juliet, "juliet@a.example")
                    info = await juliet.request(iq("get", "c.example", DISCO_INFO))
                    assert info.get("from") == "c.example"
                    identity = info.find(
                        DISCO_INFO + "/{http://jabber.org/protocol/disco#info}identity"
                    )
                    assert identity is not None and identity.get("category") == "server"
                    info = await romeo.request(iq("get", "a.example", DISCO_INFO))
                    assert info.get("from") == "a.example"
                    identity = info.find(
                        DISCO_INFO + "/{http://jabber.org/protocol/disco#info}identity"
                    )
                    assert identity is not None and identity.get("category") == "server"
                    await set_vcard(juliet, "Juliet Capulet")
                    await set_vcard(romeo, "Romeo Montague")
                    card = await romeo.request(iq("get", "juliet@a.example", VCARD))
                    assert card.findtext(VCARD + "/{vcard-temp}FN") == "Juliet Capulet"
                    card = await juliet.request(iq("get", "romeo@c.example", VCARD))
                    assert card.findtext(VCARD + "/{vcard-temp}FN") == "Romeo Montague"
            log = (tmp_path / "prosody" / "prosody.log").read_text()
    assert a.server.federation.failures == 0
    # Prosody cannot verify a.example's certificate: it asked our server to
    # verify the dialback key (XEP-0220 §2.2) and accepted the stream on that.
    assert "asking a.example if key" in log
    assert "a.example->c.example is now authenticated for a.example" in log
    # We trust Prosody's certificate: its stream to us used SASL EXTERNAL.
    assert a.server.federation.methods == {("c.example", "a.example"): "EXTERNAL"}


async def test_our_server_and_prosody_federate_over_direct_tls(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0368 with Prosody 0.12: both domains publish only
    ``_xmpps-server._tcp`` records, pointing at Prosody's
    ``s2s_direct_tls_ports`` and at our ``s2s-directtls`` listener; messages
    go both ways over TLS set up before the stream header."""
    require_prosody()
    ca = trustme.CA()
    ours_direct, theirs_direct = free_port(), free_port()
    listeners = (
        ListenerConfig("c2s-starttls", "127.0.0.1", 0),
        ListenerConfig("c2s-directtls", "127.0.0.1", 0),
        ListenerConfig("s2s-directtls", "127.0.0.1", ours_direct),
    )
    a = await start_domain("a.example", ca, ca, tmp_path, nursery, options={"listeners": listeners})
    assert a.server.federation is not None
    records: dict[str, list[tuple[int, int, int, str]]] = {
        "_xmpps-server._tcp.a.example": [(0, 0, ours_direct, "a.example")],
        "_xmpps-server._tcp.c.example": [(0, 0, theirs_direct, "c.example")],
    }
    addresses = {"a.example": "127.0.0.1", "c.example": "127.0.0.1"}
    with trio.fail_after(60):
        async with dns_server(records, addresses) as dns:
            a.server.federation.nameservers = [dns]
            async with prosody(
                "c.example",
                ca,
                tmp_path / "prosody",
                dns,
                {"romeo": PASSWORD},
                direct_tls_port=theirs_direct,
            ) as (c2s, _):
                romeo_client = open_client(
                    "romeo@c.example",
                    PASSWORD,
                    host="127.0.0.1",
                    port=c2s,
                    ssl_context=a.client_context(),
                )
                async with client(a, "juliet@a.example") as juliet, romeo_client as romeo:
                    await exchange_between(juliet, "juliet@a.example", romeo, "romeo@c.example")
                    (inbound,) = [s for s in a.server.federation.inbound if s.domain == "c.example"]
                    assert isinstance(inbound.stream, trio.SSLStream)
                    assert inbound.stream.selected_alpn_protocol() == "xmpp-server"
                    (link,) = a.server.federation.links.values()
                    # Ours went to Prosody's direct TLS port (Prosody selects no ALPN).
                    assert link.ready is not None and isinstance(link.ready.stream, trio.SSLStream)
                    assert link.ready.peer == f"127.0.0.1:{theirs_direct}"
    assert a.server.federation.methods == {("c.example", "a.example"): "EXTERNAL"}
    assert a.server.federation.failures == 0
