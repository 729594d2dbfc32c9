"""RSM ``<index/>`` (XEP-0059 §2.5) in archive queries, on both backends:
a page by position in the query's set (filters ``with``, ``start``,
``end``) against a model, with the set's count and the first index; past
the end an empty, complete page. The tombstone op (XEP-0425 §5) replaces a
message in place. SQLite over real files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_mam_store import JULIET, NURSE, ROMEO, archives, backend, put, sids  # noqa: F401

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import (
    ArchivePage,
    ArchivePut,
    ArchiveQuery,
    ArchiveReplace,
    MemoryArchive,
)
from xmpp_trio.stores.mam import SqliteArchiveStorage


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    archived=archives,
    index=st.integers(0, 30),
    size=st.integers(0, 7),
    with_=st.sampled_from([None, ROMEO, ROMEO.bare, NURSE]),
    start=st.sampled_from([None, 2]),
    end=st.sampled_from([None, 3]),
)
def test_a_page_by_index_is_the_models_slice_with_count_and_first_index(
    tmp_path_factory: pytest.TempPathFactory,
    archived: list[tuple[JID, int]],
    index: int,
    size: int,
    with_: JID | None,
    start: int | None,
    end: int | None,
) -> None:
    ops = [put(i, with_=w, stamp=t) for i, (w, t) in enumerate(archived)]
    model = [
        op.sid
        for op in ops
        if (with_ is None or (op.with_ == with_ if with_.resource else op.with_.bare == with_))
        and (start is None or op.stamp >= start)
        and (end is None or op.stamp <= end)
    ]
    sqlite = SqliteArchiveStorage(
        sqlite3.connect(tmp_path_factory.mktemp("i") / "i.sqlite3", isolation_level=None)
    )
    for store in (MemoryArchive(), sqlite):
        store.apply(ops)
        page = store.load(
            ArchiveQuery(JULIET, size, with_=with_, start=start, end=end, index=index)
        )
        assert isinstance(page, ArchivePage)
        assert sids(page) == model[index : index + size]
        assert page.count == len(model)
        assert page.complete == (index + size >= len(model))
        assert page.first_index == (index if page.items else None)


def test_an_index_page_of_a_100k_archive_and_past_its_end(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "big.sqlite3", isolation_level=None)
    store = SqliteArchiveStorage(conn)
    n = 100_000
    conn.execute("PRAGMA synchronous=OFF")
    for i in range(n):
        store.write_behind(ArchivePut(JULIET, f"id{i}", ROMEO, 1000.0 + i, b"<m/>", n))
    store.flush()
    page = store.load(ArchiveQuery(JULIET, 50, index=50_000))
    assert sids(page) == [f"id{i}" for i in range(50_000, 50_050)]
    assert (page.count, page.first_index, page.complete) == (n, 50_000, False)
    past = store.load(ArchiveQuery(JULIET, 50, index=n))
    assert isinstance(past, ArchivePage)
    assert (past.items, past.complete, past.count) == ((), True, n)
    far = store.load(ArchiveQuery(JULIET, 50, index=1 << 62))  # the parser's cap
    assert isinstance(far, ArchivePage) and (far.items, far.complete) == ((), True)


def test_a_tombstone_replaces_the_message_in_place(backend) -> None:  # noqa: F811
    make, reopen = backend
    store = make()
    store.apply([put(i) for i in range(3)])
    store.apply([ArchiveReplace(JULIET, "id1", b"<m>gone</m>")])
    store.apply([ArchiveReplace(JULIET, "nope", b"<m/>"), ArchiveReplace(ROMEO, "id2", b"<m/>")])
    page = reopen().load(ArchiveQuery(JULIET, 10))
    assert [(m.sid, m.stanza) for m in page.items] == [
        ("id0", b"<m>0</m>"),
        ("id1", b"<m>gone</m>"),
        ("id2", b"<m>2</m>"),
    ]
