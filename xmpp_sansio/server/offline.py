"""Offline message storage (XEP-0160), with XEP-0334 storage hints.

Theory of operation
-------------------
When a chat or normal message reaches an existing account with no available
resource of non-negative priority, the router offers it to the services'
``Undeliverable`` request (RFC 6121 §8.5.2.2.1). :class:`OfflineService`
serialises it and stores it with the time it arrived (XEP-0160 §2 step 4),
unless the account's queue is full, in which case the sender gets
``service-unavailable`` (XEP-0160 §2 step 3).

When a resource of the account next sends available presence with a
non-negative priority (XEP-0160 §2 step 5), the stored messages are delivered
to that resource, oldest first, each with a ``<delay/>`` (XEP-0203) stamped
with the time the server received it. A message is deleted only once it has
been handed over: each one is delivered with a receipt
(:class:`~xmpp_sansio.server.router.Deliver`), which the I/O layer passes
back to :meth:`Router.handed_over` when the message is written to the client,
or acknowledged if the stream has XEP-0198 on. Messages go out in bounded
pages (``page_size`` messages and ``page_bytes`` bytes at most, but at least
one message), the next page once the last message of the previous one was
handed over, so a full queue never arrives as one burst that a reading client
could not take in time. One resource of an account is served at a time. If
the connection ends first, what was not handed over stays stored and is
delivered at the next available presence; nothing is lost, though a message
written but not acknowledged may come twice.

Storage at the edge: the service does not write. Storing and deleting are
:class:`~xmpp_sansio.server.effects.Persist` effects (:class:`OfflinePush`,
:class:`OfflineDelete`) that the I/O layer commits once per batch of input,
before it writes that batch's output (so a XEP-0198 ``<a h/>`` follows the
write of what it counts). Until then the service reads its own writes from a
write-through overlay (the quota check, a flush in the same batch); the
router's ``Committed`` event clears it. A failed commit drops the overlay's
entries and the router answers each stored message's sender with an error
(see :meth:`Router.persisted`). The service chooses the message ids (above
:meth:`OfflineStorage.last_id`), so a delivery's receipt can name a message
not yet committed.

Which messages are stored (XEP-0160 §3, XEP-0085 §5.8, XEP-0334 §4):

* only types ``normal`` and ``chat`` (the router never offers groupchat,
  headline or error messages here: they are bounced or dropped per RFC 6121
  §8.5.2.2.1);
* a ``<no-store/>`` hint: not stored, so the router bounces it with
  ``service-unavailable`` as for a server without offline storage;
* a standalone chat state notification (only XEP-0085 content): not stored
  (XEP-0160 §3, XEP-0085 §5.8) and silently dropped, unless it carries a
  ``<store/>`` hint;
* a ``<store/>`` hint forces storage of any chat or normal message.

Retractions (XEP-0424): a retraction stored for an account is kept like any
message, and the original it names, if still stored, is dropped from the
queue (Business Rules: a service SHOULD prevent further distribution of a
retracted message): the one stored before it, from the same bare JID, with
that origin id (or ``id``). One :class:`Load` of the queue, then an
:class:`OfflineRemove`. So the account gets only the retraction, and its
archive the tombstone; a tombstone is not sent live (it is an archive's
record, XEP-0424 "Tombstones"). A flush already delivering the original
delivers it, as to an online client. A full queue bounces the retraction
(``service-unavailable``) but still drops its original.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, Final, Protocol
from xml.etree.ElementTree import Element

from ..delay import with_delay
from ..errors import StanzaErrorCondition
from ..jid import JID, InvalidJID
from ..stanza import MessageType
from ..xml.element import split_tag
from ..xml.parser import parse_fragment
from ..xml.writer import serialize
from .effects import (
    Bounce,
    Deliver,
    Load,
    LoadQuery,
    OfflineDelete,
    OfflinePage,
    OfflinePush,
    OfflineRemove,
    Persist,
    StoreOp,
)
from .mam.retract import RETRACT, retracted_id, retracts
from .service import Service
from .stages import (
    Abandoned,
    AccountRemoved,
    Committed,
    Context,
    Event,
    HandedOver,
    Loaded,
    PresenceBroadcast,
    Request,
    SessionUnbound,
    Undeliverable,
)

if TYPE_CHECKING:
    from .effects import Outcome, SessionId
    from .view import BoundSession

__all__ = [
    "OFFLINE_FEATURE",
    "MemoryOfflineStorage",
    "OfflineService",
    "OfflineStorage",
    "StoredMessage",
    "parse_fragment",
]

#: The XEP-0030 feature of XEP-0160 (XEP-0160 §4).
OFFLINE_FEATURE: Final = "msgoffline"

HINTS_NS: Final = "urn:xmpp:hints"
CHATSTATES_NS: Final = "http://jabber.org/protocol/chatstates"
_SID_NS: Final = "urn:xmpp:sid:0"

_NO_STORE: Final = f"{{{HINTS_NS}}}no-store"
_STORE: Final = f"{{{HINTS_NS}}}store"
# Children that are not "content" when deciding whether a message is a
# standalone chat state notification: routing hints, stanza ids, threads.
_NOT_CONTENT_NS: Final = frozenset({HINTS_NS, _SID_NS, CHATSTATES_NS})
_OFFLINE_REASON: Final = "Offline Storage"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored message: ``id`` increases with each push (per storage),
    ``stanza`` is the serialised message, ``stamp`` when it was stored (UNIX
    seconds)."""

    id: int
    stanza: bytes
    stamp: float


