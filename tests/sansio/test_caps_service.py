"""Tests for xmpp_sansio.server.caps: the server discovering and verifying
its clients' capabilities (XEP-0115 §5.4, §6.2; XEP-0390 §4.4)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.etree.ElementTree import Element, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.disco import (
    DiscoInfo,
    Identity,
    build_disco_info,
    caps2_element,
    caps2_hashes,
    caps2_node,
    caps_element,
    caps_ver,
)
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.caps import CapsKey, CapsService
from xmpp_sansio.server.effects import RouteRemote
from xmpp_sansio.server.stages import Context, PresenceReceived
from xmpp_sansio.stanza import IqType, make_iq
from xmpp_sansio.testing import seeded_rng

DISCO_INFO = "http://jabber.org/protocol/disco#info"
NODE = "http://code.google.com/p/exodus"
ACCOUNTS = {("juliet", "example.com"), ("romeo", "example.com")}
BALCONY, CHAMBER, ORCHARD = 1, 2, 3
JULIET_BALCONY = JID.parse("juliet@example.com/balcony")
JULIET_CHAMBER = JID.parse("juliet@example.com/chamber")
ROMEO = JID.parse("romeo@example.com/orchard")

# XEP-0115 §5.2.
EXODUS = DiscoInfo(
    (Identity("client", "pc", "Exodus 0.9.1"),),
    (
        "http://jabber.org/protocol/caps",
        DISCO_INFO,
        "http://jabber.org/protocol/disco#items",
        "http://jabber.org/protocol/muc",
    ),
)
EXODUS_VER = "QgayPKawpkPSDYmwT/WM94uAlu0="
OTHER = DiscoInfo((Identity("client", "phone"),), (DISCO_INFO, "urn:xmpp:jingle:1"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def caps(clock: Clock) -> CapsService:
    return CapsService(query_timeout=30.0)


@pytest.fixture
def router(caps: CapsService, clock: Clock) -> Router:
    r = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[caps],
        clock=clock,
    )
    r.bind(BALCONY, JULIET_BALCONY)
    r.bind(CHAMBER, JULIET_CHAMBER)
    r.bind(ORCHARD, ROMEO)
    return r


def presence(*children: Element, type_: str | None = None) -> Element:
    el = fromstring("<presence xmlns='jabber:client'/>")
    if type_ is not None:
        el.set("type", type_)
    el.extend(children)
    return el


def caps_presence(ver: str = EXODUS_VER, node: str = NODE) -> Element:
    return presence(caps_element(node, ver))


def queries(effects: Sequence[Effect]) -> list[tuple[int, Element]]:
    """The disco#info iq gets among the effects, with their session."""
    out = []
    for effect in effects:
        assert isinstance(effect, Deliver)
        el = effect.element
        if el.tag == "{jabber:client}iq" and el.get("type") == "get":
            out.append((effect.session, el))
    return out


def the_query(effects: Sequence[Effect], session: int) -> Element:
    found = queries(effects)
    assert len(found) == 1, found
    assert found[0][0] == session
    return found[0][1]


def answer(query: Element, info: DiscoInfo, sender: int, router: Router) -> list[Effect]:
    payload = query[0]
    reply = make_iq(
        IqType.RESULT,
        query.get("id", ""),
        build_disco_info(info.with_node(payload.get("node"))),
        to=query.get("from"),
    )
    return router.route(sender, reply)


def error(query: Element, sender: int, router: Router) -> list[Effect]:
    reply = fromstring(
        f"<iq xmlns='jabber:client' type='error' id='{query.get('id')}' to='example.com'>"
        "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></iq>"
    )
    return router.route(sender, reply)


# ---------------------------------------------------------------------------


def test_unknown_ver_triggers_one_disco_query_from_the_server(router: Router) -> None:
    effects = router.route(BALCONY, caps_presence())
    query = the_query(effects, BALCONY)
    # XEP-0115 §6.2: to the exact full JID, node = node#ver.
    assert query.get("from") == "example.com"
    assert query.get("to") == "juliet@example.com/balcony"
    assert len(query) == 1 and query[0].tag == f"{{{DISCO_INFO}}}query"
    assert query[0].get("node") == f"{NODE}#{EXODUS_VER}"
    # the presence itself is still broadcast by the router
    assert any(isinstance(e, Deliver) and e.element.tag.endswith("presence") for e in effects)


