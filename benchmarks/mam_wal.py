"""SQLite's side of archiving (issue 17): the store's own write path
(``SqliteArchiveStorage``: rows built, then written and committed, as the
archive writer does) on a real WAL file, messages between ``--users``
accounts (user i to i + 1, both archives), committed ``--batch`` messages
at a time, a ``PASSIVE`` checkpoint every ``--checkpoint`` messages, the
log merged into the indexed tables every ``--merge-every`` messages as the
writer does (docs/mam.md "Cost"; the store's default, or ``0``: never,
the entries left in the log). Prints CPU µs per message for building the
rows, writing and committing them, merging the log (the writer's thread),
WAL pages and bytes per message and per commit (the frames each checkpoint
finds, the merges' included), for each setting tried. CPU is the thread's
(``time.thread_time()``: user and system), the checkpoints' included, as
the writer thread spends it; ``--prefill 200000`` gives a database about
as large as a 20-second load run at 1,000 clients leaves (session 10). The
measured window should hold whole merges: since session 11 the log among
1,000 accounts is merged every 80,000 messages, so ``--n 160000`` there.

    python benchmarks/mam_wal.py --users 20
    python benchmarks/mam_wal.py --users 1000 --n 40000
    python benchmarks/mam_wal.py --pragmas "cache_size=-65536" "mmap_size=268435456" \\
        "temp_store=MEMORY" "page_size=8192"
    python benchmarks/mam_wal.py --batch 200 1000 5000   # the batch size's effect
    python benchmarks/mam_wal.py --merge-every 1000 5000 20000
    python benchmarks/mam_wal.py --users 1000 --prefill 200000 --n 40000
    python benchmarks/mam_wal.py --users 200 --statements   # CPU µs a message per statement

Each setting runs on a fresh database, ``--prefill`` messages archived first
(not measured). Nothing is asserted."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivePut
from xmpp_trio.stores._sql import transaction
from xmpp_trio.stores.mam import MERGE_EVERY, SqliteArchiveStorage

STANZA = (
    b"<message xmlns='jabber:client' from='u1@localhost/r' to='u2@localhost' type='chat'"
    b" id='m1'><body>" + b"y" * 120 + b"</body><stanza-id xmlns='urn:xmpp:sid:0'"
    b" by='u2@localhost' id='0123456789abcdef'/></message>"
)


class Timed(sqlite3.Connection):
    """A connection timing each ``execute`` (thread CPU) by the statement's
    first five words, while ``on`` (``--statements``)."""

    on: ClassVar[bool] = False
    spent: ClassVar[Counter[str]] = Counter()

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        if not self.on:
            return super().execute(sql, *args)  # type: ignore[arg-type]
        t = time.thread_time()
        try:
            return super().execute(sql, *args)  # type: ignore[arg-type]
        finally:
            self.spent[" ".join(sql.split()[:5])] += time.thread_time() - t


def run(
    args: argparse.Namespace, pragma: str | None, batch: int, merge_every: int, directory: Path
) -> str:
    path = directory / f"mam-{batch}-{merge_every}-{abs(hash(pragma))}.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None, factory=Timed)
    Timed.spent.clear()
    if pragma and pragma.startswith("page_size"):
        conn.execute(f"PRAGMA {pragma}")  # before the database has a page
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    if pragma and not pragma.startswith("page_size"):
        conn.execute(f"PRAGMA {pragma}")
    store = SqliteArchiveStorage(conn, merge_every=merge_every or 1 << 62)
    # (a tree before session 10 merges at merge_every: --tree comparisons)
    due = getattr(store, "merge_due", lambda: store._logged >= store.merge_every)
    users = [JID.parse(f"u{i}@localhost") for i in range(args.users)]
    fulls = [JID.parse(f"u{i}@localhost/r") for i in range(args.users)]
    counter = 0

    def ops(n: int) -> list[ArchivePut]:
        nonlocal counter
        out = []
        for _ in range(n):
            i = counter % args.users
            j = (i + 1) % args.users
            sid = f"{counter:016x}"
            out.append(
                ArchivePut(
                    users[j],
                    sid,
                    fulls[i],
                    1.7e9 + counter * 1e-4,
                    STANZA,
                    1 << 40,
                    also=((users[i], fulls[j]),),
                )
            )
            counter += 1
        return out

    frames = commits = since = 0
    build = write = merge = checkpoint = 0.0
    for phase, total in (("prefill", args.prefill), ("measured", args.n)):
        Timed.on = args.statements and phase == "measured"
        frames = commits = since = 0
        build = write = merge = checkpoint = 0.0
        done = 0
        while done < total:
            batch_ops = ops(min(batch, total - done))
            t0 = time.thread_time()
            rows = store._rows(conn, batch_ops)
            t1 = time.thread_time()
            with transaction(conn):
                assert rows is not None
                store._write_rows(conn, rows)
            t2 = time.thread_time()
            if due():  # as write_batch does
                store.merge(conn)
            t3 = time.thread_time()
            build += t1 - t0
            write += t2 - t1
            merge += t3 - t2
            commits += 1
            done += len(batch_ops)
            since += len(batch_ops)
            if since >= args.checkpoint or done >= total:
                t4 = time.thread_time()
                _busy, log, _moved = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                checkpoint += time.thread_time() - t4
                frames += log
                since = 0
        del phase
    Timed.on = False
    (page,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    n = args.n
    split = "".join(
        f"\n    {spent / n * 1e6:5.2f} us  {statement}"
        for statement, spent in Timed.spent.most_common()
        if spent / n >= 5e-9
    )
    return (
        f"{pragma or 'defaults':<20} batch {batch:>5} merge {merge_every:>6}:"
        f" build {build / n * 1e6:5.2f} + write {write / n * 1e6:5.2f}"
        f" + merge {merge / n * 1e6:5.2f} + checkpoint {checkpoint / n * 1e6:5.2f}"
        f" = {(build + write + merge + checkpoint) / n * 1e6:5.2f} us CPU/message (the writer"
        f" thread's); WAL {frames / n:5.2f} pages"
        f" ({frames * (page + 24) / n:,.0f} B)/message, {frames / commits:7.1f} pages/commit"
        + split
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--n", type=int, default=20_000, help="messages measured")
    parser.add_argument("--prefill", type=int, default=20_000, help="messages archived first")
    parser.add_argument("--batch", type=int, nargs="+", default=[200])
    parser.add_argument("--checkpoint", type=int, default=5000)
    parser.add_argument(
        "--merge-every", type=int, nargs="+", default=[MERGE_EVERY], help="0: never merge"
    )
    parser.add_argument(
        "--pragmas", nargs="*", default=[], help="settings tried, e.g. cache_size=-65536"
    )
    parser.add_argument(
        "--statements", action="store_true", help="CPU per statement (the first five words)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for pragma in [None, *args.pragmas]:
            for batch in args.batch:
                for merge_every in args.merge_every:
                    print(run(args, pragma, batch, merge_every, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
