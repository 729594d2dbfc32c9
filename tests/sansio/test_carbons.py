"""Tests for xmpp_sansio.server.carbons (XEP-0280 Message Carbons)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar
from xml.etree.ElementTree import Element

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.carbons import CarbonsService, carbons_eligible, forwarded_copy
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.writer import serialize

C = "{jabber:client}"
CARBONS = "{urn:xmpp:carbons:2}"
FORWARD = "{urn:xmpp:forward:0}"
ACCOUNTS = {"juliet", "romeo"}
# romeo has three sessions; juliet one
GARDEN, HOME, PHONE, JULIET = 1, 2, 3, 10


def to_session(effects: Sequence[Effect], session: int) -> list[Element]:
    return [e.element for e in effects if isinstance(e, Deliver) and e.session == session]


def carbon(el: Element, direction: str) -> Element:
    """The forwarded original inside a carbon, checking the wrapper."""
    container = el.find(CARBONS + direction)
    assert container is not None, f"no <{direction}/> in {serialize(el)!r}"
    forwarded = container.find(FORWARD + "forwarded")
    assert forwarded is not None
    (original,) = list(forwarded)
    return original


def carbons_router() -> tuple[CarbonsService, Router]:
    """A router for example.com with carbons as its only service."""
    service = CarbonsService()
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=[service],
    )
    return service, router


class Setup:
    def __init__(self) -> None:
        self.service, self.router = carbons_router()
        r = self.router
        r.bind(GARDEN, JID.parse("romeo@example.com/garden"))
        r.bind(HOME, JID.parse("romeo@example.com/home"))
        r.bind(PHONE, JID.parse("romeo@example.com/phone"))
        r.bind(JULIET, JID.parse("juliet@example.com/balcony"))
        for session, prio in ((GARDEN, 1), (HOME, 0), (PHONE, -1), (JULIET, 0)):
            r.route(session, x(f"<presence><priority>{prio}</priority></presence>"))

    def enable(self, session: int, what: str = "enable", to: str | None = None) -> list[Effect]:
        to_attr = "" if to is None else f" to='{to}'"
        return self.router.route(
            session, x(f"<iq type='set' id='c'{to_attr}><{what} xmlns='urn:xmpp:carbons:2'/></iq>")
        )


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_enable_and_disable_are_acknowledged_and_idempotent(s: Setup) -> None:
    for what in ("enable", "enable", "disable", "disable"):
        (result,) = to_session(s.enable(HOME, what), HOME)
        assert result.attrib == {"type": "result", "id": "c", "to": "romeo@example.com/home"}
    assert not s.service.enabled(HOME)


def test_enable_to_own_bare_jid_is_allowed(s: Setup) -> None:
    (result,) = to_session(s.enable(HOME, to="romeo@example.com"), HOME)
    assert result.get("type") == "result" and result.get("from") == "romeo@example.com"
    assert s.service.enabled(HOME)


def test_enable_for_another_account_is_not_allowed(s: Setup) -> None:
    (error,) = to_session(s.enable(JULIET, to="romeo@example.com"), JULIET)
    assert parse_error(error).condition is StanzaErrorCondition.NOT_ALLOWED
    assert not s.service.enabled(JULIET)


def test_enable_as_get_is_bad_request(s: Setup) -> None:
    effects = s.router.route(
        HOME, x("<iq type='get' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
    )
    assert parse_error(to_session(effects, HOME)[0]).condition is StanzaErrorCondition.BAD_REQUEST


def test_inbound_message_is_carbon_copied_to_other_enabled_resources(s: Setup) -> None:
    s.enable(HOME)
    s.enable(PHONE)
    msg = "<message to='romeo@example.com/garden' type='chat' id='m'><body>What man art thou</body><thread>t1</thread></message>"
    effects = s.router.route(JULIET, x(msg))
    assert [el.findtext(C + "body") for el in to_session(effects, GARDEN)] == ["What man art thou"]
    for session, resource in ((HOME, "home"), (PHONE, "phone")):
        (copy,) = to_session(effects, session)
        assert copy.tag == C + "message"
        assert copy.attrib == {
            "from": "romeo@example.com",
            "to": f"romeo@example.com/{resource}",
            "type": "chat",
        }
        original = carbon(copy, "received")
        assert original.tag == C + "message"
        assert original.get("from") == "juliet@example.com/balcony"
        assert original.get("to") == "romeo@example.com/garden"
        assert original.findtext(C + "thread") == "t1"


def test_recipients_of_the_original_get_no_carbon(s: Setup) -> None:
    for session in (GARDEN, HOME, PHONE):
        s.enable(session)
    # to the bare JID: delivered to garden (priority 1) only
    effects = s.router.route(
        JULIET, x("<message to='romeo@example.com' type='chat'><body>hi</body></message>")
    )
    (original,) = to_session(effects, GARDEN)
    assert original.find(CARBONS + "received") is None
    for session in (HOME, PHONE):
        (copy,) = to_session(effects, session)
        assert carbon(copy, "received").get("to") == "romeo@example.com"


def test_sessions_without_carbons_get_nothing(s: Setup) -> None:
    effects = s.router.route(
        JULIET, x("<message to='romeo@example.com/garden' type='chat'><body>hi</body></message>")
    )
    assert to_session(effects, HOME) == [] and to_session(effects, PHONE) == []


def test_outbound_message_is_copied_as_sent_to_other_enabled_resources(s: Setup) -> None:
    s.enable(HOME)
    s.enable(PHONE)
    # garden has not enabled carbons: its messages are still copied (§8)
    msg = "<message to='juliet@example.com/balcony' type='chat' id='r'><body>Neither, fair saint</body></message>"
    effects = s.router.route(GARDEN, x(msg))
    assert len(to_session(effects, JULIET)) == 1
    assert to_session(effects, GARDEN) == []
    for session, resource in ((HOME, "home"), (PHONE, "phone")):
        (copy,) = to_session(effects, session)
        assert copy.get("from") == "romeo@example.com"
        assert copy.get("to") == f"romeo@example.com/{resource}"
        original = carbon(copy, "sent")
        assert original.get("from") == "romeo@example.com/garden"
        assert original.get("to") == "juliet@example.com/balcony"
        assert original.findtext(C + "body") == "Neither, fair saint"


def test_sending_enabled_resource_gets_no_copy_of_its_own_message(s: Setup) -> None:
    s.enable(GARDEN)
    s.enable(HOME)
    effects = s.router.route(
        GARDEN, x("<message to='juliet@example.com' type='chat'><body>x</body></message>")
    )
    assert to_session(effects, GARDEN) == []
    assert len(to_session(effects, HOME)) == 1


def test_message_between_local_users_gives_both_sides_their_carbons(s: Setup) -> None:
    s.enable(HOME)
    s.router.bind(11, JID.parse("juliet@example.com/chamber"))
    s.enable(11)
    effects = s.router.route(
        JULIET, x("<message to='romeo@example.com/garden' type='chat'><body>x</body></message>")
    )
    carbon(to_session(effects, HOME)[0], "received")
    carbon(to_session(effects, 11)[0], "sent")


@pytest.mark.parametrize(
    ("stanza", "eligible"),
    [
        ("<message type='chat'/>", True),
        ("<message type='chat'><body>x</body></message>", True),
        ("<message type='normal'><body>x</body></message>", True),
        ("<message><body>x</body></message>", True),
        ("<message type='normal'/>", False),
        ("<message><subject>s</subject></message>", False),
        ("<message type='headline'><body>news</body></message>", False),
        ("<message type='groupchat'><body>x</body></message>", False),
        ("<message type='error'><body>x</body></message>", False),
        ("<message><received xmlns='urn:xmpp:receipts' id='1'/></message>", True),
        ("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/></message>", True),
        ("<message><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", True),
        ("<message><x xmlns='jabber:x:conference' jid='room@muc'/></message>", True),
        (
            "<message><x xmlns='http://jabber.org/protocol/muc#user'>"
            "<invite from='a@b'/></x></message>",
            True,
        ),
        (
            "<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>",
            False,
        ),
        ("<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>", False),
        (
            "<message type='chat'><received xmlns='urn:xmpp:carbons:2'>"
            "<forwarded xmlns='urn:xmpp:forward:0'/></received></message>",
            False,
        ),
        ("<message type='weird'><body>x</body></message>", True),  # unknown type is normal
    ],
)
def test_eligibility_follows_xep_0280_section_6_1(stanza: str, eligible: bool) -> None:
    assert carbons_eligible(x(stanza), inbound=True) is eligible
    assert carbons_eligible(x(stanza), inbound=False) is eligible


def test_private_message_from_muc_occupant_is_not_copied_but_one_to_it_is() -> None:
    pm = x(
        "<message type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>"
    )
    assert carbons_eligible(pm, inbound=True) is False
    assert carbons_eligible(pm, inbound=False) is True


def test_private_message_is_not_copied_either_way(s: Setup) -> None:
    s.enable(HOME)
    msg = "<message to='{}' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>"
    assert to_session(s.router.route(JULIET, x(msg.format("romeo@example.com/garden"))), HOME) == []
    assert to_session(s.router.route(GARDEN, x(msg.format("juliet@example.com"))), HOME) == []


def test_groupchat_is_not_copied(s: Setup) -> None:
    s.enable(HOME)
    effects = s.router.route(
        JULIET,
        x("<message to='romeo@example.com/garden' type='groupchat'><body>x</body></message>"),
    )
    assert to_session(effects, GARDEN) and to_session(effects, HOME) == []


def test_wrapper_keeps_a_missing_type_missing() -> None:
    copy = forwarded_copy(
        x("<message><body>x</body></message>"),
        "sent",
        JID.parse("romeo@example.com/garden"),
        JID.parse("romeo@example.com/home"),
    )
    assert copy.attrib == {"from": "romeo@example.com", "to": "romeo@example.com/home"}
    assert serialize(copy) == (
        b'<message from="romeo@example.com" to="romeo@example.com/home">'
        b'<sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">'
        b'<message xmlns="jabber:client"><body>x</body></message>'
        b"</forwarded></sent></message>"
    )
    with pytest.raises(ValueError):
        forwarded_copy(x("<message/>"), "copied", JID.parse("a@b"), JID.parse("a@b/c"))


def test_carbons_state_is_forgotten_when_the_session_ends(s: Setup) -> None:
    s.enable(HOME)
    s.router.unbind(HOME)
    assert not s.service.enabled(HOME)
    s.router.bind(HOME, JID.parse("romeo@example.com/home2"))
    effects = s.router.route(
        JULIET, x("<message to='romeo@example.com/garden' type='chat'><body>x</body></message>")
    )
    assert to_session(effects, HOME) == []


def test_service_advertises_carbons() -> None:
    assert CarbonsService.server_features == ("urn:xmpp:carbons:2",)


def test_carbons_enabled_after_messages_flowed_copy_the_next_message(s: Setup) -> None:
    """Nobody enabled carbons while messages flowed (the observers' fast
    path); an iq enable, then Bind 2's inline enable, each get the next
    message's copy; once every enabled session disabled or ended, none."""

    def to_home() -> list[Effect]:
        msg = "<message to='romeo@example.com/home' type='chat'><body>hi</body></message>"
        return s.router.route(JULIET, x(msg))

    for _ in range(2):
        assert [e.session for e in to_home() if isinstance(e, Deliver)] == [HOME]
    s.enable(GARDEN)
    (copy,) = to_session(to_home(), GARDEN)
    assert carbon(copy, "received").get("from") == "juliet@example.com/balcony"
    s.service.enable(PHONE)  # XEP-0386 §3.2, outside the router
    assert sorted(e.session for e in to_home() if isinstance(e, Deliver)) == [GARDEN, HOME, PHONE]
    s.enable(GARDEN, "disable")
    s.router.unbind(PHONE)
    assert [e.session for e in to_home() if isinstance(e, Deliver)] == [HOME]


