"""Tests for the client's IM state (xmpp_sansio.client_state): the roster cache
(RFC 6121 §2.1.6, §2.6), the presence tracker (§4) and the caps cache (XEP-0115)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from xml.etree.ElementTree import Element, fromstring

import pytest
from committing import CommittingRouter
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.client_state import (
    CapsCache,
    PresenceTracker,
    RejectedPush,
    RosterCache,
    RosterPush,
    parse_push,
    roster_remove_query,
    roster_set_query,
)
from xmpp_sansio.disco import Caps, DiscoInfo, Identity, caps_element, caps_ver
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import (
    QUERY_TAG,
    InvalidRosterQuery,
    RosterItem,
    Subscription,
    build_roster_query,
    parse_roster_query,
    roster_push,
)
from xmpp_sansio.server import Deliver
from xmpp_sansio.server.presence import PresenceService
from xmpp_sansio.server.roster import MemoryRosterStorage, RosterService, visible_items
from xmpp_sansio.stanza import IqType, PresenceShow, PresenceType, make_iq, make_presence
from xmpp_sansio.testing import seeded_rng, x

JULIET_FULL = JID.parse("juliet@example.com/balcony")
JULIET = JULIET_FULL.bare
ROMEO = JID.parse("romeo@example.com")
NURSE = JID.parse("nurse@example.com")
ORCHARD = JID.parse("romeo@example.com/orchard")
GARDEN = JID.parse("romeo@example.com/garden")


def push(items: str, *, ver: str | None = "v2", from_: str | None = None) -> Element:
    from_attr = "" if from_ is None else f" from='{from_}'"
    ver_attr = "" if ver is None else f" ver='{ver}'"
    return x(
        f"<iq type='set' id='p1' to='{JULIET_FULL}'{from_attr}>"
        f"<query xmlns='jabber:iq:roster'{ver_attr}>{items}</query></iq>"
    )


ROMEO_ITEM = (
    "<item jid='romeo@example.com' name='Romeo' subscription='both'><group>Friends</group></item>"
)


# ---------------------------------------------------------------------------
# roster gets (RFC 6121 §2.1.3, §2.6)


def test_first_fetch_bootstraps_versioning_with_an_empty_ver() -> None:
    query = RosterCache().start_fetch()
    assert query.tag == QUERY_TAG
    assert query.get("ver") == ""  # RFC 6121 §2.6.2


def test_fetch_sends_the_cached_version() -> None:
    assert RosterCache(version="v7").start_fetch().get("ver") == "v7"


def test_fetch_without_server_versioning_sends_no_ver() -> None:
    assert RosterCache(version="v7").start_fetch(versioning=False).get("ver") is None


def test_full_result_replaces_the_items_and_version() -> None:
    cache = RosterCache("v1", {NURSE: RosterItem(NURSE)})
    cache.start_fetch()
    cache.apply_result(fromstring(f"<query xmlns='jabber:iq:roster' ver='v5'>{ROMEO_ITEM}</query>"))
    assert cache.version == "v5"
    assert cache.items == {
        ROMEO: RosterItem(ROMEO, "Romeo", Subscription.BOTH, groups=frozenset({"Friends"}))
    }


def test_empty_result_means_the_cached_version_is_current() -> None:
    items = {ROMEO: RosterItem(ROMEO, "Romeo", Subscription.BOTH)}
    cache = RosterCache("v5", dict(items))
    cache.start_fetch()
    cache.apply_result(None)  # RFC 6121 §2.6.3
    assert cache == RosterCache("v5", items)


def test_result_without_ver_leaves_the_version_unknown() -> None:
    cache = RosterCache("v5")
    cache.apply_result(fromstring(f"<query xmlns='jabber:iq:roster'>{ROMEO_ITEM}</query>"))
    assert cache.version is None
    assert list(cache.items) == [ROMEO]


def test_invalid_result_raises_and_leaves_the_cache_alone() -> None:
    cache = RosterCache("v5", {ROMEO: RosterItem(ROMEO)})
    cache.start_fetch()
    with pytest.raises(InvalidRosterQuery):
        cache.apply_result(fromstring("<query xmlns='jabber:iq:roster'><item/></query>"))
    assert cache == RosterCache("v5", {ROMEO: RosterItem(ROMEO)})


def test_pushes_handled_before_a_delayed_result_are_applied_again_after_it() -> None:
    cache = RosterCache()
    cache.start_fetch()
    # The result (v1, romeo "none") was sent first but the push (v2) got handled first.
    assert cache.apply_push(push(ROMEO_ITEM, ver="v2"), JULIET_FULL) is not None
    cache.apply_result(
        fromstring(
            "<query xmlns='jabber:iq:roster' ver='v1'><item jid='romeo@example.com'/></query>"
        )
    )
    assert cache.version == "v2"
    assert cache.items[ROMEO].subscription is Subscription.BOTH


def test_cancelled_fetch_stops_recording_pushes() -> None:
    cache = RosterCache()
    cache.start_fetch()
    cache.cancel_fetch()
    cache.apply_push(push(ROMEO_ITEM), JULIET_FULL)
    cache.apply_result(fromstring("<query xmlns='jabber:iq:roster' ver='v9'/>"))
    assert cache == RosterCache("v9", {})


# ---------------------------------------------------------------------------
# roster pushes (RFC 6121 §2.1.6)


@pytest.mark.parametrize("from_", [None, "juliet@example.com", "Juliet@Example.com"])
def test_push_from_the_own_account_is_applied(from_: str | None) -> None:
    cache = RosterCache("v1")
    item = cache.apply_push(push(ROMEO_ITEM, from_=from_), JULIET_FULL)
    assert item == RosterItem(ROMEO, "Romeo", Subscription.BOTH, groups=frozenset({"Friends"}))
    assert cache.items == {ROMEO: item}
    assert cache.version == "v2"


@pytest.mark.parametrize(
    "from_",
    [
        "romeo@example.com",
        "juliet@example.com/balcony",  # only the bare JID is the account
        "example.com",
        "juliet@evil.example",
        "not a jid@@",
    ],
)
def test_spoofed_push_is_ignored_and_refused_with_service_unavailable(from_: str) -> None:
    cache = RosterCache("v1", {NURSE: RosterItem(NURSE)})
    before = RosterCache.from_dict(cache.to_dict())
    assert cache.apply_push(push(ROMEO_ITEM, from_=from_), JULIET_FULL) is None
    assert cache == before
    with pytest.raises(RejectedPush) as info:
        parse_push(push(ROMEO_ITEM, from_=from_), JULIET_FULL)
    assert info.value.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


@pytest.mark.parametrize(
    ("items", "condition"),
    [
        ("", StanzaErrorCondition.BAD_REQUEST),
        (ROMEO_ITEM + "<item jid='nurse@example.com'/>", StanzaErrorCondition.BAD_REQUEST),
        ("<item name='no jid'/>", StanzaErrorCondition.BAD_REQUEST),
        ("<item jid='a@b@c'/>", StanzaErrorCondition.JID_MALFORMED),
        ("<item jid='nurse@example.com'><group/></item>", StanzaErrorCondition.NOT_ACCEPTABLE),
    ],
)
def test_malformed_push_is_refused_with_its_condition(
    items: str, condition: StanzaErrorCondition
) -> None:
    with pytest.raises(RejectedPush) as info:
        parse_push(push(items), JULIET_FULL)
    assert info.value.condition is condition
    assert RosterCache().apply_push(push(items), JULIET_FULL) is None


def test_an_iq_get_or_a_missing_query_is_not_a_push() -> None:
    with pytest.raises(RejectedPush):
        parse_push(x("<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>"), JULIET)
    with pytest.raises(RejectedPush):
        parse_push(x("<iq type='set' id='s'><query xmlns='urn:example'/></iq>"), JULIET)


def test_push_with_subscription_remove_deletes_the_item() -> None:
    cache = RosterCache("v1", {ROMEO: RosterItem(ROMEO), NURSE: RosterItem(NURSE)})
    item = cache.apply_push(
        push("<item jid='romeo@example.com' subscription='remove'/>", ver="v3"), JULIET_FULL
    )
    assert item is not None and item.subscription is Subscription.REMOVE
    assert cache == RosterCache("v3", {NURSE: RosterItem(NURSE)})


def test_push_without_ver_makes_the_version_unknown() -> None:
    cache = RosterCache("v1")
    cache.apply_push(push(ROMEO_ITEM, ver=None), JULIET_FULL)
    assert cache.version is None
    assert cache.start_fetch().get("ver") == ""


def test_parse_push_returns_the_item_and_version() -> None:
    assert parse_push(push(ROMEO_ITEM, ver="v8"), JULIET_FULL) == RosterPush(
        RosterItem(ROMEO, "Romeo", Subscription.BOTH, groups=frozenset({"Friends"})), "v8"
    )


def test_server_roster_push_builder_is_accepted() -> None:
    item = RosterItem(ROMEO, "Romeo", Subscription.TO, ask=False, approved=True)
    cache = RosterCache()
    assert cache.apply_push(roster_push(item, "v4", JULIET_FULL, id="x"), JULIET_FULL) == item


# ---------------------------------------------------------------------------
# roster sets (RFC 6121 §2.3-§2.5)


def test_roster_set_query_holds_one_item_without_subscription() -> None:
    query = roster_set_query(ROMEO, "Romeo", ["Lovers", "Friends"])
    (item,) = query
    assert item.attrib == {"jid": "romeo@example.com", "name": "Romeo"}
    assert [g.text for g in item] == ["Friends", "Lovers"]
    assert parse_roster_query(query)[1] == [
        RosterItem(ROMEO, "Romeo", groups=frozenset({"Friends", "Lovers"}))
    ]


@pytest.mark.parametrize("groups", [[""], ["Friends", "Friends"]])
def test_roster_set_query_refuses_empty_or_repeated_groups(groups: list[str]) -> None:
    with pytest.raises(ValueError):
        roster_set_query(ROMEO, None, groups)


def test_roster_remove_query_marks_the_item_remove() -> None:
    (item,) = roster_remove_query(ROMEO)
    assert item.attrib == {"jid": "romeo@example.com", "subscription": "remove"}


# ---------------------------------------------------------------------------
# persistence


def test_cache_survives_a_json_round_trip() -> None:
    cache = RosterCache(
        "v42",
        {
            ROMEO: RosterItem(ROMEO, "Romeo", Subscription.BOTH, groups=frozenset({"B", "A"})),
            NURSE: RosterItem(NURSE, None, Subscription.NONE, ask=True, approved=True),
        },
    )
    data = json.loads(json.dumps(cache.to_dict()))
    assert data["items"][0]["jid"] == "nurse@example.com"  # sorted
    assert data["items"][1]["groups"] == ["A", "B"]
    assert RosterCache.from_dict(data) == cache


def test_empty_cache_round_trips() -> None:
    assert RosterCache.from_dict(RosterCache().to_dict()) == RosterCache()


@pytest.mark.parametrize(
    "data",
    [
        {"version": 3, "items": []},
        {"version": "v", "items": {}},
        {"version": "v", "items": ["romeo@example.com"]},
        {"version": "v", "items": [{"name": "no jid"}]},
        {"version": "v", "items": [{"jid": "a@b@c"}]},
        {"version": "v", "items": [{"jid": "r@example.com", "subscription": "sideways"}]},
        {"version": "v", "items": [{"jid": "r@example.com", "subscription": "remove"}]},
        {"version": "v", "items": [{"jid": "r@example.com", "ask": "yes"}]},
        {"version": "v", "items": [{"jid": "r@example.com", "groups": [""]}]},
        {"version": "v", "items": [{"jid": "r@example.com", "name": 7}]},
        {"version": "v", "items": [{"jid": "r@example.com"}, {"jid": "R@example.com"}]},
    ],
)
def test_from_dict_refuses_damaged_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RosterCache.from_dict(data)


# ---------------------------------------------------------------------------
# property: a cache fed the pushes equals the server's roster


@dataclass
class Server:
    """The server's roster and presence services; juliet/balcony is the
    client under test, romeo and the nurse act on their side."""

    def __post_init__(self) -> None:
        self.storage = MemoryRosterStorage()
        self.roster = RosterService(self.storage, max_items=1000)
        accounts = {"juliet", "romeo", "nurse"}
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(0),
            account_exists=lambda local, domain: local in accounts,
            services=[self.roster, PresenceService(self.roster)],
        )
        self.sessions = {"juliet": 1, "romeo": 2, "nurse": 3}
        for user, session in self.sessions.items():
            self.router.bind(session, JID.parse(f"{user}@example.com/res"))

    def send(self, user: str, element: Element) -> list[Element]:
        """Route ``element`` from ``user``; what reached juliet's session."""
        effects = self.router.route(self.sessions[user], element)
        return [e.element for e in effects if isinstance(e, Deliver) and e.session == 1]

    def roster_of_juliet(self) -> RosterCache:
        version, records = self.storage.get(JID.parse("juliet@example.com"))
        return RosterCache(version, {item.jid: item for item in visible_items(records)})


