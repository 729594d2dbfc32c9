"""Where the archive's merge reads its log from (issue 17, session 15): a
model of two layouts on a real WAL file, measured before building either.

    python3 benchmarks/mam_log_source.py [--users 200] [--batch 200] [--n 100000] [--every 20000] [--repeat 5]

- ``table``: today's store (xmpp_trio/stores/mam_schema.py): each message an
  item row (``seq`` key, ``sid`` unique) and its two entries appended to the
  log table (``(seq, archive)`` key); every ``--every`` messages a merge
  copies the log into the indexed entries (``(archive, seq)`` key and the
  ``(archive, bare, seq)`` index) with ``INSERT ... SELECT ... ORDER BY
  archive, seq`` and empties the log.
- ``items``: no log table: the item row carries its two archives and peers,
  the entries wait in memory per archive (as the store's ``LogIndex``
  already keeps them) and a merge inserts them from there in archive order
  (``executemany``), writing its high-water mark in the same transaction.

Prints the CPU a message (the rows' building included; the best of
``--repeat`` runs of each, alternated, as a shared machine's drift moved
single runs by a third) and the WAL pages a message the checkpoints (every
5,000 messages) copy. Nothing is asserted;
a standalone model of the layouts, not the store's code. Session 15
measured the second as cheap as the first among 200 accounts and a quarter
cheaper among 1,000 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import random
import time

from mam_log_layout import open_db, report  # the same WAL file, the same report

BLOB = b"x" * 220
ENTRIES = (
    "CREATE TABLE entries (archive INT, seq INT, bare INT, peer INT,"
    " PRIMARY KEY (archive, seq)) WITHOUT ROWID",
    "CREATE INDEX entries_bare ON entries (archive, bare, seq)",
)
TABLE = (
    "CREATE TABLE items (seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, stamp REAL,"
    " refs INT, stanza BLOB)",
    "CREATE TABLE log (archive INT, seq INT, bare INT, peer INT,"
    " PRIMARY KEY (seq, archive)) WITHOUT ROWID",
)
ITEMS = (
    "CREATE TABLE items (seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, stamp REAL,"
    " refs INT, a1 INT, b1 INT, p1 INT, a2 INT, b2 INT, p2 INT, stanza BLOB)",
)

#: ``(seq, sid, stamp, sender, recipient)``.
Row = tuple[int, str, float, int, int]
Entry = tuple[int, int, int, int]


class Model:
    def __init__(self, layout: str, users: int) -> None:
        self.layout = layout
        self.users = users
        self.conn, _ = open_db(ENTRIES + (TABLE if layout == "table" else ITEMS))
        self.waiting: dict[int, list[Entry]] = {}  # ``items``: the entries not merged yet

    def rows(self, rng: random.Random, start: int, n: int) -> list[Row]:
        out = []
        for seq in range(start, start + n):
            a = rng.randrange(self.users)
            b = (a + 1 + rng.randrange(self.users - 1)) % self.users
            out.append((seq, f"{seq:014x}{rng.getrandbits(64):016x}", seq / 1e6, a, b))
        return out

    def write(self, batch: list[Row]) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        if self.layout == "table":
            conn.executemany(
                "INSERT INTO items VALUES (?, ?, ?, 2, ?)",
                [(s, i, t, BLOB) for s, i, t, _, _ in batch],
            )
            conn.executemany(
                "INSERT INTO log VALUES (?, ?, ?, ?)",
                [e for s, _, _, a, b in batch for e in ((a, s, b, b), (b, s, a, a))],
            )
        else:
            conn.executemany(
                "INSERT INTO items VALUES (?, ?, ?, 2, ?, ?, ?, ?, ?, ?, ?)",
                [(s, i, t, a, b, b, b, a, a, BLOB) for s, i, t, a, b in batch],
            )
            waiting = self.waiting
            for s, _, _, a, b in batch:
                waiting.setdefault(a, []).append((a, s, b, b))
                waiting.setdefault(b, []).append((b, s, a, a))
        conn.execute("COMMIT")

    def merge(self, top: int) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        if self.layout == "table":
            conn.execute(
                "INSERT INTO entries SELECT * FROM log WHERE seq <= ? ORDER BY archive, seq", (top,)
            )
            conn.execute("DELETE FROM log")
        else:
            waiting = self.waiting
            conn.executemany(
                "INSERT INTO entries VALUES (?, ?, ?, ?)",
                [e for key in sorted(waiting) for e in waiting[key]],
            )
            waiting.clear()
            conn.execute("INSERT OR REPLACE INTO entries VALUES (-1, 0, 0, ?)", (top,))
        conn.execute("COMMIT")

    def checkpoint(self) -> int:
        return int(self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def run(layout: str, users: int, batch: int, n: int, every: int) -> tuple[float, float]:
    model = Model(layout, users)
    rng = random.Random(1)
    for start in range(0, n, 1000):  # n messages archived before the measure
        model.write(model.rows(rng, start, 1000))
    model.merge(n)
    model.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = since = 0
    started = time.process_time()
    for start in range(n, 2 * n, batch):
        model.write(model.rows(rng, start, batch))
        since += batch
        if since >= every:
            model.merge(start + batch)
            since = 0
        if (start - n + batch) % 5000 == 0:
            pages += model.checkpoint()
    model.merge(2 * n)
    pages += model.checkpoint()
    cpu = time.process_time() - started
    model.conn.close()
    return cpu / n * 1e6, pages / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=20_000, help="messages a merge")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each layout, alternated")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"table": [], "items": []}
    for _ in range(args.repeat):
        for layout, done in runs.items():
            done.append(run(layout, args.users, args.batch, args.n, args.every))
    results = {layout: min(done) for layout, done in runs.items()}
    report(results, f"users={args.users} batch={args.batch} every={args.every}")


if __name__ == "__main__":
    main()