class OfflineStorage(Protocol):
    """Where offline messages are kept (synchronous; see ``xmpp_trio.stores``).

    ``user`` is always a bare JID. Deleting is separate from reading so that a
    message is only deleted once it has been handed over. Message ids grow
    with each push and are never reused (a delete by id must never reach a
    later message); :meth:`apply`, :meth:`push` and :meth:`delete` are
    durable when they return (XEP-0160 storage survives a restart).
    :class:`OfflineService` writes only through :meth:`apply`.

    The contract a backend implements; ``tests/test_store_contract.py`` checks it
    for every backend.
    """

    def push(self, user: JID, stanza: bytes, stamp: float, limit: int) -> bool:
        """Append a message unless ``user`` already has ``limit`` messages;
        return whether it was stored."""
        ...

    def peek(
        self, user: JID, limit: int | None = None, *, after_id: int = 0
    ) -> list[StoredMessage]:
        """``user``'s oldest ``limit`` messages (all if ``None``) whose id is
        above ``after_id``, oldest first, without removing them."""
        ...

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`OfflinePush` with the id it names, no
        quota check; :class:`OfflineDelete`; :class:`OfflineRemove`, one
        message, nothing if it is gone), in order, all or nothing: a push
        whose id is taken raises, and nothing of ``ops`` is applied."""
        ...

    def last_id(self) -> int:
        """The highest message id ever stored (0 if none): ids above it are free."""
        ...

    def load(self, query: LoadQuery) -> list[StoredMessage]:
        """Answer a :class:`Load` (:class:`OfflinePage`: :meth:`peek`)."""
        ...

    def delete(self, user: JID, upto_id: int) -> None:
        """Remove ``user``'s messages whose id is at most ``upto_id``."""
        ...

    def count(self, user: JID) -> int:
        """How many messages ``user`` has stored."""
        ...


class MemoryOfflineStorage:
    """An in-memory :class:`OfflineStorage` (tests, ephemeral servers)."""

    def __init__(self) -> None:
        self._queues: dict[JID, list[StoredMessage]] = {}
        self._last_id = 0

    def push(self, user: JID, stanza: bytes, stamp: float, limit: int) -> bool:
        queue = self._queues.setdefault(user.bare, [])
        if len(queue) >= limit:
            return False
        self._last_id += 1
        queue.append(StoredMessage(self._last_id, stanza, stamp))
        return True

    def peek(
        self, user: JID, limit: int | None = None, *, after_id: int = 0
    ) -> list[StoredMessage]:
        return [m for m in self._queues.get(user.bare, ()) if m.id > after_id][:limit]

    def apply(self, ops: Sequence[StoreOp]) -> None:
        queues = {user: list(queue) for user, queue in self._queues.items()}
        last_id = self._last_id
        for op in ops:
            match op:
                case OfflinePush():
                    if op.id <= last_id:
                        raise ValueError(f"offline message id {op.id} is taken")
                    queues.setdefault(op.user.bare, []).append(
                        StoredMessage(op.id, op.stanza, op.stamp)
                    )
                    last_id = op.id
                case OfflineDelete():
                    queue = [m for m in queues.get(op.user.bare, ()) if m.id > op.upto]
                    queues[op.user.bare] = queue
                case OfflineRemove():
                    queue = [m for m in queues.get(op.user.bare, ()) if m.id != op.id]
                    queues[op.user.bare] = queue
                case _:
                    raise TypeError(f"not an offline op: {op!r}")
        self._queues = {user: queue for user, queue in queues.items() if queue}
        self._last_id = last_id

    def last_id(self) -> int:
        return self._last_id

    def load(self, query: LoadQuery) -> list[StoredMessage]:
        if not isinstance(query, OfflinePage):
            raise TypeError(f"not an offline read: {query!r}")
        return self.peek(query.user, query.limit, after_id=query.after_id)

    def delete(self, user: JID, upto_id: int) -> None:
        queue = self._queues.get(user.bare)
        if queue is None:
            return
        kept = [m for m in queue if m.id > upto_id]
        if kept:
            self._queues[user.bare] = kept
        else:
            del self._queues[user.bare]

    def count(self, user: JID) -> int:
        return len(self._queues.get(user.bare, ()))


