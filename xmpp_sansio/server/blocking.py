"""The Blocking Command (XEP-0191).

Theory of operation
-------------------
Each account has a set of blocked JIDs in a :class:`BlockStorage`. The
client reads it with ``<blocklist/>`` (XEP-0191 §3.2) and changes it with
``<block/>`` and ``<unblock/>`` (§3.3-§3.5); every change is pushed to the
account's resources that have read the list in their session. A blocked
item matches addresses as XEP-0191 §6 (and XEP-0016) says: a full JID only
that resource, a bare JID any of its resources, ``domain/resource`` only
that address, a domain anything at that domain. One's own resources are never
blocked (XEP-0191 §5, note).

Enforcement (XEP-0191 §3.3), so that the user appears offline to the
blocked entity:

* inbound, from a blocked JID: presence of every type is dropped silently;
  messages are answered with ``service-unavailable`` (errors dropped);
  iq get/set with ``service-unavailable``, other iqs dropped;
* outbound, to a blocked JID: messages and iqs are answered with
  ``not-acceptable`` plus ``<blocked xmlns='urn:xmpp:blocking:errors'/>``,
  presence is dropped silently (as Prosody does: an error to one's own
  presence helps nobody); errors and iq results are dropped;
* stanzas other services originate on the user's behalf and route with
  ``Router.route_inbound`` (presence broadcasts, probe answers) to a JID the
  user blocked are dropped too, in the blocked JID's inbound filter.

While nobody blocks anyone (no list stored, none pending) the service is
:attr:`~BlockingService.idle` and the router does not call its filters at
all (:mod:`~xmpp_sansio.server.pipeline`, issue 24); that needs a storage
that can say who has a list (:meth:`BlockStorage.blocking_users`, optional:
without it the filters always run). The first write of a list ends that
before the next stanza is routed, the commit or abandonment that leaves
every list empty starts it again.

On block, each available resource of the user sends unavailable presence to
each newly blocked JID that is subscribed to the user's presence (§3.3); on
unblock, its current presence (§3.4, §3.5). "Subscribed" is the injected
``is_subscribed(contact, user)`` predicate (both bare JIDs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence, Set
from typing import TYPE_CHECKING, ClassVar, Final, Protocol
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition, StanzaErrorType
from ..jid import JID, InvalidJID
from ..stanza import (
    Iq,
    IqType,
    PresenceType,
    StanzaKind,
    can_reply_with_error,
    error_reply,
    iq_result,
    make_iq,
    make_presence,
    stanza_kind,
    with_attrs,
)
from ..xml.element import split_tag
from .effects import (
    BlockAdd,
    BlockClear,
    BlockRemove,
    Bounce,
    Deliver,
    Persist,
    Reply,
    Route,
    StoreOp,
    after_writes,
)
from .overlay import Overlay
from .service import IqService
from .stages import (
    Abandoned,
    AccountRemoved,
    Committed,
    Context,
    Event,
    PresenceBroadcast,
    SessionUnbound,
    Stage,
)

if TYPE_CHECKING:
    from .effects import Outcome, SessionId
    from .view import BoundSession, ServerView

__all__ = [
    "BLOCKING_ERRORS_NS",
    "BLOCKING_NS",
    "BlockStorage",
    "BlockingService",
    "MemoryBlockStorage",
    "blocked_by",
]

BLOCKING_NS: Final = "urn:xmpp:blocking"
BLOCKING_ERRORS_NS: Final = "urn:xmpp:blocking:errors"

_ITEM: Final = f"{{{BLOCKING_NS}}}item"
_NOBODY: Final[frozenset[JID]] = frozenset()  # the block list of most users


class BlockStorage(Protocol):
    """The accounts' block lists (synchronous; see ``xmpp_trio.stores``).
    ``user`` is always a bare JID; blocked JIDs are kept exactly as given
    (bare, full or a domain: XEP-0191 §6 matching is the service's). Every
    change is durable when its method returns. :class:`BlockingService`
    writes only through :meth:`apply`, and while it runs nothing else writes
    (it caches the lists, and knows from the start whether anyone blocks).

    The contract a backend implements; ``tests/test_store_contract.py`` checks it
    for every backend.
    """

    def blocklist(self, user: JID) -> set[JID]:
        """The JIDs ``user`` blocks (a new set the caller may keep)."""
        ...

    def block(self, user: JID, jids: Iterable[JID]) -> None:
        """Add ``jids`` (already blocked ones are ignored)."""
        ...

    def unblock(self, user: JID, jids: Iterable[JID]) -> None:
        """Remove ``jids`` (ones not blocked are ignored)."""
        ...

    def unblock_all(self, user: JID) -> None:
        """Empty ``user``'s block list."""
        ...

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`BlockAdd`, :class:`BlockRemove`,
        :class:`BlockClear`) in order, all or nothing."""
        ...

    # Optional (not part of the Protocol, looked up with getattr):
    #
    # def blocking_users(self) -> set[JID]:
    #     """Every user (bare) whose list is not empty. With it the service
    #     knows when nobody blocks anyone, and the router skips its filters."""


