"""Message archives (XEP-0313) with stable stanza ids (XEP-0359), as a service.

Theory of operation
-------------------
*Stamping* (the transform stage, before delivery, carbons and offline
storage): a message for a local account that its preferences archive gets
``<stanza-id id=… by=account/>`` (XEP-0359 §3), the id drawn from
``ctx.rng``; a ``<stanza-id/>`` whose ``by`` is a local account or domain is
removed first from every message entering the server, so a client cannot
forge one (XEP-0359 §3.1).

*Archiving* (observers; each ``ArchivePut`` written behind, ``ctx.behind``,
a room's as a ``Persist`` effect): :class:`MessageSent` (a
local session sent it) archives it in the sender's archive and, when the
recipient is local and stamped, in the recipient's under the stamped id;
:class:`MessageDelivered` does the recipient's for messages from outside.
Which messages (XEP-0313 §5.1.1): ``chat`` or ``normal`` with a body or
another archivable payload, not ``<no-store/>``/``<no-permanent-store/>``
(XEP-0334), never groupchat (rooms keep their own archive), error or
headline.

*Queries* (handle): a query is parsed and validated (:mod:`.query`), then
read as a ``Load`` effect (:class:`~.store.ArchiveQuery`); the answer comes
back as :class:`Loaded` and goes out as result messages then the iq result
with ``<fin/>`` (XEP-0313 §4). Only the account itself reads its archive
(``forbidden`` otherwise, §9.1).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import ClassVar, Final
from xml.etree.ElementTree import Element

from ...errors import StanzaErrorCondition
from ...jid import JID
from ...stanza import Iq, IqType, error_reply, iq_result
from ...xml.ns import CLIENT
from ...xml.parser import parse_fragment
from ...xml.writer import Prewritten, attribute_text, serialize
from ..effects import Load, OfflinePush, Outcome, Persist, Reply, StoreOp
from ..service import IqService
from ..stages import (
    Abandoned,
    AccountRemoved,
    Appended,
    Committed,
    Context,
    Event,
    Loaded,
    MessageDelivered,
    MessageSent,
    Stage,
)
from .query import (
    EXTENDED,
    MAM,
    QueryError,
    fin_element,
    metadata_element,
    parse_prefs,
    parse_query,
    prefs_element,
    query_form,
    result_message,
)
from .retract import (
    RETRACT,
    RETRACT_NS,
    RETRACT_TOMBSTONE,
    Retractions,
    retracted_id,
    retraction_ref,
)
from .store import (
    ArchiveMeta,
    ArchivePage,
    ArchivePrefsPut,
    ArchivePut,
    ArchiveQuery,
    ArchiveRemove,
    ArchiveReplace,
    ArchiveStorage,
    Prefs,
    UnknownId,
)

__all__ = ["SID", "MamLimits", "MamService", "archivable", "new_stanza_id"]

SID: Final = "{urn:xmpp:sid:0}stanza-id"
_HINTS: Final = "{urn:xmpp:hints}"
#: Payloads archived without a body (XEP-0313 §5.1.1: "other archivable
#: payloads"): encryption, corrections, retractions, reactions, OOB files.
_ARCHIVABLE_NS: Final = frozenset(
    {
        "eu.siacs.conversations.axolotl",
        "urn:xmpp:omemo:2",
        "urn:xmpp:openpgp:0",
        "urn:xmpp:message-correct:0",
        "urn:xmpp:message-retract:1",
        "urn:xmpp:reactions:0",
        "jabber:x:oob",
    }
)
_HINTS_LEN: Final = len(_HINTS)
_BODY: Final = "{jabber:client}body"
#: The message types a user's archive keeps (XEP-0313 §5.1.1).
_ARCHIVED: Final = frozenset({"chat", "normal"})
_DEFAULT_PREFS: Final = Prefs()
#: The ``<stanza-id/>`` stamped: written as made (the id and ``by`` checked once).
_Stamp: Final = Prewritten
#: Entries of ``MamService._plain`` kept at most (then it starts again).
_PLAIN_MAX: Final = 100_000
_NOBODY: Final = JID.parse("nobody.invalid")
_new: Final = object.__new__


@dataclass(frozen=True, slots=True)
class MamLimits:
    """Configurable limits (the ``[mam]`` section): ``max_per_user`` messages
    kept per archive (the oldest go first), ``retention`` seconds (0: kept
    until the quota drops them), pages of ``default_page`` items unless asked,
    at most ``max_page``, and at most ``max_ids`` ids in one query; a
    retraction (XEP-0424) looks for its message among the newest
    ``retract_window`` of the archive with that peer."""

    enabled: bool = False
    max_per_user: int = 100_000
    retention: float = 0.0
    default_page: int = 50
    max_page: int = 250
    max_ids: int = 100
    retract_window: int = 100


def new_stanza_id(ctx: Context, entropy: bytes | None = None) -> str:
    """A XEP-0359 id (§4: unique and unpredictable): the time in microseconds
    (14 hex digits, so ids sort by time and a store's index of them grows at
    its end) then 64 unpredictable bits, hex (``entropy``, 8 bytes, if given;
    else drawn from ``ctx.rng``)."""
    if entropy is None:
        entropy = ctx.rng(8)
    return f"{int(ctx.now * 1_000_000):014x}{entropy.hex()}"


#: Bytes of entropy drawn at once for stanza ids (one ``ctx.rng`` call, a
#: system call in the server, per this many // 8 ids instead of one per id).
_ENTROPY_POOL: Final = 8 * 256
_BIT56: Final = 1 << 56
#: Seconds a pool of ids (:meth:`MamService._draw_ids`) is used for at most.
_IDS_FOR: Final = 1.0


def archivable(element: Element) -> bool:
    """XEP-0313 §5.1.1 and XEP-0334: whether ``element`` goes to a user's archive."""
    kind = element.get("type", "normal")
    if kind not in ("chat", "normal"):
        return False
    keep = False
    for child in element:
        tag = child.tag
        if tag == "{jabber:client}body":
            keep = True
        elif tag.startswith(_HINTS):
            local = tag[len(_HINTS) :]
            if local in ("no-store", "no-permanent-store"):
                return False
            if local == "store":
                keep = True
        elif tag.startswith("{") and tag[1 : tag.index("}")] in _ARCHIVABLE_NS:
            keep = True
    return keep


