"""XEP-0359 stamping on the transform stage, as the archive's hot path does
it (session 8): one pass over the children for forged ids and
archivability, the parsed ``to`` from the router, the preferences cache
standing for the account's existence."""

from __future__ import annotations

import writer_oracle
from committing import CommittingRouter
from hypothesis import given
from hypothesis import strategies as st
from test_mam import JULIET, ROMEO, SID, World, results, to_session

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.service import archivable
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.writer import serialize

_CHILDREN = st.sampled_from(
    [
        "<body>hi</body>",
        "<store xmlns='urn:xmpp:hints'/>",
        "<no-store xmlns='urn:xmpp:hints'/>",
        "<no-permanent-store xmlns='urn:xmpp:hints'/>",
        "<no-copy xmlns='urn:xmpp:hints'/>",
        "<encrypted xmlns='urn:xmpp:omemo:2'/>",
        "<active xmlns='http://jabber.org/protocol/chatstates'/>",
        "<thread>t</thread>",
        "<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.com' id='forged'/>",
        "<stanza-id xmlns='urn:xmpp:sid:0' by='example.com' id='forged2'/>",
        "<stanza-id xmlns='urn:xmpp:sid:0' by='elsewhere.example' id='kept'/>",
    ]
)


@given(
    st.lists(_CHILDREN, max_size=5),
    st.sampled_from(["", " type='chat'", " type='normal'", " type='headline'"]),
)
def test_a_message_is_stamped_exactly_when_it_is_archivable_and_never_keeps_a_forged_id(
    children: list[str], kind: str
) -> None:
    # XEP-0313 §5.1.1 / XEP-0334 decide (whatever the children's order);
    # XEP-0359 §3.1: a stanza-id by a local JID never comes from a client.
    w = World()
    xml = f"<message to='juliet@example.com'{kind}>{''.join(children)}</message>"
    sent = x(xml)
    (delivered,) = to_session(w.send(ROMEO, xml), JULIET)
    ids = [(s.get("by"), s.get("id")) for s in delivered.iter(SID)]
    ours = [i for by, i in ids if by == "juliet@example.com"]
    assert len(ours) == (1 if archivable(sent) else 0)
    assert all(i not in ("forged", "forged2") for _, i in ids)
    assert ids.count(("elsewhere.example", "kept")) == children.count(
        "<stanza-id xmlns='urn:xmpp:sid:0' by='elsewhere.example' id='kept'/>"
    )
    # the stamped id names the message in both archives (one op, both sides)
    for account in ("juliet@example.com", "romeo@example.com"):
        assert w.archive.count(JID.parse(account)) == len(ours)


def _ids(sid: str) -> str:
    return (
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
        "<value>urn:xmpp:mam:2</value></field>"
        f"<field var='ids'><value>{sid}</value></field></x>"
    )


def test_a_removed_account_gets_no_stamp_though_its_preferences_were_cached() -> None:
    # The preferences cache stands for "the account exists" (one lookup a
    # message): AccountRemoved must drop it, so a message to the removed
    # account is bounced as before, with no stanza-id of ours on it.
    w = World()
    w.chat("first")  # juliet's preferences are cached now
    w.router.end_sessions(
        JID.parse("juliet@example.com"), StreamErrorCondition.NOT_AUTHORIZED, removed=True
    )
    w.router._account_exists = lambda local, domain: local in {"romeo", "nurse"}  # type: ignore[method-assign]
    effects = w.send(
        ROMEO, "<message to='juliet@example.com' type='chat' id='m2'><body>x</body></message>"
    )
    (bounce,) = to_session(effects, ROMEO)
    assert bounce.get("type") == "error"
    assert parse_error(bounce).condition.value == "service-unavailable"
    assert all(s.get("by") != "juliet@example.com" for s in bounce.iter(SID))
    assert w.archive.count(JID.parse("juliet@example.com")) == 0


def test_a_message_to_self_is_archived_once_under_its_stamped_id() -> None:
    # XEP-0313 §5.1.1: sender and recipient are one archive: one entry.
    w = World()
    effects = w.send(
        ROMEO, "<message to='romeo@example.com' type='chat'><body>note</body></message>"
    )
    (delivered,) = to_session(effects, ROMEO)
    stamp = delivered.find(SID)
    assert stamp is not None and stamp.get("by") == "romeo@example.com"
    assert w.archive.count(JID.parse("romeo@example.com")) == 1
    assert results(w.query(ROMEO, _ids(stamp.get("id", "")))) == ["note"]