class CarbonsMachine(RuleBasedStateMachine):
    """Any interleaving of enables (iq or Bind 2 inline), disables, session
    ends and binds, and messages both ways: each message's carbons go to
    exactly the other bound sessions that enabled carbons, whether the
    router's message observers were idle (nobody enabled) or not before."""

    RESOURCES: ClassVar[dict[int, str]] = {GARDEN: "garden", HOME: "home", PHONE: "phone"}

    def __init__(self) -> None:
        super().__init__()
        self.service, self.router = carbons_router()
        self.router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
        self.bound: set[int] = set()
        self.enabled: set[int] = set()

    @rule(session=st.sampled_from(sorted(RESOURCES)))
    def bind(self, session: int) -> None:
        if session not in self.bound:
            self.router.bind(session, JID.parse(f"romeo@example.com/{self.RESOURCES[session]}"))
            self.bound.add(session)

    @rule(session=st.sampled_from(sorted(RESOURCES)))
    def unbind(self, session: int) -> None:
        self.router.unbind(session)
        self.bound.discard(session)
        self.enabled.discard(session)

    @rule(session=st.sampled_from(sorted(RESOURCES)), what=st.sampled_from(["enable", "disable"]))
    def by_iq(self, session: int, what: str) -> None:
        if session in self.bound:
            iq = f"<iq type='set' id='c'><{what} xmlns='urn:xmpp:carbons:2'/></iq>"
            (result,) = to_session(self.router.route(session, x(iq)), session)
            assert result.get("type") == "result"
            (self.enabled.add if what == "enable" else self.enabled.discard)(session)

    @rule(session=st.sampled_from(sorted(RESOURCES)))
    def inline(self, session: int) -> None:
        if session in self.bound:
            self.service.enable(session)
            self.enabled.add(session)

    @rule(session=st.sampled_from(sorted(RESOURCES)))
    def received(self, session: int) -> None:
        if session in self.bound:
            to = f"romeo@example.com/{self.RESOURCES[session]}"
            msg = x(f"<message to='{to}' type='chat'><body>in</body></message>")
            effects = self.router.route(JULIET, msg)
            got = {e.session for e in effects if isinstance(e, Deliver)}
            assert got == {session} | (self.enabled - {session})
            for other in self.enabled - {session}:
                (copy,) = to_session(effects, other)
                assert carbon(copy, "received").get("to") == to

    @rule(session=st.sampled_from(sorted(RESOURCES)))
    def sent(self, session: int) -> None:
        if session in self.bound:
            msg = x(
                "<message to='juliet@example.com/balcony' type='chat'><body>out</body></message>"
            )
            effects = self.router.route(session, msg)
            got = {e.session for e in effects if isinstance(e, Deliver)}
            assert got == {JULIET} | (self.enabled - {session})
            for other in self.enabled - {session}:
                (copy,) = to_session(effects, other)
                assert carbon(copy, "sent").findtext(C + "body") == "out"

    @invariant()
    def idle_exactly_when_nobody_enabled(self) -> None:
        assert self.service.idle == (not self.enabled)


CarbonsMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_carbons_state_machine = CarbonsMachine.TestCase
