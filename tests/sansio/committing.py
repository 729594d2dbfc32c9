"""A router that commits its ``Persist`` effects at once, as the I/O layer does
at the end of each batch of input (see docs/architecture.md, "Storage at the
edge"): tests of what is stored drive it instead of a bare
:class:`~xmpp_sansio.server.router.Router`, and see the other effects only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xmpp_sansio.server import Effect, Router
from xmpp_sansio.server.effects import Persist


class CommittingRouter(Router):
    """:class:`Router` whose public calls commit the ``Persist`` effects they
    return to ``store`` (given after construction) and report them to
    :meth:`Router.persisted`; the effects returned are the others."""

    #: where the ops go: anything with ``apply(ops)`` (an offline storage)
    store: Any = None

    def commit(self, effects: Sequence[Effect]) -> list[Effect]:
        persists = [e for e in effects if isinstance(e, Persist)]
        rest = [e for e in effects if not isinstance(e, Persist)]
        if persists:
            assert self.store is not None, "no store to commit to"
            self.store.apply([p.op for p in persists])
            rest.extend(self.commit(super().persisted(persists)))
        return rest


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
