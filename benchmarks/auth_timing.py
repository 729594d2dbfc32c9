"""How long the server takes to refuse a known and an unknown user (issue 10, item 14).

A wrong password for an existing account and any password for a missing one
should cost the server the same time, or the answer's delay tells which
accounts exist. This prints the median server time of both, and their ratio,
for PLAIN (the server runs PBKDF2: a decoy for the unknown user) and
SCRAM-SHA-256 (the server sends a decoy challenge; the client's PBKDF2 is
not counted). A ratio near 1.0 is what we want.

    python benchmarks/auth_timing.py            # 10 000 iterations, 60 attempts each
    python benchmarks/auth_timing.py --quick    # 4096 iterations, 12 attempts (< 5 s)

It asserts nothing; the tests check the property that matters (the same
derivation, hash and iterations, for both users), not timing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import re
import statistics
import time

import trio
from _server import Running, running_server

HEADER = (
    b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


class Conn:
    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self.stream = stream
        self.buffer = b""

    async def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise ConnectionError(self.buffer[-300:])
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker


async def connect(server: Running) -> Conn:
    raw = await trio.open_tcp_stream("127.0.0.1", server.port)
    stream = trio.SSLStream(raw, server.client_context(), server_hostname="localhost")
    await stream.do_handshake()
    conn = Conn(stream)
    await stream.send_all(HEADER)
    await conn.until(b"</stream:features>")
    return conn


def auth(mechanism: str, data: bytes) -> bytes:
    payload = base64.b64encode(data)
    return f"<auth xmlns='{SASL}' mechanism='{mechanism}'>".encode() + payload + b"</auth>"


async def plain_attempt(conn: Conn, username: str) -> float:
    start = time.perf_counter()
    await conn.stream.send_all(auth("PLAIN", f"\0{username}\0wrong password".encode()))
    await conn.until(b"</failure>")
    return time.perf_counter() - start


async def scram_attempt(conn: Conn, username: str) -> float:
    """Server time of a SCRAM-SHA-256 exchange with a wrong password."""
    first_bare = f"n={username},r=benchmarknonce"
    start = time.perf_counter()
    await conn.stream.send_all(auth("SCRAM-SHA-256", f"n,,{first_bare}".encode()))
    text = await conn.until(b"</challenge>")
    waited = time.perf_counter() - start
    found = re.search(rb">([^<]*)</challenge>", text)
    assert found is not None, text
    server_first = base64.b64decode(found.group(1)).decode()
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(
        "sha256", b"wrong password", base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    without_proof = f"c=biws,r={fields['r']}"
    message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), message, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
    start = time.perf_counter()
    await conn.stream.send_all(
        f"<response xmlns='{SASL}'>".encode() + base64.b64encode(final) + b"</response>"
    )
    await conn.until(b"</failure>")
    return waited + time.perf_counter() - start


async def measure(server: Running, attempt: object, username: str, count: int) -> list[float]:
    times: list[float] = []
    conn: Conn | None = None
    for n in range(count):
        if n % 5 == 0:  # max_auth_attempts is 6 per stream
            if conn is not None:
                await conn.stream.aclose()
            conn = await connect(server)
        assert conn is not None
        times.append(await attempt(conn, username))  # type: ignore[operator]
    if conn is not None:
        await conn.stream.aclose()
    return times


async def main(iterations: int, count: int) -> None:
    async with running_server(iterations) as server:
        print(f"PBKDF2 iterations {iterations}, {count} attempts per user, medians:")
        for name, attempt in (("PLAIN", plain_attempt), ("SCRAM-SHA-256", scram_attempt)):
            known: list[float] = []
            unknown: list[float] = []
            for _ in range(2):  # interleaved rounds, so drift hits both alike
                known += await measure(server, attempt, "juliet", count // 2)
                unknown += await measure(server, attempt, "nobody", count // 2)
            k, u = statistics.median(known), statistics.median(unknown)
            print(
                f"  {name:14} known {k * 1000:8.2f} ms   unknown {u * 1000:8.2f} ms"
                f"   unknown/known {u / k:5.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4096 iterations, 12 attempts")
    parser.add_argument("--iterations", type=int, default=10000)
    parser.add_argument("-n", "--attempts", type=int, default=60)
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.attempts = 4096, 12
    trio.run(main, args.iterations, args.attempts)