class _Disposition(Enum):
    STORE = "store"
    DROP = "drop"  # taken, silently
    REFUSE = "refuse"  # not stored: the router bounces it


def _disposition(element: Element) -> _Disposition:
    """What XEP-0160 §3 and the XEP-0334 §4 hints say to do with ``element``."""
    raw = element.get("type")
    try:
        type_ = MessageType(raw) if raw is not None else MessageType.NORMAL
    except ValueError:
        type_ = MessageType.NORMAL  # RFC 6121 §5.2.2
    if type_ not in (MessageType.CHAT, MessageType.NORMAL):
        return _Disposition.REFUSE
    if element.find(_NO_STORE) is not None:
        return _Disposition.REFUSE
    if element.find(_STORE) is not None:
        return _Disposition.STORE
    if _is_standalone_chat_state(element):
        return _Disposition.DROP
    return _Disposition.STORE


def _is_standalone_chat_state(element: Element) -> bool:
    """A message whose only content is a XEP-0085 notification (XEP-0085 §5.8)."""
    stanza_ns = split_tag(element.tag)[0]
    has_state = False
    for child in element:
        namespace, local = split_tag(child.tag)
        if namespace == CHATSTATES_NS:
            has_state = True
        elif namespace not in _NOT_CONTENT_NS and (namespace, local) != (stanza_ns, "thread"):
            return False
    return has_state


@dataclass(frozen=True, slots=True)
class _PageRead:
    """The :class:`Load` of the next page of ``user``'s messages for ``session``."""

    user: JID
    session: SessionId
    after_id: int


@dataclass(frozen=True, slots=True)
class _Receipt:
    """Delete ``user``'s messages up to id ``upto`` once the message that
    carries this receipt is handed over; ``last``: it ends its page."""

    user: JID
    upto: int
    last: bool


@dataclass(frozen=True, slots=True)
class _RetractRead:
    """The :class:`Load` of ``user``'s queue to find the message stored
    before id ``before`` that ``retractor`` (bare) retracts as ``target``."""

    user: JID
    retractor: JID
    target: str
    before: int


