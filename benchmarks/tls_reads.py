"""Server-side CPU per message of the TLS transport's reads, system calls
included, in the trees given on the command line (issue 24, session 8).

    python benchmarks/tls_reads.py [--clients 50] [--records 4] [--rounds 600] [--repeat 3] TREE...

Each run: ``--clients`` TLS 1.3 connections over loopback TCP (trustme
certificates) to ``SocketTransport``s of TREE, one Trio task each; per round
every client writes ``--records`` 200-byte messages, one TLS record each, and
its task reads them with gathering ``receive_some`` calls, then answers with
one ``send_nowait`` (the clients wait for it: a closed loop). The clients run
in another process, so the figure is the server process's own CPU
(``time.process_time``: user and system time) divided by the messages read.
Trees are interleaved run by run; the median of ``--repeat`` runs is printed.
Unlike ``perf_paths.py --instructions tls`` it counts the kernel's share,
which is what OpenSSL's read-ahead (``xmpp_trio/_read_ahead.py``) cuts: a
timing, so noisy on a shared machine (read the ratio, repeat).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SERVER = r"""
import socket, ssl, subprocess, sys, time
tree, ca_path, clients, records, rounds = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
sys.path.insert(0, tree)
import trio, trustme
from xmpp_trio._transport import SocketTransport
ca = trustme.CA()
server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ca.issue_cert("localhost").configure_cert(server_ctx)
ca.cert_pem.write_to_path(ca_path)
MSG = (b"<message to='b@localhost' from='a@localhost/r' type='chat' id='m1'><body>"
       + b"y" * 120 + b"</body></message>")
PEER = '''
import socket, ssl, sys
port, clients, records, rounds = map(int, sys.argv[2:])
ctx = ssl.create_default_context(cafile=sys.argv[1])
MSG = %r
raws = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
socks = []
for raw in raws:
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tls = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
    tls.do_handshake()
    socks.append(tls)
for _ in range(rounds):
    for tls in socks:
        for _ in range(records):
            tls.sendall(MSG)
    for tls in socks:
        got = 0
        while got < len(MSG):
            got += len(tls.recv(65536))
for tls in socks:
    tls.close()
''' % (MSG,)

async def main():
    listener = socket.create_server(("127.0.0.1", 0), backlog=clients)
    port = listener.getsockname()[1]
    peer = subprocess.Popen([sys.executable, "-c", PEER, ca_path, str(port),
                             str(clients), str(records), str(rounds)])
    transports = [SocketTransport(listener.accept()[0]) for _ in range(clients)]
    async with trio.open_nursery() as nursery:
        for transport in transports:
            nursery.start_soon(lambda t=transport: t.start_tls(server_ctx, server_side=True))

    async def serve(transport):
        want = records * len(MSG)
        for _ in range(rounds):
            got = 0
            while got < want:
                got += len(await transport.receive_some(65536, gather=True))
            assert transport.send_nowait(MSG) == len(MSG)

    started = time.process_time()
    async with trio.open_nursery() as nursery:
        for transport in transports:
            nursery.start_soon(serve, transport)
    cpu = time.process_time() - started
    peer.wait()
    print(cpu / (clients * records * rounds) * 1e6)

trio.run(main)
"""


def run(tree: Path, clients: int, records: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-c", SERVER, str(tree), str(Path(tmp) / "ca.pem")]
        command += [str(clients), str(records), str(rounds)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--records", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures: dict[Path, list[float]] = {tree.resolve(): [] for tree in args.trees}
    for _ in range(args.repeat):
        for tree, runs in figures.items():
            runs.append(run(tree, args.clients, args.records, args.rounds))
    for tree, runs in figures.items():
        shown = ", ".join(f"{x:.2f}" for x in runs)
        print(f"{tree}: median {statistics.median(runs):.2f} us CPU per message ({shown})")


if __name__ == "__main__":
    main()