def test_verified_answer_is_consumed_and_cached(router: Router, caps: CapsService) -> None:
    query = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    assert caps.caps_for(JULIET_BALCONY) is None
    assert caps.features_of(JULIET_BALCONY) == frozenset()
    assert answer(query, EXODUS, BALCONY, router) == []
    assert caps.caps_for(JULIET_BALCONY) == EXODUS
    assert caps.features_of(JULIET_BALCONY) == frozenset(EXODUS.features)
    assert caps.advertised(JULIET_BALCONY) == CapsKey(115, "sha-1", EXODUS_VER)
    assert caps.known(CapsKey(115, "sha-1", EXODUS_VER)) == EXODUS


def test_known_ver_is_not_queried_again_and_is_shared(router: Router, caps: CapsService) -> None:
    query = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    answer(query, EXODUS, BALCONY, router)
    # another session with the same ver: the cache is global (XEP-0115 §5.4 step 3.8)
    assert queries(router.route(ORCHARD, caps_presence())) == []
    assert caps.caps_for(ROMEO) == EXODUS
    assert queries(router.route(BALCONY, caps_presence())) == []


def test_sessions_advertising_a_pending_ver_share_the_query(
    router: Router, caps: CapsService
) -> None:
    query = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    assert queries(router.route(ORCHARD, caps_presence())) == []
    answer(query, EXODUS, BALCONY, router)
    assert caps.caps_for(ROMEO) == EXODUS


def test_answer_that_does_not_verify_is_not_cached_and_the_next_advertiser_is_asked(
    router: Router, caps: CapsService
) -> None:
    # XEP-0115 §5.4 step 3.9.
    liar = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    router.route(ORCHARD, caps_presence())
    effects = answer(liar, OTHER, BALCONY, router)
    assert caps.caps_for(JULIET_BALCONY) is None
    retry = the_query(effects, ORCHARD)
    assert retry.get("to") == "romeo@example.com/orchard"
    assert answer(retry, EXODUS, ORCHARD, router) == []
    assert caps.caps_for(ROMEO) == EXODUS
    # the liar's session advertised the same ver, so it now resolves too
    assert caps.caps_for(JULIET_BALCONY) == EXODUS


def test_error_answer_forgets_the_query(router: Router, caps: CapsService) -> None:
    query = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    assert error(query, BALCONY, router) == []
    assert caps.caps_for(JULIET_BALCONY) is None
    # a later presence asks again
    the_query(router.route(BALCONY, caps_presence()), BALCONY)


def test_answer_from_another_entity_is_ignored(router: Router, caps: CapsService) -> None:
    query = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    assert answer(query, EXODUS, ORCHARD, router) == []  # router drops it: not caps's
    assert caps.caps_for(JULIET_BALCONY) is None
    assert answer(query, EXODUS, BALCONY, router) == []
    assert caps.caps_for(JULIET_BALCONY) == EXODUS


def test_unanswered_query_times_out_and_is_sent_again(
    router: Router, caps: CapsService, clock: Clock
) -> None:
    the_query(router.route(BALCONY, caps_presence()), BALCONY)
    clock.now += 29
    assert queries(router.route(BALCONY, caps_presence())) == []
    clock.now += 1
    # timed out and forgotten: the next presence asks again
    assert the_query(router.route(BALCONY, caps_presence()), BALCONY) is not None


def test_timeout_moves_on_to_another_advertiser(
    router: Router, caps: CapsService, clock: Clock
) -> None:
    the_query(router.route(BALCONY, caps_presence()), BALCONY)
    router.route(ORCHARD, caps_presence())
    clock.now += 60
    effects = router.route(CHAMBER, presence())  # any presence runs the expiry
    assert the_query(effects, ORCHARD).get("to") == "romeo@example.com/orchard"


