"""The publish-subscribe service at ``pubsub.DOMAIN`` (XEP-0060), a
:class:`~xmpp_sansio.server.hosts.HostService`.

Every pubsub iq to the bare domain goes to the engine with the domain as
the service; the answer becomes a ``Reply``, its store operations
``Persist`` effects and its notifications ``<message/>`` stanzas routed to
the subscribers (XEP-0060 §7.1.2), with a SubID header (§12.1). Local users
may create nodes (``may_create``); anyone may use them as the access model
allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar
from xml.etree.ElementTree import Element

from ...delay import with_delay
from ...disco import Identity
from ...errors import StanzaErrorCondition
from ...jid import JID
from ...stanza import Iq, Stanza, iq_result
from ..effects import Bounce, Outcome, Persist, Reply, Route
from ..hosts import HostService
from ..stages import Context
from .engine import Answer, NodeEvent, PubSubEngine
from .protocol import FEATURES, NS_OWNER, NS_PUBSUB, PubSubError, error_element, headers

__all__ = ["PubSubHost", "answer_outcomes", "notification"]

_PUBSUB_TAGS = frozenset({f"{{{NS_PUBSUB}}}pubsub", f"{{{NS_OWNER}}}pubsub"})


def notification(
    ctx: Context,
    from_: str,
    to: JID,
    event: NodeEvent,
    *,
    subids: Iterable[str] = (),
) -> Element:
    """The ``<message/>`` carrying ``event`` to ``to`` (XEP-0060 §7.1.2.1):
    the node's notification type, the SubID headers, and a ``<delay/>``
    stamped with the item's publication for a last item (§6.1.7)."""
    message = Element(
        "{jabber:client}message",
        {
            "from": from_,
            "to": str(to),
            "type": event.node.config.notification_type,
            "id": ctx.rng(6).hex(),
        },
    )
    message.append(event.event)
    shim = headers(subids)
    if shim is not None:
        message.append(shim)
    if event.to is not None and event.item is not None:
        return with_delay(message, event.item.stamp, from_)
    return message


def answer_outcomes(iq: Iq, answer: Answer) -> list[Outcome]:
    """The reply and the ``Persist`` effects of an engine answer."""
    outcomes: list[Outcome] = [Persist(op) for op in answer.ops]
    outcomes.append(Reply(iq_result(iq.element, answer.payload)))
    return outcomes


def pubsub_payload(iq: Iq) -> bool:
    """Whether ``iq`` is a pubsub request (``pubsub`` or ``pubsub#owner``)."""
    payload = iq.payload
    return payload is not None and payload.tag in _PUBSUB_TAGS


class PubSubHost(HostService):
    """The pubsub service of a domain: nodes owned by their creators."""

    name: ClassVar[str | None] = "Publish-Subscribe"
    identities: ClassVar[tuple[Identity, ...]] = (
        Identity("pubsub", "service", "Publish-Subscribe"),
    )
    features: ClassVar[tuple[str, ...]] = (
        NS_PUBSUB,
        NS_OWNER,
        *(f"{NS_PUBSUB}#{name}" for name in FEATURES),
    )

    def __init__(
        self, engine: PubSubEngine, may_create: Callable[[JID], bool] | None = None
    ) -> None:
        self.engine = engine
        self._may_create = may_create

    def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        if not isinstance(stanza, Iq):
            return []
        answered = self.answer_disco(stanza)
        if answered is not None:
            return answered
        if not stanza.is_request:
            return []
        to = stanza.to
        if to is None or to.local is not None or to.resource is not None:
            return [Bounce(stanza.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        if not pubsub_payload(stanza) or stanza.from_ is None:
            return [Bounce(stanza.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        requester = stanza.from_
        may_create = (
            self.server.is_local(requester.domain)
            if self._may_create is None
            else self._may_create(requester)
        )
        try:
            answer = self.engine.handle(ctx, self.domain, None, stanza, may_create=may_create)
        except PubSubError as error:
            return [Reply(error_element(stanza.element, error))]
        outcomes = answer_outcomes(stanza, answer)
        for event in answer.events:
            outcomes.extend(self._deliver(ctx, event))
        return outcomes

    def _deliver(self, ctx: Context, event: NodeEvent) -> list[Outcome]:
        if event.to is not None:
            return [Route(notification(ctx, self.domain, event.to, event))]
        if event.owners:
            return [Route(notification(ctx, self.domain, o, event)) for o in event.node.owners]
        return [
            Route(notification(ctx, self.domain, sub.jid, event, subids=(sub.subid,)))
            for sub in event.node.subscribers()
        ]
