"""Offline storage at the edge (issue 11): the service writes through
``Persist`` effects, reads its own uncommitted writes, and a failed commit
answers the senders (docs/architecture.md, "Storage at the edge")."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.effects import Load, OfflineDelete, OfflinePage, OfflinePush, Persist
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineService
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x

C = "{jabber:client}"
JULIET = JID.parse("juliet@example.com")
ROMEO, BALCONY = 10, 1
FULL = StanzaErrorCondition.RESOURCE_CONSTRAINT


class Setup:
    def __init__(self, max_per_user: int = 1000) -> None:
        self.storage = MemoryOfflineStorage()
        self.service = OfflineService(self.storage, max_per_user=max_per_user, page_size=3)
        self.router = Router(
            ["example.com"],
            rng=seeded_rng(0),
            account_exists=lambda local, domain: local in {"juliet", "romeo"},
            services=[self.service],
            clock=lambda: 100.0,
        )
        self.router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))

    def send(self, body: str) -> list[Effect]:
        return self.router.route(
            ROMEO,
            x(
                f"<message to='juliet@example.com' type='chat' id='{body}'><body>{body}</body></message>"
            ),
        )

    def commit(self, effects: Sequence[Effect], ok: bool = True) -> list[Effect]:
        """Commit the Persist effects as the I/O layer does (or fail to)."""
        persists = [e for e in effects if isinstance(e, Persist)]
        if ok:
            self.storage.apply([p.op for p in persists])
        return self.router.persisted(persists, None if ok else FULL)

    def answer(self, effects: Sequence[Effect]) -> list[Effect]:
        """Answer the Load effects (a page of messages) from the storage as it
        is now, as the I/O layer does: the effects with each replaced by what
        its answer brings."""
        out: list[Effect] = []
        for effect in effects:
            if isinstance(effect, Load):
                loaded = self.router.loaded(effect.request_id, self.storage.load(effect.query))
                out.extend(self.answer(loaded))
            else:
                out.append(effect)
        return out

    def juliet_online(self) -> list[Effect]:
        self.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
        return self.answer(self.router.route(BALCONY, x("<presence/>")))


def bodies(effects: Sequence[Effect], session: int) -> list[str]:
    return [
        e.element.findtext(C + "body") or ""
        for e in effects
        if isinstance(e, Deliver)
        and e.session == session
        and e.element.tag == C + "message"
        and e.element.get("type") != "error"
    ]


def errors(effects: Sequence[Effect], session: int) -> list[tuple[str | None, str]]:
    return [
        (e.element.get("id"), parse_error(e.element).condition.value)
        for e in effects
        if isinstance(e, Deliver) and e.session == session and e.element.get("type") == "error"
    ]


def test_a_stored_message_is_a_persist_effect_and_nothing_is_written_before_the_commit() -> None:
    s = Setup()
    (effect,) = s.send("m1")
    assert isinstance(effect, Persist) and isinstance(effect.op, OfflinePush)
    assert effect.op.user == JULIET and b"<body>m1</body>" in effect.op.stanza
    assert effect.op.stamp == 100.0
    assert effect.stanza is not None and effect.stanza.get("id") == "m1"
    assert s.storage.count(JULIET) == 0
    assert s.commit([effect]) == []
    assert [m.id for m in s.storage.peek(JULIET)] == [effect.op.id]


def test_the_quota_counts_messages_not_yet_committed() -> None:
    s = Setup(max_per_user=2)
    s.send("m1")
    s.send("m2")
    assert errors(s.send("m3"), ROMEO) == [("m3", "service-unavailable")]


def test_a_presence_in_the_same_batch_gets_the_messages_not_yet_committed() -> None:
    s = Setup()
    pending = s.send("m1") + s.send("m2")
    assert bodies(s.juliet_online(), BALCONY) == ["m1", "m2"]
    s.commit(pending)
    assert s.storage.count(JULIET) == 2  # deleted only once handed over


def test_handing_over_deletes_through_a_persist_effect() -> None:
    s = Setup()
    s.commit(s.send("m1"))
    (delivery,) = [e for e in s.juliet_online() if isinstance(e, Deliver) and e.receipt]
    assert delivery.receipt is not None
    (effect,) = s.router.handed_over(BALCONY, delivery.receipt)
    assert isinstance(effect, Persist) and isinstance(effect.op, OfflineDelete)
    assert s.storage.count(JULIET) == 1
    s.commit([effect])
    assert s.storage.count(JULIET) == 0


def test_a_failed_commit_answers_each_sender_and_the_messages_are_not_delivered() -> None:
    s = Setup()
    pending = s.send("m1") + s.send("m2")
    answered = s.commit(pending, ok=False)
    assert errors(answered, ROMEO) == [("m1", "resource-constraint"), ("m2", "resource-constraint")]
    assert bodies(s.juliet_online(), BALCONY) == []
    assert s.storage.count(JULIET) == 0


def test_a_failed_delete_keeps_the_messages_for_the_next_presence() -> None:
    s = Setup()
    s.commit(s.send("m1"))
    (delivery,) = [e for e in s.juliet_online() if isinstance(e, Deliver) and e.receipt]
    assert delivery.receipt is not None
    assert s.commit(s.router.handed_over(BALCONY, delivery.receipt), ok=False) == []
    s.router.unbind(BALCONY)
    assert bodies(s.juliet_online(), BALCONY) == ["m1"]


def test_ids_continue_above_the_highest_ever_stored() -> None:
    storage = MemoryOfflineStorage()
    storage.push(JULIET, b"<message/>", 1.0, 10)
    storage.delete(JULIET, storage.last_id())
    s = Setup()
    s.storage = storage
    s.service = OfflineService(storage)
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, d: True,
        services=[s.service],
    )
    router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    (effect,) = router.route(ROMEO, x("<message to='juliet@example.com'/>"), now=1.0)
    assert isinstance(effect, Persist) and isinstance(effect.op, OfflinePush)
    assert effect.op.id == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=8), st.integers(1, 6))
def test_every_message_is_delivered_once_committed_or_answered_if_not(
    batches: list[tuple[int, bool]], quota: int
) -> None:
    """Batches of messages, each committed or failed, then Juliet comes online
    and takes every page: she gets exactly the committed messages, oldest first
    (up to the quota), each other one is answered to its sender, once."""
    s = Setup(max_per_user=quota)
    sent = 0
    kept: list[str] = []
    answered: list[str | None] = []
    for size, ok in batches:
        effects: list[Effect] = []
        for _ in range(size):
            body = f"m{sent}"
            sent += 1
            out = s.send(body)
            if any(isinstance(e, Persist) for e in out) and ok:
                kept.append(body)
            answered.extend(i for i, _ in errors(out, ROMEO))
            effects.extend(out)
        answered.extend(i for i, _ in errors(s.commit(effects, ok), ROMEO))
    got: list[str] = []
    todo = s.juliet_online()
    while todo:
        got.extend(bodies(todo, BALCONY))
        receipts = [e.receipt for e in todo if isinstance(e, Deliver) and e.receipt is not None]
        todo = []
        for receipt in receipts:
            more = s.router.handed_over(BALCONY, receipt)
            s.commit(more)
            todo.extend(s.answer([e for e in more if not isinstance(e, Persist)]))
    assert got == kept
    assert sorted(answered, key=lambda i: int(str(i)[1:])) == [
        f"m{i}" for i in range(sent) if f"m{i}" not in kept
    ]
    assert s.storage.count(JULIET) == 0


def test_the_flush_is_a_load_answered_later() -> None:
    """The stored messages are read by the I/O layer (a Load effect), not
    within the presence's router call; the page goes out with the answer."""
    s = Setup()
    s.commit(s.send("m1") + s.send("m2"))
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    (load,) = [e for e in s.router.route(BALCONY, x("<presence/>")) if isinstance(e, Load)]
    assert load.query == OfflinePage(JULIET, 0, 3)
    assert bodies(s.router.loaded(load.request_id, s.storage.load(load.query)), BALCONY) == [
        "m1",
        "m2",
    ]


