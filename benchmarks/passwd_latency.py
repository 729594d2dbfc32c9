"""Ping latency of one client while others hammer password changes (issue 10, item 11).

Each XEP-0077 password change derives new SCRAM credentials (PBKDF2 for three
hashes). Run on the event loop, five clients changing passwords in a loop
held every other session up for hundreds of milliseconds; run in worker
threads, a ping stays fast. This prints the p50, p99 and maximum round trip
of XEP-0199 pings from an idle client while ``--hammers`` clients change
their password as fast as the server answers.

    python benchmarks/passwd_latency.py            # 10 000 iterations, 5 hammers, 200 pings
    python benchmarks/passwd_latency.py --quick    # 4096 iterations, 2 hammers, 40 pings

It asserts nothing (the tests check that the derivation runs off the loop).
"""

from __future__ import annotations

import argparse
import statistics
import time
import xml.etree.ElementTree as ET

import trio
from _server import PASSWORDS, Running, running_server

from xmpp_trio.client import open_client

IQ = "{jabber:client}iq"


def change(username: str, password: str) -> ET.Element:
    iq = ET.Element(IQ, {"type": "set"})
    query = ET.SubElement(iq, "{jabber:iq:register}query")
    ET.SubElement(query, "{jabber:iq:register}username").text = username
    ET.SubElement(query, "{jabber:iq:register}password").text = password
    return iq


async def hammer(server: Running, resource: str, stop: trio.Event, done: list[int]) -> None:
    options = {"host": "127.0.0.1", "port": server.port, "direct_tls": True}
    async with open_client(
        f"juliet@localhost/{resource}",
        PASSWORDS["juliet"],
        ssl_context=server.client_context(),
        **options,  # type: ignore[arg-type]
    ) as client:
        while not stop.is_set():
            await client.request(change("juliet", PASSWORDS["juliet"]), timeout=60)
            done[0] += 1


async def main(iterations: int, hammers: int, pings: int) -> None:
    async with running_server(iterations, password_changes_per_hour=1_000_000) as server:
        stop = trio.Event()
        done = [0]
        async with (
            open_client(
                "romeo@localhost/pinger",
                PASSWORDS["romeo"],
                host="127.0.0.1",
                port=server.port,
                direct_tls=True,
                ssl_context=server.client_context(),
            ) as romeo,
            trio.open_nursery() as nursery,
        ):
            for n in range(hammers):
                nursery.start_soon(hammer, server, f"h{n}", stop, done)
            while done[0] < hammers:  # every hammer is under way
                await trio.sleep(0.01)
            rtts: list[float] = []
            for _ in range(pings):
                ping = ET.Element(IQ, {"type": "get", "to": "localhost"})
                ET.SubElement(ping, "{urn:xmpp:ping}ping")
                start = time.perf_counter()
                await romeo.request(ping, timeout=60)
                rtts.append(time.perf_counter() - start)
                await trio.sleep(0.01)
            stop.set()
        rtts.sort()
        p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
        print(
            f"PBKDF2 iterations {iterations}, {hammers} clients changing passwords "
            f"({done[0]} changes), {pings} pings:"
        )
        print(
            f"  ping p50 {statistics.median(rtts) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms"
            f"   max {rtts[-1] * 1000:7.2f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4096 iterations, 2 hammers, 40 pings")
    parser.add_argument("--iterations", type=int, default=10000)
    parser.add_argument("--hammers", type=int, default=5)
    parser.add_argument("-n", "--pings", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.hammers, args.pings = 4096, 2, 40
    trio.run(main, args.iterations, args.hammers, args.pings)
