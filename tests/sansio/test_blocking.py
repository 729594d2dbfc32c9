"""Tests for xmpp_sansio.server.blocking (XEP-0191 Blocking Command)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from committing import CommittingRouter
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.blocking import (
    BlockingService,
    MemoryBlockStorage,
    blocked_by,
)
from xmpp_sansio.server.carbons import CarbonsService
from xmpp_sansio.server.effects import Outcome, Persist
from xmpp_sansio.server.last import LastActivityService, MemoryLastActivityStorage
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineService
from xmpp_sansio.server.service import check_declaration
from xmpp_sansio.server.stages import Context, Stage
from xmpp_sansio.server.view import BoundSession
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x

C = "{jabber:client}"
B = "{urn:xmpp:blocking}"
ACCOUNTS = {"juliet", "romeo", "nurse", "tybalt"}
JULIET = JID.parse("juliet@example.com")
BALCONY, CHAMBER, GARDEN, ROMEO, NURSE = 1, 2, 3, 10, 20
SU = StanzaErrorCondition.SERVICE_UNAVAILABLE


def jid(text: str) -> JID:
    return JID.parse(text)


def online(router: Router, session: int, status: str | None = None) -> list[Effect]:
    inner = "" if status is None else f"<status>{status}</status>"
    return router.route(session, x(f"<presence>{inner}</presence>"))


def to_session(effects: Sequence[Effect], session: int) -> list[Element]:
    return [e.element for e in effects if isinstance(e, Deliver) and e.session == session]


def sessions(effects: Sequence[Effect]) -> list[int]:
    return sorted(e.session for e in effects if isinstance(e, Deliver))


def items(el: Element) -> list[str | None]:
    return [item.get("jid") for item in el.iter(B + "item")]


def error_of(el: Element) -> StanzaErrorCondition:
    assert el.get("type") == "error"
    return parse_error(el).condition


class Setup:
    def __init__(self, subscribed: set[tuple[str, str]] | None = None) -> None:
        self.subscribed = subscribed if subscribed is not None else set()
        self.storage = MemoryBlockStorage()
        self.service = BlockingService(
            self.storage,
            lambda contact, user: (str(contact), str(user)) in self.subscribed,
            max_items=5,
        )
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(0),
            account_exists=lambda local, domain: local in ACCOUNTS and domain == "example.com",
            services=[self.service],
        )
        r = self.router
        r.bind(BALCONY, jid("juliet@example.com/balcony"))
        r.bind(CHAMBER, jid("juliet@example.com/chamber"))
        r.bind(ROMEO, jid("romeo@example.com/orchard"))
        r.bind(NURSE, jid("nurse@example.com/kitchen"))
        for session in (BALCONY, CHAMBER, ROMEO, NURSE):
            online(r, session)

    def iq(self, session: int, payload: str, type_: str = "set", id_: str = "b1") -> list[Effect]:
        return self.router.route(session, x(f"<iq type='{type_}' id='{id_}'>{payload}</iq>"))

    def block(self, *jids: str, session: int = BALCONY) -> list[Effect]:
        inner = "".join(f"<item jid='{j}'/>" for j in jids)
        return self.iq(session, f"<block xmlns='urn:xmpp:blocking'>{inner}</block>")

    def unblock(self, *jids: str, session: int = BALCONY) -> list[Effect]:
        inner = "".join(f"<item jid='{j}'/>" for j in jids)
        return self.iq(session, f"<unblock xmlns='urn:xmpp:blocking'>{inner}</unblock>")

    def get(self, session: int = BALCONY) -> Element:
        effects = self.iq(session, "<blocklist xmlns='urn:xmpp:blocking'/>", "get", "g1")
        (result,) = to_session(effects, session)
        assert result.get("type") == "result" and result.get("id") == "g1"
        payload = result.find(B + "blocklist")
        assert payload is not None
        return payload


@pytest.fixture
def s() -> Setup:
    return Setup()


# ---------------------------------------------------------------------------
# the block list (XEP-0191 §3.2-§3.5)


def test_empty_blocklist_is_an_empty_element(s: Setup) -> None:
    payload = s.get()
    assert len(payload) == 0


def test_block_is_acknowledged_stored_and_listed(s: Setup) -> None:
    effects = s.block("romeo@example.com", "iago@shakespeare.lit")
    (result,) = to_session(effects, BALCONY)
    assert result.attrib == {"type": "result", "id": "b1", "to": "juliet@example.com/balcony"}
    assert len(result) == 0
    assert s.storage.blocklist(JULIET) == {jid("romeo@example.com"), jid("iago@shakespeare.lit")}
    assert items(s.get(CHAMBER)) == ["iago@shakespeare.lit", "romeo@example.com"]


def test_block_is_pushed_to_resources_that_requested_the_blocklist(s: Setup) -> None:
    s.router.bind(GARDEN, jid("juliet@example.com/garden"))
    s.get(BALCONY)
    s.get(CHAMBER)
    effects = s.block("romeo@example.com", session=GARDEN)
    assert sessions(effects) == [BALCONY, CHAMBER, GARDEN]
    for session, full in ((BALCONY, "balcony"), (CHAMBER, "chamber")):
        (push,) = to_session(effects, session)
        assert push.get("type") == "set"
        assert push.get("to") == f"juliet@example.com/{full}"
        assert push.get("from") is None
        assert push.find(B + "block") is not None
        assert items(push) == ["romeo@example.com"]
    (result,) = to_session(effects, GARDEN)
    assert result.get("type") == "result"
    pushes = [to_session(effects, s_)[0].get("id") for s_ in (BALCONY, CHAMBER)]
    assert len(set(pushes)) == 2


def test_unblock_is_pushed_and_removes_only_those_items(s: Setup) -> None:
    s.block("romeo@example.com", "nurse@example.com")
    s.get(CHAMBER)
    effects = s.unblock("romeo@example.com")
    (push,) = to_session(effects, CHAMBER)
    assert push.find(B + "unblock") is not None
    assert items(push) == ["romeo@example.com"]
    assert s.storage.blocklist(JULIET) == {jid("nurse@example.com")}


def test_unblock_all_empties_the_list_and_pushes_empty_unblock(s: Setup) -> None:
    s.block("romeo@example.com", "nurse@example.com", "evil.example")
    s.get(CHAMBER)
    effects = s.unblock()
    (push,) = to_session(effects, CHAMBER)
    unblock = push.find(B + "unblock")
    assert unblock is not None and len(unblock) == 0
    assert s.storage.blocklist(JULIET) == set()
    effects = s.router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"))
    assert sessions(effects) == [BALCONY, CHAMBER]


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        ("<block xmlns='urn:xmpp:blocking'/>", StanzaErrorCondition.BAD_REQUEST),
        ("<block xmlns='urn:xmpp:blocking'><item/></block>", StanzaErrorCondition.BAD_REQUEST),
        (
            "<block xmlns='urn:xmpp:blocking'><foo jid='a@b'/></block>",
            StanzaErrorCondition.BAD_REQUEST,
        ),
        (
            "<unblock xmlns='urn:xmpp:blocking'><item jid='a@b'/><item/></unblock>",
            StanzaErrorCondition.BAD_REQUEST,
        ),
        (
            "<block xmlns='urn:xmpp:blocking'><item jid='@bad'/></block>",
            StanzaErrorCondition.JID_MALFORMED,
        ),
        ("<blocklist xmlns='urn:xmpp:blocking'/>", StanzaErrorCondition.BAD_REQUEST),  # set
    ],
)
def test_malformed_requests_are_rejected(
    s: Setup, payload: str, condition: StanzaErrorCondition
) -> None:
    s.get(CHAMBER)
    effects = s.iq(BALCONY, payload)
    (reply,) = to_session(effects, BALCONY)
    assert error_of(reply) is condition
    assert to_session(effects, CHAMBER) == []
    assert s.storage.blocklist(JULIET) == set()


def test_get_of_block_is_bad_request(s: Setup) -> None:
    effects = s.iq(BALCONY, "<block xmlns='urn:xmpp:blocking'><item jid='a@b'/></block>", "get")
    assert error_of(to_session(effects, BALCONY)[0]) is StanzaErrorCondition.BAD_REQUEST


def test_blocklist_of_another_account_is_service_unavailable(s: Setup) -> None:
    effects = s.router.route(
        BALCONY,
        x(
            "<iq type='get' id='o' to='romeo@example.com'><blocklist xmlns='urn:xmpp:blocking'/></iq>"
        ),
    )
    assert error_of(to_session(effects, BALCONY)[0]) is SU


def test_own_bare_jid_and_domain_are_accepted_as_to(s: Setup) -> None:
    for to in ("juliet@example.com", "example.com"):
        effects = s.router.route(
            BALCONY,
            x(f"<iq type='get' id='o' to='{to}'><blocklist xmlns='urn:xmpp:blocking'/></iq>"),
        )
        (result,) = to_session(effects, BALCONY)
        assert result.get("type") == "result"
        assert result.get("from") == to


def test_blocklist_size_is_bounded(s: Setup) -> None:
    s.block("a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example")
    effects = s.block("f@x.example")
    assert error_of(to_session(effects, BALCONY)[0]) is StanzaErrorCondition.POLICY_VIOLATION
    # re-blocking existing items does not count
    assert to_session(s.block("a@x.example"), BALCONY)[0].get("type") == "result"


def test_interest_in_pushes_ends_with_the_session(s: Setup) -> None:
    s.get(CHAMBER)
    s.router.unbind(CHAMBER)
    s.router.bind(CHAMBER, jid("juliet@example.com/chamber2"))
    assert to_session(s.block("romeo@example.com"), CHAMBER) == []


# ---------------------------------------------------------------------------
# enforcement (XEP-0191 §3.3)


def test_blocked_contacts_messages_never_arrive_and_are_bounced(s: Setup) -> None:
    s.block("romeo@example.com")
    for to in ("juliet@example.com", "juliet@example.com/balcony"):
        effects = s.router.route(
            ROMEO, x(f"<message to='{to}' type='chat' id='m'><body>hi</body></message>")
        )
        assert to_session(effects, BALCONY) == [] and to_session(effects, CHAMBER) == []
        (bounce,) = to_session(effects, ROMEO)
        assert error_of(bounce) is SU
        assert bounce.get("from") == to


def test_blocked_contacts_error_messages_are_dropped(s: Setup) -> None:
    s.block("romeo@example.com")
    effects = s.router.route(
        ROMEO,
        x("<message to='juliet@example.com/balcony' type='error'><error type='cancel'/></message>"),
    )
    assert effects == []


@pytest.mark.parametrize(
    "presence",
    [
        "<presence to='juliet@example.com'/>",
        "<presence to='juliet@example.com/balcony' type='unavailable'/>",
        "<presence to='juliet@example.com' type='subscribe'/>",
        "<presence to='juliet@example.com' type='probe'/>",
    ],
)
def test_blocked_contacts_presence_is_dropped_silently(s: Setup, presence: str) -> None:
    s.block("romeo@example.com")
    assert s.router.route(ROMEO, x(presence)) == []


@pytest.mark.parametrize("to", ["juliet@example.com", "juliet@example.com/balcony"])
def test_blocked_contacts_iq_requests_get_service_unavailable(s: Setup, to: str) -> None:
    s.block("romeo@example.com")
    effects = s.router.route(
        ROMEO, x(f"<iq to='{to}' type='get' id='q'><query xmlns='jabber:iq:version'/></iq>")
    )
    (reply,) = effects
    assert isinstance(reply, Deliver) and reply.session == ROMEO
    assert error_of(reply.element) is SU
    assert s.router.route(ROMEO, x(f"<iq to='{to}' type='result' id='q'/>")) == []


@pytest.mark.parametrize(
    ("item", "sender", "blocked"),
    [
        ("romeo@example.com", "romeo@example.com/orchard", True),
        ("romeo@example.com/orchard", "romeo@example.com/orchard", True),
        ("romeo@example.com/garden", "romeo@example.com/orchard", False),
        ("example.com", "romeo@example.com/orchard", True),
        ("example.com", "example.com", True),
        ("example.com", "example.com/admin", True),
        ("example.com/admin", "example.com/admin", True),
        ("example.com/admin", "romeo@example.com/admin", False),
        ("example.com/admin", "example.com", False),
        ("other.example", "romeo@example.com/orchard", False),
        ("romeo@example.com", "example.com", False),
    ],
)
def test_jid_matching_follows_xep_0191_section_6(item: str, sender: str, blocked: bool) -> None:
    assert blocked_by({jid(item)}, jid(sender)) is blocked


def test_full_jid_item_only_blocks_that_resource(s: Setup) -> None:
    s.block("romeo@example.com/garden")
    effects = s.router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"))
    assert sessions(effects) == [BALCONY, CHAMBER]


def test_domain_block_never_blocks_own_resources(s: Setup) -> None:
    s.block("example.com")
    effects = s.router.route(CHAMBER, x("<message to='juliet@example.com/balcony' type='chat'/>"))
    assert sessions(effects) == [BALCONY]
    effects = s.router.route(NURSE, x("<message to='juliet@example.com' type='chat' id='n'/>"))
    assert sessions(effects) == [NURSE]


def test_outbound_message_and_iq_to_blocked_jid_get_not_acceptable_with_blocked(s: Setup) -> None:
    s.block("romeo@example.com")
    for stanza in (
        "<message to='romeo@example.com/orchard' type='chat' id='o'><body>hi</body></message>",
        "<iq to='romeo@example.com/orchard' type='get' id='o'><ping xmlns='urn:xmpp:ping'/></iq>",
    ):
        effects = s.router.route(CHAMBER, x(stanza))
        (reply,) = effects
        assert isinstance(reply, Deliver) and reply.session == CHAMBER
        el = reply.element
        assert error_of(el) is StanzaErrorCondition.NOT_ACCEPTABLE
        assert el.get("from") == "romeo@example.com/orchard"
        assert el.get("to") == "juliet@example.com/chamber"
        error = el.find(C + "error")
        assert error is not None and error.get("type") == "cancel"
        assert error.find("{urn:xmpp:blocking:errors}blocked") is not None


@pytest.mark.parametrize(
    "stanza",
    [
        "<presence to='romeo@example.com'/>",
        "<presence to='romeo@example.com' type='subscribed'/>",
        "<iq to='romeo@example.com/orchard' type='result' id='r'/>",
        "<message to='romeo@example.com' type='error'><error type='cancel'/></message>",
    ],
)
def test_outbound_presence_results_and_errors_to_blocked_jid_are_dropped(
    s: Setup, stanza: str
) -> None:
    s.block("romeo@example.com")
    assert s.router.route(BALCONY, x(stanza)) == []


def test_server_originated_stanzas_for_the_user_to_a_blocked_jid_are_dropped(s: Setup) -> None:
    s.block("romeo@example.com")
    # e.g. the presence service broadcasting juliet's presence to a subscriber
    pres = x("<presence from='juliet@example.com/balcony' to='romeo@example.com'/>")
    assert s.router.route_inbound(pres) == []


def test_after_unblock_stanzas_flow_again(s: Setup) -> None:
    s.block("romeo@example.com")
    s.unblock("romeo@example.com")
    effects = s.router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"))
    assert sessions(effects) == [BALCONY, CHAMBER]
    effects = s.router.route(BALCONY, x("<message to='romeo@example.com' type='chat'/>"))
    assert sessions(effects) == [ROMEO]


# ---------------------------------------------------------------------------
# presence on block and unblock


def test_block_sends_unavailable_from_each_available_resource_to_subscribed_contacts() -> None:
    s = Setup(subscribed={("romeo@example.com", "juliet@example.com")})
    s.router.bind(GARDEN, jid("juliet@example.com/garden"))  # connected, not available
    effects = s.block("romeo@example.com", "nurse@example.com")
    presences = [el for el in to_session(effects, ROMEO) if el.tag == C + "presence"]
    assert sorted((p.get("from"), p.get("type")) for p in presences) == [
        ("juliet@example.com/balcony", "unavailable"),
        ("juliet@example.com/chamber", "unavailable"),
    ]
    assert all(p.get("to") == "romeo@example.com" for p in presences)
    # nurse is not subscribed: no presence
    assert to_session(effects, NURSE) == []


def test_block_of_already_blocked_jid_sends_no_presence_again() -> None:
    s = Setup(subscribed={("romeo@example.com", "juliet@example.com")})
    s.block("romeo@example.com")
    assert to_session(s.block("romeo@example.com"), ROMEO) == []


def test_unblock_sends_current_presence_to_subscribed_contacts() -> None:
    s = Setup(subscribed={("romeo@example.com", "juliet@example.com")})
    online(s.router, BALCONY, "on the balcony")
    s.block("romeo@example.com")
    effects = s.unblock()
    presences = to_session(effects, ROMEO)
    assert sorted((p.get("from"), p.findtext(C + "status")) for p in presences) == [
        ("juliet@example.com/balcony", "on the balcony"),
        ("juliet@example.com/chamber", None),
    ]
    assert all(p.get("type") is None for p in presences)


def test_presence_to_remote_blocked_jid_does_not_bounce_to_the_user() -> None:
    s = Setup(subscribed={("romeo@montague.net", "juliet@example.com")})
    effects = s.block("romeo@montague.net")
    assert [el.get("type") for el in to_session(effects, BALCONY)] == ["result"]
    assert to_session(effects, CHAMBER) == []


def test_is_blocked_query_for_other_services(s: Setup) -> None:
    s.block("example.com")
    assert s.service.is_blocked(JULIET, jid("romeo@example.com/x"))
    assert not s.service.is_blocked(JULIET, jid("juliet@example.com/x"))
    assert not s.service.is_blocked(jid("romeo@example.com"), jid("nurse@example.com"))


def test_service_advertises_blocking() -> None:
    assert BlockingService.server_features == ("urn:xmpp:blocking",)


# ---------------------------------------------------------------------------
# with the other IM services, in the recommended order


def test_blocking_first_hides_the_user_from_other_services() -> None:
    blocks = MemoryBlockStorage()
    # Stored before the service starts: while it runs, only it writes.
    blocks.block(JULIET, [jid("romeo@example.com")])
    offline = MemoryOfflineStorage()
    last = MemoryLastActivityStorage()
    router = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=[
            BlockingService(blocks, lambda contact, user: True),
            LastActivityService(last, lambda requester, user: True, 0.0),
            CarbonsService(),
            OfflineService(offline),
        ],
        clock=lambda: 100.0,
    )
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    last.set(JULIET, 50.0, "away")
    # juliet is offline: romeo's message is bounced, not stored
    effects = router.route(
        ROMEO, x("<message to='juliet@example.com' type='chat'><body>hi</body></message>")
    )
    assert error_of(to_session(effects, ROMEO)[0]) is SU
    assert offline.count(JULIET) == 0
    # last activity is refused as if there were no such service
    effects = router.route(
        ROMEO,
        x("<iq to='juliet@example.com' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>"),
    )
    assert error_of(to_session(effects, ROMEO)[0]) is SU


# ---------------------------------------------------------------------------
# the filters' fast path (both parties block nobody: two set lookups, issue 24)


def chat(router: Router, session: int, to: str) -> list[Effect]:
    return router.route(session, x(f"<message to='{to}' type='chat'><body>hi</body></message>"))


def online_router(storage: MemoryBlockStorage, cls: type[Router] = Router, **bound: int) -> Router:
    """A router with only the blocking service, ``bound`` (user: session)
    online, one resource each."""
    router = cls(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=[BlockingService(storage, lambda contact, user: False)],
    )
    for user, session in bound.items():
        router.bind(session, jid(f"{user}@example.com/r"))
        online(router, session)
    return router


def test_a_block_made_after_messages_flowed_stops_the_next_message(s: Setup) -> None:
    """The lists read empty while messages flowed: the block still stops the
    next message both ways, and the unblock lets the one after through."""
    for _ in range(2):
        assert sessions(chat(s.router, ROMEO, "juliet@example.com")) == [BALCONY, CHAMBER]
        assert sessions(chat(s.router, BALCONY, "romeo@example.com")) == [ROMEO]
    s.block("romeo@example.com")
    (bounce,) = to_session(chat(s.router, ROMEO, "juliet@example.com"), ROMEO)
    assert error_of(bounce) is SU
    (refused,) = to_session(chat(s.router, BALCONY, "romeo@example.com"), BALCONY)
    assert error_of(refused) is StanzaErrorCondition.NOT_ACCEPTABLE
    s.unblock("romeo@example.com")
    assert sessions(chat(s.router, ROMEO, "juliet@example.com")) == [BALCONY, CHAMBER]
    assert sessions(chat(s.router, BALCONY, "romeo@example.com")) == [ROMEO]


def test_a_pending_block_stops_messages_and_an_abandoned_one_does_not() -> None:
    """A block not yet committed stops the next message (the overlay); once
    its call is abandoned, messages flow again, and a later block still counts."""
    storage = MemoryBlockStorage()
    router = online_router(storage, juliet=BALCONY, romeo=ROMEO)
    block = "<block xmlns='urn:xmpp:blocking'><item jid='romeo@example.com'/></block>"
    assert sessions(chat(router, ROMEO, "juliet@example.com")) == [BALCONY]
    (persist,) = [
        e
        for e in router.route(BALCONY, x(f"<iq type='set' id='b'>{block}</iq>"))
        if isinstance(e, Persist)
    ]
    (bounce,) = to_session(chat(router, ROMEO, "juliet@example.com"), ROMEO)
    assert error_of(bounce) is SU
    router.abandoned([])  # the call dropped: its write is forgotten
    assert sessions(chat(router, ROMEO, "juliet@example.com")) == [BALCONY]
    assert sessions(chat(router, BALCONY, "romeo@example.com")) == [ROMEO]
    (persist,) = [
        e
        for e in router.route(BALCONY, x(f"<iq type='set' id='c'>{block}</iq>"))
        if isinstance(e, Persist)
    ]
    storage.apply([persist.op])
    router.persisted([persist])
    (bounce,) = to_session(chat(router, ROMEO, "juliet@example.com"), ROMEO)
    assert error_of(bounce) is SU
    (refused,) = to_session(chat(router, BALCONY, "romeo@example.com"), BALCONY)
    assert error_of(refused) is StanzaErrorCondition.NOT_ACCEPTABLE


def test_a_list_stored_before_the_first_read_blocks_the_first_message() -> None:
    storage = MemoryBlockStorage()
    storage.block(JULIET, [jid("romeo@example.com")])
    router = online_router(storage, CommittingRouter, juliet=BALCONY, romeo=ROMEO, nurse=NURSE)
    assert sessions(chat(router, NURSE, "juliet@example.com")) == [BALCONY]
    (bounce,) = to_session(chat(router, ROMEO, "juliet@example.com"), ROMEO)
    assert error_of(bounce) is SU


USERS = ("juliet", "romeo", "nurse")
_OPS = st.one_of(
    st.tuples(
        st.sampled_from(("block", "unblock")), st.sampled_from(USERS), st.sampled_from(USERS)
    ),
    st.tuples(st.just("chat"), st.sampled_from(USERS), st.sampled_from(USERS)),
    st.tuples(st.sampled_from(("commit", "abandon")), st.just(""), st.just("")),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(USERS), st.sampled_from(USERS)), max_size=2),
    st.lists(_OPS, max_size=30),
)
def test_messages_are_stopped_exactly_when_a_list_pending_or_committed_says_so(
    stored: list[tuple[str, str]], ops: list[tuple[str, str, str]]
) -> None:
    """Any interleaving of blocks, unblocks, commits, abandoned calls and
    messages, from lists stored before the start: a message goes through
    exactly when neither party's list (the committed one with the pending
    writes on top) names the other; and the service is idle (its filters
    not called) exactly when no list is stored and no write is pending."""
    storage = MemoryBlockStorage()
    committed: dict[str, set[str]] = {u: set() for u in USERS}
    for owner, target in stored:
        storage.block(jid(f"{owner}@example.com"), [jid(f"{target}@example.com")])
        committed[owner].add(target)
    ids = {user: n for n, user in enumerate(USERS, 1)}
    router = online_router(storage, **ids)
    (service,) = router.services
    held: list[Persist] = []
    pending: list[tuple[str, str, str]] = []
    for op, user, other in ops:
        if op in ("block", "unblock"):
            item = f"<item jid='{other}@example.com'/>"
            payload = f"<{op} xmlns='urn:xmpp:blocking'>{item}</{op}>"
            effects = router.route(ids[user], x(f"<iq type='set' id='i'>{payload}</iq>"))
            held.extend(e for e in effects if isinstance(e, Persist))
            if user != other or op == "unblock":
                pending.append((op, user, other))
        elif op == "commit":
            storage.apply([p.op for p in held])
            router.persisted(held)
            for change, owner, target in pending:
                (committed[owner].add if change == "block" else committed[owner].discard)(target)
            held, pending = [], []
        elif op == "abandon":
            router.abandoned([])
            held, pending = [], []
        else:
            lists = {u: set(v) for u, v in committed.items()}
            for change, owner, target in pending:
                (lists[owner].add if change == "block" else lists[owner].discard)(target)
            blocked = user != other and (other in lists[user] or user in lists[other])
            effects = chat(router, ids[user], f"{other}@example.com")
            if user != other:
                assert (ids[other] in sessions(effects)) is not blocked
        assert service.idle is (not held and not storage.blocking_users())
        assert (service in router._inbound_messages) is not service.idle


class CountingBlocking(BlockingService):
    """Counts its filter calls."""

    calls = 0

    def filter_inbound(
        self, ctx: Context, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        self.calls += 1
        return super().filter_inbound(ctx, element, sender, recipient)

    def filter_outbound(
        self, ctx: Context, session: BoundSession, element: Element, to: JID | None
    ) -> list[Outcome] | None:
        self.calls += 1
        return super().filter_outbound(ctx, session, element, to)


class OpaqueStorage(MemoryBlockStorage):
    """A storage that cannot say who has a list (no ``blocking_users``)."""

    def __getattribute__(self, name: str) -> Any:
        if name == "blocking_users":
            raise AttributeError(name)
        return super().__getattribute__(name)


def counting_router(storage: MemoryBlockStorage) -> tuple[CommittingRouter, CountingBlocking]:
    service = CountingBlocking(storage, lambda contact, user: True)
    router = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=[service],
    )
    for user, session in (("juliet", BALCONY), ("romeo", ROMEO)):
        router.bind(session, jid(f"{user}@example.com/r"))
        online(router, session)
    return router, service


def test_while_nobody_blocks_the_filters_are_not_called() -> None:
    """Idle (XEP-0191 lists all empty): no filter call a message; the block
    applies from the very next message and presence, and once the list is
    empty again (committed) the filters leave the path again."""
    router, service = counting_router(MemoryBlockStorage())
    block = "<block xmlns='urn:xmpp:blocking'><item jid='romeo@example.com'/></block>"
    unblock = "<unblock xmlns='urn:xmpp:blocking'><item jid='romeo@example.com'/></unblock>"
    assert service.idle
    assert sessions(chat(router, ROMEO, "juliet@example.com")) == [BALCONY]
    assert sessions(chat(router, BALCONY, "romeo@example.com")) == [ROMEO]
    assert service.calls == 0
    router.route(BALCONY, x(f"<iq type='set' id='b'>{block}</iq>"))
    assert not service.idle
    (bounce,) = to_session(chat(router, ROMEO, "juliet@example.com"), ROMEO)
    assert error_of(bounce) is SU
    assert to_session(online(router, ROMEO), BALCONY) == []  # §3.3: no presence either
    assert service.calls > 0
    router.route(BALCONY, x(f"<iq type='set' id='u'>{unblock}</iq>"))
    assert service.idle
    calls = service.calls
    assert sessions(chat(router, ROMEO, "juliet@example.com")) == [BALCONY]
    assert service.calls == calls


def test_a_storage_that_cannot_tell_keeps_the_filters() -> None:
    """Without ``blocking_users`` the service never claims idleness: a list
    stored before the start (unread yet) still stops the first message."""
    storage = OpaqueStorage()
    storage.block(JULIET, [jid("romeo@example.com")])
    router, service = counting_router(storage)
    assert not service.idle
    (bounce,) = to_session(chat(router, ROMEO, "juliet@example.com"), ROMEO)
    assert error_of(bounce) is SU
    router.route(BALCONY, x("<iq type='set' id='u'><unblock xmlns='urn:xmpp:blocking'/></iq>"))
    assert not service.idle and service.calls > 0


def test_idle_stages_must_be_declared_filters() -> None:
    class Wrong(BlockingService):
        idle_stages = frozenset({Stage.TIMER})

    with pytest.raises(TypeError, match="idle_stages"):
        check_declaration(Wrong(MemoryBlockStorage(), lambda contact, user: True))
