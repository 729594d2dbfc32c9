"""The archive's rows (flat values built from the caches) written by the worker
(xmpp_trio/stores/mam.py ``_rows``/``_write_rows``, docs/mam.md "Cost"), on
real SQLite files: new archives and peers (not in the caches when the rows
are built) are made before the rows are written, quotas and retention apply, a message
the store holds is not written twice, a clock going back keeps the order,
and what a query reads is what was archived, in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_archive_writer import store_with_writer

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivePage, ArchivePut, ArchiveQuery
from xmpp_trio.stores.mam import SqliteArchiveStorage

STANZA = b"<message><body>hi</body></message>"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteArchiveStorage]:
    path = str(tmp_path / "archive.sqlite3")
    conn, store, writer = store_with_writer(path)
    yield store
    writer.close()
    assert writer.failures == 0
    conn.close()


def written(store: SqliteArchiveStorage, *ops: ArchivePut) -> None:
    """Hand ``ops`` to the writer as one batch and wait until it is committed."""
    for op in ops:
        store.write_behind(op)
    store.hand_off(block=True)
    assert store.writer is not None
    store.writer.idle()


def sids(store: SqliteArchiveStorage, archive: JID, **query: object) -> list[str]:
    page = store.load(ArchiveQuery(archive, max=1000, **query))  # type: ignore[arg-type]
    assert isinstance(page, ArchivePage)
    return [m.sid for m in page.items]


def test_hundreds_of_new_archives_and_peers_in_one_batch_are_all_counted(
    store: SqliteArchiveStorage,
) -> None:
    users = [JID.parse(f"u{i}@localhost") for i in range(300)]  # more than one count statement
    ops = [
        ArchivePut(
            users[i],
            f"s{i:04d}",
            JID.parse(f"p{i}@localhost/r"),
            1e9 + i,
            STANZA,
            100,
            also=((users[(i + 1) % 300], JID.parse(f"u{i}@localhost/r")),),
        )
        for i in range(300)
    ]
    written(store, *ops)
    assert all(store.count(u) == 2 for u in users)  # its own and its neighbour's
    assert sids(store, users[5]) == ["s0004", "s0005"]
    assert sids(store, users[5], with_=JID.parse("p5@localhost")) == ["s0005"]
    written(
        store,
        *(ArchivePut(u, f"t{i}", users[0], 2e9 + i, STANZA, 100) for i, u in enumerate(users)),
    )
    assert all(store.count(u) == 3 for u in users)


def test_a_quota_reached_through_the_writer_drops_the_oldest(store: SqliteArchiveStorage) -> None:
    romeo, juliet = JID.parse("romeo@localhost"), JID.parse("juliet@localhost/phone")
    for batch in range(3):
        written(
            store,
            *(
                ArchivePut(romeo, f"s{batch}{i}", juliet, 1e9 + 10 * batch + i, STANZA, 4)
                for i in range(3)
            ),
        )
    assert store.count(romeo) == 4
    assert sids(store, romeo) == ["s12", "s20", "s21", "s22"]


def test_retention_through_the_writer_drops_the_expired(store: SqliteArchiveStorage) -> None:
    romeo, juliet = JID.parse("romeo@localhost"), JID.parse("juliet@localhost/phone")
    written(store, *(ArchivePut(romeo, f"old{i}", juliet, 1e9 + i, STANZA, 100) for i in range(3)))
    written(store, ArchivePut(romeo, "new", juliet, 1e9 + 1000, STANZA, 100, retention=500.0))
    assert sids(store, romeo) == ["new"]
    assert store.count(romeo) == 1


def test_a_message_the_store_holds_is_not_written_twice(store: SqliteArchiveStorage) -> None:
    romeo, juliet = JID.parse("romeo@localhost"), JID.parse("juliet@localhost")
    written(store, ArchivePut(romeo, "same", juliet, 1e9, STANZA, 100))
    written(
        store,
        ArchivePut(romeo, "same", juliet, 1e9, STANZA, 100),
        ArchivePut(juliet, "same", romeo, 1e9, STANZA, 100),  # the other side: added
        ArchivePut(romeo, "next", juliet, 1e9 + 1, STANZA, 100),
    )
    assert sids(store, romeo) == ["same", "next"]
    assert sids(store, juliet) == ["same"]
    assert store.count(romeo) == 2 and store.count(juliet) == 1


def test_a_clock_going_back_keeps_the_archive_order(store: SqliteArchiveStorage) -> None:
    romeo, juliet = JID.parse("romeo@localhost"), JID.parse("juliet@localhost")
    stamps = [1e9 + 10, 1e9 + 11, 1e9 + 5, 1e9 + 12]  # the third went back 6 s
    written(
        store, *(ArchivePut(romeo, f"s{i}", juliet, t, STANZA, 100) for i, t in enumerate(stamps))
    )
    assert sids(store, romeo) == ["s0", "s1", "s2", "s3"]
    assert sids(store, romeo, start=1e9 + 4, end=1e9 + 6) == ["s2"]  # found by its own stamp
    assert sids(store, romeo, end=1e9 + 11) == ["s0", "s1", "s2"]