class OfflineService(Service):
    """XEP-0160 offline storage over an :class:`OfflineStorage`.

    The stored stamp is the ``now`` of the router call; ``max_per_user`` is
    the per-account quota, beyond which messages are bounced with
    ``service-unavailable`` (XEP-0160 §2); ``page_size`` and ``page_bytes``
    bound one page of the flush (see the module docstring).
    """

    server_features: ClassVar[tuple[str, ...]] = (OFFLINE_FEATURE,)

    def __init__(
        self,
        storage: OfflineStorage,
        max_per_user: int = 1000,
        *,
        page_size: int = 50,
        page_bytes: int = 65536,
    ) -> None:
        if max_per_user < 0:
            raise ValueError("max_per_user must not be negative")
        if page_size < 1 or page_bytes < 1:
            raise ValueError("page_size and page_bytes must be positive")
        self._storage = storage
        self._max_per_user = max_per_user
        self._page_size = page_size
        self._page_bytes = page_bytes
        # account -> the session its stored messages are being flushed to
        self._flushing: dict[JID, SessionId] = {}
        # accounts whose page being delivered is the last one (no read after it)
        self._final: set[JID] = set()
        # The write-through overlay: writes returned as Persist, not yet
        # reported committed. Pushed messages by account (ids above every
        # stored one), and the highest id deleted by account.
        self._pushed: dict[JID, list[StoredMessage]] = {}
        self._deleted: dict[JID, int] = {}
        # single messages removed (retracted originals), by account
        self._removed: dict[JID, set[int]] = {}
        self._next_id: int | None = None  # read from the storage when first needed

    handles: ClassVar[tuple[type[Request], ...]] = (Undeliverable,)
    observes: ClassVar[tuple[type[Event], ...]] = (
        PresenceBroadcast,
        SessionUnbound,
        HandedOver,
        AccountRemoved,
        Committed,
        Abandoned,
        Loaded,
    )

    def handle(self, ctx: Context, request: Request) -> list[Outcome] | None:
        match request:
            case Undeliverable():
                return self._undeliverable(request.element, request.recipient, ctx.now)
        return None

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case PresenceBroadcast():
                return self._presence_broadcast(event.session, event.element, event.initial)
            case SessionUnbound():
                return self._session_unbound(event.session)
            case HandedOver():
                return self._handed_over(event.session, event.bound, event.receipt)
            case AccountRemoved():
                return self._account_removed(event.account)
            case Committed():
                self._committed(event.ops)
            case Abandoned():
                self._abandoned(event.pending)
            case Loaded():
                if isinstance(event.request_id, _PageRead):
                    return self._page_loaded(event.request_id, event.result)
                if isinstance(event.request_id, _RetractRead):
                    return self._retract_loaded(event.request_id, event.result)
        return []

    # -- the write-through overlay (see the module docstring) ----------------

    def _peek(self, user: JID, limit: int | None = None) -> list[StoredMessage]:
        """What :meth:`OfflineStorage.peek` will return once the writes
        returned so far are committed."""
        pushed = self._pushed.get(user, ())
        removed = self._removed.get(user)
        if removed:  # rare: a retracted original's removal not yet committed
            stored = self._storage.peek(user, None, after_id=self._deleted.get(user, 0))
            return [m for m in [*stored, *pushed] if m.id not in removed][:limit]
        stored = self._storage.peek(user, limit, after_id=self._deleted.get(user, 0))
        if not pushed:
            return stored
        return [*stored, *pushed][:limit]

    def _count(self, user: JID) -> int:
        pushed = len(self._pushed.get(user, ()))
        if user in self._deleted or user in self._removed:
            return len(self._peek(user))  # rare: a delete not yet committed
        return self._storage.count(user) + pushed

    def _push(self, user: JID, element: Element, now: float) -> Persist:
        message = StoredMessage(self._upcoming_id(), serialize(element), now)
        self._next_id = message.id + 1
        self._final.discard(user)  # a flush under way has one more to read
        self._pushed.setdefault(user, []).append(message)
        return Persist(OfflinePush(user, message.id, message.stanza, message.stamp), element)

    def _delete(self, user: JID, upto: int) -> Persist:
        pushed = self._pushed.get(user)
        if pushed is not None:
            kept = [m for m in pushed if m.id > upto]
            if kept:
                self._pushed[user] = kept
            else:
                del self._pushed[user]
        self._deleted[user] = max(upto, self._deleted.get(user, 0))
        return Persist(OfflineDelete(user, upto))

    def _committed(self, ops: tuple[StoreOp, ...]) -> None:
        """The I/O layer wrote ``ops`` (or failed to: then they are lost, and
        the storage is as before them): drop them from the overlay."""
        for op in ops:
            match op:
                case OfflinePush():
                    pushed = self._pushed.get(op.user)
                    if pushed is not None:
                        kept = [m for m in pushed if m.id != op.id]
                        if kept:
                            self._pushed[op.user] = kept
                        else:
                            del self._pushed[op.user]
                case OfflineDelete():
                    if self._deleted.get(op.user) == op.upto:
                        del self._deleted[op.user]
                case OfflineRemove():
                    self._forget_removal(op.user, op.id)
                case _:
                    pass  # another store's

    def _forget_removal(self, user: JID, id_: int) -> None:
        removed = self._removed.get(user)
        if removed is not None:
            removed.discard(id_)
            if not removed:
                del self._removed[user]

    def _abandoned(self, pending: tuple[StoreOp, ...]) -> None:
        """A call raised: keep only the writes the I/O layer still holds."""
        ids = {op.id for op in pending if isinstance(op, OfflinePush)}
        for user in list(self._pushed):
            kept = [m for m in self._pushed[user] if m.id in ids]
            if kept:
                self._pushed[user] = kept
            else:
                del self._pushed[user]
        deleted: dict[JID, int] = {}
        removed: dict[JID, set[int]] = {}
        for op in pending:
            if isinstance(op, OfflineDelete):
                deleted[op.user] = max(op.upto, deleted.get(op.user, 0))
            elif isinstance(op, OfflineRemove):
                removed.setdefault(op.user, set()).add(op.id)
        self._deleted = deleted
        self._removed = removed

    def _account_removed(self, account: JID) -> list[Outcome]:
        """Drop the removed account's stored messages."""
        self._flushing.pop(account.bare, None)
        self._final.discard(account.bare)
        stored = self._peek(account.bare)
        if stored:
            return [self._delete(account.bare, stored[-1].id)]
        return []

    def _undeliverable(self, element: Element, recipient: JID, now: float) -> list[Outcome] | None:
        """Store ``element`` for ``recipient`` (XEP-0160 §2, §3).

        Returns the :class:`Persist` when stored, ``[]`` when deliberately
        dropped, the ``service-unavailable`` bounce when the quota is full,
        and ``None`` (the router bounces) for messages that must not be
        stored.
        """
        disposition = _disposition(element)
        if disposition is _Disposition.REFUSE:
            return None
        if disposition is _Disposition.DROP:
            return []
        user = recipient.bare
        if self._count(user) >= self._max_per_user:
            bounce = Bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
            if element.find(RETRACT) is None:
                return [bounce]
            # a full queue refuses the retraction but still drops its original
            return [bounce, *self._retraction(user, element, self._upcoming_id())]
        pushed = self._push(user, element, now)
        if element.find(RETRACT) is None:  # the one check on the offline path
            return [pushed]
        return [pushed, *self._retraction(user, element, self._upcoming_id() - 1)]

    # -- XEP-0424 retractions (see the module docstring) -----------------------

    def _upcoming_id(self) -> int:
        """The id the next push will take."""
        if self._next_id is None:
            self._next_id = self._storage.last_id() + 1
        return self._next_id

    def _retraction(self, user: JID, element: Element, before: int) -> list[Outcome]:
        """A retraction for offline ``user`` (stored as id ``before``, or
        refused: then ``before`` is the next id): read the queue to find
        the original (:meth:`_retract_loaded`)."""
        target = retracted_id(element)
        sender = JID.parse_or_none(element.get("from"))
        if target is None or sender is None:
            return []
        read = _RetractRead(user, sender.bare, target, before)
        after = self._deleted.get(user, 0)
        return [Load(read, OfflinePage(user, after, max(self._max_per_user, 1)))]

    def _retract_loaded(self, read: _RetractRead, result: object) -> list[Outcome]:
        """Remove the newest stored message before the retraction that it
        retracts (XEP-0424 Business Rules: same bare JID, that id)."""
        if not isinstance(result, list):
            return []  # a failed read: the original stays (the archive has the tombstone)
        user = read.user
        gone = self._removed.get(user, set())
        after = self._deleted.get(user, 0)
        queue = [*result, *self._pushed.get(user, ())]
        for item in reversed(queue):
            if item.id >= read.before or item.id <= after or item.id in gone:
                continue
            try:
                message = parse_fragment(item.stanza)
            except ValueError:
                continue
            if not retracts(message, read.retractor, read.target):
                continue
            self._removed.setdefault(user, set()).add(item.id)  # the overlay, until committed
            return [Persist(OfflineRemove(user, item.id))]
        return []

    def _presence_broadcast(
        self, session: BoundSession, element: Element, initial: bool
    ) -> list[Outcome]:
        """Start delivering the stored messages to a resource that sent
        available presence with a non-negative priority (XEP-0160 §2 step 5),
        oldest first, each with a XEP-0203 ``<delay/>`` from the server's
        domain: the first page now, the next ones as each is handed over.

        Not only initial presence: a resource that raises its priority from a
        negative value also qualifies, and a queue that is empty costs one
        :meth:`OfflineStorage.peek`. While a flush to one resource is under
        way, the account's other resources wait their turn.
        """
        if element.get("type") is not None or session.priority < 0:
            return []
        user = session.jid.bare
        if user in self._flushing:
            return []
        return self._next_page(session)

    def _handed_over(
        self, session: SessionId, bound: BoundSession | None, receipt: Hashable
    ) -> list[Outcome]:
        """A stored message reached its client: delete it and those before it;
        after the last message of a page, deliver the next page if the session
        is still available with a non-negative priority."""
        if not isinstance(receipt, _Receipt):
            return []
        deleted: list[Outcome] = [self._delete(receipt.user, receipt.upto)]
        if not receipt.last or self._flushing.get(receipt.user) != session:
            return deleted
        del self._flushing[receipt.user]
        if receipt.user in self._final:  # that page was the end of the queue
            self._final.discard(receipt.user)
            return deleted
        if bound is None or not bound.available or bound.priority < 0:
            return deleted
        return deleted + self._next_page(bound)

    def _session_unbound(self, session: BoundSession) -> list[Outcome]:
        """A session that was being flushed to ended: what it did not get stays
        stored for the next available resource."""
        user = session.jid.bare
        if self._flushing.get(user) == session.id:
            del self._flushing[user]
            self._final.discard(user)
        return []

    def _next_page(self, session: BoundSession) -> list[Outcome]:
        """Ask for the next page of ``session``'s account (a :class:`Load`,
        answered through :meth:`_page_loaded`); the account's other
        resources wait their turn meanwhile."""
        user = session.jid.bare
        self._flushing[user] = session.id
        after = self._deleted.get(user, 0)
        return [Load(_PageRead(user, session.id, after), OfflinePage(user, after, self._page_size))]

    def _loaded(self, read: _PageRead, stored: list[StoredMessage]) -> list[StoredMessage]:
        """The page as the storage will hold it once the writes returned so
        far are committed: what was read, less what was deleted since, and
        the pushes not committed yet if the read reached the end."""
        after = max(read.after_id, self._deleted.get(read.user, 0))
        page = [m for m in stored if m.id > after]
        if len(stored) < self._page_size:
            last = stored[-1].id if stored else after
            page.extend(m for m in self._pushed.get(read.user, ()) if m.id > max(last, after))
        removed = self._removed.get(read.user)
        if removed:
            page = [m for m in page if m.id not in removed]
        return page[: self._page_size]

    def _page_loaded(self, read: _PageRead, result: object) -> list[Outcome]:
        """Deliver a page read for ``read.session``, each message with a
        :class:`_Receipt`. Messages an inbound filter (e.g. blocking, added
        since they were stored) now stops are not delivered (the filter's
        effects are returned instead) and go with the next receipt; a page
        with nothing left to deliver is deleted, and the next one read. A
        failed read (``None``) or a session gone or no longer available
        ends the flush: what was not delivered stays stored for the next
        available presence."""
        user = read.user
        if self._flushing.get(user) != read.session:
            return []  # the session ended meanwhile
        session = self.server.session(read.session)
        if (
            not isinstance(result, list)
            or session is None
            or not session.available
            or session.priority < 0
        ):
            del self._flushing[user]
            return []
        stored = self._loaded(read, result)
        if not stored:
            del self._flushing[user]
            return []
        effects: list[Outcome] = []
        page: list[tuple[Element, int]] = []
        size = 0
        for item in stored:
            if page and size + len(item.stanza) > self._page_bytes:
                break
            size += len(item.stanza)
            last_id = item.id
            try:
                message = parse_fragment(item.stanza)
                sender = JID.parse(message.get("from", ""))
            except (ValueError, InvalidJID):
                continue  # unreadable row: nothing sensible to deliver
            stopped = self.server.inbound_filtered(message, sender, user)
            if stopped is not None:
                effects.extend(stopped)
                continue
            delayed = with_delay(message, item.stamp, session.jid.domain, _OFFLINE_REASON)
            page.append((delayed, item.id))
        if not page:
            effects.append(self._delete(user, last_id))
            effects.extend(self._next_page(session))
            return effects
        # Rows skipped after the last delivered one go with its receipt.
        page[-1] = (page[-1][0], last_id)
        if len(result) < self._page_size and last_id == stored[-1].id:
            self._final.add(user)  # nothing after this page (unless pushed meanwhile)
        for index, (delayed, upto) in enumerate(page):
            receipt = _Receipt(user, upto, index == len(page) - 1)
            effects.append(Deliver(session.id, delayed, receipt))
        return effects
