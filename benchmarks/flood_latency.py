"""Ping latency of one client while another floods the server (issue 10).

    python benchmarks/flood_latency.py                 # every flood, 100 pings each
    python benchmarks/flood_latency.py --pings 300 --floods presence,directed

For each flood a fresh ``python -m xmpp_trio serve`` (default ``[limits]``,
except a high ``max_read_rate`` so that the flooder is limited by the server's
work, not by the read-rate limiter) runs on a temporary data directory. The
client ``pinger`` measures XEP-0199 ping round trips (``trio.current_time``),
first with no flood, then while ``flooder`` sends, one ``send_all`` after the
other:

* ``roster-groups``: roster sets of one item with 10,000 ``<group/>`` children
  (about 150 KB each), then a roster get;
* ``presence``: 2,000 ``<presence/>`` per write from an account with 300
  subscribers (seeded in its roster), each costing 300 routings;
* ``directed``: directed presence, 2,000 per write, each to a new JID;
* ``subscription-status``: ``subscribe`` requests with a 200 KB status to
  an offline account from 20 accounts; afterwards that account's login is
  timed and the bytes it receives are counted (redelivered requests);
* ``private``: private XML sets of 500 elements each;
* ``auth-log``: unauthenticated, from the pinger's address: 8 connections at a
  time, each opening a TLS stream and failing PLAIN logins with 4,000-character
  usernames until the server ends it (log lines, back-off table, TLS
  handshakes);
* ``unacked``: the flooder enables XEP-0198 and never acknowledges, while it
  sends itself 4 KB messages, 200 per write: the server's unacknowledged queue
  grows until its bound (``max_unacked_connected``/``max_unacked_bytes``) ends
  the stream, and the flooder logs in again.

It prints, per flood, the round trips measured, p50, p99 and max in
milliseconds, how many bytes the flooder wrote, and how long the server took
to exit after a SIGTERM sent while the flood went on (about 5 s: the close
grace the server gives clients to close their streams, which these do not). Nothing is asserted; the
regression test with a bound is
``tests/trio/test_bounds.py::test_presence_flood_does_not_starve_another_clients_pings``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import trio

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.server.roster import StoredItem
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_sansio.stream.events import AuthenticationFailed, NegotiationFailed, ResourceBound
from xmpp_trio import _tls
from xmpp_trio.certs import ensure_certificate
from xmpp_trio.storage import AccountStore

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "localhost"
PASSWORD = "flood-latency-password"
FLOODS = (
    "roster-groups",
    "presence",
    "directed",
    "subscription-status",
    "private",
    "auth-log",
    "unacked",
)
SENDERS = 20  # accounts sending subscription requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start listening")


class Server:
    """A ``python -m xmpp_trio serve`` on a fresh data directory."""

    def __init__(self, workdir: Path, accounts: list[str], subscribers: dict[str, int]) -> None:
        self.data = workdir / "data"
        self.data.mkdir(parents=True)
        cert, _ = ensure_certificate(self.data, [DOMAIN])
        self.context = ssl.create_default_context(cafile=str(cert))
        with AccountStore.open(self.data / "xmpp.sqlite3") as store:
            for local in accounts:
                store.create(local, DOMAIN, PASSWORD, iterations=4096)
        if subscribers:
            import sqlite3

            from xmpp_trio.stores.roster import SqliteRosterStorage

            db = sqlite3.connect(self.data / "xmpp.sqlite3", isolation_level=None)
            storage = SqliteRosterStorage(db)
            for user, count in subscribers.items():
                for n in range(count):
                    contact = JID.parse(f"fan{n}@{DOMAIN}")
                    item = RosterItem(contact, None, Subscription.FROM)
                    storage.put(JID.parse(f"{user}@{DOMAIN}"), StoredItem(item))
            db.close()
        self.port = free_port()
        config = workdir / "xmpp.toml"
        config.write_text(
            f'domains = ["{DOMAIN}"]\ndata_dir = "{self.data}"\nlog_level = "warning"\n'
            "scram_iterations = 4096\n\n[limits]\nmax_read_rate = 1073741824\n"
            "auth_failures_before_backoff = 1000000\n"
            f'\n[[listeners]]\nkind = "c2s-directtls"\naddress = "127.0.0.1"\nport = {self.port}\n'
        )
        command = [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)]
        self.proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
        wait_listening(self.proc, self.port)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print("  the server ignored SIGTERM for 20 s: killed")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Wire:
    """A bound client as raw bytes, with a parser for what it receives."""

    def __init__(self, stream: trio.SSLStream[trio.SocketStream], conn: ClientConnection) -> None:
        self.stream = stream
        self.conn = conn
        self.received = 0

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def wait_for(self, marker: bytes) -> None:
        """Read until ``marker`` appears (in what arrives from now on)."""
        tail = b""
        while True:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            self.received += len(chunk)
            tail = (tail + chunk)[-(len(marker) + 65536) :]
            if marker in tail:
                return

    async def drain(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while chunk := await self.stream.receive_some(65536):
                self.received += len(chunk)


async def login(server: Server, local: str, resource: str) -> Wire:
    """Log in over direct TLS with the sans-IO client; the raw wire once bound."""
    raw = await trio.open_tcp_stream("127.0.0.1", server.port)
    stream = trio.SSLStream(raw, server.context, server_hostname=DOMAIN)
    await stream.do_handshake()
    conn = ClientConnection(
        ClientConfig(
            rng=secrets.token_bytes,
            jid=JID.parse(f"{local}@{DOMAIN}/{resource}"),
            password=PASSWORD,
            stream_management=False,
        ),
        tls_active=True,
        tls_info=_tls.client_tls_info(stream),
    )
    conn.start()
    await stream.send_all(conn.data_to_send())
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection during login")
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not None:
            if isinstance(event, ResourceBound):
                await stream.send_all(conn.data_to_send())
                return Wire(stream, conn)
            if isinstance(event, (AuthenticationFailed, NegotiationFailed)):
                raise RuntimeError(f"login failed: {event}")
        await stream.send_all(conn.data_to_send())


async def pings(wire: Wire, count: int) -> list[float]:
    samples = []
    for n in range(count):
        sent = trio.current_time()
        await wire.send(
            f"<iq type='get' to='{DOMAIN}' id='p{n}'><ping xmlns='urn:xmpp:ping'/></iq>".encode()
        )
        await wire.wait_for(f'id="p{n}"'.encode())
        samples.append(trio.current_time() - sent)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def payloads(flood: str) -> Callable[[int], bytes]:
    """The flooder's n-th write."""
    if flood == "roster-groups":
        groups = "".join(f"<group>g{n}</group>" for n in range(10_000))
        item = f"<item jid='romeo@{DOMAIN}'>{groups}</item>"
        return lambda n: (
            f"<iq type='set' id='r{n}'><query xmlns='jabber:iq:roster'>{item}</query></iq>"
            f"<iq type='get' id='g{n}'><query xmlns='jabber:iq:roster'/></iq>"
        ).encode()
    if flood == "presence":
        return lambda n: b"<presence/>" * 2000
    if flood == "directed":
        return lambda n: "".join(
            f"<presence to='t{n}-{i}@remote.example/r'/>" for i in range(2000)
        ).encode()
    if flood == "private":
        return lambda n: (
            f"<iq type='set' id='v{n}'><query xmlns='jabber:iq:private'>"
            + "".join(f"<e{i} xmlns='urn:example:{n}'>{'x' * 100}</e{i}>" for i in range(500))
            + "</query></iq>"
        ).encode()
    raise ValueError(flood)


