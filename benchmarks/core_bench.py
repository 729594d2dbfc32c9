"""Per-stanza CPU of the sans-IO core, this tree against another commit.

    python benchmarks/core_bench.py                 # this tree only
    python benchmarks/core_bench.py --against 8c7f1a6

Two paths, each timed in its own process (best and median of 7 runs of 20,000
stanzas), the trees interleaved:

* ``router-bare`` / ``router-full``: ``Router.route`` of a 120-byte chat
  message to a bare / full JID, with the bundled services over SQLite (what
  the server runs), both accounts online;
* ``stream``: a ready server stream (XEP-0198 on) reading one such message
  and writing one back (``receive_data``, ``next_event``, ``send``,
  ``data_to_send``).

No sockets, no TLS: the load benchmark (``benchmarks/load``) measures those.
``--against REV`` checks REV out into a temporary git worktree. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time, tempfile, pathlib, statistics, secrets
tree, path = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree)
import xml.etree.ElementTree as ET
C = "{jabber:client}"
BODY = "y" * 120
N = 20000

def router_bench(full):
    from xmpp_trio.config import ServerConfig
    from xmpp_trio.storage import AccountStore
    from xmpp_trio.services import build_services, open_database
    from xmpp_sansio.server import Router
    from xmpp_sansio.jid import JID
    tmp = pathlib.Path(tempfile.mkdtemp())
    config = ServerConfig(domains=("localhost",), data_dir=tmp, scram_iterations=4096)
    store = AccountStore.open(config.database_path)
    for user in ("a", "b"):
        store.create(user, "localhost", "pw-pw-pw", iterations=4096)
    services = build_services(config, store, open_database(config))
    router = Router(config.domains, rng=secrets.token_bytes, account_exists=lambda l, d: store.exists(l, d),
                    services=services.services)
    router.bind(1, JID.parse("a@localhost/r"))
    router.bind(2, JID.parse("b@localhost/r"))
    router.route(1, ET.Element(C + "presence"))
    router.route(2, ET.Element(C + "presence"))
    msg = ET.Element(C + "message", {"to": "b@localhost/r" if full else "b@localhost",
                                     "type": "chat", "id": "x"})
    ET.SubElement(msg, C + "body").text = BODY
    return lambda: router.route(1, msg)

def stream_bench():
    from xmpp_sansio.jid import JID
    from xmpp_sansio.stream.config import ClientConfig, ServerConfig
    from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
    from xmpp_sansio.testing import ConnectionPair, make_credentials
    client = ClientConnection(ClientConfig(rng=secrets.token_bytes, jid=JID.parse("juliet@capulet.example/b"),
                                           password="r0m30myr0m30"))
    server = ServerConnection(ServerConfig(rng=secrets.token_bytes,
                                           domains=frozenset({"capulet.example"})))
    pair = ConnectionPair(client, server,
                          make_credentials({"juliet": "r0m30myr0m30"}, iterations=4096))
    client.start()
    pair.pump()
    assert server.jid is not None
    data = (f"<message to='romeo@capulet.example' type='chat' id='m1'><body>{BODY}</body>"
            "</message>").encode()
    out = ET.Element(C + "message", {"to": "juliet@capulet.example/b",
                                     "from": "romeo@capulet.example/x", "type": "chat"})
    ET.SubElement(out, C + "body").text = BODY
    def one():
        server.receive_data(data)
        while server.next_event() is not None:
            pass
        server.send(out)
        server.data_to_send()
        sm = server.sm
        if sm is not None and len(sm.queue) > 1000:  # as if acknowledged
            sm.ack((sm.outbound) % (1 << 32))
    return one

step = {"router-bare": lambda: router_bench(False), "router-full": lambda: router_bench(True),
        "stream": stream_bench}[path]()
runs = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(N):
        step()
    runs.append((time.perf_counter() - t) / N * 1e6)
print(f"{min(runs):.2f} {statistics.median(runs):.2f}")
"""


def measure(tree: Path, path: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), path],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per tree")
    args = parser.parse_args()
    trees: list[tuple[str, Path]] = [("this tree", ROOT)]
    with tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        if args.against:
            old = Path(tmp) / "old"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                            str(old), args.against], check=True)  # fmt: skip
            trees.insert(0, (args.against, old))
        try:
            for path in ("router-bare", "router-full", "stream"):
                best: dict[str, float] = {}
                for _ in range(args.rounds):
                    for name, tree in trees:
                        low, _median = measure(tree, path)
                        best[name] = min(best.get(name, low), low)
                line = "  ".join(f"{name}: {us:6.2f} us" for name, us in best.items())
                ratio = ""
                if len(trees) == 2:
                    ratio = f"  new/old {best['this tree'] / best[trees[0][0]]:.3f}"
                print(f"{path:>12}  {line}{ratio}")
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(Path(tmp) / "old")], check=False)  # fmt: skip


if __name__ == "__main__":
    main()
