"""A router that commits its ``Persist`` effects at once, as the I/O layer does
at the end of each batch of input (see docs/architecture.md, "Storage at the
edge"): tests of what is stored drive it instead of a bare
:class:`~xmpp_sansio.server.router.Router`, and see the other effects only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xmpp_sansio.server import Effect, Router
from xmpp_sansio.server.effects import Load, Persist, StoreOp


class CommittingRouter(Router):
    """:class:`Router` whose public calls commit the ``Persist`` effects they
        return and report them to :meth:`Router.persisted`; the effects returned
        are the others (what a write held, ``Persist.then``, included); the ops
    written behind (``Router.behind``) are written first, unreported. Each op
        goes to the first store that takes it: ``store`` if set, else the
        storage of a service (``storage``, ``_storage`` or ``accounts``) whose ``apply``
        accepts it (a memory store raises ``TypeError`` for another store's op)."""

    #: where the ops go first: anything with ``apply(ops)``
    store: Any = None

    def _stores(self) -> list[Any]:
        found: list[Any] = [] if self.store is None else [self.store]
        for service in self.services:
            for name in ("storage", "_storage", "accounts"):
                storage = getattr(service, name, None)
                storage = getattr(storage, "_storage", storage)  # behind a cache
                if hasattr(storage, "apply") and all(storage is not s for s in found):
                    found.append(storage)
        return found

    def _write(self, op: StoreOp) -> None:
        for store in self._stores():
            try:
                store.apply([op])
            except TypeError:
                continue
            return
        raise AssertionError(f"no store takes {op!r}")

    def commit(self, effects: Sequence[Effect]) -> list[Effect]:
        persists = [e for e in effects if isinstance(e, Persist)]
        loads = [e for e in effects if isinstance(e, Load)]
        rest = [e for e in effects if not isinstance(e, Persist | Load)]
        behind, self.behind[:] = list(self.behind), []
        for op in behind:  # written behind: first, with no report (StorageEdge.settle)
            self._write(op)
        if persists:
            for persist in persists:
                self._write(persist.op)
            rest.extend(self.commit(super().persisted(persists)))
        for load in loads:  # answered after the writes, as the I/O layer does
            rest.extend(self.commit(super().loaded(load.request_id, self._read(load))))
        return rest

    def _read(self, load: Load) -> object:
        for store in self._stores():
            try:
                return store.load(load.query)
            except (TypeError, AttributeError):
                continue
        raise AssertionError(f"no store reads {load.query!r}")


def _committing(name: str) -> Any:
    """``Router.<name>``, committing what it returns."""

    def method(self: CommittingRouter, *args: Any, **kwargs: Any) -> list[Effect]:
        return self.commit(getattr(Router, name)(self, *args, **kwargs))

    return method


for _name in (
    "route",
    "route_inbound",
    "handed_over",
    "bind",
    "unbind",
    "handle_timer",
    "reply",
    "bounce",
    "end_sessions",
):
    setattr(CommittingRouter, _name, _committing(_name))
