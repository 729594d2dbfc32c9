"""Federation throughput (issue 21): chat messages/s carried over one s2s link.

    python benchmarks/s2s_bench.py                    # ours -> ours, ours <-> Prosody
    python benchmarks/s2s_bench.py --messages 5000 --targets ours

Each run: a sender on one server sends ``--messages`` chat messages (a
120-byte body) to a user of the other domain as fast as its client writes,
after one warm-up message has set the link up (authenticated TLS, SASL
EXTERNAL with a test CA); the figure is messages / seconds from the first
send to the last message received. Pairs measured:

* ``local``: the harness's own bound: juliet@a.test to romeo@a.test on one
  of our servers, no s2s link (the same clients, the same process);
* ``ours->ours``: a.test to b.test, both our server, in this process;
* ``ours->prosody`` and ``prosody->ours``: a.example (ours) and Prosody 0.12
  at c.example (its own process), found through SRV records served by the
  tests' DNS server (skipped when Prosody or lua-unbound is missing).

The clients (xmpp_trio's) run in this process too, as do both of our servers
in the first pair, so the figures are lower bounds of what one s2s link
carries. ``[federation] max_inbound_rate`` and the c2s read limits are raised
here so that they do not cap the measure (their defaults would: 1 MB/s per
remote domain, 100 kB/s per client). Wall clock: mark figures taken while
other work runs on the machine as SHARED.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import trio
import trustme

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "trio"))

from dns_server import dns_server  # noqa: E402
from prosody_peer import prosody  # noqa: E402
from test_federation_wire import PASSWORD, client, start_domain  # noqa: E402

from xmpp_trio.client import Client, open_client  # noqa: E402
from xmpp_trio.config import LimitsConfig  # noqa: E402

C = "{jabber:client}"
BODY = "x" * 120
FAST = {"limits": LimitsConfig(max_read_rate=10**9, max_output_buffer=10**9)}
RATE = {"max_inbound_rate": 10**9}


def chat(to: str, body: str) -> ET.Element:
    message = ET.Element(C + "message", {"to": to, "type": "chat"})
    ET.SubElement(message, C + "body").text = body
    return message


async def measure(sender: Client, receiver: Client, to: str, count: int) -> float:
    """Messages/s from ``sender`` to ``to`` (``receiver``'s account)."""
    await receiver.send(ET.Element(C + "presence"))
    await sender.send(chat(to, "warm-up"))
    with trio.fail_after(60):
        async for stanza in receiver:
            if stanza.tag == C + "message" and stanza.findtext(C + "body") == "warm-up":
                break
    done = trio.Event()
    received = 0

    async def receive() -> None:
        nonlocal received
        async for stanza in receiver:
            if stanza.tag == C + "message" and stanza.findtext(C + "body") == BODY:
                received += 1
                if received == count:
                    done.set()
                    return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        start = time.perf_counter()
        for _ in range(count):
            await sender.send(chat(to, BODY))
        with trio.fail_after(300):
            await done.wait()
        elapsed = time.perf_counter() - start
    return count / elapsed


async def ours_to_ours(count: int, home: Path) -> tuple[float, float]:
    ca = trustme.CA()
    async with trio.open_nursery() as nursery:
        a = await start_domain("a.test", ca, ca, home, nursery, options=FAST, **RATE)
        b = await start_domain("b.test", ca, ca, home, nursery, options=FAST, **RATE)
        assert a.server.federation is not None and b.server.federation is not None
        a.server.federation.hosts["b.test"] = ("127.0.0.1", b.server.federation.port)
        b.server.federation.hosts["a.test"] = ("127.0.0.1", a.server.federation.port)
        async with client(a, "juliet@a.test") as juliet, client(a, "romeo@a.test") as romeo:
            local = await measure(juliet, romeo, "romeo@a.test", count)
        async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
            rate = await measure(juliet, romeo, "romeo@b.test", count)
        nursery.cancel_scope.cancel()
    return local, rate


async def with_prosody(count: int, home: Path) -> tuple[float, float]:
    ca = trustme.CA()
    async with trio.open_nursery() as nursery:
        a = await start_domain("a.example", ca, ca, home, nursery, options=FAST, **RATE)
        assert a.server.federation is not None
        records: dict[str, list[tuple[int, int, int, str]]] = {
            "_xmpp-server._tcp.a.example": [(0, 0, a.server.federation.port, "a.example")],
        }
        addresses = {"a.example": "127.0.0.1", "c.example": "127.0.0.1"}
        async with dns_server(records, addresses) as dns:
            a.server.federation.nameservers = [dns]
            users = {"romeo": PASSWORD}
            async with prosody("c.example", ca, home / "prosody", dns, users, log_level="warn") as (
                c2s,
                s2s,
            ):
                records["_xmpp-server._tcp.c.example"] = [(0, 0, s2s, "c.example")]
                context = a.client_context()
                romeo_client = open_client(
                    "romeo@c.example", PASSWORD, host="127.0.0.1", port=c2s, ssl_context=context
                )
                async with client(a, "juliet@a.example") as juliet, romeo_client as romeo:
                    out = await measure(juliet, romeo, "romeo@c.example", count)
                    back = await measure(romeo, juliet, "juliet@a.example", count)
        nursery.cancel_scope.cancel()
    return out, back


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--targets", default="ours,prosody", help="ours, prosody or both")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    wanted = set(args.targets.split(","))
    print(f"s2s messages/s, {args.messages} chat messages of {len(BODY)}-byte bodies")
    if "ours" in wanted:
        with tempfile.TemporaryDirectory() as tmp:
            local, rate = trio.run(ours_to_ours, args.messages, Path(tmp))
        print(f"  local (no s2s)  {local:8.0f} msgs/s")
        print(f"  ours->ours      {rate:8.0f} msgs/s")
    if "prosody" in wanted:
        from prosody_peer import PROSODY

        if PROSODY is None:
            print("  ours<->prosody  skipped: prosody is not installed")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                out, back = trio.run(with_prosody, args.messages, Path(tmp))
            print(f"  ours->prosody   {out:8.0f} msgs/s")
            print(f"  prosody->ours   {back:8.0f} msgs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
