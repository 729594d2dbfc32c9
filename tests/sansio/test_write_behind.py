"""Ops written behind (``Context.behind``, ``Router.behind``): the archived
copy of a message is no ``Persist`` effect; the I/O layer takes the router's
list when it commits a batch. A router call that raises (a store read
failed) is reported with ``Router.abandoned``: the ops that call wrote
behind are dropped, and only those (docs/mam.md "Written behind")."""

from __future__ import annotations

import dataclasses
from typing import ClassVar
from xml.etree.ElementTree import Element

from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Router
from xmpp_sansio.server.effects import Outcome, Persist
from xmpp_sansio.server.mam.service import MamService
from xmpp_sansio.server.mam.store import ArchivePut, ArchiveQuery, MemoryArchive
from xmpp_sansio.server.service import Service
from xmpp_sansio.server.stages import Context, Event, MessageSent, Stage
from xmpp_sansio.server.view import BoundSession
from xmpp_sansio.testing import seeded_rng, x
from xmpp_sansio.xml.parser import parse_fragment

ROMEO, JULIET = 1, 2


class StoreDown(Exception):
    """A store read that failed (``sqlite3.Error`` in the server)."""


class FailingRead(Service):
    """Raises for a message whose body starts with ``late`` after the archive
    wrote its copy behind (observing it after the archive), and for one whose
    body starts with ``early`` before anything was written (the outbound
    stage)."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.OUTBOUND})
    observes: ClassVar[tuple[type[Event], ...]] = (MessageSent,)

    def filter_outbound(
        self, ctx: Context, session: BoundSession, element: Element, to: JID | None
    ) -> list[Outcome] | None:
        if (element.findtext("{jabber:client}body") or "").startswith("early"):
            raise StoreDown("early")
        return None

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        assert isinstance(event, MessageSent)
        if (event.element.findtext("{jabber:client}body") or "").startswith("late"):
            raise StoreDown("late")
        return []


def world() -> tuple[Router, MemoryArchive]:
    archive = MemoryArchive()
    router = Router(
        ["example.com"],
        rng=seeded_rng(3),
        account_exists=lambda local, domain: local in {"romeo", "juliet"},
        services=[MamService(archive, lambda owner, peer: False), FailingRead()],
        clock=lambda: 1_000_000.0,
    )
    router.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    router.bind(JULIET, JID.parse("juliet@example.com/balcony"))
    for session in (ROMEO, JULIET):
        router.route(session, x("<presence/>"))
    return router, archive


def chat(body: str) -> Element:
    return x(f"<message to='juliet@example.com' type='chat'><body>{body}</body></message>")


def archived(archive: MemoryArchive, account: str) -> list[str]:
    page = archive.load(ArchiveQuery(JID.parse(account), max=1000))
    return [
        parse_fragment(m.stanza).findtext("{jabber:client}body") or ""
        for m in getattr(page, "items", ())
    ]


def test_an_archived_message_is_written_behind_not_returned_as_an_effect() -> None:
    router, archive = world()
    effects = router.route(ROMEO, chat("hello"))
    assert not any(isinstance(e, Persist) for e in effects)
    (put,) = router.behind
    assert isinstance(put, ArchivePut) and put.archive == JID.parse("romeo@example.com")
    # built field by field on the hot path: every field is set
    assert put == dataclasses.replace(put) and put.also == (
        (JID.parse("juliet@example.com"), JID.parse("romeo@example.com/orchard")),
    )
    archive.apply(router.behind)
    router.behind.clear()
    assert archived(archive, "juliet@example.com") == ["hello"]


@given(
    st.lists(
        # (how the call ends, whether the batch ends after it)
        st.tuples(st.sampled_from(["ok", "late", "early"]), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_ops_of_calls_that_raised_are_never_written_and_the_others_always_are_in_order(
    calls: list[tuple[str, bool]],
) -> None:
    router, archive = world()
    returned: list[str] = []
    for i, (how, batch_ends) in enumerate(calls):
        body = f"{how} {i}"
        try:
            router.route(ROMEO, chat(body))
        except StoreDown:
            # what the server does (XMPPServer.storage_failed): report it next
            assert router.abandoned([]) == []
        else:
            returned.append(body)
        if batch_ends:  # the I/O layer takes what was written behind
            archive.apply(router.behind)
            router.behind.clear()
    archive.apply(router.behind)
    assert archived(archive, "romeo@example.com") == returned
    assert archived(archive, "juliet@example.com") == returned


def test_a_call_that_raised_before_writing_behind_leaves_the_earlier_ops() -> None:
    router, _ = world()
    router.route(ROMEO, chat("one"))
    router.route(ROMEO, chat("two"))
    try:
        router.route(ROMEO, chat("early"))
    except StoreDown:
        router.abandoned([])
    assert [type(op) for op in router.behind] == [ArchivePut, ArchivePut]
