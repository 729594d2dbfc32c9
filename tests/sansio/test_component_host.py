"""An external component's hosts-table entry (XEP-0114, issue 20): stanzas to
its domain become Deliver effects to its connection; while it is away they
are bounced (service-unavailable) or held (bounded); a second connection is
refused or replaces the first; what it sends routes like any host's."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.disco import parse_disco_items
from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Disconnect, Effect, Router
from xmpp_sansio.server.component import ComponentHost, ComponentSettings, OnConflict, WhenAway
from xmpp_sansio.server.disco import DiscoService
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x

C = "{jabber:client}"
ROMEO, GW1, GW2 = 10, 20, 21
GW = "gw.example.com"


def make_router(settings: ComponentSettings | None = None) -> tuple[Router, ComponentHost]:
    host = ComponentHost(settings)
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local == "romeo",
        services=[DiscoService()],
        hosts={GW: host},
    )
    router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    return router, host


def message(to: str, body: str = "hi") -> Element:
    return x(f"<message to='{to}' type='chat'><body>{body}</body></message>")


def delivered(effects: list[Effect], session: int) -> list[Element]:
    return [e.element for e in effects if isinstance(e, Deliver) and e.session == session]


@pytest.mark.parametrize("to", [GW, f"alice@{GW}", f"alice@{GW}/irc"])
def test_stanzas_to_any_jid_at_the_domain_go_to_the_component(to: str) -> None:
    router, host = make_router()
    assert host.connected(GW1) == []
    (got,) = delivered(router.route(ROMEO, message(to)), GW1)
    assert got.get("to") == to and got.get("from") == "romeo@example.com/orchard"


def test_while_away_traffic_is_bounced_with_service_unavailable() -> None:
    router, _ = make_router()
    (bounce,) = delivered(router.route(ROMEO, message(f"alice@{GW}")), ROMEO)
    assert bounce.get("type") == "error" and bounce.get("from") == f"alice@{GW}"
    error = parse_error(bounce)
    assert error is not None and error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_while_away_traffic_is_queued_up_to_the_bound_then_bounced() -> None:
    router, host = make_router(ComponentSettings(when_away=WhenAway.QUEUE, max_queue=2))
    assert router.route(ROMEO, message(GW, "1")) == []
    assert router.route(ROMEO, message(GW, "2")) == []
    (bounce,) = delivered(router.route(ROMEO, message(GW, "3")), ROMEO)
    assert bounce.findtext(C + "body") == "3"
    effects = router.drain(host.connected(GW1) or [])
    assert [e.findtext(C + "body") for e in delivered(effects, GW1)] == ["1", "2"]
    assert not host.queue


def test_a_second_connection_is_refused_by_default() -> None:
    _, host = make_router()
    host.connected(GW1)
    assert host.connected(GW2) is None
    assert host.session == GW1
    host.disconnected(GW2)  # the refused one ending changes nothing
    assert host.session == GW1


def test_a_second_connection_replaces_the_first_when_configured() -> None:
    _, host = make_router(ComponentSettings(on_conflict=OnConflict.REPLACE))
    host.connected(GW1)
    assert host.connected(GW2) == [Disconnect(GW1, StreamErrorCondition.CONFLICT)]
    host.disconnected(GW1)  # the old stream ending later does not unplug the new one
    assert host.session == GW2


def test_the_components_stanzas_route_like_any_hosts() -> None:
    router, host = make_router()
    host.connected(GW1)
    (got,) = delivered(
        router.route_inbound(
            x(
                f"<message to='romeo@example.com/orchard' from='bot@{GW}/x' type='chat'><body>b</body></message>"
            )
        ),
        ROMEO,
    )
    assert got.get("from") == f"bot@{GW}/x"
    # an error for the component (no such user) goes back to it
    (bounce,) = delivered(
        router.route_inbound(
            x(
                f"<iq to='nobody@example.com/x' from='bot@{GW}/x' type='get' id='q'><query xmlns='jabber:iq:version'/></iq>"
            )
        ),
        GW1,
    )
    assert bounce.get("type") == "error" and bounce.get("to") == f"bot@{GW}/x"


def test_the_servers_disco_items_list_the_component() -> None:
    router, _ = make_router()
    query = x(
        "<iq to='example.com' type='get' id='d'>"
        "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
    )
    (answer,) = delivered(router.route(ROMEO, query), ROMEO)
    items = parse_disco_items(answer.find("{http://jabber.org/protocol/disco#items}query"))
    assert GW in {str(item.jid) for item in items.items}


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.sampled_from(["send", "connect1", "connect2", "leave1", "leave2"]), max_size=40
    ),
    queue=st.booleans(),
    replace=st.booleans(),
    max_queue=st.integers(min_value=0, max_value=3),
)
def test_every_stanza_is_delivered_held_or_bounced_exactly_once(
    ops: list[str], queue: bool, replace: bool, max_queue: int
) -> None:
    """Whatever the order of connections and stanzas: each stanza sent is
    delivered to the connection that serves the domain, held (never more than
    max_queue) or bounced to its sender, and exactly one of those."""
    settings = ComponentSettings(
        when_away=WhenAway.QUEUE if queue else WhenAway.BOUNCE,
        max_queue=max_queue,
        on_conflict=OnConflict.REPLACE if replace else OnConflict.REFUSE,
    )
    router, host = make_router(settings)
    seen: list[str] = []
    for n, op in enumerate(ops):
        if op == "send":
            body = str(n)
            effects = router.route(ROMEO, message(GW, body))
            held = len(host.queue) and host.queue[-1].findtext(C + "body") == body
            to_gw = [e for e in effects if isinstance(e, Deliver) and e.session != ROMEO]
            bounced = delivered(effects, ROMEO)
            assert len(to_gw) + len(bounced) + bool(held) == 1
            if to_gw:
                assert to_gw[0].session == host.session
                seen.append(body)
        elif op.startswith("connect"):
            session = GW1 if op.endswith("1") else GW2
            before = list(host.queue)
            outcomes = host.connected(session)
            if outcomes is not None:
                effects = router.drain(outcomes)
                flushed = delivered(effects, session)
                assert flushed == before and not host.queue
                seen.extend(e.findtext(C + "body") or "" for e in flushed)
        else:
            host.disconnected(GW1 if op.endswith("1") else GW2)
        assert len(host.queue) <= max_queue
        assert not host.queue or host.session is None
    assert len(seen) == len(set(seen))
