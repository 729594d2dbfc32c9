"""Per-stanza cost of the paths issue 24 cut, in a tree given on the command line.

    python benchmarks/perf_paths.py presence [TREE]    # presence update to a roster of 50, default services
    python benchmarks/perf_paths.py websocket [TREE]   # a stanza in and out of a ready WebSocket stream
    python benchmarks/perf_paths.py server [TREE]      # parse, route (archives on), deliver: see below
    python benchmarks/perf_paths.py server-nomam [TREE]  # the same with archives off
    python benchmarks/perf_paths.py tls [TREE]         # the server's TLS write and read of a message
    python benchmarks/perf_paths.py serialise [TREE]   # writing a routed message (4 attributes, a body)
    python benchmarks/perf_paths.py parse [TREE]       # a read of one message through StreamParser
    python benchmarks/perf_paths.py --instructions presence [TREE]

TREE defaults to this checkout (check another commit out with ``git worktree
add``). Timings: best and median microseconds per stanza of 5 runs.
``--instructions`` runs the path under ``valgrind --tool=callgrind`` with
300 stanzas (``--stanzas N``: N; 3000 spreads the few thousand instructions
a run's one-off work varies by) and with none, and prints the instructions
per stanza (the difference over N), with ``PYTHONHASHSEED=0`` unless the environment sets
it: repeatable on a busy machine, where timings are not.
Nothing is asserted. ``router-bare``, ``router-full`` and ``stream`` are
``core_bench.py``'s paths (its child process, with N stanzas and R runs).
``server`` is one delivered message as the server handles it: the sender's
ready stream parses it, ``Router.route(..., owned=True)`` with the bundled
services (stanza id, archive write), the recipient's ready stream writes it,
inside ``shared_writes()`` as the I/O layer routes (``SHARED=0`` in the
environment: without it; a tree without it runs without it).
``server-nomam`` is the same with archives off (``[mam] enabled = false``,
the load benchmark's ``ours-nomam``): no stanza id, no archive write.
``tls`` is the server's TLS socket glue alone (``SocketTransport`` over
loopback TCP, trustme certificates, TLS 1.3): ``send_nowait`` of a 200-byte
message and a gathering ``receive_some`` of one from the peer, the peer a
blocking ``ssl.SSLSocket`` in the same process (its instructions count too;
the kernel's do not).
``serialise`` is ``writer.serialize`` of a message as the router hands it
over (``to``, ``type``, ``id``, then ``from``; a 120-byte body) in its own
``shared_writes()`` scope, the element built each time (``SHARED=0``:
without the scope). ``parse`` is one 200-byte message fed to a ready
``StreamParser`` (``hold=False``) and its events pulled: one read of one
stanza, the judged shape's common read.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRESENCE = r"""
import sys, os, time, tempfile, pathlib, statistics, secrets, sqlite3
tree = sys.argv[1]
sys.path.insert(0, tree)
import xml.etree.ElementTree as ET
N, R = int(os.environ["N"]), int(os.environ["R"])
from xmpp_trio.config import ServerConfig
from xmpp_trio.storage import AccountStore
from xmpp_trio.services import build_services, open_database
from xmpp_trio.stores.roster import SCHEMA
from xmpp_sansio.server.effects import Persist
from xmpp_sansio.server import Router
from xmpp_sansio.jid import JID
C = "{jabber:client}"
K = 51  # u0 and its 50 contacts, subscriptions both ways, all online
tmp = pathlib.Path(tempfile.mkdtemp())
config = ServerConfig(domains=("localhost",), data_dir=tmp, scram_iterations=4096)
store = AccountStore.open(config.database_path)
for i in range(K):
    store.create(f"u{i}", "localhost", "pw-pw-pw", iterations=4096)
db = sqlite3.connect(config.database_path)
db.executescript(SCHEMA)
pairs = [(f"u{i}@localhost", f"u{j}@localhost") for i in range(K) for j in range(K)
         if i != j and (i == 0 or j == 0)]
