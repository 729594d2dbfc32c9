"""The typed stages of the routing pipeline (xmpp_sansio/server/stages.py):
declarations, the transform stage, ``now`` and entropy as inputs, the timer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar
from xml.etree.ElementTree import Element, fromstring

import pytest
from committing import CommittingRouter
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.disco import DiscoInfo, Identity, caps_element, caps_ver
from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router, Service
from xmpp_sansio.server.caps import CapsService
from xmpp_sansio.server.carbons import CarbonsService
from xmpp_sansio.server.effects import Outcome, Persist
from xmpp_sansio.server.hosts import HostService
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineService
from xmpp_sansio.server.stages import (
    AccountRemoved,
    Appended,
    Context,
    Event,
    MessageSent,
    Request,
    SessionBound,
    Stage,
    Undeliverable,
)
from xmpp_sansio.server.vcard import MemoryVCardStorage, VCardService
from xmpp_sansio.server.view import BoundSession
from xmpp_sansio.stanza import Stanza, StanzaKind, with_attrs
from xmpp_sansio.testing import seeded_rng
from xmpp_sansio.testing import x as xml
from xmpp_sansio.xml.parser import parse_fragment

C = "{jabber:client}"
ROMEO, ORCHARD2, BALCONY, CHAMBER = 1, 2, 3, 4
ACCOUNTS = {"romeo", "juliet"}
STAMP = "{urn:example:stamp}id"


def x(text: str) -> Element:
    return fromstring(text.replace("<message", "<message xmlns='jabber:client'", 1))


def jid(text: str) -> JID:
    return JID.parse(text)


class Stamper(Service):
    """A toy transform: stamps each message with an id drawn from ``ctx.rng``
    and the time of the call, as XEP-0359 stanza ids will be."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.TRANSFORM})

    def transform(self, ctx: Context, element: Element, sender: JID, to: JID | None) -> Element:
        return with_attrs(element, **{STAMP: f"{ctx.rng(2).hex()}@{ctx.now:g}"})


def make_router(*services: Service, now: float = 7.0) -> CommittingRouter:
    router = CommittingRouter(
        ["example.com"],
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=services,
        clock=lambda: now,
        rng=lambda n: b"\xab" * n,
    )
    return router


def online(router: Router, session: int) -> list[Effect]:
    return router.route(session, fromstring("<presence xmlns='jabber:client'/>"))


def delivered(effects: Sequence[Effect], session: int) -> list[Element]:
    return [e.element for e in effects if isinstance(e, Deliver) and e.session == session]


def enable_carbons(router: Router, session: int) -> None:
    router.route(
        session,
        fromstring(
            "<iq xmlns='jabber:client' type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>"
        ),
    )


def test_the_transform_stamps_what_the_recipient_and_both_carbons_see() -> None:
    router = make_router(Stamper(), CarbonsService())
    for session, full in [
        (ROMEO, "romeo@example.com/orchard"),
        (ORCHARD2, "romeo@example.com/garden"),
        (BALCONY, "juliet@example.com/balcony"),
        (CHAMBER, "juliet@example.com/chamber"),
    ]:
        router.bind(session, jid(full))
        online(router, session)
        enable_carbons(router, session)
    effects = router.route(
        ROMEO, x("<message to='juliet@example.com/balcony' type='chat'><body>hi</body></message>")
    )
    (original,) = delivered(effects, BALCONY)
    assert original.get(STAMP) == "abab@7"
    (received,) = delivered(effects, CHAMBER)
    (sent,) = delivered(effects, ORCHARD2)
    for carbon in (received, sent):
        # the carbon wraps the stamped message; the wrapper itself, which the
        # server originates, is not transformed
        assert carbon.get(STAMP) is None
        inner = list(carbon.iter(C + "message"))[1]
        assert inner.get(STAMP) == "abab@7"


def test_offline_storage_keeps_the_transformed_message() -> None:
    storage = MemoryOfflineStorage()
    router = make_router(Stamper(), OfflineService(storage))
    router.store = storage
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    router.route(ROMEO, x("<message to='juliet@example.com' type='chat'><body>hi</body></message>"))
    (stored,) = storage.peek(jid("juliet@example.com"))
    assert parse_fragment(stored.stanza).get(STAMP) == "abab@7"
    assert stored.stamp == 7.0


def test_route_inbound_transforms_messages_from_outside_too() -> None:
    router = make_router(Stamper())
    router.bind(BALCONY, jid("juliet@example.com/balcony"))
    online(router, BALCONY)
    effects = router.route_inbound(
        x("<message from='romeo@example.net/a' to='juliet@example.com' type='chat'/>"), now=3.0
    )
    (message,) = delivered(effects, BALCONY)
    assert message.get(STAMP) == "abab@3"