def _blocking_users(storage: BlockStorage) -> set[JID] | None:
    """The storage's users with a list, or ``None`` if it cannot tell."""
    method: Callable[[], Iterable[JID]] | None = getattr(storage, "blocking_users", None)
    return None if method is None else {user.bare for user in method()}


class MemoryBlockStorage:
    """An in-memory :class:`BlockStorage`."""

    def __init__(self) -> None:
        self._lists: dict[JID, set[JID]] = {}

    def blocklist(self, user: JID) -> set[JID]:
        return set(self._lists.get(user.bare, ()))

    def block(self, user: JID, jids: Iterable[JID]) -> None:
        self._lists.setdefault(user.bare, set()).update(jids)
        if not self._lists[user.bare]:
            del self._lists[user.bare]

    def unblock(self, user: JID, jids: Iterable[JID]) -> None:
        current = self._lists.get(user.bare)
        if current is None:
            return
        current.difference_update(jids)
        if not current:
            del self._lists[user.bare]

    def unblock_all(self, user: JID) -> None:
        self._lists.pop(user.bare, None)

    def blocking_users(self) -> set[JID]:
        """Every user with a list (the optional method, see :class:`BlockStorage`)."""
        return set(self._lists)

    def apply(self, ops: Sequence[StoreOp]) -> None:
        lists = {user: set(jids) for user, jids in self._lists.items()}
        for op in ops:
            match op:
                case BlockAdd():
                    lists.setdefault(op.user.bare, set()).update(op.jids)
                case BlockRemove():
                    lists.get(op.user.bare, set()).difference_update(op.jids)
                case BlockClear():
                    lists.pop(op.user.bare, None)
                case _:
                    raise TypeError(f"not a block list op: {op!r}")
        self._lists = {user: jids for user, jids in lists.items() if jids}


def blocked_by(blocklist: Set[JID], address: JID) -> bool:
    """Whether an item of ``blocklist`` matches ``address`` (XEP-0191 §6,
    XEP-0016 §2.1): the full JID itself, its bare JID, or its domain (a
    ``domain/resource`` item only matches that exact address)."""
    if not blocklist:
        return False
    return (
        address in blocklist
        or address.bare in blocklist
        or (address.local is not None and JID.parse(address.domain) in blocklist)
    )


class _BadRequest(Exception):
    def __init__(self, condition: StanzaErrorCondition) -> None:
        super().__init__(condition)
        self.condition = condition


def _items(payload: Element) -> list[JID]:
    """The ``<item jid=.../>`` children, in order and without repeats; raises
    :class:`_BadRequest` for any other child, a missing ``jid``
    (``bad-request``, XEP-0191 §10 schema) or an invalid one (``jid-malformed``)."""
    jids: dict[JID, None] = {}
    for child in payload:
        text = child.get("jid") if child.tag == _ITEM else None
        if text is None:
            raise _BadRequest(StanzaErrorCondition.BAD_REQUEST)
        try:
            jids[JID.parse(text)] = None
        except InvalidJID:
            raise _BadRequest(StanzaErrorCondition.JID_MALFORMED) from None
    return list(jids)