with db:
    db.executemany("INSERT INTO roster_items (user, contact, name, subscription, ask, approved,"
                   " groups, in_roster, pending_in, pending_request) VALUES (?, ?, NULL, 'both',"
                   " 0, 0, '[]', 1, 0, NULL)", pairs)
    db.executemany("INSERT INTO roster_versions (user, version) VALUES (?, 1)",
                   sorted({(u,) for u, _ in pairs}))
db.close()
services = build_services(config, store, open_database(config))
router = Router(config.domains, rng=secrets.token_bytes, account_exists=lambda l, d: store.exists(l, d),
                services=services.services, hosts=services.hosts)
for i in range(K):
    router.bind(i + 1, JID.parse(f"u{i}@localhost/r"))
for i in range(K):
    effects = router.route(i + 1, ET.Element(C + "presence"))
    while persists := [e for e in effects if isinstance(e, Persist)]:
        services.commit([p.op for p in persists])
        effects = router.persisted(persists)
def update(k):
    p = ET.Element(C + "presence")
    ET.SubElement(p, C + "show").text = "away"
    ET.SubElement(p, C + "status").text = f"s{k}"
    return p
out = router.route(1, update(-1))
assert sum(1 for e in out if type(e).__name__ == "Deliver") == K
msgs = [update(k) for k in range(N)]
def run():
    for m in msgs:
        router.route(1, m)
"""

WEBSOCKET = r"""
import sys, os, time, secrets, statistics
tree = sys.argv[1]
sys.path.insert(0, tree)
import xml.etree.ElementTree as ET
N, R = int(os.environ["N"]), int(os.environ["R"])
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, WebSocketFraming
from xmpp_sansio.testing import ConnectionPair, make_credentials
client = ClientConnection(ClientConfig(rng=secrets.token_bytes, jid=JID.parse("juliet@capulet.example/b"),
                                       password="r0m30myr0m30"), tls_active=True, framing=WebSocketFraming())
server = ServerConnection(ServerConfig(rng=secrets.token_bytes, domains=frozenset({"capulet.example"})),
                          tls_active=True, framing=WebSocketFraming())
pair = ConnectionPair(client, server, make_credentials({"juliet": "r0m30myr0m30"}, iterations=4096),
                      framing="websocket")
client.start()
pair.pump()
assert server.jid is not None
data = ("<message xmlns='jabber:client' to='romeo@capulet.example' type='chat' id='m1'><body>"
        + "y" * 120 + "</body></message>").encode()
C = "{jabber:client}"
reply = ET.Element(C + "message", {"to": "juliet@capulet.example/b", "from": "romeo@capulet.example/x",
                                   "type": "chat"})
ET.SubElement(reply, C + "body").text = "y" * 120
def run():
    for _ in range(N):
        server.receive_message(data)
        while server.next_event() is not None:
            pass
        server.send(reply)
        server.messages_to_send()
        sm = server.sm
        if sm is not None and len(sm.queue) > 1000:  # as if acknowledged
            sm.ack(sm.outbound % (1 << 32))
"""

SERVER = r"""
import sys, os, time, tempfile, pathlib, statistics, secrets
tree = sys.argv[1]
sys.path.insert(0, tree)
import xml.etree.ElementTree as ET
N, R = int(os.environ["N"]), int(os.environ["R"])
from xmpp_trio.config import ServerConfig as TrioConfig
from xmpp_trio.storage import AccountStore
from xmpp_trio.services import build_services, open_database
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
from xmpp_sansio.testing import ConnectionPair, make_credentials
try:
    from xmpp_sansio.xml.writer import shared_writes
except ImportError:  # a tree from before session 6
    shared_writes = None
C = "{jabber:client}"
tmp = pathlib.Path(tempfile.mkdtemp())
config = TrioConfig(domains=("localhost",), data_dir=tmp, scram_iterations=4096)
if os.environ.get("MAM", "1") == "0":  # server-nomam: archives off ([mam] enabled = false)
    import dataclasses
    config = dataclasses.replace(config, mam=dataclasses.replace(config.mam, enabled=False))