@contextlib.asynccontextmanager
async def flooding(wire: Wire, payload: Callable[[int], bytes]) -> AsyncIterator[list[int]]:
    """Write the flood (and drain the flooder's input) while the body runs."""
    written = [0]
    async with trio.open_nursery() as nursery:

        async def flood() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                n = 0
                while True:
                    data = payload(n)
                    await wire.send(data)
                    written[0] += len(data)
                    n += 1

        nursery.start_soon(flood)
        nursery.start_soon(wire.drain)
        yield written
        nursery.cancel_scope.cancel()


async def subscription_flood(server: Server, pinger: Wire, count: int) -> str:
    status = "s" * 200_000
    senders = [await login(server, f"sender{i}", "r") for i in range(SENDERS)]
    written = 0
    async with trio.open_nursery() as nursery:

        async def send_all() -> None:
            nonlocal written
            for i, sender in enumerate(senders):
                data = (
                    f"<presence to='victim@{DOMAIN}' type='subscribe' id='s{i}'>"
                    f"<status>{status}</status></presence>"
                ).encode()
                await sender.send(data)
                written += len(data)

        nursery.start_soon(send_all)
        samples = await pings(pinger, count)
    started = trio.current_time()
    victim = await login(server, "victim", "r")
    await victim.send(b"<presence/><iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>")
    await victim.wait_for(b'id="done"')
    took = trio.current_time() - started
    return (
        f"{report(samples)}  wrote {written / 1e6:.1f} MB; victim login with"
        f" {SENDERS} pending requests: {took * 1000:.0f} ms, {victim.received / 1000:.0f} KB"
    )


