"""Bad input on the federation wire (issue 21): a remote server that stops
reading. Our writes to it are bounded by ``[federation] send_timeout``: the
link is closed and what is still queued bounces with ``remote-server-timeout``
(RFC 6120 §8.3.3.14), without the payloads (RFC 6120 §8.3.1), so that a queue
of large stanzas bounced at once does not exceed the sender's XEP-0198
unacknowledged bound and close its stream: the sender goes on talking to
local users."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import trio
import trustme
from test_federation_wire import WAIT, C, chat, client, next_stanza, start_domain

from xmpp_trio.config import LimitsConfig

TIMEOUT = "{urn:ietf:params:xml:ns:xmpp-stanzas}remote-server-timeout"


class Valve:
    """A TCP proxy in front of a server; ``stop()`` makes it stop reading
    from the connecting side (a remote that no longer reads its input)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.open = trio.Event()
        self.open.set()
        self.connections = 0

    def stop(self) -> None:
        self.open = trio.Event()

    def resume(self) -> None:
        self.open.set()

    async def serve(self, inbound: trio.SocketStream) -> None:
        self.connections += 1
        outbound = await trio.open_tcp_stream("127.0.0.1", self.target)
        async with inbound, outbound, trio.open_nursery() as nursery:

            async def pump(src: trio.SocketStream, dst: trio.SocketStream, gated: bool) -> None:
                try:
                    while True:
                        if gated:
                            await self.open.wait()
                        data = await src.receive_some(16384)
                        if not data:
                            break
                        await dst.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(pump, inbound, outbound, True)
            nursery.start_soon(pump, outbound, inbound, False)


async def test_a_remote_that_stops_reading_is_closed_and_queued_stanzas_bounce(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    ca = trustme.CA()
    fast: dict[str, object] = {"limits": LimitsConfig(max_read_rate=10**8, max_output_buffer=10**8)}
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, options=fast, send_timeout=1.0)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery, options=fast)
    assert a.server.federation is not None and b.server.federation is not None
    b.server.federation.hosts["a.test"] = ("127.0.0.1", a.server.federation.port)
    valve = Valve(b.server.federation.port)
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, valve.serve, 0, host="127.0.0.1")
    )
    a.server.federation.hosts["b.test"] = ("127.0.0.1", listeners[0].socket.getsockname()[1])
    big = "x" * 200_000
    async with (
        client(a, "juliet@a.test") as juliet,
        client(b, "romeo@b.test") as romeo,
        client(a, "romeo@a.test") as neighbour,
    ):
        await romeo.send(ET.Element(C + "presence"))
        await neighbour.send(ET.Element(C + "presence"))
        await juliet.send(chat("romeo@b.test", "first"))
        assert (await next_stanza(romeo, "message")).findtext(C + "body") == "first"
        valve.stop()
        # Far more than the socket buffers hold: a's writes to b.test stall.
        with trio.fail_after(30):
            bounced = 0
            sent = 0
            while bounced == 0:
                if sent < 400:
                    await juliet.send(chat("romeo@b.test", big))
                    sent += 1
                    with trio.move_on_after(0.01):  # only to interleave, not timing
                        error = await next_stanza(juliet, "message", type="error")
                        bounced += error.find(f"{C}error/{TIMEOUT}") is not None
                        assert error.find(C + "body") is None
                else:
                    error = await next_stanza(juliet, "message", type="error")
                    bounced += error.find(f"{C}error/{TIMEOUT}") is not None
        # Dozens of 200 kB stanzas bounced at once; with their payloads they
        # exceeded sm_max_unacked_bytes (8 MiB) and the sender's stream closed.
        await juliet.send(chat("romeo@a.test", "still here"))
        got = await next_stanza(neighbour, "message")
        assert got.findtext(C + "body") == "still here"
        assert juliet.error is None
    assert a.server.federation.failures == 1


async def test_a_flood_from_one_remote_domain_is_throttled_and_others_go_on(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """``[federation] max_inbound_rate``: c.test floods juliet@a.test; a.test
    reads c.test's streams at that rate only, so b.test's message and a local
    user's arrive while the flood is still being read."""
    ca = trustme.CA()
    fast: dict[str, object] = {"limits": LimitsConfig(max_read_rate=10**8, max_output_buffer=10**8)}
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, max_inbound_rate=20_000)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery)
    c = await start_domain("c.test", ca, ca, tmp_path, nursery, options=fast)
    for server in (a, b, c):
        assert server.server.federation is not None
    for me in (b, c):
        assert me.server.federation is not None and a.server.federation is not None
        me.server.federation.hosts["a.test"] = ("127.0.0.1", a.server.federation.port)
    for domain, other in (("b.test", b), ("c.test", c)):
        assert other.server.federation is not None
        a.server.federation.hosts[domain] = ("127.0.0.1", other.server.federation.port)
    flood = 50
    async with (
        client(a, "juliet@a.test") as juliet,
        client(a, "romeo@a.test") as neighbour,
        client(b, "romeo@b.test") as romeo,
        client(c, "juliet@c.test") as flooder,
    ):
        await juliet.send(ET.Element(C + "presence"))
        for n in range(flood):  # 50 x 4 kB: ten seconds at 20 kB/s
            await flooder.send(chat("juliet@a.test", f"{n} " + "y" * 4000))
        first = await next_stanza(juliet, "message")
        assert first.get("from", "").startswith("juliet@c.test/")
        await romeo.send(chat("juliet@a.test", "from b"))
        await neighbour.send(chat("juliet@a.test", "from next door"))
        flooded = 1
        others: set[str] = set()
        while len(others) < 2:
            got = await next_stanza(juliet, "message")
            if got.get("from", "").startswith("juliet@c.test/"):
                flooded += 1
            else:
                others.add(got.findtext(C + "body") or "")
        assert others == {"from b", "from next door"}
        assert flooded < flood  # the flood was still being read
        assert a.server.federation.rates["c.test"].waited > 0
        assert "b.test" not in a.server.federation.rates or (
            a.server.federation.rates["b.test"].waited == 0
        )


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition of the servers' state (polled; the bound is WAIT)."""
    with trio.fail_after(WAIT):
        while not predicate():
            await trio.sleep(0.02)


async def test_an_idle_link_is_pinged_and_closed_when_no_answer_comes(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """XEP-0199 §4.3: a.test pings its idle link to b.test; b.test answers an
    iq to the server itself from a remote server (over its own stream back).
    Once b.test stops reading, the next ping goes unanswered and the link is
    closed after ``ping_timeout``."""
    ca = trustme.CA()
    a = await start_domain("a.test", ca, ca, tmp_path, nursery, ping_interval=0.2, ping_timeout=1.0)
    b = await start_domain("b.test", ca, ca, tmp_path, nursery)
    assert a.server.federation is not None and b.server.federation is not None
    federation = a.server.federation
    b.server.federation.hosts["a.test"] = ("127.0.0.1", federation.port)
    valve = Valve(b.server.federation.port)
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, valve.serve, 0, host="127.0.0.1")
    )
    federation.hosts["b.test"] = ("127.0.0.1", listeners[0].socket.getsockname()[1])
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await romeo.send(ET.Element(C + "presence"))
        await juliet.send(chat("romeo@b.test", "first"))
        assert (await next_stanza(romeo, "message")).findtext(C + "body") == "first"
        await until(lambda: federation.pings_answered >= 2)
        assert ("a.test", "b.test") in federation.links and federation.failures == 0
        valve.stop()
        await until(lambda: ("a.test", "b.test") not in federation.links)
    assert federation.failures == 1 and federation.domain_failures == {"b.test": 1}
