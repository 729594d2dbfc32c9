"""The ``ours-nostore`` target (benchmarks/load/targets.py): our server with
archives on whose archive writer skips SQLite (``write_batch`` does nothing),
so a run measures what archiving costs the event loop alone (the transform's
stamp, the archived copy, the hand-over to the writer) apart from the
store's commits, merges and checkpoints (docs/benchmarks.md, session 15).

Python imports this module at start-up when its directory is on
``PYTHONPATH`` (the target puts it there for the server's process only). A
benchmark instrument, never a configuration: the messages are not archived."""

from xmpp_trio.stores.mam import SqliteArchiveStorage


def _skip(self: SqliteArchiveStorage, conn: object, batch: object) -> None:
    """The writer's batch, not written."""


SqliteArchiveStorage.write_batch = _skip  # type: ignore[method-assign,assignment]
