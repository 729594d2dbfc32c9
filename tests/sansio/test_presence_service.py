"""Tests for PresenceService: subscriptions (RFC 6121 §3) and presence (§4),
through a Router with RosterService and PresenceService over memory storage."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import ClassVar
from xml.etree.ElementTree import Element

import pytest
from committing import CommittingRouter
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import QUERY_TAG, RosterItem, Subscription, parse_roster_query
from xmpp_sansio.server import Deliver, Effect, Service
from xmpp_sansio.server.effects import Outcome
from xmpp_sansio.server.presence import PresenceService
from xmpp_sansio.server.roster import MemoryRosterStorage, RosterService, StoredItem
from xmpp_sansio.server.stages import Context, Stage
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.subscription import SubState
from xmpp_sansio.testing import seeded_rng, x

ACCOUNTS = {("juliet", "example.com"), ("romeo", "example.com"), ("nurse", "example.com")}
BALCONY, CHAMBER, GARDEN, ORCHARD, NURSERY = 1, 2, 3, 10, 20
JULIET = JID.parse("juliet@example.com")
ROMEO = JID.parse("romeo@example.com")
NURSE = JID.parse("nurse@example.com")
FULL = {
    BALCONY: "juliet@example.com/balcony",
    CHAMBER: "juliet@example.com/chamber",
    GARDEN: "juliet@example.com/garden",
    ORCHARD: "romeo@example.com/orchard",
    NURSERY: "nurse@example.com/nursery",
}


class World:
    """Router + RosterService + PresenceService; every session is bound,
    asked for its roster and is available (unless told otherwise)."""

    def __init__(self, max_items: int = 1000) -> None:
        self.storage = MemoryRosterStorage()
        self.roster = RosterService(self.storage, max_items=max_items)
        self.presence = PresenceService(self.roster)
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(0),
            account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
            services=[self.roster, self.presence],
        )

    def login(
        self, session: int, status: str | None = None, *, available: bool = True
    ) -> list[Effect]:
        """Bind, get the roster, send initial presence; the presence effects."""
        self.router.bind(session, JID.parse(FULL[session]))
        self.router.route(
            session, x("<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>")
        )
        if not available:
            return []
        body = "" if status is None else f"<status>{status}</status>"
        return self.router.route(session, x(f"<presence>{body}</presence>"))

    def send(self, session: int, text: str) -> list[Effect]:
        return self.router.route(session, x(text))

    def item(self, user: JID, contact: JID) -> RosterItem | None:
        stored = self.storage.item(user, contact)
        return None if stored is None or not stored.in_roster else stored.item


@pytest.fixture
def world() -> World:
    w = World()
    w.login(BALCONY)
    w.login(ORCHARD)
    return w


def to(effects: Sequence[Effect], session: int) -> list[Element]:
    """The elements delivered to ``session``, in order."""
    out = []
    for effect in effects:
        assert isinstance(effect, Deliver)
        if effect.session == session:
            out.append(effect.element)
    return out


def presences(effects: Sequence[Effect], session: int) -> list[tuple[str | None, str | None]]:
    """(type, from) of the presence stanzas delivered to ``session``."""
    return [
        (el.get("type"), el.get("from"))
        for el in to(effects, session)
        if el.tag == "{jabber:client}presence"
    ]


def pushed(effects: Sequence[Effect], session: int) -> list[RosterItem]:
    """The items of the roster pushes delivered to ``session``."""
    out: list[RosterItem] = []
    for el in to(effects, session):
        query = el.find(QUERY_TAG)
        if el.get("type") == "set" and query is not None:
            out.extend(parse_roster_query(query)[1])
    return out


def item(jid: JID, sub: str = "none", *, ask: bool = False, approved: bool = False) -> RosterItem:
    return RosterItem(jid, subscription=Subscription(sub), ask=ask, approved=approved)


def subscribe(world: World, session: int, contact: JID, type_: str = "subscribe") -> list[Effect]:
    return world.send(session, f"<presence to='{contact}' type='{type_}'/>")


def befriend(world: World) -> None:
    """Juliet and Romeo subscribe to each other."""
    subscribe(world, BALCONY, ROMEO)
    subscribe(world, ORCHARD, JULIET, "subscribed")
    subscribe(world, ORCHARD, JULIET)
    subscribe(world, BALCONY, ROMEO, "subscribed")


# ---------------------------------------------------------------------------
# the subscription lifecycle (RFC 6121 §3.1)


def test_subscription_request_is_stamped_routed_and_pushed(world: World) -> None:
    effects = world.send(
        BALCONY,
        "<presence to='romeo@example.com/orchard' from='nurse@example.com' type='subscribe' id='s1'/>",
    )
    # §3.1.2: the user's roster gets none + ask, pushed to the interested resource
    assert pushed(effects, BALCONY) == [item(ROMEO, ask=True)]
    # §3.1.3: delivered to the contact, from the user's bare JID (spoofed 'from' replaced)
    (request,) = to(effects, ORCHARD)
    assert request.get("type") == "subscribe"
    assert request.get("from") == "juliet@example.com"
    assert request.get("to") == "romeo@example.com"
    assert request.get("id") == "s1"
    # Appendix A.1: no roster item for the contact until it approves
    assert pushed(effects, ORCHARD) == []
    assert world.item(ROMEO, JULIET) is None


def test_approval_updates_both_rosters_and_sends_presence(world: World) -> None:
    world.send(ORCHARD, "<presence><status>In the orchard</status></presence>")
    subscribe(world, BALCONY, ROMEO)
    effects = subscribe(world, ORCHARD, JULIET, "subscribed")
    # §3.1.5: the contact's roster gets the user with subscription 'from'
    assert pushed(effects, ORCHARD) == [item(JULIET, "from")]
    # §3.1.6: the user gets the approval, a push with 'to', then the contact's presence
    assert pushed(effects, BALCONY) == [item(ROMEO, "to")]
    assert presences(effects, BALCONY) == [
        ("subscribed", "romeo@example.com"),
        (None, "romeo@example.com/orchard"),
    ]
    status = to(effects, BALCONY)[-1].find("{jabber:client}status")
    assert status is not None and status.text == "In the orchard"


def test_juliet_and_romeo_see_each_others_presence_once_subscribed_both_ways(
    world: World,
) -> None:
    befriend(world)
    assert world.item(JULIET, ROMEO) == item(ROMEO, "both")
    assert world.item(ROMEO, JULIET) == item(JULIET, "both")
    effects = world.send(BALCONY, "<presence><show>away</show></presence>")
    assert presences(effects, ORCHARD) == [(None, "juliet@example.com/balcony")]
    effects = world.send(ORCHARD, "<presence><show>chat</show></presence>")
    assert presences(effects, BALCONY) == [(None, "romeo@example.com/orchard")]


def test_one_way_subscription_only_sends_presence_one_way(world: World) -> None:
    subscribe(world, BALCONY, ROMEO)
    subscribe(world, ORCHARD, JULIET, "subscribed")
    effects = world.send(ORCHARD, "<presence/>")
    assert presences(effects, BALCONY) == [(None, "romeo@example.com/orchard")]
    effects = world.send(BALCONY, "<presence/>")
    assert presences(effects, ORCHARD) == []


def test_repeated_subscribe_when_already_subscribed_is_answered_by_server(world: World) -> None:
    subscribe(world, BALCONY, ROMEO)
    subscribe(world, ORCHARD, JULIET, "subscribed")
    effects = subscribe(world, BALCONY, ROMEO)
    # A.3.1: not delivered to Romeo; his server auto-replies 'subscribed'
    assert to(effects, ORCHARD) == []
    assert presences(effects, BALCONY) == [(None, "romeo@example.com/orchard")]
    assert world.item(JULIET, ROMEO) == item(ROMEO, "to")


def test_subscribe_to_own_bare_jid_is_ignored(world: World) -> None:
    assert subscribe(world, BALCONY, JULIET) == []
    assert world.storage.count(JULIET) == 0


def test_subscribe_to_invalid_jid_gets_jid_malformed(world: World) -> None:
    effects = world.send(BALCONY, "<presence to='juliet@@example.com' type='subscribe'/>")
    (error,) = to(effects, BALCONY)
    assert parse_error(error).condition is StanzaErrorCondition.JID_MALFORMED
    assert world.storage.count(JULIET) == 0


def test_subscribe_to_remote_contact_is_recorded(world: World) -> None:
    effects = subscribe(world, BALCONY, JID.parse("mercutio@verona.example"))
    # no federation yet: the error comes back to the bare JID and is dropped
    assert pushed(effects, BALCONY) == [item(JID.parse("mercutio@verona.example"), ask=True)]


def test_subscribe_to_nonexistent_local_user_is_answered_unsubscribed(world: World) -> None:
    """RFC 6121 §8.5.1 / §3.1.3: the contact's server answers "unsubscribed", which
    cancels the pending request (Appendix A.3.4) and reaches the user."""
    ghost = JID.parse("ghost@example.com")
    effects = subscribe(world, BALCONY, ghost)
    assert pushed(effects, BALCONY) == [item(ghost, ask=True), item(ghost)]
    assert world.item(JULIET, ghost) == item(ghost)


# ---------------------------------------------------------------------------
# pending requests (RFC 6121 §3.1.3)


def test_pending_request_is_redelivered_at_each_login_until_answered() -> None:
    world = World()
    world.login(BALCONY)
    subscribe(world, BALCONY, ROMEO)
    # Romeo logs in later: the request comes with his initial presence
    effects = world.login(ORCHARD)
    assert presences(effects, ORCHARD) == [
        (None, "romeo@example.com/orchard"),  # his own presence (§4.2.2)
        ("subscribe", "juliet@example.com"),
    ]
    world.router.unbind(ORCHARD)
    effects = world.login(ORCHARD)
    assert ("subscribe", "juliet@example.com") in presences(effects, ORCHARD)
    subscribe(world, ORCHARD, JULIET, "subscribed")
    world.router.unbind(ORCHARD)
    effects = world.login(ORCHARD)
    assert ("subscribe", "juliet@example.com") not in presences(effects, ORCHARD)


def test_request_is_not_delivered_to_unavailable_resources() -> None:
    world = World()
    world.login(BALCONY)
    world.login(ORCHARD, available=False)
    effects = subscribe(world, BALCONY, ROMEO)
    assert to(effects, ORCHARD) == []
    stored = world.storage.item(ROMEO, JULIET)
    assert stored is not None and stored.pending_in and not stored.in_roster


def test_repeated_request_is_delivered_once(world: World) -> None:
    subscribe(world, BALCONY, ROMEO)
    effects = subscribe(world, BALCONY, ROMEO)
    assert to(effects, ORCHARD) == []


def test_denied_request_leaves_no_trace(world: World) -> None:
    subscribe(world, BALCONY, ROMEO)
    effects = subscribe(world, ORCHARD, JULIET, "unsubscribed")
    assert presences(effects, BALCONY) == [("unsubscribed", "romeo@example.com")]
    assert pushed(effects, BALCONY) == [item(ROMEO)]
    assert pushed(effects, ORCHARD) == []
    assert world.storage.count(ROMEO) == 0


# ---------------------------------------------------------------------------
# pre-approval (RFC 6121 §3.4)


def test_pre_approved_request_is_answered_without_asking_the_contact(world: World) -> None:
    effects = subscribe(world, ORCHARD, JULIET, "subscribed")
    assert pushed(effects, ORCHARD) == [item(JULIET, approved=True)]
    assert to(effects, BALCONY) == []  # not routed
    effects = subscribe(world, BALCONY, ROMEO)
    assert to(effects, ORCHARD) == [el for el in to(effects, ORCHARD) if el.get("type") == "set"]
    assert pushed(effects, ORCHARD) == [item(JULIET, "from")]
    assert pushed(effects, BALCONY) == [item(ROMEO, ask=True), item(ROMEO, "to")]
    assert presences(effects, BALCONY) == [
        ("subscribed", "romeo@example.com"),
        (None, "romeo@example.com/orchard"),
    ]


def test_pre_approval_can_be_cancelled(world: World) -> None:
    subscribe(world, ORCHARD, JULIET, "subscribed")
    effects = subscribe(world, ORCHARD, JULIET, "unsubscribed")
    assert pushed(effects, ORCHARD) == [item(JULIET)]
    assert to(effects, BALCONY) == []
    effects = subscribe(world, BALCONY, ROMEO)
    assert presences(effects, ORCHARD) == [("subscribe", "juliet@example.com")]


# ---------------------------------------------------------------------------
# cancelling and unsubscribing (RFC 6121 §3.2, §3.3)


def test_cancelled_subscription_sends_unavailable_then_unsubscribed(world: World) -> None:
    befriend(world)
    effects = subscribe(world, ORCHARD, JULIET, "unsubscribed")
    # §3.2.2: unavailable from Romeo's resources first, while Juliet is still subscribed
    assert presences(effects, BALCONY) == [
        ("unavailable", "romeo@example.com/orchard"),
        ("unsubscribed", "romeo@example.com"),
    ]
    assert pushed(effects, ORCHARD) == [item(JULIET, "to")]
    assert pushed(effects, BALCONY) == [item(ROMEO, "from")]
    effects = world.send(ORCHARD, "<presence/>")
    assert presences(effects, BALCONY) == []


def test_unsubscribe_stops_the_contacts_presence(world: World) -> None:
    befriend(world)
    effects = subscribe(world, BALCONY, ROMEO, "unsubscribe")
    assert pushed(effects, BALCONY) == [item(ROMEO, "from")]
    assert pushed(effects, ORCHARD) == [item(JULIET, "to")]
    # §3.3.3: Romeo gets the unsubscribe; Juliet gets unavailable from Romeo's resources
    assert presences(effects, ORCHARD) == [("unsubscribe", "juliet@example.com")]
    assert presences(effects, BALCONY) == [("unavailable", "romeo@example.com/orchard")]
    effects = world.send(ORCHARD, "<presence/>")
    assert presences(effects, BALCONY) == []


def test_roster_remove_cancels_both_subscriptions(world: World) -> None:
    befriend(world)
    effects = world.send(
        BALCONY,
        "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>"
        "<item jid='romeo@example.com' subscription='remove'/></query></iq>",
    )
    assert pushed(effects, BALCONY) == [RosterItem(ROMEO, subscription=Subscription.REMOVE)]
    assert world.item(ROMEO, JULIET) == item(JULIET)
    assert ("unsubscribe", "juliet@example.com") in presences(effects, ORCHARD)
    assert ("unsubscribed", "juliet@example.com") in presences(effects, ORCHARD)
    assert ("unavailable", "romeo@example.com/orchard") in presences(effects, BALCONY)


# ---------------------------------------------------------------------------
# presence broadcast and probes (RFC 6121 §4.2-§4.5)


def test_probes_at_login_are_answered_with_last_presence(world: World) -> None:
    befriend(world)
    world.send(ORCHARD, "<presence><status>Wherefore art thou</status></presence>")
    effects = world.login(GARDEN)
    garden = [el for el in to(effects, GARDEN) if el.get("from") == FULL[ORCHARD]]
    (answer,) = garden
    assert answer.get("to") == FULL[GARDEN]
    status = answer.find("{jabber:client}status")
    assert status is not None and status.text == "Wherefore art thou"
    # and Romeo sees the new resource
    assert presences(effects, ORCHARD) == [(None, FULL[GARDEN])]


def test_no_probe_answer_from_contacts_without_available_resources(world: World) -> None:
    befriend(world)
    world.router.unbind(ORCHARD)
    effects = world.login(GARDEN)
    assert [p for p in presences(effects, GARDEN) if p[1] == FULL[ORCHARD]] == []


def test_probe_from_unsubscribed_entity_gets_unsubscribed(world: World) -> None:
    world.login(NURSERY)
    # The nurse's roster wrongly says she is subscribed to Juliet.
    world.storage.put(NURSE, StoredItem(item(JULIET, "to")))
    effects = world.send(NURSERY, "<presence to='juliet@example.com' type='probe'/>")
    # §4.3.2: 'unsubscribed' comes back, and the nurse's server resynchronises (A.3.4)
    assert presences(effects, NURSERY) == [("unsubscribed", "juliet@example.com")]
    assert pushed(effects, NURSERY) == [item(JULIET)]
    assert presences(world.send(BALCONY, "<presence/>"), NURSERY) == []


def test_login_probe_of_a_local_contact_resynchronises_a_stale_roster(world: World) -> None:
    world.storage.put(NURSE, StoredItem(item(JULIET, "to")))
    effects = world.login(NURSERY)
    assert ("unsubscribed", "juliet@example.com") in presences(effects, NURSERY)
    assert world.item(NURSE, JULIET) == item(JULIET)


def test_probe_from_subscriber_gets_last_presence_or_unavailable(world: World) -> None:
    befriend(world)
    world.send(BALCONY, "<presence><status>here</status></presence>")
    effects = world.send(ORCHARD, "<presence to='juliet@example.com' type='probe'/>")
    assert presences(effects, ORCHARD) == [(None, FULL[BALCONY])]
    world.router.unbind(BALCONY)
    effects = world.send(ORCHARD, "<presence to='juliet@example.com' type='probe'/>")
    assert presences(effects, ORCHARD) == [("unavailable", "juliet@example.com")]


def test_unavailable_goes_to_contacts_when_the_session_ends(world: World) -> None:
    befriend(world)
    effects = world.router.unbind(BALCONY)
    assert presences(effects, ORCHARD) == [("unavailable", FULL[BALCONY])]


def test_explicit_unavailable_goes_to_contacts(world: World) -> None:
    befriend(world)
    effects = world.send(BALCONY, "<presence type='unavailable'/>")
    assert presences(effects, ORCHARD) == [("unavailable", FULL[BALCONY])]
    assert world.router.unbind(BALCONY) == []


# ---------------------------------------------------------------------------
# directed presence (RFC 6121 §4.6)


def test_directed_presence_is_revoked_with_unavailable_at_logout(world: World) -> None:
    world.login(NURSERY)
    effects = world.send(BALCONY, "<presence to='nurse@example.com/nursery'/>")
    assert presences(effects, NURSERY) == [(None, FULL[BALCONY])]
    effects = world.router.unbind(BALCONY)
    assert presences(effects, NURSERY) == [("unavailable", FULL[BALCONY])]


def test_directed_presence_of_a_session_that_never_was_available_is_revoked() -> None:
    world = World()
    world.login(NURSERY)
    world.login(BALCONY, available=False)
    world.send(BALCONY, "<presence to='nurse@example.com'/>")
    effects = world.router.unbind(BALCONY)
    assert presences(effects, NURSERY) == [("unavailable", FULL[BALCONY])]


def test_directed_unavailable_forgets_the_target(world: World) -> None:
    world.login(NURSERY)
    world.send(BALCONY, "<presence to='nurse@example.com'/>")
    world.send(BALCONY, "<presence to='nurse@example.com' type='unavailable'/>")
    assert presences(world.router.unbind(BALCONY), NURSERY) == []


def test_directed_presence_to_a_subscriber_is_not_revoked_twice(world: World) -> None:
    befriend(world)
    world.send(BALCONY, "<presence to='romeo@example.com/orchard'/>")
    effects = world.router.unbind(BALCONY)
    assert presences(effects, ORCHARD) == [("unavailable", FULL[BALCONY])]


# ---------------------------------------------------------------------------
# limits


def test_roster_size_limit_refuses_new_subscriptions() -> None:
    world = World(max_items=1)
    world.login(BALCONY)
    world.login(ORCHARD)
    world.login(NURSERY)
    subscribe(world, BALCONY, ROMEO)
    effects = subscribe(world, BALCONY, NURSE)
    (error,) = to(effects, BALCONY)
    assert parse_error(error).condition is StanzaErrorCondition.NOT_ALLOWED
    assert to(effects, NURSERY) == []
    # a full roster also drops requests from strangers
    effects = subscribe(world, NURSERY, JULIET)
    assert to(effects, BALCONY) == []
    assert world.storage.count(JULIET) == 1


def test_stored_roster_survives_in_storage_shape(world: World) -> None:
    befriend(world)
    version, records = world.storage.get(JULIET)
    assert records == [StoredItem(item(ROMEO, "both"))]
    assert int(version) > 0


# ---------------------------------------------------------------------------
# properties

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from([BALCONY, ORCHARD]),
        st.sampled_from(["subscribe", "subscribed", "unsubscribe", "unsubscribed", "remove"]),
    ),
    max_size=25,
)


def _apply_pushes(view: dict[JID, RosterItem], effects: Sequence[Effect], session: int) -> None:
    for pushed_item in pushed(effects, session):
        if pushed_item.subscription is Subscription.REMOVE:
            view.pop(pushed_item.jid, None)
        else:
            view[pushed_item.jid] = pushed_item


@settings(max_examples=150, deadline=None)
@given(ACTIONS)
def test_rosters_stay_in_sync_and_clients_converge(actions: list[tuple[int, str]]) -> None:
    world = World()
    world.login(BALCONY)
    world.login(ORCHARD)
    views: dict[int, dict[JID, RosterItem]] = {BALCONY: {}, ORCHARD: {}}
    peer = {BALCONY: ROMEO, ORCHARD: JULIET}
    for session, action in actions:
        if action == "remove":
            effects = world.send(
                session,
                "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>"
                f"<item jid='{peer[session]}' subscription='remove'/></query></iq>",
            )
        else:
            effects = subscribe(world, session, peer[session], action)
        for s in views:
            _apply_pushes(views[s], effects, s)
    stored = {
        BALCONY: world.storage.item(JULIET, ROMEO),
        ORCHARD: world.storage.item(ROMEO, JULIET),
    }
    for s, record in stored.items():
        # what each client saw through pushes is what the server stores
        expected = {} if record is None or not record.in_roster else {record.jid: record.item}
        assert views[s] == expected
    # each side's view of the two subscriptions matches the other's
    j, r = (SubState.NONE if rec is None else rec.state for rec in stored.values())
    for a, b in ((j, r), (r, j)):
        assert (a.subscription in (Subscription.TO, Subscription.BOTH)) == (
            b.subscription in (Subscription.FROM, Subscription.BOTH)
        )
        assert a.pending_out == b.pending_in


# ---------------------------------------------------------------------------
# bounds (issue 10): directed presence targets, stored subscription requests


def errors_to(effects: Sequence[Effect], session: int) -> list[StanzaErrorCondition]:
    return [
        parse_error(el).condition
        for el in to(effects, session)
        if el.tag == "{jabber:client}presence" and el.get("type") == "error"
    ]


def test_directed_presence_targets_are_bounded_per_session(world: World) -> None:
    """RFC 6121 §4.6: past max_directed targets, available presence to a new
    one is refused with resource-constraint and not routed; a known target
    or a freed slot is fine; the logout revokes exactly the tracked ones."""
    world.presence.max_directed = 2
    world.login(NURSERY)
    world.login(GARDEN)  # juliet's own other resource: never tracked
    for target in ("nurse@example.com/nursery", "romeo@example.com/orchard"):
        assert errors_to(world.send(BALCONY, f"<presence to='{target}'/>"), BALCONY) == []
    effects = world.send(BALCONY, "<presence to='romeo@example.com/elsewhere'/>")
    assert errors_to(effects, BALCONY) == [StanzaErrorCondition.RESOURCE_CONSTRAINT]
    assert (
        errors_to(world.send(BALCONY, "<presence to='juliet@example.com/garden'/>"), BALCONY) == []
    )
    again = world.send(
        BALCONY, "<presence to='nurse@example.com/nursery'><show>away</show></presence>"
    )
    assert errors_to(again, BALCONY) == [] and presences(again, NURSERY)
    world.send(BALCONY, "<presence to='nurse@example.com/nursery' type='unavailable'/>")
    assert (
        errors_to(world.send(BALCONY, "<presence to='romeo@example.com/elsewhere'/>"), BALCONY)
        == []
    )
    revoked = world.router.unbind(BALCONY)
    assert presences(revoked, ORCHARD) == [("unavailable", FULL[BALCONY])]
    assert presences(revoked, NURSERY) == []


def test_directed_presence_to_local_jids_without_account_is_not_tracked(world: World) -> None:
    world.presence.max_directed = 1
    for n in range(10):
        effects = world.send(BALCONY, f"<presence to='ghost{n}@example.com'/>")
        assert errors_to(effects, BALCONY) == []
    assert world.presence._directed.get(BALCONY, {}) == {}


def test_stored_request_keeps_a_cut_status_and_nick_only() -> None:
    """RFC 6121 §3.1.3: what is redelivered at each login is bounded."""
    world = World()
    world.presence.max_subscription_status = 5
    world.login(BALCONY)
    live = world.send(
        BALCONY,
        "<presence to='romeo@example.com' type='subscribe' id='s1' xml:lang='en'>"
        "<status>please, my love</status><nick xmlns='http://jabber.org/protocol/nick'>"
        "Juliet Capulet</nick><junk xmlns='urn:example:junk'>xxxxxxxx</junk></presence>",
    )
    assert live  # routed (Romeo is offline: stored only)
    effects = world.login(ORCHARD)
    (request,) = [
        el
        for el in to(effects, ORCHARD)
        if el.tag == "{jabber:client}presence" and el.get("type") == "subscribe"
    ]
    assert request.get("from") == "juliet@example.com" and request.get("id") == "s1"
    assert request.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert request.findtext("{jabber:client}status") == "pleas"
    assert request.findtext("{http://jabber.org/protocol/nick}nick") == "Julie"
    assert request.find("{urn:example:junk}junk") is None


def test_pending_requests_beyond_the_limit_are_dropped() -> None:
    world = World()
    world.presence.max_pending_requests = 1
    world.login(BALCONY)
    world.login(NURSERY)
    subscribe(world, BALCONY, ROMEO)
    subscribe(world, NURSERY, ROMEO)
    subscribe(world, BALCONY, ROMEO)  # a repeated request does not count twice
    effects = world.login(ORCHARD)
    assert [f for t, f in presences(effects, ORCHARD) if t == "subscribe"] == ["juliet@example.com"]
    assert world.storage.item(ROMEO, NURSE) is None


def test_roster_byte_limit_refuses_new_subscriptions_too() -> None:
    """max_roster_size also bounds the records a subscription adds (their JID)."""
    world = World()
    world.roster.max_roster_size = len("romeo@example.com") + 5
    world.login(BALCONY)
    world.login(ORCHARD)
    world.login(NURSERY)
    subscribe(world, BALCONY, ROMEO)
    effects = subscribe(world, BALCONY, NURSE)
    (error,) = to(effects, BALCONY)
    assert parse_error(error).condition is StanzaErrorCondition.NOT_ALLOWED
    assert world.item(JULIET, NURSE) is None


# ---------------------------------------------------------------------------
# the roster broadcast delivered without routing each copy (issue 24)


class DropFrom(Service):
    """An inbound filter that drops every presence from ``sender`` (bare) to ``recipient``."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.INBOUND})

    def __init__(self, sender: JID, recipient: JID) -> None:
        self.pair = (sender, recipient)
        self.seen: list[tuple[str | None, str | None]] = []

    def filter_inbound(
        self, ctx: Context, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        self.seen.append((element.get("from"), element.get("to")))
        return [] if (sender.bare, recipient) == self.pair else None


def world_dropping(sender: JID, recipient: JID) -> tuple[World, DropFrom]:
    """A World whose router also runs a :class:`DropFrom` filter after the services."""
    world = World()
    drop = DropFrom(sender, recipient)
    world.router = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[world.roster, world.presence, drop],
    )
    return world, drop


