"""The client-side services (xmpp_sansio.client): iq dispatch with the
service-unavailable default (RFC 6120 §8.2.3, §8.4), disco and caps answers
(XEP-0030, XEP-0115, XEP-0390), pings (XEP-0199), roster pushes (RFC 6121
§2.1.6) and a bot's message addressing (XEP-0045 echo)."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.client import (
    Addressing,
    ClientServices,
    DiscoResponder,
    IqDispatcher,
    IqOutcome,
    RosterCache,
    ping_dispatcher,
    service_unavailable,
)
from xmpp_sansio.disco import (
    Identity,
    caps2_hashes,
    caps2_node,
    parse_caps,
    parse_caps2,
    parse_disco_info,
    verify_caps,
)
from xmpp_sansio.jid import JID
from xmpp_sansio.objects import MessageObject
from xmpp_sansio.roster import RosterItem, Subscription, roster_push
from xmpp_sansio.stanza import Iq, IqType, MessageType, make_iq, parse_error
from xmpp_sansio.xml import ns

ME = JID.parse("juliet@example.com/balcony")
ROMEO = JID.parse("romeo@example.net/orchard")
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def request(
    type_: IqType, payload: Element, *, sender: JID | None = ROMEO, id: str = "q1"
) -> Element:
    iq = make_iq(type_, id, payload, to=ME)
    if sender is not None:
        iq.set("from", str(sender))
    return iq


def condition(reply: Element | None) -> str | None:
    assert reply is not None
    if reply.get("type") != "error":
        return None
    return parse_error(reply).condition


def disco_info_query(node: str | None = None) -> Element:
    query = Element(f"{{{ns.DISCO_INFO}}}query")
    if node is not None:
        query.set("node", node)
    return query


namespaces = st.from_regex(r"urn:example:[a-z]{1,8}", fullmatch=True)
ids = st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True)


# --- iq dispatch ---------------------------------------------------------------------


@given(namespace=namespaces, type_=st.sampled_from([IqType.GET, IqType.SET]), id=ids)
def test_a_request_nobody_handles_is_unhandled_and_its_default_answer_is_service_unavailable(
    namespace: str, type_: IqType, id: str
) -> None:
    services = ClientServices(ME, RosterCache())
    element = request(type_, Element(f"{{{namespace}}}query"), id=id)
    outcome = services.handle_iq(element)
    assert outcome.reply is None and outcome.unhandled is not None
    answer = service_unavailable(outcome.unhandled)
    assert condition(answer) == "service-unavailable"
    assert (answer.get("id"), answer.get("to"), answer.get("from")) == (id, str(ROMEO), str(ME))


@given(
    namespace=st.one_of(namespaces, st.sampled_from([ns.DISCO_INFO, ns.ROSTER, ns.PING])),
    type_=st.sampled_from(["result", "error"]),
)
def test_results_and_errors_are_never_answered(namespace: str, type_: str) -> None:
    element = request(IqType.GET, Element(f"{{{namespace}}}query"))
    element.set("type", type_)
    if type_ == "error":
        SubElement(SubElement(element, "{jabber:client}error", type="cancel"), f"{{{STANZAS}}}x")
    dispatcher = ClientServices(ME, RosterCache(), ping=True).dispatcher
    assert dispatcher.handle(element) == IqOutcome()


def test_an_invalid_request_is_answered_with_bad_request() -> None:
    element = request(IqType.GET, Element("{urn:example:a}a"))
    element.append(Element("{urn:example:b}b"))  # RFC 6120 §8.2.3: exactly one child
    assert condition(IqDispatcher().handle(element).reply) == "bad-request"


def test_handlers_are_chosen_by_payload_namespace_and_can_be_replaced() -> None:
    seen: list[str] = []

    def handler(iq: Iq) -> IqOutcome:
        assert iq.payload is not None
        seen.append(iq.payload.tag)
        return IqOutcome(reply=Element("{jabber:client}iq", type="result", id=iq.id))

    dispatcher = IqDispatcher()
    dispatcher.register("urn:example:a", handler)
    assert dispatcher.handle(request(IqType.GET, Element("{urn:example:a}any"))).reply is not None
    assert dispatcher.handle(request(IqType.GET, Element("{urn:example:b}any"))).unhandled
    dispatcher.unregister("urn:example:a")
    assert dispatcher.handle(request(IqType.GET, Element("{urn:example:a}any"))).unhandled
    assert seen == ["{urn:example:a}any"] and dispatcher.namespaces == frozenset()


def test_a_ping_get_is_answered_with_an_empty_result_and_a_set_with_bad_request() -> None:
    pings = ping_dispatcher()
    answer = pings.handle(request(IqType.GET, Element(f"{{{ns.PING}}}ping"))).reply
    assert answer is not None and answer.get("type") == "result" and len(answer) == 0
    assert answer.get("to") == str(ROMEO)
    bad = pings.handle(request(IqType.SET, Element(f"{{{ns.PING}}}ping"))).reply
    assert condition(bad) == "bad-request"


# --- disco and caps ---------------------------------------------------------------------


def test_disco_info_lists_identity_and_base_features_and_answers_the_caps_nodes() -> None:
    disco = DiscoResponder(Identity("client", "bot", "Bot"), features=("urn:example:f",))
    services = ClientServices(ME, RosterCache(), disco)
    presence = Element("{jabber:client}presence")
    presence.append(disco.caps_element())
    caps = parse_caps(presence)
    assert caps is not None and caps.node == disco.caps_node
    for node in (None, caps.disco_node, caps2_node("sha-256", disco.hashes["sha-256"])):
        reply = services.handle_iq(request(IqType.GET, disco_info_query(node))).reply
        assert reply is not None and reply.get("type") == "result"
        info = parse_disco_info(reply[0])
        assert info.node == node
        assert {ns.DISCO_INFO, ns.DISCO_ITEMS, ns.PING, "urn:example:f"} <= set(info.features)
        assert verify_caps(info.with_node(None), caps.ver, "sha-1")
    presence2 = Element("{jabber:client}presence")
    presence2.append(disco.caps2_element())
    assert parse_caps2(presence2) == caps2_hashes(disco.info)


def test_unknown_disco_nodes_are_item_not_found_and_the_client_has_no_items() -> None:
    services = ClientServices(ME, RosterCache())
    reply = services.handle_iq(request(IqType.GET, disco_info_query("urn:other#x"))).reply
    assert condition(reply) == "item-not-found"
    items = services.handle_iq(request(IqType.GET, Element(f"{{{ns.DISCO_ITEMS}}}query"))).reply
    assert items is not None and items.get("type") == "result" and len(items[0]) == 0
    setting = services.handle_iq(request(IqType.SET, disco_info_query())).reply
    assert condition(setting) == "bad-request"


# --- roster pushes -------------------------------------------------------------------


def push(item: RosterItem, sender: JID | None, ver: str | None = "v1") -> Element:
    iq = roster_push(item, ver, ME, id="push1")
    if sender is not None:
        iq.set("from", str(sender))
    return iq


@given(sender=st.sampled_from([None, ME.bare, ME, ROMEO, ROMEO.bare, JID.parse("example.com")]))
def test_a_roster_push_is_applied_and_acknowledged_only_from_the_account(
    sender: JID | None,
) -> None:
    roster = RosterCache()
    services = ClientServices(ME, roster)
    item = RosterItem(ROMEO.bare, "Romeo", Subscription.BOTH)
    outcome = services.handle_iq(push(item, sender))
    if sender is None or sender == ME.bare:
        assert outcome.reply is not None and outcome.reply.get("type") == "result"
        assert outcome.pushed == item and roster.items == {ROMEO.bare: item}
        assert roster.version == "v1"
    else:
        assert condition(outcome.reply) == "service-unavailable"
        assert outcome.pushed is None and roster.items == {}


def test_a_roster_get_to_a_client_is_left_to_the_application() -> None:
    services = ClientServices(ME, RosterCache())
    outcome = services.handle_iq(request(IqType.GET, Element(f"{{{ns.ROSTER}}}query")))
    assert outcome.reply is None and outcome.unhandled is not None


# --- a bot's addressing ------------------------------------------------------------------


BOT = JID.parse("bot@example.com")
addressing = Addressing(BOT, "bot")


def message(sender: str, body: str | None, type_: MessageType = MessageType.CHAT) -> MessageObject:
    return MessageObject(from_=JID.parse(sender), type=type_, body=body)


def test_one_to_one_messages_are_addressed_with_or_without_the_nickname() -> None:
    for body, text in [("ping", "ping"), ("bot: ping", "ping"), ("@bot ping", "ping")]:
        classified = addressing.classify(message("romeo@example.net/x", body))
        assert classified is not None and classified.addressed == text and classified.body == body


def test_room_messages_are_addressed_only_with_the_nickname_and_echoes_are_ignored() -> None:
    room = "lobby@conference.example.com/"
    said = addressing.classify(message(room + "romeo", "hello all", MessageType.GROUPCHAT))
    assert said is not None and said.addressed is None
    asked = addressing.classify(message(room + "romeo", "bot, ping", MessageType.GROUPCHAT))
    assert asked is not None and asked.addressed == "ping"
    echo = message(room + "bot", "bot: ping", MessageType.GROUPCHAT)
    assert addressing.is_room_echo(echo) and addressing.classify(echo) is None
    history = MessageObject(
        from_=JID.parse(room + "romeo"),
        type=MessageType.GROUPCHAT,
        body="bot: ping",
        delay="2026-01-01T00:00:00Z",
    )
    assert addressing.classify(history) is None


@given(
    type_=st.sampled_from(list(MessageType)),
    sender=st.sampled_from(["bot@example.com/other", "romeo@example.net/x"]),
    body=st.one_of(st.none(), st.text(max_size=20)),
)
def test_errors_headlines_bodiless_and_own_account_messages_are_never_handled(
    type_: MessageType, sender: str, body: str | None
) -> None:
    classified = addressing.classify(message(sender, body, type_))
    if (
        body is None
        or type_ in (MessageType.ERROR, MessageType.HEADLINE)
        or (type_ is not MessageType.GROUPCHAT and sender.startswith("bot@"))
    ):
        assert classified is None
    else:
        assert classified is not None and classified.body == body


# --- reconnect policy ------------------------------------------------------------------


def test_bots_retry_conflicts_and_transient_auth_failures_but_not_refused_credentials() -> None:
    from xmpp_sansio.client import BOT_RECONNECT, ReconnectPolicy
    from xmpp_sansio.errors import StreamErrorCondition

    default = ReconnectPolicy()
    assert default.stream_error_is_fatal(StreamErrorCondition.CONFLICT)
    assert not BOT_RECONNECT.stream_error_is_fatal(StreamErrorCondition.CONFLICT)
    assert default.auth_is_fatal("aborted") and not BOT_RECONNECT.auth_is_fatal("aborted")
    for policy in (default, BOT_RECONNECT):
        assert policy.auth_is_fatal("not-authorized")
        assert not policy.auth_is_fatal("temporary-auth-failure")


@given(attempts=st.lists(st.integers(0, 200), min_size=1), seed=st.integers(0, 2**32))
def test_backoff_stays_in_its_bounds_and_a_stable_session_starts_it_over(
    attempts: list[int], seed: int
) -> None:
    import random

    from xmpp_sansio.client import ReconnectPolicy

    policy = ReconnectPolicy(base=0.5, cap=20.0, stable_session=60.0)
    rng = random.Random(seed)
    for attempt in attempts:
        ceiling = min(20.0, 0.5 * 2.0**attempt)
        assert ceiling / 2 <= policy.delay(attempt, rng) <= ceiling
        assert policy.next_attempt(attempt, 60.0) == 0
        assert policy.next_attempt(attempt, 59.9) == attempt
        assert policy.next_attempt(attempt, None) == attempt


# --- roster pushes as a state machine ------------------------------------------------------

from hypothesis.stateful import RuleBasedStateMachine, invariant, rule  # noqa: E402

contacts = st.sampled_from([JID.parse(f"c{n}@example.net") for n in range(4)])
subscriptions = st.sampled_from([s for s in Subscription if s is not Subscription.REMOVE])
senders = st.sampled_from([None, ME.bare, ME, ROMEO, JID.parse("example.com")])


class RosterPushes(RuleBasedStateMachine):
    """Pushes from anyone, in any order: the cache holds exactly what the
    account's own pushes said, and every push gets exactly one answer."""

    def __init__(self) -> None:
        super().__init__()
        self.roster = RosterCache()
        self.services = ClientServices(ME, self.roster)
        self.model: dict[JID, RosterItem] = {}
        self.version: str | None = None
        self.count = 0

    def _push(self, item: RosterItem, sender: JID | None) -> None:
        self.count += 1
        ver = f"v{self.count}"
        outcome = self.services.handle_iq(push(item, sender, ver))
        assert outcome.reply is not None and outcome.unhandled is None
        if sender is None or sender == ME.bare:
            assert outcome.reply.get("type") == "result" and outcome.pushed == item
            if item.subscription is Subscription.REMOVE:
                self.model.pop(item.jid, None)
            else:
                self.model[item.jid] = item
            self.version = ver
        else:
            assert condition(outcome.reply) == "service-unavailable" and outcome.pushed is None

    @rule(contact=contacts, subscription=subscriptions, sender=senders)
    def set_item(self, contact: JID, subscription: Subscription, sender: JID | None) -> None:
        self._push(RosterItem(contact, None, subscription), sender)

    @rule(contact=contacts, sender=senders)
    def remove_item(self, contact: JID, sender: JID | None) -> None:
        self._push(RosterItem(contact, None, Subscription.REMOVE), sender)

    @invariant()
    def the_cache_is_the_model(self) -> None:
        assert self.roster.items == self.model
        assert self.roster.version == self.version


TestRosterPushes = RosterPushes.TestCase
