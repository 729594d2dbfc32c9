"""Message archive (XEP-0313) page latency at 10k, 100k and 1M archived
messages (issue 17): the SQLite store, one account's archive filled
directly, then pages read the way clients read them.

    python benchmarks/mam_bench.py                    # 10k, 100k, 1M
    python benchmarks/mam_bench.py --sizes 10000 --queries 200

Per size, four page kinds, ``--queries`` each, 50 items a page: ``first``
(no RSM), ``after`` (RSM after a random id: a forward walk), ``before`` (RSM
before a random id: a backward walk), ``last`` (``<before/>``: what a
catching-up client asks first), ``with`` (a ``with`` filter plus after a
random id). Prints p50/p99 in microseconds; the archiving overhead on the
message path is measured with benchmarks/load/run.py (see docs/mam.md).
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
from xmpp_sansio.server.mam.store import ArchivePage, ArchiveQuery
from xmpp_trio.stores._sql import transaction
from xmpp_trio.stores.mam import SqliteArchiveStorage

USER = JID.parse("juliet@example.com")
PEERS = [f"peer{i}@example.com" for i in range(20)]
STANZA = (
    b"<message xmlns='jabber:client' type='chat' to='juliet@example.com'>"
    b"<body>" + b"x" * 120 + b"</body></message>"
)


def fill(conn: sqlite3.Connection, n: int) -> None:
    conn.execute("PRAGMA synchronous=OFF")
    with transaction(conn):
        conn.executemany(
            "INSERT INTO mam_messages (archive, sid, with_bare, with_full, stamp, stanza)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (str(USER), f"s{i:08x}", PEERS[i % 20], PEERS[i % 20] + "/r", 1e9 + i, STANZA)
                for i in range(n)
            ),
        )
        conn.execute("INSERT INTO mam_counts VALUES (?, ?)", (str(USER), n))
    conn.execute("ANALYZE")


def measure(store: SqliteArchiveStorage, n: int, queries: int, rng: random.Random) -> dict[str, tuple[float, float]]:
    def sid() -> str:
        return f"s{rng.randrange(n):08x}"

    kinds = {
        "first": lambda: ArchiveQuery(USER, 50),
        "after": lambda: ArchiveQuery(USER, 50, after=sid()),
        "before": lambda: ArchiveQuery(USER, 50, before=sid()),
        "last": lambda: ArchiveQuery(USER, 50, before=""),
        "with": lambda: ArchiveQuery(USER, 50, with_=JID.parse(PEERS[3]), after=sid()),
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
    args = parser.parse_args()
    rng = random.Random(17)
    print(f"{'size':>9} {'page':>7} {'p50 us':>9} {'p99 us':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            conn = sqlite3.connect(Path(tmp) / f"mam{size}.sqlite3", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            store = SqliteArchiveStorage(conn)
            fill(conn, size)
            for name, (p50, p99) in measure(store, size, args.queries, rng).items():
                print(f"{size:>9} {name:>7} {p50:>9.0f} {p99:>9.0f}", flush=True)
            conn.close()


if __name__ == "__main__":
    main()