def test_the_roster_broadcast_reaches_each_available_resource_of_a_contact_with_its_bare_jid() -> (
    None
):
    world = World()
    for session in (BALCONY, CHAMBER, ORCHARD):
        world.login(session)
    befriend(world)
    effects = world.send(ORCHARD, "<presence><status>away</status></presence>")
    for session in (BALCONY, CHAMBER):
        (copy,) = to(effects, session)
        assert copy.get("from") == FULL[ORCHARD] and copy.get("to") == str(JULIET)
        assert copy.findtext("{jabber:client}status") == "away"
    unavailable = world.send(ORCHARD, "<presence type='unavailable'/>")
    assert presences(unavailable, BALCONY) == [("unavailable", FULL[ORCHARD])]


def test_the_roster_broadcast_goes_through_the_contacts_inbound_filters() -> None:
    world, drop = world_dropping(ROMEO, JULIET)
    for session in (BALCONY, ORCHARD, NURSERY):
        world.login(session)
    befriend(world)
    subscribe(world, NURSERY, ROMEO)
    subscribe(world, ORCHARD, NURSE, "subscribed")
    drop.seen.clear()
    effects = world.send(ORCHARD, "<presence><show>dnd</show></presence>")
    assert to(effects, BALCONY) == []
    assert presences(effects, NURSERY) == [(None, FULL[ORCHARD])]
    assert sorted(drop.seen) == [(FULL[ORCHARD], str(JULIET)), (FULL[ORCHARD], str(NURSE))]