def test_session_end_forgets_its_caps_and_hands_the_query_on(
    router: Router, caps: CapsService
) -> None:
    the_query(router.route(BALCONY, caps_presence()), BALCONY)
    router.route(ORCHARD, caps_presence())
    effects = router.unbind(BALCONY)
    retry = the_query(effects, ORCHARD)
    answer(retry, EXODUS, ORCHARD, router)
    assert caps.caps_for(ROMEO) == EXODUS
    assert caps.caps_for(JULIET_BALCONY) is None
    router.unbind(ORCHARD)
    assert caps.advertised(ROMEO) is None and caps.caps_for(ROMEO) is None


def test_unavailable_presence_forgets_the_advertised_ver(router: Router, caps: CapsService) -> None:
    query = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    answer(query, EXODUS, BALCONY, router)
    router.route(BALCONY, presence(type_="unavailable"))
    assert caps.caps_for(JULIET_BALCONY) is None


def test_presence_without_caps_keeps_the_last_advertised_ver(
    router: Router, caps: CapsService
) -> None:
    # XEP-0115 §8.4: clients may omit unchanged caps.
    query = the_query(router.route(BALCONY, caps_presence()), BALCONY)
    answer(query, EXODUS, BALCONY, router)
    router.route(BALCONY, presence())
    assert caps.caps_for(JULIET_BALCONY) == EXODUS


def test_new_ver_replaces_the_old_one(router: Router, caps: CapsService) -> None:
    answer(the_query(router.route(BALCONY, caps_presence()), BALCONY), EXODUS, BALCONY, router)
    other_ver = caps_ver(OTHER)
    query = the_query(router.route(BALCONY, caps_presence(other_ver)), BALCONY)
    assert caps.caps_for(JULIET_BALCONY) is None  # not verified yet
    answer(query, OTHER, BALCONY, router)
    assert caps.features_of(JULIET_BALCONY) == frozenset(OTHER.features)


def test_legacy_and_unsupported_hashes_are_not_queried(router: Router, caps: CapsService) -> None:
    # XEP-0115 §5.4 step 2, §13.
    legacy = Element("{http://jabber.org/protocol/caps}c", {"node": NODE, "ver": "0.9.1"})
    assert queries(router.route(BALCONY, presence(legacy))) == []
    md5 = caps_element(NODE, "abc", "md5")
    assert queries(router.route(BALCONY, presence(md5))) == []
    assert caps.advertised(JULIET_BALCONY) is None


def test_xep_0390_hashes_are_preferred_and_verified(router: Router, caps: CapsService) -> None:
    hashes = caps2_hashes(EXODUS, ("sha3-256", "sha-256"))
    effects = router.route(BALCONY, presence(caps2_element(hashes), caps_element(NODE, EXODUS_VER)))
    query = the_query(effects, BALCONY)
    assert query[0].get("node") == caps2_node("sha-256", hashes["sha-256"])
    # an answer that does not verify the XEP-0390 hash is refused
    answer(query, OTHER, BALCONY, router)
    assert caps.caps_for(JULIET_BALCONY) is None
    query = the_query(router.route(BALCONY, presence(caps2_element(hashes))), BALCONY)
    answer(query, EXODUS, BALCONY, router)
    assert caps.caps_for(JULIET_BALCONY) == EXODUS
    assert caps.advertised(JULIET_BALCONY) == CapsKey(390, "sha-256", hashes["sha-256"])


def test_cache_is_a_bounded_lru(clock: Clock) -> None:
    caps = CapsService(cache_size=2)
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[caps],
        clock=clock,
    )
    router.bind(BALCONY, JULIET_BALCONY)
    infos = [DiscoInfo((Identity("client", "pc", f"v{i}"),), (DISCO_INFO,)) for i in range(3)]
    keys = []
    for info in infos:
        ver = caps_ver(info)
        keys.append(CapsKey(115, "sha-1", ver))
        answer(the_query(router.route(BALCONY, caps_presence(ver)), BALCONY), info, BALCONY, router)
    assert caps.known(keys[0]) is None
    assert caps.known(keys[1]) == infos[1] and caps.known(keys[2]) == infos[2]


def test_pending_queries_are_bounded(clock: Clock) -> None:
    caps = CapsService(max_pending=1)
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[caps],
        clock=clock,
    )
    router.bind(BALCONY, JULIET_BALCONY)
    router.bind(ORCHARD, ROMEO)
    the_query(router.route(BALCONY, caps_presence()), BALCONY)
    assert queries(router.route(ORCHARD, caps_presence(caps_ver(OTHER)))) == []


