"""Tests for xmpp_sansio.server.private (XEP-0049 Private XML Storage)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, fromstring

import pytest
from committing import CommittingRouter

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.effects import Persist, PrivateDelete, StoreOp
from xmpp_sansio.server.private import MemoryPrivateStorage, PrivateService
from xmpp_sansio.server.stages import AccountRemoved, Context
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.element import elements_equal
from xmpp_sansio.xml.writer import serialize

P = "{jabber:iq:private}"
ACCOUNTS = {("hamlet", "example.com"), ("macbeth", "example.com")}
DENMARK, SCOTLAND = 1, 2

PREFS = "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>"
BOOKMARKS = (
    "<storage xmlns='storage:bookmarks'>"
    "<conference jid='council@conference.example.com' autojoin='true' name='Council'/>"
    "</storage>"
)


@pytest.fixture
def storage() -> MemoryPrivateStorage:
    return MemoryPrivateStorage()


@pytest.fixture
def router(storage: MemoryPrivateStorage) -> Router:
    r = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[PrivateService(storage, max_size=512)],
    )
    r.bind(DENMARK, JID.parse("hamlet@example.com/denmark"))
    r.bind(SCOTLAND, JID.parse("macbeth@example.com/scotland"))
    return r


def only(effects: Sequence[Effect], session: int) -> Element:
    assert len(effects) == 1, effects
    effect = effects[0]
    assert isinstance(effect, Deliver)
    assert effect.session == session
    return effect.element


def result(effects: Sequence[Effect], session: int) -> Element:
    reply = only(effects, session)
    assert reply.get("type") == "result", serialize(reply)
    return reply


def error(effects: Sequence[Effect], session: int) -> StanzaErrorCondition:
    reply = only(effects, session)
    assert reply.get("type") == "error", serialize(reply)
    return parse_error(reply).condition


def private(
    router: Router, session: int, type_: str, content: str, to: str | None = None
) -> list[Effect]:
    to_attr = "" if to is None else f" to='{to}'"
    return router.route(
        session,
        x(
            f"<iq type='{type_}' id='p1'{to_attr}><query xmlns='jabber:iq:private'>{content}</query></iq>"
        ),
    )


def stored_child(reply: Element) -> Element:
    (query,) = list(reply)
    assert query.tag == f"{P}query"
    (child,) = list(query)
    return child


def test_store_then_retrieve(router: Router) -> None:
    reply = result(private(router, DENMARK, "set", PREFS), DENMARK)
    assert list(reply) == []
    got = stored_child(
        result(private(router, DENMARK, "get", "<exodus xmlns='exodus:prefs'/>"), DENMARK)
    )
    assert elements_equal(got, fromstring(PREFS))


def test_nothing_stored_returns_the_requested_element_empty(router: Router) -> None:
    got = stored_child(
        result(private(router, DENMARK, "get", "<storage xmlns='storage:bookmarks'/>"), DENMARK)
    )
    assert got.tag == "{storage:bookmarks}storage"
    assert len(got) == 0 and not got.attrib


def test_set_replaces_previous_data(router: Router) -> None:
    result(private(router, DENMARK, "set", BOOKMARKS), DENMARK)
    result(private(router, DENMARK, "set", "<storage xmlns='storage:bookmarks'/>"), DENMARK)
    got = stored_child(
        result(private(router, DENMARK, "get", "<storage xmlns='storage:bookmarks'/>"), DENMARK)
    )
    assert len(got) == 0


def test_elements_are_kept_per_namespace_and_name(router: Router) -> None:
    result(private(router, DENMARK, "set", PREFS), DENMARK)
    result(private(router, DENMARK, "set", BOOKMARKS), DENMARK)
    got = stored_child(
        result(private(router, DENMARK, "get", "<exodus xmlns='exodus:prefs'/>"), DENMARK)
    )
    assert got.findtext("{exodus:prefs}defaultnick") == "Hamlet"
    other_name = stored_child(
        result(private(router, DENMARK, "get", "<other xmlns='exodus:prefs'/>"), DENMARK)
    )
    assert len(other_name) == 0


def test_set_may_hold_several_elements(router: Router) -> None:
    both = "<a xmlns='urn:n'>1</a><b xmlns='urn:n'>2</b>"
    result(private(router, DENMARK, "set", both), DENMARK)
    assert (
        stored_child(result(private(router, DENMARK, "get", "<b xmlns='urn:n'/>"), DENMARK)).text
        == "2"
    )


def test_data_is_per_account(router: Router) -> None:
    result(private(router, DENMARK, "set", PREFS), DENMARK)
    got = stored_child(
        result(private(router, SCOTLAND, "get", "<exodus xmlns='exodus:prefs'/>"), SCOTLAND)
    )
    assert len(got) == 0


def test_addressed_to_own_bare_jid_is_allowed(router: Router) -> None:
    result(private(router, DENMARK, "set", PREFS, to="hamlet@example.com"), DENMARK)
    reply = result(
        private(router, DENMARK, "get", "<exodus xmlns='exodus:prefs'/>", to="hamlet@example.com"),
        DENMARK,
    )
    assert reply.get("from") == "hamlet@example.com"


@pytest.mark.parametrize("type_", ["get", "set"])
@pytest.mark.parametrize(
    ("to", "condition"),
    [
        ("hamlet@example.com", StanzaErrorCondition.SERVICE_UNAVAILABLE),  # as a missing account
        ("example.com", StanzaErrorCondition.FORBIDDEN),
    ],
)
def test_another_jids_data_is_refused(
    router: Router,
    storage: MemoryPrivateStorage,
    type_: str,
    to: str,
    condition: StanzaErrorCondition,
) -> None:
    effects = private(router, SCOTLAND, type_, PREFS, to=to)
    assert error(effects, SCOTLAND) is condition
    assert storage.data == {}


def test_nonexistent_account_gets_the_routers_service_unavailable(router: Router) -> None:
    effects = private(router, SCOTLAND, "get", PREFS, to="yorick@example.com")
    assert error(effects, SCOTLAND) is StanzaErrorCondition.SERVICE_UNAVAILABLE


@pytest.mark.parametrize("type_", ["get", "set"])
@pytest.mark.parametrize(
    "content",
    [
        "",
        "<bare/>",
        "<message xmlns='jabber:client'/>",
        "<message xmlns='jabber:server'/>",
        "<query xmlns='jabber:iq:private'/>",
        "<a xmlns='urn:ok'/><bare xmlns=''/>",
    ],
)
def test_child_without_its_own_namespace_is_not_acceptable(
    router: Router, storage: MemoryPrivateStorage, type_: str, content: str
) -> None:
    effects = private(router, DENMARK, type_, content)
    assert error(effects, DENMARK) is StanzaErrorCondition.NOT_ACCEPTABLE
    assert storage.data == {}


def test_get_of_several_elements_is_a_bad_request(router: Router) -> None:
    effects = private(router, DENMARK, "get", "<a xmlns='urn:n'/><b xmlns='urn:n'/>")
    assert error(effects, DENMARK) is StanzaErrorCondition.BAD_REQUEST


def test_too_large_element_is_not_acceptable_and_nothing_is_stored(
    router: Router, storage: MemoryPrivateStorage
) -> None:
    content = "<small xmlns='urn:n'/><big xmlns='urn:n'>" + "x" * 1000 + "</big>"
    effects = private(router, DENMARK, "set", content)
    assert error(effects, DENMARK) is StanzaErrorCondition.NOT_ACCEPTABLE
    assert storage.data == {}


def test_error_reply_omits_the_private_payload(router: Router) -> None:
    reply = only(private(router, SCOTLAND, "set", PREFS, to="hamlet@example.com"), SCOTLAND)
    assert reply.find(f"{P}query") is None


def test_results_with_private_payload_are_not_answered(router: Router) -> None:
    assert private(router, DENMARK, "result", PREFS) == []


def test_no_disco_feature_is_advertised() -> None:
    # XEP-0049 defines none.
    assert PrivateService.server_features == ()
    assert PrivateService.account_features == ()


def test_account_removed_deletes_only_that_accounts_data(
    router: Router, storage: MemoryPrivateStorage
) -> None:
    result(private(router, DENMARK, "set", PREFS + BOOKMARKS), DENMARK)
    result(private(router, SCOTLAND, "set", PREFS), SCOTLAND)
    (service,) = router.services
    assert isinstance(service, PrivateService)
    hamlet = JID.parse("hamlet@example.com")
    # The delete is a Persist effect; the service reads its own write at once.
    (persist,) = service.observe(Context(0.0, bytes), AccountRemoved(hamlet))
    assert isinstance(persist, Persist) and persist.op == PrivateDelete(hamlet)
    assert service.stored(hamlet, "exodus:prefs", "exodus") is None
    router.end_sessions(hamlet, StreamErrorCondition.NOT_AUTHORIZED, removed=True)
    assert [key[0] for key in storage.data] == [JID.parse("macbeth@example.com")]


# ---------------------------------------------------------------------------
# the per-account quota (issue 10)


class CountingStorage(MemoryPrivateStorage):
    """Counts the writes: a set is one op (:class:`PrivatePut`)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def apply(self, ops: Sequence[StoreOp]) -> None:
        self.writes += len(ops)
        super().apply(ops)


