"""Federation throughput (issue 21): chat messages/s carried over one s2s link.

    python benchmarks/s2s_bench.py                    # ours -> ours, ours <-> Prosody
    python benchmarks/s2s_bench.py --messages 5000 --targets ours
    python benchmarks/s2s_bench.py --external --messages 3000 --pairs 4 --procs 2 [--bidi]

``--external``: each of our two servers runs in a process of its own, and
the clients in ``--procs`` further processes carrying ``--pairs``
sender/receiver pairs (juliet<i>@a.test -> romeo<i>@b.test, all pairs over
the one s2s link); after every pair's warm-up the parent says "go" to all
client processes at once, and the figure is all messages over the union of
their send windows. ``local`` is the same with the receivers at a.test (no
link). Ours <-> Prosody is measured in-process only.

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
import json
import logging
import os
import ssl
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from contextlib import AsyncExitStack
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
#: --external: whether the server processes use XEP-0288 (S2S_BENCH_BIDI)
BIDI = [bool(os.environ.get("S2S_BENCH_BIDI"))]


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


# -- --external: servers and clients in processes of their own -------------------------


async def _serve(domain: str, home: Path, ca_cert: Path, ca_key: Path, users: int) -> None:
    """One of our servers in this process: prints its ports as a JSON line,
    then reads ``domain host port`` lines (its peers) and ``ready`` back."""
    ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    names = tuple(f"{who}{i}" for who in ("juliet", "romeo") for i in range(users))
    async with trio.open_nursery() as nursery:
        server = await start_domain(
            domain, ca, ca, home, nursery, users=names, options=FAST, bidi=BIDI[0], **RATE
        )
        federation = server.server.federation
        assert federation is not None
        print(json.dumps({"c2s": server.starttls_port, "s2s": federation.port}), flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(0))
        buffered = b""
        while b"ready" not in buffered:
            buffered += await stdin.receive_some(4096)
        for line in buffered.decode().splitlines():
            if line.count(" ") == 2:
                peer, host, port = line.split()
                federation.hosts[peer] = (host, int(port))
        print("ready", flush=True)
        while await stdin.receive_some(4096):
            pass  # until the parent closes our stdin
        nursery.cancel_scope.cancel()


async def _clients(spec: dict[str, object]) -> None:
    """Senders and receivers of some pairs: warm up, say ``warm``, wait for
    ``go`` on stdin, send, then print start, end and count as JSON."""
    context = ssl.create_default_context(cafile=str(spec["ca"]))
    count = int(str(spec["messages"]))
    pairs = [tuple(p) for p in spec["pairs"]]  # type: ignore[attr-defined]
    async with AsyncExitStack() as stack:
        clients = []
        for sender, s_port, receiver, r_port in pairs:
            tx = await stack.enter_async_context(
                open_client(sender, PASSWORD, host="127.0.0.1", port=s_port, ssl_context=context)
            )
            rx = await stack.enter_async_context(
                open_client(receiver, PASSWORD, host="127.0.0.1", port=r_port, ssl_context=context)
            )
            await rx.send(ET.Element(C + "presence"))
            await tx.send(chat(receiver, "warm-up"))
            with trio.fail_after(60):
                async for stanza in rx:
                    if stanza.findtext(C + "body") == "warm-up":
                        break
            clients.append((tx, rx, receiver))
        print("warm", flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(0))
        while b"go" not in await stdin.receive_some(64):
            pass
        start = time.time()
        got = 0

        async def send(tx: Client, to: str) -> None:
            for _ in range(count):
                await tx.send(chat(to, BODY))

        async def receive(rx: Client) -> None:
            nonlocal got
            seen = 0
            async for stanza in rx:
                if stanza.tag == C + "message" and stanza.findtext(C + "body") == BODY:
                    seen += 1
                    got += 1
                    if seen == count:
                        return

        with trio.fail_after(600):
            async with trio.open_nursery() as nursery:
                for tx, rx, to in clients:
                    nursery.start_soon(send, tx, to)
                    nursery.start_soon(receive, rx)
        print(json.dumps({"start": start, "end": time.time(), "count": got}), flush=True)


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def external(messages: int, pairs: int, procs: int, to_domain: str) -> float:
    """Two server processes (a.test, b.test) and ``procs`` client processes
    carrying ``pairs`` sender/receiver pairs; messages/s over the union of
    their send windows. ``to_domain`` a.test: the same without the link."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(home / "ca.pem"))
        ca.private_key_pem.write_to_path(str(home / "ca.key"))
        servers, ports = {}, {}
        for domain in ("a.test", "b.test"):
            (home / domain).mkdir()
            proc = _spawn("_serve", domain, str(home / domain), str(home), str(pairs))
            assert proc.stdout is not None
            servers[domain] = proc
            ports[domain] = json.loads(proc.stdout.readline())
        for domain, proc in servers.items():
            other = "b.test" if domain == "a.test" else "a.test"
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"{other} 127.0.0.1 {ports[other]['s2s']}\nready\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "ready"
        chunks: list[list[tuple[str, int, str, int]]] = [[] for _ in range(procs)]
        for i in range(pairs):
            chunks[i % procs].append(
                (
                    f"juliet{i}@a.test",
                    ports["a.test"]["c2s"],
                    f"romeo{i}@{to_domain}",
                    ports[to_domain]["c2s"],
                )
            )
        ca_file = home / "clients" / "ca.pem"
        ca_file.parent.mkdir()
        ca.cert_pem.write_to_path(str(ca_file))
        generators = []
        for chunk in chunks:
            spec = {"ca": str(ca_file), "messages": messages, "pairs": chunk}
            generators.append(_spawn("_clients", json.dumps(spec)))
        for proc in generators:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "warm"
        for proc in generators:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in generators:
            out, _ = proc.communicate(timeout=900)
            results.append(json.loads(out.strip().splitlines()[-1]))
        for proc in servers.values():
            proc.communicate(timeout=30)  # closes stdin: the server stops
    total = sum(r["count"] for r in results)
    assert total == messages * pairs, (total, messages * pairs)
    return total / (max(r["end"] for r in results) - min(r["start"] for r in results))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING)
    if argv[:1] == ["_serve"]:
        domain, home, ca_dir, users = argv[1:5]
        ca_path = Path(ca_dir)
        trio.run(_serve, domain, Path(home), ca_path / "ca.pem", ca_path / "ca.key", int(users))
        return 0
    if argv[:1] == ["_clients"]:
        trio.run(_clients, json.loads(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--targets", default="ours,prosody", help="ours, prosody or both")
    parser.add_argument(
        "--external", action="store_true", help="servers and clients in their own processes"
    )
    parser.add_argument("--pairs", type=int, default=4, help="--external: sender/receiver pairs")
    parser.add_argument("--procs", type=int, default=2, help="--external: client processes")
    parser.add_argument("--bidi", action="store_true", help="--external: XEP-0288 on")
    args = parser.parse_args(argv)
    if args.external:
        BIDI[0] = args.bidi
        os.environ["S2S_BENCH_BIDI"] = "1" if args.bidi else ""
        each = f"{args.pairs} pairs x {args.messages} messages, {args.procs} client processes"
        print(f"s2s messages/s, servers and clients in separate processes ({each})")
        local = external(args.messages, args.pairs, args.procs, "a.test")
        print(f"  local (no s2s)  {local:8.0f} msgs/s")
        rate = external(args.messages, args.pairs, args.procs, "b.test")
        print(f"  ours->ours      {rate:8.0f} msgs/s")
        return 0
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
