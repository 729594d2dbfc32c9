"""Tests for XEP-0077 In-Band Registration: the codecs of xmpp_sansio.register
and the RegistrationService of xmpp_sansio.server.register."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, fromstring

import pytest
from committing import CommittingRouter

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.register import (
    REGISTER,
    Registration,
    RegistrationError,
    feature_element,
    parse_registration,
    registered_response,
    registration_form,
    registration_request,
    removal_request,
    username_to_localpart,
    validate_new_account,
)
from xmpp_sansio.server import Deliver, Disconnect, Effect, Router, Service
from xmpp_sansio.server.effects import AccountDelete, Outcome, StoreOp
from xmpp_sansio.server.register import RegistrationService
from xmpp_sansio.server.stages import AccountRemoved, Context, Event, SessionUnbound
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.writer import serialize

R = "{jabber:iq:register}"
XD = "{jabber:x:data}"
BAD = StanzaErrorCondition.BAD_REQUEST


def query(content: str) -> Element:
    return fromstring(f"<query xmlns='jabber:iq:register'>{content}</query>")


def form(*fields: tuple[str, str], type_: str = "submit") -> str:
    body = "".join(f"<field var='{var}'><value>{value}</value></field>" for var, value in fields)
    return f"<x xmlns='jabber:x:data' type='{type_}'>{body}</x>"


# ---------------------------------------------------------------------------
# codecs


def test_feature_element_is_the_iq_register_stream_feature() -> None:
    assert serialize(feature_element()) == (
        b'<register xmlns="http://jabber.org/features/iq-register"/>'
    )


def test_registration_form_offers_legacy_fields_and_an_equivalent_data_form() -> None:
    q = registration_form("Choose a username and password.")
    assert q.tag == f"{R}query"
    assert q.findtext(f"{R}instructions") == "Choose a username and password."
    assert q.find(f"{R}username") is not None
    assert q.find(f"{R}password") is not None
    x_form = q.find(f"{XD}x")
    assert x_form is not None and x_form.get("type") == "form"
    fields = {f.get("var"): f for f in x_form.findall(f"{XD}field")}
    assert fields["FORM_TYPE"].get("type") == "hidden"
    assert fields["FORM_TYPE"].findtext(f"{XD}value") == REGISTER
    assert fields["username"].get("type") == "text-single"
    assert fields["password"].get("type") == "text-private"
    assert fields["username"].find(f"{XD}required") is not None
    assert fields["password"].find(f"{XD}required") is not None


def test_legacy_fields_are_parsed() -> None:
    q = query("<username>bill</username><password>Calliope</password><email>b@x</email>")
    assert parse_registration(q) == Registration("bill", "Calliope", remove=False)


def test_client_request_builder_round_trips() -> None:
    assert parse_registration(registration_request("bill", "Calliope")) == Registration(
        "bill", "Calliope"
    )
    assert parse_registration(removal_request()) == Registration(None, None, remove=True)


def test_submitted_data_form_is_parsed() -> None:
    q = query(form(("FORM_TYPE", REGISTER), ("username", "juliet"), ("password", "R0m30")))
    assert parse_registration(q) == Registration("juliet", "R0m30")


def test_change_password_form_type_is_accepted() -> None:
    q = query(
        form(
            ("FORM_TYPE", "jabber:iq:register:changepassword"),
            ("username", "bill@shakespeare.lit"),
            ("old_password", "theglobe"),
            ("password", "groundlings"),
        )
    )
    assert parse_registration(q) == Registration("bill@shakespeare.lit", "groundlings")


def test_data_form_without_form_type_is_accepted() -> None:
    q = query(form(("username", "juliet"), ("password", "R0m30")))
    assert parse_registration(q) == Registration("juliet", "R0m30")


def test_data_form_takes_precedence_over_legacy_fields() -> None:
    q = query(
        "<username>legacy</username><password>old</password>"
        + form(("username", "formuser"), ("password", "formpass"))
    )
    assert parse_registration(q) == Registration("formuser", "formpass")


def test_missing_and_empty_values_are_none() -> None:
    assert parse_registration(query("<username>bill</username><password/>")) == Registration(
        "bill", None
    )
    assert parse_registration(query("<password>pw</password>")) == Registration(None, "pw")
    assert parse_registration(query("")) == Registration(None, None)
    assert parse_registration(query(form(("username", "")))) == Registration(None, None)


def test_username_whitespace_is_stripped_but_password_kept() -> None:
    q = query("<username>\n  bill \n</username><password> pass word </password>")
    assert parse_registration(q) == Registration("bill", " pass word ")


def test_remove_is_a_cancellation() -> None:
    assert parse_registration(query("<remove/>")) == Registration(None, None, remove=True)


@pytest.mark.parametrize(
    "content",
    [
        "<remove/><username>bill</username>",  # §3.2: remove must be the only child
        form(("username", "a"), type_="form"),
        form(("username", "a"), type_="cancel"),
        form(("FORM_TYPE", "urn:other"), ("username", "a"), ("password", "b")),
        "<x xmlns='jabber:x:data' type='submit'><field var='username'><value>a</value>"
        "<value>b</value></field></x>",
        "<x xmlns='jabber:x:data' type='submit'><field var='password'><value>a</value></field>"
        "<field var='password'><value>b</value></field></x>",
    ],
)
def test_malformed_requests_are_bad_requests(content: str) -> None:
    with pytest.raises(RegistrationError) as info:
        parse_registration(query(content))
    assert info.value.condition is BAD


def test_other_elements_are_bad_requests() -> None:
    with pytest.raises(RegistrationError) as info:
        parse_registration(fromstring("<query xmlns='jabber:iq:roster'/>"))
    assert info.value.condition is BAD


def test_registration_error_is_a_value_error() -> None:
    assert issubclass(RegistrationError, ValueError)


def test_validate_new_account_normalises_localpart_and_password() -> None:
    assert validate_new_account("Juliet", "R0m30", "example.com") == ("juliet", "R0m30")
    assert validate_new_account("juliet@Example.COM", "pw", "example.com") == ("juliet", "pw")
    # OpaqueString maps non-ASCII spaces to ASCII space (RFC 8265 §4.2.1).
    assert validate_new_account("bill", "a\u00a0b", "example.com") == ("bill", "a b")


@pytest.mark.parametrize(
    ("username", "password"), [(None, "pw"), ("bill", None), ("", "pw"), ("bill", "")]
)
def test_validate_new_account_requires_both_fields(
    username: str | None, password: str | None
) -> None:
    # XEP-0077 §3.1: missing information is not-acceptable.
    with pytest.raises(RegistrationError) as info:
        validate_new_account(username, password, "example.com")
    assert info.value.condition is StanzaErrorCondition.NOT_ACCEPTABLE


@pytest.mark.parametrize(
    "username",
    [
        "bad user",
        "a/b",
        "jul'iet",
        "juliet@elsewhere.net",
        "juliet@example.com/res",
        "@example.com",
    ],
)
def test_validate_new_account_rejects_invalid_usernames(username: str) -> None:
    with pytest.raises(RegistrationError) as info:
        validate_new_account(username, "pw", "example.com")
    assert info.value.condition is StanzaErrorCondition.JID_MALFORMED


def test_validate_new_account_rejects_invalid_passwords() -> None:
    with pytest.raises(RegistrationError) as info:
        validate_new_account("bill", "bad\u0007password", "example.com")
    assert info.value.condition is StanzaErrorCondition.NOT_ACCEPTABLE


def test_username_to_localpart_accepts_localpart_or_bare_jid() -> None:
    assert username_to_localpart("BILL", "shakespeare.lit") == "bill"
    assert username_to_localpart("bill@shakespeare.lit", "Shakespeare.LIT") == "bill"


def test_registered_response_has_registered_username_and_empty_password() -> None:
    q = registered_response("juliet", "You are registered.")
    assert [child.tag for child in q] == [
        f"{R}registered",
        f"{R}instructions",
        f"{R}username",
        f"{R}password",
    ]
    assert q.findtext(f"{R}username") == "juliet"
    assert not q.findtext(f"{R}password")


# ---------------------------------------------------------------------------
# the service

ACCOUNTS = {("juliet", "example.com"), ("romeo", "example.com")}
BALCONY, CHAMBER, ORCHARD = 1, 2, 10


@dataclass
class FakeDirectory:
    passwords: dict[tuple[str, str], str] = field(
        default_factory=lambda: {("juliet", "example.com"): "old", ("romeo", "example.com"): "r"}
    )

    def change_password(self, local: str, domain: str, password: str) -> None:
        if (local, domain) not in self.passwords:
            raise LookupError(local)
        self.passwords[(local, domain)] = password

    def delete(self, local: str, domain: str) -> None:
        if (local, domain) not in self.passwords:
            raise LookupError(local)
        del self.passwords[(local, domain)]

    def apply(self, ops: Sequence[StoreOp]) -> None:
        for op in ops:
            if not isinstance(op, AccountDelete):
                raise TypeError(op)
            self.passwords.pop((op.account.local or "", op.account.domain), None)


class Cleaner(Service):
    """A service that stores per-account data and forgets it on removal."""

    def __init__(self) -> None:
        self.removed: list[JID] = []
        self.unbound: list[int] = []

    observes = (AccountRemoved, SessionUnbound)

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case AccountRemoved(account):
                self.removed.append(account)
            case SessionUnbound(session):
                self.unbound.append(session.id)
        return []


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def cleaner() -> Cleaner:
    return Cleaner()


def make_router(
    directory: FakeDirectory,
    cleaner: Cleaner,
    *,
    allow_password_change: bool = True,
    allow_removal: bool = True,
) -> Router:
    service = RegistrationService(
        directory, allow_password_change=allow_password_change, allow_removal=allow_removal
    )
    r = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in directory.passwords,
        services=[service, cleaner],
    )
    r.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    r.bind(CHAMBER, JID.parse("juliet@example.com/chamber"))
    r.bind(ORCHARD, JID.parse("romeo@example.com/orchard"))
    return r


@pytest.fixture
def router(directory: FakeDirectory, cleaner: Cleaner) -> Router:
    return make_router(directory, cleaner)


def only(effects: Sequence[Effect], session: int) -> Element:
    assert len(effects) == 1, effects
    effect = effects[0]
    assert isinstance(effect, Deliver)
    assert effect.session == session
    return effect.element


def changed(effects: Sequence[Effect], session: int) -> Element:
    """A password change's effects: the result for ``session``, then the
    account's other session ended with ``reset`` (RFC 6120 §4.9.3.16)."""
    *first, last = effects
    assert last == Disconnect(
        CHAMBER if session == BALCONY else BALCONY, StreamErrorCondition.RESET
    )
    return only(first, session)


