"""Piggybacking on the wire (XEP-0220 §2.6, RFC 6120 §13.7): several of our
domains (a.test and the rooms at conference.a.test) reach one remote domain
over ONE outbound stream; the new pair is added by dialback on the open
stream, checked with the authoritative server or, when the certificate names
the domain, at once (XEP-0344). Against our second server and Prosody 0.12."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextlib import suppress
from pathlib import Path

import trio
import trustme
from dns_server import dns_server
from prosody_peer import prosody, prosody_client, require_prosody
from test_federation_prosody import trustme_context
from test_federation_wire import (
    MUC,
    PASSWORD,
    WAIT,
    chat,
    client,
    muc_join,
    next_stanza,
    start_domain,
    two_servers,
)

from xmpp_trio.client import Client
from xmpp_trio.s2s import Federation
from xmpp_trio.s2s_status import s2s_entries

C = "{jabber:client}"
MUC_USER = f"{{{MUC}#user}}"


async def open_room(juliet: Client, room: str) -> None:
    """juliet creates an instant room (XEP-0045 §10.1.2) and is its owner."""
    await juliet.send(muc_join(f"{room}/juliet"))
    await next_stanza(juliet, "presence", **{"from": f"{room}/juliet"})
    owner = ET.Element(C + "iq", {"type": "set", "to": room})
    query = ET.SubElement(owner, f"{{{MUC}#owner}}query")
    ET.SubElement(query, "{jabber:x:data}x", {"type": "submit"})
    await juliet.request(owner)


async def invite(juliet: Client, room: str, invitee: str) -> None:
    """A mediated invitation (XEP-0045 §7.8.2): the room itself writes to the invitee."""
    message = ET.Element(C + "message", {"to": room})
    x = ET.SubElement(message, MUC_USER + "x")
    ET.SubElement(x, MUC_USER + "invite", {"to": invitee})
    await juliet.send(message)


async def invited_after_a_message(juliet: Client, romeo: Client, room: str, to: str) -> None:
    """juliet's domain reaches ``to`` first (its stream), then the room's
    domain does (a mediated invitation from a room juliet opens)."""
    await romeo.send(ET.Element(C + "presence"))
    await juliet.send(chat(to, "a room for us"))
    await next_stanza(romeo, "message")
    await open_room(juliet, room)
    await invite(juliet, room, to)
    with trio.fail_after(WAIT):
        await receive_invitation(romeo, room)


async def receive_invitation(romeo: Client, room: str) -> None:
    got = await next_stanza(romeo, "message", **{"from": room})
    assert got.find(f"{MUC_USER}x/{MUC_USER}invite") is not None


def one_shared_stream(federation: Federation, remote: str, locals_: set[str]) -> None:
    """Exactly one outbound stream to ``remote``, carrying every local domain."""
    (stream,) = federation.outbound[remote]
    assert stream.conn.pairs == {(local, remote) for local in locals_}
    assert {federation.links[local, remote].ready for local in locals_} == {stream}


async def test_the_rooms_domain_piggybacks_on_the_open_stream_with_a_dialback_check(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """a.test's certificate names a.test only: conference.a.test joins a.test's
    stream to b.test with a db:result, b.test asks a.test's server about the
    key (over its own verify stream) and the room's stanzas then go over the
    shared stream; b.test holds one inbound stream from a's server."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    assert a.server.federation is not None and b.server.federation is not None
    b.server.federation.hosts["conference.a.test"] = ("127.0.0.1", a.server.federation.port)
    room = "room@conference.a.test"
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await invited_after_a_message(juliet, romeo, room, "romeo@b.test")
        one_shared_stream(a.server.federation, "b.test", {"a.test", "conference.a.test"})
        # b.test has one stream from a's server carrying both pairs.
        (inbound,) = [s for s in b.server.federation.inbound if s.conn.pairs]
        assert inbound.conn.pairs == {("b.test", "a.test"), ("b.test", "conference.a.test")}
        # And the room works over it: romeo joins and hears juliet.
        await romeo.send(muc_join(f"{room}/romeo"))
        await next_stanza(romeo, "presence", **{"from": f"{room}/romeo"})
        said = ET.Element(C + "message", {"to": room, "type": "groupchat"})
        ET.SubElement(said, C + "body").text = "welcome"
        await juliet.send(said)
        got = await next_stanza(romeo, "message", **{"from": f"{room}/juliet"})
        assert got.findtext(C + "body") == "welcome"
        one_shared_stream(a.server.federation, "b.test", {"a.test", "conference.a.test"})
        # `sessions` lists each pair with how it was authenticated.
        out = [e for e in s2s_entries(a.server.federation) if e["direction"] == "out"]
        assert {(e["local"], e["method"]) for e in out} == {
            ("a.test", "EXTERNAL"),
            ("conference.a.test", "dialback"),
        }
    assert b.server.federation.methods[("a.test", "b.test")] == "EXTERNAL"
    assert b.server.federation.methods[("conference.a.test", "b.test")] == "dialback"