def test_constructor_rejects_non_positive_bounds(clock: Clock) -> None:
    with pytest.raises(ValueError):
        CapsService(cache_size=0)


def test_unrelated_iqs_are_left_alone(router: Router) -> None:
    stanza = fromstring(
        re.sub(
            "^<iq",
            "<iq xmlns='jabber:client'",
            f"<iq type='result' id='caps-999'><query xmlns='{DISCO_INFO}'/></iq>",
        )
    )
    assert router.route(BALCONY, stanza) == []


# -- remote contacts (XEP-0163 §4.3.1 across servers) ---------------------------------------

REMOTE = JID.parse("romeo@montague.example/orchard")


def remote_router(caps: CapsService, clock: Clock) -> Router:
    return Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[caps],
        clock=clock,
        federation=True,
    )


def from_remote(el: Element, sender: JID = REMOTE, to: str = "juliet@example.com") -> Element:
    el.set("from", str(sender))
    el.set("to", to)
    return el


def test_a_remote_resources_hash_is_asked_over_the_link_verified_and_forgotten_when_it_leaves(
    caps: CapsService, clock: Clock
) -> None:
    router = remote_router(caps, clock)
    effects = router.route_from_remote(from_remote(caps_presence()), "montague.example")
    (query,) = [e for e in effects if isinstance(e, RouteRemote)]
    # Asked from the local domain the presence reached (XEP-0115 §6.2).
    assert query.domain == "montague.example"
    assert query.element.get("to") == str(REMOTE) and query.element.get("from") == "example.com"
    assert caps.remote_owners(REMOTE) == {JID.parse("juliet@example.com")}
    assert caps.features_of(REMOTE) == frozenset()  # not verified yet
    # The answer comes back over the link and verifies (XEP-0115 §5.4).
    node = query.element[0].get("node")
    reply = make_iq(
        IqType.RESULT,
        query.element.get("id", ""),
        build_disco_info(EXODUS.with_node(node)),
        to="example.com",
        from_=str(REMOTE),
    )
    router.route_from_remote(reply, "montague.example")
    assert "http://jabber.org/protocol/muc" in caps.features_of(REMOTE)
    assert caps.remote_resources(JID.parse("juliet@example.com"), REMOTE.bare) == [REMOTE]
    # Presence to romeo too: both accounts; unavailable to one keeps the other.
    router.route_from_remote(
        from_remote(caps_presence(), to="romeo@example.com"), "montague.example"
    )
    assert caps.remote_owners(REMOTE) == {JID.parse("juliet@example.com"), ROMEO.bare}
    router.route_from_remote(from_remote(presence(type_="unavailable")), "montague.example")
    assert caps.remote_owners(REMOTE) == {ROMEO.bare}
    router.route_from_remote(
        from_remote(presence(type_="unavailable"), to="romeo@example.com"), "montague.example"
    )
    assert caps.remote_owners(REMOTE) == frozenset() and caps.features_of(REMOTE) == frozenset()


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["juliet", "romeo"]), st.booleans()),
        max_size=40,
    )
)
def test_remote_resources_follow_presence_within_max_remote(
    steps: list[tuple[int, str, bool]],
) -> None:
    """A model of what each remote resource is available to, the least
    recently seen forgotten past ``max_remote``."""
    caps = CapsService(max_remote=3)
    ctx = Context(0.0, bytes)
    model: dict[JID, set[JID]] = {}
    for n, owner_local, available in steps:
        sender = JID.parse(f"user{n}@remote.example/res")
        owner = JID(owner_local, "example.com", None)
        el = presence() if available else presence(type_="unavailable")
        caps.observe(ctx, PresenceReceived(el, sender, owner))
        if available:
            owners = model.pop(sender, set())
            if not owners and len(model) >= 3:
                model.pop(next(iter(model)))
            model[sender] = owners | {owner}
        elif sender in model:
            model[sender].discard(owner)
            if not model[sender]:
                del model[sender]
        for jid in {JID.parse(f"user{i}@remote.example/res") for i in range(6)}:
            assert caps.remote_owners(jid) == model.get(jid, set())
        assert len(model) <= 3
