"""Tests for xmpp_sansio.server.last (XEP-0012 Last Activity)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element

import pytest
from committing import CommittingRouter

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.last import (
    LastActivityService,
    LastLogout,
    MemoryLastActivityStorage,
)
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x

LAST = "{jabber:iq:last}query"
ACCOUNTS = {"juliet", "romeo", "tybalt"}
JULIET = JID.parse("juliet@example.com")
STARTED = 1_000_000.0
BALCONY, CHAMBER, ROMEO, TYBALT = 1, 2, 10, 20


class Clock:
    def __init__(self) -> None:
        self.now = STARTED

    def __call__(self) -> float:
        return self.now


def only(effects: Sequence[Effect], session: int) -> Element:
    assert len(effects) == 1, effects
    effect = effects[0]
    assert isinstance(effect, Deliver) and effect.session == session
    return effect.element


def query(router: Router, session: int, to: str | None) -> Element:
    to_attr = "" if to is None else f" to='{to}'"
    return only(
        router.route(
            session, x(f"<iq type='get' id='l'{to_attr}><query xmlns='jabber:iq:last'/></iq>")
        ),
        session,
    )


def seconds(reply: Element) -> tuple[str | None, str | None]:
    assert reply.get("type") == "result", reply.attrib
    payload = reply.find(LAST)
    assert payload is not None
    return payload.get("seconds"), payload.text


def condition(reply: Element) -> StanzaErrorCondition:
    assert reply.get("type") == "error"
    return parse_error(reply).condition


class Setup:
    def __init__(self) -> None:
        self.clock = Clock()
        self.storage = MemoryLastActivityStorage()
        # romeo is subscribed to juliet's presence; tybalt is not
        self.service = LastActivityService(
            self.storage,
            lambda requester, user: (
                (str(requester), str(user)) == ("romeo@example.com", "juliet@example.com")
            ),
            STARTED,
        )
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(0),
            account_exists=lambda local, domain: local in ACCOUNTS,
            services=[self.service],
            clock=self.clock,
        )
        self.router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
        self.router.bind(TYBALT, JID.parse("tybalt@example.com/street"))


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_query_to_server_gives_uptime(s: Setup) -> None:
    s.clock.now = STARTED + 123456.7
    reply = query(s.router, ROMEO, "example.com")
    assert seconds(reply) == ("123456", None)
    assert reply.get("from") == "example.com"
    assert reply.get("to") == "romeo@example.com/orchard"


def test_offline_user_query_gives_seconds_since_logout_and_status(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    s.router.route(BALCONY, x("<presence/>"))
    s.clock.now = STARTED + 100
    s.router.route(
        BALCONY, x("<presence type='unavailable'><status>Heading Home</status></presence>")
    )
    s.router.unbind(BALCONY)
    assert s.storage.get(JULIET) == LastLogout(STARTED + 100, "Heading Home")
    s.clock.now = STARTED + 1003
    reply = query(s.router, ROMEO, "juliet@example.com")
    assert seconds(reply) == ("903", "Heading Home")
    assert reply.get("from") == "juliet@example.com"


def test_logout_while_available_records_no_status(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    s.router.route(BALCONY, x("<presence type='unavailable'><status>brb</status></presence>"))
    s.router.route(BALCONY, x("<presence/>"))
    s.clock.now = STARTED + 5
    s.router.unbind(BALCONY)  # the router broadcasts unavailable without status
    assert s.storage.get(JULIET) == LastLogout(STARTED + 5, None)
    assert seconds(query(s.router, ROMEO, "juliet@example.com")) == ("0", None)


def test_only_the_last_session_ending_is_a_logout(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    s.router.bind(CHAMBER, JID.parse("juliet@example.com/chamber"))
    s.router.unbind(BALCONY)
    assert s.storage.get(JULIET) is None
    s.clock.now = STARTED + 7
    s.router.unbind(CHAMBER)
    assert s.storage.get(JULIET) == LastLogout(STARTED + 7)


@pytest.mark.parametrize("available", [False, True])
def test_connected_user_query_gives_zero(s: Setup, available: bool) -> None:
    s.storage.set(JULIET, STARTED - 50, "old")
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    if available:
        s.router.route(BALCONY, x("<presence/>"))
    reply = query(s.router, ROMEO, "juliet@example.com")
    assert seconds(reply) == ("0", None)


def test_unsubscribed_requester_gets_service_unavailable_like_for_a_missing_account(
    s: Setup,
) -> None:
    s.storage.set(JULIET, STARTED, "secret")
    reply = query(s.router, TYBALT, "juliet@example.com")
    unavailable = StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert condition(reply) is unavailable
    assert condition(query(s.router, TYBALT, "nobody@example.com")) is unavailable
    # even when the user is online: no presence leak
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    assert condition(query(s.router, TYBALT, "juliet@example.com")) is unavailable


def test_user_may_query_own_account(s: Setup) -> None:
    s.storage.set(JID.parse("tybalt@example.com"), STARTED, None)
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    assert seconds(query(s.router, BALCONY, "juliet@example.com")) == ("0", None)
    # no 'to': the sender's own account (RFC 6120 §10.3.3)
    reply = query(s.router, BALCONY, None)
    assert seconds(reply) == ("0", None)
    assert reply.get("from") is None


def test_never_logged_out_account_is_service_unavailable(s: Setup) -> None:
    reply = query(s.router, ROMEO, "juliet@example.com")
    assert condition(reply) is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_clock_going_backwards_never_gives_negative_seconds(s: Setup) -> None:
    s.storage.set(JULIET, STARTED + 10, None)
    assert seconds(query(s.router, ROMEO, "juliet@example.com")) == ("0", None)


def test_query_to_full_jid_from_unauthorised_requester_is_service_unavailable(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    reply = query(s.router, TYBALT, "juliet@example.com/balcony")
    assert condition(reply) is StanzaErrorCondition.SERVICE_UNAVAILABLE
    # an authorised one is delivered to the resource (XEP-0012 §4)
    effects = s.router.route(
        ROMEO,
        x(
            "<iq type='get' id='l' to='juliet@example.com/balcony'><query xmlns='jabber:iq:last'/></iq>"
        ),
    )
    assert only(effects, BALCONY).get("from") == "romeo@example.com/orchard"


def test_other_iqs_to_full_jid_are_not_affected(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = s.router.route(
        TYBALT,
        x(
            "<iq type='get' id='v' to='juliet@example.com/balcony'><query xmlns='jabber:iq:version'/></iq>"
        ),
    )
    assert only(effects, BALCONY).get("id") == "v"


def test_set_is_not_handled(s: Setup) -> None:
    reply = only(
        s.router.route(ROMEO, x("<iq type='set' id='l'><query xmlns='jabber:iq:last'/></iq>")),
        ROMEO,
    )
    assert condition(reply) is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_service_advertises_last_activity_for_server_and_accounts() -> None:
    assert LastActivityService.server_features == ("jabber:iq:last",)
    assert LastActivityService.account_features == ("jabber:iq:last",)