def _list_element(tag: str, jids: Iterable[JID]) -> Element:
    el = Element(f"{{{BLOCKING_NS}}}{tag}")
    for jid in jids:
        el.append(Element(_ITEM, {"jid": str(jid)}))
    return el


class _BlockLists:
    """The block lists as the service reads them: the pending writes (an
    :class:`Overlay` of whole lists), then a read-through cache of the
    storage. Every inbound stanza asks whether its recipient blocks its
    sender, so the lists are kept in memory (at most ``max_users`` of them;
    past that the cache starts over). The cache holds committed lists only:
    a commit (or a failed one) drops its users' entries.

    :attr:`empty` holds the ``(local, domain)`` of each user known to block
    nobody (an empty committed list, no write pending): the filters test
    both parties of a stanza with two set lookups and no call (issue 24).
    A user's key leaves it on every write and commit of that user's list,
    and comes back when the list is next read empty.

    :attr:`idle`: nobody blocks anyone, committed or pending, known from
    :attr:`blocking` (the users with a committed list, from the storage's
    ``blocking_users`` at start, then kept by the commits; ``None`` if the
    storage cannot tell: never idle). ``on_idle(idle)`` runs when it flips."""

    def __init__(self, storage: BlockStorage, max_users: int = 100_000) -> None:
        self._storage = storage
        self._max_users = max_users
        self._lists: dict[JID, frozenset[JID]] = {}
        self._overlay: Overlay[JID, frozenset[JID]] = Overlay()
        self.empty: set[tuple[str | None, str]] = set()
        #: Changes whenever a list may have changed (readers key caches on it).
        self.generation = 0
        self.blocking = _blocking_users(storage)
        self.idle = self.blocking is not None and not self.blocking
        self.on_idle: Callable[[bool], None] | None = None

    def _check_idle(self) -> None:
        blocking = self.blocking
        idle = blocking is not None and not blocking and not self._overlay.writes
        if idle != self.idle:
            self.idle = idle
            if self.on_idle is not None:
                self.on_idle(idle)

    def blocklist(self, user: JID) -> frozenset[JID]:
        if self._overlay.writes:
            pending = self._overlay.pending(user)
            if pending is not None:
                return pending
        cached = self._lists.get(user)
        if cached is None:
            if len(self._lists) >= self._max_users:
                self._lists.clear()
                self.empty.clear()
            # Most users block nobody: they share one empty set (an empty
            # frozenset of their own is ~220 B per idle session, issue 24).
            cached = self._lists[user] = frozenset(self._storage.blocklist(user)) or _NOBODY
            if cached is not _NOBODY and self.blocking is not None and user not in self.blocking:
                self.blocking.add(user)  # stored behind the service's back: not idle
                self._check_idle()
        if cached is _NOBODY:
            self.empty.add((user.local, user.domain))
        return cached

    def write(self, op: BlockAdd | BlockRemove | BlockClear, stanza: Element | None) -> Persist:
        """The Persist of ``op``, which the reads see from now on."""
        before = self.blocklist(op.user)
        match op:
            case BlockAdd():
                after = before | frozenset(op.jids)
            case BlockRemove():
                after = before - frozenset(op.jids)
            case BlockClear():
                after = _NOBODY
        self._overlay.write(op.user, after, op)
        self.empty.discard((op.user.local, op.user.domain))
        self.generation += 1
        self._check_idle()  # a pending write: the filters run from the next stanza
        return Persist(op, stanza)

    def abandoned(self, pending: Sequence[StoreOp]) -> None:
        if self._overlay:
            self._overlay.keep_only(pending)
            self.generation += 1
            self._check_idle()

    def committed(self, ops: Sequence[StoreOp]) -> None:
        users = []
        for op in ops:
            if isinstance(op, BlockAdd | BlockRemove | BlockClear):
                self._lists.pop(op.user, None)
                self.empty.discard((op.user.local, op.user.domain))
                self.generation += 1
                users.append(op.user)
        self._overlay.settle(ops)
        if users and self.blocking is not None:
            for user in users:  # what the storage holds now (a failed commit changed nothing)
                if self._storage.blocklist(user):
                    self.blocking.add(user)
                else:
                    self.blocking.discard(user)
            self._check_idle()


