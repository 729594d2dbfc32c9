"""Storage at the edge, the I/O side (docs/architecture.md, "Storage at the
edge"): the ``Persist`` effects of a batch of input are committed in one
transaction and the ``Load`` effects answered, before the batch's output is
written; database errors are counted, logged and turned into the stanza error
that tells the sender."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Final

import trio

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.server import Effect, Router
from xmpp_sansio.server.effects import Load, Persist

from .metrics import Metrics
from .services import ServerServices

__all__ = ["StorageEdge"]

log = logging.getLogger("xmpp_trio.server")

_STORAGE_LOG_EVERY: Final = 10.0  # seconds between logs of database errors
_SQLITE_FULL: Final = 13  # SQLITE_FULL: database or disk is full


class StorageEdge:
    """The writes and long reads the router asked for and the server has not
    carried out yet: :meth:`settle` commits and answers them."""

    def __init__(self, services: ServerServices, router: Router, metrics: Metrics) -> None:
        self._services = services
        self._router = router
        self._metrics = metrics
        self.persists: list[Persist] = []
        self.loads: list[Load] = []
        #: the ops the router's services wrote behind (``Router.behind``)
        self._behind = router.behind
        self._errors = 0  # database errors since the last logged one
        self._log_at = 0.0

    def __bool__(self) -> bool:
        return bool(self.persists or self.loads or self._behind)

    def settle(self, apply: Callable[[Sequence[Effect]], None]) -> None:
        """Commit the ``Persist`` effects collected so far in one transaction
        (one per batch of input, not one per stanza) and report the result to
        the router; ``apply`` carries out what that returns. The caller writes
        the batch's output only after this, so a XEP-0198 ``<a h/>`` never
        reaches a client before the write of a stanza it counts. A failed
        commit answers the senders (``Router.persisted``). Then each ``Load``
        is answered (``Router.loaded``, ``None`` if the read failed), reading
        what was just committed; what follows from it is committed in turn.
        The ops written behind (``Router.behind``) go to their store's queue
        first, in order (``ServerServices.keep_behind``)."""
        behind = self._behind
        while self.persists or self.loads or behind:
            persists = self.persists
            if persists or behind:
                full = self._services.keep_behind(behind) if behind else False
                if persists:  # a batch of archived copies only has none
                    self.persists = []
                    persists = self._services.write_behind(persists)
                    if not persists:
                        full = self._services.behind_full()
                if not persists:
                    if not full:
                        continue
                    persists = []  # not self.persists: a commit's answers may add to it
                condition: StanzaErrorCondition | None = None
                try:
                    self._services.commit([p.op for p in persists])
                except sqlite3.Error as exc:
                    condition = self.failed(exc, f"committing {len(persists)} writes")
                self._metrics.storage_commits.inc()
                apply(self._router.persisted(persists, condition))
                continue
            load = self.loads.pop(0)
            result: object = None
            try:
                result = self._services.load(load.query)
            except sqlite3.Error as exc:  # the service stops: nothing is lost
                self.failed(exc, f"reading {type(load.query).__name__}")
            apply(self._router.loaded(load.request_id, result))

    def failed(self, exc: sqlite3.Error, doing: str) -> StanzaErrorCondition:
        """Count and log (at most every few seconds) a database error met while
        ``doing`` something; return the stanza error that tells the sender:
        ``resource-constraint`` when the database or disk is full (RFC 6120
        §8.3.3.18), else ``internal-server-error`` (§8.3.3.6). The session
        goes on: whatever does not need the failed write is still served."""
        self._metrics.storage_errors.inc()
        self._errors += 1
        now = trio.current_time()
        if now >= self._log_at:
            log.error("%s: database error %s (%d since the last report)", doing, exc, self._errors)
            self._errors = 0
            self._log_at = now + _STORAGE_LOG_EVERY
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return StanzaErrorCondition.RESOURCE_CONSTRAINT
        return StanzaErrorCondition.INTERNAL_SERVER_ERROR
