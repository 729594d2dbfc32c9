"""The server side of rosters (RFC 6121 §2): storage and the ``jabber:iq:roster`` service.

What a server stores per contact is more than a client sees
(:class:`StoredItem`): the "Pending In" sub-state of RFC 6121 Appendix A.1,
the subscription request to redeliver until the user answers it (§3.1.3),
and whether the contact is *in the roster* at all, since a request from
someone the user never added must be remembered without creating a roster
item (Appendix A.1, "None + Pending In"). The storage (:class:`RosterStorage`,
synchronous) keeps these records per user with a roster version (§2.6);
:class:`MemoryRosterStorage` is the in-memory implementation,
``xmpp_trio.stores.roster.SqliteRosterStorage`` the persistent one.

:class:`RosterService` answers roster gets and sets from the user's own
sessions (§2.1.3, §2.1.5, §2.3-§2.5), with roster versioning (§2.6), and
sends roster pushes to the *interested* resources, those that requested the
roster (§2.1.6). The presence service
(:class:`~xmpp_sansio.server.presence.PresenceService`) changes subscription
states through :meth:`RosterService.commit`, which stores the record and
pushes what the client can see of the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol
from xml.etree.ElementTree import Element

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import (
    QUERY_TAG,
    InvalidRosterQuery,
    RosterItem,
    Subscription,
    build_roster_query,
    parse_roster_query,
    roster_push,
)
from xmpp_sansio.stanza import Iq, IqType, PresenceType, error_reply, iq_result, make_presence
from xmpp_sansio.xml import ns

from .effects import Bounce, Persist, Reply, RosterDelete, RosterPut, Route, StoreOp
from .overlay import Overlay
from .records import StoredItem
from .service import IqService
from .stages import (
    Abandoned,
    AccountRemoved,
    Committed,
    Context,
    Event,
    SessionUnbound,
)

if TYPE_CHECKING:
    from .effects import Outcome
    from .view import BoundSession

__all__ = [
    "MemoryRosterStorage",
    "RosterService",
    "RosterStorage",
    "StoredItem",
    "item_size",
    "visible_items",
]


class RosterStorage(Protocol):
    """Per-user roster records and roster versions (RFC 6121 §2.6).

    ``user`` is always an account's bare JID and ``contact`` the record's key,
    :attr:`StoredItem.jid`. The version is an opaque string that changes with
    every :meth:`put` and every :meth:`delete` of an existing record (§2.6.1:
    a new version for each change); a user with no roster yet has one too.
    Versions are per user and never reused, not even after a restart.
    :meth:`get` lists records in the order they were first stored (a
    :meth:`put` that replaces a record keeps its place), with every field of
    :class:`StoredItem`, the pending ``subscribe`` stanza included.
    Implementations commit before returning from :meth:`put`,
    :meth:`delete` and :meth:`apply`. :class:`RosterService` writes only
    through :meth:`apply` (its ``Persist`` effects), naming each new
    version itself: a decimal counter per user, one up from the last.

    The contract a backend implements; ``tests/test_store_contract.py`` checks it
    for every backend.
    """

    def get(self, user: JID) -> tuple[str, list[StoredItem]]:
        """The current version and every record (in or out of the roster), in
        the order they were first stored."""
        ...

    def version(self, user: JID) -> str:
        """The current roster version."""
        ...

    def item(self, user: JID, contact: JID) -> StoredItem | None:
        """The record for ``contact``, or ``None``."""
        ...

    def put(self, user: JID, stored: StoredItem) -> str:
        """Create or replace the record for ``stored.jid``; return the new version."""
        ...

    def delete(self, user: JID, contact: JID) -> str:
        """Delete the record for ``contact`` if there is one; return the
        (possibly unchanged) version."""
        ...

    def count(self, user: JID) -> int:
        """How many records ``user`` has (in or out of the roster)."""
        ...

    def holders(self, contact: JID) -> list[JID]:
        """The users with a record for ``contact`` (a bare JID) in their roster."""
        ...

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`RosterPut`, :class:`RosterDelete`: the
        record written or deleted and the user's version set to the op's),
        in order, all or nothing."""
        ...