store = AccountStore.open(config.database_path)
for user in ("a", "b"):
    store.create(user, "localhost", "pw-pw-pw", iterations=4096)
services = build_services(config, store, open_database(config))
router = Router(config.domains, rng=secrets.token_bytes, account_exists=lambda l, d: store.exists(l, d),
                services=services.services, hosts=services.hosts)
conns = {}
for sid, user in ((1, "a"), (2, "b")):
    client = ClientConnection(ClientConfig(rng=secrets.token_bytes, jid=JID.parse(f"{user}@localhost/r"),
                                           password="pw-pw-pw"))
    server = ServerConnection(ServerConfig(rng=secrets.token_bytes, domains=frozenset({"localhost"})))
    pair = ConnectionPair(client, server, make_credentials({user: "pw-pw-pw"}, iterations=4096))
    client.start()
    pair.pump()
    assert server.jid is not None
    router.bind(sid, server.jid)
    router.route(sid, ET.Element(C + "presence"))
    server.data_to_send()
    conns[sid] = server
sender, receiver = conns[1], conns[2]
# archived copies written behind (session 10: Router.behind) are dropped, as the
# Persist effects of older trees are: the same list op in both trees
behind = getattr(router, "behind", [])
data = ("<message to='b@localhost' type='chat' id='m1'><body>" + "y" * 120 + "</body></message>").encode()
def one():
    sender.receive_data(data)
    while (event := sender.next_event()) is not None:
        element = getattr(event, "element", None)
        if element is None:
            continue
        for effect in router.route(1, element, owned=True):
            if type(effect) is Deliver:
                conns[effect.session].send(effect.element)
    receiver.data_to_send()
    behind.clear()
    sm = receiver.sm
    if sm is not None and len(sm.queue) > 1000:  # as if acknowledged
        sm.ack(sm.outbound % (1 << 32))
def shared_one():
    with shared_writes():
        one()
step = one if shared_writes is None or os.environ.get("SHARED", "1") == "0" else shared_one
one()
out = receiver.data_to_send()
def run():
    for _ in range(N):
        step()
"""

TLS = r"""
import sys, os, time, socket, ssl, statistics
tree = sys.argv[1]
sys.path.insert(0, tree)
N, R = int(os.environ["N"]), int(os.environ["R"])
import trio, trustme
from xmpp_trio._transport import SocketTransport
ca = trustme.CA()
server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ca.issue_cert("localhost").configure_cert(server_ctx)
client_ctx = ssl.create_default_context()
ca.configure_trust(client_ctx)
data = (b"<message to='b@localhost' from='a@localhost/r' type='chat' id='m1'><body>"
        + b"y" * 120 + b"</body></message>")
async def main():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        raw = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    transport = SocketTransport(accepted)
    peer = client_ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, peer.do_handshake)
        await transport.start_tls(server_ctx, server_side=True)
    runs = []
    for _ in range(R):
        t = time.perf_counter()
        for _ in range(N):
            assert transport.send_nowait(data) == len(data)
            peer.recv(65536)
            peer.sendall(data)
            await transport.receive_some(65536, gather=True)
        runs.append((time.perf_counter() - t) / max(N, 1) * 1e6)
    if runs:
        print(f"{min(runs):.2f} {statistics.median(runs):.2f}")
trio.run(main)
"""

SERIALISE = r"""
import sys, os, time, statistics
tree = sys.argv[1]
sys.path.insert(0, tree)
from xml.etree.ElementTree import Element, SubElement
N, R = int(os.environ["N"]), int(os.environ["R"])
from xmpp_sansio.xml.writer import serialize, shared_writes
def message():
    m = Element("{jabber:client}message", {"to": "u123@localhost", "type": "chat", "id": "m-1234567"})
    SubElement(m, "{jabber:client}body").text = "y" * 120
    m.set("from", "u456@localhost/res-abcdef")
    return m