class BlockingService(IqService):
    """XEP-0191 over a :class:`BlockStorage`.

    ``is_subscribed(contact, user)`` (bare JIDs) says whether ``contact`` may
    receive ``user``'s presence (RFC 6121 §4), for the presence sent on block
    and unblock. ``max_items`` bounds each block list; a block beyond it gets
    ``policy-violation``.

    Put this service first in the router's list, so that no other service
    sees (or answers) a stanza from a blocked JID.
    """

    server_features: ClassVar[tuple[str, ...]] = (BLOCKING_NS,)

    def __init__(
        self,
        storage: BlockStorage,
        is_subscribed: Callable[[JID, JID], bool],
        *,
        max_items: int = 1000,
    ) -> None:
        self.storage = storage
        self._lists = _BlockLists(storage)
        self._is_subscribed = is_subscribed
        self._max_items = max_items
        # Sessions that asked for the block list (XEP-0191 §3.3: they get pushes).
        self._interested: set[SessionId] = set()
        # The last available presence each session broadcast (sent again on unblock).
        self._presence: dict[SessionId, Element] = {}
        self._pushes = 0

    def attach(self, server: ServerView) -> None:
        super().attach(server)
        self._lists.on_idle = lambda idle: server.idle_changed()

    @property
    def idle(self) -> bool:
        """Nobody blocks anyone, committed or pending: the filters pass
        every stanza, and the router does not call them."""
        return self._lists.idle

    # -- queries for other services -----------------------------------------------

    def blocklist(self, user: JID) -> frozenset[JID]:
        """The JIDs the account ``user`` (bare) blocks, pending changes
        included (rooms filter their traffic with it, docs/muc.md)."""
        return self._lists.blocklist(user.bare)

    @property
    def generation(self) -> int:
        """A number that changes whenever any block list may have changed."""
        return self._lists.generation

    def is_blocked(self, user: JID, address: JID) -> bool:
        """Whether the account ``user`` blocks ``address`` (XEP-0191 §6 matching;
        never one of ``user``'s own addresses)."""
        if address.bare == user.bare:
            return False
        return blocked_by(self._lists.blocklist(user.bare), address)

    # -- stages -------------------------------------------------------------------

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.OUTBOUND, Stage.INBOUND})
    idle_stages: ClassVar[frozenset[Stage]] = stages
    observes: ClassVar[tuple[type[Event], ...]] = (
        PresenceBroadcast,
        SessionUnbound,
        AccountRemoved,
        Committed,
        Abandoned,
    )

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case PresenceBroadcast():
                return self._presence_broadcast(event.session, event.element, event.initial)
            case SessionUnbound():
                return self._session_unbound(event.session)
            case AccountRemoved():
                return self._account_removed(event.account)
            case Committed():
                self._lists.committed(event.ops)
            case Abandoned():
                self._lists.abandoned(event.pending)
        return []

    # -- IQs -----------------------------------------------------------------------

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        """``<blocklist/>`` get, ``<block/>`` and ``<unblock/>`` set, sent by a
        local session about its own account (XEP-0191 §3.2-§3.5: "with no 'to'
        address"; the account's bare JID is accepted too)."""
        payload = iq.payload
        if payload is None or not iq.is_request:
            return None
        namespace, local = split_tag(payload.tag)
        if namespace != BLOCKING_NS:
            return None
        session = None if iq.from_ is None else self.server.session_by_jid(iq.from_)
        if session is None or (to is not None and to != session.jid.bare):
            return None  # not about one's own account: service-unavailable
        try:
            if iq.type is IqType.GET and local == "blocklist":
                return self._get(session, iq)
            if iq.type is IqType.SET and local == "block":
                return self._block(session, iq, payload)
            if iq.type is IqType.SET and local == "unblock":
                return self._unblock(session, iq, payload)
            raise _BadRequest(StanzaErrorCondition.BAD_REQUEST)
        except _BadRequest as exc:
            return [Bounce(iq.element, exc.condition)]

    def _get(self, session: BoundSession, iq: Iq) -> list[Outcome]:
        """XEP-0191 §3.2: the list (possibly empty); the session now gets pushes."""
        self._interested.add(session.id)
        jids = sorted(self._lists.blocklist(session.jid.bare), key=str)
        return [Reply(iq_result(iq.element, _list_element("blocklist", jids)))]

    def _block(self, session: BoundSession, iq: Iq, payload: Element) -> list[Outcome]:
        """XEP-0191 §3.3: at least one item, else ``bad-request``."""
        jids = _items(payload)
        if not jids:
            raise _BadRequest(StanzaErrorCondition.BAD_REQUEST)
        user = session.jid.bare
        before = self._lists.blocklist(user)
        new = [jid for jid in jids if jid not in before]
        if len(before) + len(new) > self._max_items:
            raise _BadRequest(StanzaErrorCondition.POLICY_VIOLATION)
        # Before the block is stored: afterwards this service's filter stops it.
        presence = self._presence_to(user, new, available=False)
        effects: list[Outcome] = [Reply(iq_result(iq.element))]
        effects.extend(self._push(user, _list_element("block", jids)))
        effects.extend(presence)
        if not new:
            return effects
        # The answers go out once the block is committed (not at all if that fails).
        persist = self._lists.write(BlockAdd(user, tuple(new)), iq.element)
        return [Persist(persist.op, persist.stanza, tuple(effects))]

    def _unblock(self, session: BoundSession, iq: Iq, payload: Element) -> list[Outcome]:
        """XEP-0191 §3.4 (items) and §3.5 (no item: unblock all)."""
        jids = _items(payload)
        user = session.jid.bare
        before = self._lists.blocklist(user)
        writes: list[Outcome] = []
        if jids:
            removed = [jid for jid in jids if jid in before]
            if removed:
                writes.append(self._lists.write(BlockRemove(user, tuple(removed)), iq.element))
        else:
            removed = sorted(before, key=str)
            if removed:
                writes.append(self._lists.write(BlockClear(user), iq.element))
        effects: list[Outcome] = [Reply(iq_result(iq.element))]
        effects.extend(self._push(user, _list_element("unblock", jids)))
        effects.extend(self._presence_to(user, removed, available=True))
        # The answers go out once the unblock is committed (not at all if that fails).
        return after_writes([*writes, *effects])

    def _push(self, user: JID, payload: Element) -> list[Outcome]:
        """An iq set with ``payload`` to each resource of ``user`` that asked for
        the block list (XEP-0191 §3.3-§3.5), from the server (no ``from``)."""
        effects: list[Outcome] = []
        for session in self.server.sessions_of(user):
            if session.id in self._interested:
                self._pushes += 1
                push = make_iq(IqType.SET, f"block-push-{self._pushes}", payload, to=session.jid)
                effects.append(Deliver(session.id, push))
        return effects

    def _presence_to(self, user: JID, contacts: Iterable[JID], *, available: bool) -> list[Outcome]:
        """Each available resource's unavailable (or current) presence to each of
        ``contacts`` that is subscribed to ``user``'s presence (XEP-0191 §3.3,
        §3.4). Bounces of it are not shown to the user (until federation
        exists, presence to another domain comes back as an error)."""
        resources = [s for s in self.server.sessions_of(user) if s.available]
        targets = [c for c in contacts if self._is_subscribed(c.bare, user)]
        if not resources or not targets:
            return []
        own = frozenset(s.id for s in self.server.sessions_of(user))
        effects: list[Outcome] = []
        for session in resources:
            current = self._presence.get(session.id)
            for contact in targets:
                if available and current is not None:
                    stanza = with_attrs(current, to=str(contact), from_=str(session.jid))
                elif available:
                    continue
                else:
                    stanza = make_presence(
                        to=contact, type=PresenceType.UNAVAILABLE, from_=session.jid
                    )
                if not self.server.is_local(contact.domain):
                    effects.append(Route(stanza, skip=own))
                elif not self.is_blocked(contact.bare, user):
                    # Delivered here, not routed: routing would apply the block
                    # just stored, which stops what the user sends to it.
                    effects.extend(
                        Deliver(r.session, stanza) for r in self.server.available_resources(contact)
                    )
        return effects

    # -- every stanza ----------------------------------------------------------------

    def filter_inbound(
        self, ctx: Context, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        """XEP-0191 §3.3: nothing from a blocked JID reaches the user; and
        nothing the server routes for a local user reaches a JID that user
        blocked."""
        lists = self._lists
        empty = lists.empty  # neither party blocks anyone: two set lookups decide
        if (recipient.local, recipient.domain) in empty and (sender.local, sender.domain) in empty:
            return None
        owner = recipient.bare
        blocks = lists.blocklist(owner)
        if blocks and sender.bare != owner and blocked_by(blocks, sender):
            kind = stanza_kind(element)
            if kind is StanzaKind.PRESENCE:
                return []
            if kind is StanzaKind.IQ and element.get("type") not in ("get", "set"):
                return []
            # Messages (SHOULD) and iq get/set (MUST): service-unavailable;
            # bounce() never answers an error with an error.
            return [Bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        if (
            sender.local is not None
            and self.server.is_local(sender.domain)
            and lists.blocklist(sender.bare)
            and sender.bare != owner
        ):
            try:
                address = JID.parse(element.get("to") or str(recipient))
            except InvalidJID:
                address = recipient
            if self.is_blocked(sender, address):
                return []
        return None

    def filter_outbound(
        self, ctx: Context, session: BoundSession, element: Element, to: JID | None
    ) -> list[Outcome] | None:
        """XEP-0191 §3.3: the user's stanzas to a blocked JID are not routed;
        messages and iq requests get ``not-acceptable`` with ``<blocked/>``."""
        if to is None:
            return None
        jid = session.jid
        if (jid.local, jid.domain) in self._lists.empty:  # blocks nobody: no call
            return None
        user = jid.bare
        # is_blocked, inline, with the emptiness of the list tested first.
        blocks = self._lists.blocklist(user)
        if not blocks or to.bare == user or not blocked_by(blocks, to):
            return None
        if stanza_kind(element) is StanzaKind.PRESENCE or not can_reply_with_error(element):
            return []
        # type='cancel' as in the XEP-0191 §3.3 example (RFC 6120's default is modify).
        reply = error_reply(
            element, StanzaErrorCondition.NOT_ACCEPTABLE, type=StanzaErrorType.CANCEL
        )
        error = reply[-1]
        error.append(Element(f"{{{BLOCKING_ERRORS_NS}}}blocked"))
        return [Deliver(session.id, reply)]

    # -- presence and sessions ----------------------------------------------------------

    def _presence_broadcast(
        self, session: BoundSession, element: Element, initial: bool
    ) -> list[Outcome]:
        """Remember the session's current presence (sent again on unblock)."""
        if element.get("type") is None:
            self._presence[session.id] = element
        else:
            self._presence.pop(session.id, None)
        return []

    def _account_removed(self, account: JID) -> list[Outcome]:
        """Forget the removed account's blocklist."""
        return [self._lists.write(BlockClear(account.bare), None)]

    def _session_unbound(self, session: BoundSession) -> list[Outcome]:
        """Forget the session's interest in pushes and its presence."""
        self._interested.discard(session.id)
        self._presence.pop(session.id, None)
        return []
