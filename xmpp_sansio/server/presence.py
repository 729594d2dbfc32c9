"""Presence subscriptions and presence broadcast, server side (RFC 6121 §3, §4).

:class:`PresenceService` runs the subscription state machine of
:mod:`xmpp_sansio.subscription` (RFC 6121 Appendix A) for both ends of a
subscription stanza: *outbound* when a local user sends one
(the outbound filter), *inbound* when one arrives for a local user
(``SubscriptionReceived``; for a local contact the outbound side's
:meth:`~xmpp_sansio.server.router.Router.route_inbound` brings the stanza
straight back to this service). Roster records change through the
:class:`~xmpp_sansio.server.roster.RosterService`, which pushes what clients
can see of each change.

The broadcast side follows RFC 6121 §4: available presence goes to the
contacts subscribed to the user ("from"/"both"), initial presence also
probes the contacts the user is subscribed to ("to"/"both"; a local
contact's server is this one, so the probe is answered at once), unavailable
presence also goes to the entities that got directed presence (§4.6). The
last available presence of each session is kept to answer probes (§4.3.2).

Effects are ordered so that stored state is always written before a stanza
that may be processed synchronously by a local contact is routed, and roster
pushes of a change come before the routing that may cause the next change:
a client therefore sees its roster converge to the stored state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.stanza import PresenceType, StanzaKind, make_presence, with_attrs
from xmpp_sansio.subscription import Step, SubInput, SubState, step, with_state

from .effects import Bounce, Deliver, Route, after_writes
from .roster import RosterService, StoredItem
from .service import Service
from .stages import (
    Context,
    Event,
    PresenceBroadcast,
    PresenceDirected,
    ProbeReceived,
    Request,
    SessionUnbound,
    Stage,
    SubscriptionReceived,
)

if TYPE_CHECKING:
    from .effects import Outcome, SessionId
    from .view import BoundSession

__all__ = ["PresenceService"]

_FROM = (Subscription.FROM, Subscription.BOTH)
_TO = (Subscription.TO, Subscription.BOTH)
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: XEP-0172 User Nickname, which RFC 6121 §3.1.1 clients put in requests.
_NICK_TAG = "{http://jabber.org/protocol/nick}nick"


# Read for every presence update, as globals: in Python 3.11 ``PresenceType.AVAILABLE``
# goes through ``EnumType``'s ``__getattribute__`` slot (~1,000 instructions, callgrind).
_AVAILABLE, _UNAVAILABLE = PresenceType.AVAILABLE, PresenceType.UNAVAILABLE


def _type(element: Element) -> PresenceType:
    raw = element.get("type")
    return _AVAILABLE if raw is None else PresenceType(raw)


def _subscribed_from(stored: StoredItem | None) -> bool:
    """Whether the contact of ``stored`` is subscribed to the user's presence."""
    return stored is not None and stored.state.subscription in _FROM


def _step(before: StoredItem | None, event: SubInput) -> Step:
    """Apply ``event`` to the record ``before`` (no record: "None", not approved)."""
    if before is None:
        return step(SubState.NONE, False, event)
    return step(before.state, before.item.approved, event)


def _stored_request(stanza: Element, max_status: int) -> Element:
    """The copy of a ``subscribe`` stanza kept for redelivery (RFC 6121
    §3.1.3): its addresses, ``id`` and ``xml:lang``, its first ``<status/>``
    and XEP-0172 ``<nick/>``, each cut to ``max_status`` characters;
    anything else is left out, so a stored request costs at most a few
    times ``max_status`` at every login."""
    kept = Element(stanza.tag)
    for name in ("from", "to", "type", "id", _XML_LANG):
        value = stanza.get(name)
        if value is not None:
            kept.set(name, value)
    ns_prefix = stanza.tag[: stanza.tag.index("}") + 1] if stanza.tag.startswith("{") else ""
    for tag in (f"{ns_prefix}status", _NICK_TAG):
        child = stanza.find(tag)
        if child is not None:
            copy = Element(tag)
            copy.text = (child.text or "")[:max_status]
            kept.append(copy)
    return kept