async def test_a_domain_the_certificate_names_piggybacks_without_a_callback(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0344: a.test's certificate also names conference.a.test, so b.test
    accepts the piggybacked pair at once; b.test does not even know where
    conference.a.test is (no override, no DNS), so no callback could work."""
    ca = trustme.CA()
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, names=("conference.a.test",))
    b = await start_domain("b.test", ca, ca, tmp_path, nursery)
    assert a.server.federation is not None and b.server.federation is not None
    a.server.federation.hosts["b.test"] = ("127.0.0.1", b.server.federation.port)
    room = "room@conference.a.test"
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await invited_after_a_message(juliet, romeo, room, "romeo@b.test")
        one_shared_stream(a.server.federation, "b.test", {"a.test", "conference.a.test"})
    assert b.server.federation.methods[("conference.a.test", "b.test")] == "dialback"
    assert a.server.federation.failures == 0 and b.server.federation.failures == 0


async def test_without_piggybacking_each_domain_opens_its_own_stream(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """``[federation] piggyback = false``: the room's domain gets a stream of its own."""
    ca = trustme.CA()
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, piggyback=False)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery)
    assert a.server.federation is not None and b.server.federation is not None
    a.server.federation.hosts["b.test"] = ("127.0.0.1", b.server.federation.port)
    b.server.federation.hosts["conference.a.test"] = ("127.0.0.1", a.server.federation.port)
    room = "room@conference.a.test"
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await invited_after_a_message(juliet, romeo, room, "romeo@b.test")
        links = a.server.federation.links
        assert links["a.test", "b.test"].ready is not links["conference.a.test", "b.test"].ready
        assert len(a.server.federation.outbound["b.test"]) == 2


async def test_piggybacking_on_a_stream_to_prosody(tmp_path: Path, nursery: trio.Nursery) -> None:
    """Prosody 0.12 (s2s_secure_auth) takes conference.a.example's db:result
    on the stream a.example opened with EXTERNAL, checks the key with our
    server (found by SRV, its certificate naming conference.a.example), and
    delivers the room's invitation; we keep one stream to it."""
    require_prosody()
    ca = trustme.CA()
    a = await start_domain("a.example", ca, ca, tmp_path, nursery, names=("conference.a.example",))
    assert a.server.federation is not None
    ours = a.server.federation.port
    records: dict[str, list[tuple[int, int, int, str]]] = {
        "_xmpp-server._tcp.a.example": [(0, 0, ours, "a.example")],
        "_xmpp-server._tcp.conference.a.example": [(0, 0, ours, "a.example")],
    }
    addresses = {"a.example": "127.0.0.1", "c.example": "127.0.0.1"}
    room = "room@conference.a.example"
    with trio.fail_after(60):
        async with dns_server(records, addresses) as dns:
            a.server.federation.nameservers = [dns]
            home = tmp_path / "prosody"
            async with prosody("c.example", ca, home, dns, {"romeo": PASSWORD}) as (c2s, s2s):
                records["_xmpp-server._tcp.c.example"] = [(0, 0, s2s, "c.example")]
                romeo_client = prosody_client("romeo@c.example", c2s, trustme_context(ca))
                async with client(a, "juliet@a.example") as juliet, romeo_client as romeo:
                    await invited_after_a_message(juliet, romeo, room, "romeo@c.example")
                    one_shared_stream(
                        a.server.federation, "c.example", {"a.example", "conference.a.example"}
                    )
            log = (home / "prosody.log").read_text()
    assert "is now authenticated for conference.a.example" in log
    assert a.server.federation.failures == 0


