"""The ``[mam]`` section of the server configuration (message archives,
XEP-0313, with XEP-0359 stanza ids); see docs/mam.md::

    [mam]
    enabled = true            # archive messages (accounts and rooms), stamp XEP-0359 ids
    max_per_user = 100000     # messages kept per archive; the oldest go first
    retention_days = 0        # drop messages older than this; 0: keep them
    default_page = 50         # results per page when a query sets no max
    max_page = 250            # at most this many per page (a bigger max is capped)
    max_ids = 100             # ids in one query's "ids" field (policy-violation beyond)
    retract_window = 100      # a retraction (XEP-0424) looks among this many newest messages
    writer_thread = true      # commit archived copies in a worker thread (false: on the event loop)
    writer_batch = 200        # archived copies handed to the worker at once (when it is idle)
    writer_batch_max = 200    # ... growing up to this while the worker lags (fewer, larger commits)
    writer_backlog = 20000    # copies kept while the worker is busy before the loop waits for it
    writer_checkpoint = 5000  # copies the worker writes between two WAL checkpoints
    writer_keep_failed = 100000  # copies of failed batches kept to be written again
    loop_batch = 1000         # writer_thread = false: copies the loop commits at once
    merge_every = 5000        # messages appended to the archive's log before it is merged (up to 16x: many archives)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from xmpp_sansio.server.mam.service import MamLimits

from .archive_writer import CHECKPOINT_OPS, KEEP_FAILED
from .config_loader import Loader as _Loader
from .stores.mam import MERGE_EVERY

__all__ = [
    "DEFAULT_MAM",
    "MAM_KEYS",
    "ArchiveWriterLimits",
    "load_mam",
    "load_mam_writer",
    "load_mam_writer_thread",
]

DEFAULT_MAM: Final = MamLimits(enabled=True)
"""The server's archives when ``[mam]`` says nothing: on, as users expect
(issue 17); the sans-IO ``MamLimits()`` default stays off for embedders."""

MAM_KEYS: Final = (
    "enabled",
    "max_per_user",
    "retention_days",
    "default_page",
    "max_page",
    "max_ids",
    "retract_window",
    "writer_thread",
    "writer_batch",
    "writer_batch_max",
    "writer_backlog",
    "writer_checkpoint",
    "writer_keep_failed",
    "loop_batch",
    "merge_every",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveWriterLimits:
    """How the archived copies of live messages are written behind (docs/mam.md
    "Cost"; ``[mam] writer_*``, ``loop_batch``): ``batch`` copies handed to the
    worker thread at once when it is idle (a short transaction: the loop's own
    commits may wait for it on SQLite's write lock), growing up to
    ``batch_max`` while it lags (:class:`~xmpp_trio.archive_writer.BatchFloor`),
    ``backlog`` kept while it is busy before the loop waits for it, a ``PASSIVE`` WAL checkpoint
    every ``checkpoint`` copies (about 2 MB of WAL at ~220-byte messages),
    ``keep_failed`` copies of failed batches kept to be written again (the
    oldest beyond are dropped, logged); without the worker, ``loop_batch``
    copies committed at once on the loop (as cheap a row as a larger flush,
    tens of ms of the loop: docs/benchmarks.md "Fourth pass"); new messages
    appended to the store's log (no index but the id's) merged into the
    indexed tables every ``merge_every`` (and when the writer is idle), up
    to 16 times that while the log spreads over more than 50 archives
    (``MERGE_SPREAD``: a merge rewrites each archive's pages), in steps of
    whole archives (``MERGE_CHUNK`` entries a transaction); queries find
    the log's entries in memory, not by a scan (docs/mam.md "The log")."""

    batch: int = 200
    batch_max: int = 200
    backlog: int = 20_000
    checkpoint: int = CHECKPOINT_OPS
    keep_failed: int = KEEP_FAILED
    loop_batch: int = 1000
    merge_every: int = MERGE_EVERY


def load_mam(loader: _Loader, data: Mapping[str, object]) -> MamLimits:
    """Read and check ``[mam]``."""
    table = loader.table(data, "mam", "mam")
    loader.check_keys(table, MAM_KEYS, "mam.", "in [mam]")
    d = DEFAULT_MAM

    def count(key: str, default: int, minimum: int, maximum: int) -> int:
        return loader.integer(table, key, f"mam.{key}", default, minimum=minimum, maximum=maximum)

    max_page = count("max_page", d.max_page, 1, 10_000)
    return MamLimits(
        enabled=loader.boolean(table, "enabled", "mam.enabled", d.enabled),
        max_per_user=count("max_per_user", d.max_per_user, 1, 100_000_000),
        retention=86_400.0 * count("retention_days", 0, 0, 36_500),
        default_page=count("default_page", d.default_page, 1, max_page),
        max_page=max_page,
        max_ids=count("max_ids", d.max_ids, 1, 10_000),
        retract_window=count("retract_window", d.retract_window, 1, 10_000),
    )


def load_mam_writer_thread(loader: _Loader, data: Mapping[str, object]) -> bool:
    """``[mam] writer_thread``: whether the archived copies of live messages
    are committed by a worker thread (docs/mam.md "Written behind"; the
    event loop's latency) or on the loop (a little less CPU a message on
    one core: docs/benchmarks.md "Session 7: archive writes off the loop")."""
    table = loader.table(data, "mam", "mam")
    return loader.boolean(table, "writer_thread", "mam.writer_thread", True)


def load_mam_writer(loader: _Loader, data: Mapping[str, object]) -> ArchiveWriterLimits:
    """``[mam] writer_batch``, ``writer_backlog``, ``writer_checkpoint``,
    ``writer_keep_failed``, ``loop_batch`` and ``merge_every``
    (:class:`ArchiveWriterLimits`)."""
    table = loader.table(data, "mam", "mam")
    d = ArchiveWriterLimits()

    def count(key: str, default: int, maximum: int) -> int:
        return loader.integer(table, key, f"mam.{key}", default, minimum=1, maximum=maximum)

    batch = count("writer_batch", d.batch, 100_000)
    return ArchiveWriterLimits(
        batch=batch,
        batch_max=max(batch, count("writer_batch_max", d.batch_max, 100_000)),
        backlog=max(batch, count("writer_backlog", d.backlog, 10_000_000)),
        checkpoint=count("writer_checkpoint", d.checkpoint, 10_000_000),
        keep_failed=count("writer_keep_failed", d.keep_failed, 10_000_000),
        loop_batch=count("loop_batch", d.loop_batch, 100_000),
        merge_every=count("merge_every", d.merge_every, 1_000_000),
    )