def test_a_flush_answered_after_its_session_ended_delivers_nothing_and_keeps_the_messages() -> None:
    s = Setup()
    s.commit(s.send("m1"))
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    (load,) = [e for e in s.router.route(BALCONY, x("<presence/>")) if isinstance(e, Load)]
    s.router.unbind(BALCONY)
    assert s.router.loaded(load.request_id, s.storage.load(load.query)) == []
    assert bodies(s.juliet_online(), BALCONY) == ["m1"]


def test_a_failed_read_ends_the_flush_and_the_next_presence_tries_again() -> None:
    s = Setup()
    s.commit(s.send("m1"))
    s.router.bind(BALCONY, JID.parse("juliet@example.com/balcony"))
    (load,) = [e for e in s.router.route(BALCONY, x("<presence/>")) if isinstance(e, Load)]
    assert s.router.loaded(load.request_id, None) == []
    assert bodies(s.answer(s.router.route(BALCONY, x("<presence/>"))), BALCONY) == ["m1"]


def test_a_push_of_a_call_that_raised_is_forgotten_one_still_pending_is_kept() -> None:
    s = Setup(max_per_user=1)
    (kept,) = s.send("m1")
    assert isinstance(kept, Persist)
    assert s.router.abandoned([kept.op]) == []  # still held by the I/O layer
    assert errors(s.send("m2"), ROMEO) == [("m2", "service-unavailable")]
    assert s.router.abandoned([]) == []  # its call raised: it went nowhere
    (stored,) = s.send("m3")
    assert isinstance(stored, Persist)