def error(effects: Sequence[Effect], session: int) -> StanzaErrorCondition:
    reply = only(effects, session)
    assert reply.get("type") == "error", serialize(reply)
    assert reply.find(f"{R}query") is None  # §3.3: the original XML is not returned
    return parse_error(reply).condition


def register_iq(
    router: Router, session: int, type_: str, content: str, to: str = ""
) -> list[Effect]:
    to_attr = f" to='{to}'" if to else ""
    return router.route(
        session,
        x(
            f"<iq type='{type_}' id='reg1'{to_attr}><query xmlns='jabber:iq:register'>{content}</query></iq>"
        ),
    )


def test_registered_entity_gets_registered_and_username(router: Router) -> None:
    reply = only(register_iq(router, BALCONY, "get", ""), BALCONY)
    assert reply.get("type") == "result"
    (q,) = list(reply)
    assert q.find(f"{R}registered") is not None
    assert q.findtext(f"{R}username") == "juliet"


def test_password_change_with_legacy_fields(router: Router, directory: FakeDirectory) -> None:
    effects = register_iq(
        router,
        BALCONY,
        "set",
        "<username>juliet</username><password>n3w</password>",
        to="example.com",
    )
    reply = changed(effects, BALCONY)
    assert reply.get("type") == "result"
    assert reply.get("from") == "example.com"
    assert directory.passwords[("juliet", "example.com")] == "n3w"


