"""Tests for xmpp_sansio.server.disco: the server's own service discovery
(XEP-0030) and capabilities (XEP-0115 §6.3, XEP-0390 §5.2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar
from xml.etree.ElementTree import Element

import pytest

from xmpp_sansio.disco import (
    DiscoInfo,
    DiscoItem,
    DiscoItems,
    Identity,
    caps2_node,
    caps_ver,
    parse_caps,
    parse_caps2,
    parse_disco_info,
    parse_disco_items,
)
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.forms import Field, FieldType, Form, FormType
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Reply, Router
from xmpp_sansio.server.caps import CapsService
from xmpp_sansio.server.disco import DEFAULT_CAPS_NODE, DiscoService
from xmpp_sansio.server.info import TimeService, VersionService
from xmpp_sansio.server.service import Service
from xmpp_sansio.server.stages import Context, IqReceived
from xmpp_sansio.stanza import Iq, parse_error, parse_stanza
from xmpp_sansio.testing import seeded_rng, x

DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
PING = "urn:xmpp:ping"
ACCOUNTS = {("juliet", "example.com"), ("romeo", "example.com")}
BALCONY, ORCHARD = 1, 2


class Blocking(Service):
    """A stand-in for a service that adds server and account features."""

    server_features: ClassVar[tuple[str, ...]] = ("urn:xmpp:blocking",)
    account_features: ClassVar[tuple[str, ...]] = ("urn:xmpp:blocking", DISCO_INFO)


def make_router(*services: Service) -> Router:
    router = Router(
        ["example.com", "example.net"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=services,
    )
    router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    router.bind(ORCHARD, JID.parse("romeo@example.com/orchard"))
    return router


def the_reply(effects: Sequence[Effect], session: int = BALCONY) -> Element:
    assert len(effects) == 1, effects
    effect = effects[0]
    assert isinstance(effect, Deliver) and effect.session == session
    return effect.element


def result_payload(effects: Sequence[Effect], session: int = BALCONY) -> Element:
    reply = the_reply(effects, session)
    assert reply.get("type") == "result", reply.attrib
    assert len(reply) == 1
    return reply[0]


def error_condition(effects: Sequence[Effect], session: int = BALCONY) -> StanzaErrorCondition:
    reply = the_reply(effects, session)
    assert reply.get("type") == "error"
    return parse_error(reply).condition


def info_request(to: str | None = None, node: str | None = None, type_: str = "get") -> Element:
    to_attr = "" if to is None else f" to='{to}'"
    node_attr = "" if node is None else f" node='{node}'"
    return x(f"<iq type='{type_}' id='d1'{to_attr}><query xmlns='{DISCO_INFO}'{node_attr}/></iq>")


def items_request(to: str | None = None, node: str | None = None) -> Element:
    to_attr = "" if to is None else f" to='{to}'"
    node_attr = "" if node is None else f" node='{node}'"
    return x(f"<iq type='get' id='i1'{to_attr}><query xmlns='{DISCO_ITEMS}'{node_attr}/></iq>")


@pytest.fixture
def disco() -> DiscoService:
    return DiscoService()


# ---------------------------------------------------------------------------
# the server's disco#info


@pytest.mark.parametrize("to", [None, "example.com", "example.net"])
def test_server_info_lists_identity_and_the_features_of_plugged_services(
    disco: DiscoService, to: str | None
) -> None:
    router = make_router(VersionService("1.0"), TimeService(), CapsService(), disco)
    effects = router.route(BALCONY, info_request(to))
    reply = the_reply(effects)
    assert reply.get("id") == "d1" and reply.get("to") == "juliet@example.com/balcony"
    assert reply.get("from") == to
    info = parse_disco_info(result_payload(effects))
    assert info.identities == (Identity("server", "im", "xmpp-trio"),)
    assert info.features == (
        "http://jabber.org/protocol/caps",
        DISCO_INFO,
        DISCO_ITEMS,
        "jabber:iq:version",
        "urn:xmpp:caps",
        PING,
        "urn:xmpp:time",
    )
    assert info.node is None


def test_server_info_is_truthful_to_what_is_plugged_in(disco: DiscoService) -> None:
    router = make_router(disco)
    info = parse_disco_info(result_payload(router.route(BALCONY, info_request())))
    # disco itself and the router's XEP-0199 ping, nothing else.
    assert info.features == (DISCO_INFO, DISCO_ITEMS, PING)
    with_blocking = make_router(Blocking(), Blocking(), DiscoService())
    info = parse_disco_info(result_payload(with_blocking.route(BALCONY, info_request())))
    assert info.features == (DISCO_INFO, DISCO_ITEMS, "urn:xmpp:blocking", PING)


def test_server_info_carries_configured_identities_and_extension_forms() -> None:
    contact = Form(
        FormType.RESULT,
        fields=(
            Field("FORM_TYPE", FieldType.HIDDEN, values=("http://jabber.org/network/serverinfo",)),
            Field("admin-addresses", values=("xmpp:admin@example.com",)),
        ),
    )
    disco = DiscoService(
        identities=(Identity("server", "im", "Example IM"), Identity("pubsub", "pep")),
        forms=(contact,),
    )
    router = make_router(disco)
    info = parse_disco_info(result_payload(router.route(BALCONY, info_request())))
    assert info.identities == (Identity("server", "im", "Example IM"), Identity("pubsub", "pep"))
    assert info.forms == (contact,)
    assert disco.server_info() == info


def test_unknown_server_node_is_item_not_found(disco: DiscoService) -> None:
    router = make_router(disco)
    effects = router.route(BALCONY, info_request(node="http://jabber.org/protocol/commands"))
    assert error_condition(effects) is StanzaErrorCondition.ITEM_NOT_FOUND
    effects = router.route(BALCONY, items_request("example.com", node="music"))
    assert error_condition(effects) is StanzaErrorCondition.ITEM_NOT_FOUND


def test_disco_set_is_a_bad_request(disco: DiscoService) -> None:
    router = make_router(disco)
    effects = router.route(BALCONY, info_request(type_="set"))
    assert error_condition(effects) is StanzaErrorCondition.BAD_REQUEST


def test_disco_results_sent_to_the_server_are_not_answered(disco: DiscoService) -> None:
    router = make_router(disco)
    stanza = x(f"<iq type='result' id='d9'><query xmlns='{DISCO_INFO}'/></iq>")
    assert router.route(BALCONY, stanza) == []


# ---------------------------------------------------------------------------
# caps of the server


def test_caps_ver_is_computed_from_the_servers_disco_info(disco: DiscoService) -> None:
    router = make_router(VersionService("1.0"), disco)
    info = parse_disco_info(result_payload(router.route(BALCONY, info_request())))
    assert disco.caps_ver() == caps_ver(info)
    assert disco.caps_ver("sha-256") == caps_ver(info, "sha-256")
    features = Element("{http://etherx.jabber.org/streams}features")
    features.append(disco.caps_element())
    caps = parse_caps(features)
    assert caps is not None
    assert (caps.hash, caps.node, caps.ver) == ("sha-1", DEFAULT_CAPS_NODE, disco.caps_ver())


def test_caps_ver_changes_when_services_change() -> None:
    plain, more = DiscoService(), DiscoService()
    make_router(plain)
    make_router(VersionService("1.0"), more)
    assert plain.caps_ver() != more.caps_ver()


def test_the_caps_node_answers_with_the_same_info(disco: DiscoService) -> None:
    # XEP-0115 §6.2, §6.3: clients query node#ver at the server's JID.
    router = make_router(disco)
    node = f"{DEFAULT_CAPS_NODE}#{disco.caps_ver()}"
    info = parse_disco_info(result_payload(router.route(BALCONY, info_request(node=node))))
    assert info == disco.server_info().with_node(node)  # the node is mirrored (XEP-0030 §3.2)
    sha256_node = f"{DEFAULT_CAPS_NODE}#{disco.caps_ver('sha-256')}"
    info = parse_disco_info(result_payload(router.route(BALCONY, info_request(node=sha256_node))))
    assert info.node == sha256_node
    stale = f"{DEFAULT_CAPS_NODE}#QgayPKawpkPSDYmwT/WM94uAlu0="
    effects = router.route(BALCONY, info_request(node=stale))
    assert error_condition(effects) is StanzaErrorCondition.ITEM_NOT_FOUND


def test_the_caps2_hash_node_answers_with_the_same_info() -> None:
    disco = DiscoService(caps2_algos=("sha-256", "sha3-256"))
    router = make_router(disco)
    hashes = disco.caps2_hashes()
    assert set(hashes) == {"sha-256", "sha3-256"}
    assert parse_caps2(_wrap(disco.caps2_element())) == hashes
    for algo, value in hashes.items():
        node = caps2_node(algo, value)
        info = parse_disco_info(result_payload(router.route(BALCONY, info_request(node=node))))
        assert info.node == node and info.features == disco.server_info().features


def _wrap(child: Element) -> Element:
    parent = Element("{http://etherx.jabber.org/streams}features")
    parent.append(child)
    return parent


def test_unsupported_caps2_algorithm_is_refused_up_front() -> None:
    with pytest.raises(ValueError):
        DiscoService(caps2_algos=("md5",))
    with pytest.raises(ValueError):
        DiscoService(identities=())
    with pytest.raises(ValueError):
        DiscoService(forms=(Form(FormType.RESULT, fields=(Field("os", values=("Linux",)),)),))


# ---------------------------------------------------------------------------
# the server's disco#items


def test_server_items_are_the_extra_items() -> None:
    conference = DiscoItem(JID.parse("conference.example.com"), name="Chatrooms")
    router = make_router(DiscoService(extra_items=(conference,)))
    items = parse_disco_items(result_payload(router.route(BALCONY, items_request())))
    assert items == DiscoItems((conference,))


def test_server_without_items_returns_an_empty_query(disco: DiscoService) -> None:
    # XEP-0030 §7: no items is an empty result, not an error.
    router = make_router(disco)
    payload = result_payload(router.route(BALCONY, items_request("example.com")))
    assert payload.tag == f"{{{DISCO_ITEMS}}}query" and len(payload) == 0


# ---------------------------------------------------------------------------
# disco on behalf of accounts


def test_account_info_for_the_account_itself() -> None:
    router = make_router(Blocking(), DiscoService())
    effects = router.route(BALCONY, info_request("juliet@example.com"))
    reply = the_reply(effects)
    assert reply.get("from") == "juliet@example.com"
    info = parse_disco_info(result_payload(effects))
    assert info == DiscoInfo(
        (Identity("account", "registered"),), (DISCO_INFO, DISCO_ITEMS, "urn:xmpp:blocking")
    )


def test_account_info_is_refused_to_strangers_like_a_missing_account(
    disco: DiscoService,
) -> None:
    # XEP-0030 §8 rule 1: service-unavailable when the requester may not see
    # the account's presence, the same as for an account that does not exist.
    router = make_router(disco)
    stranger = router.route(ORCHARD, info_request("juliet@example.com"))
    assert error_condition(stranger, ORCHARD) is StanzaErrorCondition.SERVICE_UNAVAILABLE
    missing = router.route(ORCHARD, info_request("nobody@example.com"))
    assert error_condition(missing, ORCHARD) is StanzaErrorCondition.SERVICE_UNAVAILABLE
    items = router.route(ORCHARD, items_request("juliet@example.com"))
    assert error_condition(items, ORCHARD) is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_presence_authorized_requesters_get_the_account_info() -> None:
    allowed: set[tuple[JID, JID]] = set()
    router = make_router(DiscoService(presence_authorized=lambda r, a: (r, a) in allowed))
    allowed.add((JID.parse("romeo@example.com"), JID.parse("juliet@example.com")))
    info = parse_disco_info(
        result_payload(router.route(ORCHARD, info_request("juliet@example.com")), ORCHARD)
    )
    assert info.identities == (Identity("account", "registered"),)


def test_the_server_itself_may_query_accounts(disco: DiscoService) -> None:
    make_router(disco)
    stanza = x(
        "<iq type='get' id='s1' from='example.com' to='juliet@example.com'>"
        f"<query xmlns='{DISCO_INFO}'/></iq>"
    )
    iq = parse_stanza(stanza)
    assert isinstance(iq, Iq)
    outcomes = disco.handle(Context(0.0, bytes), IqReceived(iq, JID.parse("juliet@example.com")))
    assert outcomes is not None and len(outcomes) == 1
    (reply,) = outcomes
    assert isinstance(reply, Reply)
    assert reply.element.get("type") == "result" and reply.element.get("to") == "example.com"


def test_account_node_is_item_not_found_and_account_items_are_empty(
    disco: DiscoService,
) -> None:
    router = make_router(disco)
    effects = router.route(BALCONY, info_request("juliet@example.com", node="urn:x"))
    assert error_condition(effects) is StanzaErrorCondition.ITEM_NOT_FOUND
    payload = result_payload(router.route(BALCONY, items_request("juliet@example.com")))
    assert payload.tag == f"{{{DISCO_ITEMS}}}query" and len(payload) == 0


def test_disco_to_a_full_jid_goes_to_the_client(disco: DiscoService) -> None:
    router = make_router(disco)
    effects = router.route(ORCHARD, info_request("juliet@example.com/balcony"))
    delivered = the_reply(effects)
    assert delivered.get("type") == "get" and delivered.get("from") == "romeo@example.com/orchard"
