"""The user directory (XEP-0055) at vjud.example.com, sans-IO: the search
form, data-form and legacy searches, opt-in, the result limit, bad input."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, tostring

from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.forms import NS_DATA, Field, FieldType, Form, FormType, build_form, parse_form
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.effects import DirectoryListing, Persist, VCardPut
from xmpp_sansio.server.search import (
    NS_SEARCH,
    DirectoryIndex,
    DirectoryIndexer,
    DirectoryService,
    entry_from_vcard,
)
from xmpp_sansio.testing import seeded_rng, x

JULIET = 1
Q = f"{{{NS_SEARCH}}}"
VJUD = "vjud.example.com"


def vcard(given: str, family: str, nick: str = "", fn: str = "") -> bytes:
    return (
        "<vCard xmlns='vcard-temp'>"
        f"<FN>{fn}</FN><N><FAMILY>{family}</FAMILY><GIVEN>{given}</GIVEN></N>"
        f"<NICKNAME>{nick}</NICKNAME></vCard>"
    ).encode()


def world(listed_by_default: bool = False, max_results: int = 50) -> tuple[Router, DirectoryIndex]:
    index = DirectoryIndex(listed_by_default=listed_by_default, max_results=max_results)
    index.load(
        [
            (JID.parse("romeo@example.com"), vcard("Romeo", "Montague", "rom")),
            (JID.parse("benvolio@example.com"), vcard("Benvolio", "Montague")),
            (JID.parse("tybalt@example.com"), vcard("Tybalt", "Capulet", fn="Prince of Cats")),
        ],
        {JID.parse("romeo@example.com"): True, JID.parse("tybalt@example.com"): True},
    )
    router = Router(
        ["example.com"],
        hosts={VJUD: DirectoryService(index)},
        rng=seeded_rng(2),
        account_exists=lambda local, domain: True,
        services=[DirectoryIndexer(index)],
        clock=lambda: 1000.0,
    )
    router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
    return router, index


def reply(effects: Sequence[Effect]) -> Element:
    mine = [e for e in effects if isinstance(e, Deliver) and e.session == JULIET]
    assert len(mine) == 1, effects
    return mine[0].element


def ask(router: Router, body: str, type_: str = "set", to: str = VJUD) -> Element:
    return reply(router.route(JULIET, x(f"<iq type='{type_}' id='s1' to='{to}'>{body}</iq>")))


def search(router: Router, **values: str) -> Element:
    fields = [Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_SEARCH,))]
    fields += [Field(k, values=(v,)) for k, v in values.items()]
    query = Element(f"{Q}query")
    query.append(build_form(Form(FormType.SUBMIT, fields=tuple(fields))))
    return ask(router, tostring(query).decode())


def found(answer: Element) -> list[str]:
    assert answer.get("type") == "result", tostring(answer)
    form = parse_form(answer.find(f"{Q}query/{{{NS_DATA}}}x"))  # type: ignore[arg-type]
    assert form.type is FormType.RESULT and form.reported is not None
    return [dict((f.var, f.value) for f in item)["jid"] or "" for item in form.items]


def error(answer: Element) -> str:
    assert answer.get("type") == "error"
    el = answer.find("{jabber:client}error")
    assert el is not None
    return el[0].tag.rpartition("}")[2]


def test_the_search_form_has_the_fields_and_form_type() -> None:
    router, _ = world()
    answer = ask(router, f"<query xmlns='{NS_SEARCH}'/>", "get")
    form = parse_form(answer.find(f"{Q}query/{{{NS_DATA}}}x"))  # type: ignore[arg-type]
    assert form.form_type == NS_SEARCH
    assert [f.var for f in form.fields] == ["FORM_TYPE", "first", "last", "nick", "email"]
    assert answer.find(f"{Q}query/{Q}first") is not None  # legacy fields too


def test_a_user_is_found_by_name_only_when_listed() -> None:
    router, _ = world()
    assert found(search(router, last="montague")) == ["romeo@example.com"]  # not benvolio
    assert found(search(router, first="ROM")) == ["romeo@example.com"]
    assert found(search(router, first="cats")) == ["tybalt@example.com"]  # FN
    assert found(search(router, first="romeo", last="capulet")) == []


def test_listed_by_default_lists_everyone_who_did_not_opt_out() -> None:
    router, _ = world(listed_by_default=True)
    assert found(search(router, last="montague")) == [
        "benvolio@example.com",
        "romeo@example.com",
    ]


def test_the_result_limit() -> None:
    router, _ = world(listed_by_default=True, max_results=1)
    assert found(search(router, last="montague")) == ["benvolio@example.com"]


def test_legacy_search_is_answered_with_items() -> None:
    router, _ = world()
    answer = ask(router, f"<query xmlns='{NS_SEARCH}'><nick>rom</nick></query>")
    items = answer.findall(f"{Q}query/{Q}item")
    assert [i.get("jid") for i in items] == ["romeo@example.com"]
    assert items[0].findtext(f"{Q}first") == "Romeo"


def test_bad_searches_get_bad_request() -> None:
    router, _ = world()
    assert error(search(router)) == "bad-request"  # nothing to search for
    assert error(search(router, first="   ")) == "bad-request"
    assert error(search(router, first="r" * 300)) == "bad-request"
    bad_form = f"<query xmlns='{NS_SEARCH}'><x xmlns='jabber:x:data' type='bogus'/></query>"
    assert error(ask(router, bad_form)) == "bad-request"
    other = ask(router, "<query xmlns='jabber:iq:version'/>", "get")
    assert error(other) == "service-unavailable"
    assert error(ask(router, f"<query xmlns='{NS_SEARCH}'/>", "get", "someone@" + VJUD)) == (
        "service-unavailable"
    )


def test_opting_in_with_the_visibility_command_and_vcard_updates() -> None:
    router, index = world()
    node = "visibility"
    first = ask(router, f"<command xmlns='http://jabber.org/protocol/commands' node='{node}'/>")
    command = first.find("{http://jabber.org/protocol/commands}command")
    assert command is not None and command.get("status") == "executing"
    form = parse_form(command.find(f"{{{NS_DATA}}}x"))  # type: ignore[arg-type]
    assert form.value("listed") == "0"
    submit = Element(
        "{http://jabber.org/protocol/commands}command",
        {"node": node, "sessionid": command.get("sessionid") or "", "action": "complete"},
    )
    submit.append(build_form(Form(FormType.SUBMIT, fields=(Field("listed", values=("1",)),))))
    effects = router.route(
        JULIET, x(f"<iq type='set' id='s2' to='{VJUD}'>{tostring(submit).decode()}</iq>")
    )
    [persist] = effects
    assert isinstance(persist, Persist)
    assert persist.op == DirectoryListing(JID.parse("juliet@example.com"), True)
    # The index changes once the write is committed (the Committed event).
    router.persisted([persist])
    assert index.is_listed(JID.parse("juliet@example.com"))
    index_before = dict(index.entries)
    put = VCardPut(JID.parse("juliet@example.com"), vcard("Juliet", "Capulet"))
    router.persisted([Persist(put)])  # the I/O layer reports the commit (Committed)
    assert JID.parse("juliet@example.com") not in index_before
    assert found(search(router, first="jul")) == ["juliet@example.com"]


def test_entry_from_an_unreadable_vcard_is_empty() -> None:
    entry = entry_from_vcard(JID.parse("a@example.com"), b"<not-xml")
    assert (entry.first, entry.last, entry.nick, entry.email) == ("", "", "", "")


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["first", "last", "nick", "email", "other"]), st.text()))
def test_any_search_gets_a_result_or_bad_request(values: dict[str, str]) -> None:
    router, _ = world(listed_by_default=True)
    clean = {k: "".join(c for c in v if c.isprintable()) for k, v in values.items()}
    try:
        answer = search(router, **clean)
    except ValueError:
        return  # not representable as XML text
    assert answer.get("type") == "result" or error(answer) == "bad-request"
