"""The server's cost of ``[tls] backend = "openssl"`` (pyOpenSSL, for
tls-exporter, RFC 9266) against the stdlib's :mod:`ssl`, in-process and
repeatable (docs/sasl2.md):

    PYTHONPATH=$PWD python3 benchmarks/tls_backend_bench.py [--messages 20000]

* CPU: the server side of a loopback socketpair reads one 300-byte stanza
  and writes one through its TLS socket (``ssl.SSLSocket`` or
  ``OpenSSLSocket``, what ``SocketTransport`` calls); ``time.process_time``
  around the server's two calls only, best and median of 5 interleaved runs.
* Memory: RSS growth per established connection (both ends in this process:
  the client is the stdlib's in both cases, so the difference is the
  server's), and the Python heap per connection (tracemalloc).

The closed-loop figures (msgs/s, KB per session) come from
``benchmarks/load/run.py --quick --targets ours --scenarios throughput,memory``
with and without ``XMPP_TRIO_BENCH_CONFIG='[tls]\\nbackend = "openssl"'``.
"""

from __future__ import annotations

import argparse
import gc
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import trustme

from xmpp_trio._openssl_stream import OpenSSLSocket, TLSContext, openssl_server_context
from xmpp_trio.certs import load_server_ssl_context

STANZA = (
    b"<message to='u1@localhost' type='chat' id='abcdef'><body>" + b"x" * 220 + b"</body></message>"
)
BACKENDS = ("stdlib", "openssl")


def contexts(directory: Path) -> tuple[dict[str, TLSContext], ssl.SSLContext]:
    ca = trustme.CA()
    pem = directory / "server.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    servers: dict[str, TLSContext] = {
        "stdlib": load_server_ssl_context(pem, pem),
        "openssl": openssl_server_context(pem, pem),
    }
    client = ssl.create_default_context(cafile=None)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return servers, client


def connected(
    server_ctx: TLSContext, client_ctx: ssl.SSLContext
) -> tuple[ssl.SSLSocket | OpenSSLSocket, ssl.SSLSocket]:
    a, b = socket.socketpair()
    server = server_ctx.wrap_socket(b, server_side=True, do_handshake_on_connect=False)
    client = client_ctx.wrap_socket(a, server_hostname="localhost", do_handshake_on_connect=False)
    server.setblocking(False)
    client.setblocking(False)
    pending = [client, server]
    while pending:
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
    return server, client


def cpu_per_message(server_ctx: TLSContext, client_ctx: ssl.SSLContext, n: int) -> float:
    server, client = connected(server_ctx, client_ctx)
    spent = 0.0
    for _ in range(n):
        client.send(STANZA)
        start = time.process_time()
        server.recv(65536)
        server.send(STANZA)
        spent += time.process_time() - start
        client.recv(65536)
    server.close()
    client.close()
    return spent / n * 1e6


def rss_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def memory_per_connection(
    server_ctx: TLSContext, client_ctx: ssl.SSLContext, n: int
) -> tuple[float, float]:
    keep = [connected(server_ctx, client_ctx) for _ in range(20)]
    gc.collect()
    tracemalloc.start()
    before = rss_kb()
    for _ in range(n):
        server, client = connected(server_ctx, client_ctx)
        server.send(STANZA)
        client.recv(65536)
        keep.append((server, client))
    gc.collect()
    heap, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grown = rss_kb() - before
    for server, client in keep:
        server.close()
        client.close()
    return grown / n, heap / n / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--memory-of", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        servers, client = contexts(Path(tmp))
        if args.memory_of:  # one backend per process: freed pages are not reused
            rss, heap = memory_per_connection(servers[args.memory_of], client, args.connections)
            print(
                f"{args.memory_of:8} per connection: RSS {rss:.1f} KB (both ends),"
                f" Python heap {heap:.1f} KB"
            )
            return
        runs: dict[str, list[float]] = {name: [] for name in BACKENDS}
        for _ in range(5):
            for name in BACKENDS:
                runs[name].append(cpu_per_message(servers[name], client, args.messages))
        for name in BACKENDS:
            values = runs[name]
            print(
                f"{name:8} server CPU per stanza read + written: best {min(values):.2f} us,"
                f" median {statistics.median(values):.2f} us"
            )
    for name in BACKENDS:
        command = [sys.executable, __file__, "--memory-of", name]
        subprocess.run([*command, "--connections", str(args.connections)], check=True)


if __name__ == "__main__":
    main()
