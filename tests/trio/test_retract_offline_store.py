"""``OfflineRemove`` (a retracted original leaving the XEP-0160 queue) in
both offline stores: one message of one account goes, the others and the
order stay, and a message already gone is no error."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import OfflinePush, OfflineRemove
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineStorage
from xmpp_trio.stores.offline import SqliteOfflineStorage

JULIET = JID.parse("juliet@example.com")
ROMEO = JID.parse("romeo@example.com")


def memory(_: Path) -> OfflineStorage:
    return MemoryOfflineStorage()


def sqlite(tmp_path: Path) -> OfflineStorage:
    return SqliteOfflineStorage(sqlite3.connect(tmp_path / "offline.db", isolation_level=None))


@pytest.mark.parametrize("make", [memory, sqlite])
def test_offline_remove_takes_out_one_message_only(
    make: Callable[[Path], OfflineStorage], tmp_path: Path
) -> None:
    store = make(tmp_path)
    store.apply([OfflinePush(JULIET, i, f"<m{i}/>".encode(), float(i)) for i in (1, 2, 3)])
    store.apply([OfflinePush(ROMEO, 4, b"<m4/>", 4.0)])
    store.apply([OfflineRemove(JULIET, 2), OfflineRemove(JULIET, 4), OfflineRemove(JULIET, 9)])
    assert [m.id for m in store.peek(JULIET)] == [1, 3]
    assert [m.id for m in store.peek(ROMEO)] == [4]  # another account's id: untouched
    assert store.last_id() == 4
