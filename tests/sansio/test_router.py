"""Tests for xmpp_sansio.server.router (RFC 6120 §10, RFC 6121 §8)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, fromstring, tostring

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import (
    LocalProtocolError,
    StanzaErrorCondition,
    StanzaErrorType,
    StreamErrorCondition,
)
from xmpp_sansio.jid import JID
from xmpp_sansio.server import (
    AvailableResource,
    Deliver,
    Disconnect,
    Effect,
    Router,
)
from xmpp_sansio.server.effects import Outcome
from xmpp_sansio.server.service import Service
from xmpp_sansio.server.stages import (
    Context,
    Event,
    MessageDelivered,
    PresenceBroadcast,
    Request,
    Undeliverable,
)
from xmpp_sansio.stanza import UnknownStanza, parse_error
from xmpp_sansio.testing import seeded_rng, x

C = "{jabber:client}"
SU = StanzaErrorCondition.SERVICE_UNAVAILABLE

ACCOUNTS = {("juliet", "example.com"), ("romeo", "example.com"), ("nurse", "example.com")}

# session ids used throughout
BALCONY, CHAMBER, GARDEN, ROMEO = 1, 2, 3, 10


def jid(text: str) -> JID:
    return JID.parse(text)


def new_router(cls: type[Router] = Router) -> Router:
    return cls(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
    )


def online(router: Router, session: int, priority: int | None = None) -> list[Effect]:
    prio = "" if priority is None else f"<priority>{priority}</priority>"
    return router.route(session, x(f"<presence>{prio}</presence>"))


@pytest.fixture
def router() -> Router:
    """juliet has balcony and chamber; romeo has orchard. Nobody is available yet."""
    r = new_router()
    assert r.bind(BALCONY, jid("juliet@example.com/balcony")) == []
    assert r.bind(CHAMBER, jid("juliet@example.com/chamber")) == []
    assert r.bind(ROMEO, jid("romeo@example.com/orchard")) == []
    return r


def targets(effects: Sequence[Effect]) -> list[int]:
    assert all(isinstance(e, Deliver) for e in effects)
    return sorted(e.session for e in effects)


def single_error(
    effects: Sequence[Effect], session: int, condition: StanzaErrorCondition
) -> Element:
    assert len(effects) == 1, effects
    effect = effects[0]
    assert isinstance(effect, Deliver)
    assert effect.session == session
    assert effect.element.get("type") == "error"
    assert parse_error(effect.element).condition is condition
    return effect.element


# ---------------------------------------------------------------------------
# session table


def test_bind_records_sessions_per_account(router: Router) -> None:
    assert router.session_jid(BALCONY) == jid("juliet@example.com/balcony")
    assert router.session_jid(99) is None
    assert router.resources(jid("juliet@example.com")) == [
        (jid("juliet@example.com/balcony"), BALCONY),
        (jid("juliet@example.com/chamber"), CHAMBER),
    ]
    # a full JID is accepted and reduced to its account
    assert router.resources(jid("romeo@example.com/whatever")) == [
        (jid("romeo@example.com/orchard"), ROMEO)
    ]
    assert router.resources(jid("nurse@example.com")) == []
    assert router.available_resources(jid("juliet@example.com")) == []


def test_bind_rejects_bare_jid_foreign_domain_and_rebinding(router: Router) -> None:
    with pytest.raises(LocalProtocolError):
        router.bind(20, jid("nurse@example.com"))
    with pytest.raises(LocalProtocolError):
        router.bind(20, jid("nurse@elsewhere.net/r"))
    with pytest.raises(LocalProtocolError):
        router.bind(BALCONY, jid("juliet@example.com/other"))


def test_domains_are_normalised() -> None:
    r = Router(["Example.COM"], rng=seeded_rng(0), account_exists=lambda local, domain: True)
    assert r.domains == frozenset({"example.com"})
    r.bind(1, jid("a@EXAMPLE.com/r"))
    assert r.is_local("example.com")
    assert r.session_jid(1) == jid("a@example.com/r")


def test_conflict_replaces_old_session_with_same_full_jid(router: Router) -> None:
    effects = router.bind(GARDEN, jid("juliet@example.com/balcony"))
    assert effects == [Disconnect(BALCONY, StreamErrorCondition.CONFLICT)]
    assert router.session_jid(BALCONY) is None
    assert router.session_jid(GARDEN) == jid("juliet@example.com/balcony")
    assert router.resources(jid("juliet@example.com")) == [
        (jid("juliet@example.com/chamber"), CHAMBER),
        (jid("juliet@example.com/balcony"), GARDEN),
    ]
    # stanzas to the full JID now reach the new session
    effects = router.route(ROMEO, x("<message to='juliet@example.com/balcony' type='chat'/>"))
    assert targets(effects) == [GARDEN]
    # unbinding the replaced session later is harmless
    assert router.unbind(BALCONY) == []
    assert router.session_jid(GARDEN) == jid("juliet@example.com/balcony")


def test_conflict_broadcasts_unavailable_of_replaced_available_session(router: Router) -> None:
    online(router, BALCONY)
    online(router, CHAMBER)
    effects = router.bind(GARDEN, jid("juliet@example.com/balcony"))
    assert effects[0] == Disconnect(BALCONY, StreamErrorCondition.CONFLICT)
    assert targets(effects[1:]) == [CHAMBER]
    assert isinstance(effects[1], Deliver)
    pres = effects[1].element
    assert pres.get("type") == "unavailable"
    assert pres.get("from") == "juliet@example.com/balcony"


def test_unbind_sends_unavailable_to_other_available_resources(router: Router) -> None:
    router.bind(GARDEN, jid("juliet@example.com/garden"))  # connected, never available
    online(router, BALCONY)
    online(router, CHAMBER)
    effects = router.unbind(BALCONY)
    assert targets(effects) == [CHAMBER]
    assert isinstance(effects[0], Deliver)
    pres = effects[0].element
    assert pres.tag == f"{C}presence"
    assert pres.attrib == {
        "type": "unavailable",
        "from": "juliet@example.com/balcony",
        "to": "juliet@example.com/chamber",
    }
    assert router.session_jid(BALCONY) is None
    assert [s for _, s in router.resources(jid("juliet@example.com"))] == [CHAMBER, GARDEN]


def test_unbind_without_available_presence_sends_nothing(router: Router) -> None:
    online(router, CHAMBER)
    assert router.unbind(BALCONY) == []
    assert router.unbind(BALCONY) == []  # unknown ids are ignored
    assert router.unbind(12345) == []


def test_unbind_after_unavailable_presence_sends_nothing(router: Router) -> None:
    online(router, BALCONY)
    online(router, CHAMBER)
    router.route(BALCONY, x("<presence type='unavailable'/>"))
    assert router.unbind(BALCONY) == []


def test_unbind_last_resource_forgets_account(router: Router) -> None:
    online(router, ROMEO)
    assert router.unbind(ROMEO) == []
    assert router.resources(jid("romeo@example.com")) == []


# ---------------------------------------------------------------------------
# route() basics


def test_route_from_unbound_session_raises(router: Router) -> None:
    with pytest.raises(LocalProtocolError):
        router.route(99, x("<message to='romeo@example.com'/>"))


def test_route_unknown_top_level_element_raises(router: Router) -> None:
    with pytest.raises(UnknownStanza):
        router.route(BALCONY, fromstring("<foo xmlns='jabber:client'/>"))


def test_from_is_stamped_and_spoofed_from_overwritten(router: Router) -> None:
    online(router, ROMEO)
    original = x(
        "<message from='nurse@example.com/kitchen' to='romeo@example.com' type='chat'>"
        "<body>hi</body></message>"
    )
    before = tostring(original)
    effects = router.route(BALCONY, original)
    assert tostring(original) == before  # input not mutated
    assert targets(effects) == [ROMEO]
    assert isinstance(effects[0], Deliver)
    delivered = effects[0].element
    assert delivered.get("from") == "juliet@example.com/balcony"
    assert delivered.get("to") == "romeo@example.com"  # bare 'to' not rewritten
    assert delivered.findtext(f"{C}body") == "hi"


def test_owned_stanza_is_stamped_in_place_and_routed_like_a_copy(router: Router) -> None:
    online(router, ROMEO)
    text = (
        "<message from='nurse@example.com/kitchen' to='romeo@example.com' type='chat'>"
        "<body>hi</body></message>"
    )
    copied = router.route(BALCONY, x(text))
    handed = x(text)
    owned = router.route(BALCONY, handed, owned=True)
    assert [(type(e), getattr(e, "session", None)) for e in owned] == [
        (type(e), getattr(e, "session", None)) for e in copied
    ]
    assert isinstance(owned[0], Deliver) and isinstance(copied[0], Deliver)
    assert owned[0].element is handed  # no copy made
    assert tostring(owned[0].element) == tostring(copied[0].element)
    assert handed.get("from") == "juliet@example.com/balcony"


def test_stamped_from_follows_the_session_bound_under_the_same_id(router: Router) -> None:
    """The router stamps each session's ``from`` from a string made at bind
    (RFC 6120 §8.1.2.1): a session id bound again to another full JID
    (normalised, non-ASCII resource) is stamped with the new one, owned or not."""
    online(router, ROMEO)
    text = "<message to='romeo@example.com' type='chat'><body>hi</body></message>"
    router.unbind(BALCONY)
    router.bind(BALCONY, jid("Juliet@Example.com/Balkon\u00e9"))
    for owned in (False, True):
        effects = router.route(BALCONY, x(text), owned=owned)
        assert isinstance(effects[0], Deliver)
        assert effects[0].element.get("from") == "juliet@example.com/Balkon\u00e9"


def test_owned_invalid_stanza_gets_the_same_error(router: Router) -> None:
    text = "<message to='a@b@c' id='m'/>"
    owned = router.route(BALCONY, x(text), owned=True)
    copied = router.route(BALCONY, x(text))
    assert [tostring(e.element) for e in owned if isinstance(e, Deliver)] == [
        tostring(e.element) for e in copied if isinstance(e, Deliver)
    ]
    single_error(owned, BALCONY, StanzaErrorCondition.JID_MALFORMED)


def test_from_is_stamped_when_missing(router: Router) -> None:
    effects = router.route(BALCONY, x("<message to='romeo@example.com/orchard'/>"))
    assert isinstance(effects[0], Deliver)
    assert effects[0].element.get("from") == "juliet@example.com/balcony"


def test_malformed_to_gets_jid_malformed_error(router: Router) -> None:
    effects = router.route(BALCONY, x("<message to='a@b@c' id='m' type='chat'/>"))
    reply = single_error(effects, BALCONY, StanzaErrorCondition.JID_MALFORMED)
    assert reply.get("to") == "juliet@example.com/balcony"
    assert reply.get("from") is None
    assert reply.get("id") == "m"
    assert parse_error(reply).type is StanzaErrorType.MODIFY


def test_malformed_error_stanza_is_dropped(router: Router) -> None:
    assert router.route(BALCONY, x("<message to='a@b@c' type='error'/>")) == []


def test_invalid_iq_gets_bad_request(router: Router) -> None:
    effects = router.route(BALCONY, x("<iq type='get' id='q' to='example.com'/>"))
    reply = single_error(effects, BALCONY, StanzaErrorCondition.BAD_REQUEST)
    assert reply.get("from") == "example.com"


def test_invalid_priority_gets_bad_request(router: Router) -> None:
    effects = router.route(BALCONY, x("<presence><priority>500</priority></presence>"))
    single_error(effects, BALCONY, StanzaErrorCondition.BAD_REQUEST)
    assert router.available_resources(jid("juliet@example.com")) == []


# ---------------------------------------------------------------------------
# stanzas handled by the server (RFC 6120 §10.3)


def test_ping_without_to_is_answered_by_server(router: Router) -> None:
    effects = router.route(BALCONY, x("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"))
    assert len(effects) == 1 and isinstance(effects[0], Deliver)
    assert effects[0].session == BALCONY
    assert effects[0].element.attrib == {
        "type": "result",
        "id": "p1",
        "to": "juliet@example.com/balcony",
    }


def test_ping_to_server_domain_is_answered_by_server(router: Router) -> None:
    effects = router.route(
        BALCONY, x("<iq type='get' id='p2' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>")
    )
    assert len(effects) == 1 and isinstance(effects[0], Deliver)
    assert effects[0].element.attrib == {
        "type": "result",
        "id": "p2",
        "to": "juliet@example.com/balcony",
        "from": "example.com",
    }


@pytest.mark.parametrize("to", ["", "to='example.com'", "to='juliet@example.com'"])
def test_other_iq_requests_to_server_or_own_account_get_service_unavailable(
    router: Router, to: str
) -> None:
    effects = router.route(
        BALCONY, x(f"<iq type='set' id='s' {to}><query xmlns='urn:example:unknown'/></iq>")
    )
    reply = single_error(effects, BALCONY, SU)
    assert reply.get("id") == "s"
    assert len(reply) == 1  # the iq payload is not echoed


def test_ping_to_own_bare_jid_gets_service_unavailable(router: Router) -> None:
    effects = router.route(
        BALCONY,
        x("<iq type='get' id='p' to='juliet@example.com'><ping xmlns='urn:xmpp:ping'/></iq>"),
    )
    reply = single_error(effects, BALCONY, SU)
    assert reply.get("from") == "juliet@example.com"


@pytest.mark.parametrize("to", ["", "to='example.com'", "to='romeo@example.com'"])
def test_iq_results_and_errors_to_server_or_bare_jid_are_dropped(router: Router, to: str) -> None:
    online(router, ROMEO)
    assert router.route(BALCONY, x(f"<iq type='result' id='r' {to}/>")) == []
    error = (
        f"<iq type='error' id='e' {to}><error type='cancel'>"
        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    )
    assert router.route(BALCONY, x(error)) == []


def test_message_to_server_domain_gets_service_unavailable(router: Router) -> None:
    effects = router.route(BALCONY, x("<message to='example.com' type='chat'/>"))
    reply = single_error(effects, BALCONY, SU)
    assert reply.get("from") == "example.com"


def test_presence_to_server_domain_is_dropped(router: Router) -> None:
    assert router.route(BALCONY, x("<presence to='example.com'/>")) == []
    assert router.route(BALCONY, x("<presence to='example.com' type='probe'/>")) == []


def test_message_without_to_goes_to_senders_bare_jid(router: Router) -> None:
    online(router, BALCONY, 1)
    online(router, CHAMBER, 5)
    effects = router.route(BALCONY, x("<message type='chat'><body>note</body></message>"))
    assert targets(effects) == [CHAMBER]
    assert isinstance(effects[0], Deliver)
    assert effects[0].element.get("to") == "juliet@example.com"


def test_message_without_to_and_no_available_resource_bounces(router: Router) -> None:
    effects = router.route(BALCONY, x("<message type='normal' id='n'/>"))
    reply = single_error(effects, BALCONY, SU)
    assert reply.get("from") == "juliet@example.com"


# ---------------------------------------------------------------------------
# presence broadcast (presence without 'to')


def test_available_presence_is_recorded_and_broadcast_to_own_available_resources(
    router: Router,
) -> None:
    router.bind(GARDEN, jid("juliet@example.com/garden"))  # connected, not available
    assert targets(online(router, CHAMBER, 3)) == [CHAMBER]
    effects = online(router, BALCONY, -2)
    # RFC 6121 §4.2.2: all available resources including the sender; not the
    # garden session (not available), not romeo (no roster yet)
    assert targets(effects) == [BALCONY, CHAMBER]
    for effect in effects:
        assert isinstance(effect, Deliver)
        assert effect.element.get("from") == "juliet@example.com/balcony"
        assert effect.element.get("to") == str(router.session_jid(effect.session))
        assert effect.element.findtext(f"{C}priority") == "-2"
    assert router.available_resources(jid("juliet@example.com")) == [
        AvailableResource(jid("juliet@example.com/balcony"), BALCONY, -2),
        AvailableResource(jid("juliet@example.com/chamber"), CHAMBER, 3),
    ]


def test_presence_update_changes_priority(router: Router) -> None:
    online(router, BALCONY, 1)
    online(router, BALCONY, 7)
    assert router.available_resources(jid("juliet@example.com")) == [
        AvailableResource(jid("juliet@example.com/balcony"), BALCONY, 7)
    ]
    online(router, BALCONY)
    assert router.available_resources(jid("juliet@example.com"))[0].priority == 0


def test_unavailable_presence_is_broadcast_and_recorded(router: Router) -> None:
    online(router, BALCONY)
    online(router, CHAMBER)
    effects = router.route(BALCONY, x("<presence type='unavailable'/>"))
    assert targets(effects) == [BALCONY, CHAMBER]
    assert [r.session for r in router.available_resources(jid("juliet@example.com"))] == [CHAMBER]
    # no longer a target for messages to the bare JID
    effects = router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"))
    assert targets(effects) == [CHAMBER]


@pytest.mark.parametrize("ptype", ["subscribe", "probe", "error"])
def test_other_presence_types_without_to_are_dropped(router: Router, ptype: str) -> None:
    online(router, CHAMBER)
    assert router.route(BALCONY, x(f"<presence type='{ptype}'/>")) == []
    assert router.available_resources(jid("juliet@example.com"))[0].session == CHAMBER


def test_services_see_presence_broadcasts_with_initial_flag() -> None:
    seen: list[tuple[JID, str | None, bool]] = []

    class Watcher(Service):
        observes = (PresenceBroadcast,)

        def observe(self, ctx: Context, event: Event) -> list[Outcome]:
            assert isinstance(event, PresenceBroadcast)
            seen.append((event.session.jid, event.element.get("type"), event.initial))
            return []

    r = Router(
        ["example.com"], rng=seeded_rng(0), account_exists=lambda *_: True, services=[Watcher()]
    )
    r.bind(1, jid("romeo@example.com/a"))
    online(r, 1)
    online(r, 1)
    r.route(1, x("<presence type='unavailable'/>"))
    online(r, 1)
    r.unbind(1)
    a = jid("romeo@example.com/a")
    assert seen == [
        (a, None, True),
        (a, None, False),
        (a, "unavailable", False),
        (a, None, True),
        (a, "unavailable", False),
    ]


@pytest.mark.parametrize("to", ["juliet@example.com", "juliet@example.com/balcony"])
def test_remote_observes_sees_deliveries_from_remote_senders_only(to: str) -> None:
    """``remote_observes``: ``MessageDelivered`` of a local sender's message
    goes to the other observers only (the event is not even built if none)."""
    seen: dict[str, list[str | None]] = {"all": [], "remote": []}

    class Watcher(Service):
        observes = (MessageDelivered,)

        def __init__(self, name: str) -> None:
            self.name = name

        def observe(self, ctx: Context, event: Event) -> list[Outcome]:
            assert isinstance(event, MessageDelivered)
            seen[self.name].append(event.element.get("from"))
            return []

    class Remote(Watcher):
        remote_observes = frozenset({MessageDelivered})

    for services in ([Watcher("all"), Remote("remote")], [Remote("remote")]):
        seen = {"all": [], "remote": []}
        r = Router(
            ["example.com"], rng=seeded_rng(0), account_exists=lambda *_: True, services=services
        )
        r.bind(BALCONY, jid("juliet@example.com/balcony"))
        r.bind(ROMEO, jid("romeo@example.com/orchard"))
        online(r, BALCONY)
        effects = r.route(ROMEO, x(f"<message to='{to}' type='chat'><body>a</body></message>"))
        assert targets(effects) == [BALCONY]
        effects = r.route_inbound(
            x(
                f"<message from='tybalt@capulet.lit/t' to='{to}' type='chat'><body>b</body></message>"
            )
        )
        assert targets(effects) == [BALCONY]
        local, remote = "romeo@example.com/orchard", "tybalt@capulet.lit/t"
        assert seen["remote"] == [remote]
        assert seen["all"] == ([local, remote] if len(services) == 2 else [])


def test_remote_observes_must_be_message_delivered_among_observes() -> None:
    class Wrong(Service):
        observes = (PresenceBroadcast,)
        remote_observes = frozenset({PresenceBroadcast})

        def observe(self, ctx: Context, event: Event) -> list[Outcome]:
            return []

    with pytest.raises(TypeError, match="remote_observes"):
        Router(
            ["example.com"], rng=seeded_rng(0), account_exists=lambda *_: True, services=[Wrong()]
        )


# ---------------------------------------------------------------------------
# RFC 6121 §8.5.1: no such user


@pytest.mark.parametrize("to", ["ghost@example.com", "ghost@example.com/res"])
@pytest.mark.parametrize("mtype", ["chat", "normal", "headline", "groupchat"])
def test_message_to_nonexistent_user_gets_service_unavailable(
    router: Router, to: str, mtype: str
) -> None:
    effects = router.route(BALCONY, x(f"<message to='{to}' type='{mtype}' id='g'/>"))
    reply = single_error(effects, BALCONY, SU)
    assert reply.get("from") == to
    assert reply.get("to") == "juliet@example.com/balcony"
    assert reply.get("id") == "g"


@pytest.mark.parametrize("to", ["ghost@example.com", "ghost@example.com/res"])
@pytest.mark.parametrize("ptype", ["", "type='subscribe'", "type='probe'", "type='unavailable'"])
def test_presence_to_nonexistent_user_is_dropped(router: Router, to: str, ptype: str) -> None:
    assert router.route(BALCONY, x(f"<presence to='{to}' {ptype}/>")) == []


@pytest.mark.parametrize("to", ["ghost@example.com", "ghost@example.com/res"])
def test_iq_to_nonexistent_user(router: Router, to: str) -> None:
    effects = router.route(BALCONY, x(f"<iq to='{to}' type='get' id='i'><q xmlns='x'/></iq>"))
    single_error(effects, BALCONY, SU)
    assert router.route(BALCONY, x(f"<iq to='{to}' type='result' id='i'/>")) == []


# ---------------------------------------------------------------------------
# RFC 6121 §8.5.2: bare JID of an existing account


@pytest.mark.parametrize("mtype", ["chat", "normal"])
def test_message_to_bare_jid_goes_to_highest_priority_resources(router: Router, mtype: str) -> None:
    router.bind(GARDEN, jid("juliet@example.com/garden"))
    online(router, BALCONY, 5)
    online(router, CHAMBER, 5)
    online(router, GARDEN, 1)
    effects = router.route(ROMEO, x(f"<message to='juliet@example.com' type='{mtype}'/>"))
    assert targets(effects) == [BALCONY, CHAMBER]


def test_message_without_type_to_bare_jid_is_normal(router: Router) -> None:
    online(router, BALCONY, 0)
    online(router, CHAMBER, 2)
    assert targets(router.route(ROMEO, x("<message to='juliet@example.com'/>"))) == [CHAMBER]


def test_message_to_bare_jid_skips_negative_priority_resources(router: Router) -> None:
    online(router, BALCONY, -1)
    online(router, CHAMBER, 0)
    effects = router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"))
    assert targets(effects) == [CHAMBER]


def test_message_to_bare_jid_with_only_negative_priority_bounces(router: Router) -> None:
    online(router, BALCONY, -1)
    online(router, CHAMBER, -5)
    effects = router.route(ROMEO, x("<message to='juliet@example.com' type='chat' id='c'/>"))
    reply = single_error(effects, ROMEO, SU)
    assert reply.get("from") == "juliet@example.com"
    assert reply.get("to") == "romeo@example.com/orchard"


@pytest.mark.parametrize("mtype", ["chat", "normal"])
def test_message_to_bare_jid_without_available_resource_bounces(router: Router, mtype: str) -> None:
    # balcony and chamber are connected but have not sent presence
    effects = router.route(ROMEO, x(f"<message to='juliet@example.com' type='{mtype}'/>"))
    single_error(effects, ROMEO, SU)
    # an account with no session at all
    effects = router.route(ROMEO, x(f"<message to='nurse@example.com' type='{mtype}'/>"))
    single_error(effects, ROMEO, SU)


def test_service_can_store_undeliverable_message_instead_of_bounce() -> None:
    stored: list[tuple[JID, Element]] = []

    class Offline(Service):
        handles = (Undeliverable,)

        def handle(self, ctx: Context, request: Request) -> list[Outcome] | None:
            assert isinstance(request, Undeliverable)
            stored.append((request.recipient, request.element))
            return []

    r = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[Offline()],
    )
    r.bind(ROMEO, jid("romeo@example.com/orchard"))
    assert r.route(ROMEO, x("<message to='nurse@example.com' type='chat'/>")) == []
    assert stored[0][0] == jid("nurse@example.com")
    assert stored[0][1].get("from") == "romeo@example.com/orchard"


def test_headline_to_bare_jid_goes_to_all_non_negative_resources(router: Router) -> None:
    router.bind(GARDEN, jid("juliet@example.com/garden"))
    online(router, BALCONY, 5)
    online(router, CHAMBER, 0)
    online(router, GARDEN, -1)
    effects = router.route(ROMEO, x("<message to='juliet@example.com' type='headline'/>"))
    assert targets(effects) == [BALCONY, CHAMBER]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=1, max_size=4),
    st.sampled_from(["chat", "normal", "headline"]),
)
def test_message_to_bare_jid_picks_resources_by_rfc6121_rules(
    priorities: list[int | None], mtype: str
) -> None:
    """RFC 6121 §8.5.2.1.1 / §8.5.2.2.1 against a plain statement of the rule:
    ``None`` is a resource without available presence."""
    r = new_router()
    r.bind(ROMEO, jid("romeo@example.com/orchard"))
    for i, prio in enumerate(priorities):
        r.bind(100 + i, jid(f"juliet@example.com/r{i}"))
        if prio is not None:
            online(r, 100 + i, prio)
    ok = [(100 + i, p) for i, p in enumerate(priorities) if p is not None and p >= 0]
    if mtype != "headline" and ok:
        top = max(p for _, p in ok)
        ok = [(s, p) for s, p in ok if p == top]
    effects = r.route(ROMEO, x(f"<message to='juliet@example.com' type='{mtype}' id='m'/>"))
    if ok:
        assert [e.session for e in effects if isinstance(e, Deliver)] == [s for s, _ in ok]
    elif mtype == "headline":
        assert effects == []
    else:
        single_error(effects, ROMEO, SU)


def test_headline_to_bare_jid_without_resources_is_dropped(router: Router) -> None:
    assert router.route(ROMEO, x("<message to='juliet@example.com' type='headline'/>")) == []


def test_groupchat_to_bare_jid_gets_service_unavailable(router: Router) -> None:
    online(router, BALCONY)
    effects = router.route(ROMEO, x("<message to='juliet@example.com' type='groupchat'/>"))
    single_error(effects, ROMEO, SU)


def test_error_message_to_bare_jid_is_dropped(router: Router) -> None:
    online(router, BALCONY)
    assert router.route(ROMEO, x("<message to='juliet@example.com' type='error'/>")) == []


@pytest.mark.parametrize("ptype", ["subscribe", "subscribed", "unsubscribe", "unsubscribed"])
def test_subscription_presence_to_bare_jid_goes_to_all_available_resources(
    router: Router, ptype: str
) -> None:
    router.bind(GARDEN, jid("juliet@example.com/garden"))  # not available
    online(router, BALCONY, -3)
    online(router, CHAMBER, 2)
    effects = router.route(ROMEO, x(f"<presence to='juliet@example.com' type='{ptype}'/>"))
    assert targets(effects) == [BALCONY, CHAMBER]
    assert isinstance(effects[0], Deliver)
    assert effects[0].element.get("to") == "juliet@example.com"
    assert effects[0].element.get("from") == "romeo@example.com/orchard"


@pytest.mark.parametrize("ptype", ["", "type='unavailable'"])
def test_directed_presence_to_bare_jid_goes_to_all_available_resources(
    router: Router, ptype: str
) -> None:
    online(router, BALCONY, -3)
    online(router, CHAMBER, 2)
    effects = router.route(ROMEO, x(f"<presence to='juliet@example.com' {ptype}/>"))
    assert targets(effects) == [BALCONY, CHAMBER]
    assert isinstance(effects[0], Deliver)
    assert effects[0].element.get("to") == "juliet@example.com"  # not rewritten


def test_directed_presence_does_not_change_senders_availability(router: Router) -> None:
    router.route(ROMEO, x("<presence to='juliet@example.com'><priority>9</priority></presence>"))
    assert router.available_resources(jid("romeo@example.com")) == []


@pytest.mark.parametrize("ptype", ["probe", "error"])
def test_probe_and_error_presence_to_bare_jid_are_dropped(router: Router, ptype: str) -> None:
    online(router, BALCONY)
    assert router.route(ROMEO, x(f"<presence to='juliet@example.com' type='{ptype}'/>")) == []


@pytest.mark.parametrize("itype", ["get", "set"])
def test_iq_request_to_other_users_bare_jid_gets_service_unavailable(
    router: Router, itype: str
) -> None:
    online(router, BALCONY)
    effects = router.route(
        ROMEO, x(f"<iq to='juliet@example.com' type='{itype}' id='v'><query xmlns='x'/></iq>")
    )
    reply = single_error(effects, ROMEO, SU)
    assert reply.get("from") == "juliet@example.com"
    assert reply.get("id") == "v"


# ---------------------------------------------------------------------------
# RFC 6121 §8.5.3: full JID


@pytest.mark.parametrize("mtype", ["chat", "normal", "headline", "groupchat", "error"])
def test_message_to_bound_full_jid_is_delivered_to_that_resource(
    router: Router, mtype: str
) -> None:
    # balcony has negative priority and chamber is not even available:
    # full-JID delivery ignores both
    online(router, BALCONY, -10)
    effects = router.route(ROMEO, x(f"<message to='juliet@example.com/balcony' type='{mtype}'/>"))
    assert targets(effects) == [BALCONY]
    effects = router.route(ROMEO, x(f"<message to='juliet@example.com/chamber' type='{mtype}'/>"))
    assert targets(effects) == [CHAMBER]


@pytest.mark.parametrize(
    "iq",
    [
        "<iq type='get' id='1'><query xmlns='jabber:iq:version'/></iq>",
        "<iq type='set' id='1'><query xmlns='x'/></iq>",
        "<iq type='result' id='1'/>",
    ],
)
def test_iq_to_bound_full_jid_is_delivered(router: Router, iq: str) -> None:
    el = x(iq.replace("<iq ", "<iq to='juliet@example.com/chamber' ", 1))
    effects = router.route(ROMEO, el)
    assert targets(effects) == [CHAMBER]
    assert isinstance(effects[0], Deliver)
    assert effects[0].element.get("from") == "romeo@example.com/orchard"


@pytest.mark.parametrize("ptype", ["", "type='unavailable'"])
def test_presence_to_bound_full_jid_is_delivered(router: Router, ptype: str) -> None:
    effects = router.route(ROMEO, x(f"<presence to='juliet@example.com/chamber' {ptype}/>"))
    assert targets(effects) == [CHAMBER]


def test_subscription_presence_to_full_jid_is_handled_as_bare(router: Router) -> None:
    online(router, BALCONY)
    online(router, CHAMBER)
    for to in ("juliet@example.com/balcony", "juliet@example.com/gone"):
        effects = router.route(ROMEO, x(f"<presence to='{to}' type='subscribe'/>"))
        assert targets(effects) == [BALCONY, CHAMBER]


def test_probe_to_full_jid_is_dropped(router: Router) -> None:
    online(router, BALCONY)
    assert router.route(ROMEO, x("<presence to='juliet@example.com/balcony' type='probe'/>")) == []


@pytest.mark.parametrize("mtype", ["chat", "normal"])
def test_message_to_unbound_full_jid_falls_back_to_bare_jid(router: Router, mtype: str) -> None:
    online(router, BALCONY, 1)
    online(router, CHAMBER, 4)
    effects = router.route(ROMEO, x(f"<message to='juliet@example.com/gone' type='{mtype}'/>"))
    assert targets(effects) == [CHAMBER]
    assert isinstance(effects[0], Deliver)
    assert effects[0].element.get("to") == "juliet@example.com/gone"


def test_headline_to_unbound_full_jid_goes_to_non_negative_resources(router: Router) -> None:
    online(router, BALCONY, -1)
    online(router, CHAMBER, 0)
    effects = router.route(ROMEO, x("<message to='juliet@example.com/gone' type='headline'/>"))
    assert targets(effects) == [CHAMBER]


def test_chat_to_unbound_full_jid_without_resources_bounces(router: Router) -> None:
    effects = router.route(ROMEO, x("<message to='nurse@example.com/gone' type='chat'/>"))
    reply = single_error(effects, ROMEO, SU)
    assert reply.get("from") == "nurse@example.com/gone"


def test_groupchat_to_unbound_full_jid_gets_service_unavailable(router: Router) -> None:
    online(router, BALCONY)
    effects = router.route(ROMEO, x("<message to='juliet@example.com/gone' type='groupchat'/>"))
    single_error(effects, ROMEO, SU)


def test_error_message_to_unbound_full_jid_is_dropped(router: Router) -> None:
    online(router, BALCONY)
    assert router.route(ROMEO, x("<message to='juliet@example.com/gone' type='error'/>")) == []


def test_iq_to_unbound_full_jid(router: Router) -> None:
    online(router, BALCONY)
    effects = router.route(
        ROMEO, x("<iq to='juliet@example.com/gone' type='get' id='q'><q xmlns='x'/></iq>")
    )
    single_error(effects, ROMEO, SU)
    assert router.route(ROMEO, x("<iq to='juliet@example.com/gone' type='result' id='q'/>")) == []


@pytest.mark.parametrize("ptype", ["", "type='unavailable'", "type='error'"])
def test_presence_to_unbound_full_jid_is_dropped(router: Router, ptype: str) -> None:
    online(router, BALCONY)
    assert router.route(ROMEO, x(f"<presence to='juliet@example.com/gone' {ptype}/>")) == []


# ---------------------------------------------------------------------------
# other domains


@pytest.mark.parametrize(
    "stanza",
    [
        "<message to='someone@elsewhere.net' type='chat'/>",
        "<presence to='someone@elsewhere.net/r' type='subscribe'/>",
        "<iq to='elsewhere.net' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
    ],
)
def test_remote_domain_gets_remote_server_not_found(router: Router, stanza: str) -> None:
    effects = router.route(BALCONY, x(stanza))
    reply = single_error(effects, BALCONY, StanzaErrorCondition.REMOTE_SERVER_NOT_FOUND)
    assert reply.get("to") == "juliet@example.com/balcony"
    assert reply.get("from") == x(stanza).get("to")
    assert parse_error(reply).type is StanzaErrorType.CANCEL


# ---------------------------------------------------------------------------
# never an error in reply to an error (RFC 6120 §8.3.1)

_ERR = "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"


@pytest.mark.parametrize(
    "to",
    [
        "ghost@example.com",
        "ghost@example.com/r",
        "nurse@example.com",
        "nurse@example.com/r",
        "juliet@example.com/gone",
        "example.com",
        "elsewhere.net",
        None,
    ],
)
@pytest.mark.parametrize("kind", ["message", "presence", "iq"])
def test_never_an_error_in_reply_to_an_error(router: Router, to: str | None, kind: str) -> None:
    to_attr = "" if to is None else f"to='{to}'"
    el = x(f"<{kind} {to_attr} type='error' id='e'>{_ERR}</{kind}>")
    assert router.route(ROMEO, el) == []


@pytest.mark.parametrize("ptype", ["subscribe", "probe"])
def test_subscribe_or_probe_to_nonexistent_user_is_answered_unsubscribed(
    router: Router, ptype: str
) -> None:
    online(router, ROMEO)
    effects = router.route(ROMEO, x(f"<presence to='ghost@example.com' type='{ptype}'/>"))
    assert targets(effects) == [ROMEO]
    answer = effects[0].element  # type: ignore[union-attr]
    assert answer.get("type") == "unsubscribed"
    assert answer.get("from") == "ghost@example.com"
