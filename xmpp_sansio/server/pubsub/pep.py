"""Personal eventing (XEP-0163): a pubsub service on every account.

:class:`PEPService` joins the account-host pipeline: it answers pubsub iqs
sent to an account's bare JID (or without ``to``: the sender's own
account, RFC 6120 §10.3.3) with the node engine, the account being the
owner of every node (XEP-0163 §4). A publish to a missing node creates it
(§4.3.2 "auto-create"), with the publish-options as its configuration
(XEP-0060 §7.1.5, XEP-0223).

Notifications are presence-based (XEP-0163 §4.3.1): they go to the
owner's own available resources and to those of the contacts that receive
the owner's presence (as the node's access model allows), whose verified
entity capabilities (XEP-0115, from the caps cache) include
``<node>+notify`` (XEP-0163 §4.4), plus any explicit subscribers. When a
resource with such caps becomes available (its initial presence, or the
moment its caps are verified) it gets the last item of each node it
``+notify``s among its contacts' and its own (XEP-0163 §4.3.2, XEP-0060
§6.1.7, with a ``<delay/>``).

Storage is the engine's (``Persist`` effects); a failed commit makes the
engine read the affected services from storage again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Final, Protocol

from ...jid import JID
from ...stanza import Iq
from ..effects import Outcome, Persist, Reply, Route
from ..service import IqService
from ..stages import (
    Abandoned,
    AccountRemoved,
    Committed,
    Context,
    Event,
    PresenceBroadcast,
    SessionUnbound,
)
from .access import Relations, check_access
from .config import AccessModel, SendLast
from .engine import NodeEvent, PubSubEngine
from .host import answer_outcomes, notification, pubsub_payload
from .node import Node
from .protocol import (
    FEATURES,
    NS_OWNER,
    NS_PUBSUB,
    PEP_ONLY_FEATURES,
    PubSubError,
    error_element,
    items_event,
)
from .store import PubSubServiceDelete

if TYPE_CHECKING:
    from .bookmarks import BookmarksCompat

__all__ = ["PEP_FEATURES", "Contacts", "PEPService"]

_NOTIFY: Final = "+notify"
BOOKMARKS: Final = "urn:xmpp:bookmarks:1"


def _touches(iq: Iq, node: str) -> bool:
    """Whether the pubsub request ``iq`` names ``node``."""
    payload = iq.payload
    return payload is not None and any(child.get("node") == node for child in payload)


#: The features PEP adds to an account's disco#info (XEP-0163 §6).
PEP_FEATURES: Final = (
    NS_PUBSUB,
    NS_OWNER,
    *(f"{NS_PUBSUB}#{name}" for name in sorted((*FEATURES, *PEP_ONLY_FEATURES))),
)


class Contacts(Relations, Protocol):
    """:class:`~.access.Relations` plus the two roster listings PEP needs."""

    def presence_subscribers(self, owner: JID) -> list[JID]:
        """The contacts (bare) that receive ``owner``'s presence."""
        ...

    def presence_subscriptions(self, contact: JID) -> list[JID]:
        """The accounts (bare) whose presence ``contact`` receives."""
        ...


