"""What the SQLite stores share: one transaction, and applying ``Persist``
ops through each store's ``write``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from xmpp_sansio.server.effects import StoreOp

__all__ = ["apply_ops", "transaction"]


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction, committed on success and rolled back on error, whether
    the connection is in autocommit mode (``isolation_level=None``) or not."""
    if db.isolation_level is None:
        db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


def apply_ops(
    db: sqlite3.Connection, write: Callable[[StoreOp], None], ops: Sequence[StoreOp]
) -> None:
    """``write`` each of ``ops`` in order, in one transaction of ``db``: all or nothing."""
    with transaction(db):
        for op in ops:
            write(op)
