"""Next step for issue 17/24, measured before it is built: what an append-only
log table would save the archive's commits.

    python3 benchmarks/mam_log_layout.py [--users 1000] [--batch 200] [--n 20000]

Two layouts on a real WAL file (``synchronous=NORMAL``, checkpoints by hand),
each after ``--n`` messages already archived, then ``--n`` more between
random pairs of ``--users`` accounts in ``--batch``-message commits:

- ``indexed``: today's shape (docs/mam.md): an item row (``seq`` key,
  ``sid`` unique) and one entry per archive (``(archive, seq)`` key and an
  ``(archive, bare, seq)`` index), so each commit rewrites a leaf page or two
  per archive it touches.
- ``log+merge``: each message appended to a log table with no secondary
  index (a few messages a page), merged into the same indexed tables in
  archive order every 5,000 messages (queries would read the small log too).

Prints the CPU a message (building the rows included) and the WAL pages a
message the checkpoints copy, and the ratio log+merge / indexed. Nothing is
asserted; a standalone model of the layouts, not the store's code.

Built in session 9 (docs/mam.md "The log"; the store's own measure is
benchmarks/mam_wal.py) with one change: the stanza goes once into the
items table and only the entries are logged and merged (a log of whole
messages wrote each stanza twice, which doubled the WAL for large ones).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time

BLOB = b"x" * 220
MERGE_EVERY = 5000

SCHEMA = (
    "CREATE TABLE items (seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE,"
    " stamp REAL, refs INT, stanza BLOB)",
    "CREATE TABLE entries (archive INT, seq INT, bare INT, peer INT,"
    " PRIMARY KEY (archive, seq)) WITHOUT ROWID",
    "CREATE INDEX entries_bare ON entries (archive, bare, seq)",
    "CREATE TABLE log (seq INTEGER PRIMARY KEY, sid TEXT, stamp REAL,"
    " a1 INT, p1 INT, a2 INT, p2 INT, stanza BLOB)",
)

Row = tuple[int, str, float, int, int, int, int]


def open_db(schema: tuple[str, ...] = SCHEMA) -> tuple[sqlite3.Connection, str]:
    """A fresh WAL file with ``schema``: ``synchronous=NORMAL``, checkpoints by hand."""
    path = os.path.join(tempfile.mkdtemp(), "archive.sqlite3")
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=0"):
        conn.execute(f"PRAGMA {pragma}")
    for statement in schema:
        conn.execute(statement)
    return conn, path


def report(results: dict[str, tuple[float, float]], setting: str) -> None:
    """Print each layout's CPU and WAL pages a message, then the second's over the first."""
    for kind, (cpu, pages) in results.items():
        print(f"{kind:10} {setting}: {cpu:.1f} us CPU a message, {pages:.2f} WAL pages a message")
    (base, (base_cpu, base_pages)), (other, (cpu, pages)) = results.items()
    print(f"{other} / {base}: CPU {cpu / base_cpu:.2f}, WAL pages {pages / base_pages:.2f}")


def rows(rng: random.Random, start: int, n: int, users: int) -> list[Row]:
    out = []
    for seq in range(start, start + n):
        a = rng.randrange(users)
        b = (a + 1 + rng.randrange(users - 1)) % users
        out.append((seq, f"{seq:014x}{rng.getrandbits(64):016x}", seq / 1e6, a, b, b, a))
    return out


def write_indexed(conn: sqlite3.Connection, batch: list[Row]) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO items VALUES (?, ?, ?, 2, ?)", [(r[0], r[1], r[2], BLOB) for r in batch]
    )
    conn.executemany(
        "INSERT INTO entries VALUES (?, ?, ?, ?)",
        [(r[3], r[0], r[4], r[4]) for r in batch] + [(r[5], r[0], r[6], r[6]) for r in batch],
    )
    conn.execute("COMMIT")


def write_log(conn: sqlite3.Connection, batch: list[Row]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(*r, BLOB) for r in batch])
    conn.execute("COMMIT")


def merge(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    conn.execute("INSERT INTO items SELECT seq, sid, stamp, 2, stanza FROM log")
    conn.execute(
        "INSERT INTO entries SELECT archive, seq, peer, peer FROM"
        " (SELECT a1 AS archive, seq, p1 AS peer FROM log UNION ALL SELECT a2, seq, p2 FROM log)"
        " ORDER BY archive, seq"
    )
    conn.execute("DELETE FROM log")
    conn.execute("COMMIT")


def checkpoint(conn: sqlite3.Connection) -> int:
    """WAL pages copied by a checkpoint, then the WAL emptied."""
    copied = int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return copied


def run(kind: str, users: int, batch: int, n: int) -> tuple[float, float]:
    conn, _path = open_db()
    rng = random.Random(1)
    for start in range(0, n, 1000):
        write_indexed(conn, rows(rng, start, 1000, users))
    checkpoint(conn)
    pages = 0
    started = time.process_time()
    for start in range(n, 2 * n, batch):
        made = rows(rng, start, batch, users)
        if kind == "indexed":
            write_indexed(conn, made)
        else:
            write_log(conn, made)
        if (start - n + batch) % MERGE_EVERY == 0:
            if kind != "indexed":
                merge(conn)
            pages += checkpoint(conn)
    if kind != "indexed":
        merge(conn)
    pages += checkpoint(conn)
    cpu = time.process_time() - started
    conn.close()
    return cpu / n * 1e6, pages / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    results = {k: run(k, args.users, args.batch, args.n) for k in ("indexed", "log+merge")}
    report(results, f"users={args.users} batch={args.batch}")


if __name__ == "__main__":
    main()
