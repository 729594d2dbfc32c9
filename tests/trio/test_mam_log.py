"""The archive's log (xmpp_trio/stores/mam.py, docs/mam.md "Cost"): new
entries are appended to ``mam_log_entries`` and merged into the indexed
``mam_entries`` every ``[mam] merge_every`` messages and when the writer is
idle; every read sees both halves. On real SQLite files: what a query returns
with entries in the log is what it returns once everything is merged (a
hypothesis property over puts, duplicate ids, quotas, tombstones, removals and
merges), a restart with entries in the log serves and later merges them, a
database made before the log keeps working, and the merges happen when
``merge_every`` says."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_archive_writer import store_with_writer

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import (
    ArchiveMeta,
    ArchivePage,
    ArchivePut,
    ArchiveQuery,
    ArchiveRemove,
    ArchiveReplace,
)
from xmpp_trio.config import ConfigError, load_config
from xmpp_trio.stores import mam, mam_log
from xmpp_trio.stores.mam import MERGE_EVERY, MERGE_SPREAD, MERGE_STRETCH, SqliteArchiveStorage

ARCHIVES = [JID.parse(f"{name}@example.com") for name in ("juliet", "romeo", "nurse")]
PEERS = [*ARCHIVES, JID.parse("romeo@example.com/orchard"), JID.parse("tybalt@else.example/x")]


def logged(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM mam_log_entries").fetchone()[0])


def put(n: int, archive: int = 0, peer: int = 1, keep: int = 10**6, **kw: Any) -> ArchivePut:
    return ArchivePut(
        ARCHIVES[archive], f"s{n:04d}", PEERS[peer], 1000.0 + n, f"<m>{n}</m>".encode(), keep, **kw
    )


def walk(store: SqliteArchiveStorage, archive: JID, size: int, *, backward: bool) -> list[str]:
    seen: list[str] = []
    mark: str | None = "" if backward else None
    while True:
        query = ArchiveQuery(archive, size, before=mark) if backward else (
            ArchiveQuery(archive, size, after=mark)
        )  # fmt: skip
        page = store.load(query)
        assert isinstance(page, ArchivePage)
        got = [m.sid for m in page.items]
        seen = got + seen if backward else seen + got
        if page.complete or not got:
            return seen
        mark = got[0] if backward else got[-1]


def test_a_restart_with_entries_in_the_log_serves_them_then_merges_them(tmp_path: Path) -> None:
    path = str(tmp_path / "archive.sqlite3")
    conn, store, writer = store_with_writer(path)
    ops = [put(n, archive=n % 2, peer=2, also=((ARCHIVES[2], PEERS[n % 2]),)) for n in range(450)]
    for op in ops:
        store.write_behind(op)
    store.hand_off(block=True)
    writer.idle()
    # Written, not merged (the writer got no empty batch): then the server dies.
    assert writer.batches == 1 and store.merges == 0
    writer.close()
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    assert (
        logged(conn) == 900 and conn.execute("SELECT COUNT(*) FROM mam_entries").fetchone()[0] == 0
    )
    reopened = SqliteArchiveStorage(conn, merge_every=MERGE_EVERY)
    everything = [op.sid for op in ops]
    for _ in range(2):  # from the log, then merged
        assert walk(reopened, ARCHIVES[2], 7, backward=False) == everything
        assert walk(reopened, ARCHIVES[2], 50, backward=True) == everything
        assert walk(reopened, ARCHIVES[0], 9, backward=False) == everything[0::2]
        assert reopened.count(ARCHIVES[1]) == 225
        first, last = reopened.load(ArchiveMeta(ARCHIVES[1]))  # type: ignore[misc]
        assert (first.sid, last.sid) == ("s0001", "s0449")
        reopened.flush_or_merge()  # the server's flush with nothing kept: it merges
    assert logged(conn) == 0 and reopened.merges == 1
    conn.close()


def test_a_database_made_before_the_log_opens_and_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite3"
    store = SqliteArchiveStorage(sqlite3.connect(path, isolation_level=None))
    store.apply([put(n) for n in range(5)])
    store.merge()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE mam_log_entries")  # the layout before the log
    reopened = SqliteArchiveStorage(conn)
    reopened.apply([put(n) for n in range(5, 8)])
    page = reopened.load(ArchiveQuery(ARCHIVES[0], 10))
    assert isinstance(page, ArchivePage)
    assert [m.sid for m in page.items] == [f"s{n:04d}" for n in range(8)] and page.count == 8
    assert logged(conn) == 3


def test_the_writer_merges_every_merge_every_messages_and_when_idle(tmp_path: Path) -> None:
    path = str(tmp_path / "archive.sqlite3")
    conn, store, writer = store_with_writer(path)
    store.merge_every = 500
    for batch in range(3):
        for n in range(batch * 200, batch * 200 + 200):
            store.write_behind(put(n, also=((ARCHIVES[1], PEERS[0]),)))
        store.hand_off(block=True)
        writer.idle()
        assert store.merges == (batch == 2)  # 600 messages reach 500: one merge
    assert logged(conn) == 0
    store.write_behind(put(600))
    store.hand_off(block=True)
    writer.idle()
    assert logged(conn) == 1 and store.merges == 1
    store.hand_off(block=True)  # nothing kept: the writer is idle, it merges
    writer.idle()
    assert logged(conn) == 0 and store.merges == 2
    assert walk(store, ARCHIVES[1], 100, backward=True) == [f"s{n:04d}" for n in range(600)]
    writer.close()
    assert writer.failures == 0
    conn.close()


def test_without_a_writer_the_flush_merges_at_merge_every(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "archive.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=3)
    store.write_behind(put(0))
    store.write_behind(put(1))
    store.flush()
    assert logged(conn) == 2 and store.merges == 0
    store.write_behind(put(2))
    store.flush_or_merge()  # something kept: flushed, and 3 reach merge_every
    assert logged(conn) == 0 and store.merges == 1


def test_a_log_spread_over_many_archives_is_merged_after_more_messages(tmp_path: Path) -> None:
    # A ring of 1,000 accounts (each message in its sender's and recipient's
    # archives): the log soon spreads over more than MERGE_SPREAD archives,
    # so it is merged at MERGE_STRETCH times merge_every (a ring of 100:
    # twice), and a restart counts the archives the log holds; 20 accounts
    # merge at merge_every.
    ring = [JID.parse(f"u{i}@example.com") for i in range(1000)]

    def ring_put(n: int, accounts: int) -> ArchivePut:
        a, b = ring[n % accounts], ring[(n + 1) % accounts]
        return ArchivePut(b, f"r{n:05d}", a, 1000.0 + n, b"<m/>", 10**6, also=((a, b),))

    every = 300
    assert MERGE_SPREAD == 50
    stretched = ((100, 2 * every), (1000, MERGE_STRETCH * every))  # 2x: 100 archives over 50
    for accounts, merged_at in ((20, every), *stretched):
        path = tmp_path / f"ring{accounts}.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        store = SqliteArchiveStorage(conn, merge_every=every)
        for n in range(merged_at):
            if n and n % 100 == 0:
                store.flush()
                assert store.merges == 0, n
            store.write_behind(ring_put(n, accounts))
        if accounts > MERGE_SPREAD:
            conn.close()  # a restart: the log's spread is read back
            conn = sqlite3.connect(path, isolation_level=None)
            store = SqliteArchiveStorage(conn, merge_every=every)
            assert not store.merge_due() and logged(conn) == 2 * (merged_at - 100)
            for n in range(merged_at - 100, merged_at):
                store.write_behind(ring_put(n, accounts))
        store.flush()
        assert store.merges == 1 and logged(conn) == 0
        page = store.load(ArchiveQuery(ring[1], 10**6))
        assert isinstance(page, ArchivePage)
        assert [m.sid for m in page.items] == [
            f"r{n:05d}" for n in range(merged_at) if n % accounts in (0, 1)
        ]
        conn.close()


def test_a_failed_merge_keeps_the_log_which_is_read_and_merged_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = sqlite3.connect(tmp_path / "archive.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=2)
    conn.execute(
        "CREATE TRIGGER full_disk BEFORE INSERT ON mam_entries BEGIN"
        " SELECT RAISE(ABORT, 'disk full'); END"
    )
    store.write_behind(put(0))
    store.write_behind(put(1))
    store.flush()  # committed, then the merge fails
    assert "merging the log failed" in caplog.text
    assert logged(conn) == 2 and store.merges == 0
    assert walk(store, ARCHIVES[0], 1, backward=True) == ["s0000", "s0001"]
    conn.execute("DROP TRIGGER full_disk")
    store.flush_or_merge()
    assert logged(conn) == 0 and store.merges == 1
    assert walk(store, ARCHIVES[0], 1, backward=False) == ["s0000", "s0001"]


def test_merge_every_is_a_mam_key_loaded_and_checked(tmp_path: Path) -> None:
    assert load_config(None).mam_writer.merge_every == MERGE_EVERY == 5000
    path = tmp_path / "xmpp.toml"
    path.write_text("[mam]\nmerge_every = 1200\n")
    assert load_config(path).mam_writer.merge_every == 1200
    for bad in ("0", '"often"', "2000000"):
        path.write_text(f"[mam]\nmerge_every = {bad}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.key == "mam.merge_every"


# -- any interleaving reads as if everything were merged ---------------------------

_SIDS = st.integers(0, 30)
_PUT = st.tuples(
    st.just("put"),
    _SIDS,
    st.integers(0, 2),
    st.integers(0, 4),
    st.sampled_from([None, 0, 1, 2]),  # the other local side, if any
    st.sampled_from([10**6, 10**6, 4]),  # no quota, or one that trims
)
_OPS = st.one_of(
    _PUT,
    _PUT,
    st.tuples(st.just("behind"), st.lists(_SIDS, min_size=1, max_size=8)),
    st.tuples(st.just("replace"), _SIDS, st.integers(0, 2)),
    st.tuples(st.just("remove"), st.integers(0, 2)),
    st.tuples(st.just("merge")),
    st.tuples(st.just("read"), st.integers(0, 2)),  # sorts one archive's entries in
)


def _query(draw: st.DrawFn, store: SqliteArchiveStorage) -> ArchiveQuery:
    """A query of one of the archives, naming ids it holds (mostly)."""
    holding = [a for a in ARCHIVES if store.count(a)] or ARCHIVES
    archive = draw(st.sampled_from(holding))
    whole = store.load(ArchiveQuery(archive, 1000))
    assert isinstance(whole, ArchivePage)
    held = [m.sid for m in whole.items] or ["s9999"]

    def sid() -> str:
        return draw(st.sampled_from([*held * 5, "s9999"]))  # an unknown one now and then

    def rarely() -> str | None:
        return sid() if draw(st.integers(0, 3)) == 0 else None

    rsm = draw(st.sampled_from(["first", "after", "before", "last", "index"]))
    return ArchiveQuery(
        archive,
        draw(st.integers(1, 5)),
        with_=draw(st.sampled_from([None, None, None, PEERS[1], PEERS[3], PEERS[3].bare])),
        start=draw(st.sampled_from([None, None, 1005.0])),
        end=draw(st.sampled_from([None, None, 1020.0])),
        after_id=rarely(),
        before_id=rarely(),
        ids=None if rarely() is None else tuple(sid() for _ in range(draw(st.integers(0, 4)))),
        after=sid() if rsm == "after" else None,
        before=sid() if rsm == "before" else ("" if rsm == "last" else None),
        index=draw(st.integers(0, 12)) if rsm == "index" else None,
    )


def _apply(store: SqliteArchiveStorage, op: tuple[Any, ...], stamps: dict[int, float]) -> None:
    def make(n: int, archive: int = 0, peer: int = 1, other: int | None = None, keep: int = 10**6):
        stamp = stamps.setdefault(n, 1000.0 + len(stamps))  # a sid is one message
        also = () if other is None else ((ARCHIVES[other], PEERS[archive]),)
        return ArchivePut(
            ARCHIVES[archive], f"s{n:04d}", PEERS[peer], stamp, f"<m>{n}</m>".encode(), keep,
            also=also,
        )  # fmt: skip

    match op:
        case ("put", n, archive, peer, other, keep):
            store.apply([make(n, archive, peer, other, keep)])
        case ("behind", ns):
            for n in ns:
                store.write_behind(make(n, n % 3, n % 5, (n + 1) % 3))
            store.flush()
        case ("replace", n, archive):
            store.apply([ArchiveReplace(ARCHIVES[archive], f"s{n:04d}", b"<gone/>")])
        case ("remove", archive):
            store.apply([ArchiveRemove(ARCHIVES[archive])])
        case ("merge",):
            store.merge()
        case ("read", archive):
            store.load(ArchiveQuery(ARCHIVES[archive], 1000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_OPS, min_size=4, max_size=30), data=st.data())
def test_any_interleaving_reads_as_if_everything_were_merged(
    ops: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    logged_store = SqliteArchiveStorage(sqlite3.connect(":memory:", isolation_level=None))
    merged = SqliteArchiveStorage(sqlite3.connect(":memory:", isolation_level=None))
    stamps: dict[int, float] = {}
    for op in ops:
        _apply(logged_store, op, stamps)
        _apply(merged, op, dict(stamps))
        merged.merge()
    for _ in range(8):
        query = _query(data.draw, merged)
        assert logged_store.load(query) == merged.load(query), query
    for archive in ARCHIVES:
        assert logged_store.count(archive) == merged.count(archive)
        assert logged_store.load(ArchiveMeta(archive)) == merged.load(ArchiveMeta(archive))
        whole = merged.load(ArchiveQuery(archive, 1000))
        assert isinstance(whole, ArchivePage) and whole.count == len(whole.items)
        everything = [m.sid for m in whole.items]
        assert len(set(everything)) == len(everything)  # no duplicate
        for size in (1, 3):  # no gap, no duplicate, either way
            assert walk(logged_store, archive, size, backward=False) == everything
            assert walk(logged_store, archive, size, backward=True) == everything


def test_a_read_after_many_writes_sorts_in_a_bounded_part_of_the_log() -> None:
    """A read sorts the log's new entries into the lists of every archive a
    bounded part at a time (the oldest ``FOLD_STEP``), and takes its own
    archive's from the rest: the loop's first read after many writes does
    not pay for the whole log; later reads finish it, each entry once."""
    store = SqliteArchiveStorage(sqlite3.connect(":memory:", isolation_level=None))
    store.merge_every = 1 << 62
    owners = [JID.parse(f"u{i}@example.com") for i in range(50)]
    total = 3 * mam_log.FOLD_STEP
    for n in range(total):
        store.write_behind(
            ArchivePut(owners[n % 50], f"l{n}", PEERS[1], 1000.0 + n, b"<m/>", 10**6)
        )
        if n % 200 == 199:
            store.flush()  # a batch a chunk, as the writer's
    store.flush()
    index = store._log

    def sorted_in() -> int:
        return sum(len(found) for found in index._by_archive.values())

    held = len(range(7, total, 50))
    page = store.load(ArchiveQuery(owners[7], 3, before=""))
    assert isinstance(page, ArchivePage) and page.count == held
    assert [m.sid for m in page.items] == [f"l{n}" for n in range(7, total, 50)[-3:]]
    assert sorted_in() < 2 * mam_log.FOLD_STEP  # not the whole log
    for owner in owners[:5]:  # each read sorts in another part, each entry once
        page = store.load(ArchiveQuery(owner, 2))
        assert isinstance(page, ArchivePage) and len(page.items) == 2
    assert sorted_in() == total and not index._chunks
    page = store.load(ArchiveQuery(owners[7], held + 1))
    assert [m.sid for m in page.items] == [f"l{n}" for n in range(7, total, 50)]  # type: ignore[union-attr]


def test_a_callers_transaction_that_rolls_back_leaves_no_entry_in_memory(tmp_path: Path) -> None:
    # The loop's ServerServices.commit writes what is kept behind in its own
    # transaction: the store learns its outcome afterwards (a mark in a
    # temporary table), so a rollback takes back the log's entries and sizes
    # it holds in memory, and a commit keeps them.
    conn = sqlite3.connect(tmp_path / "archive.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=10**6)
    store.apply([put(0), put(1, archive=1)])
    for outcome in ("rollback", "commit"):
        conn.execute("BEGIN IMMEDIATE")
        store.write_behind(put(2, also=((ARCHIVES[1], PEERS[0]),)))
        store.write_pending()
        store.write(put(3, keep=2))  # the quota trims the log (in memory too)
        store.write(ArchiveRemove(ARCHIVES[1]))
        assert store.count(ARCHIVES[0]) == 2 and store.count(ARCHIVES[1]) == 0  # as it sees
        conn.execute(outcome.upper())
        if outcome == "rollback":
            assert store.count(ARCHIVES[0]) == 1 and store.count(ARCHIVES[1]) == 1
            assert walk(store, ARCHIVES[0], 1, backward=True) == ["s0000"]
            assert walk(store, ARCHIVES[1], 5, backward=False) == ["s0001"]
    assert store.count(ARCHIVES[0]) == 2 and store.count(ARCHIVES[1]) == 0
    assert walk(store, ARCHIVES[0], 1, backward=False) == ["s0002", "s0003"]
    store.merge()
    assert store.count(ARCHIVES[0]) == 2 and logged(conn) == 0
    assert walk(store, ARCHIVES[0], 1, backward=True) == ["s0002", "s0003"]
    conn.close()


def test_sizes_of_a_database_that_counted_the_log_in_n_are_taken_over(tmp_path: Path) -> None:
    # Before session 11 mam_archives.n counted the log's entries too.
    path = tmp_path / "archive.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=10**6)
    store.apply([put(n, archive=n % 2) for n in range(5)])
    store.merge()
    store.apply([put(n, archive=n % 2) for n in range(5, 12)])
    conn.execute("DELETE FROM mam_state WHERE key = 'n_merged'")
    conn.execute("UPDATE mam_archives SET n = n + (SELECT COUNT(*) FROM mam_log_entries l"
                 " WHERE l.archive = mam_archives.id)")  # fmt: skip
    conn.close()
    reopened = SqliteArchiveStorage(sqlite3.connect(path, isolation_level=None))
    assert (reopened.count(ARCHIVES[0]), reopened.count(ARCHIVES[1])) == (6, 6)
    reopened.merge()
    assert (reopened.count(ARCHIVES[0]), reopened.count(ARCHIVES[1])) == (6, 6)


def test_a_merge_in_steps_reads_counts_and_restarts_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long log is merged in steps of whole archives (MERGE_CHUNK entries a
    # transaction); between two steps, writes, quotas, removals, reads and
    # counts see every entry once; a restart between two steps drops the
    # log's rows the done steps moved and keeps the rest.
    monkeypatch.setattr(mam, "MERGE_CHUNK", 10)
    path = tmp_path / "archive.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=10**6)
    ring = [JID.parse(f"u{i}@example.com") for i in range(12)]

    def ring_put(n: int, keep: int = 10**6) -> ArchivePut:
        a, b = ring[n % 12], ring[(n + 1) % 12]
        return ArchivePut(b, f"r{n:04d}", a, 1000.0 + n, b"<m/>", keep, also=((a, b),))

    def expect(archive: int, upto: int) -> list[str]:
        return [f"r{n:04d}" for n in range(upto) if archive in (n % 12, (n + 1) % 12)]

    store.apply([ring_put(n) for n in range(120)])  # 20 entries an archive
    moved, done = store.merge_step()
    assert (moved, done) == (20, False)  # the first archive alone holds 20 (>= 10)
    store.apply([ring_put(n) for n in range(120, 132)])
    store.apply([ArchiveRemove(ring[3])])
    store.apply([ring_put(132, keep=5)])  # ring[0] and ring[1]: quota 5
    for i in (2, 5, 11):
        assert walk(store, ring[i], 7, backward=False) == expect(i, 133)
        assert walk(store, ring[i], 3, backward=True) == expect(i, 133)
        assert store.count(ring[i]) == len(expect(i, 133))
    assert store.count(ring[3]) == 0 and walk(store, ring[3], 5, backward=False) == []
    assert walk(store, ring[1], 2, backward=False) == expect(1, 133)[-5:]
    store.merge_step()
    conn.close()  # the server stops between two steps
    conn = sqlite3.connect(path, isolation_level=None)
    store = SqliteArchiveStorage(conn, merge_every=10**6)
    for _ in range(2):  # reopened, then merged whole
        for i in (2, 5, 11):
            assert walk(store, ring[i], 9, backward=False) == expect(i, 133)
            assert store.count(ring[i]) == len(expect(i, 133))
        assert walk(store, ring[1], 2, backward=True) == expect(1, 133)[-5:]
        assert store.count(ring[3]) == 0
        store.merge()
    assert logged(conn) == 0
    assert conn.execute("SELECT COUNT(*) FROM mam_state WHERE key LIKE 'merge_%'").fetchone() == (
        0,
    )
    conn.close()
