"""XEP-0402 #compat: PEP bookmarks and XEP-0048 bookmarks in private XML
storage kept in step, both ways, through the router."""

from __future__ import annotations

from test_pubsub_helpers import EVENT, PS, World, form, notifications, ok, publish

from xmpp_sansio.jid import JID
from xmpp_sansio.xml.parser import parse_fragment

BOOKMARKS = "urn:xmpp:bookmarks:1"
LEGACY = "storage:bookmarks"
ROMEO = JID.parse("romeo@example.com")
OPTIONS = form(
    PS + "#publish-options",
    persist_items="true",
    max_items="max",
    send_last_published_item="never",
    access_model="whitelist",
)


def conference(name: str, nick: str = "R") -> str:
    return (
        f"<conference xmlns='{BOOKMARKS}' name='{name}' autojoin='true'><nick>{nick}</nick>"
        "</conference>"
    )


def private_set(storage: str) -> str:
    return f"<iq type='set' id='ps'><query xmlns='jabber:iq:private'>{storage}</query></iq>"


def stored_legacy(world: World) -> list[tuple[str | None, str | None, str | None]]:
    raw = world.private_storage.get(ROMEO, LEGACY, "storage")
    assert raw is not None
    storage = parse_fragment(raw)
    return [
        (c.get("jid"), c.get("name"), c.findtext(f"{{{LEGACY}}}nick"))
        for c in storage.iterfind(f"{{{LEGACY}}}conference")
    ]


def test_a_pep_bookmark_is_written_to_private_xml_keeping_urls() -> None:
    world = World(compat=True)
    world.online("romeo")
    url = f"<storage xmlns='{LEGACY}'><url name='home' url='https://example.com/'/></storage>"
    ok(world.iq("romeo", private_set(url)))
    ok(
        world.iq(
            "romeo", publish(BOOKMARKS, conference("Verona"), "v@conf.example.com", "", OPTIONS)
        )
    )
    assert stored_legacy(world) == [("v@conf.example.com", "Verona", "R")]
    raw = world.private_storage.get(ROMEO, LEGACY, "storage")
    assert raw is not None and b"https://example.com/" in raw
    retract = (
        f"<iq type='set' id='r'><pubsub xmlns='{PS}'><retract node='{BOOKMARKS}'>"
        "<item id='v@conf.example.com'/></retract></pubsub></iq>"
    )
    ok(world.iq("romeo", retract))
    assert stored_legacy(world) == []


def test_a_legacy_private_set_updates_the_pep_node_with_notifications_for_changes() -> None:
    world = World(compat=True)
    world.online("romeo", BOOKMARKS)
    ok(world.iq("romeo", publish(BOOKMARKS, conference("A"), "a@conf.example.com", "", OPTIONS)))
    ok(world.iq("romeo", publish(BOOKMARKS, conference("B"), "b@conf.example.com", "", OPTIONS)))
    legacy = (
        f"<storage xmlns='{LEGACY}'>"
        "<conference jid='a@conf.example.com' name='A' autojoin='true'><nick>R</nick></conference>"
        "<conference jid='c@conf.example.com' name='C' autojoin='1'><nick>R</nick></conference>"
        "</storage>"
    )
    answer = ok(world.iq("romeo", private_set(legacy)))
    assert answer.get("id") == "ps"
    events = [n.find(f"{{{EVENT}}}event/{{{EVENT}}}items") for n in notifications(world.others)]
    published = [i.get("id") for e in events if e is not None for i in e.iter(f"{{{EVENT}}}item")]
    retracted = [
        r.get("id") for e in events if e is not None for r in e.iter(f"{{{EVENT}}}retract")
    ]
    assert published == ["c@conf.example.com"]  # a is unchanged: no notification
    assert retracted == ["b@conf.example.com"]
    items = world.pep_engine.nodes("romeo@example.com")[BOOKMARKS].items
    assert list(items) == ["a@conf.example.com", "c@conf.example.com"]
    assert stored_legacy(world) == [
        ("a@conf.example.com", "A", "R"),
        ("c@conf.example.com", "C", "R"),
    ]
    # The private XML write went through the private storage service, once.
    assert [d.session for d in world.others if d.element.tag.endswith("iq")] == []


def test_the_account_advertises_compat() -> None:
    world = World(compat=True)
    assert "urn:xmpp:bookmarks:1#compat" in world.router.account_features()
