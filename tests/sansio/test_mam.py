"""Message archives (XEP-0313) and stanza ids (XEP-0359) on the router:
stamping on the transform stage, archiving both sides, queries through
``Load`` effects, preferences, and the XEP-0313 errors."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element

from committing import CommittingRouter
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect
from xmpp_sansio.server.mam.service import SID, MamLimits, MamService, archived_bytes
from xmpp_sansio.server.mam.store import MemoryArchive
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineService
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.writer import serialize

C = "{jabber:client}"
MAM = "{urn:xmpp:mam:2}"
RSM = "{http://jabber.org/protocol/rsm}"
ROMEO, JULIET, NURSE = 1, 2, 3


class World:
    def __init__(
        self, limits: MamLimits | None = None, roster: set[tuple[str, str]] | None = None
    ) -> None:
        limits = limits or MamLimits()
        roster = roster or set()
        self.archive = MemoryArchive()
        self.mam = MamService(
            self.archive, lambda owner, peer: (str(owner), str(peer)) in roster, limits
        )
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(1),
            account_exists=lambda local, domain: local in {"juliet", "romeo", "nurse"},
            services=[self.mam, OfflineService(MemoryOfflineStorage())],
            clock=lambda: 1_000_000.0,
        )
        self.router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
        self.router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
        self.router.bind(NURSE, JID.parse("nurse@example.com/home"))
        for s in (ROMEO, JULIET, NURSE):
            self.router.route(s, x("<presence/>"))

    def send(self, session: int, xml: str) -> list[Effect]:
        return self.router.route(session, x(xml))

    def chat(self, body: str, frm: int = ROMEO, to: str = "juliet@example.com") -> list[Effect]:
        return self.send(frm, f"<message to='{to}' type='chat'><body>{body}</body></message>")

    def query(self, session: int, inner: str = "", to: str = "", qid: str = "q1") -> list[Element]:
        attr = f" to='{to}'" if to else ""
        effects = self.send(
            session,
            f"<iq type='set' id='i1'{attr}><query xmlns='urn:xmpp:mam:2' queryid='{qid}'>"
            f"{inner}</query></iq>",
        )
        return to_session(effects, session)


def to_session(effects: Sequence[Effect], session: int) -> list[Element]:
    return [e.element for e in effects if isinstance(e, Deliver) and e.session == session]


def form(**fields: str | list[str]) -> str:
    out = ["<x xmlns='jabber:x:data' type='submit'>"]
    out.append("<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>")
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        inner = "".join(f"<value>{v}</value>" for v in values)
        out.append(f"<field var='{var.rstrip('_').replace('_', '-')}'>{inner}</field>")
    out.append("</x>")
    return "".join(out)


def rsm(**parts: str) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" if v != "<empty>" else f"<{k}/>" for k, v in parts.items())
    return f"<set xmlns='http://jabber.org/protocol/rsm'>{inner}</set>"


def results(answers: list[Element]) -> list[str]:
    """The bodies of the result messages, in order."""
    out = []
    for el in answers:
        body = el.find(f"{MAM}result/{{urn:xmpp:forward:0}}forwarded/{C}message/{C}body")
        if body is not None:
            out.append(body.text or "")
    return out


def fin(answers: list[Element]) -> Element:
    last = answers[-1]
    assert last.tag == C + "iq" and last.get("type") == "result", last
    found = last.find(MAM + "fin")
    assert found is not None
    return found


def error(answers: list[Element]) -> str:
    assert len(answers) == 1 and answers[0].get("type") == "error"
    return parse_error(answers[0]).condition.value


def test_a_message_to_a_local_account_is_delivered_with_its_archive_stanza_id() -> None:
    w = World()
    delivered = to_session(w.chat("hi"), JULIET)
    sid = delivered[0].find(SID)
    assert (
        sid is not None and sid.get("by") == "juliet@example.com" and len(sid.get("id", "")) >= 16
    )
    # the id it carries names the message in juliet's archive
    answers = w.query(JULIET, form(ids=[sid.get("id", "")]))
    assert results(answers) == ["hi"]


def test_a_forged_stanza_id_from_a_client_is_removed() -> None:
    w = World()
    delivered = to_session(
        w.send(
            ROMEO,
            "<message to='juliet@example.com' type='chat'><body>x</body>"
            "<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.com' id='forged'/>"
            "<stanza-id xmlns='urn:xmpp:sid:0' by='example.com' id='forged2'/>"
            "<stanza-id xmlns='urn:xmpp:sid:0' by='other.example' id='kept'/></message>",
        ),
        JULIET,
    )
    ids = [(s.get("by"), s.get("id")) for s in delivered[0].iter(SID)]
    assert ("other.example", "kept") in ids
    assert all(i not in ("forged", "forged2") for _, i in ids)
    assert len([b for b, _ in ids if b == "juliet@example.com"]) == 1


def test_both_sides_archive_a_chat_and_each_reads_only_its_own() -> None:
    w = World()
    w.chat("one")
    w.chat("two", frm=JULIET, to="romeo@example.com")
    for session in (ROMEO, JULIET):
        answers = w.query(session)
        assert results(answers) == ["one", "two"]
        f = fin(answers)
        assert f.get("complete") == "true"
        assert f.findtext(RSM + "set/" + RSM + "count") == "2"
        result = answers[0].find(MAM + "result")
        assert result is not None and result.get("queryid") == "q1"
    assert results(w.query(NURSE)) == []


def test_a_user_can_never_read_another_users_archive() -> None:
    w = World()
    w.chat("secret")
    assert error(w.query(NURSE, to="juliet@example.com")) == "forbidden"
    assert error(w.query(NURSE, to="romeo@example.com")) == "forbidden"
    assert results(w.query(NURSE)) == []


def test_groupchat_headline_chat_states_and_no_store_messages_are_not_archived() -> None:
    w = World()
    w.send(ROMEO, "<message to='juliet@example.com' type='headline'><body>h</body></message>")
    w.send(
        ROMEO,
        "<message to='juliet@example.com' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    w.send(
        ROMEO,
        "<message to='juliet@example.com' type='chat'><body>n</body><no-store xmlns='urn:xmpp:hints'/></message>",
    )
    w.chat("kept")
    assert results(w.query(JULIET)) == ["kept"]


def test_paging_forward_and_backward_with_rsm_and_flip_page() -> None:
    w = World()
    for i in range(7):
        w.chat(f"m{i}")
    first = w.query(JULIET, rsm(max="3"))
    assert results(first) == ["m0", "m1", "m2"]
    f = fin(first)
    assert f.get("complete") is None
    first_el = f.find(RSM + "set/" + RSM + "first")
    assert first_el is not None and first_el.get("index") == "0"
    last = f.findtext(RSM + "set/" + RSM + "last")
    second = w.query(JULIET, rsm(max="3", after=last or ""))
    assert results(second) == ["m3", "m4", "m5"]
    # the last page, then the one before it
    tail = w.query(JULIET, rsm(max="3", before="<empty>"))
    assert results(tail) == ["m4", "m5", "m6"]
    before = fin(tail).findtext(RSM + "set/" + RSM + "first")
    prev = w.query(JULIET, rsm(max="3", before=before or ""))
    assert results(prev) == ["m1", "m2", "m3"]
    flipped = w.query(JULIET, rsm(max="3", before="<empty>") + "<flip-page/>")
    assert results(flipped) == ["m6", "m5", "m4"]


def test_filters_with_start_end_and_ids() -> None:
    w = World()
    w.chat("from romeo")
    w.chat("from nurse", frm=NURSE)
    assert results(w.query(JULIET, form(with_="nurse@example.com"))) == ["from nurse"]
    assert results(w.query(JULIET, form(with_="romeo@example.com/orchard"))) == ["from romeo"]
    assert results(w.query(JULIET, form(start="1970-01-12T13:46:40Z"))) == [
        "from romeo",
        "from nurse",
    ]
    assert results(w.query(JULIET, form(end="1970-01-12T13:46:39Z"))) == []


def test_unknown_ids_are_item_not_found() -> None:
    w = World()
    w.chat("x")
    assert error(w.query(JULIET, form(after_id="nope"))) == "item-not-found"
    assert error(w.query(JULIET, form(ids=["nope"]))) == "item-not-found"
    assert error(w.query(JULIET, rsm(after="nope"))) == "item-not-found"
    assert error(w.query(JULIET, rsm(before="nope"))) == "item-not-found"


def test_bad_forms_are_bad_request_and_unknown_fields_feature_not_implemented() -> None:
    w = World()
    assert error(w.query(JULIET, form(start="yesterday"))) == "bad-request"
    assert error(w.query(JULIET, form(with_="@@"))) == "bad-request"
    assert error(w.query(JULIET, rsm(max="-1"))) == "bad-request"
    assert error(w.query(JULIET, form(colour="red"))) == "feature-not-implemented"
    # RSM <index/> (XEP-0059 §2.5) is served now (tests/sansio/test_mam_rsm_index.py).
    assert error(w.query(JULIET, rsm(max="1", index="first"))) == "bad-request"
    assert error(w.query(JULIET, form(ids=[f"i{n}" for n in range(101)]))) == "policy-violation"


def test_an_oversized_page_is_capped_at_the_servers_limit() -> None:
    w = World(MamLimits(max_page=2))
    for i in range(5):
        w.chat(f"m{i}")
    answers = w.query(JULIET, rsm(max="1000"))
    assert results(answers) == ["m0", "m1"]
    assert fin(answers).get("complete") is None


def test_the_per_user_quota_drops_the_oldest() -> None:
    w = World(MamLimits(max_per_user=3))
    for i in range(5):
        w.chat(f"m{i}")
    assert results(w.query(JULIET)) == ["m2", "m3", "m4"]


def test_preferences_never_roster_and_per_jid() -> None:
    w = World(roster={("juliet@example.com", "romeo@example.com")})
    answers = to_session(
        w.send(
            JULIET,
            "<iq type='set' id='p'><prefs xmlns='urn:xmpp:mam:2' default='roster'>"
            "<always><jid>nurse@example.com</jid></always><never/></prefs></iq>",
        ),
        JULIET,
    )
    assert answers[0].get("type") == "result"
    w.send(
        ROMEO,
        "<iq type='set' id='p'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>",
    )
    w.chat("romeo to juliet")  # juliet: romeo in roster; romeo: never
    w.chat("nurse to juliet", frm=NURSE)  # juliet: always nurse
    assert results(w.query(JULIET)) == ["romeo to juliet", "nurse to juliet"]
    assert results(w.query(ROMEO)) == []
    got = to_session(
        w.send(JULIET, "<iq type='get' id='g'><prefs xmlns='urn:xmpp:mam:2'/></iq>"), JULIET
    )
    prefs = got[0].find(MAM + "prefs")
    assert prefs is not None and prefs.get("default") == "roster"
    assert [j.text for j in prefs.iter(MAM + "jid")] == ["nurse@example.com"]
    assert (
        error(
            to_session(
                w.send(
                    JULIET,
                    "<iq type='set' id='b'><prefs xmlns='urn:xmpp:mam:2' default='sometimes'/></iq>",
                ),
                JULIET,
            )
        )
        == "bad-request"
    )


def test_metadata_and_the_query_form() -> None:
    w = World()
    got = to_session(
        w.send(JULIET, "<iq type='get' id='m'><metadata xmlns='urn:xmpp:mam:2'/></iq>"), JULIET
    )
    meta = got[0].find(MAM + "metadata")
    assert meta is not None and list(meta) == []
    w.chat("a")
    w.chat("b")
    got = to_session(
        w.send(JULIET, "<iq type='get' id='m'><metadata xmlns='urn:xmpp:mam:2'/></iq>"), JULIET
    )
    meta = got[0].find(MAM + "metadata")
    assert meta is not None
    start, end = meta.find(MAM + "start"), meta.find(MAM + "end")
    assert start is not None and end is not None and start.get("id") != end.get("id")
    got = to_session(
        w.send(JULIET, "<iq type='get' id='f'><query xmlns='urn:xmpp:mam:2'/></iq>"), JULIET
    )
    fields = [f.get("var") for f in got[0].iter("{jabber:x:data}field")]
    assert {"with", "start", "end", "after-id", "before-id", "ids"} <= set(fields)


def test_a_message_stored_offline_is_archived_and_stamped() -> None:
    w = World()
    w.router.unbind(JULIET)
    w.chat("while away")
    w.router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
    flushed = to_session(w.send(JULIET, "<presence/>"), JULIET)
    bodies = [m for m in flushed if m.find(C + "body") is not None]
    assert bodies and bodies[0].find(SID) is not None
    assert results(w.query(JULIET)) == ["while away"]


def test_a_message_from_another_server_is_archived_for_the_recipient() -> None:
    w = World()
    w.router.route_inbound(
        x(
            "<message from='tybalt@elsewhere.example/x' to='juliet@example.com' type='chat'><body>far</body></message>"
        )
    )
    assert results(w.query(JULIET)) == ["far"]


def test_a_message_from_another_server_to_an_offline_account_is_archived_once() -> None:
    w = World()
    w.router.unbind(JULIET)
    w.router.route_inbound(
        x(
            "<message from='tybalt@elsewhere.example/x' to='juliet@example.com' type='chat'>"
            "<body>while away</body></message>"
        )
    )
    w.router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
    flushed = to_session(w.send(JULIET, "<presence/>"), JULIET)
    (stored,) = [m for m in flushed if m.find(C + "body") is not None]
    sid = stored.find(SID)
    answers = w.query(JULIET)
    assert results(answers) == ["while away"]
    (result,) = [m.find(MAM + "result") for m in answers if m.find(MAM + "result") is not None]
    assert sid is not None and result is not None and result.get("id") == sid.get("id")
    forwarded = result.find("{urn:xmpp:forward:0}forwarded/" + C + "message")
    assert forwarded is not None and forwarded.get("from") == "tybalt@elsewhere.example/x"


def test_an_account_removal_forgets_its_archive() -> None:
    w = World()
    w.chat("x")
    assert w.archive.count(JID.parse("juliet@example.com")) == 1
    w.router.end_sessions(
        JID.parse("juliet@example.com"), StreamErrorCondition.NOT_AUTHORIZED, removed=True
    )
    assert w.archive.count(JID.parse("juliet@example.com")) == 0


def test_stanza_ids_are_unique_and_draw_entropy_in_bulk() -> None:
    # XEP-0359 §4: unique and unpredictable; the random part comes from the
    # router's rng, drawn once per 256 ids (one system call in the server).
    draws: list[int] = []
    rng = seeded_rng(7)

    def counting(n: int) -> bytes:
        draws.append(n)
        return rng(n)

    w = World()
    w.router = CommittingRouter(
        ["example.com"],
        rng=counting,
        account_exists=lambda local, domain: local in {"juliet", "romeo"},
        services=[w.mam],
        clock=lambda: 1_000_000.0,
    )
    w.router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    w.router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
    for s in (ROMEO, JULIET):
        w.router.route(s, x("<presence/>"))
    draws.clear()
    ids = []
    for i in range(600):
        delivered = to_session(w.chat(f"m{i}"), JULIET)
        stamp = delivered[0].find(SID)
        assert stamp is not None
        ids.append(stamp.get("id", ""))
    assert len(set(ids)) == 600 and all(len(i) == 30 for i in ids)
    assert len([n for n in draws if n >= 8 * 256]) == 3


_NAMES = st.sampled_from(["{jabber:client}body", "{urn:x}x", "{jabber:client}thread", "plain"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)


@st.composite
def _messages(draw: st.DrawFn) -> Element:
    tag = draw(st.sampled_from([C + "message", "{jabber:server}message", "message"]))
    attrs = draw(st.dictionaries(st.sampled_from(["to", "type", "id", "a"]), _TEXT, max_size=3))
    element = Element(tag, attrs)
    element.text = draw(st.none() | _TEXT)
    for name in draw(st.lists(_NAMES, max_size=3)):
        child = Element(name, draw(st.dictionaries(st.just("k"), _TEXT, max_size=1)))
        child.text = draw(st.none() | _TEXT)
        element.append(child)
    return element


@given(_messages())
def test_the_archived_bytes_of_a_message_are_its_standalone_serialisation(
    element: Element,
) -> None:
    assert archived_bytes(element) == serialize(element, "")
