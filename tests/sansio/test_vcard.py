"""Tests for xmpp_sansio.server.vcard (XEP-0054 vcard-temp)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, fromstring

import pytest
from committing import CommittingRouter

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Outcome, Router
from xmpp_sansio.server.effects import Persist, VCardDelete
from xmpp_sansio.server.stages import AccountRemoved, Context
from xmpp_sansio.server.vcard import MemoryVCardStorage, VCardService, parse_fragment
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.element import elements_equal
from xmpp_sansio.xml.writer import serialize

V = "{vcard-temp}"
ACCOUNTS = {("juliet", "example.com"), ("romeo", "example.com"), ("nurse", "example.com")}
BALCONY, ORCHARD = 1, 10

ROMEO_VCARD = (
    "<vCard xmlns='vcard-temp'><FN>Romeo Montague</FN>"
    "<N><FAMILY>Montague</FAMILY><GIVEN>Romeo</GIVEN></N>"
    "<NICKNAME>romeo</NICKNAME><JABBERID>romeo@example.com</JABBERID></vCard>"
)


@pytest.fixture
def storage() -> MemoryVCardStorage:
    return MemoryVCardStorage()


@pytest.fixture
def router(storage: MemoryVCardStorage) -> Router:
    r = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[VCardService(storage, max_size=1024)],
    )
    r.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    r.bind(ORCHARD, JID.parse("romeo@example.com/orchard"))
    return r


def only(effects: Sequence[Effect], session: int) -> Element:
    assert len(effects) == 1, effects
    effect = effects[0]
    assert isinstance(effect, Deliver)
    assert effect.session == session
    return effect.element


def result(effects: Sequence[Effect], session: int) -> Element:
    reply = only(effects, session)
    assert reply.get("type") == "result", serialize(reply)
    return reply


def error(effects: Sequence[Effect], session: int) -> StanzaErrorCondition:
    reply = only(effects, session)
    assert reply.get("type") == "error", serialize(reply)
    return parse_error(reply).condition


def set_vcard(router: Router, session: int, vcard: str, to: str = "") -> list[Effect]:
    to_attr = f" to='{to}'" if to else ""
    return router.route(session, x(f"<iq type='set' id='v2'{to_attr}>{vcard}</iq>"))


def get_vcard(router: Router, session: int, to: str = "") -> list[Effect]:
    to_attr = f" to='{to}'" if to else ""
    return router.route(
        session, x(f"<iq type='get' id='v1'{to_attr}><vCard xmlns='vcard-temp'/></iq>")
    )


def test_own_vcard_is_empty_before_any_is_stored(router: Router) -> None:
    reply = result(get_vcard(router, BALCONY), BALCONY)
    assert reply.get("id") == "v1"
    assert reply.get("to") == "juliet@example.com/balcony"
    assert reply.get("from") is None  # the request had no 'to'
    (vcard,) = list(reply)
    assert vcard.tag == f"{V}vCard"
    assert len(vcard) == 0 and not vcard.text


def test_set_then_get_own_vcard_round_trips(router: Router, storage: MemoryVCardStorage) -> None:
    reply = result(set_vcard(router, ORCHARD, ROMEO_VCARD), ORCHARD)
    assert list(reply) == []
    assert storage.get(JID.parse("romeo@example.com")) is not None
    (vcard,) = list(result(get_vcard(router, ORCHARD), ORCHARD))
    assert elements_equal(vcard, fromstring(ROMEO_VCARD))


def test_set_and_get_addressed_to_own_bare_jid(router: Router) -> None:
    result(set_vcard(router, ORCHARD, ROMEO_VCARD, to="romeo@example.com"), ORCHARD)
    reply = result(get_vcard(router, ORCHARD, to="romeo@example.com"), ORCHARD)
    assert reply.get("from") == "romeo@example.com"
    assert reply[0].findtext(f"{V}FN") == "Romeo Montague"


def test_set_replaces_the_whole_vcard(router: Router) -> None:
    result(set_vcard(router, ORCHARD, ROMEO_VCARD), ORCHARD)
    result(set_vcard(router, ORCHARD, "<vCard xmlns='vcard-temp'><FN>R.</FN></vCard>"), ORCHARD)
    (vcard,) = list(result(get_vcard(router, ORCHARD), ORCHARD))
    assert [child.tag for child in vcard] == [f"{V}FN"]


def test_juliet_gets_romeos_vcard(router: Router) -> None:
    result(set_vcard(router, ORCHARD, ROMEO_VCARD), ORCHARD)
    effects = get_vcard(router, BALCONY, to="romeo@example.com")
    reply = result(effects, BALCONY)
    assert reply.get("from") == "romeo@example.com"
    assert reply.get("to") == "juliet@example.com/balcony"
    (vcard,) = list(reply)
    assert elements_equal(vcard, fromstring(ROMEO_VCARD))


def test_vcard_request_to_bare_jid_is_answered_by_server_not_forwarded(router: Router) -> None:
    result(set_vcard(router, ORCHARD, ROMEO_VCARD), ORCHARD)
    effects = get_vcard(router, BALCONY, to="romeo@example.com")
    assert [e.session for e in effects if isinstance(e, Deliver)] == [BALCONY]


def test_cannot_set_another_users_vcard(router: Router, storage: MemoryVCardStorage) -> None:
    effects = set_vcard(
        router,
        BALCONY,
        "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>",
        to="romeo@example.com",
    )
    # service-unavailable, as for a missing account (RFC 6121 §8.5.1)
    assert error(effects, BALCONY) is StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert storage.get(JID.parse("romeo@example.com")) is None


def test_cannot_set_the_servers_vcard(router: Router) -> None:
    effects = set_vcard(router, BALCONY, ROMEO_VCARD, to="example.com")
    assert error(effects, BALCONY) is StanzaErrorCondition.FORBIDDEN


def test_servers_own_vcard_does_not_exist(router: Router) -> None:
    effects = get_vcard(router, BALCONY, to="example.com")
    assert error(effects, BALCONY) is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_existing_account_without_vcard_looks_like_no_account(router: Router) -> None:
    # XEP-0054 §3.3: the same error for both, against directory harvesting.
    no_vcard = error(get_vcard(router, BALCONY, to="nurse@example.com"), BALCONY)
    no_account = error(get_vcard(router, BALCONY, to="tybalt@example.com"), BALCONY)
    assert no_vcard is no_account is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_nonexistent_account_gets_the_routers_service_unavailable(router: Router) -> None:
    effects = set_vcard(router, BALCONY, ROMEO_VCARD, to="tybalt@example.com")
    assert error(effects, BALCONY) is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_too_large_vcard_is_not_acceptable(router: Router, storage: MemoryVCardStorage) -> None:
    big = "<vCard xmlns='vcard-temp'><DESC>" + "x" * 2000 + "</DESC></vCard>"
    assert error(set_vcard(router, ORCHARD, big), ORCHARD) is StanzaErrorCondition.NOT_ACCEPTABLE
    assert storage.data == {}


def test_vcard_at_the_size_limit_is_stored(storage: MemoryVCardStorage) -> None:
    vcard = fromstring("<vCard xmlns='vcard-temp'><DESC>x</DESC></vCard>")
    size = len(serialize(vcard))
    r = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda *_: True,
        services=[VCardService(storage, max_size=size)],
    )
    r.bind(1, JID.parse("romeo@example.com/orchard"))
    result(r.route(1, x(f"<iq type='set' id='a'>{serialize(vcard).decode()}</iq>")), 1)


def test_results_and_errors_with_vcard_payload_are_not_answered(router: Router) -> None:
    assert (
        router.route(BALCONY, x("<iq type='result' id='r'><vCard xmlns='vcard-temp'/></iq>")) == []
    )


def test_other_payloads_are_left_to_other_services(router: Router) -> None:
    effects = router.route(BALCONY, x("<iq type='get' id='p'><query xmlns='urn:example'/></iq>"))
    assert error(effects, BALCONY) is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_vcard_text_and_attributes_survive_storage(router: Router) -> None:
    vcard = (
        "<vCard xmlns='vcard-temp' version='3.0'><FN>R &amp; J &lt;3</FN>"
        "<PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO>"
        "<x xmlns='urn:example' a='1'>ext</x></vCard>"
    )
    result(set_vcard(router, ORCHARD, vcard), ORCHARD)
    (stored,) = list(result(get_vcard(router, BALCONY, to="romeo@example.com"), BALCONY))
    assert elements_equal(stored, fromstring(vcard))


def test_features_are_advertised() -> None:
    assert VCardService.server_features == ("vcard-temp",)
    assert VCardService.account_features == ("vcard-temp",)


def test_account_removed_deletes_the_vcard(router: Router, storage: MemoryVCardStorage) -> None:
    result(set_vcard(router, ORCHARD, ROMEO_VCARD), ORCHARD)
    (service,) = router.services
    assert isinstance(service, VCardService)
    # The delete is a Persist effect, committed before anything else happens.
    (persist,) = service.observe(
        Context(0.0, bytes), AccountRemoved(JID.parse("romeo@example.com"))
    )
    assert isinstance(persist, Persist)
    assert persist.op == VCardDelete(JID.parse("romeo@example.com"))
    assert storage.data != {}  # nothing is written by the service itself
    assert service.stored(JID.parse("romeo@example.com")) is None  # but it reads its write
    router.end_sessions(
        JID.parse("romeo@example.com"), StreamErrorCondition.NOT_AUTHORIZED, removed=True
    )
    assert storage.data == {}


def test_parse_fragment_round_trips_serialize() -> None:
    el = fromstring("<a xmlns='urn:x' xmlns:p='urn:p' p:b='1'><c xmlns=''>t</c>tail<d/></a>")
    assert elements_equal(parse_fragment(serialize(el)), el)


@pytest.mark.parametrize(
    "data",
    [b"", b"<a/><b/>", b"<a>", b"<!-- c --><a/>", b"<a/></stream:stream><b/>", b"\xff"],
)
def test_parse_fragment_rejects_anything_but_one_element(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_fragment(data)


def test_corrupt_stored_vcard_gives_internal_server_error(
    router: Router, storage: MemoryVCardStorage
) -> None:
    storage.put(JID.parse("romeo@example.com"), b"<vCard xmlns='vcard-temp'>")
    effects = get_vcard(router, BALCONY, to="romeo@example.com")
    assert error(effects, BALCONY) is StanzaErrorCondition.INTERNAL_SERVER_ERROR


class CapturingRouter(CommittingRouter):
    """Records the replies services send (to remote JIDs they go nowhere yet)."""

    replies: list[Element]

    def _reply(self, element: Element) -> list[Outcome]:
        self.replies.append(element)
        return super()._reply(element)


def test_remote_entity_may_view_but_not_set_a_local_vcard(storage: MemoryVCardStorage) -> None:
    router = CapturingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda *_: True,
        services=[VCardService(storage)],
    )
    router.replies = []
    storage.put(JID.parse("romeo@example.com"), ROMEO_VCARD.encode())
    router.route_inbound(
        x(
            "<iq type='get' id='r1' from='benvolio@verona.example/x' to='romeo@example.com'>"
            "<vCard xmlns='vcard-temp'/></iq>"
        )
    )
    router.route_inbound(
        x(
            "<iq type='set' id='r2' from='benvolio@verona.example/x'>"
            "<vCard xmlns='vcard-temp'><FN>B</FN></vCard></iq>"
        )
    )
    got, refused = router.replies
    assert got.get("type") == "result"
    assert got[0].findtext(f"{V}FN") == "Romeo Montague"
    assert parse_error(refused).condition is StanzaErrorCondition.FORBIDDEN
    assert list(storage.data) == [JID.parse("romeo@example.com")]