class Appender(Service):
    """A transform that only adds a child, the cheap way (``Appended``)."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.TRANSFORM})

    def transform(self, ctx: Context, element: Element, sender: JID, to: JID | None) -> Appended:
        return Appended((Element("{urn:example:stamp}tag", {"n": ctx.rng(1).hex()}),))


def test_appended_children_reach_the_recipient_and_leave_the_senders_element_alone() -> None:
    router = make_router(Appender(), Appender())
    for session, full in [(ROMEO, "romeo@example.com/orchard"), (BALCONY, "juliet@example.com/b")]:
        router.bind(session, jid(full))
        online(router, session)
    sent = x("<message to='juliet@example.com/b' type='chat'><body>hi</body></message>")
    (message,) = delivered(router.route(ROMEO, sent), BALCONY)
    assert [c.get("n") for c in message if c.tag == "{urn:example:stamp}tag"] == ["ab", "ab"]
    assert len(sent) == 1  # the client's element is not changed
    outside = x("<message from='romeo@example.net/a' to='juliet@example.com' type='chat'/>")
    (message,) = delivered(router.route_inbound(outside), BALCONY)
    assert len(message) == 2 and len(outside) == 0 and message.get("from") == "romeo@example.net/a"


def test_a_handed_over_message_gets_appended_children_and_a_failed_route_echoes_what_came() -> None:
    """``route(owned=True)`` appends to the reader's element itself; if routing
    then fails outside the router (storage), the error echoes the message as
    the client sent it, without the appended children, as without ``owned``."""

    class Broken(Service):
        stages: ClassVar[frozenset[Stage]] = frozenset({Stage.INBOUND})

        def filter_inbound(
            self, ctx: Context, element: Element, sender: JID, recipient: JID
        ) -> list[Outcome] | None:
            raise OSError("storage broke")

    router = make_router(Appender())
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    router.bind(BALCONY, jid("juliet@example.com/b"))
    online(router, BALCONY)
    text = "<message to='juliet@example.com/b' type='chat' id='m'><body>hi</body></message>"
    handed = x(text)
    (message,) = delivered(router.route(ROMEO, handed, owned=True), BALCONY)
    assert message is handed and len(handed) == 2
    broken = make_router(Appender(), Broken())
    broken.bind(ROMEO, jid("romeo@example.com/orchard"))
    replies = []
    for owned in (True, False):
        element = x(text)
        with pytest.raises(OSError):
            broken.route(ROMEO, element, owned=owned)
        assert len(element) == (2 if owned else 1)
        (reply,) = broken.failed(ROMEO, element, StanzaErrorCondition.RESOURCE_CONSTRAINT)
        assert isinstance(reply, Deliver)
        replies.append(reply.element)
    assert [c.tag for c in replies[0]] == [c.tag for c in replies[1]]
    assert "{urn:example:stamp}tag" not in [c.tag for c in replies[0]]


def test_presence_and_iq_are_not_transformed() -> None:
    router = make_router(Stamper())
    router.bind(BALCONY, jid("juliet@example.com/balcony"))
    router.bind(CHAMBER, jid("juliet@example.com/chamber"))
    effects = online(router, BALCONY)
    assert all(e.element.get(STAMP) is None for e in effects if isinstance(e, Deliver))


def test_now_given_to_a_call_overrides_the_clock() -> None:
    storage = MemoryOfflineStorage()
    router = make_router(OfflineService(storage))
    router.store = storage
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"), now=1234.5)
    router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"))
    assert [m.stamp for m in storage.peek(jid("juliet@example.com"))] == [1234.5, 7.0]


def test_observers_and_handlers_get_only_the_types_they_declare() -> None:
    seen: list[str] = []

    class Watcher(Service):
        observes = (SessionBound,)
        handles = (Undeliverable,)

        def observe(self, ctx: Context, event: Event) -> list[Outcome]:
            seen.append(type(event).__name__)
            return []

        def handle(self, ctx: Context, request: Request) -> list[Outcome] | None:
            seen.append(type(request).__name__)
            return []

    router = make_router(Watcher())
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    online(router, ROMEO)
    router.route(ROMEO, x("<message to='juliet@example.com' type='chat'/>"))
    router.unbind(ROMEO)
    assert seen == ["SessionBound", "Undeliverable"]


class Undeclared(Service):
    def filter_inbound(
        self, ctx: Context, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        return []


class DeclaredOnly(Service):
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.OUTBOUND})


class ObservesWithoutMethod(Service):
    observes = (MessageSent,)


@pytest.mark.parametrize("service", [Undeclared, DeclaredOnly, ObservesWithoutMethod])
def test_a_service_whose_declaration_and_methods_disagree_is_refused(
    service: type[Service],
) -> None:
    with pytest.raises(TypeError):
        make_router(service())


# -- the timer stage: caps queries time out at the router's handle_timer --------------

INFO = DiscoInfo((Identity("client", "pc", "Exodus"),), ("http://jabber.org/protocol/disco#info",))
NODE = "http://example.com/client"


def caps_presence() -> Element:
    el = fromstring("<presence xmlns='jabber:client'/>")
    el.append(caps_element(NODE, caps_ver(INFO)))
    return el


def queries(effects: Sequence[Effect]) -> list[int]:
    return [
        e.session
        for e in effects
        if isinstance(e, Deliver) and e.element.tag == C + "iq" and e.element.get("type") == "get"
    ]


def test_a_timed_out_caps_query_is_retried_at_the_timer_without_a_presence() -> None:
    clock = [100.0]
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=[CapsService(query_timeout=30.0)],
        clock=lambda: clock[0],
    )
    router.bind(BALCONY, jid("juliet@example.com/balcony"))
    router.bind(CHAMBER, jid("juliet@example.com/chamber"))
    assert router.next_deadline() is None
    assert queries(router.route(BALCONY, caps_presence())) == [BALCONY]
    assert queries(router.route(CHAMBER, caps_presence())) == []  # one query per hash
    assert router.next_deadline() == 130.0
    assert router.handle_timer(now=129.0) == []
    assert queries(router.handle_timer(now=130.0)) == [CHAMBER]
    assert router.next_deadline() == 160.0


def test_a_service_host_gets_the_context_of_the_call() -> None:
    seen: list[float] = []

    class Clocked(HostService):
        def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
            seen.append(ctx.now)
            return []

    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        hosts={"clock.example.com": Clocked()},
        clock=lambda: 5.0,
    )
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    router.route(ROMEO, x("<message to='clock.example.com'/>"))
    router.route(ROMEO, x("<message to='clock.example.com'/>"), now=9.0)
    assert seen == [5.0, 9.0]


def test_the_clock_is_read_once_per_call_and_only_when_a_stage_needs_it() -> None:
    reads: list[float] = []

    def clock() -> float:
        reads.append(float(len(reads)))
        return reads[-1]

    storage = MemoryOfflineStorage()
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in ACCOUNTS,
        services=[Stamper(), OfflineService(storage)],
        clock=clock,
    )
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    router.bind(BALCONY, jid("juliet@example.com/balcony"))
    assert reads == []  # binding needs no time
    # the transform and offline storage both read now: one clock read
    router.route(ROMEO, x("<message to='nurse@example.com' type='chat'/>"))
    router.route(ROMEO, x("<message to='romeo@example.com' type='chat'/>"))
    assert reads == [0.0, 1.0]
    router.unbind(BALCONY)
    assert reads == [0.0, 1.0]


def test_a_context_needs_a_time_or_a_clock() -> None:
    with pytest.raises(ValueError):
        Context(None, bytes)
    ctx = Context(3.0, bytes)
    assert ctx.now == 3.0
    with pytest.raises(ValueError):
        ctx.begin(None)
    ctx.begin(4.0)
    assert ctx.now == 4.0


_METHODS = {
    "filter_outbound": lambda self, ctx, session, element, to: None,
    "transform": lambda self, ctx, element, sender: element,
    "filter_inbound": lambda self, ctx, element, sender, recipient: None,
    "next_deadline": lambda self: None,
    "handle_timer": lambda self, ctx: [],
}
_STAGE_OF = {
    "filter_outbound": Stage.OUTBOUND,
    "transform": Stage.TRANSFORM,
    "filter_inbound": Stage.INBOUND,
    "next_deadline": Stage.TIMER,
    "handle_timer": Stage.TIMER,
}


@given(
    overridden=st.sets(st.sampled_from(sorted(_METHODS))),
    declared=st.sets(st.sampled_from(list(Stage))),
)
def test_a_service_is_accepted_exactly_when_it_declares_the_stages_it_implements(
    overridden: set[str], declared: set[Stage]
) -> None:
    namespace: dict[str, object] = {name: _METHODS[name] for name in overridden}
    namespace["stages"] = frozenset(declared)
    service = type("Generated", (Service,), namespace)()
    implemented = {_STAGE_OF[name] for name in overridden}
    if implemented == declared:
        router = make_router(service)
        for stage, joined in [
            (Stage.OUTBOUND, router._outbound),
            (Stage.TRANSFORM, router._transform),
            (Stage.INBOUND, router._inbound),
            (Stage.TIMER, router._timed),
        ]:
            assert (service in joined) == (stage in declared)
    else:
        with pytest.raises(TypeError):
            make_router(service)


def test_the_writes_of_a_call_that_raised_are_forgotten_and_the_pending_ones_kept() -> None:
    """A store read failing in the middle of a router call: the caller drops
    the call's effects and reports it (Router.abandoned with the ops it still
    holds); a write the call returned is then not read any more, one of an
    earlier call of the batch still is."""

    class FailingRead(Service):
        observes = (AccountRemoved,)

        def observe(self, ctx: Context, event: Event) -> list[Outcome]:
            raise OSError("disk I/O error")

    storage = MemoryVCardStorage()
    romeo, juliet = JID.parse("romeo@example.com"), JID.parse("juliet@example.com")
    storage.put(romeo, b"<vCard xmlns='vcard-temp'><FN>R</FN></vCard>")
    vcards = VCardService(storage)
    router = Router(
        ["example.com"], rng=seeded_rng(0), account_exists=lambda *_: True,
        services=[vcards, FailingRead()],
    )  # fmt: skip
    router.bind(1, juliet.with_resource("balcony"))
    (pending,) = router.route(
        1,
        xml("<iq type='set' id='s'><vCard xmlns='vcard-temp'><FN>J</FN></vCard></iq>"),
    )
    assert isinstance(pending, Persist)
    with pytest.raises(OSError):
        router.end_sessions(romeo, StreamErrorCondition.NOT_AUTHORIZED, removed=True)
    assert vcards.stored(romeo) is None  # the failed call's delete, not reported yet
    assert router.abandoned([pending.op]) == []
    assert vcards.stored(romeo) == storage.get(romeo)  # forgotten: still stored
    assert vcards.stored(juliet) is not None  # the batch's earlier write is kept


def route_one_of_each_kind(router: Router) -> None:
    """Romeo sends Juliet a message, presence and an iq; each reaches her."""
    sent = [
        x("<message to='juliet@example.com' type='chat'><body>hi</body></message>"),
        fromstring("<presence xmlns='jabber:client' to='juliet@example.com'/>"),
        fromstring(
            "<iq xmlns='jabber:client' to='juliet@example.com/balcony' type='get' id='v'>"
            "<query xmlns='jabber:iq:version'/></iq>"
        ),
    ]
    for element in sent:
        assert [e.session for e in router.route(ROMEO, element) if isinstance(e, Deliver)] == [
            BALCONY
        ]


class IqFilter(Service):
    """An inbound filter for iqs only: records what it is asked about."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.INBOUND})
    inbound_kinds: ClassVar[frozenset[StanzaKind]] = frozenset({StanzaKind.IQ})

    def __init__(self) -> None:
        self.seen: list[str] = []

    def filter_inbound(
        self, ctx: Context, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        self.seen.append(element.tag)
        return None


def test_an_inbound_filter_sees_only_the_stanza_kinds_it_declares() -> None:
    only_iq = IqFilter()
    router = make_router(only_iq)
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    router.bind(BALCONY, jid("juliet@example.com/balcony"))
    online(router, ROMEO)
    online(router, BALCONY)
    route_one_of_each_kind(router)
    assert only_iq.seen == [C + "iq"]


class PresenceOutboundFilter(Service):
    """An outbound filter for presence only: records what it is asked about."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.OUTBOUND})
    outbound_kinds: ClassVar[frozenset[StanzaKind]] = frozenset({StanzaKind.PRESENCE})

    def __init__(self) -> None:
        self.seen: list[str] = []

    def filter_outbound(
        self, ctx: Context, session: BoundSession, element: Element, to: JID | None
    ) -> list[Outcome] | None:
        self.seen.append(element.tag)
        return None


def test_an_outbound_filter_sees_only_the_stanza_kinds_it_declares() -> None:
    only_presence = PresenceOutboundFilter()
    router = make_router(only_presence)
    router.bind(ROMEO, jid("romeo@example.com/orchard"))
    router.bind(BALCONY, jid("juliet@example.com/balcony"))
    online(router, ROMEO)
    online(router, BALCONY)
    only_presence.seen.clear()
    route_one_of_each_kind(router)
    assert only_presence.seen == [C + "presence"]
