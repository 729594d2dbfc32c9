"""The SQLite part of archiving a message (issue 17), by layout: the rows of
one message between two local accounts (one item, two entries and their
``with`` index) written in flushes of ``--batch`` rows, as the write-behind
queue does, among ``--users`` accounts; CPU µs per message for the items,
the entries and the commit (``time.process_time``, SQLite alone: no server).

    python benchmarks/mam_rows.py --users 20
    python benchmarks/mam_rows.py --users 1000 --batch 4000
    python benchmarks/mam_rows.py --rows 1     # one executemany row by row (before session 7)

Layouts: ``text`` (session 5: the peers' JIDs as text in the entries),
``int`` (session 6: the peers as integers), ``int-no-with`` (the same
without the ``with`` index: what that index costs). ``--rows``: rows a
multi-row ``INSERT`` (the store's shape since session 7: 128; 1 is one
``executemany`` row by row). Nothing is asserted."""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

ENTRIES = {
    "text": (
        "CREATE TABLE e (archive INTEGER, seq INTEGER, with_bare TEXT, with_full TEXT,"
        " PRIMARY KEY (archive, seq)) WITHOUT ROWID",
        "CREATE INDEX ew ON e (archive, with_bare, seq)",
    ),
    "int": (
        "CREATE TABLE e (archive INTEGER, seq INTEGER, bare INTEGER, peer INTEGER,"
        " PRIMARY KEY (archive, seq)) WITHOUT ROWID",
        "CREATE INDEX ew ON e (archive, bare, seq)",
    ),
}
ENTRIES["int-no-with"] = ENTRIES["int"][:1]


def insert(conn: sqlite3.Connection, table: str, rows: list[tuple[object, ...]], per: int) -> None:
    """``rows`` into ``table``, ``per`` rows a statement (the rest one by one)."""
    width = len(rows[0])
    one = "(" + ", ".join("?" * width) + ")"
    full = len(rows) // per * per if per > 1 else 0
    if full:
        statement = f"INSERT INTO {table} VALUES " + ", ".join([one] * per)
        for at in range(0, full, per):
            conn.execute(statement, [v for row in rows[at : at + per] for v in row])
    if full < len(rows):
        conn.executemany(f"INSERT INTO {table} VALUES {one}", rows[full:])


def run(layout: str, users: int, n: int, batch: int, directory: Path, per: int = 1) -> str:
    conn = sqlite3.connect(directory / f"{layout}.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in ENTRIES[layout]:
        conn.execute(statement)
    conn.execute(
        "CREATE TABLE i (seq INTEGER PRIMARY KEY, sid TEXT UNIQUE, stamp REAL, refs INTEGER,"
        " stanza BLOB)"
    )
    rng = random.Random(1)
    seq = 1_700_000_000_000_000
    spent = {"items": 0.0, "entries": 0.0, "commit": 0.0}
    for _ in range(n // batch):
        items, entries = [], []
        for _ in range(batch):
            seq += 1
            a = rng.randrange(users)
            b = (a + 1 + rng.randrange(users - 1)) % users
            items.append((seq, f"{seq:014x}{rng.getrandbits(64):016x}", seq / 1e6, 2, b"x" * 250))
            for owner, peer in ((a, b), (b, a)):
                if layout == "text":
                    entries.append((owner, seq, f"u{peer}@localhost", f"u{peer}@localhost/r"))
                else:
                    entries.append((owner, seq, 2 * peer, 2 * peer + 1))
        conn.execute("BEGIN")
        for name, table, rows in (("items", "i", items), ("entries", "e", entries)):
            t = time.process_time()
            insert(conn, table, rows, per)
            spent[name] += time.process_time() - t
        t = time.process_time()
        conn.execute("COMMIT")
        spent["commit"] += time.process_time() - t
    total = sum(spent.values())
    parts = "  ".join(f"{k} {v / n * 1e6:5.2f}" for k, v in spent.items())
    return f"{layout:>12}: {parts}  total {total / n * 1e6:5.2f} us/message"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument(
        "--batch", type=int, default=1000, help="rows per flush (1000: the server's)"
    )
    parser.add_argument("--rows", type=int, default=128, help="rows a multi-row INSERT")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mam-rows-") as tmp:
        for layout in ENTRIES:
            print(run(layout, args.users, args.messages, args.batch, Path(tmp), args.rows))


if __name__ == "__main__":
    main()