class MamService(IqService):
    """Per-account archives: stamping, archiving, preferences and queries."""

    server_features: ClassVar[tuple[str, ...]] = ()
    #: XEP-0424 §2: retractions are kept and turn archived messages into tombstones.
    account_features: ClassVar[tuple[str, ...]] = (MAM, EXTENDED, RETRACT_NS, RETRACT_TOMBSTONE)
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.TRANSFORM})
    observes: ClassVar[tuple[type[Event], ...]] = (
        MessageSent,
        MessageDelivered,
        Loaded,
        Committed,
        Abandoned,
        AccountRemoved,
    )
    #: A local sender's message is archived when it is sent (both sides).
    remote_observes: ClassVar[frozenset[type[Event]]] = frozenset({MessageDelivered})

    def __init__(
        self,
        storage: ArchiveStorage,
        in_roster: Callable[[JID, JID], bool],
        limits: MamLimits = MamLimits(),
    ) -> None:
        self._storage = storage
        self._in_roster = in_roster
        self.limits = limits
        self._prefs: dict[JID, Prefs] = {}
        #: Accounts in ``_prefs`` with the default preferences, by the text of
        #: a full or bare JID of theirs as a message's ``to`` or ``from``
        #: carries it: ``(bare JID, its text, the stamp's by="..." as
        #: written)``. The common stamp and archived copy are one lookup
        #: each (a string's hash is cached: no JID hashed, no ``bare`` or
        #: ``str()`` call). Emptied whenever an account's preferences or
        #: existence may change (rare), bounded by ``_PLAIN_MAX``.
        self._plain: dict[str, tuple[JID, str, str]] = {}
        self._queries: dict[Hashable, tuple[Element, JID, JID, str | None, bool, bool]] = {}
        self._next_query = 0
        #: Room queries whose results leave out real JIDs (XEP-0313 §5.1.2).
        self._hiding: set[Hashable] = set()
        #: Stanza ids ready to use (:meth:`_draw_ids`), until ``_ids_until``,
        #: each with its ``id="..."`` as the writer writes it.
        self._ids: list[tuple[str, str]] = []
        self._ids_until = 0.0
        #: The last ``<stanza-id/>`` stamped and its id (the observers find it
        #: last on the router's copy: no scan), with its message's ``to``
        #: parsed, bare, and whether its sender is local (its
        #: ``MessageDelivered`` then archives nothing): one tuple, one store.
        self._stamp: Element | None = None
        #: ``(sid, to, to's bare, sender local, now, to self, a retraction
        #: (XEP-0424) among its children)``.
        self._stamped: tuple[str, JID, JID, bool, float, bool, bool] = (
            "",
            _NOBODY,
            _NOBODY,
            False,
            0.0,
            False,
            False,
        )
        self._retractions = Retractions()

    def _new_id(self, ctx: Context) -> tuple[str, float]:
        """A stanza id (:meth:`_draw_ids`) and the ``now`` it was taken at."""
        now = ctx.now
        ids = self._ids
        if not ids or now > self._ids_until:
            ids = self._draw_ids(ctx, now)
        return ids.pop()[0], now

    def _draw_ids(self, ctx: Context, now: float) -> list[tuple[str, str]]:
        """256 ids, each as :func:`new_stanza_id` makes them at ``now`` (14 hex
        digits of the time in microseconds, then 64 unpredictable bits: XEP-0359
        §4, XEP-0313 §5.1.1), from one ``ctx.rng`` draw; used for a second at
        most, so an id's time is at most that much before its message's (ids
        sort by time between pools, so the store's index of them grows near
        its end; within a pool they come in random order: sorted, their gaps
        would tell how many ids were given out between two, XEP-0359 §6).
        Per id: one ``list.pop``, no slicing, no formatting; each comes with
        its ``id="..."`` as the writer writes it (hex digits: nothing to
        escape), for the stamp (:class:`~xmpp_sansio.xml.writer.Prewritten`)."""
        entropy = ctx.rng(_ENTROPY_POOL).hex()
        # hex() of the time with bit 56 set, cut after it: 14 digits, as
        # ``f"{t:014x}"`` gives until the year 4253, without a format spec.
        at = hex(int(now * 1_000_000) | _BIT56)[3:]
        made = [at + entropy[i : i + 16] for i in range(0, len(entropy), 16)]
        self._ids = ids = [(sid, f' id="{sid}"') for sid in made]
        self._ids_until = now + _IDS_FOR
        return ids

    # -- preferences -----------------------------------------------------------

    def prefs(self, archive: JID) -> Prefs:
        """``archive``'s preferences: pending writes first, then the store."""
        found = self._prefs.get(archive)
        if found is None:
            if len(self._prefs) > _PLAIN_MAX:
                self._prefs.clear()
                self._plain.clear()
            found = self._storage.prefs(archive) or _DEFAULT_PREFS
            self._prefs[archive] = found
        return found

    def archives(self, owner: JID, peer: JID) -> bool:
        """XEP-0313 §6.1: whether ``owner``'s archive keeps messages with ``peer``."""
        prefs = self.prefs(owner)
        if prefs is _DEFAULT_PREFS:
            return True
        bare = peer.bare
        if any(j in (peer, bare) for j in prefs.never):
            return False
        if any(j in (peer, bare) for j in prefs.always):
            return True
        if prefs.default == "roster":
            return self._in_roster(owner, bare)
        return prefs.default == "always"

    # -- transform: XEP-0359 stamping ----------------------------------------

    def transform(
        self, ctx: Context, element: Element, sender: JID, to: JID | None
    ) -> Element | Appended:
        # One pass over the children: forged ids (XEP-0359 §3.1),
        # :func:`archivable` (XEP-0313 §5.1.1), inline, and a retraction
        # (XEP-0424 §3: kept for the observer, which then needs no search).
        forged: list[Element] | None = None
        keep = refused = retracting = False
        for child in element[:]:  # a list: no IndexError ends the loop
            tag = child.tag
            if tag == _BODY:
                keep = True
            elif tag == SID:
                if self._is_local(child.get("by")):
                    (forged := forged or []).append(child)
            elif tag.startswith(_HINTS):
                local = tag[_HINTS_LEN:]
                if local == "store":
                    keep = True
                elif local in ("no-store", "no-permanent-store"):
                    refused = True
            elif tag == RETRACT:  # (its namespace is archivable)
                keep = retracting = True
            elif not keep and tag.startswith("{") and tag[1 : tag.index("}")] in _ARCHIVABLE_NS:
                keep = True
        stamp: Element | None = None
        if keep and not refused and to is not None and element.get("type", "normal") in _ARCHIVED:
            peer = to
            if peer.local is not None:
                # An account known with the default preferences (it exists:
                # ``_plain`` is filled only after the checks of _plain_to):
                # one lookup by the text of ``to``, the common case.
                text = element.get("to", "")
                plain = self._plain.get(text)
                if plain is None:
                    plain = self._plain_to(peer, sender, text)
                if plain is not None:
                    recipient, by, by_attr = plain
                    # _new_id, inline (once a message)
                    now = ctx.now
                    ids = self._ids
                    if not ids or now > self._ids_until:
                        ids = self._draw_ids(ctx, now)
                    sid, id_attr = ids.pop()
                    stamp = self._stamp = _Stamp(SID, {"id": sid, "by": by})
                    stamp.source = ("id", sid, "by", by)  # written as made (Prewritten)
                    stamp.attrs = id_attr + by_attr
                    # The observers find it on the router's copy by identity, with
                    # what was parsed here (no second parse of ``to`` or ``from``,
                    # no second read of the clock, no JID comparison). The
                    # recipient is local: so is a sender of its domain.
                    same_domain = peer.domain == sender.domain
                    self._stamped = (
                        sid,
                        peer,
                        recipient,
                        same_domain or self.server.is_local(sender.domain),
                        now,
                        same_domain and peer.local == sender.local,
                        retracting,
                    )
        if forged is None:
            return element if stamp is None else (stamp,)
        out = Element(element.tag, element.attrib)
        out.text = element.text
        out.extend(c for c in element if not any(c is f for f in forged))
        if stamp is not None:
            out.append(stamp)
        return out

    def _plain_to(self, peer: JID, sender: JID, text: str) -> tuple[JID, str, str] | None:
        """Whether the local account of ``peer`` (``text`` as the message
        carries it) archives a message from ``sender`` (it exists and its
        preferences keep it): ``(bare JID, its text, by="..." as written)``
        if so, else ``None``; kept in ``_plain`` when its preferences are the
        default."""
        recipient = peer.bare
        prefs = self._prefs.get(recipient)
        if prefs is _DEFAULT_PREFS:
            kept = True
        elif prefs is not None:
            kept = self.archives(recipient, sender)
        else:
            server = self.server
            kept = (
                server.is_local(recipient.domain)
                # exists: a bound full JID (a dict lookup), any session, or the store
                and (
                    server.session_by_jid(peer) is not None
                    or bool(server.sessions_of(recipient))
                    or server.account_exists(recipient)
                )
                and self.archives(recipient, sender)
            )
        if not kept:
            return None
        return self._plain_entry(recipient, text)

    def _plain_entry(self, account: JID, text: str) -> tuple[JID, str, str]:
        """``account``'s entry of ``_plain`` (its bare JID, as text, the stamp's
        ``by`` as written), kept under ``text`` if its preferences (known) are
        the default."""
        by = str(account)
        entry = (account, by, attribute_text("by", by))
        if text and self._prefs.get(account) is _DEFAULT_PREFS:
            if len(self._plain) >= _PLAIN_MAX:
                self._plain.clear()
            self._plain[text] = entry
        return entry

    def _is_local(self, by: str | None) -> bool:
        if by is None:
            return False
        jid = JID.parse_or_none(by)
        return jid is not None and self.server.is_local(jid.domain)

    # -- observe: archiving --------------------------------------------------

    def _put(
        self, ctx: Context, archive: JID, sid: str, with_: JID, data: bytes, *also: tuple[JID, JID]
    ) -> None:
        """Archive ``data``: an :class:`ArchivePut` written behind
        (``ctx.behind``: no ``Persist`` effect a message; docs/mam.md "Cost")."""
        limits = self.limits
        ctx.behind.append(
            ArchivePut(
                archive, sid, with_, ctx.now, data, limits.max_per_user, limits.retention, also
            )
        )

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        # The two events of every message first, by their type (no pattern match).
        if type(event) is MessageSent:
            element = event.element
            sender = event.session.jid
            stamp = self._stamp
            if stamp is not None and len(element) and element[-1] is stamp:
                # _archive_sent's common case, inline (docs/mam.md "Cost"):
                # stamped here, default preferences (the sender known in
                # ``_plain`` by its ``from``, as the router stamped it), not
                # to self: both sides, one op.
                sid, peer, recipient, _, now, to_self, retracting = self._stamped
                mine = self._plain.get(element.get("from", ""))
                if not to_self and mine is not None:
                    owner = mine[0]
                    limits = self.limits
                    # ArchivePut(owner, sid, ...) without its __init__'s frame
                    # (about 1k instructions a message less).
                    put = _new(ArchivePut)
                    put.archive = owner
                    put.sid = sid
                    put.with_ = peer
                    put.stamp = now
                    put.stanza = archived_bytes(element)
                    put.keep = limits.max_per_user
                    put.retention = limits.retention
                    put.also = ((recipient, sender),)
                    ctx.behind.append(put)
                else:
                    self._archive_sent(ctx, sender, element)
                # a retraction: seen by the transform's pass (no search)
                return self._retract_sent(ctx, sender, element) if retracting else []
            self._archive_sent(ctx, sender, element)
            if element.find(RETRACT) is None:
                return []
            return self._retract_sent(ctx, sender, element)
        if type(event) is MessageDelivered:
            element = event.element
            if len(element) and element[-1] is self._stamp and self._stamped[3]:
                return []  # stamped for a local sender: archived when it was sent
            return self._archive_delivered(ctx, element, event.recipient)
        match event:
            case Loaded(request_id=request_id, result=result):
                return self._answer(request_id, result)
            case Committed(ops=ops, failed=failed):
                if failed:
                    for op in ops:
                        if isinstance(op, ArchivePrefsPut):
                            self._prefs.pop(op.archive, None)
                            self._plain.clear()
                    return []
                return self._archive_offline(ctx, ops)
            case Abandoned():
                self._prefs.clear()
                self._plain.clear()
                return []
            case AccountRemoved(account=account):
                self._prefs.pop(account, None)
                self._plain.clear()
                return [Persist(ArchiveRemove(account))]
        return []

    def _archive_delivered(self, ctx: Context, element: Element, recipient: JID) -> list[Outcome]:
        """The recipient's side of a message from outside (another server, a
        component; ``observe`` returned already for a local sender's)."""
        from_ = JID.parse_or_none(element.get("from"))
        if from_ is None or self.server.is_local(from_.domain) or not archivable(element):
            return []  # a local sender's message was archived when it was sent
        sid = _stamped(element, recipient)
        if sid is None:
            return []
        self._put(ctx, recipient, sid, from_, archived_bytes(element))
        return self._retract(ctx, recipient, from_, element)

    def _archive_sent(self, ctx: Context, sender: JID, element: Element) -> None:
        """Both sides of a message a local session sent: one id (the one
        stamped for a local recipient), one write (XEP-0313 §5.1.1). The
        common case (stamped, default preferences, not to self) is inline
        in :meth:`observe`."""
        stamp = self._stamp
        if stamp is not None and len(element) and element[-1] is stamp:
            # stamped here: archivable, the recipient archives it, ``to`` parsed
            sid: str | None
            # (its common case is inline in ``observe``)
            sid, peer, recipient = self._stamped[:3]
        else:
            found = JID.parse_or_none(element.get("to"))
            if found is None:
                return
            peer, recipient = found, found.bare
            sid = _stamped(element, recipient)
        owner = sender.bare
        if sid is None and not archivable(element):
            return
        mine = self._prefs.get(owner) is _DEFAULT_PREFS or self.archives(owner, peer)
        if mine:  # known by its ``from`` from now on: the common case is inline
            self._plain_entry(owner, element.get("from", ""))
        if sid is None:
            if mine:
                self._put(ctx, owner, self._new_id(ctx)[0], peer, archived_bytes(element))
            return
        data = archived_bytes(element)
        if recipient == owner:
            self._put(ctx, owner, sid, peer, data)
        elif mine:
            self._put(ctx, owner, sid, peer, data, (recipient, sender))
        else:
            self._put(ctx, recipient, sid, sender, data)

    def _archive_offline(self, ctx: Context, ops: tuple[StoreOp, ...]) -> list[Outcome]:
        """A message from outside kept offline (XEP-0160: no ``MessageDelivered``)
        goes to the recipient's archive once its offline copy is committed,
        under the id stamped on it; a local sender's was archived when sent."""
        out: list[Outcome] = []
        for op in ops:
            if type(op) is not OfflinePush:
                continue
            element = parse_fragment(op.stanza)
            sid = _stamped(element, op.user)
            from_ = JID.parse_or_none(element.get("from"))
            if sid is None or from_ is None:
                continue
            if not self.server.is_local(from_.domain):
                self._put(ctx, op.user, sid, from_, archived_bytes(element))
                out.extend(self._retract(ctx, op.user, from_, element))
        return out

    # -- XEP-0424 retractions (:mod:`.retract`) -------------------------------------------

    def _retract_sent(self, ctx: Context, sender: JID, element: Element) -> list[Outcome]:
        """A local account retracts a message: its archive and a local
        recipient's each look for it (by its origin id, from ``sender``)."""
        to = JID.parse_or_none(element.get("to"))
        if to is None:
            return []
        peer = to.bare
        out = self._retract(ctx, sender.bare, peer, element, sender)
        if peer != sender.bare and self.server.is_local(peer.domain) and peer.local:
            out += self._retract(ctx, peer, sender, element)
        return out

    def _retract(
        self, ctx: Context, archive: JID, peer: JID, element: Element, by: JID | None = None
    ) -> list[Outcome]:
        """If ``element`` is a retraction (XEP-0424) from ``by`` (default
        ``peer``), a read of ``archive`` to find the message it names."""
        target = retracted_id(element)
        if target is None:
            return []
        retractor = (peer if by is None else by).bare
        window = self.limits.retract_window
        ref = retraction_ref(element)
        return [
            self._retractions.request(archive, peer.bare, retractor, target, ctx.now, window, ref)
        ]

    # -- handle: queries ------------------------------------------------------

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        payload = iq.payload
        if payload is None or not payload.tag.startswith("{" + MAM + "}"):
            return None
        if iq.type not in (IqType.GET, IqType.SET):
            return []
        requester = iq.from_
        assert requester is not None
        archive = requester.bare
        if to is not None and to.bare != archive:
            return _error(iq, StanzaErrorCondition.FORBIDDEN, "not your archive")
        local = payload.tag[len(MAM) + 2 :]
        try:
            if local == "prefs":
                if iq.type is IqType.GET:
                    return [Reply(iq_result(iq.element, prefs_element(self.prefs(archive))))]
                prefs = parse_prefs(payload)
                self._prefs[archive] = prefs
                self._plain.clear()
                op = ArchivePrefsPut(archive, prefs)
                return [
                    Persist(op, iq.element, (Reply(iq_result(iq.element, prefs_element(prefs))),))
                ]
            return self._read(iq, archive, payload, local)
        except QueryError as exc:
            return _error(iq, exc.condition, exc.text)

    def _read(self, iq: Iq, archive: JID, payload: Element, local: str) -> list[Outcome]:
        """A query (§4) or the metadata (§6.2) of ``archive``; raises :class:`QueryError`."""
        if local == "query":
            if iq.type is IqType.GET:
                return [Reply(iq_result(iq.element, query_form()))]
            limits = self.limits
            parsed = parse_query(
                payload,
                archive,
                default_max=limits.default_page,
                max_page=limits.max_page,
                max_ids=limits.max_ids,
            )
            return self._load(iq, archive, parsed.query, parsed.queryid, parsed.flip)
        if local == "metadata" and iq.type is IqType.GET:
            return self._load(iq, archive, ArchiveMeta(archive), None, False)
        return _error(iq, StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED, None)

    # -- room archives (XEP-0313 §5.1.2, through the MUC service) ------------------

    def room_query(self, iq: Iq, room: JID, *, reveal: bool = False) -> list[Outcome]:
        """A MAM iq for the archive of ``room`` (the MUC service checked that
        the sender may read it); the results come from the room, with the
        senders' real JIDs only if ``reveal`` (§5.1.2)."""
        payload = iq.payload
        assert payload is not None
        if iq.type not in (IqType.GET, IqType.SET):
            return []
        try:
            out = self._read(iq, room, payload, payload.tag[len(MAM) + 2 :])
        except QueryError as exc:
            return _error(iq, exc.condition, exc.text)
        if not reveal:
            self._hiding.update(o.request_id for o in out if isinstance(o, Load))
        return out

    def room_put(self, room: JID, element: Element, stamp: float) -> list[Outcome]:
        """Archive a groupchat message as ``room`` sent it (``from`` the
        occupant, the room's ``<stanza-id/>`` its id)."""
        sid = _stamped(element, room)
        sender = element.get("from")
        if sid is None or sender is None:
            return []
        limits = self.limits
        data = archived_bytes(element)
        op = ArchivePut(room, sid, JID.parse(sender), stamp, data, limits.max_per_user)
        return [Persist(op)]

    def room_history(self, room: JID, limit: int) -> list[tuple[Element, float]]:
        """The newest ``limit`` messages of ``room``'s archive, oldest first
        (a synchronous read: the MUC primes its history cache once a room)."""
        page = self._storage.load(ArchiveQuery(room, max=limit, before=""))
        if not isinstance(page, ArchivePage):
            return []
        return [(parse_fragment(m.stanza), m.stamp) for m in page.items]

    def room_message(self, room: JID, sid: str) -> Element | None:
        """The message ``sid`` of ``room``'s archive (a synchronous indexed
        read, for a XEP-0425 moderation), or ``None``."""
        page = self._storage.load(ArchiveQuery(room, max=1, ids=(sid,)))
        if not isinstance(page, ArchivePage) or not page.items:
            return None
        return parse_fragment(page.items[0].stanza)

    def room_replace(self, room: JID, sid: str, element: Element) -> list[Outcome]:
        """Store ``element`` (a XEP-0425 §5 tombstone) in place of ``sid``."""
        return [Persist(ArchiveReplace(room, sid, serialize(element, "")))]

    def room_forget(self, room: JID) -> list[Outcome]:
        """The room is gone: drop its archive."""
        return [Persist(ArchiveRemove(room))]

    def _load(
        self,
        iq: Iq,
        by: JID,
        query: ArchiveQuery | ArchiveMeta,
        queryid: str | None,
        flip: bool,
    ) -> list[Outcome]:
        self._next_query += 1
        request_id = ("mam", self._next_query)
        backward = isinstance(query, ArchiveQuery) and query.before is not None
        assert iq.from_ is not None
        self._queries[request_id] = (iq.element, iq.from_, by, queryid, flip, backward)
        return [Load(request_id, query)]

    def _answer(self, request_id: Hashable, result: object) -> list[Outcome]:
        pending = self._queries.pop(request_id, None)
        if pending is None:
            return self._retractions.loaded(request_id, result) or []
        request, requester, by, queryid, flip, backward = pending
        hide = request_id in self._hiding
        self._hiding.discard(request_id)
        if result is None:
            return [Reply(error_reply(request, StanzaErrorCondition.INTERNAL_SERVER_ERROR))]
        if isinstance(result, UnknownId):
            return [
                Reply(
                    error_reply(
                        request,
                        StanzaErrorCondition.ITEM_NOT_FOUND,
                        text="no such id in the archive",
                    )
                )
            ]
        if isinstance(result, tuple):  # metadata: (first, last)
            first, last = result
            return [Reply(iq_result(request, metadata_element(first, last)))]
        assert isinstance(result, ArchivePage)
        items = result.items[::-1] if flip else result.items
        out: list[Outcome] = [
            Reply(result_message(requester, queryid, m, by, hide_real=hide)) for m in items
        ]
        out.append(Reply(iq_result(request, fin_element(result, flip=flip, backward=backward))))
        return out


_CLIENT_MESSAGE: Final = "{" + CLIENT + "}message"
_WITH_NS: Final = b'<message xmlns="' + CLIENT.encode() + b'"'


def archived_bytes(element: Element) -> bytes:
    """``element`` serialised for the archive, standalone (its namespace
    declared). A ``jabber:client`` message goes through the one call the
    client streams make for it (:func:`~xmpp_sansio.xml.writer.serialize`
    with that default namespace): the same element delivered in the same
    batch is serialised the same way, so the writer can do it once; the
    declaration is put in after the tag name."""
    if element.tag == _CLIENT_MESSAGE:
        return _WITH_NS + serialize(element, CLIENT)[8:]
    return serialize(element, "")


def _stamped(element: Element, archive: JID) -> str | None:
    """The id this server stamped on ``element`` for ``archive``."""
    by = str(archive)
    for found in element:
        if found.tag == SID and found.get("by") == by:
            return found.get("id")
    return None


def _error(iq: Iq, condition: StanzaErrorCondition, text: str | None) -> list[Outcome]:
    return [Reply(error_reply(iq.element, condition, text=text))]
