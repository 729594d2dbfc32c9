"""Message archive (XEP-0313) page latency at 10k, 100k and 1M archived
messages (issue 17): the SQLite store, one account's archive filled
directly, then pages read the way clients read them.

    python benchmarks/mam_bench.py                    # 10k, 100k, 1M
    python benchmarks/mam_bench.py --sizes 10000 --queries 200

Per size, six page kinds, ``--queries`` each, 50 items a page: ``first``
(no RSM), ``after`` (RSM after a random id: a forward walk), ``before`` (RSM
before a random id: a backward walk), ``last`` (``<before/>``: what a
catching-up client asks first), ``with`` (a ``with`` filter plus after a
random id), ``start`` (from a random time). Prints p50/p99 in
microseconds, then ``write``: the cost of archiving a message between two
local accounts (both archives, written behind and committed) at that size.
``--log N``: before the pages are read, N more messages (one in 20 in
this archive, the others between other accounts) are left in the store's
log, not merged (docs/mam.md "Cost"): the worst case a query meets on a
busy server (a full log beside the indexed entries); ``cold`` is then the
first page read after them (a small archive's, then this one's: what sorts
the log's new entries into their archive's list, docs/mam.md "The log").
The archiving overhead on the message path is measured with
benchmarks/load/run.py and benchmarks/core_bench.py (see docs/mam.md).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivePage, ArchivePut, ArchiveQuery
from xmpp_trio.stores.mam import SqliteArchiveStorage

USER = JID.parse("juliet@example.com")
PEERS = [f"peer{i}@example.com" for i in range(20)]
STANZA = (
    b"<message xmlns='jabber:client' type='chat' to='juliet@example.com'>"
    b"<body>" + b"x" * 120 + b"</body></message>"
)


def fill(conn: sqlite3.Connection, store: SqliteArchiveStorage, n: int) -> None:
    """``n`` messages in USER's archive, written behind in batches as the server writes them."""
    conn.execute("PRAGMA synchronous=OFF")
    for start in range(0, n, 50_000):
        for i in range(start, min(n, start + 50_000)):
            peer = JID.parse(PEERS[i % 20] + "/r")
            store.write_behind(ArchivePut(USER, f"s{i:08x}", peer, 1e9 + i, STANZA, n))
        store.flush()
    conn.execute("ANALYZE")
    conn.execute("PRAGMA synchronous=FULL")


def write_cost(store: SqliteArchiveStorage, n: int, count: int = 5000) -> float:
    """Microseconds per message of a batch of ``count`` messages between USER
    and a local peer (one put, both archives), written behind and committed."""
    peer = JID.parse(PEERS[1])
    for i in range(count):
        store.write_behind(
            ArchivePut(USER, f"w{n}-{i}", peer, 2e9 + i, STANZA, n + count, also=((peer, USER),))
        )
    t0 = time.perf_counter()
    store.flush()
    return (time.perf_counter() - t0) / count * 1e6


def leave_in_log(store: SqliteArchiveStorage, count: int) -> None:
    """``count`` messages written and left in the log (not merged)."""
    store.merge_every = 1 << 62
    for i in range(count):
        owner = USER if i % 20 == 0 else JID.parse(f"u{i % 500}@example.com")
        peer = JID.parse(PEERS[i % 20] + "/r")
        store.write_behind(ArchivePut(owner, f"l{i:08x}", peer, 1.5e9 + i, STANZA, 1 << 40))
        if i % 1000 == 999:
            store.flush()  # batches of the loop's flush (``loop_batch``; the writer's are 200)
    store.flush()


def measure(
    store: SqliteArchiveStorage, n: int, queries: int, rng: random.Random
) -> dict[str, tuple[float, float]]:
    def sid() -> str:
        return f"s{rng.randrange(n):08x}"

    kinds = {
        "first": lambda: ArchiveQuery(USER, 50),
        "after": lambda: ArchiveQuery(USER, 50, after=sid()),
        "before": lambda: ArchiveQuery(USER, 50, before=sid()),
        "last": lambda: ArchiveQuery(USER, 50, before=""),
        "with": lambda: ArchiveQuery(USER, 50, with_=JID.parse(PEERS[3]), after=sid()),
        "start": lambda: ArchiveQuery(USER, 50, start=1e9 + rng.randrange(n)),
    }
    out = {}
    for name, make in kinds.items():
        times = []
        for _ in range(queries):
            query = make()
            t0 = time.perf_counter()
            page = store.load(query)
            times.append((time.perf_counter() - t0) * 1e6)
            assert isinstance(page, ArchivePage)
        times.sort()
        out[name] = (statistics.median(times), times[int(len(times) * 0.99) - 1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--log", type=int, default=0, help="messages left in the log")
    args = parser.parse_args()
    rng = random.Random(17)
    print(f"{'size':>9} {'page':>7} {'p50 us':>9} {'p99 us':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            conn = sqlite3.connect(Path(tmp) / f"mam{size}.sqlite3", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            store = SqliteArchiveStorage(conn)
            fill(conn, store, size)
            if args.log:
                leave_in_log(store, args.log)
                for who in (JID.parse("u1@example.com"), USER):
                    t0 = time.perf_counter()
                    store.load(ArchiveQuery(who, 50))
                    cold = (time.perf_counter() - t0) * 1e6
                    print(
                        f"{size:>9} {'cold':>7} {cold:>9.0f}  ({who}: the first page after the log)"
                    )
            for name, (p50, p99) in measure(store, size, args.queries, rng).items():
                print(f"{size:>9} {name:>7} {p50:>9.0f} {p99:>9.0f}", flush=True)
            print(
                f"{size:>9} {'write':>7} {write_cost(store, size):>9.1f}  (us/message, both sides)"
            )
            conn.close()


if __name__ == "__main__":
    main()