def test_password_change_with_data_form(router: Router, directory: FakeDirectory) -> None:
    content = form(
        ("FORM_TYPE", "jabber:iq:register:changepassword"),
        ("username", "juliet@example.com"),
        ("password", "fr0m-form"),
    )
    assert changed(register_iq(router, BALCONY, "set", content), BALCONY).get("type") == "result"
    assert directory.passwords[("juliet", "example.com")] == "fr0m-form"


def test_password_change_username_is_compared_normalised(
    router: Router, directory: FakeDirectory
) -> None:
    effects = register_iq(
        router, BALCONY, "set", "<username>JULIET</username><password>n3w</password>"
    )
    assert changed(effects, BALCONY).get("type") == "result"
    assert directory.passwords[("juliet", "example.com")] == "n3w"


def test_password_change_to_own_bare_jid_is_accepted(
    router: Router, directory: FakeDirectory
) -> None:
    effects = register_iq(
        router,
        BALCONY,
        "set",
        "<username>juliet</username><password>n3w</password>",
        to="juliet@example.com",
    )
    assert changed(effects, BALCONY).get("type") == "result"


@pytest.mark.parametrize(
    "username", ["romeo", "romeo@example.com", "not valid", "juliet@elsewhere.net"]
)
def test_password_change_for_another_username_is_bad_request(
    router: Router, directory: FakeDirectory, username: str
) -> None:
    effects = register_iq(
        router, BALCONY, "set", f"<username>{username}</username><password>x</password>"
    )
    assert error(effects, BALCONY) is BAD
    assert directory.passwords[("romeo", "example.com")] == "r"


