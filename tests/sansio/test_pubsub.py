"""The pubsub service at pubsub.example.com (XEP-0060), through the router:
what each requester gets back and who is notified."""

from __future__ import annotations

import pytest
from test_pubsub_helpers import (
    EVENT,
    OWNER,
    PS,
    SESSION_OF,
    C,
    World,
    error_of,
    form,
    notifications,
    ok,
    publish,
)

from xmpp_sansio.forms import parse_form
from xmpp_sansio.server.pubsub.engine import PubSubLimits

HOST = "pubsub.example.com"
NODE_CONFIG = PS + "#node_config"
RSM = "http://jabber.org/protocol/rsm"
SHIM = "{http://jabber.org/protocol/shim}"


def create(node: str = "news", config: str = "") -> str:
    node_attr = f" node='{node}'" if node else ""
    return (
        f"<iq type='set' id='c' to='{HOST}'><pubsub xmlns='{PS}'><create{node_attr}/>"
        f"{config}</pubsub></iq>"
    )


def subscribe(node: str, jid: str) -> str:
    return (
        f"<iq type='set' id='s' to='{HOST}'><pubsub xmlns='{PS}'>"
        f"<subscribe node='{node}' jid='{jid}'/></pubsub></iq>"
    )


def items(node: str, extra: str = "", inner: str = "", rsm: str = "") -> str:
    return (
        f"<iq type='get' id='i' to='{HOST}'><pubsub xmlns='{PS}'><items node='{node}'{extra}>"
        f"{inner}</items>{rsm}</pubsub></iq>"
    )


def owner(payload: str) -> str:
    return f"<iq type='{{t}}' id='o' to='{HOST}'><pubsub xmlns='{OWNER}'>{payload}</pubsub></iq>"


def item_ids(answer: object) -> list[str]:
    from xml.etree.ElementTree import Element

    assert isinstance(answer, Element)
    return [i.get("id", "") for i in answer.iter(f"{{{PS}}}item")]


@pytest.fixture
def world() -> World:
    w = World()
    for who in ("romeo", "juliet", "nurse"):
        w.online(who)
    return w


def test_create_publish_subscribe_and_notify(world: World) -> None:
    ok(world.iq("romeo", create()))
    subscribed = ok(world.iq("juliet", subscribe("news", "juliet@example.com")))
    sub = subscribed.find(f"{{{PS}}}pubsub/{{{PS}}}subscription")
    assert sub is not None and sub.get("subscription") == "subscribed" and sub.get("subid")
    answer = ok(world.iq("romeo", publish("news", "<entry xmlns='urn:x'>hi</entry>", "i1", HOST)))
    assert item_ids(answer) == ["i1"]
    (note,) = notifications(world.others, SESSION_OF["juliet"])
    assert note.get("from") == HOST and note.get("type") == "headline"
    item = note.find(f"{{{EVENT}}}event/{{{EVENT}}}items/{{{EVENT}}}item")
    assert item is not None and item.get("id") == "i1"
    assert item.find("{urn:x}entry") is not None
    header = note.find(f"{SHIM}headers/{SHIM}header")
    assert header is not None and header.get("name") == "SubID" and header.text == sub.get("subid")
    assert notifications(world.others, SESSION_OF["nurse"]) == []


def test_instant_node_gets_a_generated_name(world: World) -> None:
    answer = ok(world.iq("romeo", create("")))
    created = answer.find(f"{{{PS}}}pubsub/{{{PS}}}create")
    assert created is not None and len(created.get("node", "")) == 16


def test_publish_without_id_gets_one_and_replace_keeps_one_item(world: World) -> None:
    ok(world.iq("romeo", create()))
    (generated,) = item_ids(ok(world.iq("romeo", publish("news", "<a xmlns='urn:x'/>", to=HOST))))
    assert generated
    ok(world.iq("romeo", publish("news", "<a xmlns='urn:x'>1</a>", "same", HOST)))
    ok(world.iq("romeo", publish("news", "<a xmlns='urn:x'>2</a>", "same", HOST)))
    answer = ok(world.iq("juliet", items("news")))
    assert item_ids(answer) == [generated, "same"]
    texts = [a.text for a in answer.iter("{urn:x}a")]
    assert texts == [None, "2"]


