"""The stages of the routing pipeline and what flows through them.

Theory of operation
-------------------
Every stanza a local session sends goes through the same typed stages, in
this order (RFC 6120 §10, RFC 6121 §8):

1. **outbound** (:attr:`Stage.OUTBOUND`): ``filter_outbound`` may stop the
   stanza (blocking, XEP-0191 §3.3), refuse it (directed presence bounds) or
   take it over (a subscription presence the roster must see first,
   RFC 6121 §3).
2. **transform** (:attr:`Stage.TRANSFORM`): ``transform`` may return a new
   message element, or :data:`Appended` children that the router adds to
   its own copy of the message (no new element, no new parse); what comes
   out is what every later stage sees (delivery, carbons, offline storage).
   XEP-0359 stanza ids and XEP-0313 archive ids are stamped here.
3. **route**: the router's own delivery rules (RFC 6121 §8.5) pick the
   recipient: an account, a session, the server, a service host, elsewhere.
4. **inbound** (:attr:`Stage.INBOUND`): ``filter_inbound`` may stop a stanza
   for a local account (blocking again, last activity's presence check).
5. **handle**: the requests the server answers or keeps for an account
   instead of delivering them as they are (:data:`Request`: an iq for the
   server, a subscription presence, a probe, a message nobody can take). A
   service lists the request types it handles in ``handles``; the first that
   returns outcomes takes the request.
6. **deliver**: the router's :class:`~xmpp_sansio.server.effects.Deliver`.
7. **observe**: what happened (:data:`Event`: a message sent or delivered,
   presence broadcast, a session bound or ended, a receipt handed over, an
   account removed). A service lists the event types it observes in
   ``observes``; every observer runs, in list order.

Plus the **timer** (:attr:`Stage.TIMER`): ``next_deadline()`` and
``handle_timer(ctx)`` for services with time-based work, driven by the
router's :meth:`~xmpp_sansio.server.router.Router.handle_timer`.

Each stage call gets a :class:`Context`: the time and the entropy source of
the router call it belongs to. No service reads a clock or ``secrets``.

The requests and events are read-only by contract but not frozen
dataclasses: they are built per stanza, and a frozen dataclass costs three
times as much to build (``object.__setattr__`` per field).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias
from xml.etree.ElementTree import Element

from ..jid import JID
from ..stanza import Iq
from .effects import SessionId, StoreOp
from .view import BoundSession

__all__ = [
    "Abandoned",
    "AccountRemoved",
    "Appended",
    "Committed",
    "Context",
    "Event",
    "HandedOver",
    "IqReceived",
    "Loaded",
    "MessageDelivered",
    "MessageSent",
    "PresenceBroadcast",
    "PresenceDirected",
    "PresenceReceived",
    "ProbeReceived",
    "Request",
    "SessionBound",
    "SessionUnbound",
    "Stage",
    "SubscriptionReceived",
    "Undeliverable",
]


class Context:
    """The inputs of the router call a stage runs in.

    ``now`` is UNIX seconds (the caller's clock: the I/O layer's, or a
    test's), the same for every stage of one router call; ``rng(n)`` returns
    ``n`` unpredictable bytes (ids a peer must not guess). Valid during the
    call only: the router reuses one context, and reads its clock only when a
    stage asks for ``now`` (most stanzas need no time at all).

    ``behind``: store ops a stage *writes behind* (appends, in order): writes
    that hold nothing back (no answer waits for them, no sender is told if
    they fail: a XEP-0313 archived copy), which the I/O layer commits after
    the batch's output, with no ``Committed`` report, instead of one
    ``Persist`` effect each. The list outlives the call (the router's
    :attr:`~xmpp_sansio.server.router.Router.behind`, which the I/O layer
    empties); the ops a call appended are dropped if it raises
    (:meth:`drop_call`, run by ``Router.abandoned``).
    """

    __slots__ = ("_clock", "_mark", "_now", "behind", "rng")

    def __init__(
        self,
        now: float | None,
        rng: Callable[[int], bytes],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if now is None and clock is None:
            raise ValueError("a Context needs now or a clock")
        self._now = now
        self._clock = clock
        self.rng = rng
        self.behind: list[StoreOp] = []
        self._mark = 0  # len(behind) when the call began

    @property
    def now(self) -> float:
        """The time of this call (UNIX seconds)."""
        now = self._now
        if now is None:
            assert self._clock is not None
            now = self._now = self._clock()
        return now

    def begin(self, now: float | None) -> None:
        """Start a new router call at ``now`` (``None``: ask the clock when needed)."""
        if now is None and self._clock is None:
            raise ValueError("this Context has no clock: give now")
        self._now = now
        self._mark = len(self.behind)

    def drop_call(self) -> None:
        """The call begun last raised: forget the ops it wrote behind (the
        ones appended before it stay, in order)."""
        del self.behind[self._mark :]


class Stage(Enum):
    """The stages a service joins by listing them in ``Service.stages``
    (handle and observe are joined through ``handles`` and ``observes``)."""

    OUTBOUND = "outbound"
    TRANSFORM = "transform"
    INBOUND = "inbound"
    TIMER = "timer"


#: What a transform returns to add these children at the end of the message
#: and change nothing else (a XEP-0359 ``<stanza-id/>``): a plain tuple (a
#: subclass cost the stamp ~1.6k instructions a message to build), which the
#: router appends to its own copy, with no new parse.
Appended: TypeAlias = tuple[Element, ...]


# -- handle: requests the server answers or keeps --------------------------------------


@dataclass(slots=True)
class IqReceived:
    """An iq for the server (``to`` is ``None``: no ``to`` or a local domain,
    RFC 6120 §10.3.3) or for the bare JID ``to`` of an existing local account
    (RFC 6121 §8.5.2.1.3); ``iq.from_`` is the sender's full JID. Results and
    errors come here too (answers to the server's own queries)."""

    iq: Iq
    to: JID | None


@dataclass(slots=True)
class Undeliverable:
    """A chat/normal message for the existing account ``recipient`` (bare)
    with no available resource (RFC 6121 §8.5.2.2.1). Not taken: bounced."""

    element: Element
    recipient: JID


@dataclass(slots=True)
class SubscriptionReceived:
    """A subscription presence from ``sender`` (bare) for the existing local
    account ``to`` (bare), RFC 6121 §3. Not taken: delivered to every
    available resource."""

    element: Element
    sender: JID
    to: JID


@dataclass(slots=True)
class ProbeReceived:
    """A presence probe from ``sender`` for the local account ``to`` (bare),
    answered by the server (RFC 6121 §4.3.2). Not taken: ignored."""

    element: Element
    sender: JID
    to: JID


#: What the handle stage gets.
Request = IqReceived | Undeliverable | SubscriptionReceived | ProbeReceived


# -- observe: what happened ---------------------------------------------------------------


@dataclass(slots=True)
class MessageSent:
    """A local session sent a message (after the outbound and transform stages)."""

    session: BoundSession
    element: Element


@dataclass(slots=True)
class MessageDelivered:
    """A message for the account ``recipient`` (bare) went to ``sessions``."""

    element: Element
    recipient: JID
    sessions: list[SessionId]


@dataclass(slots=True)
class PresenceBroadcast:
    """The session sent presence without ``to`` (RFC 6121 §4.2, §4.4, §4.5),
    or ended while available (an unavailable ``element``). ``initial`` is
    true for the first available presence of the session."""

    session: BoundSession
    element: Element
    initial: bool


@dataclass(slots=True)
class PresenceDirected:
    """The session sent available/unavailable presence to ``to`` (RFC 6121
    §4.6); the router routes it."""

    session: BoundSession
    element: Element
    to: JID


@dataclass(slots=True)
class PresenceReceived:
    """Available or unavailable presence from the full JID ``sender`` of
    another server reached the local account ``recipient`` (bare), past the
    inbound filters (RFC 6121 §4.2.3, §4.4.3, §4.5.3): what a local service
    learns of a remote contact's resources (their XEP-0115 caps, for PEP's
    ``+notify``, XEP-0163 §4.3.1)."""

    element: Element
    sender: JID
    recipient: JID


@dataclass(slots=True)
class SessionBound:
    """A resource was bound (RFC 6120 §7)."""

    session: BoundSession


@dataclass(slots=True)
class SessionUnbound:
    """A session ended (after its unavailable presence was broadcast)."""

    session: BoundSession


@dataclass(slots=True)
class HandedOver:
    """A stanza delivered with ``receipt`` (a
    :class:`~xmpp_sansio.server.effects.Deliver` field) reached ``session``'s
    client; ``bound`` is its record, ``None`` if it has ended since. Every
    observer sees every receipt: ignore those of others."""

    session: SessionId
    bound: BoundSession | None
    receipt: Hashable


@dataclass(slots=True)
class AccountRemoved:
    """The account ``account`` (bare) was deleted (XEP-0077 §3.2): forget its data."""

    account: JID


@dataclass(slots=True)
class Committed:
    """The I/O layer committed ``ops`` (the :class:`~xmpp_sansio.server.effects.Persist`
    effects of one batch, in order), or could not (``failed``: none of them was
    written): a service drops them from its write-through cache."""

    ops: tuple[StoreOp, ...]
    failed: bool


@dataclass(slots=True)
class Abandoned:
    """A router call raised (a store read failed): the writes its services
    returned went nowhere. ``pending`` are the ops the I/O layer holds and has
    not reported yet: a service keeps those in its write-through cache and
    drops every other pending write."""

    pending: tuple[StoreOp, ...]


@dataclass(slots=True)
class Loaded:
    """The I/O layer read what a :class:`~xmpp_sansio.server.effects.Load`
    asked: ``result`` (``None``: the read failed). Every observer sees every
    answer: ignore those of others' ``request_id``."""

    request_id: Hashable
    result: object


#: What the observe stage gets.
Event = (
    MessageSent
    | MessageDelivered
    | PresenceBroadcast
    | PresenceDirected
    | PresenceReceived
    | SessionBound
    | SessionUnbound
    | HandedOver
    | AccountRemoved
    | Committed
    | Abandoned
    | Loaded
)
