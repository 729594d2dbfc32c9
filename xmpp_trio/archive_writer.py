"""The archive's writes off the event loop (docs/mam.md, "Cost"): one worker
thread with its own SQLite connection to the server's database commits the
archived copies of live messages (XEP-0313) that the loop keeps behind, and
checkpoints the WAL, so the loop waits neither for an archive commit nor for
a checkpoint in the common case.

The loop hands over one batch at a time (:meth:`ArchiveWriter.hand`) and only
when the worker is idle; what arrives meanwhile is kept for the next batch,
so batches stay in archive order. Every other archive operation of the loop
first waits for the batch in flight (:meth:`ArchiveWriter.wait`): that, and a
commit of the loop meeting the worker's transaction on SQLite's write lock
(the connections' busy timeout), are the only waits left on the loop. A batch
that fails (``sqlite3.Error``) is tried once more, then its ops are handed
back by :meth:`ArchiveWriter.wait` to go first in the next write: none is
dropped silently (beyond :data:`KEEP_FAILED` kept ops, the oldest are dropped
and logged). A plain thread rather than ``trio.to_thread``: the loop's side
is synchronous (``StorageEdge.settle``, the once-a-second flush), and the
loop must not await the batch; :meth:`ArchiveWriter.close` (the server's
shutdown) ends the thread, and it is a daemon besides."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from .runtime import lower_thread_priority

__all__ = ["CHECKPOINT_OPS", "KEEP_FAILED", "ArchiveWriter", "BatchFloor", "database_file"]

log = logging.getLogger("xmpp_trio.archive")

#: Ops of failed batches kept to be written again; beyond, the oldest are
#: dropped (logged). The defaults of ``[mam] writer_keep_failed`` and
#: ``writer_checkpoint`` (xmpp_trio/mam_config.py).
KEEP_FAILED: Final = 100_000
#: Ops written between two ``PASSIVE`` checkpoints of the WAL (about 2 MB
#: of WAL with ~220-byte messages between two local accounts; SQLite's own
#: auto-checkpoint is 1000 pages, 4 MB).
CHECKPOINT_OPS: Final = 5000

T = TypeVar("T")


class BatchFloor:
    """How many ops the loop keeps before it hands them to the worker
    (:attr:`rows`): ``low`` while the worker keeps up (small commits: what
    waits for a batch in flight waits little), doubled up to ``high`` at a
    hand-over when the ops reached the floor while the worker was still busy
    (:meth:`lagging`: it falls behind, and fewer, larger commits cost less
    an op: each rewrites the same index pages, docs/benchmarks.md "Session
    8"), halved back at a hand-over when it was idle, and back to ``low``
    when a second passes with fewer than ``low`` ops (:meth:`quiet`)."""

    __slots__ = ("_lagging", "high", "low", "rows")

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, max(low, high)
        self.rows = low
        self._lagging = False

    def lagging(self) -> None:
        """The ops reached the floor while the worker was busy."""
        self._lagging = True

    def handed(self) -> None:
        """A batch was handed over: the next floor."""
        rows = self.rows
        self.rows = min(rows * 2, self.high) if self._lagging else max(rows // 2, self.low)
        self._lagging = False

    def quiet(self) -> None:
        """Little was archived lately: back to the smallest batches."""
        self.rows = self.low
        self._lagging = False


def database_file(conn: sqlite3.Connection) -> str | None:
    """The file of ``conn``'s main database (``None``: in memory or temporary)."""
    for _seq, name, path in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(path) or None
    return None  # pragma: no cover - SQLite always lists main


class ArchiveWriter(Generic[T]):
    """A worker thread that runs ``write(conn, batch)`` for each batch handed
    over, ``conn`` its own connection to ``path`` (WAL, ``synchronous=NORMAL``:
    an archived copy survives a crash of the server, not a power cut, as with
    the flush on the loop before). The WAL is checkpointed here, ``PASSIVE``
    (it blocks no writer), after the batch is reported done, so no one waits
    for it: every :data:`CHECKPOINT_OPS` ops and on an empty batch (the
    server's once-a-second flush with nothing kept). No connection
    checkpoints on its own (``wal_autocheckpoint=0``: the loop's is set so
    by :meth:`SqliteArchiveStorage.attach`)."""

    def __init__(
        self,
        path: str,
        write: Callable[[sqlite3.Connection, list[T]], None],
        *,
        timeout: float,
        checkpoint: int = CHECKPOINT_OPS,
        keep_failed: int = KEEP_FAILED,
        nice: int = 0,
    ) -> None:
        self._path = path
        #: Added to the thread's niceness (``[runtime] writer_nice``): the loop preempts it.
        self._nice = nice
        self._checkpoint_ops = checkpoint
        self._keep_failed = keep_failed
        self._write = write
        self._timeout = timeout
        self._cond = threading.Condition()
        self._batch: list[T] | None = None
        self._failed: list[T] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        #: Whether a batch is handed over and not yet written (read by the loop without the lock).
        self.busy = False
        #: Batches committed / failed (after the retry) so far.
        self.batches = 0
        self.failures = 0
        self.checkpoints = 0
        self._since_checkpoint = 0
        #: Test seams: ``in_batch`` runs in the worker inside the batch's
        #: transaction, ``on_wait`` in the caller of :meth:`wait` when it
        #: is about to wait for a batch in flight.
        self.in_batch: Callable[[], None] | None = None
        self.on_wait: Callable[[], None] | None = None
        #: Run in the worker on an empty batch (nothing kept behind: the
        #: loop is idle), before the checkpoint, while :attr:`busy` holds:
        #: the store merges its log there (its errors are logged).
        self.on_idle: Callable[[sqlite3.Connection], None] | None = None

    def hand(self, batch: list[T]) -> None:
        """Hand ``batch`` to the worker (it must be idle: :attr:`busy` false)."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the archive writer is closed")
            assert not self.busy, "one batch at a time"
            self._batch = batch
            self.busy = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="xmpp-trio-archive", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait(self) -> list[T]:
        """Wait until no batch is in flight; take back the ops of failed
        batches (to be written first, before anything newer)."""
        with self._cond:
            if self.busy:
                if self.on_wait is not None:
                    self.on_wait()
                while self.busy:
                    self._cond.wait()
            failed, self._failed = self._failed, []
            return failed

    def idle(self) -> None:
        """Wait until no batch is in flight (the failed ops stay kept)."""
        with self._cond:
            while self.busy:
                self._cond.wait()

    @property
    def running(self) -> bool:
        """Whether the thread is alive (it starts with the first batch)."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Wait for the batch in flight, then end the thread (idempotent)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        lower_thread_priority(self._nice)
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._timeout, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error:
            log.exception("archive writer: cannot open %s (the next batch tries again)", self._path)
            with self._cond:
                batch, self._batch = self._batch, None
                self._keep(batch or [])
                self.failures += 1
                self._thread = None
                self.busy = False
                self._cond.notify_all()
            return
        try:
            while True:
                with self._cond:
                    while self._batch is None and not self._closing:
                        self._cond.wait()
                    batch, self._batch = self._batch, None
                if batch is None:
                    return  # closing, nothing in flight
                try:
                    if batch:
                        self._run_batch(conn, batch)
                        self._since_checkpoint += len(batch)
                    elif self.on_idle is not None:
                        self._run_idle(conn, self.on_idle)
                finally:  # whatever happened, the loop must not wait forever
                    with self._cond:
                        self.busy = False
                        self._cond.notify_all()
                if not batch or self._since_checkpoint >= self._checkpoint_ops:
                    self._since_checkpoint = 0
                    self._checkpoint(conn)
        finally:
            conn.close()

    def _run_idle(
        self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], None]
    ) -> None:
        try:
            work(conn)
        except Exception:  # a bug: logged, the writer goes on
            log.exception("archive writer: the idle work failed")

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.exception("archive writer: WAL checkpoint failed")
        else:
            self.checkpoints += 1

    def _run_batch(self, conn: sqlite3.Connection, batch: list[T]) -> None:
        for attempt in (1, 2):
            try:
                self._write(conn, batch)
            except Exception as exc:  # sqlite3.Error; anything else is a bug, kept too
                log.error(
                    "archive writer: writing %d archived messages failed (try %d): %r",
                    len(batch),
                    attempt,
                    exc,
                    exc_info=not isinstance(exc, sqlite3.Error),
                )
            else:
                self.batches += 1
                return
        self.failures += 1
        with self._cond:
            self._keep(batch)

    def _keep(self, batch: list[T]) -> None:
        """Keep the ops of a failed ``batch`` for :meth:`wait` (under the condition)."""
        kept = self._failed + batch
        keep = self._keep_failed
        if len(kept) > keep:
            log.error(
                "archive writer: %d archived messages dropped (kept: %d)",
                len(kept) - keep,
                keep,
            )
            kept = kept[-keep:]
        self._failed = kept
