"""Message retraction (XEP-0424) in the user archives, on the router: the
sender's and a local recipient's copies become tombstones that keep
their place and XEP-0359 ids; only the sender may retract; the retraction
itself is delivered and archived."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from hypothesis import given, settings
from hypothesis import strategies as st
from test_mam import JULIET, NURSE, ROMEO, World, form, to_session

from xmpp_sansio.server.mam.retract import RETRACT_NS, RETRACT_TOMBSTONE
from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.testing import x

C = "{jabber:client}"
MAM = "{urn:xmpp:mam:2}"
R = "{urn:xmpp:message-retract:1}"
FWD = "{urn:xmpp:forward:0}forwarded"


def original(w: World, origin: str, body: str = "secret", frm: int = ROMEO) -> None:
    to = "juliet@example.com" if frm != JULIET else "romeo@example.com"
    w.send(
        frm,
        f"<message to='{to}' type='chat' id='{origin}'><body>{body}</body>"
        f"<origin-id xmlns='urn:xmpp:sid:0' id='{origin}'/></message>",
    )


def retract(
    w: World,
    target: str,
    frm: int = ROMEO,
    to: str = "juliet@example.com",
    now: float | None = None,
) -> None:
    w.router.route(
        frm,
        x(
            f"<message to='{to}' type='chat' id='r-{target}'>"
            f"<retract xmlns='urn:xmpp:message-retract:1' id='{target}'/>"
            "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
            "<body>retracted</body><store xmlns='urn:xmpp:hints'/></message>"
        ),
        now=now,
    )


def archived(w: World, session: int) -> list[Element]:
    """The forwarded messages of the session's archive, oldest first."""
    out = []
    for answer in w.query(session, form()):
        found = answer.find(f"{MAM}result/{FWD}/{C}message")
        if found is not None:
            out.append(found)
    return out


def test_the_senders_and_the_recipients_copies_become_tombstones_with_their_ids() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "o1")
    before = {s: [m.find("{urn:xmpp:sid:0}stanza-id") for m in archived(w, s)] for s in (1, 2)}
    retract(w, "o1")
    for session in (ROMEO, JULIET):
        first, second = archived(w, session)
        # the tombstone: no body, <retracted stamp/>, the ids kept, in its place
        assert first.find(C + "body") is None
        stamp = first.find(R + "retracted")
        assert stamp is not None and stamp.get("stamp") == "1970-01-12T13:46:40Z"
        assert stamp.get("id") == "r-o1"  # the retraction's own id
        origin = first.find("{urn:xmpp:sid:0}origin-id")
        assert origin is not None and origin.get("id") == "o1"
        assert first.get("from") == "romeo@example.com/orchard"
        sid = first.find("{urn:xmpp:sid:0}stanza-id")
        old = before[session][0]
        assert sid is not None and old is not None and sid.attrib == old.attrib
        # the retraction itself is archived after it
        assert second.find(R + "retract") is not None
        assert second.findtext(C + "body") == "retracted"


def test_the_retraction_is_delivered_to_the_recipient() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "o1")
    effects = w.send(
        ROMEO,
        "<message to='juliet@example.com' type='chat'>"
        "<retract xmlns='urn:xmpp:message-retract:1' id='o1'/><body>x</body></message>",
    )
    (delivered,) = to_session(effects, JULIET)
    found = delivered.find(R + "retract")
    assert found is not None and found.get("id") == "o1"


def test_another_user_cannot_retract_a_message_they_did_not_send() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "o1")
    # juliet names romeo's message (she received it: same origin id) and so
    # does the nurse, who never saw it: nothing changes anywhere
    retract(w, "o1", frm=JULIET, to="romeo@example.com")
    retract(w, "o1", frm=NURSE, to="juliet@example.com")
    for session in (ROMEO, JULIET):
        assert archived(w, session)[0].findtext(C + "body") == "secret"


def test_only_the_senders_message_with_that_origin_id_is_retracted() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "same", body="from romeo")
    original(w, "same", body="from juliet", frm=JULIET)
    retract(w, "same")
    bodies = [m.findtext(C + "body") for m in archived(w, JULIET)]
    assert bodies[:2] == [None, "from juliet"]


def test_an_unknown_id_changes_nothing_and_the_retraction_is_still_archived() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "o1")
    retract(w, "nope")
    first, second = archived(w, ROMEO)
    assert first.findtext(C + "body") == "secret"
    assert second.find(R + "retract") is not None


def test_a_retraction_without_an_id_changes_nothing_and_is_delivered() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "o1")
    for bad in (
        "<retract xmlns='urn:xmpp:message-retract:1'/>",
        "<retract id='' xmlns='urn:xmpp:message-retract:1'/>",
    ):
        effects = w.send(
            ROMEO, f"<message to='juliet@example.com' type='chat'>{bad}<body>x</body></message>"
        )
        assert len(to_session(effects, JULIET)) == 1
    assert archived(w, JULIET)[0].findtext(C + "body") == "secret"


