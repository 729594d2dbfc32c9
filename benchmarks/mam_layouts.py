"""Three layouts of the archive's log side by side, SQLite alone (issue 17,
session 13: what "one log row a message" would save the writer thread).

Each layout writes messages between ``--users`` accounts (user i to i + 1,
both archives) in 200-message commits, then merges the log into
``mam_entries`` (clustered on ``(archive, seq)``, indexed on ``(archive,
bare, seq)``, as xmpp_trio/stores/mam_schema.py) every ``--merge``
messages, and prints the thread CPU µs a message of the commits and of the
merges:

* ``two``: today's (``mam_items`` and two ``mam_log_entries`` rows a
  message, clustered on ``(seq, archive)``);
* ``one``: one log row a message naming both archives (rowid ``seq``);
* ``none``: no log table, both archives' columns on the item's row, the
  merge reading the items after a watermark.

No store code runs (no Python rows, no in-memory log): the statements only,
as the writer thread would run them. Nothing is asserted.

    python3 benchmarks/mam_layouts.py --rounds 3 --repeat 2
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

STANZA = (
    b"<message xmlns='jabber:client' from='u1@localhost/r' to='u2@localhost' type='chat'"
    b" id='m1'><body>" + b"y" * 120 + b"</body><stanza-id xmlns='urn:xmpp:sid:0'"
    b" by='u2@localhost' id='0123456789abcdef'/></message>"
)
ENTRIES = (
    "CREATE TABLE e (archive INTEGER NOT NULL, seq INTEGER NOT NULL, bare INTEGER NOT NULL,"
    " peer INTEGER NOT NULL, PRIMARY KEY (archive, seq)) WITHOUT ROWID",
    "CREATE INDEX e_bare ON e (archive, bare, seq)",
)
ITEMS = (
    "CREATE TABLE i (seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, stamp REAL NOT NULL,"
    " refs INTEGER NOT NULL{extra}, stanza BLOB NOT NULL)"
)
LAYOUTS = {
    "two": (
        ITEMS.format(extra=""),
        "CREATE TABLE l (archive INTEGER NOT NULL, seq INTEGER NOT NULL, bare INTEGER NOT NULL,"
        " peer INTEGER NOT NULL, PRIMARY KEY (seq, archive)) WITHOUT ROWID",
    ),
    "one": (
        ITEMS.format(extra=""),
        "CREATE TABLE l (seq INTEGER PRIMARY KEY, a INTEGER NOT NULL, ab INTEGER NOT NULL,"
        " ap INTEGER NOT NULL, b INTEGER, bb INTEGER, bp INTEGER)",
    ),
    "none": (
        ITEMS.format(
            extra=", a INTEGER NOT NULL, ab INTEGER NOT NULL, ap INTEGER NOT NULL,"
            " b INTEGER, bb INTEGER, bp INTEGER"
        ),
    ),
}
MERGE = {
    "two": ("INSERT INTO e SELECT * FROM l ORDER BY archive, seq", "DELETE FROM l"),
    "one": (
        "INSERT INTO e SELECT a, seq, ab, ap FROM l UNION ALL"
        " SELECT b, seq, bb, bp FROM l WHERE b IS NOT NULL ORDER BY 1, 2",
        "DELETE FROM l",
    ),
    "none": (
        "INSERT INTO e SELECT a, seq, ab, ap FROM i WHERE seq > ?1 UNION ALL"
        " SELECT b, seq, bb, bp FROM i WHERE seq > ?1 AND b IS NOT NULL ORDER BY 1, 2",
    ),
}


def values(width: int, rows: int) -> str:
    return ", ".join(["(" + ", ".join("?" * width) + ")"] * rows)


def run(layout: str, args: argparse.Namespace, directory: Path) -> tuple[float, float]:
    conn = sqlite3.connect(directory / f"{layout}.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in (*ENTRIES, *LAYOUTS[layout]):
        conn.execute(statement)
    seq = watermark = 10**15
    write = merge = 0.0
    for _round in range(args.rounds):
        for _batch in range(args.merge // 200):
            items: list[object] = []
            log: list[object] = []
            for _ in range(200):
                i = seq % args.users + 1
                j = i % args.users + 1
                sid = f"{seq:030x}"
                if layout == "none":
                    items += (seq, sid, 1.7e9, 2, j, i, i + 1000, i, j, j + 1000, STANZA)
                else:
                    items += (seq, sid, 1.7e9, 2, STANZA)
                    if layout == "one":
                        log += (seq, j, i, i + 1000, i, j, j + 1000)
                    else:
                        log += (j, seq, i, i + 1000, i, seq, j, j + 1000)
                seq += 1
            t = time.thread_time()
            conn.execute("BEGIN")
            width = len(items) // 200
            conn.execute(f"INSERT INTO i VALUES {values(width, 200)}", items)
            if log:
                rows = 200 if layout == "one" else 400
                conn.execute(f"INSERT INTO l VALUES {values(len(log) // rows, rows)}", log)
            conn.execute("COMMIT")
            write += time.thread_time() - t
        t = time.thread_time()
        conn.execute("BEGIN")
        for statement in MERGE[layout]:
            conn.execute(statement, (watermark,) if "?1" in statement else ())
        conn.execute("COMMIT")
        merge += time.thread_time() - t
        watermark = seq - 1
    conn.close()
    n = args.rounds * args.merge
    return write / n * 1e6, merge / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--merge", type=int, default=20_000, help="messages between merges")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for layout in LAYOUTS:
                path = Path(tmp) / str(rep)
                path.mkdir(exist_ok=True)
                write, merge = run(layout, args, path)
                print(
                    f"{layout:>4}: commits {write:5.2f} + merges {merge:5.2f}"
                    f" = {write + merge:5.2f} us CPU/message",
                    flush=True,
                )


if __name__ == "__main__":
    main()