def test_errors_with_pubsub_conditions(world: World) -> None:
    ok(world.iq("romeo", create()))
    assert error_of(world.iq("romeo", create())) == ("conflict", None)
    assert error_of(world.iq("juliet", items("nope"))) == ("item-not-found", None)
    assert error_of(world.iq("juliet", publish("news", "<a xmlns='urn:x'/>", to=HOST))) == (
        "forbidden",
        None,
    )
    assert error_of(world.iq("juliet", subscribe("news", "romeo@example.com"))) == (
        "bad-request",
        "invalid-jid",
    )
    two = "<a xmlns='urn:x'/><b xmlns='urn:x'/>"
    assert error_of(world.iq("romeo", publish("news", two, to=HOST))) == (
        "bad-request",
        "invalid-payload",
    )
    unsub = (
        f"<iq type='set' id='u' to='{HOST}'><pubsub xmlns='{PS}'>"
        "<unsubscribe node='news' jid='nurse@example.com'/></pubsub></iq>"
    )
    assert error_of(world.iq("nurse", unsub)) == ("unexpected-request", "not-subscribed")
    options = f"<iq type='get' id='o' to='{HOST}'><pubsub xmlns='{PS}'><options node='news' jid='nurse@example.com'/></pubsub></iq>"
    answer = world.iq("nurse", options)
    assert error_of(answer) == ("feature-not-implemented", "unsupported")
    unsupported = answer.find(f"{C}error/{{{PS}#errors}}unsupported")
    assert unsupported is not None and unsupported.get("feature") == "subscription-options"
    assert error_of(world.iq("juliet", owner("<purge node='news'/>").format(t="set"))) == (
        "forbidden",
        None,
    )
    nodeless = f"<iq type='set' id='p' to='{HOST}'><pubsub xmlns='{PS}'><publish/></pubsub></iq>"
    assert error_of(world.iq("romeo", nodeless)) == ("bad-request", "nodeid-required")
    empty = f"<iq type='set' id='p' to='{HOST}'><pubsub xmlns='{PS}'><publish node='news'/></pubsub></iq>"
    assert error_of(world.iq("romeo", empty)) == ("bad-request", "item-required")


def test_limits_item_size_items_per_node_nodes_and_subscriptions() -> None:
    world = World(PubSubLimits(max_item_size=100, max_items=3, max_nodes=2, max_subscriptions=1))
    for who in ("romeo", "juliet", "nurse"):
        world.online(who)
    big = "<a xmlns='urn:x'>" + "x" * 100 + "</a>"
    ok(world.iq("romeo", create("one")))
    assert error_of(world.iq("romeo", publish("one", big, to=HOST))) == (
        "not-acceptable",
        "payload-too-big",
    )
    ok(world.iq("romeo", create("two")))
    assert error_of(world.iq("romeo", create("three"))) == ("not-allowed", "max-nodes-exceeded")
    for n in range(5):
        ok(world.iq("romeo", publish("one", f"<a xmlns='urn:x'>{n}</a>", f"i{n}", HOST)))
    # max_items defaults to 10 but the service allows 3 at most.
    assert item_ids(ok(world.iq("romeo", items("one")))) == ["i2", "i3", "i4"]
    ok(world.iq("juliet", subscribe("one", "juliet@example.com")))
    assert error_of(world.iq("nurse", subscribe("one", "nurse@example.com"))) == (
        "resource-constraint",
        None,
    )


def test_retrieve_max_items_by_id_and_rsm_pages(world: World) -> None:
    ok(world.iq("romeo", create()))
    for n in range(5):
        ok(world.iq("romeo", publish("news", f"<a xmlns='urn:x'>{n}</a>", f"i{n}", HOST)))
    assert item_ids(ok(world.iq("juliet", items("news", " max_items='2'")))) == ["i3", "i4"]
    by_id = "<item id='i1'/><item id='missing'/><item id='i3'/>"
    assert item_ids(ok(world.iq("juliet", items("news", inner=by_id)))) == ["i1", "i3"]
    page1 = ok(world.iq("juliet", items("news", rsm=f"<set xmlns='{RSM}'><max>2</max></set>")))
    assert item_ids(page1) == ["i0", "i1"]
    assert page1.findtext(f".//{{{RSM}}}last") == "i1"
    assert page1.findtext(f".//{{{RSM}}}count") == "5"
    page2 = ok(
        world.iq(
            "juliet", items("news", rsm=f"<set xmlns='{RSM}'><max>2</max><after>i1</after></set>")
        )
    )
    assert item_ids(page2) == ["i2", "i3"]
    last = ok(
        world.iq("juliet", items("news", rsm=f"<set xmlns='{RSM}'><max>2</max><before/></set>"))
    )
    assert item_ids(last) == ["i3", "i4"]