@pytest.mark.parametrize(
    "content",
    [
        "<password>n3w</password>",
        "<username>juliet</username>",
        "<username>juliet</username><password/>",
    ],
)
def test_incomplete_password_change_is_bad_request_and_keeps_password(
    router: Router, directory: FakeDirectory, content: str
) -> None:
    assert error(register_iq(router, BALCONY, "set", content), BALCONY) is BAD
    assert directory.passwords[("juliet", "example.com")] == "old"


def test_invalid_new_password_is_not_acceptable(router: Router, directory: FakeDirectory) -> None:
    effects = register_iq(
        router, BALCONY, "set", "<username>juliet</username><password>a\u200b</password>"
    )
    assert error(effects, BALCONY) is StanzaErrorCondition.NOT_ACCEPTABLE
    assert directory.passwords[("juliet", "example.com")] == "old"


def test_password_change_can_be_disabled(directory: FakeDirectory, cleaner: Cleaner) -> None:
    r = make_router(directory, cleaner, allow_password_change=False)
    effects = register_iq(r, BALCONY, "set", "<username>juliet</username><password>n3w</password>")
    assert error(effects, BALCONY) is StanzaErrorCondition.NOT_ALLOWED
    assert directory.passwords[("juliet", "example.com")] == "old"


def test_removal_answers_then_disconnects_every_session_of_the_account(
    router: Router, directory: FakeDirectory, cleaner: Cleaner
) -> None:
    effects = register_iq(router, CHAMBER, "set", "<remove/>")
    assert ("juliet", "example.com") not in directory.passwords
    first = effects[0]
    assert isinstance(first, Deliver) and first.session == CHAMBER
    assert first.element.get("type") == "result" and first.element.get("id") == "reg1"
    disconnects = [e for e in effects if isinstance(e, Disconnect)]
    # §3.2: "return a <not-authorized/> stream error and terminate all active sessions".
    assert disconnects == [
        Disconnect(BALCONY, StreamErrorCondition.NOT_AUTHORIZED),
        Disconnect(CHAMBER, StreamErrorCondition.NOT_AUTHORIZED),
    ]
    assert effects.index(first) < effects.index(disconnects[0])
    # Disconnect means "already unbound": the router no longer knows them.
    assert router.sessions_of(JID.parse("juliet@example.com")) == []
    assert sorted(cleaner.unbound) == [BALCONY, CHAMBER]
    assert cleaner.removed == [JID.parse("juliet@example.com")]
    # Romeo is untouched.
    assert router.session_jid(ORCHARD) == JID.parse("romeo@example.com/orchard")


def test_removal_of_available_sessions_sends_nothing_more_to_them(router: Router) -> None:
    router.route(BALCONY, x("<presence/>"))
    router.route(CHAMBER, x("<presence/>"))
    effects = register_iq(router, BALCONY, "set", "<remove/>")
    delivers = [e for e in effects if isinstance(e, Deliver)]
    assert len(delivers) == 1 and delivers[0].element.get("type") == "result"


