"""Last Activity (XEP-0012, ``jabber:iq:last``).

Theory of operation
-------------------
* A query to the server (``to`` a local domain) is answered with the
  server's uptime: the seconds since ``started`` (XEP-0012 §5).
* A query to an account's bare JID is answered by the server on the
  account's behalf (XEP-0012 §3). Only the account itself and entities
  subscribed to its presence may ask (``is_subscribed(requester, user)``,
  bare JIDs); anyone else gets ``service-unavailable`` (§3, §8: otherwise
  it would leak presence; not §3's ``forbidden``, which would tell an
  existing account from a missing one, RFC 6121 §8.5.1). If the account has a connected resource the answer is
  ``seconds='0'`` (§3, last paragraph); otherwise the seconds since its last
  session ended, with the ``<status/>`` of its last unavailable presence as
  the text (§3). An account that never logged out gets
  ``service-unavailable``.
* A query without ``to`` is about the sender's own account (RFC 6120
  §10.3.3): always ``seconds='0'``, the sender being connected.
* A query to a full JID is delivered to that resource by the router, which
  may answer with its idle time (§4), but only from an authorised
  requester: others get ``service-unavailable`` from the server (§4, second
  paragraph, says ``forbidden``; see above).

The logout time is recorded when an account's last session ends
(``SessionUnbound``), with the status of the last unavailable presence that
session broadcast (captured at ``PresenceBroadcast``; the router's own
unavailable presence for a session that ends while available has none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, Protocol
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition
from ..jid import JID, InvalidJID
from ..stanza import (
    Iq,
    IqType,
    Presence,
    StanzaKind,
    StanzaValueError,
    iq_result,
    stanza_kind,
)
from .effects import Bounce, LastForget, LastSet, Persist, Reply, StoreOp
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
    from .view import BoundSession

__all__ = [
    "LAST_NS",
    "LastActivityService",
    "LastActivityStorage",
    "LastLogout",
    "MemoryLastActivityStorage",
]

LAST_NS: Final = "jabber:iq:last"

_QUERY: Final = f"{{{LAST_NS}}}query"


@dataclass(frozen=True, slots=True)
class LastLogout:
    """When an account's last session ended (UNIX seconds) and the status text
    of its last unavailable presence, if any."""

    stamp: float
    status: str | None = None


class LastActivityStorage(Protocol):
    """The accounts' last logout (synchronous; see ``xmpp_trio.stores``).
    ``user`` is always a bare JID. :meth:`set` may be written behind (XEP-0012
    only reports it; a crash may lose the last moments) but :meth:`get` sees
    it at once; :meth:`forget` is durable when it returns and wins over a
    :meth:`set` not yet written. :meth:`apply` carries out the service's
    ``Persist`` ops (:class:`LastSet` as :meth:`set`, :class:`LastForget` as
    :meth:`forget`), in order, all or nothing (a :class:`LastSet` may still
    be written behind, after a later failure: XEP-0012 only reports it).

    The contract a backend implements; ``tests/test_store_contract.py`` checks it
    for every backend.
    """

    def set(self, user: JID, stamp: float, status: str | None) -> None:
        """Record (replacing any earlier record) that ``user`` logged out."""
        ...

    def get(self, user: JID) -> LastLogout | None:
        """``user``'s last logout, or ``None`` if none was recorded."""
        ...

    def forget(self, user: JID) -> None:
        """Delete ``user``'s record (the account was removed)."""
        ...

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`LastSet`, :class:`LastForget`) in order."""
        ...


class MemoryLastActivityStorage:
    """An in-memory :class:`LastActivityStorage`."""

    def __init__(self) -> None:
        self._records: dict[JID, LastLogout] = {}

    def set(self, user: JID, stamp: float, status: str | None) -> None:
        self._records[user.bare] = LastLogout(stamp, status)

    def get(self, user: JID) -> LastLogout | None:
        return self._records.get(user.bare)

    def forget(self, user: JID) -> None:
        self._records.pop(user.bare, None)

    def apply(self, ops: Sequence[StoreOp]) -> None:
        records = dict(self._records)
        for op in ops:
            match op:
                case LastSet():
                    records[op.user.bare] = LastLogout(op.stamp, op.status)
                case LastForget():
                    records.pop(op.user.bare, None)
                case _:
                    raise TypeError(f"not a last activity op: {op!r}")
        self._records = records


def _seconds(elapsed: float) -> str:
    """Whole seconds, never negative (XEP-0012 §11 schema: ``xs:unsignedLong``)."""
    return str(max(0, math.floor(elapsed)))


def _query(seconds: str, text: str | None = None) -> Element:
    el = Element(_QUERY, {"seconds": seconds})
    if text:
        el.text = text
    return el


class LastActivityService(IqService):
    """XEP-0012 over a :class:`LastActivityStorage`.

    ``is_subscribed(requester, user)`` (bare
    JIDs) says whether ``requester`` may see ``user``'s presence; ``started``
    is when the server started (UNIX seconds), for its uptime.
    """

    server_features: ClassVar[tuple[str, ...]] = (LAST_NS,)
    account_features: ClassVar[tuple[str, ...]] = (LAST_NS,)

    def __init__(
        self,
        storage: LastActivityStorage,
        is_subscribed: Callable[[JID, JID], bool],
        started: float,
    ) -> None:
        self._storage = storage
        self._is_subscribed = is_subscribed
        self._started = started
        # Status of the last unavailable presence each session broadcast.
        self._status: dict[SessionId, str | None] = {}
        # Writes returned as Persist, not yet committed (None: forgotten), by account.
        self._overlay: Overlay[JID, LastLogout | None] = Overlay()

    def _authorised(self, requester: JID, user: JID) -> bool:
        """XEP-0012 §3, §8: the user, or an entity subscribed to its presence."""
        return requester.bare == user.bare or self._is_subscribed(requester.bare, user.bare)

    # -- stages -------------------------------------------------------------------

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.INBOUND})
    inbound_kinds: ClassVar[frozenset[StanzaKind]] = frozenset({StanzaKind.IQ})
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
                return self._session_unbound(event.session, ctx.now)
            case AccountRemoved():
                return self._account_removed(event.account)
            case Committed():
                self._overlay.settle(event.ops)
            case Abandoned():
                self._overlay.keep_only(event.pending)
        return []

    def stored(self, user: JID) -> LastLogout | None:
        """``user``'s last logout once the pending writes are committed."""
        return self._overlay.read(user, self._storage.get)

    # -- IQs -----------------------------------------------------------------------

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        """A ``jabber:iq:last`` get to the server (§5), an account (§3), or
        without ``to`` (the sender's own account)."""
        payload = iq.payload
        if iq.type is not IqType.GET or payload is None or payload.tag != _QUERY:
            return None
        requester = iq.from_
        if requester is None:
            return None
        if to is None and iq.to is not None:
            uptime = _seconds(ctx.now - self._started)
            return [Reply(iq_result(iq.element, _query(uptime)))]
        user = requester.bare if to is None else to.bare
        if not self._authorised(requester, user):
            # service-unavailable, not §3's forbidden: the answer for a missing
            # account (RFC 6121 §8.5.1), so the two cannot be told apart.
            return [Bounce(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        if self.server.sessions_of(user):
            return [Reply(iq_result(iq.element, _query("0")))]
        last = self.stored(user)
        if last is None:
            return [Bounce(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        seconds = _seconds(ctx.now - last.stamp)
        return [Reply(iq_result(iq.element, _query(seconds, last.status)))]

    def filter_inbound(
        self, ctx: Context, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        """XEP-0012 §4: a query to one of the user's full JIDs from an entity not
        authorised to see the user's presence is answered with
        ``service-unavailable`` instead of being delivered."""
        if (
            stanza_kind(element) is not StanzaKind.IQ
            or element.get("type") != "get"
            or element.find(_QUERY) is None
        ):
            return None
        try:
            to = JID.parse(element.get("to", ""))
        except InvalidJID:
            return None
        if to.is_bare:
            return None  # the account itself: handle_iq checks
        if self._authorised(sender, recipient):
            return None
        return [Bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]

    # -- presence and sessions ---------------------------------------------------------

    def _presence_broadcast(
        self, session: BoundSession, element: Element, initial: bool
    ) -> list[Outcome]:
        """Keep the ``<status/>`` of the session's last unavailable presence."""
        if element.get("type") == "unavailable":
            try:
                status = Presence.from_element(element).status
            except StanzaValueError:
                status = None
            self._status[session.id] = status or None
        return []

    def _account_removed(self, account: JID) -> list[Outcome]:
        """Forget the removed account's last logout."""
        op = LastForget(account.bare)
        self._overlay.write(op.user, None, op)
        return [Persist(op)]

    def _session_unbound(self, session: BoundSession, now: float) -> list[Outcome]:
        """Record the logout when the account's last session ends (XEP-0012 §3)."""
        status = self._status.pop(session.id, None)
        user = session.jid.bare
        if not self.server.sessions_of(user):
            op = LastSet(user, now, status)
            self._overlay.write(user, LastLogout(now, status), op)
            return [Persist(op)]
        return []