class PEPService(IqService):
    """PEP for every account of the server (XEP-0163).

    ``features_of(full_jid)`` is the caps cache's read
    (:meth:`~xmpp_sansio.server.caps.CapsService.features_of`); wire
    :meth:`caps_learned` to the caps service so that a resource whose caps
    are verified after its presence gets the last items then.
    ``also_forget``: other engines (the pubsub host's) whose working copies
    this service drops when a commit of their operations fails.
    """

    observes: ClassVar[tuple[type[Event], ...]] = (
        PresenceBroadcast,
        SessionUnbound,
        Committed,
        Abandoned,
        AccountRemoved,
    )
    account_features: ClassVar[tuple[str, ...]] = PEP_FEATURES

    def __init__(
        self,
        engine: PubSubEngine,
        contacts: Contacts,
        features_of: Callable[[JID], frozenset[str]],
        *,
        also_forget: tuple[PubSubEngine, ...] = (),
    ) -> None:
        self.engine = engine
        self.contacts = contacts
        self._features_of = features_of
        self._engines = (engine, *also_forget)
        # Available resources that got their last items already.
        self._served: set[JID] = set()
        #: The XEP-0402 #compat unification, if on (it sets itself here).
        self.compat: BookmarksCompat | None = None

    # -- requests ----------------------------------------------------------------------

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        if not iq.is_request or not pubsub_payload(iq) or iq.from_ is None:
            return None
        owner = iq.from_.bare if to is None else to.bare
        try:
            answer = self.engine.handle(ctx, str(owner), owner, iq)
        except PubSubError as error:
            return [Reply(error_element(iq.element, error))]
        outcomes = answer_outcomes(iq, answer)
        for event in answer.events:
            outcomes.extend(self.deliver(ctx, owner, event))
        if self.compat is not None and answer.ops and _touches(iq, BOOKMARKS):
            outcomes.extend(self.compat.to_legacy(ctx, owner))
        return outcomes

    def _notified(self, owner: JID, node: Node) -> list[JID]:
        """The full JIDs that get ``node``'s notifications by presence: the
        owner's resources and those of the contacts the access model admits,
        with ``+notify`` for the node."""
        wanted = node.name + _NOTIFY
        model = node.config.access_model
        accounts = [owner]
        if model in (AccessModel.OPEN, AccessModel.PRESENCE):
            accounts.extend(self.contacts.presence_subscribers(owner))
        elif model is AccessModel.ROSTER:
            allowed = set(node.config.roster_groups_allowed)
            accounts.extend(
                c
                for c in self.contacts.presence_subscribers(owner)
                if allowed & self.contacts.groups(owner, c)
            )
        out: list[JID] = []
        for account in accounts:
            for resource in self.server.available_resources(account):
                if wanted in self._features_of(resource.jid):
                    out.append(resource.jid)
        return out

    def deliver(self, ctx: Context, owner: JID, event: NodeEvent) -> list[Outcome]:
        """The notification stanzas of ``event`` at ``owner``'s PEP service."""
        from_ = str(owner)
        if event.to is not None:
            return [Route(notification(ctx, from_, event.to, event))]
        if event.owners:
            return [Route(notification(ctx, from_, owner, event))]
        recipients = self._notified(owner, event.node)
        reached = {jid.bare for jid in recipients}
        outcomes: list[Outcome] = [
            Route(notification(ctx, from_, jid, event)) for jid in recipients
        ]
        for sub in event.node.subscribers():
            if sub.jid in reached or (sub.jid.is_bare and sub.jid in reached):
                continue
            outcomes.append(Route(notification(ctx, from_, sub.jid, event, subids=(sub.subid,))))
        return outcomes

    # -- presence: the last items (XEP-0163 §4.3.2) ----------------------------------------

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case PresenceBroadcast(session=session, element=element):
                if element.get("type") == "unavailable":
                    self._served.discard(session.jid)
                    return []
                if session.jid in self._served:
                    return []
                return self._last_items(ctx, session.jid)
            case SessionUnbound(session=session):
                self._served.discard(session.jid)
            case Committed(ops=ops, failed=True):
                services = {op.service for op in ops if hasattr(op, "service")}
                for engine in self._engines:
                    for service in services:
                        engine.forget(str(service))
            case Abandoned():
                # A call raised: its writes went nowhere. Read storage again
                # (the writes still pending are committed before the next batch).
                for engine in self._engines:
                    engine.forget()
            case AccountRemoved(account=account):
                self.engine.forget(str(account.bare))
                return [Persist(PubSubServiceDelete(str(account.bare)))]
        return []

    def caps_learned(self, ctx: Context, full_jid: JID) -> list[Outcome]:
        """The caps of ``full_jid`` were just verified: if it is available
        and not served yet, the last items of the nodes it ``+notify``s."""
        session = self.server.session_by_jid(full_jid)
        if session is None or not session.available or full_jid in self._served:
            return []
        return self._last_items(ctx, full_jid)

    def _last_items(self, ctx: Context, resource: JID) -> list[Outcome]:
        notify = {f[: -len(_NOTIFY)] for f in self._features_of(resource) if f.endswith(_NOTIFY)}
        if not notify:
            return []  # caps unknown yet, or nothing wanted: nothing read
        self._served.add(resource)
        contact = resource.bare
        outcomes: list[Outcome] = []
        for owner in (contact, *self.contacts.presence_subscriptions(contact)):
            nodes = self.engine.nodes(str(owner))
            for name in notify & nodes.keys():
                node = nodes[name]
                last = node.last_item()
                if last is None or node.config.send_last_published_item is not (
                    SendLast.ON_SUB_AND_PRESENCE
                ):
                    continue
                if owner != contact:
                    try:
                        check_access(
                            node.config,
                            contact,
                            [owner],
                            node.affiliation(contact),
                            self.contacts,
                            subscribed=node.subscribed(contact),
                        )
                    except PubSubError:
                        continue
                payload = last.payload if node.config.deliver_payloads else None
                event = NodeEvent(
                    node, items_event(name, [(last.id, payload, None)]), to=resource, item=last
                )
                outcomes.append(Route(notification(ctx, str(owner), resource, event)))
        return outcomes