def test_removal_can_be_disabled(directory: FakeDirectory, cleaner: Cleaner) -> None:
    r = make_router(directory, cleaner, allow_removal=False)
    assert (
        error(register_iq(r, BALCONY, "set", "<remove/>"), BALCONY)
        is StanzaErrorCondition.NOT_ALLOWED
    )
    assert ("juliet", "example.com") in directory.passwords
    assert cleaner.removed == []


def test_removal_of_vanished_account_is_registration_required(
    router: Router, directory: FakeDirectory
) -> None:
    del directory.passwords[("juliet", "example.com")]
    effects = register_iq(router, BALCONY, "set", "<remove/>")
    assert error(effects, BALCONY) is StanzaErrorCondition.REGISTRATION_REQUIRED


def test_remove_with_other_children_is_bad_request(
    router: Router, directory: FakeDirectory
) -> None:
    effects = register_iq(router, BALCONY, "set", "<remove/><username>juliet</username>")
    assert error(effects, BALCONY) is BAD
    assert ("juliet", "example.com") in directory.passwords


def test_registration_requests_for_another_account_are_not_handled(
    router: Router, directory: FakeDirectory
) -> None:
    effects = register_iq(router, BALCONY, "set", "<remove/>", to="romeo@example.com")
    assert error(effects, BALCONY) is StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert ("romeo", "example.com") in directory.passwords


def test_registration_iq_from_outside_a_session_is_not_handled(
    router: Router, directory: FakeDirectory
) -> None:
    iq = x(
        "<iq type='set' id='r' from='eve@elsewhere.net/x' to='example.com'>"
        "<query xmlns='jabber:iq:register'><remove/></query></iq>"
    )
    assert router.route_inbound(iq) == []  # service-unavailable goes to the remote sender
    assert len(directory.passwords) == 2


def test_register_feature_is_advertised() -> None:
    assert RegistrationService.server_features == ("jabber:iq:register",)
    assert RegistrationService.account_features == ()


def test_removing_an_account_wipes_its_data_in_every_service(directory: FakeDirectory) -> None:
    """XEP-0077 §3.2: after <remove/>, a new account of the same name starts empty:
    no roster, offline messages, blocklist, last activity, vCard or private XML."""
    from xmpp_sansio.roster import RosterItem, Subscription
    from xmpp_sansio.server.blocking import BlockingService, MemoryBlockStorage
    from xmpp_sansio.server.last import LastActivityService, MemoryLastActivityStorage
    from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineService
    from xmpp_sansio.server.private import MemoryPrivateStorage, PrivateService
    from xmpp_sansio.server.roster import MemoryRosterStorage, RosterService, StoredItem
    from xmpp_sansio.server.vcard import MemoryVCardStorage, VCardService

    juliet, romeo = JID.parse("juliet@example.com"), JID.parse("romeo@example.com")
    rosters, offline, blocks = MemoryRosterStorage(), MemoryOfflineStorage(), MemoryBlockStorage()
    last, vcards, private = (
        MemoryLastActivityStorage(),
        MemoryVCardStorage(),
        MemoryPrivateStorage(),
    )
    rosters.put(juliet, StoredItem(RosterItem(romeo, subscription=Subscription.BOTH)))
    offline.push(juliet, b"<message/>", 1.0, 10)
    blocks.block(juliet, [JID.parse("tybalt@example.com")])
    last.set(juliet, 1.0, "gone")
    vcards.put(juliet, b"<vCard xmlns='vcard-temp'/>")
    private.put(juliet, "urn:x", "x", b"<x xmlns='urn:x'/>")
    services: list[Service] = [
        RegistrationService(directory),
        RosterService(rosters),
        OfflineService(offline),
        BlockingService(blocks, lambda _c, _u: False),
        LastActivityService(last, lambda _r, _u: False, started=0.0),
        VCardService(vcards),
        PrivateService(private),
    ]
    r = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: (local, domain) in directory.passwords,
        services=services,
    )
    r.store = offline
    r.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    r.route(
        BALCONY,
        x("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>"),
    )
    assert ("juliet", "example.com") not in directory.passwords
    assert rosters.count(juliet) == 0
    assert offline.count(juliet) == 0
    assert blocks.blocklist(juliet) == set()
    assert last.get(juliet) is None
    assert vcards.get(juliet) is None
    assert private.get(juliet, "urn:x", "x") is None