def test_retract_notifies_and_purge_and_delete_with_redirect(world: World) -> None:
    ok(world.iq("romeo", create()))
    ok(world.iq("juliet", subscribe("news", "juliet@example.com")))
    ok(world.iq("romeo", publish("news", "<a xmlns='urn:x'/>", "i1", HOST)))
    retract = (
        f"<iq type='set' id='r' to='{HOST}'><pubsub xmlns='{PS}'>"
        "<retract node='news' notify='true'><item id='i1'/></retract></pubsub></iq>"
    )
    ok(world.iq("romeo", retract))
    (note,) = notifications(world.others, SESSION_OF["juliet"])
    assert note.find(f".//{{{EVENT}}}retract").get("id") == "i1"  # type: ignore[union-attr]
    assert error_of(world.iq("romeo", retract)) == ("item-not-found", None)
    ok(world.iq("romeo", owner("<purge node='news'/>").format(t="set")))
    assert (
        notifications(world.others, SESSION_OF["juliet"])[0].find(f".//{{{EVENT}}}purge")
        is not None
    )
    ok(
        world.iq(
            "romeo",
            owner(
                "<delete node='news'><redirect uri='xmpp:pubsub.example.com?;node=new'/></delete>"
            ).format(t="set"),
        )
    )
    (gone,) = notifications(world.others, SESSION_OF["juliet"])
    redirect = gone.find(f".//{{{EVENT}}}delete/{{{EVENT}}}redirect")
    assert redirect is not None and redirect.get("uri") == "xmpp:pubsub.example.com?;node=new"
    assert error_of(world.iq("juliet", items("news"))) == ("item-not-found", None)


def test_configuration_round_trips_through_the_form(world: World) -> None:
    config = form(
        NODE_CONFIG, "configure", PS, access_model="whitelist", max_items="max", title="T"
    )
    ok(world.iq("romeo", create("cfg", config)))
    answer = ok(world.iq("romeo", owner("<configure node='cfg'/>").format(t="get")))
    x = answer.find(f"{{{OWNER}}}pubsub/{{{OWNER}}}configure/{{jabber:x:data}}x")
    assert x is not None
    got = parse_form(x)
    assert got.value("FORM_TYPE") == NODE_CONFIG
    assert got.value("pubsub#access_model") == "whitelist"
    assert got.value("pubsub#max_items") == "max"
    assert got.value("pubsub#title") == "T"
    change = form(NODE_CONFIG, "configure", OWNER, access_model="open", notify_retract="0")
    change = change.replace("<configure ", "<configure node='cfg' ")
    ok(
        world.iq(
            "romeo",
            f"<iq type='set' id='o' to='{HOST}'><pubsub xmlns='{OWNER}'>{change}</pubsub></iq>",
        )
    )
    again = ok(world.iq("romeo", owner("<configure node='cfg'/>").format(t="get")))
    x = again.find(".//{jabber:x:data}x")
    assert x is not None
    got = parse_form(x)
    assert got.value("pubsub#access_model") == "open"
    assert got.value("pubsub#notify_retract") == "0"
    assert got.value("pubsub#title") == "T"
    bad = form(NODE_CONFIG, "configure", OWNER, access_model="everyone")
    bad = bad.replace("<configure ", "<configure node='cfg' ")
    answer = world.iq(
        "romeo", f"<iq type='set' id='o' to='{HOST}'><pubsub xmlns='{OWNER}'>{bad}</pubsub></iq>"
    )
    assert error_of(answer) == ("not-acceptable", None)


def test_access_models(world: World) -> None:
    for model in ("presence", "roster", "whitelist", "authorize"):
        ok(world.iq("romeo", create(model, form(NODE_CONFIG, "configure", PS, access_model=model))))
        ok(world.iq("romeo", publish(model, "<a xmlns='urn:x'/>", "i", HOST)))
    assert error_of(world.iq("juliet", items("presence"))) == (
        "not-authorized",
        "presence-subscription-required",
    )
    world.contacts.add("romeo@example.com", "juliet@example.com")
    assert item_ids(ok(world.iq("juliet", items("presence")))) == ["i"]
    assert error_of(world.iq("juliet", items("roster"))) == (
        "not-authorized",
        "not-in-roster-group",
    )
    assert error_of(world.iq("juliet", items("whitelist"))) == ("not-allowed", "closed-node")
    assert error_of(world.iq("juliet", items("authorize"))) == ("not-authorized", "not-subscribed")