def quota_router(storage: MemoryPrivateStorage, *, max_items: int, max_total: int) -> Router:
    r = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in ACCOUNTS,
        services=[PrivateService(storage, max_size=512, max_items=max_items, max_total=max_total)],
    )
    r.bind(DENMARK, JID.parse("hamlet@example.com/denmark"))
    return r


def note(n: int, text: str = "") -> str:
    return f"<n{n} xmlns='urn:example:n{n}'>{text}</n{n}>"


def test_a_set_of_several_elements_is_one_write() -> None:
    storage = CountingStorage()
    router = quota_router(storage, max_items=10, max_total=10_000)
    result(private(router, DENMARK, "set", note(1) + note(2) + note(3)), DENMARK)
    assert storage.writes == 1 and len(storage.data) == 3


def test_more_elements_than_max_items_are_not_acceptable_and_nothing_is_stored() -> None:
    storage = CountingStorage()
    router = quota_router(storage, max_items=2, max_total=10_000)
    result(private(router, DENMARK, "set", note(1)), DENMARK)
    refused = private(router, DENMARK, "set", note(2) + note(3))
    assert error(refused, DENMARK) is StanzaErrorCondition.NOT_ACCEPTABLE
    assert sorted(k[1] for k in storage.data) == ["urn:example:n1"]
    result(private(router, DENMARK, "set", note(1, "new") + note(2)), DENMARK)  # a replacement


def test_more_bytes_than_max_total_are_not_acceptable_but_replacing_frees_bytes() -> None:
    storage = MemoryPrivateStorage()
    router = quota_router(storage, max_items=10, max_total=200)
    big = note(1, "x" * 150)
    result(private(router, DENMARK, "set", big), DENMARK)
    refused = private(router, DENMARK, "set", note(2, "y" * 100))
    assert error(refused, DENMARK) is StanzaErrorCondition.NOT_ACCEPTABLE
    result(private(router, DENMARK, "set", note(1) + note(2, "y" * 100)), DENMARK)
    assert sum(len(v) for v in storage.data.values()) <= 200
