"""Bidirectional server-to-server streams on the wire (XEP-0288): with both
sides willing, one TCP connection per pair of servers carries stanzas both
ways; a peer without it (our server with ``bidi = false``, Prosody without
mod_s2s_bidi) keeps the two one-way streams. Against our second server and
Prosody 0.12 (with its mod_s2s_bidi, shipped but not loaded by default)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import trio
import trustme
from conftest import RunningServer
from dns_server import dns_server
from prosody_peer import prosody, prosody_client, require_prosody
from test_federation_prosody import trustme_context
from test_federation_wire import (
    PASSWORD,
    C,
    chat,
    client,
    exchange_between,
    next_stanza,
    start_domain,
)

from xmpp_trio.config import LimitsConfig
from xmpp_trio.s2s import Federation


def opened(federation: Federation) -> int:
    """Outbound TCP streams this server opened itself (and still has)."""
    return len({id(s) for streams in federation.outbound.values() for s in streams if s.owned})


async def two(
    tmp_path: Path, nursery: trio.Nursery, *, b_bidi: bool = True
) -> tuple[RunningServer, RunningServer]:
    ca = trustme.CA()
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, bidi=True)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery, bidi=b_bidi)
    assert a.server.federation is not None and b.server.federation is not None
    a.server.federation.hosts["b.test"] = ("127.0.0.1", b.server.federation.port)
    b.server.federation.hosts["a.test"] = ("127.0.0.1", a.server.federation.port)
    return a, b


async def test_two_of_our_servers_talk_both_ways_over_one_connection(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """a.test opens the stream and asks for bidi; b.test's replies, its
    subscription answer and presence come back on it: b.test opens nothing,
    a.test accepts nothing."""
    a, b = await two(tmp_path, nursery)
    fa, fb = a.server.federation, b.server.federation
    assert fa is not None and fb is not None
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await exchange_between(juliet, "juliet@a.test", romeo, "romeo@b.test")
        await exchange_between(romeo, "romeo@b.test", juliet, "juliet@a.test")
        assert opened(fa) == 1 and opened(fb) == 0
        assert fa.inbound == set()
        (inbound,) = fb.inbound
        assert inbound.conn.bidi
        assert fb.links["b.test", "a.test"].ready is inbound
        assert fa.links["a.test", "b.test"].ready is not None
        assert fa.links["a.test", "b.test"].ready.conn.bidi
    assert fa.methods == {("b.test", "a.test"): "EXTERNAL"}
    assert fb.methods == {("a.test", "b.test"): "EXTERNAL"}
    assert fa.failures == 0 and fb.failures == 0


async def test_a_peer_without_bidi_keeps_two_one_way_streams(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """b.test has ``bidi = false``: it offers nothing, a.test asks nothing,
    each side opens its own stream as before."""
    a, b = await two(tmp_path, nursery, b_bidi=False)
    fa, fb = a.server.federation, b.server.federation
    assert fa is not None and fb is not None
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await exchange_between(juliet, "juliet@a.test", romeo, "romeo@b.test")
        assert opened(fa) == 1 and opened(fb) == 1
        assert len(fa.inbound) == 1 and len(fb.inbound) == 1
        assert not any(s.conn.bidi for s in fa.inbound | fb.inbound)


async def with_prosody(
    tmp_path: Path, nursery: trio.Nursery, *, ours_first: bool, bidi: bool = True
) -> tuple[Federation, str]:
    """a.example (ours, bidi) and Prosody's c.example exchange messages,
    subscriptions and presence, ours or Prosody speaking first; returns our
    federation (for its streams) and Prosody's log."""
    require_prosody()
    ca = trustme.CA()
    a = await start_domain("a.example", ca, ca, tmp_path, nursery, bidi=True)
    federation = a.server.federation
    assert federation is not None
    records: dict[str, list[tuple[int, int, int, str]]] = {
        "_xmpp-server._tcp.a.example": [(0, 0, federation.port, "a.example")],
    }
    addresses = {"a.example": "127.0.0.1", "c.example": "127.0.0.1"}
    home = tmp_path / "prosody"
    with trio.fail_after(60):
        async with dns_server(records, addresses) as dns:
            federation.nameservers = [dns]
            users = {"romeo": PASSWORD}
            async with prosody("c.example", ca, home, dns, users, bidi=bidi) as (c2s, s2s):
                records["_xmpp-server._tcp.c.example"] = [(0, 0, s2s, "c.example")]
                romeo_client = prosody_client("romeo@c.example", c2s, trustme_context(ca))
                async with client(a, "juliet@a.example") as juliet, romeo_client as romeo:
                    if ours_first:
                        await exchange_between(juliet, "juliet@a.example", romeo, "romeo@c.example")
                    else:
                        await exchange_between(romeo, "romeo@c.example", juliet, "juliet@a.example")
                    if bidi:
                        assert len(federation.inbound) + opened(federation) == 1
                    else:
                        assert len(federation.inbound) == 1 and opened(federation) == 1
    return federation, (home / "prosody.log").read_text()