def test_a_preference_change_after_stamped_messages_changes_the_next_stamp() -> None:
    # The stamp's ``by`` is kept per account with default preferences (one
    # lookup a message): a change of preferences (XEP-0313 §6.1) must reach
    # the very next message, both ways.
    w = World()

    def stamps(body: str) -> list[str | None]:
        (delivered,) = to_session(w.chat(body), JULIET)
        return [s.get("by") for s in delivered.iter(SID)]

    assert stamps("one") == stamps("two") == ["juliet@example.com"]
    w.send(JULIET, "<iq type='set' id='p'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>")
    assert stamps("three") == []
    w.send(JULIET, "<iq type='set' id='q'><prefs xmlns='urn:xmpp:mam:2' default='always'/></iq>")
    assert stamps("four") == ["juliet@example.com"]
    assert results(w.query(JULIET)) == ["one", "two", "four"]


def test_a_preference_change_of_the_sender_reaches_its_very_next_archived_copy() -> None:
    # The sender's side of the common archived copy is one lookup by its
    # ``from`` (session 11): a change of the sender's preferences (XEP-0313
    # §6.1) must reach the very next message, both ways; the recipient's
    # archive is not affected.
    w = World()
    romeo, juliet = JID.parse("romeo@example.com"), JID.parse("juliet@example.com")
    w.chat("one")
    w.chat("two")
    assert (w.archive.count(romeo), w.archive.count(juliet)) == (2, 2)
    w.send(ROMEO, "<iq type='set' id='p'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>")
    w.chat("three")
    assert (w.archive.count(romeo), w.archive.count(juliet)) == (2, 3)
    w.send(ROMEO, "<iq type='set' id='q'><prefs xmlns='urn:xmpp:mam:2' default='always'/></iq>")
    w.chat("four")
    assert results(w.query(ROMEO)) == ["one", "two", "four"]
    assert results(w.query(JULIET)) == ["one", "two", "three", "four"]


@given(st.sampled_from(["juliet@example.com", "Juliet@Example.com/balcony", "romeo@example.com"]))
def test_the_stamped_message_is_written_as_the_old_writer_wrote_it(to: str) -> None:
    # The <stanza-id/> is written as made (writer.Prewritten): the delivered
    # message's bytes are the generic writer's, byte for byte, every time
    # (the first message fills the caches, the next ones use them).
    w = World()
    for body in ("one", "two"):
        effects = w.send(ROMEO, f"<message to='{to}' type='chat'><body>{body}</body></message>")
        for session in (JULIET, ROMEO):
            for delivered in to_session(effects, session):
                assert delivered.find(SID) is not None
                assert serialize(delivered) == writer_oracle.serialize(delivered)


@given(st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=40))
def test_stanza_ids_are_unique_hex_and_carry_a_time_at_most_a_second_old(
    steps: list[float],
) -> None:
    # XEP-0359 §4 / XEP-0313 §5.1.1: unique and unpredictable (64 random
    # bits each); the 14 hex digits before them are the time in microseconds
    # at which their pool was drawn: never after the message, at most a
    # second before it (so ids sort by time between pools).
    clock = [1_700_000_000.0]
    w = World()
    w.router = CommittingRouter(
        ["example.com"],
        rng=seeded_rng(5),
        account_exists=lambda local, domain: local in {"juliet", "romeo"},
        services=[w.mam],
        clock=lambda: clock[0],
    )
    w.router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    w.router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
    for s in (ROMEO, JULIET):
        w.router.route(s, x("<presence/>"))
    ids = []
    for i, step in enumerate(steps):
        clock[0] += step
        (delivered,) = to_session(w.chat(f"m{i}"), JULIET)
        stamp = delivered.find(SID)
        assert stamp is not None
        sid = stamp.get("id", "")
        assert len(sid) == 30 and int(sid, 16) >= 0
        at = int(sid[:14], 16) / 1e6
        assert clock[0] - 1.0 - 1e-6 <= at <= clock[0] + 1e-6
        ids.append(sid)
    assert len(set(ids)) == len(ids)
