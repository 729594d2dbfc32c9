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

Contacts on other servers count the same way: the caps service remembers
the remote resources that sent available presence to an account
(``PresenceReceived``) and their verified caps (asked over the server link
when the hash is new); such a resource gets the account's notifications and,
when its presence arrives or its caps are verified, the last items, if the
contact receives the account's presence (``remote_resources`` /
``remote_owners``, usually the caps service's).

Storage is the engine's (``Persist`` effects); a failed commit makes the
engine read the affected services from storage again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
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
    PresenceReceived,
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
#: The most (account, remote resource) pairs remembered as served their last
#: items; past it the memory is cleared (a resource may get them once more).
_MAX_SERVED_REMOTE: Final = 100_000
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
    ``remote_resources(owner, contact)`` and ``remote_owners(full_jid)``
    (the caps service's) say which resources of a contact on another server
    are available to ``owner`` and to which accounts a remote resource is.
    ``also_forget``: other engines (the pubsub host's) whose working copies
    this service drops when a commit of their operations fails.
    """

    observes: ClassVar[tuple[type[Event], ...]] = (
        PresenceBroadcast,
        PresenceReceived,
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
        remote_resources: Callable[[JID, JID], list[JID]] = lambda owner, contact: [],
        remote_owners: Callable[[JID], Collection[JID]] = lambda full_jid: (),
        also_forget: tuple[PubSubEngine, ...] = (),
    ) -> None:
        self.engine = engine
        self.contacts = contacts
        self._features_of = features_of
        self._remote_resources = remote_resources
        self._remote_owners = remote_owners
        self._engines = (engine, *also_forget)
        # Available resources that got their last items already.
        self._served: set[JID] = set()
        # (account, remote resource) pairs served their last items.
        self._served_remote: set[tuple[JID, JID]] = set()
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
        is_local = self.server.is_local
        for account in accounts:
            if is_local(account.domain):
                resources = [r.jid for r in self.server.available_resources(account)]
            else:
                resources = self._remote_resources(owner, account)
            out.extend(jid for jid in resources if wanted in self._features_of(jid))
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
            case PresenceReceived(element=element, sender=sender, recipient=owner):
                if element.get("type") == "unavailable":
                    self._served_remote.discard((owner, sender))
                    return []
                return self._remote_last_items(ctx, sender, (owner,))
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
        if not self.server.is_local(full_jid.domain):
            return self._remote_last_items(ctx, full_jid, self._remote_owners(full_jid))
        session = self.server.session_by_jid(full_jid)
        if session is None or not session.available or full_jid in self._served:
            return []
        return self._last_items(ctx, full_jid)

    def _remote_last_items(
        self, ctx: Context, resource: JID, owners: Iterable[JID]
    ) -> list[Outcome]:
        """The last items of the local ``owners`` for the remote ``resource``
        available to them, each account once per presence session."""
        notify = self._notify_of(resource)
        if not notify:
            return []  # caps unknown yet (asked), or nothing wanted
        served = self._served_remote
        outcomes: list[Outcome] = []
        for owner in owners:
            if (owner, resource) in served:
                continue
            if len(served) >= _MAX_SERVED_REMOTE:
                served.clear()
            served.add((owner, resource))
            outcomes.extend(self._last_items(ctx, resource, notify, (owner,)))
        return outcomes

    def _notify_of(self, resource: JID) -> set[str]:
        """The nodes ``resource``'s verified caps ``+notify`` (XEP-0163 §4.4)."""
        return {f[: -len(_NOTIFY)] for f in self._features_of(resource) if f.endswith(_NOTIFY)}

    def _last_items(
        self,
        ctx: Context,
        resource: JID,
        notify: set[str] | None = None,
        owners: Iterable[JID] | None = None,
    ) -> list[Outcome]:
        """The last item of each node ``resource`` ``+notify``s among
        ``owners``' (by default its own account's and its contacts')."""
        if notify is None:
            notify = self._notify_of(resource)
            if not notify:
                return []  # caps unknown yet, or nothing wanted: nothing read
            self._served.add(resource)
        contact = resource.bare
        if owners is None:
            owners = (contact, *self.contacts.presence_subscriptions(contact))
        outcomes: list[Outcome] = []
        for owner in owners:
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
