"""RSM ``<index/>`` (XEP-0059 §2.5) page latency in the SQLite archive
(docs/mam.md, "RSM index"): a 100k-message archive (two peers, half each),
50-item pages read by index at 0, 50,000 and 99,950, unfiltered and with
a ``with`` filter (the index then within the peer's 50k messages), next to
the same page read by RSM ``after`` (the way a client walks).

    python benchmarks/mam_index_bench.py [--size 100000] [--queries 50]

Prints p50/p99 in microseconds per page kind.
"""

from __future__ import annotations

import argparse
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
PEERS = [JID.parse("romeo@example.com/a"), JID.parse("nurse@example.com/b")]
STANZA = b"<message xmlns='jabber:client' type='chat'><body>" + b"x" * 120 + b"</body></message>"


def timed(store: SqliteArchiveStorage, query: ArchiveQuery, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        page = store.load(query)
        times.append((time.perf_counter() - t) * 1e6)
        assert isinstance(page, ArchivePage) and page.items
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    n = args.size
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "mam.sqlite3", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        store = SqliteArchiveStorage(conn)
        for i in range(n):
            store.write_behind(ArchivePut(USER, f"{i:014x}", PEERS[i % 2], 1000.0 + i, STANZA, n))
        store.flush()
        mid = n // 2
        kinds = {
            "index 0": ArchiveQuery(USER, 50, index=0),
            f"index {mid}": ArchiveQuery(USER, 50, index=mid),
            f"index {n - 50}": ArchiveQuery(USER, 50, index=n - 50),
            f"after id #{mid}": ArchiveQuery(USER, 50, after=f"{mid - 1:014x}"),
            "with, index 0": ArchiveQuery(USER, 50, with_=PEERS[0].bare, index=0),
            f"with, index {mid // 2}": ArchiveQuery(USER, 50, with_=PEERS[0].bare, index=mid // 2),
            f"with, after id #{mid}": ArchiveQuery(
                USER, 50, with_=PEERS[0].bare, after=f"{mid - 2:014x}"
            ),
        }
        print(f"{n} archived, 50 a page, {args.queries} queries each (µs)")
        for name, query in kinds.items():
            p50, p99 = timed(store, query, args.queries)
            print(f"  {name:<22} p50 {p50:9.0f}  p99 {p99:9.0f}")


if __name__ == "__main__":
    main()