CONTACTS = ["romeo@example.com", "nurse@example.com", "tybalt@example.com"]
SUB_TYPES = [
    PresenceType.SUBSCRIBE,
    PresenceType.SUBSCRIBED,
    PresenceType.UNSUBSCRIBE,
    PresenceType.UNSUBSCRIBED,
]
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("set"),
            st.sampled_from(CONTACTS),
            st.sampled_from([None, "Romeo", "Nurse"]),
            st.sets(st.sampled_from(["Friends", "Family"])),
        ),
        st.tuples(st.just("remove"), st.sampled_from(CONTACTS)),
        st.tuples(st.just("out"), st.sampled_from(CONTACTS), st.sampled_from(SUB_TYPES)),
        st.tuples(st.just("in"), st.sampled_from(["romeo", "nurse"]), st.sampled_from(SUB_TYPES)),
        st.tuples(st.just("spoof"), st.sampled_from(["romeo@example.com", "example.com"])),
        st.tuples(st.just("get"), st.integers(min_value=0, max_value=3)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_cache_fed_every_push_equals_the_server_roster(ops: list[tuple[object, ...]]) -> None:
    """Roster sets, removes and subscription stanzas from both sides make the
    server push; the cache applies every push (and a roster get whose result
    is handled only after up to 3 later pushes: the replay), ignores spoofed
    pushes, and ends equal to the server's roster and version."""
    server = Server()
    cache = RosterCache()
    held: tuple[Element | None, int] | None = None  # a result and pushes to apply before it

    def fetch() -> Element | None:
        iq = make_iq(IqType.GET, "get", cache.start_fetch())
        (reply,) = [r for r in server.send("juliet", iq) if r.get("id") == "get"]
        return reply.find(QUERY_TAG)

    def receive(stanzas: list[Element]) -> None:
        nonlocal held
        for stanza in stanzas:
            if stanza.get("type") != "set" or stanza.find(QUERY_TAG) is None:
                continue
            assert cache.apply_push(stanza, JULIET_FULL) is not None
            if held is not None:
                result, wait = held
                held = (result, wait - 1) if wait > 1 else None
                if held is None:
                    cache.apply_result(result)

    cache.apply_result(fetch())  # the session becomes interested (§2.1.6)
    for op in ops:
        kind = op[0]
        if kind == "set":
            _, contact, name, groups = op
            query = roster_set_query(JID.parse(str(contact)), name, groups)  # type: ignore[arg-type]
            receive(server.send("juliet", make_iq(IqType.SET, "s", query)))
        elif kind == "remove":
            query = roster_remove_query(JID.parse(str(op[1])))
            receive(server.send("juliet", make_iq(IqType.SET, "r", query)))
        elif kind == "out":
            receive(server.send("juliet", make_presence(str(op[1]), op[2])))  # type: ignore[arg-type]
        elif kind == "in":
            receive(server.send(str(op[1]), make_presence("juliet@example.com", op[2])))  # type: ignore[arg-type]
        elif kind == "spoof":
            spoofed = roster_push(
                RosterItem(JID.parse("mallory@example.com")), "evil", JULIET_FULL, id="x"
            )
            spoofed.set("from", str(op[1]))
            assert cache.apply_push(spoofed, JULIET_FULL) is None
        elif held is None:
            result = fetch()
            wait = int(op[1])  # type: ignore[call-overload]
            if wait == 0:
                cache.apply_result(result)
            else:
                held = (result, wait)
    if held is not None:
        cache.apply_result(held[0])
    expected = server.roster_of_juliet()
    assert cache.items == expected.items
    # The version may lag (the server also versions records the client never
    # sees, e.g. a request from a stranger, RFC 6121 Appendix A.1): a
    # versioned get then brings it up to date, or says it is current.
    current = cache.version == expected.version
    result = fetch()
    assert (result is None) is current
    cache.apply_result(result)
    assert cache == expected


# ---------------------------------------------------------------------------
# presence (RFC 6121 §4)


def presence(from_: JID | str, **kwargs: object) -> Element:
    return make_presence(JULIET_FULL, from_=from_, **kwargs)  # type: ignore[arg-type]


def test_available_presence_records_show_status_priority_and_caps() -> None:
    tracker = PresenceTracker()
    stanza = presence(ORCHARD, show=PresenceShow.AWAY, status="Under the balcony", priority=5)
    stanza.append(caps_element("https://example.org/app", "QgayPKawpkPSDYmwT/WM94uAlu0="))
    update = tracker.handle(stanza)
    assert update is not None
    assert update.came_online and not update.went_offline
    assert update.previous is None and update.bare == ROMEO
    state = tracker.get(ORCHARD)
    assert state is not None and state == update.current
    assert (state.show, state.status, state.priority) == (PresenceShow.AWAY, "Under the balcony", 5)
    assert tracker.caps(ORCHARD) == Caps(
        "https://example.org/app", "QgayPKawpkPSDYmwT/WM94uAlu0=", "sha-1"
    )
    assert tracker.is_available(ROMEO) and tracker.is_available(ORCHARD)
    assert not tracker.is_available(GARDEN)
    assert tracker.available() == [ROMEO]


def test_best_resource_has_the_highest_priority_then_the_latest_update() -> None:
    tracker = PresenceTracker()
    tracker.handle(presence(ORCHARD, priority=1))
    tracker.handle(presence(GARDEN, priority=1))
    best = tracker.best_resource(ROMEO)
    assert best is not None and best.jid == GARDEN  # tie: the most recent
    tracker.handle(presence(ORCHARD, priority=1, status="back"))
    assert tracker.best_resource(ROMEO).jid == ORCHARD  # type: ignore[union-attr]
    tracker.handle(presence(GARDEN, priority=10))
    assert [r.jid for r in tracker.resources(ROMEO)] == [GARDEN, ORCHARD]
    assert tracker.best_resource(NURSE) is None


def test_second_resource_is_no_new_contact_online() -> None:
    tracker = PresenceTracker()
    tracker.handle(presence(ORCHARD))
    update = tracker.handle(presence(GARDEN))
    assert update is not None and not update.came_online


def test_status_change_reports_the_previous_state() -> None:
    tracker = PresenceTracker()
    tracker.handle(presence(ORCHARD, status="one"))
    update = tracker.handle(presence(ORCHARD, status="two"))
    assert update is not None and not update.came_online
    assert update.previous is not None and update.previous.status == "one"
    assert update.current is not None and update.current.status == "two"


def test_unavailable_removes_the_resource_and_the_last_one_takes_the_contact_offline() -> None:
    tracker = PresenceTracker()
    tracker.handle(presence(ORCHARD))
    tracker.handle(presence(GARDEN))
    update = tracker.handle(presence(ORCHARD, type=PresenceType.UNAVAILABLE))
    assert update is not None and update.current is None and not update.went_offline
    assert [r.jid for r in tracker.resources(ROMEO)] == [GARDEN]
    update = tracker.handle(presence(GARDEN, type=PresenceType.UNAVAILABLE))
    assert update is not None and update.went_offline
    assert not tracker.is_available(ROMEO)
    assert tracker.resources(ROMEO) == []


def test_unavailable_from_the_bare_jid_removes_every_resource() -> None:
    tracker = PresenceTracker()
    tracker.handle(presence(ORCHARD))
    tracker.handle(presence(GARDEN))
    update = tracker.handle(presence(ROMEO, type=PresenceType.UNAVAILABLE))  # a probe answer
    assert update is not None and update.went_offline
    assert not tracker.is_available(ROMEO)


def test_unavailable_from_an_unknown_resource_changes_nothing() -> None:
    tracker = PresenceTracker()
    assert tracker.handle(presence(ORCHARD, type=PresenceType.UNAVAILABLE)) is None
    assert tracker.handle(presence(ROMEO, type=PresenceType.UNAVAILABLE)) is None


@pytest.mark.parametrize(
    "type_",
    [
        PresenceType.SUBSCRIBE,
        PresenceType.SUBSCRIBED,
        PresenceType.UNSUBSCRIBE,
        PresenceType.UNSUBSCRIBED,
        PresenceType.PROBE,
        PresenceType.ERROR,
    ],
)
def test_subscription_probe_and_error_presence_is_ignored(type_: PresenceType) -> None:
    tracker = PresenceTracker()
    tracker.handle(presence(ORCHARD))
    assert tracker.handle(presence(ORCHARD, type=type_)) is None
    assert tracker.is_available(ORCHARD)


@pytest.mark.parametrize(
    "stanza",
    [
        "<presence/>",  # no 'from'
        "<presence from='romeo@example.com/orchard'><priority>999</priority></presence>",
        "<presence from='romeo@example.com/orchard'><show>sleepy</show></presence>",
        "<presence from='romeo@example.com/orchard' type='available'/>",
        "<message from='romeo@example.com/orchard'/>",
    ],
)
def test_invalid_presence_is_ignored(stanza: str) -> None:
    tracker = PresenceTracker()
    assert tracker.handle(x(stanza)) is None
    assert tracker.available() == []


def test_clear_forgets_everyone() -> None:
    tracker = PresenceTracker()
    tracker.handle(presence(ORCHARD))
    tracker.clear()
    assert not tracker.is_available(ROMEO)


# ---------------------------------------------------------------------------
# caps (XEP-0115)

INFO = DiscoInfo(
    (Identity("client", "pc", "Exodus 0.9.1"),),
    (
        "http://jabber.org/protocol/caps",
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "http://jabber.org/protocol/muc",
    ),
)
VER = "QgayPKawpkPSDYmwT/WM94uAlu0="  # XEP-0115 §5.2


def test_xep_0115_example_ver_matches() -> None:
    assert caps_ver(INFO) == VER


def test_verified_answer_serves_every_entity_with_that_ver() -> None:
    cache = CapsCache()
    caps = Caps("http://code.google.com/p/exodus", VER, "sha-1")
    assert cache.lookup(ORCHARD, caps) is None
    assert cache.store(ORCHARD, caps, INFO.with_node(caps.disco_node))
    assert cache.lookup(GARDEN, caps) == INFO  # node dropped
    assert cache.lookup(NURSE, Caps("https://other.example", VER, "sha-1")) == INFO
    assert CapsCache.key(ORCHARD, caps) == CapsCache.key(GARDEN, caps)
    cache.forget(ROMEO)
    assert cache.lookup(GARDEN, caps) == INFO  # verified answers are not per JID


@pytest.mark.parametrize(
    "caps",
    [
        Caps("http://code.google.com/p/exodus", "not-the-hash", "sha-1"),  # §5.4 step 3.9
        Caps("http://code.google.com/p/exodus", "0.9.1", None),  # legacy, §13
        Caps("http://code.google.com/p/exodus", VER, "md5"),  # unsupported, §5.4 step 2
    ],
)
def test_unverifiable_answer_is_kept_only_for_its_jid(caps: Caps) -> None:
    cache = CapsCache()
    assert not cache.store(ORCHARD, caps, INFO)
    assert cache.lookup(ORCHARD, caps) == INFO
    assert cache.lookup(GARDEN, caps) is None
    # Only a verifiable ver is one key for all: lookups share its query.
    shared = caps.hash == "sha-1"
    assert (CapsCache.key(ORCHARD, caps) == CapsCache.key(GARDEN, caps)) is shared
    cache.forget(ROMEO)  # the bare JID: all of its resources
    assert cache.lookup(ORCHARD, caps) is None
    assert len(cache) == 0


def test_forget_of_a_full_jid_keeps_the_other_resources() -> None:
    cache = CapsCache()
    caps = Caps("n", "legacy", None)
    cache.store(ORCHARD, caps, INFO)
    cache.store(GARDEN, caps, INFO)
    cache.forget(ORCHARD)
    assert cache.lookup(ORCHARD, caps) is None
    assert cache.lookup(GARDEN, caps) == INFO


def test_roster_queries_carry_the_roster_namespace() -> None:
    for query in (roster_set_query(ROMEO), roster_remove_query(ROMEO), build_roster_query([])):
        assert query.tag == QUERY_TAG