class MemoryRosterStorage:
    """:class:`RosterStorage` in memory (for tests and ephemeral servers)."""

    def __init__(self) -> None:
        self._records: dict[JID, dict[JID, StoredItem]] = {}
        self._versions: dict[JID, int] = {}

    def get(self, user: JID) -> tuple[str, list[StoredItem]]:
        return self.version(user), list(self._records.get(user.bare, {}).values())

    def version(self, user: JID) -> str:
        return str(self._versions.get(user.bare, 0))

    def item(self, user: JID, contact: JID) -> StoredItem | None:
        return self._records.get(user.bare, {}).get(contact)

    def put(self, user: JID, stored: StoredItem) -> str:
        self._records.setdefault(user.bare, {})[stored.jid] = stored
        return self._bump(user.bare)

    def delete(self, user: JID, contact: JID) -> str:
        records = self._records.get(user.bare, {})
        if records.pop(contact, None) is None:
            return self.version(user)
        return self._bump(user.bare)

    def count(self, user: JID) -> int:
        return len(self._records.get(user.bare, {}))

    def holders(self, contact: JID) -> list[JID]:
        return [user for user, records in self._records.items() if contact in records]

    def _bump(self, user: JID) -> str:
        self._versions[user] = self._versions.get(user, 0) + 1
        return str(self._versions[user])

    def apply(self, ops: Sequence[StoreOp]) -> None:
        records = {user: dict(items) for user, items in self._records.items()}
        versions = dict(self._versions)
        for op in ops:
            match op:
                case RosterPut():
                    records.setdefault(op.user.bare, {})[op.item.jid] = op.item
                case RosterDelete():
                    records.get(op.user.bare, {}).pop(op.contact, None)
                case _:
                    raise TypeError(f"not a roster op: {op!r}")
            versions[op.user.bare] = int(op.version)
        self._records = {user: items for user, items in records.items() if items}
        self._versions = versions


def _removed(jid: JID) -> RosterItem:
    return RosterItem(jid, subscription=Subscription.REMOVE)


def item_size(item: RosterItem) -> int:
    """What ``item`` weighs against ``max_roster_size``: the UTF-8 bytes of its
    JID, name and group names (the XML around them is not counted)."""
    size = len(str(item.jid).encode())
    if item.name is not None:
        size += len(item.name.encode())
    return size + sum(len(group.encode()) for group in item.groups)