scope = shared_writes() if os.environ.get("SHARED", "1") != "0" else None
def run():
    for _ in range(N):
        if scope is None:
            serialize(message())
        else:
            with scope:
                serialize(message())
"""

PARSE = r"""
import sys, os, time, statistics
tree = sys.argv[1]
sys.path.insert(0, tree)
N, R = int(os.environ["N"]), int(os.environ["R"])
from xmpp_sansio.xml.parser import StreamParser
data = ("<message to='b@localhost' type='chat' id='m1'><body>" + "y" * 120 + "</body></message>").encode()
parser = StreamParser()
parser.feed(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
while parser.next_event() is not None:
    pass
def run():
    for _ in range(N):
        parser.feed(data)
        while parser.next_event() is not None:
            pass
"""

CORE_BENCH = ("router-bare", "router-full", "stream")
PATHS = ("presence", "websocket", "server", "server-nomam", "tls", "serialise", "parse",
         *CORE_BENCH)  # fmt: skip

TIMED = r"""
runs = []
for _ in range(R):
    t = time.perf_counter()
    run()
    runs.append((time.perf_counter() - t) / max(N, 1) * 1e6)
if runs:
    print(f"{min(runs):.2f} {statistics.median(runs):.2f}")
"""


def core_bench_path(path: str) -> str:
    """``core_bench.py``'s router or stream path, with N stanzas and R runs."""
    text = (ROOT / "benchmarks" / "core_bench.py").read_text()
    source = text.split('CHILD = r"""', 1)[1].split('"""', 1)[0]
    source = source.replace(
        "tree, path = sys.argv[1], sys.argv[2]", f"tree, path = sys.argv[1], {path!r}"
    )
    source = source.replace("N = 20000", "N = int(__import__('os').environ['N'])")
    source = source.replace(
        "for _ in range(7):", "for _ in range(int(__import__('os').environ['R'])):"
    )
    return source.replace("/ N * 1e6", "/ max(N, 1) * 1e6")


def child(path: str, tree: Path, n: int, runs: int, *, callgrind: bool) -> str:
    if path in CORE_BENCH:
        source = core_bench_path(path)
    else:
        source = {"presence": PRESENCE, "websocket": WEBSOCKET, "server": SERVER,
                  "server-nomam": SERVER, "tls": TLS, "serialise": SERIALISE,
                  "parse": PARSE}[path]  # fmt: skip
        source += "" if path == "tls" else TIMED
    command = [sys.executable, "-c", source, str(tree)]
    if callgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    env = {**os.environ, "N": str(n), "R": str(runs)}
    if path == "server-nomam":
        env["MAM"] = "0"
    if callgrind:
        # String hashing is seeded per process: dict and set probes, and so the
        # count, vary by a few thousand instructions from run to run without it.
        env.setdefault("PYTHONHASHSEED", "0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return done.stderr if callgrind else done.stdout


def instructions(path: str, tree: Path, stanzas: int = 300) -> int:
    counts = []
    for n in (0, stanzas):
        found = re.search(r"Collected : (\d+)", child(path, tree, n, 1, callgrind=True))
        assert found is not None, "valgrind printed no count"
        counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) // stanzas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=PATHS)
    parser.add_argument("tree", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--instructions", action="store_true", help="callgrind count per stanza")
    parser.add_argument(
        "--stanzas", type=int, default=300, help="--instructions: stanzas counted (default 300)"
    )
    args = parser.parse_args()
    tree = args.tree.resolve()
    if args.instructions:
        count = instructions(args.path, tree, args.stanzas)
        print(f"{args.path}: {count:,} instructions per stanza ({tree})")
        return
    n = 2000 if args.path == "presence" else 20000
    best, median = child(args.path, tree, n, 5, callgrind=False).split()
    print(f"{args.path}: best {best} us, median {median} us per stanza ({tree})")


if __name__ == "__main__":
    main()
