"""Tests for xmpp_sansio.server.offline (XEP-0160 offline messages, XEP-0334 hints)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element

import pytest
from committing import CommittingRouter

from xmpp_sansio.delay import DELAY_TAG, find_delay
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.effects import Outcome
from xmpp_sansio.server.offline import (
    MemoryOfflineStorage,
    OfflineService,
    parse_fragment,
)
from xmpp_sansio.server.service import Service
from xmpp_sansio.server.stages import Context, Stage
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.writer import serialize

C = "{jabber:client}"
ACCOUNTS = {"juliet", "romeo", "nurse"}
JULIET = JID.parse("juliet@example.com")
BALCONY, CHAMBER, ROMEO = 1, 2, 10
T0 = 1031699305.0  # 2002-09-10T23:08:25Z


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def online(router: Router, session: int, priority: int | None = None) -> list[Effect]:
    prio = "" if priority is None else f"<priority>{priority}</priority>"
    return router.route(session, x(f"<presence>{prio}</presence>"))


def delivered(effects: Sequence[Effect], session: int, tag: str = "message") -> list[Element]:
    """The elements delivered to ``session`` with this local name."""
    return [
        e.element
        for e in effects
        if isinstance(e, Deliver) and e.session == session and e.element.tag == C + tag
    ]


def bodies(elements: Sequence[Element]) -> list[str | None]:
    return [el.findtext(C + "body") for el in elements]


def hand_over(router: Router, effects: Sequence[Effect]) -> list[Effect]:
    """Confirm every receipt in ``effects``, as the I/O layer does once the
    stanzas are written (or acknowledged), and return what that produced, the
    next pages' receipts confirmed too."""
    produced: list[Effect] = []
    todo = list(effects)
    while todo:
        effect = todo.pop(0)
        if isinstance(effect, Deliver) and effect.receipt is not None:
            more = router.handed_over(effect.session, effect.receipt)
            produced.extend(more)
            todo.extend(more)
    return produced


class Setup:
    def __init__(self, max_per_user: int = 1000, extra: Sequence[Service] = ()) -> None:
        self.clock = Clock()
        self.storage = MemoryOfflineStorage()
        self.service = OfflineService(self.storage, max_per_user=max_per_user)
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(0),
            account_exists=lambda local, domain: local in ACCOUNTS and domain == "example.com",
            services=[*extra, self.service],
            clock=self.clock,
        )
        self.router.store = self.storage
        self.router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
        online(self.router, ROMEO)

    def send(self, text: str) -> list[Effect]:
        return self.router.route(ROMEO, x(text))


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_message_to_account_without_resources_is_stored_silently(s: Setup) -> None:
    effects = s.send(
        "<message to='juliet@example.com' type='chat' id='m1'><body>O blessed night</body></message>"
    )
    assert effects == []
    assert s.storage.count(JULIET) == 1
    stored = s.storage.peek(JULIET)[0]
    assert stored.stamp == T0
    el = parse_fragment(stored.stanza)
    assert el.get("from") == "romeo@example.com/orchard"
    assert el.get("to") == "juliet@example.com"
    assert el.findtext(C + "body") == "O blessed night"


