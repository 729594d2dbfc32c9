"""PEP (XEP-0163) through the router: iqs to one's own bare JID, auto-create,
presence-based delivery filtered by +notify, last items at presence, private
nodes (XEP-0223), OMEMO's publish-options."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from test_pubsub_helpers import (
    EVENT,
    PS,
    SESSION_OF,
    World,
    error_of,
    form,
    notifications,
    ok,
    publish,
)

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Effect
from xmpp_sansio.server.effects import Persist, RouteRemote
from xmpp_sansio.server.pubsub.store import PubSubServiceDelete
from xmpp_sansio.server.stages import Context
from xmpp_sansio.testing import x

NICK = "http://jabber.org/protocol/nick"
OMEMO_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
PUBLISH_OPTIONS = PS + "#publish-options"


def nick(name: str) -> str:
    return f"<nick xmlns='{NICK}'>{name}</nick>"


def get_items(node: str, of: str) -> str:
    return (
        f"<iq type='get' id='g' to='{of}'><pubsub xmlns='{PS}'><items node='{node}'/></pubsub></iq>"
    )


@pytest.fixture
def world() -> World:
    w = World()
    w.contacts.add("romeo@example.com", "juliet@example.com", "nurse@example.com")
    return w


def test_publish_to_own_bare_jid_auto_creates_and_notifies_contacts_with_notify(
    world: World,
) -> None:
    world.online("romeo")
    world.online("juliet", NICK)
    world.online("nurse")  # a contact without +notify for the node
    world.online("tybalt", NICK)  # +notify, but not a contact
    answer = ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current", "romeo@example.com")))
    assert answer.find(f".//{{{PS}}}item").get("id") == "current"  # type: ignore[union-attr]
    (note,) = notifications(world.others)
    assert note.get("to") == "juliet@example.com/balcony"
    assert note.get("from") == "romeo@example.com"
    assert note.findtext(f".//{{{NICK}}}nick") == "Romeo"


def test_publish_without_to_is_the_own_account(world: World) -> None:
    world.online("romeo", NICK)
    ok(world.iq("romeo", publish(NICK, nick("R"))))
    (own,) = notifications(world.others)
    assert own.get("to") == "romeo@example.com/orchard"


def test_only_the_owner_publishes(world: World) -> None:
    world.online("juliet")
    answer = world.iq("juliet", publish(NICK, nick("x"), to="romeo@example.com"))
    assert error_of(answer) == ("forbidden", None)


def test_contact_retrieves_under_the_access_model(world: World) -> None:
    world.online("romeo")
    world.online("juliet")
    world.online("tybalt")
    ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current", "romeo@example.com")))
    answer = ok(world.iq("juliet", get_items(NICK, "romeo@example.com")))
    assert answer.findtext(f".//{{{NICK}}}nick") == "Romeo"
    assert error_of(world.iq("tybalt", get_items(NICK, "romeo@example.com"))) == (
        "not-authorized",
        "presence-subscription-required",
    )


def test_private_nodes_are_never_readable_by_another_user(world: World) -> None:
    """XEP-0223: access_model=whitelist; even a contact gets closed-node."""
    world.online("romeo")
    world.online("juliet", "storage:bookmarks")
    options = form(PUBLISH_OPTIONS, persist_items="true", access_model="whitelist")
    secret = "<storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage>"
    ok(
        world.iq(
            "romeo", publish("storage:bookmarks", secret, "current", "romeo@example.com", options)
        )
    )
    assert notifications(world.others) == []
    for who in ("juliet", "tybalt"):
        assert error_of(world.iq(who, get_items("storage:bookmarks", "romeo@example.com"))) == (
            "not-allowed",
            "closed-node",
        )
    subscribe = (
        f"<iq type='set' id='s' to='romeo@example.com'><pubsub xmlns='{PS}'>"
        "<subscribe node='storage:bookmarks' jid='juliet@example.com'/></pubsub></iq>"
    )
    assert error_of(world.iq("juliet", subscribe)) == ("not-allowed", "closed-node")
    assert ok(world.iq("romeo", get_items("storage:bookmarks", "romeo@example.com")))


def test_omemo_publish_options_on_fresh_and_on_differently_configured_node(world: World) -> None:
    world.online("romeo")
    options = form(PUBLISH_OPTIONS, access_model="open", max_items="max")
    devices = "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>"
    ok(world.iq("romeo", publish(OMEMO_DEVICES, devices, "current", "", options)))
    ok(world.iq("romeo", publish(OMEMO_DEVICES, devices, "current", "", options)))
    ok(world.iq("romeo", publish("other", devices, "current")))  # PEP defaults: presence, 1
    assert error_of(world.iq("romeo", publish("other", devices, "current", "", options))) == (
        "conflict",
        "precondition-not-met",
    )
    # The open node is readable by anyone.
    world.online("tybalt")
    assert ok(world.iq("tybalt", get_items(OMEMO_DEVICES, "romeo@example.com")))


def test_last_item_goes_to_a_contact_coming_online_with_notify(world: World) -> None:
    world.online("romeo")
    ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current")))
    delivered = world.online("juliet", NICK)
    (note,) = notifications(delivered, SESSION_OF["juliet"])
    assert note.findtext(f".//{{{NICK}}}nick") == "Romeo"
    assert note.find("{urn:xmpp:delay}delay") is not None
    assert notifications(world.online("tybalt", NICK)) == []  # not a contact


def test_last_item_when_caps_are_learned_after_presence(world: World) -> None:
    world.online("romeo")
    ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current")))
    assert notifications(world.online("juliet")) == []
    juliet = JID.parse("juliet@example.com/balcony")
    world.caps[juliet] = frozenset({NICK + "+notify"})
    effects = world.router.drain(world.pep.caps_learned(world.router._ctx, juliet))
    (note,) = notifications(world.commit(effects))
    assert note.get("to") == str(juliet)
    assert world.router.drain(world.pep.caps_learned(world.router._ctx, juliet)) == []


def test_retract_notifies_contacts(world: World) -> None:
    world.online("romeo")
    world.online("juliet", NICK)
    ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current")))
    retract = (
        f"<iq type='set' id='r'><pubsub xmlns='{PS}'><retract node='{NICK}' notify='1'>"
        "<item id='current'/></retract></pubsub></iq>"
    )
    ok(world.iq("romeo", retract))
    (note,) = notifications(world.others)
    assert note.find(f".//{{{EVENT}}}retract") is not None


def test_account_removal_deletes_its_nodes(world: World) -> None:
    world.online("romeo")
    ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current")))
    effects = world.router.end_sessions(
        JID.parse("romeo@example.com"), StreamErrorCondition.NOT_AUTHORIZED, removed=True
    )
    world.commit(effects)
    assert PubSubServiceDelete("romeo@example.com") in world.ops
    assert world.pep_storage.load("romeo@example.com") == []


def test_a_failed_commit_makes_the_engine_read_storage_again(world: World) -> None:
    world.online("romeo")
    effects = world.router.route(SESSION_OF["romeo"], x(publish(NICK, nick("lost"), "current")))
    persists = [e for e in effects if isinstance(e, Persist)]
    assert persists
    world.router.persisted(persists, StanzaErrorCondition.INTERNAL_SERVER_ERROR)
    assert world.pep_engine.nodes("romeo@example.com") == {}


def test_pep_costs_nothing_for_iqs_it_does_not_own(world: World) -> None:
    world.online("romeo")
    version = (
        "<iq type='get' id='v' to='juliet@example.com'><query xmlns='jabber:iq:version'/></iq>"
    )
    assert error_of(world.iq("romeo", version)) == ("service-unavailable", None)
    assert world.pep_engine._services == {}


# -- contacts on other servers (XEP-0163 §4.3.1 with XEP-0115) ------------------------------

MERCUTIO = JID.parse("mercutio@verona.example/street")


def remote_presence(world: World, sender: JID, to: str, available: bool = True) -> list[Effect]:
    """``sender``'s presence reaches ``to`` over the link (its caps are in
    ``world.caps``; the caps service would record it in ``world.remote``)."""
    if available:
        world.remote.setdefault(sender, set()).add(JID.parse(to))
    else:
        world.remote.get(sender, set()).discard(JID.parse(to))
    kind = "" if available else " type='unavailable'"
    stanza = x(f"<presence from='{sender}' to='{to}'{kind}/>")
    return world.router.route_from_remote(stanza, sender.domain)


def remote_notes(effects: list[Effect]) -> list[Element]:
    return [
        e.element
        for e in effects
        if isinstance(e, RouteRemote) and e.element.find(f"{{{EVENT}}}event") is not None
    ]


def test_a_remote_contact_with_notify_gets_the_last_item_then_publishes() -> None:
    world = World(federation=True)
    world.contacts.add("romeo@example.com", str(MERCUTIO.bare))
    world.online("romeo")
    ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current")))
    world.caps[MERCUTIO] = frozenset({NICK + "+notify"})
    (last,) = remote_notes(remote_presence(world, MERCUTIO, "romeo@example.com"))
    assert last.get("to") == str(MERCUTIO) and last.find("{urn:xmpp:delay}delay") is not None
    # Once per presence session: a presence update sends nothing again.
    assert remote_notes(remote_presence(world, MERCUTIO, "romeo@example.com")) == []
    # Caps verified later (the caps service's listener): nothing twice either.
    assert world.pep.caps_learned(Context(0.0, bytes), MERCUTIO) == []
    effects = world.router.route(SESSION_OF["romeo"], x(publish(NICK, nick("R2"), "current")))
    (note,) = remote_notes(effects)
    assert note.get("to") == str(MERCUTIO) and note.find("{urn:xmpp:delay}delay") is None
    remote_presence(world, MERCUTIO, "romeo@example.com", available=False)
    effects = world.router.route(SESSION_OF["romeo"], x(publish(NICK, nick("R3"), "current")))
    assert remote_notes(effects) == []


def test_a_remote_resource_without_notify_or_without_a_subscription_gets_nothing() -> None:
    world = World(federation=True)
    world.online("romeo")
    ok(world.iq("romeo", publish(NICK, nick("Romeo"), "current")))
    world.caps[MERCUTIO] = frozenset({NICK + "+notify"})
    # Not in romeo's roster (no presence subscription, XEP-0163 §4.3.1).
    assert remote_notes(remote_presence(world, MERCUTIO, "romeo@example.com")) == []
    effects = world.router.route(SESSION_OF["romeo"], x(publish(NICK, nick("R2"), "current")))
    assert remote_notes(effects) == []
    # A contact whose caps do not name the node.
    world.contacts.add("romeo@example.com", str(MERCUTIO.bare))
    world.caps[MERCUTIO] = frozenset({"urn:example:other+notify"})
    effects = world.router.route(SESSION_OF["romeo"], x(publish(NICK, nick("R3"), "current")))
    assert remote_notes(effects) == []
