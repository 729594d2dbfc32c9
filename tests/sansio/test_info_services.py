"""Tests for xmpp_sansio.server.info: software version (XEP-0092) and entity
time (XEP-0202) of the server, and the router's XEP-0199 ping."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

import pytest

from xmpp_sansio.disco import parse_disco_info
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.disco import DiscoService
from xmpp_sansio.server.info import TimeService, VersionService, format_utc
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x

VERSION = "{jabber:iq:version}"
TIME = "{urn:xmpp:time}"
BALCONY = 1
# XEP-0202 §3: 2006-12-19T17:58:35Z
MOMENT = datetime(2006, 12, 19, 17, 58, 35, 123_000, tzinfo=UTC).timestamp()


def make_router(*services: VersionService | TimeService | DiscoService) -> Router:
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) == ("juliet", "example.com"),
        services=services,
        clock=lambda: MOMENT,
    )
    router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    return router


def the_reply(effects: Sequence[Effect]) -> Element:
    assert len(effects) == 1, effects
    effect = effects[0]
    assert isinstance(effect, Deliver) and effect.session == BALCONY
    return effect.element


def version_get(to: str = "example.com", type_: str = "get") -> Element:
    return x(f"<iq type='{type_}' id='v1' to='{to}'><query xmlns='jabber:iq:version'/></iq>")


def time_get(to: str = "example.com", type_: str = "get") -> Element:
    return x(f"<iq type='{type_}' id='t1' to='{to}'><time xmlns='urn:xmpp:time'/></iq>")


# ---------------------------------------------------------------------------
# XEP-0092


def test_version_answers_name_and_version_without_os_by_default() -> None:
    router = make_router(VersionService("0.1.0"))
    reply = the_reply(router.route(BALCONY, version_get()))
    assert reply.attrib == {
        "type": "result",
        "id": "v1",
        "to": "juliet@example.com/balcony",
        "from": "example.com",
    }
    query = reply.find(f"{VERSION}query")
    assert query is not None
    assert [(c.tag, c.text) for c in query] == [
        (f"{VERSION}name", "xmpp-trio"),
        (f"{VERSION}version", "0.1.0"),
    ]


def test_version_includes_os_only_when_configured() -> None:
    router = make_router(VersionService("2.0", name="custom", os="Linux"))
    query = the_reply(router.route(BALCONY, version_get())).find(f"{VERSION}query")
    assert query is not None
    assert [c.text for c in query] == ["custom", "2.0", "Linux"]


def test_version_set_is_a_bad_request() -> None:
    router = make_router(VersionService("0.1.0"))
    reply = the_reply(router.route(BALCONY, version_get(type_="set")))
    assert parse_error(reply).condition is StanzaErrorCondition.BAD_REQUEST


def test_version_query_to_an_account_is_not_answered_for_the_server() -> None:
    router = make_router(VersionService("0.1.0"))
    reply = the_reply(router.route(BALCONY, version_get("juliet@example.com")))
    assert parse_error(reply).condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


# ---------------------------------------------------------------------------
# XEP-0202


def test_time_answers_utc_offset_and_the_clock_time() -> None:
    router = make_router(TimeService())
    reply = the_reply(router.route(BALCONY, time_get()))
    assert reply.get("type") == "result" and reply.get("id") == "t1"
    time_el = reply.find(f"{TIME}time")
    assert time_el is not None
    assert [(c.tag, c.text) for c in time_el] == [
        (f"{TIME}tzo", "+00:00"),
        (f"{TIME}utc", "2006-12-19T17:58:35.123Z"),
    ]


def test_format_utc_is_a_xep_0082_datetime() -> None:
    assert format_utc(0) == "1970-01-01T00:00:00.000Z"
    assert format_utc(MOMENT) == "2006-12-19T17:58:35.123Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", format_utc(1.7e9 + 0.9999))


def test_time_set_and_account_queries_are_refused() -> None:
    router = make_router(TimeService())
    reply = the_reply(router.route(BALCONY, time_get(type_="set")))
    assert parse_error(reply).condition is StanzaErrorCondition.BAD_REQUEST
    reply = the_reply(router.route(BALCONY, time_get("juliet@example.com")))
    assert parse_error(reply).condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


# ---------------------------------------------------------------------------
# XEP-0199 and disco


def test_ping_is_still_answered_by_the_router() -> None:
    router = make_router(VersionService("0.1.0"), TimeService(), DiscoService())
    reply = the_reply(
        router.route(BALCONY, x("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"))
    )
    assert reply.get("type") == "result" and len(reply) == 0


@pytest.mark.parametrize(
    ("service", "feature"),
    [(VersionService("1"), "jabber:iq:version"), (TimeService(), "urn:xmpp:time")],
)
def test_services_are_advertised_in_disco(
    service: VersionService | TimeService, feature: str
) -> None:
    router = make_router(service, DiscoService())
    stanza = x("<iq type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    reply = the_reply(router.route(BALCONY, stanza))
    info = parse_disco_info(reply[0])
    assert feature in info.features and "urn:xmpp:ping" in info.features