def test_message_to_bound_but_unavailable_resources_is_stored(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    assert s.send("<message to='juliet@example.com'><body>hi</body></message>") == []
    # a full JID that is not bound falls back to the bare JID (RFC 6121 §8.5.3.2.1)
    assert s.send("<message to='juliet@example.com/garden'><body>hi</body></message>") == []
    assert s.storage.count(JULIET) == 2


def test_stored_messages_are_delivered_at_initial_presence_oldest_first_with_delay(
    s: Setup,
) -> None:
    for i in range(3):
        s.clock.now = T0 + i
        s.send(f"<message to='juliet@example.com' type='chat'><body>m{i}</body></message>")
    s.clock.now = T0 + 3600
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = online(s.router, BALCONY, 1)
    messages = delivered(effects, BALCONY)
    assert bodies(messages) == ["m0", "m1", "m2"]
    for i, msg in enumerate(messages):
        assert msg.get("from") == "romeo@example.com/orchard"
        delays = msg.findall(DELAY_TAG)
        assert len(delays) == 1
        assert delays[0].attrib == {
            "from": "example.com",
            "stamp": f"2002-09-10T23:08:2{5 + i}Z",
        }
        assert delays[0].text == "Offline Storage"
    # the presence itself was broadcast to the session too, before the messages
    assert isinstance(effects[0], Deliver) and effects[0].element.tag == C + "presence"
    assert s.storage.count(JULIET) == 3  # kept until handed over
    assert hand_over(s.router, effects) == []
    assert s.storage.count(JULIET) == 0


def test_stored_messages_are_delivered_exactly_once(s: Setup) -> None:
    s.send("<message to='juliet@example.com'><body>once</body></message>")
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    s.router.bind(CHAMBER, JID.parse("juliet@example.com/chamber"))
    assert bodies(delivered(online(s.router, BALCONY), BALCONY)) == ["once"]
    assert delivered(online(s.router, CHAMBER), CHAMBER) == []
    assert delivered(online(s.router, BALCONY, 5), BALCONY) == []  # presence update


def test_negative_priority_does_not_flush_and_later_non_negative_does(s: Setup) -> None:
    s.send("<message to='juliet@example.com'><body>wait</body></message>")
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    assert delivered(online(s.router, BALCONY, -1), BALCONY) == []
    assert s.storage.count(JULIET) == 1
    # still no non-negative resource: a new message is stored too
    assert s.send("<message to='juliet@example.com'><body>more</body></message>") == []
    # XEP-0160 §2 step 5: non-negative available presence delivers
    effects = online(s.router, BALCONY, 0)
    assert bodies(delivered(effects, BALCONY)) == ["wait", "more"]
    hand_over(s.router, effects)
    assert s.storage.count(JULIET) == 0


def test_unavailable_presence_does_not_flush(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    s.send("<message to='juliet@example.com'><body>later</body></message>")
    effects = s.router.route(BALCONY, x("<presence type='unavailable'/>"))
    assert delivered(effects, BALCONY) == []
    assert s.storage.count(JULIET) == 1


def test_message_arriving_while_available_is_not_stored(s: Setup) -> None:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    online(s.router, BALCONY)
    effects = s.send("<message to='juliet@example.com'><body>live</body></message>")
    assert bodies(delivered(effects, BALCONY)) == ["live"]
    assert find_delay(delivered(effects, BALCONY)[0]) is None
    assert s.storage.count(JULIET) == 0


def test_full_quota_bounces_with_service_unavailable() -> None:
    s = Setup(max_per_user=2)
    assert s.send("<message to='juliet@example.com'><body>1</body></message>") == []
    assert s.send("<message to='juliet@example.com'><body>2</body></message>") == []
    effects = s.send("<message to='juliet@example.com' id='m3'><body>3</body></message>")
    assert len(effects) == 1 and isinstance(effects[0], Deliver)
    assert effects[0].session == ROMEO
    error = effects[0].element
    assert error.get("type") == "error" and error.get("id") == "m3"
    assert error.get("from") == "juliet@example.com"
    assert parse_error(error).condition is StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert s.storage.count(JULIET) == 2
    # other accounts have their own quota
    assert s.send("<message to='nurse@example.com'><body>1</body></message>") == []


@pytest.mark.parametrize("mtype", ["headline", "groupchat", "error"])
def test_headline_groupchat_and_error_messages_are_not_stored(s: Setup, mtype: str) -> None:
    s.send(f"<message to='juliet@example.com' type='{mtype}'><body>x</body></message>")
    assert s.storage.count(JULIET) == 0


def test_no_store_hint_is_not_stored_and_bounced(s: Setup) -> None:
    effects = s.send(
        "<message to='juliet@example.com' type='chat'><body>secret</body>"
        "<no-store xmlns='urn:xmpp:hints'/></message>"
    )
    assert s.storage.count(JULIET) == 0
    assert len(effects) == 1 and isinstance(effects[0], Deliver)
    assert parse_error(effects[0].element).condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_no_permanent_store_hint_is_still_stored_offline(s: Setup) -> None:
    s.send(
        "<message to='juliet@example.com' type='chat'><body>otr</body>"
        "<no-permanent-store xmlns='urn:xmpp:hints'/></message>"
    )
    assert s.storage.count(JULIET) == 1


def test_standalone_chat_state_is_dropped_silently(s: Setup) -> None:
    effects = s.send(
        "<message to='juliet@example.com' type='chat'><thread>t</thread>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
    assert effects == []
    assert s.storage.count(JULIET) == 0


def test_chat_state_with_body_is_stored(s: Setup) -> None:
    s.send(
        "<message to='juliet@example.com' type='chat'><body>hi</body>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
    assert s.storage.count(JULIET) == 1


def test_store_hint_forces_storing_a_chat_state(s: Setup) -> None:
    s.send(
        "<message to='juliet@example.com' type='chat'>"
        "<gone xmlns='http://jabber.org/protocol/chatstates'/>"
        "<store xmlns='urn:xmpp:hints'/></message>"
    )
    assert s.storage.count(JULIET) == 1


def test_normal_message_without_body_is_stored(s: Setup) -> None:
    # XEP-0160 §3: normal messages SHOULD be stored (e.g. a XEP-0184 receipt)
    s.send(
        "<message to='juliet@example.com'><received xmlns='urn:xmpp:receipts' id='r'/></message>"
    )
    assert s.storage.count(JULIET) == 1


def test_forged_server_delay_is_replaced(s: Setup) -> None:
    s.send(
        "<message to='juliet@example.com'><body>old?</body>"
        "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='1999-01-01T00:00:00Z'/></message>"
    )
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    (msg,) = delivered(online(s.router, BALCONY), BALCONY)
    assert [d.get("stamp") for d in msg.findall(DELAY_TAG)] == ["2002-09-10T23:08:25Z"]


def test_message_from_now_filtered_sender_is_not_delivered() -> None:
    class Block(Service):
        stages = frozenset({Stage.INBOUND})

        def filter_inbound(
            self, ctx: Context, element: Element, sender: JID, recipient: JID
        ) -> list[Outcome] | None:
            return [] if sender.local == "romeo" and element.tag == C + "message" else None

    s = Setup()
    s.send("<message to='juliet@example.com'><body>blocked later</body></message>")
    s.router = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=[Block(), s.service],
    )
    s.router.store = s.storage
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    assert delivered(online(s.router, BALCONY), BALCONY) == []
    assert s.storage.count(JULIET) == 0


def test_unreadable_stored_rows_are_skipped_and_deleted(s: Setup) -> None:
    s.storage.push(JULIET, b"<message", T0, 10)
    s.send("<message to='juliet@example.com'><body>ok</body></message>")
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = online(s.router, BALCONY)
    assert bodies(delivered(effects, BALCONY)) == ["ok"]
    hand_over(s.router, effects)
    assert s.storage.count(JULIET) == 0


def test_nothing_is_deleted_before_it_is_handed_over(s: Setup) -> None:
    for i in range(3):
        s.send(f"<message to='juliet@example.com'><body>m{i}</body></message>")
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = online(s.router, BALCONY)
    receipts = [e for e in effects if isinstance(e, Deliver) and e.receipt is not None]
    assert bodies([e.element for e in receipts]) == ["m0", "m1", "m2"]
    # the first two were written (or acked), then the connection broke
    for effect in receipts[:2]:
        assert s.router.handed_over(BALCONY, effect.receipt) == []
    s.router.unbind(BALCONY)
    assert [bodies([parse_fragment(m.stanza)]) for m in s.storage.peek(JULIET)] == [["m2"]]
    s.router.bind(CHAMBER, JID.parse("juliet@example.com/chamber"))
    assert bodies(delivered(online(s.router, CHAMBER), CHAMBER)) == ["m2"]


def test_stored_messages_go_out_in_pages_each_after_the_last_was_handed_over() -> None:
    storage = MemoryOfflineStorage()
    service = OfflineService(storage, page_size=4, page_bytes=1 << 20)
    router = CommittingRouter(
        ["example.com"], rng=seeded_rng(0), account_exists=lambda local, d: True, services=[service]
    )
    router.store = storage
    router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    for i in range(10):
        router.route(ROMEO, x(f"<message to='juliet@example.com'><body>{i}</body></message>"))
    router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = online(router, BALCONY)
    pages = []
    while page := [e for e in effects if isinstance(e, Deliver) and e.receipt is not None]:
        pages.append(bodies([e.element for e in page]))
        assert storage.count(JULIET) == 10 - sum(map(len, pages[:-1]))
        effects = []
        for e in page:  # one page at a time: nothing more until its last one
            assert not effects
            effects = router.handed_over(BALCONY, e.receipt)
    assert pages == [["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9"]]
    assert storage.count(JULIET) == 0


def test_a_page_holds_at_most_page_bytes_but_at_least_one_message() -> None:
    storage = MemoryOfflineStorage()
    service = OfflineService(storage, page_size=100, page_bytes=300)
    router = CommittingRouter(
        ["example.com"], rng=seeded_rng(0), account_exists=lambda local, d: True, services=[service]
    )
    router.store = storage
    router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    big = "x" * 400
    router.route(ROMEO, x(f"<message to='juliet@example.com'><body>{big}</body></message>"))
    for i in range(4):
        router.route(ROMEO, x(f"<message to='juliet@example.com'><body>{i}</body></message>"))
    router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = online(router, BALCONY)
    assert bodies(delivered(effects, BALCONY)) == [big]  # alone over the bound
    (receipt,) = [e.receipt for e in effects if isinstance(e, Deliver) and e.receipt]
    effects = router.handed_over(BALCONY, receipt)
    sizes = [len(m.stanza) for m in storage.peek(JULIET)]
    fits = max(k for k in range(len(sizes) + 1) if sum(sizes[:k]) <= 300)
    assert 1 < fits < 4
    assert bodies(delivered(effects, BALCONY)) == [str(i) for i in range(fits)]


def test_another_resource_gets_what_an_ended_flush_left() -> None:
    s = Setup()
    s.send("<message to='juliet@example.com'><body>kept</body></message>")
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    s.router.bind(CHAMBER, JID.parse("juliet@example.com/chamber"))
    assert bodies(delivered(online(s.router, BALCONY), BALCONY)) == ["kept"]
    assert delivered(online(s.router, CHAMBER), CHAMBER) == []  # waits its turn
    s.router.unbind(BALCONY)  # before the message was handed over
    effects = online(s.router, CHAMBER, 2)  # a presence update
    assert bodies(delivered(effects, CHAMBER)) == ["kept"]
    hand_over(s.router, effects)
    assert s.storage.count(JULIET) == 0


def test_a_message_pushed_after_peek_survives_delete() -> None:
    storage = MemoryOfflineStorage()
    storage.push(JULIET, b"<message/>", 1.0, 10)
    seen = storage.peek(JULIET)
    storage.push(JULIET, b"<message><body>new</body></message>", 2.0, 10)
    storage.delete(JULIET, seen[-1].id)
    assert [m.stanza for m in storage.peek(JULIET)] == [b"<message><body>new</body></message>"]


def test_service_advertises_msgoffline() -> None:
    assert OfflineService.server_features == ("msgoffline",)
    assert OfflineService.account_features == ()


def test_parse_fragment_round_trips_serialize() -> None:
    original = x(
        "<message to='a@b' type='chat'><body>&lt;3 &amp; é</body>"
        "<x xmlns='jabber:x:oob'><url>http://x</url></x></message>"
    )
    parsed = parse_fragment(serialize(original))
    assert serialize(parsed) == serialize(original)
    assert parsed.tag == C + "message"


@pytest.mark.parametrize(
    "data", [b"", b"<message/><message/>", b"<message>", b"text", b"<!-- c --><message/>"]
)
def test_parse_fragment_rejects_anything_but_one_element(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_fragment(data)