async def auth_log_flood(server: Server, pinger: Wire, count: int) -> str:
    """Failed logins with huge usernames, 8 connections at a time (item 13)."""
    attempts = [0]

    async def one_connection(n: int) -> None:
        raw = await trio.open_tcp_stream("127.0.0.1", server.port)
        stream = trio.SSLStream(raw, server.context, server_hostname=DOMAIN)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await stream.do_handshake()
            await stream.send_all(
                f"<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' "
                "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>".encode()
            )
            for k in range(10):
                user = f"u{n}-{k}-" + "x" * 4000
                token = base64.b64encode(f"\0{user}\0wrong".encode()).decode()
                await stream.send_all(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                    f"{token}</auth>".encode()
                )
                attempts[0] += 1
            while await stream.receive_some(65536):
                pass
        with contextlib.suppress(Exception):
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:

        async def flood() -> None:
            n = 0
            limiter = trio.CapacityLimiter(8)
            async with trio.open_nursery() as inner:
                while True:
                    await limiter.acquire_on_behalf_of(n)

                    async def run(k: int = n) -> None:
                        try:
                            await one_connection(k)
                        finally:
                            limiter.release_on_behalf_of(k)

                    inner.start_soon(run)
                    n += 1

        nursery.start_soon(flood)
        samples = await pings(pinger, count)
        nursery.cancel_scope.cancel()
    return f"{report(samples)}  {attempts[0]} failed attempts sent"


async def unacked_flood(server: Server, pinger: Wire, count: int) -> str:
    """A client that enables XEP-0198 and never acknowledges (item 12)."""
    rounds = [0]
    body = "u" * 4000

    async with trio.open_nursery() as nursery:

        async def flood() -> None:
            while True:
                flooder = await login(server, "flooder", "f")
                await flooder.send(b"<enable xmlns='urn:xmpp:sm:3'/>")
                message = (
                    f"<message to='flooder@{DOMAIN}/f' type='chat'><body>{body}</body></message>"
                ).encode()
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    async with trio.open_nursery() as inner:
                        inner.start_soon(flooder.drain)  # read, never acknowledge
                        while True:
                            await flooder.send(message * 200)
                rounds[0] += 1

        nursery.start_soon(flood)
        samples = await pings(pinger, count)
        nursery.cancel_scope.cancel()
    return f"{report(samples)}  the flooder's stream was ended {rounds[0]} times"


def report(samples: list[float]) -> str:
    return (
        f"{len(samples)} pings  p50 {percentile(samples, 0.5) * 1000:7.1f} ms"
        f"  p99 {percentile(samples, 0.99) * 1000:7.1f} ms  max {max(samples) * 1000:7.1f} ms"
    )


async def run_flood(flood: str, count: int) -> None:
    accounts = ["pinger", "flooder", "victim", *(f"sender{i}" for i in range(SENDERS))]
    subscribers = {"flooder": 300} if flood == "presence" else {}
    with tempfile.TemporaryDirectory(prefix="flood-") as tmp:
        server = Server(Path(tmp), accounts, subscribers)
        try:
            pinger = await login(server, "pinger", "p")
            print(f"{flood:>20}  idle:    {report(await pings(pinger, count))}")
            if flood == "subscription-status":
                print(f"{flood:>20}  flooded: {await subscription_flood(server, pinger, count)}")
                return
            if flood in ("auth-log", "unacked"):
                run = auth_log_flood if flood == "auth-log" else unacked_flood
                with trio.fail_after(600):
                    print(f"{flood:>20}  flooded: {await run(server, pinger, count)}")
                return
            flooder = await login(server, "flooder", "f")
            with trio.fail_after(600):
                async with flooding(flooder, payloads(flood)) as written:
                    samples = await pings(pinger, count)
                    # SIGTERM in the middle of the flood: how long until the server exits.
                    started = time.monotonic()
                    await trio.to_thread.run_sync(server.stop)
                    stopped = time.monotonic() - started
            print(
                f"{flood:>20}  flooded: {report(samples)}  wrote {written[0] / 1e6:.1f} MB;"
                f" SIGTERM to exit {stopped * 1000:.0f} ms"
            )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=100, help="round trips per measurement")
    parser.add_argument(
        "--floods", default=",".join(FLOODS), help="comma-separated: " + ", ".join(FLOODS)
    )
    args = parser.parse_args()
    for flood in args.floods.split(","):
        trio.run(run_flood, flood, args.pings)


if __name__ == "__main__":
    main()
