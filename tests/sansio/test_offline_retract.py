"""Retractions (XEP-0424) of messages still in offline storage (XEP-0160):
the original, from the retraction's own bare JID and named by its origin id
(or ``id``), is dropped from the queue; the retraction is kept, so the
account coming online gets only the retraction and never the retracted
body. Anyone else's retraction, an unknown id or an original already
delivered changes nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_offline import BALCONY, JULIET, ROMEO, C, Setup, bodies, delivered, hand_over, online

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Router
from xmpp_sansio.server.effects import Load, OfflinePush, OfflineRemove, Persist
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineService, parse_fragment
from xmpp_sansio.testing import seeded_rng, x

NURSE = 11


def setup() -> Setup:
    s = Setup()
    s.router.bind(NURSE, JID.parse("nurse@example.com/home"))
    online(s.router, NURSE)
    return s


def chat(origin: str, body: str = "secret") -> str:
    return (
        f"<message to='juliet@example.com' type='chat' id='{origin}'><body>{body}</body>"
        f"<origin-id xmlns='urn:xmpp:sid:0' id='{origin}'/></message>"
    )


def retraction(target: str) -> str:
    return (
        f"<message to='juliet@example.com' type='chat' id='r-{target}'>"
        f"<retract xmlns='urn:xmpp:message-retract:1' id='{target}'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
        "<body>retracted</body><store xmlns='urn:xmpp:hints'/></message>"
    )


def remote(inner: str) -> str:
    return f"<message from='mercutio@far.example/x' to='juliet@example.com' type='chat'>{inner}</message>"


def stored_bodies(s: Setup) -> list[str | None]:
    return [parse_fragment(m.stanza).findtext(C + "body") for m in s.storage.peek(JULIET)]


def come_online(s: Setup) -> list[str | None]:
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    effects = online(s.router, BALCONY)
    effects += hand_over(s.router, effects)
    return bodies(delivered(effects, BALCONY))


def test_a_retracted_original_is_dropped_and_only_the_retraction_is_delivered() -> None:
    s = setup()
    s.send(chat("o1"))
    s.send(chat("o2", "kept"))
    s.send(retraction("o1"))
    assert stored_bodies(s) == ["kept", "retracted"]
    got = come_online(s)
    assert got == ["kept", "retracted"] and "secret" not in got
    assert s.storage.count(JULIET) == 0


def test_someone_elses_retraction_leaves_the_original() -> None:
    s = setup()
    s.send(chat("o1"))
    s.router.route(NURSE, x(retraction("o1")))  # the nurse names romeo's message
    s.router.route_inbound(x(remote("<retract xmlns='urn:xmpp:message-retract:1' id='o1'/>")))
    assert stored_bodies(s) == ["secret", "retracted", None]


def test_an_unknown_id_or_an_original_already_delivered_changes_nothing() -> None:
    s = setup()
    s.send(chat("o1", "first"))
    assert come_online(s) == ["first"]
    s.router.unbind(BALCONY)
    s.send(retraction("o1"))
    s.send(retraction("nope"))
    assert stored_bodies(s) == ["retracted", "retracted"]


def test_a_remote_senders_retraction_drops_its_own_original() -> None:
    s = setup()
    s.router.route_inbound(x(remote("<body>far</body><origin-id xmlns='urn:xmpp:sid:0' id='f1'/>")))
    s.send(chat("f1", "romeo's, same id"))
    s.router.route_inbound(
        x(remote("<retract xmlns='urn:xmpp:message-retract:1' id='f1'/><body>r</body>"))
    )
    assert stored_bodies(s) == ["romeo's, same id", "r"]


def test_a_message_without_origin_id_is_named_by_its_id() -> None:
    s = setup()
    s.send("<message to='juliet@example.com' type='chat' id='m1'><body>secret</body></message>")
    s.send(retraction("m1"))
    assert stored_bodies(s) == ["retracted"]


def test_a_later_message_with_the_same_id_is_not_the_one_retracted() -> None:
    s = setup()
    s.send(chat("o1", "old"))
    s.send(retraction("o1"))
    s.send(chat("o1", "new"))  # reused after the retraction: not retracted by it
    s.send(retraction("o1"))  # the second names "new", the newest before it
    assert stored_bodies(s) == ["retracted", "retracted"]


def test_an_original_not_yet_committed_is_dropped_through_the_overlay() -> None:
    """Both pushes in one batch (no commit between): the queue read misses
    the original, the overlay has it; committed in order, only the
    retraction is left."""
    storage = MemoryOfflineStorage()
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in {"juliet", "romeo"},
        services=[OfflineService(storage)],
        clock=lambda: 1.0,
    )
    router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    effects = router.route(ROMEO, x(chat("o1")))
    effects += router.route(ROMEO, x(retraction("o1")))
    (load,) = [e for e in effects if isinstance(e, Load)]
    answer = router.loaded(load.request_id, storage.load(load.query))
    ops = [e.op for e in [*effects, *answer] if isinstance(e, Persist)]
    assert [type(op) for op in ops] == [OfflinePush, OfflinePush, OfflineRemove]
    storage.apply(ops)
    assert [parse_fragment(m.stanza).findtext(C + "body") for m in storage.peek(JULIET)] == [
        "retracted"
    ]


SENDERS = ("romeo", "nurse", "remote")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # a retraction (else a message)
            st.sampled_from(SENDERS),
            st.integers(0, 5),  # the origin id it names (a retraction)
        ),
        max_size=20,
    )
)
def test_offline_juliet_gets_exactly_what_was_not_retracted_by_its_sender(
    steps: list[tuple[bool, str, int]],
) -> None:
    """Any mix of messages and retractions from two local accounts and a
    remote one to offline juliet: coming online she gets every retraction
    and every message except those its own sender later retracted (the
    newest with that id before the retraction), in order."""
    s = setup()
    expected: list[tuple[str, str]] = []  # (sender, body) still due, in order
    for n, (is_retraction, sender, named) in enumerate(steps):
        origin = f"o{named}" if is_retraction else f"o{n % 6}"
        xml = retraction(origin) if is_retraction else chat(origin, f"b{n}")
        if is_retraction:
            for i in reversed(range(len(expected))):
                frm, body = expected[i]
                if frm == sender and body != "retracted" and f"o{int(body[1:]) % 6}" == origin:
                    del expected[i]
                    break
            expected.append((sender, "retracted"))
        else:
            expected.append((sender, f"b{n}"))
        if sender == "remote":
            s.router.route_inbound(x(xml.replace("<message ", "<message from='m@far.example/x' ")))
        else:
            s.router.route(ROMEO if sender == "romeo" else NURSE, x(xml))
    assert come_online(s) == [body for _, body in expected]


def test_a_full_queue_refuses_the_retraction_but_still_drops_its_original() -> None:
    s = Setup(max_per_user=1)
    s.send(chat("o1"))
    effects = s.send(retraction("o1"))
    (bounce,) = delivered(effects, ROMEO)
    assert bounce.get("type") == "error"
    assert s.storage.count(JULIET) == 0
