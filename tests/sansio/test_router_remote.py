"""The router's remote route (xmpp_sansio/server/remote.py): stanzas for other
domains become RouteRemote effects with federation on, and stanzas from an
s2s stream are checked and delivered by the local rules (RFC 6120 §10.4, §13)."""

from __future__ import annotations

import pytest

from xmpp_sansio.errors import LocalProtocolError, StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.effects import RouteRemote
from xmpp_sansio.server.remote import ping_answered, server_ping, without_payload
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x

ACCOUNTS = {("juliet", "example.com")}
BALCONY = 1


def router(federation: bool = True) -> Router:
    r = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        federation=federation,
    )
    r.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    r.route(BALCONY, x("<presence/>"))
    return r


def test_a_stanza_for_another_domain_takes_the_remote_route_with_its_from_stamped() -> None:
    effects = router().route(
        BALCONY, x("<message to='romeo@montague.example' type='chat'><body>hi</body></message>")
    )
    (effect,) = effects
    assert isinstance(effect, RouteRemote)
    assert effect.domain == "montague.example"
    assert effect.element.get("from") == "juliet@example.com/balcony"
    assert effect.element.findtext("{jabber:client}body") == "hi"


def test_without_federation_the_remote_route_still_bounces() -> None:
    (effect,) = router(federation=False).route(BALCONY, x("<message to='romeo@montague.example'/>"))
    assert isinstance(effect, Deliver)
    error = parse_error(effect.element)
    assert error is not None and error.condition is StanzaErrorCondition.REMOTE_SERVER_NOT_FOUND


def test_a_stanza_the_remote_route_could_not_take_bounces_without_its_payload() -> None:
    """RFC 6120 §8.3.1: the original XML in an error is a courtesy; a link's
    queue bounces at once, so its stanzas come back without their payloads."""
    (routed,) = router().route(
        BALCONY,
        x("<message to='romeo@montague.example' type='chat' id='m1'><body>hi</body></message>"),
    )
    assert isinstance(routed, RouteRemote)
    bare = without_payload(routed.element)
    assert list(bare) == [] and bare.attrib == routed.element.attrib
    assert routed.element.findtext("{jabber:client}body") == "hi"  # the original is untouched
    (effect,) = router().bounce(bare, StanzaErrorCondition.REMOTE_SERVER_TIMEOUT)
    assert isinstance(effect, Deliver) and effect.session == BALCONY
    assert effect.element.get("id") == "m1" and effect.element.get("type") == "error"
    assert effect.element.find("{jabber:client}body") is None
    error = parse_error(effect.element)
    assert error is not None and error.condition is StanzaErrorCondition.REMOTE_SERVER_TIMEOUT


def test_a_stanza_from_a_remote_server_is_delivered_by_the_local_rules() -> None:
    (effect,) = router().route_from_remote(
        x(
            "<message from='romeo@montague.example/orchard' to='juliet@example.com'"
            " type='chat'><body>hello</body></message>"
        ),
        "montague.example",
    )
    assert isinstance(effect, Deliver) and effect.session == BALCONY
    assert effect.element.get("from") == "romeo@montague.example/orchard"


def test_an_error_for_a_remote_sender_goes_back_over_the_remote_route() -> None:
    (effect,) = router().route_from_remote(
        x(
            "<iq type='get' id='q1' from='romeo@montague.example/o' to='nobody@example.com'>"
            "<query xmlns='jabber:iq:version'/></iq>"
        ),
        "montague.example",
    )
    assert isinstance(effect, RouteRemote) and effect.domain == "montague.example"
    assert effect.element.get("type") == "error"
    assert effect.element.get("to") == "romeo@montague.example/o"


def test_a_stanza_for_a_third_domain_is_not_relayed() -> None:
    (effect,) = router().route_from_remote(
        x("<message from='romeo@montague.example' to='tybalt@capulet.example'/>"),
        "montague.example",
    )
    assert isinstance(effect, RouteRemote) and effect.domain == "montague.example"
    error = parse_error(effect.element)
    assert error is not None and error.condition is StanzaErrorCondition.ITEM_NOT_FOUND


@pytest.mark.parametrize(
    "stanza",
    [
        "<message from='mallory@evil.example' to='juliet@example.com'/>",
        "<message to='juliet@example.com'/>",
        "<message from='romeo@montague.example'/>",
    ],
)
def test_a_stanza_the_stream_should_have_refused_is_the_callers_bug(stanza: str) -> None:
    with pytest.raises(LocalProtocolError):
        router().route_from_remote(x(stanza), "montague.example")


def test_a_server_ping_from_a_remote_server_is_answered_over_the_remote_route() -> None:
    """XEP-0199 §4.3: an iq ping to our domain from the remote server itself
    is answered; the answer is recognised by the pinging side."""
    ping = server_ping("montague.example", "example.com", "p1")
    (effect,) = router().route_from_remote(ping, "montague.example")
    assert isinstance(effect, RouteRemote) and effect.domain == "montague.example"
    answer = effect.element
    assert answer.get("type") == "result" and answer.get("id") == "p1"
    assert ping_answered(answer, "montague.example", "example.com") == "p1"
    assert ping_answered(answer, "montague.example", "other.example") is None
    assert ping_answered(ping, "montague.example", "example.com") is None  # a get is no answer