def test_no_copy_of_the_broadcast_is_filtered_for_a_contact_with_no_available_resource() -> None:
    world, drop = world_dropping(ROMEO, JULIET)
    world.login(BALCONY)
    world.login(ORCHARD)
    befriend(world)
    world.send(BALCONY, "<presence type='unavailable'/>")
    drop.seen.clear()
    effects = world.send(ORCHARD, "<presence><show>dnd</show></presence>")
    assert to(effects, BALCONY) == []
    assert presences(effects, ORCHARD) == [(None, FULL[ORCHARD])]  # its own copy only
    assert drop.seen == []


def test_presence_update_and_directed_presence_read_no_enum_member_through_the_class(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: in Python 3.11 ``PresenceType.AVAILABLE`` goes through
    ``EnumType``'s ``__getattribute__`` slot (~1,000 instructions a read); the
    routes an update takes (parse, broadcast, roster fan-out, directed
    presence) read module globals instead, with the same presence delivered."""
    befriend(world)
    world.send(BALCONY, f"<presence to='{FULL[NURSERY]}'/>")  # tracked once
    reads: list[str] = []
    lookup = type.__getattribute__

    def counting(cls: type, name: str) -> object:
        if not name.startswith("_"):
            reads.append(f"{cls.__name__}.{name}")
        return lookup(cls, name)

    monkeypatch.setattr(enum.EnumType, "__getattribute__", counting)
    update = world.send(BALCONY, "<presence><show>away</show></presence>")
    directed = world.send(BALCONY, f"<presence to='{FULL[NURSERY]}'/>")
    monkeypatch.undo()
    assert reads == []
    assert presences(update, ORCHARD) == [(None, "juliet@example.com/balcony")]
    assert directed == []  # nurse is not bound