def test_pending_subscription_is_approved_by_the_owner(world: World) -> None:
    ok(
        world.iq(
            "romeo", create("auth", form(NODE_CONFIG, "configure", PS, access_model="authorize"))
        )
    )
    ok(world.iq("romeo", publish("auth", "<a xmlns='urn:x'/>", "i", HOST)))
    answer = ok(world.iq("juliet", subscribe("auth", "juliet@example.com")))
    assert answer.find(f".//{{{PS}}}subscription").get("subscription") == "pending"  # type: ignore[union-attr]
    (ask,) = notifications(world.others, SESSION_OF["romeo"])
    assert ask.find(f".//{{{EVENT}}}subscription").get("subscription") == "pending"  # type: ignore[union-attr]
    listing = ok(world.iq("romeo", owner("<subscriptions node='auth'/>").format(t="get")))
    assert [s.get("subscription") for s in listing.iter(f"{{{OWNER}}}subscription")] == ["pending"]
    approve = "<subscriptions node='auth'><subscription jid='juliet@example.com' subscription='subscribed'/></subscriptions>"
    ok(world.iq("romeo", owner(approve).format(t="set")))
    juliet = notifications(world.others, SESSION_OF["juliet"])
    assert [n.find(f"{{{EVENT}}}event")[0].tag for n in juliet] == [  # type: ignore[index]
        f"{{{EVENT}}}subscription",
        f"{{{EVENT}}}items",
    ]
    assert item_ids(ok(world.iq("juliet", items("auth")))) == ["i"]


def test_affiliations_management_and_outcast(world: World) -> None:
    ok(world.iq("romeo", create()))
    ok(world.iq("juliet", subscribe("news", "juliet@example.com")))
    change = (
        "<affiliations node='news'><affiliation jid='nurse@example.com' affiliation='publisher'/>"
        "<affiliation jid='juliet@example.com' affiliation='outcast'/></affiliations>"
    )
    ok(world.iq("romeo", owner(change).format(t="set")))
    ok(world.iq("nurse", publish("news", "<a xmlns='urn:x'/>", "n", HOST)))
    assert error_of(world.iq("juliet", items("news"))) == ("forbidden", None)
    listing = ok(world.iq("romeo", owner("<affiliations node='news'/>").format(t="get")))
    got = {a.get("jid"): a.get("affiliation") for a in listing.iter(f"{{{OWNER}}}affiliation")}
    assert got == {
        "romeo@example.com": "owner",
        "nurse@example.com": "publisher",
        "juliet@example.com": "outcast",
    }
    last_owner = "<affiliations node='news'><affiliation jid='romeo@example.com' affiliation='none'/></affiliations>"
    assert error_of(world.iq("romeo", owner(last_owner).format(t="set"))) == (
        "not-acceptable",
        None,
    )


def test_publish_options_preconditions(world: World) -> None:
    options = form(PS + "#publish-options", access_model="open", max_items="max")
    ok(world.iq("romeo", publish("auto", "<a xmlns='urn:x'/>", "1", HOST, options)))
    ok(world.iq("romeo", publish("auto", "<a xmlns='urn:x'/>", "2", HOST, options)))
    other = form(PS + "#publish-options", access_model="whitelist")
    assert error_of(world.iq("romeo", publish("auto", "<a xmlns='urn:x'/>", "3", HOST, other))) == (
        "conflict",
        "precondition-not-met",
    )


def test_last_item_on_subscribe_carries_a_delay(world: World) -> None:
    ok(world.iq("romeo", create()))
    ok(world.iq("romeo", publish("news", "<a xmlns='urn:x'/>", "old", HOST)))
    ok(world.iq("juliet", subscribe("news", "juliet@example.com")))
    (note,) = notifications(world.others, SESSION_OF["juliet"])
    assert note.find("{urn:xmpp:delay}delay") is not None
    assert note.find(f".//{{{EVENT}}}item").get("id") == "old"  # type: ignore[union-attr]


def test_disco_info_of_the_service(world: World) -> None:
    answer = ok(
        world.iq(
            "romeo",
            f"<iq type='get' id='d' to='{HOST}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
    )
    features = {f.get("var") for f in answer.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert {PS, PS + "#publish-options", PS + "#errors", PS + "#access-whitelist"} <= features
    identity = answer.find(".//{http://jabber.org/protocol/disco#info}identity")
    assert identity is not None and identity.get("category") == "pubsub"


def test_state_survives_a_new_engine_over_the_same_storage(world: World) -> None:
    ok(world.iq("romeo", create()))
    ok(world.iq("juliet", subscribe("news", "juliet@example.com")))
    ok(world.iq("romeo", publish("news", "<a xmlns='urn:x'>kept</a>", "i1", HOST)))
    world.host_engine.forget()
    answer = ok(world.iq("juliet", items("news")))
    assert [a.text for a in answer.iter("{urn:x}a")] == ["kept"]
    ok(world.iq("romeo", publish("news", "<a xmlns='urn:x'/>", "i2", HOST)))
    assert len(notifications(world.others, SESSION_OF["juliet"])) == 1