def _next_record(
    before: StoredItem | None, contact: JID, result: Step, request: Element | None
) -> StoredItem | None:
    """The record after ``result``; ``None`` when nothing is left to keep.

    A record enters the roster when it gets client-visible state (a
    subscription, ``ask`` or a pre-approval: RFC 6121 §3.1.2, §3.1.5, §3.4.2)
    and stays until the user removes it (§2.5); a record out of the roster
    exists only while it holds a pending request (Appendix A.1). ``request``
    is the stanza that made the record "Pending In", if this step did.
    """
    base = before if before is not None else StoredItem(RosterItem(contact), in_roster=False)
    item = with_state(base.item, result.state, result.approved)
    pending_in = result.state.pending_in
    pending_request = None
    if pending_in:
        pending_request = base.pending_request if base.pending_in else request
    in_roster = (
        base.in_roster or item.subscription is not Subscription.NONE or item.ask or item.approved
    )
    if not in_roster and not pending_in:
        return None
    return StoredItem(item, in_roster, pending_in, pending_request)


_SUBSCRIPTION_TYPES = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed"})


class PresenceService(Service):
    """Presence subscriptions (RFC 6121 §3) and presence broadcast (§4).

    ``roster`` is the server's :class:`RosterService`, which must be in the
    same router's service list (before this one, so that roster iqs reach it).

    Bounds: ``max_directed`` directed presence targets per session (§4.6;
    available presence to one more is answered with ``resource-constraint``,
    RFC 6120 §8.3.3.18, and not routed; targets that are local JIDs with no
    account are not tracked at all); ``max_pending_requests`` subscription
    requests kept per account until answered (§3.1.3; one more is dropped,
    as a request to a full roster is); the stored copy of each request keeps
    only its status and nick, cut to ``max_subscription_status`` characters
    (:func:`_stored_request`; the live delivery is the stanza as received).
    """

    def __init__(
        self,
        roster: RosterService,
        *,
        max_directed: int = 200,
        max_pending_requests: int = 100,
        max_subscription_status: int = 1024,
    ) -> None:
        self.roster = roster
        self.max_directed = max_directed
        self.max_pending_requests = max_pending_requests
        self.max_subscription_status = max_subscription_status
        # the last available presence each session broadcast (RFC 6121 §4.3.2)
        self._last: dict[SessionId, Element] = {}
        # directed presence targets not covered by a subscription (§4.6)
        self._directed: dict[SessionId, dict[JID, None]] = {}

    # ------------------------------------------------------------------
    # helpers

    def _unavailable(self, user: JID, to: JID) -> list[Outcome]:
        """Unavailable presence from each of ``user``'s available resources to
        ``to`` (RFC 6121 §3.2.2, §3.3.3: the subscription is ending)."""
        effects: list[Outcome] = []
        for res in self.server.available_resources(user):
            presence = make_presence(to, PresenceType.UNAVAILABLE, from_=res.jid)
            effects.extend([Route(presence)])
        return effects

    # ------------------------------------------------------------------
    # subscriptions

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.OUTBOUND})
    outbound_kinds: ClassVar[frozenset[StanzaKind]] = frozenset({StanzaKind.PRESENCE})
    handles: ClassVar[tuple[type[Request], ...]] = (
        SubscriptionReceived,
        ProbeReceived,
    )
    observes: ClassVar[tuple[type[Event], ...]] = (
        PresenceBroadcast,
        PresenceDirected,
        SessionUnbound,
    )

    def handle(self, ctx: Context, request: Request) -> list[Outcome] | None:
        match request:
            case SubscriptionReceived():
                return self._subscription_inbound(request.element, request.sender, request.to)
            case ProbeReceived():
                return self._probe(request.element, request.sender, request.to)
        return None

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case PresenceBroadcast():
                return self._presence_broadcast(event.session, event.element, event.initial)
            case PresenceDirected():
                return self._presence_directed(event.session, event.element, event.to)
            case SessionUnbound():
                return self._session_unbound(event.session)
        return []

    def _subscription_outbound(
        self, session: BoundSession, element: Element, to: JID
    ) -> list[Outcome] | None:
        """A user's subscription stanza (RFC 6121 §3.1.2, §3.1.5, §3.2.2,
        §3.3.2, §3.4.2; Appendix A.2).

        The stanza is stamped with the user's bare JID and the contact's bare
        JID (§3.1.2), the roster record updated and pushed, and the stanza
        routed if the table says so. Cancelling the contact's subscription
        sends unavailable presence from the user's available resources first
        (§3.2.2); approving one sends their current presence after (§3.1.5).
        A subscription stanza to the user's own bare JID is dropped: an
        entity is always subscribed to its own presence (§4.2.2).
        """
        user = session.jid.bare
        if to == user:
            return []
        event = SubInput.of(_type(element), outbound=True)
        before = self.roster.stored(user, to)
        result = _step(before, event)
        after = _next_record(before, to, result, None)
        if before is None and after is not None and self.roster.is_full(user, to):
            # The roster size limit of RosterService (RFC 6120 §8.3.3.10).
            return [Bounce(element, StanzaErrorCondition.NOT_ALLOWED)]
        effects: list[Outcome] = []
        if event is SubInput.OUT_UNSUBSCRIBED and result.forward and _subscribed_from(before):
            effects.extend(self._unavailable(user, to))
        effects.extend(self.roster.commit(user, before, after, element))
        if result.forward:
            stamped = with_attrs(element, from_=str(user), to=str(to))
            effects.extend([Route(stamped)])
            if event is SubInput.OUT_SUBSCRIBED:
                effects.extend(self._last_presence(user, to))
        # What follows the roster change waits for its commit.
        return after_writes(effects)

    def _subscription_inbound(self, element: Element, sender: JID, to: JID) -> list[Outcome] | None:
        """A subscription stanza for the local account ``to`` from ``sender``
        (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3, §3.4.2; Appendix A.3).

        * ``subscribe`` is delivered to all available resources and kept to
          be redelivered at the next initial presence until answered
          (§3.1.3); a contact with no roster item gets a record outside the
          roster (Appendix A.1). If the sender is already subscribed, or
          pre-approved (§3.4.2), the server answers ``subscribed`` itself and
          sends the user's current presence. A full roster drops new requests.
        * ``subscribed``, ``unsubscribe`` and ``unsubscribed`` are delivered to
          the interested resources when the table says so (§3.1.6, §3.3.3,
          §3.2.3), after the roster push; ``unsubscribe`` from a subscribed
          contact is followed by unavailable presence from the user's
          available resources (§3.3.3).
        """
        if sender == to:
            return []
        event = SubInput.of(_type(element), outbound=False)
        before = self.roster.stored(to, sender)
        result = _step(before, event)
        stanza = with_attrs(element, from_=str(sender), to=str(to))
        stored = _stored_request(stanza, self.max_subscription_status)
        after = _next_record(before, sender, result, stored)
        if before is None and after is not None and self.roster.is_full(to, sender):
            return []
        if (
            after is not None
            and after.pending_in
            and not (before is not None and before.pending_in)
            and self._pending_requests(to) >= self.max_pending_requests
        ):
            return []  # too many requests waiting for an answer: dropped
        effects = self.roster.commit(to, before, after, stanza)
        if event is SubInput.IN_SUBSCRIBE:
            if result.forward:
                effects.extend(
                    Deliver(r.session, stanza) for r in self.server.available_resources(to)
                )
            if result.auto_reply is PresenceType.SUBSCRIBED:
                reply = make_presence(sender, PresenceType.SUBSCRIBED, from_=to)
                effects.extend([Route(reply)])
                effects.extend(self._last_presence(to, sender))
            return after_writes(effects)
        if result.forward:
            effects.extend(Deliver(s.id, stanza) for s in self.roster.interested_sessions(to))
        if event is SubInput.IN_UNSUBSCRIBE and _subscribed_from(before):
            effects.extend(self._unavailable(to, sender))
        # What follows the roster change (§3.1.6: after the push) waits for its commit.
        return after_writes(effects)

    def _pending_requests(self, user: JID) -> int:
        """How many subscription requests ``user`` has not answered yet."""
        return sum(1 for r in self.roster.records(user) if r.pending_in)

    # ------------------------------------------------------------------
    # presence

    def _presence_broadcast(
        self, session: BoundSession, element: Element, initial: bool
    ) -> list[Outcome]:
        """Broadcast presence to the roster (RFC 6121 §4.2.2, §4.4.2, §4.5.2).

        Available presence goes from the session's full JID to each contact
        with a "from" or "both" subscription and is kept for probes. Initial
        presence also probes each "to"/"both" contact (§4.2.2): a local one is
        answered at once with the current presence of its available resources,
        addressed to the new session; a remote one gets a probe from the
        user's bare JID (§4.3.1). Then pending subscription requests are
        redelivered to the new session (§3.1.3). Unavailable presence goes to
        the same contacts and to the directed presence targets (§4.6.3).
        """
        user = session.jid.bare
        records = self.roster.records(user)
        effects: list[Outcome] = []
        available = _type(element) is _AVAILABLE
        # The item's subscription, not its state's: the same test ("remove" is "none").
        subscribers = [r.item.jid for r in records if r.item.subscription in _FROM]
        server = self.server
        from_ = str(session.jid)
        for contact in subscribers:
            if not server.is_local(contact.domain):
                effects.append(Route(with_attrs(element, from_=from_, to=str(contact))))
                continue
            # A local contact: what routing the copy would do (RFC 6121
            # §8.5.2.1.2: to every available resource, after the inbound
            # filters), without routing it. No copy for a contact offline.
            resources = server.available_resources(contact)
            if not resources:
                continue
            copy = with_attrs(element, from_=from_, to=str(contact))
            stopped = server.inbound_filtered(copy, session.jid, contact)
            if stopped is not None:
                effects.extend(stopped)
                continue
            for r in resources:  # a loop: a comprehension is a call in 3.11
                effects.append(Deliver(r.session, copy))
        if not available:
            self._last.pop(session.id, None)
            effects.extend(self._revoke_directed(session, {c.bare for c in subscribers}))
            return effects
        self._last[session.id] = with_attrs(element, to=None)
        if initial:
            for record in records:
                if record.state.subscription not in _TO:
                    continue
                if self.server.is_local(record.jid.domain):
                    effects.extend(self._probe_local(record.jid, session))
                else:
                    probe = make_presence(record.jid, PresenceType.PROBE, from_=user)
                    effects.extend([Route(probe)])
            for record in records:
                if record.pending_in and record.pending_request is not None:
                    effects.append(Deliver(session.id, record.pending_request))
        return effects

    def _last_presence(self, user: JID, to: JID) -> list[Outcome]:
        """The last presence of each of ``user``'s available resources, from
        that resource's full JID to ``to`` (RFC 6121 §4.3.2)."""
        effects: list[Outcome] = []
        for res in self.server.available_resources(user):
            last = self._last.get(res.session)
            if last is not None:
                presence = with_attrs(last, from_=str(res.jid), to=str(to))
                effects.extend([Route(presence)])
        return effects

    def _refuse_probe(self, user: JID, prober: JID) -> list[Outcome]:
        """``unsubscribed`` from ``user`` to a prober that is not subscribed
        (RFC 6121 §4.3.2): its server resynchronises its roster (A.3.4)."""
        return [Route(make_presence(prober, PresenceType.UNSUBSCRIBED, from_=user))]

    def _probe_local(self, contact: JID, session: BoundSession) -> list[Outcome]:
        """The probe of a local ``contact`` at the session's initial presence,
        answered at once: the contact's current presence goes to the new
        session only, or ``unsubscribed`` to the user's bare JID if the
        contact's roster does not have the user subscribed (RFC 6121 §4.3.2).
        A contact with no available resource sends nothing: the new session
        has not seen it available."""
        user = session.jid.bare
        if not _subscribed_from(self.roster.stored(contact, user)):
            return self._refuse_probe(contact, user)
        return self._last_presence(contact, session.jid)

    def _probe(self, element: Element, sender: JID, to: JID) -> list[Outcome] | None:
        """Answer a presence probe for the local account ``to`` (RFC 6121 §4.3.2).

        A prober not subscribed to ``to`` ("from"/"both" in ``to``'s roster)
        gets ``unsubscribed`` (which does not touch a pre-approval, §3.4). A
        subscribed one gets the last presence of each available resource of
        ``to``, or unavailable presence from its bare JID if it has none.
        """
        if sender.bare == to:
            return []
        if not _subscribed_from(self.roster.stored(to, sender.bare)):
            return self._refuse_probe(to, sender)
        if not self.server.available_resources(to):
            return [Route(make_presence(sender, PresenceType.UNAVAILABLE, from_=to))]
        return self._last_presence(to, sender)

    def filter_outbound(
        self, ctx: Context, session: BoundSession, element: Element, to: JID | None
    ) -> list[Outcome] | None:
        """Take over the session's subscription presence (RFC 6121 §3: the
        sender's server processes it first, see :meth:`_subscription_outbound`),
        and refuse available presence that would make a session's directed
        presence targets (§4.6.2) more than ``max_directed``, with
        ``resource-constraint`` (RFC 6120 §8.3.3.18)."""
        if to is None or not element.tag.endswith("}presence"):
            return None
        type_ = element.get("type")
        if type_ is not None:
            if type_ in _SUBSCRIPTION_TYPES:
                return self._subscription_outbound(session, element, to.bare)
            return None
        targets = self._directed.get(session.id)
        if targets is None or len(targets) < self.max_directed or to in targets:
            return None
        if to.bare == session.jid.bare or not self._trackable(session, to):
            return None
        return [Bounce(element, StanzaErrorCondition.RESOURCE_CONSTRAINT)]

    def _trackable(self, session: BoundSession, to: JID) -> bool:
        """Whether available presence to ``to`` makes it a directed presence
        target: it is not subscribed to the user (the broadcast reaches it)
        and it is not a local JID without an account (nothing reaches it)."""
        if self.server.is_local(to.domain) and not self.server.account_exists(to):
            return False
        return not _subscribed_from(self.roster.stored(session.jid.bare, to.bare))

    def _presence_directed(self, session: BoundSession, element: Element, to: JID) -> list[Outcome]:
        """Track directed presence (RFC 6121 §4.6.2): available presence to an
        entity not subscribed to the user adds it to the session's targets,
        unavailable presence removes it. Presence to the user's own resources
        and to subscribed contacts is not tracked (the broadcast reaches them)."""
        user = session.jid.bare
        if to.bare == user:
            return []
        targets = self._directed.setdefault(session.id, {})
        if _type(element) is _UNAVAILABLE:
            targets.pop(to, None)
        elif self._trackable(session, to):
            targets[to] = None
        return []

    def _revoke_directed(self, session: BoundSession, notified: set[JID]) -> list[Outcome]:
        """Unavailable presence to the session's directed presence targets that
        the broadcast did not reach (RFC 6121 §4.6.3); forget them."""
        effects: list[Outcome] = []
        for target in self._directed.pop(session.id, {}):
            if target.bare in notified:
                continue
            presence = make_presence(target, PresenceType.UNAVAILABLE, from_=session.jid)
            effects.extend([Route(presence)])
        return effects

    def _session_unbound(self, session: BoundSession) -> list[Outcome]:
        """Forget the session; directed presence targets left (a session that
        never broadcast presence) get unavailable presence (RFC 6121 §4.6.3)."""
        self._last.pop(session.id, None)
        return self._revoke_directed(session, set())