def test_a_second_retraction_leaves_the_first_tombstone() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "o1")
    retract(w, "o1")
    retract(w, "o1", now=2_000_000.0)
    stamp = archived(w, ROMEO)[0].find(R + "retracted")
    assert stamp is not None and stamp.get("stamp") == "1970-01-12T13:46:40Z"


def test_a_message_older_than_the_window_is_not_found() -> None:
    w = World(MamLimits(enabled=True, retract_window=2))
    original(w, "old")
    original(w, "a", body="a")
    original(w, "b", body="b")
    retract(w, "b")  # the window: b and the retraction itself
    assert archived(w, ROMEO)[2].findtext(C + "body") is None
    retract(w, "old")  # the window: the two retractions
    assert archived(w, ROMEO)[0].findtext(C + "body") == "secret"


def test_a_message_without_origin_id_is_named_by_its_id() -> None:
    w = World(MamLimits(enabled=True))
    w.send(ROMEO, "<message to='juliet@example.com' type='chat' id='m1'><body>x</body></message>")
    retract(w, "m1")
    assert archived(w, JULIET)[0].findtext(C + "body") is None


def test_a_remote_senders_retraction_reaches_the_local_recipients_archive() -> None:
    w = World(MamLimits(enabled=True))
    for inner in (
        "<body>far</body><origin-id xmlns='urn:xmpp:sid:0' id='f1'/>",
        "<retract xmlns='urn:xmpp:message-retract:1' id='f1'/><body>r</body>",
    ):
        w.router.route_inbound(
            x(
                "<message from='mercutio@far.example/x' "
                f"to='juliet@example.com/balcony' type='chat'>{inner}</message>"
            )
        )
    assert archived(w, JULIET)[0].findtext(C + "body") is None


def test_the_account_advertises_retraction_and_tombstones() -> None:
    """XEP-0424 §2: a server that keeps retractions for later retrieval says
    so; "Tombstones": one that replaces retracted messages MUST say so too."""
    w = World(MamLimits(enabled=True))
    assert RETRACT_NS in w.router.account_features()
    assert RETRACT_TOMBSTONE in w.router.account_features()


def test_a_retraction_without_an_id_attribute_is_named_by_its_origin_id() -> None:
    w = World(MamLimits(enabled=True))
    original(w, "o1")
    w.send(
        ROMEO,
        "<message to='juliet@example.com' type='chat'><body>r</body>"
        "<retract xmlns='urn:xmpp:message-retract:1' id='o1'/>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='r-origin'/></message>",
    )
    dead = archived(w, JULIET)[0].find(R + "retracted")
    assert dead is not None and dead.get("id") == "r-origin"


USERS = {ROMEO: "romeo", JULIET: "juliet", NURSE: "nurse"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # a retraction (else a message)
            st.sampled_from(sorted(USERS)),  # from
            st.sampled_from(sorted(USERS)),  # to
            st.integers(0, 11),  # the origin id it names (a retraction)
        ),
        max_size=24,
    )
)
def test_a_message_is_a_tombstone_exactly_when_its_sender_retracted_it_later(
    steps: list[tuple[bool, int, int, int]],
) -> None:
    """Any mix of messages and retractions among three accounts: in every
    archive, a message is a tombstone iff its sender later sent a
    retraction of its origin id to the same peer."""
    w = World(MamLimits(enabled=True))
    sent: list[tuple[int, int, str]] = []  # (from, to, origin) of each message
    retracted: set[str] = set()
    for is_retraction, frm, to, named in steps:
        peer = f"{USERS[to]}@example.com"
        if is_retraction:
            retract(w, f"o{named}", frm=frm, to=peer)
            if any(f == frm and t == to and o == f"o{named}" for f, t, o in sent):
                retracted.add(f"o{named}")
        elif len(sent) < 12:
            origin = f"o{len(sent)}"
            w.send(
                frm,
                f"<message to='{peer}' type='chat'><body>b</body>"
                f"<origin-id xmlns='urn:xmpp:sid:0' id='{origin}'/></message>",
            )
            sent.append((frm, to, origin))
    for session in USERS:
        for message in archived(w, session):
            if message.find(R + "retract") is not None:
                continue
            origin = message.find("{urn:xmpp:sid:0}origin-id")
            assert origin is not None
            dead = message.find(R + "retracted") is not None
            assert dead == (origin.get("id") in retracted), (session, origin.get("id"))
            assert dead == (message.find(C + "body") is None)