async def test_a_refused_piggybacked_pair_leaves_the_shared_stream_working(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """b.test requires valid certificates and a.test's names a.test only:
    b.test refuses conference.a.test's db:result on the shared stream
    (``not-authorized``, XEP-0220 §2.4), the room's link then tries a stream
    of its own, is refused there too and counts one failure; a.test's pair
    stays on the stream and juliet's next message still arrives."""
    ca = trustme.CA()
    a = await start_domain("a.test", ca, ca, tmp_path, nursery)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery, require_valid_certificates=True)
    assert a.server.federation is not None and b.server.federation is not None
    a.server.federation.hosts["b.test"] = ("127.0.0.1", b.server.federation.port)
    room = "room@conference.a.test"
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await romeo.send(ET.Element(C + "presence"))
        await juliet.send(chat("romeo@b.test", "a room for us"))
        await next_stanza(romeo, "message")
        await open_room(juliet, room)
        await invite(juliet, room, "romeo@b.test")
        with trio.fail_after(WAIT):
            while a.server.federation.domain_failures.get("b.test", 0) == 0:
                await trio.sleep(0.01)  # polling a counter, not timing a behaviour
        await juliet.send(chat("romeo@b.test", "still here"))
        got = await next_stanza(romeo, "message")
        assert got.findtext(C + "body") == "still here"
        (stream,) = a.server.federation.outbound["b.test"]
        assert stream.conn.pairs == {("a.test", "b.test")}
    assert a.server.federation.domain_failures == {"b.test": 1}
    assert ("conference.a.test", "b.test") not in b.server.federation.methods


async def test_a_piggybacked_pair_without_an_answer_times_out_and_leaves_the_stream(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """b.test cannot check conference.a.test's key (its server for that
    domain accepts and never speaks), so the pair gets no answer: after
    a.test's ``connect_timeout`` the room's link gives up (one failure) and
    is no longer counted on the shared stream, which a.test's pair still uses."""
    ca = trustme.CA()
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, connect_timeout=1.5)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery)
    assert a.server.federation is not None and b.server.federation is not None
    a.server.federation.hosts["b.test"] = ("127.0.0.1", b.server.federation.port)
    silent = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    held: list[trio.SocketStream] = []

    async def accept_and_hold() -> None:
        with suppress(trio.ClosedResourceError):
            while True:
                held.append(await silent.accept())

    nursery.start_soon(accept_and_hold)
    b.server.federation.hosts["conference.a.test"] = silent.socket.getsockname()[:2]
    room = "room@conference.a.test"
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await romeo.send(ET.Element(C + "presence"))
        await juliet.send(chat("romeo@b.test", "a room for us"))
        await next_stanza(romeo, "message")
        await open_room(juliet, room)
        await invite(juliet, room, "romeo@b.test")
        with trio.fail_after(WAIT):
            while a.server.federation.domain_failures.get("b.test", 0) == 0:
                await trio.sleep(0.01)  # polling a counter, not timing a behaviour
        (stream,) = a.server.federation.outbound["b.test"]
        assert stream.riders == {a.server.federation.links["a.test", "b.test"]}
        assert stream.asked == {}
        await juliet.send(chat("romeo@b.test", "still here"))
        got = await next_stanza(romeo, "message")
        assert got.findtext(C + "body") == "still here"
    await silent.aclose()