class RosterService(IqService):
    """Roster management (RFC 6121 §2) for the user's own sessions.

    ``storage`` holds the records. ``max_items`` caps the records per user:
    adding an item beyond it is refused with ``not-allowed`` (RFC 6121 §2.3.3
    names no condition for a roster size limit; RFC 6120 §8.3.3.10
    ``not-allowed``, type ``cancel``, says retrying will not help, unlike
    ``resource-constraint``, type ``wait``). ``max_name_length`` and
    ``max_group_length`` are the server-configured limits of §2.3.3
    (``not-acceptable``), in characters; ``max_groups_per_item`` bounds the
    ``<group/>`` children of one item the same way (§2.3.3 lets the server
    refuse an item that exceeds its configured limits with
    ``not-acceptable``). ``max_roster_size`` bounds the whole roster, in the
    bytes of :func:`item_size`: a set that would exceed it is refused like
    one beyond ``max_items`` (``not-allowed``), and :meth:`is_full` applies
    it to the records subscriptions add, so that a roster result always
    fits in a client's output buffer.

    The records of accounts with bound sessions are cached, keyed by the
    roster version (§2.6), so that presence broadcast (RFC 6121 §4.2.2,
    §4.4.2) reads one version number, not the whole roster, per stanza;
    a write from elsewhere (another process) changes the version too. A
    write of this service moves a cached list to its new version (a copy
    with the one record changed), so a roster set does not make the next
    broadcast read the whole roster again; a write that fails takes the
    version back, and the next read then misses and reads the store.

    The roster versioning stream feature (§2.6.1,
    :data:`xmpp_sansio.roster.ROSTER_VER_FEATURE`) is the stream layer's to
    announce: every result carries ``ver`` and a get with the current ``ver``
    is answered with an empty result (§2.6.3).
    """

    server_features: ClassVar[tuple[str, ...]] = (ns.ROSTER,)

    def __init__(
        self,
        storage: RosterStorage,
        *,
        max_items: int = 1000,
        max_name_length: int = 1023,
        max_group_length: int = 1023,
        max_groups_per_item: int = 30,
        max_roster_size: int = 524288,
    ) -> None:
        self.storage = storage
        self.max_items = max_items
        self.max_name_length = max_name_length
        self.max_group_length = max_group_length
        self.max_groups_per_item = max_groups_per_item
        self.max_roster_size = max_roster_size
        self._interested: set[int] = set()
        self._push_serial = 0
        # account -> (roster version, records), for accounts with sessions
        self._cache: dict[JID, tuple[str, list[StoredItem]]] = {}
        # Writes returned as Persist, not yet committed: records by (user,
        # contact) (None: deleted) and the versions they give.
        self._items: Overlay[tuple[JID, JID], StoredItem | None] = Overlay()
        self._versions: Overlay[JID, str] = Overlay()

    # ------------------------------------------------------------------
    # reads through the pending writes (see xmpp_sansio.server.overlay)

    def _item(self, key: tuple[JID, JID]) -> StoredItem | None:
        return self.storage.item(*key)

    def version(self, user: JID) -> str:
        """``user``'s roster version once the pending writes are committed."""
        return self._versions.read(user.bare, self.storage.version)

    def _records(self, user: JID) -> tuple[str, list[StoredItem]]:
        """:meth:`RosterStorage.get` once the pending writes are committed."""
        version, records = self.storage.get(user)
        if not self._items:
            return version, records
        pending = {c: item for (u, c), item in self._items.items() if u == user}
        if not pending:
            return version, records
        return self.version(user), _patched(records, pending)

    def _count(self, user: JID) -> int:
        if self._items and any(u == user for (u, _), _ in self._items.items()):
            return len(self._records(user)[1])
        return self.storage.count(user)

    def _holders(self, contact: JID) -> list[JID]:
        holders = self.storage.holders(contact)
        for (user, other), item in self._items.items():
            if other != contact:
                continue
            if item is None and user in holders:
                holders.remove(user)
            elif item is not None and user not in holders:
                holders.append(user)
        return holders

    def _write(self, user: JID, contact: JID, after: StoredItem | None) -> tuple[StoreOp, str]:
        """Return the op that gives ``user``'s record of ``contact`` the value
        ``after`` (``None``: deleted) with the next version, which reads see
        from now on."""
        current = self.version(user)
        version = str(int(current) + 1)
        op: StoreOp
        if after is None:
            op = RosterDelete(user, contact, version)
        else:
            op = RosterPut(user, after, version)
        self._items.write((user, contact), after, op)
        self._versions.write(user, version, op)
        cached = self._cache.get(user)
        if cached is not None and cached[0] == current:
            self._cache[user] = (version, _patched(cached[1], {contact: after}))
        return op, version

    # ------------------------------------------------------------------
    # API for the presence service

    def stored(self, user: JID, contact: JID) -> StoredItem | None:
        """The record of ``contact`` in the roster of the account ``user``."""
        return self._items.read((user.bare, contact), self._item)

    def records(self, user: JID) -> list[StoredItem]:
        """Every record of the account ``user`` (read-only: the list may be
        the cached one)."""
        bare = user.bare
        cached = self._cache.get(bare)
        if cached is not None and cached[0] == self.version(bare):
            return cached[1]
        version, records = self._records(bare)
        if self.server.sessions_of(bare):
            self._cache[bare] = (version, records)
        return records

    def is_full(self, user: JID, contact: JID | None = None) -> bool:
        """Whether ``user`` has reached ``max_items`` records or, to add a
        record for ``contact``, would exceed ``max_roster_size``."""
        if self._count(user.bare) >= self.max_items:
            return True
        if contact is None:
            return False
        used = sum(item_size(r.item) for r in self.records(user) if r.in_roster)
        return used + item_size(RosterItem(contact)) > self.max_roster_size

    def interested_sessions(self, user: JID) -> list[BoundSession]:
        """The user's sessions that requested the roster (RFC 6121 §2.1.6), in bind order."""
        return [s for s in self.server.sessions_of(user) if s.id in self._interested]

    def commit(
        self,
        user: JID,
        before: StoredItem | None,
        after: StoredItem | None,
        stanza: Element | None = None,
    ) -> list[Outcome]:
        """Replace the record ``before`` of ``user`` by ``after`` (``None``:
        delete it): a :class:`Persist` (``stanza``: whose sender is told if
        the write fails) holding the push of the change to the interested
        resources if what the client sees changed (RFC 6121 §2.1.6): the new
        item, or an item with ``subscription='remove'`` when it left the
        roster (§2.5.2). Nothing when nothing changes. A caller that has
        more to send after the write holds it too (:func:`after_writes`)."""
        if before is None and after is None:
            return []
        if (
            before is not None
            and after is not None
            and before == after
            and before.pending_request is after.pending_request
        ):
            return []
        record = after if after is not None else before
        assert record is not None
        op, version = self._write(user.bare, record.jid, after)
        old = None if before is None else before.visible
        new = None if after is None else after.visible
        if old == new:
            return [Persist(op, stanza)]
        if new is None:
            assert old is not None
            new = _removed(old.jid)
        return [Persist(op, stanza, tuple(self.push(user, new, version)))]

    def push(self, user: JID, item: RosterItem, version: str) -> list[Outcome]:
        """A roster push of ``item`` to each interested resource of ``user``
        (RFC 6121 §2.1.6), with the roster version (§2.6.3)."""
        effects: list[Outcome] = []
        for session in self.interested_sessions(user):
            self._push_serial += 1
            push = roster_push(item, version, session.jid, id=f"push{self._push_serial}")
            effects.extend([Reply(push)])
        return effects

    # ------------------------------------------------------------------
    # the handle and observe stages

    observes: ClassVar[tuple[type[Event], ...]] = (
        SessionUnbound,
        AccountRemoved,
        Committed,
        Abandoned,
    )

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case SessionUnbound():
                return self._session_unbound(event.session)
            case AccountRemoved():
                return self._account_removed(event.account)
            case Committed():
                self._items.settle(event.ops)
                self._versions.settle(event.ops)
            case Abandoned():
                self._items.keep_only(event.pending)
                self._versions.keep_only(event.pending)
        return []

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        payload = iq.payload
        if payload is None or payload.tag != QUERY_TAG or not iq.is_request:
            return None
        sender = iq.from_
        assert sender is not None  # the router only hands on stanzas with 'from'
        session = self.server.session_by_jid(sender)
        if to is not None and to != sender.bare:
            # RFC 6121 §2.1.5 allows service-unavailable: the answer for a
            # missing account too (§8.5.1), so it does not tell them apart.
            return [Bounce(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        if session is None:
            # RFC 6121 §2.1.5 (and §2.1.3 for gets): only the user's own
            # sessions may read or modify the roster.
            return self._error(iq, StanzaErrorCondition.FORBIDDEN, "not your roster")
        if iq.type is IqType.GET:
            return self._get(iq, session, payload)
        return self._set(iq, session.jid.bare, payload)

    def _account_removed(self, account: JID) -> list[Outcome]:
        """Cancel the removed account's subscriptions both ways, as a roster
        remove does (RFC 6121 §2.5.2), for every record it had, then delete
        its roster and its item in every local roster that has one (pushed
        to the interested resources, §2.5.2), so that whoever registers the
        name later inherits no subscription."""
        bare = account.bare
        self._cache.pop(bare, None)
        _, records = self._records(bare)
        effects: list[Outcome] = []
        for stored in records:
            effects.extend(self._cancel_notices(bare, stored))
        for stored in records:
            effects.append(Persist(self._write(bare, stored.item.jid, None)[0]))
        for holder in self._holders(bare):
            effects.extend(self.commit(holder, self.stored(holder, bare), None))
        return effects

    def _session_unbound(self, session: BoundSession) -> list[Outcome]:
        self._interested.discard(session.id)
        bare = session.jid.bare
        if not self.server.sessions_of(bare):
            self._cache.pop(bare, None)
        return []

    # ------------------------------------------------------------------
    # gets and sets

    def _error(self, iq: Iq, condition: StanzaErrorCondition, text: str) -> list[Outcome]:
        return [Reply(error_reply(iq.element, condition, text=text))]

    def _get(self, iq: Iq, session: BoundSession, query: Element) -> list[Outcome]:
        """Roster get (RFC 6121 §2.1.3, §2.2) with versioning (§2.6.3).

        The session becomes an interested resource. If the client sent the
        current ``ver`` the result is empty (nothing changed, so there is
        nothing to push); otherwise it holds the whole roster and its ``ver``.
        """
        self._interested.add(session.id)
        version, records = self._records(session.jid.bare)
        if query.get("ver") == version:
            return [Reply(iq_result(iq.element))]
        query_el = build_roster_query(visible_items(records), version)
        return [Reply(iq_result(iq.element, query_el))]

    def _set(self, iq: Iq, user: JID, query: Element) -> list[Outcome]:
        """Roster set (RFC 6121 §2.1.5): add or update (§2.3, §2.4) or remove (§2.5).

        The client sets only ``name`` and groups: ``subscription`` other than
        ``remove``, ``ask`` and ``approved`` are ignored (§2.1.5, §2.1.2.1,
        §2.1.2.2); they change only through presence (§3). Errors per §2.3.3;
        on any error nothing changes.
        """
        try:
            _, items = parse_roster_query(query)
        except InvalidRosterQuery as exc:
            return self._error(iq, exc.condition, str(exc))
        if len(items) != 1:
            # RFC 6121 §2.1.5 / §2.3.3: exactly one <item/>.
            return self._error(
                iq, StanzaErrorCondition.BAD_REQUEST, "a roster set holds exactly one item"
            )
        (item,) = items
        if item.subscription is Subscription.REMOVE:
            return self._remove(iq, user, item.jid)
        if item.name is not None and len(item.name) > self.max_name_length:
            return self._error(iq, StanzaErrorCondition.NOT_ACCEPTABLE, "name too long")
        if any(len(group) > self.max_group_length for group in item.groups):
            return self._error(iq, StanzaErrorCondition.NOT_ACCEPTABLE, "group name too long")
        if len(item.groups) > self.max_groups_per_item:
            return self._error(
                iq,
                StanzaErrorCondition.NOT_ACCEPTABLE,
                f"at most {self.max_groups_per_item} groups per item",
            )
        others = sum(
            item_size(r.item) for r in self.records(user) if r.in_roster and r.jid != item.jid
        )
        if others + item_size(item) > self.max_roster_size:
            return self._error(
                iq,
                StanzaErrorCondition.NOT_ALLOWED,
                f"the roster is limited to {self.max_roster_size} bytes",
            )
        before = self.stored(user, item.jid)
        if before is None:
            if self.is_full(user):
                return self._error(
                    iq,
                    StanzaErrorCondition.NOT_ALLOWED,
                    f"the roster is limited to {self.max_items} items",
                )
            after = StoredItem(RosterItem(item.jid, item.name, groups=item.groups))
        else:
            old = before.item
            after = StoredItem(
                RosterItem(
                    old.jid, item.name, old.subscription, old.ask, item.groups, old.approved
                ),
                in_roster=True,
                pending_in=before.pending_in,
                pending_request=before.pending_request,
            )
        op, version = self._write(user, after.jid, after)
        # RFC 6121 §2.3.2 (and the order of its examples, §2.1.6): the result
        # to the requester first, then the push to all interested resources,
        # the sender included; both once the change is committed (neither,
        # and an error instead, if that fails).
        effects: list[Outcome] = [Reply(iq_result(iq.element))]
        effects.extend(self.push(user, after.item, version))
        return [Persist(op, iq.element, tuple(effects))]

    def _remove(self, iq: Iq, user: JID, contact: JID) -> list[Outcome]:
        """Roster remove (RFC 6121 §2.5).

        An item not in the roster is ``item-not-found`` (§2.5.3). Otherwise
        the server cancels the subscriptions both ways on the user's behalf
        (§2.5.2): ``unsubscribe`` if the user is subscribed to the contact or
        asked to be, ``unsubscribed`` if the contact is subscribed to the user
        (after unavailable presence from each available resource, §3.2.2) or
        asked to be; it deletes the record, pushes the removal and answers.
        """
        before = self.stored(user, contact)
        if before is None or not before.in_roster:
            return self._error(iq, StanzaErrorCondition.ITEM_NOT_FOUND, "no such roster item")
        (write,) = self.commit(user, before, None)
        assert isinstance(write, Persist)
        # The result first, then the push (as for any roster set, §2.1.6),
        # once the removal is committed.
        effects: list[Outcome] = [Reply(iq_result(iq.element))]
        effects.extend(write.then)
        effects.extend(self._cancel_notices(user, before))
        return [Persist(write.op, iq.element, tuple(effects))]

    def _cancel_notices(self, user: JID, before: StoredItem) -> list[Outcome]:
        """Route what cancels the subscriptions of the record ``before`` both
        ways (RFC 6121 §2.5.2): ``unsubscribe`` if the user is subscribed to
        the contact or asked to be, ``unsubscribed`` if the contact is
        subscribed to the user (after unavailable presence from each
        available resource, §3.2.2) or asked to be."""
        contact = before.jid
        state = before.state
        notices: list[Element] = []
        if state.subscription in (Subscription.TO, Subscription.BOTH) or state.pending_out:
            notices.append(make_presence(contact, PresenceType.UNSUBSCRIBE, from_=user))
        if state.subscription in (Subscription.FROM, Subscription.BOTH):
            notices.extend(
                make_presence(contact, PresenceType.UNAVAILABLE, from_=res.jid)
                for res in self.server.available_resources(user)
            )
        if state.subscription in (Subscription.FROM, Subscription.BOTH) or state.pending_in:
            notices.append(make_presence(contact, PresenceType.UNSUBSCRIBED, from_=user))
        effects: list[Outcome] = []
        for notice in notices:
            effects.extend([Route(notice)])
        return effects


def _patched(
    records: Sequence[StoredItem], changes: dict[JID, StoredItem | None]
) -> list[StoredItem]:
    """A new list: ``records`` with the record of each contact in ``changes``
    replaced in its place, added at the end (the store's order: records by
    first write), or left out (``None``). ``records`` is never changed: the
    cached list may still be held by a caller (:meth:`RosterService.records`)."""
    left = dict(changes)
    out: list[StoredItem] = []
    for record in records:
        if record.jid not in left:
            out.append(record)
        elif (replaced := left.pop(record.jid)) is not None:
            out.append(replaced)
    out.extend(item for item in left.values() if item is not None)
    return out


def visible_items(records: Sequence[StoredItem]) -> list[RosterItem]:
    """The client-visible roster of these records (RFC 6121 Appendix A.1)."""
    return [r.item for r in records if r.in_roster]
