"""The archive store contract (XEP-0313 pages, XEP-0059 paging) on both
backends: the in-memory store and SQLite over a real file, reopened."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import VCardPut
from xmpp_sansio.server.mam.store import (
    ArchiveMeta,
    ArchivePage,
    ArchivePrefsPut,
    ArchivePut,
    ArchiveQuery,
    ArchiveRemove,
    MemoryArchive,
    Prefs,
    UnknownId,
)
from xmpp_trio.stores.mam import SqliteArchiveStorage

JULIET = JID.parse("juliet@example.com")
ROMEO = JID.parse("romeo@example.com/orchard")
NURSE = JID.parse("nurse@example.com/home")

Make = Callable[[], Any]


def _sqlite(path: Path) -> tuple[Make, Make]:
    def connect() -> SqliteArchiveStorage:
        return SqliteArchiveStorage(sqlite3.connect(path / "mam.sqlite3", isolation_level=None))

    return connect, connect


def _memory(path: Path) -> tuple[Make, Make]:
    store = MemoryArchive()
    return (lambda: store), (lambda: store)


BACKENDS = {"memory": _memory, "sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Make, Make]]:
    yield BACKENDS[request.param](tmp_path)


def put(
    i: int, archive: JID = JULIET, with_: JID = ROMEO, keep: int = 10**9, **kw: Any
) -> ArchivePut:
    return ArchivePut(
        archive,
        f"id{i}",
        with_,
        float(kw.pop("stamp", 1000 + i)),
        f"<m>{i}</m>".encode(),
        keep,
        **kw,
    )


def sids(page: object) -> list[str]:
    assert isinstance(page, ArchivePage), page
    return [m.sid for m in page.items]


def test_pages_come_back_in_archive_order_with_count_and_completeness(
    backend: tuple[Make, Make],
) -> None:
    make, reopen = backend
    make().apply([put(i) for i in range(5)])
    store = reopen()
    page = store.load(ArchiveQuery(JULIET, max=2))
    assert sids(page) == ["id0", "id1"] and not page.complete and page.count == 5
    assert page.first_index == 0
    assert sids(store.load(ArchiveQuery(JULIET, max=2, after="id1"))) == ["id2", "id3"]
    last = store.load(ArchiveQuery(JULIET, max=2, before=""))
    assert sids(last) == ["id3", "id4"] and not last.complete and last.first_index in (3, None)
    assert sids(store.load(ArchiveQuery(JULIET, max=2, before="id3"))) == ["id1", "id2"]
    end = store.load(ArchiveQuery(JULIET, max=10, after="id2"))
    assert sids(end) == ["id3", "id4"] and end.complete
    assert store.load(ArchiveQuery(JID.parse("nurse@example.com"), max=5)).items == ()


def test_filters_with_bare_and_full_start_end_ids_and_id_bounds(backend: tuple[Make, Make]) -> None:
    make, _ = backend
    store = make()
    store.apply([put(0), put(1, with_=NURSE), put(2, with_=JID.parse("romeo@example.com/other"))])
    assert sids(store.load(ArchiveQuery(JULIET, 9, with_=ROMEO.bare))) == ["id0", "id2"]
    assert sids(store.load(ArchiveQuery(JULIET, 9, with_=ROMEO))) == ["id0"]
    assert sids(store.load(ArchiveQuery(JULIET, 9, start=1001, end=1001))) == ["id1"]
    assert sids(store.load(ArchiveQuery(JULIET, 9, ids=("id2", "id0")))) == ["id0", "id2"]
    page = store.load(ArchiveQuery(JULIET, 9, after_id="id0", before_id="id2"))
    assert sids(page) == ["id1"] and page.count == 1
    for q in (
        ArchiveQuery(JULIET, 9, after_id="x"),
        ArchiveQuery(JULIET, 9, before_id="x"),
        ArchiveQuery(JULIET, 9, after="x"),
        ArchiveQuery(JULIET, 9, before="x"),
        ArchiveQuery(JULIET, 9, ids=("id0", "x")),
    ):
        assert store.load(q) == UnknownId("x")


def test_an_id_is_archived_once_and_the_quota_drops_the_oldest(backend: tuple[Make, Make]) -> None:
    make, reopen = backend
    make().apply([put(0), put(0), put(1, keep=2), put(2, keep=2), put(3, keep=2)])
    store = reopen()
    assert sids(store.load(ArchiveQuery(JULIET, 9))) == ["id2", "id3"]
    assert store.count(JULIET) == 2


def test_retention_drops_messages_older_than_it(backend: tuple[Make, Make]) -> None:
    make, _ = backend
    store = make()
    store.apply([put(0, stamp=0), put(1, stamp=50), put(2, stamp=200, retention=100.0)])
    assert sids(store.load(ArchiveQuery(JULIET, 9))) == ["id2"]
    assert store.count(JULIET) == 1


def test_prefs_metadata_and_removal(backend: tuple[Make, Make]) -> None:
    make, reopen = backend
    prefs = Prefs("roster", (NURSE.bare,), (ROMEO,))
    assert make().load(ArchiveMeta(JULIET)) == (None, None)
    make().apply([put(0), put(1), ArchivePrefsPut(JULIET, prefs)])
    store = reopen()
    assert store.prefs(JULIET) == prefs
    first, last = store.load(ArchiveMeta(JULIET))
    assert first.sid == "id0" and last.sid == "id1"
    store.apply([ArchiveRemove(JULIET)])
    assert store.prefs(JULIET) is None and store.count(JULIET) == 0


def test_archive_ops_are_all_or_nothing(backend: tuple[Make, Make]) -> None:
    make, reopen = backend
    with pytest.raises(TypeError):
        make().apply([put(0), VCardPut(JULIET, b"<v/>")])
    assert reopen().count(JULIET) == 0


def walk(
    store: Any, size: int, *, backward: bool, query: dict[str, Any] | None = None
) -> list[str]:
    """Every page of the archive, one after the other, as a fresh device does."""
    seen: list[str] = []
    cursor: str | None = "" if backward else None
    while True:
        if backward:
            page = store.load(ArchiveQuery(JULIET, size, before=cursor, **(query or {})))
            seen[:0] = sids(page)
            cursor = page.items[0].sid if page.items else None
        else:
            page = store.load(ArchiveQuery(JULIET, size, after=cursor, **(query or {})))
            seen.extend(sids(page))
            cursor = page.items[-1].sid if page.items else cursor
        if page.complete:
            return seen


def test_a_100k_archive_pages_with_no_gap_and_no_duplicate_both_ways(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "big.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    n = 100_000
    conn.execute("PRAGMA synchronous=OFF")
    # Written behind: one executemany per table, as the server writes them.
    for i in range(n):
        store.write_behind(ArchivePut(JULIET, f"id{i}", ROMEO, 1000.0 + i, b"<m/>", n))
    store.flush()
    assert store.count(JULIET) == n
    expected = [f"id{i}" for i in range(n)]
    assert walk(store, 250, backward=False) == expected
    assert walk(store, 250, backward=True) == expected


archives = st.lists(
    st.tuples(st.sampled_from([ROMEO, NURSE, ROMEO.bare]), st.integers(0, 5)), max_size=25
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=archives,
    size=st.integers(1, 7),
    backward=st.booleans(),
    with_=st.sampled_from([None, ROMEO, ROMEO.bare, NURSE]),
    start=st.sampled_from([None, 2]),
)
def test_any_sequence_of_pages_covers_the_filtered_set_exactly_once(
    tmp_path_factory: pytest.TempPathFactory,
    messages: list[tuple[JID, int]],
    size: int,
    backward: bool,
    with_: JID | None,
    start: int | None,
) -> None:
    ops = [put(i, with_=w, stamp=t) for i, (w, t) in enumerate(messages)]
    memory = MemoryArchive()
    sqlite = SqliteArchiveStorage(
        sqlite3.connect(tmp_path_factory.mktemp("p") / "p.sqlite3", isolation_level=None)
    )
    query = {"with_": with_, "start": start}
    expected = [
        op.sid
        for op in ops
        if (with_ is None or (op.with_ == with_ if with_.resource else op.with_.bare == with_))
        and (start is None or op.stamp >= start)
    ]
    for store in (memory, sqlite):
        store.apply(ops)
        assert walk(store, size, backward=backward, query=query) == expected
        full = store.load(ArchiveQuery(JULIET, 1000, **query))
        assert full.count == len(expected)


def test_puts_written_behind_are_read_counted_and_kept_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "behind.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    store.apply([put(0)])
    for op in (put(0), put(1, keep=2), put(2, keep=2), put(3, with_=NURSE, archive=ROMEO.bare)):
        store.write_behind(op)
    page = store.load(ArchiveQuery(JULIET, 9))  # a read writes what is kept first
    assert sids(page) == ["id1", "id2"] and page.count == 2
    assert store.count(ROMEO.bare) == 1 and store.behind == []
    store.write_behind(put(4, keep=2))
    store.write_behind(put(5, keep=2))
    store.flush()
    reopened = SqliteArchiveStorage(sqlite3.connect(tmp_path / "behind.sqlite3"))
    assert sids(reopened.load(ArchiveQuery(JULIET, 9))) == ["id4", "id5"]
    assert reopened.count(JULIET) == 2


def test_a_put_with_also_archives_one_message_in_both_archives(
    backend: tuple[Make, Make],
) -> None:
    make, reopen = backend
    both = ArchivePut(JULIET, "s1", ROMEO, 1000.0, b"<m>hi</m>", 9, also=((ROMEO.bare, JULIET),))
    make().apply([both, put(2)])
    store = reopen()
    mine, theirs = store.load(ArchiveQuery(JULIET, 9)), store.load(ArchiveQuery(ROMEO.bare, 9))
    assert sids(mine) == ["s1", "id2"] and sids(theirs) == ["s1"]
    assert theirs.items[0].with_ == JULIET and mine.items[0].with_ == ROMEO
    assert theirs.items[0].stanza == b"<m>hi</m>" and store.count(ROMEO.bare) == 1
    # One side's quota or removal leaves the other's copy alone.
    store.apply([put(3, keep=1), ArchiveRemove(JULIET)])
    assert sids(reopen().load(ArchiveQuery(ROMEO.bare, 9))) == ["s1"]
    assert reopen().count(JULIET) == 0


def test_an_archive_named_twice_in_one_put_holds_the_message_once(
    backend: tuple[Make, Make],
) -> None:
    make, reopen = backend
    twice = ArchivePut(JULIET, "s1", ROMEO, 1000.0, b"<m/>", 9, also=((JULIET, ROMEO),))
    make().apply([twice])
    store = reopen()
    assert sids(store.load(ArchiveQuery(JULIET, 9))) == ["s1"] and store.count(JULIET) == 1
    store.apply([ArchiveRemove(JULIET)])
    assert reopen().count(JULIET) == 0


def test_the_sqlite_store_keeps_rows_of_the_first_layout(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.sqlite3", isolation_level=None)
    conn.execute(
        "CREATE TABLE mam_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, archive TEXT,"
        " sid TEXT, with_bare TEXT, with_full TEXT, stamp REAL, stanza BLOB)"
    )
    conn.execute("CREATE TABLE mam_counts (archive TEXT PRIMARY KEY, n INTEGER)")
    conn.executemany(
        "INSERT INTO mam_messages (archive, sid, with_bare, with_full, stamp, stanza)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (str(JULIET), "b", "romeo@example.com", str(ROMEO), 5.0, b"<m>1</m>"),
            (str(JULIET), "a", "nurse@example.com", str(NURSE), 4.0, b"<m>2</m>"),
        ],
    )
    store = SqliteArchiveStorage(conn)
    page = store.load(ArchiveQuery(JULIET, 9))
    assert sids(page) == ["b", "a"] and page.count == 2
    assert page.items[1].with_ == NURSE and page.items[1].stamp == 4.0
    assert sids(store.load(ArchiveQuery(JULIET, 9, end=4.5))) == ["a"]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "mam_messages" not in tables and "mam_counts" not in tables


def test_the_sqlite_store_keeps_rows_of_the_second_layout(tmp_path: Path) -> None:
    """The layout before the peers became integers (session 5): entries
    with the peers as text, ``with_bare``/``with_full``, written as it did."""
    conn = sqlite3.connect(tmp_path / "v2.sqlite3", isolation_level=None)
    conn.executescript(
        """
        CREATE TABLE mam_archives (id INTEGER PRIMARY KEY, jid TEXT NOT NULL UNIQUE,
            n INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE mam_items (seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE,
            stamp REAL NOT NULL, refs INTEGER NOT NULL, stanza BLOB NOT NULL);
        CREATE TABLE mam_entries (archive INTEGER NOT NULL, seq INTEGER NOT NULL,
            with_bare TEXT NOT NULL, with_full TEXT NOT NULL, PRIMARY KEY (archive, seq))
            WITHOUT ROWID;
        CREATE INDEX mam_entries_with ON mam_entries (archive, with_bare, seq);
        CREATE TABLE mam_prefs (archive TEXT PRIMARY KEY, prefs TEXT NOT NULL);
        CREATE TABLE mam_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO mam_archives VALUES (1, 'juliet@example.com', 3), (2, 'romeo@example.com', 1);
        INSERT INTO mam_items VALUES (4000000, 'a', 4.0, 1, CAST('<m>1</m>' AS BLOB)),
            (5000000, 'b', 5.0, 2, CAST('<m>2</m>' AS BLOB)),
            (6000000, 'c', 6.0, 1, CAST('<m>3</m>' AS BLOB));
        INSERT INTO mam_entries VALUES
            (1, 4000000, 'nurse@example.com', 'nurse@example.com/home'),
            (1, 5000000, 'romeo@example.com', 'romeo@example.com/orchard'),
            (2, 5000000, 'juliet@example.com', 'juliet@example.com'),
            (1, 6000000, 'romeo@example.com', 'romeo@example.com/balcony');
        """
    )
    store = SqliteArchiveStorage(conn)
    page = store.load(ArchiveQuery(JULIET, 9))
    assert sids(page) == ["a", "b", "c"] and page.count == 3
    assert [m.with_ for m in page.items] == [NURSE, ROMEO, ROMEO.bare.with_resource("balcony")]
    assert sids(store.load(ArchiveQuery(JULIET, 9, with_=ROMEO.bare))) == ["b", "c"]
    assert sids(store.load(ArchiveQuery(JULIET, 9, with_=ROMEO))) == ["b"]
    assert sids(store.load(ArchiveQuery(ROMEO.bare, 9, with_=JULIET))) == ["b"]
    store.apply([put(7, with_=NURSE, stamp=7.0)])
    reopened = SqliteArchiveStorage(conn)
    assert sids(reopened.load(ArchiveQuery(JULIET, 9, with_=NURSE.bare))) == ["a", "id7"]
    columns = {r[1] for r in conn.execute("PRAGMA table_info(mam_entries)")}
    assert columns == {"archive", "seq", "bare", "peer"}


def test_a_peer_made_by_a_failed_transaction_is_made_again(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "peers.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    store.apply([put(0, with_=ROMEO)])
    with pytest.raises(TypeError):  # the nurse's ids are made, then the batch fails
        store.apply([put(1, with_=NURSE), VCardPut(JULIET, b"<v/>")])
    paris = JID.parse("paris@example.com/verona")
    store.apply([put(2, with_=paris)])  # the ids the nurse lost are free again
    store.write_behind(put(3, with_=NURSE))
    store.flush()
    page = store.load(ArchiveQuery(JULIET, 9))
    assert [(m.sid, m.with_) for m in page.items] == [
        ("id0", ROMEO),
        ("id2", paris),
        ("id3", NURSE),
    ]
    assert sids(store.load(ArchiveQuery(JULIET, 9, with_=NURSE))) == ["id3"]
    assert sids(store.load(ArchiveQuery(JULIET, 9, with_=paris.bare))) == ["id2"]


def test_an_archive_made_by_a_failed_transaction_fails_one_write_then_is_made_again(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "ids.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    with pytest.raises(TypeError):  # juliet's archive id is made, then the batch fails
        store.apply([put(0), VCardPut(JULIET, b"<v/>")])
    with pytest.raises(sqlite3.DatabaseError, match="not committed"):
        store.apply([put(1)])
    store.apply([put(2)])
    assert sids(store.load(ArchiveQuery(JULIET, 9))) == ["id2"] and store.count(JULIET) == 1


def test_an_archive_made_by_a_callers_rolled_back_transaction_is_made_again(
    tmp_path: Path,
) -> None:
    # Session 13: a batch far below its quota reads no size, so the size
    # SELECT no longer finds every stale id: the id's creation journals an
    # undo (the caller's outcome learned later) that makes the next batch read.
    conn = sqlite3.connect(tmp_path / "caller.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    conn.execute("BEGIN")
    store.write(put(0))  # juliet's archive id made in the caller's transaction
    conn.execute("ROLLBACK")
    with pytest.raises(sqlite3.DatabaseError, match="not committed"):
        store.apply([put(1)])
    store.apply([put(2)])
    assert sids(store.load(ArchiveQuery(JULIET, 9))) == ["id2"] and store.count(JULIET) == 1


def _size_reads(conn: sqlite3.Connection) -> list[str]:
    """The archives' size ``SELECT`` statements run on ``conn`` (appended)."""
    seen: list[str] = []
    conn.set_trace_callback(lambda sql: seen.append(sql) if "a.n + c.column2" in sql else None)
    return seen


def test_a_batch_far_below_every_quota_reads_no_size(tmp_path: Path) -> None:
    # Session 13: the bound of each archive's merged size (raised by every
    # merge) plus the largest log count within a batch's smallest quota: no
    # archive can be over it, so the batch reads no size.
    conn = sqlite3.connect(tmp_path / "bound.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=5)
    reads = _size_reads(conn)
    for i in range(12):
        store.write_behind(put(i, keep=100, also=((NURSE, ROMEO),)))
        store.flush()
    assert store.merges >= 2 and store.count(JULIET) == 12
    assert reads == []
    store.apply([put(12, keep=12)])  # 13 > 12: read, and trimmed
    assert len(reads) == 1 and store.count(JULIET) == 12
    store.apply([put(13, keep=100, retention=10**6)])  # a retention: always read
    assert len(reads) == 2 and store.count(JULIET) == 13


def test_the_quota_holds_across_merges_and_reopening(tmp_path: Path) -> None:
    # The bound must follow the merged sizes: the merges' counts raise it,
    # and a reopened store reads it from the table (a bound left at 0 would
    # let the archive grow past its quota).
    conn = sqlite3.connect(tmp_path / "quota.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=1)
    for i in range(8):
        store.apply([put(i, keep=5)])
        assert store.count(JULIET) == min(i + 1, 5)
    store.merge()
    reopened = SqliteArchiveStorage(conn, merge_every=1 << 40)  # the bound read back
    for i in range(8, 11):
        reopened.write_behind(put(i, keep=6))
        reopened.flush()
        assert reopened.count(JULIET) == 6
    reopened.merge_every = 1  # each flush merges: the bound raised by each
    for i in range(11, 14):
        reopened.write_behind(put(i, keep=7))
        reopened.flush()
        assert reopened.count(JULIET) == 7 and not reopened._log.sizes
    assert sids(reopened.load(ArchiveQuery(JULIET, 9))) == [f"id{i}" for i in range(7, 14)]


def test_start_and_end_are_exact_when_the_clock_went_back(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "clock.sqlite3", isolation_level=None)
    SqliteArchiveStorage(conn).apply([put(0, stamp=100), put(1, stamp=50), put(2, stamp=70)])
    store = SqliteArchiveStorage(conn)  # reopened: the clock's lead is kept
    assert sids(store.load(ArchiveQuery(JULIET, 9, end=60))) == ["id1"]
    assert sids(store.load(ArchiveQuery(JULIET, 9, start=60, end=80))) == ["id2"]
    assert sids(store.load(ArchiveQuery(JULIET, 9, start=80))) == ["id0"]
    store.apply([put(3, stamp=200, retention=120.0)])
    assert sids(store.load(ArchiveQuery(JULIET, 9))) == ["id0", "id3"]


def _walk_all(store: SqliteArchiveStorage, archive: JID) -> list[str]:
    out: list[str] = []
    after: str | None = None
    while True:
        page = store.load(ArchiveQuery(archive, 100, after=after))
        out += sids(page)
        if page.complete:
            return out
        after = out[-1]


@pytest.mark.parametrize("n", [1, 127, 128, 300, 1000])
def test_a_flush_of_n_puts_writes_every_row_in_order_in_both_archives(
    tmp_path: Path, n: int
) -> None:
    # The rows go in multi-row statements of 128, 64, ... 1 rows: every size is written.
    conn = sqlite3.connect(tmp_path / "many.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    for i in range(n):
        store.write_behind(put(i, also=((ROMEO.bare, JULIET),), stamp=1000 + i // 3))
    store.flush()
    reopened = SqliteArchiveStorage(sqlite3.connect(tmp_path / "many.sqlite3"))
    expected = [f"id{i}" for i in range(n)]
    assert _walk_all(reopened, JULIET) == expected == _walk_all(reopened, ROMEO.bare)
    assert reopened.count(JULIET) == n == reopened.count(ROMEO.bare)


def test_a_known_id_late_in_a_large_flush_is_archived_once_and_the_rest_written(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "known.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    store.apply([put(250, archive=ROMEO.bare)])
    for i in range(300):  # the 251st row's sid is held: the flush goes one by one
        store.write_behind(put(i))
    store.flush()
    # in write order: the held message first (its seq is older), each once
    assert _walk_all(store, JULIET) == ["id250"] + [f"id{i}" for i in range(300) if i != 250]
    assert sids(store.load(ArchiveQuery(ROMEO.bare, 9))) == ["id250"]
    assert store.count(JULIET) == 300 and store.count(ROMEO.bare) == 1
