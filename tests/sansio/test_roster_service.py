"""Tests for the roster payload (xmpp_sansio.roster) and RosterService (RFC 6121 §2)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, fromstring

import pytest
from committing import CommittingRouter
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
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
from xmpp_sansio.server import Deliver, Effect
from xmpp_sansio.server.roster import MemoryRosterStorage, RosterService, StoredItem
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml import ns

ACCOUNTS = {("juliet", "example.com"), ("romeo", "example.com"), ("nurse", "example.com")}
BALCONY, CHAMBER, ORCHARD = 1, 2, 10
JULIET = JID.parse("juliet@example.com")
ROMEO = JID.parse("romeo@example.com")
NURSE = JID.parse("nurse@example.com")


def roster_iq(
    type_: str, items: str = "", *, ver: str | None = None, to: str | None = None
) -> Element:
    to_attr = "" if to is None else f" to='{to}'"
    ver_attr = "" if ver is None else f" ver='{ver}'"
    return x(
        f"<iq type='{type_}' id='r1'{to_attr}>"
        f"<query xmlns='jabber:iq:roster'{ver_attr}>{items}</query></iq>"
    )


def set_item(items: str) -> Element:
    return roster_iq("set", items)


class World:
    """A router with a RosterService over memory storage; juliet has balcony
    and chamber, romeo has orchard; nobody has asked for the roster yet."""

    def __init__(self, max_items: int = 1000) -> None:
        self.storage = MemoryRosterStorage()
        self.roster = RosterService(self.storage, max_items=max_items, max_name_length=20)
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(0),
            account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
            services=[self.roster],
        )
        self.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
        self.router.bind(CHAMBER, JID.parse("juliet@example.com/chamber"))
        self.router.bind(ORCHARD, JID.parse("romeo@example.com/orchard"))

    def get(self, session: int, ver: str | None = None) -> tuple[str | None, list[RosterItem]]:
        effects = self.router.route(session, roster_iq("get", ver=ver))
        (reply,) = only(effects, session)
        assert reply.get("type") == "result"
        query = reply.find(QUERY_TAG)
        if query is None:
            return None, []
        return parse_roster_query(query)


@pytest.fixture
def world() -> World:
    return World()


def only(effects: Sequence[Effect], session: int) -> list[Element]:
    out = []
    for effect in effects:
        assert isinstance(effect, Deliver)
        if effect.session == session:
            out.append(effect.element)
    return out


def pushes(effects: Sequence[Effect]) -> dict[int, list[tuple[str | None, list[RosterItem]]]]:
    out: dict[int, list[tuple[str | None, list[RosterItem]]]] = {}
    for effect in effects:
        assert isinstance(effect, Deliver)
        el = effect.element
        query = el.find(QUERY_TAG)
        if el.tag == "{jabber:client}iq" and el.get("type") == "set" and query is not None:
            out.setdefault(effect.session, []).append(parse_roster_query(query))
    return out


def results(effects: Sequence[Effect], session: int) -> list[Element]:
    return [el for el in only(effects, session) if el.get("type") in ("result", "error")]


def error_of(effects: Sequence[Effect], session: int) -> StanzaErrorCondition:
    (reply,) = results(effects, session)
    assert reply.get("type") == "error"
    return parse_error(reply).condition


# ---------------------------------------------------------------------------
# the payload


def test_parse_roster_query_reads_every_attribute() -> None:
    query = fromstring(
        "<query xmlns='jabber:iq:roster' ver='ver7'>"
        "<item jid='Romeo@Example.net' name='Romeo' subscription='both'>"
        "<group>Friends</group><group>Lovers</group></item>"
        "<item jid='nurse@example.com' ask='subscribe' approved='true'/>"
        "<unknown xmlns='urn:example'/>"
        "</query>"
    )
    ver, items = parse_roster_query(query)
    assert ver == "ver7"
    assert items == [
        RosterItem(
            JID.parse("romeo@example.net"),
            "Romeo",
            Subscription.BOTH,
            groups=frozenset({"Friends", "Lovers"}),
        ),
        RosterItem(NURSE, ask=True, approved=True),
    ]


def test_parse_roster_query_treats_unknown_subscription_as_none() -> None:
    query = fromstring(
        "<query xmlns='jabber:iq:roster'><item jid='a@b' subscription='foo'/></query>"
    )
    assert parse_roster_query(query)[1][0].subscription is Subscription.NONE


@pytest.mark.parametrize(
    ("item", "condition"),
    [
        ("<item name='x'/>", StanzaErrorCondition.BAD_REQUEST),
        ("<item jid='@example.com'/>", StanzaErrorCondition.JID_MALFORMED),
        ("<item jid='a@b'><group/></item>", StanzaErrorCondition.NOT_ACCEPTABLE),
        (
            "<item jid='a@b'><group>G</group><group>G</group></item>",
            StanzaErrorCondition.BAD_REQUEST,
        ),
    ],
)
def test_parse_roster_query_rejects_what_rfc_6121_2_3_3_forbids(
    item: str, condition: StanzaErrorCondition
) -> None:
    with pytest.raises(InvalidRosterQuery) as info:
        parse_roster_query(fromstring(f"<query xmlns='jabber:iq:roster'>{item}</query>"))
    assert info.value.condition is condition
    assert isinstance(info.value, ValueError)


def test_parse_roster_query_rejects_other_payloads() -> None:
    with pytest.raises(InvalidRosterQuery):
        parse_roster_query(fromstring("<query xmlns='jabber:iq:private'/>"))


def test_build_roster_query_round_trips_client_visible_state() -> None:
    items = [
        RosterItem(ROMEO, "Romeo", Subscription.TO, groups=frozenset({"b", "a"})),
        RosterItem(NURSE, None, Subscription.NONE, ask=True, approved=True),
    ]
    query = build_roster_query(items, ver="3")
    assert parse_roster_query(query) == ("3", items)
    first, second = list(query)
    assert [g.text for g in first] == ["a", "b"]
    assert "ask" not in first.attrib and "approved" not in first.attrib
    assert second.get("ask") == "subscribe" and second.get("approved") == "true"
    assert second.get("subscription") == "none"
    assert build_roster_query([]).get("ver") is None


def test_roster_push_is_an_iq_set_without_from() -> None:
    to = JID.parse("juliet@example.com/balcony")
    push = roster_push(RosterItem(ROMEO), "5", to, id="p1")
    assert push.attrib == {"type": "set", "id": "p1", "to": str(to)}
    query = push.find(QUERY_TAG)
    assert query is not None
    assert parse_roster_query(query) == ("5", [RosterItem(ROMEO)])


# ---------------------------------------------------------------------------
# roster get (RFC 6121 §2.2) and versioning (§2.6)


def test_roster_service_advertises_the_roster_namespace() -> None:
    assert ns.ROSTER in RosterService.server_features


def test_empty_roster_get_returns_empty_query_with_version(world: World) -> None:
    assert world.get(BALCONY) == ("0", [])


def test_roster_get_to_own_bare_jid_is_answered(world: World) -> None:
    effects = world.router.route(BALCONY, roster_iq("get", to="juliet@example.com"))
    (reply,) = only(effects, BALCONY)
    assert reply.get("type") == "result"
    assert reply.find(QUERY_TAG) is not None


def test_roster_get_with_current_version_gets_empty_result(world: World) -> None:
    world.router.route(BALCONY, set_item("<item jid='romeo@example.com'/>"))
    ver, items = world.get(BALCONY)
    assert ver == "1" and len(items) == 1
    assert world.get(BALCONY, ver="1") == (None, [])
    assert world.get(BALCONY, ver="0") == ("1", items)
    assert world.get(BALCONY, ver="") == ("1", items)


def test_roster_results_and_errors_from_clients_are_dropped(world: World) -> None:
    world.get(BALCONY)
    effects = world.router.route(BALCONY, x("<iq type='result' id='push1'/>"))
    assert effects == []


# ---------------------------------------------------------------------------
# roster set (RFC 6121 §2.1.5, §2.3, §2.4)


def test_roster_set_adds_item_and_pushes_to_interested_resources_only(world: World) -> None:
    world.get(BALCONY)  # balcony is interested, chamber is not
    effects = world.router.route(
        CHAMBER, set_item("<item jid='romeo@example.com' name='Romeo'><group>F</group></item>")
    )
    item = RosterItem(ROMEO, "Romeo", groups=frozenset({"F"}))
    assert pushes(effects) == {BALCONY: [("1", [item])]}
    (reply,) = results(effects, CHAMBER)
    assert reply.get("type") == "result" and reply.get("id") == "r1"
    assert world.get(CHAMBER) == ("1", [item])


def test_roster_push_reaches_the_resource_that_sent_the_set(world: World) -> None:
    world.get(BALCONY)
    world.get(CHAMBER)
    effects = world.router.route(BALCONY, set_item("<item jid='romeo@example.com'/>"))
    assert sorted(pushes(effects)) == [BALCONY, CHAMBER]
    push = only(effects, BALCONY)[0]
    assert push.get("to") == "juliet@example.com/balcony" and push.get("from") is None


def test_roster_set_updates_name_and_groups_but_keeps_subscription(world: World) -> None:
    world.storage.put(JULIET, StoredItem(RosterItem(ROMEO, "R", Subscription.TO, approved=False)))
    world.router.route(BALCONY, set_item("<item jid='romeo@example.com' name='Romeo'/>"))
    assert world.get(BALCONY)[1] == [RosterItem(ROMEO, "Romeo", Subscription.TO)]


def test_roster_set_ignores_subscription_ask_and_approved(world: World) -> None:
    effects = world.router.route(
        BALCONY,
        set_item(
            "<item jid='romeo@example.com' subscription='both' ask='subscribe' approved='true'/>"
        ),
    )
    assert results(effects, BALCONY)[0].get("type") == "result"
    assert world.get(BALCONY)[1] == [RosterItem(ROMEO)]


@pytest.mark.parametrize(
    ("body", "condition"),
    [
        ("<item jid='romeo@example.com'/><item jid='nurse@example.com'/>", "bad-request"),
        ("", "bad-request"),
        ("<item jid='romeo@example.com'><group>A</group><group>A</group></item>", "bad-request"),
        ("<item jid='romeo@example.com'><group></group></item>", "not-acceptable"),
        ("<item jid='romeo@example.com' name='" + "n" * 21 + "'/>", "not-acceptable"),
        (
            "<item jid='romeo@example.com'><group>" + "g" * 1024 + "</group></item>",
            "not-acceptable",
        ),
        ("<item jid='romeo@@example.com'/>", "jid-malformed"),
        ("<item/>", "bad-request"),
    ],
)
def test_malformed_roster_set_gets_rfc_error_and_changes_nothing(
    world: World, body: str, condition: str
) -> None:
    world.get(BALCONY)
    effects = world.router.route(BALCONY, set_item(body))
    assert error_of(effects, BALCONY) is StanzaErrorCondition(condition)
    assert pushes(effects) == {}
    assert world.storage.get(JULIET) == ("0", [])


@pytest.mark.parametrize("type_", ["get", "set"])
def test_roster_of_another_user_is_service_unavailable(world: World, type_: str) -> None:
    body = "<item jid='nurse@example.com'/>" if type_ == "set" else ""
    effects = world.router.route(BALCONY, roster_iq(type_, body, to="romeo@example.com"))
    assert error_of(effects, BALCONY) is StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert world.storage.get(ROMEO) == ("0", [])


def test_roster_size_limit_gives_not_allowed() -> None:
    world = World(max_items=1)
    world.router.route(BALCONY, set_item("<item jid='romeo@example.com'/>"))
    effects = world.router.route(BALCONY, set_item("<item jid='nurse@example.com'/>"))
    assert error_of(effects, BALCONY) is StanzaErrorCondition.NOT_ALLOWED
    # updating an existing item is still fine
    effects = world.router.route(BALCONY, set_item("<item jid='romeo@example.com' name='R'/>"))
    assert results(effects, BALCONY)[0].get("type") == "result"
    assert world.get(BALCONY)[1] == [RosterItem(ROMEO, "R")]


def test_roster_set_makes_a_pending_only_record_visible(world: World) -> None:
    request = x("<presence from='romeo@example.com' to='juliet@example.com' type='subscribe'/>")
    world.storage.put(
        JULIET, StoredItem(RosterItem(ROMEO), False, pending_in=True, pending_request=request)
    )
    assert world.get(BALCONY)[1] == []
    world.router.route(BALCONY, set_item("<item jid='romeo@example.com' name='Romeo'/>"))
    assert world.get(BALCONY)[1] == [RosterItem(ROMEO, "Romeo")]
    stored = world.storage.item(JULIET, ROMEO)
    assert stored is not None and stored.pending_in and stored.pending_request is request


# ---------------------------------------------------------------------------
# roster remove (RFC 6121 §2.5)


def test_roster_remove_pushes_removal_and_answers(world: World) -> None:
    world.router.route(BALCONY, set_item("<item jid='romeo@example.com'/>"))
    world.get(BALCONY)
    world.get(CHAMBER)
    effects = world.router.route(
        CHAMBER, set_item("<item jid='romeo@example.com' subscription='remove'/>")
    )
    removed = [("2", [RosterItem(ROMEO, subscription=Subscription.REMOVE)])]
    assert pushes(effects) == {BALCONY: removed, CHAMBER: removed}
    assert results(effects, CHAMBER)[0].get("type") == "result"
    assert world.get(BALCONY) == ("2", [])


def test_roster_remove_of_unknown_item_is_item_not_found(world: World) -> None:
    effects = world.router.route(
        BALCONY, set_item("<item jid='romeo@example.com' subscription='remove'/>")
    )
    assert error_of(effects, BALCONY) is StanzaErrorCondition.ITEM_NOT_FOUND


def test_roster_remove_cancels_subscriptions_both_ways(world: World) -> None:
    world.storage.put(JULIET, StoredItem(RosterItem(ROMEO, subscription=Subscription.BOTH)))
    world.router.route(BALCONY, x("<presence/>"))
    world.router.route(ORCHARD, x("<presence/>"))
    effects = world.router.route(
        BALCONY, set_item("<item jid='romeo@example.com' subscription='remove'/>")
    )
    # without a presence service, the router delivers the notices as they are
    got = [(el.get("type"), el.get("from")) for el in only(effects, ORCHARD)]
    assert got == [
        ("unsubscribe", "juliet@example.com"),
        ("unavailable", "juliet@example.com/balcony"),
        ("unsubscribed", "juliet@example.com"),
    ]


# ---------------------------------------------------------------------------
# interested resources (RFC 6121 §2.1.6)


def test_unbound_session_is_no_longer_interested(world: World) -> None:
    world.get(BALCONY)
    world.router.unbind(BALCONY)
    world.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = world.router.route(CHAMBER, set_item("<item jid='romeo@example.com'/>"))
    assert pushes(effects) == {}
    assert world.roster.interested_sessions(JULIET) == []


# ---------------------------------------------------------------------------
# order of a roster set's output, bounds, the records cache (issue 10)


def kinds(effects: Sequence[Effect], session: int) -> list[str]:
    """'result' or 'push' for each iq delivered to ``session``, in order."""
    return [
        "push" if el.get("type") == "set" else str(el.get("type"))
        for el in only(effects, session)
        if el.tag == "{jabber:client}iq"
    ]


@pytest.mark.parametrize(
    "item",
    ["<item jid='romeo@example.com'/>", "<item jid='romeo@example.com' subscription='remove'/>"],
)
def test_roster_set_answers_before_it_pushes(world: World, item: str) -> None:
    """RFC 6121 §2.3.2, §2.5.2 and the examples of §2.1.6: result, then push."""
    world.router.route(BALCONY, set_item("<item jid='romeo@example.com'/>"))
    world.get(BALCONY)
    assert kinds(world.router.route(BALCONY, set_item(item)), BALCONY) == ["result", "push"]


def test_roster_item_groups_beyond_the_limit_are_not_acceptable() -> None:
    world = World()
    world.roster.max_groups_per_item = 2
    two = "<item jid='romeo@example.com'><group>a</group><group>b</group></item>"
    assert results(world.router.route(BALCONY, set_item(two)), BALCONY)[0].get("type") == "result"
    three = "<item jid='nurse@example.com'><group>a</group><group>b</group><group>c</group></item>"
    effects = world.router.route(BALCONY, set_item(three))
    assert error_of(effects, BALCONY) is StanzaErrorCondition.NOT_ACCEPTABLE
    assert [i.jid for i in world.get(BALCONY)[1]] == [ROMEO]


def test_roster_size_counts_jids_names_and_groups_in_utf8_bytes() -> None:
    world = World()
    # "romeo@example.com" (17) + "é" x 5 (10) + "g" (1) = 28 bytes
    item = "<item jid='romeo@example.com' name='ééééé'><group>g</group></item>"
    world.roster.max_roster_size = 27
    effects = world.router.route(BALCONY, set_item(item))
    assert error_of(effects, BALCONY) is StanzaErrorCondition.NOT_ALLOWED
    world.roster.max_roster_size = 28
    assert results(world.router.route(BALCONY, set_item(item)), BALCONY)[0].get("type") == "result"
    # replacing the item is measured without its old version
    assert results(world.router.route(BALCONY, set_item(item)), BALCONY)[0].get("type") == "result"


class CountingStorage(MemoryRosterStorage):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, user: JID) -> tuple[str, list[StoredItem]]:
        self.gets += 1
        return super().get(user)


def counting_world() -> tuple[CountingStorage, RosterService, CommittingRouter]:
    storage = CountingStorage()
    roster = RosterService(storage)
    router = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[roster],
    )
    router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    return storage, roster, router


def test_records_of_an_online_account_are_read_once_per_roster_version() -> None:
    """Presence broadcast reads the records for each stanza: they come from
    the cache until the roster version changes (RFC 6121 §2.6)."""
    storage, roster, router = counting_world()
    storage.put(JULIET, StoredItem(RosterItem(ROMEO, subscription=Subscription.FROM)))
    for _ in range(5):
        assert [r.jid for r in roster.records(JULIET)] == [ROMEO]
    assert storage.gets == 1
    storage.put(JULIET, StoredItem(RosterItem(NURSE)))  # e.g. written by another process
    assert [r.jid for r in roster.records(JULIET)] == [ROMEO, NURSE]
    assert storage.gets == 2
    router.unbind(BALCONY)  # the last session: the cache entry goes
    roster.records(JULIET)
    roster.records(JULIET)
    assert storage.gets == 4


def test_a_roster_set_moves_the_cached_records_to_the_new_version_without_a_read() -> None:
    """A set through the service changes the version (RFC 6121 §2.6) and the
    cached records with it: the next broadcast reads no roster from the store."""
    storage, roster, router = counting_world()
    storage.put(JULIET, StoredItem(RosterItem(ROMEO, subscription=Subscription.FROM)))
    assert [r.jid for r in roster.records(JULIET)] == [ROMEO]
    router.route(BALCONY, set_item("<item jid='nurse@example.com' name='Nurse'/>"))
    router.route(BALCONY, set_item("<item jid='romeo@example.com' name='Romeo'/>"))
    records = roster.records(JULIET)
    assert [(r.jid, r.item.name, r.item.subscription) for r in records] == [
        (ROMEO, "Romeo", Subscription.FROM),
        (NURSE, "Nurse", Subscription.NONE),
    ]
    router.route(BALCONY, set_item("<item jid='romeo@example.com' subscription='remove'/>"))
    assert [r.jid for r in roster.records(JULIET)] == [NURSE]
    assert storage.gets == 1
    assert roster.records(JULIET) == storage.get(JULIET)[1]


@given(
    st.lists(
        st.tuples(st.sampled_from(["romeo", "nurse", "tybalt", "mercutio"]), st.booleans()),
        max_size=12,
    )
)
def test_cached_records_always_match_the_store_after_any_sets_and_removes(
    steps: list[tuple[str, bool]],
) -> None:
    storage, roster, router = counting_world()
    roster.records(JULIET)  # cached from the start
    for who, remove in steps:
        item = f"<item jid='{who}@example.com'" + (" subscription='remove'/>" if remove else "/>")
        router.route(BALCONY, set_item(item))
        # the store read past the counter: only the service's reads are counted
        assert roster.records(JULIET) == MemoryRosterStorage.get(storage, JULIET)[1]
    assert storage.gets == 1


def test_account_removal_cancels_subscriptions_and_leaves_no_item_behind(world: World) -> None:
    """RFC 6121 §2.5.2 for every record of a removed account: the contacts get
    the cancelling notices and lose their item for it (pushed)."""
    world.storage.put(ROMEO, StoredItem(RosterItem(JULIET, subscription=Subscription.BOTH)))
    world.storage.put(JULIET, StoredItem(RosterItem(ROMEO, subscription=Subscription.BOTH)))
    world.storage.put(NURSE, StoredItem(RosterItem(ROMEO, "R")))  # no record on his side
    world.get(BALCONY)
    world.router.route(BALCONY, x("<presence/>"))
    world.router.unbind(ORCHARD)
    effects = world.router.end_sessions(ROMEO, StreamErrorCondition.NOT_AUTHORIZED, removed=True)
    # without a presence service, the router delivers the notices as they are
    notices = [
        (el.get("type"), el.get("from"))
        for el in only(effects, BALCONY)
        if el.tag == "{jabber:client}presence"
    ]
    assert notices == [("unsubscribe", "romeo@example.com"), ("unsubscribed", "romeo@example.com")]
    assert pushes(effects)[BALCONY][-1][1] == [RosterItem(ROMEO, subscription=Subscription.REMOVE)]
    assert world.storage.get(ROMEO)[1] == []
    assert world.storage.item(JULIET, ROMEO) is None
    assert world.storage.item(NURSE, ROMEO) is None
    assert world.storage.holders(ROMEO) == []


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "é", "a b"]), max_size=12))
def test_parse_roster_query_keeps_distinct_groups_and_refuses_duplicates(groups: list[str]) -> None:
    """RFC 6121 §2.3.3: duplicate groups are bad-request, otherwise every
    group is kept (checked with a set: linear in the number of groups)."""
    children = "".join(f"<group>{g}</group>" for g in groups)
    query = fromstring(
        f"<query xmlns='jabber:iq:roster'><item jid='romeo@example.com'>{children}</item></query>"
    )
    if len(set(groups)) < len(groups):
        with pytest.raises(InvalidRosterQuery) as info:
            parse_roster_query(query)
        assert info.value.condition is StanzaErrorCondition.BAD_REQUEST
    else:
        (item,) = parse_roster_query(query)[1]
        assert item.groups == frozenset(groups)