async def test_ours_asks_prosody_for_bidi_and_prosody_answers_on_our_stream(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    federation, log = await with_prosody(tmp_path, nursery, ours_first=True)
    assert "Requested bidirectional stream" in log
    assert federation.failures == 0


async def test_prosody_asks_ours_for_bidi_and_we_answer_on_its_stream(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    federation, log = await with_prosody(tmp_path, nursery, ours_first=False)
    assert "Requesting bidirectional stream" in log
    assert federation.failures == 0


async def test_prosody_without_mod_s2s_bidi_is_unaffected(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    federation, log = await with_prosody(tmp_path, nursery, ours_first=True, bidi=False)
    assert "bidirectional" not in log
    assert federation.failures == 0


async def test_a_flood_back_on_our_bidirectional_stream_is_read_at_the_domain_rate(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """``max_inbound_rate`` holds for the remote's stanzas on the stream we
    opened too: c.test floods juliet@a.test back over a.test's bidi stream;
    a.test reads it at the rate (its bucket waits) and a local user's
    message arrives in the middle of the flood."""
    ca = trustme.CA()
    fast: dict[str, object] = {"limits": LimitsConfig(max_read_rate=10**8, max_output_buffer=10**8)}
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, bidi=True, max_inbound_rate=20_000)
    c = await start_domain("c.test", ca, ca, tmp_path, nursery, bidi=True, options=fast)
    fa, fc = a.server.federation, c.server.federation
    assert fa is not None and fc is not None
    fa.hosts["c.test"] = ("127.0.0.1", fc.port)
    flood = 50
    async with (
        client(a, "juliet@a.test") as juliet,
        client(a, "romeo@a.test") as neighbour,
        client(c, "juliet@c.test") as flooder,
    ):
        await juliet.send(ET.Element(C + "presence"))
        await flooder.send(ET.Element(C + "presence"))
        await juliet.send(chat("juliet@c.test", "hello c"))  # a.test opens the stream
        await next_stanza(flooder, "message")
        for n in range(flood):  # 50 x 4 kB: ten seconds at 20 kB/s
            await flooder.send(chat("juliet@a.test", f"{n} " + "y" * 4000))
        first = await next_stanza(juliet, "message")
        assert first.get("from", "").startswith("juliet@c.test/")
        await neighbour.send(chat("juliet@a.test", "from next door"))
        flooded = 1
        while (
            (got := await next_stanza(juliet, "message"))
            .get("from", "")
            .startswith("juliet@c.test/")
        ):
            flooded += 1
        assert got.findtext(C + "body") == "from next door"
        assert flooded < flood  # the flood was still being read
        assert fa.inbound == set() and opened(fa) == 1  # all of it on our stream
        assert fa.rates["c.test"].waited > 0
