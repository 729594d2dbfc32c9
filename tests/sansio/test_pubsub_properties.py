"""Property tests of the pubsub engine: the node_config form round-trips
for every configuration, and whatever sequence of requests runs, the
working copy equals what storage holds once the store operations are
committed (a restart sees what the engine saw)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_pubsub_helpers import PS, World, form, publish

from xmpp_sansio.forms import FormType, build_form, parse_form
from xmpp_sansio.server.pubsub.config import (
    AccessModel,
    NodeConfig,
    PublishModel,
    SendLast,
    apply_form,
    config_form,
)
from xmpp_sansio.server.pubsub.node import node_from_stored

LIMIT = 50

configs = st.builds(
    NodeConfig,
    access_model=st.sampled_from(AccessModel),
    publish_model=st.sampled_from(PublishModel),
    max_items=st.one_of(st.none(), st.integers(1, LIMIT)),
    persist_items=st.booleans(),
    deliver_notifications=st.booleans(),
    deliver_payloads=st.booleans(),
    notify_config=st.booleans(),
    notify_delete=st.booleans(),
    notify_retract=st.booleans(),
    send_last_published_item=st.sampled_from(SendLast),
    itemreply=st.sampled_from(["owner", "publisher"]),
    title=st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=20),
    roster_groups_allowed=st.lists(
        st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=8),
        max_size=3,
        unique=True,
    ).map(tuple),
)


@given(configs)
def test_node_config_round_trips_through_the_form(config: NodeConfig) -> None:
    shown = parse_form(build_form(config_form(config, max_items_limit=LIMIT)))
    submitted = shown.__class__(FormType.SUBMIT, fields=shown.fields)
    assert apply_form(NodeConfig(), submitted, max_items_limit=LIMIT) == config
    assert NodeConfig.from_pairs(config.pairs(), NodeConfig()) == config


ITEM_IDS = st.sampled_from(["a", "b", "c", "d"])
NODES = st.sampled_from(["n1", "n2"])
requests = st.one_of(
    st.tuples(st.just("publish"), NODES, ITEM_IDS),
    st.tuples(st.just("retract"), NODES, ITEM_IDS),
    st.tuples(st.just("purge"), NODES, ITEM_IDS),
    st.tuples(st.just("delete"), NODES, ITEM_IDS),
    st.tuples(st.just("configure"), NODES, st.sampled_from(["1", "2", "max"])),
    st.tuples(st.just("subscribe"), NODES, st.sampled_from(["juliet", "nurse"])),
)


def request_for(kind: str, node: str, arg: str) -> tuple[str, str]:
    owner_ns = PS + "#owner"
    if kind == "publish":
        return "romeo", publish(node, f"<a xmlns='urn:x'>{arg}</a>", arg)
    if kind == "retract":
        return "romeo", (
            f"<iq type='set' id='r'><pubsub xmlns='{PS}'><retract node='{node}'>"
            f"<item id='{arg}'/></retract></pubsub></iq>"
        )
    if kind in ("purge", "delete"):
        return "romeo", (
            f"<iq type='set' id='o'><pubsub xmlns='{owner_ns}'><{kind} node='{node}'/></pubsub></iq>"
        )
    if kind == "configure":
        x = form(PS + "#node_config", "configure", owner_ns, max_items=arg)
        x = x.replace("<configure ", f"<configure node='{node}' ")
        return "romeo", f"<iq type='set' id='o'><pubsub xmlns='{owner_ns}'>{x}</pubsub></iq>"
    return arg, (
        f"<iq type='set' id='s' to='romeo@example.com'><pubsub xmlns='{PS}'>"
        f"<subscribe node='{node}' jid='{arg}@example.com'/></pubsub></iq>"
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(requests, max_size=25))
def test_storage_holds_the_working_copy_after_any_requests(
    steps: list[tuple[str, str, str]],
) -> None:
    world = World()
    world.contacts.add("romeo@example.com", "juliet@example.com", "nurse@example.com")
    for who in ("romeo", "juliet", "nurse"):
        world.online(who)
    for kind, node, arg in steps:
        who, stanza = request_for(kind, node, arg)
        world.send(who, stanza)
    service = "romeo@example.com"
    working = world.pep_engine.nodes(service)
    stored = {
        n.name: node_from_stored(n, world.pep_engine.defaults)
        for n in world.pep_storage.load(service)
    }
    assert stored.keys() == working.keys()
    for name, node in working.items():
        again = stored[name]
        assert again.config == node.config
        assert [(i.id, i.publisher) for i in again.items.values()] == [
            (i.id, i.publisher) for i in node.items.values()
        ]
        limit = node.config.max_items or world.pep_engine.limits.max_items
        assert len(node.items) <= limit
        assert {j: (s.subid, s.state) for j, s in again.subscriptions.items()} == {
            j: (s.subid, s.state) for j, s in node.subscriptions.items()
        }


# -- bad input: every pubsub request gets one answer, never a traceback ---------------

_TAGS = [
    "publish", "retract", "subscribe", "unsubscribe", "items", "item", "create", "configure",
    "options", "publish-options", "subscriptions", "affiliations", "subscription",
    "affiliation", "delete", "purge", "default", "redirect", "set", "max", "after", "before",
]  # fmt: skip
_ATTRS = st.dictionaries(
    st.sampled_from(
        ["node", "jid", "id", "max_items", "subid", "notify", "subscription", "affiliation", "uri"]
    ),
    st.sampled_from(
        [
            "n1",
            "",
            "romeo@example.com",
            "x@",
            "@@",
            "-1",
            "0",
            "3",
            "true",
            "subscribed",
            "pending",
            "none",
            "owner",
            "outcast",
            "max",
        ]
    ),
    max_size=3,
)


@st.composite
def pubsub_trees(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(_TAGS))
    attrs = "".join(f" {k}='{v}'" for k, v in draw(_ATTRS).items())
    children = ""
    if depth < 2:
        children = "".join(draw(st.lists(pubsub_trees(depth + 1), max_size=3)))
    if draw(st.booleans()) and depth > 0:
        children += (
            "<x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'>"
            f"<value>{draw(st.sampled_from(['1', 'max', 'x', '']))}</value></field></x>"
        )
    return f"<{tag}{attrs}>{children}</{tag}>"


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([PS, PS + "#owner"]),
    st.sampled_from(["get", "set"]),
    st.sampled_from(["", " to='romeo@example.com'", " to='pubsub.example.com'"]),
    st.lists(pubsub_trees(), min_size=0, max_size=2),
)
def test_any_pubsub_request_gets_one_answer(ns: str, type_: str, to: str, trees: list[str]) -> None:
    world = World()
    world.online("romeo")
    world.iq("romeo", publish("n1", "<a xmlns='urn:x'/>", "i"))
    stanza = f"<iq type='{type_}' id='q'{to}><pubsub xmlns='{ns}'>{''.join(trees)}</pubsub></iq>"
    answer = world.iq("romeo", stanza)  # exactly one iq back, or it raises
    assert answer.get("id") == "q" and answer.get("type") in ("result", "error")
