"""A client's view of its IM session (RFC 6121, XEP-0115), sans I/O and without a clock.

* :class:`RosterCache` is the client's copy of its roster (RFC 6121 §2):
  it builds the roster get with the cached version (§2.6.2), applies the
  result, full or empty (§2.6.3), and roster pushes (§2.1.6), which
  :func:`parse_push` validates first. It converts to and from a plain
  JSON-friendly dict so that it can be kept between runs, which is what
  makes roster versioning pay off.
* :class:`PresenceTracker` follows the available presence of contacts and of
  the user's own resources (RFC 6121 §4): who is online with which
  resources, their show/status/priority (§4.7.2) and entity capabilities
  (XEP-0115 §4).
* :class:`CapsCache` keeps the disco#info answers that XEP-0115 verification
  strings stand for (§5.4, §8.2), so that a client asks each ``ver`` once.

Nothing here sends anything: the caller (e.g. ``xmpp_trio.im``) feeds incoming
stanzas in and sends what the results say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from xml.etree.ElementTree import Element

from xmpp_sansio.disco import CAPS_HASHES, Caps, DiscoInfo, parse_caps, verify_caps
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.roster import (
    QUERY_TAG,
    InvalidRosterQuery,
    RosterItem,
    Subscription,
    parse_roster_query,
)
from xmpp_sansio.stanza import (
    Presence,
    PresenceShow,
    PresenceType,
    StanzaKind,
    StanzaValueError,
    stanza_kind,
)
from xmpp_sansio.xml import ns

__all__ = [
    "CapsCache",
    "PresenceTracker",
    "PresenceUpdate",
    "RejectedPush",
    "ResourcePresence",
    "RosterCache",
    "RosterPush",
    "parse_push",
    "roster_remove_query",
    "roster_set_query",
]

_ITEM_TAG: Final = f"{{{ns.ROSTER}}}item"
_GROUP_TAG: Final = f"{{{ns.ROSTER}}}group"


# ---------------------------------------------------------------------------
# roster


class RejectedPush(StanzaValueError):
    """A roster push the client must not apply; ``condition`` is the error to
    answer with: ``service-unavailable`` for a push that is not from the
    user's account (RFC 6121 §2.1.6: the client MUST ignore it; answering as
    for an unsupported payload, RFC 6120 §8.4, reveals nothing), else the
    condition of the malformed payload (RFC 6121 §2.1.5, §2.3.3)."""


@dataclass(frozen=True, slots=True)
class RosterPush:
    """A validated roster push (RFC 6121 §2.1.6): the one item and the new
    roster version (§2.6.3; ``None`` from a server without versioning).
    ``item.subscription`` is :attr:`Subscription.REMOVE` for a deletion."""

    item: RosterItem
    ver: str | None


def parse_push(iq: Element, own_jid: JID) -> RosterPush:
    """Validate an incoming iq ``set`` carrying a roster query as a roster push.

    RFC 6121 §2.1.6: a push is accepted only when it has no ``from`` or a
    ``from`` equal to the user's bare JID (``own_jid`` may be the full JID);
    anything else raises :class:`RejectedPush` with ``service-unavailable``.
    The push holds exactly one item (§2.1.6; otherwise ``bad-request``) and
    the item must be valid (:func:`~xmpp_sansio.roster.parse_roster_query`).
    """
    if stanza_kind(iq) is not StanzaKind.IQ or iq.get("type") != "set":
        raise RejectedPush(StanzaErrorCondition.BAD_REQUEST, "a roster push is an iq set")
    sender = iq.get("from")
    if sender is not None:
        try:
            from_jid: JID | None = JID.parse(sender)
        except InvalidJID:
            from_jid = None
        if from_jid != own_jid.bare:
            raise RejectedPush(
                StanzaErrorCondition.SERVICE_UNAVAILABLE,
                f"roster push from {sender!r}, not from the account {own_jid.bare}",
            )
    query = iq.find(QUERY_TAG)
    if query is None:
        raise RejectedPush(StanzaErrorCondition.BAD_REQUEST, "no roster query in the push")
    try:
        ver, items = parse_roster_query(query)
    except InvalidRosterQuery as exc:
        raise RejectedPush(exc.condition, str(exc)) from exc
    if len(items) != 1:
        raise RejectedPush(
            StanzaErrorCondition.BAD_REQUEST,
            f"a roster push holds exactly one item, this one {len(items)}",
        )
    return RosterPush(items[0], ver)


def roster_set_query(jid: JID, name: str | None = None, groups: Iterable[str] = ()) -> Element:
    """The roster set payload adding or updating ``jid`` (RFC 6121 §2.3.1,
    §2.4.1). No ``subscription`` is written: only the server changes it
    (§2.1.2.5). Groups are written sorted; empty or repeated names are
    refused by the server (§2.3.3), so this raises :class:`ValueError` for them."""
    group_list = list(groups)
    if any(not group for group in group_list) or len(set(group_list)) != len(group_list):
        raise ValueError("roster groups must be distinct, non-empty names (RFC 6121 §2.3.3)")
    query = Element(QUERY_TAG)
    item = Element(_ITEM_TAG, {"jid": str(jid)})
    if name:
        item.set("name", name)
    for group in sorted(group_list):
        child = Element(_GROUP_TAG)
        child.text = group
        item.append(child)
    query.append(item)
    return query


def roster_remove_query(jid: JID) -> Element:
    """The roster set payload deleting ``jid`` (RFC 6121 §2.5.1)."""
    query = Element(QUERY_TAG)
    query.append(Element(_ITEM_TAG, {"jid": str(jid), "subscription": "remove"}))
    return query


def _item_to_dict(item: RosterItem) -> dict[str, object]:
    return {
        "jid": str(item.jid),
        "name": item.name,
        "subscription": item.subscription.value,
        "ask": item.ask,
        "groups": sorted(item.groups),
        "approved": item.approved,
    }


def _item_from_dict(data: object) -> RosterItem:
    if not isinstance(data, Mapping):
        raise ValueError(f"a roster item must be a mapping, not {type(data).__name__}")
    raw_jid = data.get("jid")
    if not isinstance(raw_jid, str):
        raise ValueError("a roster item needs a string 'jid'")
    jid = JID.parse(raw_jid)  # InvalidJID is a ValueError
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"roster item {raw_jid}: 'name' must be a string or null")
    raw_sub = data.get("subscription", "none")
    if not isinstance(raw_sub, str):
        raise ValueError(f"roster item {raw_jid}: 'subscription' must be a string")
    subscription = Subscription(raw_sub)
    if subscription is Subscription.REMOVE:
        raise ValueError(f"roster item {raw_jid}: 'remove' is not a stored state")
    ask, approved = data.get("ask", False), data.get("approved", False)
    if not isinstance(ask, bool) or not isinstance(approved, bool):
        raise ValueError(f"roster item {raw_jid}: 'ask' and 'approved' must be booleans")
    groups = data.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise ValueError(f"roster item {raw_jid}: 'groups' must be a list of non-empty strings")
    return RosterItem(jid, name or None, subscription, ask, frozenset(groups), approved)


@dataclass
class RosterCache:
    """The client's copy of its roster (RFC 6121 §2) and its version (§2.6).

    ``items`` maps each contact's JID to its :class:`RosterItem`; ``version``
    is the roster version the items correspond to (``None``: unknown, so the
    next fetch gets the whole roster). Feed it with :meth:`start_fetch` /
    :meth:`apply_result` around each roster get and with :meth:`apply_push`
    (or :func:`parse_push` and :meth:`apply`) for every push.

    Ordering: a push may be handled before the result of a roster get that
    the server sent earlier (the two travel different paths in a client), so
    the pushes applied between :meth:`start_fetch` and :meth:`apply_result`
    are applied again after the result. Pushes carry whole items, not
    changes, so applying them again in order ends in the server's state.
    """

    version: str | None = None
    items: dict[JID, RosterItem] = field(default_factory=dict)
    _replay: list[RosterPush] | None = field(default=None, init=False, repr=False, compare=False)

    # -- fetching -------------------------------------------------------------

    def start_fetch(self, *, versioning: bool = True) -> Element:
        """The ``<query/>`` of a roster get (RFC 6121 §2.1.3) and the start of
        recording pushes to replay over its result.

        With ``versioning`` (pass whether the server announced the
        ``urn:xmpp:features:rosterver`` stream feature, §2.6.1) the query
        carries the cached version, or ``ver=''`` to bootstrap versioning
        when there is none (§2.6.2). Without it no ``ver`` is sent (§2.6.2:
        the client MUST NOT include one).
        """
        self._replay = []
        if not versioning:
            return Element(QUERY_TAG)
        return Element(QUERY_TAG, {"ver": self.version or ""})

    def apply_result(self, query: Element | None) -> None:
        """Apply the result of the roster get started with :meth:`start_fetch`.

        ``query`` is the result's ``<query/>``, or ``None`` for the empty
        result, which means "your cached version is current; changes will
        come as pushes" (RFC 6121 §2.6.3): the cache is kept. A query
        replaces the items and sets the version to its ``ver`` (``None`` if
        the server does not version its roster). Items marked ``remove`` are
        skipped (a result never has them). Raises
        :class:`~xmpp_sansio.roster.InvalidRosterQuery` for a malformed
        query, leaving the cache unchanged.
        """
        replay, self._replay = self._replay or [], None
        if query is not None:
            ver, items = parse_roster_query(query)
            self.items = {
                item.jid: item for item in items if item.subscription is not Subscription.REMOVE
            }
            self.version = ver
        for push in replay:
            self._apply(push)

    def cancel_fetch(self) -> None:
        """Stop recording pushes for a roster get that will get no result
        (timed out, or answered with an error). Harmless after :meth:`apply_result`."""
        self._replay = None

    # -- pushes ---------------------------------------------------------------

    def apply_push(self, iq: Element, own_jid: JID) -> RosterItem | None:
        """Apply the roster push ``iq`` (RFC 6121 §2.1.6) and return its item,
        or ``None`` if it was not accepted (see :func:`parse_push`: a spoofed
        ``from``, or a malformed payload); the caller must still answer the
        iq (an iq result if accepted, else an error)."""
        try:
            push = parse_push(iq, own_jid)
        except RejectedPush:
            return None
        self.apply(push)
        return push.item

    def apply(self, push: RosterPush) -> None:
        """Apply a validated push: store the item, or delete it when its
        subscription is ``remove`` (RFC 6121 §2.5.2), and take the push's
        version (§2.6.3). A push without ``ver`` leaves the version unknown,
        so the next fetch gets the whole roster rather than trusting a
        version that no longer describes the items."""
        if self._replay is not None:
            self._replay.append(push)
        self._apply(push)

    def _apply(self, push: RosterPush) -> None:
        item = push.item
        if item.subscription is Subscription.REMOVE:
            self.items.pop(item.jid, None)
        else:
            self.items[item.jid] = item
        self.version = push.ver

    # -- persistence ----------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable copy: ``{"version": ..., "items": [...]}``,
        items sorted by JID, each with ``jid``, ``name``, ``subscription``,
        ``ask``, ``groups`` (sorted) and ``approved``."""
        return {
            "version": self.version,
            "items": [_item_to_dict(self.items[jid]) for jid in sorted(self.items, key=str)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RosterCache:
        """The cache :meth:`to_dict` wrote. Raises :class:`ValueError` for
        anything else; a client should then start from an empty cache, which
        bootstraps versioning again (RFC 6121 §2.6.2: a lost or corrupted
        cache)."""
        version = data.get("version")
        if version is not None and not isinstance(version, str):
            raise ValueError("'version' must be a string or null")
        raw_items = data.get("items", [])
        if not isinstance(raw_items, list):
            raise ValueError("'items' must be a list")
        items: dict[JID, RosterItem] = {}
        for raw in raw_items:
            item = _item_from_dict(raw)
            if item.jid in items:
                raise ValueError(f"roster item {item.jid} appears twice")
            items[item.jid] = item
        return cls(version, items)


# ---------------------------------------------------------------------------
# presence


@dataclass(frozen=True, slots=True)
class ResourcePresence:
    """The last available presence of one resource (RFC 6121 §4.7).

    ``jid`` is the sender's JID, normally a full JID; ``show``, ``status``
    and ``priority`` are the §4.7.2 children (priority 0 when absent,
    §4.7.2.3); ``caps`` the XEP-0115 ``<c/>`` (§4), if any; ``element`` the
    stanza itself, for extensions.
    """

    jid: JID
    show: PresenceShow | None = None
    status: str | None = None
    priority: int = 0
    caps: Caps | None = None
    element: Element | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    """What one presence stanza changed in a :class:`PresenceTracker`.

    ``jid`` sent it; ``current`` is its state now (``None``: it went
    unavailable) and ``previous`` its state before (``None``: it was not
    available). ``came_online`` is true when the bare JID had no available
    resource before and has one now, ``went_offline`` when it had one and
    has none now (a contact is offline when all of its resources are).
    ``element`` is the presence stanza.
    """

    jid: JID
    current: ResourcePresence | None
    previous: ResourcePresence | None
    came_online: bool
    went_offline: bool
    element: Element = field(compare=False, repr=False)

    @property
    def bare(self) -> JID:
        """The bare JID of the contact (or own account) this is about."""
        return self.jid.bare


class PresenceTracker:
    """Who is online, from the presence a client receives (RFC 6121 §4).

    Feed every incoming presence stanza to :meth:`handle`. Available presence
    (no ``type``) records or replaces the sender's state; unavailable
    presence removes it, and unavailable presence from a bare JID (a
    server's answer to a probe, §4.3.2) removes every resource of that JID.
    Subscription stanzas (§3), probes and errors are ignored, as are
    presence stanzas without ``from`` or that are invalid (§4.7).
    """

    def __init__(self) -> None:
        # bare JID -> sender JID -> state; each dict in update order (oldest first)
        self._contacts: dict[JID, dict[JID, ResourcePresence]] = {}

    def handle(self, presence: Element) -> PresenceUpdate | None:
        """Apply one incoming presence stanza; the change, or ``None`` if it
        was ignored or changed nothing (unavailable from an unknown resource)."""
        try:
            pres = Presence.from_element(presence)
        except (StanzaValueError, ValueError):
            return None
        sender = pres.from_
        if sender is None:
            return None
        bare = sender.bare
        before = self._contacts.get(bare, {})
        was_online = bool(before)
        previous = before.get(sender)
        if pres.type is PresenceType.AVAILABLE:
            state = ResourcePresence(
                sender, pres.show, pres.status, pres.priority, parse_caps(presence), presence
            )
            resources = self._contacts.setdefault(bare, {})
            resources.pop(sender, None)  # move to the end: the most recent
            resources[sender] = state
            current: ResourcePresence | None = state
        elif pres.type is PresenceType.UNAVAILABLE:
            current = None
            if sender.is_bare:
                removed = bare in self._contacts
                self._contacts.pop(bare, None)
            else:
                removed = previous is not None
                resources = self._contacts.get(bare, {})
                resources.pop(sender, None)
                if not resources:
                    self._contacts.pop(bare, None)
            if not removed:
                return None
        else:
            return None
        online = bare in self._contacts
        return PresenceUpdate(
            sender,
            current,
            previous,
            came_online=online and not was_online,
            went_offline=was_online and not online,
            element=presence,
        )

    def resources(self, jid: JID) -> list[ResourcePresence]:
        """The available resources of ``jid``'s bare JID, best first: highest
        priority (RFC 6121 §4.7.2.3), then most recently updated."""
        resources = list(self._contacts.get(jid.bare, {}).values())
        order = {r.jid: i for i, r in enumerate(resources)}
        return sorted(resources, key=lambda r: (-r.priority, -order[r.jid]))

    def is_available(self, jid: JID) -> bool:
        """Whether ``jid`` is available: for a bare JID, any of its resources;
        for a full JID, that resource."""
        if jid.is_bare:
            return jid in self._contacts
        return jid in self._contacts.get(jid.bare, {})

    def best_resource(self, jid: JID) -> ResourcePresence | None:
        """The available resource of ``jid``'s bare JID with the highest
        priority (ties: the most recently updated), or ``None``."""
        resources = self.resources(jid)
        return resources[0] if resources else None

    def get(self, jid: JID) -> ResourcePresence | None:
        """The state of the resource ``jid`` (or of a bare JID that sent
        presence itself), if available."""
        return self._contacts.get(jid.bare, {}).get(jid)

    def caps(self, jid: JID) -> Caps | None:
        """The XEP-0115 capabilities ``jid`` (a full JID) last advertised."""
        state = self.get(jid)
        return None if state is None else state.caps

    def available(self) -> list[JID]:
        """The bare JIDs with at least one available resource."""
        return list(self._contacts)

    def clear(self) -> None:
        """Forget everything: after the stream ends what was known is stale;
        a new session learns it again from the probes its initial presence
        causes (RFC 6121 §4.2.2, §4.3)."""
        self._contacts.clear()


# ---------------------------------------------------------------------------
# entity capabilities

_CapsKey = tuple[str, str] | tuple[JID, str, str]


class CapsCache:
    """Disco#info answers by XEP-0115 verification string.

    A ``ver`` with a supported hash function (§5.4 step 2) is cached
    globally once its disco#info answer verifies (§5.4 step 3, §8.2), and
    then serves every entity that advertises it. A legacy ``ver`` (no
    ``hash``, §13), an unsupported hash or an answer that fails verification
    (§5.4 step 3.9) is associated only with the JID that sent it (§5.4 step
    2.3); call :meth:`forget` when that JID goes offline.
    """

    def __init__(self) -> None:
        self._verified: dict[tuple[str, str], DiscoInfo] = {}
        self._per_jid: dict[tuple[JID, str, str], DiscoInfo] = {}

    @staticmethod
    def key(jid: JID, caps: Caps) -> _CapsKey:
        """The key the answer for ``caps`` from ``jid`` is cached under: the
        (hash, ver) pair for a verifiable ``ver``, else (jid, node, ver).
        Lookups for the same key may share one disco#info query."""
        if caps.hash is not None and caps.hash in CAPS_HASHES:
            return (caps.hash, caps.ver)
        return (jid, caps.node, caps.ver)

    def lookup(self, jid: JID, caps: Caps) -> DiscoInfo | None:
        """The cached answer for ``caps`` as advertised by ``jid``, if any."""
        if caps.hash is not None and caps.hash in CAPS_HASHES:
            verified = self._verified.get((caps.hash, caps.ver))
            if verified is not None:
                return verified
        return self._per_jid.get((jid, caps.node, caps.ver))

    def store(self, jid: JID, caps: Caps, info: DiscoInfo) -> bool:
        """Keep ``info``, ``jid``'s disco#info answer for ``caps``; whether it
        verified (XEP-0115 §5.4) and is now cached for every entity."""
        info = info.with_node(None)
        if caps.hash is not None and verify_caps(info, caps.ver, caps.hash):
            self._verified[(caps.hash, caps.ver)] = info
            return True
        self._per_jid[(jid, caps.node, caps.ver)] = info
        return False

    def forget(self, jid: JID) -> None:
        """Drop the per-JID answers of ``jid`` (of all its resources if bare)."""
        for key in [k for k in self._per_jid if k[0] == jid or (jid.is_bare and k[0].bare == jid)]:
            del self._per_jid[key]

    def __len__(self) -> int:
        return len(self._verified) + len(self._per_jid)
